//! Eventer client: connects to an Eventer server (hat-event-server or our own
//! [`crate::server::Server`]), initializes, and offers register / query plus a channel
//! of notifications.
//!
//! ```no_run
//! # async fn demo() -> Result<(), gateway_eventer::client::ClientError> {
//! use gateway_eventer::client::{Client, ClientConfig, Notification};
//! use gateway_eventer::model::{event_type_from_str, RegisterEvent};
//!
//! let mut config = ClientConfig::new("gateway/gw1");
//! config.subscriptions = vec![event_type_from_str("gateway/gw1/*")];
//! let (client, mut notifications) = Client::connect("127.0.0.1:23012", config).await?;
//! client
//!     .register(vec![RegisterEvent::json(
//!         event_type_from_str("gateway/gw1/sim/s1/gateway/running"),
//!         serde_json::json!(true),
//!     )])
//!     .await?;
//! while let Some(notification) = notifications.recv().await {
//!     if let Notification::Events(events) = notification {
//!         println!("{} events", events.len());
//!     }
//! }
//! println!("connection ended: {}", client.closed().await);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use gateway_model::client::{self as model_client, BoxFuture, EventClient};
use gateway_model::{Event, EventType, QueryParams, QueryResult, RegisterEvent, Status};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::chatter::DEFAULT_MAX_FRAME_SIZE;
use crate::connection::{
    self, ConnectionError, Inbound, Session, SessionConfig, DEFAULT_PING_DELAY,
    DEFAULT_PING_TIMEOUT,
};
use crate::message::{EventerMsg, InitReq, InitRes, RegisterRes};

/// Notifications waiting for the application. When the application does not keep up,
/// the client stops reading the socket (so the server is slowed down, nothing is lost);
/// responses to requests queued behind the notifications then wait too, exactly like
/// the Python client, whose events callback blocks its read loop.
pub const NOTIFICATION_CAPACITY: usize = 1024;

/// Default bound on connecting plus the init exchange.
pub const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(30);

/// How the client identifies itself and what it subscribes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// `clientName`, by convention `<component type>/<instance name>`.
    pub client_name: String,
    /// `clientToken`; must equal the server's token when present.
    pub client_token: Option<String>,
    /// Query types to be notified about (an empty list means no notifications).
    pub subscriptions: Vec<EventType>,
    /// Only notify events whose `id.server` equals this.
    pub server_id: Option<i64>,
    /// Notify after the server persisted the events instead of right after registering.
    pub persisted: bool,
    /// Time without receiving anything before we Ping; `None` disables our pings.
    pub ping_delay: Option<Duration>,
    /// Time to wait for anything after our Ping before giving up on the connection.
    pub ping_timeout: Duration,
    /// Largest frame body accepted from the server, in bytes.
    pub max_frame_size: usize,
    /// Bound on the TCP connect plus the init exchange (hat has none).
    pub init_timeout: Duration,
}

impl ClientConfig {
    /// hat's defaults: no token, no subscriptions, no server id, not persisted,
    /// 20 s / 20 s keepalive, 16 MiB frames, and a 30 s init timeout.
    pub fn new(client_name: impl Into<String>) -> Self {
        Self {
            client_name: client_name.into(),
            client_token: None,
            subscriptions: Vec::new(),
            server_id: None,
            persisted: false,
            ping_delay: Some(DEFAULT_PING_DELAY),
            ping_timeout: DEFAULT_PING_TIMEOUT,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            init_timeout: DEFAULT_INIT_TIMEOUT,
        }
    }

    fn session_config(&self) -> SessionConfig {
        SessionConfig {
            ping_delay: self.ping_delay,
            ping_timeout: self.ping_timeout,
            max_frame_size: self.max_frame_size,
            ..SessionConfig::default()
        }
    }
}

impl Default for ClientConfig {
    /// [`ClientConfig::new`] with an empty client name.
    fn default() -> Self {
        Self::new("")
    }
}

/// Something the server pushed to the client (the model's one notification type).
pub use gateway_model::Notification;

/// Errors of the client layer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The TCP connection could not be opened.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address as given.
        addr: String,
        /// The socket error.
        source: std::io::Error,
    },
    /// The server answered the init request with `error(text)` (hat's
    /// `EventerInitError`), e.g. `invalid client token`.
    #[error("server refused initialization: {0}")]
    InitError(String),
    /// Connecting plus the init exchange took longer than `init_timeout`.
    #[error("no init response within {0:?}")]
    InitTimeout(Duration),
    /// The connection ended (before or while the call waited); carries the reason.
    #[error("connection closed: {0}")]
    ConnectionClosed(Arc<ConnectionError>),
}

/// Cheap, cloneable handle to one initialized Eventer connection.
///
/// The connection closes when [`Client::close`] is called or the last clone is dropped.
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    session: Session,
    status: Arc<Mutex<Status>>,
}

impl Drop for ClientInner {
    fn drop(&mut self) {
        self.session.close();
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("status", &self.status())
            .field("closed", &self.inner.session.is_closed())
            .finish()
    }
}

impl Client {
    /// Opens a TCP connection to `addr` and initializes it with `config`.
    ///
    /// Returns the client and the receiver of notifications (capacity
    /// [`NOTIFICATION_CAPACITY`]); notifications may arrive before the response to a
    /// register request that caused them. Keep receiving: see
    /// [`NOTIFICATION_CAPACITY`] for what happens otherwise. Dropping the receiver is
    /// fine (notifications are then discarded, and acknowledged when asked).
    pub async fn connect<A>(
        addr: A,
        config: ClientConfig,
    ) -> Result<(Client, mpsc::Receiver<Notification>), ClientError>
    where
        A: ToSocketAddrs + fmt::Debug,
    {
        let addr_text = format!("{addr:?}");
        let deadline = tokio::time::Instant::now() + config.init_timeout;
        let stream = match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => {
                return Err(ClientError::Connect {
                    addr: addr_text,
                    source,
                })
            }
            Err(_) => return Err(ClientError::InitTimeout(config.init_timeout)),
        };
        // Small frames (pongs, acks) should not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let peer = stream
            .peer_addr()
            .map_or_else(|_| addr_text.clone(), |a| a.to_string());
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        Self::init(stream, &peer, config, remaining).await
    }

    /// Initializes over an already open stream (a socket, or `tokio::io::duplex` in
    /// tests). `peer` only labels the connection's log span.
    pub async fn connect_stream<T>(
        io: T,
        peer: &str,
        config: ClientConfig,
    ) -> Result<(Client, mpsc::Receiver<Notification>), ClientError>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let timeout = config.init_timeout;
        Self::init(io, peer, config, timeout).await
    }

    async fn init<T>(
        io: T,
        peer: &str,
        config: ClientConfig,
        timeout: Duration,
    ) -> Result<(Client, mpsc::Receiver<Notification>), ClientError>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let span = tracing::info_span!(
            "eventer_client",
            peer = %peer,
            client_name = %config.client_name
        );
        let (session, mut inbound) = connection::spawn(io, config.session_config(), span.clone());
        let request = EventerMsg::InitReq(InitReq {
            client_name: config.client_name.clone(),
            client_token: config.client_token.clone(),
            subscriptions: config.subscriptions.clone(),
            server_id: config.server_id,
            persisted: config.persisted,
        });
        let exchange = async {
            // No response waiter: the init response then arrives through `inbound` like
            // every other message, in arrival order, so "the first application message
            // must be the init response" is checked exactly, even when a notification
            // follows it in the same read.
            session.send(request, false).await?;
            match inbound.recv().await {
                Some(first) if !first.owner && matches!(first.msg, EventerMsg::InitRes(_)) => {
                    Ok(first)
                }
                Some(early) => {
                    session.fail(ConnectionError::UnexpectedMessage {
                        type_name: early.msg.type_name(),
                        context: "expected MsgInitRes first",
                    });
                    Err(session.closed().await)
                }
                None => Err(session.closed().await),
            }
        };
        let response = match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(response)) => response,
            Ok(Err(reason)) => return Err(ClientError::ConnectionClosed(reason)),
            Err(_) => {
                session.fail(ConnectionError::InitTimeout(timeout));
                return Err(ClientError::InitTimeout(timeout));
            }
        };
        let status = match response.msg {
            EventerMsg::InitRes(InitRes::Success(status)) => status,
            EventerMsg::InitRes(InitRes::Error(text)) => {
                span.in_scope(|| tracing::info!(reason = %text, "server refused initialization"));
                session.fail(ConnectionError::InitRejected(text.clone()));
                return Err(ClientError::InitError(text));
            }
            other => {
                session.fail(ConnectionError::UnexpectedMessage {
                    type_name: other.type_name(),
                    context: "expected MsgInitRes",
                });
                return Err(ClientError::ConnectionClosed(session.closed().await));
            }
        };
        span.in_scope(|| tracing::debug!(status = status.as_str(), "eventer client initialized"));
        let status = Arc::new(Mutex::new(status));
        let (notify_tx, notify_rx) = mpsc::channel(NOTIFICATION_CAPACITY);
        tokio::spawn(
            dispatch(session.clone(), inbound, status.clone(), notify_tx).instrument(span),
        );
        let client = Client {
            inner: Arc::new(ClientInner { session, status }),
        };
        Ok((client, notify_rx))
    }

    /// The server's status as last reported (init response or status notification).
    pub fn status(&self) -> Status {
        *self
            .inner
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers events without waiting for an answer (`last = true`; hat-gateway's
    /// way). Returns once the request is queued for the socket.
    pub async fn register(&self, events: Vec<RegisterEvent>) -> Result<(), ClientError> {
        self.inner
            .session
            .send(EventerMsg::RegisterReq(events), true)
            .await
            .map_err(ClientError::ConnectionClosed)
    }

    /// Registers events and waits for the server's answer: the registered events in
    /// request order, or `None` when the server answered `failure` (not operational).
    pub async fn register_with_response(
        &self,
        events: Vec<RegisterEvent>,
    ) -> Result<Option<Vec<Event>>, ClientError> {
        let response = self.request(EventerMsg::RegisterReq(events)).await?;
        match response.msg {
            EventerMsg::RegisterRes(RegisterRes::Events(events)) => Ok(Some(events)),
            EventerMsg::RegisterRes(RegisterRes::Failure) => Ok(None),
            other => Err(self
                .unexpected(other.type_name(), "expected MsgRegisterRes")
                .await),
        }
    }

    /// Runs a query and waits for its result.
    pub async fn query(&self, params: QueryParams) -> Result<QueryResult, ClientError> {
        let response = self.request(EventerMsg::QueryReq(params)).await?;
        match response.msg {
            EventerMsg::QueryRes(result) => Ok(result),
            other => Err(self
                .unexpected(other.type_name(), "expected MsgQueryRes")
                .await),
        }
    }

    /// Closes the connection (requests already queued are still written) and waits
    /// until it has ended. Pending calls fail with [`ClientError::ConnectionClosed`].
    pub async fn close(&self) {
        self.inner.session.close();
        self.inner.session.closed().await;
    }

    /// Waits until the connection has ended and returns why.
    pub async fn closed(&self) -> Arc<ConnectionError> {
        self.inner.session.closed().await
    }

    /// True once the connection has ended or is ending.
    pub fn is_closed(&self) -> bool {
        self.inner.session.is_closed()
    }

    async fn request(&self, msg: EventerMsg) -> Result<Inbound, ClientError> {
        let pending = self
            .inner
            .session
            .request(msg)
            .await
            .map_err(ClientError::ConnectionClosed)?;
        pending
            .response()
            .await
            .map_err(ClientError::ConnectionClosed)
    }

    async fn unexpected(&self, type_name: &'static str, context: &'static str) -> ClientError {
        self.inner
            .session
            .fail(ConnectionError::UnexpectedMessage { type_name, context });
        ClientError::ConnectionClosed(self.inner.session.closed().await)
    }
}

impl ClientError {
    /// The error as the event-client contract reports it. A closed connection stays
    /// [`model_client::ClientError::ConnectionClosed`] (its reason is what
    /// [`Client::closed`] returns); the connect-time variants never occur on an
    /// initialized client and keep their text.
    fn into_model(self) -> model_client::ClientError {
        tracing::debug!(error = %self, "eventer request failed");
        match self {
            ClientError::ConnectionClosed(_) => model_client::ClientError::ConnectionClosed,
            other => model_client::ClientError::Other(other.to_string()),
        }
    }
}

/// The Eventer client is the event-client contract the engine and devices use.
impl EventClient for Client {
    fn register(
        &self,
        events: Vec<RegisterEvent>,
    ) -> BoxFuture<'_, Result<(), model_client::ClientError>> {
        Box::pin(async move {
            Client::register(self, events)
                .await
                .map_err(ClientError::into_model)
        })
    }

    fn register_with_response(
        &self,
        events: Vec<RegisterEvent>,
    ) -> BoxFuture<'_, Result<Option<Vec<Event>>, model_client::ClientError>> {
        Box::pin(async move {
            Client::register_with_response(self, events)
                .await
                .map_err(ClientError::into_model)
        })
    }

    fn query(
        &self,
        params: QueryParams,
    ) -> BoxFuture<'_, Result<QueryResult, model_client::ClientError>> {
        Box::pin(async move {
            Client::query(self, params)
                .await
                .map_err(ClientError::into_model)
        })
    }
}

/// Hands status and event notifications to the application and acknowledges notifies
/// that ask for it, after the hand-over. Ends when the connection ends.
async fn dispatch(
    session: Session,
    mut inbound: mpsc::Receiver<Inbound>,
    status: Arc<Mutex<Status>>,
    notifications: mpsc::Sender<Notification>,
) {
    // Not a select loop: it ends when the connection task drops the inbound sender,
    // which every way of closing the connection does.
    while let Some(message) = inbound.recv().await {
        match message.msg {
            EventerMsg::StatusNotify(new_status) => {
                *status.lock().unwrap_or_else(PoisonError::into_inner) = new_status;
                tracing::debug!(status = new_status.as_str(), "server status changed");
                // A dropped receiver only means the application is not interested.
                let _ = notifications.send(Notification::Status(new_status)).await;
            }
            EventerMsg::EventsNotify(events) => {
                tracing::trace!(count = events.len(), ack = !message.last, "events notified");
                let _ = notifications.send(Notification::Events(events)).await;
                if !message.last
                    && session
                        .reply(message.first, EventerMsg::EventsAck, true)
                        .await
                        .is_err()
                {
                    break;
                }
            }
            // An answer nobody waits for (the caller gave up): hat ignores it too.
            EventerMsg::RegisterRes(_) | EventerMsg::QueryRes(_) if !message.owner => {
                tracing::debug!(
                    first = message.first,
                    "ignoring answer to an unknown request"
                );
            }
            other => {
                session.fail(ConnectionError::UnexpectedMessage {
                    type_name: other.type_name(),
                    context: "a client accepts only notifications and answers",
                });
                break;
            }
        }
    }
}
