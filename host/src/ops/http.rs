//! The metrics endpoint's HTTP/1 server (hyper): `/metrics` (Prometheus text format),
//! `/health`, `/ready` and `/status` (JSON).
//!
//! Bounded: at most [`MetricsConfig::max_connections`] connections at once (a further
//! one is closed at once), request line and headers of at most
//! [`MetricsConfig::max_request_bytes`] (431 beyond), headers within
//! [`MetricsConfig::request_timeout`]; request bodies are never read. A malformed
//! request gets 400 from hyper and closes only its own connection.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::metrics::{self, Metrics};
use super::MetricsConfig;

/// The metrics endpoint could not listen.
#[derive(Debug, thiserror::Error)]
#[error("metrics endpoint cannot listen on {address}: {source}")]
pub struct BindError {
    /// `host:port` from the configuration.
    pub address: String,
    /// Why (address in use, permission denied, unknown host).
    #[source]
    pub source: std::io::Error,
}

/// A running metrics endpoint; stops when [`MetricsServer::close`] is called or the
/// value is dropped.
#[derive(Debug)]
pub struct MetricsServer {
    local_addr: SocketAddr,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl MetricsServer {
    /// Binds `config.host:config.port` and serves [`metrics::global`]. Must be called
    /// inside a tokio runtime.
    pub async fn bind(config: &MetricsConfig) -> Result<Self, BindError> {
        let address = format!("{}:{}", config.host, config.port);
        let listener = TcpListener::bind((config.host.as_str(), config.port))
            .await
            .map_err(|source| BindError {
                address: address.clone(),
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| BindError {
            address: address.clone(),
            source,
        })?;
        let cancel = CancellationToken::new();
        let task = tokio::spawn(serve(
            listener,
            config.clone(),
            metrics::global(),
            cancel.clone(),
        ));
        Ok(Self {
            local_addr,
            cancel,
            task,
        })
    }

    /// The bound address (the real port with `port: 0`).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting and closes every connection.
    pub async fn close(mut self) {
        self.cancel.cancel();
        let task = &mut self.task;
        if let Err(err) = task.await {
            tracing::error!(error = %err, "metrics endpoint task failed");
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn serve(
    listener: TcpListener,
    config: MetricsConfig,
    metrics: &'static Metrics,
    cancel: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.request_timeout)
        .max_header_size(config.max_request_bytes)
        .keep_alive(true);
    let clock = tokio::spawn(metrics::run_clock());
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors and the like: the next accept may work.
                tracing::warn!(error = %err, "metrics endpoint: accept failed");
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(std::time::Duration::from_millis(100)) => continue,
                }
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(
                %peer,
                max_connections = config.max_connections,
                "metrics endpoint: metrics.max_connections reached; connection closed"
            );
            drop(stream);
            continue;
        };
        let connection = http.serve_connection(
            TokioIo::new(stream),
            hyper::service::service_fn(move |request: Request<Incoming>| {
                let method = request.method().clone();
                let path = request.uri().path().to_owned();
                async move {
                    // Encoding 10,000 devices takes a while: off the runtime's
                    // worker threads, so a scrape never delays the devices.
                    let response =
                        tokio::task::spawn_blocking(move || respond(metrics, &method, &path))
                            .await
                            .unwrap_or_else(|_| internal_error());
                    Ok::<_, Infallible>(response)
                }
            }),
        );
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let _slot = slot;
            tokio::select! {
                () = cancel.cancelled() => {}
                result = connection => {
                    if let Err(err) = result {
                        tracing::debug!(%peer, error = %err, "metrics endpoint: connection ended");
                    }
                }
            }
        });
    }
    clock.abort();
}

fn respond(metrics: &'static Metrics, method: &Method, path: &str) -> Response<Full<Bytes>> {
    if method != Method::GET && method != Method::HEAD {
        return json(
            StatusCode::METHOD_NOT_ALLOWED,
            &serde_json::json!({"error": format!("method {method} not allowed: use GET")}),
        );
    }
    match path {
        "/metrics" => match metrics.encode() {
            Ok(text) => Response::builder()
                .header(
                    hyper::header::CONTENT_TYPE,
                    prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                )
                .body(Full::new(Bytes::from(text)))
                .unwrap_or_else(|_| internal_error()),
            Err(err) => {
                tracing::error!(error = %err, "metrics endpoint: encoding failed");
                internal_error()
            }
        },
        "/health" => {
            let status = metrics.status();
            json(
                StatusCode::OK,
                &serde_json::json!({
                    "status": "alive",
                    "gateway": status.gateway,
                    "pid": std::process::id(),
                    "uptime_seconds": status.uptime_seconds,
                }),
            )
        }
        "/ready" => {
            let readiness = metrics.readiness();
            let code = if readiness.ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            json(code, &readiness)
        }
        "/status" => json(StatusCode::OK, &metrics.status()),
        _ => json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({
                "error": format!("no such path {path:?}"),
                "paths": ["/metrics", "/health", "/ready", "/status"],
            }),
        ),
    }
}

fn json(code: StatusCode, body: &impl serde::Serialize) -> Response<Full<Bytes>> {
    let mut text = serde_json::to_string_pretty(body).unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    Response::builder()
        .status(code)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(text)))
        .unwrap_or_else(|_| internal_error())
}

fn internal_error() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(b"internal error\n")));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}
