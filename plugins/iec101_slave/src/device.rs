//! The IEC 101 slave device: one task owns the station state (current values, buffers,
//! connections) and serves the `system/...` events and what the connection tasks
//! report; one task per configured link address opens its connection again and again
//! and runs it. Independent of the plugin SDK: it talks to the event server through
//! [`EventClient`] and receives events through [`SlaveDevice::process_event`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{FuturesOrdered, StreamExt as _};
use gateway_model::{ClientError, Event, EventClient, EventId, EventType, RegisterEvent};
use iec60870::asdu::{AsduCodec, AsduError, Profile};
use iec60870::types::{DataMsg, Msg};
use iec_common::{DataKey, DataType};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::buffer::Buffer;
use crate::config::{self, ConfigError, SlaveConfig};
use crate::events::{ConnectionEntry, ConnectionId, EventTypes, SystemEvent};
use crate::line::{Conn, DeviceLink, Link, LinkOpener, SerialOpener};
use crate::station::{react, DataTable, Reaction};

/// Capacity of the queue between `process_event` and the device task. The host's own
/// device queue is bounded too; this one only smooths hand-over.
pub const DEVICE_EVENT_CAPACITY: usize = 1024;

/// Capacity of the queue from all connection tasks to the device task: received
/// messages wait here, so a master that floods requests is slowed down on its line.
pub const CONNECTION_EVENT_CAPACITY: usize = 256;

/// ASDUs of one connection handed to the link at once (the link queues them and
/// sets "more data" in its answers, so a master fetches them back to back).
pub const SEND_WINDOW: usize = 64;

/// Pause before the serial port is opened again after it failed (hat's slave device
/// ends with its port; ours reopens it).
pub const PORT_REOPEN_DELAY: Duration = Duration::from_secs(1);

/// Why a device could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The configuration was rejected.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The start-up query of the current values failed.
    #[error("querying the latest system/data events: {0}")]
    Query(ClientError),
    /// The serial port could not be opened (hat's `create` fails the same way).
    #[error("opening the serial link: {0}")]
    Port(String),
}

/// A running IEC 101 slave device.
#[derive(Debug)]
pub struct SlaveDevice {
    events: mpsc::Sender<Event>,
    cancel: CancellationToken,
    finished: CancellationToken,
}

impl SlaveDevice {
    /// Validates `conf` (the whole device entry), reads the current values from the
    /// event server, opens the serial link and starts the device task.
    pub async fn create(
        conf: &Value,
        prefix: EventType,
        client: Arc<dyn EventClient>,
    ) -> Result<Self, CreateError> {
        Self::create_with(conf, prefix, client, Arc::new(SerialOpener)).await
    }

    /// [`create`](Self::create) on the link `opener` opens.
    pub async fn create_with(
        conf: &Value,
        prefix: EventType,
        client: Arc<dyn EventClient>,
        opener: Arc<dyn LinkOpener>,
    ) -> Result<Self, CreateError> {
        let config = SlaveConfig::from_json(conf)?;
        let codec = AsduCodec::new(Profile::iec101(config.field_sizes()?));
        let types = EventTypes::new(prefix);
        let mut station = Station::new(&config, types, codec, client);
        station.load_current_values().await?;
        let port = opener
            .open(&config)
            .await
            .map_err(|err| CreateError::Port(err.0))?;
        station.register_connections().await;

        let (events, event_rx) = mpsc::channel(DEVICE_EVENT_CAPACITY);
        let cancel = CancellationToken::new();
        let finished = CancellationToken::new();
        let span = tracing::info_span!("iec101_slave", device = %config.name);
        let guard = finished.clone().drop_guard();
        let task_cancel = cancel.clone();
        tokio::spawn(
            async move {
                // Marks the device finished however the task ends (also on panic).
                let _guard = guard;
                station
                    .run(Arc::new(config), opener, port, event_rx, task_cancel)
                    .await;
            }
            .instrument(span),
        );
        Ok(Self {
            events,
            cancel,
            finished,
        })
    }

    /// Hands one event to the device. Malformed events are logged and ignored there.
    pub async fn process_event(&self, event: Event) {
        if self.events.send(event).await.is_err() {
            tracing::debug!("device closed; event dropped");
        }
    }

    /// Closes the link and every connection and waits until the task ended.
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

/// Where a buffered value sits: buffer index and event id.
pub type BufferRef = (usize, EventId);

/// One send of a connection: messages encoded together (one hat `send`), whether
/// the link confirms them, and the buffered value they carry.
#[derive(Debug)]
pub struct Outgoing {
    msgs: Vec<Msg>,
    with_ack: bool,
    buffered: Option<BufferRef>,
}

/// What a connection task reports to the device task.
#[derive(Debug)]
enum ConnEvent {
    /// The connection of link address `address` opened (the master reset the link);
    /// the device answers its id on `id`.
    Opened {
        address: u16,
        out: mpsc::Sender<Outgoing>,
        id: oneshot::Sender<ConnectionId>,
    },
    /// Messages from the master.
    Received(ConnectionId, Vec<Msg>),
    /// A buffered value was sent.
    Sent(BufferRef),
    /// The connection closed.
    Closed(ConnectionId),
}

/// The state the device task owns.
struct Station {
    types: EventTypes,
    client: Arc<dyn EventClient>,
    codec: AsduCodec,
    table: DataTable,
    buffers: Vec<Buffer<DataMsg>>,
    data_buffers: HashMap<DataKey, usize>,
    with_ack: HashSet<DataKey>,
    conns: BTreeMap<ConnectionId, (u16, mpsc::Sender<Outgoing>)>,
}

impl Station {
    fn new(
        config: &SlaveConfig,
        types: EventTypes,
        codec: AsduCodec,
        client: Arc<dyn EventClient>,
    ) -> Self {
        let buffer_index: HashMap<&str, usize> = config
            .buffers
            .iter()
            .enumerate()
            .map(|(i, b)| (b.name.as_str(), i))
            .collect();
        let mut keys = Vec::with_capacity(config.data.len());
        let mut data_buffers = HashMap::new();
        let mut with_ack = HashSet::new();
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
            if data.with_ack {
                with_ack.insert(key);
            }
        }
        Self {
            types,
            client,
            codec,
            table: DataTable::new(keys, config.broadcast_asdu_address()),
            buffers: config
                .buffers
                .iter()
                // Non-negative by `SlaveConfig::check`.
                .map(|b| Buffer::new(b.size as usize))
                .collect(),
            data_buffers,
            with_ack,
            conns: BTreeMap::new(),
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
        let entries: Vec<ConnectionEntry> = self
            .conns
            .iter()
            .map(|(id, (address, _))| ConnectionEntry {
                id: *id,
                address: *address,
            })
            .collect();
        self.register(vec![self.types.connections(&entries)]).await;
    }

    async fn run(
        mut self,
        config: Arc<SlaveConfig>,
        opener: Arc<dyn LinkOpener>,
        port: Arc<dyn Link>,
        mut events: mpsc::Receiver<Event>,
        cancel: CancellationToken,
    ) {
        let (to_device, mut from_conns) = mpsc::channel(CONNECTION_EVENT_CAPACITY);
        let mut next_id: ConnectionId = 1;
        let mut port = Some(port);
        let mut retry_at = tokio::time::Instant::now();
        let mut link_cancel = cancel.child_token();
        let mut tasks = tokio::task::JoinSet::new();
        if let Some(port) = &port {
            spawn_devices(
                &config,
                self.codec,
                port,
                &to_device,
                &link_cancel,
                &mut tasks,
            );
        }
        loop {
            let port_closed = {
                let port = port.clone();
                async move {
                    match port {
                        Some(port) => port.closed().await,
                        None => std::future::pending().await,
                    }
                }
            };
            tokio::select! {
                // Cancellation first: connection tasks end with it (child tokens).
                biased;
                () = cancel.cancelled() => break,
                () = port_closed => {
                    tracing::warn!("serial link closed; reopening it");
                    link_cancel.cancel();
                    while tasks.join_next().await.is_some() {}
                    port = None;
                    retry_at = tokio::time::Instant::now() + PORT_REOPEN_DELAY;
                }
                () = tokio::time::sleep_until(retry_at), if port.is_none() => {
                    match opener.open(&config).await {
                        Ok(opened) => {
                            link_cancel = cancel.child_token();
                            spawn_devices(&config, self.codec, &opened, &to_device, &link_cancel, &mut tasks);
                            port = Some(opened);
                        }
                        Err(err) => {
                            tracing::warn!(error = %err, "serial link failed to open");
                            retry_at = tokio::time::Instant::now() + PORT_REOPEN_DELAY;
                        }
                    }
                }
                Some(event) = events.recv() => self.process_event(event).await,
                Some(event) = from_conns.recv() => {
                    self.process_conn_event(event, &mut next_id).await;
                }
                Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Err(err) = joined {
                        tracing::error!(error = %err, "connection task failed");
                    }
                }
            }
        }
        link_cancel.cancel();
        while tasks.join_next().await.is_some() {}
        if let Some(port) = port {
            port.close();
        }
        if !self.conns.is_empty() {
            self.conns.clear();
            self.register_connections().await;
        }
    }

    async fn process_event(&mut self, event: Event) {
        match self.types.parse_system(&event) {
            Ok(SystemEvent::Data(key, msg)) => self.data_changed(key, event.id, msg),
            Ok(SystemEvent::Command(id, msg)) => {
                if self.conns.contains_key(&id) {
                    self.push(
                        id,
                        Outgoing {
                            msgs: vec![Msg::Command(msg)],
                            with_ack: true,
                            buffered: None,
                        },
                    );
                } else {
                    tracing::warn!(
                        connection_id = id,
                        "command response for an unknown connection"
                    );
                }
            }
            Err(err) => {
                tracing::warn!(event_type = ?event.event_type, error = %err, "error processing event");
            }
        }
    }

    /// hat's `_process_data_event`: the new value goes to every connection.
    fn data_changed(&mut self, key: DataKey, event_id: EventId, msg: DataMsg) {
        if !self.table.set(&key, msg) {
            tracing::warn!(?key, "error processing event: data not configured");
            return;
        }
        let buffered = self.data_buffers.get(&key).map(|i| {
            self.buffers[*i].add(event_id, msg);
            (*i, event_id)
        });
        let with_ack = self.with_ack.contains(&key);
        let ids: Vec<ConnectionId> = self.conns.keys().copied().collect();
        for id in ids {
            self.push(
                id,
                Outgoing {
                    msgs: vec![Msg::Data(msg)],
                    with_ack,
                    buffered,
                },
            );
        }
    }

    async fn process_conn_event(&mut self, event: ConnEvent, next_id: &mut ConnectionId) {
        match event {
            ConnEvent::Opened {
                address,
                out,
                id: id_tx,
            } => {
                // Ids are assigned here, in opening order, as hat's counter does.
                let id = *next_id;
                *next_id += 1;
                if id_tx.send(id).is_err() {
                    return;
                }
                tracing::info!(id, address, "master connected");
                self.conns.insert(id, (address, out));
                self.register_connections().await;
                // hat: everything still buffered goes to the new connection.
                let buffered: Vec<(DataMsg, BufferRef)> = self
                    .buffers
                    .iter()
                    .enumerate()
                    .flat_map(|(i, buffer)| {
                        buffer
                            .iter()
                            .map(move |(event_id, msg)| (*msg, (i, *event_id)))
                    })
                    .collect();
                for (msg, at) in buffered {
                    let key = DataKey {
                        data_type: DataType::of(&msg.data),
                        asdu_address: msg.asdu_address,
                        io_address: msg.io_address,
                    };
                    let with_ack = self.with_ack.contains(&key);
                    self.push(
                        id,
                        Outgoing {
                            msgs: vec![Msg::Data(msg)],
                            with_ack,
                            buffered: Some(at),
                        },
                    );
                }
            }
            ConnEvent::Received(id, msgs) => {
                for msg in msgs {
                    self.process_msg(id, msg).await;
                }
            }
            ConnEvent::Sent((i, event_id)) => {
                if let Some(buffer) = self.buffers.get_mut(i) {
                    buffer.remove(&event_id);
                }
            }
            ConnEvent::Closed(id) => {
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
            Reaction::Reply(batches) => {
                for msgs in batches {
                    self.push(
                        id,
                        Outgoing {
                            msgs,
                            with_ack: true,
                            buffered: None,
                        },
                    );
                }
            }
            Reaction::Command(cmd) => {
                let event = self.types.command(id, &cmd);
                self.register(vec![event]).await;
            }
            Reaction::Ignore(reason) => tracing::warn!(?msg, reason, "error processing message"),
        }
    }

    /// Queues `item` for connection `id`; a connection whose queue is full is closed,
    /// as hat's does.
    fn push(&mut self, id: ConnectionId, item: Outgoing) {
        let Some((_, out)) = self.conns.get(&id) else {
            return;
        };
        match out.try_send(item) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(id, "send queue full: closing the connection");
                // Dropping the sender ends the connection's send loop, which closes
                // the connection; its `Closed` report removes the entry.
                self.conns.remove(&id);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

fn spawn_devices(
    config: &Arc<SlaveConfig>,
    codec: AsduCodec,
    port: &Arc<dyn Link>,
    to_device: &mpsc::Sender<ConnEvent>,
    cancel: &CancellationToken,
    tasks: &mut tokio::task::JoinSet<()>,
) {
    let devices: Vec<DeviceLink> = match &config.link {
        config::Link::Balanced { devices, .. } => {
            devices.iter().cloned().map(DeviceLink::Balanced).collect()
        }
        config::Link::Unbalanced { devices, .. } => devices
            .iter()
            .cloned()
            .map(DeviceLink::Unbalanced)
            .collect(),
    };
    for device in devices {
        let span = tracing::info_span!("connection", address = device.address());
        tasks.spawn(
            connection_loop(
                port.clone(),
                config.clone(),
                device,
                codec,
                to_device.clone(),
                cancel.clone(),
            )
            .instrument(span),
        );
    }
}

/// hat's `_connection_loop`: open (the master resets the link), serve until closed,
/// open again; `reconnect_delay` after a failure to open.
async fn connection_loop(
    port: Arc<dyn Link>,
    config: Arc<SlaveConfig>,
    device: DeviceLink,
    codec: AsduCodec,
    to_device: mpsc::Sender<ConnEvent>,
    cancel: CancellationToken,
) {
    let reconnect_delay = device.reconnect_delay();
    loop {
        let opened = tokio::select! {
            () = cancel.cancelled() => return,
            opened = port.open_connection(&config, &device) => opened,
        };
        let conn = match opened {
            Ok(conn) => conn,
            Err(err) => {
                tracing::warn!(error = %err, "connection error");
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(reconnect_delay) => continue,
                }
            }
        };
        let (out, out_rx) = mpsc::channel(config.send_queue_size);
        let (id_tx, id_rx) = oneshot::channel();
        let opened = ConnEvent::Opened {
            address: device.address(),
            out,
            id: id_tx,
        };
        if to_device.send(opened).await.is_err() {
            conn.close();
            return;
        }
        let Ok(id) = id_rx.await else {
            conn.close();
            return;
        };
        tokio::select! {
            () = cancel.cancelled() => {}
            () = serve(id, conn.as_ref(), codec, out_rx, &to_device) => {}
        }
        conn.close();
        let _ = to_device.send(ConnEvent::Closed(id)).await;
        if cancel.is_cancelled() {
            return;
        }
    }
}

/// Runs one connection until it closes: the send loop (each send confirmed by the
/// link when asked to, a buffered value reported once sent) and the receive loop.
/// The device dropping the queue (it was full) ends it too.
async fn serve(
    id: ConnectionId,
    conn: &dyn Conn,
    codec: AsduCodec,
    mut out_rx: mpsc::Receiver<Outgoing>,
    to_device: &mpsc::Sender<ConnEvent>,
) {
    // Up to `SEND_WINDOW` ASDUs are handed to the link at once, in order (each send
    // future takes its place in the link's queue when first polled, and new futures
    // are first polled in the order they were pushed): the link then answers polls
    // with "more data" (ACD) and the master fetches them back to back, as from hat's
    // queue. One future per ASDU, so the ASDUs of one answer stay in order.
    let send_loop = async {
        let mut inflight = FuturesOrdered::new();
        let mut open = true;
        loop {
            tokio::select! {
                item = out_rx.recv(), if open && inflight.len() < SEND_WINDOW => {
                    let Some(item) = item else {
                        open = false;
                        continue;
                    };
                    let asdus = encode(&codec, &item.msgs);
                    let last = asdus.len().saturating_sub(1);
                    for (i, asdu) in asdus.into_iter().enumerate() {
                        let report = if i == last { item.buffered } else { None };
                        let with_ack = item.with_ack;
                        inflight.push_back(async move {
                            conn.send(asdu, with_ack).await.map(|()| report)
                        });
                    }
                }
                Some(sent) = inflight.next(), if !inflight.is_empty() => match sent {
                    Ok(Some(at)) => {
                        let _ = to_device.send(ConnEvent::Sent(at)).await;
                    }
                    Ok(None) => {}
                    Err(err) => {
                        tracing::debug!(error = %err, "send loop ends");
                        return;
                    }
                },
                else => {
                    tracing::debug!("send queue dropped: closing the connection");
                    return;
                }
            }
        }
    };
    let receive_loop = async {
        while let Some(asdu) = conn.receive().await {
            if let Some(msgs) = decode(&codec, &asdu) {
                if to_device.send(ConnEvent::Received(id, msgs)).await.is_err() {
                    return;
                }
            }
        }
        tracing::debug!("receive loop ends");
    };
    tokio::select! {
        () = send_loop => {}
        () = receive_loop => {}
    }
}

/// Decodes one ASDU from a master; an unknown type is skipped (hat's `AsduTypeError`),
/// a malformed one too.
pub fn decode(codec: &AsduCodec, asdu: &[u8]) -> Option<Vec<Msg>> {
    match codec.decode(asdu) {
        Ok(msgs) => Some(msgs),
        Err(err @ AsduError::UnknownType { .. }) => {
            tracing::warn!(error = %err, "asdu type error");
            None
        }
        Err(err) => {
            tracing::warn!(error = %err, "malformed ASDU skipped");
            None
        }
    }
}

/// Encodes one send's messages; unencodable ones are logged and dropped.
pub fn encode(codec: &AsduCodec, msgs: &[Msg]) -> Vec<Bytes> {
    match codec.encode(msgs) {
        Ok(asdus) => asdus,
        Err(err) => {
            tracing::warn!(error = %err, "messages not encodable; not sent");
            Vec::new()
        }
    }
}
