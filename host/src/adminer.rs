//! hat-gateway's Adminer protocol: get and set the log configuration at run time over
//! Chatter, so hat's own adminer client (`hat.gateway.adminer`) works against us.
//!
//! Messages (SBS module `HatGatewayAdminer`): `MsgGetLogConfReq` (`None`) is answered
//! by `MsgGetLogConfRes` (`Response(String)`: the current configuration as JSON
//! text), `MsgSetLogConfReq` (`String`: a Python `logging.dictConfig` document as
//! JSON text) by `MsgSetLogConfRes` (`Response(None)`), where `Response(T)` is the
//! choice `success: T | error: String`. The answer is a reply in the request's
//! conversation. A `set` maps the document onto the tracing filter as the
//! configuration's hat `log` section is mapped (`config::hat`: the root level, a level
//! per logger that has a counterpart here) and replaces the filter; `get` returns the document last set (or one made from the
//! configured filter). Any other message type ends the connection, as in hat.
//!
//! The server runs only when the configuration has `adminer_server: {host, port}`
//! (hat's key; hat's default port is [`DEFAULT_PORT`]). It has no authentication,
//! like hat's: keep it on loopback. Its limits ([`AdminerConfig`]) are the optional
//! keys `max_connections` and `max_frame_bytes` of that section (not in hat's schema).

use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use gateway_eventer::chatter::{FrameCodec, Msg, MsgHeader};
use gateway_eventer::sbs::{Reader, Writer};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::logging;

/// hat-gateway's default Adminer port (`adminer_server.port`).
pub const DEFAULT_PORT: u16 = 23016;

/// Default largest frame body accepted, in bytes (`max_frame_bytes`): a logging
/// configuration is a few KiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 1024 * 1024;

/// Default number of connections served at once (`max_connections`); more are closed
/// at once with a warning.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;

/// The `adminer_server` section: where the server listens and its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminerConfig {
    /// Address to listen on.
    pub host: String,
    /// TCP port (0: any free port, logged at start).
    pub port: u16,
    /// Connections served at once; a further one is closed at once.
    pub max_connections: usize,
    /// Largest frame body accepted; a larger frame ends its connection.
    pub max_frame_bytes: usize,
}

impl AdminerConfig {
    /// `host:port` with the default limits.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
        }
    }

    /// `host:port`, the address to bind.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// How long the `log-level` client waits for the connection and for each answer.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

const GET_REQ: &str = "HatGatewayAdminer.MsgGetLogConfReq";
const GET_RES: &str = "HatGatewayAdminer.MsgGetLogConfRes";
const SET_REQ: &str = "HatGatewayAdminer.MsgSetLogConfReq";
const SET_RES: &str = "HatGatewayAdminer.MsgSetLogConfRes";

/// A listening Adminer server.
#[derive(Debug)]
pub struct AdminerServer {
    local_addr: std::net::SocketAddr,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl AdminerServer {
    /// Listens on `config`'s address. Fails when the address cannot be bound.
    pub async fn listen(config: &AdminerConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(config.addr()).await?;
        let local_addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let task = tokio::spawn(
            accept_loop(listener, config.clone(), cancel.clone())
                .instrument(tracing::info_span!("adminer", addr = %local_addr)),
        );
        tracing::info!(addr = %local_addr, "adminer server listening");
        Ok(Self {
            local_addr,
            cancel,
            task,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.local_addr
    }

    /// Stops listening and ends every connection.
    pub async fn close(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

async fn accept_loop(listener: TcpListener, config: AdminerConfig, cancel: CancellationToken) {
    let slots = std::sync::Arc::new(Semaphore::new(config.max_connections));
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!(error = %err, "adminer accept failed");
                // E.g. out of file descriptors: do not spin.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(
                %peer,
                limit = config.max_connections,
                "adminer connection refused: too many (adminer_server.max_connections)"
            );
            continue;
        };
        let cancel = cancel.clone();
        let max_frame_bytes = config.max_frame_bytes;
        tokio::spawn(
            async move {
                let _slot = slot;
                if let Err(reason) = serve(stream, max_frame_bytes, cancel).await {
                    tracing::warn!(%reason, "adminer connection ended");
                }
            }
            .instrument(tracing::info_span!("adminer_connection", %peer)),
        );
    }
}

/// Serves one connection until the peer closes it, `cancel`, or bad input (the
/// error says what).
async fn serve(
    stream: TcpStream,
    max_frame_bytes: usize,
    cancel: CancellationToken,
) -> Result<(), String> {
    let mut framed = Framed::new(stream, FrameCodec::new(max_frame_bytes));
    let mut next_id: i64 = 0;
    loop {
        let frame = tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            frame = framed.next() => frame,
        };
        let msg = match frame {
            None => return Ok(()),
            Some(Ok(msg)) => msg,
            Some(Err(err)) => return Err(err.to_string()),
        };
        next_id += 1;
        let reply = if msg.is_ping() {
            Msg::pong(next_id, msg.id)
        } else if msg.is_pong() {
            next_id -= 1;
            continue;
        } else {
            let (res_type, data) = match msg.data_type.as_str() {
                GET_REQ => (GET_RES, response(get(&msg.data).map(Some))),
                SET_REQ => (SET_RES, response(set(&msg.data).map(|()| None))),
                other => return Err(format!("unsupported message type {other:?}")),
            };
            Msg::new(MsgHeader::reply(next_id, msg.first, true), res_type, data)
        };
        framed.send(&reply).await.map_err(|err| err.to_string())?;
    }
}

/// `MsgGetLogConfReq` (`None`: no bytes): the configuration in force as JSON text.
fn get(data: &[u8]) -> Result<String, String> {
    Reader::new(data).finish().map_err(|err| err.to_string())?;
    Ok(logging::current_dict_config().to_string())
}

/// `MsgSetLogConfReq` (`String`, JSON text): maps and applies it.
fn set(data: &[u8]) -> Result<(), String> {
    let mut reader = Reader::new(data);
    let text = reader.string().map_err(|err| err.to_string())?;
    reader.finish().map_err(|err| err.to_string())?;
    let dict: Value = serde_json::from_str(&text)
        .map_err(|err| format!("the logging configuration is not JSON: {err}"))?;
    let (directives, warnings) = crate::config::hat_log_directives(&dict)?;
    logging::set_directives(&directives, Some(dict)).map_err(|err| err.to_string())?;
    tracing::info!(%directives, "log filter set through the adminer");
    for warning in warnings {
        tracing::warn!("adminer set: {warning}");
    }
    Ok(())
}

/// `Response(T)`: `success` (index 0) with the string when there is one, or `error`
/// (index 1) with the reason.
fn response(result: Result<Option<String>, String>) -> Bytes {
    let mut out = Vec::new();
    match result {
        Ok(value) => {
            out.put_choice(0);
            if let Some(value) = value {
                out.put_str(&value);
            }
        }
        Err(reason) => {
            out.put_choice(1);
            out.put_str(&reason);
        }
    }
    Bytes::from(out)
}

/// Why the Adminer client failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminerError {
    /// The connection failed, timed out or broke.
    #[error("adminer at {addr}: {reason}")]
    Connection {
        /// The server's address.
        addr: String,
        /// What happened.
        reason: String,
    },
    /// The server answered with an error.
    #[error("adminer at {addr} refused: {reason}")]
    Refused {
        /// The server's address.
        addr: String,
        /// The server's reason.
        reason: String,
    },
}

/// Gets the log configuration (a dictConfig document) of the gateway at `addr`.
pub async fn get_log_conf(addr: &str) -> Result<Value, AdminerError> {
    let answer = request(addr, GET_REQ, Bytes::new(), GET_RES, true).await?;
    let text = answer.unwrap_or_default();
    serde_json::from_str(&text).map_err(|err| AdminerError::Connection {
        addr: addr.to_owned(),
        reason: format!("the answer is not JSON: {err}"),
    })
}

/// Sets the log configuration (a dictConfig document) of the gateway at `addr`.
pub async fn set_log_conf(addr: &str, conf: &Value) -> Result<(), AdminerError> {
    let mut data = Vec::new();
    data.put_str(&conf.to_string());
    request(addr, SET_REQ, Bytes::from(data), SET_RES, false)
        .await
        .map(|_| ())
}

/// One request and its answer, on a connection of its own.
async fn request(
    addr: &str,
    req_type: &str,
    data: Bytes,
    res_type: &str,
    has_value: bool,
) -> Result<Option<String>, AdminerError> {
    let fail = |reason: String| AdminerError::Connection {
        addr: addr.to_owned(),
        reason,
    };
    let exchange = async {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|err| fail(err.to_string()))?;
        let mut framed = Framed::new(stream, FrameCodec::new(DEFAULT_MAX_FRAME_BYTES));
        let msg = Msg::new(MsgHeader::new_conversation(1, false), req_type, data);
        framed
            .send(&msg)
            .await
            .map_err(|err| fail(err.to_string()))?;
        let mut next_id = 1;
        loop {
            let answer = match framed.next().await {
                None => return Err(fail("closed without an answer".into())),
                Some(Err(err)) => return Err(fail(err.to_string())),
                Some(Ok(answer)) => answer,
            };
            if answer.is_ping() {
                next_id += 1;
                let pong = Msg::pong(next_id, answer.id);
                framed
                    .send(&pong)
                    .await
                    .map_err(|err| fail(err.to_string()))?;
                continue;
            }
            if answer.is_pong() || answer.first != 1 || answer.owner {
                continue;
            }
            if answer.data_type != res_type {
                return Err(fail(format!("unexpected answer {:?}", answer.data_type)));
            }
            let mut reader = Reader::new(&answer.data);
            let decoded = match reader.choice(2, "Response") {
                Ok(0) if has_value => reader.string().map(|s| Ok(Some(s))),
                Ok(0) => Ok(Ok(None)),
                Ok(_) => reader.string().map(Err),
                Err(err) => Err(err),
            };
            let result = decoded.map_err(|err| fail(err.to_string()))?;
            reader.finish().map_err(|err| fail(err.to_string()))?;
            let _ = framed.close().await;
            return result.map_err(|reason| AdminerError::Refused {
                addr: addr.to_owned(),
                reason,
            });
        }
    };
    tokio::time::timeout(CLIENT_TIMEOUT, exchange)
        .await
        .map_err(|_| fail(format!("no answer within {CLIENT_TIMEOUT:?}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_sbs_choices() {
        // success (index 0 as an SBS Integer) then the String.
        let ok = response(Ok(Some("{}".into())));
        let mut reader = Reader::new(&ok);
        assert_eq!(reader.choice(2, "Response").unwrap(), 0);
        assert_eq!(reader.string().unwrap(), "{}");
        reader.finish().unwrap();
        assert_eq!(&response(Ok(None))[..], &[0x80]);
        let err = response(Err("bad".into()));
        let mut reader = Reader::new(&err);
        assert_eq!(reader.choice(2, "Response").unwrap(), 1);
        assert_eq!(reader.string().unwrap(), "bad");
    }

    /// Connects and sends a ping: the connection when it is answered with a pong,
    /// `None` when the server closes it instead.
    async fn ping(addr: std::net::SocketAddr) -> Option<Framed<TcpStream, FrameCodec>> {
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut framed = Framed::new(stream, FrameCodec::new(DEFAULT_MAX_FRAME_BYTES));
        let _ = framed.send(&Msg::ping(1)).await;
        match framed.next().await {
            Some(Ok(pong)) => {
                assert!(pong.is_pong(), "{pong:?}");
                Some(framed)
            }
            _ => None,
        }
    }

    /// A connection that is served.
    async fn served(addr: std::net::SocketAddr) -> Framed<TcpStream, FrameCodec> {
        ping(addr).await.expect("the connection was not served")
    }

    #[tokio::test]
    async fn max_connections_closes_a_connection_beyond_the_limit() {
        let mut config = AdminerConfig::new("127.0.0.1", 0);
        config.max_connections = 1;
        let server = AdminerServer::listen(&config).await.unwrap();
        let addr = server.local_addr();
        let first = served(addr).await;
        assert!(
            ping(addr).await.is_none(),
            "a connection beyond max_connections was served"
        );
        // Closing the first frees its slot once the server has seen its end.
        drop(first);
        let mut attempts = 0;
        while ping(addr).await.is_none() {
            attempts += 1;
            assert!(attempts < 1000, "the freed slot was never reused");
            tokio::task::yield_now().await;
        }
        server.close().await;
    }

    #[tokio::test]
    async fn a_frame_over_max_frame_bytes_ends_only_its_connection() {
        let mut config = AdminerConfig::new("127.0.0.1", 0);
        config.max_frame_bytes = 4096;
        let server = AdminerServer::listen(&config).await.unwrap();
        let addr = server.local_addr();
        let mut big = served(addr).await;
        let mut data = Vec::new();
        data.put_str(&"x".repeat(8192));
        let msg = Msg::new(
            MsgHeader::new_conversation(2, false),
            SET_REQ,
            Bytes::from(data),
        );
        let _ = big.send(&msg).await;
        assert!(
            !matches!(big.next().await, Some(Ok(_))),
            "a frame over max_frame_bytes was answered"
        );
        // The server itself carries on.
        drop(served(addr).await);
        server.close().await;
    }

    #[test]
    fn a_set_that_does_not_map_is_an_error_answer() {
        let mut data = Vec::new();
        data.put_str(r#"{"version": 1, "root": {"level": "LOUD"}}"#);
        let err = set(&data).unwrap_err();
        assert!(err.contains("LOUD"), "{err}");
        let mut data = Vec::new();
        data.put_str("not json");
        assert!(set(&data).unwrap_err().contains("not JSON"));
        assert!(get(&[1]).is_err(), "a get carries no data");
    }
}
