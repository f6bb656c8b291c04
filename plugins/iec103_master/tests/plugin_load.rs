//! The real `libiec103_master.so` loaded through the host's plugin loader, driven
//! through the host's device traits against the hat-drivers based 103 slave on a pty;
//! the device's client is the SDK test kit's recording client.
#![allow(clippy::unwrap_used)]

mod common;

use common::{prefix, Slave};
use gateway_host::device::{DeviceContext, DeviceFactory};
use gateway_host::plugins::{PluginRegistry, PluginSearch};
use gateway_model::{Payload, QueryParams};
use gateway_plugin_api::sdk::testing::{self, Call, CallLog, RecordingBackend};
use serde_json::{json, Value};

/// The next registered event as `(tail, payload)`, checked against hat's schema.
async fn next(calls: &mut CallLog) -> (String, Value) {
    let event = calls.next_event().await;
    assert!(matches!(event.payload, Some(Payload::Json(_))));
    let (tail, payload) = testing::summary(&prefix(), &event);
    common::HatSchemas::get().check(&tail, &payload);
    (tail, payload)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdylib_loads_through_the_host_loader_and_talks_to_a_real_slave() {
    let dir = common::plugin_dir("load");
    let registry = PluginRegistry::new(PluginSearch::new(vec![dir.path().to_path_buf()], false));
    let plugin = registry.resolve("iec103_master").unwrap();
    assert_eq!(plugin.device_type(), "iec103_master");
    assert_eq!(
        plugin.json_schema_id(),
        Some("hat-gateway://iec103.yaml#/$defs/master")
    );
    let schema: Value = serde_json::from_str(iec103_master::JSON_SCHEMA).unwrap();
    assert_eq!(plugin.json_schema(), Some(&schema));

    let mut slave = Slave::start("iec103-load", &[1]).await;
    let (backend, mut calls) = RecordingBackend::new();
    // The start-up query of the enables is answered with device 1 enabled.
    backend.answer_queries_with(vec![testing::event(
        &prefix(),
        "system/remote_device/1/enable",
        json!(true),
    )]);
    let context = DeviceContext {
        prefix: prefix(),
        client: backend,
        span: tracing::info_span!("device", device = "dev"),
    };
    let conf = common::config(&slave.port(), &[1], None);
    let device = plugin.create(conf.clone(), context.clone()).await.unwrap();
    let Call::Query(QueryParams::Latest(latest)) = calls.next_call().await else {
        panic!("the first call is the enable query")
    };
    assert_eq!(
        latest.event_types.unwrap()[0].join("/"),
        "gateway/dev/system/remote_device/1/enable"
    );
    for expected in [
        ("gateway/status", json!("CONNECTING")),
        ("gateway/status", json!("CONNECTED")),
        ("gateway/remote_device/1/status", json!("CONNECTING")),
        ("gateway/remote_device/1/status", json!("CONNECTED")),
    ] {
        assert_eq!(next(&mut calls).await, (expected.0.to_owned(), expected.1));
    }
    slave.connected(1).await;
    let hat = slave
        .command("send 1 [c.ASDU(type=c.AsduType.MEASURANDS_1, cause=c.Cause.CYCLIC, address=5, ios=[c.IO(address=io(128, 144), elements=[c.IoElement_MEASURANDS_1(c.MeasurandValue(overflow=False, invalid=False, value=0.25))])])]")
        .await;
    assert_eq!(
        next(&mut calls).await,
        (hat[0].tail.clone(), hat[0].payload.clone())
    );
    device
        .process_event(testing::event(
            &prefix(),
            "system/remote_device/1/command/5/160/16",
            json!({"session_id": "s1", "value": "ON"}),
        ))
        .await
        .unwrap();
    assert_eq!(
        next(&mut calls).await,
        (
            "gateway/remote_device/1/command/5/160/16".to_owned(),
            json!({"success": true, "session_id": "s1"})
        )
    );
    device.close().await;
    let mut tail = Vec::new();
    while let Some(call) = calls.try_next_call() {
        let Call::Register(batch) = call else {
            panic!("unexpected call {call:?}")
        };
        tail.extend(batch.iter().map(|e| testing::summary(&prefix(), e)));
    }
    // The last two: the remote device's and the device's DISCONNECTED (on a loaded
    // machine a slow answer may have cost the remote device a reconnection before).
    assert_eq!(
        tail[tail.len().saturating_sub(2)..],
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
