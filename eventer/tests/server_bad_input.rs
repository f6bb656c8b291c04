//! Bad input against our Eventer server over raw TCP: each case must end only that
//! connection, with a typed reason reported to the handler and logged with the peer,
//! while the server keeps serving a fresh client.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::memory::{Closed, MemoryHandler};
use common::WAIT;
use gateway_eventer::chatter::{encode_frame, FrameCodec, Msg, PING_TYPE, PONG_TYPE};
use gateway_eventer::client::{Client, ClientConfig};
use gateway_eventer::message::{EventerMsg, InitReq, InitRes};
use gateway_eventer::model::{
    event_type_from_str as t, JsonText, Payload, QueryLatestParams, QueryParams, RegisterEvent,
    Status,
};
use gateway_eventer::server::{Server, ServerConfig};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::Decoder;

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

fn frame(id: i64, data_type: &str, data: Vec<u8>) -> Vec<u8> {
    let msg = Msg {
        id,
        first: id,
        owner: true,
        token: true,
        last: false,
        data_type: data_type.to_owned(),
        data: Bytes::from(data),
    };
    let mut buf = BytesMut::new();
    encode_frame(&msg, &mut buf);
    buf.to_vec()
}

fn eventer_frame(id: i64, msg: &EventerMsg) -> Vec<u8> {
    let mut data = Vec::new();
    msg.encode(&mut data);
    frame(id, msg.type_name(), data)
}

fn init_frame() -> Vec<u8> {
    eventer_frame(
        1,
        &EventerMsg::InitReq(InitReq {
            client_name: "raw".to_owned(),
            client_token: None,
            subscriptions: vec![t("*")],
            server_id: None,
            persisted: false,
        }),
    )
}

/// Reads one frame from the raw stream (bounded in time).
async fn read_msg(stream: &mut TcpStream, buf: &mut BytesMut) -> Msg {
    let mut codec = FrameCodec::default();
    loop {
        if let Some(msg) = codec.decode(buf).unwrap() {
            return msg;
        }
        let n = tokio::time::timeout(WAIT, stream.read_buf(buf))
            .await
            .expect("no frame from the server")
            .unwrap();
        assert!(n > 0, "server closed instead of answering");
    }
}

/// Connects raw and completes the init exchange.
async fn initialized(server: &Server) -> (TcpStream, BytesMut) {
    let mut stream = TcpStream::connect(server.local_addr().unwrap())
        .await
        .unwrap();
    stream.write_all(&init_frame()).await.unwrap();
    let mut buf = BytesMut::new();
    let res = read_msg(&mut stream, &mut buf).await;
    let decoded = EventerMsg::decode(&res.data_type, &res.data).unwrap();
    assert_eq!(
        decoded,
        EventerMsg::InitRes(InitRes::Success(Status::Operational))
    );
    (stream, buf)
}

/// Waits until the server closed the stream (reading and discarding anything else).
async fn assert_closed_by_server(stream: &mut TcpStream) {
    let mut sink = [0_u8; 1024];
    loop {
        match tokio::time::timeout(WAIT, stream.read(&mut sink)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(_)) => {}
            Err(_) => panic!("server did not close the bad connection"),
        }
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

#[tokio::test]
async fn truncated_chatter_message_in_a_complete_frame() {
    let mut fx = fixture().await;
    let mut stream = TcpStream::connect(fx.server.local_addr().unwrap())
        .await
        .unwrap();
    // A valid init frame whose body is cut short, with the prefix fixed to match.
    let full = init_frame();
    let body = &full[2..full.len() - 5];
    let mut bad = vec![0x01, u8::try_from(body.len()).unwrap()];
    bad.extend_from_slice(body);
    stream.write_all(&bad).await.unwrap();
    assert_closed_by_server(&mut stream).await;
    assert_reason(&mut fx, "Chatter", "invalid chatter message").await;
    assert_still_serving(&fx.server).await;
}

#[tokio::test]
async fn oversized_length_is_refused_before_reading_the_body() {
    let mut fx = fixture().await;
    let (mut stream, _) = initialized(&fx.server).await;
    stream
        .write_all(&[0x04, 0x7f, 0xff, 0xff, 0xff])
        .await
        .unwrap();
    assert_closed_by_server(&mut stream).await;
    let closed = assert_reason(&mut fx, "Chatter", "exceeds the maximum").await;
    assert_eq!(closed.client_name.as_deref(), Some("raw"));
    assert_still_serving(&fx.server).await;
}

#[tokio::test]
async fn zero_length_of_length_is_refused() {
    let mut fx = fixture().await;
    let mut stream = TcpStream::connect(fx.server.local_addr().unwrap())
        .await
        .unwrap();
    stream.write_all(&[0x00]).await.unwrap();
    assert_closed_by_server(&mut stream).await;
    assert_reason(&mut fx, "Chatter", "length").await;
    assert_still_serving(&fx.server).await;
}

#[tokio::test]
async fn unknown_message_type_after_init() {
    let mut fx = fixture().await;
    let (mut stream, _) = initialized(&fx.server).await;
    stream
        .write_all(&frame(2, "Foo.Bar", Vec::new()))
        .await
        .unwrap();
    assert_closed_by_server(&mut stream).await;
    assert_reason(&mut fx, "Message", "Foo.Bar").await;
    assert_still_serving(&fx.server).await;
}

#[tokio::test]
async fn invalid_sbs_payload() {
    let mut fx = fixture().await;
    let (mut stream, _) = initialized(&fx.server).await;
    stream
        .write_all(&frame(2, "HatEventer.MsgQueryReq", vec![0x85]))
        .await
        .unwrap();
    assert_closed_by_server(&mut stream).await;
    assert_reason(&mut fx, "Message", "HatEventer.MsgQueryReq").await;
    assert_still_serving(&fx.server).await;
}

#[tokio::test]
async fn invalid_json_payload_text_registers_nothing() {
    let mut fx = fixture().await;
    let (mut stream, _) = initialized(&fx.server).await;
    let register = EventerMsg::RegisterReq(vec![RegisterEvent {
        event_type: t("bad/json"),
        source_timestamp: None,
        payload: Some(Payload::Json(JsonText::new_unchecked("{bad".to_owned()))),
    }]);
    stream
        .write_all(&eventer_frame(2, &register))
        .await
        .unwrap();
    assert_closed_by_server(&mut stream).await;
    assert_reason(&mut fx, "Message", "JSON").await;
    assert!(fx.handler.events().is_empty());
    assert_still_serving(&fx.server).await;
}

#[tokio::test]
async fn peer_that_never_sends_init_times_out_but_gets_pongs() {
    let mut fx = fixture().await;
    let mut stream = TcpStream::connect(fx.server.local_addr().unwrap())
        .await
        .unwrap();
    // Keepalive works before init, as in hat.
    stream
        .write_all(&frame(1, PING_TYPE, Vec::new()))
        .await
        .unwrap();
    let mut buf = BytesMut::new();
    let pong = read_msg(&mut stream, &mut buf).await;
    assert_eq!(pong.data_type, PONG_TYPE);
    assert_eq!(
        (pong.id, pong.first, pong.owner, pong.last),
        (1, 1, false, true)
    );
    assert_closed_by_server(&mut stream).await;
    let closed = assert_reason(&mut fx, "InitTimeout", "init not completed").await;
    assert_eq!(closed.client_name, None);
    assert_still_serving(&fx.server).await;
}

#[tokio::test]
async fn peer_that_disappears_mid_frame() {
    let mut fx = fixture().await;
    let (mut stream, _) = initialized(&fx.server).await;
    let query = eventer_frame(
        2,
        &EventerMsg::QueryReq(QueryParams::Latest(QueryLatestParams::default())),
    );
    stream.write_all(&query[..query.len() / 2]).await.unwrap();
    drop(stream);
    assert_reason(&mut fx, "Chatter", "middle of a frame").await;
    assert_still_serving(&fx.server).await;
}

#[tokio::test]
async fn request_before_init_and_second_init_are_unexpected() {
    let mut fx = fixture().await;
    let mut stream = TcpStream::connect(fx.server.local_addr().unwrap())
        .await
        .unwrap();
    let query = EventerMsg::QueryReq(QueryParams::Latest(QueryLatestParams::default()));
    stream.write_all(&eventer_frame(1, &query)).await.unwrap();
    assert_closed_by_server(&mut stream).await;
    assert_reason(&mut fx, "UnexpectedMessage", "MsgQueryReq").await;

    let (mut stream, _) = initialized(&fx.server).await;
    let mut second = init_frame();
    second[2] = 0x82; // id 2
    stream.write_all(&second).await.unwrap();
    assert_closed_by_server(&mut stream).await;
    assert_reason(&mut fx, "UnexpectedMessage", "MsgInitReq").await;
    assert_still_serving(&fx.server).await;
}

#[tokio::test]
async fn refused_init_is_answered_then_closed_after_grace_period() {
    let mut fx = fixture().await;
    let mut stream = TcpStream::connect(fx.server.local_addr().unwrap())
        .await
        .unwrap();
    let init = EventerMsg::InitReq(InitReq {
        client_name: "raw".to_owned(),
        client_token: Some("nope".to_owned()),
        subscriptions: Vec::new(),
        server_id: None,
        persisted: false,
    });
    stream.write_all(&eventer_frame(1, &init)).await.unwrap();
    let mut buf = BytesMut::new();
    let res = read_msg(&mut stream, &mut buf).await;
    let answered = tokio::time::Instant::now();
    assert_eq!(
        EventerMsg::decode(&res.data_type, &res.data).unwrap(),
        EventerMsg::InitRes(InitRes::Error("invalid client token".to_owned()))
    );
    assert_eq!((res.first, res.owner, res.last), (1, false, true));
    // The client stays: the server closes by itself about 0.5 s later.
    assert_closed_by_server(&mut stream).await;
    let waited = answered.elapsed();
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    assert_reason(&mut fx, "InitRejected", "invalid client token").await;
    assert_still_serving(&fx.server).await;
}

/// Captures the log output of the tasks of a current-thread test runtime.
#[derive(Clone, Default)]
struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuf {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuf {
    type Writer = LogBuf;

    fn make_writer(&'a self) -> LogBuf {
        self.clone()
    }
}

#[tokio::test]
async fn bad_input_is_logged_with_peer_and_reason() {
    let logs = LogBuf::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut fx = fixture().await;
    let (mut stream, _) = initialized(&fx.server).await;
    let local = stream.local_addr().unwrap();
    stream
        .write_all(&frame(2, "Foo.Bar", Vec::new()))
        .await
        .unwrap();
    assert_closed_by_server(&mut stream).await;
    assert_reason(&mut fx, "Message", "Foo.Bar").await;

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("eventer connection closed") && l.contains("Foo.Bar"))
        .unwrap_or_else(|| panic!("no close log line in:\n{text}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains(&format!("peer={local}")), "{line}");
    assert!(line.contains("client_name=raw"), "{line}");
}
