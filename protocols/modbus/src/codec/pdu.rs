//! PDU codec (function code + data, no unit id, no checksum): requests and responses,
//! both directions, and the PDU lengths RTU framing needs (it has no length field).

use crate::frame::{ExceptionCode, Reply, Request, Response};

/// Most coils or discrete inputs one FC01 / FC02 request may read.
pub const MAX_READ_BITS: u16 = 2000;
/// Most registers one FC03 / FC04 / FC23 request may read.
pub const MAX_READ_REGISTERS: u16 = 125;
/// Most coils one FC15 request may write.
pub const MAX_WRITE_BITS: u16 = 1968;
/// Most registers one FC16 request may write.
pub const MAX_WRITE_REGISTERS: u16 = 123;
/// Most registers one FC23 request may write.
pub const MAX_READ_WRITE_REGISTERS: u16 = 121;

/// A response PDU that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PduError {
    /// Empty or cut short.
    #[error("PDU too short for function {0:#04x}")]
    Truncated(u8),
    /// A function code this codec does not know.
    #[error("unexpected function code {0:#04x}")]
    UnknownFunction(u8),
    /// A length field disagrees with the data.
    #[error("inconsistent length in PDU of function {0:#04x}")]
    BadLength(u8),
}

/// A request PDU a slave cannot accept, with the exception it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("bad request for function {function:#04x}: {reason}; answered {exception}")]
pub struct BadRequest {
    /// The request's function code (the answer is `function | 0x80`).
    pub function: u8,
    /// What to answer.
    pub exception: ExceptionCode,
    /// What is wrong, for the log.
    pub reason: &'static str,
}

impl Request {
    /// Appends the PDU bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.function());
        let mut word = |w: u16| out.extend_from_slice(&w.to_be_bytes());
        match self {
            Self::ReadCoils { address, quantity }
            | Self::ReadDiscreteInputs { address, quantity }
            | Self::ReadHoldingRegisters { address, quantity }
            | Self::ReadInputRegisters { address, quantity } => {
                word(*address);
                word(*quantity);
            }
            Self::WriteSingleCoil { address, value } => {
                word(*address);
                word(if *value { 0xFF00 } else { 0x0000 });
            }
            Self::WriteSingleRegister { address, value } => {
                word(*address);
                word(*value);
            }
            Self::WriteMultipleCoils { address, values } => {
                word(*address);
                word(values.len() as u16);
                let bytes = pack_bits(values);
                out.push(bytes.len() as u8);
                out.extend_from_slice(&bytes);
            }
            Self::WriteMultipleRegisters { address, values } => {
                word(*address);
                word(values.len() as u16);
                push_registers(out, values);
            }
            Self::MaskWriteRegister {
                address,
                and_mask,
                or_mask,
            } => {
                word(*address);
                word(*and_mask);
                word(*or_mask);
            }
            Self::ReadWriteMultipleRegisters {
                read_address,
                read_quantity,
                write_address,
                values,
            } => {
                word(*read_address);
                word(*read_quantity);
                word(*write_address);
                word(values.len() as u16);
                push_registers(out, values);
            }
            Self::ReadFifoQueue { address } => word(*address),
        }
    }
}

/// Byte count + big-endian registers.
fn push_registers(out: &mut Vec<u8>, values: &[u16]) {
    out.push((values.len() * 2) as u8);
    for v in values {
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// Packs bits LSB-first into bytes (Modbus coil order).
pub fn pack_bits(bits: &[bool]) -> Vec<u8> {
    let mut bytes = vec![0u8; bits.len().div_ceil(8)];
    for (i, bit) in bits.iter().enumerate() {
        if *bit {
            bytes[i / 8] |= 1 << (i % 8);
        }
    }
    bytes
}

/// Length of the response PDU at the start of `pdu` (which begins with the function
/// code), or `Ok(None)` if more bytes are needed to tell.
pub fn response_len(pdu: &[u8]) -> Result<Option<usize>, PduError> {
    let Some(&fc) = pdu.first() else {
        return Ok(None);
    };
    let len = match fc {
        f if f & 0x80 != 0 => 2,
        1..=4 | 23 => match pdu.get(1) {
            Some(&n) => 2 + usize::from(n),
            None => return Ok(None),
        },
        5 | 6 | 15 | 16 => 5,
        22 => 7,
        24 => match pdu.get(1..3) {
            Some(n) => 3 + usize::from(u16::from_be_bytes([n[0], n[1]])),
            None => return Ok(None),
        },
        other => return Err(PduError::UnknownFunction(other)),
    };
    Ok(Some(len))
}

/// Length of the request PDU at the start of `pdu`, or `Ok(None)` if more bytes are
/// needed to tell.
pub fn request_len(pdu: &[u8]) -> Result<Option<usize>, PduError> {
    let Some(&fc) = pdu.first() else {
        return Ok(None);
    };
    let counted = |at: usize, fixed: usize| pdu.get(at).map(|&n| fixed + usize::from(n));
    let len = match fc {
        1..=6 => Some(5),
        15 | 16 => counted(5, 6),
        22 => Some(7),
        23 => counted(9, 10),
        24 => Some(3),
        other => return Err(PduError::UnknownFunction(other)),
    };
    Ok(len)
}

fn word_at(data: &[u8], i: usize) -> Option<u16> {
    data.get(i..i + 2).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

/// Decodes a complete response PDU: `Ok(Err(code))` is an exception answer.
pub fn decode_response(pdu: &[u8]) -> Result<Reply, PduError> {
    let (&fc, data) = pdu.split_first().ok_or(PduError::Truncated(0))?;
    let word = |i: usize| word_at(data, i).ok_or(PduError::Truncated(fc));
    if fc & 0x80 != 0 {
        return match data {
            [code] => Ok(Err(ExceptionCode(*code))),
            _ => Err(PduError::BadLength(fc)),
        };
    }
    let response = match fc {
        1 | 2 => {
            let (&n, bytes) = data.split_first().ok_or(PduError::Truncated(fc))?;
            if bytes.len() != usize::from(n) {
                return Err(PduError::BadLength(fc));
            }
            let bits = bytes
                .iter()
                .flat_map(|b| (0..8).map(move |i| b & (1 << i) != 0))
                .collect();
            Response::Bits(bits)
        }
        3 | 4 | 23 => {
            let (&n, bytes) = data.split_first().ok_or(PduError::Truncated(fc))?;
            if bytes.len() != usize::from(n) || n % 2 != 0 {
                return Err(PduError::BadLength(fc));
            }
            Response::Registers(registers(bytes))
        }
        5 | 6 | 15 | 16 => {
            if data.len() != 4 {
                return Err(PduError::BadLength(fc));
            }
            Response::WriteEcho {
                address: word(0)?,
                value: word(2)?,
            }
        }
        22 => {
            if data.len() != 6 {
                return Err(PduError::BadLength(fc));
            }
            Response::MaskEcho {
                address: word(0)?,
                and_mask: word(2)?,
                or_mask: word(4)?,
            }
        }
        24 => {
            // Standard encoding: byte count (2), FIFO count (2), FIFO count registers.
            // The registers are taken from the byte count; the FIFO count is not
            // checked because pymodbus 3.8 writes it in bytes instead of registers.
            let byte_count = usize::from(word(0)?);
            if data.len() != 2 + byte_count || byte_count < 2 || byte_count % 2 != 0 {
                return Err(PduError::BadLength(fc));
            }
            Response::Registers(registers(&data[4..]))
        }
        other => return Err(PduError::UnknownFunction(other)),
    };
    Ok(Ok(response))
}

fn registers(bytes: &[u8]) -> Vec<u16> {
    bytes
        .chunks_exact(2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .collect()
}

/// Decodes a complete request PDU (slave side). A request that cannot be accepted
/// says which exception to answer: an unknown function code is `ILLEGAL_FUNCTION`, a
/// bad quantity, length or value is `ILLEGAL_DATA_VALUE`, a range running past
/// address 0xFFFF is `ILLEGAL_DATA_ADDRESS` (the Modbus application protocol's rules).
pub fn decode_request(pdu: &[u8]) -> Result<Request, BadRequest> {
    let Some((&function, data)) = pdu.split_first() else {
        return Err(BadRequest {
            function: 0,
            exception: ExceptionCode::ILLEGAL_FUNCTION,
            reason: "empty PDU",
        });
    };
    let bad = |exception, reason| BadRequest {
        function,
        exception,
        reason,
    };
    let value_error = |reason| bad(ExceptionCode::ILLEGAL_DATA_VALUE, reason);
    let word = |i: usize| word_at(data, i).ok_or(value_error("PDU too short"));
    let exact = |n: usize| {
        if data.len() == n {
            Ok(())
        } else {
            Err(value_error("PDU length does not match the function"))
        }
    };
    let range = |address: u16, quantity: u16, max: u16| {
        if quantity == 0 || quantity > max {
            Err(value_error("quantity out of range"))
        } else if u32::from(address) + u32::from(quantity) > 0x1_0000 {
            Err(bad(
                ExceptionCode::ILLEGAL_DATA_ADDRESS,
                "range runs past address 0xFFFF",
            ))
        } else {
            Ok(())
        }
    };
    let request = match function {
        1..=4 => {
            exact(4)?;
            let (address, quantity) = (word(0)?, word(2)?);
            let max = if function <= 2 {
                MAX_READ_BITS
            } else {
                MAX_READ_REGISTERS
            };
            range(address, quantity, max)?;
            match function {
                1 => Request::ReadCoils { address, quantity },
                2 => Request::ReadDiscreteInputs { address, quantity },
                3 => Request::ReadHoldingRegisters { address, quantity },
                _ => Request::ReadInputRegisters { address, quantity },
            }
        }
        5 => {
            exact(4)?;
            let value = match word(2)? {
                0xFF00 => true,
                0x0000 => false,
                _ => return Err(value_error("coil value neither 0xFF00 nor 0x0000")),
            };
            Request::WriteSingleCoil {
                address: word(0)?,
                value,
            }
        }
        6 => {
            exact(4)?;
            Request::WriteSingleRegister {
                address: word(0)?,
                value: word(2)?,
            }
        }
        15 => {
            let (address, quantity) = (word(0)?, word(2)?);
            let count = *data.get(4).ok_or(value_error("PDU too short"))?;
            range(address, quantity, MAX_WRITE_BITS)?;
            if usize::from(count) != usize::from(quantity).div_ceil(8) {
                return Err(value_error("byte count does not match the quantity"));
            }
            exact(5 + usize::from(count))?;
            let values = (0..usize::from(quantity))
                .map(|i| data[5 + i / 8] & (1 << (i % 8)) != 0)
                .collect();
            Request::WriteMultipleCoils { address, values }
        }
        16 => {
            let (address, quantity) = (word(0)?, word(2)?);
            let count = *data.get(4).ok_or(value_error("PDU too short"))?;
            range(address, quantity, MAX_WRITE_REGISTERS)?;
            if usize::from(count) != 2 * usize::from(quantity) {
                return Err(value_error("byte count does not match the quantity"));
            }
            exact(5 + usize::from(count))?;
            Request::WriteMultipleRegisters {
                address,
                values: registers(&data[5..]),
            }
        }
        22 => {
            exact(6)?;
            Request::MaskWriteRegister {
                address: word(0)?,
                and_mask: word(2)?,
                or_mask: word(4)?,
            }
        }
        23 => {
            let (read_address, read_quantity) = (word(0)?, word(2)?);
            let (write_address, write_quantity) = (word(4)?, word(6)?);
            let count = *data.get(8).ok_or(value_error("PDU too short"))?;
            range(read_address, read_quantity, MAX_READ_REGISTERS)?;
            range(write_address, write_quantity, MAX_READ_WRITE_REGISTERS)?;
            if usize::from(count) != 2 * usize::from(write_quantity) {
                return Err(value_error("byte count does not match the quantity"));
            }
            exact(9 + usize::from(count))?;
            Request::ReadWriteMultipleRegisters {
                read_address,
                read_quantity,
                write_address,
                values: registers(&data[9..]),
            }
        }
        24 => {
            exact(2)?;
            Request::ReadFifoQueue { address: word(0)? }
        }
        _ => {
            return Err(bad(
                ExceptionCode::ILLEGAL_FUNCTION,
                "function code not supported",
            ))
        }
    };
    Ok(request)
}

/// Appends the response PDU for a request of `function` to `out` (slave side).
/// Registers answer FC24 in the FIFO encoding (byte count, FIFO count, registers)
/// and any other function as byte count + registers.
pub fn encode_response(function: u8, reply: &Reply, out: &mut Vec<u8>) {
    let response = match reply {
        Ok(response) => response,
        Err(code) => {
            out.push(function | 0x80);
            out.push(code.0);
            return;
        }
    };
    out.push(function);
    let mut word = |w: u16| out.extend_from_slice(&w.to_be_bytes());
    match response {
        Response::Bits(bits) => {
            let bytes = pack_bits(bits);
            out.push(bytes.len() as u8);
            out.extend_from_slice(&bytes);
        }
        Response::Registers(values) if function == 24 => {
            word((2 + 2 * values.len()) as u16);
            word(values.len() as u16);
            for v in values {
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
        Response::Registers(values) => push_registers(out, values),
        Response::WriteEcho { address, value } => {
            word(*address);
            word(*value);
        }
        Response::MaskEcho {
            address,
            and_mask,
            or_mask,
        } => {
            word(*address);
            word(*and_mask);
            word(*or_mask);
        }
    }
}
