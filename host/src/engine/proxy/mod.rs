//! The device proxy: one task per configured device that creates, feeds and closes
//! device instances according to `enable` (`docs/gateway-semantics.md` section 7:
//! events are buffered while a device is being created, a full queue fails the
//! device instead of stalling others, optional restart).
//!
//! Split as a protocol and its I/O: [`machine`] decides everything and knows nothing
//! of tasks, futures or clocks; this module is the thin async shell around it. The
//! shell owns the device instance, the single in-flight device call (`create`,
//! `process_event` or `close`, polled beside the input queue so an enable change is
//! seen at once and the engine's `try_send` never finds the queue stuck behind a slow
//! device), the restart timer and the input queue. It turns each of them into a
//! [`machine::Input`] and carries out the [`machine::Action`]s that follow.
//!
//! The shell is also the host's one catch of device panics (behaviour 40): around
//! the synchronous part of `create` and around every device future, in-process
//! devices included.

mod fair;
mod machine;
#[cfg(test)]
mod tests;

use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use gateway_model::{Event, EventType};
use gateway_plugin_api::panic_message;
use tokio::sync::{mpsc, Notify};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::running_event;
use crate::device::{DeviceClient, DeviceContext, DeviceError, DeviceFactory, DeviceInstance};
use crate::ops::metrics::{self as ops_metrics, CountingClient, DeviceMetrics};
use crate::spec::DeviceSpec;
use machine::{Action, Config, Input, Machine, Shutdown};

pub use machine::ProxyState;

pub(crate) use fair::FairShare;

/// The most bytes a device proxy's task future may take ([`DeviceProxy::run`]; a test
/// holds it): one per device, so it is most of an idle device's memory when it grows.
#[cfg(test)]
pub(crate) const PROXY_FUTURE_BOUND: usize = 512;

/// On shutdown, how long an in-flight `create` may still take (at most; never past
/// its `create_timeout`); an instance produced within it is closed, one produced
/// later is abandoned.
const CREATE_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Device calls the host is still waiting for on shutdown or has abandoned to the
/// background, for the log line of a second signal ([`abandoned_calls`]).
static PENDING: Mutex<Vec<(u64, String)>> = Mutex::new(Vec::new());

/// Removes its [`PENDING`] entry when dropped.
struct PendingCall(u64);

impl PendingCall {
    fn new(what: String) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut pending) = PENDING.lock() {
            pending.push((id, what));
        }
        Self(id)
    }
}

impl Drop for PendingCall {
    fn drop(&mut self) {
        if let Ok(mut pending) = PENDING.lock() {
            pending.retain(|(id, _)| *id != self.0);
        }
    }
}

/// The device calls still running that shutdown waits for or abandoned to the
/// background (`create`/`close` of `gateway/<g>/<type>/<name>`), oldest first.
pub fn abandoned_calls() -> Vec<String> {
    PENDING
        .lock()
        .map(|pending| pending.iter().map(|(_, what)| what.clone()).collect())
        .unwrap_or_default()
}

/// What the engine sends a proxy, in notification order.
#[derive(Debug)]
pub(crate) enum ProxyInput {
    /// A `system/enable` event, already interpreted.
    Enable(bool),
    /// The start-up query's answer for this device (`None`: no enable event).
    QueryResult(Option<bool>),
    /// Any other event with this device's prefix. Boxed: the channel allocates its
    /// slots in blocks of 32 per device, and with 10,000 devices an inline `Event`
    /// made those blocks the largest part of the gateway's memory.
    Event(Box<Event>),
}

impl From<ProxyInput> for Input {
    fn from(input: ProxyInput) -> Self {
        match input {
            ProxyInput::Enable(enabled) => Self::Enable(enabled),
            ProxyInput::QueryResult(enabled) => Self::QueryResult(enabled),
            ProxyInput::Event(event) => Self::Event(event),
        }
    }
}

/// The wire form of [`ProxyState`] in [`SharedState`]'s atomic (the only encoding).
impl From<ProxyState> for u8 {
    fn from(state: ProxyState) -> Self {
        match state {
            ProxyState::Starting => 0,
            ProxyState::Disabled => 1,
            ProxyState::Creating => 2,
            ProxyState::Running => 3,
            ProxyState::Stopping => 4,
            ProxyState::Failed => 5,
            ProxyState::Closed => 6,
        }
    }
}

/// The inverse of `From<ProxyState> for u8`; the error is the unknown value.
impl TryFrom<u8> for ProxyState {
    type Error = u8;

    fn try_from(value: u8) -> Result<Self, u8> {
        Ok(match value {
            0 => Self::Starting,
            1 => Self::Disabled,
            2 => Self::Creating,
            3 => Self::Running,
            4 => Self::Stopping,
            5 => Self::Failed,
            6 => Self::Closed,
            other => return Err(other),
        })
    }
}

/// State shared between the engine (reader of the state, writer of overflow counts)
/// and the proxy task.
#[derive(Default)]
pub(crate) struct SharedState {
    /// The proxy's [`ProxyState`], as `u8` (0 = `Starting`, the default).
    state: AtomicU8,
    /// Inputs the engine could not enqueue because the input queue was full.
    dropped: AtomicU64,
    /// Signalled when `dropped` grows.
    overflow: Notify,
    /// The last enable value that could not be enqueued, so the proxy can resync.
    lost_enable: Mutex<Option<bool>>,
}

impl SharedState {
    pub(crate) fn state(&self) -> ProxyState {
        // Only `set_state` writes the atomic, always a valid encoding.
        ProxyState::try_from(self.state.load(Ordering::Relaxed)).unwrap_or(ProxyState::Closed)
    }

    fn set_state(&self, state: ProxyState) {
        self.state.store(state.into(), Ordering::Relaxed);
    }
}

/// The engine's side of a proxy.
pub(crate) struct ProxyHandle {
    pub(crate) prefix: EventType,
    pub(crate) input: mpsc::Sender<ProxyInput>,
    pub(crate) shared: Arc<SharedState>,
    /// The proxy's own token (a child of the engine's): cancelling it closes this
    /// device alone (a reload removed or changed it).
    pub(crate) cancel: CancellationToken,
}

impl ProxyHandle {
    /// Enqueues without waiting; on a full queue the proxy is told to fail its device.
    pub(crate) fn send(&self, input: ProxyInput) {
        match self.input.try_send(input) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(input)) => {
                if let ProxyInput::Enable(value) = input {
                    if let Ok(mut lost) = self.shared.lost_enable.lock() {
                        *lost = Some(value);
                    }
                }
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                self.shared.overflow.notify_one();
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::debug!(prefix = ?self.prefix, "device proxy has ended; input dropped");
            }
        }
    }
}

/// Result of the one in-flight device operation.
enum OpResult {
    Created(Result<Arc<dyn DeviceInstance>, DeviceError>),
    Processed(Result<(), DeviceError>),
    Closed,
}

/// The proxy task: the machine and what it needs from the outside world.
pub(crate) struct DeviceProxy {
    factory: Arc<dyn DeviceFactory>,
    conf: serde_json::Value,
    prefix: EventType,
    client: Arc<dyn DeviceClient>,
    span: tracing::Span,
    input: mpsc::Receiver<ProxyInput>,
    shared: Arc<SharedState>,
    cancel: CancellationToken,
    /// Set by the engine before it cancels the proxy when it closes in the background
    /// (connection lost): an in-flight `create` is then abandoned, not waited for.
    detached: Arc<AtomicBool>,
    /// The same device's proxy of the previous engine: the first `create` waits until
    /// it has ended, so two instances of one device never overlap.
    previous: Option<CancellationToken>,
    /// Cancelled when this proxy has ended (and its previous one).
    ended: CancellationToken,
    create_timeout: Duration,
    close_timeout: Duration,

    machine: Machine,
    instance: Option<Arc<dyn DeviceInstance>>,
    /// The single in-flight device call.
    op: Option<BoxFuture<'static, OpResult>>,
    /// Resolves when the running instance closes by itself.
    self_closed: Option<BoxFuture<'static, ()>>,
    restart_timer: Option<Pin<Box<Sleep>>>,
    /// When the in-flight `create` times out.
    create_timer: Option<Pin<Box<Sleep>>>,
    /// The device's counters (shared by its proxies of every engine).
    metrics: Arc<DeviceMetrics>,
    /// `machine.dropped_events()` already added to `metrics`.
    dropped_seen: u64,
    /// The state and enable value last written to `metrics`.
    published: Option<(ProxyState, bool)>,
    /// The queue depth last written to `metrics`.
    published_depth: usize,
}

impl DeviceProxy {
    pub(crate) fn new(
        device: &DeviceSpec,
        prefix: EventType,
        client: Arc<dyn DeviceClient>,
        span: tracing::Span,
        input: mpsc::Receiver<ProxyInput>,
        shared: Arc<SharedState>,
        cancel: CancellationToken,
    ) -> Self {
        let machine = Machine::new(Config {
            queue_capacity: device.event_queue_size,
            restart: device.restart,
            initial_running_false: true,
        });
        let metrics = ops_metrics::global().device(&prefix);
        Self {
            factory: device.factory.clone(),
            conf: device.conf.clone(),
            prefix,
            client,
            span,
            input,
            shared,
            cancel,
            detached: Arc::new(AtomicBool::new(false)),
            previous: None,
            ended: CancellationToken::new(),
            create_timeout: device.create_timeout,
            close_timeout: device.close_timeout,
            machine,
            instance: None,
            op: None,
            self_closed: None,
            restart_timer: None,
            create_timer: None,
            metrics,
            dropped_seen: 0,
            published: None,
            // Written at the first publish: the previous engine's proxy may have
            // left another depth.
            published_depth: usize::MAX,
        }
    }

    /// Whether the proxy registers `running=false` when it starts (default: yes, the
    /// `seeds` layout; hat-gateway 0.6.48 does not). Only before [`Self::run`].
    pub(crate) fn with_initial_running_false(mut self, initial: bool) -> Self {
        if !initial {
            self.machine = Machine::new(Config {
                initial_running_false: false,
                ..self.machine.config()
            });
        }
        self
    }

    /// Shares the engine's flag for closing in the background.
    pub(crate) fn with_detached(mut self, detached: Arc<AtomicBool>) -> Self {
        self.detached = detached;
        self
    }

    /// Makes the first `create` wait until `previous` (the same device's proxy of
    /// the previous engine) has ended.
    pub(crate) fn after(mut self, previous: Option<CancellationToken>) -> Self {
        self.previous = previous;
        self
    }

    /// Cancelled once this proxy has ended.
    pub(crate) fn ended(&self) -> CancellationToken {
        self.ended.clone()
    }

    /// `gateway/<g>/<type>/<name>`, for log lines outside the device's span.
    fn describe(&self, call: &str) -> String {
        format!("{call} of {}", self.prefix.join("/"))
    }

    /// Runs the proxy until the engine is destroyed.
    ///
    /// The proxy lives in a box of its own: the task's future then holds a pointer,
    /// not the proxy (an `async fn` keeps its arguments beside its locals, and nested
    /// they made each idle device's future 3.2 KiB; `PROXY_FUTURE_BOUND`).
    pub(crate) fn run(self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let span = self.span.clone();
        Box::new(self).run_inner().instrument(span)
    }

    async fn run_inner(mut self: Box<Self>) {
        self.publish();
        // The machine starts with the seed `running=false` (behaviour 18).
        self.run_actions().await;
        loop {
            self.publish();
            let input = tokio::select! {
                biased;
                () = self.cancel.cancelled() => break,
                () = self.shared.overflow.notified() => {
                    let dropped = self.shared.dropped.swap(0, Ordering::Relaxed);
                    let lost_enable = self
                        .shared
                        .lost_enable
                        .lock()
                        .ok()
                        .and_then(|mut lost| lost.take());
                    Input::QueueOverflow { dropped, lost_enable }
                }
                result = poll_optional(&mut self.op) => {
                    self.op = None;
                    match self.on_op(result).await {
                        Some(input) => input,
                        None => continue,
                    }
                }
                () = poll_optional(&mut self.create_timer) => {
                    self.create_timer = None;
                    self.metrics.create_failed("create timed out");
                    Input::CreateTimedOut
                }
                input = self.input.recv() => match input {
                    Some(input) => self.received(input),
                    None => break,
                },
                () = poll_optional(&mut self.self_closed) => {
                    self.self_closed = None;
                    Input::SelfClosed
                }
                () = poll_optional(&mut self.restart_timer) => {
                    self.restart_timer = None;
                    Input::RestartDue
                }
            };
            let restart = matches!(input, Input::RestartDue);
            self.step(input).await;
            if restart && self.machine.state() == ProxyState::Creating {
                self.metrics.restarted();
            }
        }
        // Boxed: its waits (create grace, close timeout) would otherwise widen every
        // idle device's future; it runs once.
        Box::pin(self.shutdown()).await;
        self.publish();
        // A proxy that never created still orders the next engine's after the
        // previous one.
        if let Some(previous) = self.previous.take() {
            Box::pin(previous.cancelled()).await;
        }
        self.ended.cancel();
    }

    fn publish(&mut self) {
        let state = self.machine.state();
        self.shared.set_state(state);
        let metrics = &self.metrics;
        // The metrics' atomics are written only on a change: an event costs its
        // counter's add, not a write of every gauge.
        let enabled = self.machine.enabled();
        if self.published != Some((state, enabled)) {
            self.published = Some((state, enabled));
            if metrics.set_state(state, enabled) {
                if let Some(reason) = self.machine.failure() {
                    metrics.set_error(reason);
                }
                ops_metrics::global().notify_changed();
            }
        }
        let depth = self.machine.queue_len() + self.input.len();
        if depth != self.published_depth {
            self.published_depth = depth;
            metrics.set_queue_depth(depth);
        }
        let dropped = self.machine.dropped_events();
        if dropped > self.dropped_seen {
            metrics.dropped(dropped - self.dropped_seen);
            self.dropped_seen = dropped;
        }
    }

    /// An input from the engine, counted when it is an event.
    fn received(&self, input: ProxyInput) -> Input {
        if matches!(input, ProxyInput::Event(_)) {
            self.metrics.event_in();
        }
        input.into()
    }

    /// Hands one input to the machine and carries out what follows.
    async fn step(&mut self, input: Input) {
        self.machine.handle(input, Instant::now().into_std());
        self.run_actions().await;
    }

    async fn run_actions(&mut self) {
        while let Some(action) = self.machine.poll_action() {
            self.run_action(action).await;
        }
    }

    /// The input that the end of the in-flight operation is (none when a created
    /// instance arrived after the machine had abandoned its create).
    async fn on_op(&mut self, result: OpResult) -> Option<Input> {
        Some(match result {
            OpResult::Created(Ok(instance)) => {
                self.create_timer = None;
                // Inputs already received count as received while creating: an
                // enable=false among them must prevent `running=true` (behaviour 41).
                while let Ok(input) = self.input.try_recv() {
                    let input = self.received(input);
                    self.step(input).await;
                }
                if self.machine.state() != ProxyState::Creating {
                    // Abandoned meanwhile: close it beside the proxy, no `running`.
                    self.close_in_background(instance);
                    return None;
                }
                self.instance = Some(instance);
                Input::Created
            }
            OpResult::Created(Err(err)) => {
                self.create_timer = None;
                let reason = err.to_string();
                self.metrics.create_failed(&reason);
                Input::CreateFailed(reason)
            }
            OpResult::Processed(Ok(())) => Input::Processed,
            OpResult::Processed(Err(err)) => Input::ProcessFailed(err.to_string()),
            OpResult::Closed => {
                self.instance = None;
                self.self_closed = None;
                Input::CloseDone
            }
        })
    }

    /// Closes an instance nobody else will (an abandoned create produced it) on a
    /// task of its own, bounded by `close_timeout`.
    fn close_in_background(&self, instance: Arc<dyn DeviceInstance>) {
        tracing::info!("device created after its create was abandoned; closing it");
        let pending = PendingCall::new(self.describe("close"));
        let timeout = self.close_timeout;
        tokio::spawn(
            async move {
                let _pending = pending;
                close_instance(instance, timeout).await;
            }
            .instrument(self.span.clone()),
        );
    }

    /// Stops waiting for the in-flight `create`. Until its `create_timeout` it runs on
    /// in the background, and an instance it produces is closed; after that it is
    /// dropped (the plugin call pool closes what the plugin still produces).
    fn abandon_create(&mut self) {
        let deadline = self.create_timer.take().map(|timer| timer.deadline());
        let Some(op) = self.op.take() else { return };
        let Some(deadline) = deadline.filter(|d| *d > Instant::now()) else {
            return;
        };
        let pending = PendingCall::new(self.describe("create"));
        let timeout = self.close_timeout;
        tokio::spawn(
            async move {
                let _pending = pending;
                match tokio::time::timeout_at(deadline, op).await {
                    Ok(OpResult::Created(Ok(instance))) => {
                        tracing::info!("abandoned device create finished; closing the instance");
                        close_instance(instance, timeout).await;
                    }
                    Ok(_) => {}
                    Err(_) => tracing::warn!("abandoned device create timed out; dropped"),
                }
            }
            .instrument(self.span.clone()),
        );
    }

    async fn run_action(&mut self, action: Action) {
        match action {
            Action::Create => {
                if let Some(previous) = self.previous.take() {
                    if !previous.is_cancelled() {
                        tracing::info!("waiting for the previous instance to close");
                        // Boxed: only a reconnection waits here (PROXY_FUTURE_BOUND).
                        let cancelled = Box::pin(async {
                            tokio::select! {
                                () = previous.cancelled() => false,
                                () = self.cancel.cancelled() => true,
                            }
                        })
                        .await;
                        if cancelled {
                            // Ends the proxy's loop at once (the token stays cancelled).
                            self.previous = Some(previous);
                            return;
                        }
                    }
                }
                self.start_create();
            }
            Action::AbandonCreate => self.abandon_create(),
            Action::Process(event) => {
                // The machine processes only in RUNNING, which it enters on
                // `Input::Created`, after `on_op` stored the instance.
                let Some(instance) = self.instance.clone() else {
                    tracing::error!("no device instance to process an event");
                    self.op = Some(Box::pin(async { OpResult::Processed(Ok(())) }));
                    return;
                };
                self.op = Some(Box::pin(async move {
                    let result = guard(instance.process_event(*event)).await.and_then(|r| r);
                    OpResult::Processed(result)
                }));
            }
            Action::Close => {
                self.self_closed = None;
                // Replacing the slot drops an in-flight `process_event`.
                let instance = self.instance.take();
                let timeout = self.close_timeout;
                self.op = Some(Box::pin(async move {
                    if let Some(instance) = instance {
                        close_instance(instance, timeout).await;
                    }
                    OpResult::Closed
                }));
            }
            Action::Watch => {
                if let Some(instance) = self.instance.clone() {
                    // A panic while waiting counts as the device having closed itself.
                    self.self_closed = Some(Box::pin(async move {
                        if let Err(err) = guard(instance.closed()).await {
                            tracing::error!(error = %err, "device closed() failed");
                        }
                    }));
                }
            }
            Action::RegisterRunning(running) => {
                register_running(&self.client, &self.prefix, running).await;
            }
            Action::ArmRestart(at) => {
                let at = Instant::from_std(at);
                self.restart_timer = Some(Box::pin(tokio::time::sleep_until(at)));
            }
            Action::DisarmRestart => self.restart_timer = None,
        }
    }

    fn start_create(&mut self) {
        let context = DeviceContext {
            prefix: self.prefix.clone(),
            client: CountingClient::wrap(self.client.clone(), self.metrics.clone()),
            span: self.span.clone(),
        };
        let factory = self.factory.clone();
        let conf = self.conf.clone();
        // A panic in the synchronous part of `create` is caught like one in the future.
        let created = std::panic::catch_unwind(AssertUnwindSafe(|| factory.create(conf, context)));
        let deadline = Instant::now() + self.create_timeout;
        self.create_timer = Some(Box::pin(tokio::time::sleep_until(deadline)));
        self.op = Some(Box::pin(async move {
            let result = match created {
                Ok(future) => guard(future).await.and_then(|r| r),
                Err(panic) => Err(DeviceError::Panicked(panic_message(panic.as_ref()))),
            };
            OpResult::Created(result.map(Arc::from))
        }));
    }

    /// Engine destroyed: close what exists; `running=false` if `running=true` was
    /// registered (failures to register are ignored, behaviour 42).
    async fn shutdown(&mut self) {
        self.restart_timer = None;
        self.self_closed = None;
        let timeout = self.close_timeout;
        let state = self.machine.shutdown();
        if state == Shutdown::AwaitCreate && self.detached.load(Ordering::Relaxed) {
            // The connection is gone: nothing a create yields could register; the
            // next engine does not wait for it.
            tracing::info!("engine closed while creating; create abandoned");
            self.abandon_create();
            return;
        }
        let op = self.op.take();
        let create_deadline = self.create_timer.take().map(|timer| timer.deadline());
        match state {
            Shutdown::AwaitCreate => {
                let Some(op) = op else { return };
                let grace = Instant::now() + CREATE_SHUTDOWN_GRACE;
                let deadline = create_deadline.map_or(grace, |d| d.min(grace));
                let _pending = PendingCall::new(self.describe("create"));
                tracing::info!(
                    wait_s = deadline
                        .saturating_duration_since(Instant::now())
                        .as_secs_f64(),
                    "shutdown: waiting for the device create"
                );
                match tokio::time::timeout_at(deadline, op).await {
                    Ok(OpResult::Created(Ok(instance))) => close_instance(instance, timeout).await,
                    Ok(_) => {}
                    Err(_) => tracing::error!("device create did not finish during shutdown"),
                }
            }
            Shutdown::AwaitClose { registered } => {
                if let Some(op) = op {
                    let _pending = PendingCall::new(self.describe("close"));
                    let _ = op.await;
                }
                if registered {
                    register_last_running(&self.client, &self.prefix).await;
                }
            }
            Shutdown::CloseRunning => {
                // An in-flight `process_event` is dropped before the close.
                drop(op);
                if let Some(instance) = self.instance.take() {
                    let _pending = PendingCall::new(self.describe("close"));
                    tracing::info!(
                        timeout_s = timeout.as_secs_f64(),
                        "shutdown: closing the device"
                    );
                    close_instance(instance, timeout).await;
                    tracing::info!("device closed");
                }
                register_last_running(&self.client, &self.prefix).await;
            }
            Shutdown::Nothing => {}
        }
        self.instance = None;
    }
}

/// Registers `running` (fire-and-forget); a failure is only logged (behaviour 42).
async fn register_running(client: &Arc<dyn DeviceClient>, prefix: &[String], running: bool) {
    let event = running_event(prefix, running);
    if let Err(err) = client.register(vec![event]).await {
        tracing::debug!(error = %err, running, "could not register running");
    }
}

/// Registers the engine's last `running=false` and waits for the server's answer:
/// the device's lane (`fair`) queues a plain `register`, and the runner may close the
/// connection right after the engine; a failure is only logged (behaviour 42).
async fn register_last_running(client: &Arc<dyn DeviceClient>, prefix: &[String]) {
    let event = running_event(prefix, false);
    if let Err(err) = client.register_with_response(vec![event]).await {
        tracing::debug!(error = %err, "could not register running=false");
    }
}

/// Closes an instance within `timeout` (the device's `close_timeout`), catching
/// panics.
async fn close_instance(instance: Arc<dyn DeviceInstance>, timeout: Duration) {
    let close = guard(async move { instance.close().await });
    match tokio::time::timeout(timeout, close).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::error!(error = %err, "device close failed"),
        Err(_) => tracing::error!(
            timeout_s = timeout.as_secs_f64(),
            "device close timed out; abandoning the instance"
        ),
    }
}

/// Runs a device future, turning a panic into [`DeviceError::Panicked`].
async fn guard<T>(future: impl std::future::Future<Output = T>) -> Result<T, DeviceError> {
    AssertUnwindSafe(future)
        .catch_unwind()
        .await
        .map_err(|panic| DeviceError::Panicked(panic_message(panic.as_ref())))
}

/// Polls an optional future; pending forever when there is none. The caller must
/// set the option to `None` once it completed.
fn poll_optional<F>(
    slot: &mut Option<F>,
) -> impl std::future::Future<Output = F::Output> + Send + '_
where
    F: std::future::Future + Unpin + Send,
{
    std::future::poll_fn(move |cx| match slot.as_mut() {
        Some(future) => std::future::Future::poll(Pin::new(future), cx),
        None => std::task::Poll::Pending,
    })
}
