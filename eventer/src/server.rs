//! Eventer server: accepts Eventer clients (hat-gateway, the Python eventer client, our
//! own [`crate::client::Client`]), runs hat's init rules, passes register and query
//! requests to a [`ServerHandler`], and sends status and event notifications.
//!
//! Behaviour follows hat-event 0.9.44 (`docs/eventer-protocol.md` sections 8.1 to 8.6):
//! - init: a client token must equal [`ServerConfig::server_token`] (no token is always
//!   accepted) else `invalid client token`; a `*` not in last position gives
//!   `invalid query event type`; then [`ServerHandler::connected`] may refuse with its
//!   own text. After an init error the server waits up to 0.5 s for the client to
//!   close, then closes itself;
//! - requests of one connection are handled one at a time, in arrival order, while the
//!   connection task keeps answering pings;
//! - register with `last = true` is registered but not answered; an empty register is
//!   answered `events([])` without calling the handler; a query is always answered;
//! - anything unexpected or undecodable ends that connection only, with a logged
//!   reason reported to [`ServerHandler::connection_closed`];
//! - status and event notifications never wait for a client: a client whose outbound
//!   queue is full when a notification must be queued is closed as a slow consumer
//!   ([`ConnectionError::SlowConsumer`]), so one client that stops reading cannot hold
//!   up the others (or the application calling [`Server::notify_events`]).
//!
//! Per-connection flow lives in `session`, the application interface in `handler`.

mod handler;
mod session;

pub use handler::{ConnectionInfo, ServerHandler};

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use gateway_model::{Event, Status};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::chatter::{InputBudget, DEFAULT_MAX_FRAME_SIZE};
use crate::connection::{
    self, ConnectionError, EncodedMsg, PendingResponse, Session, SessionConfig, TryQueueError,
    DEFAULT_PING_DELAY, DEFAULT_PING_TIMEOUT,
};
use crate::message::EventerMsg;

/// Default time a new connection gets to send its `MsgInitReq`.
pub const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the server waits for a refused client to close before closing itself
/// (hat's `close_timeout`).
pub const INIT_ERROR_CLOSE_DELAY: Duration = Duration::from_millis(500);
/// Default [`ServerConfig::outbound_capacity`]. The queue sits behind the connection
/// task's write buffer (about 1 MiB) and the kernel's socket buffers. It must absorb a
/// burst of one-notify-per-batch traffic while the connection task waits for a CPU;
/// when it is full while the task still takes commands, notifying waits for it (see
/// `Session::try_send`), so only a client whose socket stopped taking bytes is closed.
/// Measured on 2 cores, 1,000 devices starting at once overflowed a 256-message queue
/// of a subscriber that was reading all along. 4096 batches bound what one stalled
/// client can pin before it is closed.
pub const DEFAULT_OUTBOUND_CAPACITY: usize = 4096;
/// Default [`ServerConfig::max_outbound_bytes`]: 16 MiB of notifications waiting for one
/// client (besides its write buffer of about 1 MiB).
pub const DEFAULT_MAX_OUTBOUND_BYTES: usize = 16 * 1024 * 1024;
/// Default [`ServerConfig::max_buffered_input`]: 64 MiB of incomplete frames of all
/// connections together (four maximum-size frames).
pub const DEFAULT_MAX_BUFFERED_INPUT: usize = 64 * 1024 * 1024;
/// Default [`ServerConfig::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Pause after a failed `accept` (for example too many open files) before retrying.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// Server settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// hat's `server_token`: clients that send a token must send this one.
    pub server_token: Option<String>,
    /// Stricter than hat: with a `server_token`, a client that sends no token is
    /// refused too (`invalid client token`). hat admits it; `false` keeps hat's rule.
    pub require_token: bool,
    /// Status reported to clients until [`Server::set_status`] changes it (hat's
    /// library starts in `standby`).
    pub initial_status: Status,
    /// Time without receiving anything before we Ping a client; `None` disables it.
    pub ping_delay: Option<Duration>,
    /// Time to wait for anything after our Ping before closing the connection.
    pub ping_timeout: Duration,
    /// Largest frame body accepted from a client, in bytes.
    pub max_frame_size: usize,
    /// Time a new connection gets to send `MsgInitReq` before it is closed.
    pub init_timeout: Duration,
    /// Messages each connection may have waiting to be written (at least 1). A client
    /// whose queue is full when a notification must be queued is closed with
    /// [`ConnectionError::SlowConsumer`].
    pub outbound_capacity: usize,
    /// Bytes of notifications each connection may have waiting (queued plus its write
    /// buffer); past it the connection is closed as a slow consumer like with a full
    /// `outbound_capacity`. Notifications share one encoding per distinct selection of
    /// events, so this counts what the client costs at most, not a copy of its own.
    pub max_outbound_bytes: usize,
    /// Bytes that incomplete frames and received messages not yet handled (about twice
    /// their encoded size) of all connections may hold together; a connection whose
    /// frame or message does not fit is closed ([`crate::chatter::ChatterError::InputBudgetExceeded`]).
    /// Each connection is also bounded by `max_frame_size`.
    pub max_buffered_input: usize,
    /// Open connections (initialized or not) at most; one more is accepted and closed
    /// at once, with a warning.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            server_token: None,
            initial_status: Status::Standby,
            ping_delay: Some(DEFAULT_PING_DELAY),
            ping_timeout: DEFAULT_PING_TIMEOUT,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            init_timeout: DEFAULT_INIT_TIMEOUT,
            outbound_capacity: DEFAULT_OUTBOUND_CAPACITY,
            require_token: false,
            max_outbound_bytes: DEFAULT_MAX_OUTBOUND_BYTES,
            max_buffered_input: DEFAULT_MAX_BUFFERED_INPUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Errors of the server layer (connection failures are [`ConnectionError`]s, reported
/// per connection).
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address as given.
        addr: String,
        /// The socket error.
        source: std::io::Error,
    },
    /// The caller's policy refuses the address (e.g. not loopback without a token).
    #[error("refusing to listen on {addr}: {reason}")]
    Refused {
        /// The address as given.
        addr: String,
        /// Why.
        reason: String,
    },
}

/// Cheap, cloneable handle to a running Eventer server.
#[derive(Clone)]
pub struct Server {
    shared: Arc<Shared>,
}

struct Shared {
    handler: Arc<dyn ServerHandler>,
    config: ServerConfig,
    local_addr: Option<SocketAddr>,
    state: Mutex<State>,
    /// Serializes everything that sends to several connections (status, notifications)
    /// and the init answer, so that every connection sees them in one order and never
    /// before its `MsgInitRes`.
    notify_order: tokio::sync::Mutex<()>,
    cancel: CancellationToken,
    next_id: AtomicU64,
    /// Incomplete frames of all connections.
    input_budget: InputBudget,
    /// Open connections (see [`ServerConfig::max_connections`]).
    open: Arc<AtomicUsize>,
    /// Connections refused for `max_connections` (logged when a power of two).
    refused: AtomicU64,
    /// Every connection task holds a clone; `close` waits until all are dropped.
    alive: Mutex<Option<mpsc::Sender<()>>>,
    all_ended: tokio::sync::Mutex<mpsc::Receiver<()>>,
}

struct State {
    status: Status,
    /// Initialized connections, by id.
    connections: BTreeMap<u64, Connected>,
}

struct Connected {
    info: Arc<ConnectionInfo>,
    session: Session,
}

impl Server {
    /// A server without a listening socket; feed it connections with
    /// [`Server::serve_stream`].
    pub fn new(handler: Arc<dyn ServerHandler>, config: ServerConfig) -> Server {
        Self::build(handler, config, None)
    }

    /// Listens on `addr` (use port 0 for any free port, then [`Server::local_addr`])
    /// and serves every accepted connection until [`Server::close`].
    pub async fn listen<A>(
        addr: A,
        handler: Arc<dyn ServerHandler>,
        config: ServerConfig,
    ) -> Result<Server, ServerError>
    where
        A: ToSocketAddrs + std::fmt::Debug,
    {
        let addr_text = format!("{addr:?}");
        let bind_error = |source| ServerError::Bind {
            addr: addr_text.clone(),
            source,
        };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let server = Self::build(handler, config, Some(local_addr));
        let span = tracing::info_span!("eventer_server", addr = %local_addr);
        tokio::spawn(server.clone().accept_loop(listener).instrument(span));
        Ok(server)
    }

    fn build(
        handler: Arc<dyn ServerHandler>,
        config: ServerConfig,
        local_addr: Option<SocketAddr>,
    ) -> Server {
        let (alive_tx, alive_rx) = mpsc::channel(1);
        let input_budget = InputBudget::new(config.max_buffered_input);
        Server {
            shared: Arc::new(Shared {
                handler,
                input_budget,
                open: Arc::new(AtomicUsize::new(0)),
                refused: AtomicU64::new(0),
                state: Mutex::new(State {
                    status: config.initial_status,
                    connections: BTreeMap::new(),
                }),
                config,
                local_addr,
                notify_order: tokio::sync::Mutex::new(()),
                cancel: CancellationToken::new(),
                next_id: AtomicU64::new(1),
                alive: Mutex::new(Some(alive_tx)),
                all_ended: tokio::sync::Mutex::new(alive_rx),
            }),
        }
    }

    /// The listening address (`None` for a server made with [`Server::new`]).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.shared.local_addr
    }

    /// Serves one already-open stream (an accepted socket, or `tokio::io::duplex` in
    /// tests) as a new connection; `peer` is reported in [`ConnectionInfo`] and logs.
    pub fn serve_stream<T>(&self, io: T, peer: SocketAddr)
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Some(alive) = self.lock_alive().clone() else {
            tracing::debug!(peer = %peer, "server closed: dropping new connection");
            return;
        };
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let span = tracing::info_span!(
            "eventer_connection",
            conn = id,
            peer = %peer,
            client_name = tracing::field::Empty
        );
        let config = SessionConfig {
            ping_delay: self.shared.config.ping_delay,
            ping_timeout: self.shared.config.ping_timeout,
            max_frame_size: self.shared.config.max_frame_size,
            input_budget: Some(self.shared.input_budget.clone()),
            max_outbound_bytes: self.shared.config.max_outbound_bytes,
        };
        let open = OpenGuard::new(&self.shared.open);
        let capacity = self.shared.config.outbound_capacity;
        let (session, inbound) =
            connection::spawn_with_capacity(io, config, capacity, span.clone());
        let server = self.clone();
        tokio::spawn(
            async move {
                server.run_connection(id, peer, session, inbound).await;
                drop(open);
                drop(alive);
            }
            .instrument(span),
        );
    }

    /// The current status.
    pub fn status(&self) -> Status {
        self.lock_state().status
    }

    /// Changes the status and notifies every initialized connection (`MsgStatusNotify`,
    /// `last = true`). Setting the current status again sends nothing.
    ///
    /// Never waits for a client: one whose outbound queue is full is closed with
    /// [`ConnectionError::SlowConsumer`].
    pub async fn set_status(&self, status: Status) {
        let _order = self.shared.notify_order.lock().await;
        let targets: Vec<(Arc<ConnectionInfo>, Session)> = {
            let mut state = self.lock_state();
            if state.status == status {
                return;
            }
            state.status = status;
            state
                .connections
                .values()
                .map(|c| (c.info.clone(), c.session.clone()))
                .collect()
        };
        for (info, session) in targets {
            // A connection that just ended simply drops out.
            let queued = session
                .try_send(EventerMsg::StatusNotify(status), true)
                .await;
            let _ = queued_or_closed(&info, &session, queued);
        }
    }

    /// Notifies one batch: every initialized connection whose `persisted` flag equals
    /// `persisted` gets one `MsgEventsNotify` with the events (in batch order) that
    /// match its subscription and, when it gave one, its server id. Connections left
    /// with no event get nothing.
    ///
    /// Returns once the notifies are queued on every connection, in the same order for
    /// all; with `with_ack` (`last = false`) it also waits for every client's
    /// `MsgEventsAck` (a connection that closes meanwhile counts as done). Returns the
    /// number of connections notified.
    ///
    /// Queuing never waits for a client that does not read: a connection whose outbound
    /// queue ([`ServerConfig::outbound_capacity`]) is full while its socket refuses our
    /// bytes is closed with
    /// [`ConnectionError::SlowConsumer`] (logged at WARN with its peer and client
    /// name) and not counted, while every other connection is notified at once.
    ///
    /// The events may be shared (`&[Arc<Event>]`, the embedded server's stored batch):
    /// they are encoded from references, never copied.
    pub async fn notify_events<E: Borrow<Event>>(
        &self,
        events: &[E],
        persisted: bool,
        with_ack: bool,
    ) -> usize {
        let mut acks: Vec<PendingResponse> = Vec::new();
        let mut notified = 0;
        {
            let _order = self.shared.notify_order.lock().await;
            // One encoding per distinct selection (by event index): subscribers that get
            // the same events share one copy of the notify.
            let targets: Vec<(Arc<ConnectionInfo>, Session, Vec<usize>)> = {
                let state = self.lock_state();
                state
                    .connections
                    .values()
                    .filter(|c| c.info.persisted == persisted)
                    .filter_map(|c| {
                        let selected: Vec<usize> = events
                            .iter()
                            .enumerate()
                            .map(|(index, e)| (index, e.borrow()))
                            .filter(|(_, e)| {
                                c.info.subscription.matches(&e.event_type)
                                    && c.info.server_id.is_none_or(|id| id == e.id.server)
                            })
                            .map(|(index, _)| index)
                            .collect();
                        (!selected.is_empty())
                            .then(|| (c.info.clone(), c.session.clone(), selected))
                    })
                    .collect()
            };
            let mut encoded: HashMap<Vec<usize>, EncodedMsg> = HashMap::new();
            for (info, session, selected) in targets {
                let msg = encoded
                    .entry(selected)
                    .or_insert_with_key(|selected| {
                        EncodedMsg::events_notify(selected.iter().map(|&i| events[i].borrow()))
                    })
                    .clone();
                if with_ack {
                    let queued = session.try_request_encoded(&msg).await;
                    if let Some(pending) = queued_or_closed(&info, &session, queued) {
                        acks.push(pending);
                        notified += 1;
                    }
                } else if queued_or_closed(
                    &info,
                    &session,
                    session.try_send_encoded(&msg, true).await,
                )
                .is_some()
                {
                    notified += 1;
                }
            }
        }
        // The ack is the only possible answer in a notify conversation; its content
        // does not matter, and a closed connection needs no ack.
        futures::future::join_all(acks.into_iter().map(PendingResponse::response)).await;
        notified
    }

    /// The initialized connections, by id.
    pub fn connection_infos(&self) -> Vec<ConnectionInfo> {
        self.lock_state()
            .connections
            .values()
            .map(|c| ConnectionInfo::clone(&c.info))
            .collect()
    }

    /// Stops accepting, closes every connection ([`ConnectionError::ServerClosed`]) and
    /// waits until their tasks (including `disconnected` callbacks) have finished.
    pub async fn close(&self) {
        self.shared.cancel.cancel();
        drop(self.lock_alive().take());
        let mut all_ended = self.shared.all_ended.lock().await;
        // Returns `None` once every connection task dropped its sender.
        while all_ended.recv().await.is_some() {}
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_alive(&self) -> std::sync::MutexGuard<'_, Option<mpsc::Sender<()>>> {
        self.shared
            .alive
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    async fn accept_loop(self, listener: TcpListener) {
        tracing::info!("eventer server listening");
        loop {
            tokio::select! {
                () = self.shared.cancel.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let open = self.shared.open.load(Ordering::Relaxed);
                        if open >= self.shared.config.max_connections {
                            let refused = self.shared.refused.fetch_add(1, Ordering::Relaxed) + 1;
                            if refused.is_power_of_two() {
                                tracing::warn!(
                                    peer = %peer,
                                    max_connections = self.shared.config.max_connections,
                                    refused,
                                    "too many eventer connections: closing the new one"
                                );
                            }
                            drop(stream);
                            continue;
                        }
                        let _ = stream.set_nodelay(true);
                        self.serve_stream(stream, peer);
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                    }
                },
            }
        }
        tracing::info!("eventer server stopped listening");
    }
}

/// The outcome of queuing a notification without waiting: `Some` when queued, `None`
/// when the connection has ended or was just closed as a slow consumer (full queue).
fn queued_or_closed<T>(
    info: &ConnectionInfo,
    session: &Session,
    attempt: Result<T, TryQueueError>,
) -> Option<T> {
    match attempt {
        Ok(queued) => Some(queued),
        Err(TryQueueError::Closed) => None,
        Err(TryQueueError::Full { queued }) => {
            tracing::warn!(
                conn = info.id,
                peer = %info.peer,
                client_name = %info.client_name,
                queued,
                "eventer client does not read its notifications: closing it as a slow consumer"
            );
            session.fail(ConnectionError::SlowConsumer { queued });
            None
        }
    }
}

/// Counts one open connection for as long as it lives.
struct OpenGuard(Arc<AtomicUsize>);

impl OpenGuard {
    fn new(open: &Arc<AtomicUsize>) -> Self {
        open.fetch_add(1, Ordering::Relaxed);
        Self(open.clone())
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.shared.local_addr)
            .field("status", &self.status())
            .field("connections", &self.lock_state().connections.len())
            .finish()
    }
}
