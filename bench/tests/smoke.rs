//! The benchmark harness in smoke mode (tiny sizes), so it cannot rot: every scenario
//! runs end to end against the real hat-event server and the real hat-gateway, and
//! every figure of the JSON report is present and plausible.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

#[test]
fn smoke_run_reports_every_scenario() {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_gateway-bench"));
    let bin_dir = bench.parent().unwrap();
    assert!(
        bin_dir.join("gateway-host").exists() && bin_dir.join("libsim.so").exists(),
        "build gateway-host and the sim plugin first (cargo build --workspace)"
    );
    let out = std::env::temp_dir().join(format!("bench-smoke-{}.json", std::process::id()));
    let status = Command::new(&bench)
        .arg("--smoke")
        .arg("--venv")
        .arg(gateway_test_support::venv_with(&[
            "bin/hat-event-server",
            "bin/hat-gateway",
        ]))
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "gateway-bench --smoke failed: {status}");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let _ = std::fs::remove_file(&out);
    assert_eq!(doc["smoke"], true);
    let throughput = &doc["throughput"];
    for key in [
        "a_host_embedded",
        "b_host_hat_event",
        "c_hat_gateway_hat_event",
        "d_hat_gateway_host_embedded",
        "floor_embedded",
        "floor_hat_event",
    ] {
        // Every data event of the burst was counted, and a rate came out of it.
        assert_eq!(
            throughput[key]["events"], 2000,
            "{key}: {}",
            throughput[key]
        );
        assert!(
            throughput[key]["events_per_s"].as_f64().unwrap() > 0.0,
            "{key}"
        );
    }
    for key in ["host_embedded", "hat_gateway_hat_event"] {
        let rt = &doc["round_trip"][key];
        assert_eq!(rt["count"], 50);
        assert!(rt["p50_ms"].as_f64().unwrap() <= rt["max_ms"].as_f64().unwrap());
    }
    // The gateways alone (issue 12, goal 3): both bursts counted, a CPU ratio.
    let alone = &doc["gateway_alone"];
    for key in [
        "host_on_separate_embedded",
        "hat_gateway_on_separate_embedded",
    ] {
        assert_eq!(alone[key]["events"], 2000, "{key}: {alone}");
        assert!(
            alone[key]["cpu_s_per_100k_events"].as_f64().unwrap() > 0.0,
            "{key}: {alone}"
        );
    }
    assert!(
        alone["hat_over_host_cpu"].as_f64().unwrap() > 0.0,
        "{alone}"
    );
    // The round trip under load (issue 12, goal 4): every command answered while the
    // loading device registered events.
    let loaded = &doc["round_trip_under_load"];
    assert_eq!(loaded["count"], 50, "{loaded}");
    assert!(
        loaded["p50_ms"].as_f64().unwrap() <= loaded["max_ms"].as_f64().unwrap(),
        "{loaded}"
    );
    assert!(
        loaded["load_events_per_s"].as_f64().unwrap() > 0.0,
        "{loaded}"
    );
    // The start-up scenario (issue 12): every device ran, with per-device figures.
    let startup = &doc["startup_embedded"][0];
    assert_eq!(startup["devices"], 20, "{startup}");
    assert_eq!(startup["running"], 20, "{startup}");
    assert!(startup["stopped"].is_null(), "{startup}");
    for key in ["us_per_device", "kib_per_device"] {
        assert!(startup[key].as_f64().unwrap() > 0.0, "{key}: {startup}");
    }
    let scale = &doc["scale"][0];
    assert_eq!(scale["devices"], 20);
    for key in ["host_embedded", "host_hat_event", "hat_gateway_hat_event"] {
        assert!(scale[key]["peak_rss_mib"].as_f64().unwrap() > 0.0, "{key}");
    }
}
