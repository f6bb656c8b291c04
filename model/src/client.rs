//! The one event-client contract: what a device and the engine may ask of the event
//! server (hat-gateway's `eventer_client`), the error a call returns and what the
//! server pushes to a connection.
//!
//! The Eventer client (`gateway-eventer`), the host's embedded server connection and
//! the plugin SDK's view of the host all implement or hold [`EventClient`]; the plugin
//! boundary translates it once on each side (`gateway-plugin-api`'s FFI mirror).

use std::future::Future;
use std::pin::Pin;

use crate::{Event, QueryParams, QueryResult, RegisterEvent, Status};

/// A boxed, sendable future (what [`EventClient`] methods return). The same type as
/// `futures::future::BoxFuture`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a call to the event server failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The connection to the event server is gone (or was never there).
    #[error("event server connection closed")]
    ConnectionClosed,
    /// Never constructed: a `failure` answer to a registration is `Ok(None)` from
    /// [`EventClient::register_with_response`]. Kept only so that plugin sources naming
    /// it (`gateway_plugin_api::sdk::ClientError` is this type) still build.
    #[deprecated(note = "never returned; a refused registration is `Ok(None)`")]
    #[doc(hidden)]
    #[error("event server refused the registration")]
    RegisterFailed,
    /// Another failure, with its reason (e.g. a registration the host refused because
    /// a payload was not JSON).
    #[error("event client error: {0}")]
    Other(String),
}

/// Something the event server pushed to a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// `MsgStatusNotify`: the server's status changed.
    Status(Status),
    /// `MsgEventsNotify`: one batch of events matching the subscription (one register
    /// request's session), in batch order.
    Events(Vec<Event>),
}

/// A connection to the event server as its users see it: register, register with
/// response, query.
pub trait EventClient: Send + Sync {
    /// Registers events without waiting for the server's answer.
    fn register(&self, events: Vec<RegisterEvent>) -> BoxFuture<'_, Result<(), ClientError>>;

    /// Registers events and returns what the server stored (`None` = the server
    /// answered `failure`).
    fn register_with_response(
        &self,
        events: Vec<RegisterEvent>,
    ) -> BoxFuture<'_, Result<Option<Vec<Event>>, ClientError>>;

    /// Runs a query.
    fn query(&self, params: QueryParams) -> BoxFuture<'_, Result<QueryResult, ClientError>>;
}
