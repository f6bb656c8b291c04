//! The real `libmodbus_master.so` loaded through the host's plugin loader, driven
//! through the host's device traits against a real pymodbus slave.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::sync::Arc;

use common::{point, prefix, remote, system_event, venv_python, Slave, WAIT};
use futures::future::BoxFuture;
use gateway_host::device::{ClientError, DeviceClient, DeviceContext, DeviceFactory};
use gateway_host::plugins::{PluginRegistry, PluginSearch};
use gateway_model::{Event, Payload, QueryParams, QueryResult, RegisterEvent};
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// Host-side client: answers the enable query with device 1 enabled, forwards
/// registrations to the test.
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
        let QueryParams::Latest(latest) = params else {
            panic!("unexpected query {params:?}")
        };
        let types = latest.event_types.unwrap();
        assert_eq!(
            types[0].join("/"),
            "gateway/gw/modbus_master/dev/system/remote_device/?/enable"
        );
        let enabled = system_event("system/remote_device/1/enable", json!(true));
        Box::pin(async move {
            Ok(QueryResult {
                events: vec![enabled],
                more_follows: false,
            })
        })
    }
}

/// The cdylib cargo built next to this test (`target/<profile>/libmodbus_master.so`),
/// copied into a private 0755 plugin directory as the loader requires.
fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let library = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("libmodbus_master.so");
    assert!(
        library.is_file(),
        "{} missing: cargo build -p modbus_master",
        library.display()
    );
    let dir = std::env::temp_dir().join(format!("modbus-master-plugin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let target = dir.join("libmodbus_master.so");
    std::fs::copy(&library, &target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

async fn next(rx: &mut mpsc::UnboundedReceiver<(String, Value)>) -> (String, Value) {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("no event")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdylib_loads_through_the_host_loader_and_polls_a_real_slave() {
    venv_python();
    let dir = plugin_dir();
    let registry = PluginRegistry::new(PluginSearch::new(vec![dir.clone()], false));
    let plugin = registry.resolve("modbus_master").unwrap();
    assert_eq!(plugin.device_type(), "modbus_master");
    assert_eq!(
        plugin.json_schema_id(),
        Some("hat-gateway://modbus.yaml#/$defs/master")
    );
    let schema: Value = serde_json::from_str(modbus_master::JSON_SCHEMA).unwrap();
    assert_eq!(plugin.json_schema(), Some(&schema));

    let mut slave = Slave::tcp().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let context = DeviceContext {
        prefix: prefix(),
        client: Arc::new(Client { registered: tx }),
        span: tracing::info_span!("device", device = "dev"),
    };
    let data = json!([
        point("x", "HOLDING_REGISTER", json!(0.2), 10, 8, 32),
        point("w", "HOLDING_REGISTER", json!(null), 70, 0, 16),
    ]);
    let conf = common::conf(slave.port, json!([remote(1, data)]));
    let device = plugin.create(conf.clone(), context.clone()).await.unwrap();
    for expected in [
        ("gateway/status", json!("CONNECTING")),
        ("gateway/status", json!("CONNECTED")),
        ("gateway/remote_device/1/status", json!("CONNECTING")),
        ("gateway/remote_device/1/status", json!("CONNECTED")),
        (
            "gateway/remote_device/1/read/x",
            json!({"result": "SUCCESS", "value": 0x3456_789A_u32, "cause": "INTERROGATE"}),
        ),
    ] {
        assert_eq!(next(&mut rx).await, (expected.0.to_owned(), expected.1));
    }
    let write = system_event(
        "system/remote_device/1/write/w",
        json!({"request_id": 5, "value": 4321}),
    );
    device.process_event(write).await.unwrap();
    loop {
        let (t, v) = next(&mut rx).await;
        if t == "gateway/remote_device/1/write/w" {
            assert_eq!(v, json!({"request_id": 5, "result": "SUCCESS"}));
            break;
        }
    }
    assert_eq!(slave.holding(70, 1).await, [4321]);
    device.close().await;
    let mut tail = Vec::new();
    while let Ok(Some(event)) =
        tokio::time::timeout(std::time::Duration::from_millis(300), rx.recv()).await
    {
        tail.push(event);
    }
    assert_eq!(
        tail,
        vec![
            (
                "gateway/remote_device/1/status".to_owned(),
                json!("DISABLED")
            ),
            ("gateway/status".to_owned(), json!("DISCONNECTED")),
        ]
    );
    device.closed().await;

    // A duplicate device id fails `create` with an error naming the JSON pointer.
    let mut duplicate = conf;
    duplicate["remote_devices"] = json!([
        duplicate["remote_devices"][0],
        duplicate["remote_devices"][0]
    ]);
    let err = plugin.create(duplicate, context).await.err().unwrap();
    assert!(
        err.to_string().contains("/remote_devices/1/device_id"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
