//! One open Modbus connection: a task that owns the byte stream and a FIFO request
//! queue, sends one request at a time and applies the request delay, timeouts and
//! immediate / delayed retries of `docs/modbus-master.md` section 10.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::BytesMut;
use futures::FutureExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::transport::ByteStream;
use modbus::{decode_response, FrameError, Framer, PduError, Reply, Request};

/// Capacity of the request queue shared by all readers and writes of one connection
/// (hat-gateway's queue size). Callers wait for room when it is full.
pub const REQUEST_QUEUE_CAPACITY: usize = 1024;

/// Read buffer size for one `read` call.
const READ_CHUNK: usize = 4096;

/// Request timing of one connection (from the `connection` configuration).
#[derive(Debug, Clone, Copy)]
pub struct RequestTiming {
    /// Wait for the response to one attempt.
    pub request_timeout: Duration,
    /// Minimal time between a response and the next request.
    pub request_delay: Duration,
    /// Extra back-to-back attempts after a timeout.
    pub immediate_retries: u32,
    /// Extra rounds of attempts.
    pub delayed_retries: u32,
    /// Pause before a delayed round.
    pub retry_delay: Duration,
    /// Minimal idle gap on the line before sending (serial).
    pub silent_interval: Duration,
}

/// Why a request produced no response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Every attempt of every round timed out.
    #[error("request timed out after all retries")]
    Timeout,
    /// The connection closed before the request completed.
    #[error("connection closed")]
    Closed,
}

/// Why the connection ended (logged; the device reconnects).
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// Read or write failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the stream.
    #[error("connection closed by the peer")]
    Eof,
    /// Undecodable bytes.
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
    /// Undecodable PDU.
    #[error("bad response: {0}")]
    Pdu(#[from] PduError),
    /// A write echo that does not match the request.
    #[error("write echo does not match the request")]
    EchoMismatch,
}

struct Queued {
    unit: u8,
    request: Request,
    rounds: u32,
    reply: oneshot::Sender<Result<Reply, RequestError>>,
}

/// Cheap handle to a connection task. Dropping every handle does not close it; use
/// [`ConnectionHandle::close`].
#[derive(Clone)]
pub struct ConnectionHandle {
    queue: mpsc::Sender<Queued>,
    closed: CancellationToken,
}

impl std::fmt::Debug for ConnectionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionHandle")
            .field("closed", &self.closed.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl ConnectionHandle {
    /// Queues a request and waits for its outcome. Dropping the future abandons the
    /// request (it is skipped if not yet sent).
    pub async fn send(&self, unit: u8, request: Request) -> Result<Reply, RequestError> {
        let (reply, outcome) = oneshot::channel();
        let queued = Queued {
            unit,
            request,
            rounds: 0,
            reply,
        };
        self.queue
            .send(queued)
            .await
            .map_err(|_| RequestError::Closed)?;
        outcome.await.unwrap_or(Err(RequestError::Closed))
    }

    /// True until the connection has closed.
    pub fn is_open(&self) -> bool {
        !self.closed.is_cancelled()
    }

    /// Resolves once the connection has closed (for any reason).
    pub async fn closed(&self) {
        self.closed.cancelled().await;
    }

    /// Asks the connection to close; await the join handle to know it is closed.
    pub fn close(&self) {
        self.closed.cancel();
    }
}

/// Starts the task owning `stream`. It ends when the stream fails or [`close`] is
/// called; queued requests then fail with [`RequestError::Closed`].
///
/// [`close`]: ConnectionHandle::close
pub fn spawn(
    stream: Box<dyn ByteStream>,
    framer: Framer,
    timing: RequestTiming,
) -> (ConnectionHandle, JoinHandle<()>) {
    let (queue, requests) = mpsc::channel(REQUEST_QUEUE_CAPACITY);
    let closed = CancellationToken::new();
    let session = Session {
        stream,
        framer,
        timing,
        read_buf: BytesMut::with_capacity(READ_CHUNK),
        write_buf: Vec::with_capacity(256),
        last_response: None,
        last_activity: Instant::now(),
    };
    let task = tokio::spawn(
        run(session, requests, closed.clone())
            .instrument(tracing::debug_span!("modbus_connection")),
    );
    (ConnectionHandle { queue, closed }, task)
}

enum Outcome {
    Done,
    RetryLater(Queued),
    Cancelled,
}

async fn run(
    mut session: Session,
    mut requests: mpsc::Receiver<Queued>,
    closed: CancellationToken,
) {
    let mut pending: VecDeque<Queued> = VecDeque::new();
    // Due times grow with insertion order (one fixed delay), so a FIFO suffices.
    let mut delayed: VecDeque<(Instant, Queued)> = VecDeque::new();
    let result = loop {
        let now = Instant::now();
        if delayed.front().is_some_and(|(due, _)| *due <= now) {
            // A delayed round goes to the tail of the queue: behind everything queued.
            while let Ok(queued) = requests.try_recv() {
                pending.push_back(queued);
            }
            while delayed.front().is_some_and(|(due, _)| *due <= now) {
                pending.extend(delayed.pop_front().map(|(_, q)| q));
            }
        }
        if let Some(queued) = pending.pop_front() {
            match session.process(queued, &closed).await {
                Ok(Outcome::Done) => continue,
                Ok(Outcome::RetryLater(queued)) => {
                    delayed.push_back((Instant::now() + session.timing.retry_delay, queued));
                    continue;
                }
                Ok(Outcome::Cancelled) => break Ok(()),
                Err(err) => break Err(err),
            }
        }
        let next_due = delayed.front().map(|(due, _)| *due);
        tokio::select! {
            _ = closed.cancelled() => break Ok(()),
            queued = requests.recv() => match queued {
                Some(queued) => pending.push_back(queued),
                // Every handle is gone: nobody can use the connection any more.
                None => break Ok(()),
            },
            _ = sleep_until_opt(next_due) => {}
            // Cancel safe: `read` either consumed bytes or not.
            idle = session.read_idle() => if let Err(err) = idle { break Err(err) },
        }
    };
    match result {
        Ok(()) => tracing::debug!("connection closed"),
        Err(err) => tracing::info!(error = %err, "connection ended"),
    }
    closed.cancel();
}

async fn sleep_until_opt(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

struct Session {
    stream: Box<dyn ByteStream>,
    framer: Framer,
    timing: RequestTiming,
    read_buf: BytesMut,
    write_buf: Vec<u8>,
    last_response: Option<Instant>,
    last_activity: Instant,
}

impl Session {
    async fn process(
        &mut self,
        mut queued: Queued,
        closed: &CancellationToken,
    ) -> Result<Outcome, ConnectionError> {
        if let Some(last) = self.last_response {
            let ready = last + self.timing.request_delay;
            tokio::select! {
                _ = closed.cancelled() => return Ok(Outcome::Cancelled),
                _ = tokio::time::sleep_until(ready) => {}
            }
        }
        if queued.reply.is_closed() {
            return Ok(Outcome::Done);
        }
        for _ in 0..=self.timing.immediate_retries {
            let attempt = tokio::select! {
                _ = closed.cancelled() => return Ok(Outcome::Cancelled),
                attempt = self.attempt(queued.unit, &queued.request) => attempt?,
            };
            if let Some(response) = attempt {
                self.last_response = Some(Instant::now());
                if queued.request.echo_matches(&response) == Some(false) {
                    return Err(ConnectionError::EchoMismatch);
                }
                // The requester may have gone away meanwhile; nothing to do then.
                let _ = queued.reply.send(Ok(response));
                return Ok(Outcome::Done);
            }
            tracing::debug!(
                unit = queued.unit,
                function = queued.request.function(),
                "request attempt timed out"
            );
        }
        queued.rounds += 1;
        if queued.rounds <= self.timing.delayed_retries {
            return Ok(Outcome::RetryLater(queued));
        }
        let _ = queued.reply.send(Err(RequestError::Timeout));
        Ok(Outcome::Done)
    }

    /// One attempt: flush input, send a fresh ADU, wait for the matching response.
    /// `Ok(None)` = timed out.
    async fn attempt(
        &mut self,
        unit: u8,
        request: &Request,
    ) -> Result<Option<Reply>, ConnectionError> {
        self.discard_input()?;
        if !self.timing.silent_interval.is_zero() {
            tokio::time::sleep_until(self.last_activity + self.timing.silent_interval).await;
        }
        let transaction_id = self
            .framer
            .encode_request(unit, request, &mut self.write_buf);
        tracing::trace!(unit, ?transaction_id, ?request, "sending request");
        self.stream.write_all(&self.write_buf).await?;
        self.stream.flush().await?;
        self.last_activity = Instant::now();
        let function = request.function();
        match tokio::time::timeout(
            self.timing.request_timeout,
            self.read_response(transaction_id, unit, function),
        )
        .await
        {
            Ok(result) => result.map(Some),
            Err(_elapsed) => Ok(None),
        }
    }

    async fn read_response(
        &mut self,
        transaction_id: Option<u16>,
        unit: u8,
        function: u8,
    ) -> Result<Reply, ConnectionError> {
        loop {
            while let Some(adu) = self.framer.decode_response(&mut self.read_buf)? {
                let matches = adu.transaction_id == transaction_id
                    && adu.unit == unit
                    && adu.pdu.first().map(|fc| fc & 0x7F) == Some(function);
                if matches {
                    let response = decode_response(&adu.pdu)?;
                    tracing::trace!(unit, ?response, "received response");
                    return Ok(response);
                }
                // A late answer to an earlier attempt, or for another unit: not ours.
                tracing::debug!(
                    expected_transaction = ?transaction_id,
                    received_transaction = ?adu.transaction_id,
                    unit = adu.unit,
                    "discarding non-matching response"
                );
            }
            self.read_more().await?;
        }
    }

    /// Reads what is available into the read buffer. Cancel safe.
    async fn read_more(&mut self) -> Result<(), ConnectionError> {
        self.read_buf.reserve(READ_CHUNK);
        let n = self.stream.read_buf(&mut self.read_buf).await?;
        if n == 0 {
            return Err(ConnectionError::Eof);
        }
        self.last_activity = Instant::now();
        Ok(())
    }

    /// While no request is on the wire: notices EOF and errors, drops stray bytes.
    async fn read_idle(&mut self) -> Result<(), ConnectionError> {
        self.read_more().await?;
        tracing::debug!(
            bytes = self.read_buf.len(),
            "discarding bytes received while idle"
        );
        self.read_buf.clear();
        Ok(())
    }

    /// Drops buffered and already-arrived input before a new attempt, so a late
    /// response to an earlier attempt cannot be taken for this one.
    fn discard_input(&mut self) -> Result<(), ConnectionError> {
        self.read_buf.clear();
        loop {
            self.read_buf.reserve(READ_CHUNK);
            match self.stream.read_buf(&mut self.read_buf).now_or_never() {
                None => break,
                Some(Ok(0)) => return Err(ConnectionError::Eof),
                Some(Ok(_)) => {
                    self.last_activity = Instant::now();
                    self.read_buf.clear();
                }
                Some(Err(err)) => return Err(err.into()),
            }
        }
        Ok(())
    }
}
