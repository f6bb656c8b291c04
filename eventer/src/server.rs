//! Eventer server: accepts Eventer clients (hat-gateway, the Python eventer client, our
//! own [`crate::client::Client`]), runs hat's init rules, passes register and query
//! requests to a [`ServerHandler`], and sends status and event notifications.
//!
//! Behaviour follows hat-event 0.9.44 (spec sections 8.1 to 8.6):
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
//!   reason reported to [`ServerHandler::connection_closed`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::future::BoxFuture;
use gateway_model::{Event, QueryParams, QueryResult, RegisterEvent, Status, Subscription};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::chatter::DEFAULT_MAX_FRAME_SIZE;
use crate::connection::{
    self, ConnectionError, Inbound, PendingResponse, Session, SessionConfig, DEFAULT_PING_DELAY,
    DEFAULT_PING_TIMEOUT,
};
use crate::message::{EventerMsg, InitReq, InitRes, RegisterRes};

/// Default time a new connection gets to send its `MsgInitReq`.
pub const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the server waits for a refused client to close before closing itself
/// (hat's `close_timeout`).
pub const INIT_ERROR_CLOSE_DELAY: Duration = Duration::from_millis(500);
/// Pause after a failed `accept` (for example too many open files) before retrying.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// Server settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// hat's `server_token`: clients that send a token must send this one.
    pub server_token: Option<String>,
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
}

/// What the server knows about an initialized connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// Unique per server, increasing from 1 in accept order.
    pub id: u64,
    /// The client's address.
    pub peer: SocketAddr,
    /// `clientName` from the init request.
    pub client_name: String,
    /// `clientToken` from the init request.
    pub client_token: Option<String>,
    /// The validated subscriptions.
    pub subscription: Subscription,
    /// Only events of this server id are notified.
    pub server_id: Option<i64>,
    /// Notified by `notify_events(.., persisted = true, ..)` instead of `false`.
    pub persisted: bool,
}

/// The application behind a [`Server`]: the embedded event server, or a test double.
///
/// Methods get the [`Server`] so that they can notify (for example, `register` notifies
/// the batch with [`Server::notify_events`] before returning, which puts the notify
/// ahead of the register response on the wire, as hat does).
pub trait ServerHandler: Send + Sync + 'static {
    /// Called during init after hat's token and subscription checks pass, before the
    /// answer is sent and before the connection can be notified; `Err(text)` refuses
    /// the client with `MsgInitRes error(text)`.
    fn connected<'a>(
        &'a self,
        server: &'a Server,
        info: &'a ConnectionInfo,
    ) -> BoxFuture<'a, Result<(), String>> {
        let _ = (server, info);
        Box::pin(async { Ok(()) })
    }

    /// Called after an initialized connection ended (it no longer gets notifications).
    fn disconnected<'a>(
        &'a self,
        server: &'a Server,
        info: &'a ConnectionInfo,
    ) -> BoxFuture<'a, ()> {
        let _ = (server, info);
        Box::pin(async {})
    }

    /// Registers events: `Some(events)` (one per request event, in order) or `None` for
    /// hat's `failure` answer (not operational). Never called with an empty list.
    fn register<'a>(
        &'a self,
        server: &'a Server,
        info: &'a ConnectionInfo,
        events: Vec<RegisterEvent>,
    ) -> BoxFuture<'a, Option<Vec<Event>>>;

    /// Runs a query. `Err(text)` closes the connection without an answer, as hat does
    /// when its backend raises (the protocol has no query error message).
    fn query<'a>(
        &'a self,
        server: &'a Server,
        info: &'a ConnectionInfo,
        params: QueryParams,
    ) -> BoxFuture<'a, Result<QueryResult, String>>;

    /// Called once for every connection that ended, initialized or not, with the
    /// reason (also logged). For metrics and tests; the default does nothing.
    fn connection_closed(
        &self,
        peer: SocketAddr,
        info: Option<&ConnectionInfo>,
        reason: &ConnectionError,
    ) {
        let _ = (peer, info, reason);
    }
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
        Server {
            shared: Arc::new(Shared {
                handler,
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
        };
        let (session, inbound) = connection::spawn(io, config, span.clone());
        let server = self.clone();
        tokio::spawn(
            async move {
                server.run_connection(id, peer, session, inbound).await;
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
    pub async fn set_status(&self, status: Status) {
        let _order = self.shared.notify_order.lock().await;
        let sessions: Vec<Session> = {
            let mut state = self.lock_state();
            if state.status == status {
                return;
            }
            state.status = status;
            state
                .connections
                .values()
                .map(|c| c.session.clone())
                .collect()
        };
        for session in sessions {
            // A connection that just ended simply drops out.
            let _ = session.send(EventerMsg::StatusNotify(status), true).await;
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
    /// Queuing waits for room in each connection's bounded queue, so a client that
    /// stops reading slows notifications down for everyone (nothing is dropped) until
    /// its keepalive closes it.
    pub async fn notify_events(&self, events: &[Event], persisted: bool, with_ack: bool) -> usize {
        let mut acks: Vec<PendingResponse> = Vec::new();
        let mut notified = 0;
        {
            let _order = self.shared.notify_order.lock().await;
            let targets: Vec<(Session, Vec<Event>)> = {
                let state = self.lock_state();
                state
                    .connections
                    .values()
                    .filter(|c| c.info.persisted == persisted)
                    .filter_map(|c| {
                        let selected: Vec<Event> = events
                            .iter()
                            .filter(|e| {
                                c.info.subscription.matches(&e.event_type)
                                    && c.info.server_id.map_or(true, |id| id == e.id.server)
                            })
                            .cloned()
                            .collect();
                        (!selected.is_empty()).then(|| (c.session.clone(), selected))
                    })
                    .collect()
            };
            for (session, selected) in targets {
                let msg = EventerMsg::EventsNotify(selected);
                if with_ack {
                    if let Ok(pending) = session.request(msg).await {
                        acks.push(pending);
                        notified += 1;
                    }
                } else if session.send(msg, true).await.is_ok() {
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

    async fn run_connection(
        &self,
        id: u64,
        peer: SocketAddr,
        session: Session,
        mut inbound: mpsc::Receiver<Inbound>,
    ) {
        let cancel = self.shared.cancel.clone();
        tracing::debug!("eventer connection accepted");
        let info = tokio::select! {
            biased;
            () = cancel.cancelled() => None,
            info = self.init_connection(id, peer, &session, &mut inbound) => info,
        };
        if let Some(info) = &info {
            tracing::Span::current()
                .record("client_name", tracing::field::display(&info.client_name));
            tokio::select! {
                biased;
                () = cancel.cancelled() => {}
                () = self.serve_requests(info, &session, &mut inbound) => {}
            }
        }
        if cancel.is_cancelled() {
            session.fail(ConnectionError::ServerClosed);
        }
        let reason = session.closed().await;
        self.lock_state().connections.remove(&id);
        if let Some(info) = &info {
            self.shared.handler.disconnected(self, info).await;
        }
        self.shared
            .handler
            .connection_closed(peer, info.as_deref(), &reason);
    }

    /// Runs the init exchange; `Some` when the connection is initialized and in the
    /// notification table, `None` when it was refused or ended.
    async fn init_connection(
        &self,
        id: u64,
        peer: SocketAddr,
        session: &Session,
        inbound: &mut mpsc::Receiver<Inbound>,
    ) -> Option<Arc<ConnectionInfo>> {
        let timeout = self.shared.config.init_timeout;
        let first = match tokio::time::timeout(timeout, inbound.recv()).await {
            Ok(Some(first)) => first,
            Ok(None) => return None,
            Err(_) => {
                session.fail(ConnectionError::InitTimeout(timeout));
                return None;
            }
        };
        let request = match first.msg {
            EventerMsg::InitReq(request) => request,
            other => {
                session.fail(ConnectionError::UnexpectedMessage {
                    type_name: other.type_name(),
                    context: "expected MsgInitReq first",
                });
                return None;
            }
        };
        let checked = match self.check_init(id, peer, request) {
            Ok(info) => match self.shared.handler.connected(self, &info).await {
                Ok(()) => Ok(Arc::new(info)),
                Err(text) => Err(text),
            },
            Err(text) => Err(text),
        };
        match checked {
            Ok(info) => {
                let _order = self.shared.notify_order.lock().await;
                let status = {
                    let mut state = self.lock_state();
                    state.connections.insert(
                        id,
                        Connected {
                            info: info.clone(),
                            session: session.clone(),
                        },
                    );
                    state.status
                };
                let answer = EventerMsg::InitRes(InitRes::Success(status));
                session.reply(first.first, answer, true).await.ok()?;
                tracing::debug!(client_name = %info.client_name, "eventer client initialized");
                Some(info)
            }
            Err(text) => {
                tracing::info!(reason = %text, "refusing eventer client");
                let answer = EventerMsg::InitRes(InitRes::Error(text.clone()));
                if session.reply(first.first, answer, true).await.is_ok() {
                    // hat gives the client this long to close on its own.
                    let _ = tokio::time::timeout(INIT_ERROR_CLOSE_DELAY, session.closed()).await;
                }
                session.fail(ConnectionError::InitRejected(text));
                None
            }
        }
    }

    /// hat's init rules: token, then subscription.
    fn check_init(
        &self,
        id: u64,
        peer: SocketAddr,
        request: InitReq,
    ) -> Result<ConnectionInfo, String> {
        if let Some(token) = &request.client_token {
            if self.shared.config.server_token.as_deref() != Some(token.as_str()) {
                return Err("invalid client token".to_owned());
            }
        }
        let subscription =
            Subscription::new(request.subscriptions).map_err(|err| err.to_string())?;
        Ok(ConnectionInfo {
            id,
            peer,
            client_name: request.client_name,
            client_token: request.client_token,
            subscription,
            server_id: request.server_id,
            persisted: request.persisted,
        })
    }

    /// Handles requests one at a time until the connection ends or misbehaves.
    async fn serve_requests(
        &self,
        info: &ConnectionInfo,
        session: &Session,
        inbound: &mut mpsc::Receiver<Inbound>,
    ) {
        let handler = &self.shared.handler;
        while let Some(request) = inbound.recv().await {
            let answer = match request.msg {
                EventerMsg::RegisterReq(events) => {
                    let result = if events.is_empty() {
                        Some(Vec::new())
                    } else {
                        handler.register(self, info, events).await
                    };
                    if request.last {
                        continue;
                    }
                    EventerMsg::RegisterRes(match result {
                        Some(events) => RegisterRes::Events(events),
                        None => RegisterRes::Failure,
                    })
                }
                EventerMsg::QueryReq(params) => match handler.query(self, info, params).await {
                    Ok(result) => EventerMsg::QueryRes(result),
                    Err(text) => {
                        session.fail(ConnectionError::Handler(text));
                        return;
                    }
                },
                // Acks we wait for are matched by the connection task; this one
                // belongs to no pending notify, and hat ignores those.
                EventerMsg::EventsAck => continue,
                other => {
                    session.fail(ConnectionError::UnexpectedMessage {
                        type_name: other.type_name(),
                        context: "a server accepts only register, query and ack after init",
                    });
                    return;
                }
            };
            if session.reply(request.first, answer, true).await.is_err() {
                return;
            }
        }
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
