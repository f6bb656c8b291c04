//! Shared helpers for the behaviour tests: a controllable in-memory device type, an
//! observer subscribed to `gateway/*`, and a harness that runs the gateway runner on
//! an embedded event server.
#![allow(clippy::unwrap_used, dead_code)]

pub(crate) mod hat;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use gateway_host::device::{
    DeviceClient, DeviceContext, DeviceError, DeviceFactory, DeviceInstance,
};
use gateway_host::embedded::{EmbeddedConfig, EmbeddedServer};
use gateway_host::runner::{self, RunError};
use gateway_host::spec::{DeviceSpec, EventServerSpec, GatewaySpec, RestartPolicy};
use gateway_model::{
    event_type_from_str, Event, EventType, Payload, QueryLatestParams, QueryParams, RegisterEvent,
    Status,
};
use serde_json::{json, Value};
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Bound on every wait in the tests.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// Gateway name used by the tests.
pub(crate) const G: &str = "G";
/// Device type of the test factory.
pub(crate) const T: &str = "T";

/// `gateway/G/T/<device>` + `rest`.
pub(crate) fn ty(device: &str, rest: &str) -> EventType {
    event_type_from_str(&format!("gateway/{G}/{T}/{device}/{rest}"))
}

/// `[gateway, G, T, device]`.
pub(crate) fn prefix(device: &str) -> EventType {
    event_type_from_str(&format!("gateway/{G}/{T}/{device}"))
}

/// A register event with a JSON payload.
pub(crate) fn ev(event_type: EventType, value: Value) -> RegisterEvent {
    RegisterEvent::json(event_type, value)
}

/// `en(x)` for a device.
pub(crate) fn en(device: &str, value: Value) -> RegisterEvent {
    ev(ty(device, "system/enable"), value)
}

/// One call the engine made into the test device type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Call {
    /// `create` started.
    Create {
        instance: u64,
        device: String,
        conf: Value,
        prefix: EventType,
        /// Latest `running` value in the server when `create` was called.
        running_at_create: Option<bool>,
        /// Latest `enable` payload in the server when `create` was called.
        enable_at_create: Option<Value>,
    },
    /// `create` failed (after being called).
    CreateFailed { device: String },
    /// `process_event` was entered.
    Process {
        instance: u64,
        device: String,
        event: Event,
    },
    /// `close` completed.
    Closed {
        instance: u64,
        device: String,
        /// Latest `running` value in the server when `close` completed (`None` when
        /// probing is off or the connection is gone): `Some(true)` proves that
        /// `run(false)` was registered only after the close.
        running_at_close: Option<bool>,
    },
}

/// Knobs and the call log of the test device type.
#[derive(Default)]
pub(crate) struct Control {
    calls: Mutex<Vec<Call>>,
    changed: Notify,
    next_instance: AtomicU64,
    /// `create` returns an error.
    pub fail_create: AtomicBool,
    /// `create` does not query the server (for query-counting tests).
    pub skip_probe: AtomicBool,
    /// `create` panics.
    pub panic_create: AtomicBool,
    /// `close` panics (after recording).
    pub panic_close: AtomicBool,
    /// When set, `create` waits for a permit.
    pub create_gate: Mutex<Option<Arc<Semaphore>>>,
    /// When set, every `process_event` waits for a permit.
    pub process_gate: Mutex<Option<Arc<Semaphore>>>,
    /// Highest number of concurrent `process_event` calls seen.
    pub max_concurrent: AtomicUsize,
    concurrent: AtomicUsize,
}

impl Control {
    fn push(&self, call: Call) {
        self.calls.lock().unwrap().push(call);
        self.changed.notify_waiters();
    }

    /// Snapshot of the call log.
    pub(crate) fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// Waits until `pred` holds for the call log.
    pub(crate) async fn wait_for(&self, what: &str, pred: impl Fn(&[Call]) -> bool) -> Vec<Call> {
        let wait = async {
            loop {
                let notified = self.changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                {
                    let calls = self.calls.lock().unwrap();
                    if pred(&calls) {
                        return calls.clone();
                    }
                }
                notified.await;
            }
        };
        match tokio::time::timeout(WAIT, wait).await {
            Ok(calls) => calls,
            Err(_) => panic!("timed out waiting for {what}; calls: {:#?}", self.calls()),
        }
    }

    /// Makes every `create` wait for a permit of the returned semaphore.
    pub(crate) fn gate_create(&self) -> Arc<Semaphore> {
        let gate = Arc::new(Semaphore::new(0));
        *self.create_gate.lock().unwrap() = Some(gate.clone());
        gate
    }

    /// Makes every `process_event` wait for a permit of the returned semaphore.
    pub(crate) fn gate_process(&self) -> Arc<Semaphore> {
        let gate = Arc::new(Semaphore::new(0));
        *self.process_gate.lock().unwrap() = Some(gate.clone());
        gate
    }

    /// Waits until `device` has processed `n` events whose type ends in `name`.
    pub(crate) async fn wait_processed(&self, device: &str, name: &str, n: usize) -> Vec<Call> {
        self.wait_for(name, |calls| {
            count(calls, |c| {
                matches!(c, Call::Process { device: d, event, .. }
                    if d == device && event.event_type.last().map(String::as_str) == Some(name))
            }) == n
        })
        .await
    }

    /// Creates of `device`.
    pub(crate) fn creates(&self, device: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| matches!(c, Call::Create { device: d, .. } if d == device))
            .collect()
    }

    /// Events given to `process_event` of `device`, with the instance.
    pub(crate) fn processed(&self, device: &str) -> Vec<(u64, Event)> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Process {
                    instance,
                    device: d,
                    event,
                } if d == device => Some((instance, event)),
                _ => None,
            })
            .collect()
    }

    /// Last segment of every processed event of `device`.
    pub(crate) fn processed_names(&self, device: &str) -> Vec<String> {
        self.processed(device)
            .into_iter()
            .map(|(_, e)| e.event_type.last().cloned().unwrap_or_default())
            .collect()
    }

    /// `running_at_close` of every completed close of `device`, in order.
    pub(crate) fn running_at_closes(&self, device: &str) -> Vec<Option<bool>> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Closed {
                    device: d,
                    running_at_close,
                    ..
                } if d == device => Some(running_at_close),
                _ => None,
            })
            .collect()
    }

    /// Number of closes of `device`.
    pub(crate) fn closes(&self, device: &str) -> usize {
        self.calls()
            .iter()
            .filter(|c| matches!(c, Call::Closed { device: d, .. } if d == device))
            .count()
    }
}

/// Counts calls matching a predicate.
pub(crate) fn count(calls: &[Call], pred: impl Fn(&Call) -> bool) -> usize {
    calls.iter().filter(|c| pred(c)).count()
}

/// The in-memory device type `T`.
///
/// Instances react to the last segment of an event type: `fail` -> `process_event`
/// returns an error, `panic` -> it panics, `selfclose` -> the instance closes itself,
/// `register` -> it registers `<prefix>/gateway/echo` through its client.
pub(crate) struct TestFactory {
    pub control: Arc<Control>,
}

impl TestFactory {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            control: Arc::new(Control::default()),
        })
    }
}

async fn latest_value(client: &dyn DeviceClient, event_type: EventType) -> Option<Value> {
    let result = client
        .query(QueryParams::Latest(QueryLatestParams {
            event_types: Some(vec![event_type.clone()]),
        }))
        .await
        .ok()?;
    result
        .events
        .into_iter()
        .find(|e| e.event_type == event_type)
        .and_then(|e| e.payload)
        .and_then(|p| p.json_value())
}

impl DeviceFactory for TestFactory {
    fn device_type(&self) -> &str {
        T
    }

    fn json_schema_id(&self) -> Option<&str> {
        None
    }

    fn json_schema(&self) -> Option<&Value> {
        None
    }

    fn create(
        &self,
        conf: Value,
        context: DeviceContext,
    ) -> BoxFuture<'static, Result<Box<dyn DeviceInstance>, DeviceError>> {
        let control = self.control.clone();
        Box::pin(async move {
            let device = conf["name"].as_str().unwrap_or_default().to_owned();
            let mut running_type = context.prefix.clone();
            running_type.extend(["gateway".to_owned(), "running".to_owned()]);
            let mut enable_type = context.prefix.clone();
            enable_type.extend(["system".to_owned(), "enable".to_owned()]);
            let (running_at_create, enable_at_create) = if control.skip_probe.load(Ordering::SeqCst)
            {
                (None, None)
            } else {
                let running = latest_value(context.client.as_ref(), running_type)
                    .await
                    .and_then(|v| v.as_bool());
                (
                    running,
                    latest_value(context.client.as_ref(), enable_type).await,
                )
            };
            let instance = control.next_instance.fetch_add(1, Ordering::SeqCst) + 1;
            control.push(Call::Create {
                instance,
                device: device.clone(),
                conf,
                prefix: context.prefix.clone(),
                running_at_create,
                enable_at_create,
            });
            let gate = control.create_gate.lock().unwrap().clone();
            if let Some(gate) = gate {
                gate.acquire().await.unwrap().forget();
            }
            if control.panic_create.load(Ordering::SeqCst) {
                panic!("test device panics in create");
            }
            if control.fail_create.load(Ordering::SeqCst) {
                control.push(Call::CreateFailed { device });
                return Err(DeviceError::Failed("test device refuses to start".into()));
            }
            Ok(Box::new(TestInstance {
                id: instance,
                device,
                prefix: context.prefix,
                client: context.client,
                control,
                closed: CancellationToken::new(),
            }) as Box<dyn DeviceInstance>)
        })
    }
}

struct TestInstance {
    id: u64,
    device: String,
    prefix: EventType,
    client: Arc<dyn DeviceClient>,
    control: Arc<Control>,
    closed: CancellationToken,
}

impl DeviceInstance for TestInstance {
    fn process_event(&self, event: Event) -> BoxFuture<'_, Result<(), DeviceError>> {
        Box::pin(async move {
            let control = &self.control;
            let now = control.concurrent.fetch_add(1, Ordering::SeqCst) + 1;
            control.max_concurrent.fetch_max(now, Ordering::SeqCst);
            let name = event.event_type.last().cloned().unwrap_or_default();
            control.push(Call::Process {
                instance: self.id,
                device: self.device.clone(),
                event,
            });
            let gate = control.process_gate.lock().unwrap().clone();
            if let Some(gate) = gate {
                gate.acquire().await.unwrap().forget();
            }
            control.concurrent.fetch_sub(1, Ordering::SeqCst);
            match name.as_str() {
                "fail" => Err(DeviceError::Failed("test device failed".into())),
                "panic" => panic!("test device panics in process_event"),
                "selfclose" => {
                    self.closed.cancel();
                    Ok(())
                }
                "register" => {
                    let mut event_type = self.prefix.clone();
                    event_type.extend(["gateway".to_owned(), "echo".to_owned()]);
                    self.client
                        .register(vec![ev(event_type, json!(self.id))])
                        .await
                        .map_err(|e| DeviceError::Failed(e.to_string()))
                }
                _ => Ok(()),
            }
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let first =
                !self.closed.is_cancelled()
                    || !self.control.calls().iter().any(
                        |c| matches!(c, Call::Closed { instance, .. } if *instance == self.id),
                    );
            self.closed.cancel();
            if first {
                let running_at_close = if self.control.skip_probe.load(Ordering::SeqCst) {
                    None
                } else {
                    let mut running_type = self.prefix.clone();
                    running_type.extend(["gateway".to_owned(), "running".to_owned()]);
                    latest_value(self.client.as_ref(), running_type)
                        .await
                        .and_then(|v| v.as_bool())
                };
                self.control.push(Call::Closed {
                    instance: self.id,
                    device: self.device.clone(),
                    running_at_close,
                });
            }
            if self.control.panic_close.load(Ordering::SeqCst) {
                panic!("test device panics in close");
            }
        })
    }

    fn closed(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.closed.cancelled())
    }
}

/// A device entry of type `T` named `name`.
pub(crate) fn device(factory: &Arc<TestFactory>, name: &str) -> DeviceSpec {
    DeviceSpec {
        device_type: T.to_owned(),
        name: name.to_owned(),
        conf: json!({"module": "test", "name": name}),
        factory: factory.clone(),
        restart: RestartPolicy::Never,
        event_queue_size: gateway_host::spec::DEFAULT_EVENT_QUEUE_SIZE,
        create_timeout: gateway_host::spec::DEFAULT_CREATE_TIMEOUT,
        close_timeout: gateway_host::spec::DEFAULT_CLOSE_TIMEOUT,
    }
}

/// A gateway spec `G` on the embedded server with the given devices.
pub(crate) fn gateway(devices: Vec<DeviceSpec>) -> GatewaySpec {
    GatewaySpec {
        name: G.to_owned(),
        event_server: EventServerSpec::Embedded {
            listen: None,
            enable_devices: false,
        },
        require_operational: false,
        event_types: gateway_host::spec::EventTypes::Seeds,
        devices,
    }
}

/// Everything notified to a `gateway/*` subscriber, in order.
pub(crate) struct Observer {
    rx: mpsc::Receiver<gateway_model::Notification>,
    _connection: Box<dyn std::any::Any + Send>,
    pub events: Vec<Event>,
    pub statuses: Vec<Status>,
}

impl Observer {
    /// Subscribes to `gateway/*` on the embedded server.
    pub(crate) async fn new(server: &EmbeddedServer) -> Self {
        let (connection, rx, _) = server
            .connect("test/observer", vec![event_type_from_str("gateway/*")])
            .await
            .unwrap();
        Self {
            rx,
            _connection: Box::new(connection),
            events: Vec::new(),
            statuses: Vec::new(),
        }
    }

    fn push(&mut self, notification: gateway_model::Notification) {
        match notification {
            gateway_model::Notification::Events(events) => self.events.extend(events),
            gateway_model::Notification::Status(status) => self.statuses.push(status),
        }
    }

    /// Takes in everything already notified.
    pub(crate) fn drain(&mut self) {
        while let Ok(n) = self.rx.try_recv() {
            self.push(n);
        }
    }

    /// Waits until `pred` holds for the events seen so far.
    pub(crate) async fn wait_for(&mut self, what: &str, pred: impl Fn(&[Event]) -> bool) {
        self.drain();
        let deadline = tokio::time::Instant::now() + WAIT;
        while !pred(&self.events) {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(n)) => self.push(n),
                Ok(None) => panic!("observer disconnected waiting for {what}"),
                Err(_) => panic!("timed out waiting for {what}; events: {:#?}", self.events),
            }
        }
    }

    /// `running` values registered for `device`, in order.
    pub(crate) fn running(&self, device: &str) -> Vec<bool> {
        running_values(&self.events, device)
    }

    /// Waits until `device`'s running values equal `expected`.
    pub(crate) async fn wait_running(&mut self, device: &str, expected: &[bool]) {
        let what = format!("running {expected:?} of {device}");
        self.wait_for(&what, |events| {
            running_values(events, device).len() >= expected.len()
        })
        .await;
        assert_eq!(self.running(device), expected, "running events of {device}");
    }
}

/// `running` values of a device in a list of events.
pub(crate) fn running_values(events: &[Event], device: &str) -> Vec<bool> {
    let running = ty(device, "gateway/running");
    events
        .iter()
        .filter(|e| e.event_type == running)
        .map(|e| {
            assert!(
                e.source_timestamp.is_some(),
                "running without source timestamp"
            );
            e.payload
                .as_ref()
                .and_then(Payload::json_value)
                .and_then(|v| v.as_bool())
                .expect("running payload is a JSON boolean")
        })
        .collect()
}

/// A gateway runner on an embedded server, with an observer and the test device type.
pub(crate) struct Harness {
    pub server: EmbeddedServer,
    pub factory: Arc<TestFactory>,
    pub control: Arc<Control>,
    pub observer: Observer,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<Result<(), RunError>>,
}

/// How to set up a [`Harness`].
pub(crate) struct Setup {
    pub devices: Vec<DeviceSpec>,
    pub preset: Vec<RegisterEvent>,
    pub require_operational: bool,
    pub status: Status,
    pub config: EmbeddedConfig,
    pub factory: Arc<TestFactory>,
}

impl Setup {
    /// Devices `names` of type `T`, status operational, nothing preset.
    pub(crate) fn new(names: &[&str]) -> Self {
        let factory = TestFactory::new();
        Self {
            devices: names.iter().map(|n| device(&factory, n)).collect(),
            preset: Vec::new(),
            require_operational: false,
            status: Status::Operational,
            config: EmbeddedConfig::default(),
            factory,
        }
    }

    /// Events registered before the gateway starts.
    pub(crate) fn preset(mut self, events: Vec<RegisterEvent>) -> Self {
        self.preset = events;
        self
    }

    /// Starts the runner.
    pub(crate) async fn start(self) -> Harness {
        let server = EmbeddedServer::new(self.config);
        if !self.preset.is_empty() {
            server.register(self.preset).await.unwrap();
        }
        server.set_status(self.status).await;
        let observer = Observer::new(&server).await;
        let mut spec = gateway(self.devices);
        spec.require_operational = self.require_operational;
        let shutdown = CancellationToken::new();
        let task = tokio::spawn({
            let server = server.clone();
            let shutdown = shutdown.clone();
            async move { runner::run_embedded(&spec, server, shutdown).await }
        });
        Harness {
            server,
            control: self.factory.control.clone(),
            factory: self.factory,
            observer,
            shutdown,
            task,
        }
    }
}

impl Harness {
    /// A harness whose one device `device` is enabled before the start and running.
    pub(crate) async fn running(device: &str) -> Harness {
        let mut h = Setup::new(&[device])
            .preset(vec![en(device, json!(true))])
            .start()
            .await;
        h.observer.wait_running(device, &[false, true]).await;
        h
    }

    /// Waits until the gateway (client `gateway/G`) is connected to the server.
    pub(crate) async fn wait_gateway_connected(&self) {
        let connected = async {
            while !self
                .server
                .connections()
                .iter()
                .any(|c| c.client_name == "gateway/G")
            {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(WAIT, connected).await.unwrap();
    }

    /// Registers events as another component would.
    pub(crate) async fn register(&self, events: Vec<RegisterEvent>) {
        self.server.register(events).await.expect("registered");
    }

    /// Stops the runner and checks it returned `Ok`.
    pub(crate) async fn stop(self) -> Observer {
        self.shutdown.cancel();
        let result = tokio::time::timeout(WAIT, self.task)
            .await
            .expect("runner stops")
            .expect("runner task");
        assert!(result.is_ok(), "runner result: {result:?}");
        let mut observer = self.observer;
        observer.drain();
        observer
    }

    /// Asserts that the runner is still running (has not exited).
    pub(crate) fn assert_running(&self) {
        assert!(!self.task.is_finished(), "the gateway runner exited");
    }
}

/// A map from instance id to its processed event names.
pub(crate) fn by_instance(processed: &[(u64, Event)]) -> HashMap<u64, Vec<String>> {
    let mut map: HashMap<u64, Vec<String>> = HashMap::new();
    for (instance, event) in processed {
        map.entry(*instance)
            .or_default()
            .push(event.event_type.last().cloned().unwrap_or_default());
    }
    map
}
