//! One IEC 104 connection: the task that owns the socket and the APCI session, the
//! receiving half ([`Connection`]) and the cloneable sending handle ([`Sender`]).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use iec60870::apci::{
    ApduDecoder, CloseReason, Event, Role, SendError, SendOutcome, Session, MAX_ASDU_SIZE,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::time::Instant;
use tracing::Instrument;

use crate::{ConnectionConfig, Error};

/// Bytes read per syscall at most; also the bound of undecoded received bytes (a reader
/// stops reading while this much is buffered and the receive queue is full).
const READ_BUFFER_SIZE: usize = 64 * 1024;
/// Unwritten output above which the socket is not read (answers to what we read would
/// pile up otherwise); one read can add at most about [`READ_BUFFER_SIZE`] more.
const MAX_UNWRITTEN_OUTPUT: usize = 64 * 1024;
/// Below this much free room in the read buffer a new one of [`READ_BUFFER_SIZE`] is
/// taken (a whole APDU is at most 255 bytes, so a read always has room for several).
const MIN_READ_SPACE: usize = 4 * 1024;

/// Addresses of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectionInfo {
    /// Our end.
    pub local_addr: SocketAddr,
    /// The peer's end.
    pub remote_addr: SocketAddr,
}

type Reply = oneshot::Sender<Result<(), Error>>;

/// What handles ask of the connection task, in order.
enum Command {
    /// Send one ASDU; `ack` resolves once the peer acknowledged it.
    Send { asdu: Bytes, ack: Option<Reply> },
    /// Resolve once everything queued before is written (`wait_ack`: and acknowledged).
    Drain { wait_ack: bool, reply: Reply },
}

/// State the task publishes to the handles.
struct Shared {
    info: ConnectionInfo,
    enabled: watch::Sender<bool>,
    closed: watch::Sender<Option<CloseReason>>,
    close_requested: AtomicBool,
    close_notify: Notify,
}

impl Shared {
    fn close_reason(&self) -> CloseReason {
        self.closed.borrow().clone().unwrap_or(CloseReason::Local)
    }
}

/// The receiving half of a connection, owned by one task. Dropping it does not close the
/// connection while a [`Sender`] lives (received ASDUs are then dropped).
pub struct Connection {
    received: mpsc::Receiver<Bytes>,
    sender: Sender,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("info", &self.sender.shared.info)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Starts the task owning `stream`.
    pub(crate) fn spawn(
        stream: TcpStream,
        role: Role,
        config: &ConnectionConfig,
    ) -> std::io::Result<Connection> {
        let info = ConnectionInfo {
            local_addr: stream.local_addr()?,
            remote_addr: stream.peer_addr()?,
        };
        // Frames are small and each is a complete message: do not let Nagle hold them.
        stream.set_nodelay(true)?;
        let (commands_tx, commands_rx) = mpsc::channel(config.send_queue_size.max(1));
        let (received_tx, received_rx) = mpsc::channel(config.receive_queue_size.max(1));
        let shared = Arc::new(Shared {
            info,
            enabled: watch::Sender::new(false),
            closed: watch::Sender::new(None),
            close_requested: AtomicBool::new(false),
            close_notify: Notify::new(),
        });
        let session = Session::new(config.session(), role, Instant::now().into_std());
        let span = tracing::info_span!(
            "iec104_connection",
            local = %info.local_addr,
            remote = %info.remote_addr,
            role = ?role,
        );
        let task = ConnectionTask {
            session,
            shared: shared.clone(),
            commands: commands_rx,
            received: received_tx,
            ack_waiters: VecDeque::new(),
            flush_waiters: VecDeque::new(),
            acked: 0,
            flushed: 0,
            held_command: None,
            held_asdu: None,
        };
        tokio::spawn(task.run(stream).instrument(span));
        Ok(Connection {
            received: received_rx,
            sender: Sender {
                commands: commands_tx,
                shared,
            },
        })
    }

    /// A sending handle.
    pub fn sender(&self) -> Sender {
        self.sender.clone()
    }

    /// Addresses of the connection.
    pub fn info(&self) -> ConnectionInfo {
        self.sender.shared.info
    }

    /// The next ASDU the peer sent, in order; once the connection closed (and every ASDU
    /// received before is taken), `Err(Error::Closed(reason))`. Cancel safe.
    pub async fn receive(&mut self) -> Result<Bytes, Error> {
        match self.received.recv().await {
            Some(asdu) => Ok(asdu),
            None => Err(Error::Closed(self.sender.shared.close_reason())),
        }
    }
}

/// A cheap, cloneable handle sending on a connection.
#[derive(Clone)]
pub struct Sender {
    commands: mpsc::Sender<Command>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("info", &self.shared.info)
            .finish_non_exhaustive()
    }
}

impl Sender {
    /// Queues `asdu` (waiting while the queue is full). Without `wait_ack` it resolves
    /// once queued: an ASDU queued just before the connection closes is lost without an
    /// error, as in hat-drivers. With `wait_ack` it resolves once the peer acknowledged
    /// the I-frame, or fails: [`Error::Disabled`] if it was discarded because data
    /// transfer is stopped, [`Error::Closed`] if the connection closed first.
    /// Cancelling it after it was queued does not take the ASDU back.
    pub async fn send(&self, asdu: Bytes, wait_ack: bool) -> Result<(), Error> {
        if asdu.len() > MAX_ASDU_SIZE {
            return Err(Error::AsduTooLong(asdu.len()));
        }
        if !wait_ack {
            return self.command(Command::Send { asdu, ack: None }).await;
        }
        let (reply, done) = oneshot::channel();
        self.command(Command::Send {
            asdu,
            ack: Some(reply),
        })
        .await?;
        self.outcome(done).await
    }

    /// Queues every ASDU in order; `wait_ack` waits for the acknowledgement of the last
    /// (acknowledgements are cumulative). Nothing is queued if one is too long.
    pub async fn send_all(&self, asdus: Vec<Bytes>, wait_ack: bool) -> Result<(), Error> {
        if let Some(long) = asdus.iter().find(|asdu| asdu.len() > MAX_ASDU_SIZE) {
            return Err(Error::AsduTooLong(long.len()));
        }
        let count = asdus.len();
        for (index, asdu) in asdus.into_iter().enumerate() {
            self.send(asdu, wait_ack && index + 1 == count).await?;
        }
        Ok(())
    }

    /// Resolves once everything queued before is written to the socket and, with
    /// `wait_ack`, acknowledged by the peer.
    pub async fn drain(&self, wait_ack: bool) -> Result<(), Error> {
        let (reply, done) = oneshot::channel();
        self.command(Command::Drain { wait_ack, reply }).await?;
        self.outcome(done).await
    }

    /// Whether data transfer is started (STARTDT).
    pub fn is_enabled(&self) -> bool {
        *self.shared.enabled.borrow()
    }

    /// The STARTDT/STOPDT state as a watch channel.
    pub fn enabled(&self) -> watch::Receiver<bool> {
        self.shared.enabled.subscribe()
    }

    /// Addresses of the connection.
    pub fn info(&self) -> ConnectionInfo {
        self.shared.info
    }

    /// Closes the connection ([`CloseReason::Local`]); returns at once.
    pub fn close(&self) {
        self.shared.close_requested.store(true, Ordering::Release);
        self.shared.close_notify.notify_one();
    }

    /// Whether the connection has closed.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.borrow().is_some()
    }

    /// Resolves once the connection has closed, with the reason.
    pub async fn closed(&self) -> CloseReason {
        let mut closed = self.shared.closed.subscribe();
        // The watch sender lives in `self.shared`, so waiting cannot fail.
        let _ = closed.wait_for(Option::is_some).await;
        self.shared.close_reason()
    }

    async fn command(&self, command: Command) -> Result<(), Error> {
        self.commands
            .send(command)
            .await
            .map_err(|_| Error::Closed(self.closed_reason_soon()))
    }

    async fn outcome(&self, done: oneshot::Receiver<Result<(), Error>>) -> Result<(), Error> {
        match done.await {
            Ok(outcome) => outcome,
            Err(_) => Err(Error::Closed(self.closed_reason_soon())),
        }
    }

    /// The close reason once the task dropped its queues (it publishes the reason first).
    fn closed_reason_soon(&self) -> CloseReason {
        self.shared.close_reason()
    }
}

/// The task owning one connection.
struct ConnectionTask {
    session: Session,
    shared: Arc<Shared>,
    commands: mpsc::Receiver<Command>,
    received: mpsc::Sender<Bytes>,
    /// `wait_ack` replies with the [`iec60870::apci::SendId`] count they wait for, in
    /// order; bounded by k plus the command queue (one entry per command taken).
    ack_waiters: VecDeque<(u64, Reply)>,
    /// Drain replies waiting for the socket write, in order; bounded like `ack_waiters`.
    flush_waiters: VecDeque<(u64, Reply)>,
    /// I-frames acknowledged by the peer so far.
    acked: u64,
    /// I-frames written to the socket so far.
    flushed: u64,
    /// A send command waiting for room in the k window (commands behind it wait too).
    held_command: Option<Command>,
    /// A received ASDU waiting for room in the receive queue (reading waits meanwhile).
    held_asdu: Option<Bytes>,
}

impl ConnectionTask {
    async fn run(mut self, mut stream: TcpStream) {
        let (mut reader, mut writer) = stream.split();
        let mut decoder = ApduDecoder::new();
        let mut input = BytesMut::with_capacity(READ_BUFFER_SIZE);
        let mut output = BytesMut::new();
        // I-frames in `output` or written before it.
        let mut framed: u64 = 0;
        loop {
            let now = Instant::now().into_std();
            while self.held_asdu.is_none() && !self.session.is_closed() {
                match decoder.decode(&mut input) {
                    Ok(Some(apdu)) => {
                        // No per-frame trace record: inside a plugin every record is
                        // formatted before the host's filter sees it, and at tens of
                        // thousands of frames a second that formatting dominated.
                        self.session.handle_apdu(apdu, now);
                        self.dispatch_events();
                    }
                    Ok(None) => break,
                    Err(error) => self.session.close(CloseReason::Protocol(error)),
                }
            }
            self.take_commands(now);
            self.dispatch_events();
            if self.shared.close_requested.load(Ordering::Acquire) {
                self.session.close(CloseReason::Local);
            }
            if self.session.is_closed() {
                break;
            }
            if self.session.has_transmit() {
                output.unsplit(self.session.take_transmit());
                framed = self.session.next_send_id().0;
            }
            if output.is_empty() {
                self.flushed = framed;
                self.resolve_flushed();
            }
            let deadline = self.session.poll_timeout();
            let can_take_command = self.held_command.is_none() && self.session.can_send();
            // A peer that sends but does not read (a TESTFR act flood) must not grow our
            // unwritten output without bound: stop reading until it takes our bytes.
            let can_read = self.held_asdu.is_none()
                && input.len() < READ_BUFFER_SIZE
                && output.len() < MAX_UNWRITTEN_OUTPUT;
            // Received ASDUs share the buffer they were read into, so a fresh buffer is
            // taken only when little room is left (not on every read).
            if can_read && input.capacity() - input.len() < MIN_READ_SPACE {
                input.reserve(READ_BUFFER_SIZE);
            }
            // Every branch is cancel safe: a read or write either happened (and is
            // accounted for below) or did not; queue receives and reservations lose
            // nothing when dropped.
            tokio::select! {
                () = self.shared.close_notify.notified() => {
                    self.session.close(CloseReason::Local);
                }
                read = reader.read_buf(&mut input), if can_read => match read {
                    Ok(0) => self.session.close(CloseReason::PeerClosed),
                    Ok(_) => {}
                    Err(error) => self.session.close(CloseReason::Io(error.to_string())),
                },
                written = writer.write(&output), if !output.is_empty() => match written {
                    Ok(0) => self.session.close(CloseReason::PeerClosed),
                    Ok(count) => output.advance(count),
                    Err(error) => self.session.close(CloseReason::Io(error.to_string())),
                },
                command = self.commands.recv(), if can_take_command => match command {
                    Some(command) => self.held_command = Some(command),
                    // Every handle is gone: nobody can send or close any more.
                    None => self.session.close(CloseReason::Local),
                },
                permit = self.received.reserve(), if self.held_asdu.is_some() => {
                    // Taken either way: without a receiver (Err) the ASDU is dropped, as
                    // in `dispatch_events`.
                    let held = self.held_asdu.take();
                    if let (Ok(permit), Some(asdu)) = (permit, held) {
                        permit.send(asdu);
                    }
                }
                () = sleep_until(deadline), if deadline.is_some() => {
                    self.session.handle_timeout(Instant::now().into_std());
                }
            }
        }
        self.finish();
    }

    /// Offers queued commands to the session while the k window has room.
    fn take_commands(&mut self, now: std::time::Instant) {
        loop {
            let command = match self.held_command.take() {
                Some(command) => command,
                None => match self.commands.try_recv() {
                    Ok(command) => command,
                    Err(_) => return,
                },
            };
            match command {
                Command::Send { asdu, ack } => match self.session.send_asdu(asdu, now) {
                    Ok(SendOutcome::Sent(id)) => {
                        if let Some(ack) = ack {
                            self.ack_waiters.push_back((id.0 + 1, ack));
                        }
                    }
                    Ok(SendOutcome::Discarded) => {
                        tracing::debug!("data transfer stopped: ASDU discarded");
                        if let Some(ack) = ack {
                            let _ = ack.send(Err(Error::Disabled));
                        }
                    }
                    Err(SendError::WindowFull(asdu)) => {
                        self.held_command = Some(Command::Send { asdu, ack });
                        return;
                    }
                    Err(SendError::AsduTooLong(asdu)) => {
                        if let Some(ack) = ack {
                            let _ = ack.send(Err(Error::AsduTooLong(asdu.len())));
                        }
                    }
                    Err(SendError::Closed(_)) => {
                        if let Some(ack) = ack {
                            let _ = ack.send(Err(Error::Closed(self.reason())));
                        }
                        return;
                    }
                },
                Command::Drain { wait_ack, reply } => {
                    let target = self.session.next_send_id().0;
                    if wait_ack {
                        self.ack_waiters.push_back((target, reply));
                    } else {
                        self.flush_waiters.push_back((target, reply));
                    }
                }
            }
            if !self.session.can_send() {
                return;
            }
        }
    }

    fn dispatch_events(&mut self) {
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Received(asdu) => match self.received.try_send(asdu) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(asdu)) => self.held_asdu = Some(asdu),
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        tracing::trace!("no receiver: ASDU dropped");
                    }
                },
                Event::Acknowledged(id) => self.acked = id.0,
                Event::Enabled(enabled) => {
                    tracing::debug!(enabled, "data transfer state changed");
                    self.shared.enabled.send_replace(enabled);
                }
            }
        }
        while self
            .ack_waiters
            .front()
            .is_some_and(|(target, _)| *target <= self.acked)
        {
            if let Some((_, reply)) = self.ack_waiters.pop_front() {
                let _ = reply.send(Ok(()));
            }
        }
    }

    fn resolve_flushed(&mut self) {
        while self
            .flush_waiters
            .front()
            .is_some_and(|(target, _)| *target <= self.flushed)
        {
            if let Some((_, reply)) = self.flush_waiters.pop_front() {
                let _ = reply.send(Ok(()));
            }
        }
    }

    fn reason(&self) -> CloseReason {
        self.session
            .close_reason()
            .cloned()
            .unwrap_or(CloseReason::Local)
    }

    /// Publishes the close reason, then fails everything still waiting.
    fn finish(mut self) {
        let reason = self.reason();
        match &reason {
            CloseReason::Local => tracing::debug!(%reason, "IEC 104 connection closed"),
            CloseReason::PeerClosed => tracing::info!(%reason, "IEC 104 connection closed"),
            _ => tracing::warn!(%reason, "IEC 104 connection closed"),
        }
        self.shared.enabled.send_replace(false);
        self.shared.closed.send_replace(Some(reason.clone()));
        self.commands.close();
        let pending = self.held_command.take().into_iter();
        let queued = std::iter::from_fn(|| self.commands.try_recv().ok());
        let replies: Vec<Reply> = pending
            .chain(queued)
            .filter_map(|command| match command {
                Command::Send { ack, .. } => ack,
                Command::Drain { reply, .. } => Some(reply),
            })
            .chain(self.ack_waiters.drain(..).map(|(_, reply)| reply))
            .chain(self.flush_waiters.drain(..).map(|(_, reply)| reply))
            .collect();
        for reply in replies {
            let _ = reply.send(Err(Error::Closed(reason.clone())));
        }
        if let Some(asdu) = self.held_asdu.take() {
            let _ = self.received.try_send(asdu);
        }
    }
}

/// Sleeps until `deadline` (forever without one; the branch is disabled then).
async fn sleep_until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(Instant::from_std(deadline)).await,
        None => std::future::pending().await,
    }
}
