//! Codec throughput: whole Eventer frames (chatter prefix + header + SBS payload)
//! encoded and decoded, in events per second.
//!
//! `cargo bench -p gateway-eventer --bench codec -- --warm-up-time 1 --measurement-time 3`

#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
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

fn bench_message(c: &mut Criterion, name: &str, msg: &EventerMsg, events: u64) {
    let header = MsgHeader::new_conversation(7, true);
    let mut wire = BytesMut::new();
    msg.encode_frame(&header, &mut wire);
    let wire = wire.freeze();

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
        b.iter(|| {
            buf.clear();
            black_box(msg).encode_frame(&header, &mut buf);
            let frame = codec.decode(&mut buf).unwrap().unwrap();
            black_box(EventerMsg::from_msg(&frame).unwrap());
        })
    });
    group.finish();
}

fn codec(c: &mut Criterion) {
    let one = EventerMsg::RegisterReq(vec![register_event(0)]);
    bench_message(c, "register_req_1", &one, 1);
    let thousand = EventerMsg::RegisterReq((0..1000).map(register_event).collect());
    bench_message(c, "register_req_1000", &thousand, 1000);
    let notify = EventerMsg::EventsNotify((0..1000).map(event).collect());
    bench_message(c, "events_notify_1000", &notify, 1000);
}

criterion_group!(benches, codec);
criterion_main!(benches);
