//! The serial link as the device uses it: opening the port, opening the connection of
//! each configured link address, sending and receiving ASDUs. [`SerialOpener`] is the
//! real one (`iec_link` on the configured port, unbalanced or balanced); the traits let
//! a test put another link under the device.

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;

use crate::config::{secs, BalancedDevice, SlaveConfig, UnbalancedDevice};

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
        secs(match self {
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

/// The serial parameters of a configuration.
pub fn serial_params(config: &SlaveConfig) -> iec_link::SerialParams {
    config.serial.params()
}

/// The link address size of a configuration.
pub fn address_size(config: &SlaveConfig) -> iec_link::AddressSize {
    // THREE is rejected by the configuration check.
    config.device_address_size().link_address_size()
}

fn link_error(err: iec_link::LinkError) -> LinkError {
    LinkError(err.to_string())
}

impl LinkOpener for SerialOpener {
    fn open(&self, config: &SlaveConfig) -> BoxFuture<'static, Result<Arc<dyn Link>, LinkError>> {
        let params = serial_params(config);
        let size = address_size(config);
        let balanced = matches!(config.link, crate::config::Link::Balanced { .. });
        Box::pin(async move {
            let link = if balanced {
                SerialLink::Balanced(
                    iec_link::BalancedLink::open(&params, size)
                        .await
                        .map_err(link_error)?,
                )
            } else {
                SerialLink::Unbalanced(
                    iec_link::SlaveLink::open(&params, size)
                        .await
                        .map_err(link_error)?,
                )
            };
            Ok(Arc::new(link) as Arc<dyn Link>)
        })
    }
}

/// An open `iec_link` link of either kind.
enum SerialLink {
    Unbalanced(iec_link::SlaveLink),
    Balanced(iec_link::BalancedLink),
}

impl Link for SerialLink {
    fn open_connection(
        &self,
        config: &SlaveConfig,
        device: &DeviceLink,
    ) -> BoxFuture<'static, Result<Arc<dyn Conn>, LinkError>> {
        let name = Some(config.name.clone());
        let queue_size = config.send_queue_size;
        let address = device.address();
        match (self, device) {
            (Self::Unbalanced(link), DeviceLink::Unbalanced(device)) => {
                let link = link.clone();
                let keep_alive_timeout = secs(device.keep_alive_timeout);
                Box::pin(async move {
                    let options = iec_link::SlaveConnectionOptions {
                        name,
                        keep_alive_timeout,
                        send_queue_size: queue_size,
                        receive_queue_size: queue_size,
                    };
                    let conn = link
                        .open_connection(address, options)
                        .await
                        .map_err(link_error)?;
                    Ok(Arc::new(SerialConn(conn)) as Arc<dyn Conn>)
                })
            }
            (Self::Balanced(link), DeviceLink::Balanced(device)) => {
                let link = link.clone();
                let direction = iec_link::Direction::from(device.direction);
                let options = iec_link::BalancedConnectionOptions {
                    name,
                    response_timeout: secs(device.response_timeout),
                    send_retry_count: device.send_retry_count,
                    status_delay: secs(device.status_delay),
                    send_queue_size: queue_size,
                    receive_queue_size: queue_size,
                };
                Box::pin(async move {
                    let conn = link
                        .open_connection(direction, address, options)
                        .await
                        .map_err(link_error)?;
                    Ok(Arc::new(SerialConn(conn)) as Arc<dyn Conn>)
                })
            }
            // The configuration gives every device the kind of its link.
            _ => Box::pin(async { Err(LinkError("device of another link type".into())) }),
        }
    }

    fn closed(&self) -> BoxFuture<'static, ()> {
        match self {
            Self::Unbalanced(link) => {
                let link = link.clone();
                Box::pin(async move {
                    let reason = link.closed().await;
                    tracing::warn!(%reason, "link closed");
                })
            }
            Self::Balanced(link) => {
                let link = link.clone();
                Box::pin(async move {
                    let reason = link.closed().await;
                    tracing::warn!(%reason, "link closed");
                })
            }
        }
    }

    fn close(&self) {
        match self {
            Self::Unbalanced(link) => link.close(),
            Self::Balanced(link) => link.close(),
        }
    }
}

/// An `iec_link` connection.
struct SerialConn(iec_link::Connection);

impl Conn for SerialConn {
    fn send(&self, asdu: Bytes, with_ack: bool) -> BoxFuture<'_, Result<(), LinkError>> {
        Box::pin(async move { self.0.send(asdu, with_ack).await.map_err(link_error) })
    }

    fn receive(&self) -> BoxFuture<'_, Option<Bytes>> {
        Box::pin(self.0.receive())
    }

    fn close(&self) {
        self.0.close();
    }
}
