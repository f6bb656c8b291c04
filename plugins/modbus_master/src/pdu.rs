//! Modbus PDUs: the requests the master sends, the responses it accepts, and their
//! byte encodings (function code + data, no unit id, no checksum).

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
    /// FC24 (standard encoding).
    ReadFifoQueue {
        /// FIFO pointer address.
        address: u16,
    },
}

/// A decoded response PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// FC01 / FC02: bits in address order (whole bytes, as sent).
    Bits(Vec<bool>),
    /// FC03 / FC04 / FC24: registers in address order.
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
    /// The slave answered with exception `code`.
    Exception(u8),
}

/// A response PDU that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PduError {
    /// Empty or cut short.
    #[error("response PDU too short for function {0:#04x}")]
    Truncated(u8),
    /// A function code the master never sends.
    #[error("unexpected function code {0:#04x}")]
    UnknownFunction(u8),
    /// A length field disagrees with the data.
    #[error("inconsistent length in response to function {0:#04x}")]
    BadLength(u8),
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
            Self::ReadFifoQueue { .. } => 24,
        }
    }

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
                out.push((values.len() * 2) as u8);
                for v in values {
                    out.extend_from_slice(&v.to_be_bytes());
                }
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
            Self::ReadFifoQueue { address } => word(*address),
        }
    }

    /// Checks a write echo against this request. `None` for reads (nothing to check).
    pub fn echo_matches(&self, response: &Response) -> Option<bool> {
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
            (_, Response::Exception(_)) => true,
            (
                Self::ReadCoils { .. }
                | Self::ReadDiscreteInputs { .. }
                | Self::ReadHoldingRegisters { .. }
                | Self::ReadInputRegisters { .. }
                | Self::ReadFifoQueue { .. },
                _,
            ) => return None,
            _ => false,
        };
        Some(ok)
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
/// code), or `Ok(None)` if more bytes are needed to tell. Used by RTU framing, which has
/// no length field.
pub fn response_len(pdu: &[u8]) -> Result<Option<usize>, PduError> {
    let Some(&fc) = pdu.first() else {
        return Ok(None);
    };
    let len = match fc {
        f if f & 0x80 != 0 => 2,
        1..=4 => match pdu.get(1) {
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

/// Decodes a complete response PDU.
pub fn decode_response(pdu: &[u8]) -> Result<Response, PduError> {
    let (&fc, data) = pdu.split_first().ok_or(PduError::Truncated(0))?;
    let word = |i: usize| -> Result<u16, PduError> {
        data.get(i..i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or(PduError::Truncated(fc))
    };
    if fc & 0x80 != 0 {
        return match data {
            [code] => Ok(Response::Exception(*code)),
            _ => Err(PduError::BadLength(fc)),
        };
    }
    match fc {
        1 | 2 => {
            let (&n, bytes) = data.split_first().ok_or(PduError::Truncated(fc))?;
            if bytes.len() != usize::from(n) {
                return Err(PduError::BadLength(fc));
            }
            let bits = bytes
                .iter()
                .flat_map(|b| (0..8).map(move |i| b & (1 << i) != 0))
                .collect();
            Ok(Response::Bits(bits))
        }
        3 | 4 => {
            let (&n, bytes) = data.split_first().ok_or(PduError::Truncated(fc))?;
            if bytes.len() != usize::from(n) || n % 2 != 0 {
                return Err(PduError::BadLength(fc));
            }
            Ok(Response::Registers(registers(bytes)))
        }
        5 | 6 | 15 | 16 => {
            if data.len() != 4 {
                return Err(PduError::BadLength(fc));
            }
            Ok(Response::WriteEcho {
                address: word(0)?,
                value: word(2)?,
            })
        }
        22 => {
            if data.len() != 6 {
                return Err(PduError::BadLength(fc));
            }
            Ok(Response::MaskEcho {
                address: word(0)?,
                and_mask: word(2)?,
                or_mask: word(4)?,
            })
        }
        24 => {
            // Standard encoding: byte count (2), FIFO count (2), FIFO count registers.
            // The registers are taken from the byte count; the FIFO count is not
            // checked because pymodbus 3.8 writes it in bytes instead of registers.
            let byte_count = usize::from(word(0)?);
            if data.len() != 2 + byte_count || byte_count < 2 || byte_count % 2 != 0 {
                return Err(PduError::BadLength(fc));
            }
            Ok(Response::Registers(registers(&data[4..])))
        }
        other => Err(PduError::UnknownFunction(other)),
    }
}

fn registers(bytes: &[u8]) -> Vec<u16> {
    bytes
        .chunks_exact(2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .collect()
}

/// Result name of a Modbus exception code as events carry it.
///
/// Codes 1, 2, 3, 4, 10, 11 use hat-gateway's names. Other codes (spec open question
/// Q4) are reported instead of closing the connection: the standard codes 5, 6, 8 by
/// their standard names, anything else as `EXCEPTION_<code>`.
pub fn exception_name(code: u8) -> String {
    match code {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(request: &Request) -> Vec<u8> {
        let mut out = Vec::new();
        request.encode(&mut out);
        out
    }

    #[test]
    fn encodes_requests() {
        assert_eq!(
            bytes(&Request::ReadHoldingRegisters {
                address: 0x6B,
                quantity: 3
            }),
            [3, 0, 0x6B, 0, 3]
        );
        assert_eq!(
            bytes(&Request::WriteSingleCoil {
                address: 0xAC,
                value: true
            }),
            [5, 0, 0xAC, 0xFF, 0]
        );
        assert_eq!(
            bytes(&Request::WriteMultipleCoils {
                address: 0x13,
                values: vec![true, false, true, true, false, false, true, true, true, false],
            }),
            [15, 0, 0x13, 0, 10, 2, 0xCD, 0x01]
        );
        assert_eq!(
            bytes(&Request::WriteMultipleRegisters {
                address: 1,
                values: vec![0x000A, 0x0102]
            }),
            [16, 0, 1, 0, 2, 4, 0, 0x0A, 1, 2]
        );
        assert_eq!(
            bytes(&Request::MaskWriteRegister {
                address: 4,
                and_mask: 0xF2,
                or_mask: 0x25
            }),
            [22, 0, 4, 0, 0xF2, 0, 0x25]
        );
        assert_eq!(
            bytes(&Request::ReadFifoQueue { address: 0x4DE }),
            [24, 4, 0xDE]
        );
    }

    #[test]
    fn decodes_responses() {
        assert_eq!(
            decode_response(&[1, 1, 0b101]).unwrap(),
            Response::Bits(vec![true, false, true, false, false, false, false, false])
        );
        assert_eq!(
            decode_response(&[3, 4, 0x12, 0x34, 0, 1]).unwrap(),
            Response::Registers(vec![0x1234, 1])
        );
        assert_eq!(decode_response(&[0x83, 2]).unwrap(), Response::Exception(2));
        assert_eq!(
            decode_response(&[24, 0, 6, 0, 2, 1, 0xB8, 0x12, 0x84]).unwrap(),
            Response::Registers(vec![0x01B8, 0x1284])
        );
        assert_eq!(
            decode_response(&[24, 0, 2, 0, 0]).unwrap(),
            Response::Registers(vec![])
        );
    }

    #[test]
    fn rejects_inconsistent_responses() {
        assert_eq!(
            decode_response(&[3, 3, 0, 0, 0]),
            Err(PduError::BadLength(3))
        );
        assert_eq!(decode_response(&[3, 4, 0, 0]), Err(PduError::BadLength(3)));
        assert_eq!(decode_response(&[7, 0]), Err(PduError::UnknownFunction(7)));
        assert_eq!(
            decode_response(&[24, 0, 6, 0, 2, 0, 0]),
            Err(PduError::BadLength(24))
        );
        assert_eq!(decode_response(&[0x83]), Err(PduError::BadLength(0x83)));
        assert_eq!(decode_response(&[]), Err(PduError::Truncated(0)));
    }

    #[test]
    fn response_lengths_for_rtu() {
        assert_eq!(response_len(&[]), Ok(None));
        assert_eq!(response_len(&[3]), Ok(None));
        assert_eq!(response_len(&[3, 4]), Ok(Some(6)));
        assert_eq!(response_len(&[0x86]), Ok(Some(2)));
        assert_eq!(response_len(&[22]), Ok(Some(7)));
        assert_eq!(response_len(&[24, 0]), Ok(None));
        assert_eq!(response_len(&[24, 0, 4]), Ok(Some(7)));
        assert_eq!(response_len(&[9]), Err(PduError::UnknownFunction(9)));
    }

    #[test]
    fn exception_names() {
        assert_eq!(exception_name(2), "INVALID_DATA_ADDRESS");
        assert_eq!(
            exception_name(11),
            "GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND"
        );
        assert_eq!(exception_name(6), "SERVER_DEVICE_BUSY");
        assert_eq!(exception_name(0x42), "EXCEPTION_66");
    }

    #[test]
    fn write_echo_checks() {
        let req = Request::WriteSingleRegister {
            address: 5,
            value: 7,
        };
        assert_eq!(
            req.echo_matches(&Response::WriteEcho {
                address: 5,
                value: 7
            }),
            Some(true)
        );
        assert_eq!(
            req.echo_matches(&Response::WriteEcho {
                address: 5,
                value: 8
            }),
            Some(false)
        );
        assert_eq!(req.echo_matches(&Response::Exception(2)), Some(true));
        let read = Request::ReadCoils {
            address: 0,
            quantity: 1,
        };
        assert_eq!(read.echo_matches(&Response::Bits(vec![true])), None);
    }
}
