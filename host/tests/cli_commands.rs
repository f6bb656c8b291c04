//! `check`, `schema` and `plugins` subcommands, the three configuration formats, and
//! the host's own configuration rules, through the real binary.
#![allow(clippy::unwrap_used)]

mod cli_support;

use cli_support::{gateway_host, run, sim_plugin_dir, Output, TempDir};
use serde_json::Value;

fn check(path: &std::path::Path) -> Output {
    let plugins = sim_plugin_dir();
    run(
        gateway_host()
            .arg("check")
            .arg("--conf")
            .arg(path)
            .arg("--plugins-dir")
            .arg(plugins),
        None,
    )
}

/// Error lines without the file name, sorted.
fn error_lines(out: &Output, file: &std::path::Path) -> Vec<String> {
    let prefix = format!("{}: ", file.display());
    let mut lines: Vec<String> = out
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
        .collect();
    lines.sort();
    lines
}

#[test]
fn check_accepts_a_valid_config_with_plugins_and_connects_nowhere() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = TempDir::new("host-cli");
    let path = dir.write(
        "gateway.yaml",
        &format!(
            "name: gw\nevent_server:\n  eventer_server: {{host: 127.0.0.1, port: {port}}}\n\
             devices:\n  - {{module: sim, name: s1, points: [a, b], period: 0.5}}\n  \
             - {{module: sim, name: s2, restart: on-failure, event_queue_size: 8}}\n"
        ),
    );
    let out = check(&path);
    out.assert_exit(0);
    assert_eq!(
        out.stdout.trim(),
        format!(
            "{}: valid (gateway \"gw\", 2 device(s))\nevent types: seeds (default)",
            path.display()
        )
    );
    cli_support::assert_no_connection(&listener);
}

#[test]
fn example_config_is_valid() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/gateway.yaml");
    check(&example).assert_exit(0);
}

#[test]
fn yaml_json_toml_are_equivalent() {
    let dir = TempDir::new("host-cli");
    let yaml = dir.write(
        "g.yaml",
        "name: gw\nevent_server: {embedded: {enable_devices: true}}\n\
         devices:\n  - {module: sim, name: s1, period: 2}\n  - {module: sim, name: s2, period: x}\n",
    );
    let json = dir.write(
        "g.json",
        r#"{"name": "gw", "event_server": {"embedded": {"enable_devices": true}},
            "devices": [{"module": "sim", "name": "s1", "period": 2},
                        {"module": "sim", "name": "s2", "period": "x"}]}"#,
    );
    let toml = dir.write(
        "g.toml",
        "name = \"gw\"\n[event_server.embedded]\nenable_devices = true\n\
         [[devices]]\nmodule = \"sim\"\nname = \"s1\"\nperiod = 2\n\
         [[devices]]\nmodule = \"sim\"\nname = \"s2\"\nperiod = \"x\"\n",
    );
    let mut results = Vec::new();
    for path in [&yaml, &json, &toml] {
        let out = check(path);
        out.assert_exit(2);
        results.push(error_lines(&out, path));
    }
    assert_eq!(
        results[0],
        [r#"/devices/1/period: "x" is not of type "number""#]
    );
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0], results[2]);

    // The same documents without the bad entry are valid in every format.
    let fixed_yaml = dir.write(
        "ok.yaml",
        "name: gw\nevent_server: {embedded: {}}\ndevices:\n  - {module: sim, name: s1}\n",
    );
    let fixed_toml = dir.write(
        "ok.toml",
        "name = \"gw\"\ndevices = [{module = \"sim\", name = \"s1\"}]\n[event_server.embedded]\n",
    );
    let fixed_json = dir.write(
        "ok.json",
        r#"{"name":"gw","event_server":{"embedded":{}},"devices":[{"module":"sim","name":"s1"}]}"#,
    );
    for path in [&fixed_yaml, &fixed_toml, &fixed_json] {
        let out = check(path);
        out.assert_exit(0);
        assert!(
            out.stdout.contains("valid (gateway \"gw\", 1 device(s))"),
            "{}",
            out.stdout
        );
    }
}

#[test]
fn invalid_gateway_and_device_names_exit_2() {
    let dir = TempDir::new("host-cli");
    for (name, device) in [("", "ok"), ("gw/1", "?"), ("*", "a*b"), ("g?", "")] {
        let path = dir.write(
            "g.json",
            &serde_json::json!({
                "name": name,
                "event_server": {"embedded": {}},
                "devices": [{"module": "sim", "name": device}]
            })
            .to_string(),
        );
        let out = check(&path);
        out.assert_exit(2);
        let lines = error_lines(&out, &path);
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("/name: ") && l.contains("not a valid name")),
            "{name:?}: {lines:?}"
        );
        if device != "ok" {
            assert!(
                lines.iter().any(|l| l.starts_with("/devices/0/name: ")),
                "{device:?}: {lines:?}"
            );
        }
    }
}

#[test]
fn monitor_component_is_accepted_by_check() {
    // Running it is covered with a real hat-monitor in monitor_redundancy.rs.
    let dir = TempDir::new("host-cli");
    let path = dir.write(
        "g.yaml",
        "name: gw\ndevices: []\nevent_server:\n  monitor_component:\n    host: 127.0.0.1\n    \
         port: 23010\n    gateway_group: gateway\n    event_server_group: event\n",
    );
    check(&path).assert_exit(0);
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let dir = TempDir::new("host-cli");
    let path = dir.write(
        "g.yaml",
        "name: gw\nevent_server: {eventer_server: {host: h, port: 0}}\n\
         devices:\n  - {module: sim}\n  - {module: nope, name: x}\n  - {module: sim, name: s, points: []}\n\
         log: {level: loud}\n",
    );
    let out = check(&path);
    out.assert_exit(2);
    let pointers: Vec<String> = error_lines(&out, &path)
        .iter()
        .map(|l| l.split(": ").next().unwrap().to_owned())
        .collect();
    assert_eq!(
        pointers,
        [
            "/devices/0/name",
            "/devices/1/module",
            "/devices/2/points",
            "/event_server/eventer_server/port",
            "/log/level",
        ]
    );
    assert!(
        out.stderr.contains("5 configuration errors"),
        "{}",
        out.stderr
    );
}

#[test]
fn syntax_errors_name_the_file() {
    let dir = TempDir::new("host-cli");
    let path = dir.write("g.yaml", "name: [unclosed\n");
    let out = check(&path);
    out.assert_exit(2);
    assert!(
        out.stderr
            .contains(&format!("{}: invalid YAML", path.display())),
        "{}",
        out.stderr
    );
    let out = run(
        gateway_host()
            .args(["check", "--conf"])
            .arg(dir.path().join("missing.yaml")),
        None,
    );
    out.assert_exit(2);
    assert!(
        out.stderr.contains("missing.yaml: cannot read"),
        "{}",
        out.stderr
    );
}

#[test]
fn schema_prints_the_main_schema() {
    let out = run(gateway_host().arg("schema"), None);
    out.assert_exit(0);
    let schema: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(schema["$id"], "gateway-host://main.json");
    assert_eq!(
        schema["required"],
        serde_json::json!(["name", "event_server", "devices"])
    );
}

#[test]
fn schema_of_a_device_type() {
    let plugins = sim_plugin_dir();
    let out = run(
        gateway_host()
            .args(["schema", "sim", "--plugins-dir"])
            .arg(&plugins),
        None,
    );
    out.assert_exit(0);
    let schema: Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(schema["properties"]["period"].is_object(), "{schema}");

    let out = run(
        gateway_host()
            .args(["schema", "no_such_type", "--plugins-dir"])
            .arg(&plugins),
        None,
    );
    out.assert_exit(2);
    assert!(out.stderr.contains("no_such_type"), "{}", out.stderr);
}

#[test]
fn plugins_info_describes_sim() {
    let plugins = sim_plugin_dir();
    let out = run(
        gateway_host()
            .args(["plugins", "--plugins-dir"])
            .arg(&plugins)
            .args(["info", "sim"]),
        None,
    );
    out.assert_exit(0);
    assert!(out.stdout.contains("device type:  sim"), "{}", out.stdout);
}

#[test]
fn unknown_arguments_exit_2() {
    run(gateway_host().arg("--no-such-flag"), None).assert_exit(2);
    run(gateway_host().args(["check", "--conf"]), None).assert_exit(2);
}
