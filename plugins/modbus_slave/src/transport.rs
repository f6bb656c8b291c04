//! The byte streams a slave serves: one task per TCP connection, one task for the
//! serial port. Each reads request ADUs, has the device handle them one at a time
//! and writes the responses.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use modbus::Framer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{secs, ByteSize, Parity, SerialConfig, StopBits};
use crate::device::{SerialChange, Shared};

/// Read buffer room reserved for one `read` call.
const READ_CHUNK: usize = 4096;

/// Most bytes buffered without a complete frame. No valid ADU is longer than 513 bytes
/// (ASCII), so a peer that fills this is sending garbage.
pub const MAX_BUFFERED: usize = 2 * modbus::codec::framing::MAX_ASCII_FRAME;

/// Pause before reopening a serial port that failed.
pub const SERIAL_REOPEN_DELAY: Duration = Duration::from_millis(500);

/// The serial port could not be opened or configured.
#[derive(Debug, thiserror::Error)]
#[error("serial port {port}: {reason}")]
pub struct SerialError {
    /// Port name.
    pub port: String,
    /// What went wrong.
    pub reason: String,
}

/// Far enough in the future to stand for "never".
fn never() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

/// Serves one accepted TCP connection until the peer leaves, sends bytes that do not
/// frame, stays idle past `keep_alive_timeout`, or `cancel` fires.
pub async fn serve_tcp(
    shared: Arc<Shared>,
    id: u64,
    mut stream: TcpStream,
    keep_alive_timeout: Option<f64>,
    cancel: CancellationToken,
) {
    // Responses are small and strictly request/response: do not let Nagle hold them.
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(error = %err, "TCP_NODELAY not set");
    }
    let framer = Framer::new(shared.config.modbus_type);
    let keep_alive = keep_alive_timeout.map(secs);
    let mut deadline = keep_alive.map_or_else(never, |t| Instant::now() + t);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut out = Vec::with_capacity(64);
    loop {
        buf.reserve(READ_CHUNK);
        tokio::select! {
            _ = cancel.cancelled() => return,
            () = tokio::time::sleep_until(deadline) => {
                tracing::info!("connection closed: keep alive timeout");
                return;
            }
            read = stream.read_buf(&mut buf) => match read {
                Ok(0) => {
                    tracing::debug!("connection closed by the peer");
                    return;
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::info!(error = %err, "connection closed: read failed");
                    return;
                }
            },
        }
        loop {
            let adu = match framer.decode_request(&mut buf) {
                Ok(Some(adu)) => adu,
                Ok(None) if buf.len() > MAX_BUFFERED => {
                    tracing::warn!(
                        bytes = buf.len(),
                        "connection closed: no frame in the input"
                    );
                    return;
                }
                Ok(None) => break,
                Err(err) => {
                    tracing::warn!(error = %err, "connection closed: bad frame");
                    return;
                }
            };
            // Not cancel safe (a write waiting for `system/write` leaves its entry in the
            // pending map), which only matters while the device is closing anyway.
            let handled = tokio::select! {
                _ = cancel.cancelled() => return,
                handled = shared.handle(id, false, &adu) => handled,
            };
            if handled.alive {
                if let Some(t) = keep_alive {
                    deadline = Instant::now() + t;
                }
            }
            let Some(pdu) = handled.reply else { continue };
            framer.encode_adu(adu.transaction_id, adu.unit, &pdu, &mut out);
            if let Err(err) = stream.write_all(&out).await {
                tracing::info!(error = %err, "connection closed: write failed");
                return;
            }
        }
    }
}

/// Serves the serial port until `cancel` fires, reopening it after a failure. A
/// master counts as connected from its first request until `keep_alive_timeout`
/// passes without one (hat's serial connection).
pub async fn serve_serial(
    shared: Arc<Shared>,
    mut port: tokio_serial::SerialStream,
    conf: SerialConfig,
    changes: mpsc::Sender<SerialChange>,
    cancel: CancellationToken,
) {
    let framer = Framer::new(shared.config.modbus_type);
    let keep_alive = secs(conf.keep_alive_timeout);
    let silent_interval = secs(conf.silent_interval);
    let mut current: Option<u64> = None;
    let mut next_id: Option<u64> = None;
    let mut deadline = never();
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut out = Vec::with_capacity(64);
    loop {
        buf.reserve(READ_CHUNK);
        tokio::select! {
            _ = cancel.cancelled() => return,
            () = tokio::time::sleep_until(deadline) => {
                if let Some(id) = current.take() {
                    tracing::info!(id, "serial master gone: keep alive timeout");
                    if changes.send(SerialChange::Closed(id)).await.is_err() {
                        return;
                    }
                }
                deadline = never();
                continue;
            }
            read = port.read_buf(&mut buf) => match read {
                Ok(n) if n > 0 => {}
                result => {
                    let error = result.err().map(|e| e.to_string());
                    tracing::warn!(?error, "serial port failed; reopening");
                    if let Some(id) = current.take() {
                        if changes.send(SerialChange::Closed(id)).await.is_err() {
                            return;
                        }
                    }
                    deadline = never();
                    buf.clear();
                    match reopen(&conf, &cancel).await {
                        Some(reopened) => port = reopened,
                        None => return,
                    }
                    continue;
                }
            },
        }
        loop {
            let adu = match framer.decode_request(&mut buf) {
                Ok(Some(adu)) => adu,
                Ok(None) if buf.len() > MAX_BUFFERED => {
                    tracing::info!(bytes = buf.len(), "discarding input without a frame");
                    buf.clear();
                    break;
                }
                Ok(None) => break,
                Err(err) => {
                    tracing::info!(error = %err, "discarding a bad frame");
                    buf.clear();
                    break;
                }
            };
            // The id a new master gets; taken from the counter once, kept until used.
            let id = match current {
                Some(id) => id,
                None => *next_id.get_or_insert_with(|| shared.connection_id()),
            };
            // Not cancel safe, as on TCP; only matters while the device is closing.
            let handled = tokio::select! {
                _ = cancel.cancelled() => return,
                handled = shared.handle(id, true, &adu) => handled,
            };
            if handled.alive {
                if current.is_none() {
                    current = next_id.take();
                    if changes.send(SerialChange::Opened(id)).await.is_err() {
                        return;
                    }
                }
                deadline = Instant::now() + keep_alive;
            }
            let Some(pdu) = handled.reply else { continue };
            tokio::time::sleep(silent_interval).await;
            framer.encode_adu(None, adu.unit, &pdu, &mut out);
            if let Err(err) = port.write_all(&out).await {
                tracing::warn!(error = %err, "serial write failed");
            }
        }
    }
}

async fn reopen(
    conf: &SerialConfig,
    cancel: &CancellationToken,
) -> Option<tokio_serial::SerialStream> {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return None,
            () = tokio::time::sleep(SERIAL_REOPEN_DELAY) => {}
        }
        match open_serial(conf) {
            Ok(port) => return Some(port),
            Err(err) => tracing::warn!(error = %err, "reopening the serial port failed"),
        }
    }
}

/// Opens and configures the serial port.
pub fn open_serial(conf: &SerialConfig) -> Result<tokio_serial::SerialStream, SerialError> {
    let unsupported = |what: &str| SerialError {
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
    tokio_serial::SerialStream::open(&builder).map_err(|err| SerialError {
        port: conf.port.clone(),
        reason: err.to_string(),
    })
}
