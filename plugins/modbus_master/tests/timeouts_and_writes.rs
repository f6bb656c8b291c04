//! Acceptance behaviours b17..b33 of `docs/modbus-master.md` section 14: timeouts and
//! retries (silent TCP listener, muted pymodbus slave, a scripted late slave), remote
//! device enable, writes and malformed events.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use gateway_model::Payload;
use modbus_master::MasterDevice;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SHORT: Duration = Duration::from_millis(700);

/// Remote device 1 polling holding register 10 as `x`.
fn one_point(port: u16) -> Value {
    one_holding(port, "x", 10)
}

/// Writes `value` to remote device 1's point `name` and expects a successful response.
async fn write_and_expect(
    device: &MasterDevice,
    events: &mut Events,
    name: &str,
    request_id: Value,
    value: Value,
) {
    device
        .process_event(write(name, request_id.clone(), value))
        .await;
    events.expect_write(name, request_id, "SUCCESS").await;
}

/// Remote device 1 reconnects and reads `x` again by interrogation.
async fn expect_reconnect_and_interrogate(events: &mut Events) {
    events
        .expect_remote_status(&["CONNECTING", "CONNECTED"])
        .await;
    events
        .expect(
            "gateway/remote_device/1/read/x",
            json!({"result": "SUCCESS", "value": 0x1234, "cause": "INTERROGATE"}),
        )
        .await;
}

#[tokio::test]
async fn b17_silent_slave_disconnects_the_remote_device_and_retries_after_poll_delay() {
    let listener = SilentListener::start().await;
    let mut c = one_point(listener.port);
    c["connection"]["request_timeout"] = json!(0.2);
    c["remote_devices"][0]["timeout_poll_delay"] = json!(0.4);
    let (device, mut events) = start(&c, &[1]);
    events.until("gateway/remote_device/1/status").await; // CONNECTING
    let (t, v, disconnected) = events.next_at().await;
    assert_eq!(
        (t.as_str(), v),
        ("gateway/remote_device/1/status", json!("DISCONNECTED"))
    );
    let (t, v, connecting) = events.next_at().await;
    assert_eq!(
        (t.as_str(), v),
        ("gateway/remote_device/1/status", json!("CONNECTING"))
    );
    assert!(connecting - disconnected >= Duration::from_millis(390));
    events.until("gateway/remote_device/1/status").await; // DISCONNECTED again
    device.close().await;
    assert!(events.recorder.log().iter().all(|r| match r {
        Record::Event(t, _, _) => !t.contains("/read/"),
        Record::Query(_) => true,
    }));
}

#[tokio::test]
async fn b18_after_timeout_recovery_values_are_interrogated_again() {
    let mut slave = Slave::tcp().await;
    let mut c = one_point(slave.port);
    c["connection"]["request_timeout"] = json!(0.2);
    let (device, mut events) = start(&c, &[1]);
    let first = events.until("gateway/remote_device/1/read/x").await;
    assert_eq!(first["cause"], "INTERROGATE");
    slave.command("mute").await;
    assert_eq!(
        events.next().await,
        (
            "gateway/remote_device/1/status".into(),
            json!("DISCONNECTED")
        )
    );
    slave.command("unmute").await;
    expect_reconnect_and_interrogate(&mut events).await;
    device.close().await;
}

#[tokio::test]
async fn b19_retry_count_is_immediate_plus_one_times_delayed_plus_one() {
    let mut listener = SilentListener::start().await;
    let mut c = one_point(listener.port);
    c["connection"]["request_timeout"] = json!(0.15);
    c["connection"]["request_retry_immediate_count"] = json!(1);
    c["connection"]["request_retry_delayed_count"] = json!(2);
    c["connection"]["request_retry_delay"] = json!(0.3);
    c["remote_devices"][0]["timeout_poll_delay"] = json!(30);
    let (device, mut events) = start(&c, &[1]);
    events.expect_status(&["CONNECTING", "CONNECTED"]).await;
    events
        .expect_remote_status(&["CONNECTING", "DISCONNECTED"])
        .await;
    let frames = listener.frames();
    assert_eq!(frames.len(), 6, "attempts before the timeout result");
    // Every attempt is a fresh ADU: transaction ids 1..=6.
    let ids: Vec<u16> = frames
        .iter()
        .map(|(_, f)| u16::from_be_bytes([f[0], f[1]]))
        .collect();
    assert_eq!(ids, [1, 2, 3, 4, 5, 6]);
    // Rounds of two back-to-back attempts, separated by timeout + retry delay.
    let gap = |a: usize, b: usize| frames[b].0 - frames[a].0;
    assert!(gap(0, 1) < Duration::from_millis(300));
    assert!(gap(1, 2) >= Duration::from_millis(420), "{:?}", gap(1, 2));
    assert!(gap(3, 4) >= Duration::from_millis(420), "{:?}", gap(3, 4));
    device.close().await;
}

#[tokio::test]
async fn b20_request_delay_spaces_consecutive_requests() {
    let mut slave = Slave::tcp().await;
    let mut c = conf(
        slave.port,
        json!([remote(
            1,
            json!([
                point("a", "HOLDING_REGISTER", json!(0.05), 10, 0, 16),
                point("b", "COIL", json!(0.05), 32, 0, 1),
            ])
        )]),
    );
    c["connection"]["request_delay"] = json!(0.25);
    let (device, _events) = start(&c, &[1]);
    let mut times: Vec<Instant> = Vec::new();
    while times.len() < 5 {
        times.push(slave.line_at(|l| l.starts_with("REQ")).await.0);
    }
    for pair in times.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(230),
            "{:?}",
            pair[1] - pair[0]
        );
    }
    device.close().await;
}

#[tokio::test]
async fn b21_disable_stops_polling_and_enable_starts_a_fresh_reader() {
    let mut slave = Slave::tcp().await;
    let (device, mut events) = start(&one_point(slave.port), &[1]);
    events.until("gateway/remote_device/1/read/x").await;
    device
        .process_event(system_event("system/remote_device/1/enable", json!(false)))
        .await;
    events.expect_remote_status(&["DISABLED"]).await;
    slave.drain();
    assert_eq!(events.quiet_for(SHORT).await, vec![]);
    slave.assert_no_requests("polled while disabled").await;
    device
        .process_event(system_event("system/remote_device/1/enable", json!(true)))
        .await;
    expect_reconnect_and_interrogate(&mut events).await;
    device.close().await;
}

#[tokio::test]
async fn b22_enable_of_an_unconfigured_id_does_nothing() {
    let mut slave = Slave::tcp().await;
    let (device, mut events) = start(&one_point(slave.port), &[]);
    events.until("gateway/remote_device/1/status").await;
    device
        .process_event(system_event("system/remote_device/7/enable", json!(true)))
        .await;
    assert_eq!(events.quiet_for(SHORT).await, vec![]);
    slave.assert_no_requests("polled an unconfigured id").await;
    device.close().await;
}

#[tokio::test]
async fn b23_enable_while_disconnected_starts_the_reader_once_connected() {
    let port = closed_port();
    let mut c = one_point(port);
    c["connection"]["connect_delay"] = json!(0.2);
    let (device, mut events) = start(&c, &[]);
    events.expect_status(&["CONNECTING", "DISCONNECTED"]).await;
    device
        .process_event(system_event("system/remote_device/1/enable", json!(true)))
        .await;
    let _slave = Slave::start(&["--port", &port.to_string()]).await;
    events.until("gateway/status").await; // CONNECTED, after some failed attempts
    let mut statuses = Vec::new();
    loop {
        let (t, v) = events.next().await;
        if t == "gateway/status" {
            continue;
        }
        statuses.push((t.clone(), v));
        if t.ends_with("read/x") {
            break;
        }
    }
    assert_eq!(
        statuses,
        vec![
            ("gateway/remote_device/1/status".into(), json!("CONNECTING")),
            ("gateway/remote_device/1/status".into(), json!("CONNECTED")),
            (
                "gateway/remote_device/1/read/x".into(),
                json!({"result": "SUCCESS", "value": 0x1234, "cause": "INTERROGATE"})
            ),
        ]
    );
    device.close().await;
}

#[tokio::test]
async fn b24_b25_write_vectors_reach_slave_memory_while_disabled() {
    let mut slave = Slave::tcp().await;
    // (data type, start, offset, count, value, memory address, expected memory)
    let holding: Vec<(u16, u32, u32, u64, Vec<u16>)> = vec![
        (40, 0, 16, 123, vec![123]),
        (42, 0, 32, 0x1234_5678, vec![0x1234, 0x5678]),
        (45, 0, 2, 3, vec![0xC000]),
        (47, 2, 2, 3, vec![0x3000]),
        (50, 8, 16, 0xFFFF, vec![0x00FF, 0xFF00]),
        (53, 8, 32, 0xFFFF_FFFF, vec![0x00FF, 0xFFFF, 0xFF00]),
        (11, 4, 8, 0xAB, vec![0x5AB8]),
    ];
    let coils: Vec<(u16, u32, u32, u64, Vec<u8>)> = vec![
        (100, 0, 1, 1, vec![1]),
        (32, 0, 1, 0, vec![0]),
        (110, 2, 2, 3, vec![0, 0, 1, 1]),
    ];
    let mut data = Vec::new();
    for (i, (start, offset, count, _, _)) in holding.iter().enumerate() {
        data.push(point(
            &format!("h{i}"),
            "HOLDING_REGISTER",
            json!(null),
            *start,
            *offset,
            *count,
        ));
    }
    for (i, (start, offset, count, _, _)) in coils.iter().enumerate() {
        data.push(point(
            &format!("c{i}"),
            "COIL",
            json!(null),
            *start,
            *offset,
            *count,
        ));
    }
    let (device, mut events) = start(&conf(slave.port, json!([remote(1, json!(data))])), &[]);
    events.expect_status(&["CONNECTING", "CONNECTED"]).await;
    events.expect_remote_status(&["DISABLED"]).await;
    for (i, (start, _, _, value, memory)) in holding.iter().enumerate() {
        write_and_expect(
            &device,
            &mut events,
            &format!("h{i}"),
            json!(i),
            json!(value),
        )
        .await;
        assert_eq!(
            &slave.holding(*start, memory.len() as u16).await,
            memory,
            "h{i}"
        );
    }
    for (i, (start, _, _, value, memory)) in coils.iter().enumerate() {
        write_and_expect(
            &device,
            &mut events,
            &format!("c{i}"),
            json!(i),
            json!(value),
        )
        .await;
        assert_eq!(
            &slave.coils(*start, memory.len() as u16).await,
            memory,
            "c{i}"
        );
    }
    device.close().await;
}

#[tokio::test]
async fn b26_rejected_write_reports_the_exception_and_oversize_values_are_refused() {
    let mut slave = Slave::tcp().await;
    let data = json!([
        point("outside", "HOLDING_REGISTER", json!(null), 500, 0, 16),
        point("narrow", "HOLDING_REGISTER", json!(null), 60, 0, 4),
    ]);
    let (device, mut events) = start(&conf(slave.port, json!([remote(1, data)])), &[]);
    events.until("gateway/remote_device/1/status").await;
    device
        .process_event(write("outside", json!("r1"), json!(1)))
        .await;
    events
        .expect_write("outside", json!("r1"), "INVALID_DATA_ADDRESS")
        .await;
    slave.drain();
    for (id, value) in [
        ("big", json!(16)),
        ("negative", json!(-1)),
        ("float", json!(1.5)),
    ] {
        device
            .process_event(write("narrow", json!(id), value))
            .await;
        events
            .expect_write("narrow", json!(id), "INVALID_DATA_VALUE")
            .await;
    }
    // Refused values never reach the wire and leave memory untouched.
    let lines = slave.command("get 60 1").await;
    assert!(lines.iter().all(|l| req(l).is_none()), "{lines:?}");
    assert_eq!(slave.holding(60, 1).await, [0]);
    device.close().await;
}

#[tokio::test]
async fn b27_write_to_a_silent_slave_times_out_after_all_attempts() {
    let mut listener = SilentListener::start().await;
    let mut c = conf(
        listener.port,
        json!([remote(
            1,
            json!([point("x", "HOLDING_REGISTER", json!(null), 0, 0, 16)])
        )]),
    );
    c["connection"]["request_timeout"] = json!(0.1);
    c["connection"]["request_retry_immediate_count"] = json!(1);
    c["connection"]["request_retry_delayed_count"] = json!(1);
    let (device, mut events) = start(&c, &[]);
    events.until("gateway/remote_device/1/status").await;
    device.process_event(write("x", json!(9), json!(5))).await;
    events.expect_write("x", json!(9), "TIMEOUT").await;
    let frames = listener.frames();
    assert_eq!(frames.len(), 4);
    assert!(frames.iter().all(|(_, f)| f[7] == 6), "FC06 writes");
    device.close().await;
}

#[tokio::test]
async fn b28_writes_to_unknown_or_read_only_points_get_no_response() {
    let slave = Slave::tcp().await;
    let data = json!([
        point("di", "DISCRETE_INPUT", json!(null), 0, 0, 1),
        point("ir", "INPUT_REGISTER", json!(null), 0, 0, 16),
        point("q", "QUEUE", json!(null), 0, 0, 16),
        point("ok", "HOLDING_REGISTER", json!(null), 70, 0, 16),
    ]);
    let (device, mut events) = start(&conf(slave.port, json!([remote(1, data)])), &[]);
    events.until("gateway/remote_device/1/status").await;
    for name in ["di", "ir", "q", "missing"] {
        device
            .process_event(write(name, json!(name), json!(1)))
            .await;
    }
    device
        .process_event(system_event(
            "system/remote_device/2/write/ok",
            json!({"request_id": "other", "value": 1}),
        ))
        .await;
    device
        .process_event(write("ok", json!("last"), json!(1)))
        .await;
    // The only response is the one for the valid write, which was sent last.
    events.expect_write("ok", json!("last"), "SUCCESS").await;
    assert_eq!(events.quiet_for(Duration::from_millis(300)).await, vec![]);
    device.close().await;
}

#[tokio::test]
async fn b29_write_while_disconnected_is_dropped() {
    let mut c = one_point(closed_port());
    c["connection"]["connect_delay"] = json!(0.2);
    let (device, mut events) = start(&c, &[]);
    events.expect_status(&["CONNECTING", "DISCONNECTED"]).await;
    device.process_event(write("x", json!(1), json!(1))).await;
    let seen = events.quiet_for(SHORT).await;
    assert!(seen.iter().all(|(t, _)| t == "gateway/status"), "{seen:?}");
    device.close().await;
}

#[tokio::test]
async fn b30_request_id_is_echoed_whatever_its_type() {
    let slave = Slave::tcp().await;
    let data = json!([point("x", "HOLDING_REGISTER", json!(null), 70, 0, 16)]);
    let (device, mut events) = start(&conf(slave.port, json!([remote(1, data)])), &[]);
    events.until("gateway/remote_device/1/status").await;
    for id in [
        json!(123),
        json!("abc"),
        json!(null),
        json!({"nested": [1, 2]}),
        json!(1.5),
    ] {
        device.process_event(write("x", id.clone(), json!(1))).await;
        let payload = events.until("gateway/remote_device/1/write/x").await;
        assert_eq!(payload, json!({"request_id": id, "result": "SUCCESS"}));
    }
    device.close().await;
}

#[tokio::test]
async fn b31_malformed_events_are_ignored_and_the_device_keeps_working() {
    let slave = Slave::tcp().await;
    let data = json!([point("x", "HOLDING_REGISTER", json!(null), 70, 0, 16)]);
    let (device, mut events) = start(&conf(slave.port, json!([remote(1, data)])), &[]);
    events.until("gateway/remote_device/1/status").await;
    let binary = Some(Payload::Binary {
        type_name: "x".into(),
        data: vec![1],
    });
    for event in [
        system_event("system/remote_device/one/enable", json!(true)),
        system_event("system/remote_device/1/write/x", json!({"request_id": 1})),
        system_event("system/remote_device/1/write/x", json!([1, 2])),
        system_event("system/remote_device/1/bogus", json!(true)),
        system_event("system/remote_device", json!(true)),
        system_event_raw("system/remote_device/1/enable", None),
        system_event_raw("system/remote_device/1/write/x", binary),
    ] {
        device.process_event(event).await;
    }
    device
        .process_event(write("x", json!("valid"), json!(2)))
        .await;
    events.expect_write("x", json!("valid"), "SUCCESS").await;
    device.close().await;
}

/// A Modbus TCP slave that answers its first request late (after `late`), then every
/// request at once; every response to FC03 carries `first_value` for the first
/// request and `value` afterwards.
async fn late_slave(late: Duration, first_value: u16, value: u16) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut first = true;
        loop {
            let mut frame = [0u8; 12];
            if socket.read_exact(&mut frame).await.is_err() {
                return;
            }
            let reply = if first { first_value } else { value };
            if first {
                tokio::time::sleep(late).await;
                first = false;
            }
            let mut response = vec![frame[0], frame[1], 0, 0, 0, 5, frame[6], 3, 2];
            response.extend_from_slice(&reply.to_be_bytes());
            socket.write_all(&response).await.unwrap();
        }
    });
    port
}

#[tokio::test]
async fn b32_late_response_to_a_timed_out_attempt_is_discarded() {
    // The retry (transaction 2) is on the wire when the late answer to transaction 1
    // arrives: it must be skipped, and the answer to transaction 2 taken.
    let port = late_slave(Duration::from_millis(450), 111, 222).await;
    let mut c = one_point(port);
    c["connection"]["request_timeout"] = json!(0.3);
    c["connection"]["request_retry_immediate_count"] = json!(1);
    let (device, mut events) = start(&c, &[1]);
    let first = events.until("gateway/remote_device/1/read/x").await;
    assert_eq!(
        first,
        json!({"result": "SUCCESS", "value": 222, "cause": "INTERROGATE"})
    );
    assert_eq!(
        events.quiet_for(SHORT).await,
        vec![],
        "later polls must agree (no 111)"
    );
    device.close().await;

    // No retry: the request times out; the late answer arrives while idle and is
    // dropped; the next poll pairs correctly.
    let port = late_slave(Duration::from_millis(300), 111, 222).await;
    let mut c = one_point(port);
    c["connection"]["request_timeout"] = json!(0.1);
    c["remote_devices"][0]["timeout_poll_delay"] = json!(0.4);
    let (device, mut events) = start(&c, &[1]);
    events.expect_status(&["CONNECTING", "CONNECTED"]).await;
    events
        .expect_remote_status(&["CONNECTING", "DISCONNECTED", "CONNECTING", "CONNECTED"])
        .await;
    let read = events.until("gateway/remote_device/1/read/x").await;
    assert_eq!(
        read,
        json!({"result": "SUCCESS", "value": 222, "cause": "INTERROGATE"})
    );
    // Still the same TCP connection: no reconnect happened.
    let statuses: Vec<_> = events
        .recorder
        .log()
        .into_iter()
        .filter_map(|r| match r {
            Record::Event(t, v, _) if t == "gateway/status" => Some(v),
            _ => None,
        })
        .collect();
    assert_eq!(statuses, [json!("CONNECTING"), json!("CONNECTED")]);
    device.close().await;
}

#[tokio::test]
async fn b33_events_carry_the_prefix_and_no_source_timestamp() {
    // The recorder asserts both for every event of every test; this run covers each
    // event kind once.
    let slave = Slave::tcp().await;
    let data = json!([
        point("x", "HOLDING_REGISTER", json!(0.2), 10, 0, 16),
        point("bad", "HOLDING_REGISTER", json!(0.2), 900, 0, 16),
    ]);
    let (device, mut events) = start(&conf(slave.port, json!([remote(1, data)])), &[1]);
    events.until("gateway/remote_device/1/read/bad").await;
    device
        .process_event(write("x", json!(1), json!(0x1234)))
        .await;
    events.until("gateway/remote_device/1/write/x").await;
    device.close().await;
    let kinds: std::collections::BTreeSet<String> = events
        .recorder
        .log()
        .into_iter()
        .filter_map(|r| match r {
            Record::Event(t, _, _) => Some(t.split('/').take(4).collect::<Vec<_>>().join("/")),
            Record::Query(_) => None,
        })
        .collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        [
            "gateway/remote_device/1/read",
            "gateway/remote_device/1/status",
            "gateway/remote_device/1/write",
            "gateway/status"
        ]
    );
}
