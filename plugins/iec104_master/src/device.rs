//! The IEC 104 master device (hat-gateway's `Iec104MasterDevice`): the connection loop
//! over `remote_addresses`, the receive loop registering what the outstation sends, the
//! clock synchronisation loop, and `system/...` events sent as commands. Independent of
//! the plugin SDK: it registers through [`EventClient`] (the SDK client in the plugin, a
//! recorder in tests) and takes events through
//! [`MasterDevice::process_event`].

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures::FutureExt as _;
use gateway_model::{Event, EventClient, EventType, RegisterEvent};
use iec60870::asdu::{AsduCodec, AsduError, Profile};
use iec60870::types::Msg;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::{secs, ConfigError, MasterConfig};
use crate::events::{clock_sync_msg, msg_from_event, msg_to_event};

/// Why a device could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateError {
    /// The configuration was rejected.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Connection state as `gateway/status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Trying the remote addresses.
    Connecting,
    /// Data transfer started with one of them.
    Connected,
    /// No connection.
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
    prefix: EventType,
    codec: AsduCodec,
    client: Arc<dyn EventClient>,
    /// Sending handle of the open connection, if any (hat's `self._conn`).
    sender: Mutex<Option<iec104::Sender>>,
}

impl Shared {
    async fn register(&self, events: Vec<RegisterEvent>) {
        if let Err(err) = self.client.register(events).await {
            tracing::warn!(error = %err, "registering events failed");
        }
    }

    fn current_sender(&self) -> Option<iec104::Sender> {
        // A poisoned lock only means a panic elsewhere while holding it; the slot is
        // still a valid `Option`.
        let slot = self.sender.lock().unwrap_or_else(|e| e.into_inner());
        slot.clone().filter(|sender| !sender.is_closed())
    }

    fn set_sender(&self, sender: Option<iec104::Sender>) {
        *self.sender.lock().unwrap_or_else(|e| e.into_inner()) = sender;
    }
}

/// A running IEC 104 master device.
pub struct MasterDevice {
    shared: Arc<Shared>,
    cancel: CancellationToken,
    finished: CancellationToken,
}

impl std::fmt::Debug for MasterDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterDevice")
            .field("finished", &self.finished.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl MasterDevice {
    /// Validates `conf` (the whole device entry) and starts the device task; must be
    /// called inside a tokio runtime.
    pub fn create(
        conf: &Value,
        prefix: EventType,
        client: Arc<dyn EventClient>,
    ) -> Result<Self, CreateError> {
        let config = MasterConfig::from_json(conf)?;
        let span = tracing::info_span!("iec104_master", device = %config.name);
        let shared = Arc::new(Shared {
            config,
            prefix,
            codec: AsduCodec::new(Profile::iec104()),
            client,
            sender: Mutex::new(None),
        });
        let cancel = CancellationToken::new();
        let finished = CancellationToken::new();
        let guard = finished.clone().drop_guard();
        let task_shared = shared.clone();
        let task_cancel = cancel.clone();
        tokio::spawn(
            async move {
                // Marks the device finished however the task ends (also on panic).
                let _guard = guard;
                run(task_shared, task_cancel).await;
            }
            .instrument(span),
        );
        Ok(Self {
            shared,
            cancel,
            finished,
        })
    }

    /// Sends what a `system/...` event asks for. An event with a bad type or payload,
    /// or one arriving while not connected, is logged and ignored (hat's behaviour).
    pub async fn process_event(&self, event: Event) {
        let msg = match msg_from_event(&self.shared.prefix, &event) {
            Ok(msg) => msg,
            Err(err) => {
                tracing::warn!(event_type = ?event.event_type, error = %err, "ignoring event");
                return;
            }
        };
        let Some(sender) = self.shared.current_sender() else {
            tracing::warn!(event_type = ?event.event_type, "not connected; event ignored");
            return;
        };
        let asdu = match self.shared.codec.encode_one(&msg) {
            Ok(asdu) => asdu,
            Err(err) => {
                tracing::warn!(event_type = ?event.event_type, error = %err, "message not encodable; event ignored");
                return;
            }
        };
        tracing::trace!(?msg, "sending");
        if let Err(err) = sender.send(asdu, false).await {
            tracing::warn!(event_type = ?event.event_type, error = %err, "sending failed");
        }
    }

    /// Closes the device and waits until it is closed (connection closed, `status
    /// DISCONNECTED` registered). Idempotent.
    pub async fn close(&self) {
        self.cancel.cancel();
        self.finished.cancelled().await;
    }

    /// Resolves when the device has ended.
    pub async fn closed(&self) {
        self.finished.cancelled().await;
    }
}

/// Registers a status when it changes.
struct StatusTracker(Option<Status>);

impl StatusTracker {
    async fn set(&mut self, shared: &Shared, status: Status) {
        if self.0 != Some(status) {
            self.0 = Some(status);
            let mut event_type = shared.prefix.clone();
            event_type.extend(["gateway".to_owned(), "status".to_owned()]);
            shared
                .register(vec![RegisterEvent::json(
                    event_type,
                    json!(status.as_str()),
                )])
                .await;
        }
    }
}

async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let conn_config = shared.config.connection();
    let mut status = StatusTracker(None);
    loop {
        status.set(&shared, Status::Connecting).await;
        let connection = tokio::select! {
            _ = cancel.cancelled() => break,
            connection = connect_any(&shared.config, &conn_config) => connection,
        };
        let Some(connection) = connection else {
            status.set(&shared, Status::Disconnected).await;
            tokio::select! {
                _ = cancel.cancelled() => break,
                () = tokio::time::sleep(secs(shared.config.reconnect_delay)) => continue,
            }
        };
        let connected_at = tokio::time::Instant::now();
        let sender = connection.sender();
        let span = tracing::info_span!("connection", remote = %connection.info().remote_addr);
        // Before CONNECTED is registered, so an event that reacts to it finds the
        // connection.
        shared.set_sender(Some(sender.clone()));
        status.set(&shared, Status::Connected).await;
        // Either loop ending ends the connection, as in hat (each closes it on exit).
        // Cancelling drops a batch being registered; the device is closing then.
        let keep_running = tokio::select! {
            _ = cancel.cancelled() => false,
            () = receive_loop(&shared, connection).instrument(span.clone()) => true,
            () = time_sync_loop(&shared, &sender).instrument(span.clone()) => true,
        };
        shared.set_sender(None);
        sender.close();
        let reason = sender.closed().await;
        tracing::info!(parent: &span, %reason, "connection closed");
        status.set(&shared, Status::Disconnected).await;
        if !keep_running {
            return;
        }
        // hat reconnects at once after a connection ends, from the first address, and
        // so do we after a connection that lasted. One that ended sooner than
        // `reconnect_delay` (an outstation that accepts and drops at once) waits out
        // the rest of it: hat would reconnect in a tight loop.
        let lived = connected_at.elapsed();
        let delay = secs(shared.config.reconnect_delay);
        if lived < delay {
            tracing::info!(parent: &span, ?lived, "connection ended early; waiting reconnect_delay");
            tokio::select! {
                _ = cancel.cancelled() => break,
                () = tokio::time::sleep(delay - lived) => {}
            }
        }
    }
    status.set(&shared, Status::Disconnected).await;
}

/// Tries every remote address in turn (every address a host name resolves to); the
/// first connection with data transfer started, or `None`.
async fn connect_any(
    config: &MasterConfig,
    conn_config: &iec104::ConnectionConfig,
) -> Option<iec104::Connection> {
    for remote in &config.remote_addresses {
        let addrs: Vec<SocketAddr> = match tokio::net::lookup_host((
            remote.host.as_str(),
            remote.port,
        ))
        .await
        {
            Ok(addrs) => addrs.collect(),
            Err(err) => {
                tracing::warn!(host = %remote.host, port = remote.port, error = %err, "connection failed: address not resolved");
                continue;
            }
        };
        for addr in addrs {
            match iec104::connect(addr, conn_config).await {
                Ok(connection) => {
                    tracing::info!(%addr, "connected");
                    return Some(connection);
                }
                Err(err) => tracing::warn!(%addr, error = %err, "connection failed"),
            }
        }
    }
    None
}

/// Registers the events of every received ASDU until the connection closes or an ASDU
/// is malformed (which ends the connection; an unknown type id is skipped, as hat does).
async fn receive_loop(shared: &Shared, mut connection: iec104::Connection) {
    let mut msgs: Vec<Msg> = Vec::new();
    let mut events: Vec<RegisterEvent> = Vec::new();
    loop {
        let first = match connection.receive().await {
            Ok(asdu) => asdu,
            Err(err) => {
                tracing::debug!(error = %err, "receive loop ends");
                return;
            }
        };
        let mut healthy = decode_into_events(shared, &first, &mut msgs, &mut events);
        let mut taken = 1;
        while healthy && taken < shared.config.register_batch_size() {
            // `receive` is cancel safe: polling it once takes an ASDU only if one is
            // already queued.
            match connection.receive().now_or_never() {
                Some(Ok(asdu)) => {
                    healthy = decode_into_events(shared, &asdu, &mut msgs, &mut events);
                    taken += 1;
                }
                _ => break,
            }
        }
        if !events.is_empty() {
            let count = events.len();
            shared.register(std::mem::take(&mut events)).await;
            tracing::debug!(count, "events registered");
        }
        if !healthy {
            return;
        }
    }
}

/// Decodes one ASDU and appends its events. False when the ASDU is malformed and the
/// connection must end.
fn decode_into_events(
    shared: &Shared,
    asdu: &[u8],
    msgs: &mut Vec<Msg>,
    events: &mut Vec<RegisterEvent>,
) -> bool {
    msgs.clear();
    match shared.codec.decode_into(asdu, msgs) {
        Ok(()) => {}
        Err(err @ AsduError::UnknownType { .. }) => {
            tracing::warn!(error = %err, "asdu type error");
            return true;
        }
        Err(err) => {
            tracing::warn!(error = %err, "malformed ASDU; closing the connection");
            return false;
        }
    }
    // No per-message trace record: inside a plugin every record is formatted before the
    // host's filter sees it, which cost more than the rest of the receive path.
    for msg in msgs.iter() {
        match msg_to_event(&shared.prefix, msg) {
            Ok(Some(event)) => events.push(event),
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "error processing message"),
        }
    }
    true
}

/// Sends a clock synchronisation every `time_sync_delay` (never returns without one);
/// returns when sending fails.
async fn time_sync_loop(shared: &Shared, sender: &iec104::Sender) {
    let Some(delay) = shared.config.time_sync_delay else {
        return std::future::pending().await;
    };
    loop {
        let asdu = match shared.codec.encode_one(&clock_sync_msg()) {
            Ok(asdu) => asdu,
            Err(err) => {
                tracing::error!(error = %err, "clock synchronisation not encodable");
                return std::future::pending().await;
            }
        };
        if let Err(err) = sender.send(asdu, false).await {
            tracing::debug!(error = %err, "time sync loop ends");
            return;
        }
        if let Err(err) = sender.drain(false).await {
            tracing::debug!(error = %err, "time sync loop ends");
            return;
        }
        tracing::debug!("time sync sent");
        tokio::time::sleep(secs(delay)).await;
    }
}
