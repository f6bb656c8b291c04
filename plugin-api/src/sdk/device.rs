//! The [`Device`] trait plugin authors implement, the [`Context`] a device is created
//! with, and the SDK's error type.

use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use gateway_model::Event;
use tokio::sync::watch;

use super::client::Client;
use super::log::{with_device_log, DeviceLog};

/// A device failure: the message is what the host logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
}

impl Error {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Self { message }
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Self::new(message)
    }
}

impl From<super::ClientError> for Error {
    fn from(err: super::ClientError) -> Self {
        Self::new(err.to_string())
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Self::new(err.to_string())
    }
}

/// A device instance, written in ordinary async Rust.
///
/// The host calls `process_event` one event at a time and `close` once; the SDK polls
/// both with the plugin's own runtime entered, on the thread the host polls them on,
/// and turns panics into errors. gateway-host polls them on a thread of the device's
/// own, so blocking there stalls only this device; still do not block: the device's
/// events wait meanwhile and its `close` cannot start.
pub trait Device: Send + Sync + 'static {
    /// Processes one event addressed to this device. An error fails the device.
    fn process_event(&self, event: Event) -> impl Future<Output = Result<(), Error>> + Send;

    /// Releases everything; afterwards the device must not use its client.
    fn close(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// Whether the device is closing; shared by the device's context, its background
/// tasks and the exported wrapper.
#[derive(Clone)]
pub(crate) struct Lifecycle {
    closing: Arc<watch::Sender<bool>>,
}

impl Lifecycle {
    fn new() -> Self {
        Self {
            closing: Arc::new(watch::Sender::new(false)),
        }
    }

    pub(crate) fn start_closing(&self) {
        self.closing.send_replace(true);
    }

    pub(crate) fn is_closing(&self) -> bool {
        *self.closing.borrow()
    }

    pub(crate) async fn wait_closing(&self) {
        let mut receiver = self.closing.subscribe();
        // The sender lives in `self`, so `wait_for` cannot fail with a closed channel.
        let _ = receiver.wait_for(|closing| *closing).await;
    }
}

/// What a device is created with: its client (and prefix) and a handle on its own
/// lifecycle. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    client: Client,
    lifecycle: Lifecycle,
    log: Option<DeviceLog>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// A context for a device linked statically into a host (benchmarks, tests). A
    /// plugin library never calls this: the SDK builds the context for `create`.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            lifecycle: Lifecycle::new(),
            log: None,
        }
    }

    pub(crate) fn with_log(client: Client, log: DeviceLog) -> Self {
        Self {
            client,
            lifecycle: Lifecycle::new(),
            log: Some(log),
        }
    }

    pub(crate) fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }

    /// The device's event client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The device's 4-segment event-type prefix.
    pub fn prefix(&self) -> &[String] {
        self.client.prefix()
    }

    /// Closes the device from the inside (a fatal error): the host sees the device
    /// closed, registers `running=false` and treats it as failed.
    pub fn close_self(&self, reason: &str) {
        if !self.lifecycle.is_closing() {
            tracing::error!(reason, "device closes itself");
            self.lifecycle.start_closing();
        }
    }

    /// True once the device is closing (by itself or because the host closes it).
    pub fn is_closing(&self) -> bool {
        self.lifecycle.is_closing()
    }

    /// Resolves when the device starts closing; use it as the cancellation arm of a
    /// device's `select!` loops.
    pub async fn closing(&self) {
        self.lifecycle.wait_closing().await
    }

    /// Runs a background task of the device (a poll loop, a timer). It is dropped when
    /// the device closes. If it returns an error or panics, the device closes itself
    /// and the host reports it failed.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = Result<(), Error>> + Send + 'static,
    {
        let lifecycle = self.lifecycle.clone();
        let body = async move {
            tokio::select! {
                // Cancellation arm: the device is closing, the task is dropped.
                () = lifecycle.wait_closing() => {}
                outcome = CatchUnwind::new(task) => {
                    let reason = match outcome {
                        Ok(Ok(())) => return,
                        Ok(Err(err)) => format!("background task failed: {err}"),
                        Err(panic) => format!("background task panicked: {panic}"),
                    };
                    if !lifecycle.is_closing() {
                        tracing::error!(reason = %reason, "device closes itself");
                        lifecycle.start_closing();
                    }
                }
            }
        };
        tokio::spawn(with_device_log(self.log.clone(), body));
    }
}

/// Polls a future inside `catch_unwind`; a panic becomes `Err(message)`.
pub(crate) struct CatchUnwind<F> {
    future: Pin<Box<F>>,
}

impl<F: Future> CatchUnwind<F> {
    pub(crate) fn new(future: F) -> Self {
        Self {
            future: Box::pin(future),
        }
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let future = self.future.as_mut();
        match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(payload) => Poll::Ready(Err(crate::panic_message(payload.as_ref()))),
        }
    }
}
