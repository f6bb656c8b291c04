//! The gateway engine: one device proxy per configured device, routing of notified
//! events by their device prefix (4 segments, or 3 with `event_types: hat-gateway-0.6`),
//! and the start-up enable query (`docs/gateway-semantics.md` section 6).
//!
//! Every lookup of a device by an event type goes through a [`PrefixIndex`], a hash of
//! the type's first 4 (3) segments: routing an event, handing out the start-up query's
//! result and pairing a device with its predecessor on reconnection each cost one hash
//! and (barring collisions) one comparison, whatever the number of devices. With a scan
//! they cost one comparison per device, and start-up with 100,000 devices was
//! quadratic (issue 12).
//!
//! An engine lives for one *active* connection (section 5.3). It never blocks on a
//! device: [`Engine::route`] hands events to each proxy's bounded input queue with
//! `try_send`, and a proxy that cannot keep up is failed by its own task.

mod proxy;

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
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
use crate::spec::{DeviceSpec, EventTypes, GatewaySpec};

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

/// Segments of a device prefix: `[gateway, <gateway name>, <device type>, <device name>]`.
pub const DEVICE_PREFIX_LEN: usize = 4;

/// `[gateway, <gateway name>, <device type>, <device name>]`.
pub fn device_prefix(gateway: &str, device_type: &str, device: &str) -> EventType {
    EventTypePrefix::device(gateway, device_type, device).into_event_type()
}

/// The eventer client name of a gateway: `gateway/<name>`.
pub fn client_name(gateway: &str) -> String {
    format!("gateway/{gateway}")
}

/// The subscriptions a gateway asks for, by its layout: `gateway/<name>/?/?/system/*`
/// (`seeds`), or one `gateway/<device_type>/<device>/system/*` per device
/// (`hat-gateway-0.6`, as hat-gateway 0.6.48 does).
pub fn gateway_subscriptions(spec: &GatewaySpec) -> Vec<EventType> {
    match spec.event_types {
        EventTypes::Seeds => subscriptions(&spec.name),
        EventTypes::HatGateway06 => spec
            .devices
            .iter()
            .map(|d| {
                EventTypePrefix::new(spec.device_prefix(&d.device_type, &d.name))
                    .join(&["system", "*"])
            })
            .collect(),
    }
}

/// The one subscription a gateway asks for with the `seeds` layout:
/// `gateway/<name>/?/?/system/*`.
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
    /// For the enable queries of devices a reload adds.
    fatal_tx: mpsc::Sender<EngineError>,
    /// Set before cancelling when the engine closes in the background.
    detached: Arc<AtomicBool>,
    /// Per device (prefix), cancelled once its proxy has ended.
    ended: Vec<(EventType, CancellationToken)>,
    /// Proxies a reload removed that may still be closing: a device added again waits
    /// for its old instance.
    retired: Vec<(EventType, CancellationToken)>,
    /// `proxies` by prefix.
    index: PrefixIndex,
    /// Segments of a device prefix in this engine's layout.
    prefix_len: usize,
    /// The connection's lanes, one per device (`proxy::fair`).
    fair: proxy::FairShare,
    /// The connection itself (the enable queries).
    client: Arc<dyn DeviceClient>,
}

/// What [`Engine::reconfigure`] did, in devices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconfigured {
    /// New devices, created (subject to `enable`).
    pub added: usize,
    /// Devices no longer configured, closed (`running=false`).
    pub removed: usize,
    /// Devices whose entry or device type code changed, closed and created again.
    pub changed: usize,
    /// Devices left running untouched.
    pub kept: usize,
}

/// An engine closing in the background ([`Engine::close_in_background`]): the next
/// engine's devices each wait for their own predecessor only.
#[derive(Debug)]
pub struct EngineClosing {
    ended: Vec<(EventType, CancellationToken)>,
    /// `ended` by prefix.
    index: PrefixIndex,
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
        if prefix.len() != self.index.len {
            return None;
        }
        self.index
            .get(prefix, |i| &self.ended[i].0[..])
            .map(|i| self.ended[i].1.clone())
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
        // Every device gets its own lane of the connection (fairness, proxy::fair).
        let fair = proxy::FairShare::new(client.clone());
        let prefix_len = spec.event_types.prefix_len();
        for device in &spec.devices {
            let (handle, proxy) = Self::new_proxy(spec, device, &fair.lane(), &cancel);
            let after = previous.and_then(|p| p.ended(&handle.prefix));
            let proxy = proxy.with_detached(detached.clone()).after(after);
            ended.push((handle.prefix.clone(), proxy.ended()));
            tasks.spawn(proxy.run());
            proxies.push(handle);
        }
        let index = PrefixIndex::new(proxies.iter().map(|p| &p.prefix[..]), prefix_len);
        let mut engine = Self {
            proxies,
            tasks,
            cancel,
            fatal,
            fatal_tx,
            detached,
            ended,
            retired: Vec::new(),
            index,
            prefix_len,
            fair,
            client,
        };
        let inputs: Vec<_> = engine
            .proxies
            .iter()
            .map(|p| (enable_event_type(&p.prefix), p.input.clone()))
            .collect();
        engine.spawn_query(inputs);
        tracing::debug!(gateway = %spec.name, devices = engine.proxies.len(), "engine started");
        engine
    }

    /// The start-up enable query for `inputs` (nothing when empty), on the engine's
    /// tasks.
    fn spawn_query(&mut self, inputs: Vec<(EventType, mpsc::Sender<ProxyInput>)>) {
        if inputs.is_empty() {
            return;
        }
        let client = self.client.clone();
        let cancel = self.cancel.clone();
        let fatal = self.fatal_tx.clone();
        let prefix_len = self.prefix_len;
        self.tasks.spawn(async move {
            tokio::select! {
                () = cancel.cancelled() => {}
                () = start_up_query(client, inputs, prefix_len, fatal) => {}
            }
        });
    }

    /// Moves the engine from `old` (the spec it runs now) to `new`, device by device
    /// (by prefix): a device of both with [`DeviceSpec::same_as`] keeps its proxy and
    /// instance untouched; a changed one is closed and a new proxy created after it
    /// has ended; a removed one is closed (`running=false`); an added one starts as at
    /// start-up (`running=false` in the `seeds` layout, then the enable query for the
    /// added devices only). Never blocks: closes run on the proxies' own tasks.
    ///
    /// `old` must be the spec this engine was started with or last moved to; the
    /// gateway name and the layout of both are the same (a reload refuses others).
    pub fn reconfigure(&mut self, old: &GatewaySpec, new: &GatewaySpec) -> Reconfigured {
        let mut done = Reconfigured::default();
        let ended = std::mem::take(&mut self.ended);
        let mut proxies: Vec<Option<ProxyHandle>> = std::mem::take(&mut self.proxies)
            .into_iter()
            .map(Some)
            .collect();
        self.retired.retain(|(_, ended)| !ended.is_cancelled());
        while self.tasks.try_join_next().is_some() {}
        let mut next = Vec::with_capacity(new.devices.len());
        let mut next_ended = Vec::with_capacity(new.devices.len());
        let mut inputs = Vec::new();
        for device in &new.devices {
            let prefix = new.device_prefix(&device.device_type, &device.name);
            let found = self
                .index
                .get(&prefix, |i| &ended[i].0[..])
                .and_then(|i| proxies[i].take().map(|handle| (i, handle)));
            let after = match found {
                Some((i, handle)) if old.devices.get(i).is_some_and(|d| d.same_as(device)) => {
                    done.kept += 1;
                    next.push(handle);
                    next_ended.push(ended[i].clone());
                    continue;
                }
                Some((i, handle)) => {
                    done.changed += 1;
                    handle.cancel.cancel();
                    Some(ended[i].1.clone())
                }
                None => {
                    done.added += 1;
                    self.retired
                        .iter()
                        .find(|(p, _)| *p == prefix)
                        .map(|(_, ended)| ended.clone())
                }
            };
            let (handle, proxy) = Self::new_proxy(new, device, &self.fair.lane(), &self.cancel);
            let proxy = proxy.with_detached(self.detached.clone()).after(after);
            next_ended.push((handle.prefix.clone(), proxy.ended()));
            self.tasks.spawn(proxy.run());
            inputs.push((enable_event_type(&handle.prefix), handle.input.clone()));
            next.push(handle);
        }
        for (i, handle) in proxies.into_iter().enumerate() {
            if let Some(handle) = handle {
                done.removed += 1;
                handle.cancel.cancel();
                self.retired.push(ended[i].clone());
            }
        }
        self.index = PrefixIndex::new(next.iter().map(|p| &p.prefix[..]), self.prefix_len);
        self.proxies = next;
        self.ended = next_ended;
        self.spawn_query(inputs);
        tracing::debug!(gateway = %new.name, ?done, "engine reconfigured");
        done
    }

    fn new_proxy(
        spec: &GatewaySpec,
        device: &DeviceSpec,
        client: &Arc<dyn DeviceClient>,
        cancel: &CancellationToken,
    ) -> (ProxyHandle, DeviceProxy) {
        let prefix = spec.device_prefix(&device.device_type, &device.name);
        let span = tracing::info_span!(
            "device",
            gateway = %spec.name,
            device_type = %device.device_type,
            device = %device.name
        );
        let capacity = device.event_queue_size.max(1) + CONTROL_HEADROOM;
        let (input_tx, input_rx) = mpsc::channel(capacity);
        let shared = Arc::new(proxy::SharedState::default());
        let own = cancel.child_token();
        let proxy = DeviceProxy::new(
            device,
            prefix.clone(),
            client.clone(),
            span,
            input_rx,
            shared.clone(),
            own.clone(),
        )
        .with_initial_running_false(spec.event_types.initial_running_false());
        let handle = ProxyHandle {
            prefix,
            input: input_tx,
            shared,
            cancel: own,
        };
        (handle, proxy)
    }

    /// Routes one notified batch: each event whose first 4 (3) segments equal a device
    /// prefix goes to that proxy, in order; others are ignored. Never blocks.
    pub fn route(&mut self, events: Vec<Event>) {
        for event in events {
            let Some(proxy) = self
                .index
                .get(&event.event_type, |i| &self.proxies[i].prefix[..])
                .map(|i| &self.proxies[i])
            else {
                tracing::debug!(event_type = ?event.event_type, "ignoring event for no configured device");
                continue;
            };
            let len = self.prefix_len;
            let input = if event.event_type.len() == len + 2
                && event.event_type[len] == "system"
                && event.event_type[len + 1] == "enable"
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
        let mut ended = std::mem::take(&mut self.ended);
        // After the current ones: a prefix found twice is found current first.
        ended.append(&mut self.retired);
        let index = PrefixIndex::new(ended.iter().map(|(p, _)| &p[..]), self.prefix_len);
        let task = tokio::spawn(async move {
            join_all(&mut tasks).await;
            tracing::debug!("engine closed in the background");
        });
        EngineClosing { ended, index, task }
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
    prefix_len: usize,
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
    let enabled = enable_states(&inputs, &result.events, prefix_len);
    for ((_, input), enabled) in inputs.into_iter().zip(enabled) {
        // `send` waits for room: the proxy always drains its input, and the
        // result must not be lost. It fails only when the proxy has ended.
        let _ = input.send(ProxyInput::QueryResult(enabled)).await;
    }
}

/// Each input's enable state in a query result: the value of the last event of exactly
/// its enable type, `None` without one. One hash lookup per result event.
fn enable_states<T>(
    inputs: &[(EventType, T)],
    events: &[Event],
    prefix_len: usize,
) -> Vec<Option<bool>> {
    let prefix = |i: usize| &inputs[i].0[..inputs[i].0.len().min(prefix_len)];
    let index = PrefixIndex::new((0..inputs.len()).map(prefix), prefix_len);
    let mut enabled = vec![None; inputs.len()];
    for event in events {
        let Some(i) = index.get(&event.event_type, prefix) else {
            continue;
        };
        // The index matched the prefix; the whole type must be the enable type.
        if same_prefix(&event.event_type, &inputs[i].0) {
            enabled[i] = Some(is_enabled(event.payload.as_ref()));
        }
    }
    enabled
}

/// Positions of device prefixes (`len` segments: 4, or 3 with `hat-gateway-0.6`),
/// found by a hash of an event type's first `len` segments. Positions with equal hashes are chained in ascending order, so with two
/// equal prefixes the first one wins, as with a scan.
#[derive(Debug)]
struct PrefixIndex {
    hasher: RandomState,
    /// Hash of a prefix -> the first position with that hash.
    heads: HashMap<u64, usize>,
    /// Position -> the next position with the same hash, or `NO_NEXT`.
    next: Vec<usize>,
    /// Segments of every indexed prefix.
    len: usize,
}

const NO_NEXT: usize = usize::MAX;

impl PrefixIndex {
    /// Indexes `prefixes` by position; a prefix that is not `len` segments long is
    /// never found.
    fn new<'a>(prefixes: impl ExactSizeIterator<Item = &'a [String]>, len: usize) -> Self {
        let mut index = Self {
            hasher: RandomState::new(),
            heads: HashMap::with_capacity(prefixes.len()),
            next: vec![NO_NEXT; prefixes.len()],
            len,
        };
        let hashes: Vec<Option<u64>> = prefixes
            .map(|p| (p.len() == len).then(|| index.hash(p)))
            .collect();
        // Backwards, each at the head of its chain: the chains end up ascending.
        for (position, hash) in hashes.iter().enumerate().rev() {
            if let Some(hash) = hash {
                if let Some(head) = index.heads.insert(*hash, position) {
                    index.next[position] = head;
                }
            }
        }
        index
    }

    fn hash(&self, prefix: &[String]) -> u64 {
        self.hasher.hash_one(prefix)
    }

    /// The first position whose prefix (`prefix_of(position)`) is the first `len`
    /// segments of `event_type`.
    fn get<'a>(
        &self,
        event_type: &[String],
        prefix_of: impl Fn(usize) -> &'a [String],
    ) -> Option<usize> {
        let prefix = event_type.get(..self.len)?;
        let mut position = *self.heads.get(&self.hash(prefix))?;
        while position != NO_NEXT {
            if same_prefix(prefix_of(position), prefix) {
                return Some(position);
            }
            position = self.next[position];
        }
        None
    }
}

#[cfg(test)]
thread_local! {
    /// Comparisons of event types made by [`same_prefix`] on this thread (the
    /// linear-cost test counts them).
    static PREFIX_COMPARISONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Every comparison of a device prefix with an event type in the engine goes through
/// here, so that tests can count them.
fn same_prefix(a: &[String], b: &[String]) -> bool {
    #[cfg(test)]
    PREFIX_COMPARISONS.with(|c| c.set(c.get() + 1));
    a == b
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use futures::future::BoxFuture;
    use gateway_model::{event_type_from_str as t, EventId, QueryResult};

    use super::*;
    use crate::device::{DeviceContext, DeviceError, DeviceFactory, DeviceInstance};
    use crate::spec::EventServerSpec;

    fn comparisons() -> u64 {
        PREFIX_COMPARISONS.with(std::cell::Cell::get)
    }

    /// Comparisons made by `f` on this thread.
    async fn counted<F: std::future::Future>(f: F) -> (F::Output, u64) {
        let before = comparisons();
        let out = f.await;
        (out, comparisons() - before)
    }

    fn event(event_type: EventType, payload: serde_json::Value) -> Event {
        Event {
            id: EventId::default(),
            event_type,
            timestamp: Timestamp::now(),
            source_timestamp: None,
            payload: Some(Payload::json(payload)),
        }
    }

    /// Never asked to create: every device of these tests stays disabled.
    #[derive(Debug)]
    struct NoFactory;

    impl DeviceFactory for NoFactory {
        fn device_type(&self) -> &str {
            "sim"
        }

        fn json_schema_id(&self) -> Option<&str> {
            None
        }

        fn json_schema(&self) -> Option<&serde_json::Value> {
            None
        }

        fn create(
            &self,
            _conf: serde_json::Value,
            _context: DeviceContext,
        ) -> BoxFuture<'static, Result<Box<dyn DeviceInstance>, DeviceError>> {
            Box::pin(async { Err(DeviceError::Failed("not in this test".to_owned())) })
        }
    }

    /// Registers nothing anywhere; answers the start-up query with `enable=false` for
    /// every device, newest last as a server would.
    #[derive(Debug, Default)]
    struct Client {
        queries: Mutex<usize>,
        answer: Vec<Event>,
    }

    impl DeviceClient for Client {
        fn register(&self, _events: Vec<RegisterEvent>) -> BoxFuture<'_, Result<(), ClientError>> {
            Box::pin(async { Ok(()) })
        }

        fn register_with_response(
            &self,
            _events: Vec<RegisterEvent>,
        ) -> BoxFuture<'_, Result<Option<Vec<Event>>, ClientError>> {
            Box::pin(async { Ok(None) })
        }

        fn query(&self, _params: QueryParams) -> BoxFuture<'_, Result<QueryResult, ClientError>> {
            if let Ok(mut queries) = self.queries.lock() {
                *queries += 1;
            }
            let events = self.answer.clone();
            Box::pin(async move {
                Ok(QueryResult {
                    events,
                    more_follows: false,
                })
            })
        }
    }

    fn spec(devices: usize) -> GatewaySpec {
        let factory: Arc<dyn DeviceFactory> = Arc::new(NoFactory);
        GatewaySpec {
            name: "gw".to_owned(),
            event_server: EventServerSpec::Remote {
                host: "127.0.0.1".to_owned(),
                port: 1,
                token: None,
            },
            require_operational: false,
            event_types: EventTypes::Seeds,
            devices: (0..devices)
                .map(|i| {
                    DeviceSpec::new(
                        "sim",
                        format!("d{i}"),
                        serde_json::json!({}),
                        factory.clone(),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn prefix_index_finds_the_first_equal_prefix_and_only_4_segments() {
        let prefixes = [
            t("gateway/gw/sim/a"),
            t("gateway/gw/sim/b"),
            t("gateway/gw/sim/a"),
            t("x/y"),
        ];
        let index = PrefixIndex::new(prefixes.iter().map(|p| &p[..]), DEVICE_PREFIX_LEN);
        let get = |ty: &str| index.get(&t(ty), |i| &prefixes[i][..]);
        assert_eq!(get("gateway/gw/sim/a/system/enable"), Some(0));
        assert_eq!(get("gateway/gw/sim/a"), Some(0));
        assert_eq!(get("gateway/gw/sim/b/x"), Some(1));
        assert_eq!(get("gateway/gw/sim/c/x"), None);
        assert_eq!(get("gateway/gw/sim"), None);
        assert_eq!(get("x/y"), None, "a 2-segment prefix is never found");
    }

    #[test]
    fn enable_states_take_the_last_event_of_exactly_the_enable_type() {
        let inputs: Vec<(EventType, ())> = ["a", "b", "c"]
            .iter()
            .map(|d| (enable_event_type(&device_prefix("gw", "sim", d)), ()))
            .collect();
        let events = vec![
            event(t("gateway/gw/sim/a/system/enable"), serde_json::json!(true)),
            event(
                t("gateway/gw/sim/a/system/enable"),
                serde_json::json!(false),
            ),
            event(
                t("gateway/gw/sim/b/system/enable/x"),
                serde_json::json!(true),
            ),
            event(t("gateway/gw/sim/c/system/enable"), serde_json::json!(true)),
            event(t("gateway/gw/sim/z/system/enable"), serde_json::json!(true)),
        ];
        assert_eq!(
            enable_states(&inputs, &events, DEVICE_PREFIX_LEN),
            vec![Some(false), None, Some(true)]
        );
    }

    #[tokio::test]
    async fn route_hands_each_event_to_the_proxy_of_its_prefix() {
        let spec = spec(3);
        let client = Arc::new(Client::default());
        let mut engine = Engine::start(&spec, client, CancellationToken::new());
        // Swap in receivers of our own to see what route hands out.
        let mut receivers = Vec::new();
        for proxy in &mut engine.proxies {
            let (tx, rx) = mpsc::channel(8);
            proxy.input = tx;
            receivers.push(rx);
        }
        engine.route(vec![
            event(
                t("gateway/gw/sim/d2/system/enable"),
                serde_json::json!(true),
            ),
            event(t("gateway/gw/sim/d0/system/x"), serde_json::json!(1)),
            event(t("gateway/gw/sim/d9/system/x"), serde_json::json!(1)),
            event(t("gateway/gw/sim"), serde_json::json!(1)),
        ]);
        assert!(matches!(
            receivers[2].try_recv(),
            Ok(ProxyInput::Enable(true))
        ));
        assert!(matches!(
            receivers[0].try_recv(),
            Ok(ProxyInput::Event(e)) if e.event_type == t("gateway/gw/sim/d0/system/x")
        ));
        for rx in &mut receivers {
            assert!(rx.try_recv().is_err(), "nothing else was routed");
        }
    }

    /// `event_types: hat-gateway-0.6`: one subscription per device, and routing by the
    /// 3-segment prefix `gateway/<device_type>/<device>`.
    #[tokio::test]
    async fn hat_layout_subscribes_per_device_and_routes_by_3_segments() {
        assert_eq!(
            gateway_subscriptions(&spec(2)),
            vec![t("gateway/gw/?/?/system/*")]
        );
        let mut spec = spec(2);
        spec.event_types = EventTypes::HatGateway06;
        assert_eq!(
            gateway_subscriptions(&spec),
            vec![t("gateway/sim/d0/system/*"), t("gateway/sim/d1/system/*")]
        );
        let client = Arc::new(Client::default());
        let mut engine = Engine::start(&spec, client, CancellationToken::new());
        assert_eq!(engine.proxies[1].prefix, t("gateway/sim/d1"));
        let mut receivers = Vec::new();
        for proxy in &mut engine.proxies {
            let (tx, rx) = mpsc::channel(8);
            proxy.input = tx;
            receivers.push(rx);
        }
        engine.route(vec![
            event(t("gateway/sim/d1/system/enable"), serde_json::json!(true)),
            event(t("gateway/sim/d0/system/x"), serde_json::json!(1)),
            // The seeds' types mean nothing in this layout.
            event(
                t("gateway/gw/sim/d0/system/enable"),
                serde_json::json!(true),
            ),
            event(t("gateway/sim/d0/system/enable/x"), serde_json::json!(true)),
        ]);
        assert!(matches!(
            receivers[1].try_recv(),
            Ok(ProxyInput::Enable(true))
        ));
        assert!(matches!(
            receivers[0].try_recv(),
            Ok(ProxyInput::Event(e)) if e.event_type == t("gateway/sim/d0/system/x")
        ));
        assert!(matches!(
            receivers[0].try_recv(),
            Ok(ProxyInput::Event(e)) if e.event_type == t("gateway/sim/d0/system/enable/x")
        ));
        for rx in &mut receivers {
            assert!(rx.try_recv().is_err(), "nothing else was routed");
        }
        let inputs: Vec<(EventType, ())> = vec![(t("gateway/sim/d0/system/enable"), ())];
        let events = [event(
            t("gateway/sim/d0/system/enable"),
            serde_json::json!(true),
        )];
        assert_eq!(enable_states(&inputs, &events, 3), vec![Some(true)]);
    }

    /// Issue 12: an idle device's task future stays small. It is one per device; when
    /// the proxy was held by value in nested `async fn`s it was 3.2 KiB, the largest
    /// part of a device's memory at 100,000 devices.
    #[tokio::test]
    async fn device_proxy_future_stays_small() {
        let spec = spec(1);
        let client: Arc<dyn DeviceClient> = Arc::new(Client::default());
        let cancel = CancellationToken::new();
        let (_handle, proxy) = Engine::new_proxy(&spec, &spec.devices[0], &client, &cancel);
        let future = proxy.run();
        let size = std::mem::size_of_val(&future);
        println!("device proxy future: {size} bytes");
        assert!(
            size <= proxy::PROXY_FUTURE_BOUND,
            "device proxy future is {size} bytes, bound {}",
            proxy::PROXY_FUTURE_BOUND
        );
    }

    /// Issue 12: start-up cost must stay linear in the number of devices. Counts the
    /// prefix comparisons (not time) of the start-up query's hand-out, of routing one
    /// event to every device, and of pairing every device with its predecessor on
    /// reconnection; a scan makes each of them quadratic (about n * n / 2).
    #[tokio::test]
    async fn start_up_cost_is_linear_in_devices() {
        for n in [500, 4_000] {
            let spec = spec(n);
            let answer: Vec<Event> = spec
                .devices
                .iter()
                .map(|d| {
                    let prefix = device_prefix("gw", &d.device_type, &d.name);
                    event(enable_event_type(&prefix), serde_json::json!(false))
                })
                .collect();
            let client = Arc::new(Client {
                queries: Mutex::new(0),
                answer,
            });

            // The start-up query's answer handed to every device.
            let mut receivers = Vec::new();
            let inputs: Vec<_> = spec
                .devices
                .iter()
                .map(|d| {
                    let (tx, rx) = mpsc::channel(1);
                    receivers.push(rx);
                    (enable_event_type(&device_prefix("gw", "sim", &d.name)), tx)
                })
                .collect();
            let (fatal_tx, _fatal) = mpsc::channel(1);
            let ((), query) = counted(start_up_query(
                client.clone(),
                inputs,
                DEVICE_PREFIX_LEN,
                fatal_tx,
            ))
            .await;
            for rx in &mut receivers {
                assert!(matches!(
                    rx.try_recv(),
                    Ok(ProxyInput::QueryResult(Some(false)))
                ));
            }

            let cancel = CancellationToken::new();
            let mut engine = Engine::start(&spec, client.clone(), cancel.child_token());
            let events: Vec<Event> = engine
                .proxies
                .iter()
                .map(|p| {
                    event(
                        EventTypePrefix::new(p.prefix.clone()).join(&["system", "x"]),
                        serde_json::json!(1),
                    )
                })
                .collect();
            let before = comparisons();
            engine.route(events);
            let route = comparisons() - before;

            let closing = engine.close_in_background();
            let before = comparisons();
            let next =
                Engine::start_after(&spec, client.clone(), cancel.child_token(), Some(&closing));
            let restart = comparisons() - before;
            cancel.cancel();
            next.close().await;
            closing.wait().await;

            let n = n as u64;
            // One comparison per event, plus the rare hash collision; the query's
            // hand-out compares the prefix and then the whole type.
            assert!(
                route <= n + n / 10,
                "route: {route} comparisons for {n} devices"
            );
            assert!(
                restart <= n + n / 10,
                "restart: {restart} comparisons for {n} devices"
            );
            assert!(
                query <= 2 * n + n / 10,
                "query: {query} comparisons for {n} devices"
            );
        }
    }
}
