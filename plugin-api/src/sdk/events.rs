//! Helpers for the event contract: the suffix of an event after the device prefix,
//! child event types, typed JSON payloads, and the connection status pattern.

use gateway_model::{Event, EventType, EventTypePrefix, Payload, RegisterEvent, Timestamp};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::client::{Client, ClientError};
use super::device::Error;

/// The segments of `event_type` after `prefix`, or `None` if it does not start with
/// `prefix`. Match on the result as a slice:
///
/// ```
/// # use gateway_plugin_api::sdk::event_suffix;
/// let prefix = ["gateway", "gw", "thermo", "t1"].map(String::from);
/// let event_type: Vec<String> = "gateway/gw/thermo/t1/system/setpoint"
///     .split('/').map(String::from).collect();
/// assert!(matches!(event_suffix(&prefix, &event_type).as_deref(), Some(["system", "setpoint"])));
/// ```
pub fn event_suffix<'a>(prefix: &[String], event_type: &'a [String]) -> Option<Vec<&'a str>> {
    let rest = event_type.strip_prefix(prefix)?;
    Some(rest.iter().map(String::as_str).collect())
}

/// `parent` followed by the segments of `suffix` (split on `/`; empty segments are
/// kept, as hat keeps them).
pub fn child_event_type(parent: &[String], suffix: &str) -> EventType {
    EventTypePrefix::new(parent.to_vec()).join_path(suffix)
}

/// Why an event's payload could not be decoded. The message names the event type, so
/// a device can log it and go on (see the guide's error policy).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The event has no payload.
    #[error("{event_type}: the event has no payload")]
    Missing {
        /// The event type, `/`-joined.
        event_type: String,
    },
    /// The payload is binary, not JSON.
    #[error("{event_type}: the payload is binary, not JSON")]
    NotJson {
        /// The event type, `/`-joined.
        event_type: String,
    },
    /// The JSON does not have the expected shape.
    #[error("{event_type}: unexpected payload: {reason}")]
    Invalid {
        /// The event type, `/`-joined.
        event_type: String,
        /// serde's description (what was expected, where).
        reason: String,
    },
}

impl From<PayloadError> for Error {
    fn from(err: PayloadError) -> Self {
        Self::new(err.to_string())
    }
}

/// Decodes an event's JSON payload into `T`.
///
/// ```
/// # use gateway_plugin_api::model::{Event, EventId, Payload, Timestamp};
/// # use gateway_plugin_api::sdk::decode_payload;
/// #[derive(serde::Deserialize)]
/// struct Setpoint { value: f64 }
/// # let event = Event { id: EventId::default(), event_type: vec!["x".into()],
/// #     timestamp: Timestamp::now(), source_timestamp: None,
/// #     payload: Some(Payload::json(serde_json::json!({"value": 21.5}))) };
/// let setpoint: Setpoint = decode_payload(&event).unwrap();
/// assert_eq!(setpoint.value, 21.5);
/// ```
pub fn decode_payload<T: DeserializeOwned>(event: &Event) -> Result<T, PayloadError> {
    let event_type = || event.event_type.join("/");
    match &event.payload {
        None => Err(PayloadError::Missing {
            event_type: event_type(),
        }),
        Some(Payload::Binary { .. }) => Err(PayloadError::NotJson {
            event_type: event_type(),
        }),
        Some(Payload::Json(text)) => text.parse().map_err(|err| PayloadError::Invalid {
            event_type: event_type(),
            reason: err.to_string(),
        }),
    }
}

/// A registration with a JSON payload built from any `Serialize` value, and an
/// optional source timestamp (the time the value was measured at the source).
pub fn json_event<T: Serialize + ?Sized>(
    event_type: EventType,
    value: &T,
    source_timestamp: Option<Timestamp>,
) -> Result<RegisterEvent, Error> {
    let value = serde_json::to_value(value)?;
    Ok(RegisterEvent {
        source_timestamp,
        ..RegisterEvent::json(event_type, value)
    })
}

/// The connection status a device reports, as hat-gateway's devices do:
/// `<prefix>/gateway/status` with a JSON string payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionStatus {
    /// Trying to connect.
    Connecting,
    /// Connected.
    Connected,
    /// Not connected (after a failure, or while closing).
    Disconnected,
}

impl ConnectionStatus {
    /// The payload text: `CONNECTING`, `CONNECTED`, `DISCONNECTED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "CONNECTING",
            Self::Connected => "CONNECTED",
            Self::Disconnected => "DISCONNECTED",
        }
    }
}

/// The event-type suffix of the status event (hat-gateway's convention).
pub const STATUS_SUFFIX: &str = "gateway/status";

/// Registers a device's connection status when it changes (a repeated status is not
/// registered again). Cheap to create; keep one per device (or per remote peer, with
/// another suffix).
#[derive(Clone)]
pub struct StatusReporter {
    client: Client,
    event_type: EventType,
    last: std::sync::Arc<std::sync::Mutex<Option<ConnectionStatus>>>,
}

impl std::fmt::Debug for StatusReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusReporter")
            .field("event_type", &self.event_type)
            .finish_non_exhaustive()
    }
}

impl StatusReporter {
    /// Reports on `<prefix>/gateway/status`.
    pub fn new(client: Client) -> Self {
        Self::with_suffix(client, STATUS_SUFFIX)
    }

    /// Reports on `<prefix>/<suffix>` (e.g. `gateway/remote_device/3/status`).
    pub fn with_suffix(client: Client, suffix: &str) -> Self {
        let event_type = child_event_type(client.prefix(), suffix);
        Self {
            client,
            event_type,
            last: Default::default(),
        }
    }

    /// The last status registered, if any.
    pub fn last(&self) -> Option<ConnectionStatus> {
        *self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers `status` unless it is the last one registered. Returns whether it
    /// registered.
    pub async fn set(&self, status: ConnectionStatus) -> Result<bool, ClientError> {
        {
            let mut last = self
                .last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if *last == Some(status) {
                return Ok(false);
            }
            *last = Some(status);
        }
        let event = RegisterEvent::json(
            self.event_type.clone(),
            serde_json::Value::String(status.as_str().to_owned()),
        );
        if let Err(err) = self.client.register(vec![event]).await {
            // Not registered: the next `set` of any status tries again.
            *self
                .last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
            return Err(err);
        }
        Ok(true)
    }
}

impl Client {
    /// The segments of `event_type` after this device's prefix (see
    /// [`event_suffix`]): `match client.suffix(&event.event_type).as_deref() {
    /// Some(["system", "setpoint"]) => ..., _ => ... }`.
    pub fn suffix<'a>(&self, event_type: &'a [String]) -> Option<Vec<&'a str>> {
        event_suffix(self.prefix(), event_type)
    }

    /// The prefix followed by a `/`-separated suffix: `child_type("gateway/data/p0")`.
    pub fn child_type(&self, suffix: &str) -> EventType {
        child_event_type(self.prefix(), suffix)
    }
}
