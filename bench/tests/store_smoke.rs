//! The event store scenario (issue 14) in smoke mode, so it cannot rot: the embedded
//! server's file store, its memory store and the real hat-event LMDB backend each
//! take the burst, every register answered, and the figures are in the JSON report
//! under `store`, next to what the file already held.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

#[test]
fn store_scenario_reports_the_three_stores_and_keeps_the_rest_of_the_file() {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_gateway-bench"));
    let bin_dir = bench.parent().unwrap();
    assert!(
        bin_dir.join("gateway-host").exists(),
        "build gateway-host first (cargo build --workspace)"
    );
    let out = std::env::temp_dir().join(format!("bench-store-smoke-{}.json", std::process::id()));
    std::fs::write(&out, r#"{"startup_embedded": [1]}"#).unwrap();
    let status = Command::new(&bench)
        .args(["--smoke", "--only", "store", "--venv"])
        .arg(gateway_test_support::venv_with(&["bin/hat-event-server"]))
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "gateway-bench --only store failed: {status}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let _ = std::fs::remove_file(&out);
    assert_eq!(doc["startup_embedded"], serde_json::json!([1]), "{doc}");
    let store = &doc["store"];
    assert_eq!(store["smoke"], true);
    for key in ["file", "memory", "hat_lmdb"] {
        // Every event of the burst was answered, and a rate came out of it.
        assert_eq!(store[key]["events"], 2000, "{key}: {store}");
        assert!(store[key]["events_per_s"].as_f64().unwrap() > 0.0, "{key}");
    }
    for key in ["file", "hat_lmdb"] {
        let bytes = store[key]["bytes_per_event"].as_f64().unwrap();
        assert!(bytes > 10.0, "{key}: {bytes} bytes per event");
    }
    assert!(store["memory"]["bytes_per_event"].is_null());
}
