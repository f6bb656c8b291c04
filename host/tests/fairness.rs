//! Devices share the connection to the REAL hat-event-server 0.9.44 fairly (issue 11
//! item 7, `docs/gateway-semantics.md` section 7.7): while a fixture device
//! (`fixture_flood`) registers as fast as the host lets it, a `sim` device's write
//! answers still reach a subscriber within a bound of a few rounds. Before the
//! per-device lanes one flooding device delayed another device's write answer by
//! 25 s. Needs the test venv (scripts/test-env.sh) and the cdylibs
//! (`cargo build --workspace --all-targets`).
#![allow(clippy::unwrap_used)]

mod common;
mod plugin_support;

use std::time::{Duration, Instant};

use common::hat::{connect_observer, HatServer};
use gateway_eventer::client::Notification;
use gateway_host::plugins::{PluginRegistry, PluginSearch};
use gateway_host::runner;
use gateway_host::spec::{DeviceSpec, EventServerSpec, GatewaySpec};
use gateway_model::{event_type_from_str as t, QueryLatestParams, QueryParams, RegisterEvent};
use plugin_support::PluginDir;
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Write answers measured while the flood goes on.
const WRITES: u64 = 10;
/// The bound asserted on every write round trip (write request registered -> write
/// answer notified). With the lanes a round trip takes a few rounds, each at most
/// one round of the flood plus the quiet device's call: tens of milliseconds on an
/// idle machine; the margin is for a loaded 2-core one. Before: 25 s.
const BOUND: Duration = Duration::from_millis(3000);

/// Events the flooding device has had stored so far (its latest `n`).
async fn flood_count(client: &gateway_eventer::client::Client) -> u64 {
    let latest = client
        .query(QueryParams::Latest(QueryLatestParams {
            event_types: Some(vec![t("gateway/G/fixture_flood/f/gateway/flood")]),
        }))
        .await
        .unwrap();
    latest
        .events
        .first()
        .and_then(|e| e.payload.as_ref())
        .and_then(|p| p.json_value())
        .and_then(|v| v.get("n").and_then(serde_json::Value::as_u64))
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_device_does_not_delay_another_devices_events() {
    let dir = PluginDir::new();
    dir.add_library("gateway_fixture_flood", None);
    dir.add_library("sim", None);
    let registry = PluginRegistry::new(PluginSearch::new(vec![dir.path.clone()], false));
    let flood = registry.resolve("gateway_fixture_flood").unwrap();
    let sim = registry.resolve("sim").unwrap();
    let devices = vec![
        DeviceSpec::new(
            "fixture_flood",
            "f",
            json!({"module": "gateway_fixture_flood", "name": "f", "batch": 10, "tasks": 4}),
            flood,
        ),
        DeviceSpec::new(
            "sim",
            "quiet",
            json!({"module": "sim", "name": "quiet", "points": ["p0"]}),
            sim,
        ),
    ];

    let hat = HatServer::start().await;
    // Subscribed to the quiet device's answers only (not to the flood).
    let (observer, mut answers) =
        connect_observer(hat.addr, &["gateway/G/sim/quiet/gateway/write/*"]).await;
    observer
        .register_with_response(vec![
            RegisterEvent::json(t("gateway/G/fixture_flood/f/system/enable"), json!(true)),
            RegisterEvent::json(t("gateway/G/sim/quiet/system/enable"), json!(true)),
        ])
        .await
        .unwrap()
        .unwrap();
    let spec = GatewaySpec {
        name: "G".into(),
        event_server: EventServerSpec::Remote {
            host: "127.0.0.1".into(),
            port: hat.addr.port(),
            token: None,
        },
        require_operational: false,
        event_types: gateway_host::spec::EventTypes::Seeds,
        devices,
    };
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(runner::run(spec, shutdown.clone()));

    // The flood is on once the server has stored a few thousand of its events.
    let deadline = Instant::now() + Duration::from_secs(60);
    let started = loop {
        let n = flood_count(&observer).await;
        if n >= 2000 {
            break n;
        }
        assert!(
            Instant::now() < deadline,
            "the flood did not start: {n} events\nserver log:\n{}",
            hat.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The flood's rate, for the figures only (no assertion on it).
    let window = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // `n` counts over the device's tasks; the latest may trail another task's by a
    // few calls.
    let rate = flood_count(&observer).await.saturating_sub(started) as f64
        / window.elapsed().as_secs_f64();
    let started = flood_count(&observer).await;

    let mut round_trips = Vec::new();
    for id in 0..WRITES {
        let sent = Instant::now();
        observer
            .register(vec![RegisterEvent::json(
                t("gateway/G/sim/quiet/system/write/p0"),
                json!({"value": id, "id": id}),
            )])
            .await
            .unwrap();
        let answered = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                match answers.recv().await {
                    Some(Notification::Events(events)) => {
                        let found = events.iter().any(|e| {
                            e.payload
                                .as_ref()
                                .and_then(|p| p.json_value())
                                .and_then(|v| v.get("id").cloned())
                                == Some(json!(id))
                        });
                        if found {
                            return;
                        }
                    }
                    Some(Notification::Status(_)) => {}
                    None => panic!("observer disconnected"),
                }
            }
        })
        .await;
        let elapsed = sent.elapsed();
        assert!(
            answered.is_ok(),
            "write {id} not answered within 60 s while the flood went on"
        );
        round_trips.push(elapsed);
    }
    let flooded = flood_count(&observer).await.saturating_sub(started);
    let mut sorted = round_trips.clone();
    sorted.sort();
    let max = *sorted.last().unwrap();
    eprintln!(
        "write round trips while flooding ({rate:.0} flood events/s stored): median {:?}, \
         max {max:?}, all {round_trips:?}",
        sorted[sorted.len() / 2]
    );
    assert!(
        flooded > 0,
        "the flood stopped while the writes were measured"
    );
    assert!(
        max < BOUND,
        "a write answer waited {max:?} behind the flood (bound {BOUND:?}): {round_trips:?}"
    );

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
