//! A client that stops reading must not stall the server: once its outbound queue is
//! full it is closed as a slow consumer (typed reason, WARN log with peer and client
//! name), while every other client keeps receiving each notification at once.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::memory::{Closed, MemoryHandler};
use common::raw::RawPeer;
use common::WAIT;
use gateway_eventer::client::{Client, ClientConfig};
use gateway_eventer::message::EventerMsg;
use gateway_eventer::model::{
    event_type_from_str as t, Event, EventId, Payload, RegisterEvent, Status, Timestamp,
};
use gateway_eventer::server::{Server, ServerConfig, DEFAULT_OUTBOUND_CAPACITY};
use serde_json::json;
use tokio::sync::mpsc;

/// Small, so that the event test needs little data beyond the socket buffers.
const CAPACITY: usize = 4;
/// Big notifies queued for the silent client alone before the status test: fewer than
/// the default queue holds, so they cannot overflow it, but far more bytes than its
/// socket buffers and write buffer take (about 12 MiB).
const FILL_BATCHES: usize = 192;
/// Status changes made before the reading client must have received them all (the
/// status test runs with the default queue, which holds a whole round).
const STATUS_ROUND: usize = 32;
/// Receive buffer of the peer that never reads.
const SLOW_RECV_BUFFER: u32 = 4096;
/// Payload of each registered event.
const EVENT_BYTES: usize = 64 * 1024;
/// Far more batches than the buffers of the slow connection can hold (about 60 MiB).
const MAX_BATCHES: usize = 1000;

async fn start(capacity: usize) -> (Server, Arc<MemoryHandler>, mpsc::Receiver<Closed>) {
    let (handler, closed) = MemoryHandler::new();
    let config = ServerConfig {
        initial_status: Status::Operational,
        // Keepalive must not be what closes the silent client.
        ping_delay: None,
        outbound_capacity: capacity,
        ..ServerConfig::default()
    };
    let server = Server::listen("127.0.0.1:0", handler.clone(), config)
        .await
        .unwrap();
    (server, handler, closed)
}

fn quiet(name: &str, subscriptions: &[&str]) -> ClientConfig {
    let mut config = ClientConfig::new(name);
    config.subscriptions = subscriptions.iter().map(|s| t(s)).collect();
    config.ping_delay = None;
    config
}

/// The client names of the initialized connections, by id.
fn client_names(server: &Server) -> Vec<String> {
    let infos = server.connection_infos();
    infos.into_iter().map(|i| i.client_name).collect()
}

/// A registered connection end reported to the handler, if any yet.
fn slow_report(closed: &mut mpsc::Receiver<Closed>) -> Option<Closed> {
    closed.try_recv().ok()
}

fn assert_slow_consumer(report: &Closed, capacity: usize) {
    assert_eq!(report.kind, "SlowConsumer", "reason: {}", report.reason);
    assert_eq!(report.client_name.as_deref(), Some("slow"));
    assert!(
        report.reason.contains(&format!("{capacity} messages")),
        "{}",
        report.reason
    );
}

#[test]
fn default_capacity_is_the_named_constant() {
    assert_eq!(
        ServerConfig::default().outbound_capacity,
        DEFAULT_OUTBOUND_CAPACITY
    );
}

#[tokio::test]
async fn silent_client_is_closed_while_another_gets_every_batch() {
    let (logs, _guard) = common::logs::capture();
    let (server, _handler, mut closed) = start(CAPACITY).await;
    let addr = server.local_addr().unwrap();

    let mut slow = RawPeer::connect_with_recv_buffer(addr, SLOW_RECV_BUFFER).await;
    slow.init("slow", vec![t("big/*")], None, false).await;
    let slow_addr = slow.stream.local_addr().unwrap();
    let (fast, mut fast_rx) = Client::connect(addr, quiet("fast", &["big/*"]))
        .await
        .unwrap();
    let (registrant, _) = Client::connect(addr, quiet("registrant", &[]))
        .await
        .unwrap();

    let payload = json!("x".repeat(EVENT_BYTES));
    let mut report = None;
    let mut batches = 0;
    while report.is_none() {
        assert!(
            batches < MAX_BATCHES,
            "slow client still open after {batches} batches"
        );
        batches += 1;
        let event = RegisterEvent::json(t(&format!("big/{batches}")), payload.clone());
        // The register answer follows the notifies of its batch: a server that
        // waited for the silent client would never answer.
        let registered = tokio::time::timeout(WAIT, registrant.register_with_response(vec![event]))
            .await
            .unwrap_or_else(|_| panic!("register {batches} stalled"))
            .unwrap()
            .unwrap();
        assert_eq!(common::next_events(&mut fast_rx).await, registered);
        report = slow_report(&mut closed);
    }
    assert_slow_consumer(report.as_ref().unwrap(), CAPACITY);
    assert!(batches > CAPACITY, "closed after only {batches} batches");

    // The server goes on: the silent client is out of the table, the others are served.
    assert_eq!(client_names(&server), ["fast", "registrant"]);
    for n in 0..3 {
        let event = RegisterEvent::json(t(&format!("big/after/{n}")), json!(n));
        let registered = registrant
            .register_with_response(vec![event])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(common::next_events(&mut fast_rx).await, registered);
    }
    slow.assert_closed_by_server().await;

    let line = logs.line_with(&["slow consumer", "client_name=slow"]);
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains(&format!("peer={slow_addr}")), "{line}");
    fast.close().await;
    registrant.close().await;
    server.close().await;
}

#[tokio::test]
async fn status_changes_do_not_wait_for_a_silent_client() {
    let (server, _handler, mut closed) = start(DEFAULT_OUTBOUND_CAPACITY).await;
    let addr = server.local_addr().unwrap();
    let mut slow = RawPeer::connect_with_recv_buffer(addr, SLOW_RECV_BUFFER).await;
    slow.init("slow", vec![t("fill/*")], None, true).await;
    let mut fast = RawPeer::connect(addr).await;
    fast.init("fast", Vec::new(), None, false).await;

    // Only the silent client takes persisted notifies: fill everything in front of
    // its queue without overflowing the queue itself (status frames are tiny, so
    // filling with them alone would take about a hundred thousand changes).
    for n in 1..=FILL_BATCHES {
        let event = Event {
            id: EventId {
                server: 1,
                session: i64::try_from(n).unwrap(),
                instance: 1,
            },
            event_type: t("fill/x"),
            timestamp: Timestamp::new(1, 0),
            source_timestamp: None,
            payload: Some(Payload::json(json!("x".repeat(EVENT_BYTES)))),
        };
        assert_eq!(server.notify_events(&[event], true, false).await, 1);
    }
    assert_eq!(client_names(&server), ["slow", "fast"]);

    // Now status changes overflow its queue; the reading client gets every one, in
    // order, round after round.
    let mut report = None;
    let mut rounds = 0;
    while report.is_none() {
        assert!(
            rounds < 10_000,
            "slow client still open after {rounds} rounds"
        );
        rounds += 1;
        let sent: Vec<Status> = (0..STATUS_ROUND)
            .map(|n| {
                if n % 2 == 0 {
                    Status::Standby
                } else {
                    Status::Operational
                }
            })
            .collect();
        for status in &sent {
            tokio::time::timeout(WAIT, server.set_status(*status))
                .await
                .unwrap_or_else(|_| panic!("status change stalled in round {rounds}"));
        }
        for status in sent {
            assert_eq!(fast.recv().await.1, EventerMsg::StatusNotify(status));
        }
        report = slow_report(&mut closed);
    }
    assert_slow_consumer(report.as_ref().unwrap(), DEFAULT_OUTBOUND_CAPACITY);
    assert_eq!(client_names(&server), ["fast"]);
    slow.assert_closed_by_server().await;
    server.close().await;
}
