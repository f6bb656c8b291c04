//! Plugin calls cannot stall the host (issue 11 items 1 and 2): the real
//! `gateway_fixture_faulty` cdylib, loaded by the real loader and run by the runner,
//! blocking its threads or never finishing `create` and `close`. Each test asserts the
//! bound it proves, with margins for a loaded 2-core machine. Needs the fixture built
//! (`cargo build --workspace --all-targets`, as scripts/test.sh does).
#![allow(clippy::unwrap_used)]

mod common;
mod plugin_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Observer, WAIT};
use gateway_host::embedded::{EmbeddedConfig, EmbeddedServer};
use gateway_host::plugins::{LoadedPlugin, PluginRegistry, PluginSearch};
use gateway_host::runner;
use gateway_host::spec::{DeviceSpec, EventServerSpec, GatewaySpec, RestartPolicy};
use gateway_model::{event_type_from_str as t, Event, RegisterEvent};
use plugin_support::PluginDir;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

const TYPE: &str = "fixture_faulty";

fn fixture() -> (PluginDir, Arc<LoadedPlugin>) {
    let dir = PluginDir::new();
    dir.add_library("gateway_fixture_faulty", None);
    let registry = PluginRegistry::new(PluginSearch::new(vec![dir.path.clone()], false));
    let plugin = registry.resolve("gateway_fixture_faulty").unwrap();
    (dir, plugin)
}

fn device(plugin: &Arc<LoadedPlugin>, name: &str, conf: Value) -> DeviceSpec {
    let mut full = json!({"module": "gateway_fixture_faulty", "name": name});
    if let (Some(full), Some(extra)) = (full.as_object_mut(), conf.as_object()) {
        full.extend(extra.clone());
    }
    let mut spec = DeviceSpec::new(TYPE, name, full, plugin.clone());
    spec.restart = RestartPolicy::Never;
    spec
}

fn gateway(devices: Vec<DeviceSpec>) -> GatewaySpec {
    GatewaySpec {
        name: "G".into(),
        event_server: EventServerSpec::Embedded {
            listen: None,
            enable_devices: true,
        },
        require_operational: false,
        event_types: gateway_host::spec::EventTypes::Seeds,
        devices,
    }
}

fn ty(device: &str, rest: &str) -> String {
    format!("gateway/G/{TYPE}/{device}/{rest}")
}

fn count(events: &[Event], event_type: &str) -> usize {
    let wanted = t(event_type);
    events.iter().filter(|e| e.event_type == wanted).count()
}

fn running(events: &[Event], device: &str) -> Vec<bool> {
    let wanted = t(&ty(device, "gateway/running"));
    events
        .iter()
        .filter(|e| e.event_type == wanted)
        .filter_map(|e| e.payload.as_ref()?.json_value()?.as_bool())
        .collect()
}

struct Gateway {
    server: EmbeddedServer,
    observer: Observer,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), runner::RunError>>,
    _dir: PluginDir,
}

impl Gateway {
    async fn start(dir: PluginDir, spec: GatewaySpec) -> Self {
        let server = EmbeddedServer::new(EmbeddedConfig::default());
        let observer = Observer::new(&server).await;
        let shutdown = CancellationToken::new();
        let task = tokio::spawn({
            let (server, shutdown) = (server.clone(), shutdown.clone());
            async move { runner::run_embedded(&spec, server, shutdown).await }
        });
        Self {
            server,
            observer,
            shutdown,
            task,
            _dir: dir,
        }
    }

    async fn register(&self, events: Vec<(String, Value)>) {
        let events = events
            .into_iter()
            .map(|(ty, value)| RegisterEvent::json(t(&ty), value))
            .collect();
        self.server.register(events).await.unwrap();
    }

    async fn wait_running(&mut self, device: &str, expected: &[bool]) {
        let what = format!("running {expected:?} of {device}");
        self.observer
            .wait_for(&what, |e| running(e, device) == expected)
            .await;
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(WAIT * 3, self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

/// Item 1: two devices whose `process_event` blocks its thread for 5 s, on a host
/// runtime of 2 workers (what a 2-core machine gets): a third device's round trip
/// stays under 500 ms (on main it took the 5 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_blocking_devices_do_not_delay_a_third() {
    let (dir, plugin) = fixture();
    let spec = gateway(vec![
        device(&plugin, "b1", json!({})),
        device(&plugin, "b2", json!({})),
        device(&plugin, "c", json!({})),
    ]);
    let mut g = Gateway::start(dir, spec).await;
    for d in ["b1", "b2", "c"] {
        g.wait_running(d, &[false, true]).await;
    }
    g.register(vec![
        (ty("b1", "system/block"), json!({"ms": 5000})),
        (ty("b2", "system/block"), json!({"ms": 5000})),
    ])
    .await;
    // Both devices are inside their blocking call.
    g.observer
        .wait_for("both blocking", |e| {
            count(e, &ty("b1", "gateway/blocking")) == 1
                && count(e, &ty("b2", "gateway/blocking")) == 1
        })
        .await;
    let blocking_since = Instant::now();
    let mut round_trips = Vec::new();
    for i in 0..3 {
        let started = Instant::now();
        g.register(vec![(ty("c", "system/ping"), json!(i))]).await;
        g.observer
            .wait_for("echo of c", |e| count(e, &ty("c", "gateway/echo")) == i + 1)
            .await;
        round_trips.push(started.elapsed());
    }
    let worst = round_trips.iter().max().copied().unwrap();
    eprintln!("round trips of c while two devices block: {round_trips:?}");
    assert!(
        blocking_since.elapsed() < Duration::from_millis(4000),
        "the round trips ran while the others still blocked"
    );
    assert!(
        worst < Duration::from_millis(500),
        "a round trip took {worst:?} while two devices blocked their threads"
    );
    // The blocking devices finish their calls and carry on.
    g.observer
        .wait_for("both blocked 5 s", |e| {
            count(e, &ty("b1", "gateway/blocked")) == 1
                && count(e, &ty("b2", "gateway/blocked")) == 1
        })
        .await;
    g.stop().await;
}

/// Item 1: `close_timeout` holds for a close that blocks its thread (20 s) and for one
/// that never finishes: `running=false` follows the 1 s timeout (on main a blocking
/// close held the disable for its whole 20 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_timeout_holds_for_blocking_and_hanging_close() {
    let (dir, plugin) = fixture();
    let mut devices = Vec::new();
    for (name, fail) in [("bc", "block_close"), ("hc", "hang_close")] {
        let mut d = device(&plugin, name, json!({"fail": fail, "block_ms": 20000}));
        d.close_timeout = Duration::from_secs(1);
        devices.push(d);
    }
    devices.push(device(&plugin, "c", json!({})));
    let mut g = Gateway::start(dir, gateway(devices)).await;
    for d in ["bc", "hc", "c"] {
        g.wait_running(d, &[false, true]).await;
    }
    let started = Instant::now();
    g.register(vec![
        (ty("bc", "system/enable"), json!(false)),
        (ty("hc", "system/enable"), json!(false)),
    ])
    .await;
    g.wait_running("bc", &[false, true, false]).await;
    g.wait_running("hc", &[false, true, false]).await;
    let took = started.elapsed();
    eprintln!("disable with a blocking and a hanging close took {took:?}");
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_millis(3000), "{took:?}");
    // Meanwhile and after, the other device answers.
    let rt = Instant::now();
    g.register(vec![(ty("c", "system/ping"), json!(1))]).await;
    g.observer
        .wait_for("echo of c", |e| count(e, &ty("c", "gateway/echo")) == 1)
        .await;
    assert!(rt.elapsed() < Duration::from_millis(500));
    g.stop().await;
}

/// Item 2: a `create` that never finishes is abandoned after `create_timeout` and the
/// device failed; `restart: on-failure` creates it again (on main: one create, for
/// ever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_create_times_out_and_the_restart_policy_applies() {
    let (dir, plugin) = fixture();
    let mut d = device(&plugin, "h", json!({"fail": "hang_create"}));
    d.create_timeout = Duration::from_secs(1);
    d.restart = RestartPolicy::OnFailure {
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(100),
        max_restarts: 10,
        window: Duration::from_secs(60),
    };
    let mut g = Gateway::start(dir, gateway(vec![d])).await;
    let creating = ty("h", "gateway/creating");
    g.observer
        .wait_for("first create", |e| count(e, &creating) == 1)
        .await;
    let first = Instant::now();
    g.observer
        .wait_for("second create", |e| count(e, &creating) == 2)
        .await;
    let gap = first.elapsed();
    eprintln!("hung create re-created after {gap:?} (create_timeout 1 s, backoff 0.1 s)");
    assert!(gap >= Duration::from_millis(900), "{gap:?}");
    assert!(gap < Duration::from_millis(3000), "{gap:?}");
    assert_eq!(running(&g.observer.events, "h"), [false]);
    g.stop().await;
}

/// Item 2: `enable=false` during a hung create abandons it; `enable=true` starts a new
/// create at once (on main both were ignored while `create` hung).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enable_false_abandons_a_hung_create() {
    let (dir, plugin) = fixture();
    let mut d = device(&plugin, "h", json!({"fail": "hang_create"}));
    d.create_timeout = Duration::from_secs(600);
    let mut g = Gateway::start(dir, gateway(vec![d])).await;
    let creating = ty("h", "gateway/creating");
    g.observer
        .wait_for("first create", |e| count(e, &creating) == 1)
        .await;
    let started = Instant::now();
    g.register(vec![(ty("h", "system/enable"), json!(false))])
        .await;
    g.register(vec![(ty("h", "system/enable"), json!(true))])
        .await;
    g.observer
        .wait_for("second create", |e| count(e, &creating) == 2)
        .await;
    let took = started.elapsed();
    eprintln!("enable false, true during a hung create: new create after {took:?}");
    assert!(took < Duration::from_millis(500), "{took:?}");
    assert_eq!(running(&g.observer.events, "h"), [false]);
    // Shutdown does not wait for the hung create's grace either.
    let stopping = Instant::now();
    g.stop().await;
    assert!(stopping.elapsed() < Duration::from_secs(12));
}
