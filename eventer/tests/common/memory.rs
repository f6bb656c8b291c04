//! A small in-memory [`ServerHandler`] for tests: assigns ids and timestamps like hat's
//! engine, notifies each batch before answering, answers `latest` queries, and reports
//! every connection end on a channel.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use gateway_eventer::connection::ConnectionError;
use gateway_eventer::model::{
    query_type_matches, Event, EventId, QueryParams, QueryResult, RegisterEvent, Status, Timestamp,
};
use gateway_eventer::server::{ConnectionInfo, Server, ServerHandler};
use tokio::sync::mpsc;

/// Capacity of the channel of ended connections (tests read it as they go).
pub(crate) const CLOSED_CAPACITY: usize = 64;

/// One ended connection as reported to the handler.
#[derive(Debug)]
pub(crate) struct Closed {
    /// The client's address.
    pub peer: SocketAddr,
    /// Client name if the connection was initialized.
    pub client_name: Option<String>,
    /// Why it ended, as text (the typed value is checked through `kind`).
    pub reason: String,
    /// The variant name of the reason.
    pub kind: &'static str,
}

/// In-memory event store behind a test server.
pub(crate) struct MemoryHandler {
    server_id: i64,
    state: Mutex<Stored>,
    closed: mpsc::Sender<Closed>,
}

#[derive(Default)]
struct Stored {
    session: i64,
    events: Vec<Event>,
}

impl MemoryHandler {
    /// A handler and the receiver of ended connections.
    pub(crate) fn new() -> (Arc<MemoryHandler>, mpsc::Receiver<Closed>) {
        let (tx, rx) = mpsc::channel(CLOSED_CAPACITY);
        let handler = MemoryHandler {
            server_id: 1,
            state: Mutex::new(Stored::default()),
            closed: tx,
        };
        (Arc::new(handler), rx)
    }

    /// Every stored event, in registration order.
    pub(crate) fn events(&self) -> Vec<Event> {
        self.state.lock().unwrap().events.clone()
    }
}

/// The variant name of a connection error.
pub(crate) fn kind(reason: &ConnectionError) -> &'static str {
    match reason {
        ConnectionError::LocalClose => "LocalClose",
        ConnectionError::PeerClosed => "PeerClosed",
        ConnectionError::Chatter(_) => "Chatter",
        ConnectionError::Message(_) => "Message",
        ConnectionError::UnexpectedMessage { .. } => "UnexpectedMessage",
        ConnectionError::PingTimeout(_) => "PingTimeout",
        ConnectionError::InitTimeout(_) => "InitTimeout",
        ConnectionError::InitRejected(_) => "InitRejected",
        ConnectionError::Handler(_) => "Handler",
        ConnectionError::ServerClosed => "ServerClosed",
        ConnectionError::SlowConsumer { .. } => "SlowConsumer",
        ConnectionError::UnreadOutput { .. } => "UnreadOutput",
        ConnectionError::TaskEnded => "TaskEnded",
    }
}

impl ServerHandler for MemoryHandler {
    fn register<'a>(
        &'a self,
        server: &'a Server,
        _info: &'a ConnectionInfo,
        events: Vec<RegisterEvent>,
    ) -> BoxFuture<'a, Option<Vec<Event>>> {
        Box::pin(async move {
            if server.status() != Status::Operational {
                return None;
            }
            let batch: Vec<Event> = {
                let mut state = self.state.lock().unwrap();
                state.session += 1;
                let session = state.session;
                let timestamp = Timestamp::now();
                let batch: Vec<Event> = events
                    .into_iter()
                    .zip(1..)
                    .map(|(e, instance)| Event {
                        id: EventId {
                            server: self.server_id,
                            session,
                            instance,
                        },
                        event_type: e.event_type,
                        timestamp,
                        source_timestamp: e.source_timestamp,
                        payload: e.payload,
                    })
                    .collect();
                state.events.extend(batch.iter().cloned());
                batch
            };
            // As hat: the batch is notified before the register answer is sent.
            server.notify_events(&batch, false, false).await;
            Some(batch)
        })
    }

    fn query<'a>(
        &'a self,
        _server: &'a Server,
        _info: &'a ConnectionInfo,
        params: QueryParams,
    ) -> BoxFuture<'a, Result<QueryResult, String>> {
        Box::pin(async move {
            let QueryParams::Latest(latest) = params else {
                return Err("only latest queries are supported".to_owned());
            };
            let state = self.state.lock().unwrap();
            let mut newest: Vec<Event> = Vec::new();
            for event in state.events.iter().rev() {
                let wanted = latest.event_types.as_ref().is_none_or(|types| {
                    types
                        .iter()
                        .any(|q| query_type_matches(q, &event.event_type))
                });
                if wanted && !newest.iter().any(|e| e.event_type == event.event_type) {
                    newest.push(event.clone());
                }
            }
            Ok(QueryResult {
                events: newest,
                more_follows: false,
            })
        })
    }

    fn connection_closed(
        &self,
        peer: SocketAddr,
        info: Option<&ConnectionInfo>,
        reason: &ConnectionError,
    ) {
        let _ = self.closed.try_send(Closed {
            peer,
            client_name: info.map(|i| i.client_name.clone()),
            reason: reason.to_string(),
            kind: kind(reason),
        });
    }
}
