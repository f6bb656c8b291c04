//! The Modbus slave device: start-up values, the owner of the connection table
//! (`gateway/connections`), request handling and the write round trip through
//! `gateway/write` / `system/write`. Independent of the plugin SDK: it talks to the
//! event server through the event-client contract ([`gateway_model::EventClient`]: the
//! SDK client in the plugin, a recorder in tests) and receives events through
//! [`SlaveDevice::process_event`].

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use gateway_model::{Event, EventClient, EventType, QueryLatestParams, QueryParams, RegisterEvent};
use modbus::{decode_request, encode_response, Adu, ExceptionCode, Reply};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::{ConfigError, SlaveConfig, TransportConfig};
use crate::data::{AfterWrite, DataMap, Plan, WriteData};
use crate::events::{ConnectionEntry, EventTypes, SystemEvent};
use crate::transport;

/// Capacity of the queue from the serial task to the device task (a master seen or
/// gone on the line). Each serial task has at most one change in flight per request.
pub const SERIAL_EVENT_CAPACITY: usize = 16;

/// Pause after a failed `accept` (for example when out of file descriptors).
pub const ACCEPT_ERROR_DELAY: std::time::Duration = std::time::Duration::from_millis(100);

/// Why a device could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The configuration was rejected.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The listening socket could not be opened.
    #[error("listening on {address} failed: {source}")]
    Listen {
        /// `host:port`.
        address: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The serial port could not be opened.
    #[error(transparent)]
    Serial(#[from] transport::SerialError),
}

/// Change of the serial line's connection, from the serial task.
#[derive(Debug)]
pub enum SerialChange {
    /// A master's first request since the line was idle.
    Opened(u64),
    /// No request within `keep_alive_timeout`, or the port failed.
    Closed(u64),
}

/// State shared by the device task, its connections and `process_event`.
pub struct Shared {
    /// Validated configuration.
    pub config: SlaveConfig,
    types: EventTypes,
    client: Arc<dyn EventClient>,
    data: Mutex<DataMap>,
    /// Writes waiting for their `system/write`: at most one per connection, since each
    /// connection handles one request at a time.
    pending: Mutex<HashMap<String, oneshot::Sender<bool>>>,
    request_prefix: String,
    next_request: AtomicU64,
    next_connection: AtomicU64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("types", &self.types)
            .field("request_prefix", &self.request_prefix)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Registers events; a failure is logged (the host notices a dead event client).
    pub async fn register(&self, events: Vec<RegisterEvent>) {
        if let Err(err) = self.client.register(events).await {
            tracing::warn!(error = %err, "registering events failed");
        }
    }

    /// A fresh connection id (from 1).
    pub fn connection_id(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn data(&self) -> MutexGuard<'_, DataMap> {
        // A panic while holding the lock cannot leave the map half-updated in a way
        // that matters more than stopping would: keep serving.
        self.data
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<String, oneshot::Sender<bool>>> {
        self.pending
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Handles one request ADU. `None`: send nothing. `alive` is false when the
    /// request does not count as a sign of life (unknown unit id, as hat has it).
    pub async fn handle(&self, connection_id: u64, serial: bool, adu: &Adu) -> Handled {
        let function = adu.pdu.first().copied().unwrap_or(0) & 0x7F;
        let refuse = |why: &'static str| {
            tracing::debug!(unit = adu.unit, why, "request not served");
            let reply = (!serial).then(|| pdu(function, &Err(ExceptionCode::ILLEGAL_DATA_ADDRESS)));
            Handled {
                reply,
                alive: false,
            }
        };
        if adu.unit == 0 {
            return refuse("broadcast not supported");
        }
        if !self.data().has_device(adu.unit) {
            return refuse("device id not configured");
        }
        let request = match decode_request(&adu.pdu) {
            Ok(request) => request,
            Err(bad) => {
                tracing::info!(unit = adu.unit, error = %bad, "bad request");
                return Handled {
                    reply: Some(pdu(bad.function & 0x7F, &Err(bad.exception))),
                    alive: true,
                };
            }
        };
        tracing::trace!(unit = adu.unit, ?request, "request");
        let plan = self.data().plan(adu.unit, &request);
        let reply = match plan {
            Plan::Answer(reply) => reply,
            Plan::Write { data, then } => {
                if self.write_round_trip(connection_id, &data).await {
                    match then {
                        AfterWrite::Echo(echo) => Ok(echo),
                        AfterWrite::Read { address, quantity } => self.data().read(
                            adu.unit,
                            crate::config::DataType::HoldingRegister,
                            address,
                            quantity,
                        ),
                    }
                } else {
                    Err(ExceptionCode::SERVER_DEVICE_FAILURE)
                }
            }
        };
        Handled {
            reply: Some(pdu(request.function(), &reply)),
            alive: true,
        }
    }

    /// Registers `gateway/write` and waits for its `system/write`. True on success.
    async fn write_round_trip(&self, connection_id: u64, data: &[WriteData]) -> bool {
        let n = self.next_request.fetch_add(1, Ordering::Relaxed) + 1;
        let request_id = format!("{}_{n}", self.request_prefix);
        let (done, result) = oneshot::channel();
        self.pending().insert(request_id.clone(), done);
        self.register(vec![self.types.write(&request_id, connection_id, data)])
            .await;
        let timeout = self.config.transport.response_timeout();
        match tokio::time::timeout(timeout, result).await {
            Ok(Ok(success)) => success,
            Ok(Err(_dropped)) => false,
            Err(_elapsed) => {
                self.pending().remove(&request_id);
                tracing::warn!(request_id, "write response timeout");
                false
            }
        }
    }
}

/// The outcome of one request.
#[derive(Debug)]
pub struct Handled {
    /// Response PDU to send, if any.
    pub reply: Option<Vec<u8>>,
    /// Whether the request resets the keep-alive timer.
    pub alive: bool,
}

fn pdu(function: u8, reply: &Reply) -> Vec<u8> {
    let mut out = Vec::with_capacity(8);
    encode_response(function, reply, &mut out);
    out
}

/// A running Modbus slave device.
pub struct SlaveDevice {
    shared: Arc<Shared>,
    local_addr: Option<SocketAddr>,
    cancel: CancellationToken,
    finished: CancellationToken,
}

impl std::fmt::Debug for SlaveDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlaveDevice")
            .field("shared", &self.shared)
            .field("local_addr", &self.local_addr)
            .field("cancelled", &self.cancel.is_cancelled())
            .field("finished", &self.finished.is_cancelled())
            .finish()
    }
}

impl SlaveDevice {
    /// Validates `conf`, reads the latest `system/data` values, registers the empty
    /// connection list and starts listening (TCP) or serving the port (serial).
    pub async fn create(
        conf: &Value,
        prefix: EventType,
        client: Arc<dyn EventClient>,
    ) -> Result<Self, CreateError> {
        let config = SlaveConfig::from_json(conf)?;
        let types = EventTypes::new(prefix);
        let mut data = DataMap::new(&config.data);
        let query = QueryParams::Latest(QueryLatestParams {
            event_types: Some(vec![types.data_query()]),
        });
        match client.query(query).await {
            Ok(result) => {
                for event in result.events {
                    match types.parse_system(&event) {
                        Ok(SystemEvent::Data { name, value }) => {
                            if let Err(err) = data.set(&name, &value) {
                                tracing::debug!(error = %err, "skipping initial data");
                            }
                        }
                        Ok(_) => {}
                        Err(reason) => tracing::debug!(reason, "skipping initial data"),
                    }
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "initial data query failed; values start at 0")
            }
        }
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let shared = Arc::new(Shared {
            types,
            client,
            data: Mutex::new(data),
            pending: Mutex::new(HashMap::new()),
            request_prefix: format!("{nanos:x}-{:x}", std::process::id()),
            next_request: AtomicU64::new(0),
            next_connection: AtomicU64::new(0),
            config,
        });
        shared.register(vec![shared.types.connections(&[])]).await;
        let span = tracing::info_span!("modbus_slave", device = %shared.config.name);
        let cancel = CancellationToken::new();
        let finished = CancellationToken::new();
        let guard = finished.clone().drop_guard();
        let (source, local_addr) = match &shared.config.transport {
            TransportConfig::Tcp(tcp) => {
                let address = format!("{}:{}", tcp.local_host, tcp.local_port);
                let listener = TcpListener::bind((tcp.local_host.as_str(), tcp.local_port))
                    .await
                    .map_err(|source| CreateError::Listen {
                        address: address.clone(),
                        source,
                    })?;
                let local = listener.local_addr().ok();
                tracing::info!(parent: &span, ?local, "listening");
                (Source::Tcp(listener), local)
            }
            TransportConfig::Serial(serial) => {
                let port = transport::open_serial(serial)?;
                (Source::Serial(port), None)
            }
        };
        let task_shared = shared.clone();
        let task_cancel = cancel.clone();
        tokio::spawn(
            async move {
                // Marks the device finished however the task ends (also on panic).
                let _guard = guard;
                run(task_shared, source, task_cancel).await;
            }
            .instrument(span),
        );
        Ok(Self {
            shared,
            local_addr,
            cancel,
            finished,
        })
    }

    /// The TCP listener's address (`None` on serial).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// Takes one event: `system/data/<name>` updates the table, `system/write`
    /// answers a pending write. Anything else is logged and ignored.
    pub async fn process_event(&self, event: Event) {
        match self.shared.types.parse_system(&event) {
            Ok(SystemEvent::Data { name, value }) => {
                if let Err(err) = self.shared.data().set(&name, &value) {
                    tracing::warn!(error = %err, "ignoring data event");
                }
            }
            Ok(SystemEvent::WriteResult {
                request_id,
                success,
            }) => match self.shared.pending().remove(&request_id) {
                Some(done) => {
                    // The request may have timed out just now; nothing to do then.
                    let _ = done.send(success);
                }
                None => tracing::warn!(request_id, "unrecognized request_id"),
            },
            Err(reason) => {
                tracing::warn!(event_type = ?event.event_type, reason, "ignoring event")
            }
        }
    }

    /// Closes the listener and every connection, registers the empty connection list
    /// and waits until all of it is done. Idempotent.
    pub async fn close(&self) {
        self.cancel.cancel();
        self.finished.cancelled().await;
    }

    /// Resolves when the device has ended.
    pub async fn closed(&self) {
        self.finished.cancelled().await;
    }
}

enum Source {
    Tcp(TcpListener),
    Serial(tokio_serial::SerialStream),
}

/// The device task: owns the connection table and every connection task.
async fn run(shared: Arc<Shared>, source: Source, cancel: CancellationToken) {
    let mut table: BTreeMap<u64, ConnectionEntry> = BTreeMap::new();
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut task_ids: HashMap<tokio::task::Id, u64> = HashMap::new();
    let (serial_tx, mut serial_rx) = mpsc::channel(SERIAL_EVENT_CAPACITY);
    let listener = match source {
        Source::Tcp(listener) => Some(listener),
        Source::Serial(port) => {
            let serial_conf = match &shared.config.transport {
                TransportConfig::Serial(serial) => Some(serial.clone()),
                TransportConfig::Tcp(_) => None,
            };
            if let Some(conf) = serial_conf {
                let task = transport::serve_serial(
                    shared.clone(),
                    port,
                    conf,
                    serial_tx.clone(),
                    cancel.child_token(),
                );
                tasks.spawn(task.in_current_span());
            }
            None
        }
    };
    drop(serial_tx);
    let tcp = match &shared.config.transport {
        TransportConfig::Tcp(tcp) => Some(tcp.clone()),
        TransportConfig::Serial(_) => None,
    };
    loop {
        let changed = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = accept(listener.as_ref()) => {
                let Some(tcp) = &tcp else { continue };
                match accepted {
                    Ok((stream, remote)) => {
                        if let Some(allowed) = &tcp.remote_hosts {
                            if !allowed.iter().any(|h| *h == remote.ip().to_string()) {
                                tracing::warn!(%remote, "connection closed: remote host not allowed");
                                continue;
                            }
                        }
                        if tcp.max_connections.is_some_and(|max| table.len() >= max) {
                            tracing::info!(%remote, "connection closed: max connections exceeded");
                            continue;
                        }
                        let Ok(local) = stream.local_addr() else { continue };
                        let id = shared.connection_id();
                        table.insert(id, ConnectionEntry::Tcp { id, local, remote });
                        let span = tracing::info_span!("connection", id, %remote);
                        let task = transport::serve_tcp(shared.clone(), id, stream, tcp.keep_alive_timeout, cancel.child_token());
                        let handle = tasks.spawn(task.instrument(span));
                        task_ids.insert(handle.id(), id);
                        true
                    }
                    Err(err) => {
                        // E.g. out of file descriptors: pause instead of spinning.
                        tracing::warn!(error = %err, "accept failed");
                        tokio::select! {
                            _ = cancel.cancelled() => break,
                            () = tokio::time::sleep(ACCEPT_ERROR_DELAY) => {}
                        }
                        false
                    }
                }
            }
            Some(change) = serial_rx.recv() => match change {
                SerialChange::Opened(id) => table.insert(id, ConnectionEntry::Serial { id }).is_none(),
                SerialChange::Closed(id) => table.remove(&id).is_some(),
            },
            Some(ended) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                let task_id = match &ended {
                    Ok((id, ())) => *id,
                    Err(err) => {
                        tracing::error!(error = %err, "connection task failed");
                        err.id()
                    }
                };
                task_ids.remove(&task_id).is_some_and(|conn| table.remove(&conn).is_some())
            }
        };
        if changed {
            let entries: Vec<ConnectionEntry> = table.values().cloned().collect();
            shared
                .register(vec![shared.types.connections(&entries)])
                .await;
        }
    }
    // Nobody waits on the serial queue any more: a task sending to it gets an error.
    drop(serial_rx);
    drop(listener);
    while tasks.join_next().await.is_some() {}
    if !table.is_empty() {
        shared.register(vec![shared.types.connections(&[])]).await;
    }
}

/// Accepts on `listener`; pending forever without one. Cancel safe.
async fn accept(
    listener: Option<&TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}
