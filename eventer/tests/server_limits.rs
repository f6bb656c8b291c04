//! The server's limits: `max_connections` (one more is closed at once, and there is
//! room again once one ends), `require_token` (stricter than hat: no token refused),
//! and `max_outbound_bytes` (a client that does not read is closed once its waiting
//! notifications pass the byte limit, long before the message limit).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::memory::MemoryHandler;
use common::raw::{self, RawPeer};
use common::WAIT;
use gateway_eventer::message::{EventerMsg, InitRes};
use gateway_eventer::model::{
    event_type_from_str as t, Event, EventId, Payload, Status, Timestamp,
};
use gateway_eventer::server::{Server, ServerConfig};
use serde_json::json;

async fn start(
    config: ServerConfig,
) -> (Server, tokio::sync::mpsc::Receiver<common::memory::Closed>) {
    let (handler, closed) = MemoryHandler::new();
    let config = ServerConfig {
        initial_status: Status::Operational,
        ping_delay: None,
        ..config
    };
    let server = Server::listen("127.0.0.1:0", handler, config)
        .await
        .unwrap();
    (server, closed)
}

/// The init answer to a request with `token`.
async fn init_with(server: &Server, token: Option<&str>) -> InitRes {
    let mut peer = RawPeer::connect(server.local_addr().unwrap()).await;
    let mut request = raw::init_req("raw", vec![]);
    if let EventerMsg::InitReq(init) = &mut request {
        init.client_token = token.map(str::to_owned);
    }
    peer.send(&request, false).await;
    match peer.recv().await.1 {
        EventerMsg::InitRes(res) => res,
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn one_connection_more_than_max_connections_is_closed_at_once() {
    let (server, _closed) = start(ServerConfig {
        max_connections: 2,
        ..ServerConfig::default()
    })
    .await;
    let addr = server.local_addr().unwrap();
    let mut first = RawPeer::connect(addr).await;
    first.init("first", vec![], None, false).await;
    let mut second = RawPeer::connect(addr).await;
    second.init("second", vec![], None, false).await;
    let mut third = RawPeer::connect(addr).await;
    third.assert_closed_by_server().await;
    drop(first);
    // Room again once the first connection has ended: a new client gets an answer.
    let init = raw::frame(&raw::eventer_msg(
        1,
        1,
        true,
        false,
        &raw::init_req("next", vec![]),
    ));
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut next = tokio::net::TcpStream::connect(addr).await.unwrap();
        let _ = next.write_all(&init).await;
        let mut answer = [0_u8; 64];
        let read = tokio::time::timeout(Duration::from_millis(500), next.read(&mut answer)).await;
        if matches!(read, Ok(Ok(n)) if n > 0) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no room after a close"
        );
    }
}

#[tokio::test]
async fn require_token_refuses_clients_without_one_hat_rule_admits_them() {
    let token = Some("secret".to_owned());
    let (strict, _c1) = start(ServerConfig {
        server_token: token.clone(),
        require_token: true,
        ..ServerConfig::default()
    })
    .await;
    assert_eq!(
        init_with(&strict, None).await,
        InitRes::Error("invalid client token".to_owned())
    );
    assert_eq!(
        init_with(&strict, Some("secreT")).await,
        InitRes::Error("invalid client token".to_owned())
    );
    assert!(matches!(
        init_with(&strict, Some("secret")).await,
        InitRes::Success(_)
    ));
    let (hat, _c2) = start(ServerConfig {
        server_token: token,
        ..ServerConfig::default()
    })
    .await;
    assert!(matches!(init_with(&hat, None).await, InitRes::Success(_)));
}

#[tokio::test]
async fn a_client_that_does_not_read_is_closed_at_the_byte_limit() {
    const LIMIT: usize = 2 * 1024 * 1024;
    let (server, mut closed) = start(ServerConfig {
        max_outbound_bytes: LIMIT,
        ..ServerConfig::default()
    })
    .await;
    let addr = server.local_addr().unwrap();
    let mut slow = RawPeer::connect_with_recv_buffer(addr, 4096).await;
    slow.init("slow", vec![t("*")], None, false).await;
    let payload = Payload::json(json!("x".repeat(64 * 1024)));
    let mut notified_batches = 0;
    // The message limit (4,096) is never reached: 1,000 batches of 64 KiB.
    for session in 1..=1000 {
        let event = Event {
            id: EventId {
                server: 1,
                session,
                instance: 1,
            },
            event_type: t("big/a"),
            timestamp: Timestamp::now(),
            source_timestamp: None,
            payload: Some(payload.clone()),
        };
        if server.notify_events(&[event], false, false).await == 0 {
            break;
        }
        notified_batches += 1;
    }
    let report = tokio::time::timeout(WAIT, closed.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.kind, "SlowConsumer", "{}", report.reason);
    // Socket buffers, the 1 MiB write buffer and the 2 MiB queue: well under 1,000.
    assert!(notified_batches < 300, "{notified_batches}");
}

/// A handler whose register never returns: requests pile up in the connection.
struct Stuck {
    closed: tokio::sync::mpsc::UnboundedSender<String>,
}

impl gateway_eventer::server::ServerHandler for Stuck {
    fn register<'a>(
        &'a self,
        _server: &'a Server,
        _info: &'a gateway_eventer::server::ConnectionInfo,
        _events: Vec<gateway_eventer::model::RegisterEvent>,
    ) -> futures::future::BoxFuture<'a, Option<Vec<Event>>> {
        Box::pin(std::future::pending())
    }

    fn query<'a>(
        &'a self,
        _server: &'a Server,
        _info: &'a gateway_eventer::server::ConnectionInfo,
        _params: gateway_eventer::model::QueryParams,
    ) -> futures::future::BoxFuture<'a, Result<gateway_eventer::model::QueryResult, String>> {
        Box::pin(std::future::pending())
    }

    fn connection_closed(
        &self,
        _peer: std::net::SocketAddr,
        _info: Option<&gateway_eventer::server::ConnectionInfo>,
        reason: &gateway_eventer::connection::ConnectionError,
    ) {
        let _ = self.closed.send(reason.to_string());
    }
}

#[tokio::test]
async fn decoded_requests_waiting_for_the_handler_count_against_the_input_budget() {
    const BUDGET: usize = 1024 * 1024;
    let (tx, mut closed) = tokio::sync::mpsc::unbounded_channel();
    let config = ServerConfig {
        initial_status: Status::Operational,
        ping_delay: None,
        max_buffered_input: BUDGET,
        ..ServerConfig::default()
    };
    let server = Server::listen(
        "127.0.0.1:0",
        std::sync::Arc::new(Stuck { closed: tx }),
        config,
    )
    .await
    .unwrap();
    let mut peer = RawPeer::connect(server.local_addr().unwrap()).await;
    peer.init("stuck", vec![], None, false).await;
    // 40 requests of 64 KiB (2.5 MiB) while the handler takes none after the first:
    // without the budget all would wait in the connection's queue (it holds 64).
    let payload = Payload::json(json!("x".repeat(64 * 1024)));
    let event = gateway_eventer::model::RegisterEvent {
        event_type: t("big/a"),
        source_timestamp: None,
        payload: Some(payload),
    };
    for _ in 0..40 {
        let request = EventerMsg::RegisterReq(vec![event.clone()]);
        let frame = raw::frame(&raw::eventer_msg(100, 100, true, false, &request));
        if peer.stream.write_all(&frame).await.is_err() {
            break;
        }
    }
    // The connection ends (the stuck handler never returns, so nothing is reported
    // to it yet).
    peer.assert_closed_by_server().await;
    assert!(closed.try_recv().is_err());
}
