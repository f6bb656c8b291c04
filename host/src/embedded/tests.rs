//! The embedded server's fan-out: local and TCP subscribers see the same batches in
//! the same order, with no lock held while the TCP side is notified.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use gateway_eventer::client::{Client, ClientConfig};
use gateway_model::{event_type_from_str, Event, Notification, RegisterEvent, Status};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::{EmbeddedConfig, EmbeddedServer};

const WAIT: Duration = Duration::from_secs(10);
const WRITERS: usize = 4;
const PER_WRITER: usize = 25;

/// The next notification, within [`WAIT`].
async fn next(receiver: &mut mpsc::Receiver<Notification>) -> Notification {
    tokio::time::timeout(WAIT, receiver.recv())
        .await
        .expect("no notification in time")
        .expect("notifications ended")
}

/// The next `count` event batches, skipping status notifications.
async fn batches(receiver: &mut mpsc::Receiver<Notification>, count: usize) -> Vec<Vec<Event>> {
    let mut batches = Vec::with_capacity(count);
    while batches.len() < count {
        if let Notification::Events(events) = next(receiver).await {
            batches.push(events);
        }
    }
    batches
}

async fn tcp_observer(server: &EmbeddedServer) -> (Client, mpsc::Receiver<Notification>) {
    let listener = server.listen("127.0.0.1:0", None).await.unwrap();
    let mut config = ClientConfig::new("observer");
    config.subscriptions = vec![event_type_from_str("t/*")];
    let addr = listener.local_addr().unwrap();
    // The listener keeps running when its handle is dropped.
    drop(listener);
    Client::connect(addr, config).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_reach_local_and_tcp_subscribers_in_one_order() {
    let server = EmbeddedServer::new(EmbeddedConfig::default());
    let (_client, mut tcp) = tcp_observer(&server).await;
    let (_local, mut local, _) = server
        .connect("local", vec![event_type_from_str("t/*")])
        .await
        .unwrap();
    let mut writers = JoinSet::new();
    for writer in 0..WRITERS {
        let server = server.clone();
        writers.spawn(async move {
            for i in 0..PER_WRITER {
                let event = RegisterEvent::json(
                    event_type_from_str(&format!("t/{writer}")),
                    serde_json::json!(i),
                );
                assert!(server.register(vec![event]).await.is_some());
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.unwrap();
    }
    let total = WRITERS * PER_WRITER;
    let local = batches(&mut local, total).await;
    let tcp = batches(&mut tcp, total).await;
    assert_eq!(local, tcp);
    // Session order: one session per registration, increasing.
    let sessions: Vec<i64> = local.iter().map(|batch| batch[0].id.session).collect();
    assert!(sessions.windows(2).all(|pair| pair[0] < pair[1]));
}

#[tokio::test]
async fn a_status_change_reaches_tcp_subscribers_between_the_batches_around_it() {
    let server = EmbeddedServer::new(EmbeddedConfig {
        refuse_registers_unless_operational: false,
        ..EmbeddedConfig::default()
    });
    let (_client, mut tcp) = tcp_observer(&server).await;
    let event = |i: i64| RegisterEvent::json(event_type_from_str("t/a"), serde_json::json!(i));
    server.register(vec![event(1)]).await.unwrap();
    server.set_status(Status::Standby).await;
    server.register(vec![event(2)]).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        seen.push(next(&mut tcp).await);
    }
    assert!(matches!(&seen[0], Notification::Events(e) if e[0].id.session == 2));
    assert_eq!(seen[1], Notification::Status(Status::Standby));
    assert!(matches!(&seen[2], Notification::Events(e) if e[0].id.session == 3));
}

#[tokio::test]
async fn an_in_process_connection_flooding_new_event_types_is_refused_at_the_limit() {
    use gateway_model::client::EventClient;
    let server = EmbeddedServer::new(EmbeddedConfig {
        max_event_types: 100,
        ..EmbeddedConfig::default()
    });
    let (local, _notifications, _) = server.connect("plugin", vec![]).await.unwrap();
    let mut refused = 0;
    for i in 0..1000 {
        let event =
            RegisterEvent::json(event_type_from_str(&format!("f/{i}")), serde_json::json!(i));
        if local
            .register_with_response(vec![event])
            .await
            .unwrap()
            .is_none()
        {
            refused += 1;
        }
    }
    assert!(server.event_types() <= 100, "{}", server.event_types());
    assert!(refused >= 900, "{refused}");
    assert_eq!(server.refused_registers(), refused);
    // Known types still register.
    let known = RegisterEvent::json(event_type_from_str("f/0"), serde_json::json!(-1));
    assert!(local
        .register_with_response(vec![known])
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn a_local_connection_dropped_for_not_reading_is_no_longer_open() {
    use gateway_model::client::{ClientError, EventClient};
    let server = EmbeddedServer::new(EmbeddedConfig::default());
    let (stalled, _unread, _) = server
        .connect("stalled", vec![event_type_from_str("t/*")])
        .await
        .unwrap();
    let (writer, _notifications, _) = server.connect("writer", vec![]).await.unwrap();
    assert!(stalled.is_open());
    for i in 0..=super::LOCAL_NOTIFY_CAPACITY {
        let event = RegisterEvent::json(event_type_from_str("t/a"), serde_json::json!(i));
        writer.register(vec![event]).await.unwrap();
    }
    assert!(!stalled.is_open());
    assert!(writer.is_open());
    assert!(matches!(
        stalled.register(vec![]).await,
        Err(ClientError::ConnectionClosed)
    ));
    assert_eq!(server.stats().local_connections, 1);
}

#[tokio::test]
async fn an_unanswered_tcp_register_is_stored_and_notified_and_forgeries_are_refused() {
    let server = EmbeddedServer::new(EmbeddedConfig {
        own_gateway: Some("G".to_owned()),
        ..EmbeddedConfig::default()
    });
    let (writer, _) = tcp_observer(&server).await;
    let (_observer, mut local, _) = server
        .connect("local", vec![event_type_from_str("*")])
        .await
        .unwrap();
    let forged = event_type_from_str("gateway/G/sim/d/gateway/running");
    writer
        .register(vec![RegisterEvent::json(
            forged.clone(),
            serde_json::json!(true),
        )])
        .await
        .unwrap();
    let data = event_type_from_str("t/data");
    writer
        .register(vec![RegisterEvent::json(
            data.clone(),
            serde_json::json!(1),
        )])
        .await
        .unwrap();
    let notified = batches(&mut local, 1).await;
    assert_eq!(notified[0].len(), 1);
    assert_eq!(notified[0][0].event_type, data);
    let latest = |event_type: &gateway_model::EventType| {
        server
            .query(&gateway_model::QueryParams::Latest(
                gateway_model::QueryLatestParams {
                    event_types: Some(vec![event_type.clone()]),
                },
            ))
            .events
    };
    assert!(latest(&forged).is_empty());
    assert_eq!(latest(&data).len(), 1);
}
