//! The slave inside real `gateway-host` processes: `gateway-host check` accepts a
//! hat-gateway entry with only `module` changed, and a running gateway on its embedded
//! event server serves a hat-drivers master with the values registered through the
//! `gateway-host events` CLI.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{plugin_dir, target_dir, Master, WAIT};
use gateway_test_support::TempDir;
use serde_json::json;

fn gateway_host() -> PathBuf {
    let exe = target_dir().join("gateway-host");
    assert!(
        exe.is_file(),
        "{} missing: cargo build -p gateway-host",
        exe.display()
    );
    exe
}

/// hat-gateway 0.6.48's entry for an iec104 slave, `module` already changed.
const ENTRY: &str = "
  - module: iec104_slave
    name: slave1
    local_host: 127.0.0.1
    local_port: PORT
    remote_hosts: null
    max_connections: null
    response_timeout: 15
    supervisory_timeout: 10
    test_timeout: 20
    send_window_size: 12
    receive_window_size: 8
    buffers:
      - name: b1
        size: 100
    data:
      - data_type: SINGLE
        asdu_address: 1
        io_address: 1
        buffer: b1
      - data_type: FLOATING
        asdu_address: 1
        io_address: 2
        buffer: null
";

fn config(eventer_port: u16, slave_port: u16) -> String {
    format!(
        "name: gw\nevent_server:\n  embedded:\n    store: memory\n    eventer_server: {{host: 127.0.0.1, port: {eventer_port}}}\n    enable_devices: true\ndevices:{}",
        ENTRY.replace("PORT", &slave_port.to_string())
    )
}

#[test]
fn check_accepts_a_hat_entry_and_names_the_pointer_of_a_bad_one() {
    let plugins = plugin_dir("check");
    let dir = TempDir::new("iec104-slave-check");
    let good = dir.write("good.yaml", &config(1, 2404));
    let out = Command::new(gateway_host())
        .args(["check", "--conf"])
        .arg(&good)
        .arg("--plugins-dir")
        .arg(plugins.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let bad = dir.write(
        "bad.yaml",
        &config(1, 2404).replace("local_port: 2404", "local_port: \"2404\""),
    );
    let out = Command::new(gateway_host())
        .args(["check", "--conf"])
        .arg(&bad)
        .arg("--plugins-dir")
        .arg(plugins.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/devices/0/local_port"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_process_serves_a_master_with_registered_values() {
    let plugins = plugin_dir("daemon");
    let dir = TempDir::new("iec104-slave-daemon");
    let eventer_port = gateway_test_support::free_port();
    let slave_port = gateway_test_support::free_port();
    let conf = dir.write("gateway.yaml", &config(eventer_port, slave_port));
    // The embedded server logs every registered event at debug: the device's first
    // `gateway/connections` says it listens.
    let mut gateway = tokio::process::Command::new(gateway_host())
        .arg("--conf")
        .arg(&conf)
        .arg("--plugins-dir")
        .arg(plugins.path())
        .env("RUST_LOG", "info,gateway_host::embedded=debug")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
        gateway.stderr.take().unwrap(),
    ));
    // Read the log all along so the gateway never blocks on a full pipe.
    let (tx, mut log) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = tx.send(line);
        }
    });
    let mut wait_log = async |needle: &str| loop {
        let line = tokio::time::timeout(WAIT, log.recv())
            .await
            .expect("gateway log timed out")
            .expect("gateway exited");
        if line.contains(needle) {
            return;
        }
    };
    wait_log("slave1/gateway/connections payload=[]").await;
    let server = format!("127.0.0.1:{eventer_port}");
    let register = |tail: &str, payload: serde_json::Value| {
        let out = Command::new(gateway_host())
            .args(["events", "--server", &server, "register"])
            .arg(format!("gateway/gw/iec104_slave/slave1/{tail}"))
            .arg("--json")
            .arg(payload.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };

    let mut master = Master::connected(slave_port).await;
    master.interrogate("gi", 1).await;
    register(
        "system/data/floating/1/2",
        json!({"is_test": false, "cause": "SPONTANEOUS",
               "data": {"value": 4.5, "quality": common::measurement()}}),
    );
    let msg = master.msg().await;
    assert_eq!(msg["io_address"], 2);
    assert_eq!(msg["data"]["value"]["value"], 4.5);

    // Disabled, a value registered, enabled again: the new device reads the value
    // from the event server (the SDK query) and answers the interrogation with it.
    register("system/enable", json!(false));
    master.closed().await;
    // The list with the master (registered when it connected), then the empty one
    // the closing device registers last.
    wait_log("slave1/gateway/connections payload=[{").await;
    wait_log("slave1/gateway/connections payload=[]").await;
    register(
        "system/data/single/1/1",
        json!({"is_test": false, "cause": "SPONTANEOUS", "data": common::single("ON")}),
    );
    register("system/enable", json!(true));
    wait_log("slave1/gateway/connections payload=[]").await;
    assert!(master.connect(slave_port).await);
    let msgs = master.interrogate("gi", 1).await;
    let data: Vec<_> = msgs.iter().filter(|m| m["_type"] == "DataMsg").collect();
    assert_eq!(data.len(), 2, "{msgs:?}");
    assert_eq!(data[0]["io_address"], 1);
    assert_eq!(data[0]["data"]["value"], "ON");
    assert_eq!(data[1]["data"]["value"]["value"], 4.5);
    assert!(gateway.try_wait().unwrap().is_none(), "gateway exited");
}
