//! End to end through the real binaries: the daemon with the embedded event server and
//! the `sim` plugin, driven by `gateway-host events` (register, query, watch), then
//! stopped with SIGTERM.
#![allow(clippy::unwrap_used)]

mod cli_support;

use cli_support::{gateway_host, run, sim_plugin_dir, Proc, Stream, TempDir};
use serde_json::{json, Value};

const RUNNING: &str = "gateway/gw1/sim/s1/gateway/running";

fn config() -> String {
    "name: gw1\n\
     event_server:\n  embedded:\n    store: memory\n    eventer_server: {host: 127.0.0.1, port: 0}\n    enable_devices: true\n\
     devices:\n  - {module: sim, name: s1, points: [p0]}\n\
     log: {level: info, format: json}\n"
        .to_owned()
}

/// The address the embedded server listens on, from the daemon's JSON log line.
fn listen_addr(line: &str) -> String {
    let value: Value = serde_json::from_str(line).unwrap();
    let addr = value["fields"]["addr"].as_str().unwrap();
    addr.trim_start_matches("Some(")
        .trim_end_matches(')')
        .to_owned()
}

fn events(addr: &str, args: &[&str]) -> Vec<Value> {
    let out = run(
        gateway_host().args(["events", "--server", addr]).args(args),
        None,
    );
    out.assert_exit(0);
    out.stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn type_of(event: &Value) -> String {
    event["type"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn daemon_and_events_register_query_watch() {
    let plugins = sim_plugin_dir();
    let dir = TempDir::new("host-cli");
    let conf = dir.write("gateway.yaml", &config());
    let mut daemon = Proc::spawn(
        gateway_host()
            .arg("--conf")
            .arg(&conf)
            .arg("--plugins-dir")
            .arg(&plugins),
    );
    let line = daemon.expect_line(Stream::Stderr, |l| {
        l.contains("embedded event server listening")
    });
    let addr = listen_addr(&line);

    let mut watch = Proc::spawn(gateway_host().args([
        "events",
        "--server",
        &addr,
        "watch",
        "gateway/gw1/sim/s1/gateway/*",
    ]));
    watch.expect_line(Stream::Stderr, |l| l.starts_with("watching "));

    // The device is running: either already stored, or the watcher sees it come.
    let latest = events(&addr, &["query", "latest", RUNNING]);
    if latest.first().map(|e| e["payload"].clone()) != Some(json!({"json": true})) {
        watch.expect_line(Stream::Stdout, |l| {
            let event: Value = serde_json::from_str(l).unwrap();
            type_of(&event) == RUNNING && event["payload"] == json!({"json": true})
        });
    }

    let registered = events(
        &addr,
        &[
            "register",
            "gateway/gw1/sim/s1/system/write/p0",
            "--json",
            r#"{"value": 42, "id": 7}"#,
            "--source-timestamp",
        ],
    );
    assert_eq!(registered.len(), 1);
    let event = &registered[0];
    assert_eq!(type_of(event), "gateway/gw1/sim/s1/system/write/p0");
    assert_eq!(event["payload"], json!({"json": {"value": 42, "id": 7}}));
    assert!(event["source_timestamp"].is_f64(), "{event}");
    assert!(event["timestamp"].is_f64(), "{event}");
    assert!(event["id"]["instance"].is_i64(), "{event}");

    // The sim device answers; the watcher prints it as one JSON line.
    let line = watch.expect_line(Stream::Stdout, |l| {
        let event: Value = serde_json::from_str(l).unwrap();
        type_of(&event) == "gateway/gw1/sim/s1/gateway/write/p0"
    });
    let answer: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        answer["payload"],
        json!({"json": {"id": 7, "success": true}})
    );
    assert_eq!(answer["source_timestamp"], Value::Null);

    let data = events(
        &addr,
        &[
            "query",
            "timeseries",
            "gateway/gw1/sim/s1/gateway/data/p0",
            "--max",
            "1",
        ],
    );
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["payload"], json!({"json": {"value": 42}}));

    watch.signal("INT");
    assert_eq!(watch.wait(), Some(0), "{}", watch.transcript());
    daemon.signal("TERM");
    assert_eq!(daemon.wait(), Some(0), "{}", daemon.transcript());
}

#[test]
fn events_without_a_server_exits_1() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let out = run(
        gateway_host().args(["events", "--server", &addr, "query", "latest", "a/*"]),
        None,
    );
    out.assert_exit(1);
    assert!(out.stderr.contains("cannot connect"), "{}", out.stderr);
}

#[test]
fn events_usage_errors_exit_2() {
    let out = run(
        gateway_host().args([
            "events",
            "--server",
            "127.0.0.1:1",
            "register",
            "a/b",
            "--json",
            "{x",
        ]),
        None,
    );
    out.assert_exit(2);
    assert!(out.stderr.contains("not valid JSON"), "{}", out.stderr);
}
