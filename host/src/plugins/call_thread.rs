//! A thread of its own for each plugin device's calls into its plugin
//! (`docs/architecture.md`, "Plugin calls and host threads").
//!
//! The SDK polls `process_event`, `close` and `closed` in place, on whatever thread
//! polls their FFI futures, and a plugin's `create` starts with a synchronous call
//! into the library. Polled on the host's runtime, a plugin that blocks its thread
//! (a `std::thread::sleep`, a blocking socket, a busy loop) takes a host worker with
//! it; two such devices on a 2-core machine stopped routing, the TCP server and every
//! other device. So every call of a plugin device is made and polled here, on the
//! device's own call thread: a blocking plugin blocks only its own device, and the
//! host's timers (close and create timeouts, `docs/gateway-semantics.md` 7.6) keep
//! running on the host's threads.
//!
//! The thread runs at most two futures at a time: the device's one call
//! ([`Slot::Call`]: `create`, `process_event`, `close`, one after the other as the
//! proxy makes them) and its `closed` watch ([`Slot::Watch`]). A new call replaces
//! (drops) the previous one before it starts, as the proxy drops an in-flight
//! `process_event` before `close`. Dropping the future [`CallThread::call`] returned
//! cancels the call: the thread drops the plugin's future when it next runs, which is
//! at once unless the plugin is blocking the thread. A thread whose plugin blocks
//! for good is abandoned with its device; it ends once the plugin returns and the
//! device (the last sender) is gone.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::Poll;

use futures::future::BoxFuture;
use futures::FutureExt as _;
use gateway_plugin_api::panic_message;
use tokio::sync::{mpsc, oneshot};

/// Where a call runs on its device's thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// The device's one call in flight (`create`, `process_event`, `close`).
    Call,
    /// The device's `closed` watch, beside the call.
    Watch,
}

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

struct Message {
    slot: Slot,
    job: Job,
}

/// Why a call gave no result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallError {
    /// The plugin call panicked (a panic the plugin let out, re-raised by async-ffi).
    Panicked(String),
    /// The device's call thread has ended (it cannot while its device exists).
    ThreadGone,
}

/// The sending side of one device's call thread. Dropping it (with the device) ends
/// the thread once its current poll returns.
#[derive(Debug)]
pub(crate) struct CallThread {
    jobs: mpsc::UnboundedSender<Message>,
}

impl CallThread {
    /// Starts the call thread of device `name` (the thread is named after it, as far
    /// as the OS allows: 15 bytes).
    pub(crate) fn spawn(name: &str) -> std::io::Result<Self> {
        let (jobs, receiver) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name(format!("dev:{name}"))
            .spawn(move || run(receiver))?;
        Ok(Self { jobs })
    }

    /// Makes a plugin call on the thread: `make` is called there (the synchronous
    /// part of the call) and the future it returns is polled there. The returned
    /// future resolves to the call's output; dropping it cancels the call. If the
    /// output is ready when nobody waits any more, `orphan` is given it and the
    /// future it returns (e.g. closing an instance a cancelled `create` produced
    /// after all) is run to its end on the thread.
    pub(crate) fn call<T, M, F, O>(
        &self,
        slot: Slot,
        make: M,
        orphan: O,
    ) -> impl Future<Output = Result<T, CallError>> + Send + 'static
    where
        T: Send + 'static,
        M: FnOnce() -> F + Send + 'static,
        F: Future<Output = T> + Send + 'static,
        O: FnOnce(T) -> Option<BoxFuture<'static, ()>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job = async move {
            let mut tx = tx;
            // The synchronous part of the call runs inside the caught future too.
            let work = AssertUnwindSafe(async move { make().await }).catch_unwind();
            let output = tokio::select! {
                biased;
                () = tx.closed() => return,
                output = work => output,
            };
            match output {
                Ok(value) => {
                    if let Err(Ok(value)) = tx.send(Ok(value)) {
                        if let Some(cleanup) = orphan(value) {
                            let _ = AssertUnwindSafe(cleanup).catch_unwind().await;
                        }
                    }
                }
                Err(panic) => {
                    let _ = tx.send(Err(panic_message(panic.as_ref())));
                }
            }
        };
        let sent = self.jobs.send(Message {
            slot,
            job: Box::pin(job),
        });
        async move {
            if sent.is_err() {
                return Err(CallError::ThreadGone);
            }
            match rx.await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(panic)) => Err(CallError::Panicked(panic)),
                Err(_) => Err(CallError::ThreadGone),
            }
        }
    }
}

/// The thread's loop: takes new calls, polls the call and the watch, ends when the
/// device (every sender) is gone.
fn run(mut receiver: mpsc::UnboundedReceiver<Message>) {
    let mut call: Option<Job> = None;
    let mut watch: Option<Job> = None;
    futures::executor::block_on(std::future::poll_fn(|cx| {
        loop {
            match receiver.poll_recv(cx) {
                Poll::Ready(Some(Message { slot, job })) => {
                    let target = match slot {
                        Slot::Call => &mut call,
                        Slot::Watch => &mut watch,
                    };
                    // The previous future is dropped before the new one starts.
                    *target = None;
                    *target = Some(job);
                }
                Poll::Ready(None) => return Poll::Ready(()),
                Poll::Pending => break,
            }
        }
        for target in [&mut call, &mut watch] {
            if let Some(job) = target.as_mut() {
                if job.as_mut().poll(cx).is_ready() {
                    *target = None;
                }
            }
        }
        Poll::Pending
    }));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::*;

    #[tokio::test]
    async fn a_call_runs_on_the_device_thread_and_returns_its_output() {
        let thread = CallThread::spawn("t").unwrap();
        let name = thread
            .call(
                Slot::Call,
                || async { std::thread::current().name().map(str::to_owned) },
                |_| None,
            )
            .await;
        assert_eq!(name, Ok(Some("dev:t".to_owned())));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_blocking_call_does_not_block_the_caller() {
        let thread = CallThread::spawn("t").unwrap();
        let call = thread.call(
            Slot::Call,
            || async { std::thread::sleep(Duration::from_millis(2000)) },
            |_| None,
        );
        let started = Instant::now();
        // The caller's single thread still runs timers while the call blocks.
        let timed_out = tokio::time::timeout(Duration::from_millis(50), call).await;
        assert!(timed_out.is_err());
        assert!(started.elapsed() < Duration::from_millis(1000));
    }

    #[tokio::test]
    async fn a_panic_becomes_an_error() {
        let thread = CallThread::spawn("t").unwrap();
        let result: Result<(), _> = thread
            .call(Slot::Call, || async { panic!("boom") }, |_| None)
            .await;
        assert_eq!(result, Err(CallError::Panicked("boom".to_owned())));
        // The thread survives it.
        assert_eq!(
            thread.call(Slot::Call, || async { 1 }, |_| None).await,
            Ok(1)
        );
    }

    #[tokio::test]
    async fn a_dropped_call_is_cancelled_and_a_new_call_replaces_the_old() {
        let thread = CallThread::spawn("t").unwrap();
        let dropped = Arc::new(AtomicBool::new(false));
        struct OnDrop(Arc<AtomicBool>);
        impl Drop for OnDrop {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let guard = OnDrop(dropped.clone());
        let pending = thread.call(
            Slot::Call,
            move || async move {
                let _guard = guard;
                std::future::pending::<()>().await
            },
            |_| None,
        );
        // Not polled by the caller at all: the thread runs it anyway.
        let seen = {
            let dropped = dropped.clone();
            thread.call(
                Slot::Call,
                move || async move { dropped.load(Ordering::SeqCst) },
                |_| None,
            )
        };
        assert_eq!(seen.await, Ok(true), "the old call was dropped first");
        drop(pending);
    }

    #[tokio::test]
    async fn an_output_nobody_waits_for_any_more_goes_to_orphan() {
        let thread = CallThread::spawn("t").unwrap();
        let (orphan_tx, orphan_rx) = std::sync::mpsc::channel();
        let (entered_tx, entered_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let call = thread.call(
            Slot::Call,
            move || async move {
                // A plugin blocking its thread, e.g. a `create` that does not yield.
                entered_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                7
            },
            move |value| {
                Some(Box::pin(async move {
                    orphan_tx.send(value).unwrap();
                }) as BoxFuture<'static, ()>)
            },
        );
        entered_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        // The caller stops waiting while the plugin blocks, then the plugin returns.
        drop(call);
        release_tx.send(()).unwrap();
        assert_eq!(orphan_rx.recv_timeout(Duration::from_secs(5)), Ok(7));
    }
}
