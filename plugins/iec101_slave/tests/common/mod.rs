//! Test kit: an event recorder implementing `gateway_model::EventClient` that checks every
//! registered event against hat-gateway's event schema for it and answers the
//! start-up `system/data/*` query from a list; device entries; the plugin directory.
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
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// Upper bound for any single expected event or line.
pub(crate) const WAIT: Duration = Duration::from_secs(15);

/// The 4-segment prefix of the device under test.
pub(crate) fn prefix() -> EventType {
    ["gateway", "gw", "iec101_slave", "dev"]
        .map(String::from)
        .to_vec()
}

/// hat-drivers' master (`tests/py/master.py`) on end `b` of a pty pair.
pub(crate) struct Master {
    /// The script.
    pub(crate) script: PyScript,
}

impl Master {
    /// Starts it with `args` (see the script) and waits until its port is open.
    pub(crate) async fn start(pty: &PtyPair, args: &[&str]) -> Master {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/master.py");
        let port = pty.b_str();
        let mut all = vec!["--port", port.as_str()];
        all.extend_from_slice(args);
        let mut master = Master {
            script: PyScript::start(&script, &all).with_wait(WAIT),
        };
        master.script.line(|l| l == "READY").await;
        master
    }

    /// The next message of hat class `class` received on address `addr`.
    pub(crate) async fn msg(&mut self, addr: u16, class: &str) -> Value {
        let head = format!("MSG {addr} ");
        let tag = format!("\"_type\": \"{class}\"");
        let line = self
            .script
            .line(|l| l.starts_with(&head) && l.contains(&tag))
            .await;
        serde_json::from_str(&line[head.len()..]).unwrap()
    }

    /// Sends a command; the lines printed before its `OK`.
    pub(crate) async fn command(&mut self, command: &str) -> Vec<String> {
        self.script.send(command).await;
        let ack = format!("OK {command}");
        let mut before = Vec::new();
        loop {
            let line = self.script.line(|_| true).await;
            if line == ack {
                return before;
            }
            before.push(line);
        }
    }

    /// What hat's slave sends for a `system/data` event.
    pub(crate) async fn hat_data(
        &mut self,
        tail: &str,
        payload: &Value,
        source: Option<Timestamp>,
    ) -> Value {
        let spec = json!({"type": tail, "payload": payload, "source_timestamp": source.map(|t| json!([t.s, t.us]))});
        let lines = self.command(&format!("hatdata {spec}")).await;
        let line = lines
            .iter()
            .find_map(|l| l.strip_prefix("HATDATA "))
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

/// Checks a 101 slave event tail against hat's schema for it.
pub(crate) fn check_slave_event(schemas: &hat_schemas::HatSchemas, tail: &str, payload: &Value) {
    let segments: Vec<&str> = tail.split('/').collect();
    schemas.check_event_in(
        "iec101",
        "slave",
        segments[0],
        segments[1],
        segments.get(2).copied(),
        payload,
    );
}

/// `EventClient` that records everything, checking each event's prefix and payload
/// schema, and answers the start-up query with `initial`.
pub(crate) struct Recorder {
    schemas: hat_schemas::HatSchemas,
    tx: mpsc::UnboundedSender<Recorded>,
    initial: Vec<Event>,
    /// The queried event types.
    pub(crate) queries: Mutex<Vec<Vec<EventType>>>,
}

/// Receiving side of a [`Recorder`].
pub(crate) struct Events {
    rx: mpsc::UnboundedReceiver<Recorded>,
    /// The recorder.
    pub(crate) recorder: Arc<Recorder>,
}

impl Recorder {
    /// A recorder answering the start-up query with `initial`, and its receiving side.
    pub(crate) fn new(initial: Vec<Event>) -> (Arc<Self>, Events) {
        let (tx, rx) = mpsc::unbounded_channel();
        let recorder = Arc::new(Self {
            schemas: hat_schemas::HatSchemas::load(),
            tx,
            initial,
            queries: Mutex::new(Vec::new()),
        });
        (recorder.clone(), Events { rx, recorder })
    }
}

impl EventClient for Recorder {
    fn register(&self, events: Vec<RegisterEvent>) -> BoxFuture<'_, Result<(), ClientError>> {
        for event in events {
            assert_eq!(event.event_type[..4], prefix()[..]);
            let payload = match event.payload {
                Some(Payload::Json(text)) => text.value(),
                other => panic!("non-JSON payload {other:?}"),
            };
            let tail = event.event_type[4..].join("/");
            // Every registered event against hat's schema for it.
            check_slave_event(&self.schemas, &tail, &payload);
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
        self.queries.lock().unwrap().push(event_types);
        let events = self.initial.clone();
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

/// An unbalanced device entry on `port` answering as `addresses`, with `data`.
pub(crate) fn conf(port: &str, addresses: &[u16], data: Value) -> Value {
    let devices: Vec<Value> = addresses
        .iter()
        .map(|a| json!({"address": a, "keep_alive_timeout": 5, "reconnect_delay": 0.2}))
        .collect();
    json!({
        "module": "iec101_slave",
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
        "buffers": [{"name": "b", "size": 10}],
        "data": data,
        "link_type": "UNBALANCED",
        "device_address_size": "ONE",
        "devices": devices
    })
}

/// A `data[]` entry.
pub(crate) fn point(
    data_type: &str,
    asdu: u16,
    io: u32,
    buffer: Option<&str>,
    with_ack: bool,
) -> Value {
    json!({"data_type": data_type, "asdu_address": asdu, "io_address": io, "buffer": buffer, "with_ack": with_ack})
}

/// An event as the engine would hand it to the device (`tail` after the prefix).
pub(crate) fn system_event(tail: &str, payload: Value, instance: i64) -> Event {
    let mut event_type = prefix();
    event_type.extend(tail.split('/').map(String::from));
    Event {
        id: EventId {
            server: 1,
            session: 1,
            instance,
        },
        event_type,
        timestamp: Timestamp::default(),
        source_timestamp: None,
        payload: Some(Payload::Json(JsonText::from_value(&payload))),
    }
}

/// A `system/data` payload of a scaled value.
pub(crate) fn scaled(value: i64) -> Value {
    json!({"is_test": false, "cause": "SPONTANEOUS", "data": {"value": value, "quality": {"invalid": false, "not_topical": false, "substituted": false, "blocked": false, "overflow": false}}})
}

/// The target directory of this build (`target/<profile>`).
pub(crate) fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// The cdylib cargo built (`target/<profile>/libiec101_slave.so`), copied into a
/// private 0755 plugin directory as the loader requires (removed on drop).
pub(crate) fn plugin_dir(label: &str) -> gateway_test_support::TempDir {
    use std::os::unix::fs::PermissionsExt as _;
    let library = target_dir().join("libiec101_slave.so");
    assert!(
        library.is_file(),
        "{} missing: cargo build -p iec101_slave",
        library.display()
    );
    let dir = gateway_test_support::TempDir::new(&format!("iec101-slave-{label}"));
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let target = dir.path().join("libiec101_slave.so");
    std::fs::copy(&library, &target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}
