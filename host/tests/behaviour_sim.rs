//! The real `sim` cdylib, loaded by the real plugin loader, run by the runner on the
//! embedded event server: enable -> running true + data events, a write round trip
//! through `process_event`, shutdown -> running false. Needs the plugin built
//! (`cargo build --workspace --all-targets`, as scripts/test.sh does).
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;

use common::{Observer, WAIT};
use gateway_host::embedded::{EmbeddedConfig, EmbeddedServer};
use gateway_host::plugins::{PluginRegistry, PluginSearch};
use gateway_host::runner;
use gateway_host::spec::{DeviceSpec, EventServerSpec, GatewaySpec, RestartPolicy};
use gateway_model::{event_type_from_str as t, RegisterEvent};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// `libsim.so` copied into a private 0755 directory (the loader checks permissions).
fn sim_library() -> (PathBuf, PathBuf) {
    let exe = std::env::current_exe().unwrap();
    let built = exe.parent().unwrap().parent().unwrap().join("libsim.so");
    assert!(
        built.is_file(),
        "{} is missing: build the plugins first with `cargo build --workspace --all-targets`",
        built.display()
    );
    let dir = std::env::temp_dir().join(format!("gateway-host-sim-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.join("libsim.so");
    std::fs::copy(&built, &path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    (dir, path)
}

fn payload_of(events: &[gateway_model::Event], ty: &str) -> Option<serde_json::Value> {
    events
        .iter()
        .rev()
        .find(|e| e.event_type == t(ty))
        .and_then(|e| e.payload.as_ref())
        .and_then(|p| p.json_value())
}

#[tokio::test]
async fn sim_plugin_runs_through_the_engine_on_the_embedded_server() {
    let (dir, path) = sim_library();
    let registry = PluginRegistry::new(PluginSearch::new(vec![dir.clone()], false));
    let plugin = registry.load_file(&path).unwrap();
    let spec = GatewaySpec {
        name: "G".into(),
        event_server: EventServerSpec::Embedded {
            listen: None,
            enable_devices: true,
        },
        require_operational: false,
        event_types: gateway_host::spec::EventTypes::Seeds,
        devices: vec![DeviceSpec {
            device_type: "sim".into(),
            name: "s1".into(),
            conf: json!({"module": "sim", "name": "s1", "points": ["p0"]}),
            factory: plugin,
            restart: RestartPolicy::Never,
            event_queue_size: 1024,
            create_timeout: gateway_host::spec::DEFAULT_CREATE_TIMEOUT,
            close_timeout: gateway_host::spec::DEFAULT_CLOSE_TIMEOUT,
        }],
    };
    let server = EmbeddedServer::new(EmbeddedConfig::default());
    let mut observer = Observer::new(&server).await;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let (server, shutdown) = (server.clone(), shutdown.clone());
        async move { runner::run_embedded(&spec, server, shutdown).await }
    });
    let running = "gateway/G/sim/s1/gateway/running";
    observer
        .wait_for("sim running", |e| {
            payload_of(e, running) == Some(json!(true))
        })
        .await;
    observer
        .wait_for("initial data", |e| {
            payload_of(e, "gateway/G/sim/s1/gateway/data/p0").is_some()
        })
        .await;
    server
        .register(vec![RegisterEvent::json(
            t("gateway/G/sim/s1/system/write/p0"),
            json!({"value": 42, "id": 7}),
        )])
        .await
        .unwrap();
    observer
        .wait_for("write result", |e| {
            payload_of(e, "gateway/G/sim/s1/gateway/write/p0").is_some()
        })
        .await;
    assert_eq!(
        payload_of(&observer.events, "gateway/G/sim/s1/gateway/write/p0"),
        Some(json!({"id": 7, "success": true}))
    );
    assert_eq!(
        payload_of(&observer.events, "gateway/G/sim/s1/gateway/data/p0"),
        Some(json!({"value": 42}))
    );
    shutdown.cancel();
    tokio::time::timeout(WAIT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    observer.drain();
    assert_eq!(payload_of(&observer.events, running), Some(json!(false)));
    let _ = std::fs::remove_dir_all(&dir);
}
