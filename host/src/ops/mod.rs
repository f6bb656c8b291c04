//! Operating the daemon: the metrics endpoint (`metrics` in the main configuration:
//! Prometheus metrics, `/health`, `/ready`, `/status`), systemd's notify protocol,
//! and the `gateway-host status` client.
//!
//! - [`metrics`]: the process's counters and gauges, updated with relaxed atomics
//!   on the engine's paths and encoded at each scrape;
//! - [`http`]: the HTTP/1 server that serves them;
//! - [`notify`]: `READY=1`, `STATUS=`, `WATCHDOG=1`, `STOPPING=1`;
//! - [`status`]: the command that reads `/status` and prints a table.

pub mod http;
pub mod metrics;
pub mod notify;
mod process;
pub mod status;

use std::time::Duration;

use serde::Deserialize;

/// Default address of the metrics endpoint: loopback only.
pub const DEFAULT_METRICS_HOST: &str = "127.0.0.1";
/// Default `metrics.max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;
/// Default `metrics.max_request_bytes` (request line and headers).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 16 * 1024;
/// Default `metrics.request_timeout`.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the embedded server's counts are sampled for the metrics.
pub const EMBEDDED_SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// The `metrics` section: where the endpoint listens and its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Address to listen on.
    pub host: String,
    /// TCP port (0: any free port).
    pub port: u16,
    /// Open connections at most; a further one is closed at once.
    pub max_connections: usize,
    /// Request line and headers at most, in bytes (431 beyond).
    pub max_request_bytes: usize,
    /// Time a connection may take to send a request's headers.
    pub request_timeout: Duration,
}

impl MetricsConfig {
    /// The endpoint on `host:port` with the default limits.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// Reads the `metrics` section of a main configuration (already validated against
    /// the main schema); `Ok(None)` without one.
    pub fn from_document(doc: &serde_json::Value) -> Result<Option<Self>, String> {
        #[derive(Deserialize)]
        struct Document {
            host: Option<String>,
            port: u16,
            max_connections: Option<usize>,
            max_request_bytes: Option<usize>,
            request_timeout: Option<f64>,
        }
        let Some(section) = doc.get("metrics") else {
            return Ok(None);
        };
        let document = Document::deserialize(section).map_err(|err| err.to_string())?;
        let mut config = Self::new(
            document
                .host
                .unwrap_or_else(|| DEFAULT_METRICS_HOST.to_owned()),
            document.port,
        );
        if let Some(max) = document.max_connections {
            config.max_connections = max;
        }
        if let Some(max) = document.max_request_bytes {
            config.max_request_bytes = max;
        }
        if let Some(seconds) = document.request_timeout {
            config.request_timeout =
                Duration::try_from_secs_f64(seconds).map_err(|err| err.to_string())?;
        }
        Ok(Some(config))
    }
}

/// Publishes the embedded server's stored events, event types and connections to
/// the metrics every [`EMBEDDED_SAMPLE_INTERVAL`] until the task is dropped;
/// `tcp_connections` counts the TCP side's connections.
pub(crate) async fn sample_embedded(
    server: crate::embedded::EmbeddedServer,
    tcp_connections: impl Fn() -> usize,
) {
    let mut interval = tokio::time::interval(EMBEDDED_SAMPLE_INTERVAL);
    loop {
        interval.tick().await;
        let stats = server.stats();
        metrics::global().set_embedded(
            stats.stored_events,
            stats.event_types,
            stats.local_connections + tcp_connections(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_section_defaults_and_limits() {
        let doc = serde_json::json!({"metrics": {"port": 9100}});
        let config = MetricsConfig::from_document(&doc).unwrap().unwrap();
        assert_eq!(config, MetricsConfig::new("127.0.0.1", 9100));
        let doc = serde_json::json!({"metrics": {"host": "::1", "port": 0,
            "max_connections": 2, "max_request_bytes": 9000, "request_timeout": 0.5}});
        let config = MetricsConfig::from_document(&doc).unwrap().unwrap();
        assert_eq!(config.host, "::1");
        assert_eq!(config.max_connections, 2);
        assert_eq!(config.max_request_bytes, 9000);
        assert_eq!(config.request_timeout, Duration::from_millis(500));
        assert_eq!(
            MetricsConfig::from_document(&serde_json::json!({})),
            Ok(None)
        );
    }
}
