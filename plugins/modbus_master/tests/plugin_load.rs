//! The real `libmodbus_master.so` loaded through the host's plugin loader, driven
//! through the host's device traits against a real pymodbus slave; the device's client
//! is the SDK test kit's recording client behind the host's client trait
//! (the SDK's recording client is the host's client contract too).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::VecDeque;
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;

use common::{point, prefix, remote, system_event, venv_python, Slave};
use gateway_host::device::{DeviceContext, DeviceFactory};
use gateway_host::plugins::{PluginRegistry, PluginSearch};
use gateway_model::{Payload, QueryParams, RegisterEvent};
use gateway_plugin_api::sdk::testing::{self, Call, CallLog, RecordingBackend};
use serde_json::{json, Value};

/// What the device registered, one event at a time as `(suffix after the prefix, JSON
/// payload)`, read from the kit's call log. A local adapter: the kit's
/// `CallLog::next_event` skips queries, and this test must fail on a query after the
/// start-up one, on a registration with response and on a non-JSON payload.
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

    /// The device's first call: the start-up query of the latest remote device enables.
    async fn expect_enable_query(&mut self) {
        let call = self.calls.next_call().await;
        let Call::Query(QueryParams::Latest(latest)) = call else {
            panic!("unexpected call {call:?}")
        };
        let types = latest.event_types.unwrap();
        assert_eq!(
            types[0].join("/"),
            "gateway/gw/modbus_master/dev/system/remote_device/?/enable"
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
            self.pending.extend(events.iter().map(json_summary));
        }
    }

    /// Every event registered so far and not read yet, without waiting.
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

/// The event as `(suffix, payload)`; panics on a payload that is not JSON.
fn json_summary(event: &RegisterEvent) -> (String, Value) {
    assert!(
        matches!(event.payload, Some(Payload::Json(_))),
        "unexpected payload {event:?}"
    );
    testing::summary(&prefix(), event)
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
    // The start-up query of the enables is answered with device 1 enabled.
    let (backend, calls) = RecordingBackend::new();
    backend.answer_queries_with(vec![system_event(
        "system/remote_device/1/enable",
        json!(true),
    )]);
    let mut registered = Registered::new(calls);
    let context = DeviceContext {
        prefix: prefix(),
        client: backend,
        span: tracing::info_span!("device", device = "dev"),
    };
    let data = json!([
        point("x", "HOLDING_REGISTER", json!(0.2), 10, 8, 32),
        point("w", "HOLDING_REGISTER", json!(null), 70, 0, 16),
    ]);
    let conf = common::conf(slave.port, json!([remote(1, data)]));
    let device = plugin.create(conf.clone(), context.clone()).await.unwrap();
    registered.expect_enable_query().await;
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
        assert_eq!(registered.next().await, (expected.0.to_owned(), expected.1));
    }
    let write = system_event(
        "system/remote_device/1/write/w",
        json!({"request_id": 5, "value": 4321}),
    );
    device.process_event(write).await.unwrap();
    loop {
        let (t, v) = registered.next().await;
        if t == "gateway/remote_device/1/write/w" {
            assert_eq!(v, json!({"request_id": 5, "result": "SUCCESS"}));
            break;
        }
    }
    assert_eq!(slave.holding(70, 1).await, [4321]);
    device.close().await;
    // `close` returns once the device has ended, its last statuses registered.
    let tail = registered.drain();
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
