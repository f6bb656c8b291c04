//! hat-gateway compatible IEC 60870-5-104 slave device (`iec104_slave`), issue 9.
//!
//! The core ([`device::SlaveDevice`]) does not depend on the plugin SDK: it registers
//! events and queries the current values through [`gateway_model::EventClient`] and takes events
//! through [`device::SlaveDevice::process_event`]. Layers: [`config`] (hat's
//! `iec104.yaml#/$defs/slave` and its schema), [`buffer`] (data kept until a master
//! acknowledged it) and [`station`] (the answers to a master, without sockets), both
//! shared with `iec101_slave` in `iec_common`,
//! [`events`] (event types and payloads), [`connection`] (one task per master),
//! [`device`] (the task owning the station), [`plugin`] (the SDK face).

pub use iec_common::buffer;
pub mod config;
pub mod connection;
pub mod device;
pub mod events;
pub mod plugin;
pub use iec_common::station;

pub use config::{ConfigError, SlaveConfig, JSON_SCHEMA, JSON_SCHEMA_ID};
pub use device::{CreateError, SlaveDevice};

/// Device type name.
pub const DEVICE_TYPE: &str = "iec104_slave";
