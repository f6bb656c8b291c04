//! The plugin call pool: where every call of a plugin device runs
//! (`docs/architecture.md`, "Plugin calls and host threads").
//!
//! The SDK polls `process_event`, `close` and `closed` in place, on whatever thread
//! polls their FFI futures, and a plugin's `create` starts with a synchronous call
//! into the library. Polled on the host's runtime, a plugin that blocks its thread
//! (a `std::thread::sleep`, a blocking socket, a busy loop) takes a host worker with
//! it; two such devices on a 2-core machine stopped routing, the TCP server and every
//! other device. So every call of a plugin device is made and polled here, never on
//! a host worker, and the host's timers (close and create timeouts,
//! `docs/gateway-semantics.md` 7.6) keep running on the host's threads.
//!
//! Each device is one task of a shared pool of [`POOL_THREADS`] threads (not a thread
//! of its own: that cost about 15 KiB of RSS and a thread per device). A device's task
//! runs at most two futures at a time: the device's one call ([`Slot::Call`]:
//! `create`, `process_event`, `close`, one after the other as the proxy makes them)
//! and its `closed` watch ([`Slot::Watch`]). A new call replaces (drops) the previous
//! one before it starts, as the proxy drops an in-flight `process_event` before
//! `close`. Dropping the future [`CallThread::call`] returned cancels the call: the
//! task drops the plugin's future when it next runs, which is at once unless the
//! plugin is blocking its thread.
//!
//! A watchdog keeps the pool's threads free for the other devices: a pool thread
//! whose poll has lasted [`BLOCKED_AFTER`] is given up (it goes on with the blocking
//! plugin and ends once the plugin returns) and a new thread takes its place, up to
//! [`MAX_POOL_THREADS`] threads in all. A task is polled by one thread at a time, so
//! a device that blocks holds only its own task; the others are taken by the free
//! threads. A device whose plugin blocks for good is abandoned with the thread that
//! polls it, as before.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::task::ArcWake;
use futures::FutureExt as _;
use gateway_plugin_api::panic_message;
use tokio::sync::{mpsc, oneshot};

/// Pool threads kept free for plugin calls.
pub(crate) const POOL_THREADS: usize = 4;
/// A poll of a plugin future that has lasted this long blocks its thread: the
/// watchdog gives that thread up and starts another.
pub(crate) const BLOCKED_AFTER: Duration = Duration::from_millis(50);
/// Pool threads at most, blocked ones included; with that many, a further blocking
/// device delays the others' calls until one of them returns.
pub(crate) const MAX_POOL_THREADS: usize = 256;
/// How often the watchdog looks at the pool threads.
const WATCH_PERIOD: Duration = Duration::from_millis(10);

/// Where a call runs on its device's task.
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
    /// The device's task has ended (it cannot while its device exists).
    ThreadGone,
}

/// The sending side of one device's task on the pool. Dropping it (with the device)
/// ends the task once its current poll returns.
#[derive(Debug)]
pub(crate) struct CallThread {
    jobs: mpsc::UnboundedSender<Message>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

// Task states: the usual idle / scheduled / running / running-and-woken-meanwhile.
const IDLE: u8 = 0;
const SCHEDULED: u8 = 1;
const RUNNING: u8 = 2;
const NOTIFIED: u8 = 3;

/// One device: its message queue and its two futures.
struct Task {
    state: AtomicU8,
    device: Mutex<Device>,
}

struct Device {
    receiver: mpsc::UnboundedReceiver<Message>,
    call: Option<Job>,
    watch: Option<Job>,
    done: bool,
}

impl Device {
    /// Takes new calls and polls the call and the watch; true once the device (every
    /// sender) is gone.
    fn poll(&mut self, cx: &mut Context<'_>) -> bool {
        if self.done {
            return true;
        }
        loop {
            match self.receiver.poll_recv(cx) {
                Poll::Ready(Some(Message { slot, job })) => {
                    let target = match slot {
                        Slot::Call => &mut self.call,
                        Slot::Watch => &mut self.watch,
                    };
                    // The previous future is dropped before the new one starts.
                    *target = None;
                    *target = Some(job);
                }
                Poll::Ready(None) => {
                    self.done = true;
                    self.call = None;
                    self.watch = None;
                    return true;
                }
                Poll::Pending => break,
            }
        }
        for target in [&mut self.call, &mut self.watch] {
            if let Some(job) = target.as_mut() {
                if job.as_mut().poll(cx).is_ready() {
                    *target = None;
                }
            }
        }
        false
    }
}

impl ArcWake for Task {
    fn wake_by_ref(task: &Arc<Self>) {
        let mut state = task.state.load(Ordering::Acquire);
        loop {
            let next = match state {
                IDLE => SCHEDULED,
                RUNNING => NOTIFIED,
                _ => return,
            };
            match task
                .state
                .compare_exchange(state, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    if next == SCHEDULED {
                        pool().push(task.clone());
                    }
                    return;
                }
                Err(actual) => state = actual,
            }
        }
    }
}

/// One pool thread, as the watchdog sees it.
#[derive(Default)]
struct Worker {
    /// When its current poll started (ns since the pool's epoch), 0 while idle.
    poll_started: AtomicU64,
    /// Given up by the watchdog: ends after its current poll.
    given_up: AtomicBool,
    /// The watchdog logged that it could not replace this thread (once per thread).
    reported: AtomicBool,
}

struct Pool {
    queue: Mutex<VecDeque<Arc<Task>>>,
    ready: Condvar,
    workers: Mutex<Vec<Arc<Worker>>>,
    /// Threads alive, given-up ones included.
    threads: AtomicUsize,
    epoch: Instant,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    static STARTED: std::sync::Once = std::sync::Once::new();
    let pool = POOL.get_or_init(|| Pool {
        queue: Mutex::new(VecDeque::new()),
        ready: Condvar::new(),
        workers: Mutex::new(Vec::new()),
        threads: AtomicUsize::new(0),
        epoch: Instant::now(),
    });
    STARTED.call_once(|| {
        for _ in 0..POOL_THREADS {
            pool.start_worker();
        }
        let watchdog = std::thread::Builder::new()
            .name("plugin-watchdog".to_owned())
            .spawn(move || watch(pool));
        if let Err(err) = watchdog {
            tracing::error!(error = %err, "cannot start the plugin call watchdog");
        }
    });
    pool
}

impl Pool {
    fn now(&self) -> u64 {
        // At least 1: 0 means idle.
        u64::try_from(self.epoch.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    fn push(&self, task: Arc<Task>) {
        lock(&self.queue).push_back(task);
        self.ready.notify_one();
    }

    fn start_worker(&'static self) {
        let worker = Arc::new(Worker::default());
        self.threads.fetch_add(1, Ordering::Relaxed);
        let spawned = std::thread::Builder::new()
            .name("plugin-call".to_owned())
            .spawn({
                let worker = worker.clone();
                move || self.work(&worker)
            });
        match spawned {
            Ok(_) => lock(&self.workers).push(worker),
            Err(err) => {
                self.threads.fetch_sub(1, Ordering::Relaxed);
                tracing::error!(error = %err, "cannot start a plugin call thread");
            }
        }
    }

    fn work(&'static self, worker: &Worker) {
        loop {
            let task = {
                let mut queue = lock(&self.queue);
                loop {
                    if let Some(task) = queue.pop_front() {
                        break task;
                    }
                    queue = self
                        .ready
                        .wait(queue)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            };
            task.state.store(RUNNING, Ordering::Release);
            worker.poll_started.store(self.now(), Ordering::Release);
            let waker = futures::task::waker_ref(&task);
            let mut cx = Context::from_waker(&waker);
            // Only this thread polls the task now: the lock is never contended.
            let done = lock(&task.device).poll(&mut cx);
            worker.poll_started.store(0, Ordering::Release);
            if !done
                && task
                    .state
                    .compare_exchange(RUNNING, IDLE, Ordering::AcqRel, Ordering::Acquire)
                    .is_err()
            {
                // Woken while it ran: poll it again.
                task.state.store(SCHEDULED, Ordering::Release);
                self.push(task);
            }
            if worker.given_up.load(Ordering::Acquire) {
                self.threads.fetch_sub(1, Ordering::Relaxed);
                return;
            }
        }
    }
}

/// The watchdog: replaces every pool thread whose poll has lasted [`BLOCKED_AFTER`].
fn watch(pool: &'static Pool) {
    let blocked_after = u64::try_from(BLOCKED_AFTER.as_nanos()).unwrap_or(u64::MAX);
    loop {
        std::thread::sleep(WATCH_PERIOD);
        let now = pool.now();
        let blocked: Vec<Arc<Worker>> = {
            let mut workers = lock(&pool.workers);
            let (blocked, free): (Vec<_>, Vec<_>) = workers.drain(..).partition(|w| {
                let started = w.poll_started.load(Ordering::Acquire);
                started != 0 && now.saturating_sub(started) >= blocked_after
            });
            *workers = free;
            blocked
        };
        for worker in blocked {
            if pool.threads.load(Ordering::Relaxed) < MAX_POOL_THREADS {
                tracing::warn!(
                    blocked_ms = BLOCKED_AFTER.as_millis(),
                    "a plugin call blocks its thread; another thread takes its place"
                );
                worker.given_up.store(true, Ordering::Release);
                pool.start_worker();
            } else {
                // No replacement possible: the thread stays in the pool and is
                // looked at again.
                if !worker.reported.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        max = MAX_POOL_THREADS,
                        "a plugin call blocks its thread and the pool is at its limit"
                    );
                }
                lock(&pool.workers).push(worker);
            }
        }
    }
}

impl CallThread {
    /// Starts the task of device `name` on the pool (`name` is kept for the API; the
    /// pool's threads are shared).
    pub(crate) fn spawn(_name: &str) -> std::io::Result<Self> {
        let (jobs, receiver) = mpsc::unbounded_channel();
        let task = Arc::new(Task {
            state: AtomicU8::new(SCHEDULED),
            device: Mutex::new(Device {
                receiver,
                call: None,
                watch: None,
                done: false,
            }),
        });
        // Polled once so that it waits on its queue.
        pool().push(task);
        Ok(Self { jobs })
    }

    /// Makes a plugin call on the pool: `make` is called there (the synchronous
    /// part of the call) and the future it returns is polled there. The returned
    /// future resolves to the call's output; dropping it cancels the call. If the
    /// output is ready when nobody waits any more, `orphan` is given it and the
    /// future it returns (e.g. closing an instance a cancelled `create` produced
    /// after all) is run to its end on the pool.
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::*;

    #[tokio::test]
    async fn a_call_runs_on_a_pool_thread_and_returns_its_output() {
        let thread = CallThread::spawn("t").unwrap();
        let name = thread
            .call(
                Slot::Call,
                || async { std::thread::current().name().map(str::to_owned) },
                |_| None,
            )
            .await;
        assert_eq!(name, Ok(Some("plugin-call".to_owned())));
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
    async fn devices_that_block_every_pool_thread_do_not_delay_another_device() {
        // More blocking devices than the pool has threads: without the watchdog the
        // quick call would wait for one of them to return (2 s).
        let blockers: Vec<_> = (0..POOL_THREADS + 2)
            .map(|_| CallThread::spawn("b").unwrap())
            .collect();
        let (entered_tx, entered_rx) = std::sync::mpsc::channel();
        let calls: Vec<_> = blockers
            .iter()
            .map(|thread| {
                let entered = entered_tx.clone();
                thread.call(
                    Slot::Call,
                    move || async move {
                        let _ = entered.send(());
                        std::thread::sleep(Duration::from_millis(2000));
                    },
                    |_| None,
                )
            })
            .collect();
        let waiting = tokio::spawn(futures::future::join_all(calls));
        // At least the pool's own threads are inside a blocking call.
        for _ in 0..POOL_THREADS {
            entered_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        }
        let quick = CallThread::spawn("q").unwrap();
        let started = Instant::now();
        assert_eq!(
            quick.call(Slot::Call, || async { 7 }, |_| None).await,
            Ok(7)
        );
        let elapsed = started.elapsed();
        assert!(
            elapsed < Duration::from_millis(1000),
            "a call waited {elapsed:?} for blocked pool threads"
        );
        for result in waiting.await.unwrap() {
            assert_eq!(result, Ok(()));
        }
    }

    #[tokio::test]
    async fn devices_do_not_get_a_thread_each() {
        let threads = || {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            status
                .lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .unwrap()
                .trim()
                .parse::<usize>()
                .unwrap()
        };
        // The pool is started by the first device.
        let first = CallThread::spawn("d").unwrap();
        assert_eq!(
            first.call(Slot::Call, || async { 0 }, |_| None).await,
            Ok(0)
        );
        let before = threads();
        let devices: Vec<_> = (0..1000).map(|_| CallThread::spawn("d").unwrap()).collect();
        for (i, device) in devices.iter().enumerate() {
            assert_eq!(
                device
                    .call(Slot::Call, move || async move { i }, |_| None)
                    .await,
                Ok(i)
            );
        }
        let after = threads();
        // Other tests of this binary may add threads meanwhile (blocking calls), not
        // a thousand.
        assert!(
            after < before + 100,
            "1000 devices took {} threads",
            after.saturating_sub(before)
        );
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
