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
use tokio::sync::mpsc;
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

/// What ends [`run`] with an error: the embedded event server could not listen on its
/// configured address (connection problems never do: the runner reconnects).
pub type RunError = gateway_eventer::server::ServerError;

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
/// Returns an error only when the embedded server cannot listen.
pub async fn run(spec: GatewaySpec, shutdown: CancellationToken) -> Result<(), RunError> {
    match spec.event_server.clone() {
        EventServerSpec::Remote { host, port, token } => {
            run_remote(&spec, &host, port, token, shutdown).await;
            Ok(())
        }
        EventServerSpec::Embedded { .. } => {
            let server = EmbeddedServer::new(EmbeddedConfig::default());
            run_embedded(&spec, server, shutdown).await
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
    let span = tracing::info_span!("gateway", gateway = %spec.name, mode = "embedded");
    async move {
        let (listen, enable_devices) = match &spec.event_server {
            EventServerSpec::Embedded {
                listen,
                enable_devices,
            } => (listen.clone(), *enable_devices),
            EventServerSpec::Remote { .. } => (None, false),
        };
        let listener = match listen {
            Some((host, port)) => Some(server.listen(&format!("{host}:{port}"), None).await?),
            None => None,
        };
        if enable_devices {
            enable_unconfigured_devices(spec, &server).await;
        }
        let mut backoff = Backoff::new();
        let mut previous = None;
        loop {
            let connected = server
                .connect(
                    &engine::client_name(&spec.name),
                    engine::subscriptions(&spec.name),
                )
                .await;
            let end = match connected {
                Ok((connection, notifications, status)) => {
                    let client: Arc<dyn DeviceClient> = Arc::new(connection);
                    let source = NotificationSource::Local(notifications);
                    run_connection(spec, client, source, status, &shutdown, &mut previous).await
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
        finish_closing(previous).await;
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
        .map(|d| {
            engine::enable_event_type(&engine::device_prefix(&spec.name, &d.device_type, &d.name))
        })
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
    spec: &GatewaySpec,
    host: &str,
    port: u16,
    token: Option<String>,
    shutdown: CancellationToken,
) {
    let span =
        tracing::info_span!("gateway", gateway = %spec.name, server = %format!("{host}:{port}"));
    async move {
        let mut backoff = Backoff::new();
        let mut previous = None;
        loop {
            let mut config = ClientConfig::new(engine::client_name(&spec.name));
            config.client_token = token.clone();
            config.subscriptions = engine::subscriptions(&spec.name);
            let connected = tokio::select! {
                () = shutdown.cancelled() => break,
                connected = Client::connect((host, port), config) => connected,
            };
            match connected {
                Ok((client, notifications)) => {
                    tracing::info!(status = client.status().as_str(), "connected to event server");
                    backoff.reset();
                    let status = client.status();
                    let device_client: Arc<dyn DeviceClient> = Arc::new(client.clone());
                    let source = NotificationSource::Remote(notifications, client.clone());
                    let end = run_connection(
                        spec,
                        device_client,
                        source,
                        status,
                        &shutdown,
                        &mut previous,
                    )
                    .await;
                    client.close().await;
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
async fn run_connection(
    spec: &GatewaySpec,
    client: Arc<dyn DeviceClient>,
    mut source: NotificationSource,
    mut status: Status,
    shutdown: &CancellationToken,
    previous: &mut Option<EngineClosing>,
) -> ConnectionEnd {
    let active = |status: Status| !spec.require_operational || status == Status::Operational;
    let start = |previous: &Option<EngineClosing>| {
        Engine::start_after(
            spec,
            client.clone(),
            shutdown.child_token(),
            previous.as_ref(),
        )
    };
    let mut engine = active(status).then(|| start(previous));
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
                        (true, None) => engine = Some(start(previous)),
                        (false, Some(old)) => {
                            tracing::info!("event server not operational: stopping devices");
                            *previous = Some(old.close_in_background());
                        }
                        (_, current) => engine = current,
                    }
                }
                Some(Notification::Events(events)) => match engine.as_mut() {
                    Some(engine) => engine.route(events),
                    // Behaviour 15: not kept for a later engine.
                    None => tracing::debug!(events = events.len(), "no engine: events discarded"),
                },
            },
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
    end
}

async fn engine_fatal(engine: &mut Option<Engine>) -> engine::EngineError {
    match engine {
        Some(engine) => engine.fatal().await,
        None => std::future::pending().await,
    }
}
