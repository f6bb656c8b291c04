//! Helpers shared by the eventer integration tests: the test venv, a real
//! hat-event-server process (LMDB backend) on a free loopback port (from
//! `gateway-test-support`), and waits on our client's notifications.
#![allow(dead_code)]

pub(crate) mod logs;
pub(crate) mod memory;
pub(crate) mod python;
pub(crate) mod raw;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use gateway_eventer::client::{Client, ClientConfig, Notification};
use gateway_eventer::model::Status;
use tokio::sync::mpsc;

/// A real hat-event-server (LMDB backend) on a free loopback port, killed on drop.
pub(crate) type EventServer = gateway_test_support::hat::HatEventServer;

/// Bound for anything that must happen in a test (replies, notifications, closes).
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// The Python venv with hat-event 0.9.44; panics with instructions when it is missing.
pub(crate) fn venv() -> PathBuf {
    gateway_test_support::venv_with(&["bin/python", "bin/hat-event-server"])
}

/// Connects our client and waits (bounded) until the server reports `operational`
/// (hat-event-server starts its engine shortly after it opens the port).
pub(crate) async fn connect_operational(
    addr: SocketAddr,
    config: ClientConfig,
) -> (Client, mpsc::Receiver<Notification>) {
    let (client, mut notifications) = Client::connect(addr, config).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while client.status() != Status::Operational {
        match tokio::time::timeout_at(deadline, notifications.recv()).await {
            Ok(Some(Notification::Status(_))) => {}
            Ok(other) => panic!("unexpected before operational: {other:?}"),
            Err(_) => panic!("server not operational within {WAIT:?}"),
        }
    }
    (client, notifications)
}

/// The next notification, within [`WAIT`].
pub(crate) async fn next_notification(rx: &mut mpsc::Receiver<Notification>) -> Notification {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("no notification in time")
        .expect("notification channel closed")
}

/// The next events notification (skipping status changes), within [`WAIT`].
pub(crate) async fn next_events(
    rx: &mut mpsc::Receiver<Notification>,
) -> Vec<gateway_eventer::model::Event> {
    loop {
        if let Notification::Events(events) = next_notification(rx).await {
            return events;
        }
    }
}

/// Event types of a batch as slash-separated text, for readable assertions.
pub(crate) fn types(events: &[gateway_eventer::model::Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| gateway_eventer::model::event_type_to_string(&e.event_type))
        .collect()
}
