//! The event store file through the real daemon (issue 14): `kill -9` in the middle of a
//! burst loses nothing a subscriber was notified of or a register was answered with,
//! and a restart keeps an operator's disable.

#![allow(clippy::unwrap_used)]

mod cli_support;

use std::collections::BTreeMap;
use std::path::Path;

use cli_support::{gateway_host, sim_plugin_dir, Proc, Stream, TempDir};
use gateway_eventer::client::{Client, ClientConfig};
use gateway_model::{
    event_type_from_str as t, Event, EventId, Notification, QueryLatestParams, QueryParams,
    QueryServerParams, RegisterEvent,
};
use serde_json::{json, Value};

/// Kill-and-restart rounds (the number).
const ROUNDS: usize = 20;

/// Data events a round's subscriber receives before the daemon is killed; the burst
/// asks for far more, so the kill comes in its middle.
const RECEIVED_BEFORE_KILL: usize = 2_000;

/// Data events the sim device is asked for per round.
const BURST: usize = 200_000;

const DEVICE: &str = "gateway/gw1/sim/s1";

fn config(db: &Path, devices: &str) -> String {
    format!(
        "name: gw1\n\
         event_server:\n  embedded:\n    db_path: {}\n    \
         eventer_server: {{host: 127.0.0.1, port: 0}}\n    enable_devices: true\n\
         devices:\n{devices}\
         log: {{level: info, format: json}}\n",
        db.display()
    )
}

/// Starts the daemon on `conf`; returns it and its embedded server's address once it
/// listens, after checking it opened the event store.
fn start(conf: &Path) -> (Proc, String) {
    let mut daemon = Proc::spawn(
        gateway_host()
            .arg("--conf")
            .arg(conf)
            .arg("--plugins-dir")
            .arg(sim_plugin_dir()),
    );
    daemon.expect_line(Stream::Stderr, |l| l.contains("event store opened"));
    let line = daemon.expect_line(Stream::Stderr, |l| {
        l.contains("embedded event server listening")
    });
    let value: Value = serde_json::from_str(&line).unwrap();
    let addr = value["fields"]["addr"]
        .as_str()
        .unwrap()
        .trim_start_matches("Some(")
        .trim_end_matches(')')
        .to_owned();
    (daemon, addr)
}

async fn connect(addr: &str, name: &str, subscriptions: &[&str]) -> (Client, NotifyRx) {
    let mut config = ClientConfig::new(name);
    config.subscriptions = subscriptions.iter().map(|s| t(s)).collect();
    Client::connect(addr.to_owned(), config).await.unwrap()
}

type NotifyRx = tokio::sync::mpsc::Receiver<Notification>;

fn key(id: EventId) -> (i64, i64) {
    (id.session, id.instance)
}

/// What an event is, to compare the one seen with the one stored under its id.
fn content(event: &Event) -> (String, Option<Value>) {
    (
        event.event_type.join("/"),
        event.payload.as_ref().and_then(|p| p.json_value()),
    )
}

/// Every stored event with a session from `from_session` on (server query pages).
async fn stored_from(client: &Client, from_session: i64) -> BTreeMap<(i64, i64), Event> {
    let mut stored = BTreeMap::new();
    let mut after = EventId {
        server: 1,
        session: from_session,
        instance: 0,
    };
    loop {
        let page = client
            .query(QueryParams::Server(QueryServerParams {
                server_id: 1,
                persisted: false,
                max_results: None,
                last_event_id: Some(after),
            }))
            .await
            .unwrap();
        if let Some(last) = page.events.last() {
            after = last.id;
        }
        for event in page.events {
            stored.insert(key(event.id), event);
        }
        if !page.more_follows {
            return stored;
        }
    }
}

/// Waits until `running` of the device is `true` (latest, or notified to `rx`, which
/// subscribes to it).
async fn wait_running(client: &Client, rx: &mut NotifyRx) {
    let running = format!("{DEVICE}/gateway/running");
    let is_true = |e: &Event| {
        e.event_type.join("/") == running
            && e.payload.as_ref().and_then(|p| p.json_value()) == Some(json!(true))
    };
    let latest = client
        .query(QueryParams::Latest(QueryLatestParams {
            event_types: Some(vec![t(&running)]),
        }))
        .await
        .unwrap();
    if latest.events.iter().any(is_true) {
        return;
    }
    while let Some(notification) = rx.recv().await {
        if let Notification::Events(events) = notification {
            if events.iter().any(is_true) {
                return;
            }
        }
    }
    panic!("the connection closed before the device ran");
}

#[test]
fn kill_9_mid_burst_loses_nothing_notified_or_answered_and_ids_keep_increasing() {
    let dir = TempDir::new("store-crash");
    let db = dir.path().join("events.redb");
    let conf = dir.write(
        "gateway.yaml",
        &config(
            &db,
            "  - {module: sim, name: s1, points: [p0, p1], period: 3600}\n",
        ),
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Every event seen so far (notified or answered), by id.
    let mut seen: BTreeMap<(i64, i64), (String, Option<Value>)> = BTreeMap::new();
    let mut first_session_of_last_round = 1;
    for round in 0..ROUNDS {
        let started = std::time::Instant::now();
        let (mut daemon, addr) = start(&conf);
        let pid = daemon.pid();
        let (round_seen, first_session) = runtime.block_on(async {
            // Everything the last round saw is in the file, unchanged.
            let (checker, _) = connect(&addr, "test/checker", &[]).await;
            let stored = stored_from(&checker, first_session_of_last_round - 1).await;
            let missing: Vec<_> = seen
                .range((first_session_of_last_round, 0)..)
                .filter(|(id, what)| stored.get(id).map(content).as_ref() != Some(what))
                .map(|(id, _)| *id)
                .collect();
            assert!(
                missing.is_empty(),
                "round {round}: {} of {} events seen before the kill are missing or \
                 changed, first {:?}",
                missing.len(),
                seen.range((first_session_of_last_round, 0)..).count(),
                missing.first()
            );

            let (subscriber, mut notified) =
                connect(&addr, "test/subscriber", &[&format!("{DEVICE}/gateway/*")]).await;
            wait_running(&subscriber, &mut notified).await;
            // Registers of its own, each answered, until the daemon is gone.
            let (registrar, _) = connect(&addr, "test/registrar", &[]).await;
            let answering = tokio::spawn(async move {
                let mut answered = Vec::new();
                for n in 0.. {
                    let event = RegisterEvent::json(t("test/answered"), json!(n));
                    match registrar.register_with_response(vec![event]).await {
                        Ok(Some(events)) => answered.extend(events),
                        Ok(None) => panic!("register {n} answered failure"),
                        Err(_) => break,
                    }
                }
                answered
            });
            subscriber
                .register(vec![RegisterEvent::json(
                    t(&format!("{DEVICE}/system/burst")),
                    json!({"count": BURST, "id": round}),
                )])
                .await
                .unwrap();
            let mut received: Vec<Event> = Vec::new();
            let mut killed = false;
            while let Some(notification) = notified.recv().await {
                if let Notification::Events(events) = notification {
                    received.extend(events);
                }
                let data = received
                    .iter()
                    .filter(|e| e.event_type.get(5).is_some_and(|s| s == "data"))
                    .count();
                if !killed && data >= RECEIVED_BEFORE_KILL {
                    kill_9(pid);
                    killed = true;
                }
            }
            assert!(
                killed,
                "round {round}: the connection closed before the kill"
            );
            let answered = answering.await.unwrap();
            assert!(!answered.is_empty(), "round {round}: no register answered");
            let mut round_seen = BTreeMap::new();
            let mut last = (0, 0);
            for event in received.iter().chain(&answered) {
                round_seen.insert(key(event.id), content(event));
            }
            // Notified in id order, each id once.
            for event in &received {
                assert!(
                    key(event.id) > last,
                    "round {round}: {:?} after {last:?}",
                    event.id
                );
                last = key(event.id);
            }
            let first = round_seen.keys().next().unwrap().0;
            (round_seen, first)
        });
        assert_eq!(daemon.wait(), None, "killed by a signal");
        // A restarted server never reuses an id: everything is after the last round.
        if let Some((&previous, _)) = seen.iter().next_back() {
            assert!(
                round_seen
                    .keys()
                    .next()
                    .is_some_and(|&first| first > previous),
                "round {round}: ids {:?} do not come after {previous:?}",
                round_seen.keys().next()
            );
        }
        eprintln!(
            "round {round}: {} seen, {:?}",
            round_seen.len(),
            started.elapsed()
        );
        seen.extend(round_seen);
        first_session_of_last_round = first_session;
    }
    // The last round's events, after its kill.
    let (mut daemon, addr) = start(&conf);
    runtime.block_on(async {
        let (checker, _) = connect(&addr, "test/checker", &[]).await;
        let stored = stored_from(&checker, first_session_of_last_round - 1).await;
        for (id, what) in seen.range((first_session_of_last_round, 0)..) {
            assert_eq!(stored.get(id).map(content).as_ref(), Some(what), "{id:?}");
        }
    });
    daemon.signal("TERM");
    assert_eq!(daemon.wait(), Some(0), "{}", daemon.transcript());
}

fn kill_9(pid: u32) {
    let status = std::process::Command::new("kill")
        .arg("-KILL")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_restart_keeps_a_disable_even_with_enable_devices() {
    let dir = TempDir::new("store-disable");
    let db = dir.path().join("events.redb");
    let conf = dir.write(
        "gateway.yaml",
        &config(
            &db,
            "  - {module: sim, name: s1, points: [p0], period: 3600}\n  \
             - {module: sim, name: s2, points: [p0], period: 3600}\n",
        ),
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let running = |device: &str| format!("gateway/gw1/sim/{device}/gateway/running");
    let latest = |client: Client, ty: String| async move {
        let result = client
            .query(QueryParams::Latest(QueryLatestParams {
                event_types: Some(vec![t(&ty)]),
            }))
            .await
            .unwrap();
        result
            .events
            .first()
            .and_then(|e| e.payload.as_ref())
            .and_then(|p| p.json_value())
    };
    let (mut daemon, addr) = start(&conf);
    daemon.expect_line(Stream::Stderr, |l| {
        l.contains("device created") && l.contains("\"s1\"")
    });
    runtime.block_on(async {
        let (client, mut rx) = connect(&addr, "test/operator", &[&running("s1")]).await;
        client
            .register_with_response(vec![RegisterEvent::json(
                t("gateway/gw1/sim/s1/system/enable"),
                json!(false),
            )])
            .await
            .unwrap()
            .unwrap();
        // Disabled: its running goes false.
        loop {
            if latest(client.clone(), running("s1")).await == Some(json!(false)) {
                break;
            }
            rx.recv().await.unwrap();
        }
    });
    daemon.signal("TERM");
    assert_eq!(daemon.wait(), Some(0), "{}", daemon.transcript());

    let (mut daemon, addr) = start(&conf);
    // s2 runs again; s1, created in the same start-up pass if it were enabled, does not.
    daemon.expect_line(Stream::Stderr, |l| {
        l.contains("device created") && l.contains("\"s2\"")
    });
    runtime.block_on(async {
        let (client, mut rx) = connect(&addr, "test/operator", &[&running("s2")]).await;
        while latest(client.clone(), running("s2")).await != Some(json!(true)) {
            rx.recv().await.unwrap();
        }
        assert_eq!(
            latest(
                client.clone(),
                "gateway/gw1/sim/s1/system/enable".to_owned()
            )
            .await,
            Some(json!(false))
        );
        assert_eq!(
            latest(client.clone(), running("s1")).await,
            Some(json!(false))
        );
    });
    daemon.signal("TERM");
    // Its last line: every line of the run has been read.
    daemon.expect_line(Stream::Stderr, |l| l.contains("gateway stopped"));
    assert_eq!(daemon.wait(), Some(0), "{}", daemon.transcript());
    let s1_created = daemon
        .seen
        .iter()
        .filter(|(_, l)| l.contains("device created") && l.contains("\"s1\""))
        .count();
    assert_eq!(s1_created, 0, "{}", daemon.transcript());
}
