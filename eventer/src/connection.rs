//! The Eventer session core: one task owns a chatter connection and does message ids,
//! conversation matching and keepalive; everyone else holds a cheap [`Session`] handle.
//!
//! The core is generic over any `AsyncRead + AsyncWrite` transport, so it runs over a
//! TCP socket in production and over `tokio::io::duplex` in tests. It knows nothing
//! about the Eventer flows (init, register, query, notify): those live in
//! [`crate::client`] and [`crate::server`], which sit on top of it.
//!
//! What the task does (`docs/eventer-protocol.md` sections 3.3 to 3.6):
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
//!
//! Senders choose how to meet a full outbound queue: [`Session::send`] and friends wait
//! for room (right for a connection's own answers), [`Session::try_send`] and
//! [`Session::try_request`] never wait (right for fan-out to many connections, where
//! one peer that stops reading must not hold up the others).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use bytes::Bytes;

use crate::chatter::{ChatterError, InputBudget, InputShare, DEFAULT_MAX_FRAME_SIZE};
use crate::message::{EventerMsg, MessageError};
use task::ConnectionTask;

/// Default time without receiving anything before a Ping is sent (hat's 20 s).
pub const DEFAULT_PING_DELAY: Duration = Duration::from_secs(20);
/// Default time to wait for any message after our Ping before closing (hat's 20 s).
pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(20);

/// Outgoing messages queued for the connection task by [`spawn`] (see
/// [`spawn_with_capacity`]). The queue only fills once the socket and the task's write
/// buffer are full, i.e. once the peer has left about a megabyte unread; waiting senders
/// are then slowed down instead of memory growing.
pub const COMMAND_CAPACITY: usize = 256;
/// Received messages waiting for the owner (client dispatcher or server request loop).
/// When it is full the task stops reading the socket until the owner catches up.
pub const INBOUND_CAPACITY: usize = 64;
/// While the outbound queue is full but the connection task still takes commands, a
/// [`Session::try_send`] waits this long before checking again whether the peer has
/// stopped reading.
const FULL_QUEUE_RECHECK: Duration = Duration::from_millis(10);

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
    /// Shared with other connections: what their incomplete frames may hold together
    /// (`None`: only `max_frame_size` bounds this connection's).
    pub input_budget: Option<InputBudget>,
    /// Bytes that messages queued with [`Session::try_send`] / [`Session::try_request`]
    /// and the task's write buffer may hold together; past it those calls treat the
    /// queue as full (see [`Session::try_send`]). Answers sent with [`Session::reply`]
    /// are not counted (one at a time per request).
    pub max_outbound_bytes: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            ping_delay: Some(DEFAULT_PING_DELAY),
            ping_timeout: DEFAULT_PING_TIMEOUT,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            input_budget: None,
            max_outbound_bytes: usize::MAX,
        }
    }
}

/// A message encoded once (its SBS `Data.data`) to be sent on many connections: every
/// connection's queue shares the same bytes instead of holding its own copy of the
/// message. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedMsg {
    type_name: &'static str,
    data: Bytes,
}

impl EncodedMsg {
    /// Encodes `msg`.
    pub fn new(msg: &EventerMsg) -> Self {
        let mut data = Vec::new();
        msg.encode(&mut data);
        Self {
            type_name: msg.type_name(),
            data: Bytes::from(data),
        }
    }

    /// `MsgEventsNotify` of `events`, encoded straight from them: the same bytes as
    /// `EncodedMsg::new(&EventerMsg::EventsNotify(events.cloned().collect()))` without
    /// copying every event first (the server's fan-out of a stored batch, issue 12).
    pub fn events_notify<'a>(
        events: impl ExactSizeIterator<Item = &'a gateway_model::Event> + Clone,
    ) -> Self {
        let mut size = crate::sbs::SizeCounter::default();
        crate::message::put_events_notify(&mut size, events.clone());
        let mut data = Vec::with_capacity(size.0);
        crate::message::put_events_notify(&mut data, events);
        Self {
            type_name: crate::message::MSG_EVENTS_NOTIFY,
            data: Bytes::from(data),
        }
    }

    /// `Data.type` of the message.
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// Size of the encoded message in bytes.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True for a message with an empty encoding (e.g. `MsgEventsAck`).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// What a [`Command`] sends.
#[derive(Debug)]
enum Outgoing {
    Msg(EventerMsg),
    Encoded(EncodedMsg),
}

/// Frame overhead counted per queued message besides its data (prefix, header, type).
const FRAME_OVERHEAD: usize = 64;

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
    /// The peer does not read what we send: its outbound queue was full when a message
    /// that may not wait (a notification) had to be queued.
    #[error("slow consumer: outbound queue full with {queued} messages")]
    SlowConsumer {
        /// Messages waiting in the outbound queue at that moment.
        queued: usize,
    },
    /// The peer keeps sending (Pings) but does not read what we send.
    #[error("peer does not read: {bytes} bytes unsent")]
    UnreadOutput {
        /// Bytes waiting to be written at that moment.
        bytes: usize,
    },
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
    /// The message's share of [`SessionConfig::input_budget`] (empty without one),
    /// given back when the message is dropped: decoded messages waiting for the owner
    /// count against the budget like incomplete frames.
    pub input_share: InputShare,
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
    msg: Outgoing,
    conversation: Conversation,
    last: bool,
    response: Option<oneshot::Sender<Inbound>>,
    /// Counted in `Session::outbound` until the task takes the command.
    bytes: usize,
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
    /// Set by the connection task while it refuses commands because the socket does not
    /// take its bytes (the write buffer is above its high-water mark).
    write_blocked: Arc<AtomicBool>,
    /// Bytes of queued commands ([`Command::bytes`]) plus the task's write buffer.
    outbound: Arc<Outbound>,
    max_outbound_bytes: usize,
}

/// The two halves of a connection's outbound byte count.
#[derive(Debug, Default)]
struct Outbound {
    /// Counted commands not yet taken by the task.
    queued: AtomicUsize,
    /// The task's write buffer, as of its last loop turn.
    buffered: AtomicUsize,
}

impl Outbound {
    fn total(&self) -> usize {
        self.queued
            .load(Ordering::Relaxed)
            .saturating_add(self.buffered.load(Ordering::Relaxed))
    }
}

/// Why [`Session::try_send`] or [`Session::try_request`] did not queue a message.
///
/// An outcome for the caller to act on, not a connection end: a full queue leaves the
/// connection open (the caller decides, e.g. [`Session::fail`] with
/// [`ConnectionError::SlowConsumer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryQueueError {
    /// The outbound queue is full.
    Full {
        /// Messages waiting in the queue.
        queued: usize,
    },
    /// The connection has ended or is ending.
    Closed,
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
///
/// The outbound queue holds [`COMMAND_CAPACITY`] messages.
pub fn spawn<T>(
    io: T,
    config: SessionConfig,
    span: tracing::Span,
) -> (Session, mpsc::Receiver<Inbound>)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    spawn_with_capacity(io, config, COMMAND_CAPACITY, span)
}

/// [`spawn`] with an outbound queue of `command_capacity` messages (at least 1; 0 is
/// taken as 1).
pub fn spawn_with_capacity<T>(
    io: T,
    config: SessionConfig,
    command_capacity: usize,
    span: tracing::Span,
) -> (Session, mpsc::Receiver<Inbound>)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (command_tx, command_rx) = mpsc::channel(command_capacity.max(1));
    let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_CAPACITY);
    let (closed_tx, closed_rx) = watch::channel(None);
    let cancel = CancellationToken::new();
    let fail_reason = Arc::new(Mutex::new(None));
    let write_blocked = Arc::new(AtomicBool::new(false));
    let outbound = Arc::new(Outbound::default());
    let max_outbound_bytes = config.max_outbound_bytes;
    let task = ConnectionTask::new(
        io,
        config,
        command_rx,
        inbound_tx,
        cancel.clone(),
        fail_reason.clone(),
        write_blocked.clone(),
        outbound.clone(),
    );
    tokio::spawn(task.run(closed_tx).instrument(span));
    let session = Session {
        commands: command_tx,
        closed: closed_rx,
        cancel,
        fail_reason,
        write_blocked,
        outbound,
        max_outbound_bytes,
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

    /// Queues `msg` like [`Session::send`] but never waits for a peer that does not
    /// read: when the outbound queue is full while the socket refuses our bytes, the
    /// message is not sent ([`TryQueueError::Full`]) and the connection stays open.
    /// A queue that is full only because the connection task has not run yet is
    /// waited for.
    ///
    /// The queue also counts as full while the messages queued this way and the write
    /// buffer hold [`SessionConfig::max_outbound_bytes`] or more.
    pub async fn try_send(&self, msg: EventerMsg, last: bool) -> Result<(), TryQueueError> {
        let bytes = msg.encoded_len() + FRAME_OVERHEAD;
        self.try_submit(Outgoing::Msg(msg), bytes, last, None).await
    }

    /// [`Session::try_send`] of a message encoded once for many connections.
    pub async fn try_send_encoded(
        &self,
        msg: &EncodedMsg,
        last: bool,
    ) -> Result<(), TryQueueError> {
        let bytes = msg.len() + FRAME_OVERHEAD;
        self.try_submit(Outgoing::Encoded(msg.clone()), bytes, last, None)
            .await
    }

    /// [`Session::try_request`] of a message encoded once for many connections.
    pub async fn try_request_encoded(
        &self,
        msg: &EncodedMsg,
    ) -> Result<PendingResponse, TryQueueError> {
        let (tx, rx) = oneshot::channel();
        let bytes = msg.len() + FRAME_OVERHEAD;
        self.try_submit(Outgoing::Encoded(msg.clone()), bytes, false, Some(tx))
            .await?;
        Ok(PendingResponse {
            rx,
            session: self.clone(),
        })
    }

    /// Queues a request like [`Session::request`], with the waiting rule of
    /// [`Session::try_send`].
    pub async fn try_request(&self, msg: EventerMsg) -> Result<PendingResponse, TryQueueError> {
        let (tx, rx) = oneshot::channel();
        let bytes = msg.encoded_len() + FRAME_OVERHEAD;
        self.try_submit(Outgoing::Msg(msg), bytes, false, Some(tx))
            .await?;
        Ok(PendingResponse {
            rx,
            session: self.clone(),
        })
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
            msg: Outgoing::Msg(msg),
            conversation,
            last,
            response,
            bytes: 0,
        };
        if self.cancel.is_cancelled() {
            return Err(self.closed().await);
        }
        match self.commands.send(command).await {
            Ok(()) => Ok(()),
            Err(_) => Err(self.closed().await),
        }
    }

    async fn try_submit(
        &self,
        msg: Outgoing,
        bytes: usize,
        last: bool,
        response: Option<oneshot::Sender<Inbound>>,
    ) -> Result<(), TryQueueError> {
        if self.cancel.is_cancelled() {
            return Err(TryQueueError::Closed);
        }
        let mut command = Command {
            msg,
            conversation: Conversation::New,
            last,
            response,
            bytes,
        };
        let full = || TryQueueError::Full {
            queued: self.commands.max_capacity() - self.commands.capacity(),
        };
        loop {
            let over_bytes = self.outbound.total().saturating_add(bytes) > self.max_outbound_bytes;
            if !over_bytes {
                // Counted before it is queued, so the task never subtracts first.
                self.outbound.queued.fetch_add(bytes, Ordering::Relaxed);
                command = match self.commands.try_send(command) {
                    Ok(()) => return Ok(()),
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        self.outbound.queued.fetch_sub(bytes, Ordering::Relaxed);
                        return Err(TryQueueError::Closed);
                    }
                    Err(mpsc::error::TrySendError::Full(command)) => {
                        self.outbound.queued.fetch_sub(bytes, Ordering::Relaxed);
                        command
                    }
                };
            }
            // A full queue alone does not make a slow peer: with many producers on few
            // cores the connection task may simply not have run yet, while it still
            // takes commands. Only a task that refuses commands because the socket does
            // not take its bytes means the peer does not read.
            if self.write_blocked.load(Ordering::Relaxed) {
                return Err(full());
            }
            if over_bytes {
                // Nothing left for the task to take: the unsent bytes alone are over
                // the limit, so the peer does not keep up.
                if self.outbound.queued.load(Ordering::Relaxed) == 0 {
                    return Err(full());
                }
                // The task drains the queue into its write buffer until the socket
                // stops taking bytes (then `write_blocked`) or the bytes fit.
                tokio::time::sleep(FULL_QUEUE_RECHECK).await;
                if self.is_closed() {
                    return Err(TryQueueError::Closed);
                }
                continue;
            }
            self.outbound.queued.fetch_add(bytes, Ordering::Relaxed);
            command = match self
                .commands
                .send_timeout(command, FULL_QUEUE_RECHECK)
                .await
            {
                Ok(()) => return Ok(()),
                Err(mpsc::error::SendTimeoutError::Closed(_)) => {
                    self.outbound.queued.fetch_sub(bytes, Ordering::Relaxed);
                    return Err(TryQueueError::Closed);
                }
                Err(mpsc::error::SendTimeoutError::Timeout(command)) => {
                    self.outbound.queued.fetch_sub(bytes, Ordering::Relaxed);
                    command
                }
            };
        }
    }
}

mod task;

#[cfg(test)]
#[path = "connection_tests.rs"]
mod tests;
