//! Unit tests of the 103 codec: hand-made octets, bad input.

use super::*;
use crate::types::{Time, TimeSize};

fn time4() -> Time {
    Time {
        size: TimeSize::Four,
        milliseconds: 12_345,
        invalid: Some(false),
        substituted: Some(false),
        minutes: Some(17),
        summer_time: Some(true),
        hours: Some(9),
        day_of_week: None,
        day_of_month: None,
        months: None,
        years: None,
    }
}

#[test]
fn time_tagged_message_octets() {
    let asdu = Asdu {
        asdu_type: AsduType::TimeTaggedMessage,
        cause: Cause::Known(KnownCause::Spontaneous),
        address: 7,
        ios: vec![Io {
            address: IoAddress {
                function_type: 160,
                information_number: 16,
            },
            elements: vec![IoElement::TimeTaggedMessage(DoubleWithTimeValue {
                value: DoubleValue::On,
                time: time4(),
                supplementary: 5,
            })],
        }],
    };
    let bytes = encode(&asdu).unwrap();
    assert_eq!(bytes, [1, 0x81, 1, 7, 160, 16, 2, 0x39, 0x30, 17, 0x89, 5]);
    assert_eq!(decode(&bytes).unwrap(), asdu);
}

#[test]
fn measurands_are_one_object_with_a_sequence_of_elements() {
    let m = |v: f64| MeasurandValue {
        overflow: false,
        invalid: v < 0.0,
        value: v,
    };
    let asdu = Asdu {
        asdu_type: AsduType::Measurands2,
        cause: Cause::Known(KnownCause::Cyclic),
        address: 1,
        ios: vec![Io {
            address: IoAddress {
                function_type: 128,
                information_number: 148,
            },
            elements: vec![
                IoElement::Measurands2(m(0.5)),
                IoElement::Measurands2(m(-0.25)),
            ],
        }],
    };
    let bytes = encode(&asdu).unwrap();
    // VSQ bit 7 clear: a sequence (inverted with respect to 101/104).
    assert_eq!(&bytes[..6], &[9, 2, 2, 1, 128, 148]);
    // 0.5 * 4096 = 2048 at bit offset 3.
    assert_eq!(&bytes[6..8], &(2048u16 << 3).to_le_bytes());
    assert_eq!(decode(&bytes).unwrap(), asdu);
}

#[test]
fn unknown_cause_is_other() {
    let bytes = [8, 0x81, 99, 1, 255, 0, 3];
    let asdu = decode(&bytes).unwrap();
    assert_eq!(asdu.cause, Cause::Other(99));
    assert_eq!(encode(&asdu).unwrap(), bytes);
}

#[test]
fn unknown_type_is_its_own_error() {
    for type_id in [0u8, 12, 22, 32, 255] {
        assert_eq!(
            decode(&[type_id, 0x81, 1, 1, 0, 0]),
            Err(Iec103Error::UnknownType { type_id })
        );
    }
}

#[test]
fn every_truncation_of_valid_asdus_is_an_error_never_a_panic() {
    let samples: [&[u8]; 4] = [
        &[1, 0x81, 1, 7, 160, 16, 2, 0x39, 0x30, 17, 0x89, 5],
        &[9, 2, 2, 1, 128, 148, 0, 0x40, 0, 0x20],
        &[
            5, 0x81, 4, 1, 255, 3, 2, b'a', b'b', b'c', b'd', b'e', b'f', b'g', b'h', 1, 2, 3, 4,
        ],
        // Generic data: one entry, an array of two UINTs of one octet.
        &[10, 0x81, 1, 1, 254, 244, 7, 1, 1, 2, 1, 3, 1, 2, 5, 6],
    ];
    for bytes in samples {
        assert!(decode(bytes).is_ok(), "{bytes:?}");
        for n in 0..bytes.len() {
            let err = decode(&bytes[..n]).unwrap_err();
            assert!(
                matches!(err, Iec103Error::Truncated { .. }),
                "{n} of {bytes:?}: {err}"
            );
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert_eq!(
            decode(&longer),
            Err(Iec103Error::TrailingBytes { count: 1 })
        );
    }
}

#[test]
fn invalid_coded_values_are_errors() {
    // Double point of 4 in a time-tagged message.
    assert_eq!(
        decode(&[1, 0x81, 1, 7, 160, 16, 4, 0, 0, 0, 0, 0]),
        Err(Iec103Error::InvalidValue {
            field: "double value"
        })
    );
    // Generic data type 13 is not named.
    assert_eq!(
        decode(&[10, 0x81, 1, 1, 254, 244, 7, 1, 1, 2, 1, 13, 1, 0]),
        Err(Iec103Error::InvalidValue {
            field: "generic data type"
        })
    );
}

#[test]
fn arbitrary_octets_never_panic() {
    // A deterministic spray of short inputs over every type id.
    let mut state = 0x1234_5678u32;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    for _ in 0..50_000 {
        let len = (next() % 40) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if let Some(b) = bytes.first_mut() {
            *b %= 32;
        }
        if let Ok(asdu) = decode(&bytes) {
            // Whatever decodes re-encodes to octets that decode to the same ASDU
            // (reserved bits are dropped), but a sequence of no elements (hat cannot
            // encode it either).
            match encode(&asdu) {
                Ok(again) => assert_eq!(decode(&again).unwrap(), asdu, "{bytes:?}"),
                Err(e) => {
                    assert!(asdu.ios.iter().any(|io| io.elements.is_empty()), "{e}");
                }
            }
        }
    }
}

#[test]
fn encoding_rejects_what_does_not_fit() {
    let io = |elements| Io {
        address: IoAddress {
            function_type: 1,
            information_number: 2,
        },
        elements,
    };
    let gi = Asdu {
        asdu_type: AsduType::GeneralInterrogation,
        cause: Cause::Known(KnownCause::GeneralInterrogation),
        address: 1,
        ios: vec![io(vec![IoElement::GeneralInterrogationTermination(1)])],
    };
    assert!(matches!(encode(&gi), Err(Iec103Error::OutOfRange { .. })));
    let m = Asdu {
        asdu_type: AsduType::Measurands1,
        cause: Cause::Known(KnownCause::Cyclic),
        address: 1,
        ios: vec![io(vec![IoElement::Measurands1(MeasurandValue {
            overflow: false,
            invalid: false,
            value: 1.0,
        })])],
    };
    assert!(matches!(encode(&m), Err(Iec103Error::OutOfRange { .. })));
    let seven_from_four = Asdu {
        asdu_type: AsduType::TimeSynchronization,
        cause: Cause::Known(KnownCause::TimeSynchronization),
        address: 255,
        ios: vec![io(vec![IoElement::TimeSynchronization(time4())])],
    };
    assert!(matches!(
        encode(&seven_from_four),
        Err(Iec103Error::OutOfRange { field: "time size" })
    ));
}

#[test]
fn measurand_type_names_follow_hat() {
    assert_eq!(
        measurand_type_name(AsduType::Measurands1, 0),
        Some("m1_i_l2")
    );
    assert_eq!(measurand_type_name(AsduType::Measurands2, 8), Some("m2_f"));
    assert_eq!(measurand_type_name(AsduType::Measurands2, 9), None);
    assert_eq!(measurand_type_name(AsduType::GenericData, 0), None);
}

/// A generic data ASDU with one array of `values` of `value_type`.
fn generic_data(value_type: ValueType, values: Vec<Value>) -> Asdu {
    Asdu {
        asdu_type: AsduType::GenericData,
        cause: Cause::Known(KnownCause::GeneralInterrogation),
        address: 1,
        ios: vec![Io {
            address: IoAddress {
                function_type: 254,
                information_number: 244,
            },
            elements: vec![IoElement::GenericData {
                return_identifier: 0,
                counter: false,
                more_follows: false,
                data: vec![(
                    Identification {
                        group_id: 1,
                        entry_id: 1,
                    },
                    DescriptiveData {
                        description: Description::ActualValue,
                        value: ArrayValue {
                            value_type,
                            more_follows: false,
                            values,
                        },
                    },
                )],
            }],
        }],
    }
}

#[test]
fn wide_fixed_values_are_re_encoded_in_two_octets_as_hat_does() {
    // What the iec103_decode fuzz target found: a (U)Fixed array element may come in
    // up to 8 octets, but the model (hat's too) keeps no element width and both
    // encoders write (U)Fixed in its minimum size, 2 octets (hat's
    // `_get_value_min_size`), so the round trip keeps 16 bits of the fraction.
    for (value_type, value) in [
        (ValueType::UFixed, Value::UFixed(0.5)),
        (ValueType::Fixed, Value::Fixed(-0.5)),
    ] {
        let two = encode(&generic_data(value_type, vec![value])).unwrap();
        // The array header (type, size 2, one element) and the element, last.
        let at = two.len() - 5;
        assert_eq!(&two[at..at + 3], &[value_type.to_u8(), 2, 1]);
        // The same ASDU with the element in 4 octets and more precision.
        let mut four = two[..at].to_vec();
        four.extend_from_slice(&[
            value_type.to_u8(),
            4,
            1,
            0x01,
            0x00,
            two[at + 3],
            two[at + 4],
        ]);
        let wide = decode(&four).unwrap();
        let re_encoded = encode(&wide).unwrap();
        assert_eq!(re_encoded.len(), two.len(), "written in 2 octets again");
        let again = decode(&re_encoded).unwrap();
        // The low 16 bits are gone (truncated toward zero, as hat's `int()` does).
        assert_ne!(again, wide);
        // From there on the round trip is stable, which the fuzz target checks.
        assert_eq!(encode(&again).unwrap(), re_encoded);
    }
}
