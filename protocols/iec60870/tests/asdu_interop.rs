//! Interoperability with hat-drivers' own IEC 101/104 encoders (run with the test
//! venv's Python): hat's ASDUs decode to hat's messages and re-encode to hat's octets;
//! hat decodes the ASDUs we pack to the messages we packed.
#![allow(clippy::unwrap_used)]

mod asdu_support;

use std::collections::{BTreeMap, BTreeSet};

use asdu_support::{codec, hat_vectors, to_hex, HatDecoder};
use iec60870::asdu::{AsduCodec, Profile};
use iec60870::types::*;

#[test]
fn hat_asdus_decode_to_hat_messages_and_reencode_to_the_same_octets() {
    let vectors = hat_vectors();
    assert!(vectors.len() > 700, "only {} vectors", vectors.len());
    let mut covered: BTreeMap<&str, BTreeSet<u8>> = BTreeMap::new();
    for v in &vectors {
        let codec = codec(&v.profile, &v.sizes);
        let decoded = codec
            .decode(&v.bytes)
            .unwrap_or_else(|e| panic!("{e} decoding {}", v.line));
        assert_eq!(decoded, v.msgs, "decoding {}", v.line);
        let encoded = codec.encode(&v.msgs).unwrap();
        assert_eq!(encoded.len(), 1, "one ASDU for {}", v.line);
        assert_eq!(to_hex(&encoded[0]), to_hex(&v.bytes), "encoding {}", v.line);
        if v.msgs.len() == 1 {
            assert_eq!(codec.encode_one(&v.msgs[0]).unwrap(), encoded[0]);
        }
        covered.entry(&v.profile).or_default().insert(v.bytes[0]);
    }
    // Every type id each profile carries has at least one vector.
    for (name, profile) in [
        ("104", Profile::iec104()),
        ("101", codec("101", &[1, 1, 1]).profile()),
    ] {
        let supported: BTreeSet<u8> = (0..=255).filter(|&t| profile.supports_type_id(t)).collect();
        assert_eq!(covered[name], supported, "type ids covered in {name}");
    }
}

fn measurement_quality(n: u32) -> MeasurementQuality {
    MeasurementQuality {
        invalid: n % 7 == 0,
        overflow: n % 5 == 0,
        ..MeasurementQuality::default()
    }
}

/// A spontaneous burst: runs of consecutive floats (sequences), scattered scaled values,
/// time-tagged singles, and a cause change in the middle.
fn burst() -> Vec<Msg> {
    let time = Time::from_system_time(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000),
    );
    let mut msgs = Vec::new();
    let base = DataMsg {
        is_test: false,
        originator_address: 3,
        asdu_address: 40000,
        io_address: 0,
        data: Data::Single(SingleData {
            value: SingleValue::On,
            quality: IndicationQuality::default(),
        }),
        time: None,
        cause: DataCause::Spontaneous,
    };
    for n in 0..300u32 {
        msgs.push(Msg::Data(DataMsg {
            io_address: 1_000_000 + n,
            data: Data::Floating(FloatingData {
                value: FloatingValue(n as f32 * 0.25 - 20.0),
                quality: measurement_quality(n),
            }),
            ..base
        }));
    }
    for n in 0..100u32 {
        msgs.push(Msg::Data(DataMsg {
            io_address: 7 * n + 1,
            data: Data::Scaled(ScaledData {
                value: ScaledValue(n as i16 * 300 - 15000),
                quality: measurement_quality(n),
            }),
            cause: if n < 50 {
                DataCause::Spontaneous
            } else {
                DataCause::InterrogatedStation
            },
            ..base
        }));
    }
    for n in 0..60u32 {
        msgs.push(Msg::Data(DataMsg {
            io_address: 500 + n,
            data: Data::Single(SingleData {
                value: if n % 2 == 0 {
                    SingleValue::On
                } else {
                    SingleValue::Off
                },
                quality: IndicationQuality {
                    invalid: n % 3 == 0,
                    ..IndicationQuality::default()
                },
            }),
            time: Some(Time {
                milliseconds: (n * 997 % 60000) as u16,
                ..time
            }),
            ..base
        }));
    }
    msgs
}

#[test]
fn hat_decodes_the_asdus_we_pack_to_the_messages_we_packed() {
    let mut hat = HatDecoder::start();

    // Every message of the vectors, per profile, packed in one call.
    let vectors = hat_vectors();
    let mut groups: BTreeMap<(String, Vec<u64>), Vec<Msg>> = BTreeMap::new();
    for v in vectors {
        groups
            .entry((v.profile, v.sizes))
            .or_default()
            .extend(v.msgs);
    }
    for ((profile, sizes), msgs) in &groups {
        let codec = codec(profile, sizes);
        let asdus = codec.encode(msgs).unwrap();
        let mut decoded = Vec::new();
        for asdu in &asdus {
            assert!(asdu.len() <= codec.max_asdu_size());
            decoded.extend(
                hat.decode(profile, sizes, asdu)
                    .unwrap_or_else(|e| panic!("hat: {e} for {}", to_hex(asdu))),
            );
        }
        assert_eq!(&decoded, msgs, "{profile} {sizes:?}");
    }

    // A burst through 104: hat reads it back, and it packs as tightly as it should.
    let codec = AsduCodec::new(Profile::iec104());
    let msgs = burst();
    let asdus = codec.encode(&msgs).unwrap();
    let mut decoded = Vec::new();
    for asdu in &asdus {
        assert!(asdu.len() <= 249, "{} octets", asdu.len());
        decoded.extend(hat.decode("104", &[2, 2, 3], asdu).unwrap());
    }
    assert_eq!(decoded, msgs);
    // 300 consecutive floats: sequences of (249 - 9) / 5 = 48 elements -> 7 ASDUs;
    // 2 x 50 scattered scaled values: (249 - 6) / 6 = 40 objects per ASDU -> 2 x 2;
    // 60 singles with CP56: (249 - 6) / 11 = 22 objects -> 3.
    assert_eq!(asdus.len(), 7 + 4 + 3);
    assert_eq!(asdus[0][1], 0x80 | 48, "first ASDU is a sequence of 48");
    assert_eq!(asdus[7][1], 40, "scaled values are 40 separate objects");
    assert_eq!(
        asdus[11][1], 22,
        "time-tagged singles are 22 separate objects"
    );
}
