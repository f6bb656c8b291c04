//! hat-gateway compatible Modbus master device (`modbus_master`).
//!
//! The core ([`device::MasterDevice`]) does not depend on the plugin SDK: it registers
//! events through [`device::EventSink`] and takes events through
//! [`device::MasterDevice::process_event`]. Layers, bottom up: [`pdu`] (function codes),
//! [`framing`] (TCP / RTU / ASCII ADUs), [`transport`] (TCP or serial byte stream),
//! [`connection`] (one task per connection: queue, timeouts, retries), [`data`] (read
//! groups and value encoding), [`reader`] (polling one remote device), [`device`].

pub mod config;
pub mod connection;
pub mod data;
pub mod device;
pub mod events;
pub mod framing;
pub mod pdu;
pub mod plugin;
pub mod reader;
pub mod transport;

pub use config::{JSON_SCHEMA, JSON_SCHEMA_ID};
pub use device::{CreateError, EventSink, MasterDevice, SinkError};

/// Device type name.
pub const DEVICE_TYPE: &str = "modbus_master";
