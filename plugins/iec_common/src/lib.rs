//! hat-gateway's IEC 60870-5 device pieces shared by the 101, 103 and 104 plugins:
//! the Rust counterpart of `hat/gateway/devices/iec101/common.py`.
//!
//! [`keys`]: data and command types and keys, and the event types built from and parsed
//! into them; [`payload`]: data and command values as hat's JSON; [`cause`]: causes of
//! transmission as JSON; [`time`]: time tags to and from source timestamps; [`client`]:
//! the start-up query over the event-client contract; [`station`] and [`buffer`]: the
//! slaves' answers to a master and data buffers, without sockets or a line; [`serial`]:
//! the serial line settings, field sizes and link direction of the 101 and 103 devices'
//! configurations, and their link-layer parameters; [`seconds`]: configured seconds,
//! checked and as durations.
//!
//! Everything else here is pure: no sockets, no SDK ([`serial`] only builds the link
//! layer's parameter values). Payloads that do not have hat's shape are
//! [`PayloadError`]s naming the JSON pointer of the bad value.

pub mod buffer;
pub mod cause;
pub mod client;
pub mod keys;
pub mod payload;
pub mod seconds;
pub mod serial;
pub mod station;
pub mod time;

pub use cause::*;
pub use keys::{CommandKey, CommandType, DataKey, DataType, Direction, EventKey};
pub use payload::{command_from_json, command_to_json, data_from_json, data_to_json};
pub use time::{
    time_from_source_timestamp, time_from_timestamp, time_now, time_to_source_timestamp,
    time_to_timestamp,
};

/// Why an event (type or payload) could not be turned into a message, or a message into
/// an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The event type is not one the device handles.
    #[error("event type: {0}")]
    EventType(&'static str),
    /// A payload value does not have hat's shape.
    #[error("payload at {pointer}: {reason}")]
    Invalid {
        /// JSON pointer of the bad value (`/` for the whole payload).
        pointer: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A time tag that does not name an instant.
    #[error("time tag: {0}")]
    Time(&'static str),
}
