//! The serial link as the device uses it: opening the port, opening a connection per
//! remote device, sending and receiving ASDUs. [`SerialOpener`] is the real one
//! (`iec_link` on the configured port, unbalanced or balanced); the traits let a test
//! put another link under the device.

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;

use crate::config::{MasterConfig, RemoteDevice};

/// Why a link or a connection could not be opened or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LinkError(pub String);

/// Opens the serial link of a configuration.
pub trait LinkOpener: Send + Sync + 'static {
    /// Opens the port (hat's `link.create_master_link` / `create_balanced_link`).
    fn open(&self, config: &MasterConfig) -> BoxFuture<'static, Result<Arc<dyn Link>, LinkError>>;
}

/// An open link on one port.
pub trait Link: Send + Sync + 'static {
    /// Opens the connection to a remote device: resets its link, trying until it
    /// answers (callers cancel it when they give up).
    fn open_connection(
        &self,
        config: &MasterConfig,
        remote: &RemoteDevice,
    ) -> BoxFuture<'static, Result<Arc<dyn Conn>, LinkError>>;

    /// Resolves when the link has closed (the port failed or it was closed).
    fn closed(&self) -> BoxFuture<'static, ()>;

    /// Closes the link and its connections.
    fn close(&self);
}

/// A connection to one remote device.
pub trait Conn: Send + Sync + 'static {
    /// Sends one ASDU; resolves once the remote device confirmed it (hat's default
    /// `with_ack`). An error once the connection is closed.
    fn send(&self, asdu: Bytes) -> BoxFuture<'_, Result<(), LinkError>>;

    /// The next received ASDU; `None` once the connection is closed. Cancel safe: a
    /// dropped future loses nothing.
    fn receive(&self) -> BoxFuture<'_, Option<Bytes>>;

    /// Closes the connection.
    fn close(&self);
}

/// The real link: `iec_link` on the configured serial port.
#[derive(Debug, Clone, Copy, Default)]
pub struct SerialOpener;

impl LinkOpener for SerialOpener {
    fn open(&self, _config: &MasterConfig) -> BoxFuture<'static, Result<Arc<dyn Link>, LinkError>> {
        Box::pin(async {
            Err(LinkError(
                "the serial link layer (iec_link) is not available yet".to_owned(),
            ))
        })
    }
}
