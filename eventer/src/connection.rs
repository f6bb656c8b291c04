//! The Eventer session core: one task owns a chatter connection and does message ids,
//! conversation matching and keepalive; everyone else holds a cheap [`Session`] handle.
//!
//! The core is generic over any `AsyncRead + AsyncWrite` transport, so it runs over a
//! TCP socket in production and over `tokio::io::duplex` in tests. It knows nothing
//! about the Eventer flows (init, register, query, notify): those live in
//! [`crate::client`] and [`crate::server`], which sit on top of it.
//!
//! What the task does (spec sections 3.3 to 3.6):
//! - numbers every message it sends from 1 upwards, Ping and Pong included;
//! - answers every `HatChatter.Ping` with a `HatChatter.Pong` itself, so keepalive
//!   never reaches the application;
//! - routes a message with `owner = false` whose `first` is the id of one of our own
//!   pending requests to that request's waiter, and hands every other message to the
//!   owner through a bounded [`Inbound`] channel;
//! - sends its own Ping after `ping_delay` without receiving anything and closes the
//!   connection when nothing arrives within `ping_timeout` after that;
//! - on any failure (socket error, bad frame, undecodable payload, keepalive timeout,
//!   a reason given by the owner) ends the connection, logs the reason and publishes it
//!   as a [`ConnectionError`]; every pending request then fails with that reason.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::chatter::{
    encode_frame, ChatterError, FrameCodec, Msg, DEFAULT_MAX_FRAME_SIZE, PING_TYPE, PONG_TYPE,
};
use crate::message::{EventerMsg, MessageError};

/// Default time without receiving anything before a Ping is sent (hat's 20 s).
pub const DEFAULT_PING_DELAY: Duration = Duration::from_secs(20);
/// Default time to wait for any message after our Ping before closing (hat's 20 s).
pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(20);

/// Outgoing messages queued for the connection task. Senders wait when it is full, so a
/// peer that stops reading slows its senders down instead of growing memory.
pub const COMMAND_CAPACITY: usize = 256;
/// Received messages waiting for the owner (client dispatcher or server request loop).
/// When it is full the task stops reading the socket until the owner catches up.
pub const INBOUND_CAPACITY: usize = 64;
/// Encoded bytes waiting for the socket above which no new message is accepted.
const WRITE_HIGH_WATER: usize = 1024 * 1024;
/// How long already-queued frames may take to reach the socket when a connection ends.
const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(1);
/// Pending requests whose callers gave up are pruned when the table grows past this.
const PENDING_PRUNE_THRESHOLD: usize = 1024;

/// Keepalive and framing settings of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Time without receiving anything before we send a Ping; `None` disables our pings
    /// (we still answer the peer's).
    pub ping_delay: Option<Duration>,
    /// Time to wait for any message after our Ping before closing the connection.
    pub ping_timeout: Duration,
    /// Largest frame body accepted from the peer, in bytes.
    pub max_frame_size: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            ping_delay: Some(DEFAULT_PING_DELAY),
            ping_timeout: DEFAULT_PING_TIMEOUT,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
        }
    }
}

/// Why a connection ended: the error type of the session layer.
///
/// Every connection ends with exactly one of these; it is logged by the connection task
/// and returned by [`Session::closed`] (and by the client and server APIs built on it).
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// Closed on purpose by this side (`close()`, or every handle dropped).
    #[error("closed by this side")]
    LocalClose,
    /// The peer closed the stream between two frames.
    #[error("closed by the peer")]
    PeerClosed,
    /// Socket error, bad length prefix, oversized frame, undecodable `HatChatter.Msg`,
    /// or a stream that ended in the middle of a frame.
    #[error("chatter error: {0}")]
    Chatter(#[from] ChatterError),
    /// The Eventer payload could not be decoded (unknown type, bad SBS, bad JSON).
    #[error("eventer message error: {0}")]
    Message(#[from] MessageError),
    /// A well-formed message that this side does not accept in this state.
    #[error("unexpected message {type_name} ({context})")]
    UnexpectedMessage {
        /// `Data.type` of the message.
        type_name: &'static str,
        /// What was expected instead.
        context: &'static str,
    },
    /// Nothing arrived within the ping timeout after our Ping.
    #[error("no message received within {0:?} after our ping")]
    PingTimeout(Duration),
    /// The init exchange did not complete in time (server: no `MsgInitReq`; client: no
    /// `MsgInitRes`).
    #[error("init not completed within {0:?}")]
    InitTimeout(Duration),
    /// The server refused the client's init request with this text.
    #[error("init refused: {0}")]
    InitRejected(String),
    /// The server's request handler failed; like hat, the connection is closed without
    /// an answer.
    #[error("request handler failed: {0}")]
    Handler(String),
    /// The server is shutting down.
    #[error("server closed")]
    ServerClosed,
    /// The connection task stopped without publishing a reason (it panicked).
    #[error("connection task ended unexpectedly")]
    TaskEnded,
}

/// A message received from the peer that is not a response to one of our requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// The decoded Eventer message.
    pub msg: EventerMsg,
    /// Conversation id (`first`) as the peer sent it; answer with [`Session::reply`].
    pub first: i64,
    /// `owner` as the peer sent it: true when the peer started the conversation.
    pub owner: bool,
    /// `last` as the peer sent it; for requests, true means "no response wanted".
    pub last: bool,
}

/// Which conversation an outgoing message belongs to.
#[derive(Debug, Clone, Copy)]
enum Conversation {
    /// A new conversation started by us (`owner = true`, `first = id`).
    New,
    /// The peer's conversation with this `first` (`owner = false`).
    Reply(i64),
}

/// One request to the connection task.
#[derive(Debug)]
struct Command {
    msg: EventerMsg,
    conversation: Conversation,
    last: bool,
    response: Option<oneshot::Sender<Inbound>>,
}

type Published = Option<Arc<ConnectionError>>;

/// Cheap, cloneable handle to a connection task.
///
/// Sending methods return once the message is queued for the socket, in call order:
/// two messages sent one after the other go out in that order.
#[derive(Debug, Clone)]
pub struct Session {
    commands: mpsc::Sender<Command>,
    closed: watch::Receiver<Published>,
    cancel: CancellationToken,
    fail_reason: Arc<Mutex<Option<ConnectionError>>>,
}

/// The response to a request sent with [`Session::request`], not yet received.
#[derive(Debug)]
pub struct PendingResponse {
    rx: oneshot::Receiver<Inbound>,
    session: Session,
}

impl PendingResponse {
    /// Waits for the response; fails with the close reason when the connection ends
    /// first. There is no conversation timeout in the protocol: wrap this in
    /// `tokio::time::timeout` when one is wanted.
    pub async fn response(self) -> Result<Inbound, Arc<ConnectionError>> {
        match self.rx.await {
            Ok(inbound) => Ok(inbound),
            Err(_) => Err(self.session.closed().await),
        }
    }
}

/// Starts the task that owns `io` and returns its handle and the channel of received
/// messages that are not responses to our requests.
///
/// The task runs inside `span` (give it the peer address and a connection id). It ends
/// when the peer closes, on any error, on [`Session::close`] / [`Session::fail`], when
/// every [`Session`] handle is dropped, or when the returned receiver is dropped.
pub fn spawn<T>(
    io: T,
    config: SessionConfig,
    span: tracing::Span,
) -> (Session, mpsc::Receiver<Inbound>)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (command_tx, command_rx) = mpsc::channel(COMMAND_CAPACITY);
    let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_CAPACITY);
    let (closed_tx, closed_rx) = watch::channel(None);
    let cancel = CancellationToken::new();
    let fail_reason = Arc::new(Mutex::new(None));
    let (reader, writer) = tokio::io::split(io);
    let task = ConnectionTask {
        reader: FramedRead::new(reader, FrameCodec::new(config.max_frame_size)),
        writer,
        write_buf: BytesMut::new(),
        commands: command_rx,
        inbound: inbound_tx,
        held: None,
        pending: HashMap::new(),
        next_id: 1,
        last_received: Instant::now(),
        ping_sent: None,
        cancel: cancel.clone(),
        fail_reason: fail_reason.clone(),
        config,
    };
    tokio::spawn(task.run(closed_tx).instrument(span));
    let session = Session {
        commands: command_tx,
        closed: closed_rx,
        cancel,
        fail_reason,
    };
    (session, inbound_rx)
}

impl Session {
    /// Sends `msg` in a new conversation that we own. `last = true` means no answer is
    /// expected (the peer may still answer; unmatched answers reach the inbound channel).
    pub async fn send(&self, msg: EventerMsg, last: bool) -> Result<(), Arc<ConnectionError>> {
        self.submit(msg, Conversation::New, last, None).await
    }

    /// Sends `msg` in a new conversation with `last = false` and registers a waiter for
    /// the answer (the first message with `owner = false` and `first` = its id).
    ///
    /// Returns once the request is queued; await [`PendingResponse::response`] for the
    /// answer. Splitting the two keeps the send order of several requests under the
    /// caller's control.
    pub async fn request(&self, msg: EventerMsg) -> Result<PendingResponse, Arc<ConnectionError>> {
        let (tx, rx) = oneshot::channel();
        self.submit(msg, Conversation::New, false, Some(tx)).await?;
        Ok(PendingResponse {
            rx,
            session: self.clone(),
        })
    }

    /// Answers in the peer's conversation `first` (`owner = false`).
    pub async fn reply(
        &self,
        first: i64,
        msg: EventerMsg,
        last: bool,
    ) -> Result<(), Arc<ConnectionError>> {
        self.submit(msg, Conversation::Reply(first), last, None)
            .await
    }

    /// Closes the connection with [`ConnectionError::LocalClose`]. Messages queued
    /// before the call are still written (for at most about a second).
    pub fn close(&self) {
        self.cancel.cancel();
    }

    /// Closes the connection with `reason` (unless it already ended with another one).
    pub fn fail(&self, reason: ConnectionError) {
        {
            let mut slot = self
                .fail_reason
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if slot.is_none() {
                *slot = Some(reason);
            }
        }
        self.cancel.cancel();
    }

    /// Waits until the connection has ended and returns why.
    pub async fn closed(&self) -> Arc<ConnectionError> {
        let mut closed = self.closed.clone();
        let reason = match closed.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone(),
            Err(_) => None,
        };
        reason.unwrap_or_else(|| Arc::new(ConnectionError::TaskEnded))
    }

    /// The reason the connection ended, or `None` while it is open.
    pub fn close_reason(&self) -> Option<Arc<ConnectionError>> {
        self.closed.borrow().clone()
    }

    /// True once the connection has ended (or is ending).
    pub fn is_closed(&self) -> bool {
        self.cancel.is_cancelled() || self.commands.is_closed() || self.close_reason().is_some()
    }

    async fn submit(
        &self,
        msg: EventerMsg,
        conversation: Conversation,
        last: bool,
        response: Option<oneshot::Sender<Inbound>>,
    ) -> Result<(), Arc<ConnectionError>> {
        let command = Command {
            msg,
            conversation,
            last,
            response,
        };
        if self.cancel.is_cancelled() {
            return Err(self.closed().await);
        }
        match self.commands.send(command).await {
            Ok(()) => Ok(()),
            Err(_) => Err(self.closed().await),
        }
    }
}

/// What woke the connection task up.
enum Step {
    Cancelled,
    Written(std::io::Result<usize>),
    Delivered,
    OwnerGone,
    Command(Option<Command>),
    Frame(Option<Result<Msg, ChatterError>>),
    Keepalive,
}

/// State owned by the connection task.
struct ConnectionTask<T> {
    reader: FramedRead<tokio::io::ReadHalf<T>, FrameCodec>,
    writer: tokio::io::WriteHalf<T>,
    /// Encoded frames not yet accepted by the socket.
    write_buf: BytesMut,
    commands: mpsc::Receiver<Command>,
    inbound: mpsc::Sender<Inbound>,
    /// A received message waiting for room in `inbound` (reading pauses meanwhile).
    held: Option<Inbound>,
    /// Our requests waiting for an answer, by their message id.
    pending: HashMap<i64, oneshot::Sender<Inbound>>,
    next_id: i64,
    last_received: Instant,
    /// When our unanswered Ping went out.
    ping_sent: Option<Instant>,
    cancel: CancellationToken,
    fail_reason: Arc<Mutex<Option<ConnectionError>>>,
    config: SessionConfig,
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> ConnectionTask<T> {
    async fn run(mut self, closed: watch::Sender<Published>) {
        let reason = self.serve().await;
        self.finish().await;
        match &reason {
            ConnectionError::LocalClose | ConnectionError::PeerClosed => {
                tracing::debug!(reason = %reason, "eventer connection closed");
            }
            _ => tracing::warn!(reason = %reason, "eventer connection closed"),
        }
        // Published before `pending` is dropped, so a failed waiter always finds it.
        closed.send_replace(Some(Arc::new(reason)));
    }

    async fn serve(&mut self) -> ConnectionError {
        loop {
            let keepalive_at = if self.held.is_some() {
                // Not reading by our own choice (the owner is slow): silence is ours.
                None
            } else {
                self.keepalive_deadline()
            };
            let writable = self.write_buf.len() < WRITE_HIGH_WATER;
            let step = tokio::select! {
                biased;
                () = self.cancel.cancelled() => Step::Cancelled,
                // Cancel-safe: a dropped `write_buf` future has written nothing.
                written = self.writer.write_buf(&mut self.write_buf), if !self.write_buf.is_empty() => {
                    Step::Written(written)
                }
                permit = self.inbound.reserve(), if self.held.is_some() => match permit {
                    Ok(permit) => {
                        if let Some(inbound) = self.held.take() {
                            permit.send(inbound);
                        }
                        Step::Delivered
                    }
                    Err(_) => Step::OwnerGone,
                },
                command = self.commands.recv(), if writable => Step::Command(command),
                // Cancel-safe: FramedRead keeps partial frames in its own buffer.
                frame = self.reader.next(), if self.held.is_none() => Step::Frame(frame),
                () = sleep_until_opt(keepalive_at) => Step::Keepalive,
            };
            match step {
                Step::Cancelled => return self.take_fail_reason(),
                Step::Written(Ok(0)) => {
                    return ChatterError::Io(std::io::ErrorKind::WriteZero.into()).into()
                }
                Step::Written(Ok(_)) => {}
                Step::Written(Err(err)) => return ChatterError::Io(err).into(),
                Step::Delivered => {
                    self.last_received = Instant::now();
                    self.ping_sent = None;
                }
                // The owner is gone: nobody can use this connection any more.
                Step::OwnerGone => return ConnectionError::LocalClose,
                Step::Command(Some(command)) => self.enqueue(command),
                Step::Command(None) => return ConnectionError::LocalClose,
                Step::Frame(Some(Ok(msg))) => {
                    if let Err(err) = self.on_frame(msg) {
                        return err;
                    }
                }
                Step::Frame(Some(Err(err))) => return err.into(),
                Step::Frame(None) => return ConnectionError::PeerClosed,
                Step::Keepalive => {
                    if self.ping_sent.is_some() {
                        return ConnectionError::PingTimeout(self.config.ping_timeout);
                    }
                    tracing::trace!("sending ping");
                    self.write_frame(PING_TYPE, Bytes::new(), Conversation::New, false);
                    self.ping_sent = Some(Instant::now());
                }
            }
        }
    }

    fn keepalive_deadline(&self) -> Option<Instant> {
        let delay = self.config.ping_delay?;
        Some(match self.ping_sent {
            None => self.last_received + delay,
            Some(sent) => sent + self.config.ping_timeout,
        })
    }

    fn take_fail_reason(&self) -> ConnectionError {
        self.fail_reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .unwrap_or(ConnectionError::LocalClose)
    }

    fn on_frame(&mut self, msg: Msg) -> Result<(), ConnectionError> {
        self.last_received = Instant::now();
        self.ping_sent = None;
        tracing::trace!(
            id = msg.id,
            first = msg.first,
            owner = msg.owner,
            last = msg.last,
            data_type = %msg.data_type,
            "received frame"
        );
        if msg.data_type == PING_TYPE {
            self.write_frame(
                PONG_TYPE,
                Bytes::new(),
                Conversation::Reply(msg.first),
                true,
            );
            return Ok(());
        }
        if msg.data_type == PONG_TYPE {
            // Only liveness; already accounted for above.
            return Ok(());
        }
        let decoded = EventerMsg::decode(&msg.data_type, &msg.data)?;
        tracing::trace!(msg = ?decoded, "received message");
        let inbound = Inbound {
            msg: decoded,
            first: msg.first,
            owner: msg.owner,
            last: msg.last,
        };
        if !msg.owner {
            if let Some(waiter) = self.pending.remove(&msg.first) {
                // A caller that gave up on its request has dropped the receiver; the
                // answer is simply discarded then.
                let _ = waiter.send(inbound);
                return Ok(());
            }
        }
        self.held = Some(inbound);
        Ok(())
    }

    fn enqueue(&mut self, command: Command) {
        let mut data = Vec::new();
        command.msg.encode(&mut data);
        tracing::trace!(msg = ?command.msg, last = command.last, "sending message");
        let id = self.write_frame(
            command.msg.type_name(),
            Bytes::from(data),
            command.conversation,
            command.last,
        );
        if let Some(waiter) = command.response {
            if self.pending.len() >= PENDING_PRUNE_THRESHOLD {
                self.pending.retain(|_, waiter| !waiter.is_closed());
            }
            self.pending.insert(id, waiter);
        }
    }

    /// Encodes one frame into the write buffer with the next message id; returns the id.
    fn write_frame(
        &mut self,
        data_type: &str,
        data: Bytes,
        conversation: Conversation,
        last: bool,
    ) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        let (first, owner) = match conversation {
            Conversation::New => (id, true),
            Conversation::Reply(first) => (first, false),
        };
        let msg = Msg {
            id,
            first,
            owner,
            token: true,
            last,
            data_type: data_type.to_owned(),
            data,
        };
        encode_frame(&msg, &mut self.write_buf);
        id
    }

    /// Writes what was queued before the end (bounded in time) and shuts the stream down.
    async fn finish(&mut self) {
        self.commands.close();
        while let Ok(command) = self.commands.try_recv() {
            self.enqueue(command);
        }
        let flush = async {
            while !self.write_buf.is_empty() {
                match self.writer.write_buf(&mut self.write_buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
            let _ = self.writer.shutdown().await;
        };
        let _ = tokio::time::timeout(CLOSE_FLUSH_TIMEOUT, flush).await;
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
#[path = "connection_tests.rs"]
mod tests;
