//! Integration tests of the plugin boundary: the real cdylibs (sim and the fixtures)
//! loaded through the real loader.
//!
//! Needs the workspace's cdylibs: run `cargo build --workspace --all-targets` first
//! (scripts/test.sh does).

#![allow(clippy::unwrap_used)]

mod plugin_support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::sync::Arc;

use gateway_host::device::{DeviceError, DeviceFactory, DeviceInstance};
use gateway_host::plugins::{
    plugins_command_with, LoadedPlugin, PluginError, PluginRegistry, PluginSearch, PluginsReport,
};
use plugin_support::*;
use serde_json::json;

fn registry(dir: &PluginDir) -> PluginRegistry {
    PluginRegistry::new(PluginSearch::new(vec![dir.path.clone()], false))
}

async fn create(
    plugin: &Arc<LoadedPlugin>,
    conf: serde_json::Value,
    client: Arc<RecordingClient>,
    name: &str,
) -> Result<Box<dyn DeviceInstance>, DeviceError> {
    let context = context(client, plugin.device_type(), name);
    tokio::time::timeout(TIMEOUT, plugin.create(conf, context))
        .await
        .expect("create timed out")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_is_created_processes_events_registers_and_closes() {
    let dir = PluginDir::new();
    dir.add_library("sim", None);
    let registry = registry(&dir);
    let plugin = registry.resolve("sim").unwrap();
    let info = plugin.info();
    assert_eq!(info.device_type, "sim");
    assert_eq!(info.name, "sim");
    assert_eq!(info.api_version, gateway_plugin_api::abi::API_VERSION);
    assert_eq!(info.path, dir.canonical("libsim.so"));
    assert_eq!(plugin.json_schema_id(), Some("gateway-host://sim.json"));
    let schema_file: serde_json::Value =
        serde_json::from_str(include_str!("../../schemas/sim.json")).unwrap();
    assert_eq!(plugin.json_schema(), Some(&schema_file));
    // Resolving again gives the same loaded library.
    assert!(Arc::ptr_eq(&plugin, &registry.resolve("sim").unwrap()));

    let (client, mut calls) = RecordingClient::new();
    let conf = json!({"name": "s1", "module": "sim", "points": ["a", "b"]});
    let device = create(&plugin, conf, client, "s1").await.unwrap();
    assert_eq!(
        next_register(&mut calls).await,
        vec![
            ("gateway/data/a".to_owned(), json!({"value": 0})),
            ("gateway/data/b".to_owned(), json!({"value": 0})),
        ]
    );

    let prefix = prefix("sim", "s1");
    device
        .process_event(event(
            &prefix,
            &["system", "write", "b"],
            json!({"value": 5, "id": 9}),
        ))
        .await
        .unwrap();
    assert_eq!(
        next_register(&mut calls).await,
        vec![
            ("gateway/data/b".to_owned(), json!({"value": 5})),
            (
                "gateway/write/b".to_owned(),
                json!({"id": 9, "success": true})
            ),
        ]
    );

    device
        .process_event(event(
            &prefix,
            &["system", "burst"],
            json!({"count": 2500, "id": "x"}),
        ))
        .await
        .unwrap();
    let mut data = 0;
    loop {
        let batch = next_register(&mut calls).await;
        if batch[0].0 == "gateway/burst" {
            assert_eq!(batch[0].1, json!({"id": "x", "count": 2500}));
            break;
        }
        data += batch.len();
    }
    assert_eq!(data, 2500);

    tokio::time::timeout(TIMEOUT, device.close()).await.unwrap();
    tokio::time::timeout(TIMEOUT, device.closed())
        .await
        .unwrap();
    drop(device);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_period_increments_through_the_boundary() {
    let dir = PluginDir::new();
    dir.add_library("sim", None);
    let plugin = registry(&dir).resolve("sim").unwrap();
    let (client, mut calls) = RecordingClient::new();
    let conf = json!({"name": "s2", "module": "sim", "period": 0.01});
    let device = create(&plugin, conf, client, "s2").await.unwrap();
    for expected in 0..3 {
        assert_eq!(
            next_register(&mut calls).await,
            vec![("gateway/data/p0".to_owned(), json!({"value": expected}))]
        );
    }
    device.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_client_query_and_register_with_response_cross_the_boundary() {
    let dir = PluginDir::new();
    dir.add_library("gateway_fixture_faulty", None);
    let plugin = registry(&dir).resolve("gateway_fixture_faulty").unwrap();
    let (client, mut calls) = RecordingClient::new();
    client
        .backend
        .answer_queries_with(vec![event(&["a".to_owned()], &[], json!(1))]);
    let device = create(&plugin, json!({"name": "f"}), client, "f")
        .await
        .unwrap();
    let prefix = prefix("fixture_faulty", "f");

    device
        .process_event(event(&prefix, &["system", "query"], json!([["a", "*"]])))
        .await
        .unwrap();
    match calls.next_call().await {
        Call::Query(gateway_model::QueryParams::Latest(params)) => {
            assert_eq!(
                params.event_types,
                Some(vec![vec!["a".to_owned(), "*".to_owned()]])
            );
        }
        other => panic!("expected a latest query, got {other:?}"),
    }
    assert_eq!(
        next_register(&mut calls).await,
        vec![("gateway/query_result".to_owned(), json!({"count": 1}))]
    );

    device
        .process_event(event(&prefix, &["system", "stored"], json!({"k": [1, 2]})))
        .await
        .unwrap();
    match calls.next_call().await {
        Call::RegisterWithResponse(events) => {
            assert_eq!(
                summary(&events),
                vec![("gateway/stored".to_owned(), json!({"k": [1, 2]}))]
            );
        }
        other => panic!("expected a registration with response, got {other:?}"),
    }
    assert_eq!(
        next_register(&mut calls).await,
        vec![(
            "gateway/stored_result".to_owned(),
            json!({"instances": [1]})
        )]
    );

    // Binary payloads cross unchanged.
    let mut binary = event(&prefix, &["system", "other"], json!(null));
    binary.payload = Some(gateway_model::Payload::Binary {
        type_name: "raw".into(),
        data: vec![0, 255, 7],
    });
    device.process_event(binary).await.unwrap();
    match calls.next_call().await {
        Call::Register(events) => assert_eq!(
            events[0].payload,
            Some(gateway_model::Payload::Binary {
                type_name: "raw".into(),
                data: vec![0, 255, 7]
            })
        ),
        other => panic!("expected the echo, got {other:?}"),
    }
    device.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_survives_every_plugin_failure() {
    let dir = PluginDir::new();
    dir.add_library("gateway_fixture_faulty", None);
    let plugin = registry(&dir).resolve("gateway_fixture_faulty").unwrap();
    let prefix = prefix("fixture_faulty", "f");

    // create panics / returns an error.
    let (client, _calls) = RecordingClient::new();
    let err = create(
        &plugin,
        json!({"fail": "create_panic"}),
        client.clone(),
        "f",
    )
    .await
    .err()
    .unwrap();
    assert_eq!(
        err,
        DeviceError::Panicked("fixture: panic in create".into())
    );
    let err = create(
        &plugin,
        json!({"fail": "create_error"}),
        client.clone(),
        "f",
    )
    .await
    .err()
    .unwrap();
    assert_eq!(
        err,
        DeviceError::Failed("fixture: error from create".into())
    );

    // process_event panics / returns an error.
    let device = create(&plugin, json!({"fail": "event_panic"}), client.clone(), "f")
        .await
        .unwrap();
    let err = device
        .process_event(event(&prefix, &["system", "x"], json!(1)))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        DeviceError::Panicked("fixture: panic in process_event".into())
    );
    device.close().await;
    let device = create(&plugin, json!({"fail": "event_error"}), client.clone(), "f")
        .await
        .unwrap();
    let err = device
        .process_event(event(&prefix, &["system", "x"], json!(1)))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        DeviceError::Failed("fixture: error from process_event".into())
    );
    device.close().await;

    // A background task panics: the device reports itself closed (failed).
    let device = create(
        &plugin,
        json!({"fail": "background_panic"}),
        client.clone(),
        "f",
    )
    .await
    .unwrap();
    tokio::time::timeout(TIMEOUT, device.closed())
        .await
        .expect("a device whose background task panicked must report closed");
    device.close().await;

    // A device that closes itself.
    let device = create(&plugin, json!({"fail": "close_self"}), client.clone(), "f")
        .await
        .unwrap();
    tokio::time::timeout(TIMEOUT, device.closed())
        .await
        .unwrap();
    device.close().await;

    // The library and its runtime still work after all of that.
    let (client, mut calls) = RecordingClient::new();
    let device = create(&plugin, json!({}), client, "f").await.unwrap();
    device
        .process_event(event(&prefix, &["system", "x"], json!("still alive")))
        .await
        .unwrap();
    assert_eq!(
        next_register(&mut calls).await,
        vec![("gateway/echo".to_owned(), json!("still alive"))]
    );
    // A running device does not report closed.
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(50), device.closed())
            .await
            .is_err()
    );
    device.close().await;
    tokio::time::timeout(TIMEOUT, device.closed())
        .await
        .unwrap();
}

/// `process_event` is polled on the host's thread with the plugin runtime entered:
/// a plugin timer, and a task the plugin spawns, must still complete (the plugin
/// runtime's own threads drive its timers and wake the host's task).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_timers_and_spawns_inside_process_event_work() {
    let dir = PluginDir::new();
    dir.add_library("gateway_fixture_faulty", None);
    let plugin = registry(&dir).resolve("gateway_fixture_faulty").unwrap();
    let (client, mut calls) = RecordingClient::new();
    let device = create(&plugin, json!({}), client, "f").await.unwrap();
    let prefix = prefix("fixture_faulty", "f");
    for ms in [0, 30] {
        tokio::time::timeout(
            TIMEOUT,
            device.process_event(event(&prefix, &["system", "sleep"], json!({"ms": ms}))),
        )
        .await
        .expect("a plugin timer inside process_event never fired")
        .unwrap();
        assert_eq!(
            next_register(&mut calls).await,
            vec![("gateway/slept".to_owned(), json!({"ms": ms}))]
        );
    }
    // Also from a current-thread host runtime: nothing on the host side drives the
    // plugin's timers.
    let device = Arc::new(device);
    let inner = device.clone();
    let prefix_inner = prefix.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::time::timeout(
                TIMEOUT,
                inner.process_event(event(
                    &prefix_inner,
                    &["system", "sleep"],
                    json!({"ms": 10}),
                )),
            )
            .await
        })
    })
    .await
    .unwrap();
    outcome.expect("timed out").unwrap();
    assert_eq!(
        next_register(&mut calls).await,
        vec![("gateway/slept".to_owned(), json!({"ms": 10}))]
    );
    device.close().await;
}

/// JSON text a plugin registers is checked by the host: invalid text never reaches
/// the client, and the plugin gets the reason (the fixture fails with it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_json_from_a_plugin_is_refused() {
    let dir = PluginDir::new();
    dir.add_library("gateway_fixture_faulty", None);
    let plugin = registry(&dir).resolve("gateway_fixture_faulty").unwrap();
    let (client, mut calls) = RecordingClient::new();
    let device = create(&plugin, json!({}), client, "f").await.unwrap();
    let prefix = prefix("fixture_faulty", "f");
    let err = device
        .process_event(event(&prefix, &["system", "bad_json"], json!(null)))
        .await
        .unwrap_err();
    match &err {
        DeviceError::Failed(message) => assert!(
            message.contains("event 0 of the registration refused")
                && message.contains("invalid JSON"),
            "{message}"
        ),
        other => panic!("expected a device error, got {other:?}"),
    }
    // Nothing was registered; the next good event is the first call the client sees.
    device
        .process_event(event(&prefix, &["system", "x"], json!("ok")))
        .await
        .unwrap();
    assert_eq!(
        next_register(&mut calls).await,
        vec![("gateway/echo".to_owned(), json!("ok"))]
    );
    device.close().await;
}

fn load_error(dir: &PluginDir, file_name: &str) -> PluginError {
    registry(dir)
        .load_file(&dir.path.join(file_name))
        .err()
        .unwrap_or_else(|| panic!("{file_name} must not load"))
}

/// Copies fixture library `crate_name` into a fresh plugin directory and loads it,
/// which must fail; returns the error and the file's canonical path.
fn fixture_load_error(crate_name: &str) -> (PluginError, PathBuf) {
    let dir = PluginDir::new();
    let file = dir.add_library(crate_name, None);
    let err = load_error(&dir, &format!("lib{crate_name}.so"));
    (err, file.canonicalize().unwrap())
}

#[test]
fn api_major_mismatch_is_refused() {
    let (err, file) = fixture_load_error("gateway_fixture_api_major");
    assert!(
        matches!(&err, PluginError::ApiMajorMismatch { plugin, .. } if plugin == "2.0.0"),
        "{err}"
    );
    assert!(path_in(&err, &file), "{err}");
}

#[test]
fn api_minor_newer_is_refused() {
    let (err, file) = fixture_load_error("gateway_fixture_api_minor");
    assert!(
        matches!(&err, PluginError::ApiMinorNewer { plugin, .. } if plugin == "1.999.0"),
        "{err}"
    );
    assert!(path_in(&err, &file), "{err}");
}

#[test]
fn library_without_root_symbol_is_refused() {
    let (err, file) = fixture_load_error("gateway_fixture_no_root");
    assert!(
        matches!(err, PluginError::MissingRootSymbol { .. }),
        "{err}"
    );
    assert!(path_in(&err, &file), "{err}");
}

#[test]
fn panicking_initialisation_is_reported() {
    let (err, file) = fixture_load_error("gateway_fixture_init_panic");
    assert!(matches!(err, PluginError::InitPanicked { .. }), "{err}");
    assert!(path_in(&err, &file), "{err}");
}

#[test]
fn text_file_is_not_a_library() {
    let dir = PluginDir::new();
    let file = dir.add_file("libnotes.so", b"just some text, not ELF\n");
    let err = load_error(&dir, "libnotes.so");
    assert!(matches!(err, PluginError::NotSharedLibrary { .. }), "{err}");
    assert!(path_in(&err, &file.canonicalize().unwrap()), "{err}");
}

#[test]
fn library_for_another_machine_is_refused_before_dlopen() {
    let dir = PluginDir::new();
    // A real shared library whose ELF header says another machine.
    let mut bytes = std::fs::read(built_library("gateway_fixture_no_root")).unwrap();
    let other: u16 = if cfg!(target_arch = "aarch64") {
        62
    } else {
        183
    };
    bytes[18..20].copy_from_slice(&other.to_le_bytes());
    let file = dir.add_file("libforeign.so", &bytes);
    let err = load_error(&dir, "libforeign.so");
    assert!(
        matches!(err, PluginError::WrongArchitecture { .. }),
        "{err}"
    );
    assert!(path_in(&err, &file.canonicalize().unwrap()), "{err}");
}

#[test]
fn duplicate_device_type_names_both_files() {
    let dir = PluginDir::new();
    dir.add_library("sim", None);
    dir.add_library("sim", Some("libsim_copy.so"));
    let registry = registry(&dir);
    let report = registry.scan();
    assert_eq!(report.plugins.len(), 1);
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
    let err = &report.failures[0];
    assert!(
        matches!(err, PluginError::DuplicateDeviceType { device_type, .. } if device_type == "sim"),
        "{err}"
    );
    assert!(path_in(err, &dir.canonical("libsim.so")), "{err}");
    assert!(path_in(err, &dir.canonical("libsim_copy.so")), "{err}");
}

#[test]
fn writable_plugin_file_or_directory_is_refused_unless_allowed() {
    let dir = PluginDir::new();
    let file = dir.add_library("sim", None);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    let err = load_error(&dir, "libsim.so");
    assert!(
        matches!(err, PluginError::Insecure { what: "file", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("chmod go-w"), "{err}");
    assert!(path_in(&err, &file.canonicalize().unwrap()), "{err}");

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = load_error(&dir, "libsim.so");
    assert!(
        matches!(
            err,
            PluginError::Insecure {
                what: "directory",
                ..
            }
        ),
        "{err}"
    );
    let report = registry(&dir).scan();
    assert!(report.plugins.is_empty());
    assert!(matches!(
        report.failures[..],
        [PluginError::Insecure { .. }]
    ));

    let insecure = PluginRegistry::new(PluginSearch::new(vec![dir.path.clone()], true));
    assert_eq!(insecure.resolve("sim").unwrap().info().device_type, "sim");
}

#[test]
fn module_resolution_by_name_path_and_missing() {
    let first = PluginDir::new();
    let second = PluginDir::new();
    second.add_library("sim", None);
    let registry = PluginRegistry::new(PluginSearch::new(
        vec![first.path.clone(), second.path.clone()],
        false,
    ));
    // By name: found in the second directory.
    assert_eq!(
        registry.resolve("sim").unwrap().info().path,
        second.canonical("libsim.so")
    );
    // By path.
    let path = second.path.join("libsim.so");
    let by_path = registry.resolve(path.to_str().unwrap()).unwrap();
    assert_eq!(by_path.info().path, second.canonical("libsim.so"));
    // Missing: the error lists the directories searched.
    let err = registry.resolve("nope").err().unwrap();
    assert!(matches!(err, PluginError::NotFound { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("libnope.so"), "{text}");
    assert!(
        path_in(&err, &first.path) && path_in(&err, &second.path),
        "{text}"
    );
}

#[test]
fn scan_reports_every_plugin_and_every_failure_together() {
    let dir = PluginDir::new();
    for lib in [
        "sim",
        "gateway_fixture_faulty",
        "gateway_fixture_api_major",
        "gateway_fixture_api_minor",
        "gateway_fixture_no_root",
        "gateway_fixture_init_panic",
    ] {
        dir.add_library(lib, None);
    }
    dir.add_file("libnotes.so", b"text");
    dir.add_file("README.md", b"not a library name: ignored");
    let report = registry(&dir).scan();
    let mut types: Vec<_> = report
        .plugins
        .iter()
        .map(|p| p.info().device_type.clone())
        .collect();
    types.sort();
    assert_eq!(types, vec!["fixture_faulty", "sim"]);
    let mut kinds: Vec<_> = report
        .failures
        .iter()
        .map(|err| {
            let file = err
                .path()
                .unwrap()
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            let kind = match err {
                PluginError::ApiMajorMismatch { .. } => "major",
                PluginError::ApiMinorNewer { .. } => "minor",
                PluginError::MissingRootSymbol { .. } => "no-root",
                PluginError::InitPanicked { .. } => "init-panic",
                PluginError::NotSharedLibrary { .. } => "not-library",
                other => panic!("unexpected failure {other}"),
            };
            (file, kind)
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            ("libgateway_fixture_api_major.so".to_owned(), "major"),
            ("libgateway_fixture_api_minor.so".to_owned(), "minor"),
            ("libgateway_fixture_init_panic.so".to_owned(), "init-panic"),
            ("libgateway_fixture_no_root.so".to_owned(), "no-root"),
            ("libnotes.so".to_owned(), "not-library"),
        ]
    );
}

#[test]
fn plugins_command_lists_and_details() {
    let dir = PluginDir::new();
    dir.add_library("sim", None);
    let search = || PluginSearch::new(vec![dir.path.clone()], false);

    let mut out = Vec::new();
    assert_eq!(
        plugins_command_with(search(), None, &mut out),
        PluginsReport::Clean
    );
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("device type sim"), "{text}");
    assert!(text.contains("gateway-host://sim.json"), "{text}");
    assert!(
        text.contains(&dir.canonical("libsim.so").display().to_string()),
        "{text}"
    );

    let mut out = Vec::new();
    assert_eq!(
        plugins_command_with(search(), Some("sim"), &mut out),
        PluginsReport::Clean
    );
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("device type:  sim"), "{text}");
    assert!(
        text.contains("\"$id\": \"gateway-host://sim.json\""),
        "{text}"
    );

    dir.add_library("gateway_fixture_api_major", None);
    let mut out = Vec::new();
    assert_eq!(
        plugins_command_with(search(), None, &mut out),
        PluginsReport::Broken
    );
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("device type sim"), "{text}");
    assert!(text.contains("failures (1)"), "{text}");
    assert!(text.contains("plugin API major mismatch"), "{text}");

    let mut out = Vec::new();
    assert_eq!(
        plugins_command_with(search(), Some("gateway_fixture_api_major"), &mut out),
        PluginsReport::Broken
    );
    assert!(String::from_utf8(out)
        .unwrap()
        .contains("libgateway_fixture_api_major.so"));

    let mut out = Vec::new();
    assert_eq!(
        plugins_command_with(search(), Some("missing"), &mut out),
        PluginsReport::Broken
    );
    assert!(String::from_utf8(out).unwrap().contains("not found"));
}
