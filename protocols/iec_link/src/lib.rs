//! IEC 60870-5-2 (FT1.2) link connections over serial ports: the tokio shell around the
//! sans-IO stations of `iec60870::link`.
//!
//! One task owns the port of a link ([`MasterLink`], [`SlaveLink`], [`BalancedLink`]);
//! [`Connection`]s (one per remote link address) talk to it through channels. A link whose
//! port fails closes with every connection, naming the reason; dropping the last handle
//! of a link or a connection closes it.

mod error;
mod serial;

pub use error::{CloseReason, LinkError};
pub use iec60870::link::{Address, AddressSize, DecoderStats, Direction};
pub use serial::{ByteSize, Parity, SerialParams, StopBits};

use std::time::Duration;

use bytes::Bytes;

/// Who a connection talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The name given in the connection options.
    pub name: Option<String>,
    /// The serial port path.
    pub port: String,
    /// The remote link address.
    pub address: Address,
}

/// Options of an unbalanced master connection (hat's `MasterLink.open_connection`).
#[derive(Debug, Clone, PartialEq)]
pub struct MasterConnectionOptions {
    /// Name in [`ConnectionInfo`] and logs.
    pub name: Option<String>,
    /// How long to wait for the answer to a request.
    pub response_timeout: Duration,
    /// Repetitions of an unanswered request before the connection closes.
    pub send_retry_count: u32,
    /// Pause between class 1 polls (cut short when a response has ACD set); `None`: no
    /// class 1 polling.
    pub poll_class1_delay: Option<Duration>,
    /// Pause between class 2 polls; `None`: no class 2 polling.
    pub poll_class2_delay: Option<Duration>,
    /// Sends that may wait for the line at once (further sends wait for a place).
    pub send_queue_size: usize,
    /// Received ASDUs buffered for [`Connection::receive`]; when full, the link waits
    /// (and stops polling) until the reader catches up.
    pub receive_queue_size: usize,
}

impl Default for MasterConnectionOptions {
    /// hat's defaults: 15 s, 3 retries, class 1 every second, no class 2, 1024, 1024.
    fn default() -> Self {
        MasterConnectionOptions {
            name: None,
            response_timeout: Duration::from_secs(15),
            send_retry_count: 3,
            poll_class1_delay: Some(Duration::from_secs(1)),
            poll_class2_delay: None,
            send_queue_size: 1024,
            receive_queue_size: 1024,
        }
    }
}

/// Options of an unbalanced slave connection (hat's `SlaveLink.open_connection`).
#[derive(Debug, Clone, PartialEq)]
pub struct SlaveConnectionOptions {
    /// Name in [`ConnectionInfo`] and logs.
    pub name: Option<String>,
    /// The connection closes when the master sends nothing to this address for this long.
    pub keep_alive_timeout: Duration,
    /// ASDUs that may wait for a poll at once (class 1 and class 2 each).
    pub send_queue_size: usize,
    /// Received ASDUs buffered for [`Connection::receive`]; when full, the link waits
    /// (and answers nothing) until the reader catches up.
    pub receive_queue_size: usize,
}

impl Default for SlaveConnectionOptions {
    /// hat's defaults: 30 s, 1024, 1024.
    fn default() -> Self {
        SlaveConnectionOptions {
            name: None,
            keep_alive_timeout: Duration::from_secs(30),
            send_queue_size: 1024,
            receive_queue_size: 1024,
        }
    }
}

/// Options of a balanced connection (hat's `BalancedLink.open_connection`).
#[derive(Debug, Clone, PartialEq)]
pub struct BalancedConnectionOptions {
    /// Name in [`ConnectionInfo`] and logs.
    pub name: Option<String>,
    /// How long to wait for the answer to a request.
    pub response_timeout: Duration,
    /// Repetitions of an unanswered request before the connection closes.
    pub send_retry_count: u32,
    /// A status request is sent after this long without a request of ours.
    pub status_delay: Duration,
    /// Sends that may wait for the line at once.
    pub send_queue_size: usize,
    /// Received ASDUs buffered for [`Connection::receive`]; when full, the link waits
    /// until the reader catches up.
    pub receive_queue_size: usize,
}

impl Default for BalancedConnectionOptions {
    /// hat's defaults: 15 s, 3 retries, 5 s, 1024, 1024.
    fn default() -> Self {
        BalancedConnectionOptions {
            name: None,
            response_timeout: Duration::from_secs(15),
            send_retry_count: 3,
            status_delay: Duration::from_secs(5),
            send_queue_size: 1024,
            receive_queue_size: 1024,
        }
    }
}

/// An unbalanced master (primary station) on one serial port; several remote addresses
/// are polled in turn. Clones share the link; it closes when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct MasterLink {
    shell: link::LinkHandle,
}

/// An unbalanced slave (secondary station) on one serial port, answering for one or more
/// addresses.
#[derive(Debug, Clone)]
pub struct SlaveLink {
    shell: link::LinkHandle,
}

/// A balanced link (primary and secondary at once) on one serial port.
#[derive(Debug, Clone)]
pub struct BalancedLink {
    shell: link::LinkHandle,
}

/// A link connection to one remote address. Clones share it; it closes when the last
/// clone is dropped.
#[derive(Debug, Clone)]
pub struct Connection {
    inner: connection::ConnectionHandle,
}

mod connection;
mod link;

macro_rules! link_common {
    ($ty:ident) => {
        impl $ty {
            /// The serial port path.
            pub fn port(&self) -> &str {
                self.shell.port()
            }

            /// Whether the link has closed.
            pub fn is_closed(&self) -> bool {
                self.shell.is_closed()
            }

            /// Resolves once the link has closed, with the reason.
            pub async fn closed(&self) -> CloseReason {
                self.shell.closed().await
            }

            /// Closes the link and all its connections.
            pub fn close(&self) {
                self.shell.close()
            }

            /// Decoder counters of the line (discarded octets, bad frames, frames).
            pub fn stats(&self) -> DecoderStats {
                self.shell.stats()
            }
        }
    };
}

link_common!(MasterLink);
link_common!(SlaveLink);
link_common!(BalancedLink);

impl MasterLink {
    /// Opens the port as an unbalanced master. `address_size` must be One or Two.
    pub async fn open(
        params: &SerialParams,
        address_size: AddressSize,
    ) -> Result<MasterLink, LinkError> {
        link::LinkHandle::open_master(params, address_size).map(|shell| MasterLink { shell })
    }

    /// Opens a connection to `address`: resets its link, repeating the reset every
    /// `response_timeout` until the remote acknowledges (like hat, it never gives up by
    /// itself: wrap it in a timeout or select). Errors: invalid or already used address,
    /// the link closed.
    pub async fn open_connection(
        &self,
        address: Address,
        options: MasterConnectionOptions,
    ) -> Result<Connection, LinkError> {
        self.shell
            .open_connection(link::ConnRequest::Master { address, options })
            .await
            .map(|inner| Connection { inner })
    }
}

impl SlaveLink {
    /// Opens the port as an unbalanced slave. `address_size` must be One or Two.
    pub async fn open(
        params: &SerialParams,
        address_size: AddressSize,
    ) -> Result<SlaveLink, LinkError> {
        link::LinkHandle::open_slave(params, address_size).map(|shell| SlaveLink { shell })
    }

    /// Starts answering for `address` and resolves once the master has sent its first
    /// request to it (normally the link reset). Errors: invalid or already used address,
    /// the link closed.
    pub async fn open_connection(
        &self,
        address: Address,
        options: SlaveConnectionOptions,
    ) -> Result<Connection, LinkError> {
        self.shell
            .open_connection(link::ConnRequest::Slave { address, options })
            .await
            .map(|inner| Connection { inner })
    }
}

impl BalancedLink {
    /// Opens the port as a balanced link (any address size).
    pub async fn open(
        params: &SerialParams,
        address_size: AddressSize,
    ) -> Result<BalancedLink, LinkError> {
        link::LinkHandle::open_balanced(params, address_size).map(|shell| BalancedLink { shell })
    }

    /// Opens the connection to `address` in `direction` (the DIR bit of our requests:
    /// the two ends use opposite directions): answers the remote's requests at once,
    /// and resolves once the remote acknowledged our link reset (repeated every
    /// `response_timeout` until it does).
    pub async fn open_connection(
        &self,
        direction: Direction,
        address: Address,
        options: BalancedConnectionOptions,
    ) -> Result<Connection, LinkError> {
        self.shell
            .open_connection(link::ConnRequest::Balanced {
                direction,
                address,
                options,
            })
            .await
            .map(|inner| Connection { inner })
    }
}

impl Connection {
    /// Name, port and remote address.
    pub fn info(&self) -> &ConnectionInfo {
        self.inner.info()
    }

    /// Sends one ASDU. Master and balanced: resolves once it was written and, with
    /// `with_ack`, confirmed by the remote (without: sent as "user data, no reply").
    /// Slave: queued as class 1 data (ACD is set) and resolves once a response carried
    /// it; `with_ack` is ignored. Errors once the connection is closed, or when the
    /// remote rejected the frame.
    pub async fn send(&self, data: Bytes, with_ack: bool) -> Result<(), LinkError> {
        self.inner.send(data, with_ack, false).await
    }

    /// Slave only: queues one ASDU as class 2 data (answered to class 2 polls before
    /// class 1 data; hat's `poll_class2_cb`), resolving once a response carried it. On
    /// other connections the same as `send(data, true)`.
    pub async fn send_class2(&self, data: Bytes) -> Result<(), LinkError> {
        self.inner.send(data, true, true).await
    }

    /// The next received ASDU; `None` once the connection is closed and everything
    /// received was read. Cancel safe.
    pub async fn receive(&self) -> Option<Bytes> {
        self.inner.receive().await
    }

    /// Closes the connection (the link stays open).
    pub fn close(&self) {
        self.inner.close()
    }

    /// Whether the connection has closed.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Resolves once the connection has closed, with the reason.
    pub async fn closed(&self) -> CloseReason {
        self.inner.closed().await
    }
}
