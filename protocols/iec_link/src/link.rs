//! The task that owns a port and runs the sans-IO station (stub while the shell lands).

use crate::connection::ConnectionHandle;
use crate::{
    AddressSize, BalancedConnectionOptions, CloseReason, DecoderStats, Direction, LinkError,
    MasterConnectionOptions, SerialParams, SlaveConnectionOptions,
};

/// What kind of connection to open.
#[derive(Debug)]
pub(crate) enum ConnRequest {
    Master {
        address: crate::Address,
        options: MasterConnectionOptions,
    },
    Slave {
        address: crate::Address,
        options: SlaveConnectionOptions,
    },
    Balanced {
        direction: Direction,
        address: crate::Address,
        options: BalancedConnectionOptions,
    },
}

/// A handle on the link task.
#[derive(Debug, Clone)]
pub(crate) struct LinkHandle {
    port: String,
}

impl LinkHandle {
    pub(crate) fn open_master(p: &SerialParams, _s: AddressSize) -> Result<Self, LinkError> {
        Err(LinkError::Unsupported(format!("{}: not yet", p.port)))
    }
    pub(crate) fn open_slave(p: &SerialParams, _s: AddressSize) -> Result<Self, LinkError> {
        Err(LinkError::Unsupported(format!("{}: not yet", p.port)))
    }
    pub(crate) fn open_balanced(p: &SerialParams, _s: AddressSize) -> Result<Self, LinkError> {
        Err(LinkError::Unsupported(format!("{}: not yet", p.port)))
    }
    pub(crate) fn port(&self) -> &str {
        &self.port
    }
    pub(crate) fn is_closed(&self) -> bool {
        true
    }
    pub(crate) async fn closed(&self) -> CloseReason {
        CloseReason::Local
    }
    pub(crate) fn close(&self) {}
    pub(crate) fn stats(&self) -> DecoderStats {
        DecoderStats::default()
    }
    pub(crate) async fn open_connection(
        &self,
        _req: ConnRequest,
    ) -> Result<ConnectionHandle, LinkError> {
        Err(LinkError::Closed(CloseReason::Local))
    }
}
