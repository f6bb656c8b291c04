//! hat-gateway 0.6.48's IEC 60870-5-101 slave (`iec101_slave`) as a gateway-host
//! plugin.
//!
//! Layers: [`config`] (hat's `iec101.yaml#/$defs/slave` and its schema), [`buffer`]
//! (data kept until it was sent), [`station`] (the answers to a master, without a
//! line), [`events`] (event types and payloads).

pub mod buffer;
pub mod config;
pub mod events;
pub mod station;

pub use config::{ConfigError, SlaveConfig, JSON_SCHEMA, JSON_SCHEMA_ID};

/// Device type name.
pub const DEVICE_TYPE: &str = "iec101_slave";
