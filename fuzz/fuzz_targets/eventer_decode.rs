//! Feeds arbitrary bytes to the chatter `FrameCodec` (as a stream split at a
//! data-chosen chunk size) and to `EventerMsg::decode` for every type name. Decoding
//! must never panic, and whatever decodes must re-encode to something that decodes
//! to the same value.

#![no_main]

use bytes::BytesMut;
use gateway_eventer::chatter::{decode_msg, encode_frame, FrameCodec, Msg};
use gateway_eventer::message::{EventerMsg, EVENTER_TYPE_NAMES};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

/// Small enough that the fuzzer also reaches the size limit.
const MAX_FRAME: usize = 64 * 1024;

fn check_eventer(type_name: &str, data: &[u8]) {
    if let Ok(msg) = EventerMsg::decode(type_name, data) {
        let mut again = Vec::new();
        msg.encode(&mut again);
        assert_eq!(again.len(), msg.encoded_len());
        // Hat accepts non-minimal integers and any non-zero boolean, so the bytes
        // may differ; the value must not.
        let back = EventerMsg::decode(type_name, &again).expect("re-encoded message decodes");
        assert_eq!(back, msg);
    }
}

fn check_msg(msg: &Msg) {
    let mut frame = BytesMut::new();
    encode_frame(msg, &mut frame);
    let back = FrameCodec::new(usize::MAX)
        .decode(&mut frame)
        .expect("re-encoded frame decodes")
        .expect("re-encoded frame is complete");
    assert_eq!(&back, msg);
    assert!(frame.is_empty());
    check_eventer(&msg.data_type, &msg.data);
}

fuzz_target!(|data: &[u8]| {
    // The input as a TCP stream, delivered in chunks.
    let chunk = usize::from(data.first().copied().unwrap_or(0) % 16) + 1;
    let mut codec = FrameCodec::new(MAX_FRAME);
    let mut buf = BytesMut::new();
    'stream: for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(msg)) => check_msg(&msg),
                Ok(None) => break,
                Err(_) => break 'stream,
            }
        }
    }
    let _ = codec.decode_eof(&mut buf);

    // The input as a frame body and as every Eventer payload.
    if let Ok(msg) = decode_msg(data) {
        check_msg(&msg);
    }
    for type_name in EVENTER_TYPE_NAMES {
        check_eventer(type_name, data);
    }
});
