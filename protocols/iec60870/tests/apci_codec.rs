//! APDU codec: every frame layout byte-exact, partial frames, garbage, bad lengths and
//! bad control fields.
#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use iec60870::apci::{decode_all, ApciError, Apdu, ApduDecoder, UFunction, MAX_ASDU_SIZE};

fn encoded(apdu: &Apdu) -> Vec<u8> {
    apdu.to_bytes().unwrap().to_vec()
}

fn decode_one(bytes: &[u8]) -> Result<Option<Apdu>, ApciError> {
    ApduDecoder::new().decode(&mut BytesMut::from(bytes))
}

#[test]
fn i_frame_layout() {
    let apdu = Apdu::I {
        send_seq: 0x1234,
        recv_seq: 0x7FFF,
        asdu: Bytes::from_static(&[1, 2, 3]),
    };
    // N(S) = 0x1234 -> (0x1234 << 1) = 0x2468 little endian; N(R) 0x7FFF -> 0xFFFE.
    assert_eq!(encoded(&apdu), [0x68, 7, 0x68, 0x24, 0xFE, 0xFF, 1, 2, 3]);
    assert_eq!(decode_one(&encoded(&apdu)).unwrap(), Some(apdu));
}

#[test]
fn s_frame_layout() {
    let apdu = Apdu::S { recv_seq: 300 };
    assert_eq!(encoded(&apdu), [0x68, 4, 0x01, 0x00, 0x58, 0x02]);
    assert_eq!(decode_one(&encoded(&apdu)).unwrap(), Some(apdu));
}

#[test]
fn u_frame_layouts() {
    let table = [
        (UFunction::StartDtAct, 0x07),
        (UFunction::StartDtCon, 0x0B),
        (UFunction::StopDtAct, 0x13),
        (UFunction::StopDtCon, 0x23),
        (UFunction::TestFrAct, 0x43),
        (UFunction::TestFrCon, 0x83),
    ];
    for (function, byte) in table {
        let apdu = Apdu::U(function);
        assert_eq!(encoded(&apdu), [0x68, 4, byte, 0, 0, 0]);
        assert_eq!(decode_one(&encoded(&apdu)).unwrap(), Some(apdu));
    }
}

#[test]
fn hat_encoded_frames_decode() {
    // Bytes as hat-drivers' apci encoder writes them (APDUI(ssn=5, rsn=2, b'\x64\x01'),
    // APDUS(rsn=32767), STARTDT con).
    let stream = [
        0x68, 6, 10, 0, 4, 0, 0x64, 0x01, 0x68, 4, 1, 0, 0xFE, 0xFF, 0x68, 4, 0x0B, 0, 0, 0,
    ];
    assert_eq!(
        decode_all(&stream).unwrap(),
        vec![
            Apdu::I {
                send_seq: 5,
                recv_seq: 2,
                asdu: Bytes::from_static(&[0x64, 0x01])
            },
            Apdu::S { recv_seq: 32767 },
            Apdu::U(UFunction::StartDtCon),
        ]
    );
}

#[test]
fn partial_frames_wait_for_more_bytes_and_consume_nothing() {
    let frame = encoded(&Apdu::I {
        send_seq: 1,
        recv_seq: 1,
        asdu: Bytes::from_static(&[9; 20]),
    });
    let mut decoder = ApduDecoder::new();
    let mut buf = BytesMut::new();
    for (index, byte) in frame.iter().enumerate() {
        assert_eq!(decoder.decode(&mut buf).unwrap(), None, "at {index}");
        assert_eq!(buf.len(), index);
        buf.extend_from_slice(&[*byte]);
    }
    assert!(matches!(
        decoder.decode(&mut buf).unwrap(),
        Some(Apdu::I { send_seq: 1, .. })
    ));
    assert!(buf.is_empty());
}

#[test]
fn several_frames_in_one_buffer_leave_the_partial_tail() {
    let mut bytes = Vec::new();
    for seq in 0..5 {
        bytes.extend(encoded(&Apdu::S { recv_seq: seq }));
    }
    bytes.extend([0x68, 4, 0x01]);
    let mut buf = BytesMut::from(&bytes[..]);
    let mut decoder = ApduDecoder::new();
    for seq in 0..5 {
        assert_eq!(
            decoder.decode(&mut buf).unwrap(),
            Some(Apdu::S { recv_seq: seq })
        );
    }
    assert_eq!(decoder.decode(&mut buf).unwrap(), None);
    assert_eq!(&buf[..], [0x68, 4, 0x01]);
}

#[test]
fn garbage_start_byte_is_reported_at_once() {
    assert_eq!(decode_one(&[0x00]), Err(ApciError::InvalidStartByte(0)));
    assert_eq!(
        decode_one(b"GET / HTTP/1.1\r\n"),
        Err(ApciError::InvalidStartByte(b'G'))
    );
}

#[test]
fn lengths_outside_4_to_253_are_refused() {
    for length in [0u8, 1, 3, 254, 255] {
        assert_eq!(
            decode_one(&[0x68, length]),
            Err(ApciError::InvalidLength(length))
        );
    }
    let mut max = vec![0x68, 253, 0, 0, 0, 0];
    max.extend([0u8; 249]);
    assert!(matches!(decode_one(&max), Ok(Some(Apdu::I { asdu, .. })) if asdu.len() == 249));
}

#[test]
fn bad_control_fields_are_refused() {
    for control in [
        [0x33, 0, 0, 0], // unknown U function
        [0x47, 0, 0, 0], // two U functions at once
        [0x07, 1, 0, 0], // U with non-zero octet 2
        [0x05, 0, 0, 0], // S with a reserved bit
        [0x01, 0, 1, 0], // S with bit 0 of N(R) set
        [0x00, 0, 1, 0], // I with bit 0 of N(R) set
    ] {
        let mut frame = vec![0x68, 4];
        frame.extend(control);
        if control[0] & 1 == 0 {
            frame.extend([0x64]);
            frame[1] = 5;
        }
        assert_eq!(
            decode_one(&frame),
            Err(ApciError::InvalidControlField(control)),
            "{control:02x?}"
        );
    }
}

#[test]
fn s_and_u_frames_must_have_length_4() {
    assert_eq!(
        decode_one(&[0x68, 5, 0x01, 0, 0, 0, 0]),
        Err(ApciError::InvalidFrameLength {
            frame: "S",
            length: 5
        })
    );
    assert_eq!(
        decode_one(&[0x68, 5, 0x43, 0, 0, 0, 0]),
        Err(ApciError::InvalidFrameLength {
            frame: "U",
            length: 5
        })
    );
}

#[test]
fn asdu_longer_than_249_is_not_framed() {
    let apdu = Apdu::I {
        send_seq: 0,
        recv_seq: 0,
        asdu: Bytes::from(vec![0; MAX_ASDU_SIZE + 1]),
    };
    assert_eq!(apdu.to_bytes(), Err(ApciError::AsduTooLong(250)));
}

#[test]
fn sequence_numbers_are_taken_modulo_32768() {
    let apdu = Apdu::I {
        send_seq: 32768 + 3,
        recv_seq: 32768,
        asdu: Bytes::from_static(&[1]),
    };
    assert_eq!(
        decode_one(&encoded(&apdu)).unwrap(),
        Some(Apdu::I {
            send_seq: 3,
            recv_seq: 0,
            asdu: Bytes::from_static(&[1])
        })
    );
}

#[test]
fn decoded_asdu_shares_the_receive_buffer() {
    let frame = encoded(&Apdu::I {
        send_seq: 0,
        recv_seq: 0,
        asdu: Bytes::from_static(&[7; 100]),
    });
    let mut buf = BytesMut::from(&frame[..]);
    let start = buf.as_ptr() as usize;
    let Some(Apdu::I { asdu, .. }) = ApduDecoder::new().decode(&mut buf).unwrap() else {
        panic!("not an I-frame");
    };
    assert_eq!(asdu.as_ptr() as usize, start + 6);
}
