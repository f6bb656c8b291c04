//! Reconnect backoff (`docs/modbus-master.md` section 6): a slave whose connections
//! end soon after they open (it closes after each request, or answers bytes that are
//! not Modbus) is reconnected to at `connect_delay`, doubling up to
//! `connect_delay_max`, not in a hot loop; its remote devices say `DISCONNECTED`, not
//! `DISABLED`. Driven through the core device against raw TCP slaves on loopback.
//!
//! Each test prints what it measured (`--nocapture`): connections accepted in the
//! window and the CPU the test process spent in it (meaningful with
//! `--test-threads 1`).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use gateway_test_support::procstat::tree_cpu_seconds;
use serde_json::{json, Value};

/// Counting window of the hot-loop tests.
const WINDOW: Duration = Duration::from_secs(2);

/// Remote device 1 (enabled at start) polls one holding register every 0.2 s, so every
/// connection carries a request soon after it opens.
fn polling_conf(port: u16, connect_delay: f64) -> Value {
    let mut c = one_holding(port, "x", 10);
    c["connection"]["connect_delay"] = json!(connect_delay);
    c
}

/// Remote device 1's status values in the order they were registered.
fn remote_statuses(events: &Events) -> Vec<String> {
    events
        .recorder
        .log()
        .into_iter()
        .filter_map(|record| match record {
            Record::Event(t, Value::String(s), _) if t == "gateway/remote_device/1/status" => {
                Some(s)
            }
            _ => None,
        })
        .collect()
}

/// Starts a device on `slave`, counts the connections it makes within [`WINDOW`] after
/// the first, prints them with the CPU spent, and returns them.
async fn connections_in_window(
    slave: &mut MisbehavingSlave,
    conf: &Value,
    what: &str,
) -> (modbus_master::MasterDevice, Events, Vec<Instant>) {
    let (device, events) = start(conf, &[1]);
    let first = slave.next_accept().await;
    let cpu_before = tree_cpu_seconds(std::process::id());
    let mut accepts = vec![first];
    accepts.extend(slave.accepts_until(first + WINDOW).await);
    let cpu = tree_cpu_seconds(std::process::id()) - cpu_before;
    eprintln!(
        "{what}: {} connections in {WINDOW:?}, test process CPU {:.1}% of a core",
        accepts.len(),
        100.0 * cpu / WINDOW.as_secs_f64()
    );
    (device, events, accepts)
}

/// The bound and the statuses both hot-loop tests assert.
async fn assert_backed_off(misbehaviour: Misbehaviour) {
    let mut slave = MisbehavingSlave::start(misbehaviour).await;
    let conf = polling_conf(slave.port, 0.1);
    let (device, events, accepts) =
        connections_in_window(&mut slave, &conf, &format!("{misbehaviour:?}")).await;
    // Backoff 0 (the first loss), 0.1, 0.2, 0.4, 0.8: six connections in 2 s; a hot
    // loop makes hundreds.
    assert!(
        (3..=10).contains(&accepts.len()),
        "{} connections in {WINDOW:?}",
        accepts.len()
    );
    let statuses = remote_statuses(&events);
    assert!(
        statuses.iter().any(|s| s == "DISCONNECTED"),
        "remote device statuses {statuses:?}"
    );
    assert!(
        !statuses.iter().any(|s| s == "DISABLED"),
        "remote device 1 is enabled, yet {statuses:?}"
    );
    device.close().await;
    // Closing ends every remote device DISABLED, online or not.
    assert_eq!(
        remote_statuses(&events).last().map(String::as_str),
        Some("DISABLED")
    );
}

#[tokio::test]
async fn slave_closing_after_each_request_is_reconnected_with_backoff() {
    assert_backed_off(Misbehaviour::CloseAfterRequest).await;
}

#[tokio::test]
async fn slave_answering_garbage_is_reconnected_with_backoff() {
    assert_backed_off(Misbehaviour::Garbage).await;
}

#[tokio::test]
async fn backoff_stops_doubling_at_connect_delay_max() {
    let mut slave = MisbehavingSlave::start(Misbehaviour::CloseAfterRequest).await;
    let mut conf = polling_conf(slave.port, 0.05);
    conf["connection"]["connect_delay_max"] = json!(0.2);
    let (device, _events) = start(&conf, &[1]);
    let first = slave.next_accept().await;
    let mut accepts = vec![first];
    accepts.extend(slave.accepts_until(first + Duration::from_secs(3)).await);
    device.close().await;
    // Capped: 0, 0.05, 0.1, 0.2, 0.2, ... about 16 connections in 3 s. Doubling without
    // the cap (0.4, 0.8, 1.6) would make at most 7.
    assert!(accepts.len() >= 8, "{} connections in 3 s", accepts.len());
    for pair in accepts[5..].windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(190),
            "reconnected after {gap:?}"
        );
    }
}

#[tokio::test]
async fn a_connection_that_outlived_the_cap_is_reconnected_at_once() {
    // Stable connections (open at least connect_delay_max = 1 s) that drop are
    // reconnected at once every time (hat's behaviour), not backed off.
    let hold = Duration::from_millis(1200);
    let mut slave = MisbehavingSlave::start(Misbehaviour::HoldThenClose(hold)).await;
    let mut conf = conf(slave.port, json!([]));
    conf["connection"]["connect_delay"] = json!(1);
    conf["connection"]["connect_delay_max"] = json!(1);
    let (device, _events) = start(&conf, &[]);
    let mut accepts = vec![slave.next_accept().await];
    for _ in 0..3 {
        accepts.push(slave.next_accept().await);
    }
    device.close().await;
    for pair in accepts.windows(2) {
        let gap = pair[1] - pair[0];
        // hold + a reconnect at once; a backed-off one would add at least 1 s.
        assert!(
            gap < hold + Duration::from_millis(700),
            "reconnected after {gap:?}"
        );
    }
}

/// Starts a device on a garbage slave with `connect_delay` 5 and waits until the second
/// connection is lost: the device then waits 5 s before reconnecting.
async fn offline_after_two_losses() -> (MisbehavingSlave, modbus_master::MasterDevice, Events) {
    let mut slave = MisbehavingSlave::start(Misbehaviour::Garbage).await;
    let (device, mut events) = start(&polling_conf(slave.port, 5.0), &[1]);
    for _ in 0..2 {
        events.expect_status(&["CONNECTING", "CONNECTED"]).await;
        events
            .expect_remote_status(&["CONNECTING", "DISCONNECTED"])
            .await;
        events.expect_status(&["DISCONNECTED"]).await;
    }
    slave.next_accept().await;
    slave.next_accept().await;
    (slave, device, events)
}

#[tokio::test]
async fn remote_device_disabled_while_disconnected_reports_disabled() {
    let (_slave, device, mut events) = offline_after_two_losses().await;
    device
        .process_event(system_event("system/remote_device/1/enable", json!(false)))
        .await;
    events.expect_remote_status(&["DISABLED"]).await;
    device.close().await;
    assert_eq!(events.quiet_for(Duration::from_millis(200)).await, vec![]);
}

#[tokio::test]
async fn device_closed_while_disconnected_disables_its_remote_devices() {
    let (_slave, device, mut events) = offline_after_two_losses().await;
    device.close().await;
    events.expect_remote_status(&["DISABLED"]).await;
    assert_eq!(events.quiet_for(Duration::from_millis(200)).await, vec![]);
}
