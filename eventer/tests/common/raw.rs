//! A raw chatter peer over TCP for server tests: sends exactly the frames a test
//! builds, with its own message counter, and reads frames one by one.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use gateway_eventer::chatter::{encode_frame, FrameCodec, Msg};
use gateway_eventer::message::{EventerMsg, InitReq, InitRes};
use gateway_eventer::model::{EventType, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Decoder;

use super::WAIT;

/// One raw client connection.
pub struct RawPeer {
    /// The socket.
    pub stream: TcpStream,
    buf: BytesMut,
    codec: FrameCodec,
    next_id: i64,
}

impl RawPeer {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> RawPeer {
        RawPeer {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: BytesMut::new(),
            codec: FrameCodec::default(),
            next_id: 1,
        }
    }

    /// Sends `body` in a new conversation; returns its id.
    pub async fn send(&mut self, body: &EventerMsg, last: bool) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        let mut data = Vec::new();
        body.encode(&mut data);
        let msg = Msg {
            id,
            first: id,
            owner: true,
            token: true,
            last,
            data_type: body.type_name().to_owned(),
            data: Bytes::from(data),
        };
        let mut frame = BytesMut::new();
        encode_frame(&msg, &mut frame);
        self.stream.write_all(&frame).await.unwrap();
        id
    }

    /// The next frame and its decoded payload (bounded in time).
    pub async fn recv(&mut self) -> (Msg, EventerMsg) {
        loop {
            if let Some(msg) = self.codec.decode(&mut self.buf).unwrap() {
                let body = EventerMsg::decode(&msg.data_type, &msg.data).unwrap();
                return (msg, body);
            }
            let n = tokio::time::timeout(WAIT, self.stream.read_buf(&mut self.buf))
                .await
                .expect("no frame from the server")
                .unwrap();
            assert!(n > 0, "server closed the connection");
        }
    }

    /// Sends `MsgInitReq` and returns the status of the success answer.
    pub async fn init(
        &mut self,
        name: &str,
        subscriptions: Vec<EventType>,
        server_id: Option<i64>,
        persisted: bool,
    ) -> Status {
        let request = EventerMsg::InitReq(InitReq {
            client_name: name.to_owned(),
            client_token: None,
            subscriptions,
            server_id,
            persisted,
        });
        let id = self.send(&request, false).await;
        let (msg, body) = self.recv().await;
        assert_eq!((msg.first, msg.owner, msg.last), (id, false, true));
        match body {
            EventerMsg::InitRes(InitRes::Success(status)) => status,
            other => panic!("init refused: {other:?}"),
        }
    }
}
