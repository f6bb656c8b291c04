//! The plugin library's own tokio runtime and the spawn-at-the-seam helpers.
//!
//! Every exported async entry point spawns its body on this runtime and returns an
//! FFI future that only awaits the join handle: the host's runtime polls that future
//! without ever touching this library's tokio, and a panic in the body comes back as
//! a join error, never as an unwind across the boundary.

use std::future::Future;
use std::sync::OnceLock;

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
                RResult::RErr(FfiError::panicked(super::device::panic_message(
                    payload.as_ref(),
                )))
            }
            Err(_) => RResult::RErr(FfiError::failed("the plugin task was cancelled")),
        }
    }
    .into_ffi()
}
