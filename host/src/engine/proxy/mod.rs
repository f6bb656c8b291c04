//! The device proxy: one task per configured device that creates, feeds and closes
//! device instances according to `enable` (`spec/gateway-semantics.md` section 7,
//! with design.md's decisions: events are buffered while a device is being created,
//! a full queue fails the device instead of stalling others, optional restart).
//!
//! The task never awaits a device call directly: `create`, `process_event` and
//! `close` run as the single in-flight operation polled beside the input queue, so
//! enable changes are seen at once (an `enable=false` cancels an in-flight
//! `process_event`) and the engine's `try_send` never finds the queue stuck behind
//! a slow device.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use gateway_model::{Event, EventType};
use tokio::sync::{mpsc, Notify};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::running_event;
use crate::device::{DeviceClient, DeviceContext, DeviceError, DeviceFactory, DeviceInstance};
use crate::spec::{DeviceSpec, RestartPolicy};

/// How long a device's `close` may take before the proxy gives up on it, logs an
/// error and carries on as if it had closed (a hung plugin must not hang shutdown).
const DEVICE_CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// On engine destruction, how long an in-flight `create` may still take; an instance
/// produced within it is closed, one produced later is abandoned.
const CREATE_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

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

/// The observable state of a device proxy (section 7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyState {
    /// Registering `running=false`, waiting for the enable query.
    Starting,
    /// No instance; enable is not true.
    Disabled,
    /// `create` in progress.
    Creating,
    /// An instance is open and receives events.
    Running,
    /// The instance is closing.
    Stopping,
    /// The instance failed; waiting for `enable=false` (or a restart).
    Failed,
    /// The engine was destroyed.
    Closed,
}

impl ProxyState {
    fn from_u8(value: u8) -> Self {
        match value {
            0 => Self::Starting,
            1 => Self::Disabled,
            2 => Self::Creating,
            3 => Self::Running,
            4 => Self::Stopping,
            5 => Self::Failed,
            _ => Self::Closed,
        }
    }
}

/// State shared between the engine (writer of overflow counts) and the proxy task.
#[derive(Default)]
pub(crate) struct SharedState {
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
        ProxyState::from_u8(self.state.load(Ordering::Relaxed))
    }
}

/// The engine's side of a proxy.
pub(crate) struct ProxyHandle {
    pub(crate) prefix: EventType,
    pub(crate) input: mpsc::Sender<ProxyInput>,
    pub(crate) shared: Arc<SharedState>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Starting,
    Disabled,
    Creating,
    Running,
    /// `registered`: `running=true` was registered for the closing instance.
    Stopping {
        registered: bool,
    },
    Failed,
}

/// The proxy task's state. Owned by exactly one task.
pub(crate) struct DeviceProxy {
    factory: Arc<dyn DeviceFactory>,
    conf: serde_json::Value,
    restart: RestartPolicy,
    queue_capacity: usize,
    prefix: EventType,
    client: Arc<dyn DeviceClient>,
    span: tracing::Span,
    input: mpsc::Receiver<ProxyInput>,
    shared: Arc<SharedState>,
    cancel: CancellationToken,

    phase: Phase,
    /// Latest enable value (`None` until the first enable event or query result).
    desired: Option<bool>,
    /// An enable notification arrived before the start-up query result.
    notified_in_starting: bool,
    /// `enable=false` was applied since the current create attempt started.
    saw_false: bool,
    /// Why the current instance / attempt failed.
    failure: Option<String>,
    /// Events waiting for the (current or next) instance.
    queue: VecDeque<Event>,
    /// Events dropped because the queue was full (logged when the device fails).
    dropped_events: u64,
    instance: Option<Arc<dyn DeviceInstance>>,
    op: Option<BoxFuture<'static, OpResult>>,
    self_closed: Option<BoxFuture<'static, ()>>,
    restart_timer: Option<Pin<Box<Sleep>>>,
    /// Failure times inside the restart window.
    recent_failures: VecDeque<Instant>,
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
        Self {
            factory: device.factory.clone(),
            conf: device.conf.clone(),
            restart: device.restart,
            queue_capacity: device.event_queue_size.max(1),
            prefix,
            client,
            span,
            input,
            shared,
            cancel,
            phase: Phase::Starting,
            desired: None,
            notified_in_starting: false,
            saw_false: false,
            failure: None,
            queue: VecDeque::new(),
            dropped_events: 0,
            instance: None,
            op: None,
            self_closed: None,
            restart_timer: None,
            recent_failures: VecDeque::new(),
        }
    }

    /// Runs the proxy until the engine is destroyed.
    pub(crate) async fn run(self) {
        let span = self.span.clone();
        self.run_inner().instrument(span).await;
    }

    async fn run_inner(mut self) {
        self.publish();
        // Seed rule (behaviour 18): `running=false` before anything else.
        register_running(&self.client, &self.prefix, false).await;
        loop {
            if self.phase == Phase::Running && self.op.is_none() {
                if let Some(event) = self.queue.pop_front() {
                    self.start_process(event);
                }
            }
            self.publish();
            tokio::select! {
                biased;
                () = self.cancel.cancelled() => break,
                () = self.shared.overflow.notified() => self.on_input_overflow().await,
                result = poll_optional(&mut self.op) => {
                    self.op = None;
                    self.on_op(result).await;
                }
                input = self.input.recv() => match input {
                    Some(input) => self.on_input(input).await,
                    None => break,
                },
                () = poll_optional(&mut self.self_closed) => {
                    self.self_closed = None;
                    self.on_self_closed().await;
                }
                () = poll_optional(&mut self.restart_timer) => {
                    self.restart_timer = None;
                    if self.phase == Phase::Failed && self.desired == Some(true) {
                        tracing::info!("restarting device after failure");
                        self.start_create();
                    }
                }
            }
        }
        self.shutdown().await;
        self.shared
            .state
            .store(ProxyState::Closed as u8, Ordering::Relaxed);
    }

    fn publish(&self) {
        let state = match self.phase {
            Phase::Starting => ProxyState::Starting,
            Phase::Disabled => ProxyState::Disabled,
            Phase::Creating => ProxyState::Creating,
            Phase::Running => ProxyState::Running,
            Phase::Stopping { .. } => ProxyState::Stopping,
            Phase::Failed => ProxyState::Failed,
        };
        self.shared.state.store(state as u8, Ordering::Relaxed);
    }

    async fn on_input(&mut self, input: ProxyInput) {
        match input {
            ProxyInput::Enable(enabled) => self.on_enable(enabled).await,
            ProxyInput::QueryResult(enabled) => {
                if self.phase != Phase::Starting {
                    return;
                }
                // A notification received while the query was pending wins (behaviour 28).
                if !self.notified_in_starting {
                    self.desired = Some(enabled.unwrap_or(false));
                }
                tracing::debug!(enabled = ?self.desired, "start-up enable state");
                if self.desired == Some(true) {
                    self.start_create();
                } else {
                    self.queue.clear();
                    self.phase = Phase::Disabled;
                }
            }
            ProxyInput::Event(event) => self.on_event(*event).await,
        }
    }

    async fn on_enable(&mut self, enabled: bool) {
        tracing::debug!(enabled, phase = ?self.phase, "enable");
        self.desired = Some(enabled);
        if !enabled {
            self.saw_false = true;
            self.queue.clear();
        }
        match (self.phase, enabled) {
            (Phase::Starting, _) => self.notified_in_starting = true,
            (Phase::Disabled, true) => self.start_create(),
            (Phase::Running, false) => self.begin_stop(),
            (Phase::Failed, false) => {
                self.restart_timer = None;
                self.recent_failures.clear();
                self.failure = None;
                self.phase = Phase::Disabled;
            }
            // Creating: the outcome is decided when `create` returns (behaviour 41).
            // Stopping: decided when `close` returns. Others: nothing to do.
            _ => {}
        }
    }

    async fn on_event(&mut self, event: Event) {
        let wanted = self.desired == Some(true)
            && self.failure.is_none()
            && !matches!(self.phase, Phase::Disabled | Phase::Failed);
        if !wanted {
            tracing::trace!(event_type = ?event.event_type, "event discarded: device not running");
            return;
        }
        if self.queue.len() < self.queue_capacity {
            self.queue.push_back(event);
            return;
        }
        self.dropped_events += 1;
        if matches!(self.phase, Phase::Running | Phase::Creating) {
            self.fail_overflow().await;
        }
    }

    async fn on_input_overflow(&mut self) {
        let dropped = self.shared.dropped.swap(0, Ordering::Relaxed);
        self.dropped_events += dropped;
        let lost = self
            .shared
            .lost_enable
            .lock()
            .ok()
            .and_then(|mut l| l.take());
        if let Some(enabled) = lost {
            // An enable change was lost with the overflow; apply it now.
            self.on_enable(enabled).await;
        }
        if matches!(self.phase, Phase::Running | Phase::Creating) {
            self.fail_overflow().await;
        } else {
            tracing::warn!(dropped, "input queue full; inputs dropped");
        }
    }

    /// design.md: a device that stops consuming is failed, not waited for.
    async fn fail_overflow(&mut self) {
        if self.failure.is_some() {
            return;
        }
        let reason = format!(
            "event queue full (capacity {}): device stopped consuming events",
            self.queue_capacity
        );
        tracing::error!(
            capacity = self.queue_capacity,
            queued = self.queue.len(),
            dropped = self.dropped_events + self.queue.len() as u64,
            "device failed: event queue full"
        );
        self.fail(reason);
    }

    /// Marks the current instance or attempt failed and starts closing what exists.
    fn fail(&mut self, reason: String) {
        self.failure = Some(reason);
        self.queue.clear();
        if self.phase == Phase::Running {
            self.begin_stop();
        }
        // Creating: the instance (if any) is closed when `create` returns.
    }

    async fn on_op(&mut self, result: OpResult) {
        match result {
            OpResult::Created(Ok(instance)) => {
                // Inputs already received count as received while creating: an
                // enable=false among them must prevent `running=true` (behaviour 41).
                while let Ok(input) = self.input.try_recv() {
                    self.on_input(input).await;
                }
                if self.saw_false || self.failure.is_some() {
                    // Disabled or failed while creating: no `running=true` was
                    // registered, so none is registered now either (behaviour 41).
                    tracing::info!("device created after it was disabled; closing it");
                    self.start_close(instance, false);
                    return;
                }
                tracing::info!("device created");
                let watch = instance.clone();
                self.self_closed = Some(Box::pin(async move { watch.closed().await }));
                self.instance = Some(instance);
                self.phase = Phase::Running;
                // Queued events stay queued; the registration only reports it.
                register_running(&self.client, &self.prefix, true).await;
            }
            OpResult::Created(Err(err)) => {
                tracing::error!(error = %err, "device create failed");
                self.failure.get_or_insert_with(|| err.to_string());
                self.settle();
            }
            OpResult::Processed(Ok(())) => {}
            OpResult::Processed(Err(err)) => {
                tracing::error!(error = %err, "device process_event failed");
                self.fail(err.to_string());
            }
            OpResult::Closed => {
                let registered = matches!(self.phase, Phase::Stopping { registered: true });
                self.instance = None;
                self.self_closed = None;
                tracing::info!("device closed");
                if registered {
                    register_running(&self.client, &self.prefix, false).await;
                }
                self.settle();
            }
        }
    }

    async fn on_self_closed(&mut self) {
        if self.phase != Phase::Running {
            return;
        }
        tracing::warn!("device closed itself");
        self.fail("device closed itself".to_owned());
    }

    /// No instance and no operation: decide the next phase.
    fn settle(&mut self) {
        let failure = self.failure.take();
        if self.saw_false {
            // A disable arrived since this attempt started: failures are forgiven
            // (FAILED + enable=false = DISABLED) and a later enable=true re-creates.
            if self.desired == Some(true) {
                self.start_create();
            } else {
                self.queue.clear();
                self.phase = Phase::Disabled;
            }
        } else if let Some(reason) = failure {
            self.queue.clear();
            self.phase = Phase::Failed;
            self.failure = Some(reason);
            self.schedule_restart();
        } else if self.desired == Some(true) {
            self.start_create();
        } else {
            self.phase = Phase::Disabled;
        }
    }

    fn schedule_restart(&mut self) {
        let RestartPolicy::OnFailure {
            initial_backoff,
            max_backoff,
            max_restarts,
            window,
        } = self.restart
        else {
            tracing::warn!("device failed; waiting for enable=false");
            return;
        };
        let now = Instant::now();
        while self
            .recent_failures
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            self.recent_failures.pop_front();
        }
        self.recent_failures.push_back(now);
        let failures = self.recent_failures.len() as u32;
        if failures > max_restarts {
            tracing::error!(
                failures,
                window_s = window.as_secs_f64(),
                "device crash loop: giving up restarts; waiting for enable=false"
            );
            return;
        }
        let factor = 2u32.saturating_pow(failures.saturating_sub(1));
        let backoff = initial_backoff.saturating_mul(factor).min(max_backoff);
        tracing::warn!(
            backoff_s = backoff.as_secs_f64(),
            failures,
            "device failed; restarting after backoff"
        );
        self.restart_timer = Some(Box::pin(tokio::time::sleep(backoff)));
    }

    fn start_create(&mut self) {
        self.saw_false = false;
        self.failure = None;
        self.phase = Phase::Creating;
        let context = DeviceContext {
            prefix: self.prefix.clone(),
            client: self.client.clone(),
            span: self.span.clone(),
        };
        let factory = self.factory.clone();
        let conf = self.conf.clone();
        // A panic in the synchronous part of `create` is caught like one in the future.
        let created = std::panic::catch_unwind(AssertUnwindSafe(|| factory.create(conf, context)));
        self.op = Some(Box::pin(async move {
            let result = match created {
                Ok(future) => guard(future).await.and_then(|r| r),
                Err(panic) => Err(DeviceError::Panicked(panic_message(&panic))),
            };
            OpResult::Created(result.map(Arc::from))
        }));
    }

    fn start_process(&mut self, event: Event) {
        let Some(instance) = self.instance.clone() else {
            return;
        };
        self.op = Some(Box::pin(async move {
            let result = guard(instance.process_event(event)).await.and_then(|r| r);
            OpResult::Processed(result)
        }));
    }

    /// Stops delivery and closes the running instance (an in-flight `process_event`
    /// is dropped: after a disable or failure nothing more reaches the instance).
    fn begin_stop(&mut self) {
        self.queue.clear();
        match self.instance.take() {
            Some(instance) => self.start_close(instance, true),
            None => self.settle(),
        }
    }

    fn start_close(&mut self, instance: Arc<dyn DeviceInstance>, registered: bool) {
        self.phase = Phase::Stopping { registered };
        self.self_closed = None;
        self.op = Some(Box::pin(async move {
            close_instance(instance).await;
            OpResult::Closed
        }));
    }

    /// Engine destroyed: close what exists; `running=false` if `running=true` was
    /// registered (failures to register are ignored, behaviour 42).
    async fn shutdown(&mut self) {
        self.restart_timer = None;
        let op = self.op.take();
        match (self.phase, op) {
            (Phase::Creating, Some(op)) => {
                match tokio::time::timeout(CREATE_SHUTDOWN_GRACE, op).await {
                    Ok(OpResult::Created(Ok(instance))) => close_instance(instance).await,
                    Ok(_) => {}
                    Err(_) => tracing::error!("device create did not finish during shutdown"),
                }
            }
            (Phase::Stopping { registered }, Some(op)) => {
                let _ = op.await;
                if registered {
                    register_running(&self.client, &self.prefix, false).await;
                }
            }
            (Phase::Running, _) => {
                if let Some(instance) = self.instance.take() {
                    close_instance(instance).await;
                    tracing::info!("device closed");
                }
                register_running(&self.client, &self.prefix, false).await;
            }
            _ => {}
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

/// Closes an instance with a time limit, catching panics.
async fn close_instance(instance: Arc<dyn DeviceInstance>) {
    let close = guard(async move { instance.close().await });
    match tokio::time::timeout(DEVICE_CLOSE_TIMEOUT, close).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::error!(error = %err, "device close failed"),
        Err(_) => tracing::error!(
            timeout_s = DEVICE_CLOSE_TIMEOUT.as_secs_f64(),
            "device close timed out; abandoning the instance"
        ),
    }
}

/// Runs a device future, turning a panic into [`DeviceError::Panicked`].
async fn guard<T>(future: impl std::future::Future<Output = T>) -> Result<T, DeviceError> {
    AssertUnwindSafe(future)
        .catch_unwind()
        .await
        .map_err(|panic| DeviceError::Panicked(panic_message(&panic)))
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "panic with a non-text payload".to_owned()
    }
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
