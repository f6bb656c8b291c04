//! The serial link as the device uses it: opening the port, opening the connection of
//! each configured link address, sending and receiving ASDUs. [`SerialOpener`] is the
//! real one (`iec_link` on the configured port, unbalanced or balanced); the traits let
//! a test put another link under the device.

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;

use crate::config::{BalancedDevice, SlaveConfig, UnbalancedDevice};

/// Why a link or a connection could not be opened or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LinkError(pub String);

/// One configured `devices[]` entry, of either link type.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceLink {
    /// A balanced connection.
    Balanced(BalancedDevice),
    /// An address we answer as on an unbalanced line.
    Unbalanced(UnbalancedDevice),
}

impl DeviceLink {
    /// The link address (validated to fit 16 bits).
    pub fn address(&self) -> u16 {
        let address = match self {
            Self::Balanced(d) => d.address,
            Self::Unbalanced(d) => d.address,
        };
        address as u16
    }

    /// Pause before the connection is opened again after a failure to open.
    pub fn reconnect_delay(&self) -> std::time::Duration {
        crate::config::secs(match self {
            Self::Balanced(d) => d.reconnect_delay,
            Self::Unbalanced(d) => d.reconnect_delay,
        })
    }
}

/// Opens the serial link of a configuration.
pub trait LinkOpener: Send + Sync + 'static {
    /// Opens the port (hat's `link.create_slave_link` / `create_balanced_link`).
    fn open(&self, config: &SlaveConfig) -> BoxFuture<'static, Result<Arc<dyn Link>, LinkError>>;
}

/// An open link on one port.
pub trait Link: Send + Sync + 'static {
    /// Opens the connection of one configured address; resolves once the master has
    /// reset the link (unbalanced) or the reset was confirmed (balanced).
    fn open_connection(
        &self,
        config: &SlaveConfig,
        device: &DeviceLink,
    ) -> BoxFuture<'static, Result<Arc<dyn Conn>, LinkError>>;

    /// Resolves when the link has closed (the port failed or it was closed).
    fn closed(&self) -> BoxFuture<'static, ()>;

    /// Closes the link and its connections.
    fn close(&self);
}

/// One connection to a master.
pub trait Conn: Send + Sync + 'static {
    /// Sends one ASDU; resolves once it went out (polled by the master, or confirmed by
    /// it when `with_ack`). An error once the connection is closed.
    fn send(&self, asdu: Bytes, with_ack: bool) -> BoxFuture<'_, Result<(), LinkError>>;

    /// The next received ASDU; `None` once the connection is closed. Cancel safe.
    fn receive(&self) -> BoxFuture<'_, Option<Bytes>>;

    /// Closes the connection.
    fn close(&self);
}

/// The real link: `iec_link` on the configured serial port.
#[derive(Debug, Clone, Copy, Default)]
pub struct SerialOpener;

impl LinkOpener for SerialOpener {
    fn open(&self, _config: &SlaveConfig) -> BoxFuture<'static, Result<Arc<dyn Link>, LinkError>> {
        Box::pin(async {
            Err(LinkError(
                "the serial link layer (iec_link) is not available yet".to_owned(),
            ))
        })
    }
}
