//! The connection handle: commands to the link task, received ASDUs from it.

use std::sync::Arc;

use bytes::Bytes;
use iec60870::link::ConnKey;
use tokio::sync::{mpsc, oneshot, watch, Mutex, Semaphore};

use crate::link::Command;
use crate::{CloseReason, ConnectionInfo, LinkError};

/// Shared by the clones of one [`crate::Connection`]; dropping the last one closes it.
#[derive(Debug)]
struct Shared {
    info: ConnectionInfo,
    key: ConnKey,
    conn_id: u64,
    commands: mpsc::UnboundedSender<Command>,
    received: Mutex<mpsc::Receiver<Bytes>>,
    state: watch::Receiver<Option<CloseReason>>,
    send_permits: Semaphore,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The link may be gone already; then there is nothing to close.
        let _ = self.commands.send(Command::Close {
            key: self.key,
            conn_id: self.conn_id,
        });
    }
}

/// A cheap clone of one connection.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionHandle {
    shared: Arc<Shared>,
}

/// What the link task keeps to build a handle once the connection opens.
#[derive(Debug)]
pub(crate) struct HandleParts {
    pub(crate) info: ConnectionInfo,
    pub(crate) key: ConnKey,
    pub(crate) conn_id: u64,
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    pub(crate) received: mpsc::Receiver<Bytes>,
    pub(crate) state: watch::Receiver<Option<CloseReason>>,
    pub(crate) send_queue_size: usize,
}

impl ConnectionHandle {
    pub(crate) fn new(parts: HandleParts) -> ConnectionHandle {
        ConnectionHandle {
            shared: Arc::new(Shared {
                info: parts.info,
                key: parts.key,
                conn_id: parts.conn_id,
                commands: parts.commands,
                received: Mutex::new(parts.received),
                state: parts.state,
                send_permits: Semaphore::new(parts.send_queue_size.max(1)),
            }),
        }
    }

    pub(crate) fn info(&self) -> &ConnectionInfo {
        &self.shared.info
    }

    fn reason(&self) -> Option<CloseReason> {
        self.shared.state.borrow().clone()
    }

    pub(crate) async fn send(
        &self,
        data: Bytes,
        with_ack: bool,
        class2: bool,
    ) -> Result<(), LinkError> {
        let shared = &self.shared;
        // The semaphore is never closed, so acquiring only waits.
        let _permit = shared
            .send_permits
            .acquire()
            .await
            .map_err(|_| LinkError::Closed(CloseReason::Local))?;
        if let Some(reason) = self.reason() {
            return Err(LinkError::Closed(reason));
        }
        let (reply, outcome) = oneshot::channel();
        let command = Command::Send {
            key: shared.key,
            conn_id: shared.conn_id,
            data,
            with_ack,
            class2,
            reply,
        };
        if shared.commands.send(command).is_err() {
            return Err(LinkError::Closed(self.closed().await));
        }
        match outcome.await {
            Ok(result) => result,
            // Dropped unanswered: the connection closed.
            Err(_) => Err(LinkError::Closed(self.closed().await)),
        }
    }

    pub(crate) async fn receive(&self) -> Option<Bytes> {
        self.shared.received.lock().await.recv().await
    }

    pub(crate) fn close(&self) {
        let _ = self.shared.commands.send(Command::Close {
            key: self.shared.key,
            conn_id: self.shared.conn_id,
        });
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.reason().is_some()
    }

    pub(crate) async fn closed(&self) -> CloseReason {
        let mut state = self.shared.state.clone();
        let reason = match state.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone(),
            Err(_) => None,
        };
        reason.unwrap_or_else(|| {
            self.reason()
                .unwrap_or(CloseReason::LinkClosed("the link task ended".into()))
        })
    }
}
