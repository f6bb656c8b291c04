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

/// The worked example of `docs/eventer-protocol.md` section 3.2.
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

fn ts(s: i64, us: i64) -> Timestamp {
    Timestamp { s, us }
}

fn t(text: &str) -> EventType {
    gateway_model::event_type_from_str(text)
}

fn sample_event(instance: i64, payload: Option<Payload>) -> Event {
    Event {
        id: EventId {
            server: 1,
            session: i64::MAX,
            instance,
        },
        event_type: vec!["é€😀".into(), String::new(), "*".into()],
        timestamp: ts(i64::MIN, 999_999),
        source_timestamp: Some(ts(-1, 2_000_000)),
        payload,
    }
}

/// One value of every message kind and every choice entry.
fn every_kind() -> Vec<EventerMsg> {
    let json = Payload::Json(JsonText::new(r#" {"b":1, "a": [1.5, null, "\u00e9"]} "#).unwrap());
    let binary = Payload::Binary {
        type_name: String::new(),
        data: vec![0, 255, 128],
    };
    let events = vec![
        sample_event(1, Some(json.clone())),
        sample_event(2, Some(binary.clone())),
        sample_event(3, None),
    ];
    let timeseries = QueryTimeseriesParams {
        event_types: Some(vec![t("a/*"), t("?"), vec![]]),
        t_from: Some(ts(0, 0)),
        t_to: Some(ts(1_800_000_000, 999_999)),
        source_t_from: None,
        source_t_to: Some(ts(-5, 0)),
        order: Order::Ascending,
        order_by: OrderBy::SourceTimestamp,
        max_results: Some(0),
        last_event_id: Some(EventId::default()),
    };
    vec![
        EventerMsg::InitReq(InitReq {
            client_name: "gateway/gw1".into(),
            client_token: Some("secret".into()),
            subscriptions: vec![t("gateway/*"), t("*"), vec![]],
            server_id: Some(-3),
            persisted: true,
        }),
        EventerMsg::InitRes(InitRes::Success(Status::Standby)),
        EventerMsg::InitRes(InitRes::Error("invalid query event type".into())),
        EventerMsg::StatusNotify(Status::Starting),
        EventerMsg::StatusNotify(Status::Operational),
        EventerMsg::StatusNotify(Status::Stopping),
        EventerMsg::EventsNotify(events.clone()),
        EventerMsg::EventsAck,
        EventerMsg::RegisterReq(vec![
            RegisterEvent {
                event_type: t("a/b"),
                source_timestamp: Some(ts(1_700_000_000, 500_000)),
                payload: Some(json),
            },
            RegisterEvent {
                event_type: vec![],
                source_timestamp: None,
                payload: Some(binary),
            },
            RegisterEvent {
                event_type: t("c"),
                source_timestamp: None,
                payload: None,
            },
        ]),
        EventerMsg::RegisterRes(RegisterRes::Events(events.clone())),
        EventerMsg::RegisterRes(RegisterRes::Failure),
        EventerMsg::QueryReq(QueryParams::Latest(QueryLatestParams::default())),
        EventerMsg::QueryReq(QueryParams::Timeseries(timeseries)),
        EventerMsg::QueryReq(QueryParams::Timeseries(QueryTimeseriesParams::default())),
        EventerMsg::QueryReq(QueryParams::Server(QueryServerParams {
            server_id: 2,
            persisted: true,
            max_results: Some(4096),
            last_event_id: Some(EventId {
                server: 2,
                session: 7,
                instance: 1,
            }),
        })),
        EventerMsg::QueryRes(QueryResult {
            events,
            more_follows: true,
        }),
    ]
}

fn encoded(msg: &EventerMsg) -> Vec<u8> {
    let mut out = Vec::new();
    msg.encode(&mut out);
    out
}

fn decode_err(type_name: &str, data: &[u8]) -> MessageError {
    match EventerMsg::decode(type_name, data) {
        Ok(msg) => panic!("{type_name} {data:02x?} decoded as {msg:?}"),
        Err(err) => err,
    }
}

fn sbs_err(type_name: &str, data: &[u8]) -> SbsError {
    match decode_err(type_name, data) {
        MessageError::InvalidSbs {
            source,
            type_name: t,
        } => {
            assert_eq!(t, type_name);
            source
        }
        other => panic!("expected invalid SBS, got {other}"),
    }
}

#[test]
fn every_kind_round_trips() {
    for msg in every_kind() {
        let bytes = encoded(&msg);
        assert_eq!(bytes.len(), msg.encoded_len(), "{msg:?}");
        let back = EventerMsg::decode(msg.type_name(), &bytes).unwrap();
        assert_eq!(back, msg);
        let header = MsgHeader::reply(5, 2, true);
        let mut frame = BytesMut::new();
        msg.encode_frame(&header, &mut frame);
        let chatter_msg = decode_msg(&frame[1 + usize::from(frame[0])..]).unwrap();
        assert_eq!(chatter_msg, msg.to_msg(header));
        assert_eq!(EventerMsg::from_msg(&chatter_msg).unwrap(), msg);
    }
}

#[test]
fn type_names_are_the_schema_names() {
    let names: Vec<&str> = every_kind().iter().map(EventerMsg::type_name).collect();
    for name in EVENTER_TYPE_NAMES {
        assert!(names.contains(&name), "{name}");
        assert!(name.starts_with("HatEventer.Msg"));
    }
}

#[test]
fn unknown_type_is_rejected() {
    for name in ["Foo.Bar", "HatChatter.Ping", "HatEventer.MsgInitreq", ""] {
        assert!(
            matches!(decode_err(name, &[]), MessageError::UnknownType(n) if n == name),
            "{name}"
        );
    }
}

#[test]
fn out_of_range_choices_are_rejected() {
    let cases: &[(&str, &[u8], i64, &str)] = &[
        (MSG_STATUS_NOTIFY, &[0x84], 4, "Status"),
        (MSG_STATUS_NOTIFY, &[0xff], -1, "Status"),
        (MSG_INIT_RES, &[0x82], 2, "MsgInitRes"),
        (MSG_INIT_RES, &[0x80, 0x84], 4, "Status"),
        (MSG_REGISTER_RES, &[0x82], 2, "MsgRegisterRes"),
        (MSG_QUERY_REQ, &[0x83], 3, "QueryParams"),
        (MSG_QUERY_REQ, &[0x80, 0x82], 2, "Optional"),
        (
            MSG_QUERY_REQ,
            &[0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x82],
            2,
            "Order",
        ),
        (
            MSG_QUERY_REQ,
            &[0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x82],
            2,
            "OrderBy",
        ),
        // One register event of type [] with no timestamp and payload kind 2.
        (
            MSG_REGISTER_REQ,
            &[0x81, 0x80, 0x80, 0x81, 0x82],
            2,
            "EventPayload",
        ),
    ];
    for &(name, data, index, choice) in cases {
        assert_eq!(
            sbs_err(name, data),
            SbsError::InvalidChoice {
                index,
                type_name: choice
            },
            "{name} {data:02x?}"
        );
    }
}

fn register_json(text: &str) -> Vec<u8> {
    let mut out = vec![0x81, 0x80, 0x80, 0x81, 0x81];
    out.put_str(text);
    out
}

#[test]
fn invalid_json_payload_text_is_rejected() {
    for text in ["{bad", "", "NaN", "[1,]", "{\"a\":1} x"] {
        let err = decode_err(MSG_REGISTER_REQ, &register_json(text));
        assert!(
            matches!(&err, MessageError::InvalidJson { type_name, .. } if *type_name == MSG_REGISTER_REQ),
            "{text:?}: {err}"
        );
    }
    // Valid JSON with Python's formatting and surrounding whitespace is kept as text.
    let text = r#" {"value": 12.5, "list": [1, null, "\u00e9"]} "#;
    let EventerMsg::RegisterReq(events) =
        EventerMsg::decode(MSG_REGISTER_REQ, &register_json(text)).unwrap()
    else {
        panic!("wrong kind");
    };
    assert_eq!(
        events[0].payload,
        Some(Payload::Json(JsonText::new(text).unwrap()))
    );
    // Inside notified events too.
    let mut notify = encoded(&EventerMsg::EventsNotify(vec![sample_event(1, None)]));
    let payload_tag = notify.len() - 1;
    notify[payload_tag] = 0x81;
    notify.push(0x81);
    notify.put_str("{");
    assert!(matches!(
        decode_err(MSG_EVENTS_NOTIFY, &notify),
        MessageError::InvalidJson { .. }
    ));
}

#[test]
fn invalid_utf8_is_rejected() {
    // clientName of 2 bytes that are not UTF-8.
    assert_eq!(
        sbs_err(MSG_INIT_REQ, &[0x82, 0xc3, 0x28, 0x80, 0x80, 0x80, 0x00]),
        SbsError::InvalidUtf8
    );
    // An event type segment.
    assert_eq!(
        sbs_err(MSG_REGISTER_REQ, &[0x81, 0x81, 0x81, 0xff, 0x80, 0x80]),
        SbsError::InvalidUtf8
    );
}

#[test]
fn trailing_bytes_are_rejected() {
    for msg in every_kind() {
        let mut bytes = encoded(&msg);
        bytes.push(0x80);
        assert_eq!(
            sbs_err(msg.type_name(), &bytes),
            SbsError::TrailingBytes(1),
            "{msg:?}"
        );
    }
}

#[test]
fn integer_overflow_is_rejected() {
    // Query server params with serverId = 2^63.
    let mut data = vec![0x82, 0x01];
    data.extend_from_slice(&[0x00; 8]);
    data.extend_from_slice(&[0x80, 0x00, 0x80, 0x80]);
    assert_eq!(sbs_err(MSG_QUERY_REQ, &data), SbsError::IntegerOverflow);
}

#[test]
fn every_truncation_is_an_error() {
    for msg in every_kind() {
        let bytes = encoded(&msg);
        for cut in 0..bytes.len() {
            let err = decode_err(msg.type_name(), &bytes[..cut]);
            assert!(
                matches!(err, MessageError::InvalidSbs { .. }),
                "{msg:?} cut at {cut}: {err}"
            );
        }
    }
}

#[test]
fn hostile_counts_fail_without_allocating() {
    // 2^62 events announced, 3 bytes present.
    let mut data = Vec::new();
    data.put_integer(1 << 62);
    data.extend_from_slice(&[0x80, 0x80, 0x80]);
    assert!(matches!(
        sbs_err(MSG_EVENTS_NOTIFY, &data),
        SbsError::InvalidLength(_)
    ));
    // 4 events need at least 32 bytes; 31 are present.
    let mut data = vec![0x84];
    data.extend_from_slice(&[0x80; 31]);
    assert_eq!(
        sbs_err(MSG_EVENTS_NOTIFY, &data),
        SbsError::InvalidLength(4)
    );
    assert_eq!(sbs_err(MSG_INIT_REQ, &[0xff]), SbsError::InvalidLength(-1));
}

#[test]
fn events_ack_is_empty() {
    assert!(encoded(&EventerMsg::EventsAck).is_empty());
    assert_eq!(
        EventerMsg::decode(MSG_EVENTS_ACK, &[]).unwrap(),
        EventerMsg::EventsAck
    );
}

#[test]
fn spec_payload_table() {
    let cases: &[(EventerMsg, &[u8])] = &[
        (
            EventerMsg::InitRes(InitRes::Success(Status::Operational)),
            &[0x80, 0x82],
        ),
        (EventerMsg::RegisterRes(RegisterRes::Failure), &[0x81]),
        (
            EventerMsg::RegisterRes(RegisterRes::Events(vec![])),
            &[0x80, 0x80],
        ),
        (
            EventerMsg::QueryReq(QueryParams::Latest(QueryLatestParams::default())),
            &[0x80, 0x80],
        ),
        (
            EventerMsg::QueryReq(QueryParams::Timeseries(QueryTimeseriesParams::default())),
            &[0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80],
        ),
        (
            EventerMsg::QueryReq(QueryParams::Server(QueryServerParams {
                server_id: 1,
                ..Default::default()
            })),
            &[0x82, 0x81, 0x00, 0x80, 0x80],
        ),
        (EventerMsg::QueryRes(QueryResult::default()), &[0x80, 0x00]),
    ];
    for (msg, bytes) in cases {
        assert_eq!(encoded(msg), *bytes, "{msg:?}");
        assert_eq!(&EventerMsg::decode(msg.type_name(), bytes).unwrap(), msg);
    }
}

/// `encode_frame` writes the message first and puts the frame's head before it: the
/// frames after earlier bytes of the buffer, small and large (multi-byte length
/// prefixes), are exactly those of the chatter encoder.
#[test]
fn encode_frame_appends_frames_equal_to_the_chatter_encoding() {
    let mut messages = every_kind();
    messages.push(EventerMsg::RegisterReq(
        (0..1000)
            .map(|i| RegisterEvent {
                event_type: t("gateway/gw1/sim/s1/gateway/data/p0"),
                source_timestamp: Some(ts(i, 7)),
                payload: Some(Payload::json(serde_json::json!({ "value": i }))),
            })
            .collect(),
    ));
    let mut ours = BytesMut::from(&b"earlier bytes"[..]);
    let mut chatter_frames = BytesMut::from(&b"earlier bytes"[..]);
    for (id, msg) in messages.iter().enumerate() {
        let header = MsgHeader::new_conversation(id as i64 + 1, id % 2 == 0);
        msg.encode_frame(&header, &mut ours);
        chatter::encode_frame(&msg.to_msg(header), &mut chatter_frames);
    }
    assert_eq!(ours.len(), chatter_frames.len());
    assert!(ours == chatter_frames, "the frames differ");
}
