//! The core device against hat-drivers' IEC 101 master over a socat pty pair: the
//! connection list, every data type sent as hat's slave sends it (with and without a
//! link confirmation), interrogation and counter interrogation answers, commands both
//! ways, two addresses on one line, a balanced line, a port that disappears and comes
//! back. Every registered event is checked against hat's event schema by the recorder.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::*;
use gateway_model::Timestamp;
use gateway_test_support::pty::PtyPair;
use iec101_slave::SlaveDevice;
use serde_json::{json, Value};

fn mq() -> Value {
    json!({"invalid": false, "not_topical": false, "substituted": false, "blocked": false, "overflow": false})
}

fn iq() -> Value {
    json!({"invalid": false, "not_topical": false, "substituted": false, "blocked": false})
}

fn pq() -> Value {
    json!({"invalid": false, "not_topical": false, "substituted": false, "blocked": false, "time_invalid": false})
}

/// (data type, hat conf name, data payload, with a source timestamp).
fn data_cases() -> Vec<(&'static str, &'static str, Value, bool)> {
    let mut bits = vec![false; 16];
    bits[3] = true;
    vec![
        (
            "single",
            "SINGLE",
            json!({"value": "ON", "quality": iq()}),
            false,
        ),
        (
            "double",
            "DOUBLE",
            json!({"value": "INTERMEDIATE", "quality": iq()}),
            true,
        ),
        (
            "step_position",
            "STEP_POSITION",
            json!({"value": {"value": 12, "transient": false}, "quality": mq()}),
            false,
        ),
        (
            "bitstring",
            "BITSTRING",
            json!({"value": [9, 8, 7, 6], "quality": mq()}),
            false,
        ),
        (
            "normalized",
            "NORMALIZED",
            json!({"value": 0.5, "quality": mq()}),
            false,
        ),
        (
            "normalized",
            "NORMALIZED",
            json!({"value": -0.5, "quality": null}),
            false,
        ),
        (
            "scaled",
            "SCALED",
            json!({"value": 300, "quality": mq()}),
            true,
        ),
        (
            "floating",
            "FLOATING",
            json!({"value": "nan", "quality": mq()}),
            false,
        ),
        (
            "binary_counter",
            "BINARY_COUNTER",
            json!({"value": 77, "quality": {"invalid": false, "adjusted": false, "overflow": false, "sequence": 3}}),
            false,
        ),
        (
            "protection",
            "PROTECTION",
            json!({"value": "OFF", "quality": pq(), "elapsed_time": 10}),
            true,
        ),
        (
            "protection_start",
            "PROTECTION_START",
            json!({"value": {"general": true, "l1": true, "l2": false, "l3": false, "ie": false, "reverse": true}, "quality": pq(), "duration_time": 11}),
            true,
        ),
        (
            "protection_command",
            "PROTECTION_COMMAND",
            json!({"value": {"general": false, "l1": false, "l2": true, "l3": true}, "quality": pq(), "operating_time": 12}),
            true,
        ),
        (
            "status",
            "STATUS",
            json!({"value": {"value": bits.clone(), "change": bits}, "quality": mq()}),
            false,
        ),
    ]
}

async fn start(conf: &Value) -> (SlaveDevice, Events) {
    let (recorder, mut events) = Recorder::new(vec![]);
    let device = SlaveDevice::create(conf, prefix(), recorder).await.unwrap();
    events.expect("gateway/connections", json!([])).await;
    (device, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_data_type_reaches_hats_master_as_hats_slave_sends_it() {
    let pty = PtyPair::start("iec101-slave-data");
    let cases = data_cases();
    let data: Vec<Value> = cases
        .iter()
        .enumerate()
        .map(|(i, (_, name, _, _))| point(name, 1, i as u32 + 1, None, i % 2 == 0))
        .collect();
    let (device, mut events) = start(&conf(&pty.a_str(), &[1], json!(data))).await;
    let mut master = Master::start(&pty, &[]).await;
    events
        .expect(
            "gateway/connections",
            json!([{"connection_id": 1, "address": 1}]),
        )
        .await;
    master.script.line(|l| l == "CONNECT 1").await;
    let stamp = Timestamp::new(1_709_251_198, 123_000);
    for (i, (data_type, _, data, timed)) in cases.into_iter().enumerate() {
        let tail = format!("system/data/{data_type}/1/{}", i + 1);
        let payload = json!({"is_test": false, "cause": "SPONTANEOUS", "data": data});
        let source = timed.then_some(stamp);
        let mut event = system_event(&tail, payload.clone(), i as i64 + 1);
        event.source_timestamp = source;
        device.process_event(event).await;
        let got = master.msg(1, "DataMsg").await;
        assert_eq!(
            got,
            master.hat_data(&tail, &payload, source).await,
            "{tail}"
        );
    }
    device.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrogations_and_commands_from_hats_master_are_answered() {
    let pty = PtyPair::start("iec101-slave-gi");
    let data = json!([
        point("SCALED", 1, 1, None, false),
        point("BINARY_COUNTER", 1, 2, None, false),
    ]);
    let initial = vec![
        system_event("system/data/scaled/1/1", scaled(5), 1),
        system_event(
            "system/data/binary_counter/1/2",
            json!({"is_test": false, "cause": "SPONTANEOUS", "data": {"value": 9, "quality": {"invalid": false, "adjusted": false, "overflow": false, "sequence": 0}}}),
            2,
        ),
    ];
    let (recorder, mut events) = Recorder::new(initial);
    let device = SlaveDevice::create(&conf(&pty.a_str(), &[1], data), prefix(), recorder)
        .await
        .unwrap();
    let device = Arc::new(device);
    let mut master = Master::start(&pty, &[]).await;
    events.until("gateway/connections").await;
    events.until("gateway/connections").await;
    master.script.line(|l| l == "CONNECT 1").await;
    master
        .command("send 1 [iec101.InterrogationMsg(is_test=False, originator_address=0, asdu_address=65535, request=20, is_negative_confirm=False, cause=iec101.CommandReqCause.ACTIVATION)]")
        .await;
    let confirmation = master.msg(1, "InterrogationMsg").await;
    assert_eq!(confirmation["cause"], json!("ACTIVATION_CONFIRMATION"));
    let value = master.msg(1, "DataMsg").await;
    assert_eq!(
        (value["io_address"].clone(), value["cause"].clone()),
        (json!(1), json!("INTERROGATED_STATION"))
    );
    let termination = master.msg(1, "InterrogationMsg").await;
    assert_eq!(termination["cause"], json!("ACTIVATION_TERMINATION"));
    master
        .command("send 1 [iec101.CounterInterrogationMsg(is_test=False, originator_address=0, asdu_address=1, request=5, freeze=iec101.FreezeCode.READ, is_negative_confirm=False, cause=iec101.CommandReqCause.ACTIVATION)]")
        .await;
    assert_eq!(
        master.msg(1, "CounterInterrogationMsg").await["cause"],
        json!("ACTIVATION_CONFIRMATION")
    );
    let counter = master.msg(1, "DataMsg").await;
    assert_eq!(
        (counter["io_address"].clone(), counter["cause"].clone()),
        (json!(2), json!("INTERROGATED_COUNTER"))
    );
    assert_eq!(
        master.msg(1, "CounterInterrogationMsg").await["cause"],
        json!("ACTIVATION_TERMINATION")
    );
    // A command: its event, then our response back to hat's master.
    master
        .command("send 1 [iec101.CommandMsg(is_test=False, originator_address=0, asdu_address=3, io_address=4, command=iec101.DoubleCommand(value=iec101.DoubleValue.ON, select=True, qualifier=2), is_negative_confirm=False, cause=iec101.CommandReqCause.ACTIVATION)]")
        .await;
    let event = events.until("gateway/command/double/3/4").await;
    assert_eq!(
        event.payload,
        json!({"connection_id": 1, "is_test": false, "cause": "ACTIVATION", "command": {"value": "ON", "select": true, "qualifier": 2}})
    );
    device
        .process_event(system_event(
            "system/command/double/3/4",
            json!({"connection_id": 1, "is_test": false, "is_negative_confirm": false, "cause": "ACTIVATION_CONFIRMATION", "command": {"value": "ON", "select": true, "qualifier": 2}}),
            3,
        ))
        .await;
    let back = master.msg(1, "CommandMsg").await;
    assert_eq!(back["cause"], json!("ACTIVATION_CONFIRMATION"));
    device.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_addresses_on_one_line_are_two_connections() {
    let pty = PtyPair::start("iec101-slave-two");
    let data = json!([point("SINGLE", 1, 1, None, true)]);
    let (device, mut events) = start(&conf(&pty.a_str(), &[1, 2], data)).await;
    let mut master = Master::start(&pty, &["--addresses", "1,2"]).await;
    events.until("gateway/connections").await;
    let both = events.until("gateway/connections").await;
    let mut addresses: Vec<u64> = both
        .payload
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["address"].as_u64().unwrap())
        .collect();
    addresses.sort();
    assert_eq!(addresses, [1, 2]);
    device
        .process_event(system_event(
            "system/data/single/1/1",
            json!({"is_test": false, "cause": "SPONTANEOUS", "data": {"value": "ON", "quality": iq()}}),
            1,
        ))
        .await;
    // The two addresses are polled independently: their data arrives in either order.
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let line = master
            .script
            .line(|l| {
                (l.starts_with("MSG 1 ") || l.starts_with("MSG 2 "))
                    && l.contains("\"_type\": \"DataMsg\"")
            })
            .await;
        let addr = &line[4..5];
        if !seen.contains(&addr.to_string()) {
            seen.push(addr.to_string());
        }
    }
    seen.sort();
    assert_eq!(seen, ["1", "2"]);
    device.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_balanced_line_carries_data_and_commands() {
    let pty = PtyPair::start("iec101-slave-balanced");
    let mut c = conf(
        &pty.a_str(),
        &[],
        json!([point("SCALED", 1, 1, None, true)]),
    );
    c["link_type"] = json!("BALANCED");
    c["devices"] = json!([{"direction": "B_TO_A", "address": 1, "response_timeout": 0.5,
                           "send_retry_count": 2, "status_delay": 1, "reconnect_delay": 0.2}]);
    let (device, mut events) = start(&c).await;
    let mut master = Master::start(&pty, &["--link", "balanced", "--direction", "A_TO_B"]).await;
    events.until("gateway/connections").await;
    master.script.line(|l| l == "CONNECT 1").await;
    device
        .process_event(system_event("system/data/scaled/1/1", scaled(-3), 1))
        .await;
    let msg = master.msg(1, "DataMsg").await;
    assert_eq!(msg["data"]["value"]["value"], json!(-3));
    master
        .command("send 1 [iec101.CommandMsg(is_test=False, originator_address=0, asdu_address=1, io_address=7, command=iec101.SingleCommand(value=iec101.SingleValue.OFF, select=False, qualifier=0), is_negative_confirm=False, cause=iec101.CommandReqCause.ACTIVATION)]")
        .await;
    events.until("gateway/command/single/1/7").await;
    device.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_type_from_hats_master_becomes_its_event_and_goes_back() {
    let pty = PtyPair::start("iec101-slave-commands");
    let (device, mut events) = start(&conf(&pty.a_str(), &[1], json!([]))).await;
    let mut master = Master::start(&pty, &[]).await;
    events.until("gateway/connections").await;
    master.script.line(|l| l == "CONNECT 1").await;
    for (io, (cmd_type, py, command)) in [
        ("single", "iec101.SingleCommand(value=iec101.SingleValue.ON, select=True, qualifier=1)",
         json!({"value": "ON", "select": true, "qualifier": 1})),
        ("double", "iec101.DoubleCommand(value=iec101.DoubleValue.OFF, select=False, qualifier=0)",
         json!({"value": "OFF", "select": false, "qualifier": 0})),
        ("regulating", "iec101.RegulatingCommand(value=iec101.RegulatingValue.LOWER, select=False, qualifier=31)",
         json!({"value": "LOWER", "select": false, "qualifier": 31})),
        ("normalized", "iec101.NormalizedCommand(value=iec101.NormalizedValue(value=0.5), select=True)",
         json!({"value": 16384.0f64 / 32767.0, "select": true})),
        ("scaled", "iec101.ScaledCommand(value=iec101.ScaledValue(value=-7), select=False)",
         json!({"value": -7, "select": false})),
        ("floating", "iec101.FloatingCommand(value=iec101.FloatingValue(value=1.25), select=False)",
         json!({"value": 1.25, "select": false})),
        ("bitstring", "iec101.BitstringCommand(value=iec101.BitstringValue(value=bytes([1, 2, 3, 4])))",
         json!({"value": [1, 2, 3, 4]})),
    ]
    .into_iter()
    .enumerate()
    {
        master
            .command(&format!("send 1 [iec101.CommandMsg(is_test=False, originator_address=0, asdu_address=2, io_address={io}, command={py}, is_negative_confirm=False, cause=iec101.CommandReqCause.ACTIVATION)]"))
            .await;
        let event = events.until(&format!("gateway/command/{cmd_type}/2/{io}")).await;
        assert_eq!(
            event.payload,
            json!({"connection_id": 1, "is_test": false, "cause": "ACTIVATION", "command": command})
        );
        device
            .process_event(system_event(
                &format!("system/command/{cmd_type}/2/{io}"),
                json!({"connection_id": 1, "is_test": false, "is_negative_confirm": false, "cause": "ACTIVATION_TERMINATION", "command": command}),
                io as i64 + 1,
            ))
            .await;
        let back = master.msg(1, "CommandMsg").await;
        assert_eq!(back["cause"], json!("ACTIVATION_TERMINATION"));
        assert_eq!(back["io_address"], json!(io));
    }
    device.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serial_port_that_disappears_is_reopened_when_it_is_back() {
    let dir = gateway_test_support::TempDir::new("iec101-slave-port");
    let port = dir.path().join("ttyLINE");
    let pty = PtyPair::start("iec101-slave-port");
    std::os::unix::fs::symlink(pty.a(), &port).unwrap();
    let data = json!([point("SCALED", 1, 1, None, false)]);
    let (device, mut events) = start(&conf(port.to_str().unwrap(), &[1], data)).await;
    let mut master = Master::start(&pty, &[]).await;
    events
        .expect(
            "gateway/connections",
            json!([{"connection_id": 1, "address": 1}]),
        )
        .await;
    master.script.line(|l| l == "CONNECT 1").await;
    drop(master);
    drop(pty);
    events.expect("gateway/connections", json!([])).await;
    let pty = PtyPair::start("iec101-slave-port-back");
    std::fs::remove_file(&port).unwrap();
    std::os::unix::fs::symlink(pty.a(), &port).unwrap();
    let mut master = Master::start(&pty, &[]).await;
    events
        .expect(
            "gateway/connections",
            json!([{"connection_id": 2, "address": 1}]),
        )
        .await;
    master.script.line(|l| l == "CONNECT 1").await;
    device
        .process_event(system_event("system/data/scaled/1/1", scaled(8), 1))
        .await;
    master.msg(1, "DataMsg").await;
    device.close().await;
}
