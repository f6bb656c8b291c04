//! hat-gateway compatible IEC 60870-5-104 slave device (`iec104_slave`), issue 9.
//!
//! Layers: [`config`] (hat's `iec104.yaml#/$defs/slave` and its schema), [`buffer`]
//! (data kept until a master acknowledged it).

pub mod buffer;
pub mod config;

pub use config::{ConfigError, SlaveConfig, JSON_SCHEMA, JSON_SCHEMA_ID};

/// Device type name.
pub const DEVICE_TYPE: &str = "iec104_slave";
