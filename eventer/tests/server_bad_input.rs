//! Bad input against our Eventer server over raw TCP: each case must end only that
//! connection, with a typed reason reported to the handler and logged with the peer,
//! while the server keeps serving a fresh client.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::memory::{Closed, MemoryHandler};
use common::raw::{self, RawPeer};
use common::WAIT;
use gateway_eventer::chatter::{PING_TYPE, PONG_TYPE};
use gateway_eventer::client::{Client, ClientConfig};
use gateway_eventer::message::{EventerMsg, InitReq, InitRes};
use gateway_eventer::model::{
    event_type_from_str as t, JsonText, Payload, QueryLatestParams, QueryParams, RegisterEvent,
    Status,
};
use gateway_eventer::server::{Server, ServerConfig};
use serde_json::json;
use tokio::sync::mpsc;

const MAX_FRAME: usize = 64 * 1024;

struct Fixture {
    server: Server,
    handler: Arc<MemoryHandler>,
    closed: mpsc::Receiver<Closed>,
}

async fn fixture() -> Fixture {
    let (handler, closed) = MemoryHandler::new();
    let config = ServerConfig {
        initial_status: Status::Operational,
        max_frame_size: MAX_FRAME,
        init_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    };
    let server = Server::listen("127.0.0.1:0", handler.clone(), config)
        .await
        .unwrap();
    Fixture {
        server,
        handler,
        closed,
    }
}

/// The init request every raw peer here sends.
fn init_req() -> EventerMsg {
    raw::init_req("raw", vec![t("*")])
}

impl Fixture {
    /// A raw peer connected but not initialized.
    async fn connect(&self) -> RawPeer {
        RawPeer::connect(self.server.local_addr().unwrap()).await
    }

    /// A raw peer that completed the init exchange.
    async fn initialized(&self) -> RawPeer {
        let mut peer = self.connect().await;
        let status = peer.init("raw", vec![t("*")], None, false).await;
        assert_eq!(status, Status::Operational);
        peer
    }
}

/// The next ended connection reported to the handler, checked against `kind` and a
/// piece of its message.
async fn assert_reason(fixture: &mut Fixture, kind: &str, text: &str) -> Closed {
    let closed = tokio::time::timeout(WAIT, fixture.closed.recv())
        .await
        .expect("no connection_closed report")
        .unwrap();
    assert_eq!(closed.kind, kind, "reason: {}", closed.reason);
    assert!(
        closed.reason.contains(text),
        "reason {:?} lacks {text:?}",
        closed.reason
    );
    closed
}

/// A fresh, well-behaved client still gets served.
async fn assert_still_serving(server: &Server) {
    let mut config = ClientConfig::new("fresh");
    config.subscriptions = vec![t("fresh/*")];
    let (client, mut rx) = Client::connect(server.local_addr().unwrap(), config)
        .await
        .unwrap();
    let events = client
        .register_with_response(vec![RegisterEvent::json(t("fresh/x"), json!(1))])
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        tokio::time::timeout(WAIT, rx.recv()).await.unwrap(),
        Some(gateway_eventer::client::Notification::Events(notified)) if notified == events
    ));
    client.close().await;
}

/// An initialized peer sends one frame of `data_type` with payload `data`: the
/// server must close that connection with reason `kind` mentioning `text`.
async fn assert_bad_frame_after_init(data_type: &str, data: Vec<u8>, kind: &str, text: &str) {
    let mut fx = fixture().await;
    let mut peer = fx.initialized().await;
    peer.send_raw(data_type, data).await;
    peer.assert_closed_by_server().await;
    assert_reason(&mut fx, kind, text).await;
    assert_still_serving(&fx.server).await;
}

#[tokio::test]
async fn truncated_chatter_message_in_a_complete_frame() {
    let mut fx = fixture().await;
    let mut peer = fx.connect().await;
    // A valid init frame whose body is cut short, with the prefix fixed to match.
    let full = raw::frame(&raw::eventer_msg(1, 1, true, false, &init_req()));
    let body = &full[2..full.len() - 5];
    let mut bad = vec![0x01, u8::try_from(body.len()).unwrap()];
    bad.extend_from_slice(body);
    peer.write(&bad).await;
    peer.assert_closed_by_server().await;
    assert_reason(&mut fx, "Chatter", "invalid chatter message").await;
    assert_still_serving(&fx.server).await;
}

#[tokio::test]
async fn oversized_length_is_refused_before_reading_the_body() {
    let mut fx = fixture().await;
    let mut peer = fx.initialized().await;
    peer.write(&[0x04, 0x7f, 0xff, 0xff, 0xff]).await;
    peer.assert_closed_by_server().await;
    let closed = assert_reason(&mut fx, "Chatter", "exceeds the maximum").await;
    assert_eq!(closed.client_name.as_deref(), Some("raw"));
    assert_still_serving(&fx.server).await;
}

#[tokio::test]
async fn zero_length_of_length_is_refused() {
    let mut fx = fixture().await;
    let mut peer = fx.connect().await;
    peer.write(&[0x00]).await;
    peer.assert_closed_by_server().await;
    assert_reason(&mut fx, "Chatter", "length").await;
    assert_still_serving(&fx.server).await;
}

#[tokio::test]
async fn unknown_message_type_after_init() {
    assert_bad_frame_after_init("Foo.Bar", Vec::new(), "Message", "Foo.Bar").await;
}

#[tokio::test]
async fn invalid_sbs_payload() {
    let query = "HatEventer.MsgQueryReq";
    assert_bad_frame_after_init(query, vec![0x85], "Message", query).await;
}

#[tokio::test]
async fn invalid_json_payload_text_registers_nothing() {
    let mut fx = fixture().await;
    let mut peer = fx.initialized().await;
    let register = EventerMsg::RegisterReq(vec![RegisterEvent {
        event_type: t("bad/json"),
        source_timestamp: None,
        payload: Some(Payload::Json(JsonText::new_unchecked("{bad".to_owned()))),
    }]);
    peer.send(&register, false).await;
    peer.assert_closed_by_server().await;
    assert_reason(&mut fx, "Message", "JSON").await;
    assert!(fx.handler.events().is_empty());
    assert_still_serving(&fx.server).await;
}

#[tokio::test]
async fn peer_that_never_sends_init_times_out_but_gets_pongs() {
    let mut fx = fixture().await;
    let mut peer = fx.connect().await;
    // Keepalive works before init, as in hat.
    peer.send_raw(PING_TYPE, Vec::new()).await;
    let pong = peer.recv_frame().await;
    assert_eq!(pong.data_type, PONG_TYPE);
    assert_eq!(
        (pong.id, pong.first, pong.owner, pong.last),
        (1, 1, false, true)
    );
    peer.assert_closed_by_server().await;
    let closed = assert_reason(&mut fx, "InitTimeout", "init not completed").await;
    assert_eq!(closed.client_name, None);
    assert_still_serving(&fx.server).await;
}

#[tokio::test]
async fn peer_that_disappears_mid_frame() {
    let mut fx = fixture().await;
    let mut peer = fx.initialized().await;
    let query = EventerMsg::QueryReq(QueryParams::Latest(QueryLatestParams::default()));
    let query = raw::frame(&raw::eventer_msg(2, 2, true, false, &query));
    peer.write(&query[..query.len() / 2]).await;
    drop(peer);
    assert_reason(&mut fx, "Chatter", "middle of a frame").await;
    assert_still_serving(&fx.server).await;
}

#[tokio::test]
async fn request_before_init_and_second_init_are_unexpected() {
    let mut fx = fixture().await;
    let mut peer = fx.connect().await;
    let query = EventerMsg::QueryReq(QueryParams::Latest(QueryLatestParams::default()));
    peer.send(&query, false).await;
    peer.assert_closed_by_server().await;
    assert_reason(&mut fx, "UnexpectedMessage", "MsgQueryReq").await;

    let mut peer = fx.initialized().await;
    peer.send(&init_req(), false).await;
    peer.assert_closed_by_server().await;
    assert_reason(&mut fx, "UnexpectedMessage", "MsgInitReq").await;
    assert_still_serving(&fx.server).await;
}

#[tokio::test]
async fn refused_init_is_answered_then_closed_after_grace_period() {
    let mut fx = fixture().await;
    let mut peer = fx.connect().await;
    let init = EventerMsg::InitReq(InitReq {
        client_name: "raw".to_owned(),
        client_token: Some("nope".to_owned()),
        subscriptions: Vec::new(),
        server_id: None,
        persisted: false,
    });
    peer.send(&init, false).await;
    let (res, body) = peer.recv().await;
    let answered = tokio::time::Instant::now();
    assert_eq!(
        body,
        EventerMsg::InitRes(InitRes::Error("invalid client token".to_owned()))
    );
    assert_eq!((res.first, res.owner, res.last), (1, false, true));
    // The client stays: the server closes by itself about 0.5 s later.
    peer.assert_closed_by_server().await;
    let waited = answered.elapsed();
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    assert_reason(&mut fx, "InitRejected", "invalid client token").await;
    assert_still_serving(&fx.server).await;
}

#[tokio::test]
async fn bad_input_is_logged_with_peer_and_reason() {
    let (logs, _guard) = common::logs::capture();

    let mut fx = fixture().await;
    let mut peer = fx.initialized().await;
    let local = peer.stream.local_addr().unwrap();
    peer.send_raw("Foo.Bar", Vec::new()).await;
    peer.assert_closed_by_server().await;
    assert_reason(&mut fx, "Message", "Foo.Bar").await;

    let line = logs.line_with(&["eventer connection closed", "Foo.Bar"]);
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains(&format!("peer={local}")), "{line}");
    assert!(line.contains("client_name=raw"), "{line}");
}
