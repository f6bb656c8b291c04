//! The life of one server connection: hat's init exchange, then its requests one at a
//! time in arrival order, then removal from the notification table.

use std::net::SocketAddr;
use std::sync::Arc;

use gateway_model::Subscription;
use tokio::sync::mpsc;

use super::{Connected, ConnectionInfo, Server, INIT_ERROR_CLOSE_DELAY};
use crate::connection::{ConnectionError, Inbound, Session};
use crate::message::{EventerMsg, InitReq, InitRes, RegisterRes};

impl Server {
    /// Serves one connection from init to its end, then reports the end.
    pub(super) async fn run_connection(
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
        let expected = self.shared.config.server_token.as_deref();
        let token_ok = match (request.client_token.as_deref(), expected) {
            // hat: a client without a token is admitted (unless `require_token`).
            (None, _) => !(self.shared.config.require_token && expected.is_some()),
            (Some(given), Some(expected)) => constant_time_eq(given, expected),
            (Some(_), None) => false,
        };
        if !token_ok {
            return Err("invalid client token".to_owned());
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
                    if request.last {
                        if !events.is_empty() {
                            handler.register_unanswered(self, info, events).await;
                        }
                        continue;
                    }
                    let result = if events.is_empty() {
                        Some(Vec::new())
                    } else {
                        handler.register(self, info, events).await
                    };
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

/// Compares two tokens in time that depends on their lengths only, not on where they
/// differ (a remote client must not learn the token byte by byte from timing).
fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}
