//! The embedded event server: an Eventer server inside the host process.
//!
//! Events are kept in memory ([`store::EventStore`]) with hat-event-server's
//! semantics: one session and one timestamp per register request, instances in
//! request order, `latest` / `timeseries` / `server` queries. Connections inside the
//! process ([`EmbeddedServer::connect`]) use no socket; with
//! [`EmbeddedServer::listen`] the same server also speaks the Eventer protocol on TCP.
//! Every batch is notified to every connection whose subscription matches, local and
//! TCP alike, in registration order.

pub mod persist;
#[cfg(test)]
mod persist_tests;
pub mod store;
mod tcp;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use gateway_eventer::server as eventer_server;
use gateway_model::client::{BoxFuture, ClientError, EventClient, Notification};
use gateway_model::{
    Event, EventType, InvalidQueryType, Payload, QueryParams, QueryResult, RegisterEvent, Status,
    Subscription,
};
use tokio::sync::{mpsc, oneshot};

pub use persist::OpenError;
pub use store::{EventStore, StoreLimit, StoreLimits};
pub use tcp::TcpListenerHandle;

/// Notifications buffered per local connection. A connection that falls this far
/// behind is disconnected (like a TCP peer that stops reading) rather than stalling
/// the server.
pub const LOCAL_NOTIFY_CAPACITY: usize = 1024;

/// Queries remembered for [`EmbeddedServer::query_log`] (diagnostics, tests).
pub const QUERY_LOG_CAPACITY: usize = 256;

/// Embedded server settings.
#[derive(Clone)]
pub struct EmbeddedConfig {
    /// `server` part of every event id.
    pub server_id: i64,
    /// Events kept for timeseries / server queries.
    pub retained_events: usize,
    /// Estimated bytes kept for timeseries / server queries (`retained_bytes`).
    pub retained_bytes: usize,
    /// Distinct event types at most (`max_event_types`); a request that would add more
    /// is answered `failure`.
    pub max_event_types: usize,
    /// Estimated bytes of the latest event of every type at most (`max_latest_bytes`).
    pub max_latest_bytes: usize,
    /// Seconds events are kept for timeseries / server queries (`retained_seconds`);
    /// `None`: no age limit.
    pub retained_seconds: Option<u64>,
    /// The event store file (`db_path`, resolved); `None`: events in memory only.
    pub db_path: Option<PathBuf>,
    /// hat's rule: answer register requests with `failure` unless `operational`.
    /// Tests of status changes turn it off to see the gateway's `running=false`.
    pub refuse_registers_unless_operational: bool,
    /// Token every TCP client must send (`token`); `None`: clients send none.
    pub token: Option<String>,
    /// Listen on addresses other than loopback (`allow_remote`); needs a `token`.
    pub allow_remote: bool,
    /// The gateway whose output event types (`gateway/<name>/?/?/gateway/...`) TCP
    /// clients may not register (the daemon sets its own name); `None` protects none,
    /// so another gateway can use this server over TCP under its own name.
    pub own_gateway: Option<String>,
    /// Limits of the TCP side (connections, frames, buffered input, outbound bytes).
    pub tcp: TcpLimits,
}

/// Limits of the embedded server's TCP side (`event_server.embedded.limits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpLimits {
    /// Open TCP connections at most (`max_connections`).
    pub max_connections: usize,
    /// Largest frame accepted from a client, in bytes (`max_frame_size`).
    pub max_frame_size: usize,
    /// Bytes the incomplete frames of all TCP connections may hold (`max_buffered_input`).
    pub max_buffered_input: usize,
    /// Notifications waiting for one client, in bytes (`max_outbound_bytes`).
    pub max_outbound_bytes: usize,
    /// Notifications waiting for one client, in messages (`max_outbound_messages`).
    pub max_outbound_messages: usize,
}

impl Default for TcpLimits {
    fn default() -> Self {
        Self {
            max_connections: eventer_server::DEFAULT_MAX_CONNECTIONS,
            max_frame_size: gateway_eventer::chatter::DEFAULT_MAX_FRAME_SIZE,
            max_buffered_input: eventer_server::DEFAULT_MAX_BUFFERED_INPUT,
            max_outbound_bytes: eventer_server::DEFAULT_MAX_OUTBOUND_BYTES,
            max_outbound_messages: eventer_server::DEFAULT_OUTBOUND_CAPACITY,
        }
    }
}

impl std::fmt::Debug for EmbeddedConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedConfig")
            .field("server_id", &self.server_id)
            .field("retained_events", &self.retained_events)
            .field("retained_bytes", &self.retained_bytes)
            .field("max_event_types", &self.max_event_types)
            .field("max_latest_bytes", &self.max_latest_bytes)
            .field("retained_seconds", &self.retained_seconds)
            .field("db_path", &self.db_path)
            .field(
                "refuse_registers_unless_operational",
                &self.refuse_registers_unless_operational,
            )
            // Never the token itself.
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("allow_remote", &self.allow_remote)
            .field("own_gateway", &self.own_gateway)
            .field("tcp", &self.tcp)
            .finish()
    }
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        Self {
            server_id: 1,
            retained_events: store::DEFAULT_RETAINED_EVENTS,
            retained_bytes: store::DEFAULT_RETAINED_BYTES,
            max_event_types: store::DEFAULT_MAX_EVENT_TYPES,
            max_latest_bytes: store::DEFAULT_MAX_LATEST_BYTES,
            retained_seconds: None,
            db_path: None,
            refuse_registers_unless_operational: true,
            token: None,
            allow_remote: false,
            own_gateway: None,
            tcp: TcpLimits::default(),
        }
    }
}

impl EmbeddedConfig {
    fn store_limits(&self) -> StoreLimits {
        StoreLimits {
            retained_events: self.retained_events,
            retained_bytes: self.retained_bytes,
            max_event_types: self.max_event_types,
            max_latest_bytes: self.max_latest_bytes,
            retained_seconds: self.retained_seconds,
        }
    }
}

/// One in-process client of the embedded server (a TCP client's record is the eventer
/// server's `gateway_eventer::server::ConnectionInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectedClient {
    /// Server-assigned connection id.
    pub id: u64,
    /// `clientName` of the connection.
    pub client_name: String,
    /// Subscriptions as given.
    pub subscriptions: Vec<EventType>,
}

/// A query the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryRecord {
    /// Who asked.
    pub client_name: String,
    /// What was asked.
    pub params: QueryParams,
}

struct LocalSubscriber {
    info: ConnectedClient,
    subscription: Subscription,
    sender: mpsc::Sender<Notification>,
    /// Shared with the [`LocalConnection`]: cleared when the server drops this
    /// subscriber, so [`LocalConnection::is_open`] (asked at every register) does not
    /// scan every connection.
    open: Arc<AtomicBool>,
}

impl Drop for LocalSubscriber {
    fn drop(&mut self) {
        self.open.store(false, Ordering::Release);
    }
}

/// One entry of the query log: the query is shared, not copied (a gateway's start-up
/// query names every device's enable type: 100,000 types for 100,000 devices).
struct LoggedQuery {
    client_name: String,
    params: Arc<QueryParams>,
}

struct State {
    store: EventStore,
    status: Status,
    next_connection_id: u64,
    local: Vec<LocalSubscriber>,
    query_log: VecDeque<LoggedQuery>,
    /// Register requests refused for a store limit (logged at 1, 2, 4, 8, ...).
    refused_registers: u64,
    /// One queue per TCP listener, fed under this lock so every listener gets batches
    /// and status changes in the order the local connections get them.
    tcp: Vec<tcp::TcpNotifier>,
}

struct Inner {
    config: EmbeddedConfig,
    /// Never held across an await: the TCP fan-out runs in each listener's own task
    /// (`tcp::TcpNotifier`), fed in order while this lock is held.
    /// Shared with the event store's writer thread ([`StateHost`]).
    state: Arc<Mutex<State>>,
    /// The event store file's writer; unset: events in memory only.
    writer: OnceLock<persist::Writer>,
}

/// A committed register request: its events and the TCP listeners' queued notices.
pub(crate) type Committed = (Arc<Vec<Arc<Event>>>, Vec<oneshot::Receiver<()>>);

/// Where the writer answers a register request (`None`: the commit failed).
pub(crate) type Reply = oneshot::Sender<Option<Committed>>;

/// What the writer thread holds: the state, not the server (whose last handle then
/// closes the file and waits for the thread).
struct StateHost(Arc<Mutex<State>>);

impl persist::Host for StateHost {
    fn committed(&self, jobs: Vec<persist::Job>, ok: bool) {
        let mut state = lock(&self.0);
        for job in jobs {
            state.store.release(&job.reserved);
            let answer = ok.then(|| {
                let shared: Vec<Arc<Event>> = job.events.into_iter().map(Arc::new).collect();
                state.store.insert_shared(&shared);
                publish(&mut state, shared)
            });
            // The request's task may be gone (its client left): the events stay.
            let _ = job.reply.send(answer);
        }
    }

    fn retention_floor(&self) -> Option<gateway_model::EventId> {
        let mut state = lock(&self.0);
        state.store.trim_age(gateway_model::Timestamp::now());
        state.store.oldest_retained()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A poisoned lock means a panic while holding it; the data is still
    // consistent (every critical section is short and panic-free), so go on.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Notifies a stored batch to every matching connection (local and TCP, in the order
/// of this call under the state lock).
/// The events are the store's own (shared, not copied); local subscribers get copies of
/// the events they match, TCP connections an encoding of them.
fn publish(state: &mut State, stored: Vec<Arc<Event>>) -> Committed {
    // Operators watch data flow with `log.filter: gateway_host::embedded=debug`;
    // disabled, this costs one level check per request.
    if tracing::enabled!(tracing::Level::DEBUG) {
        for event in &stored {
            tracing::debug!(
                event_type = %event.event_type.join("/"),
                payload = %PayloadText(event.payload.as_ref()),
                "event registered"
            );
        }
    }
    state.local.retain(|sub| {
        let matching: Vec<Event> = stored
            .iter()
            .filter(|e| sub.subscription.matches(&e.event_type))
            .map(|e| Event::clone(e))
            .collect();
        matching.is_empty() || deliver(sub, Notification::Events(matching))
    });
    let stored = Arc::new(stored);
    if state.tcp.is_empty() {
        return (stored, Vec::new());
    }
    let queued = tcp::queue(&state.tcp, &tcp::TcpUpdate::Events(stored.clone()));
    (stored, queued)
}

/// Counts of [`EmbeddedServer::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbeddedStats {
    /// Events retained for timeseries and server queries.
    pub stored_events: usize,
    /// Distinct event types stored.
    pub event_types: usize,
    /// Open in-process connections.
    pub local_connections: usize,
}

/// The embedded event server. Cheap to clone (a shared handle).
#[derive(Clone)]
pub struct EmbeddedServer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EmbeddedServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedServer")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl EmbeddedServer {
    /// A server with an empty store in memory (whatever `db_path` says; see
    /// [`EmbeddedServer::open`]), status `operational`.
    pub fn new(config: EmbeddedConfig) -> Self {
        let store = EventStore::with_limits(config.server_id, config.store_limits());
        Self::with_store(config, store)
    }

    fn with_store(config: EmbeddedConfig, store: EventStore) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                state: Arc::new(Mutex::new(State {
                    store,
                    status: Status::Operational,
                    next_connection_id: 1,
                    local: Vec::new(),
                    query_log: VecDeque::new(),
                    refused_registers: 0,
                    tcp: Vec::new(),
                })),
                writer: OnceLock::new(),
            }),
        }
    }

    /// A server on the event store file `db_path` (created if missing, its events read
    /// back: ids continue after the last one stored), or in memory without one. A
    /// register request is answered, and its events notified, only once they are
    /// committed to the file. The file stays locked until every handle of the server
    /// is dropped.
    pub fn open(config: EmbeddedConfig) -> Result<Self, OpenError> {
        let Some(path) = config.db_path.clone() else {
            return Ok(Self::new(config));
        };
        let mut store = EventStore::with_limits(config.server_id, config.store_limits());
        let opened = persist::open(&path, &mut store)?;
        tracing::info!(
            file = %path.display(),
            events = store.retained(),
            event_types = store.event_types(),
            last_session = store.session(),
            "event store opened"
        );
        let server_id = config.server_id;
        let server = Self::with_store(config, store);
        let host = Arc::new(StateHost(server.inner.state.clone()));
        let writer = persist::start(opened, server_id, host);
        // Just created: nothing else can have set it.
        let _ = server.inner.writer.set(writer);
        Ok(server)
    }

    /// The event store file, `None` for a memory store.
    pub fn db_path(&self) -> Option<&std::path::Path> {
        self.inner.writer.get().map(|w| w.path())
    }

    #[cfg(test)]
    pub(crate) fn fail_commits(&self, fail: bool) {
        if let Some(writer) = self.inner.writer.get() {
            writer
                .fail_commits
                .store(fail, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.inner.state)
    }

    /// The configured server id.
    pub fn server_id(&self) -> i64 {
        self.inner.config.server_id
    }

    /// Current status.
    pub fn status(&self) -> Status {
        self.state().status
    }

    /// Changes the status and notifies every connection (local and TCP).
    pub async fn set_status(&self, status: Status) {
        let queued = {
            let mut state = self.state();
            if state.status == status {
                return;
            }
            state.status = status;
            state
                .local
                .retain(|sub| deliver(sub, Notification::Status(status)));
            tcp::queue(&state.tcp, &tcp::TcpUpdate::Status(status))
        };
        tcp::queued(queued).await;
    }

    /// Opens an in-process connection (no socket). Returns the connection, its
    /// notification stream and the status at connect time. Registers the
    /// `event/<server id>/eventer/<client name>` `"CONNECTED"` event while
    /// operational, as hat-event-server does.
    pub async fn connect(
        &self,
        client_name: &str,
        subscriptions: Vec<EventType>,
    ) -> Result<(LocalConnection, mpsc::Receiver<Notification>, Status), InvalidQueryType> {
        // A subscription has `*` other than last (hat: `invalid query event type`).
        let subscription = Subscription::new(subscriptions.clone())?;
        self.register_connection_event(client_name, "CONNECTED")
            .await;
        let (sender, receiver) = mpsc::channel(LOCAL_NOTIFY_CAPACITY);
        let open = Arc::new(AtomicBool::new(true));
        let (id, status) = {
            let mut state = self.state();
            let id = state.next_connection_id;
            state.next_connection_id += 1;
            state.local.push(LocalSubscriber {
                info: ConnectedClient {
                    id,
                    client_name: client_name.to_owned(),
                    subscriptions,
                },
                subscription,
                sender,
                open: open.clone(),
            });
            (id, state.status)
        };
        tracing::debug!(client_name, id, "local eventer connection");
        let connection = LocalConnection {
            server: self.clone(),
            id,
            client_name: client_name.to_owned(),
            open,
        };
        Ok((connection, receiver, status))
    }

    async fn register_connection_event(&self, client_name: &str, what: &str) {
        if self.status() != Status::Operational {
            return;
        }
        let event = RegisterEvent::json(
            vec![
                "event".to_owned(),
                self.server_id().to_string(),
                "eventer".to_owned(),
                client_name.to_owned(),
            ],
            serde_json::Value::String(what.to_owned()),
        );
        self.register(vec![event]).await;
    }

    fn disconnect_local(&self, id: u64) -> bool {
        let mut state = self.state();
        let before = state.local.len();
        state.local.retain(|sub| sub.info.id != id);
        before != state.local.len()
    }

    /// Registers one request (one session). `None` = hat's `failure` answer: the
    /// server is not operational and registrations need it, or the request would take
    /// the store past `max_event_types` / `max_latest_bytes` (logged at WARN).
    pub async fn register(&self, events: Vec<RegisterEvent>) -> Option<Vec<Event>> {
        let stored = self.register_shared(events).await?;
        // The store keeps its handle of every event: the answer is a copy.
        Some(stored.iter().map(|e| Event::clone(e)).collect())
    }

    /// [`EmbeddedServer::register`] without its answer (`false`: hat's `failure`):
    /// what fire-and-forget registers (`last = true` on the wire, the engine's
    /// [`EventClient::register`]) use, so no copy of the stored events is made.
    pub async fn register_unanswered(&self, events: Vec<RegisterEvent>) -> bool {
        self.register_shared(events).await.is_some()
    }

    /// [`EmbeddedServer::register`] with the store's shared events.
    async fn register_shared(&self, events: Vec<RegisterEvent>) -> Option<Vec<Arc<Event>>> {
        let pending = {
            let mut state = self.state();
            if self.inner.config.refuse_registers_unless_operational
                && state.status != Status::Operational
            {
                return None;
            }
            if let Err(limit) = state.store.check_limits(&events) {
                state.refused_registers += 1;
                // A flood would log every request: powers of two only.
                if state.refused_registers.is_power_of_two() {
                    tracing::warn!(
                        reason = %limit,
                        event_types = state.store.event_types(),
                        refused = state.refused_registers,
                        "embedded event server: register request refused"
                    );
                }
                return None;
            }
            match self.inner.writer.get() {
                None => {
                    let stored = state.store.register_shared(events);
                    if stored.is_empty() {
                        return Some(stored);
                    }
                    Pending::Published(publish(&mut state, stored))
                }
                Some(writer) => {
                    let stored = state.store.allocate(events);
                    if stored.is_empty() {
                        return Some(Vec::new());
                    }
                    let (reply, answer) = oneshot::channel();
                    let reserved = state.store.reserve(&stored);
                    // Queued under the lock: the writer commits in id order.
                    if let Err(job) = writer.submit(persist::Job {
                        events: stored,
                        reserved,
                        reply,
                    }) {
                        state.store.release(&job.reserved);
                        tracing::error!("event store writer is gone; register request refused");
                        return None;
                    }
                    Pending::Committing(answer)
                }
            }
        };
        let (stored, queued) = match pending {
            Pending::Published(published) => published,
            // A dropped reply: the writer is gone, the commit is not known to be done.
            Pending::Committing(answer) => answer.await.ok().flatten()?,
        };
        // Every TCP connection has the notify queued before the register answer.
        tcp::queued(queued).await;
        // The listener tasks drop their share before saying done: no copy then.
        Some(Arc::try_unwrap(stored).unwrap_or_else(|shared| shared.as_ref().clone()))
    }

    /// Register requests refused so far for a store limit.
    pub fn refused_registers(&self) -> u64 {
        self.state().refused_registers
    }

    /// Distinct event types stored.
    pub fn event_types(&self) -> usize {
        self.state().store.event_types()
    }

    /// What the metrics endpoint shows of the server (`crate::ops`), read under the
    /// state lock.
    pub fn stats(&self) -> EmbeddedStats {
        let state = self.state();
        EmbeddedStats {
            stored_events: state.store.retained(),
            event_types: state.store.event_types(),
            local_connections: state.local.len(),
        }
    }

    /// Answers a query.
    pub fn query(&self, params: &QueryParams) -> QueryResult {
        self.state().store.query(params)
    }

    fn query_logged(&self, client_name: &str, params: QueryParams) -> QueryResult {
        let params = Arc::new(params);
        let mut state = self.state();
        if state.query_log.len() >= QUERY_LOG_CAPACITY {
            state.query_log.pop_front();
        }
        state.query_log.push_back(LoggedQuery {
            client_name: client_name.to_owned(),
            params: params.clone(),
        });
        state.store.query(&params)
    }

    /// The last [`QUERY_LOG_CAPACITY`] queries asked by connections, oldest first.
    pub fn query_log(&self) -> Vec<QueryRecord> {
        self.state()
            .query_log
            .iter()
            .map(|q| QueryRecord {
                client_name: q.client_name.clone(),
                params: QueryParams::clone(&q.params),
            })
            .collect()
    }

    /// Every open in-process connection ([`EmbeddedServer::connect`]).
    pub fn connections(&self) -> Vec<ConnectedClient> {
        self.state()
            .local
            .iter()
            .map(|sub| sub.info.clone())
            .collect()
    }

    fn next_connection_id(&self) -> u64 {
        let mut state = self.state();
        let id = state.next_connection_id;
        state.next_connection_id += 1;
        id
    }
}

/// A register request once it has its ids.
enum Pending {
    /// In memory: stored and notified already.
    Published(Committed),
    /// On file: waiting for the writer's commit.
    Committing(oneshot::Receiver<Option<Committed>>),
}

/// Hands a notification to a local subscriber; false = drop the subscriber.
fn deliver(sub: &LocalSubscriber, notification: Notification) -> bool {
    match sub.sender.try_send(notification) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            tracing::warn!(
                client_name = %sub.info.client_name,
                capacity = LOCAL_NOTIFY_CAPACITY,
                "local eventer connection is not reading notifications; disconnecting it"
            );
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

/// An in-process connection to the [`EmbeddedServer`]; implements [`EventClient`]
/// so the engine and devices use it like a remote connection. Dropping it
/// disconnects (and registers `"DISCONNECTED"` while operational).
pub struct LocalConnection {
    server: EmbeddedServer,
    id: u64,
    client_name: String,
    /// False once the server dropped this connection's subscriber.
    open: Arc<AtomicBool>,
}

impl std::fmt::Debug for LocalConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalConnection")
            .field("id", &self.id)
            .field("client_name", &self.client_name)
            .finish_non_exhaustive()
    }
}

impl LocalConnection {
    /// The server this connection is on.
    pub fn server(&self) -> &EmbeddedServer {
        &self.server
    }

    /// True while the server still serves this connection (it is dropped when it
    /// stops reading notifications).
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }
}

impl Drop for LocalConnection {
    fn drop(&mut self) {
        if !self.server.disconnect_local(self.id) {
            return;
        }
        let server = self.server.clone();
        let client_name = std::mem::take(&mut self.client_name);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                server
                    .register_connection_event(&client_name, "DISCONNECTED")
                    .await;
            });
        }
    }
}

impl EventClient for LocalConnection {
    fn register(&self, events: Vec<RegisterEvent>) -> BoxFuture<'_, Result<(), ClientError>> {
        Box::pin(async move {
            if !self.is_open() {
                return Err(ClientError::ConnectionClosed);
            }
            // Fire-and-forget: a `failure` answer is not reported, as on the wire.
            self.server.register_unanswered(events).await;
            Ok(())
        })
    }

    fn register_with_response(
        &self,
        events: Vec<RegisterEvent>,
    ) -> BoxFuture<'_, Result<Option<Vec<Event>>, ClientError>> {
        Box::pin(async move {
            if !self.is_open() {
                return Err(ClientError::ConnectionClosed);
            }
            Ok(self.server.register(events).await)
        })
    }

    fn query(&self, params: QueryParams) -> BoxFuture<'_, Result<QueryResult, ClientError>> {
        Box::pin(async move {
            if !self.is_open() {
                return Err(ClientError::ConnectionClosed);
            }
            Ok(self.server.query_logged(&self.client_name, params))
        })
    }
}

/// `true` as a JSON payload (what `enable_devices` registers).
pub(crate) fn json_true() -> Option<Payload> {
    Some(Payload::json(serde_json::Value::Bool(true)))
}

/// A payload as one log field: JSON text as is, binary as its type and size.
struct PayloadText<'a>(Option<&'a gateway_model::Payload>);

impl std::fmt::Display for PayloadText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            None => f.write_str("none"),
            Some(gateway_model::Payload::Json(text)) => f.write_str(text.as_str()),
            Some(gateway_model::Payload::Binary { type_name, data }) => {
                write!(f, "binary {type_name:?} ({} bytes)", data.len())
            }
        }
    }
}
