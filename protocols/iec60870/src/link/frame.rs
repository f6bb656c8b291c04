//! FT1.2 frames (IEC 60870-5-1/-2): the fixed frame `0x10 C A CS 0x16`, the variable frame
//! `0x68 L L 0x68 C A data CS 0x16` and the single character `0xE5`, with their control
//! field (function code, FCB/FCV in requests, ACD/DFC in responses, DIR in balanced mode).

use bytes::{BufMut, Bytes, BytesMut};

/// A link address (0 with [`AddressSize::Zero`], at most 255 or 65535 otherwise).
pub type Address = u16;

/// Start character of a fixed length frame.
pub const FIXED_START: u8 = 0x10;
/// Start character of a variable length frame (sent twice).
pub const VARIABLE_START: u8 = 0x68;
/// The single character acknowledgement.
pub const SINGLE_CHAR_ACK: u8 = 0xE5;
/// Stop character of fixed and variable frames.
pub const STOP: u8 = 0x16;

/// Octets of the link address field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressSize {
    /// No address field (balanced point to point only).
    Zero,
    /// One octet.
    One,
    /// Two octets, little endian.
    Two,
}

impl AddressSize {
    /// Octets of the address field.
    pub fn len(self) -> usize {
        match self {
            AddressSize::Zero => 0,
            AddressSize::One => 1,
            AddressSize::Two => 2,
        }
    }

    /// Whether the address field is absent.
    pub fn is_empty(self) -> bool {
        self == AddressSize::Zero
    }

    /// The highest address the field can carry (0 without a field).
    pub fn max_address(self) -> Address {
        match self {
            AddressSize::Zero => 0,
            AddressSize::One => 0xFF,
            AddressSize::Two => 0xFFFF,
        }
    }

    /// The broadcast address of unbalanced transmission (all ones), `None` without a field.
    pub fn broadcast(self) -> Option<Address> {
        match self {
            AddressSize::Zero => None,
            size => Some(size.max_address()),
        }
    }
}

/// The DIR bit of balanced transmission: which of the two stations sent the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// DIR = 0: from station B to station A.
    BToA,
    /// DIR = 1: from station A (the controlling station) to station B.
    AToB,
}

impl Direction {
    /// The other direction.
    pub fn inverse(self) -> Direction {
        match self {
            Direction::BToA => Direction::AToB,
            Direction::AToB => Direction::BToA,
        }
    }
}

/// Function codes of frames from a primary station (PRM = 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReqFunction {
    /// 0: reset of the remote link.
    ResetLink,
    /// 1: reset of the user process.
    ResetProcess,
    /// 2: test function of the link (balanced).
    Test,
    /// 3: user data, confirm expected.
    Data,
    /// 4: user data, no reply expected.
    DataNoRes,
    /// 8: request for access demand.
    ReqAccessDemand,
    /// 9: request status of link.
    ReqStatus,
    /// 10: request user data class 1.
    ReqData1,
    /// 11: request user data class 2.
    ReqData2,
}

impl ReqFunction {
    /// The 4-bit function code.
    pub fn code(self) -> u8 {
        match self {
            ReqFunction::ResetLink => 0,
            ReqFunction::ResetProcess => 1,
            ReqFunction::Test => 2,
            ReqFunction::Data => 3,
            ReqFunction::DataNoRes => 4,
            ReqFunction::ReqAccessDemand => 8,
            ReqFunction::ReqStatus => 9,
            ReqFunction::ReqData1 => 10,
            ReqFunction::ReqData2 => 11,
        }
    }

    /// The function of a 4-bit code, `None` for reserved codes.
    pub fn from_code(code: u8) -> Option<ReqFunction> {
        Some(match code {
            0 => ReqFunction::ResetLink,
            1 => ReqFunction::ResetProcess,
            2 => ReqFunction::Test,
            3 => ReqFunction::Data,
            4 => ReqFunction::DataNoRes,
            8 => ReqFunction::ReqAccessDemand,
            9 => ReqFunction::ReqStatus,
            10 => ReqFunction::ReqData1,
            11 => ReqFunction::ReqData2,
            _ => return None,
        })
    }
}

/// Function codes of frames from a secondary station (PRM = 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResFunction {
    /// 0: positive acknowledgement.
    Ack,
    /// 1: negative acknowledgement (message not accepted, link busy).
    Nack,
    /// 8: user data.
    ResData,
    /// 9: requested data not available.
    ResNack,
    /// 11: status of link or access demand.
    ResStatus,
    /// 14: link service not functioning.
    NotFunctioning,
    /// 15: link service not implemented.
    NotImplemented,
}

impl ResFunction {
    /// The 4-bit function code.
    pub fn code(self) -> u8 {
        match self {
            ResFunction::Ack => 0,
            ResFunction::Nack => 1,
            ResFunction::ResData => 8,
            ResFunction::ResNack => 9,
            ResFunction::ResStatus => 11,
            ResFunction::NotFunctioning => 14,
            ResFunction::NotImplemented => 15,
        }
    }

    /// The function of a 4-bit code, `None` for reserved codes.
    pub fn from_code(code: u8) -> Option<ResFunction> {
        Some(match code {
            0 => ResFunction::Ack,
            1 => ResFunction::Nack,
            8 => ResFunction::ResData,
            9 => ResFunction::ResNack,
            11 => ResFunction::ResStatus,
            14 => ResFunction::NotFunctioning,
            15 => ResFunction::NotImplemented,
            _ => return None,
        })
    }
}

/// A frame from a primary station.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReqFrame {
    /// DIR (balanced transmission only; `None` in unbalanced).
    pub direction: Option<Direction>,
    /// FCB: alternates with every new confirmed request.
    pub frame_count_bit: bool,
    /// FCV: whether FCB is valid.
    pub frame_count_valid: bool,
    /// The function.
    pub function: ReqFunction,
    /// The link address (0 with [`AddressSize::Zero`]).
    pub address: Address,
    /// User data (an ASDU); empty in fixed frames.
    pub data: Bytes,
}

/// A frame from a secondary station.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResFrame {
    /// DIR (balanced transmission only; `None` in unbalanced).
    pub direction: Option<Direction>,
    /// ACD: class 1 data is available (unbalanced).
    pub access_demand: bool,
    /// DFC: further user data would overflow the secondary.
    pub data_flow_control: bool,
    /// The function.
    pub function: ResFunction,
    /// The link address (0 with [`AddressSize::Zero`]).
    pub address: Address,
    /// User data (an ASDU); empty in fixed frames.
    pub data: Bytes,
}

/// Any frame on the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// From a primary station.
    Req(ReqFrame),
    /// From a secondary station.
    Res(ResFrame),
    /// The single character acknowledgement `0xE5` (an ACK or RES_NACK without flags).
    Short,
}

/// How frames on a line are laid out: the address field size and whether the DIR bit is
/// used (balanced transmission).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkFormat {
    /// Octets of the address field.
    pub address_size: AddressSize,
    /// Balanced transmission: bit 7 of the control field is DIR (otherwise it is sent as
    /// 0 and ignored).
    pub direction_valid: bool,
}

impl LinkFormat {
    /// Longest user data of one variable frame (L counts C, A and the data, at most 255).
    pub fn max_data_len(&self) -> usize {
        255 - 1 - self.address_size.len()
    }
}

/// Why a frame cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The address does not fit the address field.
    #[error("address {address} does not fit an address field of {size:?}")]
    Address {
        /// The address.
        address: Address,
        /// The field size.
        size: AddressSize,
    },
    /// The user data does not fit one frame.
    #[error("{len} octets of user data exceed the {max} one frame carries")]
    DataTooLong {
        /// The data's length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Why octets that look like a frame are not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The first octet is none of the start characters.
    #[error("invalid start character {0:#04x}")]
    Start(u8),
    /// A variable frame whose two length octets differ or whose second start character is
    /// missing.
    #[error("variable frame header {0:02x?} is inconsistent")]
    Length([u8; 3]),
    /// A variable frame too short to hold the control and address fields.
    #[error("variable frame length {0} is shorter than its control and address fields")]
    TooShort(u8),
    /// The checksum octet is not the sum of the control, address and data octets.
    #[error("checksum {got:#04x} where {expected:#04x} was expected")]
    Checksum {
        /// The octet received.
        got: u8,
        /// The sum.
        expected: u8,
    },
    /// The stop character is not 0x16.
    #[error("invalid stop character {0:#04x}")]
    Stop(u8),
    /// The function code is reserved.
    #[error("reserved function code {code} (PRM={primary})")]
    Function {
        /// The code.
        code: u8,
        /// The PRM bit.
        primary: bool,
    },
    /// The octets are not a complete frame.
    #[error("{got} octets where the frame needs {needed}")]
    Incomplete {
        /// Octets given.
        got: usize,
        /// Octets the header announces.
        needed: usize,
    },
}

/// The length of the frame that `data` starts with: `Ok(None)` when more octets are
/// needed to tell, an error when the octets cannot start a frame.
pub fn frame_len(format: &LinkFormat, data: &[u8]) -> Result<Option<usize>, FrameError> {
    let Some(&start) = data.first() else {
        return Ok(None);
    };
    match start {
        SINGLE_CHAR_ACK => Ok(Some(1)),
        FIXED_START => Ok(Some(4 + format.address_size.len())),
        VARIABLE_START => {
            if data.len() < 4 {
                // Check what is there already, so garbage is rejected early.
                if data.len() >= 3 && data[1] != data[2] {
                    return Err(FrameError::Length([data[1], data[2], 0]));
                }
                return Ok(None);
            }
            if data[1] != data[2] || data[3] != VARIABLE_START {
                return Err(FrameError::Length([data[1], data[2], data[3]]));
            }
            let len = data[1];
            if usize::from(len) < 1 + format.address_size.len() {
                return Err(FrameError::TooShort(len));
            }
            Ok(Some(usize::from(len) + 6))
        }
        other => Err(FrameError::Start(other)),
    }
}

/// Decodes one complete frame (exactly the octets [`frame_len`] announced).
pub fn decode(format: &LinkFormat, data: &[u8]) -> Result<Frame, FrameError> {
    let needed = frame_len(format, data)?.unwrap_or(4);
    if data.len() != needed {
        return Err(FrameError::Incomplete {
            got: data.len(),
            needed,
        });
    }
    if data[0] == SINGLE_CHAR_ACK {
        return Ok(Frame::Short);
    }
    // The user octets (C, A, data), the checksum and the stop character.
    let body = if data[0] == FIXED_START {
        &data[1..]
    } else {
        &data[4..]
    };
    let (user, tail) = body.split_at(body.len() - 2);
    if tail[1] != STOP {
        return Err(FrameError::Stop(tail[1]));
    }
    let expected = checksum(user);
    if tail[0] != expected {
        return Err(FrameError::Checksum {
            got: tail[0],
            expected,
        });
    }
    let control = user[0];
    let address_len = format.address_size.len();
    let address = user[1..1 + address_len]
        .iter()
        .rev()
        .fold(0u16, |acc, &b| (acc << 8) | u16::from(b));
    let payload = Bytes::copy_from_slice(&user[1 + address_len..]);
    let direction = format.direction_valid.then_some(if control & 0x80 != 0 {
        Direction::AToB
    } else {
        Direction::BToA
    });
    let code = control & 0x0F;
    let primary = control & 0x40 != 0;
    if primary {
        let function =
            ReqFunction::from_code(code).ok_or(FrameError::Function { code, primary })?;
        Ok(Frame::Req(ReqFrame {
            direction,
            frame_count_bit: control & 0x20 != 0,
            frame_count_valid: control & 0x10 != 0,
            function,
            address,
            data: payload,
        }))
    } else {
        let function =
            ResFunction::from_code(code).ok_or(FrameError::Function { code, primary })?;
        Ok(Frame::Res(ResFrame {
            direction,
            access_demand: control & 0x20 != 0,
            data_flow_control: control & 0x10 != 0,
            function,
            address,
            data: payload,
        }))
    }
}

/// Appends the octets of `frame` to `out` (a fixed frame when there is no user data, a
/// variable frame otherwise; `0xE5` for [`Frame::Short`]).
pub fn encode(format: &LinkFormat, frame: &Frame, out: &mut BytesMut) -> Result<(), EncodeError> {
    let (mut control, address, data) = match frame {
        Frame::Short => {
            out.put_u8(SINGLE_CHAR_ACK);
            return Ok(());
        }
        Frame::Req(req) => (
            0x40 | (u8::from(req.frame_count_bit) << 5)
                | (u8::from(req.frame_count_valid) << 4)
                | req.function.code(),
            req.address,
            &req.data,
        ),
        Frame::Res(res) => (
            (u8::from(res.access_demand) << 5)
                | (u8::from(res.data_flow_control) << 4)
                | res.function.code(),
            res.address,
            &res.data,
        ),
    };
    let direction = match frame {
        Frame::Req(req) => req.direction,
        Frame::Res(res) => res.direction,
        Frame::Short => None,
    };
    if format.direction_valid && direction == Some(Direction::AToB) {
        control |= 0x80;
    }
    let size = format.address_size;
    if address > size.max_address() {
        return Err(EncodeError::Address { address, size });
    }
    if data.len() > format.max_data_len() {
        return Err(EncodeError::DataTooLong {
            len: data.len(),
            max: format.max_data_len(),
        });
    }
    let address_octets = address.to_le_bytes();
    let address_octets = &address_octets[..size.len()];
    let sum = checksum(&[control])
        .wrapping_add(checksum(address_octets))
        .wrapping_add(checksum(data));
    if data.is_empty() {
        out.reserve(4 + size.len());
        out.put_u8(FIXED_START);
    } else {
        let len = 1 + size.len() + data.len();
        out.reserve(len + 6);
        // Cannot truncate: max_data_len keeps len within 255.
        let len = len as u8;
        out.put_slice(&[VARIABLE_START, len, len, VARIABLE_START]);
    }
    out.put_u8(control);
    out.put_slice(address_octets);
    out.put_slice(data);
    out.put_u8(sum);
    out.put_u8(STOP);
    Ok(())
}

/// Encodes `frame` into new bytes.
pub fn encode_to_bytes(format: &LinkFormat, frame: &Frame) -> Result<Bytes, EncodeError> {
    let mut out = BytesMut::new();
    encode(format, frame, &mut out)?;
    Ok(out.freeze())
}

/// The FT1.2 checksum: the arithmetic sum of the octets modulo 256.
pub fn checksum(octets: &[u8]) -> u8 {
    octets.iter().fold(0u8, |acc, &b| acc.wrapping_add(b))
}
