//! Side-by-side Modbus slave benchmark: gateway-host's `modbus_slave` against Python
//! hat-gateway 0.6.48's (`hat.gateway.devices.modbus.slave`), answering the same Rust
//! load generator in one run.
//!
//! Load: `CONNECTIONS` Modbus TCP connections on loopback, each a closed loop of FC03
//! reads of `REGISTERS_PER_READ` holding registers (unit 1, addresses cycling over the
//! `POINTS` configured 16-bit points), for `MODBUS_BENCH_SECS` (default 10) after a
//! warm-up. Runs, one after the other:
//!
//! 1. `gateway-host` (release binary) with the `modbus_slave` plugin on its embedded
//!    event server;
//! 2. `gateway-host` against the real `hat-event-server` (LMDB backend);
//! 3. `hat-gateway` 0.6.48 against the real `hat-event-server` (LMDB backend).
//!
//! Requests and registers served are counted by the load generator (every answer is
//! checked to be a normal FC03 response of the right length); CPU = user + system time
//! of the gateway process and its descendants from `/proc/<pid>/stat` over the window.
//! The results are printed and written to `plugins/modbus_slave/bench/results.json`.
//!
//! Run with `plugins/modbus_slave/bench/run.sh` (builds the release binaries first).
//! Needs `target/release/gateway-host` and `libmodbus_slave.so` next to it (or
//! `GATEWAY_BIN_DIR`) and the venv (`GATEWAY_TEST_VENV`, default `.venv` in the
//! workspace; made by `scripts/test-env.sh`).
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use gateway_eventer::client::{Client, ClientConfig};
use gateway_model::{EventType, RegisterEvent};
use gateway_test_support::hat::lmdb_config;
use gateway_test_support::process::Proc;
use gateway_test_support::procstat::{peak_rss_mib, tree_cpu_seconds as tree_cpu};
use gateway_test_support::{free_port, venv_with};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CONNECTIONS: usize = 4;
const POINTS: u16 = 1000;
const REGISTERS_PER_READ: u16 = 100;
const WARM_UP: Duration = Duration::from_secs(2);
/// Bound on start-up: processes listening, the slave accepting.
const START_LIMIT: Duration = Duration::from_secs(60);
const GATEWAY_NAME: &str = "gw1";
const DEVICE_NAME: &str = "ms";

#[derive(Clone, Copy, PartialEq)]
enum Gateway {
    HostEmbedded,
    HostRemote,
    Hat,
}

impl Gateway {
    fn label(self) -> &'static str {
        match self {
            Self::HostEmbedded => "gateway-host, embedded server",
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
    fn enable_type(self) -> EventType {
        let mut t = vec!["gateway".to_owned()];
        if self != Self::Hat {
            t.push(GATEWAY_NAME.to_owned());
        }
        t.extend(["modbus_slave", DEVICE_NAME, "system", "enable"].map(String::from));
        t
    }
}

struct Env {
    bin_dir: PathBuf,
    venv: PathBuf,
    work_dir: PathBuf,
}

fn device_conf(slave_port: u16) -> Value {
    let data: Vec<_> = (0..POINTS)
        .map(|a| {
            json!({"name": format!("p{a}"), "device_id": 1, "data_type": "HOLDING_REGISTER",
                   "start_address": a, "bit_offset": 0, "bit_count": 16})
        })
        .collect();
    json!({
        "name": DEVICE_NAME,
        "modbus_type": "TCP",
        "transport": {
            "type": "TCP", "local_host": "127.0.0.1", "local_port": slave_port,
            "remote_hosts": null, "max_connections": null, "response_timeout": 5,
            "keep_alive_timeout": null
        },
        "data": data
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
        let mut device = device.clone();
        match kind {
            Gateway::Hat => {
                device["module"] = json!("hat.gateway.devices.modbus.slave");
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
                device["module"] = json!("modbus_slave");
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

/// Connects an Eventer client, retrying until the server listens.
async fn eventer(port: u16, proc: &mut Proc) -> Client {
    let deadline = Instant::now() + START_LIMIT;
    loop {
        match Client::connect(
            SocketAddr::from(([127, 0, 0, 1], port)),
            ClientConfig::new("bench/modbus_slave"),
        )
        .await
        {
            Ok((client, _)) => return client,
            Err(e) if Instant::now() > deadline => panic!("{}: {e}", proc.label),
            Err(_) => {}
        }
        proc.check_alive();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the slave accepts connections.
async fn wait_listening(port: u16, proc: &mut Proc) {
    let deadline = Instant::now() + START_LIMIT;
    while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "{}: slave not listening",
            proc.label
        );
        proc.check_alive();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What one load connection did while `measuring` was set.
#[derive(Default)]
struct Load {
    requests: u64,
    latencies_us: Vec<u32>,
}

/// A closed loop of FC03 reads until `stop`; counts only after `start`.
async fn load(port: u16, start: Instant, stop: Instant, offset: u16) -> Load {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let mut out = Load::default();
    let mut tid: u16 = 0;
    let mut address = offset * REGISTERS_PER_READ % POINTS;
    let response_len = 9 + 2 * usize::from(REGISTERS_PER_READ);
    let mut response = vec![0u8; response_len];
    loop {
        let now = Instant::now();
        if now >= stop {
            return out;
        }
        tid = tid.wrapping_add(1);
        let mut request = Vec::with_capacity(12);
        request.extend_from_slice(&tid.to_be_bytes());
        request.extend_from_slice(&[0, 0, 0, 6, 1, 3]);
        request.extend_from_slice(&address.to_be_bytes());
        request.extend_from_slice(&REGISTERS_PER_READ.to_be_bytes());
        stream.write_all(&request).await.unwrap();
        stream.read_exact(&mut response).await.unwrap();
        assert_eq!(&response[..2], &tid.to_be_bytes(), "transaction id");
        assert_eq!(response[7], 3, "not a normal FC03 answer: {response:?}");
        if now >= start {
            out.requests += 1;
            out.latencies_us.push(now.elapsed().as_micros() as u32);
        }
        address = (address + REGISTERS_PER_READ) % POINTS;
    }
}

struct Measured {
    kind: Gateway,
    secs: f64,
    requests: u64,
    cpu: f64,
    rss_mib: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl Measured {
    fn requests_per_sec(&self) -> f64 {
        self.requests as f64 / self.secs
    }

    fn registers(&self) -> u64 {
        self.requests * u64::from(REGISTERS_PER_READ)
    }

    fn cpu_per_100k(&self) -> f64 {
        self.cpu / self.registers() as f64 * 100_000.0
    }

    fn core_percent(&self) -> f64 {
        self.cpu / self.secs * 100.0
    }

    fn json(&self) -> Value {
        json!({
            "gateway": self.kind.label(),
            "seconds": self.secs,
            "requests": self.requests,
            "requests_per_sec": self.requests_per_sec(),
            "registers_per_sec": self.registers() as f64 / self.secs,
            "cpu_seconds": self.cpu,
            "cpu_seconds_per_100k_registers": self.cpu_per_100k(),
            "core_percent": self.core_percent(),
            "latency_p50_ms": self.p50_ms,
            "latency_p99_ms": self.p99_ms,
            "peak_rss_mib": self.rss_mib,
        })
    }
}

async fn measure(env: &Env, kind: Gateway, window: Duration) -> Measured {
    let port = free_port();
    let slave_port = free_port();
    let mut server = (kind != Gateway::HostEmbedded).then(|| env.hat_event_server(port));
    if let Some(server) = server.as_mut() {
        // The gateway connects once; make sure the server listens first.
        eventer(port, server).await.close().await;
    }
    let mut gateway = env.gateway(kind, port, &device_conf(slave_port));
    let client = eventer(port, server.as_mut().unwrap_or(&mut gateway)).await;
    client
        .register(vec![RegisterEvent::json(kind.enable_type(), json!(true))])
        .await
        .unwrap();
    wait_listening(slave_port, &mut gateway).await;
    let start = Instant::now() + WARM_UP;
    let stop = start + window;
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|i| tokio::spawn(load(slave_port, start, stop, i as u16)))
        .collect();
    tokio::time::sleep_until(start.into()).await;
    let cpu_start = tree_cpu(gateway.pid());
    tokio::time::sleep_until(stop.into()).await;
    let cpu = tree_cpu(gateway.pid()) - cpu_start;
    let mut requests = 0;
    let mut latencies = Vec::new();
    for task in tasks {
        let load = task.await.unwrap();
        requests += load.requests;
        latencies.extend(load.latencies_us);
    }
    latencies.sort_unstable();
    let quantile = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |us| f64::from(*us) / 1000.0)
    };
    let rss_mib = peak_rss_mib(gateway.pid());
    gateway.check_alive();
    client.close().await;
    Measured {
        kind,
        secs: window.as_secs_f64(),
        requests,
        cpu,
        rss_mib,
        p50_ms: quantile(0.5),
        p99_ms: quantile(0.99),
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
        bin_dir.join("libmodbus_slave.so"),
    ] {
        assert!(
            needed.exists(),
            "{} is missing: run plugins/modbus_slave/bench/run.sh \
             (or cargo build --release -p gateway-host -p modbus_slave)",
            needed.display()
        );
    }
    let venv = venv_with(&["bin/hat-gateway", "bin/hat-event-server"]);
    let work_dir =
        std::env::temp_dir().join(format!("modbus-slave-side-by-side-{}", std::process::id()));
    std::fs::create_dir_all(&work_dir).unwrap();
    Env {
        bin_dir,
        venv,
        work_dir,
    }
}

fn main() {
    let secs: u64 = std::env::var("MODBUS_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let env = environment();
    println!(
        "Modbus slave side by side: {CONNECTIONS} TCP connections on loopback, each a closed \
         loop of FC03 reads of {REGISTERS_PER_READ} registers over {POINTS} configured points; \
         {secs} s measured per gateway after a {WARM_UP:?} warm-up"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let window = Duration::from_secs(secs);
    let results: Vec<Measured> = [Gateway::HostEmbedded, Gateway::HostRemote, Gateway::Hat]
        .into_iter()
        .map(|kind| runtime.block_on(measure(&env, kind, window)))
        .collect();
    println!(
        "{:<40} {:>10} {:>12} {:>16} {:>11} {:>9} {:>9} {:>9}",
        "gateway",
        "req/s",
        "registers/s",
        "CPU s/100k regs",
        "% one core",
        "p50 ms",
        "p99 ms",
        "peak RSS"
    );
    for r in &results {
        println!(
            "{:<40} {:>10.0} {:>12.0} {:>16.4} {:>10.1}% {:>9.3} {:>9.3} {:>5.1} MiB",
            r.kind.label(),
            r.requests_per_sec(),
            r.registers() as f64 / r.secs,
            r.cpu_per_100k(),
            r.core_percent(),
            r.p50_ms,
            r.p99_ms,
            r.rss_mib
        );
    }
    let (ours, hat) = (&results[0], &results[2]);
    println!(
        "hat-gateway / gateway-host (embedded): {:.1}x the CPU per 100,000 registers, \
         gateway-host serves {:.1}x the requests per second",
        hat.cpu_per_100k() / ours.cpu_per_100k(),
        ours.requests_per_sec() / hat.requests_per_sec()
    );
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench/results.json");
    let report = json!({
        "load": {
            "connections": CONNECTIONS,
            "registers_per_read": REGISTERS_PER_READ,
            "points": POINTS,
            "window_seconds": secs,
        },
        "results": results.iter().map(Measured::json).collect::<Vec<_>>(),
    });
    std::fs::write(&out, serde_json::to_vec_pretty(&report).unwrap()).unwrap();
    println!("written to {}", out.display());
    let _ = std::fs::remove_dir_all(&env.work_dir);
}
