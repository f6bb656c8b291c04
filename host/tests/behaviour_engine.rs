//! Acceptance behaviours 18-42 (engine, device proxy, failures) of
//! `docs/gateway-semantics.md` section 12, run through the gateway runner on the
//! embedded event server and observed by a `gateway/*` subscriber.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use gateway_host::spec::RestartPolicy;
use gateway_model::{event_type_from_str, Payload, RegisterEvent};
use serde_json::json;
use tokio::sync::Semaphore;

fn is_create(c: &Call, device: &str) -> bool {
    matches!(c, Call::Create { device: d, .. } if d == device)
}

#[tokio::test]
async fn b18_running_false_first_before_query_and_create() {
    let h = Harness::running("D").await;
    let creates = h.control.creates("D");
    assert_eq!(creates.len(), 1);
    let Call::Create {
        running_at_create, ..
    } = &creates[0]
    else {
        unreachable!()
    };
    assert_eq!(
        *running_at_create,
        Some(false),
        "run(false) registered before create"
    );
    h.stop().await;
}

#[tokio::test]
async fn b19_one_latest_query_with_every_enable_type_once() {
    let setup = Setup::new(&["D", "D2"]).preset(vec![en("D", json!(true)), en("D2", json!(true))]);
    // The test device's own probe queries would share the engine's connection.
    setup
        .factory
        .control
        .skip_probe
        .store(true, Ordering::SeqCst);
    let h = setup.start().await;
    // Both created => the start-up query result was applied by both proxies.
    h.control
        .wait_for("both created", |c| {
            count(c, |c| is_create(c, "D")) == 1 && count(c, |c| is_create(c, "D2")) == 1
        })
        .await;
    let queries: Vec<_> = h
        .server
        .query_log()
        .into_iter()
        .filter(|q| q.client_name == "gateway/G")
        .collect();
    assert_eq!(queries.len(), 1, "exactly one engine query: {queries:?}");
    let gateway_model::QueryParams::Latest(latest) = &queries[0].params else {
        panic!("not a latest query: {queries:?}");
    };
    let mut types = latest.event_types.clone().unwrap();
    types.sort();
    let mut expected = vec![ty("D", "system/enable"), ty("D2", "system/enable")];
    expected.sort();
    assert_eq!(types, expected);
    h.stop().await;
}

#[tokio::test]
async fn b20_enable_true_at_start_creates_once() {
    let h = Harness::running("D").await;
    let creates = h.control.creates("D");
    assert_eq!(creates.len(), 1);
    let Call::Create {
        conf, prefix: p, ..
    } = &creates[0]
    else {
        unreachable!()
    };
    assert_eq!(conf, &json!({"module": "test", "name": "D"}));
    assert_eq!(p, &prefix("D"));
    let running: Vec<_> = h
        .observer
        .events
        .iter()
        .filter(|e| e.event_type == ty("D", "gateway/running"))
        .collect();
    assert!(running[0].id < running[1].id);
    assert!(running[1].source_timestamp.is_some());
    h.stop().await;
}

/// Synchronisation for "nothing happens": enable the device afterwards; its create
/// shows which enable state it was created under.
async fn assert_created_only_after_enable(h: &mut Harness) {
    h.register(vec![en("D", json!(true))]).await;
    h.observer.wait_running("D", &[false, true]).await;
    let creates = h.control.creates("D");
    assert_eq!(creates.len(), 1, "one create: {creates:?}");
    let Call::Create {
        enable_at_create, ..
    } = &creates[0]
    else {
        unreachable!()
    };
    assert_eq!(enable_at_create, &Some(json!(true)));
}

#[tokio::test]
async fn b21_no_enable_or_false_at_start_does_not_create() {
    for preset in [vec![], vec![en("D", json!(false))]] {
        let mut h = Setup::new(&["D"]).preset(preset).start().await;
        h.observer.wait_running("D", &[false]).await;
        assert_created_only_after_enable(&mut h).await;
        h.stop().await;
    }
}

#[tokio::test]
async fn b22_non_true_enable_payloads_mean_disabled() {
    let binary = RegisterEvent {
        event_type: ty("D", "system/enable"),
        source_timestamp: None,
        payload: Some(Payload::Binary {
            type_name: "bool".into(),
            data: vec![1],
        }),
    };
    let no_payload = RegisterEvent {
        event_type: ty("D", "system/enable"),
        source_timestamp: None,
        payload: None,
    };
    let presets = vec![
        en("D", json!(1)),
        en("D", json!("true")),
        en("D", json!(null)),
        en("D", json!({})),
        binary,
        no_payload,
    ];
    for preset in presets {
        let mut h = Setup::new(&["D"]).preset(vec![preset]).start().await;
        h.observer.wait_running("D", &[false]).await;
        assert_created_only_after_enable(&mut h).await;
        // While running, payload 1 stops the device (verified upstream).
        h.register(vec![en("D", json!(1))]).await;
        h.observer.wait_running("D", &[false, true, false]).await;
        h.stop().await;
    }
}

#[tokio::test]
async fn b23_enable_true_while_running_does_nothing() {
    let mut h = Harness::running("D").await;
    h.register(vec![en("D", json!(true))]).await;
    h.register(vec![ev(ty("D", "system/abc"), json!(1))]).await;
    h.control.wait_processed("D", "abc", 1).await;
    h.observer.drain();
    assert_eq!(h.observer.running("D"), vec![false, true]);
    assert_eq!(h.control.creates("D").len(), 1);
    h.stop().await;
}

#[tokio::test]
async fn b24_enable_false_closes_then_registers_running_false() {
    let mut h = Harness::running("D").await;
    h.register(vec![en("D", json!(false))]).await;
    h.observer.wait_running("D", &[false, true, false]).await;
    assert_eq!(h.control.closes("D"), 1);
    // When close completed, the server still had run(true): run(false) came after it.
    assert_eq!(
        h.control.running_at_closes("D"),
        vec![Some(true)],
        "run(false) registered only after close completed"
    );
    h.stop().await;
}

#[tokio::test]
async fn b25_enable_false_while_disabled_does_nothing() {
    let mut h = Setup::new(&["D"])
        .preset(vec![en("D", json!(false))])
        .start()
        .await;
    h.observer.wait_running("D", &[false]).await;
    h.register(vec![en("D", json!(false))]).await;
    // Inputs are applied in order: if the second false did anything, it shows
    // before the effects of this true.
    assert_created_only_after_enable(&mut h).await;
    assert_eq!(h.control.closes("D"), 0);
    h.stop().await;
}

#[tokio::test]
async fn b26_false_then_true_creates_a_new_instance() {
    let mut h = Harness::running("D").await;
    h.register(vec![en("D", json!(false))]).await;
    h.observer.wait_running("D", &[false, true, false]).await;
    h.register(vec![en("D", json!(true))]).await;
    h.observer
        .wait_running("D", &[false, true, false, true])
        .await;
    let ids: Vec<u64> = h
        .control
        .creates("D")
        .iter()
        .map(|c| match c {
            Call::Create { instance, .. } => *instance,
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    h.stop().await;
}

#[tokio::test]
async fn b27_false_true_in_one_batch_restarts() {
    let mut h = Harness::running("D").await;
    h.register(vec![en("D", json!(false)), en("D", json!(true))])
        .await;
    h.observer
        .wait_running("D", &[false, true, false, true])
        .await;
    assert_eq!(h.control.creates("D").len(), 2);
    assert_eq!(h.control.closes("D"), 1);
    h.stop().await;
}

#[tokio::test]
async fn b29_enable_events_never_reach_process_event() {
    let h = Harness::running("D").await;
    h.register(vec![
        en("D", json!(true)),
        ev(ty("D", "system/abc"), json!(1)),
    ])
    .await;
    h.control.wait_processed("D", "abc", 1).await;
    assert_eq!(h.control.processed_names("D"), vec!["abc"]);
    h.stop().await;
}

#[tokio::test]
async fn b30_event_passed_unchanged() {
    let mut h = Harness::running("D").await;
    let mut abc = ev(ty("D", "system/abc"), json!(123));
    abc.source_timestamp = Some(gateway_model::Timestamp::new(1_700_000_000, 5));
    h.register(vec![abc]).await;
    h.control.wait_processed("D", "abc", 1).await;
    h.observer
        .wait_for("abc notified", |e| {
            e.iter().any(|e| e.event_type == ty("D", "system/abc"))
        })
        .await;
    let notified = h
        .observer
        .events
        .iter()
        .find(|e| e.event_type == ty("D", "system/abc"))
        .unwrap()
        .clone();
    let (_, delivered) = h.control.processed("D").remove(0);
    assert_eq!(delivered, notified);
    assert_eq!(delivered.payload.unwrap().json_value(), Some(json!(123)));
    h.stop().await;
}

#[tokio::test]
async fn b31_only_own_prefix_is_delivered() {
    let h = Harness::running("D").await;
    h.register(vec![
        ev(event_type_from_str("gateway/G/T/D2/system/abc"), json!(1)),
        ev(event_type_from_str("gateway/G2/T/D/system/abc"), json!(2)),
        ev(event_type_from_str("gateway/G/T2/D/system/abc"), json!(3)),
        ev(ty("D", "system/mine"), json!(4)),
    ])
    .await;
    h.control.wait_processed("D", "mine", 1).await;
    assert_eq!(h.control.processed_names("D"), vec!["mine"]);
    h.stop().await;
}

#[tokio::test]
async fn b32_events_while_disabled_or_failed_are_never_delivered() {
    let mut h = Setup::new(&["D"]).start().await;
    h.observer.wait_running("D", &[false]).await;
    // Disabled.
    h.register(vec![ev(ty("D", "system/while_disabled"), json!(1))])
        .await;
    h.register(vec![en("D", json!(true))]).await;
    h.observer.wait_running("D", &[false, true]).await;
    // Failed (process_event error), then events, then recovery.
    h.register(vec![ev(ty("D", "system/fail"), json!(1))]).await;
    h.observer.wait_running("D", &[false, true, false]).await;
    h.register(vec![ev(ty("D", "system/while_failed"), json!(1))])
        .await;
    h.register(vec![en("D", json!(false))]).await;
    h.register(vec![en("D", json!(true))]).await;
    h.observer
        .wait_running("D", &[false, true, false, true])
        .await;
    h.register(vec![ev(ty("D", "system/after"), json!(1))])
        .await;
    h.control.wait_processed("D", "after", 1).await;
    assert_eq!(h.control.processed_names("D"), vec!["fail", "after"]);
    h.stop().await;
}

#[tokio::test]
async fn b32_events_during_create_are_buffered_and_delivered_after_running() {
    let mut h = Setup::new(&["D"]).start().await;
    let gate = h.control.gate_create();
    h.observer.wait_running("D", &[false]).await;
    h.register(vec![
        en("D", json!(true)),
        ev(ty("D", "system/e1"), json!(1)),
    ])
    .await;
    h.control
        .wait_for("create", |c| count(c, |c| is_create(c, "D")) == 1)
        .await;
    h.register(vec![ev(ty("D", "system/e2"), json!(2))]).await;
    gate.add_permits(1);
    h.control
        .wait_for("e1, e2", |c| {
            count(c, |c| matches!(c, Call::Process { .. })) == 2
        })
        .await;
    assert_eq!(h.control.processed_names("D"), vec!["e1", "e2"]);
    h.observer.wait_running("D", &[false, true]).await;
    h.stop().await;
}

#[tokio::test]
async fn b32_buffered_events_are_dropped_when_create_fails() {
    let mut h = Setup::new(&["D"]).start().await;
    let gate = h.control.gate_create();
    h.control.fail_create.store(true, Ordering::SeqCst);
    h.observer.wait_running("D", &[false]).await;
    h.register(vec![
        en("D", json!(true)),
        ev(ty("D", "system/lost"), json!(1)),
    ])
    .await;
    h.control
        .wait_for("create", |c| count(c, |c| is_create(c, "D")) == 1)
        .await;
    gate.add_permits(1);
    h.control
        .wait_for("create failed", |c| {
            count(c, |c| matches!(c, Call::CreateFailed { .. })) == 1
        })
        .await;
    h.control.fail_create.store(false, Ordering::SeqCst);
    gate.add_permits(10);
    h.register(vec![en("D", json!(false)), en("D", json!(true))])
        .await;
    h.observer.wait_running("D", &[false, true]).await;
    h.register(vec![ev(ty("D", "system/later"), json!(1))])
        .await;
    h.control.wait_processed("D", "later", 1).await;
    assert_eq!(h.control.processed_names("D"), vec!["later"]);
    h.stop().await;
}

#[tokio::test]
async fn b33_nothing_after_disable_reaches_old_instance() {
    let mut h = Harness::running("D").await;
    let gate = h.control.gate_process();
    h.register(vec![ev(ty("D", "system/e1"), json!(1))]).await;
    h.control.wait_processed("D", "e1", 1).await;
    h.register(vec![
        ev(ty("D", "system/e2"), json!(2)),
        en("D", json!(false)),
        ev(ty("D", "system/e3"), json!(3)),
    ])
    .await;
    h.observer.wait_running("D", &[false, true, false]).await;
    gate.add_permits(100);
    h.register(vec![en("D", json!(true))]).await;
    h.observer
        .wait_running("D", &[false, true, false, true])
        .await;
    h.register(vec![ev(ty("D", "system/e4"), json!(4))]).await;
    h.control.wait_processed("D", "e4", 1).await;
    let by = by_instance(&h.control.processed("D"));
    assert_eq!(by[&1], vec!["e1"], "old instance got nothing after e1");
    assert_eq!(by[&2], vec!["e4"]);
    h.stop().await;
}

#[tokio::test]
async fn b34_slow_device_gets_all_1024_events_in_order_one_at_a_time() {
    let h = Harness::running("D").await;
    let gate = h.control.gate_process();
    let events: Vec<_> = (0..1024)
        .map(|i| ev(ty("D", &format!("system/e{i}")), json!(i)))
        .collect();
    h.register(events).await;
    h.control
        .wait_for("first in flight", |c| {
            count(c, |c| matches!(c, Call::Process { .. })) == 1
        })
        .await;
    gate.add_permits(2048);
    let calls = h
        .control
        .wait_for("1024 events", |c| {
            count(c, |c| matches!(c, Call::Process { .. })) == 1024
        })
        .await;
    let names: Vec<String> = calls
        .iter()
        .filter_map(|c| match c {
            Call::Process { event, .. } => event.event_type.last().cloned(),
            _ => None,
        })
        .collect();
    let expected: Vec<String> = (0..1024).map(|i| format!("e{i}")).collect();
    assert_eq!(names, expected);
    assert_eq!(h.control.max_concurrent.load(Ordering::SeqCst), 1);
    assert_eq!(
        h.observer.running("D"),
        vec![false, true],
        "device did not fail"
    );
    h.stop().await;
}

#[tokio::test]
async fn b34_full_queue_fails_only_that_device() {
    let mut setup =
        Setup::new(&["D", "D2"]).preset(vec![en("D", json!(true)), en("D2", json!(true))]);
    setup.devices[0].event_queue_size = 4;
    let mut h = setup.start().await;
    let gate = Arc::new(Semaphore::new(0));
    h.observer.wait_running("D", &[false, true]).await;
    h.observer.wait_running("D2", &[false, true]).await;
    *h.control.process_gate.lock().unwrap() = Some(gate.clone());
    let events: Vec<_> = (0..20)
        .map(|i| ev(ty("D", &format!("system/e{i}")), json!(i)))
        .collect();
    h.register(events).await;
    // D stopped consuming: it is failed, not waited for.
    h.observer.wait_running("D", &[false, true, false]).await;
    assert_eq!(h.control.closes("D"), 1);
    *h.control.process_gate.lock().unwrap() = None;
    gate.add_permits(100);
    h.register(vec![ev(ty("D2", "system/ok"), json!(1))]).await;
    h.control.wait_processed("D2", "ok", 1).await;
    assert_eq!(h.observer.running("D2"), vec![false, true]);
    h.stop().await;
}

#[tokio::test]
async fn b35_two_devices_of_one_plugin_are_independent() {
    let mut h = Setup::new(&["D", "D2"]).start().await;
    h.observer.wait_running("D", &[false]).await;
    h.observer.wait_running("D2", &[false]).await;
    h.register(vec![en("D", json!(true))]).await;
    h.observer.wait_running("D", &[false, true]).await;
    h.register(vec![en("D2", json!(true))]).await;
    h.observer.wait_running("D2", &[false, true]).await;
    let prefixes: Vec<_> = h
        .control
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::Create { prefix, .. } => Some(prefix),
            _ => None,
        })
        .collect();
    assert_eq!(prefixes, vec![prefix("D"), prefix("D2")]);
    h.register(vec![en("D", json!(false))]).await;
    h.observer.wait_running("D", &[false, true, false]).await;
    h.register(vec![ev(ty("D2", "system/still"), json!(1))])
        .await;
    h.control.wait_processed("D2", "still", 1).await;
    assert_eq!(h.observer.running("D2"), vec![false, true]);
    h.stop().await;
}

#[tokio::test]
async fn b36_engine_destruction_closes_all_and_registers_running_false() {
    let mut h = Setup::new(&["D", "D2"])
        .preset(vec![en("D", json!(true)), en("D2", json!(true))])
        .start()
        .await;
    h.observer.wait_running("D", &[false, true]).await;
    h.observer.wait_running("D2", &[false, true]).await;
    let control = h.control.clone();
    let observer = h.stop().await;
    assert_eq!(observer.running("D"), vec![false, true, false]);
    assert_eq!(observer.running("D2"), vec![false, true, false]);
    assert_eq!(control.closes("D"), 1);
    assert_eq!(control.closes("D2"), 1);
    // Each close completed while the server still had run(true).
    assert_eq!(control.running_at_closes("D"), vec![Some(true)]);
    assert_eq!(control.running_at_closes("D2"), vec![Some(true)]);
}

#[tokio::test]
async fn b37_create_failure_is_isolated_and_needs_false_then_true() {
    let mut h = Setup::new(&["D", "D2"])
        .preset(vec![en("D2", json!(true))])
        .start()
        .await;
    h.observer.wait_running("D2", &[false, true]).await;
    h.control.fail_create.store(true, Ordering::SeqCst);
    h.register(vec![en("D", json!(true))]).await;
    h.control
        .wait_for("create failed", |c| {
            count(c, |c| matches!(c, Call::CreateFailed { .. })) == 1
        })
        .await;
    h.control.fail_create.store(false, Ordering::SeqCst);
    h.register(vec![en("D", json!(true))]).await;
    // D2 still works; the second true above was applied before this event's batch.
    h.register(vec![ev(ty("D2", "system/x"), json!(1))]).await;
    h.control.wait_processed("D2", "x", 1).await;
    h.register(vec![en("D", json!(false)), en("D", json!(true))])
        .await;
    h.observer.wait_running("D", &[false, true]).await;
    // Sync: inputs are applied in order, so once the recovered instance processed
    // this event, everything registered before it has had its effect.
    h.register(vec![ev(ty("D", "system/sync"), json!(1))]).await;
    h.control.wait_processed("D", "sync", 1).await;
    h.observer.drain();
    assert_eq!(
        h.observer.running("D"),
        vec![false, true],
        "no run(true) for the failed create or for enable=true alone"
    );
    assert_eq!(
        h.control.creates("D").len(),
        2,
        "no retry on enable=true alone"
    );
    assert_eq!(h.control.closes("D"), 0);
    h.assert_running();
    h.stop().await;
}

#[tokio::test]
async fn b38_self_closed_device_is_not_recreated_until_false_then_true() {
    let mut h = Harness::running("D").await;
    h.register(vec![ev(ty("D", "system/selfclose"), json!(1))])
        .await;
    h.observer.wait_running("D", &[false, true, false]).await;
    h.register(vec![en("D", json!(true))]).await;
    h.register(vec![en("D", json!(false)), en("D", json!(true))])
        .await;
    h.observer
        .wait_running("D", &[false, true, false, true])
        .await;
    // Sync through the new instance, then check nothing else happened: no
    // automatic re-creation, nothing on enable=true alone.
    h.register(vec![ev(ty("D", "system/sync"), json!(1))]).await;
    h.control.wait_processed("D", "sync", 1).await;
    h.observer.drain();
    assert_eq!(h.observer.running("D"), vec![false, true, false, true]);
    assert_eq!(h.control.creates("D").len(), 2);
    let by = by_instance(&h.control.processed("D"));
    assert_eq!(by[&2], vec!["sync"], "the second instance is the live one");
    h.stop().await;
}

#[tokio::test]
async fn b39_process_event_error_or_panic_fails_the_device() {
    for name in ["fail", "panic"] {
        let mut h = Setup::new(&["D"])
            .preset(vec![en("D", json!(true))])
            .start()
            .await;
        h.observer.wait_running("D", &[false, true]).await;
        h.register(vec![
            ev(ty("D", &format!("system/{name}")), json!(1)),
            ev(ty("D", "system/after"), json!(1)),
        ])
        .await;
        h.observer.wait_running("D", &[false, true, false]).await;
        assert_eq!(h.control.closes("D"), 1);
        h.register(vec![en("D", json!(true))]).await;
        h.register(vec![en("D", json!(false)), en("D", json!(true))])
            .await;
        h.observer
            .wait_running("D", &[false, true, false, true])
            .await;
        h.register(vec![ev(ty("D", "system/recovered"), json!(1))])
            .await;
        h.control.wait_processed("D", "recovered", 1).await;
        assert_eq!(h.control.processed_names("D"), vec![name, "recovered"]);
        h.observer.drain();
        assert_eq!(h.observer.running("D"), vec![false, true, false, true]);
        assert_eq!(
            h.control.creates("D").len(),
            2,
            "no re-create on enable=true alone"
        );
        h.assert_running();
        h.stop().await;
    }
}

#[tokio::test]
async fn b40_panics_in_every_entry_point_leave_the_gateway_running() {
    let mut h = Setup::new(&["D", "D2"])
        .preset(vec![en("D2", json!(true))])
        .start()
        .await;
    h.observer.wait_running("D2", &[false, true]).await;
    // create panics
    h.control.panic_create.store(true, Ordering::SeqCst);
    h.register(vec![en("D", json!(true))]).await;
    h.control
        .wait_for("create", |c| count(c, |c| is_create(c, "D")) == 1)
        .await;
    h.control.panic_create.store(false, Ordering::SeqCst);
    // recovery, then process_event panics, then close panics
    h.register(vec![en("D", json!(false)), en("D", json!(true))])
        .await;
    h.observer.wait_running("D", &[false, true]).await;
    h.control.panic_close.store(true, Ordering::SeqCst);
    h.register(vec![ev(ty("D", "system/panic"), json!(1))])
        .await;
    h.observer.wait_running("D", &[false, true, false]).await;
    h.register(vec![ev(ty("D2", "system/alive"), json!(1))])
        .await;
    h.control.wait_processed("D2", "alive", 1).await;
    h.assert_running();
    h.control.panic_close.store(false, Ordering::SeqCst);
    h.stop().await;
}

#[tokio::test]
async fn b41_disable_during_create_never_registers_running_true() {
    let setup = Setup::new(&["D", "D2"]).preset(vec![en("D2", json!(true))]);
    let gate = Arc::new(Semaphore::new(0));
    *setup.factory.control.create_gate.lock().unwrap() = Some(gate.clone());
    let mut h = setup.start().await;
    h.control
        .wait_for("D2 create", |c| count(c, |c| is_create(c, "D2")) == 1)
        .await;
    gate.add_permits(1);
    h.observer.wait_running("D2", &[false, true]).await;
    h.observer.wait_running("D", &[false]).await;
    h.register(vec![en("D", json!(true))]).await;
    h.control
        .wait_for("D create", |c| count(c, |c| is_create(c, "D")) == 1)
        .await;
    // One batch is routed at once: once D2 has its event, D has its disable.
    h.register(vec![
        en("D", json!(false)),
        ev(ty("D2", "system/sync"), json!(1)),
    ])
    .await;
    h.control.wait_processed("D2", "sync", 1).await;
    gate.add_permits(1);
    h.control
        .wait_for("D closed", |c| {
            count(
                c,
                |c| matches!(c, Call::Closed { device, .. } if device == "D"),
            ) == 1
        })
        .await;
    // Sync: a later enable cycle shows no run(true) was registered for the first attempt.
    gate.add_permits(10);
    h.register(vec![en("D", json!(true))]).await;
    h.observer.wait_running("D", &[false, true]).await;
    assert_eq!(h.control.creates("D").len(), 2);
    h.stop().await;
}

#[tokio::test]
async fn restart_on_failure_backs_off_and_stops_at_crash_loop_limit() {
    let mut setup = Setup::new(&["D"]).preset(vec![en("D", json!(true))]);
    setup.devices[0].restart = RestartPolicy::OnFailure {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(40),
        max_restarts: 2,
        window: Duration::from_secs(60),
    };
    setup
        .factory
        .control
        .fail_create
        .store(true, Ordering::SeqCst);
    let h = setup.start().await;
    // First attempt + 2 restarts, then the crash-loop limit.
    h.control
        .wait_for("3 creates", |c| count(c, |c| is_create(c, "D")) == 3)
        .await;
    let more = tokio::time::timeout(
        Duration::from_millis(300),
        h.control
            .wait_for("a 4th create", |c| count(c, |c| is_create(c, "D")) >= 4),
    );
    // `wait_for` panics on its own 10 s timeout; this bound is shorter.
    assert!(
        more.await.is_err(),
        "no restart beyond the crash-loop limit"
    );
    h.control.fail_create.store(false, Ordering::SeqCst);
    h.register(vec![en("D", json!(false)), en("D", json!(true))])
        .await;
    let mut h = h;
    h.observer.wait_running("D", &[false, true]).await;
    h.stop().await;
}

#[tokio::test]
async fn restart_on_failure_recreates_a_failed_device() {
    let mut setup = Setup::new(&["D"]).preset(vec![en("D", json!(true))]);
    setup.devices[0].restart = RestartPolicy::OnFailure {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(10),
        max_restarts: 5,
        window: Duration::from_secs(60),
    };
    let mut h = setup.start().await;
    h.observer.wait_running("D", &[false, true]).await;
    h.register(vec![ev(ty("D", "system/fail"), json!(1))]).await;
    h.observer
        .wait_running("D", &[false, true, false, true])
        .await;
    assert_eq!(h.control.creates("D").len(), 2);
    h.stop().await;
}

#[tokio::test]
async fn devices_use_the_connection_to_register() {
    let mut h = Harness::running("D").await;
    h.register(vec![ev(ty("D", "system/register"), json!(1))])
        .await;
    h.observer
        .wait_for("echo", |e| {
            e.iter().any(|e| e.event_type == ty("D", "gateway/echo"))
        })
        .await;
    h.stop().await;
}
