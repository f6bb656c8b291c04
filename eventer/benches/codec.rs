//! Codec throughput: whole Eventer frames (chatter prefix + header + SBS payload)
//! encoded and decoded, in events per second.
//!
//! `cargo bench -p gateway-eventer --bench codec -- --warm-up-time 1 --measurement-time 3`

#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use criterion::{black_box, criterion_main, Criterion, Throughput};
use gateway_eventer::chatter::{FrameCodec, MsgHeader};
use gateway_eventer::message::EventerMsg;
use gateway_model::{Event, EventId, JsonText, Payload, RegisterEvent, Timestamp};
use tokio_util::codec::Decoder;

/// A gateway data event (`gateway/gw1/sim/s1/gateway/data/pN`), small JSON payload, source timestamp.
fn register_event(i: usize) -> RegisterEvent {
    RegisterEvent {
        event_type: ["gateway", "gw1", "sim", "s1", "gateway", "data"]
            .into_iter()
            .map(str::to_owned)
            .chain([format!("p{}", i % 10)])
            .collect(),
        source_timestamp: Some(Timestamp::new(1_700_000_000 + i as i64, 123_456)),
        payload: Some(Payload::Json(JsonText::new(r#"{"value": 123}"#).unwrap())),
    }
}

fn event(i: usize) -> Event {
    let e = register_event(i);
    Event {
        id: EventId {
            server: 1,
            session: 1_000_000,
            instance: i as i64 + 1,
        },
        event_type: e.event_type,
        timestamp: Timestamp::new(1_700_000_100, 654_321),
        source_timestamp: e.source_timestamp,
        payload: e.payload,
    }
}

fn frame_of(msg: &EventerMsg, header: &MsgHeader) -> bytes::Bytes {
    let mut wire = BytesMut::new();
    msg.encode_frame(header, &mut wire);
    wire.freeze()
}

/// Encodes the whole frame into a reused buffer, then decodes it back.
fn round_trip(msg: &EventerMsg, header: &MsgHeader, codec: &mut FrameCodec, buf: &mut BytesMut) {
    buf.clear();
    black_box(msg).encode_frame(header, buf);
    let frame = codec.decode(buf).unwrap().unwrap();
    black_box(EventerMsg::from_msg(&frame).unwrap());
}

fn bench_message(c: &mut Criterion, name: &str, msg: &EventerMsg, events: u64) {
    let header = MsgHeader::new_conversation(7, true);
    let wire = frame_of(msg, &header);

    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(events));
    let mut buf = BytesMut::with_capacity(wire.len());
    group.bench_function("encode", |b| {
        b.iter(|| {
            buf.clear();
            black_box(msg).encode_frame(&header, &mut buf);
            black_box(buf.len());
        })
    });
    let mut codec = FrameCodec::default();
    group.bench_function("decode", |b| {
        b.iter(|| {
            let mut src = BytesMut::from(black_box(&wire[..]));
            let frame = codec.decode(&mut src).unwrap().unwrap();
            black_box(EventerMsg::from_msg(&frame).unwrap());
        })
    });
    group.bench_function("encode+decode", |b| {
        b.iter(|| round_trip(msg, &header, &mut codec, &mut buf))
    });
    group.finish();
}

fn messages() -> [(&'static str, EventerMsg, u64); 3] {
    [
        (
            "register_req_1",
            EventerMsg::RegisterReq(vec![register_event(0)]),
            1,
        ),
        (
            "register_req_1000",
            EventerMsg::RegisterReq((0..1000).map(register_event).collect()),
            1000,
        ),
        (
            "events_notify_1000",
            EventerMsg::EventsNotify((0..1000).map(event).collect()),
            1000,
        ),
    ]
}

fn codec(c: &mut Criterion) {
    for (name, msg, events) in messages() {
        bench_message(c, name, &msg, events);
    }
}

/// The benchmark group (`criterion_group!` writes an undocumented `pub fn`).
#[allow(missing_docs)]
mod group {
    use criterion::criterion_group;
    criterion_group!(benches, super::codec);
}
criterion_main!(group::benches);
