//! ADU framing: Modbus TCP (MBAP), RTU (CRC-16) and ASCII (LRC), each usable over TCP
//! or a serial line. A master encodes requests and decodes responses; a slave decodes
//! requests and encodes responses. Decoding is incremental from a buffer.

use bytes::{Buf, BytesMut};

use crate::codec::pdu::{request_len, response_len, PduError};
use crate::frame::{Adu, ModbusType, Request};

/// Longest ASCII ADU: `:`, 2 x (unit + 253-byte PDU + LRC) hex digits, CR LF.
pub const MAX_ASCII_FRAME: usize = 513;
/// Longest RTU ADU: unit + 253-byte PDU + CRC.
pub const MAX_RTU_FRAME: usize = 256;

/// Bytes that no framing can make sense of. Ends a TCP connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// MBAP protocol id other than 0.
    #[error("MBAP protocol id {0} is not Modbus")]
    ProtocolId(u16),
    /// MBAP length field outside 2..=254.
    #[error("MBAP length {0} out of range")]
    Length(u16),
    /// RTU CRC mismatch.
    #[error("RTU CRC mismatch")]
    Crc,
    /// ASCII LRC mismatch.
    #[error("ASCII LRC mismatch")]
    Lrc,
    /// ASCII frame with non-hex characters, odd length or no room for unit + LRC.
    #[error("malformed ASCII frame")]
    Ascii,
    /// The PDU length cannot be determined.
    #[error(transparent)]
    Pdu(#[from] PduError),
}

/// Which PDU lengths an RTU decoder applies.
#[derive(Debug, Clone, Copy)]
enum Direction {
    Request,
    Response,
}

/// Encoder/decoder for one connection. Owns the TCP transaction counter of a master.
#[derive(Debug)]
pub struct Framer {
    kind: ModbusType,
    next_transaction_id: u16,
}

impl Framer {
    /// A framer for `kind`; the first TCP transaction id is 1.
    pub fn new(kind: ModbusType) -> Self {
        Self {
            kind,
            next_transaction_id: 1,
        }
    }

    /// The framing kind.
    pub fn kind(&self) -> ModbusType {
        self.kind
    }

    /// Sets the next TCP transaction id (tests of the wrap-around).
    pub fn set_next_transaction_id(&mut self, id: u16) {
        self.next_transaction_id = id;
    }

    /// Encodes one request attempt into `out` (cleared first). Returns the transaction
    /// id used (TCP framing; every attempt takes a fresh one, wrapping after 0xFFFF).
    pub fn encode_request(
        &mut self,
        unit: u8,
        request: &Request,
        out: &mut Vec<u8>,
    ) -> Option<u16> {
        let mut pdu = Vec::with_capacity(16);
        request.encode(&mut pdu);
        let tid = match self.kind {
            ModbusType::Tcp => {
                let tid = self.next_transaction_id;
                self.next_transaction_id = tid.wrapping_add(1);
                Some(tid)
            }
            ModbusType::Rtu | ModbusType::Ascii => None,
        };
        self.encode_adu(tid, unit, &pdu, out);
        tid
    }

    /// Encodes an ADU around `pdu` into `out` (cleared first). `transaction_id` is
    /// used by TCP framing only (a slave echoes the request's).
    pub fn encode_adu(&self, transaction_id: Option<u16>, unit: u8, pdu: &[u8], out: &mut Vec<u8>) {
        out.clear();
        match self.kind {
            ModbusType::Tcp => {
                out.extend_from_slice(&transaction_id.unwrap_or(0).to_be_bytes());
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&((pdu.len() + 1) as u16).to_be_bytes());
                out.push(unit);
                out.extend_from_slice(pdu);
            }
            ModbusType::Rtu => {
                out.push(unit);
                out.extend_from_slice(pdu);
                let crc = crc16(out);
                out.extend_from_slice(&crc.to_le_bytes());
            }
            ModbusType::Ascii => {
                let mut raw = Vec::with_capacity(pdu.len() + 2);
                raw.push(unit);
                raw.extend_from_slice(pdu);
                raw.push(lrc(&raw));
                out.push(b':');
                for byte in raw {
                    out.push(HEX[usize::from(byte >> 4)]);
                    out.push(HEX[usize::from(byte & 0xF)]);
                }
                out.extend_from_slice(b"\r\n");
            }
        }
    }

    /// Takes one complete response ADU off the front of `buf`, or `Ok(None)` if more
    /// bytes are needed. Bytes of a bad frame are left in place.
    pub fn decode_response(&self, buf: &mut BytesMut) -> Result<Option<Adu>, FrameError> {
        self.decode(buf, Direction::Response)
    }

    /// Takes one complete request ADU off the front of `buf`, or `Ok(None)` if more
    /// bytes are needed. Bytes of a bad frame are left in place.
    pub fn decode_request(&self, buf: &mut BytesMut) -> Result<Option<Adu>, FrameError> {
        self.decode(buf, Direction::Request)
    }

    fn decode(&self, buf: &mut BytesMut, direction: Direction) -> Result<Option<Adu>, FrameError> {
        match self.kind {
            ModbusType::Tcp => decode_tcp(buf),
            ModbusType::Rtu => decode_rtu(buf, direction),
            ModbusType::Ascii => decode_ascii(buf),
        }
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn decode_tcp(buf: &mut BytesMut) -> Result<Option<Adu>, FrameError> {
    if buf.len() < 7 {
        return Ok(None);
    }
    let protocol = u16::from_be_bytes([buf[2], buf[3]]);
    if protocol != 0 {
        return Err(FrameError::ProtocolId(protocol));
    }
    let len = u16::from_be_bytes([buf[4], buf[5]]);
    if !(2..=254).contains(&len) {
        return Err(FrameError::Length(len));
    }
    let total = 6 + usize::from(len);
    if buf.len() < total {
        return Ok(None);
    }
    let frame = buf.split_to(total);
    Ok(Some(Adu {
        transaction_id: Some(u16::from_be_bytes([frame[0], frame[1]])),
        unit: frame[6],
        pdu: frame[7..].to_vec(),
    }))
}

fn decode_rtu(buf: &mut BytesMut, direction: Direction) -> Result<Option<Adu>, FrameError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let len = match direction {
        Direction::Request => request_len(&buf[1..])?,
        Direction::Response => response_len(&buf[1..])?,
    };
    let Some(pdu_len) = len else {
        return Ok(None);
    };
    let total = 1 + pdu_len + 2;
    if total > MAX_RTU_FRAME {
        // Only a length field can claim this much; waiting for it would stall the
        // connection until a timeout.
        return Err(PduError::BadLength(buf[1]).into());
    }
    if buf.len() < total {
        return Ok(None);
    }
    let crc = u16::from_le_bytes([buf[total - 2], buf[total - 1]]);
    if crc16(&buf[..total - 2]) != crc {
        return Err(FrameError::Crc);
    }
    let frame = buf.split_to(total);
    Ok(Some(Adu {
        transaction_id: None,
        unit: frame[0],
        pdu: frame[1..total - 2].to_vec(),
    }))
}

fn decode_ascii(buf: &mut BytesMut) -> Result<Option<Adu>, FrameError> {
    // Line noise before the start character is not part of any frame.
    match buf.iter().position(|b| *b == b':') {
        Some(start) => buf.advance(start),
        None => {
            buf.clear();
            return Ok(None);
        }
    }
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        if buf.len() > MAX_ASCII_FRAME {
            return Err(FrameError::Ascii);
        }
        return Ok(None);
    };
    // Checked here too, not only while waiting for CR LF, so that the result does not
    // depend on how the bytes arrived.
    if end + 2 > MAX_ASCII_FRAME {
        return Err(FrameError::Ascii);
    }
    let hex = &buf[1..end];
    if hex.len() % 2 != 0 || hex.len() < 6 {
        return Err(FrameError::Ascii);
    }
    let raw = hex
        .chunks_exact(2)
        .map(|pair| Some(hex_digit(pair[0])? << 4 | hex_digit(pair[1])?))
        .collect::<Option<Vec<u8>>>()
        .ok_or(FrameError::Ascii)?;
    let (&received_lrc, body) = raw.split_last().ok_or(FrameError::Ascii)?;
    if lrc(body) != received_lrc {
        return Err(FrameError::Lrc);
    }
    buf.advance(end + 2);
    Ok(Some(Adu {
        transaction_id: None,
        unit: body[0],
        pdu: body[1..].to_vec(),
    }))
}

/// Value of one hex digit (either case). Unlike `u8::from_str_radix`, rejects `+`.
fn hex_digit(c: u8) -> Option<u8> {
    char::from(c).to_digit(16).map(|d| d as u8)
}

/// Modbus CRC-16 (reflected polynomial 0xA001, initial value 0xFFFF).
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for byte in bytes {
        crc ^= u16::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// Modbus ASCII LRC: two's complement of the byte sum.
pub fn lrc(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |sum, b| sum.wrapping_add(*b))
        .wrapping_neg()
}
