//! The test kit (feature `testing`): run a device without a host.
//!
//! [`DeviceTest`] creates a device from a JSON configuration with a recording client,
//! feeds it events by suffix, awaits and checks what it registered, answers its
//! queries and closes it in the order the host does. [`RecordingBackend`] is the
//! recording client on its own, for tests that drive a device some other way (a
//! host-side test wraps it in the host's client trait). [`block_on_paused`] runs a
//! test with tokio's paused clock, so a device's timers run instantly and in order.
//!
//! Waits are bounded by [`WAIT_LIMIT`] of wall-clock time (not tokio time, which a
//! paused clock advances freely); a wait that runs out panics with what it waited
//! for. The kit panics on every failed expectation, like `assert!`.
//!
//! ```
//! use gateway_plugin_api::model::Event;
//! use gateway_plugin_api::sdk::testing::{block_on, DeviceTest};
//! use gateway_plugin_api::sdk::{Client, Context, Device, Error};
//! use serde_json::{json, Value};
//!
//! struct Echo(Client);
//!
//! async fn create(_conf: Value, context: Context) -> Result<Echo, Error> {
//!     Ok(Echo(context.client().clone()))
//! }
//!
//! impl Device for Echo {
//!     async fn process_event(&self, event: Event) -> Result<(), Error> {
//!         let value = gateway_plugin_api::sdk::decode_payload::<Value>(&event)?;
//!         let event_type = self.0.child_type("gateway/echo");
//!         self.0.register(vec![gateway_plugin_api::model::RegisterEvent::json(event_type, value)]).await?;
//!         Ok(())
//!     }
//! }
//!
//! block_on(async {
//!     let mut test = DeviceTest::create("echo", json!({"name": "e1"}), create).await.unwrap();
//!     test.send("system/say", json!("hi")).await.unwrap();
//!     test.expect_registered("gateway/echo", json!("hi")).await;
//!     test.close().await;
//! });
//! ```

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use gateway_model::{
    Event, EventId, EventType, Payload, QueryParams, QueryResult, RegisterEvent, Timestamp,
};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::client::{BoxFuture, Client, ClientBackend, ClientError};
use super::device::{Context, Device, Error};
use super::events::{child_event_type, event_suffix};

/// Upper bound, in wall-clock time, on every wait of the kit.
pub const WAIT_LIMIT: Duration = Duration::from_secs(20);

/// Calls the recording client keeps until the test reads them; a device that makes
/// more waits in its client call (back-pressure, as a slow server would apply).
pub const CALL_QUEUE_CAPACITY: usize = 4096;

/// The gateway name in the prefix of a device under test.
pub const GATEWAY_NAME: &str = "gw";

/// Runs `future` to completion on a fresh current-thread runtime (what
/// `#[tokio::test]` does; no tokio dependency needed in the plugin).
pub fn block_on<F: Future>(future: F) -> F::Output {
    runtime(false).block_on(future)
}

/// Like [`block_on`], with tokio's clock paused: `tokio::time::sleep` and intervals in
/// the device complete as soon as nothing else can run, in deadline order. Use
/// `tokio::time::advance` (re-exported as `sdk::tokio::time::advance`) to step.
pub fn block_on_paused<F: Future>(future: F) -> F::Output {
    runtime(true).block_on(future)
}

fn runtime(paused: bool) -> tokio::runtime::Runtime {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_all();
    if paused {
        builder.start_paused(true);
    }
    match builder.build() {
        Ok(runtime) => runtime,
        Err(err) => panic!("test kit: cannot build a tokio runtime: {err}"),
    }
}

/// Awaits `future`, panicking with `what` if it takes longer than [`WAIT_LIMIT`] of
/// wall-clock time.
pub async fn within<F: Future>(what: &str, future: F) -> F::Output {
    let (done, done_rx) = std::sync::mpsc::channel::<()>();
    let (expired_tx, expired) = oneshot::channel::<()>();
    // A watchdog thread: tokio's own timers would be advanced by a paused clock.
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(WAIT_LIMIT) {
            let _ = expired_tx.send(());
        }
    });
    tokio::select! {
        output = future => {
            drop(done);
            output
        }
        _ = expired => panic!("test kit: waited {WAIT_LIMIT:?} for {what}"),
    }
}

/// One call a device made on its client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `register`.
    Register(Vec<RegisterEvent>),
    /// `register_with_response`.
    RegisterWithResponse(Vec<RegisterEvent>),
    /// `query`.
    Query(QueryParams),
}

type QueryAnswer = Box<dyn Fn(&QueryParams) -> QueryResult + Send + Sync>;

/// A recording event client: every call goes to its [`CallLog`]; registrations with
/// response are answered with the events as stored (ids 1, 2, ... of server 1,
/// session 1), queries with what [`answer_queries`](Self::answer_queries) says
/// (empty by default). [`fail_with`](Self::fail_with) makes every call fail.
pub struct RecordingBackend {
    calls: mpsc::Sender<Call>,
    answer: Mutex<QueryAnswer>,
    failure: Mutex<Option<ClientError>>,
    next_instance: AtomicI64,
}

impl std::fmt::Debug for RecordingBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingBackend")
            .field("next_instance", &self.next_instance)
            .finish_non_exhaustive()
    }
}

impl RecordingBackend {
    /// A backend and the log of its calls.
    pub fn new() -> (Arc<Self>, CallLog) {
        let (calls, receiver) = mpsc::channel(CALL_QUEUE_CAPACITY);
        let backend = Arc::new(Self {
            calls,
            answer: Mutex::new(Box::new(|_| QueryResult::default())),
            failure: Mutex::new(None),
            next_instance: AtomicI64::new(1),
        });
        (backend, CallLog::new(receiver))
    }

    /// Answers every query with `answer(params)`.
    pub fn answer_queries(
        &self,
        answer: impl Fn(&QueryParams) -> QueryResult + Send + Sync + 'static,
    ) {
        *self.answer.lock().unwrap_or_else(PoisonError::into_inner) = Box::new(answer);
    }

    /// Answers every query with these events (`more_follows = false`).
    pub fn answer_queries_with(&self, events: Vec<Event>) {
        self.answer_queries(move |_| QueryResult {
            events: events.clone(),
            more_follows: false,
        });
    }

    /// From now on every call fails with `failure` (`None`: calls succeed again).
    /// Failed calls are not recorded.
    pub fn fail_with(&self, failure: Option<ClientError>) {
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = failure;
    }

    /// The events as a server would store them.
    pub fn stored(&self, events: &[RegisterEvent]) -> Vec<Event> {
        events
            .iter()
            .map(|e| Event {
                id: EventId {
                    server: 1,
                    session: 1,
                    instance: self.next_instance.fetch_add(1, Ordering::Relaxed),
                },
                event_type: e.event_type.clone(),
                timestamp: Timestamp::now(),
                source_timestamp: e.source_timestamp,
                payload: e.payload.clone(),
            })
            .collect()
    }

    fn failure(&self) -> Option<ClientError> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn record(&self, call: Call) -> Result<(), ClientError> {
        if let Some(err) = self.failure() {
            return Err(err);
        }
        // The log is gone: the test ended; report it as a closed connection.
        self.calls
            .send(call)
            .await
            .map_err(|_| ClientError::ConnectionClosed)
    }
}

impl ClientBackend for RecordingBackend {
    fn register(&self, events: Vec<RegisterEvent>) -> BoxFuture<'_, Result<(), ClientError>> {
        Box::pin(self.record(Call::Register(events)))
    }

    fn register_with_response(
        &self,
        events: Vec<RegisterEvent>,
    ) -> BoxFuture<'_, Result<Option<Vec<Event>>, ClientError>> {
        Box::pin(async move {
            let stored = self.stored(&events);
            self.record(Call::RegisterWithResponse(events)).await?;
            Ok(Some(stored))
        })
    }

    fn query(&self, params: QueryParams) -> BoxFuture<'_, Result<QueryResult, ClientError>> {
        Box::pin(async move {
            let result = (self.answer.lock().unwrap_or_else(PoisonError::into_inner))(&params);
            self.record(Call::Query(params)).await?;
            Ok(result)
        })
    }
}

/// What a [`RecordingBackend`] recorded, in call order. Registered events can be read
/// one call at a time ([`next_call`](Self::next_call)) or one event at a time
/// ([`next_event`](Self::next_event), which flattens batches and skips queries).
pub struct CallLog {
    receiver: mpsc::Receiver<Call>,
    /// Events of a batch read by `next_event` but not returned yet.
    pending: VecDeque<RegisterEvent>,
}

impl std::fmt::Debug for CallLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallLog")
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

impl CallLog {
    fn new(receiver: mpsc::Receiver<Call>) -> Self {
        Self {
            receiver,
            pending: VecDeque::new(),
        }
    }

    /// The next call, or `None` once the backend is dropped. Not bounded in time.
    pub async fn recv(&mut self) -> Option<Call> {
        self.receiver.recv().await
    }

    /// The next call (waits up to [`WAIT_LIMIT`]; panics if the backend is gone).
    pub async fn next_call(&mut self) -> Call {
        match within("a client call", self.receiver.recv()).await {
            Some(call) => call,
            None => panic!("test kit: the client was dropped"),
        }
    }

    /// The next call if one was made already.
    pub fn try_next_call(&mut self) -> Option<Call> {
        self.receiver.try_recv().ok()
    }

    /// The next fire-and-forget registration call (panics on any other call).
    pub async fn next_register(&mut self) -> Vec<RegisterEvent> {
        match self.next_call().await {
            Call::Register(events) => events,
            other => panic!("test kit: expected a registration, got {other:?}"),
        }
    }

    /// The next registered event, from `register` or `register_with_response`, one
    /// event at a time; queries are skipped.
    pub async fn next_event(&mut self) -> RegisterEvent {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return event;
            }
            match self.next_call().await {
                Call::Register(events) | Call::RegisterWithResponse(events) => {
                    self.pending.extend(events)
                }
                Call::Query(_) => {}
            }
        }
    }

    /// Panics if a call was made that the test has not read.
    pub fn assert_quiet(&mut self) {
        if let Some(event) = self.pending.front() {
            panic!("test kit: unread registered event {event:?}");
        }
        if let Some(call) = self.try_next_call() {
            panic!("test kit: unexpected client call {call:?}");
        }
    }
}

/// A registered event as `(suffix after the prefix, JSON payload)`; `Value::Null`
/// for no payload or a binary one.
pub fn summary(prefix: &[String], event: &RegisterEvent) -> (String, Value) {
    let suffix = event_suffix(prefix, &event.event_type)
        .map(|s| s.join("/"))
        .unwrap_or_else(|| event.event_type.join("/"));
    let value = event
        .payload
        .as_ref()
        .and_then(Payload::json_value)
        .unwrap_or(Value::Null);
    (suffix, value)
}

/// A notified event `<prefix>/<suffix>` with a JSON payload, as the host delivers it.
pub fn event(prefix: &[String], suffix: &str, payload: Value) -> Event {
    Event {
        id: EventId::default(),
        event_type: child_event_type(prefix, suffix),
        timestamp: Timestamp::now(),
        source_timestamp: None,
        payload: Some(Payload::json(payload)),
    }
}

/// The 4-segment prefix of a device under test: `gateway/gw/<device_type>/<name>`.
pub fn test_prefix(device_type: &str, name: &str) -> EventType {
    ["gateway", GATEWAY_NAME, device_type, name]
        .map(str::to_owned)
        .to_vec()
}

/// A device under test, with its recording client.
pub struct DeviceTest<D> {
    device: Arc<D>,
    context: Context,
    backend: Arc<RecordingBackend>,
    calls: CallLog,
    closed: bool,
}

impl<D> std::fmt::Debug for DeviceTest<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceTest")
            .field("device", &std::any::type_name::<D>())
            .field("context", &self.context)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl<D: Device> DeviceTest<D> {
    /// Creates a device with `create` (the function given to `export_plugin!`), from
    /// `conf` (the device entry; its `name`, default `device`, names the device), with
    /// prefix `gateway/gw/<device_type>/<name>`.
    pub async fn create<F, Fut>(device_type: &str, conf: Value, create: F) -> Result<Self, Error>
    where
        F: FnOnce(Value, Context) -> Fut,
        Fut: Future<Output = Result<D, Error>>,
    {
        let (backend, calls) = RecordingBackend::new();
        Self::create_with(device_type, conf, create, backend, calls).await
    }

    /// Like [`create`](Self::create), with a backend prepared beforehand (query answers
    /// the device needs during `create`).
    pub async fn create_with<F, Fut>(
        device_type: &str,
        conf: Value,
        create: F,
        backend: Arc<RecordingBackend>,
        calls: CallLog,
    ) -> Result<Self, Error>
    where
        F: FnOnce(Value, Context) -> Fut,
        Fut: Future<Output = Result<D, Error>>,
    {
        let name = conf
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("device")
            .to_owned();
        let client_backend: Arc<dyn ClientBackend> = backend.clone();
        let client = Client::new(client_backend, test_prefix(device_type, &name));
        let context = Context::new(client);
        let device = within("create", create(conf, context.clone())).await?;
        Ok(Self {
            device: Arc::new(device),
            context,
            backend,
            calls,
            closed: false,
        })
    }

    /// The device.
    pub fn device(&self) -> &D {
        &self.device
    }

    /// The device's prefix.
    pub fn prefix(&self) -> &[String] {
        self.context.prefix()
    }

    /// The recording client (query answers, failures).
    pub fn backend(&self) -> &RecordingBackend {
        &self.backend
    }

    /// The log of client calls.
    pub fn calls(&mut self) -> &mut CallLog {
        &mut self.calls
    }

    /// The event `<prefix>/<suffix>` with a JSON payload.
    pub fn event(&self, suffix: &str, payload: Value) -> Event {
        event(self.prefix(), suffix, payload)
    }

    /// Feeds the device `<prefix>/<suffix>` with a JSON payload (`process_event`).
    pub async fn send(&self, suffix: &str, payload: Value) -> Result<(), Error> {
        self.process(self.event(suffix, payload)).await
    }

    /// Feeds the device one event (`process_event`).
    pub async fn process(&self, event: Event) -> Result<(), Error> {
        within("process_event", self.device.process_event(event)).await
    }

    /// The next registered event as `(suffix, payload)` (see [`CallLog::next_event`]).
    pub async fn next_registered(&mut self) -> (String, Value) {
        let event = self.calls.next_event().await;
        summary(self.context.prefix(), &event)
    }

    /// Asserts that the next registered event is `<prefix>/<suffix>` with `payload`.
    pub async fn expect_registered(&mut self, suffix: &str, payload: Value) {
        let got = self.next_registered().await;
        assert_eq!(
            got,
            (suffix.to_owned(), payload),
            "test kit: registered event"
        );
    }

    /// Skips registered events until one on `<prefix>/<suffix>` and returns its payload.
    pub async fn wait_registered(&mut self, suffix: &str) -> Value {
        loop {
            let (got, value) = self.next_registered().await;
            if got == suffix {
                return value;
            }
        }
    }

    /// Panics if the device made a client call the test has not read.
    pub fn assert_quiet(&mut self) {
        self.calls.assert_quiet();
    }

    /// True once the device is closing (by itself, or through [`close`](Self::close)).
    pub fn is_closing(&self) -> bool {
        self.context.is_closing()
    }

    /// Waits until the device closes itself (`Context::close_self`, or a background
    /// task that failed or panicked).
    pub async fn wait_closed_by_itself(&self) {
        within("the device to close itself", self.context.closing()).await;
    }

    /// Closes the device as the host does when `enable` turns false or the gateway
    /// stops: the device's context starts closing (its `Context::spawn` tasks are
    /// dropped at their next await), then `Device::close` runs. Idempotent.
    pub async fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.context.lifecycle().start_closing();
        within("close", self.device.close()).await;
    }

    /// `enable=false`: the same as [`close`](Self::close) (the host closes a disabled
    /// device and drops it).
    pub async fn disable(mut self) -> CallLog {
        self.close().await;
        self.calls
    }
}
