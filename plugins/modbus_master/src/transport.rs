//! Opening the byte stream a connection runs over: a TCP client socket or a serial port.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::config::{ByteSize, Parity, SerialConfig, StopBits, TransportConfig};

/// A bidirectional byte stream owned by one connection task.
pub trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> ByteStream for T {}

/// Why a connection attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// TCP connect failed.
    #[error("TCP connect to {address} failed: {source}")]
    Tcp {
        /// `host:port`.
        address: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The serial port could not be opened or configured.
    #[error("serial port {port}: {reason}")]
    Serial {
        /// Port name.
        port: String,
        /// What went wrong.
        reason: String,
    },
}

/// Opens the configured transport (the caller bounds it with `connect_timeout`).
/// Also returns the silent interval to keep between frames (zero for TCP).
pub async fn open(
    conf: &TransportConfig,
) -> Result<(Box<dyn ByteStream>, Duration), TransportError> {
    match conf {
        TransportConfig::Tcp { host, port } => {
            let address = format!("{host}:{port}");
            let stream = tokio::net::TcpStream::connect((host.as_str(), *port))
                .await
                .map_err(|source| TransportError::Tcp {
                    address: address.clone(),
                    source,
                })?;
            // Requests are small and strictly request/response: do not let Nagle hold them.
            stream
                .set_nodelay(true)
                .map_err(|source| TransportError::Tcp { address, source })?;
            Ok((Box::new(stream), Duration::ZERO))
        }
        TransportConfig::Serial(serial) => {
            let stream = open_serial(serial)?;
            Ok((
                Box::new(stream),
                crate::config::secs(serial.silent_interval),
            ))
        }
    }
}

fn open_serial(conf: &SerialConfig) -> Result<tokio_serial::SerialStream, TransportError> {
    let unsupported = |what: &str| TransportError::Serial {
        port: conf.port.clone(),
        reason: format!("{what} is not supported by the serial driver"),
    };
    let data_bits = match conf.bytesize {
        ByteSize::Fivebits => tokio_serial::DataBits::Five,
        ByteSize::Sixbits => tokio_serial::DataBits::Six,
        ByteSize::Sevenbits => tokio_serial::DataBits::Seven,
        ByteSize::Eightbits => tokio_serial::DataBits::Eight,
    };
    let parity = match conf.parity {
        Parity::None => tokio_serial::Parity::None,
        Parity::Even => tokio_serial::Parity::Even,
        Parity::Odd => tokio_serial::Parity::Odd,
        Parity::Mark => return Err(unsupported("parity MARK")),
        Parity::Space => return Err(unsupported("parity SPACE")),
    };
    let stop_bits = match conf.stopbits {
        StopBits::One => tokio_serial::StopBits::One,
        StopBits::Two => tokio_serial::StopBits::Two,
        StopBits::OnePointFive => return Err(unsupported("stop bits ONE_POINT_FIVE")),
    };
    let flow = &conf.flow_control;
    let flow_control = match (flow.xonxoff, flow.rtscts, flow.dsrdtr) {
        (_, _, true) => return Err(unsupported("DSR/DTR flow control")),
        (true, true, _) => return Err(unsupported("XON/XOFF together with RTS/CTS")),
        (true, false, _) => tokio_serial::FlowControl::Software,
        (false, true, _) => tokio_serial::FlowControl::Hardware,
        (false, false, _) => tokio_serial::FlowControl::None,
    };
    let builder = tokio_serial::new(&conf.port, conf.baudrate)
        .data_bits(data_bits)
        .parity(parity)
        .stop_bits(stop_bits)
        .flow_control(flow_control);
    tokio_serial::SerialStream::open(&builder).map_err(|err| TransportError::Serial {
        port: conf.port.clone(),
        reason: err.to_string(),
    })
}
