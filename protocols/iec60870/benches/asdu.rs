//! ASDU codec throughput in points (information elements) per second: decoding and
//! packed encoding of spontaneous 104 bursts, as a master receives and a slave sends
//! them.
//!
//! `cargo bench -p gateway-iec60870 --bench asdu -- --warm-up-time 1 --measurement-time 3`

#![allow(clippy::unwrap_used)]

use std::time::{Duration, UNIX_EPOCH};

use criterion::{black_box, criterion_main, Criterion, Throughput};
use iec60870::asdu::{AsduCodec, Profile};
use iec60870::types::*;

/// Points per burst.
const POINTS: usize = 1_000;

fn floats(time: Option<Time>) -> Vec<Msg> {
    (0..POINTS)
        .map(|n| {
            Msg::Data(DataMsg {
                is_test: false,
                originator_address: 0,
                asdu_address: 1,
                io_address: 1_000 + n as u32,
                data: Data::Floating(FloatingData {
                    value: FloatingValue(n as f32 * 0.5),
                    quality: MeasurementQuality::default(),
                }),
                time: time.map(|t| Time {
                    milliseconds: (n % 60_000) as u16,
                    ..t
                }),
                cause: DataCause::Spontaneous,
            })
        })
        .collect()
}

fn bench_burst(c: &mut Criterion, name: &str, msgs: &[Msg]) {
    let codec = AsduCodec::new(Profile::iec104());
    let asdus = codec.encode(msgs).unwrap();
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(msgs.len() as u64));
    group.bench_function("decode", |b| {
        let mut out = Vec::with_capacity(POINTS);
        b.iter(|| {
            out.clear();
            for asdu in &asdus {
                codec.decode_into(black_box(asdu), &mut out).unwrap();
            }
            black_box(out.len())
        })
    });
    group.bench_function("encode", |b| {
        b.iter(|| {
            let mut octets = 0;
            codec
                .encode_each(black_box(msgs), |asdu| octets += asdu.len())
                .unwrap();
            black_box(octets)
        })
    });
    group.finish();
}

fn bench(c: &mut Criterion) {
    let time = Time::from_system_time(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    bench_burst(c, "float_sequence", &floats(None));
    bench_burst(c, "float_cp56", &floats(Some(time)));
}

/// The benchmark group (`criterion_group!` writes an undocumented `pub fn`).
#[allow(missing_docs)]
mod group {
    use criterion::criterion_group;
    criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);
