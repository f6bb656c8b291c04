//! Drop-in for hat-gateway 0.6 (issue 17): one hat-gateway configuration file, used
//! unchanged (hat module names, hat's `log` dictConfig, `type`/`version`, no
//! `event_types`), run once by hat-gateway 0.6.48 and once by gateway-host, each against
//! a fresh real hat-event-server 0.9.44 and a fresh field peer, driven by the same
//! scripted `system` events from the real Python eventer client. The events each
//! gateway registered (type and payload; timestamps ignored) must be the same, in the
//! same order. Two scenarios: `modbus.master` against a pymodbus slave
//! (`tests/py/hat_dropin.py`), and `iec104.master` against hat-drivers' own IEC 104
//! outstation, run by its driver (`tests/py/hat_dropin_iec104.py`).
//!
//! Deliberate differences between the two are listed in [`DELIBERATE_DIFFERENCES`]. The
//! scripted scenario exercises none of them, so its assertion is exact equality of the
//! whole sequence (a mismatch prints both sequences side by side); after it the event
//! server is killed, which exercises the first one: hat-gateway exits, gateway-host
//! stays up and reconnects, and the test asserts exactly that.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use gateway_test_support::hat::HatEventServer;
use gateway_test_support::process::spawn_logged;
use gateway_test_support::script::PyScript;
use gateway_test_support::{venv_with, workspace_dir, TempDir};
use serde_json::Value;

/// One differential scenario: a device of one hat module and the scripts around it.
struct Scenario {
    /// The device's prefix in hat-gateway 0.6's layout.
    prefix: &'static str,
    /// The plugin (cdylib name) gateway-host runs the device with.
    plugin: &'static str,
    /// The driver script in `tests/py`, run as `<driver> EVENT_PORT PREFIX`.
    driver: &'static str,
    /// The field peer, a script of its own (path from the workspace) that prints
    /// `PORT <n>`; `None`: the driver is the peer too and prints `PORT <n>` first.
    peer: Option<&'static str>,
    /// The `devices` entry (YAML, indented under `devices:`) for the peer's port.
    device: fn(u16) -> String,
}

const MODBUS: Scenario = Scenario {
    prefix: "gateway/modbus_master/plc1",
    plugin: "modbus_master",
    driver: "hat_dropin.py",
    peer: Some("plugins/modbus_master/tests/py/slave.py"),
    device: modbus_device,
};

const IEC104: Scenario = Scenario {
    prefix: "gateway/iec104_master/rtu1",
    plugin: "iec104_master",
    driver: "hat_dropin_iec104.py",
    peer: None,
    device: iec104_device,
};

/// What differs between hat-gateway 0.6.48 and gateway-host under
/// `event_types: hat-gateway-0.6` (README, "Switching from hat-gateway"), and why this
/// scenario does not see it.
const DELIBERATE_DIFFERENCES: &[&str] = &[
    "events arriving while a device is being created: buffered and delivered after \
     running=true (hat drops them); the scenario registers nothing during a create",
    "a lost or refused event-server connection: reconnect forever with backoff (hat exits); \
     asserted after the scenario, when the test kills the event server",
    "a device that stops consuming its queue is failed instead of stalling every device; \
     the device keeps up",
    "enable=false and enable=true in one notification always restart the device (hat may \
     coalesce them); the scenario waits for each step's events",
    "restart: on-failure (not a hat key; absent here, so hat's rule holds)",
    "a device's first events may come before running=true: a plugin's task runs on its \
     own threads as soon as create starts it, where hat's asyncio runs a device's task \
     only after the engine has sent running=true; compared up to that order (see \
     `in_hat_order`)",
];

/// The configuration, as hat-gateway's own documentation writes one: hat module names,
/// hat's logging dictConfig, `type` and `version`.
fn hat_config(event_port: u16, device: &str) -> String {
    format!(
        r#"type: gateway
version: 0.6.48
name: gw1
log:
  version: 1
  formatters:
    console_formatter:
      format: "[%(asctime)s %(levelname)s %(name)s] %(message)s"
  handlers:
    console_handler:
      class: logging.StreamHandler
      formatter: console_formatter
      level: DEBUG
  loggers:
    hat.gateway:
      level: INFO
  root:
    level: INFO
    handlers: [console_handler]
  disable_existing_loggers: false
event_server:
  eventer_server:
    host: 127.0.0.1
    port: {event_port}
devices:
{device}"#
    )
}

fn modbus_device(slave_port: u16) -> String {
    format!(
        r#"  - module: hat.gateway.devices.modbus.master
    name: plc1
    connection:
      modbus_type: TCP
      transport: {{type: TCP, host: 127.0.0.1, port: {slave_port}}}
      connect_timeout: 2
      connect_delay: 0.5
      request_timeout: 1
      request_delay: 0
      request_retry_immediate_count: 0
      request_retry_delayed_count: 0
      request_retry_delay: 0.5
    remote_devices:
      - device_id: 1
        timeout_poll_delay: 0.5
        data:
          - {{name: hr10, interval: 0.2, data_type: HOLDING_REGISTER, start_address: 10, bit_offset: 0, bit_count: 16}}
          - {{name: co32, interval: 0.2, data_type: COIL, start_address: 32, bit_offset: 0, bit_count: 1}}
          - {{name: hr5, interval: 0.2, data_type: HOLDING_REGISTER, start_address: 5, bit_offset: 0, bit_count: 16}}
"#
    )
}

fn iec104_device(outstation_port: u16) -> String {
    format!(
        r#"  - module: hat.gateway.devices.iec104.master
    name: rtu1
    remote_addresses:
      - {{host: 127.0.0.1, port: {outstation_port}}}
    response_timeout: 2
    supervisory_timeout: 0.1
    test_timeout: 5
    send_window_size: 12
    receive_window_size: 8
    reconnect_delay: 0.2
    time_sync_delay: null
"#
    )
}

#[derive(Debug, Clone, Copy)]
enum Gateway {
    Hat,
    Host,
}

impl Gateway {
    fn command(self, conf: &Path) -> Command {
        let program: PathBuf = match self {
            Gateway::Hat => venv_with(&["bin/hat-gateway"]).join("bin/hat-gateway"),
            Gateway::Host => PathBuf::from(env!("CARGO_BIN_EXE_gateway-host")),
        };
        let mut command = Command::new(program);
        command.arg("--conf").arg(conf);
        // Its pid file goes under the target dir, not into the home directory.
        command.env(
            "XDG_STATE_HOME",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("state"),
        );
        command
    }
}

/// The scenario's plugin cdylib next to the gateway-host binary (its own directory is
/// in the plugin search path).
fn require_plugin(scenario: &Scenario) {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_gateway-host"));
    let plugin = exe
        .parent()
        .unwrap()
        .join(format!("lib{}.so", scenario.plugin));
    assert!(
        plugin.is_file(),
        "{} is missing: build the plugins first (`cargo build --workspace --all-targets`, \
         as scripts/test.sh does, or `cargo build -p {}`)",
        plugin.display(),
        scenario.plugin
    );
}

/// What a gateway did when its event server was killed.
#[derive(Debug, PartialEq, Eq)]
enum OnLoss {
    /// The process ended.
    Exited,
    /// The process stayed up and tried to connect again.
    Reconnecting,
}

/// How long a gateway may take to react to the lost connection.
const LOSS_WAIT: Duration = Duration::from_secs(20);

/// Waits (bounded by [`LOSS_WAIT`]) until the gateway exited or logged a reconnection
/// attempt.
async fn on_loss(child: &mut std::process::Child, log: &Path) -> OnLoss {
    let deadline = std::time::Instant::now() + LOSS_WAIT;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return OnLoss::Exited;
        }
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains("cannot connect to event server") {
            return OnLoss::Reconnecting;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the gateway neither exited nor reconnected within {LOSS_WAIT:?}; log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// Kills the gateway process on drop.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `scenario` against `gateway`, then kills the event server; returns the events
/// the gateway registered, what it did on the lost connection, and its log.
async fn run(scenario: &Scenario, gateway: Gateway) -> (Vec<(String, Value)>, OnLoss, String) {
    let mut server = HatEventServer::start().await;
    // Kept alive for the whole run.
    let mut peer = scenario.peer.map(|script| {
        PyScript::start(&workspace_dir().join(script), &["--port", "0"])
            .with_wait(Duration::from_secs(30))
    });
    let driver_script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(scenario.driver);
    let port = server.addr.port().to_string();
    // Each step of the driver is bounded by its own timeout; this bounds one line.
    let mut driver = PyScript::start(&driver_script, &[port.as_str(), scenario.prefix])
        .with_wait(Duration::from_secs(120));
    let port_line = match &mut peer {
        Some(peer) => peer.line(|l| l.starts_with("PORT ")).await,
        None => driver.line(|l| l.starts_with("PORT ")).await,
    };
    let peer_port: u16 = port_line["PORT ".len()..].parse().unwrap();
    driver.line(|l| l == "READY").await;

    let dir = TempDir::new("hat-dropin");
    let conf = dir.write(
        "gateway.yaml",
        &hat_config(server.addr.port(), &(scenario.device)(peer_port)),
    );
    let log = dir.path().join("gateway.log");
    let label = format!("{gateway:?} gateway");
    let mut process = Killed(spawn_logged(&label, &mut gateway.command(&conf), &log));
    let mut lines = Vec::new();
    loop {
        let line = driver.next().await;
        if line == "DONE" {
            break;
        }
        if line.starts_with("TIMEOUT") {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            panic!(
                "{label}: driver {line}; events so far:\n{}\n--- gateway log:\n{text}",
                driver.drain().join("\n")
            );
        }
        lines.push(line);
    }
    server.kill();
    let loss = on_loss(&mut process.0, &log).await;
    drop(process);
    let events = lines
        .iter()
        .map(|line| {
            let value: Value = serde_json::from_str(line).unwrap();
            (
                value["type"].as_str().unwrap().to_owned(),
                value["payload"].clone(),
            )
        })
        .collect();
    (
        events,
        loss,
        std::fs::read_to_string(&log).unwrap_or_default(),
    )
}

fn show(prefix: &str, events: &[(String, Value)]) -> Vec<String> {
    events
        .iter()
        .map(|(t, p)| format!("{} {}", t.strip_prefix(prefix).unwrap_or(t), p))
        .collect()
}

/// Both sequences side by side, the first difference marked.
fn diff(hat: &[String], host: &[String]) -> String {
    let mut out = String::from("  # | hat-gateway 0.6.48 | gateway-host\n");
    for i in 0..hat.len().max(host.len()) {
        let a = hat.get(i).map_or("-", String::as_str);
        let b = host.get(i).map_or("-", String::as_str);
        let mark = if a == b { ' ' } else { '!' };
        out.push_str(&format!("{mark}{i:2} | {a} | {b}\n"));
    }
    out
}

/// Runs `scenario` under both gateways and asserts the same registered events, and the
/// one deliberate difference the end of the run provokes; returns gateway-host's events,
/// and the same shown without the prefix.
async fn differential(scenario: &Scenario) -> (Vec<(String, Value)>, Vec<String>) {
    require_plugin(scenario);
    let (hat_events, hat_loss, hat_log) = run(scenario, Gateway::Hat).await;
    let (host_events, host_loss, host_log) = run(scenario, Gateway::Host).await;
    let (hat, host) = (
        show(scenario.prefix, &hat_events),
        show(scenario.prefix, &host_events),
    );
    // Payloads compared as JSON values (key order is not significant).
    assert!(
        hat_events == in_hat_order(&host_events),
        "registered events differ:\n{}\n--- hat-gateway log:\n{hat_log}\n--- gateway-host log:\n{host_log}",
        diff(&hat, &host)
    );
    // The one deliberate difference the test provokes, and exactly it.
    assert_eq!(hat_loss, OnLoss::Exited, "hat-gateway log:\n{hat_log}");
    assert_eq!(
        host_loss,
        OnLoss::Reconnecting,
        "gateway-host log:\n{host_log}"
    );
    // gateway-host logged which layout it picked and what it mapped.
    assert!(
        host_log.contains("hat-gateway-0.6"),
        "no layout line in the log:\n{host_log}"
    );
    assert!(
        host_log.contains("handler") || host_log.contains("hat-gateway feature mapped"),
        "{host_log}"
    );
    (host_events, host)
}

/// `events` with each `running=true` moved before the events of the same device that
/// came before it since the previous `running` event (the deliberate difference in
/// [`DELIBERATE_DIFFERENCES`] about a device's first events): hat's order.
fn in_hat_order(events: &[(String, Value)]) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = Vec::new();
    // Where the events since the last `running` event start.
    let mut since_running = 0;
    for event in events {
        if event.0.ends_with("/gateway/running") {
            if event.1 == Value::Bool(true) {
                out.insert(since_running, event.clone());
            } else {
                out.push(event.clone());
            }
            since_running = out.len();
        } else {
            out.push(event.clone());
        }
    }
    out
}

#[test]
fn in_hat_order_moves_running_true_before_the_events_of_its_create() {
    let ev = |t: &str, v: Value| (t.to_owned(), v);
    let host = [
        ev("p/gateway/status", "CONNECTING".into()),
        ev("p/gateway/running", true.into()),
        ev("p/gateway/status", "CONNECTED".into()),
        ev("p/gateway/running", false.into()),
        ev("p/gateway/running", true.into()),
    ];
    let hat = [
        ev("p/gateway/running", true.into()),
        ev("p/gateway/status", "CONNECTING".into()),
        ev("p/gateway/status", "CONNECTED".into()),
        ev("p/gateway/running", false.into()),
        ev("p/gateway/running", true.into()),
    ];
    assert_eq!(in_hat_order(&host), hat);
    assert_eq!(in_hat_order(&hat), hat, "hat's own order is kept");
}

/// Every line of `expected` is one of `host`'s (the scenario really ran).
fn assert_marks(host: &[String], expected: &[&str]) {
    for expected in expected {
        assert!(
            host.iter().any(|l| l == expected),
            "{expected} missing:\n{}",
            host.join("\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hat_gateway_config_runs_unchanged_with_the_same_events() {
    assert!(!DELIBERATE_DIFFERENCES.is_empty());
    let (host_events, host) = differential(&MODBUS).await;
    // The scenario really ran: every step left its mark.
    let write = (
        format!("{}/gateway/remote_device/1/write/hr5", MODBUS.prefix),
        serde_json::json!({"request_id": "w1", "result": "SUCCESS"}),
    );
    assert!(
        host_events.contains(&write),
        "no write response:\n{}",
        host.join("\n")
    );
    assert_marks(
        &host,
        &[
            "/gateway/running true",
            "/gateway/running false",
            "/gateway/remote_device/1/status \"DISABLED\"",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hat_gateway_iec104_config_runs_unchanged_with_the_same_events() {
    let (_, host) = differential(&IEC104).await;
    assert_marks(
        &host,
        &[
            "/gateway/running true",
            "/gateway/status \"CONNECTED\"",
            "/gateway/running false",
        ],
    );
    // The data, the command's termination and the interrogation's each came through.
    for tail in [
        "/gateway/data/single/1/10 ",
        "/gateway/data/floating/1/20 ",
        "/gateway/command/single/1/30 ",
        "/gateway/interrogation/1 ",
    ] {
        assert!(
            host.iter().any(|l| l.starts_with(tail)),
            "no {tail}event:\n{}",
            host.join("\n")
        );
    }
    assert!(
        host.iter()
            .any(|l| l.starts_with("/gateway/interrogation/1 ")
                && l.contains("ACTIVATION_TERMINATION")),
        "{}",
        host.join("\n")
    );
}

/// `examples/hat-gateway/gateway.yaml`, written from hat-gateway's schemas with every
/// hat device module a plugin here implements: hat-gateway 0.6.48's own validator and
/// `gateway-host check` both accept it unchanged, and `check` names the layout and
/// what each hat module maps to.
#[test]
fn hat_gateway_example_configuration_passes_both_validators() {
    let example = workspace_dir().join("examples/hat-gateway/gateway.yaml");
    let python = venv_with(&["bin/python"]).join("bin/python");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/hat_validate.py");
    let hat = Command::new(python)
        .arg(script)
        .arg(&example)
        .output()
        .unwrap();
    assert!(
        hat.status.success(),
        "hat-gateway's validator refused the example:\n{}",
        String::from_utf8_lossy(&hat.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&hat.stdout).trim(), "VALID 7");

    let ours = Command::new(env!("CARGO_BIN_EXE_gateway-host"))
        .arg("check")
        .arg("--conf")
        .arg(&example)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&ours.stdout);
    let stderr = String::from_utf8_lossy(&ours.stderr);
    assert!(ours.status.success(), "check failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("event types: hat-gateway-0.6 (picked"),
        "{stdout}"
    );
    for (module, device_type) in [
        ("modbus.master", "modbus_master"),
        ("modbus.slave", "modbus_slave"),
        ("iec101.master", "iec101_master"),
        ("iec101.slave", "iec101_slave"),
        ("iec103.master", "iec103_master"),
        ("iec104.master", "iec104_master"),
        ("iec104.slave", "iec104_slave"),
    ] {
        let line = format!("hat.gateway.devices.{module} -> device type {device_type}");
        assert!(stdout.contains(&line), "{line} missing:\n{stdout}");
    }
    // What the log mapping leaves out is named.
    assert!(stderr.contains("syslog_handler"), "{stderr}");
}
