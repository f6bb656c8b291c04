//! The event client a device uses: register, register with response, query, and the
//! device's event-type prefix.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use gateway_model::{Event, EventType, QueryParams, QueryResult, RegisterEvent};

/// A boxed, sendable future (what [`ClientBackend`] methods return).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a call to the event server failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The connection to the event server is gone.
    #[error("event server connection closed")]
    ConnectionClosed,
    /// The server refused the registration.
    #[error("event server refused the registration")]
    RegisterFailed,
    /// Another failure reported by the host.
    #[error("event client error: {0}")]
    Other(String),
}

/// What a [`Client`] talks to. In a plugin library it is the host's client across the
/// ABI; a host that links a device statically (benchmarks, tests) supplies its own.
pub trait ClientBackend: Send + Sync {
    /// Registers events without waiting for the server's answer.
    fn register(&self, events: Vec<RegisterEvent>) -> BoxFuture<'_, Result<(), ClientError>>;

    /// Registers events and returns what the server stored (`None` = server failure).
    fn register_with_response(
        &self,
        events: Vec<RegisterEvent>,
    ) -> BoxFuture<'_, Result<Option<Vec<Event>>, ClientError>>;

    /// Runs a query.
    fn query(&self, params: QueryParams) -> BoxFuture<'_, Result<QueryResult, ClientError>>;
}

/// A device's access to the event server. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    backend: Arc<dyn ClientBackend>,
    prefix: Arc<[String]>,
}

impl Client {
    /// A client over `backend` for the device with event-type `prefix`
    /// (`[gateway, <gateway name>, <device type>, <device name>]`).
    pub fn new(backend: Arc<dyn ClientBackend>, prefix: EventType) -> Self {
        Self {
            backend,
            prefix: prefix.into(),
        }
    }

    /// The device's 4-segment event-type prefix.
    pub fn prefix(&self) -> &[String] {
        &self.prefix
    }

    /// The prefix followed by `suffix`, e.g. `event_type(&["gateway", "data", "p0"])`.
    pub fn event_type(&self, suffix: &[&str]) -> EventType {
        let mut event_type = Vec::with_capacity(self.prefix.len() + suffix.len());
        event_type.extend(self.prefix.iter().cloned());
        event_type.extend(suffix.iter().map(|s| (*s).to_owned()));
        event_type
    }

    /// Registers events without waiting for the server's answer.
    pub async fn register(&self, events: Vec<RegisterEvent>) -> Result<(), ClientError> {
        self.backend.register(events).await
    }

    /// Registers events and returns what the server stored (`None` = server failure).
    pub async fn register_with_response(
        &self,
        events: Vec<RegisterEvent>,
    ) -> Result<Option<Vec<Event>>, ClientError> {
        self.backend.register_with_response(events).await
    }

    /// Runs a query.
    pub async fn query(&self, params: QueryParams) -> Result<QueryResult, ClientError> {
        self.backend.query(params).await
    }
}
