//! Unit tests of the session core over in-memory streams: a raw chatter peer on one end
//! of a `tokio::io::duplex`, the connection task on the other. Keepalive tests run on
//! paused time, so they take no wall-clock time and cannot flake.

use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use gateway_model::{QueryLatestParams, QueryParams, QueryResult, Status};
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::time::Instant;
use tokio_util::codec::Framed;

use super::*;
use crate::chatter::{FrameCodec, Msg, PING_TYPE, PONG_TYPE};
use crate::message::EventerMsg;

/// Bound for waits that must succeed (paused time advances it instantly when idle).
const WAIT: Duration = Duration::from_secs(5);

type Peer = Framed<DuplexStream, FrameCodec>;

fn start(config: SessionConfig) -> (Session, mpsc::Receiver<Inbound>, Peer) {
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let (session, inbound) = spawn(ours, config, tracing::Span::none());
    (session, inbound, Framed::new(theirs, FrameCodec::default()))
}

fn quiet() -> SessionConfig {
    SessionConfig {
        ping_delay: None,
        ..SessionConfig::default()
    }
}

fn eventer_frame(id: i64, first: i64, owner: bool, last: bool, msg: &EventerMsg) -> Msg {
    let mut data = Vec::new();
    msg.encode(&mut data);
    Msg {
        id,
        first,
        owner,
        token: true,
        last,
        data_type: msg.type_name().to_owned(),
        data: Bytes::from(data),
    }
}

fn ping(id: i64) -> Msg {
    Msg {
        id,
        first: id,
        owner: true,
        token: true,
        last: false,
        data_type: PING_TYPE.to_owned(),
        data: Bytes::new(),
    }
}

async fn recv(peer: &mut Peer) -> Msg {
    tokio::time::timeout(WAIT, peer.next())
        .await
        .expect("peer waited too long for a frame")
        .expect("stream ended")
        .expect("bad frame")
}

fn latest_all() -> EventerMsg {
    EventerMsg::QueryReq(QueryParams::Latest(QueryLatestParams::default()))
}

#[tokio::test]
async fn ids_start_at_one_and_count_pongs() {
    let (session, mut inbound, mut peer) = start(quiet());
    peer.send(&ping(1)).await.unwrap();
    let pong = recv(&mut peer).await;
    assert_eq!(
        (pong.id, pong.first, pong.owner, pong.token, pong.last),
        (1, 1, false, true, true)
    );
    assert_eq!(pong.data_type, PONG_TYPE);
    assert!(pong.data.is_empty());

    session
        .send(EventerMsg::StatusNotify(Status::Operational), true)
        .await
        .unwrap();
    let notify = recv(&mut peer).await;
    assert_eq!(
        (notify.id, notify.first, notify.owner, notify.last),
        (2, 2, true, true)
    );

    // The ping never reached the owner: the next inbound item is the status.
    let status = EventerMsg::StatusNotify(Status::Standby);
    peer.send(&eventer_frame(2, 2, true, true, &status))
        .await
        .unwrap();
    let got = tokio::time::timeout(WAIT, inbound.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.msg, status);
    assert_eq!((got.first, got.owner, got.last), (2, true, true));
}

#[tokio::test]
async fn responses_match_on_owner_false_and_first() {
    let (session, mut inbound, mut peer) = start(quiet());
    let pending = session.request(latest_all()).await.unwrap();
    let request = recv(&mut peer).await;
    assert_eq!(
        (request.id, request.first, request.owner, request.last),
        (1, 1, true, false)
    );

    // The peer's own conversation that happens to have the same number is not the
    // answer (owner = true), nor is an answer to a conversation we never started.
    let status = EventerMsg::StatusNotify(Status::Operational);
    peer.send(&eventer_frame(1, 1, true, true, &status))
        .await
        .unwrap();
    let result = QueryResult::default();
    let stray = EventerMsg::QueryRes(QueryResult {
        events: Vec::new(),
        more_follows: true,
    });
    peer.send(&eventer_frame(2, 7, false, true, &stray))
        .await
        .unwrap();
    peer.send(&eventer_frame(
        3,
        1,
        false,
        true,
        &EventerMsg::QueryRes(result.clone()),
    ))
    .await
    .unwrap();

    let response = tokio::time::timeout(WAIT, pending.response())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.msg, EventerMsg::QueryRes(result));
    let first = inbound.recv().await.unwrap();
    assert_eq!(first.msg, status);
    let second = inbound.recv().await.unwrap();
    assert_eq!((second.msg, second.first, second.owner), (stray, 7, false));
}

#[tokio::test]
async fn replies_carry_the_peers_conversation() {
    let (session, _inbound, mut peer) = start(quiet());
    session
        .reply(42, EventerMsg::EventsAck, true)
        .await
        .unwrap();
    let ack = recv(&mut peer).await;
    assert_eq!(
        (ack.id, ack.first, ack.owner, ack.last),
        (1, 42, false, true)
    );
    assert_eq!(ack.data_type, "HatEventer.MsgEventsAck");
}

#[tokio::test]
async fn pending_request_fails_with_reason_when_peer_disappears() {
    let (session, _inbound, mut peer) = start(quiet());
    let pending = session.request(latest_all()).await.unwrap();
    recv(&mut peer).await;
    drop(peer);
    let err = tokio::time::timeout(WAIT, pending.response())
        .await
        .expect("pending request hung after the peer closed")
        .unwrap_err();
    assert!(matches!(*err, ConnectionError::PeerClosed), "{err}");
    // Later calls fail at once with the same reason.
    let again = session.request(latest_all()).await.unwrap_err();
    assert!(matches!(*again, ConnectionError::PeerClosed));
    assert!(session.is_closed());
}

#[tokio::test]
async fn peer_gone_mid_frame_is_a_truncated_frame() {
    let (session, _inbound, peer) = start(quiet());
    let mut raw = peer.into_inner();
    raw.write_all(&[0x01, 0x20, 0x81, 0x81]).await.unwrap();
    drop(raw);
    let reason = tokio::time::timeout(WAIT, session.closed()).await.unwrap();
    assert!(
        matches!(
            *reason,
            ConnectionError::Chatter(ChatterError::TruncatedFrame { buffered: 4 })
        ),
        "{reason}"
    );
}

#[tokio::test]
async fn oversized_frame_ends_the_connection_before_reading_it() {
    let (ours, theirs) = tokio::io::duplex(1024);
    let config = SessionConfig {
        max_frame_size: 100,
        ..quiet()
    };
    let (session, _inbound) = spawn(ours, config, tracing::Span::none());
    let mut raw = theirs;
    // Announces 4 GiB; only the prefix is ever sent.
    raw.write_all(&[0x04, 0xff, 0xff, 0xff, 0xff])
        .await
        .unwrap();
    let reason = tokio::time::timeout(WAIT, session.closed()).await.unwrap();
    assert!(
        matches!(
            *reason,
            ConnectionError::Chatter(ChatterError::FrameTooLarge { max: 100, .. })
        ),
        "{reason}"
    );
}

#[tokio::test]
async fn undecodable_payload_ends_the_connection_with_message_error() {
    let (session, _inbound, mut peer) = start(quiet());
    let unknown = Msg {
        data_type: "Foo.Bar".to_owned(),
        ..ping(1)
    };
    peer.send(&unknown).await.unwrap();
    let reason = tokio::time::timeout(WAIT, session.closed()).await.unwrap();
    assert!(
        matches!(&*reason, ConnectionError::Message(MessageError::UnknownType(t)) if t == "Foo.Bar"),
        "{reason}"
    );
    // The stream is closed on our side too.
    assert!(tokio::time::timeout(WAIT, peer.next())
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn fail_publishes_the_given_reason_and_flushes_queued_messages() {
    let (session, _inbound, mut peer) = start(quiet());
    session
        .send(EventerMsg::StatusNotify(Status::Stopping), true)
        .await
        .unwrap();
    session.fail(ConnectionError::InitRejected("nope".to_owned()));
    let reason = tokio::time::timeout(WAIT, session.closed()).await.unwrap();
    assert!(matches!(&*reason, ConnectionError::InitRejected(t) if t == "nope"));
    let msg = recv(&mut peer).await;
    assert_eq!(msg.data_type, "HatEventer.MsgStatusNotify");
    assert!(tokio::time::timeout(WAIT, peer.next())
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn dropping_every_handle_closes_the_connection() {
    let (session, inbound, mut peer) = start(quiet());
    drop(session);
    drop(inbound);
    assert!(tokio::time::timeout(WAIT, peer.next())
        .await
        .unwrap()
        .is_none());
}

#[tokio::test(start_paused = true)]
async fn pings_after_delay_and_closes_after_timeout() {
    let config = SessionConfig {
        ping_delay: Some(Duration::from_secs(3)),
        ping_timeout: Duration::from_secs(2),
        ..SessionConfig::default()
    };
    let (session, _inbound, mut peer) = start(config);
    let started = Instant::now();
    let ping = recv(&mut peer).await;
    assert_eq!(ping.data_type, PING_TYPE);
    assert_eq!(
        (ping.id, ping.first, ping.owner, ping.last),
        (1, 1, true, false)
    );
    assert_eq!(started.elapsed(), Duration::from_secs(3));

    // No answer: closed exactly ping_timeout later.
    let reason = tokio::time::timeout(Duration::from_secs(60), session.closed())
        .await
        .unwrap();
    assert!(
        matches!(*reason, ConnectionError::PingTimeout(_)),
        "{reason}"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn any_received_message_keeps_the_connection_alive() {
    let config = SessionConfig {
        ping_delay: Some(Duration::from_secs(3)),
        ping_timeout: Duration::from_secs(2),
        ..SessionConfig::default()
    };
    let (session, _inbound, mut peer) = start(config);
    for round in 0..3_i64 {
        let ping = recv(&mut peer).await;
        assert_eq!(ping.data_type, PING_TYPE);
        let pong = Msg {
            id: round + 1,
            first: ping.id,
            owner: false,
            last: true,
            data_type: PONG_TYPE.to_owned(),
            ..ping
        };
        peer.send(&pong).await.unwrap();
    }
    assert!(!session.is_closed());
    assert!(session.close_reason().is_none());
}

#[tokio::test(start_paused = true)]
async fn no_pings_when_disabled() {
    let (session, _inbound, mut peer) = start(quiet());
    let nothing = tokio::time::timeout(Duration::from_secs(3600), peer.next()).await;
    assert!(nothing.is_err(), "got {nothing:?}");
    assert!(!session.is_closed());
}

#[tokio::test(start_paused = true)]
async fn slow_owner_pauses_reading_without_losing_messages() {
    let config = SessionConfig {
        ping_delay: Some(Duration::from_secs(1)),
        ping_timeout: Duration::from_secs(1),
        ..SessionConfig::default()
    };
    let (session, mut inbound, mut peer) = start(config);
    let total = INBOUND_CAPACITY as i64 + 10;
    for i in 1..=total {
        let msg = EventerMsg::StatusNotify(Status::Operational);
        peer.send(&eventer_frame(i, i, true, true, &msg))
            .await
            .unwrap();
    }
    // The owner does not read for far longer than the keepalive: that silence is ours,
    // not the peer's, so the connection must stay up.
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(!session.is_closed(), "{:?}", session.close_reason());
    for i in 1..=total {
        let got = tokio::time::timeout(WAIT, inbound.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.first, i);
    }
}

#[tokio::test]
async fn ping_flood_without_reading_is_bounded() {
    let (ours, theirs) = tokio::io::duplex(1024);
    let (session, _inbound) = spawn(ours, quiet(), tracing::Span::none());
    let mut peer = Framed::new(theirs, FrameCodec::default());
    // Never read the Pongs; each one is 22 bytes, so the limit is reached well within
    // this many Pings.
    let most = 2 * task::WRITE_HARD_LIMIT / 22;
    let mut id = 0i64;
    while (id as usize) < most && !session.is_closed() {
        for _ in 0..1000 {
            id += 1;
            if peer.feed(&ping(id)).await.is_err() {
                break;
            }
        }
        if peer.flush().await.is_err() {
            break;
        }
    }
    let reason = tokio::time::timeout(WAIT, session.closed()).await.unwrap();
    assert!(
        matches!(*reason, ConnectionError::UnreadOutput { bytes } if bytes >= task::WRITE_HARD_LIMIT),
        "{reason:?}"
    );
}

#[tokio::test]
async fn full_queue_of_a_reading_peer_is_waited_for_not_refused() {
    // Capacity 1 and a current-thread runtime: the connection task cannot run between
    // two queued messages unless queuing yields, so the queue is full at once although
    // the peer reads everything.
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let (session, _inbound) = spawn_with_capacity(ours, quiet(), 1, tracing::Span::none());
    let mut peer = Framed::new(theirs, FrameCodec::default());
    let reader = tokio::spawn(async move {
        let mut received = 0;
        while received < 100 {
            match peer.next().await {
                Some(Ok(_)) => received += 1,
                other => panic!("peer stopped after {received} frames: {other:?}"),
            }
        }
        received
    });
    for _ in 0..100 {
        let status = EventerMsg::StatusNotify(Status::Operational);
        assert_eq!(session.try_send(status, true).await, Ok(()));
    }
    assert_eq!(
        tokio::time::timeout(WAIT, reader).await.unwrap().unwrap(),
        100
    );
}

#[test]
fn events_notify_from_references_encodes_like_the_owned_message() {
    let event = |instance: i64, segment: &str, payload: Option<gateway_model::Payload>| {
        gateway_model::Event {
            id: gateway_model::EventId {
                server: 1,
                session: 7,
                instance,
            },
            event_type: vec!["a".to_owned(), segment.to_owned()],
            timestamp: gateway_model::Timestamp::new(1_700_000_000, 5),
            source_timestamp: (instance == 2).then(|| gateway_model::Timestamp::new(3, 4)),
            payload,
        }
    };
    let events = vec![
        event(
            1,
            "x",
            Some(gateway_model::Payload::json(serde_json::json!({"v": 1}))),
        ),
        event(2, "yy", None),
        event(
            3,
            "z",
            Some(gateway_model::Payload::Binary {
                type_name: "t".to_owned(),
                data: vec![1, 2, 3],
            }),
        ),
    ];
    let shared: Vec<std::sync::Arc<gateway_model::Event>> =
        events.iter().cloned().map(std::sync::Arc::new).collect();
    let from_refs = EncodedMsg::events_notify(shared.iter().map(|e| &**e));
    assert_eq!(
        from_refs,
        EncodedMsg::new(&EventerMsg::EventsNotify(events.clone()))
    );
    assert_eq!(from_refs.type_name(), crate::message::MSG_EVENTS_NOTIFY);
    assert_eq!(
        EncodedMsg::events_notify(std::iter::empty()),
        EncodedMsg::new(&EventerMsg::EventsNotify(Vec::new()))
    );
}
