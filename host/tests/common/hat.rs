//! A real hat-event-server 0.9.44 (LMDB backend) for the remote-mode behaviour
//! tests (the launcher of `gateway-test-support`, with kill and restart on the same
//! port and database) and observers of what it stores.
#![allow(clippy::unwrap_used, dead_code)]

use std::net::SocketAddr;

use gateway_eventer::client::{Client, ClientConfig, Notification};
use gateway_model::{Event, Status};
use tokio::sync::mpsc;

use super::WAIT;

/// A real hat-event-server process (server_id 1, LMDB backend), killed on drop, with
/// kill and restart on the same port and database.
pub(crate) type HatServer = gateway_test_support::hat::HatEventServer;

/// Our eventer client, subscribed to `subscriptions`, once the server is operational.
pub(crate) async fn connect_observer(
    addr: SocketAddr,
    subscriptions: &[&str],
) -> (Client, mpsc::Receiver<Notification>) {
    let mut config = ClientConfig::new("test/observer");
    config.subscriptions = subscriptions
        .iter()
        .map(|s| gateway_model::event_type_from_str(s))
        .collect();
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

/// Events seen by a TCP observer.
pub(crate) struct TcpObserver {
    pub client: Client,
    rx: mpsc::Receiver<Notification>,
    pub events: Vec<Event>,
}

impl TcpObserver {
    /// Connects an observer to `gateway/*` and `event/*`.
    pub(crate) async fn connect(addr: SocketAddr) -> TcpObserver {
        let (client, rx) = connect_observer(addr, &["gateway/*", "event/*"]).await;
        TcpObserver {
            client,
            rx,
            events: Vec::new(),
        }
    }

    /// Waits until `pred` holds for the events seen so far.
    pub(crate) async fn wait_for(&mut self, what: &str, pred: impl Fn(&[Event]) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !pred(&self.events) {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(Notification::Events(events))) => self.events.extend(events),
                Ok(Some(Notification::Status(_))) => {}
                Ok(None) => panic!("observer disconnected waiting for {what}"),
                Err(_) => panic!("timed out waiting for {what}; events: {:#?}", self.events),
            }
        }
    }

    /// Waits until `device`'s running values equal `expected`.
    pub(crate) async fn wait_running(&mut self, device: &str, expected: &[bool]) {
        let what = format!("running {expected:?} of {device}");
        self.wait_for(&what, |e| {
            super::running_values(e, device).len() >= expected.len()
        })
        .await;
        assert_eq!(super::running_values(&self.events, device), expected);
    }

    /// Registers events (with response, so they are stored when this returns).
    pub(crate) async fn register(&self, events: Vec<gateway_model::RegisterEvent>) {
        let stored = self.client.register_with_response(events).await.unwrap();
        assert!(stored.is_some(), "server refused the registration");
    }
}
