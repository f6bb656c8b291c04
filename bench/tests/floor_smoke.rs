//! The embedded server's floor alone (`--only floor`, issue 12 goal 2) in smoke mode:
//! every event is counted and both CPU figures (server, bench) are in the report.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

#[test]
fn floor_scenario_reports_events_and_cpu() {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_gateway-bench"));
    let bin_dir = bench.parent().unwrap();
    assert!(
        bin_dir.join("gateway-host").exists(),
        "build gateway-host first (cargo build --workspace)"
    );
    let out = std::env::temp_dir().join(format!("bench-floor-smoke-{}.json", std::process::id()));
    let status = Command::new(&bench)
        .args(["--smoke", "--only", "floor", "--venv"])
        .arg(gateway_test_support::venv_with(&[]))
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "gateway-bench --only floor failed: {status}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let _ = std::fs::remove_file(&out);
    let floor = &doc["floor_embedded"];
    assert_eq!(floor["events"], 2_000, "{floor}");
    assert!(floor["cpu_s_per_100k_events"].as_f64().is_some(), "{floor}");
    assert!(
        floor["bench_cpu_s_per_100k_events"].as_f64().is_some(),
        "{floor}"
    );
    assert_eq!(floor["smoke"], true, "{floor}");
}
