//! Acceptance behaviours of `docs/modbus-master.md` section 14 (b01..b16), driven
//! through the core device against a real pymodbus slave on loopback.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

const SHORT: Duration = Duration::from_millis(700);

#[tokio::test]
async fn b01_enable_query_comes_before_the_first_status() {
    let slave = Slave::tcp().await;
    let (device, mut events) = start(&conf(slave.port, json!([])), &[]);
    events.expect_status(&["CONNECTING"]).await;
    let log = events.recorder.log();
    match &log[0] {
        Record::Query(types) => {
            assert_eq!(
                types,
                &["gateway/gw/modbus_master/dev/system/remote_device/?/enable"]
            )
        }
        other => panic!("first record is {other:?}"),
    }
    device.close().await;
}

#[tokio::test]
async fn b02_reachable_slave_without_remote_devices_connects_and_stays_quiet() {
    let slave = Slave::tcp().await;
    let (device, mut events) = start(&conf(slave.port, json!([])), &[]);
    events.expect_status(&["CONNECTING", "CONNECTED"]).await;
    assert_eq!(events.quiet_for(SHORT).await, vec![]);
    device.close().await;
    events.expect_status(&["DISCONNECTED"]).await;
}

#[tokio::test]
async fn b03_dropped_connection_reconnects_at_once_over_a_new_connection() {
    let mut slave = Slave::tcp().await;
    // connect_delay is 30 s: a reconnect that waited for it would miss the wait.
    let (device, mut events) = start(&conf(slave.port, json!([])), &[]);
    events.expect_status(&["CONNECTING", "CONNECTED"]).await;
    slave.line(|l| l == "CONNECT").await;
    slave.command("drop").await;
    events
        .expect_status(&["DISCONNECTED", "CONNECTING", "CONNECTED"])
        .await;
    slave.line(|l| l == "CONNECT").await;
    device.close().await;
}

#[tokio::test]
async fn b04_unreachable_port_retries_every_connect_delay() {
    let mut c = conf(closed_port(), json!([]));
    c["connection"]["connect_delay"] = json!(0.3);
    let (device, mut events) = start(&c, &[]);
    let mut times = Vec::new();
    for status in [
        "CONNECTING",
        "DISCONNECTED",
        "CONNECTING",
        "DISCONNECTED",
        "CONNECTING",
    ] {
        let (t, v, at) = events.next_at().await;
        assert_eq!((t.as_str(), v), ("gateway/status", json!(status)));
        times.push(at);
    }
    for pair in [(1, 2), (3, 4)] {
        let gap = times[pair.1] - times[pair.0];
        assert!(
            gap >= Duration::from_millis(290),
            "reconnected after {gap:?}"
        );
    }
    device.close().await;
}

#[tokio::test]
async fn b05_close_disables_readers_then_disconnects_and_closes_the_socket() {
    let mut slave = Slave::tcp().await;
    let (device, mut events) = start(&one_holding(slave.port, "counter", 20), &[1]);
    events.until("gateway/remote_device/1/read/counter").await;
    device.close().await;
    let rest: Vec<_> = events
        .quiet_for(Duration::from_millis(200))
        .await
        .into_iter()
        .filter(|(t, _)| !t.contains("/read/"))
        .collect();
    assert_eq!(
        rest,
        vec![
            ("gateway/remote_device/1/status".into(), json!("DISABLED")),
            ("gateway/status".into(), json!("DISCONNECTED")),
        ]
    );
    slave.line(|l| l == "DISCONNECT").await;
}

#[tokio::test]
async fn b06_configured_but_not_enabled_remote_device_is_disabled_and_not_read() {
    let mut slave = Slave::tcp().await;
    let (device, mut events) = start(&one_holding(slave.port, "counter", 20), &[]);
    events.expect_status(&["CONNECTING", "CONNECTED"]).await;
    events.expect_remote_status(&["DISABLED"]).await;
    assert_eq!(events.quiet_for(SHORT).await, vec![]);
    slave.assert_no_requests("requests sent").await;
    device.close().await;
}

#[tokio::test]
async fn b07_remote_device_without_pollable_points_connects_directly() {
    let slave = Slave::tcp().await;
    let c = conf(
        slave.port,
        json!([remote(
            1,
            json!([point("w", "HOLDING_REGISTER", json!(null), 0, 0, 16)])
        )]),
    );
    let (device, mut events) = start(&c, &[]);
    events.until("gateway/remote_device/1/status").await;
    let enable = |on: bool| system_event("system/remote_device/1/enable", json!(on));
    device.process_event(enable(true)).await;
    events.expect_remote_status(&["CONNECTED"]).await;
    device.process_event(enable(false)).await;
    events.expect_remote_status(&["DISABLED"]).await;
    device.process_event(enable(true)).await;
    events.expect_remote_status(&["CONNECTED"]).await;
    device.close().await;
}

#[tokio::test]
async fn b08_enabled_at_start_reads_and_reports_interrogate() {
    let slave = Slave::tcp().await;
    let c = conf(
        slave.port,
        json!([remote(
            1,
            json!([point("data", "HOLDING_REGISTER", json!(1), 10, 8, 32)])
        )]),
    );
    let (device, mut events) = start(&c, &[1]);
    events.expect_status(&["CONNECTING", "CONNECTED"]).await;
    events
        .expect_remote_status(&["CONNECTING", "CONNECTED"])
        .await;
    events
        .expect(
            "gateway/remote_device/1/read/data",
            json!({"result": "SUCCESS", "value": 0x3456_789A_u32, "cause": "INTERROGATE"}),
        )
        .await;
    device.close().await;
}

#[tokio::test]
async fn b09_read_vectors_decode_with_the_configured_request() {
    // (data type, start, offset, count, expected value, function code, quantity)
    let cases = [
        ("COIL", 31, 0, 1, 0u64, 1u8, 1u16),
        ("COIL", 32, 0, 1, 1, 1, 1),
        ("DISCRETE_INPUT", 32, 0, 2, 3, 2, 2),
        ("HOLDING_REGISTER", 10, 0, 32, 0x1234_5678, 3, 2),
        ("HOLDING_REGISTER", 2, 13, 3, 7, 3, 1),
        ("INPUT_REGISTER", 11, 8, 2, 1, 4, 1),
        ("HOLDING_REGISTER", 10, 8, 32, 0x3456_789A, 3, 3),
        ("COIL", 32, 0, 3, 7, 1, 3),
    ];
    for (data_type, address, offset, count, value, fc, quantity) in cases {
        let mut slave = Slave::tcp().await;
        let c = conf(
            slave.port,
            json!([remote(
                5,
                json!([point("data", data_type, json!(10), address, offset, count)])
            )]),
        );
        let (device, mut events) = start(&c, &[5]);
        let payload = events.until("gateway/remote_device/5/read/data").await;
        assert_eq!(
            payload,
            json!({"result": "SUCCESS", "value": value, "cause": "INTERROGATE"}),
            "{data_type} {address} {offset} {count}"
        );
        let request = slave.line(|l| l.starts_with("REQ")).await;
        assert_eq!(
            req(&request),
            Some((5, fc, address, quantity)),
            "{data_type}"
        );
        device.close().await;
    }
}

#[tokio::test]
async fn b10_unchanged_values_are_silent_and_changes_report_change() {
    let slave = Slave::tcp().await;
    let c = conf(
        slave.port,
        json!([remote(
            1,
            json!([
                point("counter", "HOLDING_REGISTER", json!(0.2), 20, 0, 16),
                point("static", "HOLDING_REGISTER", json!(0.1), 10, 0, 16),
            ])
        )]),
    );
    let (device, mut events) = start(&c, &[1]);
    let mut counter = Vec::new();
    let mut statics = 0;
    while counter.len() < 4 {
        let (t, v) = events.next().await;
        if t.ends_with("read/counter") {
            counter.push(v);
        } else if t.ends_with("read/static") {
            statics += 1;
        }
    }
    assert_eq!(statics, 1, "static point reported more than once");
    assert_eq!(counter[0]["cause"], "INTERROGATE");
    for pair in counter.windows(2) {
        assert_eq!(pair[1]["cause"], "CHANGE");
        assert_ne!(pair[0]["value"], pair[1]["value"]);
    }
    device.close().await;
}

#[tokio::test]
async fn b11_and_b12_exceptions_every_poll_then_interrogate_on_recovery() {
    let mut slave = Slave::tcp().await;
    let c = conf(
        slave.port,
        json!([remote(
            1,
            json!([
                point("outside", "HOLDING_REGISTER", json!(0.1), 500, 0, 16),
                point("flaky", "INPUT_REGISTER", json!(0.1), 10, 0, 16),
                point("fine", "COIL", json!(0.1), 32, 0, 1),
            ])
        )]),
    );
    slave.command("fail 10").await;
    let (device, mut events) = start(&c, &[1]);
    let (mut outside, mut flaky_failed, mut fine) = (0, 0, 0);
    while outside < 3 || flaky_failed < 2 || fine < 1 {
        let (t, v) = events.next().await;
        if t.ends_with("read/outside") {
            assert_eq!(v, json!({"result": "INVALID_DATA_ADDRESS"}));
            outside += 1;
        } else if t.ends_with("read/flaky") {
            assert_eq!(v, json!({"result": "INVALID_DATA_ADDRESS"}));
            flaky_failed += 1;
        } else if t.ends_with("read/fine") {
            assert_eq!(v["value"], 1);
            fine += 1;
        }
    }
    slave.command("heal 10").await;
    let recovered = events.until("gateway/remote_device/1/read/flaky").await;
    assert_eq!(
        recovered,
        json!({"result": "SUCCESS", "value": 0x1234, "cause": "INTERROGATE"})
    );
    device.close().await;
}

#[tokio::test]
async fn b13_one_request_per_adjacent_group() {
    let mut slave = Slave::tcp().await;
    let c = conf(
        slave.port,
        json!([remote(
            1,
            json!([
                point("a", "HOLDING_REGISTER", json!(30), 10, 0, 16),
                point("b", "HOLDING_REGISTER", json!(30), 11, 0, 32),
                point("c", "HOLDING_REGISTER", json!(30), 11, 8, 8),
                point("gap", "HOLDING_REGISTER", json!(30), 14, 0, 16),
                point("other_interval", "HOLDING_REGISTER", json!(20), 15, 0, 16),
                point("other_type", "INPUT_REGISTER", json!(30), 13, 0, 16),
            ])
        )]),
    );
    let (device, mut events) = start(&c, &[1]);
    let mut requests = Vec::new();
    while requests.len() < 4 {
        let line = slave.line(|l| l.starts_with("REQ")).await;
        requests.push(req(&line).unwrap());
    }
    assert_eq!(
        requests,
        vec![(1, 3, 10, 3), (1, 3, 14, 1), (1, 3, 15, 1), (1, 4, 13, 1)]
    );
    let mut names = Vec::new();
    while names.len() < 6 {
        let (t, _) = events.next().await;
        if let Some(name) = t.strip_prefix("gateway/remote_device/1/read/") {
            names.push(name.to_owned());
        }
    }
    // Inside a group points are ordered by (start, quantity): c (11, 1) before b (11, 2).
    assert_eq!(
        names,
        ["a", "c", "b", "gap", "other_interval", "other_type"]
    );
    slave.assert_no_requests("requests sent").await;
    device.close().await;
}

#[tokio::test]
async fn b14_groups_are_capped_and_fifo_points_read_one_each() {
    let mut slave = Slave::start(&["--size", "300"]).await;
    let mut data: Vec<_> = (0..130u16)
        .map(|i| point(&format!("r{i}"), "HOLDING_REGISTER", json!(30), i, 0, 16))
        .collect();
    data.extend((0..2001u16).map(|i| point(&format!("c{i}"), "COIL", json!(30), i, 0, 1)));
    data.push(point("q1", "QUEUE", json!(30), 7, 0, 64));
    data.push(point("q2", "QUEUE", json!(30), 8, 48, 16));
    let c = conf(slave.port, json!([remote(1, json!(data))]));
    let (device, mut events) = start(&c, &[1]);
    let mut requests = Vec::new();
    while requests.len() < 6 {
        requests.push(req(&slave.line(|l| l.starts_with("REQ")).await).unwrap());
    }
    assert_eq!(
        requests,
        vec![
            (1, 3, 0, 125),
            (1, 3, 125, 5),
            (1, 1, 0, 2000),
            (1, 1, 2000, 1),
            (1, 24, 7, 0),
            (1, 24, 8, 0)
        ]
    );
    // pymodbus answers every FIFO read with [0, 1, 2, 3] in the standard encoding.
    let q1 = events.until("gateway/remote_device/1/read/q1").await;
    assert_eq!(q1["value"], json!(0x0000_0001_0002_0003_u64));
    let q2 = events.until("gateway/remote_device/1/read/q2").await;
    assert_eq!(q2["value"], json!(3));
    device.close().await;
}

#[tokio::test]
async fn b15_points_without_interval_are_never_read() {
    let mut slave = Slave::tcp().await;
    let c = conf(
        slave.port,
        json!([remote(
            1,
            json!([
                point("never", "HOLDING_REGISTER", json!(null), 10, 0, 16),
                point("polled", "COIL", json!(0.1), 32, 0, 1),
            ])
        )]),
    );
    let (device, mut events) = start(&c, &[1]);
    for _ in 0..5 {
        let line = slave.line(|l| l.starts_with("REQ")).await;
        assert_eq!(req(&line), Some((1, 1, 32, 1)));
    }
    let seen = events.quiet_for(Duration::from_millis(100)).await;
    assert!(seen.iter().all(|(t, _)| !t.ends_with("read/never")));
    device.close().await;
}

#[tokio::test]
async fn b16_poll_period_follows_the_interval() {
    let slave = Slave::tcp().await;
    let c = conf(
        slave.port,
        json!([remote(
            1,
            json!([point("counter", "HOLDING_REGISTER", json!(0.5), 20, 0, 16)])
        )]),
    );
    let (device, mut events) = start(&c, &[1]);
    let mut times = Vec::new();
    while times.len() < 4 {
        let (t, v, at) = events.next_at().await;
        if t.ends_with("read/counter") {
            times.push((at, v["cause"].clone()));
        }
    }
    for pair in times.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert_eq!(pair[1].1, "CHANGE");
        assert!(
            gap >= Duration::from_millis(450) && gap <= Duration::from_millis(800),
            "CHANGE events {gap:?} apart"
        );
    }
    device.close().await;
}
