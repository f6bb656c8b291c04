//! The real `libiec101_slave.so` loaded through the host's plugin loader, driven
//! through the host's device traits against hat-drivers' master on a pty line; the
//! device's client is the SDK test kit's recording client as the host's event client.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::VecDeque;

use common::{check_slave_event, conf, point, prefix, scaled, system_event, Master};
use gateway_host::device::{DeviceContext, DeviceFactory};
use gateway_host::plugins::{PluginRegistry, PluginSearch};
use gateway_model::{Payload, QueryParams, RegisterEvent};
use gateway_plugin_api::sdk::testing::{self, Call, CallLog, RecordingBackend};
use gateway_test_support::pty::PtyPair;
use serde_json::{json, Value};

/// What the device registered, `(suffix, payload)` each checked against hat's schema;
/// fails on any call but the start-up query and plain registrations.
struct Registered {
    calls: CallLog,
    pending: VecDeque<(String, Value)>,
    schemas: common::hat_schemas::HatSchemas,
}

impl Registered {
    async fn expect_startup_query(&mut self) {
        let call = self.calls.next_call().await;
        let Call::Query(QueryParams::Latest(latest)) = call else {
            panic!("unexpected call {call:?}")
        };
        assert_eq!(
            latest.event_types.unwrap()[0].join("/"),
            "gateway/gw/iec101_slave/dev/system/data/*"
        );
    }

    async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return event;
            }
            let events = self.calls.next_register().await;
            for event in &events {
                let summary = self.checked(event);
                self.pending.push_back(summary);
            }
        }
    }

    fn checked(&self, event: &RegisterEvent) -> (String, Value) {
        assert!(
            matches!(event.payload, Some(Payload::Json(_))),
            "unexpected payload {event:?}"
        );
        let (tail, payload) = testing::summary(&prefix(), event);
        check_slave_event(&self.schemas, &tail, &payload);
        (tail, payload)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdylib_loads_through_the_host_loader_and_serves_a_real_master() {
    let dir = common::plugin_dir("load");
    let registry = PluginRegistry::new(PluginSearch::new(vec![dir.path().to_path_buf()], false));
    let plugin = registry.resolve("iec101_slave").unwrap();
    assert_eq!(plugin.device_type(), "iec101_slave");
    assert_eq!(
        plugin.json_schema_id(),
        Some("hat-gateway://iec101.yaml#/$defs/slave")
    );
    let schema: Value = serde_json::from_str(iec101_slave::JSON_SCHEMA).unwrap();
    assert_eq!(plugin.json_schema(), Some(&schema));

    let pty = PtyPair::start("iec101-slave-load");
    let (backend, calls) = RecordingBackend::new();
    backend.answer_queries_with(vec![system_event("system/data/scaled/1/1", scaled(4), 1)]);
    let mut registered = Registered {
        calls,
        pending: VecDeque::new(),
        schemas: common::hat_schemas::HatSchemas::load(),
    };
    let context = DeviceContext {
        prefix: prefix(),
        client: backend,
        span: tracing::info_span!("device", device = "dev"),
    };
    let entry = conf(
        &pty.a_str(),
        &[1],
        json!([point("SCALED", 1, 1, None, true)]),
    );
    let device = plugin.create(entry.clone(), context.clone()).await.unwrap();
    registered.expect_startup_query().await;
    assert_eq!(
        registered.next().await,
        ("gateway/connections".to_owned(), json!([]))
    );
    let mut master = Master::start(&pty, &[]).await;
    assert_eq!(
        registered.next().await,
        (
            "gateway/connections".to_owned(),
            json!([{"connection_id": 1, "address": 1}])
        )
    );
    master.script.line(|l| l == "CONNECT 1").await;
    master
        .command("send 1 [iec101.InterrogationMsg(is_test=False, originator_address=0, asdu_address=1, request=20, is_negative_confirm=False, cause=iec101.CommandReqCause.ACTIVATION)]")
        .await;
    let value = master.msg(1, "DataMsg").await;
    assert_eq!(value["data"]["value"]["value"], json!(4));
    device
        .process_event(system_event("system/data/scaled/1/1", scaled(5), 2))
        .await
        .unwrap();
    let value = master.msg(1, "DataMsg").await;
    assert_eq!(
        (
            value["data"]["value"]["value"].clone(),
            value["cause"].clone()
        ),
        (json!(5), json!("SPONTANEOUS"))
    );
    device.close().await;
    assert_eq!(
        registered.next().await,
        ("gateway/connections".to_owned(), json!([]))
    );

    // A bad entry fails `create` naming the JSON pointer.
    let mut bad = entry;
    bad["data"][0]["io_address"] = json!(1 << 24);
    let err = plugin.create(bad, context).await.err().unwrap();
    assert!(err.to_string().contains("/data/0/io_address"), "{err}");
}
