//! Feeds arbitrary bytes to the shared Modbus crate's framers (TCP/MBAP, RTU, ASCII),
//! as a slave's byte stream (response decoding, what a master reads) or as a master's
//! (request decoding, what a slave reads), and every decoded ADU to the matching PDU
//! decoder. The first byte picks the framing, the direction and the chunk size (1 to
//! 32 bytes).
//!
//! Nothing may panic, and:
//! - decoding the stream in chunks yields the same ADUs and the same error as decoding
//!   it all at once (the decoder is incremental, never position dependent);
//! - every decoded ADU re-encodes to exactly the bytes it was taken from (ASCII: up to
//!   hex letter case), so no byte is skipped, invented or misread;
//! - a PDU that `response_len` sizes and `decode_response` accepts has that length;
//! - a request PDU that `decode_request` accepts has the length `request_len` gives and
//!   re-encodes to a PDU of that length that decodes back to it; a refused one names a standard exception.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use modbus::{
    crc16, decode_request, decode_response, lrc, request_len, response_len, Adu, ExceptionCode,
    FrameError, Framer, ModbusType,
};

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
fn drain(
    framer: &Framer,
    requests: bool,
    buf: &mut BytesMut,
    adus: &mut Vec<Adu>,
) -> Option<FrameError> {
    loop {
        let before = buf.clone();
        let decoded = if requests {
            framer.decode_request(buf)
        } else {
            framer.decode_response(buf)
        };
        match decoded {
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
                check_request(&adu.pdu);
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

fn check_request(pdu: &[u8]) {
    match decode_request(pdu) {
        Ok(request) => {
            assert_eq!(request_len(pdu), Ok(Some(pdu.len())), "{request:?}");
            // Padding bits of FC15's last byte are not kept, so compare decoded values.
            let mut out = Vec::new();
            request.encode(&mut out);
            assert_eq!(out.len(), pdu.len(), "{request:?}");
            assert_eq!(decode_request(&out).as_ref(), Ok(&request));
        }
        Err(bad) => assert!(
            [
                ExceptionCode::ILLEGAL_FUNCTION,
                ExceptionCode::ILLEGAL_DATA_ADDRESS,
                ExceptionCode::ILLEGAL_DATA_VALUE
            ]
            .contains(&bad.exception),
            "{bad:?}"
        ),
    }
}

fn run(kind: ModbusType, requests: bool, data: &[u8], chunk: usize) -> Outcome {
    let framer = Framer::new(kind);
    let mut buf = BytesMut::new();
    let mut adus = Vec::new();
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        if let Some(e) = drain(&framer, requests, &mut buf, &mut adus) {
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
    let requests = selector / 3 % 2 == 1;
    let chunk = usize::from(selector / 6 % 32) + 1;
    let whole = run(kind, requests, stream, stream.len().max(1));
    let chunked = run(kind, requests, stream, chunk);
    assert_eq!(whole, chunked, "chunk size {chunk} changes the result");
    // The PDU decoders also see the raw bytes directly.
    check_pdu(stream);
    check_request(stream);
});
