//! Unit tests of the chatter framing and header codec.

use tokio_util::codec::{Decoder, Encoder};

use super::*;

fn ping_frame(id: i64) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_frame(&Msg::ping(id), &mut out);
    out.to_vec()
}

fn sample_msg(data_len: usize) -> Msg {
    Msg::new(
        MsgHeader::new_conversation(3, false),
        "HatEventer.MsgRegisterReq",
        Bytes::from(vec![0x5a; data_len]),
    )
}

fn decode_all(codec: &mut FrameCodec, buf: &mut BytesMut) -> Vec<Msg> {
    let mut out = Vec::new();
    while let Some(msg) = codec.decode(buf).unwrap() {
        out.push(msg);
    }
    out
}

#[test]
fn ping_and_pong_bytes_match_spec() {
    // Spec 3.5: Ping with id 10 and the Pong answering it with id 11.
    let mut ping = vec![0x01, 0x16, 0x8a, 0x8a, 0x01, 0x01, 0x00, 0x8f];
    ping.extend_from_slice(b"HatChatter.Ping");
    ping.push(0x80);
    assert_eq!(ping_frame(10), ping);

    let mut pong = vec![0x01, 0x16, 0x8b, 0x8a, 0x00, 0x01, 0x01, 0x8f];
    pong.extend_from_slice(b"HatChatter.Pong");
    pong.push(0x80);
    let mut out = BytesMut::new();
    encode_frame(&Msg::pong(11, 10), &mut out);
    assert_eq!(out.as_ref(), pong.as_slice());

    let decoded = FrameCodec::default()
        .decode(&mut BytesMut::from(&pong[..]))
        .unwrap()
        .unwrap();
    assert!(decoded.is_pong() && !decoded.is_ping());
    assert_eq!(decoded, Msg::pong(11, 10));
}

#[test]
fn prefix_uses_minimal_length_field() {
    let cases: &[(usize, &[u8])] = &[
        (1, &[0x01, 0x01]),
        (255, &[0x01, 0xff]),
        (256, &[0x02, 0x01, 0x00]),
        (65_535, &[0x02, 0xff, 0xff]),
        (65_536, &[0x03, 0x01, 0x00, 0x00]),
        (16_777_216, &[0x04, 0x01, 0x00, 0x00, 0x00]),
    ];
    for &(n, prefix) in cases {
        let mut out = BytesMut::new();
        put_prefix(n, &mut out);
        assert_eq!(out.as_ref(), prefix, "{n}");
        assert_eq!(prefix_len(n), prefix.len(), "{n}");
    }
}

#[test]
fn frames_split_byte_by_byte_are_reassembled() {
    let msgs = [sample_msg(0), sample_msg(300), Msg::ping(4)];
    let mut wire = BytesMut::new();
    for m in &msgs {
        encode_frame(m, &mut wire);
    }
    let mut codec = FrameCodec::default();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for &b in wire.iter() {
        buf.put_u8(b);
        got.extend(decode_all(&mut codec, &mut buf));
    }
    assert_eq!(got, msgs);
    assert!(buf.is_empty());
    assert!(codec.decode_eof(&mut buf).unwrap().is_none());
}

#[test]
fn merged_frames_decode_in_order() {
    let msgs: Vec<Msg> = (1..=5).map(|i| sample_msg(i * 70)).collect();
    let mut buf = BytesMut::new();
    let mut codec = FrameCodec::default();
    for m in &msgs {
        codec.encode(m, &mut buf).unwrap();
    }
    // Half of another frame stays buffered.
    let extra = ping_frame(9);
    buf.extend_from_slice(&extra[..5]);
    assert_eq!(decode_all(&mut codec, &mut buf), msgs);
    assert_eq!(buf.len(), 5);
    buf.extend_from_slice(&extra[5..]);
    assert_eq!(decode_all(&mut codec, &mut buf), vec![Msg::ping(9)]);
}

#[test]
fn zero_length_of_length_is_rejected() {
    let err = FrameCodec::default()
        .decode(&mut BytesMut::from(&[0x00, 0x01, 0x02][..]))
        .unwrap_err();
    assert!(matches!(err, ChatterError::InvalidLength(_)), "{err}");
}

#[test]
fn zero_length_is_rejected() {
    let err = FrameCodec::default()
        .decode(&mut BytesMut::from(&[0x02, 0x00, 0x00][..]))
        .unwrap_err();
    assert!(matches!(err, ChatterError::InvalidLength(_)), "{err}");
}

#[test]
fn length_field_longer_than_eight_bytes_is_rejected() {
    let mut buf = BytesMut::from(&[0x09][..]);
    let err = FrameCodec::default().decode(&mut buf).unwrap_err();
    assert!(matches!(err, ChatterError::InvalidLength(_)), "{err}");
}

#[test]
fn oversize_frame_is_rejected_before_buffering() {
    let mut codec = FrameCodec::new(1024);
    // Announces 1025 bytes; none of the body has arrived.
    let mut buf = BytesMut::from(&[0x02, 0x04, 0x01][..]);
    let err = codec.decode(&mut buf).unwrap_err();
    assert!(
        matches!(
            err,
            ChatterError::FrameTooLarge {
                size: 1025,
                max: 1024
            }
        ),
        "{err}"
    );
    assert!(buf.capacity() < 1024, "body space was reserved");
    // Exactly the maximum is fine.
    let mut buf = BytesMut::from(&[0x02, 0x04, 0x00][..]);
    assert!(codec.decode(&mut buf).unwrap().is_none());
    // The largest announcement an 8-byte field can make.
    let mut buf = BytesMut::from(&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..]);
    let err = codec.decode(&mut buf).unwrap_err();
    assert!(
        matches!(err, ChatterError::FrameTooLarge { size: u64::MAX, .. }),
        "{err}"
    );
}

#[test]
fn truncated_frame_at_eof_is_an_error() {
    let wire = ping_frame(1);
    for cut in 1..wire.len() {
        let mut buf = BytesMut::from(&wire[..cut]);
        let err = FrameCodec::default().decode_eof(&mut buf).unwrap_err();
        assert!(
            matches!(err, ChatterError::TruncatedFrame { buffered } if buffered == cut),
            "{cut}: {err}"
        );
    }
    let mut buf = BytesMut::from(&wire[..]);
    assert_eq!(
        FrameCodec::default().decode_eof(&mut buf).unwrap(),
        Some(Msg::ping(1))
    );
}

#[test]
fn garbage_body_is_an_invalid_msg() {
    // Claimed string length runs past the body.
    let mut buf = BytesMut::from(&[0x01, 0x06, 0x81, 0x81, 0x01, 0x01, 0x00, 0xbf][..]);
    let err = FrameCodec::default().decode(&mut buf).unwrap_err();
    assert!(
        matches!(err, ChatterError::InvalidMsg(SbsError::InvalidLength(63))),
        "{err}"
    );
    // A body of random-looking bytes that ends inside a header field.
    let mut buf = BytesMut::from(&[0x01, 0x03, 0x01, 0x02, 0x03][..]);
    let err = FrameCodec::default().decode(&mut buf).unwrap_err();
    assert!(
        matches!(err, ChatterError::InvalidMsg(SbsError::UnexpectedEnd)),
        "{err}"
    );
}

#[test]
fn invalid_utf8_type_name_is_rejected() {
    let body = [0x81, 0x81, 0x01, 0x01, 0x00, 0x82, 0xc3, 0x28, 0x80];
    assert!(matches!(
        decode_msg(&body),
        Err(ChatterError::InvalidMsg(SbsError::InvalidUtf8))
    ));
}

#[test]
fn header_integer_overflow_is_rejected() {
    let mut body = vec![0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80];
    body.extend_from_slice(&[0x81, 0x01, 0x01, 0x00, 0x80, 0x80]);
    assert!(matches!(
        decode_msg(&body),
        Err(ChatterError::InvalidMsg(SbsError::IntegerOverflow))
    ));
}

#[test]
fn trailing_bytes_in_body_are_rejected() {
    let wire = ping_frame(1);
    let mut body = wire[2..].to_vec();
    body.push(0x80);
    assert!(matches!(
        decode_msg(&body),
        Err(ChatterError::InvalidMsg(SbsError::TrailingBytes(1)))
    ));
}

#[test]
fn decoded_data_shares_the_frame_buffer() {
    let msg = sample_msg(300);
    let mut wire = BytesMut::new();
    encode_frame(&msg, &mut wire);
    let body = Bytes::copy_from_slice(&wire[1 + usize::from(wire[0])..]);
    let decoded = decode_msg_bytes(body.clone()).unwrap();
    assert_eq!(decoded, msg);
    let body_range = body.as_ptr_range();
    assert!(body_range.contains(&decoded.data.as_ptr()));
}

#[test]
fn incomplete_frames_share_one_input_budget_and_give_it_back() {
    let budget = InputBudget::new(150);
    let mut first = FrameCodec::with_budget(1024, Some(budget.clone()));
    let mut second = FrameCodec::with_budget(1024, Some(budget.clone()));
    let frame = |len: usize| {
        let mut out = BytesMut::new();
        encode_frame(&sample_msg(len), &mut out);
        out
    };
    // 100 data bytes: a frame of a bit more; all but its last byte arrives.
    let whole = frame(100);
    let mut partial = BytesMut::from(&whole[..whole.len() - 1]);
    assert!(first.decode(&mut partial).unwrap().is_none());
    assert_eq!(budget.used(), whole.len());
    // The second connection's frame does not fit next to it.
    let mut other = BytesMut::from(&whole[..10]);
    let err = second.decode(&mut other).unwrap_err();
    assert!(
        matches!(err, ChatterError::InputBudgetExceeded { limit: 150, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("max_buffered_input"), "{err}");
    // The first frame completes: its share is given back.
    partial.extend_from_slice(&whole[whole.len() - 1..]);
    assert_eq!(first.decode(&mut partial).unwrap().unwrap().data.len(), 100);
    assert_eq!(budget.used(), 0);
    // A codec dropped in the middle of a frame gives its share back too.
    let mut again = BytesMut::from(&whole[..10]);
    assert!(second.decode(&mut again).unwrap().is_none());
    assert_eq!(budget.used(), whole.len());
    drop(second);
    assert_eq!(budget.used(), 0);
}
