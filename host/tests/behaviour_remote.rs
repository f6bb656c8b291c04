//! Acceptance behaviours against the REAL hat-event-server 0.9.44 (LMDB backend) in
//! remote mode: 9, 16, 18, 20-26, 30, 36, and reconnect after the server is killed
//! and started again on the same port. Needs the test venv (scripts/test-env.sh).
//! (12-14 need server status changes a standalone hat-event-server does not make;
//! they are covered on the embedded server in `behaviour_connection.rs`.)
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::hat::{HatServer, TcpObserver};
use common::*;
use gateway_eventer::client::{Client, ClientConfig, Notification};
use gateway_host::runner::{self, RunError};
use gateway_host::spec::EventServerSpec;
use gateway_model::{Order, QueryParams, QueryTimeseriesParams};
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

struct Remote {
    hat: HatServer,
    observer: TcpObserver,
    control: Arc<Control>,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), RunError>>,
}

/// Starts a real server, presets `preset`, connects an observer, starts the gateway.
async fn start(devices: &[&str], preset: Vec<gateway_model::RegisterEvent>) -> Remote {
    let hat = HatServer::start().await;
    let observer = TcpObserver::connect(hat.addr).await;
    if !preset.is_empty() {
        observer.register(preset).await;
    }
    let factory = TestFactory::new();
    let mut spec = gateway(devices.iter().map(|d| device(&factory, d)).collect());
    spec.event_server = EventServerSpec::Remote {
        host: "127.0.0.1".into(),
        port: hat.addr.port(),
        token: None,
    };
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(runner::run(spec, shutdown.clone()));
    Remote {
        hat,
        observer,
        control: factory.control.clone(),
        shutdown,
        task,
    }
}

impl Remote {
    /// Stops the gateway; the real server keeps running until the returned handle drops.
    async fn stop(mut self) -> (TcpObserver, HatServer) {
        self.shutdown.cancel();
        let result = tokio::time::timeout(WAIT, &mut self.task)
            .await
            .expect("runner stops")
            .unwrap();
        assert!(result.is_ok());
        (self.observer, self.hat)
    }
}

fn connection_event_type() -> Vec<String> {
    ["event", "1", "eventer", "gateway/G"]
        .map(String::from)
        .to_vec()
}

#[tokio::test]
async fn real_b09_connects_as_gateway_g_with_its_subscription() {
    let mut r = start(&["D"], vec![]).await;
    r.observer
        .wait_for("CONNECTED of gateway/G", |e| {
            e.iter().any(|e| {
                e.event_type == connection_event_type()
                    && e.payload.as_ref().and_then(|p| p.json_value()) == Some(json!("CONNECTED"))
            })
        })
        .await;
    // The subscription delivers gateway/G/T/D/system/* (an enable takes effect).
    r.observer.wait_running("D", &[false]).await;
    r.observer.register(vec![en("D", json!(true))]).await;
    r.observer.wait_running("D", &[false, true]).await;
    r.stop().await;
}

#[tokio::test]
async fn real_b18_b20_enabled_at_start() {
    let mut r = start(&["D"], vec![en("D", json!(true))]).await;
    r.observer.wait_running("D", &[false, true]).await;
    let creates = r.control.creates("D");
    assert_eq!(creates.len(), 1);
    let Call::Create {
        prefix: p,
        running_at_create,
        conf,
        ..
    } = &creates[0]
    else {
        unreachable!()
    };
    assert_eq!(p, &prefix("D"));
    assert_eq!(conf["name"], json!("D"));
    // Seen in the real server's latest: run(false) was stored before create.
    assert_eq!(*running_at_create, Some(false));
    r.stop().await;
}

#[tokio::test]
async fn real_b21_b25_disabled_at_start_then_enabled() {
    let mut r = start(&["D"], vec![en("D", json!(false))]).await;
    r.observer.wait_running("D", &[false]).await;
    r.observer.register(vec![en("D", json!(false))]).await;
    r.observer.register(vec![en("D", json!(true))]).await;
    r.observer.wait_running("D", &[false, true]).await;
    let creates = r.control.creates("D");
    assert_eq!(creates.len(), 1);
    let Call::Create {
        enable_at_create, ..
    } = &creates[0]
    else {
        unreachable!()
    };
    assert_eq!(enable_at_create, &Some(json!(true)));
    r.stop().await;
}

#[tokio::test]
async fn real_b22_payload_1_means_disabled() {
    let mut r = start(&["D"], vec![en("D", json!(true))]).await;
    r.observer.wait_running("D", &[false, true]).await;
    r.observer.register(vec![en("D", json!(1))]).await;
    r.observer.wait_running("D", &[false, true, false]).await;
    r.stop().await;
}

#[tokio::test]
async fn real_b23_b24_b26_enable_cycle() {
    let mut r = start(&["D"], vec![en("D", json!(true))]).await;
    r.observer.wait_running("D", &[false, true]).await;
    // 23: true again while running -> nothing (sync on a processed event).
    r.observer
        .register(vec![
            en("D", json!(true)),
            ev(ty("D", "system/abc"), json!(1)),
        ])
        .await;
    r.control
        .wait_for("abc", |c| {
            c.iter().any(|c| matches!(c, Call::Process { .. }))
        })
        .await;
    // 24: false -> closed, then run(false).
    r.observer.register(vec![en("D", json!(false))]).await;
    r.observer.wait_running("D", &[false, true, false]).await;
    assert_eq!(r.control.closes("D"), 1);
    // 26: true -> a new instance.
    r.observer.register(vec![en("D", json!(true))]).await;
    r.observer
        .wait_running("D", &[false, true, false, true])
        .await;
    assert_eq!(r.control.creates("D").len(), 2);
    r.stop().await;
}

#[tokio::test]
async fn real_b30_event_passed_unchanged() {
    let mut r = start(&["D"], vec![en("D", json!(true))]).await;
    r.observer.wait_running("D", &[false, true]).await;
    let mut abc = ev(ty("D", "system/abc"), json!(123));
    abc.source_timestamp = Some(gateway_model::Timestamp::new(1_700_000_000, 250_000));
    r.observer.register(vec![abc]).await;
    r.observer
        .wait_for("abc", |e| {
            e.iter().any(|e| e.event_type == ty("D", "system/abc"))
        })
        .await;
    r.control
        .wait_for("abc", |c| {
            c.iter().any(|c| matches!(c, Call::Process { .. }))
        })
        .await;
    let notified = r
        .observer
        .events
        .iter()
        .find(|e| e.event_type == ty("D", "system/abc"))
        .unwrap()
        .clone();
    let (_, delivered) = r.control.processed("D").remove(0);
    assert_eq!(delivered, notified);
    r.stop().await;
}

#[tokio::test]
async fn real_b16_b36_shutdown_stores_running_false_before_disconnect() {
    let mut r = start(
        &["D", "D2"],
        vec![en("D", json!(true)), en("D2", json!(true))],
    )
    .await;
    r.observer.wait_running("D", &[false, true]).await;
    r.observer.wait_running("D2", &[false, true]).await;
    let control = r.control.clone();
    let (mut observer, _hat) = r.stop().await;
    observer
        .wait_for("DISCONNECTED", |e| {
            e.iter().any(|e| {
                e.event_type == connection_event_type()
                    && e.payload.as_ref().and_then(|p| p.json_value())
                        == Some(json!("DISCONNECTED"))
            })
        })
        .await;
    assert_eq!(
        running_values(&observer.events, "D"),
        vec![false, true, false]
    );
    assert_eq!(
        running_values(&observer.events, "D2"),
        vec![false, true, false]
    );
    let disconnected = observer
        .events
        .iter()
        .find(|e| {
            e.event_type == connection_event_type()
                && e.payload.as_ref().and_then(|p| p.json_value()) == Some(json!("DISCONNECTED"))
        })
        .unwrap()
        .id;
    let last_running = observer
        .events
        .iter()
        .filter(|e| e.event_type.last().map(String::as_str) == Some("running"))
        .map(|e| e.id)
        .max()
        .unwrap();
    assert!(last_running < disconnected);
    assert_eq!(control.closes("D"), 1);
    assert_eq!(control.closes("D2"), 1);
}

#[tokio::test]
async fn real_server_killed_and_restarted_gateway_reconnects() {
    let mut r = start(&["D"], vec![en("D", json!(true))]).await;
    r.observer.wait_running("D", &[false, true]).await;
    // A persisted client is notified only after the LMDB flush: once it sees a
    // marker registered now, everything before it (en(true), running) is on disk.
    let mut config = ClientConfig::new("test/persisted");
    config.subscriptions = vec![gateway_model::event_type_from_str("test/*")];
    config.persisted = true;
    let (persisted, mut flushed) = Client::connect(r.hat.addr, config).await.unwrap();
    persisted
        .register(vec![ev(
            gateway_model::event_type_from_str("test/marker"),
            json!(1),
        )])
        .await
        .unwrap();
    loop {
        match tokio::time::timeout(WAIT, flushed.recv()).await.unwrap() {
            Some(Notification::Events(_)) => break,
            Some(Notification::Status(_)) => {}
            None => panic!("persisted client closed"),
        }
    }
    r.hat.kill();
    // The connection is lost: the device is closed (its run(false) cannot be stored).
    r.control
        .wait_for("device closed", |c| {
            c.iter().any(|c| matches!(c, Call::Closed { .. }))
        })
        .await;
    assert!(!r.task.is_finished(), "the gateway exited");
    r.hat.restart().await;
    // New connection, new engine: run(false), enable query (LMDB kept en(true)),
    // a new instance, run(true).
    r.control
        .wait_for("second create", |c| {
            c.iter()
                .filter(|c| matches!(c, Call::Create { .. }))
                .count()
                == 2
        })
        .await;
    let creates = r.control.creates("D");
    let Call::Create {
        running_at_create, ..
    } = &creates[1]
    else {
        unreachable!()
    };
    assert_eq!(
        *running_at_create,
        Some(false),
        "run(false) again before create"
    );
    let observer = TcpObserver::connect(r.hat.addr).await;
    let stored = async {
        loop {
            let result = observer
                .client
                .query(QueryParams::Timeseries(QueryTimeseriesParams {
                    event_types: Some(vec![ty("D", "gateway/running")]),
                    order: Order::Ascending,
                    ..Default::default()
                }))
                .await
                .unwrap();
            let values = running_values(&result.events, "D");
            if values.len() >= 4 {
                return values;
            }
            // Polling the real server's storage (flushed every 0.2 s), bounded below.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    let values = tokio::time::timeout(WAIT, stored)
        .await
        .expect("stored running events");
    // The run(false) at the loss could not be stored: the server was dead.
    assert_eq!(values, vec![false, true, false, true]);
    assert!(!r.task.is_finished(), "the gateway exited");
    r.observer = observer;
    let (mut observer, _hat) = r.stop().await;
    observer
        .wait_for("final run(false)", |e| {
            running_values(e, "D").last() == Some(&false)
        })
        .await;
}
