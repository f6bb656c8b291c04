//! The task that owns one connection's socket: it reads and writes frames, answers
//! pings, keeps the keepalive timer and matches answers to our pending requests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use super::{
    Command, ConnectionError, Conversation, Inbound, Outbound, Outgoing, Published, SessionConfig,
};
use crate::chatter::{
    encode_frame, ChatterError, FrameCodec, InputShare, Msg, MsgHeader, PING_TYPE, PONG_TYPE,
};
use crate::message::EventerMsg;

/// Encoded bytes waiting for the socket above which no new message is accepted.
const WRITE_HIGH_WATER: usize = 1024 * 1024;
/// Unsent bytes past which a peer that keeps sending Pings but never reads is dropped:
/// Pongs are written outside the bounded command queue, so this bounds them.
pub(super) const WRITE_HARD_LIMIT: usize = 16 * WRITE_HIGH_WATER;
/// How long already-queued frames may take to reach the socket when a connection ends.
const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(1);
/// Bookkeeping bytes counted per decoded message against the input budget.
const DECODED_OVERHEAD: usize = 64;
/// Pending requests whose callers gave up are pruned when the table grows past this.
const PENDING_PRUNE_THRESHOLD: usize = 1024;

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
pub(super) struct ConnectionTask<T> {
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
    /// Shared with the [`Session`](super::Session): true while commands are refused
    /// because the write buffer is above [`WRITE_HIGH_WATER`].
    write_blocked: Arc<AtomicBool>,
    /// Shared with the [`Session`](super::Session): the write buffer's size is published
    /// here, queued commands' bytes are taken off when the task takes them.
    outbound: Arc<Outbound>,
    config: SessionConfig,
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> ConnectionTask<T> {
    // Each argument is one of the shared halves `spawn_with_capacity` wires up.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        io: T,
        config: SessionConfig,
        commands: mpsc::Receiver<Command>,
        inbound: mpsc::Sender<Inbound>,
        cancel: CancellationToken,
        fail_reason: Arc<Mutex<Option<ConnectionError>>>,
        write_blocked: Arc<AtomicBool>,
        outbound: Arc<Outbound>,
    ) -> Self {
        let (reader, writer) = tokio::io::split(io);
        let codec = FrameCodec::with_budget(config.max_frame_size, config.input_budget.clone());
        ConnectionTask {
            reader: FramedRead::new(reader, codec),
            writer,
            write_buf: BytesMut::new(),
            commands,
            inbound,
            held: None,
            pending: HashMap::new(),
            next_id: 1,
            last_received: Instant::now(),
            ping_sent: None,
            cancel,
            fail_reason,
            write_blocked,
            outbound,
            config,
        }
    }

    /// Serves the connection until it ends, then publishes the reason on `closed`.
    pub(super) async fn run(mut self, closed: watch::Sender<Published>) {
        let reason = self.serve().await;
        // A peer that does not read would only hold the flush up to its timeout.
        let flush = !matches!(reason, ConnectionError::SlowConsumer { .. });
        self.finish(flush).await;
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
            self.write_blocked.store(!writable, Ordering::Relaxed);
            self.outbound
                .buffered
                .store(self.write_buf.len(), Ordering::Relaxed);
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
            if self.write_buf.len() >= WRITE_HARD_LIMIT {
                return Err(ConnectionError::UnreadOutput {
                    bytes: self.write_buf.len(),
                });
            }
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
        // Decoded structures take more than their SBS bytes: counted twice.
        let estimate = 2 * msg.data.len() + msg.data_type.len() + DECODED_OVERHEAD;
        let input_share = match &self.config.input_budget {
            None => InputShare::default(),
            Some(budget) => budget
                .share(estimate)
                .ok_or(ChatterError::InputBudgetExceeded {
                    frame: estimate,
                    limit: budget.limit(),
                })?,
        };
        let decoded = EventerMsg::decode(&msg.data_type, &msg.data)?;
        tracing::trace!(msg = ?decoded, "received message");
        let inbound = Inbound {
            msg: decoded,
            first: msg.first,
            owner: msg.owner,
            last: msg.last,
            input_share,
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
        tracing::trace!(msg = ?command.msg, last = command.last, "sending message");
        if command.bytes > 0 {
            self.outbound
                .queued
                .fetch_sub(command.bytes, Ordering::Relaxed);
        }
        let header = self.next_header(command.conversation, command.last);
        let id = header.id;
        match &command.msg {
            // One pass straight into the write buffer: no intermediate payload copy.
            Outgoing::Msg(msg) => msg.encode_frame(&header, &mut self.write_buf),
            Outgoing::Encoded(encoded) => crate::chatter::encode_frame_with(
                &header,
                encoded.type_name,
                encoded.data.len(),
                |dst| dst.extend_from_slice(&encoded.data),
                &mut self.write_buf,
            ),
        }
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
        let header = self.next_header(conversation, last);
        let msg = Msg::new(header, data_type, data);
        encode_frame(&msg, &mut self.write_buf);
        header.id
    }

    /// Takes the next message id and builds the header of a message in `conversation`.
    fn next_header(&mut self, conversation: Conversation, last: bool) -> MsgHeader {
        let id = self.next_id;
        self.next_id += 1;
        match conversation {
            Conversation::New => MsgHeader::new_conversation(id, last),
            Conversation::Reply(first) => MsgHeader::reply(id, first, last),
        }
    }

    /// Writes what was queued before the end (bounded in time; only with `flush`) and
    /// shuts the stream down.
    async fn finish(&mut self, flush: bool) {
        self.commands.close();
        if flush {
            while let Ok(command) = self.commands.try_recv() {
                self.enqueue(command);
            }
        } else {
            self.write_buf.clear();
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
