//! Device configuration (hat-gateway's `iec103.yaml#/$defs/master`), its JSON Schema
//! and the checks the schema cannot express.

use std::time::Duration;

use iec_common::seconds::check_seconds;
pub use iec_common::seconds::secs;
pub use iec_common::serial::{ByteSize, FlowControl, Parity, SerialConfig, StopBits};
use serde::Deserialize;

/// JSON Schema id of the device configuration (the same id hat-gateway uses).
pub const JSON_SCHEMA_ID: &str = "hat-gateway://iec103.yaml#/$defs/master";

/// The JSON Schema document (`schemas/iec103_master.json`), embedded in the plugin.
pub const JSON_SCHEMA: &str = include_str!("../../../schemas/iec103_master.json");

/// Default wait for the answer to a command, s (hat's module constant
/// `command_timeout`).
pub const DEFAULT_COMMAND_TIMEOUT: f64 = 100.0;

/// Default wait for the end of a general interrogation, s (hat's module constant
/// `interrogate_timeout`).
pub const DEFAULT_INTERROGATE_TIMEOUT: f64 = 100.0;

/// Default of the ASDUs waiting per remote device to be sent or registered (hat's link
/// queues hold 1024).
pub const DEFAULT_QUEUE_SIZE: usize = 1024;

/// Why a configuration was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The entry does not have the documented shape.
    #[error("invalid iec103_master configuration: {0}")]
    Shape(String),
    /// A value is well-formed but not acceptable.
    #[error("invalid iec103_master configuration at {pointer}: {reason}")]
    Invalid {
        /// JSON pointer of the offending value, e.g. `/remote_devices/1/address`.
        pointer: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// One `remote_devices[]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RemoteDeviceConfig {
    /// Link address of the protection device (one octet: hat's 103 master uses a link
    /// address size of ONE).
    pub address: u16,
    /// Wait for a link response, s.
    pub response_timeout: f64,
    /// Repetitions of an unanswered request.
    pub send_retry_count: u32,
    /// Period of class 1 polls, s; `None`: no class 1 polling.
    pub poll_class1_delay: Option<f64>,
    /// Period of class 2 polls, s; `None`: no class 2 polling.
    pub poll_class2_delay: Option<f64>,
    /// Pause before connecting again, s.
    pub reconnect_delay: f64,
    /// Period of clock synchronisation, s; `None`: none.
    pub time_sync_delay: Option<f64>,
}

/// The whole device entry (`module` and other extra fields are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct MasterConfig {
    /// Device name.
    pub name: String,
    /// Serial port and line settings.
    #[serde(flatten)]
    pub serial: SerialConfig,
    /// Pause before reopening the port, s.
    pub reconnect_delay: f64,
    /// The protection devices on the line.
    pub remote_devices: Vec<RemoteDeviceConfig>,
    /// Extension: wait for a command's answer, s (default
    /// [`DEFAULT_COMMAND_TIMEOUT`]).
    #[serde(default)]
    pub command_timeout: Option<f64>,
    /// Extension: wait for the end of a general interrogation, s (default
    /// [`DEFAULT_INTERROGATE_TIMEOUT`]).
    #[serde(default)]
    pub interrogate_timeout: Option<f64>,
    /// Extension: ASDUs waiting per remote device to be sent (default
    /// [`DEFAULT_QUEUE_SIZE`]).
    #[serde(default)]
    pub send_queue_size: Option<usize>,
    /// Extension: received ASDUs waiting per remote device (default
    /// [`DEFAULT_QUEUE_SIZE`]).
    #[serde(default)]
    pub receive_queue_size: Option<usize>,
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
        let invalid = |pointer: String, reason| ConfigError::Invalid { pointer, reason };
        for (field, value) in [
            ("silent_interval", Some(self.serial.silent_interval)),
            ("reconnect_delay", Some(self.reconnect_delay)),
            ("command_timeout", self.command_timeout),
            ("interrogate_timeout", self.interrogate_timeout),
        ] {
            if let Some(value) = value {
                check_seconds(value).map_err(|r| invalid(format!("/{field}"), r))?;
            }
        }
        if self.serial.baudrate == 0 {
            return Err(invalid("/baudrate".into(), "must be at least 1"));
        }
        for (field, value) in [
            ("send_queue_size", self.send_queue_size),
            ("receive_queue_size", self.receive_queue_size),
        ] {
            if value == Some(0) {
                return Err(invalid(format!("/{field}"), "must be at least 1"));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, remote) in self.remote_devices.iter().enumerate() {
            let at = |field: &str| format!("/remote_devices/{i}/{field}");
            if remote.address > 254 {
                return Err(invalid(
                    at("address"),
                    "must be between 0 and 254 (one octet; 255 is the broadcast address)",
                ));
            }
            if !seen.insert(remote.address) {
                return Err(invalid(at("address"), "duplicate remote device address"));
            }
            for (field, value) in [
                ("response_timeout", Some(remote.response_timeout)),
                ("poll_class1_delay", remote.poll_class1_delay),
                ("poll_class2_delay", remote.poll_class2_delay),
                ("reconnect_delay", Some(remote.reconnect_delay)),
                ("time_sync_delay", remote.time_sync_delay),
            ] {
                if let Some(value) = value {
                    check_seconds(value).map_err(|r| invalid(at(field), r))?;
                }
            }
        }
        Ok(())
    }

    /// Wait for a command's answer.
    pub fn command_timeout(&self) -> Duration {
        secs(self.command_timeout.unwrap_or(DEFAULT_COMMAND_TIMEOUT))
    }

    /// Wait for the end of a general interrogation.
    pub fn interrogate_timeout(&self) -> Duration {
        secs(
            self.interrogate_timeout
                .unwrap_or(DEFAULT_INTERROGATE_TIMEOUT),
        )
    }

    /// ASDUs waiting per remote device to be sent.
    pub fn send_queue_size(&self) -> usize {
        self.send_queue_size.unwrap_or(DEFAULT_QUEUE_SIZE)
    }

    /// Received ASDUs waiting per remote device.
    pub fn receive_queue_size(&self) -> usize {
        self.receive_queue_size.unwrap_or(DEFAULT_QUEUE_SIZE)
    }
}
