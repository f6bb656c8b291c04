//! Our server's request and notification rules, observed frame by frame by raw peers.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::memory::MemoryHandler;
use common::raw::RawPeer;
use common::WAIT;
use gateway_eventer::message::{EventerMsg, RegisterRes};
use gateway_eventer::model::{
    event_type_from_str as t, Event, EventId, QueryLatestParams, QueryParams, RegisterEvent,
    Status, Timestamp,
};
use gateway_eventer::server::{Server, ServerConfig};
use serde_json::json;

async fn start() -> (
    Server,
    Arc<MemoryHandler>,
    tokio::sync::mpsc::Receiver<common::memory::Closed>,
) {
    let (handler, closed) = MemoryHandler::new();
    let config = ServerConfig {
        initial_status: Status::Operational,
        ..ServerConfig::default()
    };
    let server = Server::listen("127.0.0.1:0", handler.clone(), config)
        .await
        .unwrap();
    (server, handler, closed)
}

fn latest(types: &[&str]) -> EventerMsg {
    EventerMsg::QueryReq(QueryParams::Latest(QueryLatestParams {
        event_types: Some(types.iter().map(|s| t(s)).collect()),
    }))
}

fn register(name: &str) -> EventerMsg {
    EventerMsg::RegisterReq(vec![RegisterEvent::json(t(name), json!(1))])
}

fn event(name: &str, server: i64) -> Event {
    Event {
        id: EventId {
            server,
            session: 1,
            instance: 1,
        },
        event_type: t(name),
        timestamp: Timestamp::new(1, 0),
        source_timestamp: None,
        payload: None,
    }
}

#[tokio::test]
async fn requests_are_answered_in_order_and_only_when_wanted() {
    let (server, handler, _closed) = start().await;
    let mut peer = RawPeer::connect(server.local_addr().unwrap()).await;
    assert_eq!(
        peer.init("raw", Vec::new(), None, false).await,
        Status::Operational
    );

    // Back to back: register without answer, register with answer, query with
    // last = true (still answered), empty register.
    let silent = peer.send(&register("r/silent"), true).await;
    let answered = peer.send(&register("r/answered"), false).await;
    let query = peer.send(&latest(&["r/*"]), true).await;
    let empty = peer.send(&EventerMsg::RegisterReq(Vec::new()), false).await;

    let (msg, body) = peer.recv().await;
    assert_eq!((msg.first, msg.owner, msg.last), (answered, false, true));
    let EventerMsg::RegisterRes(RegisterRes::Events(events)) = body else {
        panic!("{body:?}")
    };
    assert_eq!(events[0].event_type, t("r/answered"));
    // Handled one at a time in arrival order: the silent one got session 1.
    assert_eq!(events[0].id.session, 2);

    let (msg, body) = peer.recv().await;
    assert_eq!(msg.first, query);
    let EventerMsg::QueryRes(result) = body else {
        panic!("{body:?}")
    };
    let mut types: Vec<_> = result.events.iter().map(|e| e.event_type.clone()).collect();
    types.sort();
    assert_eq!(types, [t("r/answered"), t("r/silent")]);

    let (msg, body) = peer.recv().await;
    assert_eq!(msg.first, empty);
    assert_eq!(
        body,
        EventerMsg::RegisterRes(RegisterRes::Events(Vec::new()))
    );
    assert_ne!(msg.first, silent);
    // The empty register reached no handler: two stored events only.
    assert_eq!(handler.events().len(), 2);
    server.close().await;
}

#[tokio::test]
async fn notifications_are_filtered_per_connection() {
    let (server, _handler, _closed) = start().await;
    let addr = server.local_addr().unwrap();
    let mut any = RawPeer::connect(addr).await;
    any.init("any", vec![t("*")], None, false).await;
    let mut server_two = RawPeer::connect(addr).await;
    server_two.init("two", vec![t("*")], Some(2), false).await;
    let mut persisted = RawPeer::connect(addr).await;
    persisted
        .init("persisted", vec![t("a/*")], None, true)
        .await;
    let mut narrow = RawPeer::connect(addr).await;
    narrow.init("narrow", vec![t("b/?")], None, false).await;
    assert_eq!(server.connection_infos().len(), 4);

    let batch = [event("a/x", 1), event("b/y", 2), event("b/y/z", 1)];
    assert_eq!(server.notify_events(&batch, false, false).await, 3);
    assert_eq!(server.notify_events(&batch, true, false).await, 1);

    let expect =
        |events: &[&Event]| EventerMsg::EventsNotify(events.iter().map(|e| (*e).clone()).collect());
    let (msg, body) = any.recv().await;
    assert_eq!(body, expect(&[&batch[0], &batch[1], &batch[2]]));
    assert!(msg.owner && msg.last && msg.first == msg.id);
    assert_eq!(server_two.recv().await.1, expect(&[&batch[1]]));
    assert_eq!(narrow.recv().await.1, expect(&[&batch[1]]));
    assert_eq!(persisted.recv().await.1, expect(&[&batch[0]]));

    // Status goes to everyone; setting the same status again sends nothing, so the
    // next frame everyone sees is the second change.
    server.set_status(Status::Standby).await;
    server.set_status(Status::Standby).await;
    server.set_status(Status::Operational).await;
    for peer in [&mut any, &mut server_two, &mut persisted, &mut narrow] {
        assert_eq!(
            peer.recv().await.1,
            EventerMsg::StatusNotify(Status::Standby)
        );
        assert_eq!(
            peer.recv().await.1,
            EventerMsg::StatusNotify(Status::Operational)
        );
    }
    server.close().await;
}

#[tokio::test]
async fn notify_with_ack_waits_for_the_ack() {
    let (server, _handler, _closed) = start().await;
    let mut peer = RawPeer::connect(server.local_addr().unwrap()).await;
    peer.init("acker", vec![t("*")], None, false).await;
    let notifier = server.clone();
    let notify =
        tokio::spawn(async move { notifier.notify_events(&[event("a", 1)], false, true).await });
    let (msg, body) = peer.recv().await;
    assert!(matches!(body, EventerMsg::EventsNotify(_)));
    assert!(!msg.last, "a notify that wants an ack has last = false");
    assert!(!notify.is_finished());
    // An ack for some other conversation does not count.
    peer.send(&EventerMsg::EventsAck, true).await;
    // Requests are handled in order: once this query is answered, the stray ack was
    // processed too.
    let query = peer.send(&latest(&["*"]), false).await;
    assert_eq!(peer.recv().await.0.first, query);
    assert!(!notify.is_finished());
    // The real ack: owner = false in the notify's conversation.
    peer.reply(msg.id, &EventerMsg::EventsAck, true).await;
    assert_eq!(
        tokio::time::timeout(WAIT, notify).await.unwrap().unwrap(),
        1
    );
    server.close().await;
}

#[tokio::test]
async fn close_ends_every_connection_with_server_closed() {
    let (server, _handler, mut closed) = start().await;
    let mut peer = RawPeer::connect(server.local_addr().unwrap()).await;
    peer.init("victim", Vec::new(), None, false).await;
    tokio::time::timeout(WAIT, server.close()).await.unwrap();
    let report = closed
        .try_recv()
        .expect("close returned before the connection ended");
    assert_eq!(report.kind, "ServerClosed");
    assert_eq!(report.client_name.as_deref(), Some("victim"));
    assert!(server.connection_infos().is_empty());
    // The listener is gone too.
    assert!(tokio::net::TcpStream::connect(server.local_addr().unwrap())
        .await
        .is_err());
}
