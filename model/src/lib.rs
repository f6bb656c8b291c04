//! The hat-event 0.9 data model: event types, ids, timestamps, payloads, status,
//! query parameters and results, and subscription matching.
//!
//! This crate is the single home of these types. The Eventer wire codec
//! (`gateway-eventer`), the host and the plugin API all use them, so a value read
//! off the wire reaches a device without being copied into another shape.

pub mod client;
mod prefix;
mod subscription;
mod time;

pub use client::{ClientError, EventClient, Notification};
pub use prefix::EventTypePrefix;
pub use subscription::{
    query_type_matches, validate_query_type, InvalidQueryType, Subscription, SubscriptionTrie,
};
pub use time::Timestamp;

use std::fmt;

/// One segment list, e.g. `["gateway", "gw1", "sim", "s1", "system", "enable"]`.
///
/// Segments are arbitrary UTF-8; in query types `?` and a final `*` are wildcards.
pub type EventType = Vec<String>;

/// Formats an event type as the slash-separated text operators use on the CLI.
pub fn event_type_to_string(event_type: &[String]) -> String {
    event_type.join("/")
}

/// Parses slash-separated text (`gateway/gw1/sim/s1/system/enable`) into an event type.
///
/// The empty string is the empty event type.
pub fn event_type_from_str(text: &str) -> EventType {
    if text.is_empty() {
        Vec::new()
    } else {
        text.split('/').map(str::to_owned).collect()
    }
}

/// `(server, session, instance)`, assigned by the event server. Ordered lexicographically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EventId {
    /// Server id from the event server's configuration.
    pub server: i64,
    /// Processing session, starting at 1 (0 = before the first session).
    pub session: i64,
    /// Number within the session, starting at 1.
    pub instance: i64,
}

/// JSON text that is known to be valid JSON.
///
/// Payloads stay text on their way through the gateway (the wire and the plugin
/// boundary both carry text), so they are validated once and parsed only by whoever
/// needs the value. Equality compares the text; use [`JsonText::value`] to compare by
/// meaning.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct JsonText(String);

/// The text given as a JSON payload is not valid JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON payload text: {reason}")]
pub struct InvalidJson {
    /// What serde_json said about it.
    pub reason: String,
}

impl JsonText {
    /// Validates `text` as JSON (any formatting is accepted).
    pub fn new(text: impl Into<String>) -> Result<Self, InvalidJson> {
        let text = text.into();
        match serde_json::from_str::<serde::de::IgnoredAny>(&text) {
            Ok(_) => Ok(Self(text)),
            Err(err) => Err(InvalidJson {
                reason: err.to_string(),
            }),
        }
    }

    /// Wraps text without validating it. The caller guarantees it is valid JSON
    /// (for example because it was produced by serde_json).
    pub fn new_unchecked(text: String) -> Self {
        Self(text)
    }

    /// Serializes a value. NaN and infinite floats cannot occur: serde_json's
    /// `Value` cannot hold them.
    pub fn from_value(value: &serde_json::Value) -> Self {
        Self(value.to_string())
    }

    /// Serializes any serde value.
    pub fn serialize<T: serde::Serialize + ?Sized>(value: &T) -> Result<Self, InvalidJson> {
        serde_json::to_string(value)
            .map(Self)
            .map_err(|err| InvalidJson {
                reason: err.to_string(),
            })
    }

    /// The JSON text as it was given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Takes the text out.
    pub fn into_string(self) -> String {
        self.0
    }

    /// Parses the text into a JSON value.
    pub fn value(&self) -> serde_json::Value {
        // The text was validated on construction, so parsing cannot fail; a
        // `new_unchecked` caller that broke the contract gets `null`.
        serde_json::from_str(&self.0).unwrap_or(serde_json::Value::Null)
    }

    /// Deserializes the text into any serde type.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.0)
    }
}

impl fmt::Debug for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JsonText({})", self.0)
    }
}

impl fmt::Display for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<serde_json::Value> for JsonText {
    fn from(value: serde_json::Value) -> Self {
        Self::from_value(&value)
    }
}

/// An event payload: JSON text, or opaque bytes with an application-chosen type label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// `binary` (SBS choice index 0).
    Binary {
        /// Free-form label chosen by the application (may be empty).
        type_name: String,
        /// Opaque bytes.
        data: Vec<u8>,
    },
    /// `json` (SBS choice index 1): JSON text.
    Json(JsonText),
}

impl Payload {
    /// A JSON payload holding `value`.
    pub fn json(value: serde_json::Value) -> Self {
        Self::Json(JsonText::from_value(&value))
    }

    /// The JSON value when this is a JSON payload.
    pub fn json_value(&self) -> Option<serde_json::Value> {
        match self {
            Self::Json(text) => Some(text.value()),
            Self::Binary { .. } => None,
        }
    }
}

/// An event as the server stored and notified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Assigned by the server.
    pub id: EventId,
    /// The event type.
    pub event_type: EventType,
    /// Server time of the processing session.
    pub timestamp: Timestamp,
    /// Optional time given by the source.
    pub source_timestamp: Option<Timestamp>,
    /// Optional payload.
    pub payload: Option<Payload>,
}

/// What a client asks the server to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterEvent {
    /// The event type (should not contain wildcards).
    pub event_type: EventType,
    /// Optional time given by the source.
    pub source_timestamp: Option<Timestamp>,
    /// Optional payload.
    pub payload: Option<Payload>,
}

impl RegisterEvent {
    /// An event with a JSON payload and no source timestamp.
    pub fn json(event_type: EventType, value: serde_json::Value) -> Self {
        Self {
            event_type,
            source_timestamp: None,
            payload: Some(Payload::json(value)),
        }
    }
}

/// Event server status (SBS choice order: standby, starting, operational, stopping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Index 0.
    Standby,
    /// Index 1.
    Starting,
    /// Index 2.
    Operational,
    /// Index 3.
    Stopping,
}

impl Status {
    /// Lower-case name as hat uses it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standby => "standby",
            Self::Starting => "starting",
            Self::Operational => "operational",
            Self::Stopping => "stopping",
        }
    }
}

/// Result order of a timeseries query (SBS choice order: descending, ascending).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Order {
    /// Index 0; hat's default.
    #[default]
    Descending,
    /// Index 1.
    Ascending,
}

/// Which timestamp a timeseries query orders and filters by (timestamp, sourceTimestamp).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OrderBy {
    /// Index 0; hat's default.
    #[default]
    Timestamp,
    /// Index 1.
    SourceTimestamp,
}

/// `latest`: the newest event of each matching type.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryLatestParams {
    /// Query types (wildcards allowed); `None` = all types.
    pub event_types: Option<Vec<EventType>>,
}

/// `timeseries`: events in a time range, ordered, paged.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryTimeseriesParams {
    /// Query types; `None` = all.
    pub event_types: Option<Vec<EventType>>,
    /// Inclusive lower bound on `timestamp`.
    pub t_from: Option<Timestamp>,
    /// Inclusive upper bound on `timestamp`.
    pub t_to: Option<Timestamp>,
    /// Inclusive lower bound on `source_timestamp`.
    pub source_t_from: Option<Timestamp>,
    /// Inclusive upper bound on `source_timestamp`.
    pub source_t_to: Option<Timestamp>,
    /// Result order.
    pub order: Order,
    /// Ordering key.
    pub order_by: OrderBy,
    /// Result limit (the server caps it further).
    pub max_results: Option<i64>,
    /// Pagination cursor: results after this event.
    pub last_event_id: Option<EventId>,
}

/// `server`: events of one server in ascending id order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryServerParams {
    /// Server whose events are wanted.
    pub server_id: i64,
    /// Only events already written to storage.
    pub persisted: bool,
    /// Result limit.
    pub max_results: Option<i64>,
    /// Results strictly after this event.
    pub last_event_id: Option<EventId>,
}

/// Query parameters (SBS choice order: latest, timeseries, server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryParams {
    /// Index 0.
    Latest(QueryLatestParams),
    /// Index 1.
    Timeseries(QueryTimeseriesParams),
    /// Index 2.
    Server(QueryServerParams),
}

/// Query result.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryResult {
    /// Matching events.
    pub events: Vec<Event>,
    /// True when the result was cut off by the limit.
    pub more_follows: bool,
}
