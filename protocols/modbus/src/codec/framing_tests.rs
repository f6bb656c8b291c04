//! Framing tests: reference frames, partial and back-to-back frames, garbage,
//! oversize lengths, both directions.

use bytes::BytesMut;

use crate::codec::framing::*;
use crate::codec::pdu::PduError;
use crate::frame::{Adu, ModbusType, Request};

const READ: Request = Request::ReadHoldingRegisters {
    address: 0x6B,
    quantity: 3,
};

#[test]
fn tcp_transaction_ids_start_at_one_and_wrap() {
    let mut framer = Framer::new(ModbusType::Tcp);
    let mut out = Vec::new();
    assert_eq!(framer.encode_request(0x11, &READ, &mut out), Some(1));
    assert_eq!(out, [0, 1, 0, 0, 0, 6, 0x11, 3, 0, 0x6B, 0, 3]);
    framer.set_next_transaction_id(0xFFFF);
    assert_eq!(framer.encode_request(1, &READ, &mut out), Some(0xFFFF));
    assert_eq!(framer.encode_request(1, &READ, &mut out), Some(0));
}

#[test]
fn rtu_request_matches_reference_crc() {
    let mut out = Vec::new();
    Framer::new(ModbusType::Rtu).encode_request(0x11, &READ, &mut out);
    // The classic example frame from the Modbus serial line guide.
    assert_eq!(out, [0x11, 3, 0, 0x6B, 0, 3, 0x76, 0x87]);
}

#[test]
fn ascii_request_and_lrc() {
    let mut out = Vec::new();
    Framer::new(ModbusType::Ascii).encode_request(0x11, &READ, &mut out);
    assert_eq!(out, b":1103006B00037E\r\n");
}

#[test]
fn requests_round_trip_through_every_framing_in_pieces() {
    for kind in [ModbusType::Tcp, ModbusType::Rtu, ModbusType::Ascii] {
        let mut master = Framer::new(kind);
        let slave = Framer::new(kind);
        let mut wire = Vec::new();
        let mut out = Vec::new();
        let requests = [
            READ,
            Request::WriteMultipleCoils {
                address: 3,
                values: vec![true; 11],
            },
            Request::ReadWriteMultipleRegisters {
                read_address: 0,
                read_quantity: 2,
                write_address: 9,
                values: vec![1, 2, 3],
            },
        ];
        for request in &requests {
            master.encode_request(7, request, &mut out);
            wire.extend_from_slice(&out);
        }
        // One byte at a time: every request comes out once, whole.
        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        for byte in wire {
            buf.extend_from_slice(&[byte]);
            while let Some(adu) = slave.decode_request(&mut buf).unwrap() {
                decoded.push(adu);
            }
        }
        assert_eq!(decoded.len(), requests.len(), "{kind:?}");
        for (adu, request) in decoded.iter().zip(&requests) {
            assert_eq!(adu.unit, 7);
            assert_eq!(crate::decode_request(&adu.pdu).as_ref(), Ok(request));
        }
        assert_eq!(
            decoded[1].transaction_id,
            (kind == ModbusType::Tcp).then_some(2)
        );
        // The slave's answer echoes the transaction id and decodes as a response.
        let mut pdu = Vec::new();
        crate::encode_response(3, &Ok(crate::Response::Registers(vec![9, 8, 7])), &mut pdu);
        slave.encode_adu(decoded[0].transaction_id, 7, &pdu, &mut out);
        let mut buf = BytesMut::from(&out[..]);
        let adu = master.decode_response(&mut buf).unwrap().unwrap();
        assert_eq!(adu.transaction_id, decoded[0].transaction_id);
        assert_eq!(adu.pdu, pdu);
    }
}

#[test]
fn tcp_decodes_partial_and_back_to_back_frames() {
    let framer = Framer::new(ModbusType::Tcp);
    let mut buf = BytesMut::from(&[0u8, 7, 0, 0, 0, 5, 1, 3, 2][..]);
    assert_eq!(framer.decode_response(&mut buf), Ok(None));
    buf.extend_from_slice(&[0, 42, 0, 8, 0, 0, 0, 3, 1, 0x83, 2]);
    let adu = framer.decode_response(&mut buf).unwrap().unwrap();
    assert_eq!(
        adu,
        Adu {
            transaction_id: Some(7),
            unit: 1,
            pdu: vec![3, 2, 0, 42]
        }
    );
    let adu = framer.decode_response(&mut buf).unwrap().unwrap();
    assert_eq!(adu.pdu, vec![0x83, 2]);
    assert!(buf.is_empty());
}

#[test]
fn tcp_rejects_garbage_header() {
    let framer = Framer::new(ModbusType::Tcp);
    let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]);
    assert!(matches!(
        framer.decode_request(&mut buf),
        Err(FrameError::ProtocolId(_))
    ));
    let mut buf = BytesMut::from(&[0u8, 1, 0, 0, 0xFF, 0xFF, 1][..]);
    assert_eq!(
        framer.decode_request(&mut buf),
        Err(FrameError::Length(0xFFFF))
    );
    let mut buf = BytesMut::from(&[0u8, 1, 0, 0, 0, 1, 1][..]);
    assert_eq!(framer.decode_response(&mut buf), Err(FrameError::Length(1)));
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
        let decoded = framer.decode_response(&mut buf).unwrap();
        assert_eq!(decoded.is_some(), i == frame.len() - 1);
        if let Some(adu) = decoded {
            assert_eq!(adu.unit, 0x11);
            assert_eq!(adu.pdu, frame[1..frame.len() - 2]);
        }
    }
    let mut bad = BytesMut::from(&[1u8, 0x83, 2, 0, 0][..]);
    assert_eq!(framer.decode_response(&mut bad), Err(FrameError::Crc));
    let mut unknown = BytesMut::from(&[1u8, 0x2B, 0, 0][..]);
    assert!(matches!(
        framer.decode_response(&mut unknown),
        Err(FrameError::Pdu(_))
    ));
    let mut unknown = BytesMut::from(&[1u8, 0x2B, 0, 0][..]);
    assert!(matches!(
        framer.decode_request(&mut unknown),
        Err(FrameError::Pdu(PduError::UnknownFunction(0x2B)))
    ));
}

#[test]
fn ascii_decodes_and_skips_noise() {
    let framer = Framer::new(ModbusType::Ascii);
    let raw = [1u8, 3, 2, 0x12, 0x34];
    let text = format!(":0103021234{:02X}\r\n", lrc(&raw));
    let mut buf = BytesMut::from(&b"\x00zz"[..]);
    buf.extend_from_slice(&text.as_bytes()[..5]);
    assert_eq!(framer.decode_response(&mut buf), Ok(None));
    buf.extend_from_slice(&text.as_bytes()[5..]);
    let adu = framer.decode_response(&mut buf).unwrap().unwrap();
    assert_eq!(adu.unit, 1);
    assert_eq!(adu.pdu, vec![3, 2, 0x12, 0x34]);
    let mut bad = BytesMut::from(&b":0103021234FF\r\n"[..]);
    assert_eq!(framer.decode_response(&mut bad), Err(FrameError::Lrc));
    let mut bad = BytesMut::from(&b":01XX\r\n"[..]);
    assert_eq!(framer.decode_request(&mut bad), Err(FrameError::Ascii));
    let mut long = BytesMut::from(&[b':'; 600][..]);
    assert_eq!(framer.decode_request(&mut long), Err(FrameError::Ascii));
}

/// Fuzz finding: `u8::from_str_radix` takes a leading `+`, so `+0` was read as the
/// byte 0 and a frame with a non-hex character decoded.
#[test]
fn ascii_rejects_a_sign_among_the_hex_digits() {
    let framer = Framer::new(ModbusType::Ascii);
    let mut good = BytesMut::from(&b":01180006000200010002DC\r\n"[..]);
    assert!(framer.decode_response(&mut good).unwrap().is_some());
    let mut signed = BytesMut::from(&b":0118+006000200010002DC\r\n"[..]);
    assert_eq!(framer.decode_response(&mut signed), Err(FrameError::Ascii));
}

/// Found in review (the fuzz target checks this property): an over-long frame was
/// rejected while its CR LF was outstanding, but decoded when it arrived in one
/// piece, so the result depended on the chunking.
#[test]
fn ascii_rejects_an_over_long_frame_even_when_complete() {
    let framer = Framer::new(ModbusType::Ascii);
    let mut raw = vec![1u8, 3, 0];
    raw.extend([0u8; 300]);
    raw.push(lrc(&raw));
    let hex: String = raw.iter().map(|b| format!("{b:02X}")).collect();
    let mut buf = BytesMut::from(format!(":{hex}\r\n").as_bytes());
    assert_eq!(framer.decode_response(&mut buf), Err(FrameError::Ascii));
}

/// An RTU FC24 byte count beyond the longest ADU ends the session at once instead
/// of waiting for up to 64 KiB that can never form a valid frame.
#[test]
fn rtu_rejects_a_fifo_byte_count_beyond_the_longest_adu() {
    let framer = Framer::new(ModbusType::Rtu);
    let mut buf = BytesMut::from(&[1u8, 24, 0x01, 0x00][..]);
    assert_eq!(
        framer.decode_response(&mut buf),
        Err(FrameError::Pdu(PduError::BadLength(24)))
    );
    // The longest legal FIFO answer (31 registers) still waits for its bytes.
    let mut buf = BytesMut::from(&[1u8, 24, 0, 64][..]);
    assert_eq!(framer.decode_response(&mut buf), Ok(None));
}
