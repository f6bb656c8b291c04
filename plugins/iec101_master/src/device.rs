//! The IEC 101 master device (hat-gateway's `Iec101MasterDevice`): one task owns the
//! serial link (open, `gateway/status`, reopen after `reconnect_delay`) and the remote
//! devices' enable state; each enabled remote device has its own task (link
//! connection, `gateway/remote_device/<address>/status`, receive loop, clock
//! synchronisation, commands to send). Independent of the plugin SDK: it talks to the
//! event server through [`EventClient`] and takes events through
//! [`MasterDevice::process_event`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use gateway_model::{ClientError, Event, EventClient, EventType, RegisterEvent};
use iec60870::asdu::{AsduCodec, AsduError, Profile};
use iec60870::types::Msg;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::{secs, ConfigError, MasterConfig, RemoteDevice};
use crate::events::{clock_sync_msg, Address, EventTypes, SystemEvent};
use crate::line::{Conn, Link, LinkOpener, SerialOpener};

/// Capacity of the queue between `process_event` and the device task. The host's own
/// device queue is bounded too; this one only smooths hand-over.
pub const DEVICE_EVENT_CAPACITY: usize = 1024;

/// Shortest time one attempt to open a remote device's link connection is given
/// (the reset request and its retries); see [`open_timeout`].
pub const MIN_OPEN_TIMEOUT: Duration = Duration::from_millis(100);

/// Why a device could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateError {
    /// The configuration was rejected.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The start-up query of the enable events failed.
    #[error("querying the latest enable events: {0}")]
    Query(ClientError),
}

/// Link or connection state as `gateway/status` and
/// `gateway/remote_device/<address>/status` report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Opening the port / the link connection.
    Connecting,
    /// Open.
    Connected,
    /// Closed.
    Disconnected,
}

impl Status {
    /// hat's status string.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "CONNECTING",
            Self::Connected => "CONNECTED",
            Self::Disconnected => "DISCONNECTED",
        }
    }
}

struct Shared {
    config: MasterConfig,
    opener: Arc<dyn LinkOpener>,
    types: EventTypes,
    codec: AsduCodec,
    client: Arc<dyn EventClient>,
}

impl Shared {
    async fn register(&self, events: Vec<RegisterEvent>) {
        if let Err(err) = self.client.register(events).await {
            tracing::warn!(error = %err, "registering events failed");
        }
    }
}

/// A running IEC 101 master device.
#[derive(Debug)]
pub struct MasterDevice {
    events: mpsc::Sender<Event>,
    cancel: CancellationToken,
    finished: CancellationToken,
}

impl MasterDevice {
    /// Validates `conf` (the whole device entry), reads the remote devices' enable
    /// events and starts the device task on the configured serial port; must be
    /// called inside a tokio runtime.
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
        let config = MasterConfig::from_json(conf)?;
        let codec = AsduCodec::new(Profile::iec101(config.field_sizes()?));
        let types = EventTypes::new(prefix);
        let remotes: BTreeMap<Address, RemoteDevice> = config
            .remotes()
            .into_iter()
            .map(|r| (r.address, r))
            .collect();
        let query = types.enable_query(remotes.keys().copied());
        let mut enabled: BTreeMap<Address, bool> = remotes.keys().map(|a| (*a, false)).collect();
        for event in iec_common::client::query_latest(client.as_ref(), query)
            .await
            .map_err(CreateError::Query)?
        {
            match types.parse_system(&event) {
                Ok(SystemEvent::Enable(address, enable)) if enabled.contains_key(&address) => {
                    enabled.insert(address, enable);
                }
                Ok(_) => {
                    tracing::warn!(event_type = ?event.event_type, "unexpected start-up event")
                }
                Err(err) => {
                    tracing::warn!(event_type = ?event.event_type, error = %err, "error processing event")
                }
            }
        }
        let span = tracing::info_span!("iec101_master", device = %config.name);
        let shared = Arc::new(Shared {
            config,
            opener,
            types,
            codec,
            client,
        });
        let (events, event_rx) = mpsc::channel(DEVICE_EVENT_CAPACITY);
        let cancel = CancellationToken::new();
        let finished = CancellationToken::new();
        let guard = finished.clone().drop_guard();
        let task_cancel = cancel.clone();
        let device = DeviceTask {
            shared,
            remotes,
            enabled,
            running: HashMap::new(),
            tasks: JoinSet::new(),
            status: None,
        };
        tokio::spawn(
            async move {
                // Marks the device finished however the task ends (also on panic).
                let _guard = guard;
                device.run(event_rx, task_cancel).await;
            }
            .instrument(span),
        );
        Ok(Self {
            events,
            cancel,
            finished,
        })
    }

    /// Hands one `system/...` event to the device. An event with a bad type or
    /// payload, or a command for a remote device that is not connected, is logged and
    /// ignored there (hat's behaviour).
    pub async fn process_event(&self, event: Event) {
        if self.events.send(event).await.is_err() {
            tracing::debug!("device closed; event dropped");
        }
    }

    /// Closes the device and waits until it is closed (every connection closed, the
    /// last statuses registered). Idempotent.
    pub async fn close(&self) {
        self.cancel.cancel();
        self.finished.cancelled().await;
    }

    /// Resolves when the device has ended.
    pub async fn closed(&self) {
        self.finished.cancelled().await;
    }
}

impl Drop for MasterDevice {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// A running remote device task, as the device task sees it.
struct Running {
    /// Ends the task (it registers `DISCONNECTED` on its way out).
    cancel: CancellationToken,
    /// Messages to send on its connection.
    out: mpsc::Sender<Msg>,
    /// Its id in the device's join set.
    task: tokio::task::Id,
}

/// The state the device task owns.
struct DeviceTask {
    shared: Arc<Shared>,
    remotes: BTreeMap<Address, RemoteDevice>,
    enabled: BTreeMap<Address, bool>,
    running: HashMap<Address, Running>,
    tasks: JoinSet<Address>,
    status: Option<Status>,
}

impl DeviceTask {
    async fn set_status(&mut self, status: Status) {
        if self.status != Some(status) {
            self.status = Some(status);
            self.shared
                .register(vec![self.shared.types.status(status.as_str())])
                .await;
        }
    }

    async fn run(mut self, mut events: mpsc::Receiver<Event>, cancel: CancellationToken) {
        let reconnect_delay = secs(self.shared.config.reconnect_delay);
        let mut port: Option<Arc<dyn Link>> = None;
        let mut retry_at = tokio::time::Instant::now();
        loop {
            if port.is_none() && tokio::time::Instant::now() >= retry_at {
                self.set_status(Status::Connecting).await;
                match self.shared.opener.open(&self.shared.config).await {
                    Ok(opened) => {
                        tracing::info!("serial link opened");
                        self.set_status(Status::Connected).await;
                        let enabled: Vec<Address> = self
                            .enabled
                            .iter()
                            .filter(|(_, on)| **on)
                            .map(|(a, _)| *a)
                            .collect();
                        for address in enabled {
                            self.start_remote(&opened, address, &cancel);
                        }
                        port = Some(opened);
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "serial link failed to open");
                        self.set_status(Status::Disconnected).await;
                        retry_at = tokio::time::Instant::now() + reconnect_delay;
                    }
                }
            }
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
                () = cancel.cancelled() => break,
                () = tokio::time::sleep_until(retry_at), if port.is_none() => {}
                () = port_closed => {
                    tracing::warn!("serial link closed");
                    self.stop_all().await;
                    port = None;
                    self.set_status(Status::Disconnected).await;
                    // As hat: the port is opened again at once; a failure to open
                    // waits `reconnect_delay`.
                    retry_at = tokio::time::Instant::now();
                }
                Some(event) = events.recv() => self.process_event(port.as_ref(), event, &cancel),
                Some(joined) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    let id = match &joined {
                        Ok((id, _)) => *id,
                        Err(err) => err.id(),
                    };
                    if let Err(err) = &joined {
                        tracing::error!(error = %err, "remote device task failed");
                    }
                    self.running.retain(|_, r| r.task != id);
                }
            }
        }
        self.stop_all().await;
        if let Some(port) = port {
            port.close();
        }
        // hat's cleanup registers DISCONNECTED whatever the state was.
        self.status = None;
        self.set_status(Status::Disconnected).await;
    }

    fn process_event(
        &mut self,
        port: Option<&Arc<dyn Link>>,
        event: Event,
        cancel: &CancellationToken,
    ) {
        let parsed = match self.shared.types.parse_system(&event) {
            Ok(parsed) => parsed,
            Err(err) => {
                tracing::warn!(event_type = ?event.event_type, error = %err, "error processing event");
                return;
            }
        };
        match parsed {
            SystemEvent::Enable(address, enable) => {
                let Some(slot) = self.enabled.get_mut(&address) else {
                    tracing::warn!(address, "enable for an unknown remote device");
                    return;
                };
                *slot = enable;
                if !enable {
                    if let Some(running) = self.running.remove(&address) {
                        tracing::debug!(address, "disabling remote device");
                        running.cancel.cancel();
                    }
                } else if let Some(port) = port {
                    self.start_remote(port, address, cancel);
                }
            }
            SystemEvent::Send(address, msg) => match self.running.get(&address) {
                Some(running) => {
                    if let Err(err) = running.out.try_send(msg) {
                        tracing::warn!(address, error = %err, "message not sent: send queue full or closed");
                    }
                }
                None => {
                    tracing::warn!(address, "message not sent: connection closed");
                }
            },
        }
    }

    fn start_remote(&mut self, port: &Arc<dyn Link>, address: Address, cancel: &CancellationToken) {
        if self.running.contains_key(&address) {
            tracing::debug!(address, "remote device already running");
            return;
        }
        let Some(remote) = self.remotes.get(&address).cloned() else {
            return;
        };
        let (out, out_rx) = mpsc::channel(self.shared.config.queue_size());
        let remote_cancel = cancel.child_token();
        let span = tracing::info_span!("remote_device", address);
        let task = self.tasks.spawn(
            remote_loop(
                self.shared.clone(),
                port.clone(),
                remote,
                out_rx,
                remote_cancel.clone(),
            )
            .instrument(span),
        );
        self.running.insert(
            address,
            Running {
                cancel: remote_cancel,
                out,
                task: task.id(),
            },
        );
    }

    /// Ends every remote device task and waits for them (each registers its
    /// `DISCONNECTED`).
    async fn stop_all(&mut self) {
        for running in self.running.values() {
            running.cancel.cancel();
        }
        self.running.clear();
        while let Some(joined) = self.tasks.join_next().await {
            if let Err(err) = joined {
                tracing::error!(error = %err, "remote device task failed");
            }
        }
    }
}

/// How long one attempt to open a remote device's connection may take: the reset
/// request and its retries, each with the response timeout. hat waits forever (the
/// remote device stays `CONNECTING`); we report `DISCONNECTED` after that long and
/// try again after `reconnect_delay`.
pub fn open_timeout(remote: &RemoteDevice) -> Duration {
    remote
        .response_timeout
        .saturating_mul(remote.send_retry_count.saturating_add(1))
        .max(MIN_OPEN_TIMEOUT)
}

/// One remote device: connection, status, session, reconnection after
/// `reconnect_delay`, until cancelled.
async fn remote_loop(
    shared: Arc<Shared>,
    port: Arc<dyn Link>,
    remote: RemoteDevice,
    mut out: mpsc::Receiver<Msg>,
    cancel: CancellationToken,
) -> Address {
    let address = remote.address;
    let mut status = None;
    let set = |status: &mut Option<Status>, new: Status| {
        let changed = *status != Some(new);
        *status = Some(new);
        let shared = shared.clone();
        async move {
            if changed {
                shared
                    .register(vec![shared.types.remote_status(address, new.as_str())])
                    .await;
            }
        }
    };
    loop {
        set(&mut status, Status::Connecting).await;
        let opened = tokio::select! {
            () = cancel.cancelled() => break,
            opened = tokio::time::timeout(
                open_timeout(&remote),
                port.open_connection(&shared.config, &remote),
            ) => opened,
        };
        match opened {
            Ok(Ok(conn)) => {
                // Commands queued while not connected are stale (hat drops what
                // arrives while the connection is closed).
                while let Ok(msg) = out.try_recv() {
                    tracing::warn!(?msg, "message not sent: connection was closed");
                }
                set(&mut status, Status::Connected).await;
                tracing::info!("connected");
                let ended = tokio::select! {
                    () = cancel.cancelled() => None,
                    reason = session(&shared, &remote, conn.as_ref(), &mut out) => Some(reason),
                };
                conn.close();
                set(&mut status, Status::Disconnected).await;
                let Some(reason) = ended else { break };
                tracing::info!(%reason, "connection closed");
            }
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "connection failed");
                set(&mut status, Status::Disconnected).await;
            }
            Err(_) => {
                tracing::warn!(timeout = ?open_timeout(&remote), "remote device did not answer the link reset");
                set(&mut status, Status::Disconnected).await;
            }
        }
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(remote.reconnect_delay) => {}
        }
    }
    set(&mut status, Status::Disconnected).await;
    address
}

/// Runs a connection until it closes: registers what arrives, sends what the device
/// hands over and the clock synchronisation. Returns why it ended.
async fn session(
    shared: &Shared,
    remote: &RemoteDevice,
    conn: &dyn Conn,
    out: &mut mpsc::Receiver<Msg>,
) -> String {
    let address = remote.address;
    let mut sync = remote.time_sync_delay.map(|delay| {
        let mut interval = tokio::time::interval(delay);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval
    });
    let mut msgs: Vec<Msg> = Vec::new();
    let mut events: Vec<RegisterEvent> = Vec::new();
    loop {
        let tick = async {
            match sync.as_mut() {
                Some(interval) => {
                    interval.tick().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            received = conn.receive() => {
                let Some(first) = received else {
                    return "closed by the link".to_owned();
                };
                decode_into_events(shared, address, &first, &mut msgs, &mut events);
                let mut taken = 1;
                while taken < shared.config.register_batch_size() {
                    // `receive` is cancel safe: polled once it takes an ASDU only if
                    // one is already queued.
                    match conn.receive().now_or_never() {
                        Some(Some(asdu)) => {
                            decode_into_events(shared, address, &asdu, &mut msgs, &mut events);
                            taken += 1;
                        }
                        _ => break,
                    }
                }
                if !events.is_empty() {
                    shared.register(std::mem::take(&mut events)).await;
                }
            }
            Some(msg) = out.recv() => {
                if let Err(reason) = send(shared, conn, &msg).await {
                    return reason;
                }
            }
            () = tick => {
                let msg = clock_sync_msg(shared.config.broadcast_asdu_address());
                if let Err(reason) = send(shared, conn, &msg).await {
                    return reason;
                }
                tracing::debug!("time sync sent");
            }
        }
    }
}

/// Encodes and sends one message, confirmed by the link (hat's default `with_ack`).
/// An unencodable message is logged and skipped; a send error ends the session.
async fn send(shared: &Shared, conn: &dyn Conn, msg: &Msg) -> Result<(), String> {
    let asdus = match shared.codec.encode(std::slice::from_ref(msg)) {
        Ok(asdus) => asdus,
        Err(err) => {
            tracing::warn!(?msg, error = %err, "message not encodable; not sent");
            return Ok(());
        }
    };
    for asdu in asdus {
        conn.send(asdu).await.map_err(|err| err.0)?;
    }
    tracing::trace!(?msg, "sent");
    Ok(())
}

/// Decodes one ASDU and appends its events; an unknown type or a malformed ASDU is
/// logged and skipped (hat logs `AsduTypeError` and goes on; its decoder raising on a
/// malformed ASDU ends hat's receive loop, which then closes the connection: a link
/// frame with a good checksum but a bad ASDU is not worth a reconnection here).
fn decode_into_events(
    shared: &Shared,
    address: Address,
    asdu: &[u8],
    msgs: &mut Vec<Msg>,
    events: &mut Vec<RegisterEvent>,
) {
    msgs.clear();
    match shared.codec.decode_into(asdu, msgs) {
        Ok(()) => {}
        Err(err @ AsduError::UnknownType { .. }) => {
            tracing::warn!(error = %err, "asdu type error");
            return;
        }
        Err(err) => {
            tracing::warn!(error = %err, "malformed ASDU skipped");
            return;
        }
    }
    for msg in msgs.iter() {
        match shared.types.msg_to_event(address, msg) {
            Ok(Some(event)) => events.push(event),
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "message ignored"),
        }
    }
}
