//! A plugin built the way a vendor builds it: a separate Cargo project (its own
//! Cargo.toml, lock file and target directory) depending on gateway-plugin-api by path,
//! then loaded by the host. Builds the project with the same cargo (offline first:
//! its dependencies are the workspace's, already in the local registry cache).

#![allow(clippy::unwrap_used)]

mod plugin_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use gateway_host::device::DeviceFactory;
use gateway_host::plugins::{PluginRegistry, PluginSearch};
use plugin_support::*;
use serde_json::json;

fn cargo_build(manifest: &Path, target_dir: &Path, offline: bool) -> std::process::Output {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .arg("build")
        .arg("--manifest-path")
        .arg(manifest)
        .env("CARGO_TARGET_DIR", target_dir)
        .env_remove("CARGO_BUILD_TARGET_DIR");
    if offline {
        command.arg("--offline");
    }
    command.output().unwrap()
}

/// Builds the out-of-tree project `tests/<project>` with cargo (offline first) in its
/// own target directory, kept under ours so it is reused between runs (the projects
/// share their dependencies); returns the path of `lib<lib>.so`.
fn build_project(project: &str, lib: &str) -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(project)
        .join("Cargo.toml");
    let target_dir = profile_dir().parent().unwrap().join("out-of-tree-plugin");
    let mut output = cargo_build(&manifest, &target_dir, true);
    if !output.status.success() {
        output = cargo_build(&manifest, &target_dir, false);
    }
    assert!(
        output.status.success(),
        "building {project} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    target_dir.join(format!("debug/lib{lib}.so"))
}

fn build_out_of_tree_plugin() -> PathBuf {
    build_project("out-of-tree-plugin", "vendor_counter")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_tree_plugin_builds_loads_and_runs() {
    let built = build_out_of_tree_plugin();
    let dir = PluginDir::new();
    let file = dir.path.join("libvendor_counter.so");
    std::fs::copy(&built, &file).unwrap();

    let registry = PluginRegistry::new(PluginSearch::new(vec![dir.path.clone()], false));
    let plugin = registry.resolve("vendor_counter").unwrap();
    let info = plugin.info();
    assert_eq!(info.name, "vendor_counter");
    assert_eq!(info.version, "2.3.4");
    assert_eq!(info.device_type, "vendor_counter");
    assert_eq!(info.api_version, gateway_plugin_api::abi::API_VERSION);
    assert_eq!(plugin.json_schema_id(), Some("vendor://counter.json"));

    let (client, mut calls) = RecordingClient::new();
    let device = plugin
        .create(json!({"name": "c"}), context(client, "vendor_counter", "c"))
        .await
        .unwrap();
    let prefix = prefix("vendor_counter", "c");
    for n in 1..=3 {
        device
            .process_event(event(&prefix, &["system", "tick"], json!({"n": n})))
            .await
            .unwrap();
        assert_eq!(
            next_register(&mut calls).await,
            vec![(
                "gateway/count".to_owned(),
                json!({"count": n, "last": {"n": n}})
            )]
        );
    }
    device.close().await;
}

/// A plugin built against gateway-plugin-api 1.1.0 (`tests/api-1.1-plugin`: its own
/// project on a frozen copy of 1.1.0's ABI, whose root module has no `hat_modules`),
/// in the same target directory as the vendor plugin above (same dependencies).
fn build_api_1_1_plugin() -> PathBuf {
    build_project("api-1.1-plugin", "legacy_echo")
}

/// API 1.2 appended `hat_modules` to the root module; a plugin built against 1.1 must
/// still load (abi_stable refuses a root module with fewer fields than the type it is
/// checked against, so the host checks against the 1.0 prefix), report no hat modules,
/// and run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_built_against_api_1_1_still_loads_and_runs() {
    let built = build_api_1_1_plugin();
    let dir = PluginDir::new();
    let file = dir.path.join("liblegacy_echo.so");
    std::fs::copy(&built, &file).unwrap();

    let registry = PluginRegistry::new(PluginSearch::new(vec![dir.path.clone()], false));
    let plugin = registry.resolve("legacy_echo").unwrap();
    let info = plugin.info();
    assert_eq!(info.api_version, "1.1.0");
    assert_eq!(info.device_type, "legacy_echo");
    assert!(info.hat_modules.is_empty(), "{:?}", info.hat_modules);
    // A hat module name finds no plugin here, and says so.
    let err = registry
        .resolve("hat.gateway.devices.modbus.master")
        .unwrap_err();
    assert!(err.to_string().contains("no plugin declares it"), "{err}");

    let (client, mut calls) = RecordingClient::new();
    let device = plugin
        .create(json!({"name": "e"}), context(client, "legacy_echo", "e"))
        .await
        .unwrap();
    let prefix = prefix("legacy_echo", "e");
    device
        .process_event(event(&prefix, &["system", "ping"], json!({"n": 1})))
        .await
        .unwrap();
    assert_eq!(
        next_register(&mut calls).await,
        vec![("gateway/echo".to_owned(), json!({"n": 1}))]
    );
    device.close().await;
}
