//! Our `iec104_master` against our `iec104_slave`, each inside its own `gateway-host`
//! process on its embedded event server: a value registered at the slave's gateway
//! arrives as a data event at the master's, and a command goes from the master's
//! gateway to the slave's and its response comes back.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{plugin_dir, target_dir, WAIT};
use gateway_test_support::{free_port, TempDir};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;
use tokio::sync::mpsc;

/// A `gateway-host` process whose log (every registered event at debug) is read.
struct Gateway {
    _child: Child,
    log: mpsc::UnboundedReceiver<String>,
    eventer_port: u16,
}

impl Gateway {
    fn start(dir: &TempDir, name: &str, devices: &str, plugins: &Path) -> Gateway {
        let eventer_port = free_port();
        let conf = dir.write(
            &format!("{name}.yaml"),
            &format!(
                "name: {name}\nevent_server:\n  embedded:\n    store: memory\n    eventer_server: {{host: 127.0.0.1, port: {eventer_port}}}\n    enable_devices: true\ndevices:\n{devices}"
            ),
        );
        let mut child = tokio::process::Command::new(target_dir().join("gateway-host"))
            .arg("--conf")
            .arg(conf)
            .arg("--plugins-dir")
            .arg(plugins)
            .env("RUST_LOG", "info,gateway_host::embedded=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        // Read the log all along so the gateway never blocks on a full pipe.
        let (tx, log) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = tx.send(line);
            }
        });
        Gateway {
            _child: child,
            log,
            eventer_port,
        }
    }

    /// Waits for a registered event whose type ends with `tail`; returns its payload.
    async fn event(&mut self, tail: &str) -> Value {
        let needle = format!("{tail} payload=");
        loop {
            let line = tokio::time::timeout(WAIT, self.log.recv())
                .await
                .unwrap_or_else(|_| panic!("no {tail} event"))
                .expect("gateway exited");
            if let Some(at) = line.find(&needle) {
                return serde_json::from_str(&line[at + needle.len()..]).unwrap();
            }
        }
    }

    /// Registers an event on this gateway's embedded server with the events CLI.
    fn register(&self, event_type: &str, payload: Value) {
        let out = Command::new(target_dir().join("gateway-host"))
            .args(["events", "--server"])
            .arg(format!("127.0.0.1:{}", self.eventer_port))
            .arg("register")
            .arg(event_type)
            .arg("--json")
            .arg(payload.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The slave's and the master's plugins in one private plugin directory.
fn plugins() -> TempDir {
    let dir = plugin_dir("master-slave");
    let master = target_dir().join("libiec104_master.so");
    assert!(
        master.is_file(),
        "{} missing: cargo build -p iec104_master",
        master.display()
    );
    let target = dir.path().join("libiec104_master.so");
    std::fs::copy(&master, &target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_and_a_command_round_trip_between_two_gateways() {
    let plugins = plugins();
    let dir = TempDir::new("iec104-master-slave");
    let slave_port = free_port();
    let mut slave = Gateway::start(
        &dir,
        "gws",
        &format!(
            "  - module: iec104_slave
    name: s
    local_host: 127.0.0.1
    local_port: {slave_port}
    remote_hosts: [127.0.0.1]
    max_connections: 1
    response_timeout: 15
    supervisory_timeout: 0.05
    test_timeout: 20
    send_window_size: 12
    receive_window_size: 8
    buffers: []
    data:
      - {{data_type: FLOATING, asdu_address: 1, io_address: 2, buffer: null}}
"
        ),
        plugins.path(),
    );
    assert_eq!(
        slave.event("gws/iec104_slave/s/gateway/connections").await,
        json!([])
    );
    let mut master = Gateway::start(
        &dir,
        "gwm",
        &format!(
            "  - module: iec104_master
    name: m
    remote_addresses: [{{host: 127.0.0.1, port: {slave_port}}}]
    response_timeout: 15
    supervisory_timeout: 0.05
    test_timeout: 20
    send_window_size: 12
    receive_window_size: 8
    reconnect_delay: 0.2
    time_sync_delay: null
"
        ),
        plugins.path(),
    );
    let connections = slave.event("gws/iec104_slave/s/gateway/connections").await;
    assert_eq!(connections[0]["connection_id"], 1);
    while master.event("gwm/iec104_master/m/gateway/status").await != json!("CONNECTED") {}

    // Data: slave gateway -> master gateway.
    slave.register(
        "gateway/gws/iec104_slave/s/system/data/floating/1/2",
        json!({"is_test": false, "cause": "SPONTANEOUS",
               "data": {"value": 12.5, "quality": common::measurement()}}),
    );
    let data = master
        .event("gwm/iec104_master/m/gateway/data/floating/1/2")
        .await;
    assert_eq!(data["cause"], "SPONTANEOUS");
    assert_eq!(data["data"]["value"], 12.5);

    // Command: master gateway -> slave gateway, and the response back.
    let command = json!({"value": "ON", "select": false, "qualifier": 0});
    master.register(
        "gateway/gwm/iec104_master/m/system/command/single/1/5",
        json!({"is_test": false, "cause": "ACTIVATION", "command": command}),
    );
    let request = slave
        .event("gws/iec104_slave/s/gateway/command/single/1/5")
        .await;
    assert_eq!(
        request,
        json!({"connection_id": 1, "is_test": false, "cause": "ACTIVATION", "command": command})
    );
    slave.register(
        "gateway/gws/iec104_slave/s/system/command/single/1/5",
        json!({"connection_id": 1, "is_test": false, "cause": "ACTIVATION_CONFIRMATION",
               "is_negative_confirm": true, "command": command}),
    );
    let response = master
        .event("gwm/iec104_master/m/gateway/command/single/1/5")
        .await;
    assert_eq!(
        response,
        json!({"is_test": false, "is_negative_confirm": true,
               "cause": "ACTIVATION_CONFIRMATION", "command": command})
    );
}
