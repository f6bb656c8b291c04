//! The Modbus master device: the connection loop, remote-device enable handling and
//! writes (`docs/modbus-master.md` sections 6, 7 and 9). Independent of the plugin SDK:
//! it talks to the event server through the event-client contract
//! ([`gateway_model::EventClient`]: the SDK client in the plugin, a recorder in tests)
//! and receives events through
//! [`MasterDevice::process_event`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use gateway_model::{Event, EventClient, EventType, QueryLatestParams, QueryParams, RegisterEvent};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::{secs, ConfigError, MasterConfig};
use crate::connection::{self, ConnectionHandle, RequestError, RequestTiming};
use crate::data::{read_groups, value_for_point, write_requests, ReadGroup, WriteValueError};
use crate::events::{enabled_from_query, EventTypes, SystemRequest};
use crate::reader::Reader;
use crate::transport;
use modbus::{ExceptionCode, Framer};

/// Capacity of the queue between `process_event` and the device task. The host's own
/// device queue is bounded too; this one only smooths hand-over.
pub const DEVICE_COMMAND_CAPACITY: usize = 1024;

/// State shared by the device task, its readers and its writes.
pub struct Shared {
    /// Validated configuration.
    pub config: MasterConfig,
    /// Event types under the device prefix.
    pub types: EventTypes,
    /// Read groups per remote device (configuration order).
    pub groups: Vec<Vec<ReadGroup>>,
    client: Arc<dyn EventClient>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("types", &self.types)
            .field("groups", &self.groups)
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
}

/// A running Modbus master device.
pub struct MasterDevice {
    commands: mpsc::Sender<SystemRequest>,
    types: EventTypes,
    cancel: CancellationToken,
    finished: CancellationToken,
}

impl std::fmt::Debug for MasterDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterDevice")
            .field("types", &self.types)
            .field("cancelled", &self.cancel.is_cancelled())
            .field("finished", &self.finished.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl MasterDevice {
    /// Validates `conf` (the whole device entry) and starts the device task.
    pub fn create(
        conf: &Value,
        prefix: EventType,
        client: Arc<dyn EventClient>,
    ) -> Result<Self, ConfigError> {
        let config = MasterConfig::from_json(conf)?;
        let groups = config
            .remote_devices
            .iter()
            .map(|rd| read_groups(&rd.data))
            .collect();
        let types = EventTypes::new(prefix);
        let shared = Arc::new(Shared {
            config,
            types: types.clone(),
            groups,
            client,
        });
        let (commands, command_rx) = mpsc::channel(DEVICE_COMMAND_CAPACITY);
        let cancel = CancellationToken::new();
        let finished = CancellationToken::new();
        let span = tracing::info_span!("modbus_master", device = %shared.config.name);
        let guard = finished.clone().drop_guard();
        let task_cancel = cancel.clone();
        tokio::spawn(
            async move {
                // Marks the device finished however the task ends (also on panic).
                let _guard = guard;
                run(shared, command_rx, task_cancel).await;
            }
            .instrument(span),
        );
        Ok(Self {
            commands,
            types,
            cancel,
            finished,
        })
    }

    /// Hands one event to the device. Malformed events are logged and ignored.
    pub async fn process_event(&self, event: Event) {
        match self.types.parse_system(&event) {
            Ok(request) => {
                if self.commands.send(request).await.is_err() {
                    tracing::debug!("device closed; event dropped");
                }
            }
            Err(reason) => tracing::warn!(event_type = ?event.event_type, reason, "ignoring event"),
        }
    }

    /// Closes the device and waits until it is closed (readers `DISABLED`, connection
    /// closed, `status DISCONNECTED`). Idempotent.
    pub async fn close(&self) {
        self.cancel.cancel();
        self.finished.cancelled().await;
    }

    /// Resolves when the device has ended.
    pub async fn closed(&self) {
        self.finished.cancelled().await;
    }
}

struct StatusTracker(Option<&'static str>);

impl StatusTracker {
    async fn set(&mut self, shared: &Shared, status: &'static str) {
        if self.0 != Some(status) {
            self.0 = Some(status);
            shared.register(vec![shared.types.status(status)]).await;
        }
    }
}

async fn run(
    shared: Arc<Shared>,
    mut commands: mpsc::Receiver<SystemRequest>,
    cancel: CancellationToken,
) {
    let query = shared.types.enable_query();
    let mut enabled: HashSet<i64> = tokio::select! {
        _ = cancel.cancelled() => return,
        result = shared.client.query(QueryParams::Latest(QueryLatestParams {
            event_types: Some(vec![query]),
        })) => match result {
            Ok(result) => enabled_from_query(&shared.types, &result.events).into_iter().collect(),
            Err(err) => {
                tracing::warn!(error = %err, "enable query failed; all remote devices start disabled");
                HashSet::new()
            }
        },
    };
    let mut status = StatusTracker(None);
    let conn_conf = &shared.config.connection;
    let mut backoff = Backoff::new(conn_conf.backoff_base(), conn_conf.backoff_cap());
    // Remote devices whose reader ended with the last connection: their status is
    // DISCONNECTED until the next connection, a disable or the device's close.
    let mut offline = Offline::default();
    loop {
        status.set(&shared, "CONNECTING").await;
        let attempt = tokio::select! {
            _ = cancel.cancelled() => break,
            attempt = tokio::time::timeout(secs(conn_conf.connect_timeout), transport::open(&conn_conf.transport)) => attempt,
        };
        let opened = match attempt {
            Ok(Ok(opened)) => Some(opened),
            Ok(Err(err)) => {
                tracing::info!(error = %err, "connecting failed");
                None
            }
            Err(_elapsed) => {
                tracing::info!("connecting timed out");
                None
            }
        };
        let Some((stream, silent_interval)) = opened else {
            status.set(&shared, "DISCONNECTED").await;
            let delay = secs(conn_conf.connect_delay);
            if wait_offline(
                &shared,
                &mut commands,
                &mut enabled,
                &mut offline,
                &cancel,
                delay,
            )
            .await
            {
                continue;
            }
            break;
        };
        status.set(&shared, "CONNECTED").await;
        let opened_at = tokio::time::Instant::now();
        let timing = RequestTiming {
            request_timeout: secs(conn_conf.request_timeout),
            request_delay: secs(conn_conf.request_delay),
            immediate_retries: conn_conf.request_retry_immediate_count,
            delayed_retries: conn_conf.request_retry_delayed_count,
            retry_delay: secs(conn_conf.request_retry_delay),
            silent_interval,
        };
        let (conn, conn_task) =
            connection::spawn(stream, Framer::new(conn_conf.modbus_type), timing);
        offline.0.clear();
        let keep_running = online(
            &shared,
            &conn,
            &mut commands,
            &mut enabled,
            &mut offline,
            &cancel,
        )
        .await;
        conn.close();
        if let Err(err) = conn_task.await {
            tracing::error!(error = %err, "connection task failed");
        }
        status.set(&shared, "DISCONNECTED").await;
        if !keep_running {
            return;
        }
        let delay = backoff.after_connection(opened_at.elapsed());
        if !delay.is_zero() {
            tracing::info!(
                delay_s = delay.as_secs_f64(),
                "connection lost soon after it opened; reconnecting after a delay"
            );
            if !wait_offline(
                &shared,
                &mut commands,
                &mut enabled,
                &mut offline,
                &cancel,
                delay,
            )
            .await
            {
                break;
            }
        }
    }
    // Closing while disconnected: the remote devices the lost connection left
    // DISCONNECTED end DISABLED, as a running reader would.
    offline.disable_all(&shared).await;
    status.set(&shared, "DISCONNECTED").await;
}

/// The pause before reconnecting after an established connection ended
/// (`docs/modbus-master.md` section 6). The first loss after a stable connection (or
/// at start) is reconnected at once, as hat does; each further connection that ends
/// before it was open for `cap` doubles the pause, from `base` up to `cap`.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: std::time::Duration,
    cap: std::time::Duration,
    /// Connections lost since the last stable one, this one included.
    losses: u32,
}

impl Backoff {
    /// A backoff starting at `base` (after the second quick loss), capped at `cap`.
    pub fn new(base: std::time::Duration, cap: std::time::Duration) -> Self {
        Self {
            base,
            cap: cap.max(base),
            losses: 0,
        }
    }

    /// The pause before reconnecting after a connection that was open for `lifetime`.
    pub fn after_connection(&mut self, lifetime: std::time::Duration) -> std::time::Duration {
        self.losses = if lifetime >= self.cap {
            1
        } else {
            self.losses.saturating_add(1)
        };
        match self.losses {
            0 | 1 => std::time::Duration::ZERO,
            n => {
                // 2^(n-2), bounded so the multiplication cannot overflow the exponent.
                let factor = 1u32 << (n - 2).min(30);
                self.base.saturating_mul(factor).min(self.cap)
            }
        }
    }
}

/// Remote devices left `DISCONNECTED` by a lost connection, in configuration order.
#[derive(Debug, Default)]
struct Offline(Vec<u8>);

impl Offline {
    /// A disabled remote device that the lost connection left `DISCONNECTED` becomes
    /// `DISABLED` now rather than at the next connection.
    async fn disable(&mut self, shared: &Shared, device_id: i64) {
        if let Some(position) = self.0.iter().position(|&id| i64::from(id) == device_id) {
            let id = self.0.remove(position);
            shared
                .register(vec![shared.types.remote_status(id, "DISABLED")])
                .await;
        }
    }

    async fn disable_all(&mut self, shared: &Shared) {
        for id in std::mem::take(&mut self.0) {
            shared
                .register(vec![shared.types.remote_status(id, "DISABLED")])
                .await;
        }
    }
}

/// Waits `delay` while disconnected, keeping track of enables. False = cancelled.
async fn wait_offline(
    shared: &Shared,
    commands: &mut mpsc::Receiver<SystemRequest>,
    enabled: &mut HashSet<i64>,
    offline: &mut Offline,
    cancel: &CancellationToken,
    delay: std::time::Duration,
) -> bool {
    let sleep = tokio::time::sleep(delay);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return false,
            () = &mut sleep => return true,
            command = commands.recv() => match command {
                Some(SystemRequest::Enable { device_id, enable }) => {
                    set_enabled(enabled, device_id, enable);
                    if !enable {
                        offline.disable(shared, device_id).await;
                    }
                }
                Some(SystemRequest::Write { device_id, data_name, .. }) => {
                    tracing::debug!(device_id, data_name, "not connected; write ignored");
                }
                None => return false,
            },
        }
    }
}

fn set_enabled(enabled: &mut HashSet<i64>, device_id: i64, enable: bool) {
    if enable {
        enabled.insert(device_id);
    } else {
        enabled.remove(&device_id);
    }
}

/// Runs while the connection is open. Returns false when the device is closing. When
/// the connection is lost, its readers end `DISCONNECTED` and are listed in `offline`.
async fn online(
    shared: &Arc<Shared>,
    conn: &ConnectionHandle,
    commands: &mut mpsc::Receiver<SystemRequest>,
    enabled: &mut HashSet<i64>,
    offline: &mut Offline,
    cancel: &CancellationToken,
) -> bool {
    let mut readers: HashMap<u8, Reader> = HashMap::new();
    for (index, remote) in shared.config.remote_devices.iter().enumerate() {
        if enabled.contains(&i64::from(remote.device_id)) {
            readers.insert(
                remote.device_id,
                Reader::start(shared.clone(), index, conn.clone()),
            );
        } else {
            shared
                .register(vec![shared
                    .types
                    .remote_status(remote.device_id, "DISABLED")])
                .await;
        }
    }
    let mut writes = FuturesUnordered::new();
    let keep_running = loop {
        tokio::select! {
            _ = cancel.cancelled() => break false,
            () = conn.closed() => break true,
            Some(()) = writes.next(), if !writes.is_empty() => {}
            command = commands.recv() => match command {
                Some(SystemRequest::Enable { device_id, enable }) => {
                    set_enabled(enabled, device_id, enable);
                    let Some(index) = configured_index(shared, device_id) else { continue };
                    let id = shared.config.remote_devices[index].device_id;
                    if enable {
                        if !readers.get(&id).is_some_and(Reader::is_running) {
                            readers.insert(id, Reader::start(shared.clone(), index, conn.clone()));
                        }
                    } else if let Some(reader) = readers.remove(&id) {
                        reader.stop("DISABLED").await;
                    }
                }
                Some(SystemRequest::Write { device_id, data_name, request_id, value }) => {
                    if let Some(write) = start_write(shared, conn, device_id, &data_name, request_id, value) {
                        writes.push(write);
                    }
                }
                None => break false,
            },
        }
    };
    // Readers end in configuration order, each registering DISABLED when the device
    // closes, DISCONNECTED when the connection was lost (it is still enabled).
    let last = if keep_running {
        "DISCONNECTED"
    } else {
        "DISABLED"
    };
    for remote in &shared.config.remote_devices {
        if let Some(reader) = readers.remove(&remote.device_id) {
            reader.stop(last).await;
            if keep_running {
                offline.0.push(remote.device_id);
            }
        }
    }
    // Pending writes are dropped: no response event for them (`docs/modbus-master.md`
    // section 9).
    drop(writes);
    keep_running
}

fn configured_index(shared: &Shared, device_id: i64) -> Option<usize> {
    shared
        .config
        .remote_devices
        .iter()
        .position(|rd| i64::from(rd.device_id) == device_id)
}

/// Builds the future performing one write, or `None` if the write is ignored
/// (unknown device or point, or a point that is not writable).
fn start_write(
    shared: &Arc<Shared>,
    conn: &ConnectionHandle,
    device_id: i64,
    data_name: &str,
    request_id: Value,
    value: Value,
) -> Option<BoxFuture<'static, ()>> {
    let index = configured_index(shared, device_id)?;
    let remote = &shared.config.remote_devices[index];
    let Some(point) = remote.data.iter().find(|p| p.name == data_name) else {
        tracing::debug!(device_id, data_name, "write to unknown data point ignored");
        return None;
    };
    let requests = match value_for_point(point, &value).and_then(|v| write_requests(point, v)) {
        Ok(requests) => Ok(requests),
        Err(WriteValueError::NotWritable) => {
            tracing::debug!(
                device_id,
                data_name,
                "write to read-only data point ignored"
            );
            return None;
        }
        Err(err @ WriteValueError::DoesNotFit { .. }) => Err(err),
    };
    let shared = shared.clone();
    let conn = conn.clone();
    let unit = remote.device_id;
    let name = point.name.clone();
    Some(Box::pin(async move {
        let result = match requests {
            Err(err) => {
                tracing::info!(unit, data_name = %name, %value, error = %err, "write rejected");
                ExceptionCode::ILLEGAL_DATA_VALUE.name()
            }
            Ok(requests) => {
                let mut result = "SUCCESS".to_owned();
                for request in requests {
                    match conn.send(unit, request).await {
                        Ok(Err(code)) => {
                            result = code.name();
                            break;
                        }
                        Ok(_) => {}
                        Err(RequestError::Timeout) => {
                            result = "TIMEOUT".to_owned();
                            break;
                        }
                        Err(RequestError::Closed) => return,
                    }
                }
                result
            }
        };
        shared
            .register(vec![shared
                .types
                .write_result(unit, &name, request_id, &result)])
            .await;
    }))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Backoff;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn backoff_is_zero_once_then_doubles_up_to_the_cap() {
        let mut backoff = Backoff::new(MS(100), MS(500));
        let pauses: Vec<Duration> = (0..6).map(|_| backoff.after_connection(MS(5))).collect();
        assert_eq!(pauses, [MS(0), MS(100), MS(200), MS(400), MS(500), MS(500)]);
    }

    #[test]
    fn a_connection_open_for_the_cap_resets_the_backoff() {
        let mut backoff = Backoff::new(MS(100), MS(500));
        for _ in 0..4 {
            backoff.after_connection(MS(5));
        }
        assert_eq!(backoff.after_connection(MS(500)), MS(0));
        assert_eq!(backoff.after_connection(MS(5)), MS(100));
    }

    #[test]
    fn the_cap_is_at_least_the_base_and_long_streaks_do_not_overflow() {
        let mut backoff = Backoff::new(MS(300), MS(100));
        backoff.after_connection(MS(5));
        assert_eq!(backoff.after_connection(MS(5)), MS(300));
        let mut backoff = Backoff::new(Duration::from_secs(1_000_000_000), Duration::MAX);
        for _ in 0..100 {
            backoff.after_connection(Duration::ZERO);
        }
        // The factor stops at 2^30; the product saturates rather than panics.
        let base = Duration::from_secs(1_000_000_000);
        assert_eq!(
            backoff.after_connection(Duration::ZERO),
            base.saturating_mul(1 << 30)
        );
    }
}
