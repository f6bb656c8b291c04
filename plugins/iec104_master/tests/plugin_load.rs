//! The real `libiec104_master.so` loaded through the host's plugin loader, driven
//! through the host's device traits against a real hat-drivers outstation; the device's
//! client is the SDK test kit's recording client behind the host's client trait
//! (the SDK's recording client is the host's client contract too).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::VecDeque;

use common::{prefix, system_event, Outstation};
use gateway_host::device::{DeviceContext, DeviceFactory};
use gateway_host::plugins::{PluginRegistry, PluginSearch};
use gateway_model::{Payload, RegisterEvent};
use gateway_plugin_api::sdk::testing::{self, Call, CallLog, RecordingBackend};
use serde_json::{json, Value};

/// What the device registered, one event at a time as `(suffix after the prefix, JSON
/// payload)`, read from the kit's call log. A local adapter: the kit's
/// `CallLog::next_event` skips queries, and this test must fail on any call but a
/// plain registration (the master queries nothing) and on a non-JSON payload.
struct Registered {
    calls: CallLog,
    /// Events of a registration call read but not returned yet.
    pending: VecDeque<(String, Value)>,
}

impl Registered {
    fn new(calls: CallLog) -> Self {
        Self {
            calls,
            pending: VecDeque::new(),
        }
    }

    /// The next registered event (waits up to the kit's `WAIT_LIMIT`).
    async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return event;
            }
            // Panics on a query or a registration with response.
            let events = self.calls.next_register().await;
            self.pending.extend(events.iter().map(json_summary));
        }
    }

    /// Every event registered so far and not read yet, without waiting.
    fn drain(&mut self) -> Vec<(String, Value)> {
        let mut events: Vec<_> = self.pending.drain(..).collect();
        while let Some(call) = self.calls.try_next_call() {
            let Call::Register(batch) = call else {
                panic!("the master makes no such call: {call:?}")
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
    let plugin = registry.resolve("iec104_master").unwrap();
    assert_eq!(plugin.device_type(), "iec104_master");
    assert_eq!(
        plugin.json_schema_id(),
        Some("hat-gateway://iec104.yaml#/$defs/master")
    );
    let schema: Value = serde_json::from_str(iec104_master::JSON_SCHEMA).unwrap();
    assert_eq!(plugin.json_schema(), Some(&schema));

    let mut outstation = Outstation::start().await;
    let (backend, calls) = RecordingBackend::new();
    let mut registered = Registered::new(calls);
    let context = DeviceContext {
        prefix: prefix(),
        client: backend,
        span: tracing::info_span!("device", device = "dev"),
    };
    let conf = common::conf(&[outstation.port]);
    let device = plugin.create(conf.clone(), context.clone()).await.unwrap();
    assert_eq!(
        registered.next().await,
        ("gateway/status".into(), json!("CONNECTING"))
    );
    assert_eq!(
        registered.next().await,
        ("gateway/status".into(), json!("CONNECTED"))
    );
    outstation.line(|l| l == "CONNECT").await;
    outstation
        .send("[iec104.DataMsg(is_test=False, originator_address=0, asdu_address=1, io_address=2, data=iec104.ScaledData(value=iec104.ScaledValue(value=42), quality=MQ), time=None, cause=iec104.DataResCause.SPONTANEOUS)]")
        .await;
    let (tail, payload) = registered.next().await;
    assert_eq!(tail, "gateway/data/scaled/1/2");
    assert_eq!(payload["data"]["value"], json!(42));
    device
        .process_event(system_event(
            "system/command/single/1/5",
            json!({"is_test": false, "cause": "ACTIVATION", "command": {"value": "ON", "select": false, "qualifier": 0}}),
            None,
        ))
        .await
        .unwrap();
    let msg = outstation.msg("CommandMsg").await;
    assert_eq!(msg["io_address"], json!(5));
    assert_eq!(
        registered.next().await.1["cause"],
        json!("ACTIVATION_CONFIRMATION")
    );
    device.close().await;
    // `close` returns once the device has ended, its last status registered.
    let tail = registered.drain();
    assert_eq!(
        tail.last(),
        Some(&("gateway/status".to_owned(), json!("DISCONNECTED")))
    );
    device.closed().await;

    // A bad entry fails `create` naming the JSON pointer.
    let mut bad = conf;
    bad["send_window_size"] = json!(0);
    let err = plugin.create(bad, context).await.err().unwrap();
    assert!(err.to_string().contains("/send_window_size"), "{err}");
}
