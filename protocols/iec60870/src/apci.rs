//! IEC 60870-5-104 APCI: I, S and U frames, their encoder, a stream decoder and the
//! sans-IO connection state machine ([`Session`]).
//!
//! Every APDU starts with the start byte `0x68`, a length octet (4..=253: the four
//! control octets plus the ASDU) and four control octets:
//!
//! | frame | octet 1 | octet 2 | octet 3 | octet 4 |
//! |---|---|---|---|---|
//! | I | `N(S) << 1` (bit 0 = 0) | `N(S) >> 7` | `N(R) << 1` | `N(R) >> 7` |
//! | S | `0x01` | `0x00` | `N(R) << 1` | `N(R) >> 7` |
//! | U | function (`0x07` STARTDT act, `0x0B` con, `0x13`/`0x23` STOPDT, `0x43`/`0x83` TESTFR) | `0` | `0` | `0` |
//!
//! Sequence numbers are 15 bits, counted modulo [`SEQUENCE_MODULO`]. ASDUs are carried
//! as opaque [`Bytes`]: this layer never looks inside them.

mod session;

pub use session::{
    decode_all, CloseReason, Event, Role, SendError, SendId, SendOutcome, Session, SessionConfig,
    TimeoutCause,
};

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// First octet of every APDU.
pub const START_BYTE: u8 = 0x68;
/// Sequence numbers (N(S), N(R)) count modulo 2^15.
pub const SEQUENCE_MODULO: u16 = 0x8000;
/// Smallest value of the length octet: the four control octets.
pub const MIN_APDU_LENGTH: u8 = 4;
/// Largest value of the length octet (the standard's 253: an APDU is at most 255 bytes).
pub const MAX_APDU_LENGTH: u8 = 253;
/// Largest ASDU an I-frame can carry (`MAX_APDU_LENGTH` minus the control octets).
pub const MAX_ASDU_SIZE: usize = (MAX_APDU_LENGTH - MIN_APDU_LENGTH) as usize;
/// Bytes before the ASDU: start byte, length and four control octets.
pub const HEADER_SIZE: usize = 6;

/// Errors of the APCI layer: bytes that are not an APDU, frames that break the
/// connection rules, and ASDUs too long to frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApciError {
    /// The first octet of a frame is not `0x68`.
    #[error("invalid start byte 0x{0:02x} (expected 0x68)")]
    InvalidStartByte(u8),
    /// The length octet is outside 4..=253.
    #[error("invalid APDU length {0} (expected 4..=253)")]
    InvalidLength(u8),
    /// An S or U frame whose length octet is not 4.
    #[error("{frame} frame with length {length} (expected 4)")]
    InvalidFrameLength {
        /// `"S"` or `"U"`.
        frame: &'static str,
        /// The length octet received.
        length: u8,
    },
    /// Control octets that are no I, S or U frame (unknown U function, S frame with
    /// reserved bits set, U frame with non-zero octets 2..4).
    #[error("invalid control field {0:02x?}")]
    InvalidControlField([u8; 4]),
    /// An ASDU longer than [`MAX_ASDU_SIZE`] was given to send.
    #[error("ASDU of {0} bytes exceeds the maximum of 249")]
    AsduTooLong(usize),
    /// The peer's I-frame does not carry the next expected send sequence number.
    #[error("out-of-order send sequence number {received} (expected {expected})")]
    SequenceMismatch {
        /// N(R) we expected as the peer's N(S).
        expected: u16,
        /// N(S) the peer sent.
        received: u16,
    },
    /// The peer acknowledged an I-frame we never sent (N(R) beyond our N(S), or behind
    /// its previous acknowledgement).
    #[error("acknowledgement {ack} for an unsent I-frame (acknowledged up to {acked}, sent up to {sent})")]
    AckForUnsent {
        /// The peer's N(R).
        ack: u16,
        /// Our oldest unacknowledged send sequence number.
        acked: u16,
        /// Our next send sequence number.
        sent: u16,
    },
}

/// U-frame functions: start/stop of data transfer and link test, activation and
/// confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UFunction {
    /// STARTDT act: the controlling station asks to start data transfer.
    StartDtAct,
    /// STARTDT con.
    StartDtCon,
    /// STOPDT act: the controlling station asks to stop data transfer.
    StopDtAct,
    /// STOPDT con.
    StopDtCon,
    /// TESTFR act: link test.
    TestFrAct,
    /// TESTFR con.
    TestFrCon,
}

impl UFunction {
    /// The first control octet of this function.
    pub const fn control_byte(self) -> u8 {
        match self {
            UFunction::StartDtAct => 0x07,
            UFunction::StartDtCon => 0x0B,
            UFunction::StopDtAct => 0x13,
            UFunction::StopDtCon => 0x23,
            UFunction::TestFrAct => 0x43,
            UFunction::TestFrCon => 0x83,
        }
    }

    /// The function of a first control octet, if it is one of the six.
    pub const fn from_control_byte(byte: u8) -> Option<UFunction> {
        Some(match byte {
            0x07 => UFunction::StartDtAct,
            0x0B => UFunction::StartDtCon,
            0x13 => UFunction::StopDtAct,
            0x23 => UFunction::StopDtCon,
            0x43 => UFunction::TestFrAct,
            0x83 => UFunction::TestFrCon,
            _ => return None,
        })
    }
}

/// One APDU of the 104 stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Apdu {
    /// Information transfer: one ASDU with the sender's N(S) and the acknowledged N(R).
    I {
        /// Send sequence number N(S), 0..32768.
        send_seq: u16,
        /// Receive sequence number N(R): every I-frame before it is acknowledged.
        recv_seq: u16,
        /// The ASDU, opaque to this layer (at most [`MAX_ASDU_SIZE`] bytes).
        asdu: Bytes,
    },
    /// Supervisory: acknowledges every I-frame before `recv_seq`.
    S {
        /// Receive sequence number N(R).
        recv_seq: u16,
    },
    /// Unnumbered control function.
    U(UFunction),
}

impl Apdu {
    /// Appends the frame's bytes to `buf`. Sequence numbers are taken modulo 32768.
    pub fn encode(&self, buf: &mut BytesMut) -> Result<(), ApciError> {
        match self {
            Apdu::I {
                send_seq,
                recv_seq,
                asdu,
            } => encode_i(*send_seq, *recv_seq, asdu, buf),
            Apdu::S { recv_seq } => {
                encode_s(*recv_seq, buf);
                Ok(())
            }
            Apdu::U(function) => {
                encode_u(*function, buf);
                Ok(())
            }
        }
    }

    /// The frame as a new buffer.
    pub fn to_bytes(&self) -> Result<Bytes, ApciError> {
        let mut buf = BytesMut::with_capacity(HEADER_SIZE + self.asdu_len());
        self.encode(&mut buf)?;
        Ok(buf.freeze())
    }

    fn asdu_len(&self) -> usize {
        match self {
            Apdu::I { asdu, .. } => asdu.len(),
            _ => 0,
        }
    }
}

/// Appends an I-frame carrying `asdu` to `buf` (the allocation-free path of the session).
pub fn encode_i(
    send_seq: u16,
    recv_seq: u16,
    asdu: &[u8],
    buf: &mut BytesMut,
) -> Result<(), ApciError> {
    if asdu.len() > MAX_ASDU_SIZE {
        return Err(ApciError::AsduTooLong(asdu.len()));
    }
    let send_seq = send_seq % SEQUENCE_MODULO;
    let recv_seq = recv_seq % SEQUENCE_MODULO;
    buf.reserve(HEADER_SIZE + asdu.len());
    buf.put_u8(START_BYTE);
    // Cannot truncate: asdu.len() <= 249 was checked above.
    buf.put_u8(MIN_APDU_LENGTH + asdu.len() as u8);
    buf.put_u16_le(send_seq << 1);
    buf.put_u16_le(recv_seq << 1);
    buf.put_slice(asdu);
    Ok(())
}

/// Appends an S-frame acknowledging everything before `recv_seq` to `buf`.
pub fn encode_s(recv_seq: u16, buf: &mut BytesMut) {
    let recv_seq = recv_seq % SEQUENCE_MODULO;
    buf.reserve(HEADER_SIZE);
    buf.put_slice(&[START_BYTE, MIN_APDU_LENGTH, 0x01, 0x00]);
    buf.put_u16_le(recv_seq << 1);
}

/// Appends a U-frame to `buf`.
pub fn encode_u(function: UFunction, buf: &mut BytesMut) {
    buf.put_slice(&[
        START_BYTE,
        MIN_APDU_LENGTH,
        function.control_byte(),
        0,
        0,
        0,
    ]);
}

/// Stream decoder: takes whole APDUs off the front of a receive buffer.
///
/// Stateless apart from the buffer it is given, so one decoder serves a connection for
/// its whole life. An error means the stream is out of step: the connection must end.
#[derive(Debug, Default, Clone, Copy)]
pub struct ApduDecoder;

impl ApduDecoder {
    /// A decoder.
    pub const fn new() -> Self {
        ApduDecoder
    }

    /// The next APDU of `buf`, removed from it; `Ok(None)` while the frame is partial
    /// (nothing is consumed then). The ASDU of an I-frame shares `buf`'s allocation
    /// (no copy). A bad start byte or length is reported as soon as its octet arrives.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Apdu>, ApciError> {
        let Some(&start) = buf.first() else {
            return Ok(None);
        };
        if start != START_BYTE {
            return Err(ApciError::InvalidStartByte(start));
        }
        let Some(&length) = buf.get(1) else {
            return Ok(None);
        };
        if !(MIN_APDU_LENGTH..=MAX_APDU_LENGTH).contains(&length) {
            return Err(ApciError::InvalidLength(length));
        }
        let total = 2 + usize::from(length);
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        let control = [buf[2], buf[3], buf[4], buf[5]];
        let apdu = if control[0] & 0x01 == 0 {
            let send_seq = u16::from_le_bytes([control[0], control[1]]) >> 1;
            let recv_seq = recv_seq_of(control)?;
            buf.advance(HEADER_SIZE);
            let asdu = buf.split_to(total - HEADER_SIZE).freeze();
            return Ok(Some(Apdu::I {
                send_seq,
                recv_seq,
                asdu,
            }));
        } else if control[0] & 0x03 == 0x01 {
            if length != MIN_APDU_LENGTH {
                return Err(ApciError::InvalidFrameLength { frame: "S", length });
            }
            if control[0] != 0x01 || control[1] != 0 {
                return Err(ApciError::InvalidControlField(control));
            }
            Apdu::S {
                recv_seq: recv_seq_of(control)?,
            }
        } else {
            if length != MIN_APDU_LENGTH {
                return Err(ApciError::InvalidFrameLength { frame: "U", length });
            }
            let function = UFunction::from_control_byte(control[0])
                .filter(|_| control[1..] == [0, 0, 0])
                .ok_or(ApciError::InvalidControlField(control))?;
            Apdu::U(function)
        };
        buf.advance(total);
        Ok(Some(apdu))
    }
}

/// N(R) of octets 3 and 4; bit 0 of octet 3 is reserved (zero) in I and S frames.
fn recv_seq_of(control: [u8; 4]) -> Result<u16, ApciError> {
    if control[2] & 0x01 != 0 {
        return Err(ApciError::InvalidControlField(control));
    }
    Ok(u16::from_le_bytes([control[2], control[3]]) >> 1)
}
