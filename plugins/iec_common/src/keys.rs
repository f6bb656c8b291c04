//! Data and command types and keys (hat's `DataType`, `CommandType`, `DataKey`,
//! `CommandKey`), and the event types the IEC devices register and consume.
//!
//! Event types are `<prefix>/<direction>/<kind>/...` with our 4-segment prefix
//! (`gateway/<gateway>/<device_type>/<device>`); `direction` is `gateway` for events a
//! device registers and `system` for events it consumes.

use gateway_model::EventType;
use iec60870::types::{AsduAddress, Command, Data, IoAddress};
use serde::{Deserialize, Serialize};

use crate::PayloadError;

/// Largest IO address (3 octets).
pub const MAX_IO_ADDRESS: IoAddress = 0xFF_FFFF;

/// Kind of data point; the serde and event-type name is hat's (`single`, ...), the
/// configuration name is its upper-case form (`SINGLE`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataType {
    /// Single point information.
    Single,
    /// Double point information.
    Double,
    /// Step position information.
    StepPosition,
    /// Bitstring of 32 bits.
    Bitstring,
    /// Measured value, normalized.
    Normalized,
    /// Measured value, scaled.
    Scaled,
    /// Measured value, short floating point.
    Floating,
    /// Integrated totals.
    BinaryCounter,
    /// Event of protection equipment.
    Protection,
    /// Packed start events of protection equipment.
    ProtectionStart,
    /// Packed output circuit information of protection equipment.
    ProtectionCommand,
    /// Packed single point information with status change detection.
    Status,
}

/// Every data type, in hat's order.
pub const DATA_TYPES: [DataType; 12] = [
    DataType::Single,
    DataType::Double,
    DataType::StepPosition,
    DataType::Bitstring,
    DataType::Normalized,
    DataType::Scaled,
    DataType::Floating,
    DataType::BinaryCounter,
    DataType::Protection,
    DataType::ProtectionStart,
    DataType::ProtectionCommand,
    DataType::Status,
];

impl DataType {
    /// hat's enum value, as used in event types (`single`, `step_position`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::Double => "double",
            Self::StepPosition => "step_position",
            Self::Bitstring => "bitstring",
            Self::Normalized => "normalized",
            Self::Scaled => "scaled",
            Self::Floating => "floating",
            Self::BinaryCounter => "binary_counter",
            Self::Protection => "protection",
            Self::ProtectionStart => "protection_start",
            Self::ProtectionCommand => "protection_command",
            Self::Status => "status",
        }
    }

    /// The type named `name` in an event type (hat's `DataType(name)`).
    pub fn from_name(name: &str) -> Option<Self> {
        DATA_TYPES.into_iter().find(|t| t.as_str() == name)
    }

    /// The type named `name` in a configuration (hat's `DataType[name]`: `SINGLE`, ...).
    pub fn from_conf_name(name: &str) -> Option<Self> {
        DATA_TYPES
            .into_iter()
            .find(|t| t.as_str().to_ascii_uppercase() == name)
    }

    /// The type of a data value (hat's `get_data_type`).
    pub fn of(data: &Data) -> Self {
        match data {
            Data::Single(_) => Self::Single,
            Data::Double(_) => Self::Double,
            Data::StepPosition(_) => Self::StepPosition,
            Data::Bitstring(_) => Self::Bitstring,
            Data::Normalized(_) => Self::Normalized,
            Data::Scaled(_) => Self::Scaled,
            Data::Floating(_) => Self::Floating,
            Data::BinaryCounter(_) => Self::BinaryCounter,
            Data::Protection(_) => Self::Protection,
            Data::ProtectionStart(_) => Self::ProtectionStart,
            Data::ProtectionCommand(_) => Self::ProtectionCommand,
            Data::Status(_) => Self::Status,
        }
    }
}

/// Kind of command; names as [`DataType`]'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandType {
    /// Single command.
    Single,
    /// Double command.
    Double,
    /// Regulating step command.
    Regulating,
    /// Set point command, normalized.
    Normalized,
    /// Set point command, scaled.
    Scaled,
    /// Set point command, short floating point.
    Floating,
    /// Bitstring of 32 bits.
    Bitstring,
}

/// Every command type, in hat's order.
pub const COMMAND_TYPES: [CommandType; 7] = [
    CommandType::Single,
    CommandType::Double,
    CommandType::Regulating,
    CommandType::Normalized,
    CommandType::Scaled,
    CommandType::Floating,
    CommandType::Bitstring,
];

impl CommandType {
    /// hat's enum value, as used in event types (`single`, `regulating`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::Double => "double",
            Self::Regulating => "regulating",
            Self::Normalized => "normalized",
            Self::Scaled => "scaled",
            Self::Floating => "floating",
            Self::Bitstring => "bitstring",
        }
    }

    /// The type named `name` in an event type (hat's `CommandType(name)`).
    pub fn from_name(name: &str) -> Option<Self> {
        COMMAND_TYPES.into_iter().find(|t| t.as_str() == name)
    }

    /// The type of a command (hat's `get_command_type`).
    pub fn of(command: &Command) -> Self {
        match command {
            Command::Single(_) => Self::Single,
            Command::Double(_) => Self::Double,
            Command::Regulating(_) => Self::Regulating,
            Command::Normalized(_) => Self::Normalized,
            Command::Scaled(_) => Self::Scaled,
            Command::Floating(_) => Self::Floating,
            Command::Bitstring(_) => Self::Bitstring,
        }
    }
}

/// One data point (hat's `DataKey`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DataKey {
    /// Kind of data.
    pub data_type: DataType,
    /// Common address of ASDU.
    pub asdu_address: AsduAddress,
    /// Information object address.
    pub io_address: IoAddress,
}

/// One command point (hat's `CommandKey`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandKey {
    /// Kind of command.
    pub cmd_type: CommandType,
    /// Common address of ASDU.
    pub asdu_address: AsduAddress,
    /// Information object address.
    pub io_address: IoAddress,
}

/// First segment after the prefix: who the event is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `gateway/...`: registered by the device.
    Gateway,
    /// `system/...`: consumed by the device.
    System,
}

impl Direction {
    /// The segment text.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Gateway => "gateway",
            Self::System => "system",
        }
    }
}

/// What an IEC device event type addresses, without its prefix and direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKey {
    /// `data/<type>/<asdu>/<io>`.
    Data(DataKey),
    /// `command/<type>/<asdu>/<io>`.
    Command(CommandKey),
    /// `interrogation/<asdu>`.
    Interrogation(AsduAddress),
    /// `counter_interrogation/<asdu>`.
    CounterInterrogation(AsduAddress),
}

impl EventKey {
    /// The event type `<prefix>/<direction>/<kind>/...`.
    pub fn event_type(&self, prefix: &[String], direction: Direction) -> EventType {
        let mut event_type = Vec::with_capacity(prefix.len() + 5);
        event_type.extend_from_slice(prefix);
        event_type.push(direction.as_str().to_owned());
        self.push_segments(&mut event_type);
        event_type
    }

    /// Appends the segments `<kind>/...` (what follows the direction, or the 101
    /// master's `remote_device/<address>`) to `event_type`.
    pub fn push_segments(&self, event_type: &mut EventType) {
        match self {
            Self::Data(key) => {
                event_type.push("data".to_owned());
                event_type.push(key.data_type.as_str().to_owned());
                event_type.push(key.asdu_address.to_string());
                event_type.push(key.io_address.to_string());
            }
            Self::Command(key) => {
                event_type.push("command".to_owned());
                event_type.push(key.cmd_type.as_str().to_owned());
                event_type.push(key.asdu_address.to_string());
                event_type.push(key.io_address.to_string());
            }
            Self::Interrogation(asdu) => {
                event_type.push("interrogation".to_owned());
                event_type.push(asdu.to_string());
            }
            Self::CounterInterrogation(asdu) => {
                event_type.push("counter_interrogation".to_owned());
                event_type.push(asdu.to_string());
            }
        }
    }

    /// Parses an event type under `prefix` with `direction` (hat's suffix parsing in
    /// `_msg_from_event` and the slave's `process_event`).
    pub fn parse(
        prefix: &[String],
        direction: Direction,
        event_type: &[String],
    ) -> Result<Self, PayloadError> {
        let tail = event_type
            .strip_prefix(prefix)
            .ok_or(PayloadError::EventType("outside the device prefix"))?;
        let (first, tail) = tail
            .split_first()
            .ok_or(PayloadError::EventType("nothing after the prefix"))?;
        if first != direction.as_str() {
            return Err(PayloadError::EventType("unexpected direction segment"));
        }
        let tail: Vec<&str> = tail.iter().map(String::as_str).collect();
        Self::parse_segments(&tail)
    }

    /// Parses the segments `<kind>/...` (what [`push_segments`](Self::push_segments)
    /// writes).
    pub fn parse_segments(tail: &[&str]) -> Result<Self, PayloadError> {
        match tail {
            ["data", data_type, asdu, io] => Ok(Self::Data(DataKey {
                data_type: DataType::from_name(data_type)
                    .ok_or(PayloadError::EventType("unknown data type"))?,
                asdu_address: parse_asdu_address(asdu)?,
                io_address: parse_io_address(io)?,
            })),
            ["command", cmd_type, asdu, io] => Ok(Self::Command(CommandKey {
                cmd_type: CommandType::from_name(cmd_type)
                    .ok_or(PayloadError::EventType("unknown command type"))?,
                asdu_address: parse_asdu_address(asdu)?,
                io_address: parse_io_address(io)?,
            })),
            ["interrogation", asdu] => Ok(Self::Interrogation(parse_asdu_address(asdu)?)),
            ["counter_interrogation", asdu] => {
                Ok(Self::CounterInterrogation(parse_asdu_address(asdu)?))
            }
            _ => Err(PayloadError::EventType("unsupported event type")),
        }
    }
}

/// A decimal ASDU address segment (0 to 65535).
pub fn parse_asdu_address(segment: &str) -> Result<AsduAddress, PayloadError> {
    segment
        .parse()
        .map_err(|_| PayloadError::EventType("ASDU address is not an integer in 0..=65535"))
}

/// A decimal IO address segment (0 to 16777215).
pub fn parse_io_address(segment: &str) -> Result<IoAddress, PayloadError> {
    segment
        .parse::<IoAddress>()
        .ok()
        .filter(|io| *io <= MAX_IO_ADDRESS)
        .ok_or(PayloadError::EventType(
            "IO address is not an integer in 0..=16777215",
        ))
}
