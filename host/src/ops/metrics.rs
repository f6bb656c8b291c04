//! The process's metrics: plain atomics that the engine, the proxies and the runner
//! update on their paths, read by a scrape ([`Metrics::encode`]) and by `/status`,
//! `/ready` and the systemd notifier.
//!
//! One [`Metrics`] per process ([`global`]), as one daemon runs per process. The hot
//! path (an event in, an event out) costs relaxed atomic operations on the device's
//! own [`DeviceMetrics`], which the proxy holds: no lock, no lookup. A scrape takes
//! only the list lock of this module (to copy the list of devices and plugins), which
//! the hot path never takes: an engine takes it once per device when it starts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use gateway_model::{Event, EventType, QueryParams, QueryResult, RegisterEvent};
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use serde::Serialize;
use tokio::sync::Notify;

use crate::device::{ClientError, DeviceClient};
use crate::engine::ProxyState;

/// How often the coarse clock behind `seconds_since_last_event` ticks: the metric's
/// resolution. The hot path reads it instead of the system clock.
pub const CLOCK_TICK: Duration = Duration::from_millis(100);

/// Upper bounds (seconds) of the register round-trip histogram's buckets.
pub const REGISTER_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Milliseconds since the Unix epoch, now (0 before 1970, which never happens).
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The coarse clock: unix milliseconds, updated every [`CLOCK_TICK`] by
/// [`run_clock`] (the metrics endpoint runs it); before it runs, the time of the
/// first read.
static COARSE_MS: AtomicU64 = AtomicU64::new(0);

fn coarse_ms() -> u64 {
    match COARSE_MS.load(Ordering::Relaxed) {
        0 => {
            let now = unix_ms();
            COARSE_MS.store(now, Ordering::Relaxed);
            now
        }
        now => now,
    }
}

/// Keeps the coarse clock ticking until the task is dropped.
pub(crate) async fn run_clock() {
    let mut interval = tokio::time::interval(CLOCK_TICK);
    loop {
        interval.tick().await;
        COARSE_MS.store(unix_ms(), Ordering::Relaxed);
    }
}

/// What one device did, since the process started (its counters carry over
/// reconnections: every engine's proxy of the device shares them).
#[derive(Debug)]
pub struct DeviceMetrics {
    /// Gateway name.
    pub gateway: String,
    /// Device type.
    pub device_type: String,
    /// Device name.
    pub device: String,
    state: AtomicU8,
    enabled: AtomicBool,
    events_in: AtomicU64,
    events_out: AtomicU64,
    queue_depth: AtomicU64,
    queue_high_water: AtomicU64,
    dropped: AtomicU64,
    create_failures: AtomicU64,
    restarts: AtomicU64,
    /// Coarse unix ms of the last event in or out; 0: none yet.
    last_event_ms: AtomicU64,
    /// The reason of the last failure (written on a failure only).
    last_error: Mutex<Option<String>>,
}

impl DeviceMetrics {
    fn new(gateway: &str, device_type: &str, device: &str) -> Self {
        Self {
            gateway: gateway.to_owned(),
            device_type: device_type.to_owned(),
            device: device.to_owned(),
            state: AtomicU8::new(ProxyState::Starting.into()),
            enabled: AtomicBool::new(false),
            events_in: AtomicU64::new(0),
            events_out: AtomicU64::new(0),
            queue_depth: AtomicU64::new(0),
            queue_high_water: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            create_failures: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            last_event_ms: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    /// The proxy's state now.
    pub fn state(&self) -> ProxyState {
        // Only `set_state` writes it, always a valid encoding.
        ProxyState::try_from(self.state.load(Ordering::Relaxed)).unwrap_or(ProxyState::Closed)
    }

    /// The last enable value the proxy applied.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Publishes the proxy's state and enable value; true when the state changed (the
    /// caller then wakes [`Metrics::changed`]).
    pub(crate) fn set_state(&self, state: ProxyState, enabled: bool) -> bool {
        self.enabled.store(enabled, Ordering::Relaxed);
        let new = u8::from(state);
        self.state.swap(new, Ordering::Relaxed) != new
    }

    /// One event handed to the proxy.
    pub(crate) fn event_in(&self) {
        self.events_in.fetch_add(1, Ordering::Relaxed);
        self.touch();
    }

    /// `count` events the device registered.
    pub(crate) fn events_out(&self, count: usize) {
        self.events_out.fetch_add(count as u64, Ordering::Relaxed);
        self.touch();
    }

    /// The time of the last event: written once per clock tick at most.
    fn touch(&self) {
        let now = coarse_ms();
        if self.last_event_ms.load(Ordering::Relaxed) != now {
            self.last_event_ms.store(now, Ordering::Relaxed);
        }
    }

    /// Events waiting for the device now.
    pub(crate) fn set_queue_depth(&self, depth: usize) {
        let depth = depth as u64;
        self.queue_depth.store(depth, Ordering::Relaxed);
        self.queue_high_water.fetch_max(depth, Ordering::Relaxed);
    }

    /// `count` more events (or inputs) dropped because the device's queue was full.
    pub(crate) fn dropped(&self, count: u64) {
        self.dropped.fetch_add(count, Ordering::Relaxed);
    }

    /// A `create` failed (an error, a panic or its timeout) with `reason`.
    pub(crate) fn create_failed(&self, reason: &str) {
        self.create_failures.fetch_add(1, Ordering::Relaxed);
        self.set_error(reason);
    }

    /// A failed device is being created again by its restart policy.
    pub(crate) fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// The device failed with `reason`.
    pub(crate) fn set_error(&self, reason: &str) {
        let mut last = self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.as_deref() != Some(reason) {
            *last = Some(reason.to_owned());
        }
    }

    /// The device's row of `/status`.
    pub fn status(&self) -> DeviceStatus {
        let last = self.last_event_ms.load(Ordering::Relaxed);
        DeviceStatus {
            gateway: self.gateway.clone(),
            device_type: self.device_type.clone(),
            device: self.device.clone(),
            state: state_name(self.state()).to_owned(),
            enabled: self.enabled(),
            events_in: self.events_in.load(Ordering::Relaxed),
            events_out: self.events_out.load(Ordering::Relaxed),
            queue_depth: self.queue_depth.load(Ordering::Relaxed),
            queue_high_water: self.queue_high_water.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            create_failures: self.create_failures.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
            seconds_since_last_event: (last != 0)
                .then(|| unix_ms().saturating_sub(last) as f64 / 1000.0),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }
}

/// One device in `/status` (and what `gateway-host status` prints).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct DeviceStatus {
    /// Gateway name.
    pub gateway: String,
    /// Device type.
    pub device_type: String,
    /// Device name.
    pub device: String,
    /// `starting`, `disabled`, `creating`, `running`, `stopping`, `failed` or `closed`.
    pub state: String,
    /// The last enable value applied.
    pub enabled: bool,
    /// Events handed to the device.
    pub events_in: u64,
    /// Events the device registered.
    pub events_out: u64,
    /// Events waiting for the device now.
    pub queue_depth: u64,
    /// The most events that ever waited for it.
    pub queue_high_water: u64,
    /// Inputs dropped because its queue was full.
    pub dropped: u64,
    /// Failed `create` calls (errors, panics, timeouts).
    pub create_failures: u64,
    /// Creates started by the restart policy after a failure.
    pub restarts: u64,
    /// Seconds since the last event in or out; none yet: `null`.
    pub seconds_since_last_event: Option<f64>,
    /// Why the device last failed, if it ever did.
    pub last_error: Option<String>,
}

/// The lower-case name of a state (metric label values, `/status`).
pub fn state_name(state: ProxyState) -> &'static str {
    match state {
        ProxyState::Starting => "starting",
        ProxyState::Disabled => "disabled",
        ProxyState::Creating => "creating",
        ProxyState::Running => "running",
        ProxyState::Stopping => "stopping",
        ProxyState::Failed => "failed",
        ProxyState::Closed => "closed",
    }
}

const STATES: [ProxyState; 7] = [
    ProxyState::Starting,
    ProxyState::Disabled,
    ProxyState::Creating,
    ProxyState::Running,
    ProxyState::Stopping,
    ProxyState::Failed,
    ProxyState::Closed,
];

/// A histogram of atomics: per-bucket counts (not cumulative), their sum in
/// nanoseconds and their count.
#[derive(Debug)]
struct AtomicHistogram {
    buckets: [AtomicU64; REGISTER_BUCKETS.len() + 1],
    sum_ns: AtomicU64,
    count: AtomicU64,
}

impl AtomicHistogram {
    fn new() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_ns: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let index = REGISTER_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(REGISTER_BUCKETS.len());
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// (sum in seconds, count, per-bucket counts up to `+Inf`): the encoder makes
    /// the buckets cumulative.
    fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let mut count = 0;
        let mut buckets = Vec::with_capacity(REGISTER_BUCKETS.len() + 1);
        for (i, bucket) in self.buckets.iter().enumerate() {
            let n = bucket.load(Ordering::Relaxed);
            count += n;
            let bound = REGISTER_BUCKETS.get(i).copied().unwrap_or(f64::INFINITY);
            buckets.push((bound, n));
        }
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        // The count is the buckets' total, so the two always agree.
        (sum, count, buckets)
    }
}

/// The event-server connection.
#[derive(Debug)]
struct ConnectionMetrics {
    connected: AtomicBool,
    /// Monitor mode: connected to the Monitor Server and not blessed.
    standby: AtomicBool,
    connects: AtomicU64,
    notifications: AtomicU64,
    register: AtomicHistogram,
}

/// The embedded server's counts, sampled by the runner.
#[derive(Debug, Default)]
struct EmbeddedMetrics {
    present: AtomicBool,
    stored_events: AtomicU64,
    event_types: AtomicU64,
    subscribers: AtomicU64,
}

/// A loaded plugin, as the info metric shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginMetric {
    /// Plugin name.
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// `gateway-plugin-api` version it was built with.
    pub api_version: String,
    /// Its device type.
    pub device_type: String,
}

#[derive(Debug, Default)]
struct Lists {
    gateway: String,
    /// Configured devices, in configuration order.
    devices: Vec<Arc<DeviceMetrics>>,
    by_prefix: HashMap<EventType, Arc<DeviceMetrics>>,
    plugins: Vec<PluginMetric>,
}

/// Every metric of the process.
#[derive(Debug)]
pub struct Metrics {
    lists: Mutex<Lists>,
    connection: ConnectionMetrics,
    embedded: EmbeddedMetrics,
    started_ms: u64,
    /// Woken when a device's state or the connection changes (readiness, systemd).
    changed: Notify,
}

/// The process's metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

impl Metrics {
    fn new() -> Self {
        Self {
            lists: Mutex::new(Lists::default()),
            connection: ConnectionMetrics {
                connected: AtomicBool::new(false),
                standby: AtomicBool::new(false),
                connects: AtomicU64::new(0),
                notifications: AtomicU64::new(0),
                register: AtomicHistogram::new(),
            },
            embedded: EmbeddedMetrics::default(),
            started_ms: unix_ms(),
            changed: Notify::new(),
        }
    }

    fn lists(&self) -> MutexGuard<'_, Lists> {
        self.lists.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the gateway and its configured devices (in order); counters of devices
    /// that stay are kept, devices no longer configured are forgotten.
    pub fn configure(&self, spec: &crate::spec::GatewaySpec) {
        let mut lists = self.lists();
        lists.gateway = spec.name.clone();
        let mut by_prefix = HashMap::with_capacity(spec.devices.len());
        let mut devices = Vec::with_capacity(spec.devices.len());
        for device in &spec.devices {
            let prefix = spec.device_prefix(&device.device_type, &device.name);
            let metrics = lists.by_prefix.get(&prefix).cloned().unwrap_or_else(|| {
                Arc::new(DeviceMetrics::new(
                    &spec.name,
                    &device.device_type,
                    &device.name,
                ))
            });
            devices.push(metrics.clone());
            by_prefix.insert(prefix, metrics);
        }
        lists.devices = devices;
        lists.by_prefix = by_prefix;
        drop(lists);
        self.changed.notify_waiters();
    }

    /// The metrics of the device with this prefix (created for a device that was not
    /// configured through [`Metrics::configure`], e.g. in tests; not listed then).
    pub(crate) fn device(&self, prefix: &[String]) -> Arc<DeviceMetrics> {
        let mut lists = self.lists();
        if let Some(metrics) = lists.by_prefix.get(prefix) {
            return metrics.clone();
        }
        let part = |i: usize| prefix.get(i).map_or("", String::as_str);
        let metrics = Arc::new(DeviceMetrics::new(part(1), part(2), part(3)));
        lists.by_prefix.insert(prefix.to_vec(), metrics.clone());
        metrics
    }

    /// The configured devices' metrics.
    pub fn devices(&self) -> Vec<Arc<DeviceMetrics>> {
        self.lists().devices.clone()
    }

    /// Records a loaded plugin (once per plugin).
    pub(crate) fn plugin_loaded(&self, plugin: PluginMetric) {
        let mut lists = self.lists();
        if !lists.plugins.contains(&plugin) {
            lists.plugins.push(plugin);
        }
    }

    /// A connection to the event server is up (`true`) or ended (`false`).
    pub(crate) fn set_connected(&self, connected: bool) {
        if connected {
            self.connection.connects.fetch_add(1, Ordering::Relaxed);
        }
        self.connection
            .connected
            .store(connected, Ordering::Relaxed);
        self.changed.notify_waiters();
    }

    /// Monitor mode: this gateway is a standby (connected to its Monitor Server, not
    /// blessed), or not any more.
    pub(crate) fn set_standby(&self, standby: bool) {
        self.connection.standby.store(standby, Ordering::Relaxed);
        self.changed.notify_waiters();
    }

    /// Whether a connection to the event server is up.
    pub fn connected(&self) -> bool {
        self.connection.connected.load(Ordering::Relaxed)
    }

    /// `count` events notified by the event server.
    pub(crate) fn notified(&self, count: usize) {
        self.connection
            .notifications
            .fetch_add(count as u64, Ordering::Relaxed);
    }

    /// Publishes the embedded server's counts.
    pub(crate) fn set_embedded(
        &self,
        stored_events: usize,
        event_types: usize,
        subscribers: usize,
    ) {
        let e = &self.embedded;
        e.stored_events
            .store(stored_events as u64, Ordering::Relaxed);
        e.event_types.store(event_types as u64, Ordering::Relaxed);
        e.subscribers.store(subscribers as u64, Ordering::Relaxed);
        e.present.store(true, Ordering::Relaxed);
    }

    /// Wakes the waiters of [`Metrics::changed`].
    pub(crate) fn notify_changed(&self) {
        self.changed.notify_waiters();
    }

    /// Resolves at the next change of a device's state or of the connection (from
    /// the time it is polled or enabled).
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// `/ready`: connected, and every enabled device running.
    pub fn readiness(&self) -> Readiness {
        let devices = self.devices();
        let not_running: Vec<String> = devices
            .iter()
            .filter(|d| d.enabled() && d.state() != ProxyState::Running)
            .map(|d| format!("{}/{} ({})", d.device_type, d.device, state_name(d.state())))
            .collect();
        let settled = devices
            .iter()
            .all(|d| !matches!(d.state(), ProxyState::Starting | ProxyState::Creating));
        let running = devices
            .iter()
            .filter(|d| d.state() == ProxyState::Running)
            .count();
        let connected = self.connected();
        let standby = self.connection.standby.load(Ordering::Relaxed);
        Readiness {
            ready: connected && not_running.is_empty(),
            started: (connected && settled) || standby,
            connected,
            standby,
            devices: devices.len(),
            running,
            enabled: devices.iter().filter(|d| d.enabled()).count(),
            not_running,
        }
    }

    /// `/status`: the gateway, the connection and every device.
    pub fn status(&self) -> Status {
        let lists = self.lists();
        let gateway = lists.gateway.clone();
        let devices = lists.devices.clone();
        drop(lists);
        Status {
            gateway,
            connected: self.connected(),
            reconnects: self
                .connection
                .connects
                .load(Ordering::Relaxed)
                .saturating_sub(1),
            uptime_seconds: unix_ms().saturating_sub(self.started_ms) as f64 / 1000.0,
            devices: devices.iter().map(|d| d.status()).collect(),
        }
    }

    /// The Prometheus text format (0.0.4) of every metric.
    pub fn encode(&'static self) -> Result<String, std::fmt::Error> {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(Collector(self)));
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)?;
        Ok(text)
    }
}

/// What `/ready` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    /// Connected and every enabled device running.
    pub ready: bool,
    /// Connected and no device starting or being created, or a standby in monitor
    /// mode (systemd's READY=1).
    pub started: bool,
    /// Monitor mode: connected to the Monitor Server, not blessed (runs no devices).
    pub standby: bool,
    /// A connection to the event server is up.
    pub connected: bool,
    /// Configured devices.
    pub devices: usize,
    /// Devices running.
    pub running: usize,
    /// Devices enabled.
    pub enabled: usize,
    /// Enabled devices that are not running, `type/name (state)`.
    pub not_running: Vec<String>,
}

/// What `/status` answers.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Status {
    /// Gateway name.
    pub gateway: String,
    /// A connection to the event server is up.
    pub connected: bool,
    /// Connections made after the first.
    pub reconnects: u64,
    /// Seconds since the process started.
    pub uptime_seconds: f64,
    /// Every configured device.
    pub devices: Vec<DeviceStatus>,
}

/// A per-device metric read from one of its atomics: name, help, type, reader.
type DeviceValue = (
    &'static str,
    &'static str,
    MetricType,
    fn(&DeviceMetrics) -> u64,
);

/// The per-device counters and gauges (besides the state and the time since the last
/// event).
const DEVICE_VALUES: [DeviceValue; 8] = [
    (
        "gateway_device_events_in",
        "Events handed to the device",
        MetricType::Counter,
        |d| d.events_in.load(Ordering::Relaxed),
    ),
    (
        "gateway_device_events_out",
        "Events the device registered",
        MetricType::Counter,
        |d| d.events_out.load(Ordering::Relaxed),
    ),
    (
        "gateway_device_dropped",
        "Inputs dropped because the device's queue was full",
        MetricType::Counter,
        |d| d.dropped.load(Ordering::Relaxed),
    ),
    (
        "gateway_device_create_failures",
        "Failed device creates (errors, panics, timeouts)",
        MetricType::Counter,
        |d| d.create_failures.load(Ordering::Relaxed),
    ),
    (
        "gateway_device_restarts",
        "Creates started by the restart policy after a failure",
        MetricType::Counter,
        |d| d.restarts.load(Ordering::Relaxed),
    ),
    (
        "gateway_device_enabled",
        "1 when the device's last enable value is true",
        MetricType::Gauge,
        |d| u64::from(d.enabled()),
    ),
    (
        "gateway_device_queue_depth",
        "Events waiting for the device (its queue and the engine's hand-over)",
        MetricType::Gauge,
        |d| d.queue_depth.load(Ordering::Relaxed),
    ),
    (
        "gateway_device_queue_high_water",
        "The most events that ever waited for the device",
        MetricType::Gauge,
        |d| d.queue_high_water.load(Ordering::Relaxed),
    ),
];

/// Encodes [`Metrics`] at every scrape.
#[derive(Debug)]
struct Collector(&'static Metrics);

type Labels<'a> = [(&'static str, &'a str); 3];

fn device_labels(d: &DeviceMetrics) -> Labels<'_> {
    [
        ("gateway", d.gateway.as_str()),
        ("device_type", d.device_type.as_str()),
        ("device", d.device.as_str()),
    ]
}

impl prometheus_client::collector::Collector for Collector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let metrics = self.0;
        let lists = metrics.lists();
        let gateway = lists.gateway.clone();
        let devices = lists.devices.clone();
        let plugins = lists.plugins.clone();
        drop(lists);

        // Per device.
        {
            let mut family = encoder.encode_descriptor(
                "gateway_device_state",
                "Device state: 1 for the state it is in, 0 for the others",
                None,
                MetricType::Gauge,
            )?;
            for d in &devices {
                let state = d.state();
                for s in STATES {
                    let [g, t, n] = device_labels(d);
                    let labels = [g, t, n, ("state", state_name(s))];
                    ConstGauge::new(i64::from(s == state))
                        .encode(family.encode_family(&labels)?)?;
                }
            }
        }
        for (name, help, kind, value) in DEVICE_VALUES {
            let mut family = encoder.encode_descriptor(name, help, None, kind)?;
            for d in &devices {
                let labels = device_labels(d);
                let encoder = family.encode_family(&labels)?;
                let value = value(d);
                if kind == MetricType::Counter {
                    ConstCounter::new(value).encode(encoder)?;
                } else {
                    ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX)).encode(encoder)?;
                }
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "gateway_device_seconds_since_last_event",
                "Seconds since the device's last event in or out (absent before the first)",
                None,
                MetricType::Gauge,
            )?;
            let now = unix_ms();
            for d in &devices {
                let last = d.last_event_ms.load(Ordering::Relaxed);
                if last == 0 {
                    continue;
                }
                let labels = device_labels(d);
                ConstGauge::new(now.saturating_sub(last) as f64 / 1000.0)
                    .encode(family.encode_family(&labels)?)?;
            }
        }

        // The event-server connection.
        let c = &metrics.connection;
        let labels = [("gateway", gateway.as_str())];
        ConstGauge::new(i64::from(c.connected.load(Ordering::Relaxed))).encode(
            encoder
                .encode_descriptor(
                    "gateway_event_server_connected",
                    "1 while a connection to the event server is up",
                    None,
                    MetricType::Gauge,
                )?
                .encode_family(&labels)?,
        )?;
        ConstCounter::new(c.connects.load(Ordering::Relaxed).saturating_sub(1)).encode(
            encoder
                .encode_descriptor(
                    "gateway_event_server_reconnects",
                    "Connections to the event server made after the first",
                    None,
                    MetricType::Counter,
                )?
                .encode_family(&labels)?,
        )?;
        ConstCounter::new(c.notifications.load(Ordering::Relaxed)).encode(
            encoder
                .encode_descriptor(
                    "gateway_event_server_notified_events",
                    "Events the event server notified",
                    None,
                    MetricType::Counter,
                )?
                .encode_family(&labels)?,
        )?;
        {
            let (sum, count, buckets) = c.register.snapshot();
            let mut family = encoder.encode_descriptor(
                "gateway_event_server_register_seconds",
                "Round trip of register requests answered by the event server",
                None,
                MetricType::Histogram,
            )?;
            family
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }

        // Plugins.
        {
            let mut family = encoder.encode_descriptor(
                "gateway_plugin",
                "A loaded plugin: name, version, plugin API version and device type",
                None,
                MetricType::Info,
            )?;
            for p in &plugins {
                let labels = [
                    ("plugin", p.name.as_str()),
                    ("version", p.version.as_str()),
                    ("api_version", p.api_version.as_str()),
                    ("device_type", p.device_type.as_str()),
                ];
                family.encode_info(&labels)?;
            }
        }

        // The embedded server.
        let e = &metrics.embedded;
        if e.present.load(Ordering::Relaxed) {
            let gauges = [
                (
                    "gateway_embedded_stored_events",
                    "Events the embedded server keeps for queries",
                    &e.stored_events,
                ),
                (
                    "gateway_embedded_event_types",
                    "Distinct event types the embedded server stores",
                    &e.event_types,
                ),
                (
                    "gateway_embedded_subscribers",
                    "Connections to the embedded server (in-process and TCP)",
                    &e.subscribers,
                ),
            ];
            for (name, help, value) in gauges {
                ConstGauge::new(i64::try_from(value.load(Ordering::Relaxed)).unwrap_or(i64::MAX))
                    .encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)?;
            }
        }

        // The process.
        let process = crate::ops::process::sample();
        if let Some(rss) = process.rss_bytes {
            ConstGauge::new(i64::try_from(rss).unwrap_or(i64::MAX)).encode(
                encoder.encode_descriptor(
                    "process_resident_memory_bytes",
                    "Resident memory size in bytes",
                    None,
                    MetricType::Gauge,
                )?,
            )?;
        }
        if let Some(cpu) = process.cpu_seconds {
            ConstCounter::new(cpu).encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "User and system CPU time spent in seconds",
                None,
                MetricType::Counter,
            )?)?;
        }
        if let Some(fds) = process.open_fds {
            ConstGauge::new(i64::try_from(fds).unwrap_or(i64::MAX)).encode(
                encoder.encode_descriptor(
                    "process_open_fds",
                    "Open file descriptors",
                    None,
                    MetricType::Gauge,
                )?,
            )?;
        }
        ConstGauge::new(metrics.started_ms as f64 / 1000.0).encode(encoder.encode_descriptor(
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch in seconds",
            None,
            MetricType::Gauge,
        )?)?;
        Ok(())
    }
}

/// The event client of a device, counting what it registers.
pub(crate) struct CountingClient {
    inner: Arc<dyn DeviceClient>,
    metrics: Arc<DeviceMetrics>,
}

impl CountingClient {
    pub(crate) fn wrap(
        inner: Arc<dyn DeviceClient>,
        metrics: Arc<DeviceMetrics>,
    ) -> Arc<dyn DeviceClient> {
        Arc::new(Self { inner, metrics })
    }
}

impl DeviceClient for CountingClient {
    fn register(&self, events: Vec<RegisterEvent>) -> BoxFuture<'_, Result<(), ClientError>> {
        self.metrics.events_out(events.len());
        self.inner.register(events)
    }

    fn register_with_response(
        &self,
        events: Vec<RegisterEvent>,
    ) -> BoxFuture<'_, Result<Option<Vec<Event>>, ClientError>> {
        self.metrics.events_out(events.len());
        self.inner.register_with_response(events)
    }

    fn query(&self, params: QueryParams) -> BoxFuture<'_, Result<QueryResult, ClientError>> {
        self.inner.query(params)
    }
}

/// The connection's event client, timing the register requests the server answers.
pub(crate) struct TimedClient {
    inner: Arc<dyn DeviceClient>,
}

impl TimedClient {
    pub(crate) fn wrap(inner: Arc<dyn DeviceClient>) -> Arc<dyn DeviceClient> {
        Arc::new(Self { inner })
    }
}

impl DeviceClient for TimedClient {
    fn register(&self, events: Vec<RegisterEvent>) -> BoxFuture<'_, Result<(), ClientError>> {
        self.inner.register(events)
    }

    fn register_with_response(
        &self,
        events: Vec<RegisterEvent>,
    ) -> BoxFuture<'_, Result<Option<Vec<Event>>, ClientError>> {
        let started = std::time::Instant::now();
        let call = self.inner.register_with_response(events);
        Box::pin(async move {
            let result = call.await;
            global().connection.register.observe(started.elapsed());
            result
        })
    }

    fn query(&self, params: QueryParams) -> BoxFuture<'_, Result<QueryResult, ClientError>> {
        self.inner.query(params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_count_each_observation_once_and_end_with_inf() {
        let h = AtomicHistogram::new();
        h.observe(Duration::from_micros(100));
        h.observe(Duration::from_millis(30));
        h.observe(Duration::from_secs(20));
        let (sum, count, buckets) = h.snapshot();
        assert_eq!(count, 3);
        assert!((sum - 20.0301).abs() < 1e-6, "{sum}");
        assert_eq!(buckets[0], (0.0005, 1));
        assert_eq!(buckets[5], (0.025, 0));
        assert_eq!(buckets[6], (0.05, 1));
        assert_eq!(buckets.last(), Some(&(f64::INFINITY, 1)));
        assert_eq!(buckets.iter().map(|b| b.1).sum::<u64>(), 3);
    }

    #[test]
    fn readiness_needs_every_enabled_device_running_and_a_standby_is_started() {
        let metrics = Metrics::new();
        let a = metrics.device(&["gateway".into(), "g".into(), "t".into(), "a".into()]);
        let b = metrics.device(&["gateway".into(), "g".into(), "t".into(), "b".into()]);
        metrics.lists().devices = vec![a.clone(), b.clone()];
        let r = metrics.readiness();
        assert!(!r.ready && !r.started && !r.connected);
        metrics.set_connected(true);
        a.set_state(ProxyState::Running, true);
        b.set_state(ProxyState::Creating, true);
        let r = metrics.readiness();
        assert!(!r.ready && !r.started, "{r:?}");
        assert_eq!(r.not_running, ["t/b (creating)"]);
        b.set_state(ProxyState::Disabled, false);
        let r = metrics.readiness();
        assert!(r.ready && r.started, "{r:?}");
        b.set_state(ProxyState::Failed, true);
        let r = metrics.readiness();
        assert!(!r.ready && r.started, "a failed device has started: {r:?}");
        // Monitor mode: a standby runs nothing, is not ready, and has started.
        metrics.set_connected(false);
        metrics.set_standby(true);
        let r = metrics.readiness();
        assert!(!r.ready && r.started && r.standby, "{r:?}");
        assert_eq!(metrics.status().reconnects, 0);
    }

    #[test]
    fn queue_high_water_keeps_the_maximum() {
        let d = DeviceMetrics::new("g", "t", "d");
        d.set_queue_depth(5);
        d.set_queue_depth(2);
        let status = d.status();
        assert_eq!((status.queue_depth, status.queue_high_water), (2, 5));
    }
}
