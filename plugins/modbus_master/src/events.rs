//! Event mapping: the event types and payloads the device registers, and parsing of
//! the system events it consumes (`docs/modbus-master.md` section 5).

use gateway_model::{Event, EventType, EventTypePrefix, Payload, RegisterEvent};
use serde_json::{json, Value};

/// Builds event types under the device prefix `gateway/<gw>/modbus_master/<device>`.
#[derive(Debug, Clone)]
pub struct EventTypes {
    prefix: EventTypePrefix,
}

impl EventTypes {
    /// Types under `prefix` (4 segments).
    pub fn new(prefix: EventType) -> Self {
        Self {
            prefix: EventTypePrefix::new(prefix),
        }
    }

    fn with(&self, tail: &[&str]) -> EventType {
        self.prefix.join(tail)
    }

    /// `P/gateway/status` with `status`.
    pub fn status(&self, status: &str) -> RegisterEvent {
        RegisterEvent::json(self.with(&["gateway", "status"]), json!(status))
    }

    /// `P/gateway/remote_device/<id>/status` with `status`.
    pub fn remote_status(&self, device_id: u8, status: &str) -> RegisterEvent {
        let id = device_id.to_string();
        RegisterEvent::json(
            self.with(&["gateway", "remote_device", &id, "status"]),
            json!(status),
        )
    }

    /// `P/gateway/remote_device/<id>/read/<name>` with `payload`.
    pub fn read(&self, device_id: u8, name: &str, payload: Value) -> RegisterEvent {
        let id = device_id.to_string();
        RegisterEvent::json(
            self.with(&["gateway", "remote_device", &id, "read", name]),
            payload,
        )
    }

    /// `P/gateway/remote_device/<id>/write/<name>` with `{request_id, result}`.
    pub fn write_result(
        &self,
        device_id: u8,
        name: &str,
        request_id: Value,
        result: &str,
    ) -> RegisterEvent {
        let id = device_id.to_string();
        RegisterEvent::json(
            self.with(&["gateway", "remote_device", &id, "write", name]),
            json!({"request_id": request_id, "result": result}),
        )
    }

    /// Query type of the start-up query: `P/system/remote_device/?/enable`.
    pub fn enable_query(&self) -> EventType {
        self.with(&["system", "remote_device", "?", "enable"])
    }

    /// Parses an event addressed to this device. `Err` carries the reason it is ignored.
    pub fn parse_system(&self, event: &Event) -> Result<SystemRequest, &'static str> {
        let tail = self
            .prefix
            .strip(&event.event_type)
            .ok_or("event type outside the device prefix")?;
        let tail: Vec<&str> = tail.iter().map(String::as_str).collect();
        let payload = match &event.payload {
            Some(Payload::Json(text)) => Some(text.value()),
            Some(Payload::Binary { .. }) => return Err("binary payload"),
            None => None,
        };
        match tail.as_slice() {
            ["system", "remote_device", id, "enable"] => {
                let device_id = parse_device_id(id)?;
                let payload = payload.ok_or("enable without payload")?;
                Ok(SystemRequest::Enable {
                    device_id,
                    enable: truthy(&payload),
                })
            }
            ["system", "remote_device", id, "write", name] => {
                let device_id = parse_device_id(id)?;
                let payload = payload.ok_or("write without payload")?;
                let request_id = payload
                    .get("request_id")
                    .ok_or("write without request_id")?
                    .clone();
                let value = payload.get("value").ok_or("write without value")?.clone();
                Ok(SystemRequest::Write {
                    device_id,
                    data_name: (*name).to_owned(),
                    request_id,
                    value,
                })
            }
            _ => Err("unknown event type"),
        }
    }
}

/// What a consumed system event asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum SystemRequest {
    /// Enable or disable polling of a remote device.
    Enable {
        /// Remote device id (ids outside 0..=255 never match a configured device).
        device_id: i64,
        /// Truthiness of the payload.
        enable: bool,
    },
    /// Write a value to a data point.
    Write {
        /// Remote device id.
        device_id: i64,
        /// Data point name.
        data_name: String,
        /// Echoed verbatim in the result.
        request_id: Value,
        /// The value as received (checked against the point later).
        value: Value,
    },
}

fn parse_device_id(segment: &str) -> Result<i64, &'static str> {
    segment
        .parse()
        .map_err(|_| "remote device id is not an integer")
}

/// Python truthiness, as hat-gateway applies it to `remote_device/<id>/enable`
/// (`docs/modbus-master.md` Q2: kept for compatibility).
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Device ids whose latest enable event (from the start-up query) is truthy.
pub fn enabled_from_query(types: &EventTypes, events: &[Event]) -> Vec<i64> {
    events
        .iter()
        .filter_map(|event| match types.parse_system(event) {
            Ok(SystemRequest::Enable {
                device_id,
                enable: true,
            }) => Some(device_id),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_model::{EventId, JsonText, Timestamp};

    fn prefix() -> EventType {
        ["gateway", "gw", "modbus_master", "m"]
            .map(String::from)
            .to_vec()
    }

    fn event(tail: &str, payload: Option<&str>) -> Event {
        let mut event_type = prefix();
        event_type.extend(tail.split('/').map(String::from));
        Event {
            id: EventId::default(),
            event_type,
            timestamp: Timestamp::default(),
            source_timestamp: None,
            payload: payload.map(|p| Payload::Json(JsonText::new(p).unwrap())),
        }
    }

    #[test]
    fn builds_types_under_the_prefix() {
        let types = EventTypes::new(prefix());
        let e = types.read(7, "counter", json!({"result": "SUCCESS"}));
        assert_eq!(
            e.event_type.join("/"),
            "gateway/gw/modbus_master/m/gateway/remote_device/7/read/counter"
        );
        assert!(e.source_timestamp.is_none());
        assert_eq!(
            types.enable_query().join("/"),
            "gateway/gw/modbus_master/m/system/remote_device/?/enable"
        );
    }

    #[test]
    fn parses_enable_with_truthiness() {
        let types = EventTypes::new(prefix());
        for (payload, expected) in [
            ("true", true),
            ("false", false),
            ("1", true),
            ("0", false),
            ("\"x\"", true),
            ("null", false),
            ("{}", false),
        ] {
            let parsed = types.parse_system(&event("system/remote_device/3/enable", Some(payload)));
            assert_eq!(
                parsed,
                Ok(SystemRequest::Enable {
                    device_id: 3,
                    enable: expected
                }),
                "{payload}"
            );
        }
    }

    #[test]
    fn parses_write_and_rejects_malformed() {
        let types = EventTypes::new(prefix());
        let parsed = types.parse_system(&event(
            "system/remote_device/1/write/x",
            Some(r#"{"request_id": 123, "value": 5}"#),
        ));
        assert_eq!(
            parsed,
            Ok(SystemRequest::Write {
                device_id: 1,
                data_name: "x".into(),
                request_id: json!(123),
                value: json!(5)
            })
        );
        for (tail, payload) in [
            ("system/remote_device/abc/enable", Some("true")),
            (
                "system/remote_device/1/write/x",
                Some(r#"{"request_id": "a"}"#),
            ),
            ("system/remote_device/1/write/x", None),
            ("system/remote_device/1/enable", None),
            ("system/remote_device/1/bogus", Some("true")),
            ("system/other", Some("true")),
        ] {
            assert!(types.parse_system(&event(tail, payload)).is_err(), "{tail}");
        }
    }
}
