//! hat-gateway 0.6.48's IEC 60870-5-101 master (`iec101_master`) as a gateway-host
//! plugin.
//!
//! The core ([`device::MasterDevice`]) does not depend on the plugin SDK: it registers
//! and queries through [`gateway_model::EventClient`] and takes events through
//! [`device::MasterDevice::process_event`]. [`config`] is hat's
//! `iec101.yaml#/$defs/master`, [`events`] maps messages to events and back (payloads
//! from `iec_common`), [`line`] is the serial link as the device uses it, [`plugin`]
//! exports the device.
//!
//! Behaviour follows hat-gateway 0.6.48's master (see the crate README for where we
//! differ and why): the port is opened (`gateway/status`), every enabled remote device
//! gets its link connection (`gateway/remote_device/<address>/status`), its received
//! data become events, `system/remote_device/<address>/...` events become commands and
//! interrogations, `system/remote_device/<address>/enable` starts and stops it.

pub mod config;
pub mod device;
pub mod events;
pub mod line;
pub mod plugin;

pub use config::{ConfigError, MasterConfig, JSON_SCHEMA, JSON_SCHEMA_ID};
pub use device::{CreateError, MasterDevice, Status};

/// Device type name.
pub const DEVICE_TYPE: &str = "iec101_master";
