//! The serial link as the device uses it: opening the port, opening a connection per
//! remote device, sending and receiving ASDUs. [`SerialOpener`] is the real one
//! (`iec_link` on the configured port, unbalanced or balanced); the traits let a test
//! put another link under the device.

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;

use crate::config::{MasterConfig, RemoteDevice, RemoteKind};

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

/// The serial parameters of a configuration.
pub fn serial_params(config: &MasterConfig) -> iec_link::SerialParams {
    config.serial.params()
}

/// The link address size of a configuration.
pub fn address_size(config: &MasterConfig) -> iec_link::AddressSize {
    // THREE is rejected by the configuration check.
    config.device_address_size().link_address_size()
}

impl LinkOpener for SerialOpener {
    fn open(&self, config: &MasterConfig) -> BoxFuture<'static, Result<Arc<dyn Link>, LinkError>> {
        let params = serial_params(config);
        let size = address_size(config);
        let balanced = config.is_balanced();
        Box::pin(async move {
            let link = if balanced {
                SerialLink::Balanced(
                    iec_link::BalancedLink::open(&params, size)
                        .await
                        .map_err(link_error)?,
                )
            } else {
                SerialLink::Unbalanced(
                    iec_link::MasterLink::open(&params, size)
                        .await
                        .map_err(link_error)?,
                )
            };
            Ok(Arc::new(link) as Arc<dyn Link>)
        })
    }
}

fn link_error(err: iec_link::LinkError) -> LinkError {
    LinkError(err.to_string())
}

/// An open `iec_link` link of either kind.
enum SerialLink {
    Unbalanced(iec_link::MasterLink),
    Balanced(iec_link::BalancedLink),
}

impl Link for SerialLink {
    fn open_connection(
        &self,
        config: &MasterConfig,
        remote: &RemoteDevice,
    ) -> BoxFuture<'static, Result<Arc<dyn Conn>, LinkError>> {
        let name = Some(config.name.clone());
        let queue_size = config.queue_size();
        let address = remote.address;
        let response_timeout = remote.response_timeout;
        let send_retry_count = remote.send_retry_count;
        match (self, remote.kind) {
            (
                Self::Unbalanced(link),
                RemoteKind::Unbalanced {
                    poll_class1_delay,
                    poll_class2_delay,
                },
            ) => {
                let link = link.clone();
                Box::pin(async move {
                    let options = iec_link::MasterConnectionOptions {
                        name,
                        response_timeout,
                        send_retry_count,
                        poll_class1_delay,
                        poll_class2_delay,
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
            (
                Self::Balanced(link),
                RemoteKind::Balanced {
                    direction,
                    status_delay,
                },
            ) => {
                let link = link.clone();
                let direction = iec_link::Direction::from(direction);
                Box::pin(async move {
                    let options = iec_link::BalancedConnectionOptions {
                        name,
                        response_timeout,
                        send_retry_count,
                        status_delay,
                        send_queue_size: queue_size,
                        receive_queue_size: queue_size,
                    };
                    let conn = link
                        .open_connection(direction, address, options)
                        .await
                        .map_err(link_error)?;
                    Ok(Arc::new(SerialConn(conn)) as Arc<dyn Conn>)
                })
            }
            // The configuration gives every remote device the kind of its link.
            _ => Box::pin(async { Err(LinkError("remote device of another link type".into())) }),
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
    fn send(&self, asdu: Bytes) -> BoxFuture<'_, Result<(), LinkError>> {
        Box::pin(async move { self.0.send(asdu, true).await.map_err(link_error) })
    }

    fn receive(&self) -> BoxFuture<'_, Option<Bytes>> {
        Box::pin(self.0.receive())
    }

    fn close(&self) {
        self.0.close();
    }
}
