//! The codec against bad input and at its limits: every prefix of valid ASDUs,
//! trailing octets, unknown and profile-foreign type ids, forbidden values, seeded
//! garbage, every field size, values that do not fit, messages a profile cannot carry,
//! and the packing limits (largest ASDU, 127 objects, header changes).
#![allow(clippy::unwrap_used)]

mod asdu_support;

use asdu_support::{codec, hat_vectors};
use iec60870::asdu::{
    AsduAddressSize, AsduCodec, AsduError, CauseSize, FieldSizes, IoAddressSize, Profile,
    MAX_ASDU_SIZE_LIMIT, MIN_ASDU_SIZE_LIMIT,
};
use iec60870::types::*;

fn iec104() -> AsduCodec {
    AsduCodec::new(Profile::iec104())
}

fn single(io_address: u32) -> DataMsg {
    DataMsg {
        is_test: false,
        originator_address: 0,
        asdu_address: 1,
        io_address,
        data: Data::Single(SingleData {
            value: SingleValue::On,
            quality: IndicationQuality::default(),
        }),
        time: None,
        cause: DataCause::Spontaneous,
    }
}

fn single_command() -> CommandMsg {
    CommandMsg {
        is_test: false,
        originator_address: 0,
        asdu_address: 1,
        io_address: 1,
        command: Command::Single(SingleCommand {
            value: SingleValue::On,
            select: false,
            qualifier: 0,
        }),
        is_negative_confirm: false,
        time: None,
        cause: CommandCause::Activation,
    }
}

fn time7() -> Time {
    Time::from_system_time(std::time::UNIX_EPOCH)
}

#[test]
fn every_prefix_of_every_hat_vector_is_truncated_and_extra_octets_are_trailing() {
    for v in hat_vectors() {
        let codec = codec(&v.profile, &v.sizes);
        for len in 0..v.bytes.len() {
            match codec.decode(&v.bytes[..len]) {
                Err(AsduError::Truncated { needed, available }) => {
                    assert_eq!(available, len);
                    assert!(needed > len);
                }
                other => panic!("{len} octets of {}: {other:?}", v.line),
            }
        }
        let mut longer = v.bytes.clone();
        longer.push(0);
        assert_eq!(
            codec.decode(&longer),
            Err(AsduError::TrailingBytes {
                type_id: v.bytes[0],
                count: 1
            }),
            "{}",
            v.line
        );
    }
}

#[test]
fn unknown_and_foreign_type_ids_are_unknown_types() {
    let c104 = iec104();
    let c101 = codec("101", &[1, 1, 1]);
    // Undefined ids, file transfer (120..=126), and the other profile's own types.
    for type_id in [
        0u8, 22, 29, 41, 44, 52, 57, 65, 69, 99, 108, 114, 120, 126, 127, 255, 2, 17, 104, 106,
    ] {
        let asdu = [
            type_id, 1, 3, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(
            c104.decode(&asdu),
            Err(AsduError::UnknownType { type_id }),
            "104 {type_id}"
        );
    }
    for type_id in [58u8, 64, 107, 120, 0] {
        let asdu = [type_id, 1, 3, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            c101.decode(&asdu),
            Err(AsduError::UnknownType { type_id }),
            "101 {type_id}"
        );
    }
}

#[test]
fn zero_objects_and_forbidden_values_are_refused() {
    let c = iec104();
    assert_eq!(
        c.decode(&[1, 0, 3, 0, 1, 0]),
        Err(AsduError::NoObjects { type_id: 1 })
    );
    assert_eq!(
        c.decode(&[1, 0x80, 3, 0, 1, 0]),
        Err(AsduError::NoObjects { type_id: 1 })
    );
    for rco in [0u8, 3, 0x80, 0x83] {
        assert!(matches!(
            c.decode(&[47, 1, 6, 0, 1, 0, 1, 0, 0, rco]),
            Err(AsduError::InvalidValue { type_id: 47, .. })
        ));
    }
    // A sequence of 2 from object 255 with one-octet addresses would reach 256.
    let c101 = codec("101", &[1, 1, 1]);
    assert!(matches!(
        c101.decode(&[1, 0x82, 3, 1, 0xff, 1, 1]),
        Err(AsduError::InvalidValue { type_id: 1, .. })
    ));
    assert_eq!(c101.decode(&[1, 0x82, 3, 1, 0xfe, 1, 1]).unwrap().len(), 2);
    let time = [0u8; 7];
    for sep in [0u8, 3] {
        let mut asdu = vec![38, 1, 3, 0, 1, 0, 1, 0, 0, sep, 0, 0];
        asdu.extend_from_slice(&time);
        assert!(matches!(
            c.decode(&asdu),
            Err(AsduError::InvalidValue { type_id: 38, .. })
        ));
    }
}

#[test]
fn decode_into_keeps_what_out_held_on_error() {
    let c = iec104();
    let mut out = c.decode(&[1, 1, 3, 0, 1, 0, 5, 0, 0, 1]).unwrap();
    // Second object of the sequence has an invalid regulating step.
    let bad = [47, 0x82, 6, 0, 1, 0, 1, 0, 0, 0x01, 0x00];
    assert!(c.decode_into(&bad, &mut out).is_err());
    assert_eq!(out, vec![Msg::Data(single(5))]);
}

/// xorshift64*, so the garbage is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn seeded_garbage_never_panics_and_what_decodes_reencodes_to_the_same_messages() {
    let codecs = [
        iec104(),
        codec("101", &[1, 1, 1]),
        codec("101", &[2, 2, 2]),
        codec("101", &[1, 2, 3]),
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut decoded = 0;
    for round in 0..200_000 {
        let codec = &codecs[round % codecs.len()];
        let len = (rng.next() % 64) as usize;
        let mut asdu: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if len > 2 {
            // Mostly valid type ids and small counts, so decoding gets past the header.
            asdu[0] = (rng.next() % 114) as u8;
            asdu[1] = (asdu[1] & 0x80) | (rng.next() % 4) as u8;
        }
        // Garbage rarely has the exact length its header asks for: fit it once.
        match codec.decode(&asdu) {
            Err(AsduError::Truncated { needed, .. }) if needed < 256 => {
                asdu.resize_with(needed, || rng.next() as u8)
            }
            Err(AsduError::TrailingBytes { count, .. }) => asdu.truncate(asdu.len() - count),
            _ => {}
        }
        let Ok(msgs) = codec.decode(&asdu) else {
            continue;
        };
        decoded += 1;
        let mut again = Vec::new();
        for packed in codec.encode(&msgs).unwrap() {
            again.extend(codec.decode(&packed).unwrap());
        }
        // Debug text, so NaN floats compare equal.
        assert_eq!(format!("{again:?}"), format!("{msgs:?}"), "{asdu:02x?}");
    }
    assert!(decoded > 50_000, "only {decoded} garbage inputs decoded");
}

#[test]
fn every_field_size_combination_round_trips_at_its_largest_addresses() {
    for cause in [CauseSize::One, CauseSize::Two] {
        for asdu_address in [AsduAddressSize::One, AsduAddressSize::Two] {
            for io_address in [IoAddressSize::One, IoAddressSize::Two, IoAddressSize::Three] {
                let sizes = FieldSizes {
                    cause,
                    asdu_address,
                    io_address,
                };
                let c = AsduCodec::new(Profile::iec101(sizes));
                let max_ca = (1u32 << (8 * asdu_address.octets())) - 1;
                let max_ioa = (1u64 << (8 * io_address.octets())) - 1;
                let msg = DataMsg {
                    originator_address: if cause == CauseSize::Two { 255 } else { 0 },
                    asdu_address: max_ca as u16,
                    io_address: max_ioa as u32,
                    ..single(0)
                };
                let bytes = c.encode_one(&Msg::Data(msg)).unwrap();
                let header = 2 + cause.octets() + asdu_address.octets();
                assert_eq!(bytes.len(), header + io_address.octets() + 1, "{sizes:?}");
                assert_eq!(c.decode(&bytes).unwrap(), vec![Msg::Data(msg)], "{sizes:?}");

                let too_far = DataMsg {
                    io_address: max_ioa as u32 + 1,
                    ..msg
                };
                assert_eq!(
                    c.encode_one(&Msg::Data(too_far)),
                    Err(AsduError::OutOfRange {
                        field: "io_address"
                    }),
                    "{sizes:?}"
                );
                if asdu_address == AsduAddressSize::One {
                    let too_far = DataMsg {
                        asdu_address: 256,
                        ..msg
                    };
                    assert_eq!(
                        c.encode_one(&Msg::Data(too_far)),
                        Err(AsduError::OutOfRange {
                            field: "asdu_address"
                        })
                    );
                }
                if cause == CauseSize::One {
                    // As hat: no originator field, so the originator is not sent.
                    let with = DataMsg {
                        originator_address: 9,
                        ..msg
                    };
                    let decoded = c.decode(&c.encode_one(&Msg::Data(with)).unwrap()).unwrap();
                    assert_eq!(decoded, vec![Msg::Data(msg)]);
                }
            }
        }
    }
}

#[test]
fn values_that_do_not_fit_their_fields_are_refused() {
    let c = iec104();
    let out = |msg: Msg| c.encode_one(&msg);
    let data = |data| Msg::Data(DataMsg { data, ..single(1) });
    let field = |field| Err(AsduError::OutOfRange { field });
    assert_eq!(
        out(Msg::Data(DataMsg {
            cause: DataCause::Other(64),
            ..single(1)
        })),
        field("cause")
    );
    for bad in [-65i8, 64, i8::MIN, i8::MAX] {
        assert_eq!(
            out(data(Data::StepPosition(StepPositionData {
                value: StepPositionValue {
                    value: bad,
                    transient: false
                },
                quality: MeasurementQuality::default(),
            }))),
            field("step position value")
        );
    }
    for bad in [1.001f32, -1.001, f32::NAN, f32::INFINITY] {
        assert_eq!(
            out(data(Data::Normalized(NormalizedData {
                value: NormalizedValue(bad),
                quality: None,
            }))),
            field("normalized value"),
            "{bad}"
        );
    }
    assert_eq!(
        out(data(Data::BinaryCounter(BinaryCounterData {
            value: BinaryCounterValue(0),
            quality: CounterQuality {
                sequence: 32,
                ..CounterQuality::default()
            },
        }))),
        field("counter quality sequence")
    );
    assert_eq!(
        out(Msg::Command(CommandMsg {
            command: Command::Double(DoubleCommand {
                value: DoubleValue::On,
                select: true,
                qualifier: 32,
            }),
            ..single_command()
        })),
        field("command qualifier")
    );
    assert_eq!(
        out(Msg::CounterInterrogation(CounterInterrogationMsg {
            is_test: false,
            originator_address: 0,
            asdu_address: 1,
            request: 64,
            freeze: FreezeCode::Read,
            is_negative_confirm: false,
            cause: CommandCause::Activation,
        })),
        field("counter interrogation request")
    );
    assert_eq!(
        out(Msg::Initialization(InitializationMsg {
            is_test: false,
            originator_address: 0,
            asdu_address: 1,
            param_change: false,
            cause: InitializationCause::Other(128),
        })),
        field("cause of initialization")
    );
    let t = time7();
    for (bad, name) in [
        (
            Time {
                minutes: Some(64),
                ..t
            },
            "time minutes",
        ),
        (Time { hours: None, ..t }, "time hours"),
        (
            Time {
                day_of_week: Some(8),
                ..t
            },
            "time day_of_week",
        ),
        (
            Time {
                months: Some(16),
                ..t
            },
            "time months",
        ),
        (
            Time {
                years: Some(128),
                ..t
            },
            "time years",
        ),
    ] {
        assert_eq!(
            out(Msg::Data(DataMsg {
                time: Some(bad),
                ..single(1)
            })),
            field(name)
        );
    }
}

#[test]
fn messages_a_profile_cannot_carry_are_unsupported() {
    let c104 = iec104();
    let c101 = codec("101", &[2, 2, 3]);
    let unsupported = |r: Result<_, AsduError>| matches!(r, Err(AsduError::Unsupported { .. }));
    let protection = Data::Protection(ProtectionData {
        value: ProtectionValue::On,
        quality: ProtectionQuality::default(),
        elapsed_time: 0,
    });
    let status = Data::Status(StatusData {
        value: StatusValue {
            value: [false; 16],
            change: [false; 16],
        },
        quality: MeasurementQuality::default(),
    });
    let bare_normalized = Data::Normalized(NormalizedData {
        value: NormalizedValue(0.0),
        quality: None,
    });
    let t7 = time7();
    let t3 = Time {
        size: TimeSize::Three,
        ..t7
    };
    let t2 = Time {
        size: TimeSize::Two,
        ..t7
    };
    for c in [&c104, &c101] {
        let m = |data, time| {
            Msg::Data(DataMsg {
                data,
                time,
                ..single(1)
            })
        };
        assert!(unsupported(c.encode_one(&m(protection, None))));
        assert!(unsupported(c.encode_one(&m(status, Some(t7)))));
        assert!(unsupported(c.encode_one(&m(bare_normalized, Some(t7)))));
        assert!(unsupported(c.encode_one(&m(single(1).data, Some(t2)))));
        let sync = Msg::ClockSync(ClockSyncMsg {
            is_test: false,
            originator_address: 0,
            asdu_address: 1,
            time: t3,
            is_negative_confirm: false,
            cause: ClockSyncCause::Activation,
        });
        assert!(unsupported(c.encode_one(&sync)));
    }
    // 104: CP56 only, no delay acquisition, test needs its time.
    assert!(unsupported(c104.encode_one(&Msg::Data(DataMsg {
        time: Some(t3),
        ..single(1)
    }))));
    assert!(unsupported(c104.encode_one(&Msg::Command(CommandMsg {
        time: Some(t3),
        ..single_command()
    }))));
    assert!(unsupported(c104.encode_one(&Msg::Delay(DelayMsg {
        is_test: false,
        originator_address: 0,
        asdu_address: 1,
        time: 5,
        cause: DelayCause::Activation,
    }))));
    let test = TestMsg {
        is_test: false,
        originator_address: 0,
        asdu_address: 1,
        counter: 1,
        time: None,
        cause: ActivationCause::Activation,
    };
    assert!(unsupported(c104.encode_one(&Msg::Test(test))));
    // 101: commands carry no time; a CP24 data time works, as does the test without one.
    assert!(unsupported(c101.encode_one(&Msg::Command(CommandMsg {
        time: Some(t7),
        ..single_command()
    }))));
    let cp24 = c101
        .encode_one(&Msg::Data(DataMsg {
            time: Some(t3),
            ..single(1)
        }))
        .unwrap();
    assert_eq!(cp24[0], 2, "M_SP_TA_1");
    let four = Time {
        size: TimeSize::Four,
        ..t7
    };
    let cp24 = c101
        .encode_one(&Msg::Data(DataMsg {
            time: Some(four),
            ..single(1)
        }))
        .unwrap();
    assert_eq!(cp24[0], 2, "a CP32 time goes as CP24, as hat sends it");
    assert_eq!(c101.encode_one(&Msg::Test(test)).unwrap()[0], 104);
}

#[test]
fn packing_respects_the_largest_asdu_the_object_limit_and_header_changes() {
    let c = iec104();
    // 200 consecutive singles: a sequence holds at most 127 elements.
    let msgs: Vec<Msg> = (0..200).map(|n| Msg::Data(single(n))).collect();
    let asdus = c.encode(&msgs).unwrap();
    assert_eq!(
        asdus.iter().map(|a| a[1]).collect::<Vec<_>>(),
        vec![0x80 | 127, 0x80 | 73]
    );
    assert_eq!(asdus[0].len(), 6 + 3 + 127);

    // A small largest ASDU: 6 header + 3 address + n elements <= 30 -> 21 per ASDU.
    let small = c.with_max_asdu_size(30).unwrap();
    let asdus = small.encode(&msgs[..50]).unwrap();
    assert_eq!(
        asdus.iter().map(|a| a[1] & 0x7f).collect::<Vec<_>>(),
        vec![21, 21, 8]
    );
    assert!(asdus.iter().all(|a| a.len() <= 30));

    // Scattered addresses: separate objects of 4 octets -> (30 - 6) / 4 = 6 per ASDU.
    let scattered: Vec<Msg> = (0..13).map(|n| Msg::Data(single(n * 2))).collect();
    let asdus = small.encode(&scattered).unwrap();
    assert_eq!(
        asdus.iter().map(|a| a[1]).collect::<Vec<_>>(),
        vec![6, 6, 1]
    );

    // Any change of the shared header starts a new ASDU.
    let base = single(1);
    let changes = [
        Msg::Data(base),
        Msg::Data(DataMsg {
            io_address: 2,
            ..base
        }),
        Msg::Data(DataMsg {
            io_address: 3,
            cause: DataCause::InterrogatedStation,
            ..base
        }),
        Msg::Data(DataMsg {
            io_address: 4,
            is_test: true,
            ..base
        }),
        Msg::Data(DataMsg {
            io_address: 5,
            originator_address: 1,
            ..base
        }),
        Msg::Data(DataMsg {
            io_address: 6,
            asdu_address: 2,
            ..base
        }),
        Msg::Data(DataMsg {
            io_address: 7,
            data: Data::Double(DoubleData {
                value: DoubleValue::On,
                quality: IndicationQuality::default(),
            }),
            ..base
        }),
        Msg::Data(DataMsg {
            io_address: 8,
            time: Some(time7()),
            ..base
        }),
    ];
    let asdus = c.encode(&changes).unwrap();
    assert_eq!(asdus.len(), 7);
    assert_eq!(asdus[0][1], 0x82);
    let mut back = Vec::new();
    for a in &asdus {
        back.extend(c.decode(a).unwrap());
    }
    assert_eq!(back, changes);

    // Commands travel one per ASDU even when they could share.
    let commands = [
        Msg::Command(single_command()),
        Msg::Command(single_command()),
    ];
    assert_eq!(c.encode(&commands).unwrap().len(), 2);

    // encode_each stops at the bad message, after emitting the ASDUs before it.
    let mixed = [
        Msg::Command(single_command()),
        Msg::Data(DataMsg {
            cause: DataCause::Other(99),
            ..single(1)
        }),
    ];
    let mut emitted = 0;
    assert!(c.encode_each(&mixed, |_| emitted += 1).is_err());
    assert_eq!(emitted, 1);
    assert!(c.encode(&mixed).is_err());
}

#[test]
fn largest_asdu_size_must_fit_every_message_and_the_length_octet() {
    let c = iec104();
    assert_eq!(c.max_asdu_size(), 249);
    assert_eq!(codec("101", &[1, 1, 1]).max_asdu_size(), 252);
    for size in [0, MIN_ASDU_SIZE_LIMIT - 1, MAX_ASDU_SIZE_LIMIT + 1] {
        assert_eq!(
            c.with_max_asdu_size(size),
            Err(AsduError::InvalidMaxAsduSize { size })
        );
    }
    // The largest single message fits the smallest allowed size.
    let small = c.with_max_asdu_size(MIN_ASDU_SIZE_LIMIT).unwrap();
    let float_with_time = Msg::Data(DataMsg {
        data: Data::Floating(FloatingData {
            value: FloatingValue(1.0),
            quality: MeasurementQuality::default(),
        }),
        time: Some(time7()),
        ..single(1)
    });
    assert_eq!(
        small.encode_one(&float_with_time).unwrap().len(),
        MIN_ASDU_SIZE_LIMIT
    );
}
