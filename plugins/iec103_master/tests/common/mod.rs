//! Shared by the iec103_master tests: hat's event schemas, a recording event sink, an
//! in-memory link (for the device's state machine tests), configurations.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;
use gateway_model::{ClientError, EventClient, QueryLatestParams, QueryParams, QueryResult};
use gateway_model::{Event, EventId, EventType, Payload, RegisterEvent, Timestamp};
use iec103_master::config::{MasterConfig, RemoteDeviceConfig};
use iec103_master::link::{Conn, Link, LinkError, LinkOpener};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Upper bound of any wait in these tests.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// The test venv's site-packages holding hat-gateway.
pub(crate) fn site_packages() -> PathBuf {
    let venv = gateway_test_support::venv_with(&["bin/python"]);
    std::fs::read_dir(venv.join("lib"))
        .unwrap()
        .map(|e| e.unwrap().path().join("site-packages"))
        .find(|p| p.join("hat/gateway/json_schema_repo.json").is_file())
        .expect("hat-gateway in the test venv")
}

/// hat-gateway 0.6.48's iec103 master event payload schemas.
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
            let id = "hat-gateway://iec103.yaml";
            let registry = jsonschema::Registry::new()
                .add(id, repo[id].clone())
                .unwrap()
                .prepare()
                .unwrap();
            let validator = |def: &str| {
                jsonschema::options()
                    .with_draft(jsonschema::Draft::Draft202012)
                    .with_registry(&registry)
                    .build(&json!({"$ref": format!("{id}#/$defs/events/master/{def}")}))
                    .unwrap()
            };
            HatSchemas {
                validators: [
                    "gateway/status",
                    "gateway/data",
                    "gateway/command",
                    "system/enable",
                    "system/command",
                ]
                .into_iter()
                .map(|def| (def, validator(def)))
                .collect(),
            }
        })
    }

    /// Panics unless `payload` of the event `tail` (after the prefix) is valid against
    /// hat's schema for its kind. Interrogations have no schema in hat (the request's
    /// payload is not read; the answer's is null, as hat registers it).
    pub(crate) fn check(&self, tail: &str, payload: &Value) {
        let segments: Vec<&str> = tail.split('/').collect();
        let def = match segments.as_slice() {
            ["gateway", "status"] | ["gateway", "remote_device", _, "status"] => "gateway/status",
            ["gateway", "remote_device", _, "data", ..] => "gateway/data",
            ["gateway", "remote_device", _, "command", ..] => "gateway/command",
            ["gateway", "remote_device", _, "interrogation", _] => {
                assert_eq!(payload, &Value::Null, "{tail}");
                return;
            }
            ["system", "remote_device", _, "interrogation", _] => return,
            ["system", "remote_device", _, "enable"] => "system/enable",
            ["system", "remote_device", _, "command", ..] => "system/command",
            _ => panic!("no hat schema for {tail}"),
        };
        let (_, validator) = self.validators.iter().find(|(d, _)| *d == def).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(payload)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{tail} {payload}: {errors:?}");
    }
}

/// The device prefix of the tests.
pub(crate) fn prefix() -> EventType {
    vec!["gateway".into(), "dev".into()]
}

/// A registered event: type after the prefix, payload and source timestamp.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Registered {
    pub(crate) tail: String,
    pub(crate) payload: Value,
    pub(crate) source_timestamp: Option<Timestamp>,
}

/// Records registered events (each checked against hat's schema) and answers the
/// start-up query with `enabled`.
pub(crate) struct Recorder {
    tx: mpsc::UnboundedSender<Registered>,
    enabled: Vec<(u16, bool)>,
}

/// The receiving end of a [`Recorder`].
pub(crate) struct Registrations {
    rx: mpsc::UnboundedReceiver<Registered>,
}

impl Recorder {
    pub(crate) fn new(enabled: &[(u16, bool)]) -> (Arc<Recorder>, Registrations) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Arc::new(Recorder {
                tx,
                enabled: enabled.to_vec(),
            }),
            Registrations { rx },
        )
    }
}

pub(crate) fn tail_of(event_type: &EventType) -> String {
    event_type[prefix().len()..].join("/")
}

impl EventClient for Recorder {
    fn register(&self, events: Vec<RegisterEvent>) -> BoxFuture<'_, Result<(), ClientError>> {
        for e in events {
            let payload = e.payload.as_ref().and_then(|p| p.json_value()).unwrap();
            let tail = tail_of(&e.event_type);
            HatSchemas::get().check(&tail, &payload);
            let _ = self.tx.send(Registered {
                tail,
                payload,
                source_timestamp: e.source_timestamp,
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
        let events = self
            .enabled
            .iter()
            .map(|(a, e)| enable_event(*a, *e))
            .filter(|e| event_types.contains(&e.event_type))
            .collect();
        Box::pin(async move {
            Ok(QueryResult {
                events,
                more_follows: false,
            })
        })
    }
}

/// A `system/...` event under the test prefix.
pub(crate) fn system_event(tail: &str, payload: Value) -> Event {
    let mut event_type = prefix();
    event_type.extend(tail.split('/').map(str::to_owned));
    HatSchemas::get().check(tail, &payload);
    Event {
        id: EventId {
            server: 1,
            session: 1,
            instance: 1,
        },
        event_type,
        timestamp: Timestamp::now(),
        source_timestamp: None,
        payload: Some(Payload::json(payload)),
    }
}

pub(crate) fn enable_event(address: u16, enable: bool) -> Event {
    system_event(
        &format!("system/remote_device/{address}/enable"),
        json!(enable),
    )
}

impl Registrations {
    /// The next registered event.
    pub(crate) async fn next(&mut self) -> Registered {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("no event registered in time")
            .expect("recorder dropped")
    }

    /// Skips events until one with `tail` (returned).
    pub(crate) async fn until(&mut self, tail: &str) -> Registered {
        loop {
            let e = self.next().await;
            if e.tail == tail {
                return e;
            }
        }
    }

    /// Skips events until `tail` with `payload`.
    pub(crate) async fn until_payload(&mut self, tail: &str, payload: Value) -> Registered {
        loop {
            let e = self.next().await;
            if e.tail == tail && e.payload == payload {
                return e;
            }
        }
    }

    /// Skips events until each of `wanted` (tail, payload) has been seen, in any order.
    pub(crate) async fn until_each(&mut self, wanted: &[(&str, Value)]) {
        let mut left: Vec<(&str, Value)> = wanted.to_vec();
        while !left.is_empty() {
            let e = self.next().await;
            left.retain(|(t, p)| !(e.tail == *t && e.payload == *p));
        }
    }

    /// Events registered so far and not read.
    pub(crate) fn drain(&mut self) -> Vec<Registered> {
        let mut out = Vec::new();
        while let Ok(e) = self.rx.try_recv() {
            out.push(e);
        }
        out
    }
}

/// A device configuration with remote devices `addresses` on `port`.
pub(crate) fn config(port: &str, addresses: &[u16], time_sync_delay: Option<f64>) -> Value {
    json!({
        "module": "hat.gateway.devices.iec103.master",
        "name": "dev",
        "port": port,
        "baudrate": 115200,
        "bytesize": "EIGHTBITS",
        "parity": "NONE",
        "stopbits": "ONE",
        "flow_control": {"xonxoff": false, "rtscts": false, "dsrdtr": false},
        "silent_interval": 0.001,
        "reconnect_delay": 0.2,
        "remote_devices": addresses.iter().map(|a| json!({
            "address": a,
            // Generous for a loaded test machine; the mute test waits 3 of them.
            "response_timeout": 0.5,
            "send_retry_count": 2,
            "poll_class1_delay": 0.05,
            "poll_class2_delay": null,
            "reconnect_delay": 0.2,
            "time_sync_delay": time_sync_delay,
        })).collect::<Vec<_>>(),
    })
}

// ---------------------------------------------------------------------------------
// In-memory link.

/// The test's end of one remote device connection.
pub(crate) struct Peer {
    pub(crate) address: u16,
    /// ASDUs the device sent.
    pub(crate) from_device: mpsc::UnboundedReceiver<Vec<u8>>,
    /// ASDUs to the device.
    pub(crate) to_device: mpsc::UnboundedSender<Vec<u8>>,
    /// Cancel: the connection closes (the remote stopped answering).
    pub(crate) closed: CancellationToken,
}

impl Peer {
    /// The next ASDU the device sent, decoded.
    pub(crate) async fn next(&mut self) -> iec60870::iec103::Asdu {
        let bytes = tokio::time::timeout(WAIT, self.from_device.recv())
            .await
            .expect("device sent nothing in time")
            .expect("connection closed");
        iec60870::iec103::decode(&bytes).unwrap()
    }

    pub(crate) fn send(&self, asdu: &iec60870::iec103::Asdu) {
        self.to_device
            .send(iec60870::iec103::encode(asdu).unwrap())
            .unwrap();
    }
}

/// Opens [`FakeLink`]s; fails the next `fail` opens.
pub(crate) struct FakeOpener {
    pub(crate) fail: Mutex<usize>,
    links: mpsc::UnboundedSender<Arc<FakeLink>>,
    answering: watch::Sender<HashSet<u16>>,
}

/// The test's view of the opener: each opened link, and which addresses answer.
pub(crate) struct FakeLine {
    pub(crate) opener: Arc<FakeOpener>,
    pub(crate) links: mpsc::UnboundedReceiver<Arc<FakeLink>>,
}

impl FakeLine {
    pub(crate) fn new(answering: &[u16]) -> FakeLine {
        let (tx, rx) = mpsc::unbounded_channel();
        let (answering, _) = watch::channel(answering.iter().copied().collect());
        FakeLine {
            opener: Arc::new(FakeOpener {
                fail: Mutex::new(0),
                links: tx,
                answering,
            }),
            links: rx,
        }
    }

    /// The next link the device opened.
    pub(crate) async fn link(&mut self) -> Arc<FakeLink> {
        tokio::time::timeout(WAIT, self.links.recv())
            .await
            .expect("no link opened in time")
            .unwrap()
    }

    pub(crate) fn set_answering(&self, address: u16, answering: bool) {
        self.opener.answering.send_modify(|set| {
            if answering {
                set.insert(address);
            } else {
                set.remove(&address);
            }
        });
    }
}

impl LinkOpener for FakeOpener {
    fn open(&self, _config: &MasterConfig) -> BoxFuture<'static, Result<Arc<dyn Link>, LinkError>> {
        let mut fail = self.fail.lock().unwrap();
        if *fail > 0 {
            *fail -= 1;
            return Box::pin(async { Err(LinkError("port not there".into())) });
        }
        let (peers_tx, peers_rx) = mpsc::unbounded_channel();
        let link = Arc::new(FakeLink {
            closed: CancellationToken::new(),
            answering: self.answering.subscribe(),
            peers_tx,
            peers: tokio::sync::Mutex::new(peers_rx),
        });
        let _ = self.links.send(link.clone());
        Box::pin(async move { Ok(link as Arc<dyn Link>) })
    }
}

/// One open in-memory link.
pub(crate) struct FakeLink {
    pub(crate) closed: CancellationToken,
    answering: watch::Receiver<HashSet<u16>>,
    peers_tx: mpsc::UnboundedSender<Peer>,
    peers: tokio::sync::Mutex<mpsc::UnboundedReceiver<Peer>>,
}

impl FakeLink {
    /// The next connection the device opened.
    pub(crate) async fn peer(&self) -> Peer {
        tokio::time::timeout(WAIT, self.peers.lock().await.recv())
            .await
            .expect("no connection opened in time")
            .unwrap()
    }
}

struct FakeConn {
    to_peer: mpsc::UnboundedSender<Vec<u8>>,
    from_peer: tokio::sync::Mutex<mpsc::UnboundedReceiver<Vec<u8>>>,
    closed: CancellationToken,
}

impl Link for FakeLink {
    fn open_connection(
        &self,
        remote: &RemoteDeviceConfig,
        _config: &MasterConfig,
    ) -> BoxFuture<'static, Result<Arc<dyn Conn>, LinkError>> {
        let address = remote.address;
        let mut answering = self.answering.clone();
        let peers = self.peers_tx.clone();
        let link_closed = self.closed.clone();
        Box::pin(async move {
            tokio::select! {
                biased;
                _ = link_closed.cancelled() => return Err(LinkError("link closed".into())),
                r = answering.wait_for(|set| set.contains(&address)) => { r.unwrap(); }
            }
            let (to_peer, from_device) = mpsc::unbounded_channel();
            let (to_device, from_peer) = mpsc::unbounded_channel();
            let closed = link_closed.child_token();
            let _ = peers.send(Peer {
                address,
                from_device,
                to_device,
                closed: closed.clone(),
            });
            Ok(Arc::new(FakeConn {
                to_peer,
                from_peer: tokio::sync::Mutex::new(from_peer),
                closed,
            }) as Arc<dyn Conn>)
        })
    }

    fn closed(&self) -> BoxFuture<'static, ()> {
        let closed = self.closed.clone();
        Box::pin(async move { closed.cancelled().await })
    }

    fn close(&self) {
        self.closed.cancel();
    }
}

impl Conn for FakeConn {
    fn send(&self, asdu: Vec<u8>) -> BoxFuture<'_, Result<(), LinkError>> {
        Box::pin(async move {
            if self.closed.is_cancelled() {
                return Err(LinkError("closed".into()));
            }
            self.to_peer
                .send(asdu)
                .map_err(|_| LinkError("closed".into()))
        })
    }

    fn receive(&self) -> BoxFuture<'_, Option<Vec<u8>>> {
        Box::pin(async move {
            let mut rx = self.from_peer.lock().await;
            tokio::select! {
                _ = self.closed.cancelled() => None,
                asdu = rx.recv() => asdu,
            }
        })
    }

    fn close(&self) {
        self.closed.cancel();
    }
}

/// The directory of the test binaries' build profile (`target/<profile>`).
pub(crate) fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// The cdylib cargo built (`target/<profile>/libiec103_master.so`), copied into a
/// private 0755 plugin directory as the loader requires (removed on drop).
pub(crate) fn plugin_dir(label: &str) -> gateway_test_support::TempDir {
    use std::os::unix::fs::PermissionsExt as _;
    let library = target_dir().join("libiec103_master.so");
    assert!(
        library.is_file(),
        "{} missing: cargo build -p iec103_master",
        library.display()
    );
    let dir = gateway_test_support::TempDir::new(&format!("iec103-master-{label}"));
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let target = dir.path().join("libiec103_master.so");
    std::fs::copy(&library, &target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// hat-gateway's own configuration schema validator for the iec103 master.
pub(crate) fn hat_config_validator() -> jsonschema::Validator {
    let path = site_packages().join("hat/gateway/json_schema_repo.json");
    let repo: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let id = "hat-gateway://iec103.yaml";
    let registry = jsonschema::Registry::new()
        .add(id, repo[id].clone())
        .unwrap()
        .prepare()
        .unwrap();
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .with_registry(&registry)
        .build(&json!({"$ref": format!("{id}#/$defs/master")}))
        .unwrap()
}

// ---------------------------------------------------------------------------------
// The hat-drivers based 103 slave (tests/py/slave.py) on a socat pty pair.

/// A `slave.py` on end `b` of its own pty pair; the device opens end `a`.
pub(crate) struct Slave {
    pub(crate) script: gateway_test_support::script::PyScript,
    pub(crate) pty: gateway_test_support::pty::PtyPair,
}

/// One `HAT` line: the event hat-gateway's master registers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HatEvent {
    pub(crate) tail: String,
    pub(crate) payload: Value,
    pub(crate) source_timestamp: Option<Timestamp>,
}

impl Slave {
    /// Starts the slave answering for `addresses` and waits for READY.
    pub(crate) async fn start(label: &str, addresses: &[u16]) -> Slave {
        let pty = gateway_test_support::pty::PtyPair::start(label);
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/slave.py");
        let addresses: Vec<String> = addresses.iter().map(u16::to_string).collect();
        let mut script = gateway_test_support::script::PyScript::start(
            &script,
            &["--port", &pty.b_str(), "--addresses", &addresses.join(",")],
        );
        script.line(|l| l == "READY").await;
        Slave { script, pty }
    }

    /// The port the device opens.
    pub(crate) fn port(&self) -> String {
        self.pty.a_str()
    }

    /// Runs a stdin command and collects the `HAT` events before its `OK` (lines of
    /// data hat-gateway has no event for are left out).
    pub(crate) async fn command(&mut self, line: &str) -> Vec<HatEvent> {
        self.script.send(line).await;
        let mut hat = Vec::new();
        loop {
            let out = self.script.next().await;
            if out == format!("OK {line}") {
                return hat;
            }
            if let Some(json) = out.strip_prefix("HAT ") {
                // `{"error": ...}`: hat-gateway registers nothing for that data.
                if !json.starts_with("{\"error\"") {
                    hat.push(hat_event(json));
                }
            }
        }
    }

    /// Waits for `CONNECT <address>`.
    pub(crate) async fn connected(&mut self, address: u16) {
        let want = format!("CONNECT {address}");
        self.script.line(|l| l == want).await;
    }

    /// Waits for `CONNECT <address>` of every one of `addresses`, in any order.
    pub(crate) async fn connected_all(&mut self, addresses: &[u16]) {
        let mut left: HashSet<String> = addresses.iter().map(|a| format!("CONNECT {a}")).collect();
        while !left.is_empty() {
            let line = self.script.next().await;
            left.remove(&line);
        }
    }

    /// The next ASDU received for `address` with hat class `class` (hat's decoding as
    /// JSON), skipping others; `HAT` lines of answers are collected in `hat`.
    pub(crate) async fn asdu(&mut self, address: u16, asdu_type: &str) -> Value {
        let prefix = format!("ASDU {address} ");
        loop {
            let line = self.script.next().await;
            if let Some(json) = line.strip_prefix(&prefix) {
                let v: Value = serde_json::from_str(json).unwrap();
                if v["type"] == json!(asdu_type) {
                    return v;
                }
            }
        }
    }
}

/// A `HAT` line's JSON as a [`HatEvent`].
pub(crate) fn hat_event(json: &str) -> HatEvent {
    let v: Value = serde_json::from_str(json).unwrap();
    assert!(v.get("error").is_none(), "hat: {v}");
    HatEvent {
        tail: v["type"].as_str().unwrap().to_owned(),
        payload: v["payload"].clone(),
        source_timestamp: v["source_timestamp"]
            .as_array()
            .map(|a| Timestamp::new(a[0].as_i64().unwrap(), a[1].as_i64().unwrap())),
    }
}

impl Registered {
    /// The same event as hat's (source timestamps within a millisecond: hat rounds
    /// through floats).
    pub(crate) fn assert_same(&self, hat: &HatEvent) {
        assert_eq!((&self.tail, &self.payload), (&hat.tail, &hat.payload));
        match (self.source_timestamp, hat.source_timestamp) {
            (Some(a), Some(b)) => {
                let d = (a.s - b.s) * 1_000_000 + (a.us - b.us);
                assert!(d.abs() <= 1000, "{a:?} vs hat's {b:?}");
            }
            (a, b) => assert_eq!(a, b),
        }
    }
}
