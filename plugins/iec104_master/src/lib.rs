//! hat-gateway compatible IEC 60870-5-104 master device (`iec104_master`).
//!
//! The core ([`device::MasterDevice`]) does not depend on the plugin SDK: it registers
//! events through [`gateway_model::EventClient`] and takes events through
//! [`device::MasterDevice::process_event`]. [`config`] is hat's `iec104.yaml#/$defs/master`,
//! [`events`] maps messages to events and back (payloads from `iec_common`), [`plugin`]
//! exports the device. The protocol is `gateway-iec60870` (ASDUs) and `gateway-iec104`
//! (connections).
//!
//! Behaviour follows hat-gateway 0.6.48's master: addresses tried in turn; after every
//! address failed, `DISCONNECTED` and `reconnect_delay`; after a connection ends,
//! `DISCONNECTED` and at once `CONNECTING` again, unless it lasted less than
//! `reconnect_delay` (an outstation that accepts and drops at once): then the rest of
//! `reconnect_delay` first, where hat would reconnect in a tight loop. An ASDU of an unknown type is logged
//! and skipped; a malformed one is logged and ends the connection. A message that has
//! no event (an impossible time tag, an unsupported kind) is logged and skipped.
//! `system/...` events with a bad type or payload, or arriving while disconnected, are
//! logged and ignored. Events of one wakeup of the receive loop are registered in one
//! call.

pub mod config;
pub mod device;
pub mod events;
pub mod plugin;

pub use config::{ConfigError, MasterConfig, JSON_SCHEMA, JSON_SCHEMA_ID};
pub use device::{CreateError, MasterDevice, Status};

/// Device type name.
pub const DEVICE_TYPE: &str = "iec104_master";
