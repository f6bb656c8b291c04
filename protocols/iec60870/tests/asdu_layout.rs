//! The byte layout of every type id, from hand-written vectors (IEC 60870-5-101/104
//! element layouts, as hat-drivers reads and writes them): each decodes to the given
//! message and the message encodes to exactly those octets.
#![allow(clippy::unwrap_used)]

use iec60870::asdu::{AsduAddressSize, AsduCodec, CauseSize, FieldSizes, IoAddressSize, Profile};
use iec60870::types::*;

fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    digits
        .chunks(2)
        .map(|d| u8::from_str_radix(&d.iter().collect::<String>(), 16).unwrap())
        .collect()
}

/// CP56 of 2024-06-15 (a Wednesday, 3) 12:34:12.345, flags clear.
const CP56: &str = "39 30 22 0c 6f 06 18";

fn cp56() -> Time {
    Time {
        size: TimeSize::Seven,
        milliseconds: 12345,
        invalid: Some(false),
        substituted: Some(false),
        minutes: Some(34),
        summer_time: Some(false),
        hours: Some(12),
        day_of_week: Some(3),
        day_of_month: Some(15),
        months: Some(6),
        years: Some(24),
    }
}

/// CP24 of the same minute.
const CP24: &str = "39 30 22";

fn cp24() -> Time {
    Time {
        size: TimeSize::Three,
        milliseconds: 12345,
        invalid: Some(false),
        substituted: Some(false),
        minutes: Some(34),
        summer_time: None,
        hours: None,
        day_of_week: None,
        day_of_month: None,
        months: None,
        years: None,
    }
}

fn iq(bits: u8) -> IndicationQuality {
    IndicationQuality {
        invalid: bits & 0x80 != 0,
        not_topical: bits & 0x40 != 0,
        substituted: bits & 0x20 != 0,
        blocked: bits & 0x10 != 0,
    }
}

fn mq(bits: u8) -> MeasurementQuality {
    MeasurementQuality {
        invalid: bits & 0x80 != 0,
        not_topical: bits & 0x40 != 0,
        substituted: bits & 0x20 != 0,
        blocked: bits & 0x10 != 0,
        overflow: bits & 0x01 != 0,
    }
}

fn pq(bits: u8) -> ProtectionQuality {
    ProtectionQuality {
        invalid: bits & 0x80 != 0,
        not_topical: bits & 0x40 != 0,
        substituted: bits & 0x20 != 0,
        blocked: bits & 0x10 != 0,
        time_invalid: bits & 0x08 != 0,
    }
}

/// Spontaneous data at common address 1, object 10, originator 0.
fn data(data: Data, time: Option<Time>) -> Msg {
    Msg::Data(DataMsg {
        is_test: false,
        originator_address: 0,
        asdu_address: 1,
        io_address: 10,
        data,
        time,
        cause: DataCause::Spontaneous,
    })
}

/// An activation command at common address 1, object 10.
fn command(command: Command, time: Option<Time>) -> Msg {
    Msg::Command(CommandMsg {
        is_test: false,
        originator_address: 0,
        asdu_address: 1,
        io_address: 10,
        command,
        is_negative_confirm: false,
        time,
        cause: CommandCause::Activation,
    })
}

fn nva(raw: i16) -> NormalizedValue {
    NormalizedValue((f64::from(raw) / 32767.0) as f32)
}

fn check(codec: &AsduCodec, octets: &str, msg: Msg) {
    let bytes = hex(octets);
    assert_eq!(
        codec.decode(&bytes).unwrap(),
        vec![msg],
        "decoding {octets}"
    );
    assert_eq!(
        codec.encode_one(&msg).unwrap().to_vec(),
        bytes,
        "encoding {msg:?}"
    );
}

/// 104 header: type id, one object, cause, originator 0, common address 1, object 10.
fn h104(type_id: u8, cause: u8) -> String {
    format!("{type_id:02x} 01 {cause:02x} 00 01 00 0a 00 00")
}

#[test]
fn monitoring_types_of_104() {
    let c = AsduCodec::new(Profile::iec104());
    let s = |t| h104(t, 3);
    let single = |v, q| {
        Data::Single(SingleData {
            value: v,
            quality: iq(q),
        })
    };
    check(
        &c,
        &format!("{} 81", s(1)),
        data(single(SingleValue::On, 0x80), None),
    );
    check(
        &c,
        &format!("{} 12", s(3)),
        data(
            Data::Double(DoubleData {
                value: DoubleValue::On,
                quality: iq(0x10),
            }),
            None,
        ),
    );
    let step = |value, transient, q| {
        Data::StepPosition(StepPositionData {
            value: StepPositionValue { value, transient },
            quality: mq(q),
        })
    };
    check(
        &c,
        &format!("{} c5 01", s(5)),
        data(step(-59, true, 0x01), None),
    );
    let bits = |b, q| {
        Data::Bitstring(BitstringData {
            value: BitstringValue(b),
            quality: mq(q),
        })
    };
    check(
        &c,
        &format!("{} 01 02 03 04 80", s(7)),
        data(bits([1, 2, 3, 4], 0x80), None),
    );
    let norm = |raw, q| {
        Data::Normalized(NormalizedData {
            value: nva(raw),
            quality: q,
        })
    };
    check(
        &c,
        &format!("{} 00 40 00", s(9)),
        data(norm(16384, Some(mq(0))), None),
    );
    let scaled = |v, q| {
        Data::Scaled(ScaledData {
            value: ScaledValue(v),
            quality: mq(q),
        })
    };
    check(
        &c,
        &format!("{} fe ff 20", s(11)),
        data(scaled(-2, 0x20), None),
    );
    let float = |v, q| {
        Data::Floating(FloatingData {
            value: FloatingValue(v),
            quality: mq(q),
        })
    };
    check(
        &c,
        &format!("{} 00 00 c0 3f 40", s(13)),
        data(float(1.5, 0x40), None),
    );
    let counter = |v, invalid, sequence| {
        Data::BinaryCounter(BinaryCounterData {
            value: BinaryCounterValue(v),
            quality: CounterQuality {
                invalid,
                adjusted: false,
                overflow: !invalid,
                sequence,
            },
        })
    };
    check(
        &c,
        &format!("{} 78 56 34 12 25", s(15)),
        data(counter(0x1234_5678, false, 5), None),
    );
    let mut value = [false; 16];
    value[0] = true;
    value[15] = true;
    let mut change = [false; 16];
    change[..8].fill(true);
    check(
        &c,
        &format!("{} 01 80 ff 00 10", s(20)),
        data(
            Data::Status(StatusData {
                value: StatusValue { value, change },
                quality: mq(0x10),
            }),
            None,
        ),
    );
    check(
        &c,
        &format!("{} ff 7f", s(21)),
        data(norm(32767, None), None),
    );

    let t = Some(cp56());
    check(
        &c,
        &format!("{} 00 {CP56}", s(30)),
        data(single(SingleValue::Off, 0), t),
    );
    check(
        &c,
        &format!("{} 03 {CP56}", s(31)),
        data(
            Data::Double(DoubleData {
                value: DoubleValue::Fault,
                quality: iq(0),
            }),
            t,
        ),
    );
    check(
        &c,
        &format!("{} 3f 00 {CP56}", s(32)),
        data(step(63, false, 0), t),
    );
    check(
        &c,
        &format!("{} aa bb cc dd 00 {CP56}", s(33)),
        data(bits([0xaa, 0xbb, 0xcc, 0xdd], 0), t),
    );
    check(
        &c,
        &format!("{} 00 c0 00 {CP56}", s(34)),
        data(norm(-16384, Some(mq(0))), t),
    );
    check(
        &c,
        &format!("{} 10 27 00 {CP56}", s(35)),
        data(scaled(10000, 0), t),
    );
    check(
        &c,
        &format!("{} 00 00 80 bf 00 {CP56}", s(36)),
        data(float(-1.0, 0), t),
    );
    check(
        &c,
        &format!("{} ff ff ff ff 80 {CP56}", s(37)),
        data(counter(-1, true, 0), t),
    );
    check(
        &c,
        &format!("{} 0a e8 03 {CP56}", s(38)),
        data(
            Data::Protection(ProtectionData {
                value: ProtectionValue::On,
                quality: pq(0x08),
                elapsed_time: 1000,
            }),
            t,
        ),
    );
    check(
        &c,
        &format!("{} 21 80 64 00 {CP56}", s(39)),
        data(
            Data::ProtectionStart(ProtectionStartData {
                value: ProtectionStartValue {
                    general: true,
                    l1: false,
                    l2: false,
                    l3: false,
                    ie: false,
                    reverse: true,
                },
                quality: pq(0x80),
                duration_time: 100,
            }),
            t,
        ),
    );
    check(
        &c,
        &format!("{} 0f 00 01 00 {CP56}", s(40)),
        data(
            Data::ProtectionCommand(ProtectionCommandData {
                value: ProtectionCommandValue {
                    general: true,
                    l1: true,
                    l2: true,
                    l3: true,
                },
                quality: pq(0),
                operating_time: 1,
            }),
            t,
        ),
    );
}

#[test]
fn control_types_of_104_with_and_without_time() {
    let c = AsduCodec::new(Profile::iec104());
    let a = |t| h104(t, 6);
    let t = Some(cp56());
    let single = |value, select, qualifier| {
        Command::Single(SingleCommand {
            value,
            select,
            qualifier,
        })
    };
    check(
        &c,
        &format!("{} 85", a(45)),
        command(single(SingleValue::On, true, 1), None),
    );
    check(
        &c,
        &format!("{} 01 {CP56}", a(58)),
        command(single(SingleValue::On, false, 0), t),
    );
    let double = |value, select, qualifier| {
        Command::Double(DoubleCommand {
            value,
            select,
            qualifier,
        })
    };
    check(
        &c,
        &format!("{} 0a", a(46)),
        command(double(DoubleValue::On, false, 2), None),
    );
    check(
        &c,
        &format!("{} 82 {CP56}", a(59)),
        command(double(DoubleValue::On, true, 0), t),
    );
    let regulating = |value, select| {
        Command::Regulating(RegulatingCommand {
            value,
            select,
            qualifier: 0,
        })
    };
    check(
        &c,
        &format!("{} 81", a(47)),
        command(regulating(RegulatingValue::Lower, true), None),
    );
    check(
        &c,
        &format!("{} 02 {CP56}", a(60)),
        command(regulating(RegulatingValue::Higher, false), t),
    );
    let norm = |raw, select| {
        Command::Normalized(NormalizedCommand {
            value: nva(raw),
            select,
        })
    };
    check(
        &c,
        &format!("{} ff 3f 80", a(48)),
        command(norm(16383, true), None),
    );
    check(
        &c,
        &format!("{} 00 80 00 {CP56}", a(61)),
        command(norm(-32768, false), t),
    );
    let scaled = |v, select| {
        Command::Scaled(ScaledCommand {
            value: ScaledValue(v),
            select,
        })
    };
    check(
        &c,
        &format!("{} 9c ff 00", a(49)),
        command(scaled(-100, false), None),
    );
    check(
        &c,
        &format!("{} ff 7f 80 {CP56}", a(62)),
        command(scaled(32767, true), t),
    );
    let float = |v, select| {
        Command::Floating(FloatingCommand {
            value: FloatingValue(v),
            select,
        })
    };
    check(
        &c,
        &format!("{} 00 00 20 41 80", a(50)),
        command(float(10.0, true), None),
    );
    check(
        &c,
        &format!("{} 00 00 00 00 00 {CP56}", a(63)),
        command(float(0.0, false), t),
    );
    let bits = |b| {
        Command::Bitstring(BitstringCommand {
            value: BitstringValue(b),
        })
    };
    check(
        &c,
        &format!("{} 01 00 00 80", a(51)),
        command(bits([1, 0, 0, 0x80]), None),
    );
    check(
        &c,
        &format!("{} de ad be ef {CP56}", a(64)),
        command(bits([0xde, 0xad, 0xbe, 0xef]), t),
    );
}

#[test]
fn system_and_parameter_types_of_104() {
    let c = AsduCodec::new(Profile::iec104());
    // Station-wide messages address object 0.
    let h0 = |t: u8, cause: u8| format!("{t:02x} 01 {cause:02x} 00 01 00 00 00 00");
    check(
        &c,
        &format!("{} 81", h0(70, 4)),
        Msg::Initialization(InitializationMsg {
            is_test: false,
            originator_address: 0,
            asdu_address: 1,
            param_change: true,
            cause: InitializationCause::LocalReset,
        }),
    );
    check(
        &c,
        &format!("{} 14", h0(100, 6)),
        Msg::Interrogation(InterrogationMsg {
            is_test: false,
            originator_address: 0,
            asdu_address: 1,
            request: 20,
            is_negative_confirm: false,
            cause: CommandCause::Activation,
        }),
    );
    check(
        &c,
        &format!("{} 45", h0(101, 6)),
        Msg::CounterInterrogation(CounterInterrogationMsg {
            is_test: false,
            originator_address: 0,
            asdu_address: 1,
            request: 5,
            freeze: FreezeCode::Freeze,
            is_negative_confirm: false,
            cause: CommandCause::Activation,
        }),
    );
    check(
        &c,
        &h104(102, 5),
        Msg::Read(ReadMsg {
            is_test: false,
            originator_address: 0,
            asdu_address: 1,
            io_address: 10,
            cause: ReadCause::Request,
        }),
    );
    check(
        &c,
        &format!("{} {CP56}", h0(103, 6)),
        Msg::ClockSync(ClockSyncMsg {
            is_test: false,
            originator_address: 0,
            asdu_address: 1,
            time: cp56(),
            is_negative_confirm: false,
            cause: ClockSyncCause::Activation,
        }),
    );
    check(
        &c,
        &format!("{} 01", h0(105, 6)),
        Msg::Reset(ResetMsg {
            is_test: false,
            originator_address: 0,
            asdu_address: 1,
            qualifier: 1,
            cause: ActivationCause::Activation,
        }),
    );
    check(
        &c,
        &format!("{} 34 12 {CP56}", h0(107, 6)),
        Msg::Test(TestMsg {
            is_test: false,
            originator_address: 0,
            asdu_address: 1,
            counter: 0x1234,
            time: Some(cp56()),
            cause: ActivationCause::Activation,
        }),
    );
    let parameter = |parameter| {
        Msg::Parameter(ParameterMsg {
            is_test: false,
            originator_address: 0,
            asdu_address: 1,
            io_address: 10,
            parameter,
            cause: ParameterCause::Activation,
        })
    };
    check(
        &c,
        &format!("{} 00 20 01", h104(110, 6)),
        parameter(Parameter::Normalized(NormalizedParameter {
            value: nva(8192),
            qualifier: 1,
        })),
    );
    check(
        &c,
        &format!("{} e8 03 02", h104(111, 6)),
        parameter(Parameter::Scaled(ScaledParameter {
            value: ScaledValue(1000),
            qualifier: 2,
        })),
    );
    check(
        &c,
        &format!("{} 00 00 80 3f 03", h104(112, 6)),
        parameter(Parameter::Floating(FloatingParameter {
            value: FloatingValue(1.0),
            qualifier: 3,
        })),
    );
    check(
        &c,
        &format!("{} 03", h104(113, 6)),
        Msg::ParameterActivation(ParameterActivationMsg {
            is_test: false,
            originator_address: 0,
            asdu_address: 1,
            io_address: 10,
            qualifier: 3,
            cause: ParameterActivationCause::Activation,
        }),
    );
}

#[test]
fn cause_field_carries_test_negative_flags_and_originator() {
    let c = AsduCodec::new(Profile::iec104());
    // T (0x80) + P/N (0x40) + ACTIVATION_CONFIRMATION (7), originator 0x2a, common
    // address 0x1234.
    check(
        &c,
        "2d 01 c7 2a 34 12 0a 00 00 01",
        Msg::Command(CommandMsg {
            is_test: true,
            originator_address: 42,
            asdu_address: 0x1234,
            io_address: 10,
            command: Command::Single(SingleCommand {
                value: SingleValue::On,
                select: false,
                qualifier: 0,
            }),
            is_negative_confirm: true,
            time: None,
            cause: CommandCause::ActivationConfirmation,
        }),
    );
    // Object address over three octets, little-endian.
    let msgs = c.decode(&hex("01 01 14 00 ff ff 56 34 12 00")).unwrap();
    let Msg::Data(m) = msgs[0] else { panic!() };
    assert_eq!((m.asdu_address, m.io_address), (0xffff, 0x12_3456));
    assert_eq!(m.cause, DataCause::InterrogatedStation);
}

#[test]
fn types_only_101_has() {
    let c = AsduCodec::new(Profile::iec101(FieldSizes {
        cause: CauseSize::One,
        asdu_address: AsduAddressSize::One,
        io_address: IoAddressSize::One,
    }));
    let s = |t: u8| format!("{t:02x} 01 03 01 0a");
    let t = Some(cp24());
    let d = |d| data(d, t);
    check(
        &c,
        &format!("{} 01 {CP24}", s(2)),
        d(Data::Single(SingleData {
            value: SingleValue::On,
            quality: iq(0),
        })),
    );
    check(
        &c,
        &format!("{} 01 {CP24}", s(4)),
        d(Data::Double(DoubleData {
            value: DoubleValue::Off,
            quality: iq(0),
        })),
    );
    check(
        &c,
        &format!("{} 40 00 {CP24}", s(6)),
        d(Data::StepPosition(StepPositionData {
            value: StepPositionValue {
                value: -64,
                transient: false,
            },
            quality: mq(0),
        })),
    );
    check(
        &c,
        &format!("{} 00 00 00 01 00 {CP24}", s(8)),
        d(Data::Bitstring(BitstringData {
            value: BitstringValue([0, 0, 0, 1]),
            quality: mq(0),
        })),
    );
    check(
        &c,
        &format!("{} 01 00 00 {CP24}", s(10)),
        d(Data::Normalized(NormalizedData {
            value: nva(1),
            quality: Some(mq(0)),
        })),
    );
    check(
        &c,
        &format!("{} 00 80 01 {CP24}", s(12)),
        d(Data::Scaled(ScaledData {
            value: ScaledValue(-32768),
            quality: mq(0x01),
        })),
    );
    check(
        &c,
        &format!("{} 00 00 00 40 00 {CP24}", s(14)),
        d(Data::Floating(FloatingData {
            value: FloatingValue(2.0),
            quality: mq(0),
        })),
    );
    check(
        &c,
        &format!("{} 01 00 00 00 5f {CP24}", s(16)),
        d(Data::BinaryCounter(BinaryCounterData {
            value: BinaryCounterValue(1),
            quality: CounterQuality {
                invalid: false,
                adjusted: true,
                overflow: false,
                sequence: 31,
            },
        })),
    );
    check(
        &c,
        &format!("{} 01 00 00 {CP24}", s(17)),
        d(Data::Protection(ProtectionData {
            value: ProtectionValue::Off,
            quality: pq(0),
            elapsed_time: 0,
        })),
    );
    check(
        &c,
        &format!("{} 1e 08 ff ff {CP24}", s(18)),
        d(Data::ProtectionStart(ProtectionStartData {
            value: ProtectionStartValue {
                general: false,
                l1: true,
                l2: true,
                l3: true,
                ie: true,
                reverse: false,
            },
            quality: pq(0x08),
            duration_time: 65535,
        })),
    );
    check(
        &c,
        &format!("{} 01 40 02 00 {CP24}", s(19)),
        d(Data::ProtectionCommand(ProtectionCommandData {
            value: ProtectionCommandValue {
                general: true,
                l1: false,
                l2: false,
                l3: false,
            },
            quality: pq(0x40),
            operating_time: 2,
        })),
    );
    // C_TS_NA_1 carries the fixed test pattern, C_CD_NA_1 a CP16 delay.
    check(
        &c,
        "68 01 06 01 00 aa 55",
        Msg::Test(TestMsg {
            is_test: false,
            originator_address: 0,
            asdu_address: 1,
            counter: 0,
            time: None,
            cause: ActivationCause::Activation,
        }),
    );
    check(
        &c,
        "6a 01 06 01 00 10 00",
        Msg::Delay(DelayMsg {
            is_test: false,
            originator_address: 0,
            asdu_address: 1,
            time: 16,
            cause: DelayCause::Activation,
        }),
    );
}

#[test]
fn sequence_of_elements_gives_consecutive_addresses() {
    let c = AsduCodec::new(Profile::iec104());
    // SQ=1, three single points from object 0x000100.
    let msgs = c
        .decode(&hex("01 83 14 00 01 00 00 01 00 01 00 81"))
        .unwrap();
    let got: Vec<(u32, SingleValue, bool)> = msgs
        .iter()
        .map(|m| match m {
            Msg::Data(DataMsg {
                io_address,
                data: Data::Single(s),
                ..
            }) => (*io_address, s.value, s.quality.invalid),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (256, SingleValue::On, false),
            (257, SingleValue::Off, false),
            (258, SingleValue::On, true),
        ]
    );
    // And the encoder writes them back as the same sequence.
    assert_eq!(
        c.encode(&msgs).unwrap()[0].to_vec(),
        hex("01 83 14 00 01 00 00 01 00 01 00 81")
    );
}
