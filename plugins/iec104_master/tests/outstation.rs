//! The core device against a real hat-drivers IEC 104 outstation on loopback: data,
//! commands, interrogations, clock synchronisation, status, failover, reconnects and
//! bad input. Every registered event is checked against hat's event schema by the
//! recorder.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use gateway_model::{Payload, Timestamp};
use serde_json::{json, Value};

fn iq(invalid: bool, substituted: bool) -> Value {
    json!({"invalid": invalid, "not_topical": false, "substituted": substituted, "blocked": false})
}

fn mq() -> Value {
    json!({"invalid": false, "not_topical": false, "substituted": false, "blocked": false, "overflow": false})
}

fn pq() -> Value {
    json!({"invalid": false, "not_topical": false, "substituted": false, "blocked": false, "time_invalid": false})
}

/// (hat data expression, event data type, expected data payload, may carry a time tag,
/// must carry one).
fn data_cases() -> Vec<(&'static str, &'static str, Value, bool, bool)> {
    let mut status_value = vec![false; 16];
    status_value[0] = true;
    let mut status_change = vec![false; 16];
    status_change[15] = true;
    vec![
        ("iec104.SingleData(value=iec104.SingleValue.ON, quality=IQ)", "single",
         json!({"value": "ON", "quality": iq(false, false)}), true, false),
        ("iec104.DoubleData(value=iec104.DoubleValue.FAULT, quality=iec104.IndicationQuality(invalid=True, not_topical=False, substituted=True, blocked=False))", "double",
         json!({"value": "FAULT", "quality": iq(true, true)}), true, false),
        ("iec104.StepPositionData(value=iec104.StepPositionValue(value=-5, transient=True), quality=MQ)", "step_position",
         json!({"value": {"value": -5, "transient": true}, "quality": mq()}), true, false),
        ("iec104.BitstringData(value=iec104.BitstringValue(value=bytes([1, 2, 3, 255])), quality=MQ)", "bitstring",
         json!({"value": [1, 2, 3, 255], "quality": mq()}), true, false),
        ("iec104.NormalizedData(value=iec104.NormalizedValue(value=0.5), quality=MQ)", "normalized",
         json!({"value": 16384.0f64 / 32767.0, "quality": mq()}), true, false),
        ("iec104.NormalizedData(value=iec104.NormalizedValue(value=-0.25), quality=None)", "normalized",
         json!({"value": -8192.0f64 / 32767.0, "quality": null}), false, false),
        ("iec104.ScaledData(value=iec104.ScaledValue(value=-1234), quality=MQ)", "scaled",
         json!({"value": -1234, "quality": mq()}), true, false),
        ("iec104.FloatingData(value=iec104.FloatingValue(value=1.5), quality=MQ)", "floating",
         json!({"value": 1.5, "quality": mq()}), true, false),
        ("iec104.FloatingData(value=iec104.FloatingValue(value=float('nan')), quality=MQ)", "floating",
         json!({"value": "nan", "quality": mq()}), true, false),
        ("iec104.FloatingData(value=iec104.FloatingValue(value=float('-inf')), quality=MQ)", "floating",
         json!({"value": "-inf", "quality": mq()}), true, false),
        ("iec104.BinaryCounterData(value=iec104.BinaryCounterValue(value=-7), quality=iec104.CounterQuality(invalid=False, adjusted=True, overflow=False, sequence=17))", "binary_counter",
         json!({"value": -7, "quality": {"invalid": false, "adjusted": true, "overflow": false, "sequence": 17}}), true, false),
        ("iec104.ProtectionData(value=iec104.ProtectionValue.ON, quality=PQ, elapsed_time=1234)", "protection",
         json!({"value": "ON", "quality": pq(), "elapsed_time": 1234}), true, true),
        ("iec104.ProtectionStartData(value=iec104.ProtectionStartValue(general=True, l1=False, l2=True, l3=False, ie=True, reverse=False), quality=PQ, duration_time=55)", "protection_start",
         json!({"value": {"general": true, "l1": false, "l2": true, "l3": false, "ie": true, "reverse": false}, "quality": pq(), "duration_time": 55}), true, true),
        ("iec104.ProtectionCommandData(value=iec104.ProtectionCommandValue(general=True, l1=True, l2=False, l3=False), quality=PQ, operating_time=66)", "protection_command",
         json!({"value": {"general": true, "l1": true, "l2": false, "l3": false}, "quality": pq(), "operating_time": 66}), true, true),
        ("iec104.StatusData(value=iec104.StatusValue(value=[True] + [False] * 15, change=[False] * 15 + [True]), quality=MQ)", "status",
         json!({"value": {"value": status_value, "change": status_change}, "quality": mq()}), false, false),
    ]
}

/// Every cause hat names for data, and one it does not (6 is reported as its integer).
const DATA_CAUSES: [&str; 29] = [
    "PERIODIC",
    "BACKGROUND_SCAN",
    "SPONTANEOUS",
    "REQUEST",
    "REMOTE_COMMAND",
    "LOCAL_COMMAND",
    "INTERROGATED_STATION",
    "INTERROGATED_GROUP01",
    "INTERROGATED_GROUP02",
    "INTERROGATED_GROUP03",
    "INTERROGATED_GROUP04",
    "INTERROGATED_GROUP05",
    "INTERROGATED_GROUP06",
    "INTERROGATED_GROUP07",
    "INTERROGATED_GROUP08",
    "INTERROGATED_GROUP09",
    "INTERROGATED_GROUP10",
    "INTERROGATED_GROUP11",
    "INTERROGATED_GROUP12",
    "INTERROGATED_GROUP13",
    "INTERROGATED_GROUP14",
    "INTERROGATED_GROUP15",
    "INTERROGATED_GROUP16",
    "INTERROGATED_COUNTER",
    "INTERROGATED_COUNTER01",
    "INTERROGATED_COUNTER02",
    "INTERROGATED_COUNTER03",
    "INTERROGATED_COUNTER04",
    "6",
];

fn py_cause(cause: &str) -> String {
    if cause.chars().all(|c| c.is_ascii_digit()) {
        cause.to_owned()
    } else {
        format!("iec104.DataResCause.{cause}")
    }
}

fn json_cause(cause: &str) -> Value {
    cause
        .parse::<u64>()
        .map(Value::from)
        .unwrap_or_else(|_| json!(cause))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_data_type_with_and_without_time_and_every_cause_becomes_its_event() {
    let (mut outstation, device, mut events) = connected().await;
    let mut expected = Vec::new();
    let mut hat = Vec::new();
    let mut io = 0u32;
    let mut cause_index = 0;
    for (expr, data_type, data, timed, needs_time) in data_cases() {
        for with_time in [false, true] {
            if (with_time && !timed) || (!with_time && needs_time) {
                continue;
            }
            io += 1;
            let cause = DATA_CAUSES[cause_index % DATA_CAUSES.len()];
            cause_index += 1;
            let is_test = io % 3 == 0;
            let time = if with_time { "T" } else { "None" };
            let msg = format!(
                "iec104.DataMsg(is_test={}, originator_address=0, asdu_address=7, io_address={io}, data={expr}, time={time}, cause={})",
                if is_test { "True" } else { "False" },
                py_cause(cause)
            );
            expected.push((
                format!("gateway/data/{data_type}/7/{io}"),
                json!({"is_test": is_test, "cause": json_cause(cause), "data": data}),
                with_time.then(t_stamp),
            ));
            hat.extend(outstation.send(&format!("[{msg}]")).await);
        }
    }
    // The rest of the causes, on one point.
    while cause_index < DATA_CAUSES.len() {
        let cause = DATA_CAUSES[cause_index];
        cause_index += 1;
        hat.extend(outstation
            .send(&format!(
                "[iec104.DataMsg(is_test=False, originator_address=0, asdu_address=8, io_address=1, data=iec104.ScaledData(value=iec104.ScaledValue(value=1), quality=MQ), time=None, cause={})]",
                py_cause(cause)
            ))
            .await);
        expected.push((
            "gateway/data/scaled/8/1".to_owned(),
            json!({"is_test": false, "cause": json_cause(cause), "data": {"value": 1, "quality": mq()}}),
            None,
        ));
    }
    assert_eq!(hat.len(), expected.len());
    for ((tail, payload, source_timestamp), hat) in expected.into_iter().zip(hat) {
        let event = events.expect(&tail, payload).await;
        assert_eq!(event.source_timestamp, source_timestamp, "{tail}");
        // Exactly what hat-gateway's master registers for the same message.
        assert_as_hat(&event, &hat);
    }
    device.close().await;
    events.expect_status(&["DISCONNECTED"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_asdus_is_registered_in_few_calls() {
    let (mut outstation, device, mut events) = connected().await;
    let calls_before = events.recorder.calls.lock().unwrap().len();
    // 200 ASDUs of one point each, written back to back.
    let burst = "[iec104.DataMsg(is_test=False, originator_address=0, asdu_address=1, io_address=i, data=iec104.ScaledData(value=iec104.ScaledValue(value=i), quality=MQ), time=None, cause=iec104.DataResCause.SPONTANEOUS) for i in range(200)]";
    outstation.send(burst).await;
    for i in 0..200 {
        let event = events.next().await;
        assert_eq!(event.tail, format!("gateway/data/scaled/1/{i}"));
        assert_eq!(event.payload["data"]["value"], json!(i));
    }
    let calls = events.recorder.calls.lock().unwrap()[calls_before..].to_vec();
    assert_eq!(calls.iter().sum::<usize>(), 200);
    assert!(calls.len() < 200, "one register per ASDU: {calls:?}");
    device.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_batch_size_bounds_the_asdus_of_one_register_call() {
    let mut outstation = Outstation::start().await;
    let mut c = conf(&[outstation.port]);
    c["register_batch_size"] = json!(7);
    let (device, mut events) = start(&c);
    events.expect_status(&["CONNECTING", "CONNECTED"]).await;
    outstation.line(|l| l == "CONNECT").await;
    let calls_before = events.recorder.calls.lock().unwrap().len();
    let burst = "[iec104.DataMsg(is_test=False, originator_address=0, asdu_address=1, io_address=i, data=iec104.SingleData(value=iec104.SingleValue.ON, quality=IQ), time=None, cause=iec104.DataResCause.SPONTANEOUS) for i in range(100)]";
    outstation.send(burst).await;
    for i in 0..100 {
        assert_eq!(
            events.next().await.tail,
            format!("gateway/data/single/1/{i}")
        );
    }
    let calls = events.recorder.calls.lock().unwrap()[calls_before..].to_vec();
    assert_eq!(calls.iter().sum::<usize>(), 100);
    assert!(calls.iter().all(|n| *n <= 7), "{calls:?}");
    device.close().await;
}

/// (command type, command payload, hat class, expected value in hat's message JSON,
/// payload hat's response carries back).
fn command_cases() -> Vec<(&'static str, Value, &'static str, Value, Value)> {
    vec![
        (
            "single",
            json!({"value": "ON", "select": true, "qualifier": 3}),
            "SingleCommand",
            json!("ON"),
            json!({"value": "ON", "select": true, "qualifier": 3}),
        ),
        (
            "double",
            json!({"value": "OFF", "select": false, "qualifier": 0}),
            "DoubleCommand",
            json!("OFF"),
            json!({"value": "OFF", "select": false, "qualifier": 0}),
        ),
        (
            "regulating",
            json!({"value": "HIGHER", "select": false, "qualifier": 31}),
            "RegulatingCommand",
            json!("HIGHER"),
            json!({"value": "HIGHER", "select": false, "qualifier": 31}),
        ),
        (
            "normalized",
            json!({"value": 0.25, "select": true}),
            "NormalizedCommand",
            json!({"_type": "NormalizedValue", "value": 8192.0f64 / 32767.0}),
            json!({"value": 8192.0f64 / 32767.0, "select": true}),
        ),
        (
            "scaled",
            json!({"value": -300, "select": false}),
            "ScaledCommand",
            json!({"_type": "ScaledValue", "value": -300}),
            json!({"value": -300, "select": false}),
        ),
        (
            "floating",
            json!({"value": 2.5, "select": true}),
            "FloatingCommand",
            json!({"_type": "FloatingValue", "value": 2.5}),
            json!({"value": 2.5, "select": true}),
        ),
        (
            "bitstring",
            json!({"value": [1, 2, 3, 4]}),
            "BitstringCommand",
            json!({"_type": "BitstringValue", "value": [1, 2, 3, 4]}),
            json!({"value": [1, 2, 3, 4]}),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_type_reaches_the_outstation_and_its_answers_come_back() {
    let (mut outstation, device, mut events) = connected().await;
    let stamp = Timestamp::new(1_709_251_198, 456_000);
    for (io, (cmd_type, command, class, value, echoed)) in command_cases().into_iter().enumerate() {
        for (mode, with_time) in [("positive", false), ("positive", true), ("negative", false)] {
            outstation.command(&format!("reply {mode}")).await;
            let tail = format!("system/command/{cmd_type}/3/{io}");
            let source = with_time.then_some(stamp);
            let payload = json!({"is_test": false, "cause": "ACTIVATION", "command": command});
            device
                .process_event(system_event(&tail, payload.clone(), source))
                .await;
            let msg = outstation.msg("CommandMsg").await;
            let negative = mode == "negative";
            let hat_confirmation = outstation.hat_answer().await;
            let hat_termination = if negative {
                None
            } else {
                Some(outstation.hat_answer().await)
            };
            // Exactly the message hat-gateway's master sends for the same event.
            assert_eq!(msg, outstation.hat_msg(&tail, &payload, source).await);
            assert_eq!(msg["command"]["_type"], json!(class), "{msg}");
            assert_eq!(msg["command"]["value"], value, "{msg}");
            if let Some(select) = command.get("select") {
                assert_eq!(&msg["command"]["select"], select);
            }
            assert_eq!(
                (msg["asdu_address"].clone(), msg["io_address"].clone()),
                (json!(3), json!(io))
            );
            assert_eq!(msg["cause"], json!("ACTIVATION"));
            assert_eq!(msg["is_test"], json!(false));
            assert_eq!(msg["is_negative_confirm"], json!(false));
            if with_time {
                assert_eq!(msg["time"]["milliseconds"], json!(58_456), "{msg}");
                assert_eq!(msg["time"]["years"], json!(24), "{msg}");
            } else {
                assert_eq!(msg["time"], Value::Null);
            }
            let response = format!("gateway/command/{cmd_type}/3/{io}");
            let confirmation = events
                .expect(&response, json!({"is_test": false, "is_negative_confirm": negative, "cause": "ACTIVATION_CONFIRMATION", "command": echoed}))
                .await;
            assert_eq!(confirmation.source_timestamp, source);
            assert_as_hat(&confirmation, &hat_confirmation);
            if let Some(hat_termination) = hat_termination {
                let termination = events
                    .expect(&response, json!({"is_test": false, "is_negative_confirm": false, "cause": "ACTIVATION_TERMINATION", "command": echoed}))
                    .await;
                assert_as_hat(&termination, &hat_termination);
            }
        }
    }
    device.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrogations_go_out_and_their_answers_come_back() {
    let (mut outstation, device, mut events) = connected().await;
    for (mode, tail, class, payload) in [
        (
            "positive",
            "interrogation/5",
            "InterrogationMsg",
            json!({"is_test": true, "request": 20, "cause": "ACTIVATION"}),
        ),
        (
            "positive",
            "counter_interrogation/65535",
            "CounterInterrogationMsg",
            json!({"is_test": false, "request": 5, "freeze": "FREEZE_AND_RESET", "cause": "DEACTIVATION"}),
        ),
        (
            "negative",
            "interrogation/1",
            "InterrogationMsg",
            json!({"is_test": false, "request": 21, "cause": "ACTIVATION"}),
        ),
        (
            "positive",
            "counter_interrogation/2",
            "CounterInterrogationMsg",
            json!({"is_test": false, "request": 1, "freeze": "READ", "cause": 6}),
        ),
    ] {
        outstation.command(&format!("reply {mode}")).await;
        let system = format!("system/{tail}");
        device
            .process_event(system_event(&system, payload.clone(), None))
            .await;
        let msg = outstation.msg(class).await;
        for field in ["request", "is_test"] {
            assert_eq!(msg[field], payload[field], "{msg}");
        }
        let mut answers = vec![outstation.hat_answer().await];
        if mode == "positive" {
            answers.push(outstation.hat_answer().await);
        }
        // Exactly the message hat-gateway's master sends for the same event.
        assert_eq!(msg, outstation.hat_msg(&system, &payload, None).await);
        let causes = ["ACTIVATION_CONFIRMATION", "ACTIVATION_TERMINATION"];
        for (hat, cause) in answers.iter().zip(causes) {
            let mut expected = payload.clone();
            expected["cause"] = json!(cause);
            expected["is_negative_confirm"] = json!(mode == "negative");
            let event = events.expect(&format!("gateway/{tail}"), expected).await;
            assert_eq!(event.source_timestamp, None);
            assert_as_hat(&event, hat);
        }
    }
    // An outstation's own interrogation-kind messages (here an echoed request) are
    // reported too, with the integer of a request cause.
    let hat = outstation
        .send("[iec104.InterrogationMsg(is_test=False, originator_address=0, asdu_address=2, request=20, is_negative_confirm=True, cause=iec104.CommandReqCause.ACTIVATION)]")
        .await;
    let event = events
        .expect(
            "gateway/interrogation/2",
            json!({"is_test": false, "is_negative_confirm": true, "request": 20, "cause": 6}),
        )
        .await;
    assert_as_hat(&event, &hat[0]);
    device.close().await;
}

fn time_json_to_timestamp(time: &Value) -> jiff::Timestamp {
    let field = |name: &str| time[name].as_i64().unwrap();
    let civil = jiff::civil::DateTime::new(
        (2000 + field("years")) as i16,
        field("months") as i8,
        field("day_of_month") as i8,
        field("hours") as i8,
        field("minutes") as i8,
        (field("milliseconds") / 1000) as i8,
        (field("milliseconds") % 1000 * 1_000_000) as i32,
    )
    .unwrap();
    jiff::tz::TimeZone::system().to_timestamp(civil).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_synchronisation_is_sent_every_time_sync_delay() {
    let mut outstation = Outstation::start().await;
    let mut c = conf(&[outstation.port]);
    c["time_sync_delay"] = json!(0.3);
    let (device, mut events) = start(&c);
    events.expect_status(&["CONNECTING", "CONNECTED"]).await;
    let mut arrivals: Vec<Instant> = Vec::new();
    for _ in 0..3 {
        let (at, msg) = outstation.msg_at("ClockSyncMsg").await;
        assert_eq!(
            (&msg["asdu_address"], &msg["cause"]),
            (&json!(65535), &json!("ACTIVATION"))
        );
        assert_eq!(msg["time"]["size"], json!("SEVEN"));
        let sent = time_json_to_timestamp(&msg["time"]);
        let skew = (jiff::Timestamp::now() - sent).as_millis().abs();
        assert!(skew < 2_000, "clock sync time {sent} is {skew} ms off");
        arrivals.push(at);
    }
    for pair in arrivals.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(250) && gap < Duration::from_secs(2),
            "gap {gap:?}"
        );
    }
    // hat registers nothing for clock synchronisation answers.
    outstation
        .send("[iec104.ClockSyncMsg(is_test=False, originator_address=0, asdu_address=65535, time=T, is_negative_confirm=False, cause=iec104.ClockSyncResCause.ACTIVATION_CONFIRMATION)]")
        .await;
    assert_eq!(events.quiet_for(Duration::from_millis(300)).await, vec![]);
    device.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_reports_disconnected_and_reconnects() {
    let (mut outstation, device, mut events) = connected().await;
    // The reconnection may be accepted before the drop is acknowledged.
    let before_ack = outstation.command("drop").await;
    events
        .expect_status(&["DISCONNECTED", "CONNECTING", "CONNECTED"])
        .await;
    if !before_ack.iter().any(|l| l == "CONNECT") {
        outstation.line(|l| l == "CONNECT").await;
    }
    // The new connection carries data.
    outstation
        .send("[iec104.DataMsg(is_test=False, originator_address=0, asdu_address=1, io_address=1, data=iec104.SingleData(value=iec104.SingleValue.OFF, quality=IQ), time=None, cause=iec104.DataResCause.SPONTANEOUS)]")
        .await;
    events
        .expect("gateway/data/single/1/1", json!({"is_test": false, "cause": "SPONTANEOUS", "data": {"value": "OFF", "quality": iq(false, false)}}))
        .await;
    device.close().await;
    events.expect_status(&["DISCONNECTED"]).await;
    outstation.line(|l| l == "DISCONNECT").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_at_once_is_retried_only_after_reconnect_delay() {
    let mut outstation = Outstation::start().await;
    let mut c = conf(&[outstation.port]);
    c["reconnect_delay"] = json!(0.5);
    let (device, mut events) = start(&c);
    let first = events
        .expect("gateway/status", json!("CONNECTING"))
        .await
        .at;
    events.expect_status(&["CONNECTED"]).await;
    outstation.line(|l| l == "CONNECT").await;
    outstation.command("drop").await;
    events.expect_status(&["DISCONNECTED"]).await;
    let second = events
        .expect("gateway/status", json!("CONNECTING"))
        .await
        .at;
    // Attempts at least reconnect_delay apart (hat would reconnect at once).
    let gap = second - first;
    assert!(
        gap >= Duration::from_millis(490),
        "reconnected after {gap:?}"
    );
    events.expect_status(&["CONNECTED"]).await;
    device.close().await;
    events.expect_status(&["DISCONNECTED"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_address_refusing_the_second_answers() {
    let mut outstation = Outstation::start().await;
    let (device, mut events) = start(&conf(&[closed_port(), outstation.port]));
    events.expect_status(&["CONNECTING", "CONNECTED"]).await;
    outstation.line(|l| l == "CONNECT").await;
    device.close().await;
    events.expect_status(&["DISCONNECTED"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_address_refusing_waits_reconnect_delay_between_rounds() {
    let mut c = conf(&[closed_port(), closed_port()]);
    c["reconnect_delay"] = json!(0.3);
    let (device, mut events) = start(&c);
    let mut times = Vec::new();
    for status in [
        "CONNECTING",
        "DISCONNECTED",
        "CONNECTING",
        "DISCONNECTED",
        "CONNECTING",
    ] {
        let event = events.expect("gateway/status", json!(status)).await;
        times.push(event.at);
    }
    for (from, to) in [(1, 2), (3, 4)] {
        let gap = times[to] - times[from];
        assert!(
            gap >= Duration::from_millis(290),
            "reconnected after {gap:?}"
        );
    }
    device.close().await;
    events.expect_status(&["DISCONNECTED"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outstation_restarted_on_the_same_port_is_reconnected() {
    let (mut outstation, device, mut events) = connected().await;
    let port = outstation.port;
    outstation.kill().await;
    events.expect_status(&["DISCONNECTED"]).await;
    let mut restarted = Outstation::start_on(port).await;
    // Rounds may fail until the new process listens; then it connects.
    events.until("gateway/status").await;
    loop {
        let event = events.until("gateway/status").await;
        if event.payload == json!("CONNECTED") {
            break;
        }
    }
    restarted.line(|l| l == "CONNECT").await;
    restarted
        .send("[iec104.DataMsg(is_test=False, originator_address=0, asdu_address=1, io_address=9, data=iec104.FloatingData(value=iec104.FloatingValue(value=-0.5), quality=MQ), time=T, cause=iec104.DataResCause.PERIODIC)]")
        .await;
    let event = events
        .expect("gateway/data/floating/1/9", json!({"is_test": false, "cause": "PERIODIC", "data": {"value": -0.5, "quality": mq()}}))
        .await;
    assert_eq!(event.source_timestamp, Some(t_stamp()));
    device.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_system_events_are_ignored_and_the_next_good_one_works() {
    let (mut outstation, device, mut events) = connected().await;
    outstation.command("reply none").await;
    let good = json!({"is_test": false, "cause": "ACTIVATION", "command": {"value": "ON", "select": false, "qualifier": 0}});
    let mut bad_payloads = vec![
        (
            "system/command/single/1/1",
            Some(json!({"is_test": false, "cause": "ACTIVATION"})),
        ),
        (
            "system/command/single/1/1",
            Some(json!({"is_test": "no", "cause": "ACTIVATION", "command": good["command"]})),
        ),
        (
            "system/command/single/1/1",
            Some(
                json!({"is_test": false, "cause": "ACTIVATION_CONFIRMATION", "command": good["command"]}),
            ),
        ),
        (
            "system/command/single/1/1",
            Some(
                json!({"is_test": false, "cause": "ACTIVATION", "command": {"value": "MAYBE", "select": false, "qualifier": 0}}),
            ),
        ),
        (
            "system/command/normalized/1/1",
            Some(
                json!({"is_test": false, "cause": "ACTIVATION", "command": {"value": 7.0, "select": false}}),
            ),
        ),
        ("system/command/toggle/1/1", Some(good.clone())),
        ("system/command/single/1", Some(good.clone())),
        ("system/command/single/70000/1", Some(good.clone())),
        (
            "system/interrogation/1",
            Some(json!({"is_test": false, "cause": "ACTIVATION"})),
        ),
        (
            "system/counter_interrogation/1",
            Some(json!({"is_test": false, "request": 5, "freeze": "THAW", "cause": "ACTIVATION"})),
        ),
        ("system/data/single/1/1", Some(good.clone())),
        ("system/command/single/1/1", None),
    ];
    for (tail, payload) in bad_payloads.drain(..) {
        let event = match payload {
            Some(payload) => system_event(tail, payload, None),
            None => system_event_raw(tail, None, None),
        };
        device.process_event(event).await;
    }
    device
        .process_event(system_event_raw(
            "system/command/single/1/1",
            Some(Payload::Binary {
                type_name: "x".into(),
                data: vec![1],
            }),
            None,
        ))
        .await;
    device
        .process_event(system_event(
            "system/command/single/1/2",
            good.clone(),
            None,
        ))
        .await;
    // The only message the outstation got is the good command.
    let msg = outstation.msg("CommandMsg").await;
    assert_eq!(msg["io_address"], json!(2));
    outstation.command("reply none").await;
    let lines = outstation.command("drop").await;
    assert!(lines.iter().all(|l| !l.starts_with("MSG")), "{lines:?}");
    // Still running: it reconnects.
    events
        .expect_status(&["DISCONNECTED", "CONNECTING", "CONNECTED"])
        .await;
    device.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_asdu_types_are_skipped_and_malformed_asdus_end_the_connection() {
    let (mut outstation, device, mut events) = connected().await;
    // Type id 200 does not exist: skipped, the connection stays.
    outstation.command("asdu c8010300010001000001").await;
    outstation
        .send("[iec104.DataMsg(is_test=False, originator_address=0, asdu_address=1, io_address=3, data=iec104.SingleData(value=iec104.SingleValue.ON, quality=IQ), time=None, cause=iec104.DataResCause.SPONTANEOUS)]")
        .await;
    events.until("gateway/data/single/1/3").await;
    // M_SP_NA claiming two objects with one present: malformed, the connection ends.
    outstation.command("asdu 0102030001000100000001").await;
    events
        .expect_status(&["DISCONNECTED", "CONNECTING", "CONNECTED"])
        .await;
    device.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_system_event_while_disconnected_is_dropped_not_queued() {
    let port = closed_port();
    let (device, mut events) = start(&conf(&[port]));
    events.expect_status(&["CONNECTING", "DISCONNECTED"]).await;
    let interrogation = |request: u8| {
        system_event(
            "system/interrogation/1",
            json!({"is_test": false, "request": request, "cause": "ACTIVATION"}),
            None,
        )
    };
    tokio::time::timeout(WAIT, device.process_event(interrogation(20)))
        .await
        .expect("process_event while disconnected returns");
    let mut outstation = Outstation::start_on(port).await;
    loop {
        if events.until("gateway/status").await.payload == json!("CONNECTED") {
            break;
        }
    }
    outstation.line(|l| l == "CONNECT").await;
    device.process_event(interrogation(21)).await;
    // The first interrogation the outstation sees is the one sent while connected.
    let msg = outstation.msg("InterrogationMsg").await;
    assert_eq!(msg["request"], json!(21));
    device.close().await;
}
