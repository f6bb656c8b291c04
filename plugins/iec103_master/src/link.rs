//! The serial link as the device uses it: opening the port, opening a connection per
//! remote device, sending and receiving ASDUs. [`SerialOpener`] is the real one
//! (`iec_link::MasterLink` on the configured port); the traits let a test put another
//! link under the device.

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::config::{MasterConfig, RemoteDeviceConfig};

/// Why a link or a connection could not be opened or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LinkError(pub String);

/// Opens the serial link of a configuration.
pub trait LinkOpener: Send + Sync + 'static {
    /// Opens the port (hat's `link.create_master_link`).
    fn open(&self, config: &MasterConfig) -> BoxFuture<'static, Result<Arc<dyn Link>, LinkError>>;
}

/// An open unbalanced master link on one port.
pub trait Link: Send + Sync + 'static {
    /// Opens the connection to a remote device: resets its link, trying until it
    /// answers (callers cancel it when they give up).
    fn open_connection(
        &self,
        remote: &RemoteDeviceConfig,
        config: &MasterConfig,
    ) -> BoxFuture<'static, Result<Arc<dyn Conn>, LinkError>>;

    /// Resolves when the link has closed (the port failed or it was closed).
    fn closed(&self) -> BoxFuture<'static, ()>;

    /// Closes the link and its connections.
    fn close(&self);
}

/// A connection to one remote device.
pub trait Conn: Send + Sync + 'static {
    /// Sends an ASDU as user data with confirmation (hat's `send(data)`, with_ack);
    /// resolves once confirmed.
    fn send(&self, asdu: Vec<u8>) -> BoxFuture<'_, Result<(), LinkError>>;

    /// The next ASDU received; `None` once the connection has closed.
    fn receive(&self) -> BoxFuture<'_, Option<Vec<u8>>>;

    /// Closes the connection.
    fn close(&self);
}
