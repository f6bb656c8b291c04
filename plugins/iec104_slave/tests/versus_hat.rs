//! Differential test: the same hat-drivers master runs the same requests against our
//! slave and against hat-gateway 0.6.48's own iec104 slave device (in Python, with a
//! stand-in eventer client); what the master receives and what the devices register
//! must be the same.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

use common::{conf, point, start, Master, Registrations, WAIT};
use gateway_model::{Event, Timestamp};
use gateway_test_support::script::PyScript;
use serde_json::{json, Value};

/// hat's slave device process (`tests/py/hat_slave.py`), killed on drop.
struct HatSlave {
    script: PyScript,
    registered: Vec<Value>,
}

impl HatSlave {
    async fn start(conf: &Value, latest: &[(String, Value, Option<f64>)]) -> Self {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/hat_slave.py");
        let setup = json!({"conf": conf, "latest": latest});
        let mut slave = Self {
            script: PyScript::start(&script, &[setup.to_string()]).with_wait(WAIT),
            registered: Vec::new(),
        };
        slave.until("READY").await;
        slave
    }

    /// Reads lines up to `line`, keeping the registrations.
    async fn until(&mut self, line: &str) {
        loop {
            let next = self.script.next().await;
            if let Some(json) = next.strip_prefix("REG ") {
                self.registered.push(serde_json::from_str(json).unwrap());
            } else if next == line {
                return;
            }
        }
    }

    async fn event(&mut self, tail: &str, payload: &Value, source_timestamp: Option<f64>) {
        let line = format!("event {}", json!([tail, payload, source_timestamp]));
        self.script.send(&line).await;
        self.until(&format!("OK {line}")).await;
    }
}

/// One side of the comparison.
enum Slave {
    Ours(iec104_slave::SlaveDevice, Registrations),
    // Boxed: the process handle makes it several times the size of `Ours`.
    Hat(Box<HatSlave>),
}

impl Slave {
    async fn event(&mut self, tail: &str, payload: &Value, source_timestamp: Option<f64>) {
        match self {
            Slave::Ours(device, _) => {
                device
                    .process_event(our_event(tail, payload, source_timestamp))
                    .await
            }
            Slave::Hat(hat) => hat.event(tail, payload, source_timestamp).await,
        }
    }

    /// Waits for the next registered connection list; returns its connection ids.
    async fn next_connections(&mut self) -> Value {
        let payload = match self {
            Slave::Ours(_, registrations) => registrations.connections().await,
            Slave::Hat(hat) => loop {
                if let Some(i) = hat
                    .registered
                    .iter()
                    .position(|e| e["tail"] == "gateway/connections")
                {
                    break hat.registered.remove(i)["payload"].clone();
                }
                let next = hat.script.next().await;
                if let Some(json) = next.strip_prefix("REG ") {
                    hat.registered.push(serde_json::from_str(json).unwrap());
                }
            },
        };
        payload
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["connection_id"].clone())
            .collect()
    }

    /// Everything registered so far, as `{tail, payload, source_timestamp}`, with the
    /// connection list reduced to connection ids (ports differ between the runs).
    async fn registered(&mut self) -> Vec<Value> {
        let mut events = match self {
            Slave::Ours(_, registrations) => {
                let mut out = Vec::new();
                while let Ok(event) = registrations.0.try_recv() {
                    out.push(json!({
                        "tail": event.tail,
                        "payload": event.payload,
                        "source_timestamp": event.source_timestamp.map(Timestamp::to_f64),
                    }));
                }
                out
            }
            Slave::Hat(hat) => {
                // Anything printed before this round trip is read now.
                hat.script.send("sync").await;
                hat.until("OK sync").await;
                std::mem::take(&mut hat.registered)
            }
        };
        for event in &mut events {
            if event["tail"] == "gateway/connections" {
                let ids: Vec<Value> = event["payload"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["connection_id"].clone())
                    .collect();
                event["payload"] = Value::Array(ids);
            }
        }
        events
    }
}

fn our_event(tail: &str, payload: &Value, source_timestamp: Option<f64>) -> Event {
    common::system_event(
        tail,
        payload.clone(),
        source_timestamp.map(Timestamp::from_f64),
    )
}

/// Sends `command` and returns every message received up to the answer of a closing
/// interrogation of ASDU 77 (which has no points): the messages `command` caused.
async fn step(master: &mut Master, command: &str) -> Vec<Value> {
    master.command(command).await;
    master.command("gi 77").await;
    let mut msgs = Vec::new();
    loop {
        let mut msg = master.msg().await;
        if msg["_type"] == "InterrogationMsg"
            && msg["asdu_address"] == 77
            && msg["cause"] == "ACTIVATION_TERMINATION"
        {
            // Drop the closing interrogation's confirmation too.
            msgs.pop();
            return msgs;
        }
        if msg["_type"] == "ClockSyncMsg" {
            // The master's own clock, echoed: differs between the runs.
            msg["time"] = Value::Null;
        }
        msgs.push(msg);
    }
}

fn scenario_conf() -> Value {
    conf(
        json!([
            point("SINGLE", 1, 1, None),
            point("FLOATING", 1, 2, Some("b")),
            point("BINARY_COUNTER", 1, 3, None),
            point("DOUBLE", 2, 1, None),
            point("SCALED", 2, 2, None),
        ]),
        json!([{"name": "b", "size": 10}]),
    )
}

fn latest() -> Vec<(String, Value, Option<f64>)> {
    let m = common::measurement();
    vec![
        (
            "system/data/single/1/1".into(),
            json!({"is_test": false, "cause": "SPONTANEOUS", "data": common::single("ON")}),
            None,
        ),
        (
            "system/data/floating/1/2".into(),
            json!({"is_test": false, "cause": "PERIODIC", "data": {"value": 1.5, "quality": m}}),
            Some(1_700_000_000.25),
        ),
        (
            "system/data/binary_counter/1/3".into(),
            json!({"is_test": false, "cause": "SPONTANEOUS", "data": {"value": 9, "quality":
                {"invalid": false, "adjusted": false, "overflow": true, "sequence": true}}}),
            None,
        ),
        (
            "system/data/double/2/1".into(),
            json!({"is_test": true, "cause": "SPONTANEOUS",
                   "data": {"value": "INTERMEDIATE", "quality": common::indication()}}),
            None,
        ),
    ]
}

/// What the master saw and what the device registered, step by step.
async fn run(mut slave: Slave, port: u16) -> Vec<(String, Vec<Value>, Vec<Value>)> {
    let mut master = Master::connected(port).await;
    let mut transcript = Vec::new();
    let steps = [
        "gi 65535",
        "gi 1",
        "gi 5",
        "gi 1 DEACTIVATION",
        "gi 1 13",
        "ci 65535",
        "ci 2",
        "clock 1",
        // C_RD_NA_1 of ASDU 1, IO 2.
        "asdu 660105000100020000",
        r#"command {"type": "single", "value": "ON", "asdu_address": 1, "io_address": 9, "cause": 7}"#,
        r#"command {"type": "double", "value": "OFF", "select": true, "qualifier": 1, "asdu_address": 2, "io_address": 8, "time": 1700000001.5}"#,
        r#"command {"type": "scaled", "value": -5, "asdu_address": 2, "io_address": 7, "cause": "DEACTIVATION"}"#,
    ];
    for command in steps {
        let msgs = step(&mut master, command).await;
        transcript.push((command.to_owned(), msgs, slave.registered().await));
    }
    let events = [
        (
            "system/command/double/2/8",
            json!({"connection_id": 1, "is_test": false, "cause": "ACTIVATION_CONFIRMATION",
                   "is_negative_confirm": true,
                   "command": {"value": "OFF", "select": true, "qualifier": 1}}),
            Some(1_700_000_002.0),
        ),
        (
            "system/data/floating/1/2",
            json!({"is_test": false, "cause": "SPONTANEOUS",
                   "data": {"value": -3.25, "quality": common::measurement()}}),
            Some(1_700_000_003.5),
        ),
        (
            "system/data/scaled/2/2",
            json!({"is_test": false, "cause": 44,
                   "data": {"value": 12, "quality": common::measurement()}}),
            None,
        ),
    ];
    for (tail, payload, ts) in events {
        slave.event(tail, &payload, ts).await;
        let msgs = step(&mut master, "gi 1").await;
        transcript.push((tail.to_owned(), msgs, slave.registered().await));
    }
    // A second master, then both leave: the connection lists on the way.
    let mut second = Master::connected(port).await;
    let mut lists = vec![slave.next_connections().await];
    second.command("close").await;
    lists.push(slave.next_connections().await);
    master.command("close").await;
    lists.push(slave.next_connections().await);
    transcript.push(("connections".to_owned(), lists, Vec::new()));
    transcript
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_slave_answers_and_registers_as_hats_does() {
    let latest = latest();
    let mut ours_conf = scenario_conf();
    let events: Vec<Event> = latest
        .iter()
        .map(|(tail, payload, ts)| our_event(tail, payload, *ts))
        .collect();
    let (device, registrations, _) = start(&ours_conf, events).await;
    let port = device.local_addr().port();
    let ours = run(Slave::Ours(device, registrations), port).await;

    let hat_port = gateway_test_support::free_port();
    ours_conf["local_port"] = json!(hat_port);
    let mut hat = HatSlave::start(&ours_conf, &latest).await;
    // hat registered its (empty) connection list at start; ours was taken by `start`.
    assert_eq!(
        hat.registered,
        [json!({"tail": "gateway/connections", "payload": [], "source_timestamp": null})]
    );
    hat.registered.clear();
    let theirs = run(Slave::Hat(Box::new(hat)), hat_port).await;

    // The comparison is not of empty transcripts: the broadcast interrogation carries
    // the three station values, the commands registered their events, the last
    // events reached the master.
    let data = |msgs: &[Value]| msgs.iter().filter(|m| m["_type"] == "DataMsg").count();
    assert_eq!(data(&ours[0].1), 3, "{:?}", ours[0]);
    assert_eq!(ours[10].2.len(), 1, "{:?}", ours[10]);
    assert_eq!(ours[10].2[0]["tail"], "gateway/command/double/2/8");
    assert_eq!(ours[12].1[0]["_type"], "CommandMsg", "{:?}", ours[12]);
    assert_eq!(ours[13].1[0]["cause"], "SPONTANEOUS", "{:?}", ours[13]);
    assert_eq!(ours[15].1, [json!([1, 2]), json!([1]), json!([])]);
    assert_eq!(ours.len(), theirs.len());
    for (ours, theirs) in ours.iter().zip(&theirs) {
        assert_eq!(ours, theirs, "step {:?}", ours.0);
    }
}

/// Buffered values: a master that leaves without acknowledging, one that
/// acknowledges, one that comes after; what each of them receives.
async fn run_buffered(mut slave: Slave, port: u16) -> Vec<Vec<Value>> {
    let mut transcript = Vec::new();
    let mut first = Master::start().await;
    // Window 100 and t2 60 s: this master does not acknowledge within the test.
    assert!(first.connect_with(port, 100, 60.0).await);
    assert_eq!(slave.next_connections().await, json!([1]));
    transcript.push(step(&mut first, "gi 1").await);
    let value = json!({"is_test": false, "cause": "SPONTANEOUS", "data": common::single("ON")});
    slave.event("system/data/single/1/1", &value, None).await;
    transcript.push(vec![first.msg().await]);
    first.command("close").await;
    assert_eq!(slave.next_connections().await, json!([]));

    let mut second = Master::connected(port).await;
    assert_eq!(slave.next_connections().await, json!([2]));
    transcript.push(step(&mut second, "gi 1").await);
    second.command("close").await;
    assert_eq!(slave.next_connections().await, json!([]));

    let mut third = Master::connected(port).await;
    assert_eq!(slave.next_connections().await, json!([3]));
    transcript.push(step(&mut third, "gi 1").await);
    transcript
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffered_values_are_delivered_as_hats_are() {
    let mut entry = conf(
        json!([point("SINGLE", 1, 1, Some("b"))]),
        json!([{"name": "b", "size": 10}]),
    );
    let (device, registrations, _) = start(&entry, vec![]).await;
    let port = device.local_addr().port();
    let ours = run_buffered(Slave::Ours(device, registrations), port).await;

    let hat_port = gateway_test_support::free_port();
    entry["local_port"] = json!(hat_port);
    let mut hat = HatSlave::start(&entry, &[]).await;
    hat.registered.clear();
    let theirs = run_buffered(Slave::Hat(Box::new(hat)), hat_port).await;

    // The second master got the value first, the third did not get it.
    assert_eq!(ours[2][0]["cause"], "SPONTANEOUS", "{ours:?}");
    assert!(
        ours[3].iter().all(|m| m["cause"] != "SPONTANEOUS"),
        "{ours:?}"
    );
    assert_eq!(ours, theirs);
}
