//! The gateway engine: one device proxy per configured device, routing of notified
//! events by their 4-segment prefix, and the start-up enable query
//! (`docs/gateway-semantics.md` section 6).
//!
//! An engine lives for one *active* connection (section 5.3). It never blocks on a
//! device: [`Engine::route`] hands events to each proxy's bounded input queue with
//! `try_send`, and a proxy that cannot keep up is failed by its own task.

mod proxy;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use gateway_model::{
    Event, EventType, EventTypePrefix, Payload, QueryLatestParams, QueryParams, RegisterEvent,
    Timestamp,
};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::device::{ClientError, DeviceClient};
use crate::spec::{DeviceSpec, GatewaySpec};

pub use proxy::{abandoned_calls, ProxyState};

use proxy::{DeviceProxy, ProxyHandle, ProxyInput};

/// Why an engine stopped by itself: the start-up enable query failed (the runner
/// treats it as a broken connection).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("start-up enable query failed: {0}")]
pub struct EngineError(#[source] pub ClientError);

/// Capacity of the engine's fatal-error channel: only the start-up query task sends,
/// once.
const FATAL_CAPACITY: usize = 1;

/// Extra input-queue slots beyond a device's `event_queue_size`, so that enable
/// changes and the query result still fit when the event part is full.
const CONTROL_HEADROOM: usize = 64;

/// `[gateway, <gateway name>, <device type>, <device name>]`.
pub fn device_prefix(gateway: &str, device_type: &str, device: &str) -> EventType {
    EventTypePrefix::device(gateway, device_type, device).into_event_type()
}

/// The eventer client name of a gateway: `gateway/<name>`.
pub fn client_name(gateway: &str) -> String {
    format!("gateway/{gateway}")
}

/// The one subscription a gateway asks for: `gateway/<name>/?/?/system/*`.
pub fn subscriptions(gateway: &str) -> Vec<EventType> {
    vec![vec![
        "gateway".to_owned(),
        gateway.to_owned(),
        "?".to_owned(),
        "?".to_owned(),
        "system".to_owned(),
        "*".to_owned(),
    ]]
}

/// `<prefix>/system/enable`.
pub fn enable_event_type(prefix: &[String]) -> EventType {
    EventTypePrefix::new(prefix.to_vec()).join(&["system", "enable"])
}

/// `<prefix>/gateway/running` with a JSON boolean and source timestamp now.
pub fn running_event(prefix: &[String], running: bool) -> RegisterEvent {
    RegisterEvent {
        event_type: EventTypePrefix::new(prefix.to_vec()).join(&["gateway", "running"]),
        source_timestamp: Some(Timestamp::now()),
        payload: Some(Payload::json(serde_json::Value::Bool(running))),
    }
}

/// hat's rule: enabled only if the payload is JSON and its value is `true`.
pub fn is_enabled(payload: Option<&Payload>) -> bool {
    matches!(
        payload.and_then(Payload::json_value),
        Some(serde_json::Value::Bool(true))
    )
}

/// A running engine. Dropping it without [`Engine::close`] cancels the proxies
/// without waiting for them.
pub struct Engine {
    proxies: Vec<ProxyHandle>,
    tasks: JoinSet<()>,
    cancel: CancellationToken,
    fatal: mpsc::Receiver<EngineError>,
    /// Set before cancelling when the engine closes in the background.
    detached: Arc<AtomicBool>,
    /// Per device (prefix), cancelled once its proxy has ended.
    ended: Vec<(EventType, CancellationToken)>,
}

/// An engine closing in the background ([`Engine::close_in_background`]): the next
/// engine's devices each wait for their own predecessor only.
#[derive(Debug)]
pub struct EngineClosing {
    ended: Vec<(EventType, CancellationToken)>,
    task: tokio::task::JoinHandle<()>,
}

impl EngineClosing {
    /// Waits until every proxy of the closed engine has ended.
    pub async fn wait(self) {
        if let Err(err) = self.task.await {
            tracing::error!(error = %err, "engine close task failed");
        }
    }

    fn ended(&self, prefix: &[String]) -> Option<CancellationToken> {
        self.ended
            .iter()
            .find(|(p, _)| p[..] == *prefix)
            .map(|(_, token)| token.clone())
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("proxies", &self.proxies.len())
            .field("tasks", &self.tasks.len())
            .field("cancelled", &self.cancel.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Starts an engine on a connection: every proxy registers `running=false`, then
    /// one `QueryLatest` asks for all enable types (none with zero devices).
    ///
    /// `cancel` should be a child of the runner's shutdown token; [`Engine::close`]
    /// cancels it.
    pub fn start(
        spec: &GatewaySpec,
        client: Arc<dyn DeviceClient>,
        cancel: CancellationToken,
    ) -> Self {
        Self::start_after(spec, client, cancel, None)
    }

    /// [`Engine::start`], after an engine that is still closing in the background:
    /// each device's first `create` waits until the same device of `previous` has
    /// ended (closed, or its close timed out), other devices do not wait for it.
    pub fn start_after(
        spec: &GatewaySpec,
        client: Arc<dyn DeviceClient>,
        cancel: CancellationToken,
        previous: Option<&EngineClosing>,
    ) -> Self {
        let (fatal_tx, fatal) = mpsc::channel(FATAL_CAPACITY);
        let mut tasks = JoinSet::new();
        let mut proxies = Vec::with_capacity(spec.devices.len());
        let detached = Arc::new(AtomicBool::new(false));
        let mut ended = Vec::with_capacity(spec.devices.len());
        for device in &spec.devices {
            let (handle, proxy) = Self::new_proxy(&spec.name, device, &client, &cancel);
            let after = previous.and_then(|p| p.ended(&handle.prefix));
            let proxy = proxy.with_detached(detached.clone()).after(after);
            ended.push((handle.prefix.clone(), proxy.ended()));
            tasks.spawn(proxy.run());
            proxies.push(handle);
        }
        if !proxies.is_empty() {
            let inputs: Vec<_> = proxies
                .iter()
                .map(|p| (enable_event_type(&p.prefix), p.input.clone()))
                .collect();
            let client = client.clone();
            let cancel = cancel.clone();
            tasks.spawn(async move {
                tokio::select! {
                    () = cancel.cancelled() => {}
                    () = start_up_query(client, inputs, fatal_tx) => {}
                }
            });
        }
        tracing::debug!(gateway = %spec.name, devices = proxies.len(), "engine started");
        Self {
            proxies,
            tasks,
            cancel,
            fatal,
            detached,
            ended,
        }
    }

    fn new_proxy(
        gateway: &str,
        device: &DeviceSpec,
        client: &Arc<dyn DeviceClient>,
        cancel: &CancellationToken,
    ) -> (ProxyHandle, DeviceProxy) {
        let prefix = device_prefix(gateway, &device.device_type, &device.name);
        let span = tracing::info_span!(
            "device",
            gateway = %gateway,
            device_type = %device.device_type,
            device = %device.name
        );
        let capacity = device.event_queue_size.max(1) + CONTROL_HEADROOM;
        let (input_tx, input_rx) = mpsc::channel(capacity);
        let shared = Arc::new(proxy::SharedState::default());
        let proxy = DeviceProxy::new(
            device,
            prefix.clone(),
            client.clone(),
            span,
            input_rx,
            shared.clone(),
            cancel.child_token(),
        );
        let handle = ProxyHandle {
            prefix,
            input: input_tx,
            shared,
        };
        (handle, proxy)
    }

    /// Routes one notified batch: each event whose first 4 segments equal a device
    /// prefix goes to that proxy, in order; others are ignored. Never blocks.
    pub fn route(&mut self, events: Vec<Event>) {
        for event in events {
            let Some(proxy) = self
                .proxies
                .iter()
                .find(|p| event.event_type.len() >= 4 && event.event_type[..4] == p.prefix[..])
            else {
                tracing::debug!(event_type = ?event.event_type, "ignoring event for no configured device");
                continue;
            };
            let input = if event.event_type.len() == 6
                && event.event_type[4] == "system"
                && event.event_type[5] == "enable"
            {
                ProxyInput::Enable(is_enabled(event.payload.as_ref()))
            } else {
                ProxyInput::Event(Box::new(event))
            };
            proxy.send(input);
        }
    }

    /// The observable state of each device, keyed by device name (diagnostics).
    pub fn states(&self) -> Vec<(EventType, ProxyState)> {
        self.proxies
            .iter()
            .map(|p| (p.prefix.clone(), p.shared.state()))
            .collect()
    }

    /// Resolves when the engine stopped by itself (the enable query failed). Cancel
    /// safe.
    pub async fn fatal(&mut self) -> EngineError {
        match self.fatal.recv().await {
            Some(err) => err,
            // The query task ended without error: the engine never fails by itself.
            None => std::future::pending().await,
        }
    }

    /// Destroys the engine: every proxy closes its device and registers
    /// `running=false` (errors ignored); returns when all are done.
    pub async fn close(mut self) {
        self.cancel.cancel();
        join_all(&mut self.tasks).await;
        tracing::debug!("engine closed");
    }

    /// Destroys the engine without waiting (the connection is lost): every proxy
    /// closes its device as in [`Engine::close`] on its own, but an in-flight
    /// `create` is abandoned rather than waited for. Pass the result to
    /// [`Engine::start_after`] so that no device has two instances at once.
    pub fn close_in_background(mut self) -> EngineClosing {
        self.detached.store(true, Ordering::Relaxed);
        self.cancel.cancel();
        let mut tasks = std::mem::take(&mut self.tasks);
        let ended = std::mem::take(&mut self.ended);
        let task = tokio::spawn(async move {
            join_all(&mut tasks).await;
            tracing::debug!("engine closed in the background");
        });
        EngineClosing { ended, task }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn join_all(tasks: &mut JoinSet<()>) {
    while let Some(result) = tasks.join_next().await {
        if let Err(err) = result {
            tracing::error!(error = %err, "device proxy task failed");
        }
    }
}

/// One `QueryLatest` for every device's enable type; the result is handed to each
/// proxy (no event = disabled).
async fn start_up_query(
    client: Arc<dyn DeviceClient>,
    inputs: Vec<(EventType, mpsc::Sender<ProxyInput>)>,
    fatal: mpsc::Sender<EngineError>,
) {
    let params = QueryParams::Latest(QueryLatestParams {
        event_types: Some(inputs.iter().map(|(t, _)| t.clone()).collect()),
    });
    let result = match client.query(params).await {
        Ok(result) => result,
        Err(err) => {
            tracing::warn!(error = %err, "start-up enable query failed");
            // The receiver is gone only when the engine is being dropped.
            let _ = fatal.send(EngineError(err)).await;
            return;
        }
    };
    for (enable_type, input) in inputs {
        let enabled = result
            .events
            .iter()
            .rev()
            .find(|e| e.event_type == enable_type)
            .map(|e| is_enabled(e.payload.as_ref()));
        // `send` waits for room: the proxy always drains its input, and the
        // result must not be lost. It fails only when the proxy has ended.
        let _ = input.send(ProxyInput::QueryResult(enabled)).await;
    }
}
