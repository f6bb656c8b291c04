//! The runner: connects to the event server (a remote hat-event server, or the
//! embedded one), keeps an engine for every *active* connection
//! (`docs/gateway-semantics.md` section 5.3), reconnects forever with backoff
//! (section 5.1 there), and shuts down cleanly: every running device is closed and
//! its `running=false` registered before the connection closes.
//!
//! Entry point: [`run`].

use std::sync::Arc;
use std::time::Duration;

use gateway_eventer::client::{Client, ClientConfig};
use gateway_model::{Notification, QueryLatestParams, QueryParams, RegisterEvent, Status};
use gateway_monitor::client::{ComponentEvent, MonitorComponent, MonitorConfig, MonitorError};
use gateway_monitor::ComponentInfo;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::device::DeviceClient;
use crate::embedded::{self, EmbeddedConfig, EmbeddedServer};
use crate::engine::{self, Engine, EngineClosing};
use crate::spec::{EventServerSpec, GatewaySpec};

/// First delay before reconnecting after a refused or lost connection.
pub const RECONNECT_INITIAL_BACKOFF: Duration = Duration::from_millis(500);

/// The reconnect delay doubles up to this cap.
pub const RECONNECT_MAX_BACKOFF: Duration = Duration::from_secs(5);

/// In monitor mode, the fixed delay before reconnecting to the active event server
/// (hat-event's `hat.event.component` `reconnect_delay`).
pub const MONITOR_RECONNECT_DELAY: Duration = Duration::from_millis(500);

/// The gateway's spec as it is now: a reload ([`crate::reload`]) sends a new one.
/// Every engine starts on the latest, and a running engine moves to each new one
/// ([`Engine::reconfigure`]). The event-server section and the name never change.
pub type Specs = watch::Receiver<Arc<GatewaySpec>>;

/// A [`Specs`] that never changes.
fn fixed(spec: GatewaySpec) -> Specs {
    // The sender is dropped: `changed` then never resolves (see `next_spec`).
    watch::channel(Arc::new(spec)).1
}

/// The next spec a reload sent; pending forever when no reload can come.
async fn next_spec(specs: &mut Specs) -> Arc<GatewaySpec> {
    match specs.changed().await {
        Ok(()) => specs.borrow_and_update().clone(),
        Err(_) => std::future::pending().await,
    }
}

/// What ends [`run`] with an error. Event-server connection problems never do (the
/// runner reconnects); in monitor mode the monitor connection's end does, as hat's
/// gateway terminates then.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The embedded event server could not listen on its configured address.
    #[error("embedded event server cannot listen: {0}")]
    Listen(#[from] gateway_eventer::server::ServerError),
    /// Monitor mode: the monitor connection could not be made, was lost or closed by
    /// the Monitor Server (`MsgClose`).
    #[error(transparent)]
    Monitor(#[from] MonitorError),
}

/// Runs a gateway until `shutdown` is cancelled, then closes every device (its
/// `running=false` registered while the connection is still open), closes the
/// connection and returns `Ok(())`.
///
/// * `EventServerSpec::Remote`: connects to `host:port` as `gateway/<name>` with the
///   subscription `gateway/<name>/?/?/system/*`; a refused or lost connection is
///   retried forever (0.5 s doubling to 5 s); every new connection gets a new engine.
/// * `EventServerSpec::Embedded`: starts an [`EmbeddedServer`] in this process (and
///   its TCP side when `listen` is set); the engine uses it without a socket.
///
/// * `EventServerSpec::Monitor`: a hat-monitor component (see [`run_monitor`]).
///
/// Returns an error when the embedded server cannot listen, or in monitor mode when
/// the monitor connection cannot be made or ends.
pub async fn run(spec: GatewaySpec, shutdown: CancellationToken) -> Result<(), RunError> {
    run_reloadable(fixed(spec), shutdown).await
}

/// [`run`] on a spec that reloads may replace: the devices follow each new one.
pub async fn run_reloadable(specs: Specs, shutdown: CancellationToken) -> Result<(), RunError> {
    let spec = specs.borrow().clone();
    match spec.event_server.clone() {
        EventServerSpec::Remote { host, port, token } => {
            run_remote(specs, &host, port, token, shutdown).await;
            Ok(())
        }
        EventServerSpec::Monitor {
            host,
            port,
            gateway_group,
            event_server_group,
        } => {
            let monitor = MonitorSpec {
                host,
                port,
                gateway_group,
                event_server_group,
            };
            run_monitor(specs, monitor, shutdown).await
        }
        EventServerSpec::Embedded { .. } => {
            let server = EmbeddedServer::new(EmbeddedConfig::default());
            run_embedded_reloadable(specs, server, shutdown).await
        }
    }
}

/// Runs a gateway on a given embedded server (so a caller can keep a handle to it,
/// e.g. tests or a CLI that prints the store). Listens on `Embedded::listen` when
/// set; with another event-server mode in `spec`, nothing is listened on and no
/// devices are enabled. Returns after `shutdown`, like [`run`].
pub async fn run_embedded(
    spec: &GatewaySpec,
    server: EmbeddedServer,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    run_embedded_reloadable(fixed(spec.clone()), server, shutdown).await
}

/// [`run_embedded`] on a spec that reloads may replace; with `enable_devices`, the
/// devices a reload adds are enabled as at start.
pub async fn run_embedded_reloadable(
    mut specs: Specs,
    server: EmbeddedServer,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let spec = specs.borrow_and_update().clone();
    let span = tracing::info_span!("gateway", gateway = %spec.name, mode = "embedded");
    async move {
        let (listen, enable_devices) = match &spec.event_server {
            EventServerSpec::Embedded {
                listen,
                enable_devices,
            } => (listen.clone(), *enable_devices),
            EventServerSpec::Remote { .. } | EventServerSpec::Monitor { .. } => (None, false),
        };
        let listener = match listen {
            Some((host, port)) => Some(server.listen(&format!("{host}:{port}"), None).await?),
            None => None,
        };
        if enable_devices {
            enable_unconfigured_devices(&spec, &server).await;
        }
        let tcp = listener
            .as_ref()
            .map(embedded::TcpListenerHandle::connection_counter);
        let sampler = tokio::spawn(crate::ops::sample_embedded(server.clone(), move || {
            tcp.as_ref().map_or(0, |count| count())
        }));
        // With enable_devices, the devices a reload adds are enabled too.
        let enabler = enable_devices.then(|| {
            let mut specs = specs.clone();
            let server = server.clone();
            let cancel = shutdown.clone();
            tokio::spawn(
                async move {
                    loop {
                        let spec = tokio::select! {
                            () = cancel.cancelled() => break,
                            spec = next_spec(&mut specs) => spec,
                        };
                        enable_unconfigured_devices(&spec, &server).await;
                    }
                }
                .in_current_span(),
            )
        });
        let mut backoff = Backoff::new();
        let mut previous = None;
        loop {
            // The latest spec's: in the hat-gateway-0.6 layout, one per device.
            let subscriptions = engine::gateway_subscriptions(&specs.borrow());
            let connected = server
                .connect(&engine::client_name(&spec.name), subscriptions)
                .await;
            let end = match connected {
                Ok((connection, notifications, status)) => {
                    let client: Arc<dyn DeviceClient> = Arc::new(connection);
                    let source = NotificationSource::Local(notifications);
                    run_connection(&mut specs, client, source, status, &shutdown, &mut previous)
                        .await
                }
                Err(err) => {
                    // The subscription is built from a validated name; this is a bug.
                    tracing::error!(error = %err, "cannot connect to the embedded server");
                    ConnectionEnd::ConnectionLost
                }
            };
            if end == ConnectionEnd::Shutdown || !backoff.wait(&shutdown).await {
                break;
            }
        }
        if let Some(enabler) = enabler {
            let _ = enabler.await;
        }
        finish_closing(previous).await;
        sampler.abort();
        if let Some(listener) = listener {
            listener.close().await;
        }
        tracing::info!("gateway stopped");
        Ok(())
    }
    .instrument(span)
    .await
}

/// `enable_devices` (`docs/gateway-semantics.md` 3.2.1): `enable=true` for every
/// device with no enable event.
async fn enable_unconfigured_devices(spec: &GatewaySpec, server: &EmbeddedServer) {
    let enable_types: Vec<_> = spec
        .devices
        .iter()
        .map(|d| engine::enable_event_type(&spec.device_prefix(&d.device_type, &d.name)))
        .collect();
    if enable_types.is_empty() {
        return;
    }
    let existing = server.query(&QueryParams::Latest(QueryLatestParams {
        event_types: Some(enable_types.clone()),
    }));
    let missing: Vec<RegisterEvent> = enable_types
        .into_iter()
        .filter(|t| !existing.events.iter().any(|e| &e.event_type == t))
        .map(|event_type| RegisterEvent {
            event_type,
            source_timestamp: None,
            payload: embedded::json_true(),
        })
        .collect();
    if !missing.is_empty() {
        tracing::info!(devices = missing.len(), "enabling devices (enable_devices)");
        server.register(missing).await;
    }
}

async fn run_remote(
    mut specs: Specs,
    host: &str,
    port: u16,
    token: Option<String>,
    shutdown: CancellationToken,
) {
    let spec = specs.borrow().clone();
    let span =
        tracing::info_span!("gateway", gateway = %spec.name, server = %format!("{host}:{port}"));
    async move {
        let mut backoff = Backoff::new();
        let mut previous = None;
        loop {
            let mut config = ClientConfig::new(engine::client_name(&spec.name));
            config.client_token = token.clone();
            config.subscriptions = engine::gateway_subscriptions(&specs.borrow());
            let connected = tokio::select! {
                () = shutdown.cancelled() => break,
                connected = Client::connect((host, port), config) => connected,
            };
            match connected {
                Ok((client, notifications)) => {
                    tracing::info!(status = client.status().as_str(), "connected to event server");
                    backoff.reset();
                    let end =
                        run_remote_connection(client, notifications, &mut specs, &shutdown, &mut previous)
                            .await;
                    if end == ConnectionEnd::Shutdown {
                        break;
                    }
                    tracing::warn!("event server connection lost; reconnecting");
                }
                Err(err) => {
                    tracing::warn!(error = %err, retry_s = backoff.delay.as_secs_f64(), "cannot connect to event server");
                }
            }
            if !backoff.wait(&shutdown).await {
                break;
            }
        }
        finish_closing(previous).await;
        tracing::info!("gateway stopped");
    }
    .instrument(span)
    .await;
}

/// Where the monitor is and which groups to use (`EventServerSpec::Monitor`).
#[derive(Debug, Clone)]
struct MonitorSpec {
    host: String,
    port: u16,
    gateway_group: String,
    event_server_group: String,
}

/// The active event server as its monitor component data describes it
/// (`hat.event.component.ServerData`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ServerData {
    server_id: i64,
    host: String,
    port: u16,
    token: Option<String>,
}

impl ServerData {
    /// Reads hat-event-server's component data: `{"server_id": int, "eventer_server":
    /// {"host": str, "port": int}, "server_token": str | null}`.
    fn from_info(info: &ComponentInfo) -> Result<Self, String> {
        let data = &info.data;
        let server_id = data
            .get("server_id")
            .and_then(serde_json::Value::as_i64)
            .ok_or("no integer server_id")?;
        let host = data
            .pointer("/eventer_server/host")
            .and_then(serde_json::Value::as_str)
            .ok_or("no string eventer_server.host")?
            .to_owned();
        let port = data
            .pointer("/eventer_server/port")
            .and_then(serde_json::Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
            .ok_or("no eventer_server.port in 0..=65535")?;
        let token = match data.get("server_token") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(t)) => Some(t.clone()),
            Some(_) => return Err("server_token is neither a string nor null".into()),
        };
        Ok(Self {
            server_id,
            host,
            port,
            token,
        })
    }
}

/// The active member of `group` with usable data: blessed (request token equal to its
/// response token) and its data readable. A member with bad data is skipped with a
/// warning, once per component (`warned`).
fn active_server(
    components: &[ComponentInfo],
    group: &str,
    warned: &mut std::collections::HashSet<(i64, i64)>,
) -> Option<ServerData> {
    let mut found = None;
    for info in components
        .iter()
        .filter(|i| i.group.as_deref() == Some(group))
    {
        match ServerData::from_info(info) {
            Ok(data) => {
                if found.is_none() && info.is_active() {
                    found = Some(data);
                }
            }
            Err(reason) => {
                if warned.insert((info.mid, info.cid)) {
                    tracing::warn!(
                        name = info.name.as_deref().unwrap_or("?"),
                        cid = info.cid,
                        mid = info.mid,
                        reason = %reason,
                        data = %info.data,
                        "event server in the monitor group has bad component data: skipped"
                    );
                }
            }
        }
    }
    found
}

/// The task that keeps a connection (and an engine) to one active event server.
struct ServerTask {
    data: ServerData,
    cancel: CancellationToken,
    handle: tokio::task::JoinHandle<Option<EngineClosing>>,
}

impl ServerTask {
    fn start(specs: Specs, data: ServerData, previous: Option<EngineClosing>) -> Self {
        let cancel = CancellationToken::new();
        let span = tracing::info_span!(
            "event_server",
            server_id = data.server_id,
            server = %format!("{}:{}", data.host, data.port)
        );
        let handle = tokio::spawn(
            server_loop(specs, data.clone(), cancel.clone(), previous).instrument(span),
        );
        Self {
            data,
            cancel,
            handle,
        }
    }

    /// Stops the task: its devices are closed (their `running=false` registered while
    /// the connection is open). Returns an engine still closing in the background.
    async fn stop(self) -> Option<EngineClosing> {
        self.cancel.cancel();
        match self.handle.await {
            Ok(previous) => previous,
            Err(err) => {
                tracing::error!(error = %err, "event server task failed");
                None
            }
        }
    }
}

/// Connects to one event server (with its `server_id` filter and token) and runs an
/// engine per connection, reconnecting every [`MONITOR_RECONNECT_DELAY`] until
/// `cancel`.
async fn server_loop(
    mut specs: Specs,
    data: ServerData,
    cancel: CancellationToken,
    mut previous: Option<EngineClosing>,
) -> Option<EngineClosing> {
    let spec = specs.borrow().clone();
    loop {
        let mut config = ClientConfig::new(engine::client_name(&spec.name));
        config.client_token = data.token.clone();
        config.subscriptions = engine::gateway_subscriptions(&specs.borrow());
        config.server_id = Some(data.server_id);
        let connected = tokio::select! {
            () = cancel.cancelled() => break,
            connected = Client::connect((data.host.as_str(), data.port), config) => connected,
        };
        match connected {
            Ok((client, notifications)) => {
                tracing::info!(
                    status = client.status().as_str(),
                    "connected to the active event server"
                );
                let end = run_remote_connection(
                    client,
                    notifications,
                    &mut specs,
                    &cancel,
                    &mut previous,
                )
                .await;
                if end == ConnectionEnd::Shutdown {
                    break;
                }
                tracing::warn!("event server connection lost; reconnecting");
            }
            Err(err) => {
                tracing::warn!(
                    error = %err,
                    retry_s = MONITOR_RECONNECT_DELAY.as_secs_f64(),
                    "cannot connect to the active event server"
                );
            }
        }
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(MONITOR_RECONNECT_DELAY) => {}
        }
    }
    previous
}

/// Monitor mode (`docs/gateway-semantics.md` 5.5), as hat-gateway with
/// `hat.event.component`: connects to the local Monitor Server as component
/// `<name>` in `gateway_group` (data `null`) and declares itself ready. While this
/// gateway is blessed there, it connects to the blessed member of `event_server_group`
/// (its component data gives `server_id`, the Eventer address and token) with the
/// `server_id` filter, runs an engine per connection, reconnects every 0.5 s, and
/// moves to a new active server when it changes (devices closed on the old one,
/// created on the new one). When the blessing is revoked, the devices are closed
/// first and only then is the blessing token given back.
///
/// Returns `Ok(())` after `shutdown` (devices closed first), and an error when the
/// monitor connection cannot be made, is lost or is closed by the server (`MsgClose`):
/// the devices are closed and the caller exits non-zero, as hat-gateway does.
async fn run_monitor(
    specs: Specs,
    monitor: MonitorSpec,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let spec = specs.borrow().clone();
    let span = tracing::info_span!(
        "gateway",
        gateway = %spec.name,
        monitor = %format!("{}:{}", monitor.host, monitor.port),
        group = %monitor.gateway_group
    );
    async move {
        let connect = MonitorComponent::connect(
            (monitor.host.as_str(), monitor.port),
            &spec.name,
            &monitor.gateway_group,
            "null",
            MonitorConfig::default(),
        );
        let mut component = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            connected = connect => match connected {
                Ok(component) => component,
                Err(err) => {
                    tracing::error!(error = %err, "cannot connect to the monitor server: exiting");
                    return Err(RunError::Monitor(err));
                }
            },
        };
        tracing::info!("connected to the monitor server; standby until blessed");
        component.set_ready(true);
        let metrics = crate::ops::metrics::global();
        metrics.set_standby(true);
        let mut blessed = false;
        let mut task: Option<ServerTask> = None;
        let mut previous: Option<EngineClosing> = None;
        let mut warned = std::collections::HashSet::new();
        // "No active event server" logged once per wait.
        let mut waiting_logged = false;
        let result = loop {
            let event = tokio::select! {
                () = shutdown.cancelled() => break Ok(()),
                event = component.next() => event,
            };
            match event {
                Err(err) => break Err(err),
                Ok(ComponentEvent::Start) => {
                    blessed = true;
                    metrics.set_standby(false);
                    tracing::info!("blessed in the gateway group: active, running devices");
                }
                Ok(ComponentEvent::Stop) => {
                    blessed = false;
                    metrics.set_standby(true);
                    tracing::info!("blessing revoked: stopping devices (standby)");
                }
                Ok(ComponentEvent::StateChanged) => {}
            }
            let wanted = if blessed {
                active_server(
                    component.component().components(),
                    &monitor.event_server_group,
                    &mut warned,
                )
            } else {
                None
            };
            if task.as_ref().map(|t| &t.data) != wanted.as_ref() {
                if let Some(old) = task.take() {
                    tracing::info!(server_id = old.data.server_id, "leaving event server");
                    previous = old.stop().await.or(previous);
                }
                if let Some(data) = wanted {
                    tracing::info!(
                        server_id = data.server_id,
                        server = %format!("{}:{}", data.host, data.port),
                        "active event server"
                    );
                    task = Some(ServerTask::start(specs.clone(), data, previous.take()));
                }
            }
            if blessed && task.is_none() {
                if !waiting_logged {
                    waiting_logged = true;
                    tracing::warn!(
                        group = %monitor.event_server_group,
                        "no active event server in the monitor group; waiting"
                    );
                }
            } else {
                waiting_logged = false;
            }
            if !blessed {
                // After a Stop the devices are closed now: give the blessing back (a
                // no-op unless a Stop is pending).
                component.runner_stopped();
            }
        };
        if let Some(old) = task.take() {
            previous = old.stop().await.or(previous);
        }
        finish_closing(previous).await;
        component.close().await;
        match result {
            Ok(()) => {
                tracing::info!("gateway stopped");
                Ok(())
            }
            Err(err) => {
                tracing::error!(error = %err, "monitor connection ended: exiting");
                Err(RunError::Monitor(err))
            }
        }
    }
    .instrument(span)
    .await
}

/// On shutdown: waits for an engine still closing in the background (its closes are
/// bounded by each device's `close_timeout`).
async fn finish_closing(previous: Option<EngineClosing>) {
    if let Some(previous) = previous {
        previous.wait().await;
    }
}

/// Reconnect delay: 0.5 s doubling to 5 s, reset after a successful connect.
struct Backoff {
    delay: Duration,
}

impl Backoff {
    fn new() -> Self {
        Self {
            delay: RECONNECT_INITIAL_BACKOFF,
        }
    }

    fn reset(&mut self) {
        self.delay = RECONNECT_INITIAL_BACKOFF;
    }

    /// Sleeps the current delay and doubles it; false when shutdown came first.
    async fn wait(&mut self, shutdown: &CancellationToken) -> bool {
        let delay = self.delay;
        self.delay = (self.delay * 2).min(RECONNECT_MAX_BACKOFF);
        tokio::select! {
            () = shutdown.cancelled() => false,
            () = tokio::time::sleep(delay) => true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnectionEnd {
    Shutdown,
    ConnectionLost,
}

/// Where a connection's notifications come from.
enum NotificationSource {
    Local(mpsc::Receiver<Notification>),
    Remote(mpsc::Receiver<Notification>, Client),
}

impl NotificationSource {
    /// Next notification; `None` when the connection has ended. Cancel safe.
    async fn recv(&mut self) -> Option<Notification> {
        match self {
            Self::Local(receiver) => receiver.recv().await,
            Self::Remote(receiver, client) => tokio::select! {
                notification = receiver.recv() => notification,
                reason = client.closed() => {
                    tracing::warn!(reason = %reason, "event server connection closed");
                    None
                }
            },
        }
    }
}

/// One connection: an engine while the connection is active (section 5.3).
///
/// An engine that ends while the gateway goes on (connection lost, server not
/// operational) closes in the background into `previous`: the next engine starts at
/// once and only each device's own first `create` waits for its old instance, so a
/// hung plugin call never holds up the others (section 7.6).
/// Runs the devices on a connection to a remote event server (direct or the one a
/// monitor named) until it ends, then closes the client.
async fn run_remote_connection(
    client: Client,
    notifications: mpsc::Receiver<Notification>,
    specs: &mut Specs,
    shutdown: &CancellationToken,
    previous: &mut Option<EngineClosing>,
) -> ConnectionEnd {
    let status = client.status();
    let device_client: Arc<dyn DeviceClient> = Arc::new(client.clone());
    let source = NotificationSource::Remote(notifications, client.clone());
    let end = run_connection(specs, device_client, source, status, shutdown, previous).await;
    client.close().await;
    end
}

async fn run_connection(
    specs: &mut Specs,
    client: Arc<dyn DeviceClient>,
    mut source: NotificationSource,
    mut status: Status,
    shutdown: &CancellationToken,
    previous: &mut Option<EngineClosing>,
) -> ConnectionEnd {
    let metrics = crate::ops::metrics::global();
    metrics.set_connected(true);
    let client = crate::ops::metrics::TimedClient::wrap(client);
    // The spec the engine runs: the latest; a reload moves it to the next.
    let mut spec = specs.borrow_and_update().clone();
    // `require_operational` is in the event-server section, which a reload never changes.
    let require_operational = spec.require_operational;
    let active = |status: Status| !require_operational || status == Status::Operational;
    let start = |spec: &GatewaySpec, previous: &Option<EngineClosing>| {
        Engine::start_after(
            spec,
            client.clone(),
            shutdown.child_token(),
            previous.as_ref(),
        )
    };
    let mut engine = active(status).then(|| start(&spec, previous));
    if engine.is_none() {
        tracing::info!(
            status = status.as_str(),
            "waiting for the event server to be operational"
        );
    }
    let end = loop {
        tokio::select! {
            () = shutdown.cancelled() => break ConnectionEnd::Shutdown,
            notification = source.recv() => match notification {
                None => break ConnectionEnd::ConnectionLost,
                Some(Notification::Status(new_status)) => {
                    tracing::info!(status = new_status.as_str(), "event server status");
                    status = new_status;
                    match (active(status), engine.take()) {
                        (true, None) => engine = Some(start(&spec, previous)),
                        (false, Some(old)) => {
                            tracing::info!("event server not operational: stopping devices");
                            *previous = Some(old.close_in_background());
                        }
                        (_, current) => engine = current,
                    }
                }
                Some(Notification::Events(events)) => {
                    metrics.notified(events.len());
                    match engine.as_mut() {
                        Some(engine) => engine.route(events),
                        // Behaviour 15: not kept for a later engine.
                        None => tracing::debug!(events = events.len(), "no engine: events discarded"),
                    }
                }
            },
            new = next_spec(specs) => {
                if let Some(engine) = engine.as_mut() {
                    let done = engine.reconfigure(&spec, &new);
                    tracing::info!(
                        added = done.added,
                        removed = done.removed,
                        changed = done.changed,
                        kept = done.kept,
                        "devices reconfigured"
                    );
                }
                spec = new;
            }
            err = engine_fatal(&mut engine) => {
                tracing::warn!(error = %err, "engine failed");
                break ConnectionEnd::ConnectionLost;
            }
        }
    };
    if let Some(engine) = engine {
        match end {
            ConnectionEnd::Shutdown => engine.close().await,
            ConnectionEnd::ConnectionLost => *previous = Some(engine.close_in_background()),
        }
    }
    metrics.set_connected(false);
    end
}

async fn engine_fatal(engine: &mut Option<Engine>) -> engine::EngineError {
    match engine {
        Some(engine) => engine.fatal().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_monitor::{BlessingReq, BlessingRes};
    use serde_json::json;

    fn server(cid: i64, data: serde_json::Value, active: bool) -> ComponentInfo {
        ComponentInfo {
            cid,
            mid: 0,
            name: Some(format!("event{cid}")),
            group: Some("event".into()),
            data,
            rank: 1,
            blessing_req: BlessingReq {
                token: active.then_some(cid),
                timestamp: None,
            },
            blessing_res: BlessingRes {
                token: active.then_some(cid),
                ready: true,
            },
        }
    }

    fn data(id: i64, token: serde_json::Value) -> serde_json::Value {
        json!({"server_id": id, "eventer_server": {"host": "127.0.0.1", "port": 23012},
               "server_token": token})
    }

    #[test]
    fn the_blessed_server_with_good_data_is_active() {
        let mut warned = std::collections::HashSet::new();
        let components = [
            server(1, data(1, json!(null)), false),
            server(2, data(2, json!("secret")), true),
        ];
        assert_eq!(
            active_server(&components, "event", &mut warned),
            Some(ServerData {
                server_id: 2,
                host: "127.0.0.1".into(),
                port: 23012,
                token: Some("secret".into()),
            })
        );
        // Another group: none.
        assert_eq!(active_server(&components, "other", &mut warned), None);
    }

    #[test]
    fn bad_component_data_is_skipped_and_warned_once() {
        let mut warned = std::collections::HashSet::new();
        let components = [
            server(1, json!({"server_id": "x"}), true),
            server(
                2,
                json!({"server_id": 2, "eventer_server": {"host": "h", "port": 70000}}),
                false,
            ),
            server(3, data(3, json!(5)), false),
        ];
        assert_eq!(active_server(&components, "event", &mut warned), None);
        assert_eq!(warned.len(), 3);
        assert!(ServerData::from_info(&components[1])
            .unwrap_err()
            .contains("port"));
    }
}
