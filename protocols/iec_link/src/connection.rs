//! The connection handle (stub while the shell lands).

use bytes::Bytes;

use crate::{CloseReason, ConnectionInfo, LinkError};

#[derive(Debug, Clone)]
pub(crate) struct ConnectionHandle {
    info: ConnectionInfo,
}

impl ConnectionHandle {
    pub(crate) fn info(&self) -> &ConnectionInfo {
        &self.info
    }
    pub(crate) async fn send(&self, _d: Bytes, _ack: bool, _c2: bool) -> Result<(), LinkError> {
        Err(LinkError::Closed(CloseReason::Local))
    }
    pub(crate) async fn receive(&self) -> Option<Bytes> {
        None
    }
    pub(crate) fn close(&self) {}
    pub(crate) fn is_closed(&self) -> bool {
        true
    }
    pub(crate) async fn closed(&self) -> CloseReason {
        CloseReason::Local
    }
}
