//! Device configuration (hat-gateway's `modbus.yaml#/$defs/slave`), its JSON Schema and
//! the semantic checks the schema cannot express.

use std::collections::HashSet;
use std::time::Duration;

use serde::Deserialize;

pub use modbus::ModbusType;

/// JSON Schema id of the device configuration (the same id hat-gateway uses).
pub const JSON_SCHEMA_ID: &str = "hat-gateway://modbus.yaml#/$defs/slave";

/// The JSON Schema document (`schemas/modbus_slave.json`), embedded in the plugin.
pub const JSON_SCHEMA: &str = include_str!("../../../schemas/modbus_slave.json");

/// Widest data point: values travel as JSON integers, which serde_json holds in 64 bits.
pub const MAX_BIT_COUNT: u32 = 64;

/// Why a configuration was rejected. `pointer` is the JSON pointer of the bad value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The entry does not have the documented shape.
    #[error("invalid modbus_slave configuration: {0}")]
    Shape(String),
    /// A value is well-formed but not acceptable.
    #[error("invalid modbus_slave configuration at {pointer}: {reason}")]
    Invalid {
        /// JSON pointer of the offending value, e.g. `/data/1/bit_count`.
        pointer: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The whole device entry (`module` and other extra fields are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct SlaveConfig {
    /// Device name (event-type prefix segment).
    pub name: String,
    /// ADU framing.
    pub modbus_type: ModbusType,
    /// Where masters reach this slave.
    pub transport: TransportConfig,
    /// Data points.
    pub data: Vec<DataConfig>,
}

/// `transport` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type")]
pub enum TransportConfig {
    /// A TCP listener.
    #[serde(rename = "TCP")]
    Tcp(TcpConfig),
    /// A serial port.
    #[serde(rename = "SERIAL")]
    Serial(SerialConfig),
}

impl TransportConfig {
    /// Upper bound of one write's `gateway/write` / `system/write` round trip.
    pub fn response_timeout(&self) -> Duration {
        match self {
            Self::Tcp(tcp) => secs(tcp.response_timeout),
            Self::Serial(serial) => secs(serial.response_timeout),
        }
    }
}

/// TCP listener settings.
#[derive(Debug, Clone, Deserialize)]
pub struct TcpConfig {
    /// Local address to listen on.
    pub local_host: String,
    /// Local port (0: any free port).
    pub local_port: u16,
    /// Remote hosts allowed to connect (`None`: all).
    pub remote_hosts: Option<Vec<String>>,
    /// Most simultaneous connections (`None`: no limit).
    pub max_connections: Option<usize>,
    /// Write round-trip timeout, s.
    pub response_timeout: f64,
    /// Idle time after which a connection is closed, s (`None`: never).
    pub keep_alive_timeout: Option<f64>,
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
    /// Minimal idle gap before a response, s.
    pub silent_interval: f64,
    /// Write round-trip timeout, s.
    pub response_timeout: f64,
    /// Time without requests after which the master counts as gone, s.
    pub keep_alive_timeout: f64,
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

/// Modbus table of a data point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DataType {
    /// Coils (FC01 / FC05 / FC15).
    Coil,
    /// Discrete inputs (FC02).
    DiscreteInput,
    /// Holding registers (FC03 / FC06 / FC16 / FC22 / FC23).
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
}

/// One `data[]` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct DataConfig {
    /// Point name (`system/data/<name>`).
    pub name: String,
    /// Unit id the point answers under.
    pub device_id: u8,
    /// Table.
    pub data_type: DataType,
    /// First table entry.
    pub start_address: u16,
    /// Bits skipped in the first entry.
    pub bit_offset: u32,
    /// Bits of the value.
    pub bit_count: u32,
}

impl DataConfig {
    /// Address of the first bit, counting `register_size` bits per table entry.
    pub fn bit_start(&self) -> u32 {
        u32::from(self.start_address) * self.data_type.register_size() + self.bit_offset
    }
}

/// Seconds from the configuration as a duration (negative or NaN: zero).
pub fn secs(value: f64) -> Duration {
    Duration::try_from_secs_f64(value).unwrap_or(Duration::ZERO)
}

impl SlaveConfig {
    /// Parses and checks a device entry.
    pub fn from_json(conf: &serde_json::Value) -> Result<Self, ConfigError> {
        let config: SlaveConfig =
            serde_json::from_value(conf.clone()).map_err(|e| ConfigError::Shape(e.to_string()))?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let invalid = |pointer: String, reason: &str| ConfigError::Invalid {
            pointer,
            reason: reason.to_owned(),
        };
        let mut names = HashSet::new();
        for (i, point) in self.data.iter().enumerate() {
            if !names.insert(point.name.as_str()) {
                return Err(invalid(format!("/data/{i}/name"), "duplicate data name"));
            }
            if point.bit_count == 0 || point.bit_count > MAX_BIT_COUNT {
                return Err(invalid(
                    format!("/data/{i}/bit_count"),
                    "bit_count must be between 1 and 64",
                ));
            }
            let size = u64::from(point.data_type.register_size());
            let end = u64::from(point.bit_start()) + u64::from(point.bit_count);
            if end > 0x1_0000 * size {
                return Err(invalid(
                    format!("/data/{i}/bit_count"),
                    "the point runs past address 0xFFFF",
                ));
            }
        }
        for (field, value) in self.timeouts() {
            if !(value.is_finite() && value >= 0.0) {
                return Err(invalid(
                    format!("/transport/{field}"),
                    "must be a non-negative number of seconds",
                ));
            }
        }
        Ok(())
    }

    fn timeouts(&self) -> Vec<(&'static str, f64)> {
        match &self.transport {
            TransportConfig::Tcp(tcp) => {
                let mut all = vec![("response_timeout", tcp.response_timeout)];
                all.extend(tcp.keep_alive_timeout.map(|t| ("keep_alive_timeout", t)));
                all
            }
            TransportConfig::Serial(serial) => vec![
                ("response_timeout", serial.response_timeout),
                ("keep_alive_timeout", serial.keep_alive_timeout),
                ("silent_interval", serial.silent_interval),
            ],
        }
    }
}
