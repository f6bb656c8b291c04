//! IEC 60870-5-104 connections over TCP: the tokio shell around `gateway-iec60870`'s
//! sans-IO APCI [`Session`](iec60870::apci::Session).
//!
//! ASDUs travel as opaque [`Bytes`]; encode and decode them with `iec60870::asdu`.
//!
//! ```text
//! connect(addr, &config) -> Connection        TCP connect (connect_timeout), STARTDT act, waits for con (t1)
//! Listener::bind(addr, config) -> Listener    Listener::accept() -> Connection as soon as TCP is accepted
//! Connection::receive() -> Bytes              next ASDU received; Err(Closed(reason)) once closed
//! Connection::sender() -> Sender              cheap, cloneable sending handle
//! Sender::send(asdu, wait_ack)                queued in order; waits while the queue is full;
//!                                             wait_ack: until the peer acknowledged the I-frame
//! Sender::send_all(asdus, wait_ack)           the same for a batch (wait_ack on the last)
//! Sender::drain(wait_ack)                     everything queued so far written (and acknowledged)
//! Sender::is_enabled() / enabled()            STARTDT/STOPDT state (a watch channel)
//! Sender::close() / is_closed() / closed()    close; why it closed ([`CloseReason`])
//! ```
//!
//! One task per connection owns the socket and the session; handles talk to it over one
//! bounded command queue ([`ConnectionConfig::send_queue_size`]) and it hands received
//! ASDUs over one bounded queue ([`ConnectionConfig::receive_queue_size`]). While the
//! receive queue is full the task stops reading the socket, so the peer's k window
//! fills and the peer waits: nothing is dropped. While k of our I-frames are
//! unacknowledged it stops taking commands, so senders wait: nothing is dropped or
//! reordered. Frames are written many per syscall and ASDUs are decoded without copying.
//!
//! Roles follow hat-drivers: the connecting side is enabled once STARTDT is confirmed
//! and ignores STOPDT; the listening side starts stopped and follows the peer's
//! STARTDT/STOPDT act. ASDUs sent while stopped are discarded ([`Error::Disabled`] for
//! `wait_ack`), as hat does.
//!
//! The connection closes when [`Sender::close`] is called, when the [`Connection`] and
//! every [`Sender`] are dropped, or on the first fault: the peer closing, an I/O error,
//! bad bytes or a sequence error from the peer, a t1 expiry. The reason is logged in the
//! connection's span (`local`, `remote`) and returned by every pending and later call.

mod connection;

use std::net::SocketAddr;
use std::time::Duration;

use iec60870::apci::SessionConfig;
use tokio::net::{TcpListener, TcpStream};

pub use connection::{Connection, ConnectionInfo, Sender};
pub use iec60870::apci::{ApciError, CloseReason, TimeoutCause};

/// Default capacity of the send command queue (hat-drivers' `send_queue_size`).
pub const DEFAULT_SEND_QUEUE_SIZE: usize = 1024;
/// Default capacity of the received ASDU queue (hat-drivers' `receive_queue_size`).
pub const DEFAULT_RECEIVE_QUEUE_SIZE: usize = 1024;

/// Timers, windows and queue limits of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionConfig {
    /// t1: an I-frame or U act we sent must be answered within this.
    pub response_timeout: Duration,
    /// t2: received I-frames are acknowledged at the latest after this.
    pub supervisory_timeout: Duration,
    /// t3: TESTFR act after this long without receiving anything.
    pub test_timeout: Duration,
    /// k: at most this many unacknowledged I-frames sent (0 counts as 1).
    pub send_window_size: u16,
    /// w: acknowledge after this many received I-frames.
    pub receive_window_size: u16,
    /// Upper bound for the TCP connect of [`connect`] (STARTDT con then has t1).
    pub connect_timeout: Duration,
    /// Capacity of the queue of ASDUs and drains waiting to be sent (0 counts as 1).
    pub send_queue_size: usize,
    /// Capacity of the queue of received ASDUs not yet taken by
    /// [`Connection::receive`] (0 counts as 1).
    pub receive_queue_size: usize,
}

impl Default for ConnectionConfig {
    /// hat-drivers' defaults (t1 15 s, t2 10 s, t3 20 s, k 12, w 8, queues of 1024) and
    /// a connect timeout of 10 s (hat has none: the operating system's applies).
    fn default() -> Self {
        ConnectionConfig {
            response_timeout: Duration::from_secs(15),
            supervisory_timeout: Duration::from_secs(10),
            test_timeout: Duration::from_secs(20),
            send_window_size: 12,
            receive_window_size: 8,
            connect_timeout: Duration::from_secs(10),
            send_queue_size: DEFAULT_SEND_QUEUE_SIZE,
            receive_queue_size: DEFAULT_RECEIVE_QUEUE_SIZE,
        }
    }
}

impl ConnectionConfig {
    /// The session part of the configuration.
    pub fn session(&self) -> SessionConfig {
        SessionConfig {
            response_timeout: self.response_timeout,
            supervisory_timeout: self.supervisory_timeout,
            test_timeout: self.test_timeout,
            send_window_size: self.send_window_size,
            receive_window_size: self.receive_window_size,
        }
    }
}

/// Errors of the IEC 104 connection layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The TCP connect failed.
    #[error("connecting to {addr}: {source}")]
    Connect {
        /// The address tried.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The TCP connect took longer than [`ConnectionConfig::connect_timeout`].
    #[error("connecting to {addr}: no answer within {timeout:?}")]
    ConnectTimeout {
        /// The address tried.
        addr: SocketAddr,
        /// The limit.
        timeout: Duration,
    },
    /// The connection is closed (or closed before the operation completed).
    #[error("connection closed: {0}")]
    Closed(CloseReason),
    /// Data transfer is stopped (STOPDT): the ASDU was discarded.
    #[error("data transfer is stopped: ASDU discarded")]
    Disabled,
    /// The ASDU is longer than an I-frame can carry.
    #[error("ASDU of {0} bytes exceeds the maximum of 249")]
    AsduTooLong(usize),
}

/// Connects to an IEC 104 slave at `addr`: TCP, then STARTDT act; returns once STARTDT
/// con arrived (or fails with [`CloseReason::ResponseTimeout`] after t1).
pub async fn connect(addr: SocketAddr, config: &ConnectionConfig) -> Result<Connection, Error> {
    let stream = tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| Error::ConnectTimeout {
            addr,
            timeout: config.connect_timeout,
        })?
        .map_err(|source| Error::Connect { addr, source })?;
    let connection = Connection::spawn(stream, iec60870::apci::Role::Controlling, config)
        .map_err(|source| Error::Connect { addr, source })?;
    let sender = connection.sender();
    let mut enabled = sender.enabled();
    // `is_ok()` drops the watch guard at once: holding it across an await would make
    // this future !Send.
    let started = tokio::select! {
        started = enabled.wait_for(|enabled| *enabled) => started.is_ok(),
        _ = sender.closed() => false,
    };
    if !started {
        return Err(Error::Closed(sender.closed().await));
    }
    Ok(connection)
}

/// A listening socket for IEC 104 masters.
#[derive(Debug)]
pub struct Listener {
    listener: TcpListener,
    local_addr: SocketAddr,
    config: ConnectionConfig,
}

impl Listener {
    /// Binds `addr`; every accepted connection uses `config`.
    pub async fn bind(addr: SocketAddr, config: ConnectionConfig) -> std::io::Result<Listener> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        Ok(Listener {
            listener,
            local_addr,
            config,
        })
    }

    /// The bound address (with the port chosen when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The next connection, as soon as TCP is accepted (data transfer starts with the
    /// master's STARTDT act). A connection that fails before it is set up (the peer
    /// reset it already) is logged and skipped; an error is the listener's own.
    /// Cancel safe.
    pub async fn accept(&self) -> std::io::Result<Connection> {
        loop {
            let (stream, remote) = self.listener.accept().await?;
            match Connection::spawn(stream, iec60870::apci::Role::Controlled, &self.config) {
                Ok(connection) => return Ok(connection),
                Err(error) => {
                    tracing::warn!(%remote, %error, "accepted IEC 104 connection failed at set-up");
                }
            }
        }
    }
}
