//! RTU and ASCII framing against a real pymodbus slave: over TCP, and over a serial
//! line made of a socat pseudo-terminal pair (read, write and exception per framing).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn data() -> Value {
    json!([remote(
        3,
        json!([
            point("wide", "HOLDING_REGISTER", json!(0.2), 10, 8, 32),
            point("coils", "COIL", json!(0.2), 32, 0, 3),
            point("outside", "INPUT_REGISTER", json!(0.2), 700, 0, 16),
            point("w", "HOLDING_REGISTER", json!(null), 60, 4, 8),
        ])
    )])
}

/// Reads, an exception and a write through whatever transport `c` describes.
async fn exercise(c: &Value, slave: &mut Slave) {
    let (device, mut events) = start(c, &[3]);
    let mut seen = std::collections::BTreeMap::new();
    while seen.len() < 3 {
        let (t, v) = events.next().await;
        if let Some(name) = t.strip_prefix("gateway/remote_device/3/read/") {
            seen.insert(name.to_owned(), v);
        }
    }
    assert_eq!(
        seen["wide"],
        json!({"result": "SUCCESS", "value": 0x3456_789A_u32, "cause": "INTERROGATE"})
    );
    assert_eq!(
        seen["coils"],
        json!({"result": "SUCCESS", "value": 7, "cause": "INTERROGATE"})
    );
    assert_eq!(seen["outside"], json!({"result": "INVALID_DATA_ADDRESS"}));
    let write = json!({"request_id": "w1", "value": 0xAB});
    device
        .process_event(system_event("system/remote_device/3/write/w", write))
        .await;
    let result = events.until("gateway/remote_device/3/write/w").await;
    assert_eq!(result, json!({"request_id": "w1", "result": "SUCCESS"}));
    assert_eq!(slave.holding(60, 1).await, [0x0AB0]);
    device.close().await;
}

#[tokio::test]
async fn rtu_over_tcp() {
    let mut slave = Slave::start(&["--framer", "rtu"]).await;
    let mut c = conf(slave.port, data());
    c["connection"]["modbus_type"] = json!("RTU");
    exercise(&c, &mut slave).await;
}

#[tokio::test]
async fn ascii_over_tcp() {
    let mut slave = Slave::start(&["--framer", "ascii"]).await;
    let mut c = conf(slave.port, data());
    c["connection"]["modbus_type"] = json!("ASCII");
    exercise(&c, &mut slave).await;
}

/// A socat pseudo-terminal pair; killed and cleaned up on drop.
struct PtyPair {
    child: std::process::Child,
    dir: PathBuf,
}

impl PtyPair {
    async fn start(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("modbus-master-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let link = |end: &str| format!("pty,raw,echo=0,link={}", dir.join(end).display());
        let child = std::process::Command::new("socat")
            .args([link("master"), link("slave")])
            .spawn()
            .expect("socat is needed for the serial tests (scripts/test.sh installs it)");
        let pair = Self { child, dir };
        tokio::time::timeout(WAIT, async {
            while !(pair.end("master").exists() && pair.end("slave").exists()) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("socat did not create the pty pair");
        pair
    }

    fn end(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for PtyPair {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn serial_conf(port: &Path, modbus_type: &str) -> Value {
    let mut c = conf(0, data());
    c["connection"]["modbus_type"] = json!(modbus_type);
    c["connection"]["transport"] = json!({
        "type": "SERIAL", "port": port.display().to_string(), "baudrate": 19200,
        "bytesize": "EIGHTBITS", "parity": "NONE", "stopbits": "ONE",
        "flow_control": {"xonxoff": false, "rtscts": false, "dsrdtr": false},
        "silent_interval": 0.005
    });
    c
}

#[tokio::test]
async fn rtu_over_serial_pty() {
    let pty = PtyPair::start("rtu").await;
    let slave_end = pty.end("slave").display().to_string();
    let mut slave = Slave::start(&["--framer", "rtu", "--serial", &slave_end]).await;
    exercise(&serial_conf(&pty.end("master"), "RTU"), &mut slave).await;
}

#[tokio::test]
async fn ascii_over_serial_pty() {
    let pty = PtyPair::start("ascii").await;
    let slave_end = pty.end("slave").display().to_string();
    let mut slave = Slave::start(&["--framer", "ascii", "--serial", &slave_end]).await;
    exercise(&serial_conf(&pty.end("master"), "ASCII"), &mut slave).await;
}

#[tokio::test]
async fn serial_port_that_cannot_open_reports_disconnected() {
    let mut c = serial_conf(Path::new("/nonexistent/tty-for-modbus-test"), "RTU");
    c["connection"]["connect_delay"] = json!(0.1);
    let (device, mut events) = start(&c, &[]);
    events.expect("gateway/status", json!("CONNECTING")).await;
    events.expect("gateway/status", json!("DISCONNECTED")).await;
    events.expect("gateway/status", json!("CONNECTING")).await;
    device.close().await;
}
