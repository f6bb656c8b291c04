//! Reload in remote mode against the REAL hat-event-server: a device a reload adds
//! runs at once on the live connection, and the new device set is what the engine of
//! the next connection runs (after the server is killed and started again). Needs
//! the test venv (scripts/test-env.sh).
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::hat::{HatServer, TcpObserver};
use common::*;
use gateway_host::runner;
use gateway_host::spec::EventServerSpec;
use serde_json::json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn a_reloaded_device_set_survives_a_reconnect() {
    let mut hat = HatServer::start().await;
    let mut observer = TcpObserver::connect(hat.addr).await;
    observer
        .register(vec![en("D", json!(true)), en("E", json!(true))])
        .await;
    let factory = TestFactory::new();
    let mut spec = gateway(vec![device(&factory, "D")]);
    spec.event_server = EventServerSpec::Remote {
        host: "127.0.0.1".into(),
        port: hat.addr.port(),
        token: None,
    };
    let (specs, receiver) = watch::channel(Arc::new(spec.clone()));
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(runner::run_reloadable(receiver, shutdown.clone()));
    observer.wait_running("D", &[false, true]).await;

    // The reload: E is added on the live connection, D is kept.
    let mut reloaded = spec.clone();
    reloaded.devices.push(device(&factory, "E"));
    specs.send(Arc::new(reloaded)).unwrap();
    observer.wait_running("E", &[false, true]).await;
    assert_eq!(factory.control.creates("D").len(), 1, "D was kept");

    // The connection is lost and made again: the new engine runs D and E.
    hat.kill();
    hat.restart().await;
    // The enables again (the killed server may not have flushed them): only the
    // devices of the engine's spec act on them.
    let observer = TcpObserver::connect(hat.addr).await;
    observer
        .register(vec![en("D", json!(true)), en("E", json!(true))])
        .await;
    factory
        .control
        .wait_for("D and E created on the new connection", |calls| {
            let creates = |name: &str| {
                calls
                    .iter()
                    .filter(|c| matches!(c, Call::Create { device, .. } if device == name))
                    .count()
            };
            creates("D") == 2 && creates("E") == 2
        })
        .await;
    shutdown.cancel();
    tokio::time::timeout(WAIT, task)
        .await
        .expect("runner stops")
        .unwrap()
        .unwrap();
}
