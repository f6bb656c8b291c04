//! [`EventTypePrefix`]: the event types a device's events live under.

use crate::EventType;

/// An event-type prefix, usually a device's
/// `[gateway, <gateway name>, <device type>, <device name>]` (or hat-gateway 0.6's
/// `[gateway, <device type>, <device name>]`), and the one way to put a suffix after it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct EventTypePrefix(EventType);

impl EventTypePrefix {
    /// The prefix made of `segments`.
    pub fn new(segments: EventType) -> Self {
        Self(segments)
    }

    /// A device's prefix: `[gateway, <gateway>, <device_type>, <device>]`.
    pub fn device(gateway: &str, device_type: &str, device: &str) -> Self {
        Self(vec![
            "gateway".to_owned(),
            gateway.to_owned(),
            device_type.to_owned(),
            device.to_owned(),
        ])
    }

    /// A device's prefix in hat-gateway 0.6.5 and later (up to 0.6.48):
    /// `[gateway, <device_type>, <device>]`, without the gateway name.
    pub fn hat_device(device_type: &str, device: &str) -> Self {
        Self(vec![
            "gateway".to_owned(),
            device_type.to_owned(),
            device.to_owned(),
        ])
    }

    /// The prefix's segments.
    pub fn segments(&self) -> &[String] {
        &self.0
    }

    /// The prefix as a plain event type.
    pub fn into_event_type(self) -> EventType {
        self.0
    }

    /// The prefix followed by `suffix`, e.g. `join(&["system", "enable"])`.
    pub fn join<S: AsRef<str>>(&self, suffix: &[S]) -> EventType {
        let mut event_type = Vec::with_capacity(self.0.len() + suffix.len());
        event_type.extend(self.0.iter().cloned());
        event_type.extend(suffix.iter().map(|s| s.as_ref().to_owned()));
        event_type
    }

    /// The prefix followed by the segments of `suffix` split on `/` (empty segments are
    /// kept, as hat keeps them): `join_path("gateway/running")`.
    pub fn join_path(&self, suffix: &str) -> EventType {
        let mut event_type = self.0.clone();
        event_type.extend(suffix.split('/').map(str::to_owned));
        event_type
    }

    /// What follows the prefix in `event_type`, or `None` when it is not under it.
    pub fn strip<'a>(&self, event_type: &'a [String]) -> Option<&'a [String]> {
        event_type.strip_prefix(self.0.as_slice())
    }
}

impl From<EventType> for EventTypePrefix {
    fn from(segments: EventType) -> Self {
        Self(segments)
    }
}

impl From<EventTypePrefix> for EventType {
    fn from(prefix: EventTypePrefix) -> Self {
        prefix.0
    }
}

impl AsRef<[String]> for EventTypePrefix {
    fn as_ref(&self) -> &[String] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_type_from_str;

    #[test]
    fn joins_and_strips_suffixes() {
        let prefix = EventTypePrefix::device("gw", "sim", "s1");
        assert_eq!(prefix.segments(), event_type_from_str("gateway/gw/sim/s1"));
        let enable = prefix.join(&["system", "enable"]);
        assert_eq!(
            enable,
            event_type_from_str("gateway/gw/sim/s1/system/enable")
        );
        assert_eq!(prefix.join_path("system/enable"), enable);
        assert_eq!(
            prefix.join_path("a//b"),
            event_type_from_str("gateway/gw/sim/s1/a//b")
        );
        assert_eq!(
            prefix.strip(&enable),
            Some(&event_type_from_str("system/enable")[..])
        );
        assert_eq!(prefix.strip(&event_type_from_str("gateway/gw/sim")), None);
        assert_eq!(
            prefix.strip(&event_type_from_str("gateway/gw/sim/s2/x")),
            None
        );
        assert_eq!(EventType::from(prefix.clone()), prefix.into_event_type());
    }

    #[test]
    fn hat_device_prefix_has_no_gateway_name() {
        let prefix = EventTypePrefix::hat_device("modbus_master", "plc1");
        assert_eq!(
            prefix.segments(),
            event_type_from_str("gateway/modbus_master/plc1")
        );
        assert_eq!(
            prefix.join_path("gateway/running"),
            event_type_from_str("gateway/modbus_master/plc1/gateway/running")
        );
    }
}
