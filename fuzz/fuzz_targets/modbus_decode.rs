//! Feeds arbitrary bytes, as a slave's byte stream, to the Modbus master's response
//! framers (TCP/MBAP, RTU, ASCII) and every decoded ADU to the PDU decoder. The first
//! byte picks the framing and the chunk size (1 to 32 bytes).
//!
//! Nothing may panic, and:
//! - decoding the stream in chunks yields the same ADUs and the same error as decoding
//!   it all at once (the decoder is incremental, never position dependent);
//! - every decoded ADU re-encodes to exactly the bytes it was taken from (ASCII: up to
//!   hex letter case), so no byte is skipped, invented or misread;
//! - a PDU that `response_len` sizes and `decode_response` accepts has that length.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use modbus_master::config::ModbusType;
use modbus_master::framing::{crc16, lrc, Adu, FrameError, Framer};
use modbus_master::pdu::{decode_response, response_len};

/// ADUs plus the final error, if any.
type Outcome = (Vec<Adu>, Option<FrameError>);

/// The bytes `adu` must have been decoded from.
fn encode(kind: ModbusType, adu: &Adu) -> Vec<u8> {
    let mut out = Vec::new();
    match kind {
        ModbusType::Tcp => {
            let tid = adu.transaction_id.expect("TCP ADUs carry a transaction id");
            out.extend_from_slice(&tid.to_be_bytes());
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&(adu.pdu.len() as u16 + 1).to_be_bytes());
            out.push(adu.unit);
            out.extend_from_slice(&adu.pdu);
        }
        ModbusType::Rtu => {
            out.push(adu.unit);
            out.extend_from_slice(&adu.pdu);
            let crc = crc16(&out);
            out.extend_from_slice(&crc.to_le_bytes());
        }
        ModbusType::Ascii => {
            let mut raw = vec![adu.unit];
            raw.extend_from_slice(&adu.pdu);
            raw.push(lrc(&raw));
            out.push(b':');
            for byte in raw {
                out.extend_from_slice(format!("{byte:02X}").as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

/// Decodes everything in `buf`, checking each ADU against the bytes it consumed.
fn drain(framer: &Framer, buf: &mut BytesMut, adus: &mut Vec<Adu>) -> Option<FrameError> {
    loop {
        let before = buf.clone();
        match framer.decode(buf) {
            Ok(Some(adu)) => {
                let consumed = &before[..before.len() - buf.len()];
                let expected = encode(framer.kind(), &adu);
                match framer.kind() {
                    // Line noise before ':' is skipped; hex digits may be lower case.
                    ModbusType::Ascii => {
                        assert!(consumed.len() >= expected.len());
                        let frame = &consumed[consumed.len() - expected.len()..];
                        assert!(frame.eq_ignore_ascii_case(&expected), "{frame:?}");
                    }
                    _ => assert_eq!(consumed, &expected[..]),
                }
                check_pdu(&adu.pdu);
                adus.push(adu);
            }
            Ok(None) => return None,
            Err(e) => return Some(e),
        }
    }
}

fn check_pdu(pdu: &[u8]) {
    if decode_response(pdu).is_ok() {
        if let Ok(Some(len)) = response_len(pdu) {
            assert_eq!(len, pdu.len(), "decoded PDU disagrees with its length");
        }
    }
}

fn run(kind: ModbusType, data: &[u8], chunk: usize) -> Outcome {
    let framer = Framer::new(kind);
    let mut buf = BytesMut::new();
    let mut adus = Vec::new();
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        if let Some(e) = drain(&framer, &mut buf, &mut adus) {
            return (adus, Some(e));
        }
    }
    (adus, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, stream)) = data.split_first() else {
        return;
    };
    let kind = match selector % 3 {
        0 => ModbusType::Tcp,
        1 => ModbusType::Rtu,
        _ => ModbusType::Ascii,
    };
    let chunk = usize::from(selector / 3 % 32) + 1;
    let whole = run(kind, stream, stream.len().max(1));
    let chunked = run(kind, stream, chunk);
    assert_eq!(whole, chunked, "chunk size {chunk} changes the result");
    // The PDU decoder also sees the raw bytes directly.
    check_pdu(stream);
});
