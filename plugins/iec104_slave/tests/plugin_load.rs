//! The real `libiec104_slave.so` loaded through the host's plugin loader, driven
//! through the host's device traits against a real hat-drivers master.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{conf, data_event, point, prefix, single, venv_python, HatSchemas, Master, WAIT};
use futures::future::BoxFuture;
use gateway_host::device::{ClientError, DeviceClient, DeviceContext, DeviceFactory};
use gateway_host::plugins::{PluginRegistry, PluginSearch};
use gateway_model::{Event, Payload, QueryParams, QueryResult, RegisterEvent};
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// Host-side client: answers the start-up query with one value, forwards
/// registrations to the test (checked against hat's schemas).
struct Client {
    registered: mpsc::UnboundedSender<(String, Value)>,
}

impl DeviceClient for Client {
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
            "gateway/gw/iec104_slave/dev/system/data/*"
        );
        let value = data_event("single", 1, 7, single("ON"), None);
        Box::pin(async move {
            Ok(QueryResult {
                events: vec![value],
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
    let plugin = registry.resolve("iec104_slave").unwrap();
    assert_eq!(plugin.device_type(), "iec104_slave");
    assert_eq!(
        plugin.json_schema_id(),
        Some("hat-gateway://iec104.yaml#/$defs/slave")
    );
    let schema: Value = serde_json::from_str(iec104_slave::JSON_SCHEMA).unwrap();
    assert_eq!(plugin.json_schema(), Some(&schema));

    let (tx, mut rx) = mpsc::unbounded_channel();
    let context = DeviceContext {
        prefix: prefix(),
        client: Arc::new(Client { registered: tx }),
        span: tracing::info_span!("device", device = "dev"),
    };
    // The port is only known through the configuration here (the core's local_addr
    // is not visible through the plugin boundary).
    let port = gateway_test_support::free_port();
    let mut entry = conf(json!([point("SINGLE", 1, 7, None)]), json!([]));
    entry["local_port"] = json!(port);
    let device = plugin.create(entry.clone(), context.clone()).await.unwrap();
    assert_eq!(
        next(&mut rx).await,
        ("gateway/connections".to_owned(), json!([]))
    );

    let mut master = Master::connected(port).await;
    let (tail, payload) = next(&mut rx).await;
    assert_eq!(tail, "gateway/connections");
    assert_eq!(payload[0]["remote"]["port"], master.local_port);
    let msgs = master.interrogate("gi", 1).await;
    let data: Vec<&Value> = msgs.iter().filter(|m| m["_type"] == "DataMsg").collect();
    assert_eq!(data.len(), 1, "{msgs:?}");
    assert_eq!(data[0]["data"]["value"], "ON");

    // A data event through the host reaches the master; a command comes back.
    device
        .process_event(data_event("single", 1, 7, single("OFF"), None))
        .await
        .unwrap();
    let msg = master.msg().await;
    assert_eq!(
        (msg["io_address"].clone(), msg["data"]["value"].clone()),
        (json!(7), json!("OFF"))
    );
    master
        .command(r#"command {"type": "double", "value": "ON", "asdu_address": 1, "io_address": 8}"#)
        .await;
    let (tail, payload) = next(&mut rx).await;
    assert_eq!(tail, "gateway/command/double/1/8");
    assert_eq!(payload["connection_id"], 1);

    device.close().await;
    assert_eq!(
        next(&mut rx).await,
        ("gateway/connections".to_owned(), json!([]))
    );
    master.closed().await;

    // A buffer that does not exist fails `create` with an error naming the pointer.
    entry["data"][0]["buffer"] = json!("missing");
    let err = plugin.create(entry, context).await.err().unwrap();
    assert!(err.to_string().contains("/data/0/buffer"), "{err}");
}
