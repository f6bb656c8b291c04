//! A raw chatter peer over TCP for server tests: sends exactly the frames a test
//! builds, with its own message counter, and reads frames one by one.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use gateway_eventer::chatter::{encode_frame, FrameCodec, Msg};
use gateway_eventer::message::{EventerMsg, InitReq, InitRes};
use gateway_eventer::model::{EventType, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::codec::Decoder;

use super::WAIT;

/// A chatter message carrying `body`.
pub(crate) fn eventer_msg(id: i64, first: i64, owner: bool, last: bool, body: &EventerMsg) -> Msg {
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

/// The bytes of one frame holding `msg`.
pub(crate) fn frame(msg: &Msg) -> Vec<u8> {
    let mut buf = BytesMut::new();
    encode_frame(msg, &mut buf);
    buf.to_vec()
}

/// A `MsgInitReq` as the Python client sends it by default (no token, no server id).
pub(crate) fn init_req(name: &str, subscriptions: Vec<EventType>) -> EventerMsg {
    EventerMsg::InitReq(InitReq {
        client_name: name.to_owned(),
        client_token: None,
        subscriptions,
        server_id: None,
        persisted: false,
    })
}

/// One raw client connection.
pub(crate) struct RawPeer {
    /// The socket.
    pub stream: TcpStream,
    buf: BytesMut,
    codec: FrameCodec,
    next_id: i64,
}

impl RawPeer {
    /// Connects to `addr`.
    pub(crate) async fn connect(addr: SocketAddr) -> RawPeer {
        Self::from_stream(TcpStream::connect(addr).await.unwrap())
    }

    /// Connects to `addr` with a receive buffer of about `bytes` (the kernel may round
    /// it up), so that a peer that does not read fills up quickly.
    pub(crate) async fn connect_with_recv_buffer(addr: SocketAddr, bytes: u32) -> RawPeer {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(bytes).unwrap();
        Self::from_stream(socket.connect(addr).await.unwrap())
    }

    fn from_stream(stream: TcpStream) -> RawPeer {
        RawPeer {
            stream,
            buf: BytesMut::new(),
            codec: FrameCodec::default(),
            next_id: 1,
        }
    }

    /// Takes the next message id of our counter.
    fn take_id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Writes raw bytes, well-formed or not.
    pub(crate) async fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Sends a frame of any `data_type` and payload bytes in a new conversation
    /// (`last = false`); returns its id.
    pub(crate) async fn send_raw(&mut self, data_type: &str, data: Vec<u8>) -> i64 {
        let id = self.take_id();
        let msg = Msg {
            id,
            first: id,
            owner: true,
            token: true,
            last: false,
            data_type: data_type.to_owned(),
            data: Bytes::from(data),
        };
        self.write(&frame(&msg)).await;
        id
    }

    /// Sends `body` in a new conversation; returns its id.
    pub(crate) async fn send(&mut self, body: &EventerMsg, last: bool) -> i64 {
        let id = self.take_id();
        self.write(&frame(&eventer_msg(id, id, true, last, body)))
            .await;
        id
    }

    /// Answers in the server's conversation `first` (`owner = false`); returns its id.
    pub(crate) async fn reply(&mut self, first: i64, body: &EventerMsg, last: bool) -> i64 {
        let id = self.take_id();
        self.write(&frame(&eventer_msg(id, first, false, last, body)))
            .await;
        id
    }

    /// The next frame, undecoded (bounded in time).
    pub(crate) async fn recv_frame(&mut self) -> Msg {
        loop {
            if let Some(msg) = self.codec.decode(&mut self.buf).unwrap() {
                return msg;
            }
            let n = tokio::time::timeout(WAIT, self.stream.read_buf(&mut self.buf))
                .await
                .expect("no frame from the server")
                .unwrap();
            assert!(n > 0, "server closed the connection");
        }
    }

    /// The next frame and its decoded payload (bounded in time).
    pub(crate) async fn recv(&mut self) -> (Msg, EventerMsg) {
        let msg = self.recv_frame().await;
        let body = EventerMsg::decode(&msg.data_type, &msg.data).unwrap();
        (msg, body)
    }

    /// Waits (bounded) until the server closed the stream, discarding anything it sent
    /// before.
    pub(crate) async fn assert_closed_by_server(&mut self) {
        let mut sink = vec![0_u8; 64 * 1024];
        loop {
            match tokio::time::timeout(WAIT, self.stream.read(&mut sink)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(_)) => {}
                Err(_) => panic!("server did not close the connection"),
            }
        }
    }

    /// Sends `MsgInitReq` and returns the status of the success answer.
    pub(crate) async fn init(
        &mut self,
        name: &str,
        subscriptions: Vec<EventType>,
        server_id: Option<i64>,
        persisted: bool,
    ) -> Status {
        let mut request = init_req(name, subscriptions);
        if let EventerMsg::InitReq(init) = &mut request {
            init.server_id = server_id;
            init.persisted = persisted;
        }
        let id = self.send(&request, false).await;
        let (msg, body) = self.recv().await;
        assert_eq!((msg.first, msg.owner, msg.last), (id, false, true));
        match body {
            EventerMsg::InitRes(InitRes::Success(status)) => status,
            other => panic!("init refused: {other:?}"),
        }
    }
}
