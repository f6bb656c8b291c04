//! The real `libiec104_master.so` loaded through the host's plugin loader, driven
//! through the host's device traits against a real hat-drivers outstation.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{prefix, system_event, Outstation, WAIT};
use futures::future::BoxFuture;
use gateway_host::device::{ClientError, DeviceClient, DeviceContext, DeviceFactory};
use gateway_host::plugins::{PluginRegistry, PluginSearch};
use gateway_model::{Event, Payload, QueryParams, QueryResult, RegisterEvent};
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// Host-side client forwarding registrations to the test.
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
            let _ = self
                .registered
                .send((event.event_type[4..].join("/"), payload));
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
        panic!("the master queries nothing: {params:?}")
    }
}

async fn next(rx: &mut mpsc::UnboundedReceiver<(String, Value)>) -> (String, Value) {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("no event")
        .unwrap()
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
    let (tx, mut rx) = mpsc::unbounded_channel();
    let context = DeviceContext {
        prefix: prefix(),
        client: Arc::new(Client { registered: tx }),
        span: tracing::info_span!("device", device = "dev"),
    };
    let conf = common::conf(&[outstation.port]);
    let device = plugin.create(conf.clone(), context.clone()).await.unwrap();
    assert_eq!(
        next(&mut rx).await,
        ("gateway/status".into(), json!("CONNECTING"))
    );
    assert_eq!(
        next(&mut rx).await,
        ("gateway/status".into(), json!("CONNECTED"))
    );
    outstation.line(|l| l == "CONNECT").await;
    outstation
        .send("[iec104.DataMsg(is_test=False, originator_address=0, asdu_address=1, io_address=2, data=iec104.ScaledData(value=iec104.ScaledValue(value=42), quality=MQ), time=None, cause=iec104.DataResCause.SPONTANEOUS)]")
        .await;
    let (tail, payload) = next(&mut rx).await;
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
        next(&mut rx).await.1["cause"],
        json!("ACTIVATION_CONFIRMATION")
    );
    device.close().await;
    let mut tail = Vec::new();
    while let Ok(Some(event)) =
        tokio::time::timeout(std::time::Duration::from_millis(300), rx.recv()).await
    {
        tail.push(event);
    }
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
