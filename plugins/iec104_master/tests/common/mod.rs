//! Test kit: a real hat-drivers outstation process (`tests/py/outstation.py`) and an
//! event recorder implementing `gateway_model::EventClient` that checks every registered
//! event against hat-gateway's event schema for it.
#![allow(clippy::unwrap_used, dead_code)]

#[path = "../../../iec_common/tests/hat_schemas/mod.rs"]
pub(crate) mod hat_schemas;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use gateway_model::{ClientError, EventClient, QueryParams, QueryResult};
use gateway_model::{Event, EventId, EventType, JsonText, Payload, RegisterEvent, Timestamp};
use gateway_test_support::script::PyScript;
use iec104_master::MasterDevice;
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// Upper bound for any single expected event or line.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// The 4-segment prefix of the device under test.
pub(crate) fn prefix() -> EventType {
    ["gateway", "gw", "iec104_master", "dev"]
        .map(String::from)
        .to_vec()
}

/// A hat-drivers outstation process, killed on drop.
pub(crate) struct Outstation {
    script: PyScript,
    /// Listening port.
    pub(crate) port: u16,
}

impl Outstation {
    /// An outstation on a free loopback port.
    pub(crate) async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// An outstation listening on `port` (a restart on the same port).
    pub(crate) async fn start_on(port: u16) -> Self {
        Self::start_with(&["--port", &port.to_string()]).await
    }

    async fn start_with(args: &[&str]) -> Self {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/outstation.py");
        let mut outstation = Self {
            script: PyScript::start(&script, args).with_wait(WAIT),
            port: 0,
        };
        let first = outstation.line(|l| l.starts_with("PORT ")).await;
        outstation.port = first["PORT ".len()..].parse().unwrap();
        outstation
    }

    /// Next output line satisfying `pred` (earlier lines are skipped).
    pub(crate) async fn line(&mut self, pred: impl Fn(&str) -> bool) -> String {
        self.script.line(pred).await
    }

    /// Like [`line`](Self::line), with the time the line was read.
    pub(crate) async fn line_at(&mut self, pred: impl Fn(&str) -> bool) -> (Instant, String) {
        self.script.line_at(pred).await
    }

    /// Next received message of hat class `class` (others are skipped), as JSON.
    pub(crate) async fn msg(&mut self, class: &str) -> Value {
        self.msg_at(class).await.1
    }

    /// Like [`msg`](Self::msg), with the time it was printed.
    pub(crate) async fn msg_at(&mut self, class: &str) -> (Instant, Value) {
        let tag = format!("\"_type\": \"{class}\"");
        let (at, line) = self
            .line_at(|l| l.starts_with("MSG ") && l.contains(&tag))
            .await;
        (at, serde_json::from_str(&line["MSG ".len()..]).unwrap())
    }

    /// Sends a command and waits for its acknowledgement; returns the lines printed
    /// before it.
    pub(crate) async fn command(&mut self, command: &str) -> Vec<String> {
        self.script.send(command).await;
        let ack = format!("OK {command}");
        let mut before = Vec::new();
        loop {
            let line = self.line(|_| true).await;
            if line == ack {
                return before;
            }
            before.push(line);
        }
    }

    /// Sends hat messages (a Python list expression, see the script); returns what
    /// hat-gateway's master would register for each (the script's `HAT` lines).
    pub(crate) async fn send(&mut self, msgs: &str) -> Vec<Value> {
        self.command(&format!("send {msgs}"))
            .await
            .iter()
            .filter_map(|l| l.strip_prefix("HAT "))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The next `HAT` line: what hat-gateway's master registers for the outstation's
    /// next answer.
    pub(crate) async fn hat_answer(&mut self) -> Value {
        let line = self.line(|l| l.starts_with("HAT ")).await;
        serde_json::from_str(&line["HAT ".len()..]).unwrap()
    }

    /// The message hat-gateway's master sends for a `system/...` event.
    pub(crate) async fn hat_msg(
        &mut self,
        tail: &str,
        payload: &Value,
        source: Option<Timestamp>,
    ) -> Value {
        let spec = json!({
            "type": tail,
            "payload": payload,
            "source_timestamp": source.map(|t| json!([t.s, t.us])),
        });
        let lines = self.command(&format!("hatmsg {spec}")).await;
        let line = lines
            .iter()
            .find_map(|l| l.strip_prefix("HATMSG "))
            .unwrap();
        serde_json::from_str(line).unwrap()
    }

    /// Stops the process now.
    pub(crate) async fn kill(&mut self) {
        self.script.kill().await;
    }
}

/// One registered event: type after the prefix, payload, source timestamp.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Recorded {
    /// Type after the 4-segment prefix, `/`-joined.
    pub(crate) tail: String,
    /// JSON payload.
    pub(crate) payload: Value,
    /// Source timestamp.
    pub(crate) source_timestamp: Option<Timestamp>,
    /// When it was registered.
    pub(crate) at: Instant,
}

/// `EventClient` that records everything, checking each event's prefix and payload
/// schema, and counting register calls.
pub(crate) struct Recorder {
    schemas: hat_schemas::HatSchemas,
    tx: mpsc::UnboundedSender<Recorded>,
    /// Sizes of the register calls, in order.
    pub(crate) calls: Mutex<Vec<usize>>,
}

/// Receiving side of a [`Recorder`].
pub(crate) struct Events {
    rx: mpsc::UnboundedReceiver<Recorded>,
    /// The recorder (for its call log).
    pub(crate) recorder: Arc<Recorder>,
}

impl Recorder {
    /// A recorder and its receiving side.
    pub(crate) fn new() -> (Arc<Self>, Events) {
        let (tx, rx) = mpsc::unbounded_channel();
        let recorder = Arc::new(Self {
            schemas: hat_schemas::HatSchemas::load(),
            tx,
            calls: Mutex::new(Vec::new()),
        });
        (recorder.clone(), Events { rx, recorder })
    }
}

impl EventClient for Recorder {
    fn register(&self, events: Vec<RegisterEvent>) -> BoxFuture<'_, Result<(), ClientError>> {
        self.calls.lock().unwrap().push(events.len());
        for event in events {
            assert_eq!(
                event.event_type[..4],
                prefix()[..],
                "prefix of {:?}",
                event.event_type
            );
            let payload = match event.payload {
                Some(Payload::Json(text)) => text.value(),
                other => panic!("non-JSON payload {other:?}"),
            };
            let tail = event.event_type[4..].join("/");
            // Every registered event against hat's schema for it.
            self.schemas.check_event("master", &tail, &payload);
            let _ = self.tx.send(Recorded {
                tail,
                payload,
                source_timestamp: event.source_timestamp,
                at: Instant::now(),
            });
        }
        Box::pin(async { Ok(()) })
    }

    fn register_with_response(
        &self,
        _events: Vec<RegisterEvent>,
    ) -> BoxFuture<'_, Result<Option<Vec<Event>>, ClientError>> {
        panic!("iec104_master never registers with response")
    }

    fn query(&self, _params: QueryParams) -> BoxFuture<'_, Result<QueryResult, ClientError>> {
        panic!("iec104_master never queries")
    }
}

impl Events {
    /// Next registered event.
    pub(crate) async fn next(&mut self) -> Recorded {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("no event within the wait")
            .unwrap()
    }

    /// Asserts the next event's type and payload; returns it.
    pub(crate) async fn expect(&mut self, tail: &str, payload: Value) -> Recorded {
        let event = self.next().await;
        assert_eq!((event.tail.as_str(), &event.payload), (tail, &payload));
        event
    }

    /// Asserts the next events are `gateway/status` with these values, in order.
    pub(crate) async fn expect_status(&mut self, statuses: &[&str]) {
        for status in statuses {
            self.expect("gateway/status", json!(status)).await;
        }
    }

    /// Skips events until one of type `tail` arrives.
    pub(crate) async fn until(&mut self, tail: &str) -> Recorded {
        loop {
            let event = self.next().await;
            if event.tail == tail {
                return event;
            }
        }
    }

    /// Events registered within `window` (only to assert that nothing happens).
    pub(crate) async fn quiet_for(&mut self, window: Duration) -> Vec<Recorded> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + window;
        while let Ok(Some(event)) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            out.push(event);
        }
        out
    }
}

/// Asserts that `event` is what hat-gateway's master registers (a `HAT` line).
pub(crate) fn assert_as_hat(event: &Recorded, hat: &Value) {
    assert_eq!(event.tail, hat["type"].as_str().unwrap(), "{hat}");
    assert_eq!(event.payload, hat["payload"], "{}", event.tail);
    let source = event
        .source_timestamp
        .map(|t| json!([t.s, t.us]))
        .unwrap_or(Value::Null);
    assert_eq!(source, hat["source_timestamp"], "{}", event.tail);
}

/// A device entry with test timing, connecting to `ports` in turn.
pub(crate) fn conf(ports: &[u16]) -> Value {
    let addresses: Vec<Value> = ports
        .iter()
        .map(|port| json!({"host": "127.0.0.1", "port": port}))
        .collect();
    json!({
        "module": "iec104_master",
        "name": "dev",
        "remote_addresses": addresses,
        "response_timeout": 2,
        "supervisory_timeout": 0.1,
        "test_timeout": 5,
        "send_window_size": 12,
        "receive_window_size": 8,
        "reconnect_delay": 0.2,
        "time_sync_delay": null
    })
}

/// Creates the device with a recorder.
pub(crate) fn start(conf: &Value) -> (MasterDevice, Events) {
    let (recorder, events) = Recorder::new();
    let device = MasterDevice::create(conf, prefix(), recorder).unwrap();
    (device, events)
}

/// A started device connected to a fresh outstation.
pub(crate) async fn connected() -> (Outstation, MasterDevice, Events) {
    let mut outstation = Outstation::start().await;
    let (device, mut events) = start(&conf(&[outstation.port]));
    events.expect_status(&["CONNECTING", "CONNECTED"]).await;
    outstation.line(|l| l == "CONNECT").await;
    (outstation, device, events)
}

/// An event as the engine would hand it to the device (`tail` after the prefix).
pub(crate) fn system_event(
    tail: &str,
    payload: Value,
    source_timestamp: Option<Timestamp>,
) -> Event {
    system_event_raw(
        tail,
        Some(Payload::Json(JsonText::from_value(&payload))),
        source_timestamp,
    )
}

/// Like [`system_event`] with any payload (or none).
pub(crate) fn system_event_raw(
    tail: &str,
    payload: Option<Payload>,
    source_timestamp: Option<Timestamp>,
) -> Event {
    let mut event_type = prefix();
    event_type.extend(tail.split('/').map(String::from));
    Event {
        id: EventId::default(),
        event_type,
        timestamp: Timestamp::default(),
        source_timestamp,
        payload,
    }
}

/// A loopback port nobody listens on.
pub(crate) fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The source timestamp of the outstation's `T` (2024-02-29 23:59:58.123 UTC).
pub(crate) fn t_stamp() -> Timestamp {
    Timestamp::new(1_709_251_198, 123_000)
}

/// The target directory of this build (`target/<profile>`).
pub(crate) fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// The cdylib cargo built (`target/<profile>/libiec104_master.so`), copied into a
/// private 0755 plugin directory as the loader requires (removed on drop).
pub(crate) fn plugin_dir(label: &str) -> gateway_test_support::TempDir {
    use std::os::unix::fs::PermissionsExt as _;
    let library = target_dir().join("libiec104_master.so");
    assert!(
        library.is_file(),
        "{} missing: cargo build -p iec104_master",
        library.display()
    );
    let dir = gateway_test_support::TempDir::new(&format!("iec104-master-{label}"));
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let target = dir.path().join("libiec104_master.so");
    std::fs::copy(&library, &target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}
