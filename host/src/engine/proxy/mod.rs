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

mod machine;
#[cfg(test)]
mod tests;

use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
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
use crate::spec::DeviceSpec;
use machine::{Action, Config, Input, Machine, Shutdown};

pub use machine::ProxyState;

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

impl From<ProxyInput> for Input {
    fn from(input: ProxyInput) -> Self {
        match input {
            ProxyInput::Enable(enabled) => Self::Enable(enabled),
            ProxyInput::QueryResult(enabled) => Self::QueryResult(enabled),
            ProxyInput::Event(event) => Self::Event(*event),
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

    machine: Machine,
    instance: Option<Arc<dyn DeviceInstance>>,
    /// The single in-flight device call.
    op: Option<BoxFuture<'static, OpResult>>,
    /// Resolves when the running instance closes by itself.
    self_closed: Option<BoxFuture<'static, ()>>,
    restart_timer: Option<Pin<Box<Sleep>>>,
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
        });
        Self {
            factory: device.factory.clone(),
            conf: device.conf.clone(),
            prefix,
            client,
            span,
            input,
            shared,
            cancel,
            machine,
            instance: None,
            op: None,
            self_closed: None,
            restart_timer: None,
        }
    }

    /// Runs the proxy until the engine is destroyed.
    pub(crate) async fn run(self) {
        let span = self.span.clone();
        self.run_inner().instrument(span).await;
    }

    async fn run_inner(mut self) {
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
                    self.on_op(result).await
                }
                input = self.input.recv() => match input {
                    Some(input) => input.into(),
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
            self.step(input).await;
        }
        self.shutdown().await;
        self.publish();
    }

    fn publish(&self) {
        self.shared.set_state(self.machine.state());
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

    /// The input that the end of the in-flight operation is.
    async fn on_op(&mut self, result: OpResult) -> Input {
        match result {
            OpResult::Created(Ok(instance)) => {
                // Inputs already received count as received while creating: an
                // enable=false among them must prevent `running=true` (behaviour 41).
                while let Ok(input) = self.input.try_recv() {
                    self.step(input.into()).await;
                }
                self.instance = Some(instance);
                Input::Created
            }
            OpResult::Created(Err(err)) => Input::CreateFailed(err.to_string()),
            OpResult::Processed(Ok(())) => Input::Processed,
            OpResult::Processed(Err(err)) => Input::ProcessFailed(err.to_string()),
            OpResult::Closed => {
                self.instance = None;
                self.self_closed = None;
                Input::CloseDone
            }
        }
    }

    async fn run_action(&mut self, action: Action) {
        match action {
            Action::Create => self.start_create(),
            Action::Process(event) => {
                // The machine processes only in RUNNING, which it enters on
                // `Input::Created`, after `on_op` stored the instance.
                let Some(instance) = self.instance.clone() else {
                    tracing::error!("no device instance to process an event");
                    self.op = Some(Box::pin(async { OpResult::Processed(Ok(())) }));
                    return;
                };
                self.op = Some(Box::pin(async move {
                    let result = guard(instance.process_event(event)).await.and_then(|r| r);
                    OpResult::Processed(result)
                }));
            }
            Action::Close => {
                self.self_closed = None;
                // Replacing the slot drops an in-flight `process_event`.
                let instance = self.instance.take();
                self.op = Some(Box::pin(async move {
                    if let Some(instance) = instance {
                        close_instance(instance).await;
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
        let op = self.op.take();
        match self.machine.shutdown() {
            Shutdown::AwaitCreate => {
                let Some(op) = op else { return };
                match tokio::time::timeout(CREATE_SHUTDOWN_GRACE, op).await {
                    Ok(OpResult::Created(Ok(instance))) => close_instance(instance).await,
                    Ok(_) => {}
                    Err(_) => tracing::error!("device create did not finish during shutdown"),
                }
            }
            Shutdown::AwaitClose { registered } => {
                if let Some(op) = op {
                    let _ = op.await;
                }
                if registered {
                    register_running(&self.client, &self.prefix, false).await;
                }
            }
            Shutdown::CloseRunning => {
                // An in-flight `process_event` is dropped before the close.
                drop(op);
                if let Some(instance) = self.instance.take() {
                    close_instance(instance).await;
                    tracing::info!("device closed");
                }
                register_running(&self.client, &self.prefix, false).await;
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
