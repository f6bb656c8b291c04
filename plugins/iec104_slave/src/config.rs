//! Device configuration (hat-gateway's `iec104.yaml#/$defs/slave`), its JSON Schema and
//! the semantic checks the schema cannot express.

use std::collections::HashSet;
use std::time::Duration;

pub use iec_common::seconds::secs;
use serde::Deserialize;

/// JSON Schema id of the device configuration (the same id hat-gateway uses).
pub const JSON_SCHEMA_ID: &str = "hat-gateway://iec104.yaml#/$defs/slave";

/// The JSON Schema document (`schemas/iec104_slave.json`), embedded in the plugin.
pub const JSON_SCHEMA: &str = include_str!("../../../schemas/iec104_slave.json");

/// Default of `send_queue_size`: hat-gateway's IEC 101 slave queues 1024 sends per
/// connection before it closes a connection that does not keep up; we do the same.
pub const DEFAULT_SEND_QUEUE_SIZE: usize = 1024;

/// Largest ASDU address of IEC 104 (two octets).
pub const MAX_ASDU_ADDRESS: u32 = 0xFFFF;

/// Largest information object address of IEC 104 (three octets).
pub const MAX_IO_ADDRESS: u32 = 0xFF_FFFF;

/// Largest window size: sequence numbers are modulo 32768, so at most 32767 frames
/// can be outstanding.
pub const MAX_WINDOW_SIZE: u32 = 32767;

/// hat's data type names accepted in `data[].data_type`.
pub const DATA_TYPES: [&str; 12] = [
    "SINGLE",
    "DOUBLE",
    "STEP_POSITION",
    "BITSTRING",
    "NORMALIZED",
    "SCALED",
    "FLOATING",
    "BINARY_COUNTER",
    "PROTECTION",
    "PROTECTION_START",
    "PROTECTION_COMMAND",
    "STATUS",
];

/// Why a configuration was rejected. `pointer` is the JSON pointer of the bad value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The entry does not have the documented shape.
    #[error("invalid iec104_slave configuration: {0}")]
    Shape(String),
    /// A value is well-formed but not acceptable.
    #[error("invalid iec104_slave configuration at {pointer}: {reason}")]
    Invalid {
        /// JSON pointer of the offending value, e.g. `/data/3/buffer`.
        pointer: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The whole device entry (`module` and other extra fields are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct SlaveConfig {
    /// Device name (event-type prefix segment 4); the host always provides it.
    #[serde(default)]
    pub name: String,
    /// Address to listen on.
    pub local_host: String,
    /// TCP port to listen on; 0 picks a free port.
    pub local_port: i64,
    /// Remote addresses allowed to connect; `None`: everyone.
    pub remote_hosts: Option<Vec<String>>,
    /// Connections served at once; `None`: no limit.
    pub max_connections: Option<i64>,
    /// t1, s.
    pub response_timeout: f64,
    /// t2, s.
    pub supervisory_timeout: f64,
    /// t3, s.
    pub test_timeout: f64,
    /// k.
    pub send_window_size: i64,
    /// w.
    pub receive_window_size: i64,
    /// Named buffers for data that must survive until a master acknowledged it.
    pub buffers: Vec<BufferConfig>,
    /// The data points served.
    pub data: Vec<DataConfig>,
    /// Our extension: sends waiting per connection (a spontaneous value, or the whole
    /// answer to one request), and as many again waiting for the next send inside the
    /// connection task; a connection whose queue is full (the master stopped
    /// reading) is closed, as hat's IEC 101 slave does.
    #[serde(default = "default_send_queue_size")]
    pub send_queue_size: usize,
}

fn default_send_queue_size() -> usize {
    DEFAULT_SEND_QUEUE_SIZE
}

/// One `buffers[]` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct BufferConfig {
    /// Referenced by `data[].buffer`.
    pub name: String,
    /// Events kept at most; the oldest is dropped beyond it.
    pub size: i64,
}

/// One `data[]` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct DataConfig {
    /// hat's upper-case data type name (`SINGLE`, ..., `STATUS`).
    pub data_type: String,
    /// ASDU address.
    pub asdu_address: i64,
    /// Information object address.
    pub io_address: i64,
    /// Buffer name, if the point's changes are buffered.
    pub buffer: Option<String>,
}

fn invalid(pointer: String, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        pointer,
        reason: reason.into(),
    }
}

impl SlaveConfig {
    /// Parses and checks a device entry.
    pub fn from_json(conf: &serde_json::Value) -> Result<Self, ConfigError> {
        let config: Self = serde_json::from_value(conf.clone())
            .map_err(|err| ConfigError::Shape(err.to_string()))?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        if !(0..=65535).contains(&self.local_port) {
            return Err(invalid("/local_port".into(), "not a TCP port"));
        }
        if let Some(max) = self.max_connections {
            if max < 0 {
                return Err(invalid("/max_connections".into(), "negative"));
            }
        }
        for (field, value) in [
            ("response_timeout", self.response_timeout),
            ("supervisory_timeout", self.supervisory_timeout),
            ("test_timeout", self.test_timeout),
        ] {
            // Bounded well below what `Instant + Duration` can hold (about 31 years).
            if !(value.is_finite() && value > 0.0 && value <= 1e9) {
                return Err(invalid(
                    format!("/{field}"),
                    "must be a number of seconds above 0 and at most 1e9",
                ));
            }
        }
        for (field, value) in [
            ("send_window_size", self.send_window_size),
            ("receive_window_size", self.receive_window_size),
        ] {
            if !(1..=i64::from(MAX_WINDOW_SIZE)).contains(&value) {
                return Err(invalid(
                    format!("/{field}"),
                    format!("must be between 1 and {MAX_WINDOW_SIZE}"),
                ));
            }
        }
        if self.send_queue_size == 0 {
            return Err(invalid("/send_queue_size".into(), "must be at least 1"));
        }
        let mut names = HashSet::new();
        for (i, buffer) in self.buffers.iter().enumerate() {
            if buffer.size < 0 {
                return Err(invalid(format!("/buffers/{i}/size"), "negative"));
            }
            if !names.insert(buffer.name.as_str()) {
                return Err(invalid(
                    format!("/buffers/{i}/name"),
                    format!("duplicate buffer name {:?}", buffer.name),
                ));
            }
        }
        for (i, data) in self.data.iter().enumerate() {
            if !DATA_TYPES.contains(&data.data_type.as_str()) {
                return Err(invalid(
                    format!("/data/{i}/data_type"),
                    format!("unknown data type {:?}", data.data_type),
                ));
            }
            if !(0..=i64::from(MAX_ASDU_ADDRESS)).contains(&data.asdu_address) {
                return Err(invalid(
                    format!("/data/{i}/asdu_address"),
                    format!("must be between 0 and {MAX_ASDU_ADDRESS}"),
                ));
            }
            if !(0..=i64::from(MAX_IO_ADDRESS)).contains(&data.io_address) {
                return Err(invalid(
                    format!("/data/{i}/io_address"),
                    format!("must be between 0 and {MAX_IO_ADDRESS}"),
                ));
            }
            if let Some(buffer) = &data.buffer {
                if !names.contains(buffer.as_str()) {
                    return Err(invalid(
                        format!("/data/{i}/buffer"),
                        format!("no buffer named {buffer:?}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// t1 as a duration.
    pub fn response_timeout(&self) -> Duration {
        secs(self.response_timeout)
    }

    /// t2 as a duration.
    pub fn supervisory_timeout(&self) -> Duration {
        secs(self.supervisory_timeout)
    }

    /// t3 as a duration.
    pub fn test_timeout(&self) -> Duration {
        secs(self.test_timeout)
    }
}
