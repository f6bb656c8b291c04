//! hat-gateway compatible IEC 60870-5-103 master device (`iec103_master`).
//!
//! The core ([`device::MasterDevice`]) does not depend on the plugin SDK: it registers
//! events through [`gateway_model::EventClient`] and takes events through
//! [`device::MasterDevice::process_event`]; the serial link is behind
//! [`link::LinkOpener`]. [`config`] is hat's `iec103.yaml#/$defs/master`, [`events`]
//! maps ASDUs to events and events to requests. The protocol is `gateway-iec60870`'s
//! [`iec60870::iec103`] codec over `gateway-iec-link`'s unbalanced master link.
//!
//! Behaviour follows hat-gateway 0.6.48's master:
//! - `gateway/status`: `CONNECTING` while the port opens, `CONNECTED` once open,
//!   `DISCONNECTED` when it fails to open or closes; reopened after `reconnect_delay`.
//! - Remote devices start disabled; the start-up query reads the latest
//!   `system/remote_device/<address>/enable` events; an enabled remote device's loop
//!   runs while the port is open: `CONNECTING` until its link is reset, `CONNECTED`,
//!   `DISCONNECTED` when it stops answering (after the link's retries), then at once
//!   `CONNECTING` again (after `reconnect_delay` when opening failed). Disabling ends
//!   the loop with `DISCONNECTED`. Unlike hat, when the port closes the remote devices
//!   stop (each `DISCONNECTED`) and start again once it is reopened, instead of
//!   failing to connect on a closed link every `reconnect_delay`.
//! - Data: time-tagged messages (types 1 and 2) as `double` with a source timestamp
//!   from their CP32 time; measurands I and II as one event per measurand
//!   (`m1_i_l2`, ..., `m2_f`). Type 4 has no event in hat (logged and skipped).
//! - Commands: one at a time per remote device, answered by a time-tagged message
//!   with cause GENERAL_COMMAND (success) or GENERAL_COMMAND_NACK carrying the return
//!   identifier; general interrogations end at the termination with their scan
//!   number. Both give up after their timeout (hat's 100 s, configurable) without an
//!   event.
//! - An ASDU of an unknown type is logged and skipped; a malformed one ends the
//!   remote device's connection; octets after the last object are ignored (all as
//!   hat's master does).

pub mod config;
pub mod device;
pub mod events;
pub mod link;
pub mod plugin;
pub mod serial;

pub use config::{ConfigError, MasterConfig, JSON_SCHEMA, JSON_SCHEMA_ID};
pub use device::{CreateError, MasterDevice};

/// Device type name.
pub const DEVICE_TYPE: &str = "iec103_master";
