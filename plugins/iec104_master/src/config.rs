//! Device configuration (hat-gateway's `iec104.yaml#/$defs/master`), its JSON Schema
//! and the checks the schema cannot express.

use iec_common::seconds::check_seconds;
pub use iec_common::seconds::secs;
use serde::Deserialize;

/// JSON Schema id of the device configuration (the same id hat-gateway uses).
pub const JSON_SCHEMA_ID: &str = "hat-gateway://iec104.yaml#/$defs/master";

/// The JSON Schema document (`schemas/iec104_master.json`), embedded in the plugin.
pub const JSON_SCHEMA: &str = include_str!("../../../schemas/iec104_master.json");

/// Default upper bound of one TCP connect (hat has none: the operating system's
/// applies, minutes); an extension field overrides it.
pub const DEFAULT_CONNECT_TIMEOUT: f64 = 10.0;

/// Default of the most ASDUs registered in one call: the receive loop takes every ASDU
/// already received, up to this many, and registers their events together (one register
/// per wakeup, not per point), so a burst costs few event-server round trips while one
/// call's size and latency stay bounded.
pub const DEFAULT_REGISTER_BATCH_SIZE: usize = 256;

/// Why a configuration was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The entry does not have the documented shape.
    #[error("invalid iec104_master configuration: {0}")]
    Shape(String),
    /// A value is well-formed but not acceptable.
    #[error("invalid iec104_master configuration at {pointer}: {reason}")]
    Invalid {
        /// JSON pointer of the offending value, e.g. `/remote_addresses/1/port`.
        pointer: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// One `remote_addresses[]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RemoteAddress {
    /// Host name or address of the outstation.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// The whole device entry (`module` and other extra fields are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct MasterConfig {
    /// Device name.
    pub name: String,
    /// Outstations, tried in turn at every (re)connection.
    pub remote_addresses: Vec<RemoteAddress>,
    /// t1, s.
    pub response_timeout: f64,
    /// t2, s.
    pub supervisory_timeout: f64,
    /// t3, s.
    pub test_timeout: f64,
    /// k.
    pub send_window_size: u16,
    /// w.
    pub receive_window_size: u16,
    /// Pause after every address failed, s.
    pub reconnect_delay: f64,
    /// Period of clock synchronisation, s; `None`: no clock synchronisation.
    pub time_sync_delay: Option<f64>,
    /// Extension: upper bound of one TCP connect, s.
    #[serde(default)]
    pub connect_timeout: Option<f64>,
    /// Extension: ASDUs waiting to be sent (default `iec104::DEFAULT_SEND_QUEUE_SIZE`).
    #[serde(default)]
    pub send_queue_size: Option<usize>,
    /// Extension: received ASDUs waiting to be registered (default
    /// `iec104::DEFAULT_RECEIVE_QUEUE_SIZE`).
    #[serde(default)]
    pub receive_queue_size: Option<usize>,
    /// Extension: most received ASDUs registered in one call (default
    /// [`DEFAULT_REGISTER_BATCH_SIZE`]).
    #[serde(default)]
    pub register_batch_size: Option<usize>,
}

impl MasterConfig {
    /// Parses and checks a device entry.
    pub fn from_json(conf: &serde_json::Value) -> Result<Self, ConfigError> {
        let parsed: Self = serde_json::from_value(conf.clone())
            .map_err(|err| ConfigError::Shape(err.to_string()))?;
        parsed.validate()?;
        Ok(parsed)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |pointer: &str, reason| ConfigError::Invalid {
            pointer: pointer.to_owned(),
            reason,
        };
        for (field, value) in [
            ("response_timeout", Some(self.response_timeout)),
            ("supervisory_timeout", Some(self.supervisory_timeout)),
            ("test_timeout", Some(self.test_timeout)),
            ("reconnect_delay", Some(self.reconnect_delay)),
            ("time_sync_delay", self.time_sync_delay),
            ("connect_timeout", self.connect_timeout),
        ] {
            if let Some(value) = value {
                check_seconds(value).map_err(|r| invalid(&format!("/{field}"), r))?;
            }
        }
        for (field, value) in [
            ("send_window_size", self.send_window_size),
            ("receive_window_size", self.receive_window_size),
        ] {
            if !(1..=32767).contains(&value) {
                return Err(invalid(&format!("/{field}"), "must be between 1 and 32767"));
            }
        }
        for (field, value) in [
            ("send_queue_size", self.send_queue_size),
            ("receive_queue_size", self.receive_queue_size),
            ("register_batch_size", self.register_batch_size),
        ] {
            if value == Some(0) {
                return Err(invalid(&format!("/{field}"), "must be at least 1"));
            }
        }
        for (i, address) in self.remote_addresses.iter().enumerate() {
            if address.port == 0 {
                return Err(invalid(
                    &format!("/remote_addresses/{i}/port"),
                    "must not be 0",
                ));
            }
        }
        Ok(())
    }

    /// Most received ASDUs registered in one call.
    pub fn register_batch_size(&self) -> usize {
        self.register_batch_size
            .unwrap_or(DEFAULT_REGISTER_BATCH_SIZE)
    }

    /// The connection layer's settings.
    pub fn connection(&self) -> iec104::ConnectionConfig {
        let defaults = iec104::ConnectionConfig::default();
        iec104::ConnectionConfig {
            response_timeout: secs(self.response_timeout),
            supervisory_timeout: secs(self.supervisory_timeout),
            test_timeout: secs(self.test_timeout),
            send_window_size: self.send_window_size,
            receive_window_size: self.receive_window_size,
            connect_timeout: secs(self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT)),
            send_queue_size: self.send_queue_size.unwrap_or(defaults.send_queue_size),
            receive_queue_size: self
                .receive_queue_size
                .unwrap_or(defaults.receive_queue_size),
        }
    }
}
