//! The real `libmodbus_slave.so` loaded through the host's plugin loader, driven
//! through the host's device traits, serving pymodbus's client: start-up values from
//! the host client's query, a data event, a write round trip, a bad entry refused. The
//! device's client is the SDK test kit's recording client behind the host's client
//! trait (the SDK's recording client is the host's client contract too).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::VecDeque;

use common::{
    all_points, data_event, prefix, tcp_conf, venv_python, write_result, Client, HatSchemas,
};
use gateway_host::device::{DeviceContext, DeviceFactory};
use gateway_host::plugins::{PluginRegistry, PluginSearch};
use gateway_model::{Payload, QueryParams, RegisterEvent};
use gateway_plugin_api::sdk::testing::{self, Call, CallLog, RecordingBackend};
use serde_json::{json, Value};

/// What the device registered, one event at a time as `(suffix after the prefix, JSON
/// payload)`, each checked against hat's schemas, read from the kit's call log. A
/// local adapter: the kit's `CallLog::next_event` skips queries and checks nothing,
/// and this test must fail on a query after the start-up one, on a registration with
/// response, on a non-JSON payload and on a payload hat would not accept.
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

    /// The device's first call: the start-up query of the latest `system/data/*`.
    async fn expect_startup_query(&mut self) {
        let call = self.calls.next_call().await;
        let Call::Query(QueryParams::Latest(latest)) = call else {
            panic!("unexpected call {call:?}")
        };
        let types = latest.event_types.unwrap();
        assert_eq!(
            types[0].join("/"),
            "gateway/gw/modbus_slave/dev/system/data/*"
        );
    }

    /// The next registered event (waits up to the kit's `WAIT_LIMIT`).
    async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return event;
            }
            // Panics on a query or a registration with response.
            let events = self.calls.next_register().await;
            self.pending.extend(events.iter().map(checked));
        }
    }

    /// Checks every event registered so far and not read yet, without waiting.
    fn check_rest(&mut self) {
        self.pending.clear();
        while let Some(call) = self.calls.try_next_call() {
            let Call::Register(batch) = call else {
                panic!("unexpected call {call:?}")
            };
            for event in &batch {
                checked(event);
            }
        }
    }
}

/// The event as `(suffix, payload)`, its payload checked against hat's schemas.
fn checked(event: &RegisterEvent) -> (String, Value) {
    assert!(
        matches!(event.payload, Some(Payload::Json(_))),
        "unexpected payload {event:?}"
    );
    let (tail, payload) = testing::summary(&prefix(), event);
    HatSchemas::get().check(&tail, &payload);
    (tail, payload)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdylib_loads_through_the_host_loader_and_serves_a_real_master() {
    venv_python();
    let dir = common::plugin_dir("load");
    let registry = PluginRegistry::new(PluginSearch::new(vec![dir.path().to_path_buf()], false));
    let plugin = registry.resolve("modbus_slave").unwrap();
    assert_eq!(plugin.device_type(), "modbus_slave");
    assert_eq!(
        plugin.json_schema_id(),
        Some("hat-gateway://modbus.yaml#/$defs/slave")
    );
    let schema: Value = serde_json::from_str(modbus_slave::JSON_SCHEMA).unwrap();
    assert_eq!(plugin.json_schema(), Some(&schema));

    // The start-up query of the current values is answered with one value.
    let (backend, calls) = RecordingBackend::new();
    backend.answer_queries_with(vec![data_event("hr", 0x1234)]);
    let mut registered = Registered::new(calls);
    let context = DeviceContext {
        prefix: prefix(),
        client: backend,
        span: tracing::info_span!("device", device = "dev"),
    };
    // The port is only known through the configuration here (the core's local_addr
    // is not visible through the plugin boundary).
    let port = gateway_test_support::free_port();
    let mut entry = tcp_conf("TCP", all_points());
    entry["transport"]["local_port"] = json!(port);
    let device = plugin.create(entry.clone(), context.clone()).await.unwrap();
    registered.expect_startup_query().await;
    assert_eq!(
        registered.next().await,
        ("gateway/connections".to_owned(), json!([]))
    );

    let mut client = Client::tcp(port, "socket").await;
    let (tail, payload) = registered.next().await;
    assert_eq!(tail, "gateway/connections");
    assert_eq!(payload[0]["local"]["port"], port);
    let read = json!({"address": 0, "count": 1, "slave": 1});
    let r = client.call("read_holding_registers", read.clone()).await;
    assert_eq!(r["registers"], json!([0x1234]), "{r}");

    device.process_event(data_event("hr", 99)).await.unwrap();
    let r = client.call("read_holding_registers", read).await;
    assert_eq!(r["registers"], json!([99]), "{r}");

    client
        .send(
            "write_register",
            json!({"address": 0, "value": 5, "slave": 1}),
        )
        .await;
    let (tail, write) = registered.next().await;
    assert_eq!(tail, "gateway/write");
    assert_eq!(write["data"], json!([{"name": "hr", "value": 5}]));
    device
        .process_event(write_result(&write["request_id"], true))
        .await
        .unwrap();
    let r = client.result().await.unwrap();
    assert_eq!(r["error"], false, "{r}");

    drop(client);
    assert_eq!(
        registered.next().await,
        ("gateway/connections".to_owned(), json!([]))
    );
    device.close().await;
    registered.check_rest();

    // A duplicate data name fails `create` with an error naming the pointer.
    entry["data"][1]["name"] = json!("coil");
    let err = plugin.create(entry, context).await.err().unwrap();
    assert!(err.to_string().contains("/data/1/name"), "{err}");
}
