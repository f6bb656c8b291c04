//! The event client a device uses: register, register with response, query, and the
//! device's event-type prefix.

use std::sync::Arc;

use gateway_model::{Event, EventType, EventTypePrefix, QueryParams, QueryResult, RegisterEvent};

/// A boxed, sendable future (what [`ClientBackend`] methods return).
pub use gateway_model::client::BoxFuture;

/// Why a call to the event server failed (the model's one client error).
pub use gateway_model::client::ClientError;

/// What a [`Client`] talks to: the model's one event-client contract
/// ([`gateway_model::EventClient`]). In a plugin library it is the host's client across
/// the ABI; a host that links a device statically (benchmarks, tests) passes its own
/// client, e.g. the host's connection to the event server, unchanged.
pub use gateway_model::client::EventClient as ClientBackend;

/// A device's access to the event server. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    backend: Arc<dyn ClientBackend>,
    prefix: Arc<EventTypePrefix>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client over `backend` for the device with event-type `prefix`
    /// (`[gateway, <gateway name>, <device type>, <device name>]`).
    pub fn new(backend: Arc<dyn ClientBackend>, prefix: EventType) -> Self {
        Self {
            backend,
            prefix: Arc::new(EventTypePrefix::new(prefix)),
        }
    }

    /// The device's 4-segment event-type prefix.
    pub fn prefix(&self) -> &[String] {
        self.prefix.segments()
    }

    /// The prefix followed by `suffix`, e.g. `event_type(&["gateway", "data", "p0"])`.
    pub fn event_type(&self, suffix: &[&str]) -> EventType {
        self.prefix.join(suffix)
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

/// A [`Client`] is itself an event client (without the prefix), so a device core can
/// hold `Arc<dyn ClientBackend>` and be tested with any implementation.
impl ClientBackend for Client {
    fn register(&self, events: Vec<RegisterEvent>) -> BoxFuture<'_, Result<(), ClientError>> {
        self.backend.register(events)
    }

    fn register_with_response(
        &self,
        events: Vec<RegisterEvent>,
    ) -> BoxFuture<'_, Result<Option<Vec<Event>>, ClientError>> {
        self.backend.register_with_response(events)
    }

    fn query(&self, params: QueryParams) -> BoxFuture<'_, Result<QueryResult, ClientError>> {
        self.backend.query(params)
    }
}
