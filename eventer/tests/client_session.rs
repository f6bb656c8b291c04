//! Our client against a scripted raw server: connection loss, acks, ordering and
//! protocol violations that the real server never produces.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use gateway_eventer::chatter::{FrameCodec, Msg};
use gateway_eventer::client::{
    Client, ClientConfig, ClientError, Notification, NOTIFICATION_CAPACITY,
};
use gateway_eventer::connection::ConnectionError;
use gateway_eventer::message::{EventerMsg, InitRes, RegisterRes};
use gateway_eventer::model::{
    event_type_from_str as t, Event, EventId, QueryLatestParams, QueryParams, RegisterEvent,
    Status, Timestamp,
};
use tokio::io::AsyncRead;
use tokio::io::AsyncWrite;
use tokio::net::TcpListener;
use tokio_util::codec::Framed;

const WAIT: Duration = Duration::from_secs(10);

fn quiet(name: &str) -> ClientConfig {
    let mut config = ClientConfig::new(name);
    config.ping_delay = None;
    config.init_timeout = Duration::from_secs(5);
    config
}

fn msg(id: i64, first: i64, owner: bool, last: bool, body: &EventerMsg) -> Msg {
    let mut data = Vec::new();
    body.encode(&mut data);
    Msg {
        id,
        first,
        owner,
        token: true,
        last,
        data_type: body.type_name().to_owned(),
        data: Bytes::from(data),
    }
}

fn event(name: &str, session: i64) -> Event {
    Event {
        id: EventId {
            server: 1,
            session,
            instance: 1,
        },
        event_type: t(name),
        timestamp: Timestamp::new(1_700_000_000, 0),
        source_timestamp: None,
        payload: None,
    }
}

/// The scripted server end of a connection.
struct FakeServer<T> {
    framed: Framed<T, FrameCodec>,
    next_id: i64,
}

impl<T: AsyncRead + AsyncWrite + Unpin> FakeServer<T> {
    fn new(io: T) -> Self {
        FakeServer {
            framed: Framed::new(io, FrameCodec::default()),
            next_id: 1,
        }
    }

    async fn recv(&mut self) -> (Msg, EventerMsg) {
        let frame = tokio::time::timeout(WAIT, self.framed.next())
            .await
            .expect("client sent nothing")
            .expect("client closed")
            .unwrap();
        let decoded = EventerMsg::decode(&frame.data_type, &frame.data).unwrap();
        (frame, decoded)
    }

    async fn send_new(&mut self, body: &EventerMsg, last: bool) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.framed
            .send(&msg(id, id, true, last, body))
            .await
            .unwrap();
        id
    }

    async fn reply(&mut self, first: i64, body: &EventerMsg) {
        let id = self.next_id;
        self.next_id += 1;
        self.framed
            .send(&msg(id, first, false, true, body))
            .await
            .unwrap();
    }

    /// Answers the init request with success(operational).
    async fn accept_init(&mut self) {
        let (frame, body) = self.recv().await;
        assert!(matches!(body, EventerMsg::InitReq(_)), "{body:?}");
        assert_eq!(
            (frame.id, frame.first, frame.owner, frame.last),
            (1, 1, true, false)
        );
        self.reply(
            frame.id,
            &EventerMsg::InitRes(InitRes::Success(Status::Operational)),
        )
        .await;
    }
}

fn duplex_pair() -> (tokio::io::DuplexStream, FakeServer<tokio::io::DuplexStream>) {
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    (ours, FakeServer::new(theirs))
}

#[tokio::test]
async fn server_drop_fails_pending_register_and_query_over_tcp() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let script = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut server = FakeServer::new(stream);
        server.accept_init().await;
        let (_, first) = server.recv().await;
        assert!(matches!(first, EventerMsg::RegisterReq(_)));
        let (_, second) = server.recv().await;
        assert!(matches!(second, EventerMsg::QueryReq(_)));
        // Drops the socket without answering either.
    });
    let (client, _rx) = Client::connect(addr, quiet("test/loss")).await.unwrap();
    let register =
        client.register_with_response(vec![RegisterEvent::json(t("a/b"), serde_json::json!(1))]);
    let query = client.query(QueryParams::Latest(QueryLatestParams::default()));
    let (register, query) = tokio::time::timeout(WAIT, async { tokio::join!(register, query) })
        .await
        .expect("pending calls hung after the server dropped the connection");
    for result in [register.map(|_| ()), query.map(|_| ())] {
        match result {
            Err(ClientError::ConnectionClosed(reason)) => {
                assert!(matches!(*reason, ConnectionError::PeerClosed), "{reason}")
            }
            other => panic!("expected ConnectionClosed, got {other:?}"),
        }
    }
    script.await.unwrap();
    assert!(client.is_closed());
    assert!(matches!(
        client.register(Vec::new()).await,
        Err(ClientError::ConnectionClosed(_))
    ));
}

#[tokio::test]
async fn notification_before_register_response_and_ack_only_when_asked() {
    let (io, mut server) = duplex_pair();
    let script = async {
        server.accept_init().await;
        let (request, body) = server.recv().await;
        assert!(!request.last);
        let EventerMsg::RegisterReq(events) = body else {
            panic!("{body:?}")
        };
        assert_eq!(events.len(), 1);
        let registered = vec![event("a/b", 5)];
        // hat order: the notify first, then the answer.
        server
            .send_new(&EventerMsg::EventsNotify(registered.clone()), true)
            .await;
        server
            .reply(
                request.id,
                &EventerMsg::RegisterRes(RegisterRes::Events(registered.clone())),
            )
            .await;
        // A notify that asks for an ack.
        let notify_id = server
            .send_new(&EventerMsg::EventsNotify(vec![event("a/c", 6)]), false)
            .await;
        let (ack, body) = server.recv().await;
        assert_eq!(body, EventerMsg::EventsAck);
        assert_eq!(
            (ack.first, ack.owner, ack.last, ack.token),
            (notify_id, false, true, true)
        );
        server
    };
    let client_side = async {
        let (client, mut rx) = Client::connect_stream(io, "duplex", quiet("test/order"))
            .await
            .unwrap();
        let registered = client
            .register_with_response(vec![RegisterEvent::json(t("a/b"), serde_json::json!(1))])
            .await
            .unwrap()
            .unwrap();
        // The notification was already waiting when the response came back.
        assert_eq!(rx.try_recv().unwrap(), Notification::Events(registered));
        let acked = tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(acked, Notification::Events(vec![event("a/c", 6)]));
        (client, rx)
    };
    let (_server, (_client, _rx)) = tokio::join!(script, client_side);
}

#[tokio::test(start_paused = true)]
async fn ack_waits_until_the_application_took_the_events() {
    let (io, mut server) = duplex_pair();
    let init = async {
        server.accept_init().await;
    };
    let ((), connected) = tokio::join!(
        init,
        Client::connect_stream(io, "duplex", quiet("test/slow"))
    );
    let (_client, mut rx) = connected.unwrap();
    // Fill the application's channel, then ask for an ack.
    for session in 0..NOTIFICATION_CAPACITY {
        server
            .send_new(
                &EventerMsg::EventsNotify(vec![event("fill", session as i64)]),
                true,
            )
            .await;
    }
    let notify_id = server
        .send_new(&EventerMsg::EventsNotify(vec![event("wanted", 1)]), false)
        .await;
    // Paused time only advances when every task is idle: no ack while the channel
    // is full, however long we wait.
    let early = tokio::time::timeout(Duration::from_secs(3600), server.framed.next()).await;
    assert!(early.is_err(), "acked before hand-over: {early:?}");
    // The application takes one batch: room for the wanted one, then the ack.
    rx.recv().await.unwrap();
    let (ack, body) = server.recv().await;
    assert_eq!(body, EventerMsg::EventsAck);
    assert_eq!(ack.first, notify_id);
    let mut last = None;
    while let Ok(notification) = rx.try_recv() {
        last = Some(notification);
    }
    assert_eq!(last, Some(Notification::Events(vec![event("wanted", 1)])));
}

#[tokio::test]
async fn status_notifications_update_status() {
    let (io, mut server) = duplex_pair();
    let ((), connected) = tokio::join!(
        server.accept_init(),
        Client::connect_stream(io, "duplex", quiet("test/status"))
    );
    let (client, mut rx) = connected.unwrap();
    assert_eq!(client.status(), Status::Operational);
    server
        .send_new(&EventerMsg::StatusNotify(Status::Stopping), true)
        .await;
    let got = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, Notification::Status(Status::Stopping));
    assert_eq!(client.status(), Status::Stopping);
}

#[tokio::test]
async fn message_before_init_response_is_a_protocol_error() {
    let (io, mut server) = duplex_pair();
    let script = async {
        let (frame, _) = server.recv().await;
        server
            .send_new(&EventerMsg::StatusNotify(Status::Operational), true)
            .await;
        server
            .reply(
                frame.id,
                &EventerMsg::InitRes(InitRes::Success(Status::Operational)),
            )
            .await;
    };
    let ((), connected) = tokio::join!(
        script,
        Client::connect_stream(io, "duplex", quiet("test/early"))
    );
    match connected {
        Err(ClientError::ConnectionClosed(reason)) => assert!(
            matches!(*reason, ConnectionError::UnexpectedMessage { type_name, .. } if type_name == "HatEventer.MsgStatusNotify"),
            "{reason}"
        ),
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[tokio::test]
async fn unexpected_request_from_server_closes_and_fails_pending_calls() {
    let (io, mut server) = duplex_pair();
    let ((), connected) = tokio::join!(
        server.accept_init(),
        Client::connect_stream(io, "duplex", quiet("test/unexpected"))
    );
    let (client, _rx) = connected.unwrap();
    let query = client.query(QueryParams::Latest(QueryLatestParams::default()));
    let script = async {
        server.recv().await;
        // A client never accepts requests.
        server
            .send_new(&EventerMsg::RegisterReq(Vec::new()), false)
            .await;
    };
    let ((), result) = tokio::join!(script, async {
        tokio::time::timeout(WAIT, query).await.unwrap()
    });
    match result {
        Err(ClientError::ConnectionClosed(reason)) => {
            assert!(
                matches!(*reason, ConnectionError::UnexpectedMessage { .. }),
                "{reason}"
            )
        }
        other => panic!("expected ConnectionClosed, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn init_timeout_when_server_never_answers() {
    let (io, mut server) = duplex_pair();
    let mut config = quiet("test/timeout");
    config.init_timeout = Duration::from_secs(2);
    let ((_frame, body), connected) =
        tokio::join!(server.recv(), Client::connect_stream(io, "duplex", config));
    assert!(matches!(body, EventerMsg::InitReq(_)));
    match connected {
        Err(ClientError::InitTimeout(d)) => assert_eq!(d, Duration::from_secs(2)),
        other => panic!("expected InitTimeout, got {other:?}"),
    }
}

#[tokio::test]
async fn init_error_is_typed() {
    let (io, mut server) = duplex_pair();
    let script = async {
        let (frame, _) = server.recv().await;
        server
            .reply(
                frame.id,
                &EventerMsg::InitRes(InitRes::Error("invalid client token".to_owned())),
            )
            .await;
    };
    let ((), connected) = tokio::join!(
        script,
        Client::connect_stream(io, "duplex", quiet("test/refused"))
    );
    match connected {
        Err(ClientError::InitError(text)) => assert_eq!(text, "invalid client token"),
        other => panic!("expected InitError, got {other:?}"),
    }
}

#[tokio::test]
async fn notification_right_after_the_init_response_is_delivered() {
    let (io, mut server) = duplex_pair();
    let script = async {
        let (frame, _) = server.recv().await;
        // Both frames in one write, so they reach the client in the same read: the
        // init response first, then a notification (a busy server does exactly this).
        let init = EventerMsg::InitRes(InitRes::Success(Status::Operational));
        let notify = EventerMsg::EventsNotify(vec![event("a", 1)]);
        server
            .framed
            .feed(&msg(1, frame.id, false, true, &init))
            .await
            .unwrap();
        server
            .framed
            .feed(&msg(2, 2, true, true, &notify))
            .await
            .unwrap();
        server.framed.flush().await.unwrap();
    };
    let ((), connected) = tokio::join!(
        script,
        Client::connect_stream(io, "duplex", quiet("test/right-after"))
    );
    let (_client, mut rx) = connected.expect("init must succeed");
    match tokio::time::timeout(WAIT, rx.recv()).await.unwrap() {
        Some(Notification::Events(events)) => assert_eq!(events, vec![event("a", 1)]),
        other => panic!("expected the notification, got {other:?}"),
    }
}
