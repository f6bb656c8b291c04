//! Device configuration (hat-gateway's `modbus.yaml#/$defs/master`), its JSON Schema and
//! the semantic checks the schema cannot express.

use std::collections::HashSet;
use std::time::Duration;

use serde::Deserialize;

/// JSON Schema id of the device configuration (the same id hat-gateway uses).
pub const JSON_SCHEMA_ID: &str = "hat-gateway://modbus.yaml#/$defs/master";

/// The JSON Schema document (`schemas/modbus_master.json`), embedded in the plugin.
pub const JSON_SCHEMA: &str = include_str!("../../../schemas/modbus_master.json");

/// Cap of the reconnect backoff when `connection.connect_delay_max` is not given, s
/// (`docs/modbus-master.md` section 6).
pub const DEFAULT_CONNECT_DELAY_MAX: f64 = 30.0;

/// Smallest pause of the reconnect backoff, even with `connect_delay` 0, s: a slave
/// that drops every connection is not reconnected to more than 10 times a second.
pub const MIN_RECONNECT_DELAY: f64 = 0.1;

/// Widest data point this implementation supports: values travel as JSON integers,
/// which serde_json holds in 64 bits (`docs/modbus-master.md` open question Q5).
pub const MAX_BIT_COUNT: u32 = 64;

/// Why a configuration was rejected. `pointer` is the JSON pointer of the bad value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The entry does not have the documented shape.
    #[error("invalid modbus_master configuration: {0}")]
    Shape(String),
    /// A value is well-formed but not acceptable.
    #[error("invalid modbus_master configuration at {pointer}: {reason}")]
    Invalid {
        /// JSON pointer of the offending value, e.g. `/remote_devices/1/device_id`.
        pointer: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The whole device entry (`module` and other extra fields are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct MasterConfig {
    /// Device name (event-type prefix segment 3).
    pub name: String,
    /// How to reach the bus.
    pub connection: ConnectionConfig,
    /// The slaves polled through this connection.
    pub remote_devices: Vec<RemoteDeviceConfig>,
}

/// ADU framing (independent of the transport), from the shared Modbus crate.
pub use modbus::ModbusType;

/// `connection` section.
#[derive(Debug, Clone, Deserialize)]
pub struct ConnectionConfig {
    /// ADU framing.
    pub modbus_type: ModbusType,
    /// TCP or serial.
    pub transport: TransportConfig,
    /// Upper bound of one connection attempt, s.
    pub connect_timeout: f64,
    /// Pause after a failed attempt, s; also the first pause of the reconnect backoff.
    pub connect_delay: f64,
    /// Cap of the reconnect backoff, s (an extension of hat's schema, optional:
    /// [`DEFAULT_CONNECT_DELAY_MAX`] when absent). See [`ConnectionConfig::backoff_cap`].
    #[serde(default)]
    pub connect_delay_max: Option<f64>,
    /// Wait for the response to one attempt, s.
    pub request_timeout: f64,
    /// Minimal time between a response and the next request, s.
    pub request_delay: f64,
    /// Extra back-to-back attempts after a timeout.
    pub request_retry_immediate_count: u32,
    /// Extra rounds of attempts, each after `request_retry_delay`.
    pub request_retry_delayed_count: u32,
    /// Pause before a delayed round, s.
    pub request_retry_delay: f64,
}

impl ConnectionConfig {
    /// First pause of the reconnect backoff: `connect_delay`, at least
    /// [`MIN_RECONNECT_DELAY`].
    pub fn backoff_base(&self) -> Duration {
        secs(self.connect_delay.max(MIN_RECONNECT_DELAY))
    }

    /// Cap of the reconnect backoff: `connect_delay_max` (default
    /// [`DEFAULT_CONNECT_DELAY_MAX`]), at least the first pause. A connection that
    /// stayed open this long counts as stable and resets the backoff.
    pub fn backoff_cap(&self) -> Duration {
        let cap = secs(self.connect_delay_max.unwrap_or(DEFAULT_CONNECT_DELAY_MAX));
        cap.max(self.backoff_base())
    }
}

/// `connection.transport`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type")]
pub enum TransportConfig {
    /// TCP client.
    #[serde(rename = "TCP")]
    Tcp {
        /// Remote host name or address.
        host: String,
        /// Remote TCP port.
        port: u16,
    },
    /// Serial port.
    #[serde(rename = "SERIAL")]
    Serial(SerialConfig),
}

/// Serial port settings.
#[derive(Debug, Clone, Deserialize)]
pub struct SerialConfig {
    /// Port name, e.g. `/dev/ttyS0`.
    pub port: String,
    /// Baud rate.
    pub baudrate: u32,
    /// Data bits.
    pub bytesize: ByteSize,
    /// Parity.
    pub parity: Parity,
    /// Stop bits.
    pub stopbits: StopBits,
    /// Flow control flags.
    pub flow_control: FlowControl,
    /// Minimal idle gap between frames, s.
    pub silent_interval: f64,
}

/// Serial data bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ByteSize {
    /// 5 bits.
    Fivebits,
    /// 6 bits.
    Sixbits,
    /// 7 bits.
    Sevenbits,
    /// 8 bits.
    Eightbits,
}

/// Serial parity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Parity {
    /// None.
    None,
    /// Even.
    Even,
    /// Odd.
    Odd,
    /// Mark (not supported by the serial driver; rejected when opening).
    Mark,
    /// Space (not supported by the serial driver; rejected when opening).
    Space,
}

/// Serial stop bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StopBits {
    /// 1.
    One,
    /// 1.5 (not supported by the serial driver; rejected when opening).
    OnePointFive,
    /// 2.
    Two,
}

/// Serial flow control flags.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct FlowControl {
    /// Software flow control.
    pub xonxoff: bool,
    /// RTS/CTS.
    pub rtscts: bool,
    /// DSR/DTR (not supported by the serial driver; rejected when opening).
    pub dsrdtr: bool,
}

/// One `remote_devices[]` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct RemoteDeviceConfig {
    /// Modbus unit id used in every request.
    pub device_id: u8,
    /// Pause after a read timeout before polling resumes, s.
    pub timeout_poll_delay: f64,
    /// Data points.
    pub data: Vec<DataConfig>,
}

/// Modbus table of a data point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DataType {
    /// Coils (FC01 / FC05 / FC15).
    Coil,
    /// Discrete inputs (FC02).
    DiscreteInput,
    /// Holding registers (FC03 / FC06 / FC16 / FC22).
    HoldingRegister,
    /// Input registers (FC04).
    InputRegister,
    /// FIFO queue (FC24).
    Queue,
}

impl DataType {
    /// Bits per table entry.
    pub fn register_size(self) -> u32 {
        match self {
            Self::Coil | Self::DiscreteInput => 1,
            Self::HoldingRegister | Self::InputRegister | Self::Queue => 16,
        }
    }

    /// Largest span one read request may cover.
    pub fn max_quantity(self) -> u32 {
        match self {
            Self::Coil | Self::DiscreteInput => 2000,
            Self::HoldingRegister | Self::InputRegister => 125,
            Self::Queue => 1,
        }
    }
}

/// One `data[]` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct DataConfig {
    /// Point name (event-type segment).
    pub name: String,
    /// Polling period in seconds; `None` = never polled.
    pub interval: Option<f64>,
    /// Modbus table.
    pub data_type: DataType,
    /// First register / coil address.
    pub start_address: u16,
    /// Bits skipped at the start.
    pub bit_offset: u32,
    /// Bits making up the value.
    pub bit_count: u32,
}

impl DataConfig {
    /// Registers (or coils) the point covers: ⌈(offset + count) / register size⌉.
    pub fn quantity(&self) -> u32 {
        (self.bit_offset + self.bit_count).div_ceil(self.data_type.register_size())
    }
}

impl MasterConfig {
    /// Parses and checks a device entry. Serde errors carry serde's path text; semantic
    /// errors name the JSON pointer.
    pub fn from_json(conf: &serde_json::Value) -> Result<Self, ConfigError> {
        let parsed: Self = serde_json::from_value(conf.clone())
            .map_err(|err| ConfigError::Shape(err.to_string()))?;
        parsed.validate()?;
        Ok(parsed)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |pointer: String, reason: &str| ConfigError::Invalid {
            pointer,
            reason: reason.to_owned(),
        };
        let c = &self.connection;
        for (field, value) in [
            ("connect_timeout", c.connect_timeout),
            ("connect_delay", c.connect_delay),
            ("request_timeout", c.request_timeout),
            ("request_delay", c.request_delay),
            ("request_retry_delay", c.request_retry_delay),
            (
                "connect_delay_max",
                c.connect_delay_max.unwrap_or(DEFAULT_CONNECT_DELAY_MAX),
            ),
        ] {
            check_seconds(value).map_err(|r| invalid(format!("/connection/{field}"), r))?;
        }
        if let TransportConfig::Serial(serial) = &c.transport {
            check_seconds(serial.silent_interval)
                .map_err(|r| invalid("/connection/transport/silent_interval".into(), r))?;
        }
        let mut ids = HashSet::new();
        for (i, device) in self.remote_devices.iter().enumerate() {
            if !ids.insert(device.device_id) {
                return Err(invalid(
                    format!("/remote_devices/{i}/device_id"),
                    "duplicate device_id",
                ));
            }
            check_seconds(device.timeout_poll_delay)
                .map_err(|r| invalid(format!("/remote_devices/{i}/timeout_poll_delay"), r))?;
            let mut names = HashSet::new();
            for (j, data) in device.data.iter().enumerate() {
                let at = |field: &str| format!("/remote_devices/{i}/data/{j}/{field}");
                if !names.insert(data.name.as_str()) {
                    return Err(invalid(
                        at("name"),
                        "duplicate data name in this remote device",
                    ));
                }
                if data.bit_count == 0 {
                    return Err(invalid(at("bit_count"), "must be at least 1"));
                }
                if data.bit_count > MAX_BIT_COUNT {
                    return Err(invalid(
                        at("bit_count"),
                        "values wider than 64 bits are not supported",
                    ));
                }
                if data.bit_offset > 16 * 0xFFFF {
                    return Err(invalid(at("bit_offset"), "larger than the address space"));
                }
                if u32::from(data.start_address) + data.quantity() > 0x1_0000 {
                    return Err(invalid(
                        at("start_address"),
                        "point extends past address 65535",
                    ));
                }
                if let Some(interval) = data.interval {
                    check_seconds(interval).map_err(|r| invalid(at("interval"), r))?;
                }
            }
        }
        Ok(())
    }
}

fn check_seconds(value: f64) -> Result<(), &'static str> {
    // Bounded well below what `Instant + Duration` can hold (about 31 years).
    if value.is_finite() && (0.0..=1e9).contains(&value) {
        Ok(())
    } else {
        Err("must be a number of seconds between 0 and 1e9")
    }
}

/// Seconds (already validated) as a duration; out-of-range values saturate.
pub fn secs(value: f64) -> Duration {
    Duration::try_from_secs_f64(value).unwrap_or(Duration::MAX)
}
