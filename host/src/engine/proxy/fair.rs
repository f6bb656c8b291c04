//! Fair sharing of one event-server connection between devices
//! (`docs/gateway-semantics.md` section 7.7).
//!
//! Every device proxy (and the device it creates) talks to the event server through
//! its own [`Lane`]: a bounded queue of the device's calls (`register`,
//! `register_with_response`, `query`). One scheduler task per engine drains the lanes
//! in *rounds*: a round takes the next call of every lane that is ready (has calls and
//! none in flight), in turn (lanes served last go to the back), then more calls of the
//! same lanes while the round holds fewer than [`ROUND_EVENTS`] events; it sends the
//! round's calls in that order. A lane served by a round is *in flight* until the
//! server has answered that round; only then are its next calls taken. So each lane has
//! at most one round in flight, and a call that enters an idle lane is sent at once, in
//! a round of its own beside the rounds in flight: a device that floods delays another
//! device's call only by its one round ahead of it on the connection, whatever it
//! queues. (Before, at most one round was in flight for all lanes together, and a write
//! answer waited for the flood's whole round to be answered, the server's fan-out of
//! its 1,000 events included, before it was even sent.) The flooding device meets the
//! bound itself: its lane holds [`LANE_CAPACITY`] calls and a further `register` waits
//! for room (backpressure on that device only).
//!
//! Why rounds wait for the server: before this, a device registering as fast as it
//! could filled the connection's queue and the socket buffers with megabytes of its
//! own requests, which hat-event-server works off one request at a time per
//! connection; another device's write answer waited behind all of it (25 s measured).
//! With one round per lane in flight, what the connection holds is at most one round's
//! calls of each busy lane.
//!
//! Each call stays its own request (its own session and timestamp, as before): calls
//! of different devices are never merged, so one device's refused registration never
//! takes another's with it. A fire-and-forget `register` goes out with `last = true`,
//! also at the end of a round: a round that ends with one is followed by a register
//! request of no event (answered at once, storing nothing), because the server works
//! off one connection's requests in order and its answer to the last one says the
//! round is done. `register` returns once the call is in its lane;
//! `register_with_response` and `query` return the server's answer.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures::future::{join_all, BoxFuture};
use futures::stream::{FuturesUnordered, StreamExt};
use gateway_model::{Event, QueryParams, QueryResult, RegisterEvent};
use tokio::sync::{oneshot, Notify, Semaphore};

use crate::device::{ClientError, DeviceClient};

/// Calls a device may have waiting in its lane; a further call waits for room.
pub(crate) const LANE_CAPACITY: usize = 16;
/// A round takes more than one call per lane only while it holds fewer events than
/// this (a round's first call from each lane is taken whatever its size).
pub(crate) const ROUND_EVENTS: usize = 1024;
/// Calls in one round at most; with more lanes waiting than this, the rest are served
/// first in the next round.
pub(crate) const ROUND_CALLS: usize = 1024;

type Reply<T> = oneshot::Sender<Result<T, ClientError>>;

enum Call {
    Register {
        events: Vec<RegisterEvent>,
        /// `None`: fire-and-forget (the caller already has its answer).
        reply: Option<Reply<Option<Vec<Event>>>>,
    },
    Query {
        params: QueryParams,
        reply: Reply<QueryResult>,
    },
}

impl Call {
    fn events(&self) -> usize {
        match self {
            Call::Register { events, .. } => events.len().max(1),
            Call::Query { .. } => 1,
        }
    }
}

/// One device's queue of calls.
struct LaneQueue {
    calls: Mutex<LaneCalls>,
    /// Room in the lane ([`LANE_CAPACITY`] permits, each queued call holds one until
    /// the scheduler takes it).
    space: Semaphore,
}

#[derive(Default)]
struct LaneCalls {
    queue: VecDeque<Call>,
    /// In the scheduler's ready list, or served by a round in flight (then its further
    /// calls wait for that round's answer).
    scheduled: bool,
}

struct Shared {
    inner: Arc<dyn DeviceClient>,
    /// Lanes with calls, in the order they are served.
    ready: Mutex<VecDeque<Arc<LaneQueue>>>,
    /// Lanes alive, plus one for the [`FairShare`] handle.
    handles: AtomicUsize,
    wake: Notify,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The scheduler of one connection: hands out [`Lane`]s. Its task ends when this
/// handle and every lane are gone and every queued call has been sent.
pub(crate) struct FairShare {
    shared: Arc<Shared>,
}

impl fmt::Debug for FairShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FairShare")
            .field("handles", &self.shared.handles.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl FairShare {
    /// Starts the scheduler over `inner` (on the current tokio runtime).
    pub(crate) fn new(inner: Arc<dyn DeviceClient>) -> Self {
        let shared = Arc::new(Shared {
            inner,
            ready: Mutex::new(VecDeque::new()),
            handles: AtomicUsize::new(1),
            wake: Notify::new(),
        });
        tokio::spawn(schedule(shared.clone()));
        Self { shared }
    }

    /// A new lane (one per device).
    pub(crate) fn lane(&self) -> Arc<dyn DeviceClient> {
        self.shared.handles.fetch_add(1, Ordering::Relaxed);
        Arc::new(Lane {
            shared: self.shared.clone(),
            queue: Arc::new(LaneQueue {
                calls: Mutex::new(LaneCalls::default()),
                space: Semaphore::new(LANE_CAPACITY),
            }),
        })
    }
}

impl Drop for FairShare {
    fn drop(&mut self) {
        self.shared.handles.fetch_sub(1, Ordering::Relaxed);
        self.shared.wake.notify_one();
    }
}

/// One device's access to the shared connection (a [`DeviceClient`]).
struct Lane {
    shared: Arc<Shared>,
    queue: Arc<LaneQueue>,
}

impl Drop for Lane {
    fn drop(&mut self) {
        self.shared.handles.fetch_sub(1, Ordering::Relaxed);
        self.shared.wake.notify_one();
    }
}

impl Lane {
    /// Queues `call` once the lane has room.
    async fn push(&self, call: Call) -> Result<(), ClientError> {
        // The semaphore is never closed: `acquire` cannot fail.
        let permit = self
            .queue
            .space
            .acquire()
            .await
            .map_err(|_| ClientError::ConnectionClosed)?;
        // Given back by the scheduler when it takes the call.
        permit.forget();
        let newly_ready = {
            let mut calls = lock(&self.queue.calls);
            calls.queue.push_back(call);
            !std::mem::replace(&mut calls.scheduled, true)
        };
        if newly_ready {
            lock(&self.shared.ready).push_back(self.queue.clone());
            self.shared.wake.notify_one();
        }
        Ok(())
    }
}

async fn answer<T>(rx: oneshot::Receiver<Result<T, ClientError>>) -> Result<T, ClientError> {
    // The scheduler drops a reply only when it ends, i.e. the connection is gone.
    rx.await.unwrap_or(Err(ClientError::ConnectionClosed))
}

impl DeviceClient for Lane {
    fn register(&self, events: Vec<RegisterEvent>) -> BoxFuture<'_, Result<(), ClientError>> {
        Box::pin(self.push(Call::Register {
            events,
            reply: None,
        }))
    }

    fn register_with_response(
        &self,
        events: Vec<RegisterEvent>,
    ) -> BoxFuture<'_, Result<Option<Vec<Event>>, ClientError>> {
        Box::pin(async move {
            let (tx, rx) = oneshot::channel();
            self.push(Call::Register {
                events,
                reply: Some(tx),
            })
            .await?;
            answer(rx).await
        })
    }

    fn query(&self, params: QueryParams) -> BoxFuture<'_, Result<QueryResult, ClientError>> {
        Box::pin(async move {
            let (tx, rx) = oneshot::channel();
            self.push(Call::Query { params, reply: tx }).await?;
            answer(rx).await
        })
    }
}

/// One round: its calls in the order they are sent, and the lanes they came from
/// (in flight until the round is answered).
struct Round {
    calls: Vec<Call>,
    lanes: Vec<Arc<LaneQueue>>,
}

/// Takes the next round's calls out of the ready lanes (see the module docs).
fn take_round(shared: &Shared) -> Round {
    let lanes: Vec<Arc<LaneQueue>> = {
        let mut ready = lock(&shared.ready);
        let n = ready.len().min(ROUND_CALLS);
        ready.drain(..n).collect()
    };
    let mut calls = Vec::with_capacity(lanes.len());
    let mut events = 0;
    let mut pass = 0;
    loop {
        let mut took = false;
        for lane in &lanes {
            if pass > 0 && (events >= ROUND_EVENTS || calls.len() >= ROUND_CALLS) {
                break;
            }
            let call = lock(&lane.calls).queue.pop_front();
            if let Some(call) = call {
                lane.space.add_permits(1);
                events += call.events();
                calls.push(call);
                took = true;
            }
        }
        pass += 1;
        if !took || events >= ROUND_EVENTS || calls.len() >= ROUND_CALLS {
            break;
        }
    }
    Round { calls, lanes }
}

/// A round is answered: its lanes with calls left go to the back of the ready list,
/// the others are idle (their next call makes them ready).
fn round_done(shared: &Shared, lanes: Vec<Arc<LaneQueue>>) {
    let mut again = Vec::new();
    for lane in lanes {
        let mut calls = lock(&lane.calls);
        if calls.queue.is_empty() {
            calls.scheduled = false;
        } else {
            drop(calls);
            again.push(lane);
        }
    }
    if !again.is_empty() {
        lock(&shared.ready).extend(again);
    }
}

/// Sends one round in order and waits until the server has answered all of it.
async fn send_round(inner: &dyn DeviceClient, round: Vec<Call>) {
    let last = round.len().saturating_sub(1);
    let calls = round.into_iter().enumerate().map(|(index, call)| {
        let future: BoxFuture<'_, ()> = match call {
            Call::Register {
                events,
                reply: Some(reply),
            } => Box::pin(async move {
                let _ = reply.send(inner.register_with_response(events).await);
            }),
            Call::Register {
                events,
                reply: None,
            } if index == last => Box::pin(async move {
                // Sent as it was asked (no answer wanted), then the round's marker: a
                // register request of no event, which stores nothing (no session) and
                // is answered with no event. The server answers a connection's
                // requests in order, so its answer says the round is done. Asking for
                // the registration's own answer instead would bring back every event
                // it stored, decoded here (segments, payload text, JSON check) only to
                // be dropped: about a sixth of a gateway's CPU in a burst (issue 12).
                if let Err(err) = inner.register(events).await {
                    tracing::debug!(error = %err, "registration failed");
                } else if let Err(err) = inner.register_with_response(Vec::new()).await {
                    tracing::debug!(error = %err, "round marker failed");
                }
            }),
            Call::Register {
                events,
                reply: None,
            } => Box::pin(async move {
                if let Err(err) = inner.register(events).await {
                    tracing::debug!(error = %err, "registration failed");
                }
            }),
            Call::Query { params, reply } => Box::pin(async move {
                let _ = reply.send(inner.query(params).await);
            }),
        };
        future
    });
    // `join_all` polls the calls in order, so each is queued on the connection before
    // the next one (the connection's queue admits waiting senders in order too).
    join_all(calls).await;
}

async fn schedule(shared: Arc<Shared>) {
    // The rounds in flight; each yields its lanes once the server has answered it.
    let mut in_flight = FuturesUnordered::new();
    loop {
        let round = take_round(&shared);
        if round.calls.is_empty() {
            // Ready lanes always hold a call; should one not, it is idle again.
            round_done(&shared, round.lanes);
        } else {
            let inner = shared.inner.clone();
            in_flight.push(async move {
                send_round(inner.as_ref(), round.calls).await;
                round.lanes
            });
            continue;
        }
        if in_flight.is_empty()
            && shared.handles.load(Ordering::Relaxed) == 0
            && lock(&shared.ready).is_empty()
        {
            return;
        }
        tokio::select! {
            // `None` (nothing in flight) is ruled out by the guard.
            Some(lanes) = in_flight.next(), if !in_flight.is_empty() => round_done(&shared, lanes),
            // A `notify_one` before this wait is kept as a permit: no wake-up is lost.
            () = shared.wake.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    use gateway_model::event_type_from_str;
    use serde_json::json;

    use super::*;

    /// Records the order in which calls reach the connection; answers every
    /// response request only when `gate` lets it.
    #[derive(Default)]
    struct Recorder {
        seen: Mutex<Vec<String>>,
        gate: Notify,
        gated: AtomicBool,
    }

    impl Recorder {
        /// What reached the connection, round markers left out.
        fn seen(&self) -> Vec<String> {
            lock(&self.seen)
                .iter()
                .filter(|s| *s != "marker")
                .cloned()
                .collect()
        }

        /// Everything that reached the connection, markers included.
        fn all(&self) -> Vec<String> {
            lock(&self.seen).clone()
        }

        async fn hold(&self) {
            if self.gated.load(Ordering::SeqCst) {
                self.gate.notified().await;
            }
        }

        fn note(&self, events: &[RegisterEvent]) {
            let mut seen = lock(&self.seen);
            for event in events {
                seen.push(event.event_type.join("/"));
            }
        }
    }

    impl DeviceClient for Recorder {
        fn register(&self, events: Vec<RegisterEvent>) -> BoxFuture<'_, Result<(), ClientError>> {
            self.note(&events);
            Box::pin(async { Ok(()) })
        }

        fn register_with_response(
            &self,
            events: Vec<RegisterEvent>,
        ) -> BoxFuture<'_, Result<Option<Vec<Event>>, ClientError>> {
            if events.is_empty() {
                lock(&self.seen).push("marker".to_owned());
            } else {
                self.note(&events);
                lock(&self.seen).push("with_response".to_owned());
            }
            Box::pin(async move {
                self.hold().await;
                Ok(Some(Vec::new()))
            })
        }

        fn query(&self, _params: QueryParams) -> BoxFuture<'_, Result<QueryResult, ClientError>> {
            lock(&self.seen).push("query".to_owned());
            Box::pin(async { Ok(QueryResult::default()) })
        }
    }

    fn ev(name: &str) -> Vec<RegisterEvent> {
        vec![RegisterEvent::json(event_type_from_str(name), json!(1))]
    }

    async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        tokio::time::timeout(Duration::from_secs(10), async {
            while !done() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{what}: not within 10 s"));
    }

    #[tokio::test]
    async fn a_quiet_lane_is_served_in_the_round_after_the_one_in_flight() {
        let recorder = Arc::new(Recorder::default());
        recorder.gated.store(true, Ordering::SeqCst);
        let fair = FairShare::new(recorder.clone());
        let flood = fair.lane();
        let quiet = fair.lane();
        // The first round: one flood call, held in flight by the gate.
        flood.register(ev("flood/0")).await.unwrap();
        wait_until("first round sent", || recorder.seen().len() == 1).await;
        // The flooding lane fills up to its capacity while the round is in flight.
        for i in 1..=LANE_CAPACITY {
            flood.register(ev(&format!("flood/{i}"))).await.unwrap();
        }
        let blocked =
            tokio::time::timeout(Duration::from_millis(50), flood.register(ev("flood/over"))).await;
        assert!(blocked.is_err(), "a full lane makes its device wait");
        quiet.register(ev("quiet/0")).await.unwrap();
        recorder.gate.notify_one();
        wait_until("second round sent", || {
            recorder.seen().iter().any(|s| s == "quiet/0")
        })
        .await;
        let seen = recorder.seen();
        let position = seen.iter().position(|s| s == "quiet/0").unwrap();
        // Before: the quiet call came after every flood call queued before it.
        assert!(
            position <= 2,
            "the quiet call waited for more than one round: {seen:?}"
        );
        recorder.gated.store(false, Ordering::SeqCst);
        recorder.gate.notify_one();
    }

    #[tokio::test]
    async fn a_quiet_lane_is_sent_while_another_lanes_round_is_in_flight() {
        let recorder = Arc::new(Recorder::default());
        recorder.gated.store(true, Ordering::SeqCst);
        let fair = FairShare::new(recorder.clone());
        let flood = fair.lane();
        let quiet = fair.lane();
        // The flood's round, held in flight by the gate (never opened here).
        flood.register(ev("flood/0")).await.unwrap();
        wait_until("flood round sent", || recorder.seen().len() == 1).await;
        flood.register(ev("flood/1")).await.unwrap();
        quiet.register(ev("quiet/0")).await.unwrap();
        // Before: the quiet call waited for the flood's round to be answered.
        wait_until("quiet call sent beside the round in flight", || {
            recorder.seen().iter().any(|s| s == "quiet/0")
        })
        .await;
        // The flooding lane's next call waits for its own round's answer.
        assert_eq!(recorder.seen(), ["flood/0", "quiet/0"]);
    }

    #[tokio::test]
    async fn a_lane_keeps_its_order_and_a_query_waits_for_earlier_registers() {
        let recorder = Arc::new(Recorder::default());
        let fair = FairShare::new(recorder.clone());
        let lane = fair.lane();
        for i in 0..40 {
            lane.register(ev(&format!("a/{i}"))).await.unwrap();
        }
        lane.query(QueryParams::Latest(Default::default()))
            .await
            .unwrap();
        let seen = recorder.seen();
        let expected: Vec<String> = (0..40)
            .map(|i| format!("a/{i}"))
            .chain(["query".to_owned()])
            .collect();
        assert_eq!(seen, expected);
    }

    #[tokio::test]
    async fn a_round_of_fire_and_forget_registers_ends_with_the_marker_not_an_answer() {
        let recorder = Arc::new(Recorder::default());
        let fair = FairShare::new(recorder.clone());
        let lane = fair.lane();
        lane.register(ev("a/0")).await.unwrap();
        wait_until("round ended", || recorder.all().len() == 2).await;
        // The registration's own answer (every event it stored) is never asked for.
        assert_eq!(recorder.all(), vec!["a/0".to_owned(), "marker".to_owned()]);
        let stored = lane.register_with_response(ev("b/0")).await.unwrap();
        assert_eq!(stored, Some(Vec::new()));
        assert_eq!(
            recorder.all(),
            ["a/0", "marker", "b/0", "with_response"].map(String::from)
        );
    }

    #[tokio::test]
    async fn register_with_response_returns_the_answer_and_the_task_ends_with_the_lanes() {
        let recorder = Arc::new(Recorder::default());
        let fair = FairShare::new(recorder.clone());
        let lane = fair.lane();
        let stored = lane.register_with_response(ev("x")).await.unwrap();
        assert_eq!(stored, Some(Vec::new()));
        drop(fair);
        drop(lane);
        // The scheduler held the only other reference to the connection.
        wait_until("scheduler ended", || Arc::strong_count(&recorder) == 1).await;
    }
}
