//! hat-gateway 0.6.48's IEC 60870-5-101 slave (`iec101_slave`) as a gateway-host
//! plugin.
//!
//! The core ([`device::SlaveDevice`]) does not depend on the plugin SDK: it registers
//! events and queries the current values through [`gateway_model::EventClient`] and takes
//! events through [`device::SlaveDevice::process_event`]. Layers: [`config`] (hat's
//! `iec101.yaml#/$defs/slave` and its schema), [`buffer`] (data kept until it was
//! sent) and [`station`] (the answers to a master, without a line), both shared with
//! `iec104_slave` in `iec_common`, [`events`] (event
//! types and payloads), [`line`] (the serial link as the device uses it), [`device`]
//! (the task owning the station), [`plugin`] (the SDK face).

pub use iec_common::buffer;
pub mod config;
pub mod device;
pub mod events;
pub mod line;
pub mod plugin;
pub use iec_common::station;

pub use config::{ConfigError, SlaveConfig, JSON_SCHEMA, JSON_SCHEMA_ID};
pub use device::{CreateError, SlaveDevice};

/// Device type name.
pub const DEVICE_TYPE: &str = "iec101_slave";
