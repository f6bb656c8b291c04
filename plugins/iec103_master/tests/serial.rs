//! The device on a real serial line: `iec_link`'s unbalanced master over a socat pty
//! pair against protection devices simulated by hat-drivers' own slave link and 103
//! encoder (tests/py/slave.py). Every event is compared with the one hat-gateway
//! 0.6.48's master registers for the same ASDU and checked against hat's schema.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::*;
use iec103_master::serial::SerialOpener;
use iec103_master::MasterDevice;
use serde_json::{json, Value};

async fn device(
    slave: &Slave,
    conf: Value,
    enabled: &[(u16, bool)],
) -> (MasterDevice, Registrations) {
    let _ = slave;
    let (recorder, events) = Recorder::new(enabled);
    let device = MasterDevice::create(&conf, prefix(), recorder, Arc::new(SerialOpener))
        .await
        .unwrap();
    (device, events)
}

const MESSAGE: &str = "c.ASDU(type=c.AsduType.TIME_TAGGED_MESSAGE, cause=c.Cause.SPONTANEOUS, address=5, ios=[c.IO(address=io(160, 16), elements=[c.IoElement_TIME_TAGGED_MESSAGE(c.DoubleWithTimeValue(value=c.DoubleValue.ON, time=T4, supplementary=0))])])";

const MEASURANDS: &str = "c.ASDU(type=c.AsduType.MEASURANDS_2, cause=c.Cause.CYCLIC, address=5, ios=[c.IO(address=io(128, 148), elements=[c.IoElement_MEASURANDS_2(c.MeasurandValue(overflow=i == 1, invalid=i == 2, value=i / 10 - 0.4)) for i in range(9)])])";

const RELATIVE: &str = "c.ASDU(type=c.AsduType.TIME_TAGGED_MESSAGE_WITH_RELATIVE_TIME, cause=c.Cause.REMOTE_OPERATION, address=6, ios=[c.IO(address=io(128, 1), elements=[c.IoElement_TIME_TAGGED_MESSAGE_WITH_RELATIVE_TIME(c.DoubleWithRelativeTimeValue(value=c.DoubleValue.OFF, relative_time=10, fault_number=3, time=T4, supplementary=0))])])";

const MEASURANDS_1: &str = "c.ASDU(type=c.AsduType.MEASURANDS_1, cause=77, address=5, ios=[c.IO(address=io(128, 144), elements=[c.IoElement_MEASURANDS_1(c.MeasurandValue(overflow=False, invalid=False, value=-0.5 + i / 4)) for i in range(4)])])";

/// Sends `asdus` from `address` and checks our events equal hat's.
async fn same_as_hat(slave: &mut Slave, events: &mut Registrations, address: u16, asdus: &str) {
    let hat = slave.command(&format!("send {address} [{asdus}]")).await;
    assert!(!hat.is_empty());
    for expected in hat {
        let ours = events.until(&expected.tail).await;
        ours.assert_same(&expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_from_two_remote_devices_on_one_line_and_clock_sync() {
    let mut slave = Slave::start("iec103-data", &[1, 2]).await;
    let conf = config(&slave.port(), &[1, 2], Some(60.0));
    let (device, mut events) = device(&slave, conf, &[(1, true), (2, true)]).await;
    events
        .until_payload("gateway/status", json!("CONNECTED"))
        .await;
    slave.connected_all(&[1, 2]).await;
    // Clock synchronisation right after connecting, to the broadcast ASDU address.
    let mut synced = std::collections::BTreeSet::new();
    while synced.len() < 2 {
        let line = slave.script.next().await;
        let Some(rest) = line.strip_prefix("ASDU ") else {
            continue;
        };
        let (address, json) = rest.split_once(' ').unwrap();
        let sync: Value = serde_json::from_str(json).unwrap();
        if sync["type"] != json!("TIME_SYNCHRONIZATION") {
            continue;
        }
        synced.insert(address.to_owned());
        assert_eq!(sync["cause"], json!("TIME_SYNCHRONIZATION"));
        assert_eq!(sync["address"], json!(255));
        assert_eq!(
            sync["ios"][0]["address"],
            json!({"_class": "IoAddress", "function_type": 255, "information_number": 0})
        );
        let t = &sync["ios"][0]["elements"][0]["time"];
        let now = gateway_model::Timestamp::now();
        let seconds_of_day = now.s.rem_euclid(86_400);
        let ours = t["hours"].as_i64().unwrap() * 3600
            + t["minutes"].as_i64().unwrap() * 60
            + t["milliseconds"].as_i64().unwrap() / 1000;
        let off = (ours - seconds_of_day).abs();
        assert!(off <= 2 || off >= 86_398, "clock sync {t} at {now:?}");
    }
    events
        .until_each(&[
            ("gateway/remote_device/1/status", json!("CONNECTED")),
            ("gateway/remote_device/2/status", json!("CONNECTED")),
        ])
        .await;
    same_as_hat(&mut slave, &mut events, 1, MESSAGE).await;
    same_as_hat(&mut slave, &mut events, 2, MEASURANDS).await;
    same_as_hat(&mut slave, &mut events, 2, RELATIVE).await;
    same_as_hat(&mut slave, &mut events, 1, MEASURANDS_1).await;
    device.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn class_2_polling_only_still_brings_the_data() {
    let mut slave = Slave::start("iec103-class2", &[4]).await;
    let mut conf = config(&slave.port(), &[4], None);
    conf["remote_devices"][0]["poll_class1_delay"] = json!(null);
    conf["remote_devices"][0]["poll_class2_delay"] = json!(0.05);
    let (device, mut events) = device(&slave, conf, &[(4, true)]).await;
    slave.connected(4).await;
    events
        .until_payload("gateway/remote_device/4/status", json!("CONNECTED"))
        .await;
    same_as_hat(&mut slave, &mut events, 4, MESSAGE).await;
    same_as_hat(&mut slave, &mut events, 4, MEASURANDS).await;
    device.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn general_interrogation_and_commands() {
    let mut slave = Slave::start("iec103-gi", &[3]).await;
    let mut conf = config(&slave.port(), &[3], None);
    conf["command_timeout"] = json!(1.0);
    let (device, mut events) = device(&slave, conf, &[(3, true)]).await;
    slave.connected(3).await;
    events
        .until_payload("gateway/remote_device/3/status", json!("CONNECTED"))
        .await;
    let gi_data = MESSAGE.replace("c.Cause.SPONTANEOUS", "c.Cause.GENERAL_INTERROGATION");
    slave.command(&format!("gi 3 [{gi_data}]")).await;
    device
        .process_event(system_event(
            "system/remote_device/3/interrogation/5",
            json!(null),
        ))
        .await;
    let gi = slave.asdu(3, "GENERAL_INTERROGATION").await;
    assert_eq!(gi["address"], json!(5));
    let e = events
        .until("gateway/remote_device/3/data/double/5/160/16")
        .await;
    assert_eq!(
        e.payload,
        json!({"cause": "GENERAL_INTERROGATION", "value": "ON"})
    );
    let e = events
        .until("gateway/remote_device/3/interrogation/5")
        .await;
    assert_eq!(e.payload, json!(null));

    let command = |session: u32, value: &str| {
        system_event(
            "system/remote_device/3/command/5/160/16",
            json!({"session_id": session, "value": value}),
        )
    };
    for (session, reply, value, success) in
        [(1, "positive", "ON", true), (2, "negative", "OFF", false)]
    {
        slave.command(&format!("reply {reply}")).await;
        device.process_event(command(session, value)).await;
        let asdu = slave.asdu(3, "GENERAL_COMMAND").await;
        assert_eq!(asdu["ios"][0]["elements"][0]["value"], json!(value));
        let e = events
            .until("gateway/remote_device/3/command/5/160/16")
            .await;
        assert_eq!(
            e.payload,
            json!({"success": success, "session_id": session})
        );
    }
    // No answer: no event after command_timeout; the next command is served. The
    // timeout includes waiting for the previous command (as in hat), so the next one
    // is sent once the unanswered one has timed out: the wait is the behaviour tested.
    slave.command("reply none").await;
    device.process_event(command(3, "ON")).await;
    slave.asdu(3, "GENERAL_COMMAND").await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    slave.command("reply positive").await;
    device.process_event(command(4, "ON")).await;
    slave.asdu(3, "GENERAL_COMMAND").await;
    let e = events
        .until("gateway/remote_device/3/command/5/160/16")
        .await;
    assert_eq!(e.payload, json!({"success": true, "session_id": 4}));
    device.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_device_that_stops_answering_and_per_device_enable() {
    let mut slave = Slave::start("iec103-mute", &[1, 2]).await;
    let conf = config(&slave.port(), &[1, 2], None);
    let (device, mut events) = device(&slave, conf, &[(1, true)]).await;
    slave.connected(1).await;
    events
        .until_payload("gateway/remote_device/1/status", json!("CONNECTED"))
        .await;
    // Device 2 is disabled: never polled.
    device.process_event(enable_event(2, true)).await;
    slave.connected(2).await;
    events
        .until_payload("gateway/remote_device/2/status", json!("CONNECTED"))
        .await;
    // Device 2 stops answering: DISCONNECTED after the retries, then CONNECTING.
    slave.command("mute 2").await;
    events
        .until_payload("gateway/remote_device/2/status", json!("DISCONNECTED"))
        .await;
    events
        .until_payload("gateway/remote_device/2/status", json!("CONNECTING"))
        .await;
    // Device 1 still delivers.
    same_as_hat(&mut slave, &mut events, 1, MESSAGE).await;
    // Device 2 answers again.
    slave.command("unmute 2").await;
    slave.connected(2).await;
    events
        .until_payload("gateway/remote_device/2/status", json!("CONNECTED"))
        .await;
    same_as_hat(&mut slave, &mut events, 2, MEASURANDS_1).await;
    // Disabling device 1 ends its connection.
    device.process_event(enable_event(1, false)).await;
    events
        .until_payload("gateway/remote_device/1/status", json!("DISCONNECTED"))
        .await;
    device.close().await;
    let rest: Vec<_> = events
        .drain()
        .into_iter()
        .map(|e| (e.tail, e.payload))
        .collect();
    assert_eq!(
        rest.last(),
        Some(&("gateway/status".to_owned(), json!("DISCONNECTED")))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_asdu_type_is_skipped_and_a_malformed_asdu_ends_the_connection() {
    let mut slave = Slave::start("iec103-bad", &[1]).await;
    let conf = config(&slave.port(), &[1], None);
    let (device, mut events) = device(&slave, conf, &[(1, true)]).await;
    slave.connected(1).await;
    events
        .until_payload("gateway/remote_device/1/status", json!("CONNECTED"))
        .await;
    // Type 99 is not a 103 type: skipped, the connection goes on.
    slave.command("raw 1 6381010500000000").await;
    let hat = slave.command(&format!("send 1 [{MESSAGE}]")).await;
    // The very next event: no status change in between.
    events.next().await.assert_same(&hat[0]);
    // A time-tagged message cut short: hat's master ends the connection, so do we;
    // the link to the device is reset and the connection opened again.
    slave.command("raw 1 0181010aa010").await;
    events
        .until_payload("gateway/remote_device/1/status", json!("DISCONNECTED"))
        .await;
    events
        .until_payload("gateway/remote_device/1/status", json!("CONNECTED"))
        .await;
    same_as_hat(&mut slave, &mut events, 1, MEASURANDS_1).await;
    device.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_that_disappears_is_reported_and_opened_again() {
    // The device opens a symlink the test points at the current line.
    let dir = gateway_test_support::TempDir::new("iec103-port");
    let port = dir.path().join("tty");
    let slave = Slave::start("iec103-gone", &[1]).await;
    std::os::unix::fs::symlink(slave.pty.a(), &port).unwrap();
    let conf = config(&port.display().to_string(), &[1], None);
    let (device, mut events) = device(&slave, conf, &[(1, true)]).await;
    let mut slave = slave;
    slave.connected(1).await;
    events
        .until_payload("gateway/remote_device/1/status", json!("CONNECTED"))
        .await;
    // The line goes away (socat ends, both ptys vanish).
    drop(slave);
    events
        .until_payload("gateway/remote_device/1/status", json!("DISCONNECTED"))
        .await;
    events
        .until_payload("gateway/status", json!("DISCONNECTED"))
        .await;
    // Reopened after reconnect_delay: the port is not there, so it fails again.
    for status in ["CONNECTING", "DISCONNECTED"] {
        let e = events.next().await;
        assert_eq!(
            (e.tail.as_str(), e.payload),
            ("gateway/status", json!(status))
        );
    }
    // A new line at the same path: opened, the remote device connected again.
    let mut slave = Slave::start("iec103-back", &[1]).await;
    std::fs::remove_file(&port).unwrap();
    std::os::unix::fs::symlink(slave.pty.a(), &port).unwrap();
    events
        .until_payload("gateway/status", json!("CONNECTED"))
        .await;
    slave.connected(1).await;
    events
        .until_payload("gateway/remote_device/1/status", json!("CONNECTED"))
        .await;
    same_as_hat(&mut slave, &mut events, 1, MESSAGE).await;
    device.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_that_cannot_be_opened_is_retried() {
    let slave = Slave::start("iec103-noport", &[1]).await;
    let conf = config("/nonexistent/tty-iec103", &[1], None);
    let (device, mut events) = device(&slave, conf, &[(1, true)]).await;
    for status in ["CONNECTING", "DISCONNECTED", "CONNECTING", "DISCONNECTED"] {
        let e = events.next().await;
        assert_eq!(
            (e.tail.as_str(), e.payload),
            ("gateway/status", json!(status))
        );
    }
    device.close().await;
}
