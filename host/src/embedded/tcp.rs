//! The embedded server's TCP side: serves the Eventer protocol through
//! `gateway_eventer::server` so other components and tools (the real Python eventer
//! client, the CLI) can connect to the same store as the in-process engine.

use std::net::SocketAddr;
use std::sync::Arc;

use futures::future::BoxFuture;
use gateway_eventer::server::{self as eventer_server, Server, ServerConfig, ServerHandler};
use gateway_model::{Event, QueryParams, QueryResult, RegisterEvent, Status};
use tokio::sync::{mpsc, oneshot};

use super::EmbeddedServer;

/// What a listener's TCP connections are told.
#[derive(Clone)]
pub(crate) enum TcpUpdate {
    /// One stored batch.
    Events(Arc<Vec<Arc<Event>>>),
    /// A status change.
    Status(Status),
}

/// One queued update and who waits for it to be queued on every connection.
struct Queued {
    update: TcpUpdate,
    done: oneshot::Sender<()>,
}

/// The queue to one listener's fan-out task ([`fan_out`]).
///
/// Unbounded, yet bounded in practice: every entry has a caller waiting on its `done`
/// (a registration or a status change), so the queue holds at most one entry per
/// concurrent caller, and the task drains it without waiting for any client (the
/// eventer server closes a connection that does not read).
pub(crate) struct TcpNotifier {
    listener_id: u64,
    queue: mpsc::UnboundedSender<Queued>,
}

/// Queues `update` to every listener (called under the embedded server's state lock,
/// which fixes the order); returns what to wait for.
pub(crate) fn queue(notifiers: &[TcpNotifier], update: &TcpUpdate) -> Vec<oneshot::Receiver<()>> {
    notifiers
        .iter()
        .filter_map(|notifier| {
            let (done, queued) = oneshot::channel();
            let queued_update = Queued {
                update: update.clone(),
                done,
            };
            // A closed queue means the listener is closing: nothing to wait for.
            notifier.queue.send(queued_update).ok().map(|()| queued)
        })
        .collect()
}

/// Waits until every listener has queued its update on its connections (a listener
/// that closed meanwhile counts as done).
pub(crate) async fn queued(waiting: Vec<oneshot::Receiver<()>>) {
    for done in waiting {
        let _ = done.await;
    }
}

/// A listener's fan-out task: hands each update to the eventer server in queue order.
/// Ends when the listener is closed (its [`TcpNotifier`] dropped).
async fn fan_out(server: Server, mut queue: mpsc::UnboundedReceiver<Queued>) {
    while let Some(Queued { update, done }) = queue.recv().await {
        match update {
            TcpUpdate::Events(events) => {
                // Everything is "persisted" once stored in memory: persisted and
                // non-persisted connections are both notified right away.
                server.notify_events(&events[..], false, false).await;
                server.notify_events(&events[..], true, false).await;
            }
            TcpUpdate::Status(status) => server.set_status(status).await,
        }
        // The update (and its share of the batch) is dropped before `done`.
        let _ = done.send(());
    }
}

/// A listening TCP side. [`TcpListenerHandle::close`] stops it; dropping the handle
/// leaves it running until the process ends.
pub struct TcpListenerHandle {
    listener_id: u64,
    server: Server,
    embedded: EmbeddedServer,
}

impl std::fmt::Debug for TcpListenerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpListenerHandle")
            .field("listener_id", &self.listener_id)
            .field("local_addr", &self.local_addr())
            .finish_non_exhaustive()
    }
}

impl TcpListenerHandle {
    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.server.local_addr()
    }

    /// Initialized TCP connections now.
    pub fn connection_count(&self) -> usize {
        self.server.connection_infos().len()
    }

    /// A function counting the initialized TCP connections, for the metrics sampler
    /// (it keeps no listener alive: it holds the server handle only).
    pub fn connection_counter(&self) -> impl Fn() -> usize + Send + Sync + 'static {
        let server = self.server.clone();
        move || server.connection_infos().len()
    }

    /// Stops listening and closes every TCP connection.
    pub async fn close(self) {
        self.embedded
            .state()
            .tcp
            .retain(|n| n.listener_id != self.listener_id);
        self.server.close().await;
    }
}

/// The [`ServerHandler`] of a listener: every request goes to the embedded server.
struct TcpHandler {
    embedded: EmbeddedServer,
}

impl ServerHandler for TcpHandler {
    fn connected<'a>(
        &'a self,
        _server: &'a Server,
        info: &'a eventer_server::ConnectionInfo,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            // Before the answer, so the new client is not notified of it (as hat).
            self.embedded
                .register_connection_event(&info.client_name, "CONNECTED")
                .await;
            Ok(())
        })
    }

    fn disconnected<'a>(
        &'a self,
        _server: &'a Server,
        info: &'a eventer_server::ConnectionInfo,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.embedded
                .register_connection_event(&info.client_name, "DISCONNECTED")
                .await;
        })
    }

    fn register<'a>(
        &'a self,
        _server: &'a Server,
        info: &'a eventer_server::ConnectionInfo,
        events: Vec<RegisterEvent>,
    ) -> BoxFuture<'a, Option<Vec<Event>>> {
        let own = self.embedded.inner.config.own_gateway.as_deref();
        let forged = own.and_then(|own| {
            events
                .iter()
                .find(|e| is_gateway_output(&e.event_type, own))
        });
        if let Some(forged) = forged {
            tracing::warn!(
                client_name = %info.client_name,
                peer = %info.peer,
                event_type = %forged.event_type.join("/"),
                "register refused: gateway output event types are registered only by the \
                 gateway itself, not by TCP clients"
            );
            return Box::pin(async { None });
        }
        // The embedded server notifies every TCP connection before returning, so the
        // notify is ahead of the register response on the wire, as with hat.
        Box::pin(self.embedded.register(events))
    }

    fn register_unanswered<'a>(
        &'a self,
        server: &'a Server,
        info: &'a eventer_server::ConnectionInfo,
        events: Vec<RegisterEvent>,
    ) -> BoxFuture<'a, ()> {
        let own = self.embedded.inner.config.own_gateway.as_deref();
        let forged = own.and_then(|own| {
            events
                .iter()
                .find(|e| is_gateway_output(&e.event_type, own))
        });
        if forged.is_some() {
            // Refused and logged like an answered request.
            let refused = self.register(server, info, events);
            return Box::pin(async move {
                refused.await;
            });
        }
        Box::pin(async move {
            self.embedded.register_unanswered(events).await;
        })
    }

    fn query<'a>(
        &'a self,
        _server: &'a Server,
        info: &'a eventer_server::ConnectionInfo,
        params: QueryParams,
    ) -> BoxFuture<'a, Result<QueryResult, String>> {
        Box::pin(async move { Ok(self.embedded.query_logged(&info.client_name, params)) })
    }
}

/// `gateway/<own>/<device type>/<device>/gateway/...`: what gateway `own` registers
/// about its devices (`running` and the devices' own outputs).
pub(crate) fn is_gateway_output(event_type: &[String], own: &str) -> bool {
    event_type.len() >= 5
        && event_type[0] == "gateway"
        && event_type[1] == own
        && event_type[4] == "gateway"
}

/// Refuses a listen address that is not loopback unless `allow_remote`, and
/// `allow_remote` without a token.
async fn check_listen_address(
    addr: &str,
    allow_remote: bool,
    token: Option<&str>,
) -> Result<(), eventer_server::ServerError> {
    let refused = |reason: String| eventer_server::ServerError::Refused {
        addr: addr.to_owned(),
        reason,
    };
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host(addr)
        .await
        .map_err(|source| eventer_server::ServerError::Bind {
            addr: addr.to_owned(),
            source,
        })?
        .collect();
    let remote: Vec<SocketAddr> = resolved
        .into_iter()
        .filter(|a| !a.ip().is_loopback())
        .collect();
    if remote.is_empty() {
        return Ok(());
    }
    if !allow_remote {
        return Err(refused(format!(
            "{remote:?} is not a loopback address: other hosts could connect; set \
             event_server.embedded.allow_remote: true and a token to allow it"
        )));
    }
    if token.is_none() {
        return Err(refused(
            "allow_remote needs a token (event_server.embedded.token)".to_owned(),
        ));
    }
    Ok(())
}

impl EmbeddedServer {
    /// Serves the Eventer protocol on `addr` (e.g. `127.0.0.1:0`) with hat's default
    /// keepalive and the configured [`TcpLimits`](super::TcpLimits). The token is
    /// `server_token`, else the configured one; with a token, clients that send none
    /// are refused too (stricter than hat). An address that is not loopback is refused
    /// unless `allow_remote` is configured, and then only with a token.
    pub async fn listen(
        &self,
        addr: &str,
        server_token: Option<String>,
    ) -> Result<TcpListenerHandle, eventer_server::ServerError> {
        let settings = &self.inner.config;
        let server_token = server_token.or_else(|| settings.token.clone());
        check_listen_address(addr, settings.allow_remote, server_token.as_deref()).await?;
        let handler = Arc::new(TcpHandler {
            embedded: self.clone(),
        });
        let limits = settings.tcp;
        let config = ServerConfig {
            require_token: server_token.is_some(),
            server_token,
            initial_status: self.status(),
            max_connections: limits.max_connections,
            max_frame_size: limits.max_frame_size,
            max_buffered_input: limits.max_buffered_input,
            max_outbound_bytes: limits.max_outbound_bytes,
            outbound_capacity: limits.max_outbound_messages,
            ..ServerConfig::default()
        };
        let server = Server::listen(addr, handler, config).await?;
        let listener_id = self.next_connection_id();
        let (queue, queued) = mpsc::unbounded_channel();
        tokio::spawn(fan_out(server.clone(), queued));
        self.state().tcp.push(TcpNotifier { listener_id, queue });
        tracing::info!(addr = ?server.local_addr(), "embedded event server listening");
        Ok(TcpListenerHandle {
            listener_id,
            server,
            embedded: self.clone(),
        })
    }
}
