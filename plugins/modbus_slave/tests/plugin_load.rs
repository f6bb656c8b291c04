//! The real `libmodbus_slave.so` loaded through the host's plugin loader, driven
//! through the host's device traits, serving pymodbus's client: start-up values from
//! the host client's query, a data event, a write round trip, a bad entry refused.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{
    all_points, data_event, prefix, tcp_conf, venv_python, write_result, Client, HatSchemas, WAIT,
};
use futures::future::BoxFuture;
use gateway_host::device::{ClientError, DeviceClient, DeviceContext, DeviceFactory};
use gateway_host::plugins::{PluginRegistry, PluginSearch};
use gateway_model::{Event, Payload, QueryParams, QueryResult, RegisterEvent};
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// Host-side client: answers the start-up query with one value, forwards
/// registrations to the test (checked against hat's schemas).
struct HostClient {
    registered: mpsc::UnboundedSender<(String, Value)>,
}

impl DeviceClient for HostClient {
    fn register(&self, events: Vec<RegisterEvent>) -> BoxFuture<'_, Result<(), ClientError>> {
        for event in events {
            let payload = match event.payload {
                Some(Payload::Json(text)) => text.value(),
                other => panic!("unexpected payload {other:?}"),
            };
            let tail = event.event_type[4..].join("/");
            HatSchemas::get().check(&tail, &payload);
            let _ = self.registered.send((tail, payload));
        }
        Box::pin(async { Ok(()) })
    }

    fn register_with_response(
        &self,
        _: Vec<RegisterEvent>,
    ) -> BoxFuture<'_, Result<Option<Vec<Event>>, ClientError>> {
        Box::pin(async { Ok(None) })
    }

    fn query(&self, params: QueryParams) -> BoxFuture<'_, Result<QueryResult, ClientError>> {
        let QueryParams::Latest(latest) = params else {
            panic!("unexpected query {params:?}")
        };
        let types = latest.event_types.unwrap();
        assert_eq!(
            types[0].join("/"),
            "gateway/gw/modbus_slave/dev/system/data/*"
        );
        Box::pin(async move {
            Ok(QueryResult {
                events: vec![data_event("hr", 0x1234)],
                more_follows: false,
            })
        })
    }
}

async fn next(rx: &mut mpsc::UnboundedReceiver<(String, Value)>) -> (String, Value) {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("no event")
        .unwrap()
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

    let (tx, mut rx) = mpsc::unbounded_channel();
    let context = DeviceContext {
        prefix: prefix(),
        client: Arc::new(HostClient { registered: tx }),
        span: tracing::info_span!("device", device = "dev"),
    };
    // The port is only known through the configuration here (the core's local_addr
    // is not visible through the plugin boundary).
    let port = gateway_test_support::free_port();
    let mut entry = tcp_conf("TCP", all_points());
    entry["transport"]["local_port"] = json!(port);
    let device = plugin.create(entry.clone(), context.clone()).await.unwrap();
    assert_eq!(
        next(&mut rx).await,
        ("gateway/connections".to_owned(), json!([]))
    );

    let mut client = Client::tcp(port, "socket").await;
    let (tail, payload) = next(&mut rx).await;
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
    let (tail, write) = next(&mut rx).await;
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
        next(&mut rx).await,
        ("gateway/connections".to_owned(), json!([]))
    );
    device.close().await;

    // A duplicate data name fails `create` with an error naming the pointer.
    entry["data"][1]["name"] = json!("coil");
    let err = plugin.create(entry, context).await.err().unwrap();
    assert!(err.to_string().contains("/data/1/name"), "{err}");
}
