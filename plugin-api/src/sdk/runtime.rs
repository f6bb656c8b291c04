//! The plugin library's own tokio runtime and how entry-point bodies run on it.
//!
//! Two ways, both returning an FFI future the host's runtime can poll without ever
//! touching this library's tokio, and both turning a panic into [`FfiError`] instead
//! of an unwind across the boundary:
//! - [`in_place_ffi`] (per-call entry points: `process_event`, `close`, `closed`,
//!   and the host client's results): the body is polled on the host's thread, with
//!   this library's runtime entered around each poll;
//! - [`spawn_ffi`] (`create`): the body is spawned on this runtime and the FFI future
//!   awaits its join handle.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use abi_stable::std_types::RResult;
use async_ffi::{FfiFuture, FutureExt as _};
use tokio::runtime::{Builder, Handle, Runtime};
use tokio::task::JoinHandle;

use super::log::{with_device_log, DeviceLog};
use crate::abi::FfiError;

/// Upper bound on the runtime's worker threads: a plugin shares the machine with the
/// host and every other plugin, and device work is I/O bound.
const MAX_WORKER_THREADS: usize = 4;

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// The library's runtime, built on first use. Never dropped: libraries are never
/// unloaded, so the runtime lives as long as the process.
pub(crate) fn handle() -> Result<&'static Handle, FfiError> {
    let runtime = RUNTIME.get_or_init(|| {
        let workers = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .min(MAX_WORKER_THREADS);
        Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("gateway-plugin")
            .enable_all()
            .build()
            .map_err(|err| format!("cannot build the plugin's tokio runtime: {err}"))
    });
    match runtime {
        Ok(runtime) => Ok(runtime.handle()),
        Err(message) => Err(FfiError::failed(message.as_str())),
    }
}

/// A spawned entry-point body. Unless detached, the task is aborted when the host
/// drops the future before it completed (dropping a future cancels it, on both sides
/// of the boundary).
struct Task<T> {
    join: JoinHandle<T>,
    detach: bool,
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        if !self.detach {
            self.join.abort();
        }
    }
}

/// Spawns `body` on the plugin runtime within the device's log scope and returns an
/// FFI future awaiting it. A panic becomes [`FfiError::panicked`]. With `detach`, the
/// task keeps running if the host drops the future (used by `close`).
pub(crate) fn spawn_ffi<T, F>(
    log: Option<DeviceLog>,
    detach: bool,
    body: F,
) -> FfiFuture<RResult<T, FfiError>>
where
    T: Send + 'static,
    F: Future<Output = Result<T, FfiError>> + Send + 'static,
{
    let handle = match handle() {
        Ok(handle) => handle,
        Err(err) => return async move { RResult::RErr(err) }.into_ffi(),
    };
    let mut task = Task {
        join: handle.spawn(with_device_log(log, body)),
        detach,
    };
    async move {
        match (&mut task.join).await {
            Ok(result) => result.into(),
            Err(err) if err.is_panic() => {
                let payload = err.into_panic();
                RResult::RErr(FfiError::panicked(crate::panic_message(payload.as_ref())))
            }
            Err(_) => RResult::RErr(FfiError::failed("the plugin task was cancelled")),
        }
    }
    .into_ffi()
}

// Why per-call entry points are polled in place rather than spawned (this replaces
// original design's "spawn at the seam" rule for them; `docs/architecture.md`):
//
// Spawning the body on the plugin runtime and awaiting the join handle costs two
// thread hops per call (host worker -> plugin worker -> host worker: two wake-ups,
// two cross-thread handovers). The boundary benchmark measured that at about ten
// times the cost of the device's own work for one `system/write` event. Polling the
// body on the caller's thread costs a function call.
//
// What spawning bought, and how polling in place keeps it:
// - "The host never touches this library's tokio": still true. The library has its
//   own copy of tokio with its own thread-locals; the host's tokio context means
//   nothing to it. Around every poll we enter *this* library's runtime
//   (`Handle::enter`, a thread-local set and reset), so `tokio::time::sleep`,
//   `TcpStream::connect`, `tokio::spawn` inside the body register with the plugin
//   runtime. That runtime's worker threads (idle ones park on its I/O and timer
//   drivers) fire those timers and I/O readiness and call the waker the body
//   registered: the host's waker, carried across by async-ffi. No host-side tokio
//   is involved at all.
// - "No panic crosses the boundary": `catch_unwind` around each poll (and around
//   dropping the body), here inside the library, so the panic is caught by the
//   library's own std. It becomes `FfiError::panicked` exactly as a join error did.
// - Cancellation: dropping the FFI future drops the body, as aborting the spawned
//   task did. `close` is the exception, as before: if the host stops waiting (its
//   close timeout), the unfinished body is handed to the plugin runtime and runs to
//   its end there (`detach`).
//
// What changes: the body's synchronous parts run on the thread the host polls on. In
// gateway-host that is the device's own call thread (host/src/plugins/call_thread.rs),
// so a plugin that blocks inside `process_event` stalls only its own device; a host
// that polls on a shared worker would be blocked as by a statically linked device
// (and as a blocking call in hat-gateway's single asyncio loop blocks the gateway). CPU-heavy or blocking work belongs in
// `tokio::task::spawn_blocking` or a `Context::spawn` task, which still run on the
// plugin's own threads. `create` keeps spawning: it runs once per device, and the
// device's `Context::spawn` tasks are then started from a plugin worker.

/// An entry-point body polled in place: see the comment above.
struct InPlace<F: Future + Send + 'static> {
    handle: &'static Handle,
    /// `None` once the body completed or panicked.
    body: Option<Pin<Box<F>>>,
    detach: bool,
}

impl<T, F> Future for InPlace<F>
where
    F: Future<Output = Result<T, FfiError>> + Send + 'static,
{
    type Output = RResult<T, FfiError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let handle = self.handle;
        let Some(body) = self.body.as_mut() else {
            return Poll::Ready(RResult::RErr(FfiError::failed(
                "a plugin call was polled after it completed",
            )));
        };
        let polled = {
            let _entered = handle.enter();
            catch_unwind(AssertUnwindSafe(|| body.as_mut().poll(cx)))
        };
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(result)) => {
                // Dropping a completed body runs the body's remaining destructors.
                self.drop_body();
                Poll::Ready(result.into())
            }
            Err(payload) => {
                self.drop_body();
                Poll::Ready(RResult::RErr(FfiError::panicked(crate::panic_message(
                    payload.as_ref(),
                ))))
            }
        }
    }
}

impl<F: Future + Send + 'static> InPlace<F> {
    /// Drops the body inside the runtime, catching a panicking destructor (an unwind
    /// out of async-ffi's `extern "C"` drop would abort the host).
    fn drop_body(&mut self) {
        if let Some(body) = self.body.take() {
            let _entered = self.handle.enter();
            let _ = catch_unwind(AssertUnwindSafe(move || drop(body)));
        }
    }
}

impl<F: Future + Send + 'static> Drop for InPlace<F> {
    fn drop(&mut self) {
        match self.body.take() {
            Some(body) if self.detach => {
                // The host stopped waiting: the body finishes on the plugin runtime.
                // A panic there ends that task only (tokio catches it).
                let _ = catch_unwind(AssertUnwindSafe(|| {
                    self.handle.spawn(async move {
                        let _ = body.await;
                    })
                }));
            }
            body => {
                self.body = body;
                self.drop_body();
            }
        }
    }
}

/// Returns an FFI future that polls `body` on the caller's thread, with the plugin
/// runtime entered and within the device's log scope. A panic becomes
/// [`FfiError::panicked`]. With `detach`, a body the host stops waiting for runs to
/// its end on the plugin runtime (used by `close`).
pub(crate) fn in_place_ffi<T, F>(
    log: Option<DeviceLog>,
    detach: bool,
    body: F,
) -> FfiFuture<RResult<T, FfiError>>
where
    T: Send + 'static,
    F: Future<Output = Result<T, FfiError>> + Send + 'static,
{
    let handle = match handle() {
        Ok(handle) => handle,
        Err(err) => return async move { RResult::RErr(err) }.into_ffi(),
    };
    InPlace {
        handle,
        body: Some(Box::pin(with_device_log(log, body))),
        detach,
    }
    .into_ffi()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A host-like executor: a current-thread runtime with no timers of its own, so
    /// only the plugin runtime can fire the body's timer.
    fn host() -> Runtime {
        Builder::new_current_thread().build().unwrap()
    }

    #[test]
    fn a_body_using_plugin_timers_and_spawn_completes_when_polled_elsewhere() {
        let call = in_place_ffi(None, false, async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let spawned = tokio::spawn(async { 7 });
            spawned.await.map_err(|_| FfiError::failed("join"))
        });
        assert_eq!(host().block_on(call).into_result(), Ok(7));
    }

    #[test]
    fn a_panicking_body_becomes_a_panicked_error() {
        let call = in_place_ffi::<(), _>(None, false, async {
            tokio::task::yield_now().await;
            panic!("boom");
        });
        assert_eq!(
            host().block_on(call).into_result(),
            Err(FfiError::panicked("boom"))
        );
    }

    #[test]
    fn a_dropped_body_is_cancelled_unless_detached() {
        for detach in [false, true] {
            let (tx, rx) = std::sync::mpsc::channel();
            let call = in_place_ffi(None, detach, async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let _ = tx.send(());
                Ok(())
            });
            let host = host();
            // Polled once (pending on the timer), then dropped.
            let timed_out = host.block_on(async {
                tokio::select! {
                    biased;
                    _ = call => false,
                    () = std::future::ready(()) => true,
                }
            });
            assert!(timed_out);
            let finished = rx.recv_timeout(Duration::from_secs(5)).is_ok();
            assert_eq!(finished, detach, "detach = {detach}");
        }
    }
}
