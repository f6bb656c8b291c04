//! hat-gateway 0.6.48's IEC 60870-5-101 master (`iec101_master`) as a gateway-host
//! plugin.
//!
//! [`config`] is hat's `iec101.yaml#/$defs/master`, [`events`] maps messages to events
//! and back (payloads from `iec_common`).

pub mod config;
pub mod events;

pub use config::{ConfigError, MasterConfig, JSON_SCHEMA, JSON_SCHEMA_ID};

/// Device type name.
pub const DEVICE_TYPE: &str = "iec101_master";
