//! Errors and close reasons.

use iec60870::link::{Address, AddressSize, ResFunction};

/// Why a link or a connection closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloseReason {
    /// Closed by its owner (close() or the last handle dropped).
    #[error("closed locally")]
    Local,
    /// The remote did not answer a request nor its repetitions.
    #[error("no response after {retries} repetitions")]
    NoResponse {
        /// Repetitions sent.
        retries: u32,
    },
    /// The master sent nothing to this address for the keep-alive timeout.
    #[error("keep alive timeout: no request from the master")]
    KeepAliveTimeout,
    /// The serial port failed (read or write error, port gone).
    #[error("serial port {port} failed: {reason}")]
    PortFailed {
        /// The port path.
        port: String,
        /// The error.
        reason: String,
    },
    /// The link of the connection closed (for a reason given on the link).
    #[error("the link closed: {0}")]
    LinkClosed(String),
}

/// Errors of link and connection operations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The port could not be opened or configured.
    #[error("cannot open serial port {port}: {reason}")]
    Open {
        /// The port path.
        port: String,
        /// Why.
        reason: String,
    },
    /// A parameter the link cannot use (an address size of the wrong mode, a serial
    /// setting the driver does not support).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The address does not fit the address size (or is the broadcast address).
    #[error("address {address} is not usable with address size {size:?}")]
    InvalidAddress {
        /// The address.
        address: Address,
        /// The size.
        size: AddressSize,
    },
    /// A connection to the address is already open on this link.
    #[error("a connection to address {0} is already open")]
    AddressInUse(Address),
    /// The data does not fit one frame (or is empty).
    #[error("{len} octets cannot be sent in one frame (1 to {max})")]
    DataSize {
        /// The length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The remote answered a send with a negative function (NACK, not functioning,
    /// not implemented, ...); the connection stays open.
    #[error("the remote answered {0:?}")]
    Rejected(ResFunction),
    /// The connection or link is closed.
    #[error("closed: {0}")]
    Closed(CloseReason),
}
