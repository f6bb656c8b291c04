//! Side-by-side Modbus polling benchmark, gateway-host against Python hat-gateway 0.6.48,
//! in one run against one slave process.
//!
//! Load: 10 remote devices x 1000 holding registers (one point each), interval 100 ms,
//! i.e. 100,000 points/s, over one Modbus TCP connection to a Rust slave on loopback
//! (`support/slave.rs`, static values: after the first interrogation no point changes,
//! so this measures polling, not event traffic). Runs, one after the other, each for
//! `MODBUS_BENCH_SECS` (default 10) after a warm-up:
//!
//! 1. `gateway-host` (release binary) with the `modbus_master` plugin on its embedded
//!    event server;
//! 2. `gateway-host` against the real `hat-event-server` (LMDB backend);
//! 3. `hat-gateway` 0.6.48 (`hat.gateway.devices.modbus.master`) against the real
//!    `hat-event-server` (LMDB backend).
//!
//! Each gateway is enabled by events a Rust Eventer client registers (`system/enable`,
//! `system/remote_device/<id>/enable`); measuring starts once every remote device
//! reported `CONNECTED` plus a warm-up. Points read = registers the slave served in the
//! window; CPU = user + system time of the gateway process and its descendants from
//! `/proc/<pid>/stat`.
//!
//! Run with `plugins/modbus_master/bench/run.sh` (builds the release binaries first).
//! Needs `target/release/gateway-host` and `libmodbus_master.so` next to it (or
//! `GATEWAY_BIN_DIR`) and the venv (`GATEWAY_TEST_VENV`, default `.venv` in the
//! workspace; made by `scripts/test-env.sh`).
#![allow(clippy::unwrap_used)]

#[path = "support/slave.rs"]
mod slave;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use gateway_eventer::client::{Client, ClientConfig, Notification};
use gateway_model::{EventType, RegisterEvent};
use gateway_test_support::hat::lmdb_config;
use gateway_test_support::process::Proc;
use gateway_test_support::procstat::{peak_rss_mib, tree_cpu_seconds as tree_cpu};
use gateway_test_support::{free_port, venv_with};
use serde_json::{json, Value};
use tokio::sync::mpsc;

const REMOTE_DEVICES: u16 = 10;
const POINTS: u16 = 1000;
const INTERVAL: f64 = 0.1;
const WARM_UP: Duration = Duration::from_secs(3);
/// Bound on start-up: processes listening, every remote device `CONNECTED`.
const START_LIMIT: Duration = Duration::from_secs(60);
const GATEWAY_NAME: &str = "gw1";
const DEVICE_NAME: &str = "mm";
/// Target of the issue: 100,000 points/s under this share of one core.
const TARGET_CORE_PERCENT: f64 = 25.0;

#[derive(Clone, Copy, PartialEq)]
enum Gateway {
    HostEmbedded,
    HostRemote,
    Hat,
}

impl Gateway {
    fn label(self) -> &'static str {
        match self {
            Self::HostEmbedded => "gateway-host (embedded event server)",
            Self::HostRemote => "gateway-host + hat-event-server",
            Self::Hat => "hat-gateway 0.6.48 + hat-event-server",
        }
    }

    fn file_label(self) -> &'static str {
        match self {
            Self::HostEmbedded => "host-embedded",
            Self::HostRemote => "host-remote",
            Self::Hat => "hat-gateway",
        }
    }

    /// hat-gateway 0.6.48: `gateway/<type>/<name>`; ours adds the gateway name.
    fn prefix(self) -> EventType {
        let segments: &[&str] = match self {
            Self::Hat => &["gateway", "modbus_master", DEVICE_NAME],
            _ => &["gateway", GATEWAY_NAME, "modbus_master", DEVICE_NAME],
        };
        segments.iter().map(|s| s.to_string()).collect()
    }
}

struct Env {
    bin_dir: PathBuf,
    venv: PathBuf,
    work_dir: PathBuf,
}

/// Connects a client, retrying until the server listens or `proc` dies.
async fn connect(
    port: u16,
    subscriptions: Vec<EventType>,
    proc: &mut Proc,
) -> (Client, mpsc::Receiver<Notification>) {
    let deadline = Instant::now() + START_LIMIT;
    loop {
        let mut config = ClientConfig::new("bench/modbus");
        config.subscriptions = subscriptions.clone();
        match Client::connect(SocketAddr::from(([127, 0, 0, 1], port)), config).await {
            Ok(connected) => return connected,
            Err(e) if Instant::now() > deadline => panic!("{}: {e}", proc.label),
            Err(_) => {}
        }
        proc.check_alive();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn device_conf(slave_port: u16) -> Value {
    let remote_devices: Vec<_> = (1..=REMOTE_DEVICES)
        .map(|id| {
            let data: Vec<_> = (0..POINTS)
                .map(|a| {
                    json!({"name": format!("p{a}"), "interval": INTERVAL,
                           "data_type": "HOLDING_REGISTER", "start_address": a,
                           "bit_offset": 0, "bit_count": 16})
                })
                .collect();
            json!({"device_id": id, "timeout_poll_delay": 1, "data": data})
        })
        .collect();
    json!({
        "name": DEVICE_NAME,
        "connection": {
            "modbus_type": "TCP",
            "transport": {"type": "TCP", "host": "127.0.0.1", "port": slave_port},
            "connect_timeout": 5, "connect_delay": 1, "request_timeout": 2, "request_delay": 0,
            "request_retry_immediate_count": 0, "request_retry_delayed_count": 0,
            "request_retry_delay": 1
        },
        "remote_devices": remote_devices
    })
}

impl Env {
    fn write(&self, name: &str, value: &Value) -> PathBuf {
        let path = self.work_dir.join(name);
        std::fs::write(&path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
        path
    }

    fn hat_event_server(&self, port: u16) -> Proc {
        let conf = lmdb_config(&self.work_dir.join("event.db"), port, 1.0);
        let _ = std::fs::remove_file(self.work_dir.join("event.db"));
        let path = self.write("event.json", &conf);
        Proc::spawn(
            "hat-event-server",
            Command::new(self.venv.join("bin/hat-event-server"))
                .arg("--conf")
                .arg(path),
            &self.work_dir.join("event.log"),
        )
    }

    fn gateway(&self, kind: Gateway, port: u16, device: &Value) -> Proc {
        let label = kind.file_label();
        match kind {
            Gateway::Hat => {
                let mut device = device.clone();
                device["module"] = json!("hat.gateway.devices.modbus.master");
                let conf = json!({
                    "name": GATEWAY_NAME,
                    "event_server": {"eventer_server": {"host": "127.0.0.1", "port": port}},
                    "devices": [device]
                });
                let path = self.write(&format!("{label}.json"), &conf);
                Proc::spawn(
                    label,
                    Command::new(self.venv.join("bin/hat-gateway"))
                        .arg("--conf")
                        .arg(path),
                    &self.work_dir.join(format!("{label}.log")),
                )
            }
            Gateway::HostEmbedded | Gateway::HostRemote => {
                let mut device = device.clone();
                device["module"] = json!("modbus_master");
                let event_server = if kind == Gateway::HostEmbedded {
                    json!({"embedded": {
                        "store": "memory",
                        "eventer_server": {"host": "127.0.0.1", "port": port},
                        "enable_devices": false
                    }})
                } else {
                    json!({"eventer_server": {"host": "127.0.0.1", "port": port}})
                };
                let conf = json!({
                    "name": GATEWAY_NAME,
                    "event_server": event_server,
                    "devices": [device],
                    "log": {"level": "warn"}
                });
                let path = self.write(&format!("{label}.json"), &conf);
                Proc::spawn(
                    label,
                    Command::new(self.bin_dir.join("gateway-host"))
                        .arg("--plugins-dir")
                        .arg(&self.bin_dir)
                        .arg("--conf")
                        .arg(path)
                        .env_remove("RUST_LOG"),
                    &self.work_dir.join(format!("{label}.log")),
                )
            }
        }
    }
}

struct Measured {
    kind: Gateway,
    secs: f64,
    points: u64,
    cpu: f64,
    server_cpu: Option<f64>,
    rss_mib: f64,
}

impl Measured {
    fn points_per_sec(&self) -> f64 {
        self.points as f64 / self.secs
    }

    fn cpu_per_100k(&self) -> f64 {
        if self.points == 0 {
            f64::INFINITY
        } else {
            self.cpu / self.points as f64 * 100_000.0
        }
    }

    fn core_percent(&self) -> f64 {
        self.cpu / self.secs * 100.0
    }
}

/// Enables the device and every remote device, then waits until all report CONNECTED.
async fn enable_and_wait(kind: Gateway, port: u16, proc: &mut Proc) {
    let prefix = kind.prefix();
    let with = |suffix: &[&str]| -> EventType {
        let mut t = prefix.clone();
        t.extend(suffix.iter().map(|s| s.to_string()));
        t
    };
    let status = with(&["gateway", "remote_device", "?", "status"]);
    let (client, mut rx) = connect(port, vec![status], proc).await;
    let mut enables: Vec<RegisterEvent> = (1..=REMOTE_DEVICES)
        .map(|id| {
            RegisterEvent::json(
                with(&["system", "remote_device", &id.to_string(), "enable"]),
                json!(true),
            )
        })
        .collect();
    enables.push(RegisterEvent::json(
        with(&["system", "enable"]),
        json!(true),
    ));
    client.register(enables).await.unwrap();
    let mut connected = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + START_LIMIT;
    while connected.len() < usize::from(REMOTE_DEVICES) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) => panic!(
                "{}: only {} of {REMOTE_DEVICES} remote devices CONNECTED within {START_LIMIT:?}",
                kind.label(),
                connected.len()
            ),
            Ok(None) => panic!("{}: event server connection closed", kind.label()),
            Ok(Some(Notification::Events(events))) => {
                for event in events {
                    let id = event.event_type[prefix.len() + 2].clone();
                    let value = event.payload.and_then(|p| p.json_value());
                    if value == Some(json!("CONNECTED")) {
                        connected.insert(id);
                    } else {
                        connected.remove(&id);
                    }
                }
            }
            Ok(Some(Notification::Status(_))) => {}
        }
    }
    client.close().await;
}

async fn measure(env: &Env, kind: Gateway, slave: &mut slave::Slave, window: Duration) -> Measured {
    let port = free_port();
    let device = device_conf(slave.port);
    let mut server = (kind != Gateway::HostEmbedded).then(|| env.hat_event_server(port));
    if let Some(server) = server.as_mut() {
        // The gateway connects once; make sure the server listens first.
        connect(port, Vec::new(), server).await.0.close().await;
    }
    let mut gateway = env.gateway(kind, port, &device);
    enable_and_wait(kind, port, &mut gateway).await;
    tokio::time::sleep(WARM_UP).await;
    gateway.check_alive();
    let gw_pid = gateway.pid();
    let server_pid = server.as_ref().map(|s| s.pid());
    let (points0, cpu0, scpu0, t0) = (
        slave.served(),
        tree_cpu(gw_pid),
        server_pid.map(tree_cpu),
        Instant::now(),
    );
    tokio::time::sleep(window).await;
    let (points1, cpu1, scpu1, elapsed) = (
        slave.served(),
        tree_cpu(gw_pid),
        server_pid.map(tree_cpu),
        t0.elapsed(),
    );
    gateway.check_alive();
    let rss_mib = peak_rss_mib(gw_pid);
    drop(gateway);
    drop(server);
    Measured {
        kind,
        secs: elapsed.as_secs_f64(),
        points: points1 - points0,
        cpu: cpu1 - cpu0,
        server_cpu: scpu0.zip(scpu1).map(|(a, b)| b - a),
        rss_mib,
    }
}

fn environment() -> Env {
    let bin_dir = std::env::var_os("GATEWAY_BIN_DIR").map_or_else(
        || {
            // target/release/deps/side_by_side-<hash> -> target/release
            let exe = std::env::current_exe().unwrap();
            exe.parent().unwrap().parent().unwrap().to_path_buf()
        },
        PathBuf::from,
    );
    for needed in [
        bin_dir.join("gateway-host"),
        bin_dir.join("libmodbus_master.so"),
    ] {
        assert!(
            needed.exists(),
            "{} is missing: run plugins/modbus_master/bench/run.sh \
             (or cargo build --release -p gateway-host -p modbus_master)",
            needed.display()
        );
    }
    let venv = venv_with(&["bin/hat-gateway", "bin/hat-event-server"]);
    let work_dir = std::env::temp_dir().join(format!("modbus-side-by-side-{}", std::process::id()));
    std::fs::create_dir_all(&work_dir).unwrap();
    Env {
        bin_dir,
        venv,
        work_dir,
    }
}

fn main() {
    if let Ok(mode) = std::env::var(slave::SLAVE_ENV) {
        return slave::run_slave(mode == "changing");
    }
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let secs: u64 = std::env::var("MODBUS_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let env = environment();
    let mut slave = slave::Slave::spawn(false);
    println!(
        "Modbus side by side: {REMOTE_DEVICES} remote devices x {POINTS} holding registers every \
         {INTERVAL} s (offered {} points/s), one TCP connection to a Rust slave (pid {}) on \
         loopback, static values; {secs} s measured per gateway after a {WARM_UP:?} warm-up",
        (f64::from(REMOTE_DEVICES) * f64::from(POINTS) / INTERVAL) as u64,
        slave.pid()
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let window = Duration::from_secs(secs);
    let results: Vec<Measured> = [Gateway::HostEmbedded, Gateway::HostRemote, Gateway::Hat]
        .into_iter()
        .map(|kind| runtime.block_on(measure(&env, kind, &mut slave, window)))
        .collect();

    println!(
        "{:<40} {:>10} {:>16} {:>12} {:>14} {:>9}",
        "gateway", "points/s", "CPU s/100k pts", "% one core", "event server %", "peak RSS"
    );
    for r in &results {
        println!(
            "{:<40} {:>10.0} {:>16.4} {:>11.1}% {:>14} {:>6.1} MiB",
            r.kind.label(),
            r.points_per_sec(),
            r.cpu_per_100k(),
            r.core_percent(),
            r.server_cpu.map_or("in process".to_owned(), |c| format!(
                "{:.1}%",
                c / r.secs * 100.0
            )),
            r.rss_mib
        );
    }
    let ours = &results[0];
    let hat = &results[2];
    println!(
        "CPU per 100,000 points: hat-gateway / gateway-host (embedded) = {:.1}x, \
         hat-gateway / gateway-host (hat-event-server) = {:.1}x",
        hat.cpu_per_100k() / ours.cpu_per_100k(),
        hat.cpu_per_100k() / results[1].cpu_per_100k()
    );
    // Upstream scheduling (`docs/modbus-master.md` section 8) starts the next cycle
    // `interval` after the previous one started *and* finished, so the read rate stays a
    // little under the offered 100,000 points/s; the target is judged on CPU per 100,000
    // points.
    let normalised = ours.cpu_per_100k() * 100.0;
    println!(
        "target: 100,000 points/s under {TARGET_CORE_PERCENT}% of one core: gateway-host read \
         {:.0} points/s at {:.1}% of one core, i.e. {normalised:.1}% of one core per 100,000 \
         points/s -> {}",
        ours.points_per_sec(),
        ours.core_percent(),
        if normalised < TARGET_CORE_PERCENT {
            "met"
        } else {
            "NOT met"
        }
    );
    println!("published anchor (not measured here): Neuron reads 15,000 tags/s at 124% CPU");
    drop(slave);
    let _ = std::fs::remove_dir_all(&env.work_dir);
}
