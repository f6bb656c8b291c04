//! Round trips of every data and command type, cause and time tag through hat's JSON,
//! hat's special cases, and every produced payload checked against hat-gateway's event
//! schemas from the test venv.
#![allow(clippy::unwrap_used)]

mod hat_schemas;

use gateway_model::Timestamp;
use iec60870::types::*;
use iec_common::keys::{COMMAND_TYPES, DATA_TYPES};
use iec_common::*;
use serde_json::{json, Value};

fn mq(overflow: bool) -> MeasurementQuality {
    MeasurementQuality {
        invalid: true,
        not_topical: false,
        substituted: true,
        blocked: false,
        overflow,
    }
}

fn pq() -> ProtectionQuality {
    ProtectionQuality {
        invalid: false,
        not_topical: true,
        substituted: false,
        blocked: true,
        time_invalid: true,
    }
}

/// Samples of every data type (hat's special cases included), each value representable
/// on the wire.
fn data_samples() -> Vec<Data> {
    let iq = IndicationQuality {
        invalid: false,
        not_topical: true,
        substituted: false,
        blocked: true,
    };
    let mut bits = [false; 16];
    bits[0] = true;
    bits[15] = true;
    let mut change = [false; 16];
    change[3] = true;
    vec![
        Data::Single(SingleData {
            value: SingleValue::On,
            quality: iq,
        }),
        Data::Single(SingleData {
            value: SingleValue::Off,
            quality: IndicationQuality::default(),
        }),
        Data::Double(DoubleData {
            value: DoubleValue::Fault,
            quality: iq,
        }),
        Data::Double(DoubleData {
            value: DoubleValue::Intermediate,
            quality: iq,
        }),
        Data::StepPosition(StepPositionData {
            value: StepPositionValue {
                value: -64,
                transient: true,
            },
            quality: mq(true),
        }),
        Data::StepPosition(StepPositionData {
            value: StepPositionValue {
                value: 63,
                transient: false,
            },
            quality: mq(false),
        }),
        Data::Bitstring(BitstringData {
            value: BitstringValue([1, 2, 254, 255]),
            quality: mq(false),
        }),
        Data::Normalized(NormalizedData {
            value: NormalizedValue((16384.0f64 / 32767.0) as f32),
            quality: Some(mq(true)),
        }),
        Data::Normalized(NormalizedData {
            value: NormalizedValue((-32768.0f64 / 32767.0) as f32),
            quality: None,
        }),
        Data::Scaled(ScaledData {
            value: ScaledValue(-32768),
            quality: mq(false),
        }),
        Data::Floating(FloatingData {
            value: FloatingValue(1.5),
            quality: mq(false),
        }),
        Data::Floating(FloatingData {
            value: FloatingValue(f32::INFINITY),
            quality: mq(false),
        }),
        Data::Floating(FloatingData {
            value: FloatingValue(f32::NEG_INFINITY),
            quality: mq(false),
        }),
        Data::BinaryCounter(BinaryCounterData {
            value: BinaryCounterValue(i32::MIN),
            quality: CounterQuality {
                invalid: true,
                adjusted: false,
                overflow: true,
                sequence: 31,
            },
        }),
        Data::Protection(ProtectionData {
            value: ProtectionValue::On,
            quality: pq(),
            elapsed_time: 65535,
        }),
        Data::ProtectionStart(ProtectionStartData {
            value: ProtectionStartValue {
                general: true,
                l1: false,
                l2: true,
                l3: false,
                ie: true,
                reverse: false,
            },
            quality: pq(),
            duration_time: 7,
        }),
        Data::ProtectionCommand(ProtectionCommandData {
            value: ProtectionCommandValue {
                general: false,
                l1: true,
                l2: false,
                l3: true,
            },
            quality: pq(),
            operating_time: 0,
        }),
        Data::Status(StatusData {
            value: StatusValue {
                value: bits,
                change,
            },
            quality: mq(true),
        }),
    ]
}

fn command_samples() -> Vec<Command> {
    vec![
        Command::Single(SingleCommand {
            value: SingleValue::On,
            select: true,
            qualifier: 31,
        }),
        Command::Double(DoubleCommand {
            value: DoubleValue::Off,
            select: false,
            qualifier: 0,
        }),
        Command::Regulating(RegulatingCommand {
            value: RegulatingValue::Higher,
            select: true,
            qualifier: 5,
        }),
        Command::Regulating(RegulatingCommand {
            value: RegulatingValue::Lower,
            select: false,
            qualifier: 1,
        }),
        Command::Normalized(NormalizedCommand {
            value: NormalizedValue((-1234.0f64 / 32767.0) as f32),
            select: true,
        }),
        Command::Scaled(ScaledCommand {
            value: ScaledValue(32767),
            select: false,
        }),
        Command::Floating(FloatingCommand {
            value: FloatingValue(-2.25e10),
            select: true,
        }),
        Command::Floating(FloatingCommand {
            value: FloatingValue(f32::INFINITY),
            select: false,
        }),
        Command::Bitstring(BitstringCommand {
            value: BitstringValue([0, 0x80, 3, 9]),
        }),
    ]
}

#[test]
fn every_data_type_round_trips_and_matches_hats_schema() {
    let schemas = hat_schemas::HatSchemas::load();
    let mut seen = std::collections::HashSet::new();
    for data in data_samples() {
        let data_type = DataType::of(&data);
        seen.insert(data_type);
        let json = data_to_json(&data);
        assert_eq!(data_from_json(data_type, &json).unwrap(), data, "{json}");
        let payload = json!({"is_test": false, "cause": "SPONTANEOUS", "data": json});
        let tail = format!("gateway/data/{}/1/2", data_type.as_str());
        schemas.check_event("master", &tail, &payload);
        schemas.check_event(
            "slave",
            &format!("system/data/{}/1/2", data_type.as_str()),
            &payload,
        );
    }
    assert_eq!(seen.len(), DATA_TYPES.len());
}

#[test]
fn every_command_type_round_trips_and_matches_hats_schema() {
    let schemas = hat_schemas::HatSchemas::load();
    let mut seen = std::collections::HashSet::new();
    for command in command_samples() {
        let cmd_type = CommandType::of(&command);
        seen.insert(cmd_type);
        let json = command_to_json(&command);
        assert_eq!(
            command_from_json(cmd_type, &json).unwrap(),
            command,
            "{json}"
        );
        let res = json!({"is_test": true, "is_negative_confirm": false, "cause": "ACTIVATION_CONFIRMATION", "command": json});
        let req = json!({"is_test": false, "cause": "ACTIVATION", "command": json});
        let t = cmd_type.as_str();
        schemas.check_event("master", &format!("gateway/command/{t}/1/2"), &res);
        schemas.check_event("master", &format!("system/command/{t}/1/2"), &req);
    }
    assert_eq!(seen.len(), COMMAND_TYPES.len());
}

#[test]
fn hats_special_shapes() {
    let nan = data_to_json(&Data::Floating(FloatingData {
        value: FloatingValue(f32::NAN),
        quality: mq(false),
    }));
    assert_eq!(nan["value"], json!("nan"));
    let back = data_from_json(DataType::Floating, &nan).unwrap();
    assert!(
        matches!(back, Data::Floating(FloatingData { value: FloatingValue(v), .. }) if v.is_nan())
    );
    let inf = data_to_json(&Data::Floating(FloatingData {
        value: FloatingValue(f32::NEG_INFINITY),
        quality: mq(false),
    }));
    assert_eq!(inf["value"], json!("-inf"));
    // Python's float() of a numeric string.
    let q = json!({"invalid": false, "not_topical": false, "substituted": false, "blocked": false, "overflow": false});
    assert_eq!(
        data_from_json(DataType::Floating, &json!({"value": "2.5", "quality": q})).unwrap(),
        Data::Floating(FloatingData {
            value: FloatingValue(2.5),
            quality: MeasurementQuality::default()
        })
    );
    // M_ME_ND: quality null; hat reads a falsy quality ({} too) as none.
    let nd = data_to_json(&Data::Normalized(NormalizedData {
        value: NormalizedValue(0.0),
        quality: None,
    }));
    assert_eq!(nd, json!({"value": 0.0, "quality": null}));
    assert_eq!(
        data_from_json(DataType::Normalized, &json!({"value": 0.25, "quality": {}})).unwrap(),
        Data::Normalized(NormalizedData {
            value: NormalizedValue(0.25),
            quality: None
        })
    );
    // The normalized value hat reports: raw / 0x7fff in double precision.
    let half = data_to_json(&Data::Normalized(NormalizedData {
        value: NormalizedValue(16384.0 / 32767.0),
        quality: None,
    }));
    assert_eq!(half["value"], json!(16384.0f64 / 32767.0));
    // Shapes of step position, bitstring, status, counter.
    let samples = data_samples();
    assert_eq!(
        data_to_json(&samples[4])["value"],
        json!({"value": -64, "transient": true})
    );
    assert_eq!(data_to_json(&samples[6])["value"], json!([1, 2, 254, 255]));
    let status = data_to_json(&samples[17]);
    assert_eq!(status["value"]["value"].as_array().unwrap().len(), 16);
    assert_eq!(status["value"]["change"][3], json!(true));
    assert_eq!(data_to_json(&samples[13])["quality"]["sequence"], json!(31));
    // A boolean sequence (as hat's schema types it) reads as 0 or 1.
    let counter = json!({"value": 5, "quality": {"invalid": false, "adjusted": false, "overflow": false, "sequence": true}});
    assert!(matches!(
        data_from_json(DataType::BinaryCounter, &counter).unwrap(),
        Data::BinaryCounter(BinaryCounterData {
            quality: CounterQuality { sequence: 1, .. },
            ..
        })
    ));
    // Commands without qualifier or select where hat has none.
    assert_eq!(
        command_to_json(&command_samples()[8]),
        json!({"value": [0, 128, 3, 9]})
    );
    assert_eq!(
        command_to_json(&command_samples()[5]),
        json!({"value": 32767, "select": false})
    );
}

#[test]
fn malformed_payloads_name_the_bad_value() {
    let q = json!({"invalid": false, "not_topical": false, "substituted": false, "blocked": false});
    for (data_type, payload, pointer) in [
        (
            DataType::Single,
            json!({"value": "MAYBE", "quality": q}),
            "/value",
        ),
        (DataType::Single, json!({"value": "ON"}), "/quality"),
        (
            DataType::Single,
            json!({"value": "ON", "quality": {"invalid": 1}}),
            "/quality/invalid",
        ),
        (
            DataType::StepPosition,
            json!({"value": {"value": 64, "transient": false}, "quality": q}),
            "/value/value",
        ),
        (
            DataType::Bitstring,
            json!({"value": [1, 2, 3], "quality": q}),
            "/value",
        ),
        (
            DataType::Bitstring,
            json!({"value": [1, 2, 3, 256], "quality": q}),
            "/value/3",
        ),
        (
            DataType::Scaled,
            json!({"value": 40000, "quality": q}),
            "/value",
        ),
        (
            DataType::Scaled,
            json!({"value": 1.5, "quality": q}),
            "/value",
        ),
        (
            DataType::Floating,
            json!({"value": "many", "quality": q}),
            "/value",
        ),
        (
            DataType::Status,
            json!({"value": {"value": [true], "change": []}, "quality": q}),
            "/value/value",
        ),
        (
            DataType::Protection,
            json!({"value": "ON", "quality": q}),
            "/quality/time_invalid",
        ),
    ] {
        match data_from_json(data_type, &payload) {
            Err(PayloadError::Invalid { pointer: p, .. }) => assert_eq!(p, pointer, "{payload}"),
            other => panic!("{payload}: {other:?}"),
        }
    }
    assert!(data_from_json(DataType::Single, &json!("ON")).is_err());
    for (cmd_type, payload) in [
        (
            CommandType::Single,
            json!({"value": "ON", "select": false, "qualifier": 32}),
        ),
        (CommandType::Single, json!({"value": "ON", "select": false})),
        (
            CommandType::Regulating,
            json!({"value": "ON", "select": false, "qualifier": 0}),
        ),
        (
            CommandType::Normalized,
            json!({"value": "x", "select": false}),
        ),
        (CommandType::Bitstring, json!({"value": 5})),
    ] {
        assert!(command_from_json(cmd_type, &payload).is_err(), "{payload}");
    }
}

#[test]
fn causes_use_hats_names_for_their_direction_and_integers_otherwise() {
    assert_eq!(
        data_cause_to_json(DataCause::InterrogatedGroup16),
        json!("INTERROGATED_GROUP16")
    );
    assert_eq!(data_cause_to_json(DataCause::Other(44)), json!(44));
    for value in 0..=63u8 {
        let cause = DataCause::from_u8(value);
        assert_eq!(
            data_cause_from_json(&data_cause_to_json(cause)).unwrap(),
            cause
        );
        let cause = CommandCause::from_u8(value);
        assert_eq!(
            command_res_cause_from_json(&command_res_cause_to_json(cause)).unwrap(),
            cause
        );
        assert_eq!(
            command_req_cause_from_json(&command_req_cause_to_json(cause)).unwrap(),
            cause
        );
    }
    // A response event writes an echoed request cause as its value, and back.
    assert_eq!(
        command_res_cause_to_json(CommandCause::Activation),
        json!(6)
    );
    assert_eq!(
        command_res_cause_to_json(CommandCause::ActivationTermination),
        json!("ACTIVATION_TERMINATION")
    );
    assert_eq!(
        command_req_cause_to_json(CommandCause::Deactivation),
        json!("DEACTIVATION")
    );
    assert_eq!(
        command_req_cause_to_json(CommandCause::UnknownCause),
        json!(45)
    );
    assert_eq!(
        command_req_cause_from_json(&json!("ACTIVATION")).unwrap(),
        CommandCause::Activation
    );
    assert!(command_req_cause_from_json(&json!("ACTIVATION_CONFIRMATION")).is_err());
    assert!(command_req_cause_from_json(&json!(64)).is_err());
    assert!(command_req_cause_from_json(&json!(null)).is_err());
    assert_eq!(
        clock_sync_res_cause_to_json(ClockSyncCause::Activation),
        json!(6)
    );
    assert_eq!(
        initialization_cause_from_json(&json!(127)).unwrap(),
        InitializationCause::Other(127)
    );
    assert!(initialization_cause_from_json(&json!(128)).is_err());
    assert_eq!(
        initialization_cause_to_json(InitializationCause::RemoteReset),
        json!("REMOTE_RESET")
    );
    // Every named cause the schemas list validates, and integers do.
    let schemas = hat_schemas::HatSchemas::load();
    for value in 0..=63u8 {
        schemas.assert_valid(
            "hat-gateway://iec101.yaml#/$defs/causes/data/res",
            &data_cause_to_json(DataCause::from_u8(value)),
        );
        schemas.assert_valid(
            "hat-gateway://iec101.yaml#/$defs/causes/command/res",
            &command_res_cause_to_json(CommandCause::from_u8(value)),
        );
        schemas.assert_valid(
            "hat-gateway://iec101.yaml#/$defs/causes/command/req",
            &command_req_cause_to_json(CommandCause::from_u8(value)),
        );
    }
}

#[test]
fn time_tags_convert_like_hat_in_the_system_zone() {
    // The tests run in UTC (the machine's zone and CI's); hat's conversion is the
    // local zone's.
    let stamp = Timestamp::new(1_709_251_198, 123_456);
    let time = time_from_timestamp(stamp);
    assert_eq!(
        (
            time.size,
            time.years,
            time.months,
            time.day_of_month,
            time.hours,
            time.minutes,
            time.milliseconds
        ),
        (
            TimeSize::Seven,
            Some(24),
            Some(2),
            Some(29),
            Some(23),
            Some(59),
            58_123
        )
    );
    assert_eq!(time.day_of_week, Some(4));
    assert_eq!(time.summer_time, Some(false));
    assert_eq!(
        time_to_timestamp(&time).unwrap(),
        Timestamp::new(1_709_251_198, 123_000)
    );
    // Python's round(): ties to even.
    assert_eq!(time_from_timestamp(Timestamp::new(0, 500)).milliseconds, 0);
    assert_eq!(
        time_from_timestamp(Timestamp::new(0, 1_500)).milliseconds,
        2
    );
    assert_eq!(
        time_from_timestamp(Timestamp::new(0, 1_501)).milliseconds,
        2
    );
    assert_eq!(
        time_from_timestamp(Timestamp::new(59, 999_700)).minutes,
        Some(1)
    );
    // Years below 70 are 20xx.
    let jan1 = |years| Time {
        years: Some(years),
        months: Some(1),
        day_of_month: Some(1),
        hours: Some(0),
        minutes: Some(0),
        milliseconds: 0,
        ..time
    };
    assert_eq!(
        time_to_timestamp(&jan1(69)).unwrap(),
        Timestamp::new(3_124_224_000, 0)
    );
    assert_eq!(time_to_timestamp(&jan1(70)).unwrap(), Timestamp::new(0, 0));
    // Impossible dates are errors (hat's datetime raises), not panics.
    assert!(time_to_timestamp(&Time {
        day_of_month: Some(30),
        ..time
    })
    .is_err());
    assert!(time_to_timestamp(&Time {
        hours: Some(24),
        ..time
    })
    .is_err());
    assert!(time_to_timestamp(&Time {
        size: TimeSize::Four,
        ..time
    })
    .is_err());
    assert_eq!(time_to_source_timestamp(None).unwrap(), None);
    assert_eq!(time_from_source_timestamp(None), None);
    // CP24: the nearest instant with these minutes and milliseconds.
    let now = jiff::Timestamp::from_second(1_709_251_198).unwrap(); // 23:59:58
    let cp24 = Time {
        size: TimeSize::Three,
        minutes: Some(0),
        milliseconds: 1_000,
        summer_time: None,
        hours: None,
        day_of_week: None,
        day_of_month: None,
        months: None,
        years: None,
        ..time
    };
    let at = iec_common::time::time_to_timestamp_at(&cp24, now).unwrap();
    assert_eq!(at, Timestamp::new(1_709_251_201, 0));
    let cp16 = Time {
        size: TimeSize::Two,
        minutes: None,
        invalid: None,
        substituted: None,
        ..cp24
    };
    let at = iec_common::time::time_to_timestamp_at(&cp16, now).unwrap();
    assert_eq!(at, Timestamp::new(1_709_251_201, 0));
}

#[test]
fn event_types_build_and_parse() {
    let prefix: Vec<String> = ["gateway", "gw", "iec104_master", "m"]
        .map(String::from)
        .to_vec();
    let key = EventKey::Data(DataKey {
        data_type: DataType::ProtectionStart,
        asdu_address: 65535,
        io_address: 16_777_215,
    });
    let event_type = key.event_type(&prefix, Direction::Gateway);
    assert_eq!(
        event_type.join("/"),
        "gateway/gw/iec104_master/m/gateway/data/protection_start/65535/16777215"
    );
    assert_eq!(
        EventKey::parse(&prefix, Direction::Gateway, &event_type).unwrap(),
        key
    );
    let parse = |tail: &str| {
        let mut t = prefix.clone();
        t.extend(tail.split('/').map(String::from));
        EventKey::parse(&prefix, Direction::System, &t)
    };
    assert_eq!(
        parse("system/command/regulating/3/4").unwrap(),
        EventKey::Command(CommandKey {
            cmd_type: CommandType::Regulating,
            asdu_address: 3,
            io_address: 4
        })
    );
    assert_eq!(
        parse("system/interrogation/7").unwrap(),
        EventKey::Interrogation(7)
    );
    assert_eq!(
        parse("system/counter_interrogation/65535").unwrap(),
        EventKey::CounterInterrogation(65535)
    );
    for bad in [
        "system/command/regulating/3",
        "system/command/toggle/3/4",
        "system/command/single/65536/4",
        "system/command/single/1/16777216",
        "system/command/single/-1/4",
        "system/interrogation/x",
        "gateway/interrogation/1",
        "system/enable",
        "system",
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
    assert_eq!(
        DataType::from_conf_name("BINARY_COUNTER"),
        Some(DataType::BinaryCounter)
    );
    assert_eq!(DataType::from_conf_name("binary_counter"), None);
    for t in DATA_TYPES {
        assert_eq!(serde_json::to_value(t).unwrap(), Value::from(t.as_str()));
        assert_eq!(DataType::from_name(t.as_str()), Some(t));
    }
    for t in COMMAND_TYPES {
        assert_eq!(CommandType::from_name(t.as_str()), Some(t));
    }
}

#[test]
fn the_schema_check_rejects_what_hat_does_not_write() {
    let schemas = hat_schemas::HatSchemas::load();
    let good =
        json!({"is_test": false, "cause": "SPONTANEOUS", "data": data_to_json(&data_samples()[0])});
    schemas.check_event("master", "gateway/data/single/1/1", &good);
    let mut bad_cause = good.clone();
    bad_cause["cause"] = json!("ACTIVATION");
    let mut bad_value = good.clone();
    bad_value["data"]["value"] = json!("INTERMEDIATE");
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("is_test");
    for bad in [bad_cause, bad_value, missing] {
        let s = schemas.clone();
        let result = std::panic::catch_unwind(move || {
            s.check_event("master", "gateway/data/single/1/1", &bad)
        });
        assert!(result.is_err());
    }
}
