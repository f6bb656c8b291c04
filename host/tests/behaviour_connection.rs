//! Acceptance behaviours 9, 12-16, 28, 36 and 42 (connection lifecycle) of
//! `docs/gateway-semantics.md` section 12 on the embedded event server, plus
//! the reconnect-instead-of-exit that replaces 10/11, `enable_devices`, and the
//! embedded server's TCP side driven by our eventer client.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::hat::TcpObserver;
use common::*;
use futures::future::BoxFuture;
use gateway_host::device::{ClientError, DeviceClient};
use gateway_host::embedded::{EmbeddedConfig, EmbeddedServer, LocalConnection};
use gateway_host::engine::{self, Engine, ProxyState};
use gateway_host::runner;
use gateway_host::spec::EventServerSpec;
use gateway_model::{event_type_from_str, Event, QueryParams, QueryResult, RegisterEvent, Status};
use serde_json::json;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// How long b13 watches for an engine that must not start while in standby (an
/// engine registers its run(false) within milliseconds of connecting).
const STANDBY_QUIET: Duration = Duration::from_millis(300);

fn lenient() -> EmbeddedConfig {
    EmbeddedConfig {
        refuse_registers_unless_operational: false,
        ..EmbeddedConfig::default()
    }
}

/// `event/1/eventer/<client name>`: the client name is one segment.
/// Device D enabled at start, `require_operational`, a lenient server in `status`.
fn require_operational(status: Status) -> Setup {
    let mut setup = Setup::new(&["D"]).preset(vec![en("D", json!(true))]);
    setup.status = status;
    setup.config = lenient();
    setup.require_operational = true;
    setup
}

fn connection_event_type() -> Vec<String> {
    ["event", "1", "eventer", "gateway/G"]
        .map(String::from)
        .to_vec()
}

fn engine_queries(server: &EmbeddedServer) -> usize {
    let enable = ["system".to_owned(), "enable".to_owned()];
    server
        .query_log()
        .iter()
        .filter(|q| q.client_name == "gateway/G")
        .filter(|q| {
            matches!(&q.params, QueryParams::Latest(l)
                if l.event_types.as_ref().is_some_and(|t| t.iter().all(|t| t.ends_with(&enable))))
        })
        .count()
}

#[tokio::test]
async fn b09_client_name_and_exact_subscription() {
    let mut h = Setup::new(&["D"]).start().await;
    h.observer.wait_running("D", &[false]).await;
    let connection = h
        .server
        .connections()
        .into_iter()
        .find(|c| c.client_name == "gateway/G")
        .expect("gateway connection");
    assert_eq!(
        connection.subscriptions,
        vec![event_type_from_str("gateway/G/?/?/system/*")]
    );
    h.stop().await;
}

#[tokio::test]
async fn b12_engine_starts_in_standby_without_require_operational() {
    let mut setup = Setup::new(&["D"]).preset(vec![en("D", json!(true))]);
    setup.status = Status::Standby;
    setup.config = lenient();
    setup
        .factory
        .control
        .skip_probe
        .store(true, Ordering::SeqCst);
    let mut h = setup.start().await;
    h.observer.wait_running("D", &[false, true]).await;
    assert_eq!(engine_queries(&h.server), 1);
    h.stop().await;
}

#[tokio::test]
async fn b13_require_operational_waits_for_operational() {
    let setup = require_operational(Status::Standby);
    setup
        .factory
        .control
        .skip_probe
        .store(true, Ordering::SeqCst);
    let mut h = setup.start().await;
    // Wait until the gateway is connected (in standby).
    h.wait_gateway_connected().await;
    // Standby: no engine, so no run(false) and no query. Nothing can be awaited for
    // "nothing happens"; a bounded wait for the first run(false) must time out.
    let early = tokio::time::timeout(
        STANDBY_QUIET,
        h.observer.wait_for("a running event in standby", |e| {
            !running_values(e, "D").is_empty()
        }),
    )
    .await;
    assert!(early.is_err(), "the engine started while in standby");
    assert_eq!(engine_queries(&h.server), 0, "queried while in standby");
    h.server.set_status(Status::Operational).await;
    h.observer.wait_running("D", &[false, true]).await;
    // An engine started in standby would have registered a second run(false) and
    // queried twice.
    assert_eq!(engine_queries(&h.server), 1);
    assert_eq!(h.control.creates("D").len(), 1);
    h.stop().await;
}

#[tokio::test]
async fn b14_leaving_operational_stops_devices_and_returning_restarts_engine() {
    let setup = require_operational(Status::Operational);
    setup
        .factory
        .control
        .skip_probe
        .store(true, Ordering::SeqCst);
    let mut h = setup.start().await;
    h.observer.wait_running("D", &[false, true]).await;
    h.server.set_status(Status::Standby).await;
    h.observer.wait_running("D", &[false, true, false]).await;
    assert_eq!(h.control.closes("D"), 1);
    h.server.set_status(Status::Operational).await;
    h.observer
        .wait_running("D", &[false, true, false, false, true])
        .await;
    assert_eq!(engine_queries(&h.server), 2);
    let creates = h.control.creates("D");
    assert_eq!(creates.len(), 2);
    assert_ne!(creates[0], creates[1]);
    h.stop().await;
}

#[tokio::test]
async fn b15_events_without_engine_are_not_delivered_later() {
    let setup = require_operational(Status::Standby);
    let mut h = setup.start().await;
    h.wait_gateway_connected().await;
    h.register(vec![ev(ty("D", "system/early"), json!(1))])
        .await;
    h.server.set_status(Status::Operational).await;
    h.observer.wait_running("D", &[false, true]).await;
    h.register(vec![ev(ty("D", "system/after"), json!(1))])
        .await;
    h.control
        .wait_for("after", |c| {
            c.iter().any(|c| matches!(c, Call::Process { event, .. } if event.event_type.ends_with(&["after".to_owned()])))
        })
        .await;
    assert_eq!(h.control.processed_names("D"), vec!["after"]);
    h.stop().await;
}

#[tokio::test]
async fn b16_shutdown_registers_running_false_before_disconnecting() {
    let mut h = Setup::new(&["D"])
        .preset(vec![en("D", json!(true))])
        .start()
        .await;
    let (_conn, mut server_events, _) = h
        .server
        .connect("test/events", vec![event_type_from_str("event/*")])
        .await
        .unwrap();
    h.observer.wait_running("D", &[false, true]).await;
    let server = h.server.clone();
    let control = h.control.clone();
    let observer = h.stop().await;
    assert_eq!(observer.running("D"), vec![false, true, false]);
    assert_eq!(control.closes("D"), 1);
    let run_false = observer.events.last().unwrap().id;
    let disconnected = loop {
        let batch = tokio::time::timeout(WAIT, server_events.recv())
            .await
            .unwrap()
            .unwrap();
        if let gateway_model::Notification::Events(events) = batch {
            if let Some(e) = events.iter().find(|e| {
                e.event_type == connection_event_type()
                    && e.payload.as_ref().and_then(|p| p.json_value())
                        == Some(json!("DISCONNECTED"))
            }) {
                break e.clone();
            }
        }
    };
    assert!(
        run_false < disconnected.id,
        "run(false) stored before the connection closed"
    );
    assert!(server.status() == Status::Operational);
}

/// A connection whose start-up query waits for a permit.
struct GatedQuery {
    inner: LocalConnection,
    gate: Arc<Semaphore>,
}

impl DeviceClient for GatedQuery {
    fn register(&self, events: Vec<RegisterEvent>) -> BoxFuture<'_, Result<(), ClientError>> {
        self.inner.register(events)
    }
    fn register_with_response(
        &self,
        events: Vec<RegisterEvent>,
    ) -> BoxFuture<'_, Result<Option<Vec<Event>>, ClientError>> {
        self.inner.register_with_response(events)
    }
    fn query(&self, params: QueryParams) -> BoxFuture<'_, Result<QueryResult, ClientError>> {
        Box::pin(async move {
            if let QueryParams::Latest(l) = &params {
                if l.event_types
                    .as_ref()
                    .is_some_and(|t| t.contains(&ty("D", "system/enable")) && t.len() == 1)
                    && !self.gate.is_closed()
                {
                    self.gate.acquire().await.unwrap().forget();
                    self.gate.close();
                }
            }
            self.inner.query(params).await
        })
    }
}

#[tokio::test]
async fn b28_enable_notification_before_query_result_wins() {
    for (stored, notified) in [(false, true), (true, false)] {
        let server = EmbeddedServer::new(EmbeddedConfig::default());
        server.register(vec![en("D", json!(stored))]).await.unwrap();
        let factory = TestFactory::new();
        factory.control.skip_probe.store(true, Ordering::SeqCst);
        let spec = gateway(vec![device(&factory, "D")]);
        let (conn, _rx, _) = server
            .connect("gateway/G", engine::subscriptions(G))
            .await
            .unwrap();
        let gate = Arc::new(Semaphore::new(0));
        let client = Arc::new(GatedQuery {
            inner: conn,
            gate: gate.clone(),
        });
        let mut engine = Engine::start(&spec, client, CancellationToken::new());
        // The notification arrives while the start-up query is held back. It is
        // made on another server so that the query still answers `stored`: had it
        // been stored here, the query result would equal the notification and a
        // query result overriding it would go unnoticed.
        let elsewhere = EmbeddedServer::new(EmbeddedConfig::default());
        let event = elsewhere
            .register(vec![en("D", json!(notified))])
            .await
            .unwrap();
        engine.route(event);
        gate.add_permits(1);
        let settled = async {
            while engine.states()[0].1 == ProxyState::Starting {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(WAIT, settled).await.unwrap();
        if notified {
            factory.control.wait_for("create", |c| c.len() == 1).await;
        } else {
            assert_eq!(engine.states()[0].1, ProxyState::Disabled);
            assert!(factory.control.calls().is_empty());
        }
        engine.close().await;
    }
}

/// Behaviour 31 at the engine itself: through the runner the subscription
/// `gateway/G/?/?/system/*` already keeps other gateways' events away, which would
/// hide a routing bug; here a mixed batch is handed to `Engine::route` directly.
#[tokio::test]
async fn b31_engine_routes_only_the_exact_device_prefix() {
    let server = EmbeddedServer::new(EmbeddedConfig::default());
    server.register(vec![en("D", json!(true))]).await.unwrap();
    let factory = TestFactory::new();
    factory.control.skip_probe.store(true, Ordering::SeqCst);
    let spec = gateway(vec![device(&factory, "D")]);
    let (conn, _rx, _) = server
        .connect("gateway/G", engine::subscriptions(G))
        .await
        .unwrap();
    let mut engine = Engine::start(&spec, Arc::new(conn), CancellationToken::new());
    let running = async {
        while engine.states()[0].1 != ProxyState::Running {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(WAIT, running).await.unwrap();
    // Stored elsewhere: only the routing is under test, not the subscription.
    let elsewhere = EmbeddedServer::new(EmbeddedConfig::default());
    let batch = elsewhere
        .register(vec![
            ev(event_type_from_str("gateway/G2/T/D/system/abc"), json!(1)),
            ev(event_type_from_str("gateway/G/T2/D/system/abc"), json!(2)),
            ev(event_type_from_str("gateway/G/T/D2/system/abc"), json!(3)),
            ev(event_type_from_str("other/G/T/D/system/abc"), json!(4)),
            ev(ty("D", "system/mine"), json!(5)),
        ])
        .await
        .unwrap();
    engine.route(batch);
    factory
        .control
        .wait_for("mine", |c| {
            c.iter().any(|c| matches!(c, Call::Process { event, .. } if event.event_type == ty("D", "system/mine")))
        })
        .await;
    assert_eq!(factory.control.processed_names("D"), vec!["mine"]);
    engine.close().await;
}

/// A connection on which every register fails (the server is gone).
struct RegisterFails(LocalConnection);

impl DeviceClient for RegisterFails {
    fn register(&self, _: Vec<RegisterEvent>) -> BoxFuture<'_, Result<(), ClientError>> {
        Box::pin(async { Err(ClientError::ConnectionClosed) })
    }
    fn register_with_response(
        &self,
        _: Vec<RegisterEvent>,
    ) -> BoxFuture<'_, Result<Option<Vec<Event>>, ClientError>> {
        Box::pin(async { Err(ClientError::ConnectionClosed) })
    }
    fn query(&self, params: QueryParams) -> BoxFuture<'_, Result<QueryResult, ClientError>> {
        self.0.query(params)
    }
}

#[tokio::test]
async fn b42_failing_running_registration_breaks_nothing() {
    let server = EmbeddedServer::new(EmbeddedConfig::default());
    server.register(vec![en("D", json!(true))]).await.unwrap();
    let factory = TestFactory::new();
    factory.control.skip_probe.store(true, Ordering::SeqCst);
    let spec = gateway(vec![device(&factory, "D")]);
    let (conn, _rx, _) = server
        .connect("gateway/G", engine::subscriptions(G))
        .await
        .unwrap();
    let engine = Engine::start(
        &spec,
        Arc::new(RegisterFails(conn)),
        CancellationToken::new(),
    );
    factory.control.wait_for("create", |c| c.len() == 1).await;
    tokio::time::timeout(WAIT, engine.close()).await.unwrap();
    assert_eq!(factory.control.closes("D"), 1);
}

#[tokio::test]
async fn b07_no_devices_registers_and_queries_nothing() {
    let mut h = Setup::new(&[]).start().await;
    let server = h.server.clone();
    h.wait_gateway_connected().await;
    let observer = {
        h.observer.drain();
        std::mem::take(&mut h.observer.events)
    };
    assert!(observer.is_empty());
    let observer = h.stop().await;
    assert!(observer.events.is_empty());
    assert!(server
        .query_log()
        .iter()
        .all(|q| q.client_name != "gateway/G"));
}

#[tokio::test]
async fn enable_devices_enables_devices_without_enable_event() {
    let factory = TestFactory::new();
    let server = EmbeddedServer::new(EmbeddedConfig::default());
    server.register(vec![en("D2", json!(false))]).await.unwrap();
    let mut observer = Observer::new(&server).await;
    let mut spec = gateway(vec![device(&factory, "D"), device(&factory, "D2")]);
    spec.event_server = EventServerSpec::Embedded {
        listen: None,
        enable_devices: true,
    };
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let (server, shutdown) = (server.clone(), shutdown.clone());
        async move { runner::run_embedded(&spec, server, shutdown).await }
    });
    observer.wait_running("D", &[false, true]).await;
    observer.wait_running("D2", &[false]).await;
    assert_eq!(factory.control.creates("D2").len(), 0);
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

/// Starts the runner in remote mode against `addr`.
fn spawn_remote(
    spec_devices: Vec<gateway_host::spec::DeviceSpec>,
    port: u16,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<Result<(), runner::RunError>>,
) {
    let mut spec = gateway(spec_devices);
    spec.event_server = EventServerSpec::Remote {
        host: "127.0.0.1".into(),
        port,
        token: None,
    };
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(runner::run(spec, shutdown.clone()));
    (shutdown, task)
}

#[tokio::test]
async fn remote_mode_retries_refused_and_lost_connections_forever() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let factory = TestFactory::new();
    let (shutdown, mut task) = spawn_remote(vec![device(&factory, "D")], port);
    // Nothing listens: the runner keeps retrying instead of exiting (replaces 10).
    let exited = tokio::time::timeout(Duration::from_millis(700), &mut task).await;
    assert!(
        exited.is_err(),
        "runner exited while the server was unreachable"
    );

    let server = EmbeddedServer::new(EmbeddedConfig::default());
    server.register(vec![en("D", json!(true))]).await.unwrap();
    let mut observer = Observer::new(&server).await;
    let listener = server
        .listen(&format!("127.0.0.1:{port}"), None)
        .await
        .unwrap();
    observer.wait_running("D", &[false, true]).await;

    // The server drops every TCP connection: devices closed, runner reconnects
    // (replaces 11), a new engine registers run(false), queries, runs D again.
    listener.close().await;
    let listener = server
        .listen(&format!("127.0.0.1:{port}"), None)
        .await
        .unwrap();
    observer
        .wait_for("second start", |e| running_values(e, "D").len() >= 4)
        .await;
    assert_eq!(
        running_values(&observer.events, "D"),
        vec![false, true, false, true]
    );
    assert_eq!(factory.control.creates("D").len(), 2);
    assert_eq!(factory.control.closes("D"), 1);
    assert!(!task.is_finished());

    // b16 over TCP: shutdown registers run(false) before closing.
    shutdown.cancel();
    tokio::time::timeout(WAIT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    observer
        .wait_running("D", &[false, true, false, true, false])
        .await;
    listener.close().await;
}

#[tokio::test]
async fn remote_mode_reconnect_backs_off_doubling_from_half_a_second() {
    // Every connection is accepted and dropped at once: each handshake fails.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let factory = TestFactory::new();
    let (shutdown, task) = spawn_remote(vec![device(&factory, "D")], port);
    let mut attempts = Vec::new();
    let accept = async {
        while attempts.len() < 4 {
            let (stream, _) = listener.accept().await.unwrap();
            attempts.push(tokio::time::Instant::now());
            drop(stream);
        }
    };
    tokio::time::timeout(Duration::from_secs(20), accept)
        .await
        .expect("4 connection attempts");
    let gaps: Vec<Duration> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
    // 0.5 s doubling: 0.5, 1, 2 s. Lower bounds are what the backoff guarantees (the
    // 0.9 factor absorbs accept wake-up jitter); upper bounds are generous.
    let initial = runner::RECONNECT_INITIAL_BACKOFF;
    for (i, gap) in gaps.iter().enumerate() {
        let expected = initial * 2u32.pow(i as u32);
        assert!(
            *gap >= expected.mul_f64(0.9) && *gap < expected + Duration::from_millis(1500),
            "retry {i} after {gap:?}, expected about {expected:?}; all gaps: {gaps:?}"
        );
    }
    assert!(!task.is_finished(), "the runner gave up");
    assert!(factory.control.calls().is_empty());
    shutdown.cancel();
    tokio::time::timeout(WAIT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn tcp_clients_see_and_drive_the_embedded_gateway() {
    let factory = TestFactory::new();
    let server = EmbeddedServer::new(EmbeddedConfig::default());
    let listener = server.listen("127.0.0.1:0", None).await.unwrap();
    let mut observer = TcpObserver::connect(listener.local_addr().unwrap()).await;
    let spec = gateway(vec![device(&factory, "D")]);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let (server, shutdown) = (server.clone(), shutdown.clone());
        async move { runner::run_embedded(&spec, server, shutdown).await }
    });
    observer.wait_running("D", &[false]).await;
    // The in-process gateway connection is announced like a TCP one.
    assert!(observer
        .events
        .iter()
        .any(|e| e.event_type == connection_event_type()
            && e.payload.as_ref().and_then(|p| p.json_value()) == Some(json!("CONNECTED"))));
    observer.register(vec![en("D", json!(true))]).await;
    observer.wait_running("D", &[false, true]).await;
    observer
        .register(vec![ev(ty("D", "system/abc"), json!(123))])
        .await;
    factory
        .control
        .wait_for("abc", |c| {
            c.iter().any(|c| matches!(c, Call::Process { .. }))
        })
        .await;
    observer.register(vec![en("D", json!(false))]).await;
    observer.wait_running("D", &[false, true, false]).await;
    let result = observer
        .client
        .query(QueryParams::Latest(gateway_model::QueryLatestParams {
            event_types: Some(vec![ty("D", "gateway/running")]),
        }))
        .await
        .unwrap();
    assert_eq!(result.events.len(), 1);
    shutdown.cancel();
    task.await.unwrap().unwrap();
    listener.close().await;
}
