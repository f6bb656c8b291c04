//! The core device against real hat-drivers IEC 101 outstations over a socat pty pair:
//! every data type and command both ways, interrogations, clock synchronisation, two
//! remote devices on one unbalanced line with per-remote-device enable, a remote device
//! that stops answering and comes back, corrupt bytes on the line, and a balanced line.
//! Every registered event is checked against hat's event schema by the recorder, and
//! compared with what hat-gateway's own master registers for the same message.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use gateway_test_support::pty::PtyPair;
use serde_json::{json, Value};

fn iq(invalid: bool) -> Value {
    json!({"invalid": invalid, "not_topical": false, "substituted": false, "blocked": false})
}

fn mq() -> Value {
    json!({"invalid": false, "not_topical": false, "substituted": false, "blocked": false, "overflow": false})
}

fn pq() -> Value {
    json!({"invalid": false, "not_topical": false, "substituted": false, "blocked": false, "time_invalid": false})
}

/// (hat data expression, event data type, expected data payload, time tags it may
/// carry: "" none, "T" CP56, "T24" CP24).
fn data_cases() -> Vec<(&'static str, &'static str, Value, &'static [&'static str])> {
    let mut status_value = vec![false; 16];
    status_value[0] = true;
    let mut status_change = vec![false; 16];
    status_change[15] = true;
    vec![
        ("iec101.SingleData(value=iec101.SingleValue.ON, quality=IQ)", "single",
         json!({"value": "ON", "quality": iq(false)}), &["", "T", "T24"]),
        ("iec101.DoubleData(value=iec101.DoubleValue.FAULT, quality=iec101.IndicationQuality(invalid=True, not_topical=False, substituted=False, blocked=False))", "double",
         json!({"value": "FAULT", "quality": iq(true)}), &["", "T"]),
        ("iec101.StepPositionData(value=iec101.StepPositionValue(value=-5, transient=True), quality=MQ)", "step_position",
         json!({"value": {"value": -5, "transient": true}, "quality": mq()}), &["", "T"]),
        ("iec101.BitstringData(value=iec101.BitstringValue(value=bytes([1, 2, 3, 255])), quality=MQ)", "bitstring",
         json!({"value": [1, 2, 3, 255], "quality": mq()}), &["", "T"]),
        ("iec101.NormalizedData(value=iec101.NormalizedValue(value=0.5), quality=MQ)", "normalized",
         json!({"value": 16384.0f64 / 32767.0, "quality": mq()}), &["", "T"]),
        ("iec101.NormalizedData(value=iec101.NormalizedValue(value=-0.25), quality=None)", "normalized",
         json!({"value": -8192.0f64 / 32767.0, "quality": null}), &[""]),
        ("iec101.ScaledData(value=iec101.ScaledValue(value=-1234), quality=MQ)", "scaled",
         json!({"value": -1234, "quality": mq()}), &["", "T", "T24"]),
        ("iec101.FloatingData(value=iec101.FloatingValue(value=1.5), quality=MQ)", "floating",
         json!({"value": 1.5, "quality": mq()}), &["", "T"]),
        ("iec101.FloatingData(value=iec101.FloatingValue(value=float('-inf')), quality=MQ)", "floating",
         json!({"value": "-inf", "quality": mq()}), &[""]),
        ("iec101.BinaryCounterData(value=iec101.BinaryCounterValue(value=-7), quality=iec101.CounterQuality(invalid=False, adjusted=True, overflow=False, sequence=17))", "binary_counter",
         json!({"value": -7, "quality": {"invalid": false, "adjusted": true, "overflow": false, "sequence": 17}}), &["", "T"]),
        ("iec101.ProtectionData(value=iec101.ProtectionValue.ON, quality=PQ, elapsed_time=1234)", "protection",
         json!({"value": "ON", "quality": pq(), "elapsed_time": 1234}), &["T", "T24"]),
        ("iec101.ProtectionStartData(value=iec101.ProtectionStartValue(general=True, l1=False, l2=True, l3=False, ie=True, reverse=False), quality=PQ, duration_time=55)", "protection_start",
         json!({"value": {"general": true, "l1": false, "l2": true, "l3": false, "ie": true, "reverse": false}, "quality": pq(), "duration_time": 55}), &["T"]),
        ("iec101.ProtectionCommandData(value=iec101.ProtectionCommandValue(general=True, l1=True, l2=False, l3=False), quality=PQ, operating_time=66)", "protection_command",
         json!({"value": {"general": true, "l1": true, "l2": false, "l3": false}, "quality": pq(), "operating_time": 66}), &["T"]),
        ("iec101.StatusData(value=iec101.StatusValue(value=[True] + [False] * 15, change=[False] * 15 + [True]), quality=MQ)", "status",
         json!({"value": {"value": status_value, "change": status_change}, "quality": mq()}), &[""]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_data_type_with_and_without_time_tags_becomes_hats_event() {
    let (_pty, mut outstation, device, mut events) = connected().await;
    let causes = ["SPONTANEOUS", "INTERROGATED_STATION", "PERIODIC", "REQUEST"];
    let mut io = 0u32;
    for (expr, data_type, data, times) in data_cases() {
        for time in times.iter() {
            io += 1;
            let cause = causes[io as usize % causes.len()];
            let py_time = if time.is_empty() { "None" } else { time };
            let msg = format!(
                "[iec101.DataMsg(is_test={}, originator_address=0, asdu_address=7, io_address={io}, data={expr}, time={py_time}, cause=iec101.DataResCause.{cause})]",
                if io % 3 == 0 { "True" } else { "False" },
            );
            let hat = outstation.send(1, &msg).await;
            assert_eq!(hat.len(), 1, "{msg}: {hat:?}");
            let event = events
                .expect(
                    &format!("gateway/remote_device/1/data/{data_type}/7/{io}"),
                    json!({"is_test": io % 3 == 0, "cause": cause, "data": data}),
                )
                .await;
            if *time == "T" {
                assert_eq!(event.source_timestamp, Some(t_stamp()));
            }
            // Exactly what hat-gateway's master registers for the same message.
            assert_as_hat(&event, &hat[0]);
        }
    }
    device.close().await;
}

/// (command type, command payload, hat class).
fn command_cases() -> Vec<(&'static str, Value, &'static str)> {
    vec![
        (
            "single",
            json!({"value": "ON", "select": true, "qualifier": 3}),
            "SingleCommand",
        ),
        (
            "double",
            json!({"value": "OFF", "select": false, "qualifier": 0}),
            "DoubleCommand",
        ),
        (
            "regulating",
            json!({"value": "HIGHER", "select": false, "qualifier": 31}),
            "RegulatingCommand",
        ),
        (
            "normalized",
            json!({"value": 0.25, "select": true}),
            "NormalizedCommand",
        ),
        (
            "scaled",
            json!({"value": -300, "select": false}),
            "ScaledCommand",
        ),
        (
            "floating",
            json!({"value": 2.5, "select": true}),
            "FloatingCommand",
        ),
        (
            "bitstring",
            json!({"value": [1, 2, 3, 4]}),
            "BitstringCommand",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_type_reaches_the_outstation_and_its_answers_come_back() {
    let (_pty, mut outstation, device, mut events) = connected().await;
    for (io, (cmd_type, command, class)) in command_cases().into_iter().enumerate() {
        for mode in ["positive", "negative"] {
            outstation.command(&format!("reply {mode}")).await;
            let tail = format!("system/remote_device/1/command/{cmd_type}/3/{io}");
            let payload = json!({"is_test": false, "cause": "ACTIVATION", "command": command});
            device
                .process_event(system_event(&tail, payload.clone()))
                .await;
            let msg = outstation.msg(1, "CommandMsg").await;
            // The outstation's answers (hat's events for them) are printed right
            // after the message: read them before asking for anything else.
            let confirmation_hat = outstation.hat_answer().await;
            let termination_hat = if mode == "positive" {
                Some(outstation.hat_answer().await)
            } else {
                None
            };
            // Exactly the message hat-gateway's master sends for the same event.
            assert_eq!(msg, outstation.hat_msg(&tail, &payload).await);
            assert_eq!(msg["command"]["_type"], json!(class), "{msg}");
            let response = format!("gateway/remote_device/1/command/{cmd_type}/3/{io}");
            let confirmation = events
                .until(&response, confirmation_hat["payload"].clone())
                .await;
            assert_eq!(
                confirmation.payload["is_negative_confirm"],
                json!(mode == "negative")
            );
            assert_as_hat(&confirmation, &confirmation_hat);
            if let Some(termination_hat) = termination_hat {
                let termination = events.next().await;
                assert_as_hat(&termination, &termination_hat);
            }
        }
    }
    device.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrogations_and_counter_interrogations_go_out_and_their_answers_come_back() {
    let (_pty, mut outstation, device, mut events) = connected().await;
    for (tail, payload, class) in [
        (
            "interrogation/65535",
            json!({"is_test": false, "request": 20, "cause": "ACTIVATION"}),
            "InterrogationMsg",
        ),
        (
            "counter_interrogation/2",
            json!({"is_test": true, "request": 5, "freeze": "FREEZE_AND_RESET", "cause": "ACTIVATION"}),
            "CounterInterrogationMsg",
        ),
    ] {
        let system = format!("system/remote_device/1/{tail}");
        device
            .process_event(system_event(&system, payload.clone()))
            .await;
        let msg = outstation.msg(1, class).await;
        let hats = [outstation.hat_answer().await, outstation.hat_answer().await];
        assert_eq!(msg, outstation.hat_msg(&system, &payload).await);
        for hat in hats {
            let event = events.next().await;
            assert_eq!(event.tail, format!("gateway/remote_device/1/{tail}"));
            assert_as_hat(&event, &hat);
        }
    }
    device.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_synchronisation_is_sent_to_the_broadcast_address_every_time_sync_delay() {
    let pty = PtyPair::start("iec101-master-sync");
    let mut outstation = Outstation::start(&pty, &[]).await;
    let mut c = conf(&pty.a_str(), &[1]);
    c["remote_devices"][0]["time_sync_delay"] = json!(0.5);
    let (device, mut events) = start(&c, &[1]).await;
    events.until_remote(1, "CONNECTED").await;
    for _ in 0..2 {
        let msg = outstation.msg(1, "ClockSyncMsg").await;
        assert_eq!(msg["asdu_address"], json!(0xFFFF));
        assert_eq!(msg["cause"], json!("ACTIVATION"));
        assert_eq!(msg["time"]["size"], json!("SEVEN"));
    }
    device.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_remote_devices_share_one_line_and_are_enabled_one_by_one() {
    let pty = PtyPair::start("iec101-master-two");
    let mut outstation = Outstation::start(&pty, &["--addresses", "1,2"]).await;
    let (device, mut events) = start(&conf(&pty.a_str(), &[1, 2]), &[1, 2]).await;
    events.until_connected(&[1, 2]).await;
    for addr in [1u16, 2] {
        outstation
            .send(addr, &format!("[iec101.DataMsg(is_test=False, originator_address=0, asdu_address=1, io_address={addr}, data=iec101.ScaledData(value=iec101.ScaledValue(value={addr}), quality=MQ), time=None, cause=iec101.DataResCause.SPONTANEOUS)]"))
            .await;
        let event = events.until(
            &format!("gateway/remote_device/{addr}/data/scaled/1/{addr}"),
            json!({"is_test": false, "cause": "SPONTANEOUS", "data": {"value": addr, "quality": mq()}}),
        ).await;
        assert!(event.source_timestamp.is_none());
    }
    // Disabling 2 leaves 1 running.
    device
        .process_event(system_event("system/remote_device/2/enable", json!(false)))
        .await;
    events.until_remote(2, "DISCONNECTED").await;
    device
        .process_event(system_event(
            "system/remote_device/1/interrogation/1",
            json!({"is_test": false, "request": 20, "cause": "ACTIVATION"}),
        ))
        .await;
    outstation.msg(1, "InterrogationMsg").await;
    events
        .until("gateway/remote_device/1/interrogation/1", json!({"is_test": false, "is_negative_confirm": false, "request": 20, "cause": "ACTIVATION_TERMINATION"}))
        .await;
    device
        .process_event(system_event("system/remote_device/2/enable", json!(true)))
        .await;
    events.until_remote(2, "CONNECTED").await;
    device.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_device_that_stops_answering_is_disconnected_and_reconnected_when_it_answers() {
    let pty = PtyPair::start("iec101-master-mute");
    let mut outstation = Outstation::start(&pty, &["--addresses", "1,2"]).await;
    let (device, mut events) = start(&conf(&pty.a_str(), &[1, 2]), &[1, 2]).await;
    events.until_connected(&[1, 2]).await;
    outstation.command("mute 1").await;
    events.until_remote(1, "DISCONNECTED").await;
    // 2 is still polled and answers.
    outstation
        .send(2, "[iec101.DataMsg(is_test=False, originator_address=0, asdu_address=1, io_address=9, data=iec101.SingleData(value=iec101.SingleValue.ON, quality=IQ), time=None, cause=iec101.DataResCause.SPONTANEOUS)]")
        .await;
    events
        .until("gateway/remote_device/2/data/single/1/9", json!({"is_test": false, "cause": "SPONTANEOUS", "data": {"value": "ON", "quality": iq(false)}}))
        .await;
    outstation.command("unmute 1").await;
    events.until_remote(1, "CONNECTED").await;
    outstation.line(|l| l == "CONNECT 1").await;
    device.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_balanced_line_carries_data_and_commands() {
    let pty = PtyPair::start("iec101-master-balanced");
    let mut outstation =
        Outstation::start(&pty, &["--link", "balanced", "--direction", "B_TO_A"]).await;
    let (device, mut events) = start(&balanced_conf(&pty.a_str(), 1), &[1]).await;
    events.until_remote(1, "CONNECTED").await;
    outstation.line(|l| l == "CONNECT 1").await;
    let hat = outstation
        .send(1, "[iec101.DataMsg(is_test=False, originator_address=0, asdu_address=4, io_address=5, data=iec101.FloatingData(value=iec101.FloatingValue(value=2.5), quality=MQ), time=T, cause=iec101.DataResCause.SPONTANEOUS)]")
        .await;
    let event = events
        .until(
            "gateway/remote_device/1/data/floating/4/5",
            hat[0]["payload"].clone(),
        )
        .await;
    assert_as_hat(&event, &hat[0]);
    device
        .process_event(system_event(
            "system/remote_device/1/command/single/4/6",
            json!({"is_test": false, "cause": "ACTIVATION", "command": {"value": "ON", "select": false, "qualifier": 0}}),
        ))
        .await;
    outstation.msg(1, "CommandMsg").await;
    let hat = outstation.hat_answer().await;
    let event = events
        .until(
            "gateway/remote_device/1/command/single/4/6",
            hat["payload"].clone(),
        )
        .await;
    assert_as_hat(&event, &hat);
    device.close().await;
    let _ = Duration::ZERO;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_bytes_on_the_line_are_discarded_and_the_remote_device_stays_connected() {
    let (_pty, mut outstation, device, mut events) = connected().await;
    // Garbage, a fixed frame with a bad checksum, a variable frame with mismatched
    // lengths, a stray stop character and a burst of stray single-character ACKs.
    for garbage in ["00ff1234", "1049014b16", "680a0b6808", "16", "e5e5"] {
        outstation.command(&format!("garbage {garbage}")).await;
    }
    let hat = outstation
        .send(1, "[iec101.DataMsg(is_test=False, originator_address=0, asdu_address=1, io_address=3, data=iec101.SingleData(value=iec101.SingleValue.OFF, quality=IQ), time=None, cause=iec101.DataResCause.SPONTANEOUS)]")
        .await;
    // Nothing is reported disconnected on the way to the data.
    let event = loop {
        let event = events.next().await;
        assert!(!event.tail.ends_with("status"), "{event:?}");
        if event.tail == "gateway/remote_device/1/data/single/1/3" {
            break event;
        }
    };
    assert_as_hat(&event, &hat[0]);
    device.close().await;
    let rest = events.quiet_for(Duration::from_millis(100)).await;
    let statuses: Vec<&Value> = rest
        .iter()
        .filter(|e| e.tail.ends_with("status"))
        .map(|e| &e.payload)
        .collect();
    assert_eq!(statuses, [&json!("DISCONNECTED"), &json!("DISCONNECTED")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serial_port_that_disappears_is_reported_and_reopened_when_it_is_back() {
    // The configured port is a symlink of ours, so the line can come back at the
    // same path.
    let dir = gateway_test_support::TempDir::new("iec101-master-port");
    let port = dir.path().join("ttyRTU");
    let pty = PtyPair::start("iec101-master-port");
    std::os::unix::fs::symlink(pty.a(), &port).unwrap();
    let mut outstation = Outstation::start(&pty, &[]).await;
    let (device, mut events) = start(&conf(port.to_str().unwrap(), &[1]), &[1]).await;
    events.until_remote(1, "CONNECTED").await;
    outstation.line(|l| l == "CONNECT 1").await;
    // The line goes away: the remote device, then the link, are reported down, and the
    // port is tried again (and fails) every reconnect_delay.
    drop(outstation);
    drop(pty);
    events.until_remote(1, "DISCONNECTED").await;
    events.until("gateway/status", json!("DISCONNECTED")).await;
    events.until("gateway/status", json!("CONNECTING")).await;
    events.until("gateway/status", json!("DISCONNECTED")).await;
    // It is back (a new pty pair at the same path).
    let pty = PtyPair::start("iec101-master-port-back");
    std::fs::remove_file(&port).unwrap();
    std::os::unix::fs::symlink(pty.a(), &port).unwrap();
    let mut outstation = Outstation::start(&pty, &[]).await;
    events.until("gateway/status", json!("CONNECTED")).await;
    events.until_remote(1, "CONNECTED").await;
    outstation.line(|l| l == "CONNECT 1").await;
    device.close().await;
}
