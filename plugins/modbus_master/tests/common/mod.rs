//! Test kit: a real pymodbus slave process, a silent TCP listener, a scripted slave
//! that answers late, and an event recorder implementing the event-client contract the
//! core holds.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use gateway_model::{
    ClientError, Event, EventClient, EventId, EventType, JsonText, Payload, QueryLatestParams,
    QueryParams, QueryResult, RegisterEvent, Timestamp,
};
use gateway_test_support::script::PyScript;
use modbus_master::MasterDevice;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Upper bound for any single expected event or line.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// The 4-segment prefix of the device under test.
pub(crate) fn prefix() -> EventType {
    ["gateway", "gw", "modbus_master", "dev"]
        .map(String::from)
        .to_vec()
}

/// The Python of the test venv; fails with instructions if it is missing.
pub(crate) fn venv_python() -> PathBuf {
    gateway_test_support::venv_with(&["bin/python"]).join("bin/python")
}

/// A pymodbus slave process (`tests/py/slave.py`), killed on drop.
pub(crate) struct Slave {
    script: PyScript,
    /// TCP port (0 for serial).
    pub port: u16,
}

impl Slave {
    /// TCP slave on a free loopback port with socket (MBAP) framing.
    pub(crate) async fn tcp() -> Self {
        Self::start(&[]).await
    }

    /// Slave with extra arguments (`--framer rtu`, `--size 1000`, `--serial PATH`, `--port N`).
    pub(crate) async fn start(args: &[&str]) -> Self {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/slave.py");
        let mut slave = Self {
            script: PyScript::start(&script, args).with_wait(WAIT),
            port: 0,
        };
        let first = slave.line(|l| l.starts_with("PORT ") || l == "READY").await;
        if let Some(port) = first.strip_prefix("PORT ") {
            slave.port = port.parse().unwrap();
        }
        slave
    }

    /// Next output line satisfying `pred` (earlier lines are skipped).
    pub(crate) async fn line(&mut self, pred: impl Fn(&str) -> bool) -> String {
        self.script.line(pred).await
    }

    /// Like [`line`](Self::line), with the time the line was read.
    pub(crate) async fn line_at(&mut self, pred: impl Fn(&str) -> bool) -> (Instant, String) {
        self.script.line_at(pred).await
    }

    /// Every line received so far (non-blocking).
    pub(crate) fn drain(&mut self) -> Vec<String> {
        self.script.drain()
    }

    /// Sends a command and waits for its acknowledgement; returns the lines printed
    /// before the acknowledgement (e.g. `REQ` lines or the `HR` answer).
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

    /// Asserts that no request reached the slave since its output was last read
    /// (`what` says why none was expected).
    pub(crate) async fn assert_no_requests(&mut self, what: &str) {
        let lines = self.command("get 0 1").await;
        assert!(lines.iter().all(|l| req(l).is_none()), "{what}: {lines:?}");
    }

    /// Holding registers `address..address+count`.
    pub(crate) async fn holding(&mut self, address: u16, count: u16) -> Vec<u16> {
        let lines = self.command(&format!("get {address} {count}")).await;
        let line = lines.iter().find(|l| l.starts_with("HR")).unwrap();
        line.split_whitespace()
            .skip(1)
            .map(|v| v.parse().unwrap())
            .collect()
    }

    /// Coils `address..address+count` as 0/1.
    pub(crate) async fn coils(&mut self, address: u16, count: u16) -> Vec<u8> {
        let lines = self.command(&format!("getc {address} {count}")).await;
        let line = lines.iter().find(|l| l.starts_with("CO")).unwrap();
        line.split_whitespace()
            .skip(1)
            .map(|v| v.parse().unwrap())
            .collect()
    }

    /// Stops the process now.
    pub(crate) async fn kill(&mut self) {
        self.script.kill().await;
    }
}

/// Parses a `REQ unit fc address count` line.
pub(crate) fn req(line: &str) -> Option<(u8, u8, u16, u16)> {
    let mut words = line.strip_prefix("REQ ")?.split_whitespace();
    let mut next = || words.next().and_then(|w| w.parse::<u32>().ok());
    Some((next()? as u8, next()? as u8, next()? as u16, next()? as u16))
}

/// One thing the recorder saw, in order.
#[derive(Debug, Clone)]
pub(crate) enum Record {
    /// A latest query with these types.
    Query(Vec<String>),
    /// A registered event: type after the prefix, payload, time.
    Event(String, Value, Instant),
}

/// Event client that records everything and answers the start-up query with
/// `enabled` ids.
pub(crate) struct Recorder {
    enabled: Vec<u8>,
    log: Mutex<Vec<Record>>,
    tx: mpsc::UnboundedSender<Record>,
}

/// Receiving side of a [`Recorder`].
pub(crate) struct Events {
    rx: mpsc::UnboundedReceiver<Record>,
    /// All registered events, for assertions over the whole run.
    pub recorder: Arc<Recorder>,
}

impl Recorder {
    /// A recorder whose start-up query reports `enabled` as enabled.
    pub(crate) fn new(enabled: &[u8]) -> (Arc<Self>, Events) {
        let (tx, rx) = mpsc::unbounded_channel();
        let recorder = Arc::new(Self {
            enabled: enabled.to_vec(),
            log: Mutex::new(Vec::new()),
            tx,
        });
        (recorder.clone(), Events { rx, recorder })
    }

    /// Everything recorded so far.
    pub(crate) fn log(&self) -> Vec<Record> {
        self.log.lock().unwrap().clone()
    }

    fn push(&self, record: Record) {
        self.log.lock().unwrap().push(record.clone());
        let _ = self.tx.send(record);
    }
}

impl EventClient for Recorder {
    fn register(&self, events: Vec<RegisterEvent>) -> BoxFuture<'_, Result<(), ClientError>> {
        for event in events {
            // Behaviour 33 holds for every event of every test.
            assert!(
                event.source_timestamp.is_none(),
                "source timestamp on {:?}",
                event.event_type
            );
            assert_eq!(
                event.event_type[..4],
                prefix()[..],
                "prefix of {:?}",
                event.event_type
            );
            assert_eq!(event.event_type[4], "gateway");
            let payload = match event.payload {
                Some(Payload::Json(text)) => text.value(),
                other => panic!("non-JSON payload {other:?}"),
            };
            self.push(Record::Event(
                event.event_type[4..].join("/"),
                payload,
                Instant::now(),
            ));
        }
        Box::pin(async { Ok(()) })
    }

    fn register_with_response(
        &self,
        _events: Vec<RegisterEvent>,
    ) -> BoxFuture<'_, Result<Option<Vec<Event>>, ClientError>> {
        panic!("modbus_master never registers with response")
    }

    fn query(&self, params: QueryParams) -> BoxFuture<'_, Result<QueryResult, ClientError>> {
        let QueryParams::Latest(QueryLatestParams {
            event_types: Some(event_types),
        }) = params
        else {
            panic!("modbus_master asks only latest queries with types: {params:?}");
        };
        self.push(Record::Query(
            event_types.iter().map(|t| t.join("/")).collect(),
        ));
        let events = self
            .enabled
            .iter()
            .map(|id| system_event(&format!("system/remote_device/{id}/enable"), json!(true)))
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
    /// Next registered event as `(type after prefix, payload)`.
    pub(crate) async fn next(&mut self) -> (String, Value) {
        let (t, v, _) = self.next_at().await;
        (t, v)
    }

    /// Next registered event with the time it was registered.
    pub(crate) async fn next_at(&mut self) -> (String, Value, Instant) {
        loop {
            let record = tokio::time::timeout(WAIT, self.rx.recv())
                .await
                .expect("no event within the wait")
                .unwrap();
            if let Record::Event(t, v, at) = record {
                return (t, v, at);
            }
        }
    }

    /// Asserts the next event.
    pub(crate) async fn expect(&mut self, event_type: &str, payload: Value) {
        assert_eq!(self.next().await, (event_type.to_owned(), payload));
    }

    /// Asserts the next events are `gateway/status` with these values, in order.
    pub(crate) async fn expect_status(&mut self, statuses: &[&str]) {
        for status in statuses {
            self.expect("gateway/status", json!(status)).await;
        }
    }

    /// Asserts the next events are remote device 1's status with these values, in order.
    pub(crate) async fn expect_remote_status(&mut self, statuses: &[&str]) {
        for status in statuses {
            self.expect("gateway/remote_device/1/status", json!(status))
                .await;
        }
    }

    /// Asserts the next event is remote device 1's response to a write of `name`.
    pub(crate) async fn expect_write(&mut self, name: &str, request_id: Value, result: &str) {
        self.expect(
            &format!("gateway/remote_device/1/write/{name}"),
            json!({"request_id": request_id, "result": result}),
        )
        .await;
    }

    /// Skips events until one of type `event_type` arrives; returns its payload.
    pub(crate) async fn until(&mut self, event_type: &str) -> Value {
        loop {
            let (t, v) = self.next().await;
            if t == event_type {
                return v;
            }
        }
    }

    /// Events registered within `window` (used only to assert that nothing happens).
    pub(crate) async fn quiet_for(&mut self, window: Duration) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + window;
        while let Ok(Some(record)) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            if let Record::Event(t, v, _) = record {
                out.push((t, v));
            }
        }
        out
    }
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

/// A device entry: TCP framing to `port` with the test timing of
/// `docs/modbus-master.md` section 14.
pub(crate) fn conf(port: u16, remote_devices: Value) -> Value {
    json!({
        "module": "modbus_master",
        "name": "dev",
        "connection": {
            "modbus_type": "TCP",
            "transport": {"type": "TCP", "host": "127.0.0.1", "port": port},
            "connect_timeout": 2,
            "connect_delay": 30,
            "request_timeout": 0.5,
            "request_delay": 0,
            "request_retry_immediate_count": 0,
            "request_retry_delayed_count": 0,
            "request_retry_delay": 0.1
        },
        "remote_devices": remote_devices
    })
}

/// A configuration with remote device 1 polling one 16-bit holding register `name` at
/// `address` every 0.2 s.
pub(crate) fn one_holding(port: u16, name: &str, address: u16) -> Value {
    conf(
        port,
        json!([remote(
            1,
            json!([point(name, "HOLDING_REGISTER", json!(0.2), address, 0, 16)])
        )]),
    )
}

/// A write request event for remote device 1's point `name`.
pub(crate) fn write(name: &str, request_id: Value, value: Value) -> Event {
    system_event(
        &format!("system/remote_device/1/write/{name}"),
        json!({"request_id": request_id, "value": value}),
    )
}

/// A data point entry.
pub(crate) fn point(
    name: &str,
    data_type: &str,
    interval: Value,
    start: u16,
    offset: u32,
    count: u32,
) -> Value {
    json!({"name": name, "interval": interval, "data_type": data_type,
           "start_address": start, "bit_offset": offset, "bit_count": count})
}

/// Remote device 1 with `data`.
pub(crate) fn remote(device_id: u8, data: Value) -> Value {
    json!({"device_id": device_id, "timeout_poll_delay": 0.5, "data": data})
}

/// Creates the device with a recorder whose query enables `enabled`.
pub(crate) fn start(conf: &Value, enabled: &[u8]) -> (MasterDevice, Events) {
    let (recorder, events) = Recorder::new(enabled);
    let device = MasterDevice::create(conf, prefix(), recorder).unwrap();
    (device, events)
}

/// A loopback port nobody listens on.
pub(crate) fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A TCP listener that accepts connections and never answers; records each Modbus TCP
/// request frame it receives with its arrival time.
pub(crate) struct SilentListener {
    /// Listening port.
    pub port: u16,
    frames: mpsc::UnboundedReceiver<(Instant, Vec<u8>)>,
    task: tokio::task::JoinHandle<()>,
}

impl SilentListener {
    /// Starts listening on a free loopback port.
    pub(crate) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, frames) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while let Ok(n) = socket.read(&mut chunk).await {
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        while buf.len() >= 6 {
                            let len = 6 + usize::from(u16::from_be_bytes([buf[4], buf[5]]));
                            if buf.len() < len {
                                break;
                            }
                            let frame: Vec<u8> = buf.drain(..len).collect();
                            let _ = tx.send((Instant::now(), frame));
                        }
                    }
                });
            }
        });
        Self { port, frames, task }
    }

    /// Frames received so far (non-blocking).
    pub(crate) fn frames(&mut self) -> Vec<(Instant, Vec<u8>)> {
        let mut out = Vec::new();
        while let Ok(frame) = self.frames.try_recv() {
            out.push(frame);
        }
        out
    }
}

impl Drop for SilentListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a [`MisbehavingSlave`] does with each connection it accepts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Misbehaviour {
    /// Reads the first request, then closes without answering.
    CloseAfterRequest,
    /// Answers every request with [`GARBAGE`] (an MBAP protocol id that is not Modbus).
    Garbage,
    /// Keeps the connection open this long without reading, then closes it.
    HoldThenClose(Duration),
}

/// Bytes no Modbus framing accepts as a response: in MBAP the protocol id (bytes 2..4)
/// must be 0.
pub(crate) const GARBAGE: &[u8] = b"\xde\xad\xbe\xef garbage, not a Modbus frame";

/// A raw TCP slave on loopback that misbehaves in one way; records the time of every
/// connection it accepts.
pub(crate) struct MisbehavingSlave {
    /// Listening port.
    pub port: u16,
    accepted: mpsc::UnboundedReceiver<Instant>,
    task: tokio::task::JoinHandle<()>,
}

impl MisbehavingSlave {
    /// Starts listening on a free loopback port.
    pub(crate) async fn start(misbehaviour: Misbehaviour) -> Self {
        use tokio::io::AsyncWriteExt;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, accepted) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let _ = tx.send(Instant::now());
                tokio::spawn(async move {
                    let mut chunk = [0u8; 1024];
                    match misbehaviour {
                        Misbehaviour::CloseAfterRequest => {
                            let _ = socket.read(&mut chunk).await;
                        }
                        Misbehaviour::Garbage => {
                            while let Ok(n) = socket.read(&mut chunk).await {
                                if n == 0 || socket.write_all(GARBAGE).await.is_err() {
                                    break;
                                }
                            }
                        }
                        Misbehaviour::HoldThenClose(hold) => tokio::time::sleep(hold).await,
                    }
                });
            }
        });
        Self {
            port,
            accepted,
            task,
        }
    }

    /// Waits for the next accepted connection; returns when it was accepted.
    pub(crate) async fn next_accept(&mut self) -> Instant {
        tokio::time::timeout(WAIT, self.accepted.recv())
            .await
            .expect("no connection within the wait")
            .unwrap()
    }

    /// Connections accepted until `deadline`, waiting for it.
    pub(crate) async fn accepts_until(&mut self, deadline: Instant) -> Vec<Instant> {
        let deadline = tokio::time::Instant::from_std(deadline);
        let mut out = Vec::new();
        while let Ok(Some(at)) = tokio::time::timeout_at(deadline, self.accepted.recv()).await {
            out.push(at);
        }
        out
    }
}

impl Drop for MisbehavingSlave {
    fn drop(&mut self) {
        self.task.abort();
    }
}
