//! `gateway-host status`: asks a running daemon's metrics endpoint for `/status` and
//! prints one line per device.

use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

use super::metrics::Status;

/// How long `status` waits for the daemon (connect and answer together).
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest `/status` answer read (bytes).
pub const MAX_STATUS_BYTES: usize = 64 * 1024 * 1024;

/// Why the daemon's status could not be had.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// Connecting, sending or reading failed.
    #[error("cannot reach the daemon at {address}: {reason}")]
    Unreachable {
        /// `host:port`.
        address: String,
        /// What failed.
        reason: String,
    },
    /// The answer was not a `/status` document.
    #[error("bad answer from {address}: {reason}")]
    BadAnswer {
        /// `host:port`.
        address: String,
        /// What was wrong.
        reason: String,
    },
}

/// `host:port` from `http://host:port[/...]` or `host:port`.
pub fn address_of(url: &str) -> Result<String, String> {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    if url.contains("://") && !url.starts_with("http://") {
        return Err(format!("{url:?}: only http:// URLs are supported"));
    }
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() || !authority.contains(':') {
        return Err(format!("{url:?}: expected http://HOST:PORT or HOST:PORT"));
    }
    Ok(authority.to_owned())
}

/// Fetches `/status` from `address` (`host:port`) within [`STATUS_TIMEOUT`].
pub async fn fetch(address: &str) -> Result<Status, StatusError> {
    let unreachable = |reason: String| StatusError::Unreachable {
        address: address.to_owned(),
        reason,
    };
    let body = tokio::time::timeout(STATUS_TIMEOUT, get(address, "/status"))
        .await
        .map_err(|_| unreachable(format!("no answer within {} s", STATUS_TIMEOUT.as_secs())))?
        .map_err(unreachable)?;
    serde_json::from_slice(&body).map_err(|err| StatusError::BadAnswer {
        address: address.to_owned(),
        reason: err.to_string(),
    })
}

async fn get(address: &str, path: &str) -> Result<Bytes, String> {
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|err| err.to_string())?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|err| err.to_string())?;
    let connection = tokio::spawn(connection);
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, address)
        .body(Empty::<Bytes>::new())
        .map_err(|err| err.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|err| err.to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP status {}", response.status()));
    }
    let body = http_body_util::Limited::new(response.into_body(), MAX_STATUS_BYTES)
        .collect()
        .await
        .map_err(|err| err.to_string())?
        .to_bytes();
    connection.abort();
    Ok(body)
}

/// Whether any device is failed (the command then exits non-zero).
pub fn any_failed(status: &Status) -> bool {
    status.devices.iter().any(|d| d.state == "failed")
}

/// Prints the status as a table: a header line, then one line per device.
pub fn print(status: &Status, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "gateway {}: {}, up {:.0} s, {} reconnect(s)",
        status.gateway,
        if status.connected {
            "connected"
        } else {
            "NOT connected"
        },
        status.uptime_seconds,
        status.reconnects
    )?;
    let rows: Vec<[String; 7]> = status
        .devices
        .iter()
        .map(|d| {
            [
                format!("{}/{}", d.device_type, d.device),
                d.state.clone(),
                d.events_in.to_string(),
                d.events_out.to_string(),
                d.restarts.to_string(),
                d.seconds_since_last_event
                    .map_or("-".to_owned(), |s| format!("{s:.1}")),
                d.last_error
                    .as_deref()
                    .map_or("-".to_owned(), |e| e.replace('\n', " ")),
            ]
        })
        .collect();
    let header = [
        "DEVICE",
        "STATE",
        "IN",
        "OUT",
        "RESTARTS",
        "LAST EVENT S",
        "LAST ERROR",
    ]
    .map(str::to_owned);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::metrics::DeviceStatus;

    #[test]
    fn addresses_from_urls() {
        assert_eq!(
            address_of("http://127.0.0.1:9100").unwrap(),
            "127.0.0.1:9100"
        );
        assert_eq!(address_of("http://h:1/metrics").unwrap(), "h:1");
        assert_eq!(address_of("h:2").unwrap(), "h:2");
        assert!(address_of("https://h:1").is_err());
        assert!(address_of("h").is_err());
    }

    #[test]
    fn table_has_a_row_per_device() {
        let device = |name: &str, state: &str, error: Option<&str>| DeviceStatus {
            gateway: "gw".into(),
            device_type: "sim".into(),
            device: name.into(),
            state: state.into(),
            enabled: true,
            events_in: 3,
            events_out: 12,
            queue_depth: 0,
            queue_high_water: 1,
            dropped: 0,
            create_failures: 0,
            restarts: 1,
            seconds_since_last_event: Some(0.25),
            last_error: error.map(str::to_owned),
        };
        let status = Status {
            gateway: "gw".into(),
            connected: true,
            reconnects: 0,
            uptime_seconds: 5.0,
            devices: vec![
                device("a", "running", None),
                device("b", "failed", Some("device error: boom")),
            ],
        };
        let mut out = Vec::new();
        print(&status, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[1].starts_with("DEVICE"));
        assert!(
            lines[2].starts_with("sim/a   running  3   12   1"),
            "{text}"
        );
        assert!(lines[3].ends_with("device error: boom"), "{text}");
        assert!(any_failed(&status));
    }
}
