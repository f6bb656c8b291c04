//! Device configuration (hat-gateway's `iec101.yaml#/$defs/slave`), its JSON Schema
//! and the checks the schema cannot express.

use std::collections::HashSet;

use iec60870::asdu::{AsduAddressSize, FieldSizes, IoAddressSize};
use iec_common::seconds::check_seconds;
pub use iec_common::seconds::secs;
pub use iec_common::serial::{
    ByteSize, FlowControl, LinkDirection, Parity, SerialConfig, Size, StopBits,
};
use iec_common::DataType;
use serde::Deserialize;

/// JSON Schema id of the device configuration (the same id hat-gateway uses).
pub const JSON_SCHEMA_ID: &str = "hat-gateway://iec101.yaml#/$defs/slave";

/// The JSON Schema document (`schemas/iec101_slave.json`), embedded in the plugin.
pub const JSON_SCHEMA: &str = include_str!("../../../schemas/iec101_slave.json");

/// Default of `send_queue_size`: hat-gateway's IEC 101 slave queues 1024 sends per
/// connection before it closes a connection that does not keep up.
pub const DEFAULT_SEND_QUEUE_SIZE: usize = 1024;

/// Why a configuration was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The entry does not have the documented shape.
    #[error("invalid iec101_slave configuration: {0}")]
    Shape(String),
    /// A value is well-formed but not acceptable.
    #[error("invalid iec101_slave configuration at {pointer}: {reason}")]
    Invalid {
        /// JSON pointer of the offending value, e.g. `/data/3/buffer`.
        pointer: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// One `devices[]` entry of a balanced link.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BalancedDevice {
    /// Direction of our frames.
    pub direction: LinkDirection,
    /// Link address of the remote station.
    pub address: u32,
    /// Wait for a link response (s).
    pub response_timeout: f64,
    /// Repetitions of an unanswered request.
    pub send_retry_count: u32,
    /// Period of link status requests while idle (s).
    pub status_delay: f64,
    /// Pause before connecting again (s).
    pub reconnect_delay: f64,
}

/// One `devices[]` entry of an unbalanced link: a link address we answer as.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct UnbalancedDevice {
    /// Our link address.
    pub address: u32,
    /// The connection closes when the master has not polled for this long (s).
    pub keep_alive_timeout: f64,
    /// Pause before serving the address again (s).
    pub reconnect_delay: f64,
}

/// `link_type` with its device address size and devices.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "link_type", rename_all = "UPPERCASE")]
pub enum Link {
    /// Balanced transmission.
    Balanced {
        /// Link address size (`ZERO`, `ONE`, `TWO`).
        device_address_size: Size,
        /// The connections.
        devices: Vec<BalancedDevice>,
    },
    /// Unbalanced transmission: a master polls us.
    Unbalanced {
        /// Link address size (`ONE`, `TWO`).
        device_address_size: Size,
        /// The addresses we answer as.
        devices: Vec<UnbalancedDevice>,
    },
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
    /// Whether a change is sent with a link confirmation (SEND/CONFIRM) rather than
    /// without one.
    pub with_ack: bool,
}

/// The whole device entry (`module` and other extra fields are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct SlaveConfig {
    /// Device name (event-type prefix segment 4); the host always provides it.
    #[serde(default)]
    pub name: String,
    /// Serial port and line settings.
    #[serde(flatten)]
    pub serial: SerialConfig,
    /// Cause of transmission size (`ONE`, `TWO`).
    pub cause_size: Size,
    /// Common address size (`ONE`, `TWO`).
    pub asdu_address_size: Size,
    /// Information object address size (`ONE`, `TWO`, `THREE`).
    pub io_address_size: Size,
    /// Named buffers for data that must survive until a master took it.
    pub buffers: Vec<BufferConfig>,
    /// The data points served.
    pub data: Vec<DataConfig>,
    /// Link type, address size and devices.
    #[serde(flatten)]
    pub link: Link,
    /// Our extension: sends waiting per connection (a spontaneous value, or one batch
    /// of an answer); a connection whose queue is full is closed, as hat's does.
    #[serde(default = "default_send_queue_size")]
    pub send_queue_size: usize,
}

fn default_send_queue_size() -> usize {
    DEFAULT_SEND_QUEUE_SIZE
}

fn invalid(pointer: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        pointer: pointer.into(),
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
        if self.serial.baudrate == 0 {
            return Err(invalid("/baudrate", "must be above 0"));
        }
        check_seconds(self.serial.silent_interval).map_err(|r| invalid("/silent_interval", r))?;
        let sizes = self.field_sizes()?;
        if self.send_queue_size == 0 {
            return Err(invalid("/send_queue_size", "must be at least 1"));
        }
        let max_address = match &self.link {
            Link::Balanced {
                device_address_size,
                ..
            } => device_address_size.address_limit(),
            Link::Unbalanced {
                device_address_size,
                ..
            } => {
                if *device_address_size == Size::Zero {
                    return Err(invalid(
                        "/device_address_size",
                        "an unbalanced link needs ONE or TWO",
                    ));
                }
                device_address_size.address_limit().saturating_sub(1)
            }
        };
        if self.device_address_size() == Size::Three {
            return Err(invalid("/device_address_size", "must be ZERO, ONE or TWO"));
        }
        let mut seen = HashSet::new();
        for (i, (address, seconds)) in self.devices_raw().into_iter().enumerate() {
            let pointer = |field: &str| format!("/devices/{i}/{field}");
            if address > max_address {
                return Err(invalid(
                    pointer("address"),
                    "does not fit device_address_size (or is the broadcast address)",
                ));
            }
            if !seen.insert(address) {
                return Err(invalid(pointer("address"), "duplicate device address"));
            }
            for (field, value) in seconds {
                check_seconds(value).map_err(|r| invalid(pointer(field), r))?;
            }
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
        let max_asdu = match sizes.asdu_address {
            AsduAddressSize::One => 0xFF,
            AsduAddressSize::Two => 0xFFFF,
        };
        let max_io = match sizes.io_address {
            IoAddressSize::One => 0xFF,
            IoAddressSize::Two => 0xFFFF,
            IoAddressSize::Three => 0xFF_FFFF,
        };
        for (i, data) in self.data.iter().enumerate() {
            if DataType::from_conf_name(&data.data_type).is_none() {
                return Err(invalid(
                    format!("/data/{i}/data_type"),
                    format!("unknown data type {:?}", data.data_type),
                ));
            }
            if !(0..=max_asdu).contains(&data.asdu_address) {
                return Err(invalid(
                    format!("/data/{i}/asdu_address"),
                    format!("must be between 0 and {max_asdu}"),
                ));
            }
            if !(0..=max_io).contains(&data.io_address) {
                return Err(invalid(
                    format!("/data/{i}/io_address"),
                    format!("must be between 0 and {max_io}"),
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

    fn devices_raw(&self) -> Vec<(u32, Vec<(&'static str, f64)>)> {
        match &self.link {
            Link::Balanced { devices, .. } => devices
                .iter()
                .map(|d| {
                    (
                        d.address,
                        vec![
                            ("response_timeout", d.response_timeout),
                            ("status_delay", d.status_delay),
                            ("reconnect_delay", d.reconnect_delay),
                        ],
                    )
                })
                .collect(),
            Link::Unbalanced { devices, .. } => devices
                .iter()
                .map(|d| {
                    (
                        d.address,
                        vec![
                            ("keep_alive_timeout", d.keep_alive_timeout),
                            ("reconnect_delay", d.reconnect_delay),
                        ],
                    )
                })
                .collect(),
        }
    }

    /// The ASDU field sizes.
    pub fn field_sizes(&self) -> Result<FieldSizes, ConfigError> {
        iec_common::serial::field_sizes(
            self.cause_size,
            self.asdu_address_size,
            self.io_address_size,
        )
        .map_err(|err| invalid(err.pointer, err.reason))
    }

    /// The broadcast common address of the configured size (hat's
    /// `_get_broadcast_asdu_address`).
    pub fn broadcast_asdu_address(&self) -> u16 {
        self.asdu_address_size.broadcast_asdu_address()
    }

    /// The link address size.
    pub fn device_address_size(&self) -> Size {
        match &self.link {
            Link::Balanced {
                device_address_size,
                ..
            }
            | Link::Unbalanced {
                device_address_size,
                ..
            } => *device_address_size,
        }
    }
}
