//! The IEC 104 slave device: one task owns the station state (current values, buffers,
//! connections) and serves the listener, the `system/...` events and what the
//! connection tasks report. Independent of the plugin SDK: it talks to the event
//! server through [`EventClient`] (the SDK client in the plugin, a recorder in tests) and
//! receives events through
//! [`SlaveDevice::process_event`].

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use gateway_model::{ClientError, Event, EventClient, EventId, EventType, RegisterEvent};
use iec60870::asdu::{AsduCodec, Profile};
use iec60870::types::{DataMsg, Msg};
use iec_common::{DataKey, DataType};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::buffer::Buffer;
use crate::config::{ConfigError, SlaveConfig};
use crate::connection::{self, ConnEvent, ConnEventKind, Outgoing};
use crate::events::{ConnectionEntry, ConnectionId, EventTypes, SystemEvent};
use crate::station::{react, DataTable, Reaction};

/// Capacity of the queue between `process_event` and the device task. The host's own
/// device queue is bounded too; this one only smooths hand-over.
pub const DEVICE_EVENT_CAPACITY: usize = 1024;

/// Capacity of the queue from all connection tasks to the device task: received
/// messages wait here, so a master that floods requests is slowed down at its socket.
pub const CONNECTION_EVENT_CAPACITY: usize = 256;

/// ASDUs queued inside one connection beyond its k window. Small on purpose: values
/// waiting in the device's own queue are still packed together (many points per
/// ASDU), values handed to the connection are not.
pub const LINK_SEND_QUEUE_SIZE: usize = 32;

/// The broadcast ASDU address of IEC 104 (two-octet addresses): an interrogation of it
/// covers every ASDU address.
const BROADCAST_ASDU_ADDRESS: iec60870::types::AsduAddress = 0xFFFF;

/// Pause after the listener failed to accept.
pub const ACCEPT_ERROR_DELAY: std::time::Duration = std::time::Duration::from_millis(100);

/// Why a device could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The configuration was rejected.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The start-up query of the current values failed.
    #[error("querying the latest system/data events: {0}")]
    Query(ClientError),
    /// The listening socket could not be opened.
    #[error("listening on {addr}: {source}")]
    Listen {
        /// `local_host:local_port`.
        addr: String,
        /// The socket error.
        source: std::io::Error,
    },
}

/// A running IEC 104 slave device.
pub struct SlaveDevice {
    events: mpsc::Sender<Event>,
    local_addr: SocketAddr,
    cancel: CancellationToken,
    finished: CancellationToken,
}

impl std::fmt::Debug for SlaveDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlaveDevice")
            .field("local_addr", &self.local_addr)
            .field("finished", &self.finished.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl SlaveDevice {
    /// Validates `conf` (the whole device entry), reads the current values from the
    /// event server, listens and starts the device task.
    pub async fn create(
        conf: &Value,
        prefix: EventType,
        client: Arc<dyn EventClient>,
    ) -> Result<Self, CreateError> {
        let config = SlaveConfig::from_json(conf)?;
        let types = EventTypes::new(prefix);
        let mut station = Station::new(&config, types, client);
        station.load_current_values().await?;

        let addr = if config.local_host.contains(':') {
            // An IPv6 literal such as `::`.
            format!("[{}]:{}", config.local_host, config.local_port)
        } else {
            format!("{}:{}", config.local_host, config.local_port)
        };
        let listen_err = |source| CreateError::Listen {
            addr: addr.clone(),
            source,
        };
        let socket_addr = tokio::net::lookup_host(&addr)
            .await
            .map_err(listen_err)?
            .next()
            .ok_or_else(|| listen_err(std::io::ErrorKind::AddrNotAvailable.into()))?;
        let listener = iec104::Listener::bind(socket_addr, connection_config(&config))
            .await
            .map_err(listen_err)?;
        let local_addr = listener.local_addr();
        station.register_connections().await;

        let (events, event_rx) = mpsc::channel(DEVICE_EVENT_CAPACITY);
        let cancel = CancellationToken::new();
        let finished = CancellationToken::new();
        let span = tracing::info_span!("iec104_slave", device = %config.name, %local_addr);
        let guard = finished.clone().drop_guard();
        let task_cancel = cancel.clone();
        tokio::spawn(
            async move {
                // Marks the device finished however the task ends (also on panic).
                let _guard = guard;
                station.run(listener, event_rx, task_cancel).await;
            }
            .instrument(span),
        );
        Ok(Self {
            events,
            local_addr,
            cancel,
            finished,
        })
    }

    /// The address the device listens on (with the real port when `local_port` is 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Hands one event to the device. Malformed events are logged and ignored there.
    pub async fn process_event(&self, event: Event) {
        if self.events.send(event).await.is_err() {
            tracing::debug!("device closed; event dropped");
        }
    }

    /// Closes the listener and every connection and waits until the task ended.
    /// Idempotent.
    pub async fn close(&self) {
        self.cancel.cancel();
        self.finished.cancelled().await;
    }

    /// Resolves when the device task has ended (closed, or panicked).
    pub async fn closed(&self) {
        self.finished.cancelled().await;
    }
}

impl Drop for SlaveDevice {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn connection_config(config: &SlaveConfig) -> iec104::ConnectionConfig {
    iec104::ConnectionConfig {
        response_timeout: config.response_timeout(),
        supervisory_timeout: config.supervisory_timeout(),
        test_timeout: config.test_timeout(),
        // Both in 1..=32767 by `SlaveConfig::check`.
        send_window_size: config.send_window_size as u16,
        receive_window_size: config.receive_window_size as u16,
        send_queue_size: LINK_SEND_QUEUE_SIZE,
        ..iec104::ConnectionConfig::default()
    }
}

/// One connection as the device task sees it.
struct Conn {
    entry: ConnectionEntry,
    out: mpsc::Sender<Outgoing>,
    enabled: bool,
    cancel: CancellationToken,
}

/// Where a buffered value sits: buffer index and event id.
pub type BufferRef = (usize, EventId);

/// The state the device task owns.
struct Station {
    types: EventTypes,
    client: Arc<dyn EventClient>,
    codec: AsduCodec,
    remote_hosts: Option<Vec<String>>,
    max_connections: Option<usize>,
    send_queue_size: usize,
    table: DataTable,
    buffers: Vec<Buffer<DataMsg>>,
    data_buffers: HashMap<DataKey, usize>,
    conns: BTreeMap<ConnectionId, Conn>,
    next_id: ConnectionId,
}

impl Station {
    fn new(config: &SlaveConfig, types: EventTypes, client: Arc<dyn EventClient>) -> Self {
        let buffer_index: HashMap<&str, usize> = config
            .buffers
            .iter()
            .enumerate()
            .map(|(i, b)| (b.name.as_str(), i))
            .collect();
        let mut keys = Vec::with_capacity(config.data.len());
        let mut data_buffers = HashMap::new();
        for data in &config.data {
            // Names, addresses and buffers are checked by `SlaveConfig::check`.
            let Some(data_type) = DataType::from_conf_name(&data.data_type) else {
                continue;
            };
            let key = DataKey {
                data_type,
                asdu_address: data.asdu_address as u16,
                io_address: data.io_address as u32,
            };
            keys.push(key);
            if let Some(i) = data.buffer.as_deref().and_then(|b| buffer_index.get(b)) {
                data_buffers.insert(key, *i);
            }
        }
        Self {
            types,
            client,
            codec: AsduCodec::new(Profile::iec104()),
            remote_hosts: config.remote_hosts.clone(),
            // Non-negative by `SlaveConfig::check`.
            max_connections: config.max_connections.map(|m| m as usize),
            send_queue_size: config.send_queue_size,
            table: DataTable::new(keys, BROADCAST_ASDU_ADDRESS),
            buffers: config
                .buffers
                .iter()
                // Non-negative by `SlaveConfig::check`.
                .map(|b| Buffer::new(b.size as usize))
                .collect(),
            data_buffers,
            conns: BTreeMap::new(),
            next_id: 1,
        }
    }

    /// hat's `init_data`: the latest `system/data` event of every configured point.
    async fn load_current_values(&mut self) -> Result<(), CreateError> {
        let events = iec_common::client::query_latest(
            self.client.as_ref(),
            vec![self.types.system_data_query()],
        )
        .await
        .map_err(CreateError::Query)?;
        for event in events {
            match self.types.parse_system(&event) {
                Ok(SystemEvent::Data(key, msg)) if self.table.set(&key, msg) => {}
                Ok(_) => {
                    tracing::debug!(event_type = ?event.event_type, "skipping initial data: not configured")
                }
                Err(err) => {
                    tracing::debug!(event_type = ?event.event_type, error = %err, "skipping initial data")
                }
            }
        }
        Ok(())
    }

    async fn register(&self, events: Vec<RegisterEvent>) {
        if let Err(err) = self.client.register(events).await {
            tracing::warn!(error = %err, "registering events failed");
        }
    }

    async fn register_connections(&self) {
        let entries: Vec<ConnectionEntry> = self.conns.values().map(|c| c.entry).collect();
        self.register(vec![self.types.connections(&entries)]).await;
    }

    async fn run(
        mut self,
        listener: iec104::Listener,
        mut events: mpsc::Receiver<Event>,
        cancel: CancellationToken,
    ) {
        let (to_device, mut from_conns) = mpsc::channel(CONNECTION_EVENT_CAPACITY);
        loop {
            tokio::select! {
                // Cancellation first: connection tasks end with it (child tokens), and
                // their `Closed` reports belong to the shutdown below, which registers
                // the connection list once.
                biased;
                () = cancel.cancelled() => break,
                // Cancel-safe: a connection is only taken out of the backlog when
                // `accept` returns it.
                accepted = listener.accept() => match accepted {
                    Ok(conn) => self.accept(conn, &to_device, &cancel).await,
                    Err(err) => {
                        tracing::warn!(error = %err, "accepting a connection failed");
                        // A listener error (out of file descriptors, say) tends to
                        // repeat: pause instead of spinning on it.
                        tokio::time::sleep(ACCEPT_ERROR_DELAY).await;
                    }
                },
                Some(event) = events.recv() => self.process_event(event).await,
                Some(event) = from_conns.recv() => self.process_conn_event(event).await,
            }
        }
        let had_connections = !self.conns.is_empty();
        for conn in self.conns.values() {
            conn.cancel.cancel();
        }
        // Wait for every connection task to report its end, so no socket outlives
        // the device.
        while !self.conns.is_empty() {
            match from_conns.recv().await {
                Some(ConnEvent {
                    id,
                    kind: ConnEventKind::Closed,
                }) => {
                    self.conns.remove(&id);
                }
                Some(_) => {}
                None => break,
            }
        }
        // As hat: the list changes (and is registered) only if there were connections.
        if had_connections {
            self.register_connections().await;
        }
    }

    async fn accept(
        &mut self,
        conn: iec104::Connection,
        to_device: &mpsc::Sender<ConnEvent>,
        cancel: &CancellationToken,
    ) {
        let info = conn.info();
        let remote_ip = info.remote_addr.ip();
        // On a dual-stack listener an IPv4 master shows as `::ffff:a.b.c.d`; either
        // spelling in `remote_hosts` admits it.
        let spellings = [remote_ip.to_string(), remote_ip.to_canonical().to_string()];
        if let Some(allowed) = &self.remote_hosts {
            if !spellings.iter().any(|s| allowed.contains(s)) {
                tracing::warn!(remote = %info.remote_addr, "connection closed: remote host not allowed");
                conn.sender().close();
                return;
            }
        }
        if let Some(max) = self.max_connections {
            if self.conns.len() >= max {
                tracing::info!(remote = %info.remote_addr, max, "connection closed: max connections exceeded");
                conn.sender().close();
                return;
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        let (out, out_rx) = mpsc::channel(self.send_queue_size);
        let conn_cancel = cancel.child_token();
        let entry = ConnectionEntry {
            id,
            local: info.local_addr,
            remote: info.remote_addr,
        };
        self.conns.insert(
            id,
            Conn {
                entry,
                out,
                enabled: false,
                cancel: conn_cancel.clone(),
            },
        );
        let span = tracing::info_span!("connection", id, remote = %info.remote_addr);
        let task = tokio::spawn(
            connection::run(
                id,
                conn,
                out_rx,
                to_device.clone(),
                self.codec,
                // As many again as the queue holds wait in the connection task.
                self.send_queue_size,
                conn_cancel,
            )
            .instrument(span),
        );
        // `Closed` is reported however the task ended, so a panicking connection task
        // cannot leave a dead entry in `gateway/connections` (or a device close that
        // waits for it forever).
        let to_device = to_device.clone();
        tokio::spawn(async move {
            if let Err(err) = task.await {
                tracing::error!(id, error = %err, "connection task failed");
            }
            let _ = to_device
                .send(ConnEvent {
                    id,
                    kind: ConnEventKind::Closed,
                })
                .await;
        });
        tracing::info!(id, remote = %info.remote_addr, "master connected");
        self.register_connections().await;
    }

    async fn process_event(&mut self, event: Event) {
        match self.types.parse_system(&event) {
            Ok(SystemEvent::Data(key, msg)) => self.data_changed(key, event.id, msg),
            Ok(SystemEvent::Command(id, msg)) => {
                if self.conns.contains_key(&id) {
                    self.push(id, Outgoing::Reply(vec![vec![Msg::Command(msg)]]));
                } else {
                    tracing::warn!(
                        connection_id = id,
                        "command response for an unknown connection"
                    );
                }
            }
            Err(err) => {
                tracing::warn!(event_type = ?event.event_type, error = %err, "ignoring event");
            }
        }
    }

    /// hat's `_process_data_event`.
    fn data_changed(&mut self, key: DataKey, event_id: EventId, msg: DataMsg) {
        if !self.table.set(&key, msg) {
            tracing::warn!(?key, "ignoring data event: data not configured");
            return;
        }
        let ack = self.data_buffers.get(&key).map(|i| {
            self.buffers[*i].add(event_id, msg);
            (*i, event_id)
        });
        let enabled: Vec<ConnectionId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.enabled)
            .map(|(id, _)| *id)
            .collect();
        for id in enabled {
            self.push(id, Outgoing::Data { msg, ack });
        }
    }

    async fn process_conn_event(&mut self, event: ConnEvent) {
        let id = event.id;
        match event.kind {
            ConnEventKind::Received(msgs) => {
                for msg in msgs {
                    self.process_msg(id, msg).await;
                }
            }
            ConnEventKind::Enabled(enabled) => {
                let Some(conn) = self.conns.get_mut(&id) else {
                    return;
                };
                conn.enabled = enabled;
                if enabled {
                    // hat's `_on_enabled`: everything still buffered goes to the
                    // master that just started data transfer.
                    let values: Vec<(DataMsg, BufferRef)> = self
                        .buffers
                        .iter()
                        .enumerate()
                        .flat_map(|(i, buffer)| {
                            buffer
                                .iter()
                                .map(move |(event_id, msg)| (*msg, (i, *event_id)))
                        })
                        .collect();
                    if !values.is_empty() {
                        self.push(id, Outgoing::Buffered(values));
                    }
                }
            }
            ConnEventKind::Acked(refs) => {
                for (i, event_id) in refs {
                    if let Some(buffer) = self.buffers.get_mut(i) {
                        buffer.remove(&event_id);
                    }
                }
            }
            ConnEventKind::Closed => {
                if self.conns.remove(&id).is_some() {
                    tracing::info!(id, "master disconnected");
                    self.register_connections().await;
                }
            }
        }
    }

    async fn process_msg(&mut self, id: ConnectionId, msg: Msg) {
        tracing::trace!(?msg, "received message");
        match react(&self.table, msg) {
            Reaction::Reply(batches) => self.push(id, Outgoing::Reply(batches)),
            Reaction::Command(cmd) => match self.types.command(id, &cmd) {
                Ok(event) => self.register(vec![event]).await,
                Err(err) => tracing::warn!(error = %err, "command not registered"),
            },
            Reaction::Ignore(reason) => tracing::warn!(?msg, reason, "message ignored"),
        }
    }

    /// Queues `item` for connection `id`; a connection whose queue is full (its master
    /// stopped acknowledging) is closed, as hat's IEC 101 slave does.
    fn push(&mut self, id: ConnectionId, item: Outgoing) {
        let Some(conn) = self.conns.get(&id) else {
            return;
        };
        match conn.out.try_send(item) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(id, "send queue full: closing the connection");
                conn.cancel.cancel();
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}
