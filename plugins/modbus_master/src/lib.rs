//! hat-gateway compatible Modbus master device (`modbus_master`).
//!
//! The core ([`device::MasterDevice`]) does not depend on the plugin SDK: it registers
//! events through the event-client contract ([`gateway_model::EventClient`]) and takes
//! events through
//! [`device::MasterDevice::process_event`]. Layers, bottom up: the shared `modbus` crate
//! (PDU codec, TCP / RTU / ASCII framing, exception codes, two-level replies),
//! [`transport`] (TCP or serial byte stream),
//! [`connection`] (one task per connection: queue, timeouts, retries), [`data`] (read
//! groups and value encoding), [`reader`] (polling one remote device), [`device`].
//!
//! Decisions on the spec's open questions: FC24 uses the standard encoding (Q1; the
//! FIFO count field is not checked, pymodbus 3.8 fills it in bytes); enable payloads
//! keep hat's truthiness (Q2); duplicate `device_id`s or data names fail `create`
//! naming the JSON pointer (Q3); exception codes outside hat's six become error results
//! (`SERVER_DEVICE_BUSY`, ..., `EXCEPTION_<n>`), never a dropped connection (Q4);
//! values are at most 64 bits (Q5); a written value that does not fit its point is
//! answered `INVALID_DATA_VALUE` without touching the wire (Q6).
//!
//! The framing is our own rather than tokio-modbus: tokio-modbus has no ASCII framing
//! and no FC24, and its client treats a late response after a timeout as an error on
//! the next request (tokio-modbus issue 324). Here every attempt flushes stale input,
//! takes a fresh transaction id, and skips responses that do not match it.

pub mod config;
pub mod connection;
pub mod data;
pub mod device;
pub mod events;
pub mod plugin;
pub mod reader;
pub mod transport;

pub use config::{ConfigError, JSON_SCHEMA, JSON_SCHEMA_ID};
pub use device::MasterDevice;

/// Device type name.
pub const DEVICE_TYPE: &str = "modbus_master";
