//! What a [`Server`] knows about its clients ([`ConnectionInfo`]) and the application
//! behind it ([`ServerHandler`]).

use std::net::SocketAddr;

use futures::future::BoxFuture;
use gateway_model::{Event, QueryParams, QueryResult, RegisterEvent, Subscription};

use super::Server;
use crate::connection::ConnectionError;

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

    /// Registers events of a request with `last = true`, which gets no answer: the
    /// registered events are not needed, so a handler may skip building them (the
    /// embedded server then hands its stored events to nobody). The default calls
    /// [`ServerHandler::register`] and drops its result.
    fn register_unanswered<'a>(
        &'a self,
        server: &'a Server,
        info: &'a ConnectionInfo,
        events: Vec<RegisterEvent>,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.register(server, info, events).await;
        })
    }

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
