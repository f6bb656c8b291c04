//! Modbus wire types: the framing kind, request and response PDUs, exception codes,
//! the two-level reply and a received ADU.

use std::fmt;

use serde::Deserialize;

/// ADU framing (independent of the transport: each works over TCP or a serial line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum ModbusType {
    /// MBAP header, no checksum.
    #[serde(rename = "TCP")]
    Tcp,
    /// Binary with CRC-16.
    #[serde(rename = "RTU")]
    Rtu,
    /// `:` + hex + LRC + CR LF.
    #[serde(rename = "ASCII")]
    Ascii,
}

/// A request PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// FC01.
    ReadCoils {
        /// First coil.
        address: u16,
        /// Number of coils.
        quantity: u16,
    },
    /// FC02.
    ReadDiscreteInputs {
        /// First input.
        address: u16,
        /// Number of inputs.
        quantity: u16,
    },
    /// FC03.
    ReadHoldingRegisters {
        /// First register.
        address: u16,
        /// Number of registers.
        quantity: u16,
    },
    /// FC04.
    ReadInputRegisters {
        /// First register.
        address: u16,
        /// Number of registers.
        quantity: u16,
    },
    /// FC05.
    WriteSingleCoil {
        /// Coil address.
        address: u16,
        /// On or off.
        value: bool,
    },
    /// FC06.
    WriteSingleRegister {
        /// Register address.
        address: u16,
        /// New value.
        value: u16,
    },
    /// FC15.
    WriteMultipleCoils {
        /// First coil.
        address: u16,
        /// Coil values in address order.
        values: Vec<bool>,
    },
    /// FC16.
    WriteMultipleRegisters {
        /// First register.
        address: u16,
        /// Register values in address order.
        values: Vec<u16>,
    },
    /// FC22: new = (current AND and_mask) OR (or_mask AND NOT and_mask).
    MaskWriteRegister {
        /// Register address.
        address: u16,
        /// Bits kept.
        and_mask: u16,
        /// Bits set.
        or_mask: u16,
    },
    /// FC23: the write is performed before the read.
    ReadWriteMultipleRegisters {
        /// First register read.
        read_address: u16,
        /// Number of registers read.
        read_quantity: u16,
        /// First register written.
        write_address: u16,
        /// Register values written, in address order.
        values: Vec<u16>,
    },
    /// FC24 (standard encoding).
    ReadFifoQueue {
        /// FIFO pointer address.
        address: u16,
    },
}

/// A normal (non-exception) response PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// FC01 / FC02: bits in address order (decoded: whole bytes, as sent).
    Bits(Vec<bool>),
    /// FC03 / FC04 / FC23 / FC24: registers in address order.
    Registers(Vec<u16>),
    /// FC05 / FC06 / FC15 / FC16 echo: address and value (FC05: 0xFF00/0x0000) or quantity.
    WriteEcho {
        /// Echoed address.
        address: u16,
        /// Echoed value or quantity.
        value: u16,
    },
    /// FC22 echo.
    MaskEcho {
        /// Echoed address.
        address: u16,
        /// Echoed AND mask.
        and_mask: u16,
        /// Echoed OR mask.
        or_mask: u16,
    },
}

/// What a device answered: a normal response or an exception. The outer level of
/// a two-level result (`Result<Reply, E>`) is the exchange itself failing.
pub type Reply = Result<Response, ExceptionCode>;

/// A Modbus exception code. Any byte can arrive; the standard ones are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExceptionCode(pub u8);

impl ExceptionCode {
    /// 01: the function code is not supported.
    pub const ILLEGAL_FUNCTION: Self = Self(1);
    /// 02: the address (or address + quantity) is not available.
    pub const ILLEGAL_DATA_ADDRESS: Self = Self(2);
    /// 03: a value in the request is not acceptable.
    pub const ILLEGAL_DATA_VALUE: Self = Self(3);
    /// 04: the device failed while performing the action.
    pub const SERVER_DEVICE_FAILURE: Self = Self(4);
    /// 05: accepted, processing takes long.
    pub const ACKNOWLEDGE: Self = Self(5);
    /// 06: busy, retry later.
    pub const SERVER_DEVICE_BUSY: Self = Self(6);
    /// 08: memory parity error.
    pub const MEMORY_PARITY_ERROR: Self = Self(8);
    /// 10: gateway path unavailable.
    pub const GATEWAY_PATH_UNAVAILABLE: Self = Self(10);
    /// 11: gateway target device failed to respond.
    pub const GATEWAY_TARGET_FAILED: Self = Self(11);

    /// Result name as hat-gateway's events carry it.
    ///
    /// Codes 1, 2, 3, 4, 10, 11 use hat-gateway's names. Other codes are reported by
    /// their standard names (5, 6, 8) or as `EXCEPTION_<code>`.
    pub fn name(self) -> String {
        match self.0 {
            1 => "INVALID_FUNCTION_CODE",
            2 => "INVALID_DATA_ADDRESS",
            3 => "INVALID_DATA_VALUE",
            4 => "FUNCTION_ERROR",
            5 => "ACKNOWLEDGE",
            6 => "SERVER_DEVICE_BUSY",
            8 => "MEMORY_PARITY_ERROR",
            10 => "GATEWAY_PATH_UNAVAILABLE",
            11 => "GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND",
            other => return format!("EXCEPTION_{other}"),
        }
        .to_owned()
    }
}

impl fmt::Display for ExceptionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

/// A received ADU, PDU still undecoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adu {
    /// MBAP transaction id (TCP framing only).
    pub transaction_id: Option<u16>,
    /// Unit (slave) id.
    pub unit: u8,
    /// Function code + data.
    pub pdu: Vec<u8>,
}

impl Request {
    /// Function code.
    pub fn function(&self) -> u8 {
        match self {
            Self::ReadCoils { .. } => 1,
            Self::ReadDiscreteInputs { .. } => 2,
            Self::ReadHoldingRegisters { .. } => 3,
            Self::ReadInputRegisters { .. } => 4,
            Self::WriteSingleCoil { .. } => 5,
            Self::WriteSingleRegister { .. } => 6,
            Self::WriteMultipleCoils { .. } => 15,
            Self::WriteMultipleRegisters { .. } => 16,
            Self::MaskWriteRegister { .. } => 22,
            Self::ReadWriteMultipleRegisters { .. } => 23,
            Self::ReadFifoQueue { .. } => 24,
        }
    }

    /// Checks a reply against this request: `Some(false)` for a write echo that does
    /// not match, `None` for reads (nothing to check). An exception always matches.
    pub fn echo_matches(&self, reply: &Reply) -> Option<bool> {
        let Ok(response) = reply else {
            return Some(true);
        };
        let ok = match (self, response) {
            (
                Self::WriteSingleCoil { address, value },
                Response::WriteEcho {
                    address: a,
                    value: v,
                },
            ) => a == address && *v == if *value { 0xFF00 } else { 0 },
            (
                Self::WriteSingleRegister { address, value },
                Response::WriteEcho {
                    address: a,
                    value: v,
                },
            ) => a == address && v == value,
            (
                Self::WriteMultipleCoils { address, values },
                Response::WriteEcho {
                    address: a,
                    value: q,
                },
            ) => a == address && usize::from(*q) == values.len(),
            (
                Self::WriteMultipleRegisters { address, values },
                Response::WriteEcho {
                    address: a,
                    value: q,
                },
            ) => a == address && usize::from(*q) == values.len(),
            (
                Self::MaskWriteRegister {
                    address,
                    and_mask,
                    or_mask,
                },
                Response::MaskEcho {
                    address: a,
                    and_mask: am,
                    or_mask: om,
                },
            ) => a == address && am == and_mask && om == or_mask,
            (
                Self::ReadCoils { .. }
                | Self::ReadDiscreteInputs { .. }
                | Self::ReadHoldingRegisters { .. }
                | Self::ReadInputRegisters { .. }
                | Self::ReadWriteMultipleRegisters { .. }
                | Self::ReadFifoQueue { .. },
                _,
            ) => return None,
            _ => false,
        };
        Some(ok)
    }
}
