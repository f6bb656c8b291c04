//! Configuration and start-up behaviours (`docs/gateway-semantics.md` section 12, 1-6
//! and 8) through the real `gateway-host` binary: bad configurations exit 2 with the
//! file, the JSON pointer and the reason, before any network activity.
#![allow(clippy::unwrap_used)]

mod cli_support;

use std::path::{Path, PathBuf};

use cli_support::{assert_no_connection, gateway_host, run, sim_plugin_dir, Output, TempDir};

/// A listener standing in for the event server: the test checks nobody connected.
fn event_server() -> (std::net::TcpListener, u16) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

fn config_with(port: u16, body: &str) -> String {
    format!("event_server:\n  eventer_server:\n    host: 127.0.0.1\n    port: {port}\n{body}")
}

/// Runs the daemon on `yaml` and asserts exit 2 with `pointer` in an error line naming
/// the file, and that nothing connected to the event server.
fn assert_daemon_refuses(yaml: &str, pointer: &str, listener: &std::net::TcpListener) -> Output {
    assert_daemon_refuses_with(yaml, pointer, listener, None).0
}

/// [`assert_daemon_refuses`], with `--plugins-dir` when given; also returns the path of
/// the configuration file.
fn assert_daemon_refuses_with(
    yaml: &str,
    pointer: &str,
    listener: &std::net::TcpListener,
    plugins_dir: Option<&Path>,
) -> (Output, PathBuf) {
    let dir = TempDir::new("host-cli");
    let path = dir.write("gateway.yaml", yaml);
    let mut cmd = gateway_host();
    cmd.arg("--conf").arg(&path);
    if let Some(plugins) = plugins_dir {
        cmd.arg("--plugins-dir").arg(plugins);
    }
    let out = run(&mut cmd, None);
    out.assert_exit(2);
    let expected = format!("{}: {pointer}: ", path.display());
    assert!(
        out.stderr.lines().any(|l| l.contains(&expected)),
        "expected an error line containing {expected:?}; stderr:\n{}",
        out.stderr
    );
    assert_no_connection(listener);
    (out, path)
}

#[test]
fn b01_missing_name_exits_2() {
    let (listener, port) = event_server();
    let out = assert_daemon_refuses(&config_with(port, "devices: []\n"), "/name", &listener);
    assert!(
        out.stderr.contains(r#""name" is a required property"#),
        "{}",
        out.stderr
    );
}

#[test]
fn b01_missing_event_server_exits_2() {
    let (listener, _) = event_server();
    assert_daemon_refuses("name: gw\ndevices: []\n", "/event_server", &listener);
}

#[test]
fn b01_missing_devices_exits_2() {
    let (listener, port) = event_server();
    assert_daemon_refuses(&config_with(port, "name: gw\n"), "/devices", &listener);
}

#[test]
fn b02_both_event_server_modes_exit_2() {
    let (listener, port) = event_server();
    let yaml = format!(
        "name: gw\ndevices: []\nevent_server:\n  eventer_server: {{host: 127.0.0.1, port: {port}}}\n  \
         monitor_component: {{host: 127.0.0.1, port: {port}, gateway_group: g, event_server_group: e}}\n"
    );
    let out = assert_daemon_refuses(&yaml, "/event_server", &listener);
    assert!(out.stderr.contains("exactly one of"), "{}", out.stderr);
}

#[test]
fn b02_no_event_server_mode_exits_2() {
    let (listener, _) = event_server();
    let out = assert_daemon_refuses(
        "name: gw\ndevices: []\nevent_server:\n  require_operational: true\n",
        "/event_server",
        &listener,
    );
    assert!(out.stderr.contains("found none"), "{}", out.stderr);
}

#[test]
fn b03_device_without_module_exits_2() {
    let (listener, port) = event_server();
    assert_daemon_refuses(
        &config_with(port, "name: gw\ndevices:\n  - name: d1\n"),
        "/devices/0/module",
        &listener,
    );
}

#[test]
fn b03_device_without_name_exits_2() {
    let (listener, port) = event_server();
    assert_daemon_refuses(
        &config_with(port, "name: gw\ndevices:\n  - module: sim\n"),
        "/devices/0/name",
        &listener,
    );
}

#[test]
fn b04_unknown_plugin_exits_2() {
    let (listener, port) = event_server();
    let out = assert_daemon_refuses(
        &config_with(
            port,
            "name: gw\ndevices:\n  - {module: no_such_plugin, name: d1}\n",
        ),
        "/devices/0/module",
        &listener,
    );
    assert!(out.stderr.contains("no_such_plugin"), "{}", out.stderr);
}

#[test]
fn b04_plugin_file_that_is_not_a_library_exits_2() {
    let (listener, port) = event_server();
    let dir = TempDir::new("host-cli");
    let junk = dir.write("libjunk.so", "this is not a shared library");
    let yaml = config_with(
        port,
        &format!(
            "name: gw\ndevices:\n  - {{module: '{}', name: d1}}\n",
            junk.display()
        ),
    );
    assert_daemon_refuses(&yaml, "/devices/0/module", &listener);
}

#[test]
fn b05_device_failing_its_plugin_schema_exits_2() {
    let plugins = sim_plugin_dir();
    let (listener, port) = event_server();
    assert_daemon_refuses_with(
        &config_with(
            port,
            "name: gw\ndevices:\n  - {module: sim, name: s1, period: fast}\n",
        ),
        "/devices/0/period",
        &listener,
        Some(&plugins),
    );
}

#[test]
fn b06_duplicate_type_and_name_exits_2() {
    let plugins = sim_plugin_dir();
    let (listener, port) = event_server();
    let (out, path) = assert_daemon_refuses_with(
        &config_with(
            port,
            "name: gw\ndevices:\n  - {module: sim, name: s1}\n  - {module: sim, name: s2}\n  \
             - {module: sim, name: s1}\n",
        ),
        "/devices/2/name",
        &listener,
        Some(&plugins),
    );
    assert!(
        out.stderr.contains(&format!(
            "{}: /devices/2/name: duplicate device: type \"sim\" and name \"s1\"",
            path.display()
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn b08_conf_dash_reads_stdin() {
    let valid = "name: gw\nevent_server: {embedded: {}}\ndevices: []\n";
    let out = run(gateway_host().args(["check", "--conf", "-"]), Some(valid));
    out.assert_exit(0);
    assert!(out.stdout.starts_with("<stdin>: valid"), "{}", out.stdout);

    // The daemon reads stdin too: the error names <stdin> and the pointer.
    let (listener, port) = event_server();
    let out = run(
        gateway_host().args(["--conf", "-"]),
        Some(&config_with(port, "devices: []\n")),
    );
    out.assert_exit(2);
    assert!(out.stderr.contains("<stdin>: /name: "), "{}", out.stderr);
    assert_no_connection(&listener);

    // JSON and TOML on stdin are detected.
    let json = r#"{"name": "gw", "event_server": {"embedded": {}}, "devices": []}"#;
    run(gateway_host().args(["check", "--conf", "-"]), Some(json)).assert_exit(0);
    let toml = "name = \"gw\"\ndevices = []\n[event_server.embedded]\n";
    run(gateway_host().args(["check", "--conf", "-"]), Some(toml)).assert_exit(0);
}

#[test]
fn b08_default_path_search_under_xdg_config_home() {
    let home = TempDir::new("host-cli");
    let hat = home.path().join("hat");
    std::fs::create_dir_all(&hat).unwrap();
    let check = || {
        let mut cmd = gateway_host();
        cmd.arg("check")
            .env("XDG_CONFIG_HOME", home.path())
            .env("HOME", home.path().join("no-home"));
        run(&mut cmd, None)
    };

    // Nothing there: exit 2, listing what was searched.
    let out = check();
    out.assert_exit(2);
    assert!(out.stderr.contains("gateway.yaml"), "{}", out.stderr);

    // gateway.json is used when it is the only one.
    let json = home.write(
        "hat/gateway.json",
        r#"{"name": "from-json", "event_server": {"embedded": {}}, "devices": []}"#,
    );
    let out = check();
    out.assert_exit(0);
    assert!(
        out.stdout.contains(&json.display().to_string()),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("from-json"), "{}", out.stdout);

    // .toml comes before .json, .yml before .toml, .yaml before .yml.
    home.write(
        "hat/gateway.toml",
        "name = \"from-toml\"\ndevices = []\n[event_server.embedded]\n",
    );
    assert!(check().stdout.contains("from-toml"));
    home.write(
        "hat/gateway.yml",
        "name: from-yml\nevent_server: {embedded: {}}\ndevices: []\n",
    );
    assert!(check().stdout.contains("from-yml"));
    let yaml = home.write(
        "hat/gateway.yaml",
        "event_server: {embedded: {}}\ndevices: []\n",
    );
    let out = check();
    out.assert_exit(2);
    assert!(
        out.stderr.contains(&format!("{}: /name: ", yaml.display())),
        "{}",
        out.stderr
    );

    // The daemon without --conf uses the same search.
    let mut cmd = gateway_host();
    cmd.env("XDG_CONFIG_HOME", home.path());
    let out = run(&mut cmd, None);
    out.assert_exit(2);
    assert!(
        out.stderr.contains(&format!("{}: /name: ", yaml.display())),
        "{}",
        out.stderr
    );
}
