//! Test kit: a real hat-drivers IEC 104 master process (`tests/py/master.py`), an event
//! recorder implementing `gateway_model::EventClient` (answering the start-up query), hat's
//! event schemas from the test venv, and device entries.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;
use gateway_model::{ClientError, EventClient, QueryLatestParams, QueryParams, QueryResult};
use gateway_model::{Event, EventId, EventType, JsonText, Payload, RegisterEvent, Timestamp};
use gateway_test_support::script::PyScript;
use iec104_slave::SlaveDevice;
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// Upper bound for any single expected event or line.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// The 4-segment prefix of the device under test.
pub(crate) fn prefix() -> EventType {
    ["gateway", "gw", "iec104_slave", "dev"]
        .map(String::from)
        .to_vec()
}

/// The Python of the test venv; fails with instructions if it is missing.
pub(crate) fn venv_python() -> PathBuf {
    gateway_test_support::venv_with(&["bin/python"]).join("bin/python")
}

/// A hat-drivers master process, killed on drop.
pub(crate) struct Master {
    script: PyScript,
    /// `MSG` and `CLOSED` lines that arrived while a command waited for its `OK`.
    held: std::collections::VecDeque<String>,
    /// Local TCP port of the current connection.
    pub(crate) local_port: u16,
}

impl Master {
    /// A master process, not connected yet.
    pub(crate) async fn start() -> Self {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/master.py");
        let no_args: [&str; 0] = [];
        let mut master = Self {
            script: PyScript::start(&script, &no_args).with_wait(WAIT),
            held: std::collections::VecDeque::new(),
            local_port: 0,
        };
        master.line(|l| l == "READY").await;
        master
    }

    /// A master connected to `port` that acknowledges every I-frame at once.
    pub(crate) async fn connected(port: u16) -> Self {
        let mut master = Self::start().await;
        assert!(master.connect(port).await, "connect failed");
        master
    }

    /// Connects (acknowledging at once); `false` if hat's connect failed.
    pub(crate) async fn connect(&mut self, port: u16) -> bool {
        self.connect_with(port, 1, 0.05).await
    }

    /// Connects with receive window `w` and supervisory timeout `t2`.
    pub(crate) async fn connect_with(&mut self, port: u16, w: u32, t2: f64) -> bool {
        let lines = self.command(&format!("connect {port} {w} {t2}")).await;
        match lines.iter().find_map(|l| l.strip_prefix("CONNECTED ")) {
            Some(local) => {
                self.local_port = local.parse().unwrap();
                true
            }
            None => {
                assert!(lines.iter().any(|l| l == "CONNECT_FAILED"), "{lines:?}");
                false
            }
        }
    }

    /// Next output line satisfying `pred` (earlier lines are skipped).
    pub(crate) async fn line(&mut self, pred: impl Fn(&str) -> bool) -> String {
        loop {
            let next = self.next_line().await;
            if pred(&next) {
                return next;
            }
        }
    }

    async fn next_line(&mut self) -> String {
        if let Some(line) = self.held.pop_front() {
            return line;
        }
        self.script.next().await
    }

    /// The next received message.
    pub(crate) async fn msg(&mut self) -> Value {
        let line = self.line(|l| l.starts_with("MSG ") || l == "CLOSED").await;
        let text = line
            .strip_prefix("MSG ")
            .unwrap_or_else(|| panic!("connection closed while waiting for a message"));
        serde_json::from_str(text).unwrap()
    }

    /// The next received message satisfying `pred` (earlier ones are skipped).
    pub(crate) async fn msg_where(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let msg = self.msg().await;
            if pred(&msg) {
                return msg;
            }
        }
    }

    /// Every message up to and including the termination of an interrogation (`gi`)
    /// or counter interrogation (`ci`) of `asdu`.
    pub(crate) async fn interrogate(&mut self, kind: &str, asdu: u16) -> Vec<Value> {
        self.command(&format!("{kind} {asdu}")).await;
        let mut msgs = Vec::new();
        loop {
            let msg = self.msg().await;
            let done = msg["cause"] == "ACTIVATION_TERMINATION"
                && (asdu == 0xFFFF || msg["asdu_address"] == asdu);
            msgs.push(msg);
            if done && asdu != 0xFFFF {
                return msgs;
            }
            if done && asdu == 0xFFFF {
                // A broadcast ends with the last ASDU address's termination; the
                // tests use one address for broadcasts.
                return msgs;
            }
        }
    }

    /// Waits until the connection ended.
    pub(crate) async fn closed(&mut self) {
        self.line(|l| l == "CLOSED").await;
    }

    /// Sends a command and waits for its acknowledgement; returns the lines printed
    /// before it, except received messages and `CLOSED`, which `msg` and `closed` see.
    pub(crate) async fn command(&mut self, command: &str) -> Vec<String> {
        self.script.send(command).await;
        let ack = format!("OK {command}");
        let error = format!("ERROR {command}");
        let mut before = Vec::new();
        let mut held = std::collections::VecDeque::new();
        loop {
            // Only lines that came after the command's own: earlier held ones stay.
            let line = self.script.next().await;
            if line == ack {
                self.held.extend(held);
                return before;
            }
            assert!(!line.starts_with(&error), "{line}");
            if line.starts_with("MSG ") || line == "CLOSED" {
                // Received while the command ran: left for `msg`.
                held.push_back(line);
            } else {
                before.push(line);
            }
        }
    }
}

/// hat-gateway 0.6.48's event payload schemas (`json_schema_repo.json` of the venv).
pub(crate) struct HatSchemas {
    data: std::collections::HashMap<String, jsonschema::Validator>,
    commands: std::collections::HashMap<String, jsonschema::Validator>,
    connections: jsonschema::Validator,
    gateway_command: jsonschema::Validator,
    system_data: jsonschema::Validator,
    system_command: jsonschema::Validator,
}

impl HatSchemas {
    /// The validators, built once.
    pub(crate) fn get() -> &'static HatSchemas {
        static SCHEMAS: OnceLock<HatSchemas> = OnceLock::new();
        SCHEMAS.get_or_init(|| {
            let venv = gateway_test_support::venv_with(&["bin/python"]);
            let path = std::fs::read_dir(venv.join("lib"))
                .unwrap()
                .map(|e| {
                    e.unwrap()
                        .path()
                        .join("site-packages/hat/gateway/json_schema_repo.json")
                })
                .find(|p| p.is_file())
                .expect("hat-gateway's json_schema_repo.json in the venv");
            let mut repo: Value =
                serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            // hat's `oneOf` over the data (command) kinds is ambiguous: a single point's
            // `{"value": "ON", ...}` is a valid double point too, so no payload passes
            // it. It becomes `anyOf` here, and `check` validates the data (command)
            // against the kind the event type names.
            any_of(&mut repo["hat-gateway://iec101.yaml"]);
            let registry = jsonschema::Registry::new()
                .extend(
                    // Only these two: others refer to schemas outside the repository.
                    ["hat-gateway://iec101.yaml", "hat-gateway://iec104.yaml"]
                        .map(|id| (id, repo[id].clone())),
                )
                .unwrap()
                .prepare()
                .unwrap();
            let validator = |def: &str| {
                jsonschema::options()
                    .with_draft(jsonschema::Draft::Draft202012)
                    .with_registry(&registry)
                    .build(&json!({
                        "$ref": format!("hat-gateway://iec104.yaml#/$defs/events/slave/{def}")
                    }))
                    .unwrap()
            };
            let def = |path: String| {
                jsonschema::options()
                    .with_draft(jsonschema::Draft::Draft202012)
                    .with_registry(&registry)
                    .build(&json!({"$ref": format!("hat-gateway://iec101.yaml#/$defs/{path}")}))
                    .unwrap()
            };
            let kinds = |group: &str, names: &[&str]| {
                names
                    .iter()
                    .map(|n| (n.to_string(), def(format!("{group}/{n}"))))
                    .collect()
            };
            HatSchemas {
                data: kinds(
                    "data",
                    &[
                        "single",
                        "double",
                        "step_position",
                        "bitstring",
                        "normalized",
                        "scaled",
                        "floating",
                        "binary_counter",
                        "protection",
                        "protection_start",
                        "protection_command",
                        "status",
                    ],
                ),
                commands: kinds(
                    "commands",
                    &[
                        "single",
                        "double",
                        "regulating",
                        "normalized",
                        "scaled",
                        "floating",
                        "bitstring",
                    ],
                ),
                connections: validator("gateway/connections"),
                gateway_command: validator("gateway/command"),
                system_data: validator("system/data"),
                system_command: validator("system/command"),
            }
        })
    }

    /// Panics unless `payload` of the event `tail` (after the prefix) is valid.
    pub(crate) fn check(&self, tail: &str, payload: &Value) {
        let validator = if tail == "gateway/connections" {
            &self.connections
        } else if tail.starts_with("gateway/command/") {
            &self.gateway_command
        } else if tail.starts_with("system/data/") {
            &self.system_data
        } else if tail.starts_with("system/command/") {
            &self.system_command
        } else {
            panic!("no hat schema for {tail}");
        };
        let mut errors: Vec<String> = validator
            .iter_errors(payload)
            .map(|e| e.to_string())
            .collect();
        let segments: Vec<&str> = tail.split('/').collect();
        if let [_, kind @ ("data" | "command"), name, _, _] = segments[..] {
            let (kinds, field) = if kind == "data" {
                (&self.data, "data")
            } else {
                (&self.commands, "command")
            };
            let kind = kinds
                .get(name)
                .unwrap_or_else(|| panic!("no hat schema for {tail}"));
            errors.extend(kind.iter_errors(&payload[field]).map(|e| e.to_string()));
        }
        assert!(errors.is_empty(), "{tail} {payload}: {errors:?}");
    }
}

fn any_of(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if let Some(alternatives) = map.remove("oneOf") {
                map.insert("anyOf".to_owned(), alternatives);
            }
            map.values_mut().for_each(any_of);
        }
        Value::Array(items) => items.iter_mut().for_each(any_of),
        _ => {}
    }
}

/// A registered event: type after the prefix, payload, source timestamp.
#[derive(Debug, Clone)]
pub(crate) struct Registered {
    /// Type after the prefix.
    pub(crate) tail: String,
    /// JSON payload.
    pub(crate) payload: Value,
    /// Source timestamp.
    pub(crate) source_timestamp: Option<Timestamp>,
}

/// `EventClient` that records every registration (checking it against hat's schemas) and
/// answers the start-up query with `latest`.
pub(crate) struct Recorder {
    latest: Vec<Event>,
    queries: Mutex<Vec<Vec<String>>>,
    tx: mpsc::UnboundedSender<Registered>,
}

impl Recorder {
    /// A recorder answering the query with `latest`, and the receiving side.
    pub(crate) fn new(latest: Vec<Event>) -> (Arc<Self>, mpsc::UnboundedReceiver<Registered>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Arc::new(Self {
                latest,
                queries: Mutex::new(Vec::new()),
                tx,
            }),
            rx,
        )
    }

    /// The event types of every query so far.
    pub(crate) fn queries(&self) -> Vec<Vec<String>> {
        self.queries.lock().unwrap().clone()
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
            HatSchemas::get().check(&tail, &payload);
            let _ = self.tx.send(Registered {
                tail,
                payload,
                source_timestamp: event.source_timestamp,
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
        self.queries
            .lock()
            .unwrap()
            .push(event_types.iter().map(|t| t.join("/")).collect());
        let events = self.latest.clone();
        Box::pin(async move {
            Ok(QueryResult {
                events,
                more_follows: false,
            })
        })
    }
}

/// Receiving side of a [`Recorder`].
pub(crate) struct Registrations(pub mpsc::UnboundedReceiver<Registered>);

impl Registrations {
    /// The next registered event.
    pub(crate) async fn next(&mut self) -> Registered {
        tokio::time::timeout(WAIT, self.0.recv())
            .await
            .expect("no event within the wait")
            .unwrap()
    }

    /// The next `gateway/connections` payload (other events are skipped).
    pub(crate) async fn connections(&mut self) -> Value {
        loop {
            let event = self.next().await;
            if event.tail == "gateway/connections" {
                return event.payload;
            }
        }
    }

    /// Skips `gateway/connections` payloads until one with `count` connections.
    pub(crate) async fn connections_count(&mut self, count: usize) -> Value {
        loop {
            let payload = self.connections().await;
            if payload.as_array().unwrap().len() == count {
                return payload;
            }
        }
    }
}

/// An event as the engine would hand it to the device (`tail` after the prefix), with
/// a fresh id.
pub(crate) fn system_event(
    tail: &str,
    payload: Value,
    source_timestamp: Option<Timestamp>,
) -> Event {
    static NEXT: AtomicI64 = AtomicI64::new(1);
    if tail.starts_with("system/") {
        HatSchemas::get().check(tail, &payload);
    }
    let mut event_type = prefix();
    event_type.extend(tail.split('/').map(String::from));
    Event {
        id: EventId {
            server: 1,
            session: 1,
            instance: NEXT.fetch_add(1, Ordering::Relaxed),
        },
        event_type,
        timestamp: Timestamp::now(),
        source_timestamp,
        payload: Some(Payload::Json(JsonText::from_value(&payload))),
    }
}

/// Like [`system_event`] with any payload text, not checked.
pub(crate) fn raw_event(tail: &str, payload: Option<Payload>) -> Event {
    let mut event = system_event("x", json!(null), None);
    event.event_type = prefix();
    event.event_type.extend(tail.split('/').map(String::from));
    event.payload = payload;
    event
}

/// A `system/data` event for `data_type`/`asdu`/`io` with hat's payload.
pub(crate) fn data_event(
    data_type: &str,
    asdu: u16,
    io: u32,
    data: Value,
    source_timestamp: Option<Timestamp>,
) -> Event {
    system_event(
        &format!("system/data/{data_type}/{asdu}/{io}"),
        json!({"is_test": false, "cause": "SPONTANEOUS", "data": data}),
        source_timestamp,
    )
}

/// An indication quality, all flags clear.
pub(crate) fn indication() -> Value {
    json!({"invalid": false, "not_topical": false, "substituted": false, "blocked": false})
}

/// A measurement quality, all flags clear.
pub(crate) fn measurement() -> Value {
    json!({"invalid": false, "not_topical": false, "substituted": false, "blocked": false,
           "overflow": false})
}

/// A single point's data payload.
pub(crate) fn single(value: &str) -> Value {
    json!({"value": value, "quality": indication()})
}

/// A device entry listening on a free loopback port with `data`.
pub(crate) fn conf(data: Value, buffers: Value) -> Value {
    json!({
        "module": "iec104_slave",
        "name": "dev",
        "local_host": "127.0.0.1",
        "local_port": 0,
        "remote_hosts": null,
        "max_connections": null,
        "response_timeout": 15,
        "supervisory_timeout": 0.05,
        "test_timeout": 20,
        "send_window_size": 12,
        "receive_window_size": 8,
        "buffers": buffers,
        "data": data
    })
}

/// A `data[]` entry.
pub(crate) fn point(data_type: &str, asdu: u16, io: u32, buffer: Option<&str>) -> Value {
    json!({"data_type": data_type, "asdu_address": asdu, "io_address": io, "buffer": buffer})
}

/// Creates the device; returns it with its registrations (the initial empty
/// `gateway/connections` already taken) and the recorder.
pub(crate) async fn start(
    conf: &Value,
    latest: Vec<Event>,
) -> (SlaveDevice, Registrations, Arc<Recorder>) {
    let (recorder, rx) = Recorder::new(latest);
    let device = SlaveDevice::create(conf, prefix(), recorder.clone())
        .await
        .unwrap();
    let mut registrations = Registrations(rx);
    assert_eq!(registrations.connections().await, json!([]));
    (device, registrations, recorder)
}

/// `target/<profile>`, where cargo put this test's executable's crates.
pub(crate) fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// The cdylib cargo built (`target/<profile>/libiec104_slave.so`), copied into a
/// private 0755 plugin directory as the loader requires (removed on drop).
pub(crate) fn plugin_dir(label: &str) -> gateway_test_support::TempDir {
    use std::os::unix::fs::PermissionsExt as _;
    let library = target_dir().join("libiec104_slave.so");
    assert!(
        library.is_file(),
        "{} missing: cargo build -p iec104_slave",
        library.display()
    );
    let dir = gateway_test_support::TempDir::new(&format!("iec104-slave-{label}"));
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let target = dir.path().join("libiec104_slave.so");
    std::fs::copy(&library, &target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}
