//! The round trip under load (issue 12, goal 4) in smoke mode with `--hops`, so the
//! hop split cannot rot: every command is answered and each round trip's three hops
//! (in, gateway, out) are in the JSON report and add up to no more than the slowest
//! round trip.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

#[test]
fn latency_scenario_splits_each_round_trip_into_hops() {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_gateway-bench"));
    let bin_dir = bench.parent().unwrap();
    assert!(
        bin_dir.join("gateway-host").exists() && bin_dir.join("libsim.so").exists(),
        "build gateway-host and the sim plugin first (cargo build --workspace)"
    );
    let out = std::env::temp_dir().join(format!("bench-latency-smoke-{}.json", std::process::id()));
    let status = Command::new(&bench)
        .args(["--smoke", "--only", "latency", "--hops", "--venv"])
        .arg(gateway_test_support::venv_with(&[]))
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "gateway-bench --only latency --hops failed: {status}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let _ = std::fs::remove_file(&out);
    let loaded = &doc["round_trip_under_load"];
    assert_eq!(loaded["count"], 50, "{loaded}");
    let max = loaded["max_ms"].as_f64().unwrap();
    let mut medians = 0.0;
    for hop in ["in", "gateway", "out"] {
        let figures = &loaded["hops"][hop];
        let p50 = figures["p50_ms"].as_f64().unwrap();
        assert!(
            p50 <= figures["max_ms"].as_f64().unwrap(),
            "{hop}: {loaded}"
        );
        assert!(
            figures["slowest_1pct_mean_ms"].as_f64().is_some(),
            "{hop}: {loaded}"
        );
        medians += p50;
    }
    // The hops are parts of one round trip (the clocks agree to well under 1 ms).
    assert!(medians <= max + 1.0, "{loaded}");
}
