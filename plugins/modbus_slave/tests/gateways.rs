//! The slave inside real `gateway-host` processes on their embedded event servers:
//! `gateway-host check` accepts a hat-gateway entry with only `module` changed; our
//! `modbus_master` in one gateway-host reads from and writes to our `modbus_slave` in
//! another; hat-gateway 0.6.48's own modbus master does the same against our slave.
//! Events are observed and registered with our Eventer client on each server; every
//! event of the slave device is checked against hat-gateway 0.6.48's event schema.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{plugin_dir, target_dir, WAIT};
use gateway_eventer::client::{Client, ClientConfig, Notification};
use gateway_model::{EventType, RegisterEvent};
use gateway_test_support::{free_port, TempDir};
use serde_json::{json, Value};
use tokio::process::Child;
use tokio::sync::mpsc;

fn gateway_host() -> PathBuf {
    let exe = target_dir().join("gateway-host");
    assert!(
        exe.is_file(),
        "{} missing: cargo build -p gateway-host",
        exe.display()
    );
    exe
}

fn event_type(text: &str) -> EventType {
    text.split('/').map(String::from).collect()
}

/// hat-gateway 0.6.48's entry for a modbus slave, `module` already changed.
fn slave_entry(port: u16) -> Value {
    json!({
        "module": "modbus_slave",
        "name": "s",
        "modbus_type": "TCP",
        "transport": {
            "type": "TCP", "local_host": "127.0.0.1", "local_port": port,
            "remote_hosts": ["127.0.0.1"], "max_connections": 2,
            "response_timeout": 5, "keep_alive_timeout": 30
        },
        "data": [
            {"name": "hr", "device_id": 1, "data_type": "HOLDING_REGISTER",
             "start_address": 0, "bit_offset": 0, "bit_count": 16},
            {"name": "flag", "device_id": 1, "data_type": "COIL",
             "start_address": 3, "bit_offset": 0, "bit_count": 1},
            {"name": "fifo", "device_id": 1, "data_type": "QUEUE",
             "start_address": 7, "bit_offset": 0, "bit_count": 16}
        ]
    })
}

/// A modbus master entry (hat-gateway's shape) polling the slave's register and coil,
/// and its FIFO queue when `fifo`.
fn master_entry(module: &str, port: u16, fifo: bool) -> Value {
    let point = |name: &str, data_type: &str, start: u16| {
        json!({"name": name, "interval": 0.1, "data_type": data_type, "start_address": start,
               "bit_offset": 0, "bit_count": if data_type == "COIL" { 1 } else { 16 }})
    };
    let mut entry = json!({
        "module": module,
        "name": "m",
        "connection": {
            "modbus_type": "TCP",
            "transport": {"type": "TCP", "host": "127.0.0.1", "port": port},
            "connect_timeout": 5, "connect_delay": 0.2, "request_timeout": 2,
            "request_delay": 0, "request_retry_immediate_count": 0,
            "request_retry_delayed_count": 0, "request_retry_delay": 1
        },
        "remote_devices": [{
            "device_id": 1, "timeout_poll_delay": 0.2,
            "data": [point("hr", "HOLDING_REGISTER", 0), point("flag", "COIL", 3)]
        }]
    });
    if fifo {
        let data = entry["remote_devices"][0]["data"].as_array_mut().unwrap();
        data.push(point("fifo", "QUEUE", 7));
    }
    entry
}

fn gateway_conf(name: &str, eventer_port: u16, devices: Vec<Value>) -> Value {
    json!({
        "name": name,
        "event_server": {"embedded": {
            "store": "memory",
            "eventer_server": {"host": "127.0.0.1", "port": eventer_port},
            "enable_devices": true
        }},
        "devices": devices
    })
}

/// A child process killed on drop, its output in a log file.
struct Process {
    _child: Child,
}

fn spawn(command: &mut Command, log: &Path) -> Process {
    let log = std::fs::File::create(log).unwrap();
    let mut command = tokio::process::Command::from(std::mem::replace(command, Command::new("")));
    let child = command
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    Process { _child: child }
}

/// A gateway-host process on its embedded server.
fn start_gateway(dir: &TempDir, plugins: &Path, conf: &Value) -> Process {
    let name = conf["name"].as_str().unwrap();
    let path = dir.write(&format!("{name}.json"), &conf.to_string());
    spawn(
        Command::new(gateway_host())
            .arg("--conf")
            .arg(path)
            .arg("--plugins-dir")
            .arg(plugins),
        &dir.path().join(format!("{name}.log")),
    )
}

/// Our Eventer client on one server, subscribed to everything under `gateway`.
struct Observer {
    client: Client,
    notifications: mpsc::Receiver<Notification>,
}

impl Observer {
    async fn connect(port: u16) -> Self {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let mut config = ClientConfig::new("test/observer");
            config.subscriptions = vec![event_type("gateway/*")];
            match Client::connect(("127.0.0.1", port), config).await {
                Ok((client, notifications)) => {
                    return Self {
                        client,
                        notifications,
                    }
                }
                Err(err) if tokio::time::Instant::now() > deadline => {
                    panic!("no event server on {port}: {err}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// The payload of the next event of type `text` satisfying `pred`.
    async fn event(&mut self, text: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let wanted = event_type(text);
        loop {
            let notification = tokio::time::timeout(WAIT, self.notifications.recv())
                .await
                .unwrap_or_else(|_| panic!("no {text} event"))
                .expect("event server connection closed");
            let Notification::Events(events) = notification else {
                continue;
            };
            for event in events {
                let payload = event.payload.and_then(|p| p.json_value());
                // Every event of the slave device type (not the host's `running`, `enable`) is
                // checked against hat's schema.
                let text = event.event_type.join("/");
                if let (Some(tail), Some(payload)) =
                    (text.strip_prefix("gateway/gws/modbus_slave/s/"), &payload)
                {
                    let device_event = ["gateway/connections", "gateway/write", "system/write"]
                        .contains(&tail)
                        || tail.starts_with("system/data/");
                    if device_event {
                        common::HatSchemas::get().check(tail, payload);
                    }
                }
                if event.event_type == wanted {
                    if let Some(payload) = payload.filter(|p| pred(p)) {
                        return payload;
                    }
                }
            }
        }
    }

    async fn register(&self, text: &str, payload: Value) {
        self.client
            .register(vec![RegisterEvent::json(event_type(text), payload)])
            .await
            .unwrap();
    }
}

/// The slave's and the master's plugins in one private plugin directory.
fn plugins() -> TempDir {
    let dir = plugin_dir("gateways");
    let master = target_dir().join("libmodbus_master.so");
    assert!(
        master.is_file(),
        "{} missing: cargo build -p modbus_master",
        master.display()
    );
    let target = dir.path().join("libmodbus_master.so");
    std::fs::copy(&master, &target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

#[test]
fn check_accepts_a_hat_entry_and_names_the_pointer_of_a_bad_one() {
    let plugins = plugin_dir("check");
    let dir = TempDir::new("modbus-slave-check");
    let check = |conf: &Value| {
        let path = dir.write("gateway.json", &conf.to_string());
        Command::new(gateway_host())
            .args(["check", "--conf"])
            .arg(path)
            .arg("--plugins-dir")
            .arg(plugins.path())
            .output()
            .unwrap()
    };
    let mut conf = gateway_conf("gw", 1, vec![slave_entry(1502)]);
    let out = check(&conf);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The serial transport of hat's schema too.
    conf["devices"][0]["transport"] = json!({
        "type": "SERIAL", "port": "/dev/ttyS0", "baudrate": 9600, "bytesize": "EIGHTBITS",
        "parity": "NONE", "stopbits": "ONE",
        "flow_control": {"xonxoff": false, "rtscts": false, "dsrdtr": false},
        "silent_interval": 0.005, "response_timeout": 5, "keep_alive_timeout": 30
    });
    let out = check(&conf);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    conf["devices"][0]["data"][1]["data_type"] = json!("FLOAT");
    let out = check(&conf);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/devices/0/data/1/data_type"), "{stderr}");
}

/// A `system/data` value on the slave's gateway is read by the master; the master's
/// write becomes the slave's `gateway/write` and its result comes back.
async fn read_and_write_through(master: &mut Observer, slave: &mut Observer, prefix: &str) {
    let slave_prefix = "gateway/gws/modbus_slave/s";
    master
        .register(
            &format!("{prefix}/system/remote_device/1/enable"),
            json!(true),
        )
        .await;
    slave
        .register(
            &format!("{slave_prefix}/system/data/hr"),
            json!({"value": 4242}),
        )
        .await;
    let read = master
        .event(&format!("{prefix}/gateway/remote_device/1/read/hr"), |p| {
            p["value"] == 4242
        })
        .await;
    assert_eq!(read["result"], "SUCCESS");
    slave
        .register(
            &format!("{slave_prefix}/system/data/flag"),
            json!({"value": 1}),
        )
        .await;
    master
        .event(
            &format!("{prefix}/gateway/remote_device/1/read/flag"),
            |p| p["value"] == 1,
        )
        .await;

    for (request_id, success, result) in [("r1", true, "SUCCESS"), ("r2", false, "FUNCTION_ERROR")]
    {
        master
            .register(
                &format!("{prefix}/system/remote_device/1/write/hr"),
                json!({"request_id": request_id, "value": 7}),
            )
            .await;
        let write = slave
            .event(&format!("{slave_prefix}/gateway/write"), |_| true)
            .await;
        assert_eq!(write["data"], json!([{"name": "hr", "value": 7}]));
        slave
            .register(
                &format!("{slave_prefix}/system/write"),
                json!({"request_id": write["request_id"], "success": success}),
            )
            .await;
        let response = master
            .event(&format!("{prefix}/gateway/remote_device/1/write/hr"), |p| {
                p["request_id"] == request_id
            })
            .await;
        assert_eq!(response["result"], result);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_master_and_our_slave_in_two_gateways() {
    let plugins = plugins();
    let dir = TempDir::new("modbus-master-slave");
    let (slave_server, master_server, modbus_port) = (free_port(), free_port(), free_port());
    let _slave_gateway = start_gateway(
        &dir,
        plugins.path(),
        &gateway_conf("gws", slave_server, vec![slave_entry(modbus_port)]),
    );
    let mut slave = Observer::connect(slave_server).await;
    let _master_gateway = start_gateway(
        &dir,
        plugins.path(),
        &gateway_conf(
            "gwm",
            master_server,
            vec![master_entry("modbus_master", modbus_port, true)],
        ),
    );
    let mut master = Observer::connect(master_server).await;
    let connections = slave
        .event("gateway/gws/modbus_slave/s/gateway/connections", |p| {
            p.as_array().is_some_and(|a| a.len() == 1)
        })
        .await;
    assert_eq!(connections[0]["remote"]["host"], "127.0.0.1");
    read_and_write_through(&mut master, &mut slave, "gateway/gwm/modbus_master/m").await;
    // FC24 between our two implementations.
    slave
        .register(
            "gateway/gws/modbus_slave/s/system/data/fifo",
            json!({"value": 0x4242}),
        )
        .await;
    master
        .event(
            "gateway/gwm/modbus_master/m/gateway/remote_device/1/read/fifo",
            |p| p["value"] == 0x4242,
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hat_gateways_master_against_our_slave() {
    let venv = gateway_test_support::venv_with(&["bin/hat-gateway"]);
    let plugins = plugin_dir("hat-master");
    let dir = TempDir::new("modbus-hat-master");
    let (server, modbus_port) = (free_port(), free_port());
    let _gateway = start_gateway(
        &dir,
        plugins.path(),
        &gateway_conf("gws", server, vec![slave_entry(modbus_port)]),
    );
    let mut slave = Observer::connect(server).await;
    // hat-gateway uses our gateway's embedded server as its event server.
    let device = master_entry("hat.gateway.devices.modbus.master", modbus_port, false);
    let hat_conf = json!({
        "name": "hat",
        "event_server": {"eventer_server": {"host": "127.0.0.1", "port": server}},
        "devices": [device]
    });
    let path = dir.write("hat.json", &hat_conf.to_string());
    let _hat = spawn(
        Command::new(venv.join("bin/hat-gateway"))
            .arg("--conf")
            .arg(path),
        &dir.path().join("hat.log"),
    );
    // hat-gateway 0.6.48's prefix: gateway/<device type>/<name>.
    let prefix = "gateway/modbus_master/m";
    slave
        .register(&format!("{prefix}/system/enable"), json!(true))
        .await;
    slave
        .event("gateway/gws/modbus_slave/s/gateway/connections", |p| {
            p.as_array().is_some_and(|a| a.len() == 1)
        })
        .await;
    let mut master = Observer::connect(server).await;
    read_and_write_through(&mut master, &mut slave, prefix).await;
}
