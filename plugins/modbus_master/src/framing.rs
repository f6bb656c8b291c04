//! ADU framing: Modbus TCP (MBAP), RTU (CRC-16) and ASCII (LRC), each usable over TCP
//! or a serial port. Encodes requests; decodes responses incrementally from a buffer.

use bytes::{Buf, BytesMut};

use crate::config::ModbusType;
use crate::pdu::{response_len, PduError, Request};

/// Longest ASCII ADU: `:`, 2 x (unit + 253-byte PDU + LRC) hex digits, CR LF.
const MAX_ASCII_FRAME: usize = 513;
/// Longest RTU ADU: unit + 253-byte PDU + CRC.
const MAX_RTU_FRAME: usize = 256;

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

/// Bytes from the slave that no framing can make sense of. Ends the connection.
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

/// Encoder/decoder for one connection. Owns the TCP transaction counter.
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

    /// Encodes one request attempt into `out` (cleared first). Returns the transaction
    /// id used (TCP framing; every attempt takes a fresh one, wrapping after 0xFFFF).
    pub fn encode(&mut self, unit: u8, request: &Request, out: &mut Vec<u8>) -> Option<u16> {
        out.clear();
        match self.kind {
            ModbusType::Tcp => {
                let tid = self.next_transaction_id;
                self.next_transaction_id = tid.wrapping_add(1);
                out.extend_from_slice(&tid.to_be_bytes());
                out.extend_from_slice(&[0, 0, 0, 0, unit]);
                request.encode(out);
                let len = (out.len() - 6) as u16;
                out[4..6].copy_from_slice(&len.to_be_bytes());
                Some(tid)
            }
            ModbusType::Rtu => {
                out.push(unit);
                request.encode(out);
                let crc = crc16(out);
                out.extend_from_slice(&crc.to_le_bytes());
                None
            }
            ModbusType::Ascii => {
                let mut raw = vec![unit];
                request.encode(&mut raw);
                raw.push(lrc(&raw));
                out.push(b':');
                for byte in raw {
                    out.extend_from_slice(format!("{byte:02X}").as_bytes());
                }
                out.extend_from_slice(b"\r\n");
                None
            }
        }
    }

    /// Takes one complete ADU off the front of `buf`, or `Ok(None)` if more bytes are
    /// needed. Bytes of a bad frame are left in place; the caller ends the connection.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Adu>, FrameError> {
        match self.kind {
            ModbusType::Tcp => decode_tcp(buf),
            ModbusType::Rtu => decode_rtu(buf),
            ModbusType::Ascii => decode_ascii(buf),
        }
    }
}

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

fn decode_rtu(buf: &mut BytesMut) -> Result<Option<Adu>, FrameError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let Some(pdu_len) = response_len(&buf[1..])? else {
        return Ok(None);
    };
    let total = 1 + pdu_len + 2;
    if total > MAX_RTU_FRAME {
        // Only an FC24 byte count can claim this much; waiting for it would stall the
        // connection until the request times out.
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

#[cfg(test)]
mod tests {
    use super::*;

    const READ: Request = Request::ReadHoldingRegisters {
        address: 0x6B,
        quantity: 3,
    };

    #[test]
    fn tcp_transaction_ids_start_at_one_and_wrap() {
        let mut framer = Framer::new(ModbusType::Tcp);
        let mut out = Vec::new();
        assert_eq!(framer.encode(0x11, &READ, &mut out), Some(1));
        assert_eq!(out, [0, 1, 0, 0, 0, 6, 0x11, 3, 0, 0x6B, 0, 3]);
        framer.next_transaction_id = 0xFFFF;
        assert_eq!(framer.encode(1, &READ, &mut out), Some(0xFFFF));
        assert_eq!(framer.encode(1, &READ, &mut out), Some(0));
    }

    #[test]
    fn rtu_request_matches_reference_crc() {
        let mut out = Vec::new();
        Framer::new(ModbusType::Rtu).encode(0x11, &READ, &mut out);
        // The classic example frame from the Modbus serial line guide.
        assert_eq!(out, [0x11, 3, 0, 0x6B, 0, 3, 0x76, 0x87]);
    }

    #[test]
    fn ascii_request_and_lrc() {
        let mut out = Vec::new();
        Framer::new(ModbusType::Ascii).encode(0x11, &READ, &mut out);
        assert_eq!(out, b":1103006B00037E\r\n");
    }

    #[test]
    fn tcp_decodes_partial_and_back_to_back_frames() {
        let framer = Framer::new(ModbusType::Tcp);
        let mut buf = BytesMut::from(&[0u8, 7, 0, 0, 0, 5, 1, 3, 2][..]);
        assert_eq!(framer.decode(&mut buf), Ok(None));
        buf.extend_from_slice(&[0, 42, 0, 8, 0, 0, 0, 3, 1, 0x83, 2]);
        let adu = framer.decode(&mut buf).unwrap().unwrap();
        assert_eq!(
            adu,
            Adu {
                transaction_id: Some(7),
                unit: 1,
                pdu: vec![3, 2, 0, 42]
            }
        );
        let adu = framer.decode(&mut buf).unwrap().unwrap();
        assert_eq!(adu.pdu, vec![0x83, 2]);
        assert!(buf.is_empty());
    }

    #[test]
    fn tcp_rejects_garbage_header() {
        let framer = Framer::new(ModbusType::Tcp);
        let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]);
        assert!(matches!(
            framer.decode(&mut buf),
            Err(FrameError::ProtocolId(_))
        ));
        let mut buf = BytesMut::from(&[0u8, 1, 0, 0, 0xFF, 0xFF, 1][..]);
        assert_eq!(framer.decode(&mut buf), Err(FrameError::Length(0xFFFF)));
        let mut buf = BytesMut::from(&[0u8, 1, 0, 0, 0, 1, 1][..]);
        assert_eq!(framer.decode(&mut buf), Err(FrameError::Length(1)));
    }

    #[test]
    fn rtu_decodes_byte_by_byte_and_checks_crc() {
        let framer = Framer::new(ModbusType::Rtu);
        let mut frame = vec![0x11, 3, 6, 0xAE, 0x41, 0x56, 0x52, 0x43, 0x40];
        let crc = crc16(&frame);
        frame.extend_from_slice(&crc.to_le_bytes());
        let mut buf = BytesMut::new();
        for (i, byte) in frame.iter().enumerate() {
            buf.extend_from_slice(&[*byte]);
            let decoded = framer.decode(&mut buf).unwrap();
            assert_eq!(decoded.is_some(), i == frame.len() - 1);
            if let Some(adu) = decoded {
                assert_eq!(adu.unit, 0x11);
                assert_eq!(adu.pdu, frame[1..frame.len() - 2]);
            }
        }
        let mut bad = BytesMut::from(&[1u8, 0x83, 2, 0, 0][..]);
        assert_eq!(framer.decode(&mut bad), Err(FrameError::Crc));
        let mut unknown = BytesMut::from(&[1u8, 0x2B, 0, 0][..]);
        assert!(matches!(
            framer.decode(&mut unknown),
            Err(FrameError::Pdu(_))
        ));
    }

    #[test]
    fn ascii_decodes_and_skips_noise() {
        let framer = Framer::new(ModbusType::Ascii);
        let raw = [1u8, 3, 2, 0x12, 0x34];
        let text = format!(":0103021234{:02X}\r\n", lrc(&raw));
        let mut buf = BytesMut::from(&b"\x00zz"[..]);
        buf.extend_from_slice(&text.as_bytes()[..5]);
        assert_eq!(framer.decode(&mut buf), Ok(None));
        buf.extend_from_slice(&text.as_bytes()[5..]);
        let adu = framer.decode(&mut buf).unwrap().unwrap();
        assert_eq!(adu.unit, 1);
        assert_eq!(adu.pdu, vec![3, 2, 0x12, 0x34]);
        let mut bad = BytesMut::from(&b":0103021234FF\r\n"[..]);
        assert_eq!(framer.decode(&mut bad), Err(FrameError::Lrc));
        let mut bad = BytesMut::from(&b":01XX\r\n"[..]);
        assert_eq!(framer.decode(&mut bad), Err(FrameError::Ascii));
        let mut long = BytesMut::from(&[b':'; 600][..]);
        assert_eq!(framer.decode(&mut long), Err(FrameError::Ascii));
    }

    /// Fuzz finding: `u8::from_str_radix` takes a leading `+`, so `+0` was read as the
    /// byte 0 and a frame with a non-hex character decoded.
    #[test]
    fn ascii_rejects_a_sign_among_the_hex_digits() {
        let framer = Framer::new(ModbusType::Ascii);
        let mut good = BytesMut::from(&b":01180006000200010002DC\r\n"[..]);
        assert!(framer.decode(&mut good).unwrap().is_some());
        let mut signed = BytesMut::from(&b":0118+006000200010002DC\r\n"[..]);
        assert_eq!(framer.decode(&mut signed), Err(FrameError::Ascii));
    }

    /// Found in review (the fuzz target checks this property): an over-long frame was
    /// rejected while its CR LF was outstanding, but
    /// decoded when it arrived in one piece, so the result depended on the chunking.
    #[test]
    fn ascii_rejects_an_over_long_frame_even_when_complete() {
        let framer = Framer::new(ModbusType::Ascii);
        let mut raw = vec![1u8, 3, 0];
        raw.extend([0u8; 300]);
        raw.push(lrc(&raw));
        let hex: String = raw.iter().map(|b| format!("{b:02X}")).collect();
        let mut buf = BytesMut::from(format!(":{hex}\r\n").as_bytes());
        assert_eq!(framer.decode(&mut buf), Err(FrameError::Ascii));
    }

    /// An RTU FC24 byte count beyond the longest ADU ends the session at once instead
    /// of waiting for up to 64 KiB that can never form a valid frame.
    #[test]
    fn rtu_rejects_a_fifo_byte_count_beyond_the_longest_adu() {
        let framer = Framer::new(ModbusType::Rtu);
        let mut buf = BytesMut::from(&[1u8, 24, 0x01, 0x00][..]);
        assert_eq!(
            framer.decode(&mut buf),
            Err(FrameError::Pdu(PduError::BadLength(24)))
        );
        // The longest legal FIFO answer (31 registers) still waits for its bytes.
        let mut buf = BytesMut::from(&[1u8, 24, 0, 64][..]);
        assert_eq!(framer.decode(&mut buf), Ok(None));
    }
}
