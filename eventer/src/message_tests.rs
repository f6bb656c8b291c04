//! Unit tests of the Eventer message codec.

use super::*;
use crate::chatter::decode_msg;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The worked example of spec section 3.2.
const INIT_REQ_MINIMAL: &str =
    "01 2c 81 81 01 01 00 95 4861744576656e7465722e4d7367496e6974526571 \
    90 8b 676174657761792f677731 80 80 80 00";

#[test]
fn spec_worked_example_round_trips() {
    let wire = hex(INIT_REQ_MINIMAL);
    let msg = decode_msg(&wire[2..]).unwrap();
    assert_eq!(msg.header(), MsgHeader::new_conversation(1, false));
    let decoded = EventerMsg::from_msg(&msg).unwrap();
    let expected = EventerMsg::InitReq(InitReq {
        client_name: "gateway/gw1".into(),
        client_token: None,
        subscriptions: vec![],
        server_id: None,
        persisted: false,
    });
    assert_eq!(decoded, expected);
    let mut out = BytesMut::new();
    expected.encode_frame(&msg.header(), &mut out);
    assert_eq!(out.as_ref(), wire.as_slice());
    let mut out = BytesMut::new();
    chatter::encode_frame(&expected.to_msg(msg.header()), &mut out);
    assert_eq!(out.as_ref(), wire.as_slice());
}
