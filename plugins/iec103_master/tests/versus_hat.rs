//! Our device and hat-gateway 0.6.48's own iec103 master (tests/py/hat_master.py) run
//! the same scenarios (data, interrogation, commands; a remote device that stops
//! answering, comes back, is disabled and enabled) against the same hat-drivers based
//! slave script, each on its own pty line: the events they register (types, payloads,
//! whether a source timestamp is there) are the same, in the same order.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::*;
use gateway_test_support::script::PyScript;
use iec103_master::serial::SerialOpener;
use iec103_master::MasterDevice;
use serde_json::{json, Value};

/// `(tail, payload, has a source timestamp)`.
type Seen = (String, Value, bool);

enum Master {
    Ours(MasterDevice, Registrations),
    Hat(Box<PyScript>),
}

impl Master {
    async fn ours(slave: &Slave) -> Master {
        let (recorder, events) = Recorder::new(&[(1, true)]);
        let device = MasterDevice::create(
            &config(&slave.port(), &[1], None),
            prefix(),
            recorder,
            Arc::new(SerialOpener),
        )
        .await
        .unwrap();
        Master::Ours(device, events)
    }

    fn hat(slave: &Slave) -> Master {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/hat_master.py");
        let conf = config(&slave.port(), &[1], None).to_string();
        Master::Hat(Box::new(PyScript::start(
            &script,
            &["--conf", conf.as_str(), "--enabled", "1"],
        )))
    }

    async fn next(&mut self) -> Seen {
        match self {
            Master::Ours(_, events) => {
                let e = events.next().await;
                (e.tail, e.payload, e.source_timestamp.is_some())
            }
            Master::Hat(script) => loop {
                let line = script.next().await;
                if let Some(json) = line.strip_prefix("EVENT ") {
                    let v: Value = serde_json::from_str(json).unwrap();
                    HatSchemas::get().check(v["type"].as_str().unwrap(), &v["payload"]);
                    return (
                        v["type"].as_str().unwrap().to_owned(),
                        v["payload"].clone(),
                        !v["source_timestamp"].is_null(),
                    );
                }
            },
        }
    }

    /// Events up to and including the first with `tail` and `payload` (any payload
    /// when `None`).
    async fn until(&mut self, tail: &str, payload: Option<Value>) -> Vec<Seen> {
        let mut seen = Vec::new();
        loop {
            let e = self.next().await;
            let done = e.0 == tail && payload.as_ref().is_none_or(|p| *p == e.1);
            seen.push(e);
            if done {
                return seen;
            }
        }
    }

    async fn event(&mut self, tail: &str, payload: Value) {
        match self {
            Master::Ours(device, _) => device.process_event(system_event(tail, payload)).await,
            // Its `OK` line is skipped by `next`, which reads only EVENT lines.
            Master::Hat(script) => script.send(&format!("event {tail} {payload}")).await,
        }
    }

    /// Closes the master; the events registered while closing, sorted.
    async fn close(self) -> Vec<Seen> {
        let mut seen = match self {
            Master::Ours(device, mut events) => {
                device.close().await;
                events
                    .drain()
                    .into_iter()
                    .map(|e| (e.tail, e.payload, e.source_timestamp.is_some()))
                    .collect::<Vec<_>>()
            }
            Master::Hat(mut script) => {
                script.send("close").await;
                let mut seen = Vec::new();
                loop {
                    let line = script.next().await;
                    if line == "OK close" {
                        break;
                    }
                    if let Some(json) = line.strip_prefix("EVENT ") {
                        let v: Value = serde_json::from_str(json).unwrap();
                        seen.push((
                            v["type"].as_str().unwrap().to_owned(),
                            v["payload"].clone(),
                            !v["source_timestamp"].is_null(),
                        ));
                    }
                }
                seen
            }
        };
        seen.sort_by(|a, b| a.0.cmp(&b.0));
        seen
    }
}

const MESSAGE: &str = "c.ASDU(type=c.AsduType.TIME_TAGGED_MESSAGE, cause=c.Cause.SPONTANEOUS, address=5, ios=[c.IO(address=io(160, 16), elements=[c.IoElement_TIME_TAGGED_MESSAGE(c.DoubleWithTimeValue(value=c.DoubleValue.ON, time=T4, supplementary=0))])])";

const MEASURANDS_1: &str = "c.ASDU(type=c.AsduType.MEASURANDS_1, cause=77, address=5, ios=[c.IO(address=io(128, 144), elements=[c.IoElement_MEASURANDS_1(c.MeasurandValue(overflow=i == 0, invalid=i == 3, value=-0.5 + i / 4)) for i in range(4)])])";

const TYPE_4: &str = "c.ASDU(type=c.AsduType.TIME_TAGGED_MEASURANDS_WITH_RELATIVE_TIME, cause=c.Cause.SPONTANEOUS, address=5, ios=[c.IO(address=io(128, 1), elements=[c.IoElement_TIME_TAGGED_MEASURANDS_WITH_RELATIVE_TIME(c.MeasurandWithRelativeTimeValue(value=1.5, relative_time=1, fault_number=2, time=T4))])])";

/// The scenario: connect, data, a type without an event, interrogation, commands,
/// close. Everything each master registered, step by step.
async fn scenario(label: &str, hat: bool) -> Vec<Seen> {
    let mut slave = Slave::start(label, &[1]).await;
    let mut master = if hat {
        Master::hat(&slave)
    } else {
        Master::ours(&slave).await
    };
    let mut seen = master
        .until("gateway/remote_device/1/status", Some(json!("CONNECTED")))
        .await;
    slave.connected(1).await;
    slave.command(&format!("send 1 [{MESSAGE}]")).await;
    seen.extend(
        master
            .until("gateway/remote_device/1/data/double/5/160/16", None)
            .await,
    );
    // Type 4 has no event; the measurands after it do.
    slave
        .command(&format!("send 1 [{TYPE_4}, {MEASURANDS_1}]"))
        .await;
    seen.extend(
        master
            .until("gateway/remote_device/1/data/m1_q/5/128/144", None)
            .await,
    );
    let gi = MESSAGE.replace("c.Cause.SPONTANEOUS", "c.Cause.GENERAL_INTERROGATION");
    slave.command(&format!("gi 1 [{gi}]")).await;
    master
        .event("system/remote_device/1/interrogation/5", json!(null))
        .await;
    seen.extend(
        master
            .until("gateway/remote_device/1/interrogation/5", None)
            .await,
    );
    for (session, reply, value) in [(1, "positive", "ON"), (2, "negative", "OFF")] {
        slave.command(&format!("reply {reply}")).await;
        master
            .event(
                "system/remote_device/1/command/5/160/16",
                json!({"session_id": session, "value": value}),
            )
            .await;
        seen.extend(
            master
                .until("gateway/remote_device/1/command/5/160/16", None)
                .await,
        );
    }
    seen.extend(master.close().await);
    seen
}

/// A remote device that stops answering and comes back, then is disabled and enabled.
async fn availability(label: &str, hat: bool) -> Vec<Seen> {
    let mut slave = Slave::start(label, &[1]).await;
    let mut master = if hat {
        Master::hat(&slave)
    } else {
        Master::ours(&slave).await
    };
    let mut seen = master
        .until("gateway/remote_device/1/status", Some(json!("CONNECTED")))
        .await;
    slave.connected(1).await;
    slave.command("mute 1").await;
    seen.extend(
        master
            .until("gateway/remote_device/1/status", Some(json!("CONNECTING")))
            .await,
    );
    slave.command("unmute 1").await;
    seen.extend(
        master
            .until("gateway/remote_device/1/status", Some(json!("CONNECTED")))
            .await,
    );
    master
        .event("system/remote_device/1/enable", json!(false))
        .await;
    seen.extend(
        master
            .until(
                "gateway/remote_device/1/status",
                Some(json!("DISCONNECTED")),
            )
            .await,
    );
    master
        .event("system/remote_device/1/enable", json!(true))
        .await;
    seen.extend(
        master
            .until("gateway/remote_device/1/status", Some(json!("CONNECTED")))
            .await,
    );
    seen.extend(master.close().await);
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_statuses_are_hat_gateways_statuses() {
    let hat = availability("iec103-avail-hat", true).await;
    let ours = availability("iec103-avail-ours", false).await;
    assert!(hat.len() >= 12, "{hat:#?}");
    assert_eq!(ours, hat);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_events_are_hat_gateways_events() {
    let hat = scenario("iec103-vs-hat", true).await;
    let ours = scenario("iec103-vs-ours", false).await;
    assert!(hat.len() >= 14, "{hat:#?}");
    assert_eq!(ours, hat);
}
