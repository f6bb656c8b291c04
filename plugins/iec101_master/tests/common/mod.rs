//! Test kit: a socat pty pair as the serial line, a real hat-drivers outstation process
//! on one end (`tests/py/outstation.py`) and an event recorder implementing
//! `gateway_model::EventClient` that checks every registered event against hat-gateway's
//! event schema for it and answers the start-up enable query.
#![allow(clippy::unwrap_used, dead_code)]

#[path = "../../../iec_common/tests/hat_schemas/mod.rs"]
pub(crate) mod hat_schemas;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use gateway_model::{ClientError, EventClient, QueryLatestParams, QueryParams, QueryResult};
use gateway_model::{Event, EventId, EventType, JsonText, Payload, RegisterEvent, Timestamp};
use gateway_test_support::pty::PtyPair;
use gateway_test_support::script::PyScript;
use iec101_master::MasterDevice;
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// Upper bound for any single expected event or line.
pub(crate) const WAIT: Duration = Duration::from_secs(15);

/// The 4-segment prefix of the device under test.
pub(crate) fn prefix() -> EventType {
    ["gateway", "gw", "iec101_master", "dev"]
        .map(String::from)
        .to_vec()
}

/// A hat-drivers outstation process on end `b` of a pty pair, killed on drop.
pub(crate) struct Outstation {
    script: PyScript,
}

impl Outstation {
    /// Outstations for `args` (see the script) on `pty`'s end `b`.
    pub(crate) async fn start(pty: &PtyPair, args: &[&str]) -> Self {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/outstation.py");
        let port = pty.b_str();
        let mut all = vec!["--port", port.as_str()];
        all.extend_from_slice(args);
        let mut outstation = Self {
            script: PyScript::start(&script, &all).with_wait(WAIT),
        };
        outstation.line(|l| l == "READY").await;
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

    /// Next received message of hat class `class` on remote device `addr`, as JSON.
    pub(crate) async fn msg(&mut self, addr: u16, class: &str) -> Value {
        let head = format!("MSG {addr} ");
        let tag = format!("\"_type\": \"{class}\"");
        let line = self
            .line(|l| l.starts_with(&head) && l.contains(&tag))
            .await;
        serde_json::from_str(&line[head.len()..]).unwrap()
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

    /// Sends hat messages (a Python list expression) from remote device `addr`;
    /// returns what hat-gateway's master would register for each (`HAT` lines).
    pub(crate) async fn send(&mut self, addr: u16, msgs: &str) -> Vec<Value> {
        self.command(&format!("send {addr} {msgs}"))
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
    pub(crate) async fn hat_msg(&mut self, tail: &str, payload: &Value) -> Value {
        let spec = json!({"type": tail, "payload": payload});
        let lines = self.command(&format!("hatmsg {spec}")).await;
        let line = lines
            .iter()
            .find_map(|l| l.strip_prefix("HATMSG "))
            .unwrap();
        serde_json::from_str(line).unwrap()
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
/// schema, counting register calls and answering the enable query.
pub(crate) struct Recorder {
    schemas: hat_schemas::HatSchemas,
    tx: mpsc::UnboundedSender<Recorded>,
    /// Addresses whose enable event the query returns as `true`.
    enabled: Vec<u16>,
    /// Sizes of the register calls, in order.
    pub(crate) calls: Mutex<Vec<usize>>,
    /// The queried event types.
    pub(crate) queries: Mutex<Vec<Vec<EventType>>>,
}

/// Receiving side of a [`Recorder`].
pub(crate) struct Events {
    rx: mpsc::UnboundedReceiver<Recorded>,
    /// The recorder (for its call log).
    pub(crate) recorder: Arc<Recorder>,
}

/// Checks a 101 master event tail against hat's schema for it.
pub(crate) fn check_master_event(schemas: &hat_schemas::HatSchemas, tail: &str, payload: &Value) {
    let segments: Vec<&str> = tail.split('/').collect();
    let rest: &[&str] = match segments.as_slice() {
        ["gateway", "remote_device", _, rest @ ..] => rest,
        ["system", "remote_device", _, rest @ ..] => rest,
        ["gateway", rest @ ..] => rest,
        other => panic!("unexpected event type {other:?}"),
    };
    schemas.check_event_in(
        "iec101",
        "master",
        segments[0],
        rest[0],
        rest.get(1).copied(),
        payload,
    );
}

impl Recorder {
    /// A recorder whose enable query finds `enabled` enabled, and its receiving side.
    pub(crate) fn new(enabled: &[u16]) -> (Arc<Self>, Events) {
        let (tx, rx) = mpsc::unbounded_channel();
        let recorder = Arc::new(Self {
            schemas: hat_schemas::HatSchemas::load(),
            tx,
            enabled: enabled.to_vec(),
            calls: Mutex::new(Vec::new()),
            queries: Mutex::new(Vec::new()),
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
            check_master_event(&self.schemas, &tail, &payload);
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
        panic!("the device never registers with response")
    }

    fn query(&self, params: QueryParams) -> BoxFuture<'_, Result<QueryResult, ClientError>> {
        let QueryParams::Latest(QueryLatestParams {
            event_types: Some(event_types),
        }) = params
        else {
            panic!("the device only queries the latest events of given types: {params:?}")
        };
        self.queries.lock().unwrap().push(event_types.clone());
        let events = event_types
            .into_iter()
            .filter(|t| {
                t[4..6] == ["system", "remote_device"]
                    && t[6].parse::<u16>().is_ok_and(|a| self.enabled.contains(&a))
            })
            .map(|t| system_event(&t[4..].join("/"), json!(true)))
            .collect();
        Box::pin(async move {
            Ok(QueryResult {
                events,
                more_follows: false,
            })
        })
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

    /// Skips events until one of type `tail` with `payload` arrives.
    pub(crate) async fn until(&mut self, tail: &str, payload: Value) -> Recorded {
        loop {
            let event = self.next().await;
            if event.tail == tail && event.payload == payload {
                return event;
            }
        }
    }

    /// Skips events until remote device `addr` reports `status`.
    pub(crate) async fn until_remote(&mut self, addr: u16, status: &str) -> Recorded {
        self.until(
            &format!("gateway/remote_device/{addr}/status"),
            json!(status),
        )
        .await
    }

    /// Skips events until every remote device of `addresses` reported `CONNECTED`,
    /// in any order.
    pub(crate) async fn until_connected(&mut self, addresses: &[u16]) {
        let mut waiting: Vec<String> = addresses
            .iter()
            .map(|a| format!("gateway/remote_device/{a}/status"))
            .collect();
        while !waiting.is_empty() {
            let event = self.next().await;
            if event.payload == json!("CONNECTED") {
                waiting.retain(|t| *t != event.tail);
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

/// An unbalanced device entry with test timing on `port`, polling `addresses`.
pub(crate) fn conf(port: &str, addresses: &[u16]) -> Value {
    let remotes: Vec<Value> = addresses
        .iter()
        .map(|address| {
            json!({
                "address": address,
                "response_timeout": 0.3,
                "send_retry_count": 2,
                "poll_class1_delay": 0.05,
                "poll_class2_delay": 0.05,
                "reconnect_delay": 0.3,
                "time_sync_delay": null
            })
        })
        .collect();
    json!({
        "module": "iec101_master",
        "name": "dev",
        "port": port,
        "baudrate": 115200,
        "bytesize": "EIGHTBITS",
        "parity": "NONE",
        "stopbits": "ONE",
        "flow_control": {"xonxoff": false, "rtscts": false, "dsrdtr": false},
        "silent_interval": 0.001,
        "cause_size": "TWO",
        "asdu_address_size": "TWO",
        "io_address_size": "THREE",
        "reconnect_delay": 0.3,
        "link_type": "UNBALANCED",
        "device_address_size": "ONE",
        "remote_devices": remotes
    })
}

/// A balanced device entry with test timing on `port` for remote `address`.
pub(crate) fn balanced_conf(port: &str, address: u16) -> Value {
    let mut conf = conf(port, &[]);
    conf["link_type"] = json!("BALANCED");
    conf["remote_devices"] = json!([{
        "direction": "A_TO_B",
        "address": address,
        "response_timeout": 0.3,
        "send_retry_count": 2,
        "status_delay": 1,
        "reconnect_delay": 0.3,
        "time_sync_delay": null
    }]);
    conf
}

/// Creates the device with a recorder whose enable query finds `enabled` enabled.
pub(crate) async fn start(conf: &Value, enabled: &[u16]) -> (MasterDevice, Events) {
    let (recorder, events) = Recorder::new(enabled);
    let device = MasterDevice::create(conf, prefix(), recorder)
        .await
        .unwrap();
    (device, events)
}

/// A pty pair, an outstation for address 1 and a started device connected to it.
pub(crate) async fn connected() -> (PtyPair, Outstation, MasterDevice, Events) {
    let pty = PtyPair::start("iec101-master");
    let mut outstation = Outstation::start(&pty, &[]).await;
    let (device, mut events) = start(&conf(&pty.a_str(), &[1]), &[1]).await;
    events.until_remote(1, "CONNECTED").await;
    outstation.line(|l| l == "CONNECT 1").await;
    (pty, outstation, device, events)
}

/// An event as the engine would hand it to the device (`tail` after the prefix).
pub(crate) fn system_event(tail: &str, payload: Value) -> Event {
    system_event_raw(tail, Some(Payload::Json(JsonText::from_value(&payload))))
}

/// Like [`system_event`] with any payload (or none).
pub(crate) fn system_event_raw(tail: &str, payload: Option<Payload>) -> Event {
    let mut event_type = prefix();
    event_type.extend(tail.split('/').map(String::from));
    Event {
        id: EventId::default(),
        event_type,
        timestamp: Timestamp::default(),
        source_timestamp: None,
        payload,
    }
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

/// The cdylib cargo built (`target/<profile>/libiec101_master.so`), copied into a
/// private 0755 plugin directory as the loader requires (removed on drop).
pub(crate) fn plugin_dir(label: &str) -> gateway_test_support::TempDir {
    use std::os::unix::fs::PermissionsExt as _;
    let library = target_dir().join("libiec101_master.so");
    assert!(
        library.is_file(),
        "{} missing: cargo build -p iec101_master",
        library.display()
    );
    let dir = gateway_test_support::TempDir::new(&format!("iec101-master-{label}"));
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let target = dir.path().join("libiec101_master.so");
    std::fs::copy(&library, &target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}
