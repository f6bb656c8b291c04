//! The real `libiec101_master.so` loaded through the host's plugin loader, driven
//! through the host's device traits against a real hat-drivers outstation on a pty
//! line; the device's client is the SDK test kit's recording client as the host's
//! event client.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::VecDeque;

use common::{prefix, system_event, Outstation};
use gateway_host::device::{DeviceContext, DeviceFactory};
use gateway_host::plugins::{PluginRegistry, PluginSearch};
use gateway_model::{Payload, QueryParams, RegisterEvent};
use gateway_plugin_api::sdk::testing::{self, Call, CallLog, RecordingBackend};
use gateway_test_support::pty::PtyPair;
use serde_json::{json, Value};

/// What the device registered, one event at a time as `(suffix, JSON payload)`, read
/// from the kit's call log; fails on any call but the start-up query and plain
/// registrations, and on a non-JSON payload.
struct Registered {
    calls: CallLog,
    pending: VecDeque<(String, Value)>,
}

impl Registered {
    /// The device's first call: the start-up query of the remote devices' enables.
    async fn expect_enable_query(&mut self) {
        let call = self.calls.next_call().await;
        let Call::Query(QueryParams::Latest(latest)) = call else {
            panic!("unexpected call {call:?}")
        };
        let types: Vec<String> = latest
            .event_types
            .unwrap()
            .iter()
            .map(|t| t[4..].join("/"))
            .collect();
        assert_eq!(types, ["system/remote_device/1/enable"]);
    }

    async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return event;
            }
            let events = self.calls.next_register().await;
            self.pending.extend(events.iter().map(json_summary));
        }
    }

    fn drain(&mut self) -> Vec<(String, Value)> {
        let mut events: Vec<_> = self.pending.drain(..).collect();
        while let Some(call) = self.calls.try_next_call() {
            let Call::Register(batch) = call else {
                panic!("unexpected call {call:?}")
            };
            events.extend(batch.iter().map(json_summary));
        }
        events
    }
}

fn json_summary(event: &RegisterEvent) -> (String, Value) {
    assert!(
        matches!(event.payload, Some(Payload::Json(_))),
        "unexpected payload {event:?}"
    );
    testing::summary(&prefix(), event)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdylib_loads_through_the_host_loader_and_talks_to_a_real_outstation() {
    let dir = common::plugin_dir("load");
    let registry = PluginRegistry::new(PluginSearch::new(vec![dir.path().to_path_buf()], false));
    let plugin = registry.resolve("iec101_master").unwrap();
    assert_eq!(plugin.device_type(), "iec101_master");
    assert_eq!(
        plugin.json_schema_id(),
        Some("hat-gateway://iec101.yaml#/$defs/master")
    );
    let schema: Value = serde_json::from_str(iec101_master::JSON_SCHEMA).unwrap();
    assert_eq!(plugin.json_schema(), Some(&schema));

    let pty = PtyPair::start("iec101-master-load");
    let mut outstation = Outstation::start(&pty, &[]).await;
    let (backend, calls) = RecordingBackend::new();
    backend.answer_queries_with(vec![system_event(
        "system/remote_device/1/enable",
        json!(true),
    )]);
    let mut registered = Registered {
        calls,
        pending: VecDeque::new(),
    };
    let context = DeviceContext {
        prefix: prefix(),
        client: backend,
        span: tracing::info_span!("device", device = "dev"),
    };
    let conf = common::conf(&pty.a_str(), &[1]);
    let device = plugin.create(conf.clone(), context.clone()).await.unwrap();
    registered.expect_enable_query().await;
    for (tail, status) in [
        ("gateway/status", "CONNECTING"),
        ("gateway/status", "CONNECTED"),
        ("gateway/remote_device/1/status", "CONNECTING"),
        ("gateway/remote_device/1/status", "CONNECTED"),
    ] {
        assert_eq!(registered.next().await, (tail.to_owned(), json!(status)));
    }
    outstation.line(|l| l == "CONNECT 1").await;
    outstation
        .send(1, "[iec101.DataMsg(is_test=False, originator_address=0, asdu_address=1, io_address=2, data=iec101.ScaledData(value=iec101.ScaledValue(value=42), quality=MQ), time=None, cause=iec101.DataResCause.SPONTANEOUS)]")
        .await;
    let (tail, payload) = registered.next().await;
    assert_eq!(tail, "gateway/remote_device/1/data/scaled/1/2");
    assert_eq!(payload["data"]["value"], json!(42));
    device
        .process_event(system_event(
            "system/remote_device/1/command/single/1/5",
            json!({"is_test": false, "cause": "ACTIVATION", "command": {"value": "ON", "select": false, "qualifier": 0}}),
        ))
        .await
        .unwrap();
    let msg = outstation.msg(1, "CommandMsg").await;
    assert_eq!(msg["io_address"], json!(5));
    assert_eq!(
        registered.next().await.1["cause"],
        json!("ACTIVATION_CONFIRMATION")
    );
    device.close().await;
    // `close` returns once the device has ended, its last statuses registered.
    let tail = registered.drain();
    assert_eq!(
        tail[tail.len() - 2..],
        [
            (
                "gateway/remote_device/1/status".to_owned(),
                json!("DISCONNECTED")
            ),
            ("gateway/status".to_owned(), json!("DISCONNECTED")),
        ]
    );
    device.closed().await;

    // A bad entry fails `create` naming the JSON pointer.
    let mut bad = conf;
    bad["remote_devices"][0]["address"] = json!(255);
    let err = plugin.create(bad, context).await.err().unwrap();
    assert!(
        err.to_string().contains("/remote_devices/0/address"),
        "{err}"
    );
}
