//! hat-gateway compatible Modbus slave device (`modbus_slave`, hat-gateway 0.6.48's
//! `hat/gateway/devices/modbus/slave.py`).
//!
//! The core ([`device::SlaveDevice`]) does not depend on the plugin SDK: it registers
//! and queries through the event-client contract ([`gateway_model::EventClient`]) and
//! takes events through
//! [`device::SlaveDevice::process_event`]. Layers, bottom up: the shared `modbus` crate
//! (request decoding, response encoding, TCP / RTU / ASCII framing), [`data`] (the
//! table entries of the configured points and what each request does to them),
//! [`transport`] (one task per TCP connection, one for the serial port), [`device`]
//! (connection table, write round trips), [`plugin`] (the SDK face).
//!
//! Behaviour follows hat: values come from `system/data/<name>` (the latest of each
//! at start, so a master's first read returns current values); a master's write
//! becomes `gateway/write` and is answered when `system/write` arrives (success: the
//! normal echo; failure or no answer within `response_timeout`: exception 4); the table
//! itself changes only through `system/data`. Unit id 0 and unknown unit ids are
//! answered `ILLEGAL_DATA_ADDRESS` on TCP and not at all on serial.
//!
//! Decisions where hat 0.6.48 has no answer or fails: malformed requests get the
//! standard exception (illegal function / data address / data value; hat drops them
//! silently); FC23 is served (write, then read; hat has no FC23); a `QUEUE` point is
//! kept like a register and FC24 answers the one register at the FIFO address (hat's
//! read path; its create fails on any `QUEUE` point); a serial master is forgotten
//! after `keep_alive_timeout` but the port stays open (hat reopens it).

pub mod config;
pub mod data;
pub mod device;
pub mod events;
pub mod plugin;
pub mod transport;

#[cfg(test)]
mod data_tests;

pub use config::{JSON_SCHEMA, JSON_SCHEMA_ID};
pub use device::{CreateError, SlaveDevice};

/// Device type name.
pub const DEVICE_TYPE: &str = "modbus_slave";
