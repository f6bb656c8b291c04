//! The master inside a real `gateway-host` process on its embedded event server: it
//! connects to a hat-drivers outstation, the data it receives is registered in the
//! server, and a command registered through the `gateway-host events` CLI reaches the
//! outstation.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};

use common::{Outstation, WAIT};
use gateway_test_support::TempDir;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_process_runs_the_master_against_a_real_outstation() {
    let gateway_host = common::target_dir().join("gateway-host");
    assert!(gateway_host.is_file(), "cargo build -p gateway-host");
    let plugins = common::plugin_dir("daemon");
    let dir = TempDir::new("iec104-master-daemon");
    let mut outstation = Outstation::start().await;
    let eventer_port = gateway_test_support::free_port();
    let conf = dir.write(
        "gateway.yaml",
        &format!(
            "name: gw
event_server:
  embedded:
    store: memory
    eventer_server: {{host: 127.0.0.1, port: {eventer_port}}}
    enable_devices: true
devices:
  - module: iec104_master
    name: master1
    remote_addresses: [{{host: 127.0.0.1, port: {}}}]
    response_timeout: 15
    supervisory_timeout: 10
    test_timeout: 20
    send_window_size: 12
    receive_window_size: 8
    reconnect_delay: 1
    time_sync_delay: null
",
            outstation.port
        ),
    );
    // The embedded server logs every registered event at debug.
    let mut gateway = tokio::process::Command::new(&gateway_host)
        .arg("--conf")
        .arg(&conf)
        .arg("--plugins-dir")
        .arg(plugins.path())
        .env("RUST_LOG", "info,gateway_host::embedded=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(gateway.stderr.take().unwrap()).lines();
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
            return line;
        }
    };
    wait_log("master1/gateway/status payload=\"CONNECTED\"").await;
    outstation.line(|l| l == "CONNECT").await;
    outstation
        .send("[iec104.DataMsg(is_test=False, originator_address=0, asdu_address=1, io_address=2, data=iec104.FloatingData(value=iec104.FloatingValue(value=2.5), quality=MQ), time=T, cause=iec104.DataResCause.SPONTANEOUS)]")
        .await;
    let line = wait_log("master1/gateway/data/floating/1/2").await;
    assert!(line.contains("\"value\":2.5"), "{line}");

    let server = format!("127.0.0.1:{eventer_port}");
    let out = Command::new(&gateway_host)
        .args(["events", "--server", &server, "register"])
        .arg("gateway/gw/iec104_master/master1/system/command/double/1/7")
        .arg("--json")
        .arg(json!({"is_test": false, "cause": "ACTIVATION", "command": {"value": "ON", "select": true, "qualifier": 1}}).to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let msg = outstation.msg("CommandMsg").await;
    assert_eq!(
        (&msg["io_address"], &msg["command"]["value"]),
        (&json!(7), &json!("ON"))
    );
    wait_log("master1/gateway/command/double/1/7").await;
    assert!(gateway.try_wait().unwrap().is_none(), "gateway exited");
}
