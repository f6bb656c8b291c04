//! Test kit: a real pymodbus client process (`tests/py/client.py`), an event recorder
//! implementing the event-client contract the core holds (answering the start-up query), hat-gateway
//! 0.6.48's event schemas from the test venv, socat pty pairs and device entries.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;
use gateway_model::{
    ClientError, Event, EventClient, EventId, EventType, JsonText, Payload, QueryLatestParams,
    QueryParams, QueryResult, RegisterEvent, Timestamp,
};
use gateway_test_support::script::PyScript;
use modbus_slave::SlaveDevice;
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// Upper bound for any single expected event or line.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// The prefix of the device under test.
pub(crate) fn prefix() -> EventType {
    ["gateway", "gw", "modbus_slave", "dev"]
        .map(String::from)
        .to_vec()
}

/// The Python of the test venv; fails with instructions if it is missing.
pub(crate) fn venv_python() -> PathBuf {
    gateway_test_support::venv_with(&["bin/python"]).join("bin/python")
}

/// The site-packages directory of the test venv (hat-gateway's sources and schemas).
pub(crate) fn site_packages() -> PathBuf {
    let venv = gateway_test_support::venv_with(&["bin/python"]);
    std::fs::read_dir(venv.join("lib"))
        .unwrap()
        .map(|e| e.unwrap().path().join("site-packages"))
        .find(|p| p.join("hat/gateway/json_schema_repo.json").is_file())
        .expect("hat-gateway in the test venv")
}

/// A pymodbus client process, killed on drop.
pub(crate) struct Client {
    script: PyScript,
}

impl Client {
    /// A client connected over TCP with `framer` (`socket`, `rtu`, `ascii`).
    pub(crate) async fn tcp(port: u16, framer: &str) -> Self {
        Self::start(&["tcp", "127.0.0.1", &port.to_string(), framer]).await
    }

    /// A client on the serial port `path` with `framer` (`rtu`, `ascii`).
    pub(crate) async fn serial(path: &std::path::Path, framer: &str) -> Self {
        Self::start(&["serial", path.to_str().unwrap(), framer]).await
    }

    async fn start(args: &[&str]) -> Self {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/client.py");
        let mut client = Self {
            script: PyScript::start(&script, args).with_wait(WAIT),
        };
        let first = client.line().await;
        assert_eq!(first, "READY");
        client
    }

    async fn line(&mut self) -> String {
        self.script.next().await
    }

    /// Sends one request without waiting for its answer.
    pub(crate) async fn send(&mut self, method: &str, kwargs: Value) {
        self.script.send(&format!("{method} {kwargs}")).await;
    }

    /// The answer to the oldest request sent: `Ok(result)` or `Err(reason)` when
    /// there was no answer.
    pub(crate) async fn result(&mut self) -> Result<Value, String> {
        let line = self.line().await;
        if let Some(json) = line.strip_prefix("RESULT ") {
            return Ok(serde_json::from_str(json).unwrap());
        }
        match line.strip_prefix("NORESPONSE ") {
            Some(reason) => Err(reason.to_owned()),
            None => panic!("unexpected client output {line}"),
        }
    }

    /// Sends one request and waits for its answer (which must come).
    pub(crate) async fn call(&mut self, method: &str, kwargs: Value) -> Value {
        self.send(method, kwargs).await;
        self.result().await.expect("no response")
    }
}

/// hat-gateway 0.6.48's modbus slave event payload schemas.
pub(crate) struct HatSchemas {
    validators: Vec<(&'static str, jsonschema::Validator)>,
}

impl HatSchemas {
    /// The validators, built once.
    pub(crate) fn get() -> &'static HatSchemas {
        static SCHEMAS: OnceLock<HatSchemas> = OnceLock::new();
        SCHEMAS.get_or_init(|| {
            let path = site_packages().join("hat/gateway/json_schema_repo.json");
            let repo: Value =
                serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            let id = "hat-gateway://modbus.yaml";
            let registry = jsonschema::Registry::new()
                .add(id, repo[id].clone())
                .unwrap()
                .prepare()
                .unwrap();
            let validator = |def: &str| {
                jsonschema::options()
                    .with_draft(jsonschema::Draft::Draft202012)
                    .with_registry(&registry)
                    .build(&json!({"$ref": format!("{id}#/$defs/events/slave/{def}")}))
                    .unwrap()
            };
            HatSchemas {
                validators: [
                    "gateway/connections",
                    "gateway/write",
                    "system/data",
                    "system/write",
                ]
                .into_iter()
                .map(|def| (def, validator(def)))
                .collect(),
            }
        })
    }

    /// Panics unless `payload` of the event `tail` (after the prefix) is valid.
    pub(crate) fn check(&self, tail: &str, payload: &Value) {
        let def = if tail.starts_with("system/data/") {
            "system/data"
        } else {
            tail
        };
        let (_, validator) = self
            .validators
            .iter()
            .find(|(d, _)| *d == def)
            .unwrap_or_else(|| panic!("no hat schema for {tail}"));
        let errors: Vec<String> = validator
            .iter_errors(payload)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{tail} {payload}: {errors:?}");
    }
}

/// A registered event: type after the prefix and payload.
#[derive(Debug, Clone)]
pub(crate) struct Registered {
    /// Type after the prefix.
    pub tail: String,
    /// JSON payload.
    pub payload: Value,
}

/// Event client that records every registration (checking it against hat's schemas) and
/// answers the start-up query with `latest`.
pub(crate) struct Recorder {
    latest: Vec<Event>,
    queries: Mutex<Vec<Vec<String>>>,
    tx: mpsc::UnboundedSender<Registered>,
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
            let _ = self.tx.send(Registered { tail, payload });
        }
        Box::pin(async { Ok(()) })
    }

    fn register_with_response(
        &self,
        _events: Vec<RegisterEvent>,
    ) -> BoxFuture<'_, Result<Option<Vec<Event>>, ClientError>> {
        panic!("modbus_slave never registers with response")
    }

    fn query(&self, params: QueryParams) -> BoxFuture<'_, Result<QueryResult, ClientError>> {
        let QueryParams::Latest(QueryLatestParams {
            event_types: Some(event_types),
        }) = params
        else {
            panic!("modbus_slave asks only latest queries with types: {params:?}");
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

impl Recorder {
    /// The event types of every query so far.
    pub(crate) fn queries(&self) -> Vec<Vec<String>> {
        self.queries.lock().unwrap().clone()
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

    /// The next `gateway/write` payload (other events are skipped).
    pub(crate) async fn write(&mut self) -> Value {
        loop {
            let event = self.next().await;
            if event.tail == "gateway/write" {
                return event.payload;
            }
        }
    }

    /// True if nothing is registered by now (events already queued count).
    pub(crate) fn is_idle(&mut self) -> bool {
        self.0.try_recv().is_err()
    }
}

/// An event as the engine would hand it to the device (`tail` after the prefix).
pub(crate) fn system_event(tail: &str, payload: Value) -> Event {
    static NEXT: AtomicI64 = AtomicI64::new(1);
    HatSchemas::get().check(tail, &payload);
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
        source_timestamp: None,
        payload: Some(Payload::Json(JsonText::from_value(&payload))),
    }
}

/// `system/data/<name>` with `value`.
pub(crate) fn data_event(name: &str, value: u64) -> Event {
    system_event(&format!("system/data/{name}"), json!({ "value": value }))
}

/// `system/write` answering `request_id`.
pub(crate) fn write_result(request_id: &Value, success: bool) -> Event {
    system_event(
        "system/write",
        json!({"request_id": request_id, "success": success}),
    )
}

/// A `data[]` entry on unit 1.
pub(crate) fn point(name: &str, data_type: &str, start: u16, offset: u32, count: u32) -> Value {
    json!({"name": name, "device_id": 1, "data_type": data_type, "start_address": start,
           "bit_offset": offset, "bit_count": count})
}

/// Points of every data type, bit offsets and counts across register boundaries.
pub(crate) fn all_points() -> Value {
    json!([
        point("coil", "COIL", 0, 0, 1),
        point("coils", "COIL", 10, 2, 4),
        point("input", "DISCRETE_INPUT", 5, 0, 3),
        point("hr", "HOLDING_REGISTER", 0, 0, 16),
        // 24 bits from bit 4 of register 10: 12 in register 10, 12 in register 11.
        point("span", "HOLDING_REGISTER", 10, 4, 24),
        point("low", "HOLDING_REGISTER", 11, 12, 4),
        point("ir", "INPUT_REGISTER", 3, 0, 32),
        point("fifo", "QUEUE", 7, 0, 16),
    ])
}

/// A hat-gateway device entry listening on a free loopback port.
pub(crate) fn tcp_conf(modbus_type: &str, data: Value) -> Value {
    json!({
        "module": "modbus_slave",
        "name": "dev",
        "modbus_type": modbus_type,
        "transport": {
            "type": "TCP",
            "local_host": "127.0.0.1",
            "local_port": 0,
            "remote_hosts": null,
            "max_connections": null,
            "response_timeout": 5,
            "keep_alive_timeout": null
        },
        "data": data
    })
}

/// A hat-gateway device entry on the serial port `port`.
pub(crate) fn serial_conf(modbus_type: &str, port: &std::path::Path, data: Value) -> Value {
    json!({
        "module": "modbus_slave",
        "name": "dev",
        "modbus_type": modbus_type,
        "transport": {
            "type": "SERIAL",
            "port": port.to_str().unwrap(),
            "baudrate": 19200,
            "bytesize": "EIGHTBITS",
            "parity": "NONE",
            "stopbits": "ONE",
            "flow_control": {"xonxoff": false, "rtscts": false, "dsrdtr": false},
            "silent_interval": 0.005,
            "response_timeout": 5,
            "keep_alive_timeout": 5
        },
        "data": data
    })
}

/// Creates the device; returns it with its registrations (the initial empty
/// `gateway/connections` already taken) and the recorder.
pub(crate) async fn start(
    conf: &Value,
    latest: Vec<Event>,
) -> (Arc<SlaveDevice>, Registrations, Arc<Recorder>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let recorder = Arc::new(Recorder {
        latest,
        queries: Mutex::new(Vec::new()),
        tx,
    });
    let device = SlaveDevice::create(conf, prefix(), recorder.clone())
        .await
        .unwrap();
    let mut registrations = Registrations(rx);
    assert_eq!(registrations.connections().await, json!([]));
    (Arc::new(device), registrations, recorder)
}

/// A socat pseudo-terminal pair; killed and cleaned up on drop.
pub(crate) struct PtyPair {
    child: std::process::Child,
    dir: PathBuf,
}

impl PtyPair {
    /// Two linked ptys, `<dir>/a` and `<dir>/b`.
    pub(crate) async fn start(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("modbus-slave-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let link = |end: &str| format!("pty,raw,echo=0,link={}", dir.join(end).display());
        let child = std::process::Command::new("socat")
            .args([link("a"), link("b")])
            .spawn()
            .expect("socat is needed for the serial tests (scripts/test.sh installs it)");
        let pair = Self { child, dir };
        tokio::time::timeout(WAIT, async {
            while !(pair.end("a").exists() && pair.end("b").exists()) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("socat did not create the pty pair");
        pair
    }

    /// One end.
    pub(crate) fn end(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for PtyPair {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `target/<profile>`, where cargo put this test's executable's crates.
pub(crate) fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// The cdylib cargo built (`target/<profile>/libmodbus_slave.so`), copied into a
/// private 0755 plugin directory as the loader requires (removed on drop).
pub(crate) fn plugin_dir(label: &str) -> gateway_test_support::TempDir {
    use std::os::unix::fs::PermissionsExt as _;
    let library = target_dir().join("libmodbus_slave.so");
    assert!(
        library.is_file(),
        "{} missing: cargo build -p modbus_slave",
        library.display()
    );
    let dir = gateway_test_support::TempDir::new(&format!("modbus-slave-{label}"));
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let target = dir.path().join("libmodbus_slave.so");
    std::fs::copy(&library, &target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}
