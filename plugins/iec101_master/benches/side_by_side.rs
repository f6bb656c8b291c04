//! Side-by-side IEC 60870-5-101 master benchmark: gateway-host's `iec101_master` and
//! hat-gateway 0.6.48's, polling the same hat-drivers outstation script
//! (`bench/outstation.py`: unbalanced slave link, class 1 queue kept full of full
//! M_ME_NC_1 ASDUs, 48 points each) over a socat pty pair at 115200 baud, one after the
//! other, each into a shared event server (a gateway-host process with only its
//! embedded server, not the bottleneck).
//!
//! Each gateway runs twice: through `bench/line.py` (two pty pairs and a relay that
//! paces each direction to 115200 baud, 10 bits a character: a pty pair alone has no
//! baud rate) and straight over one pty pair (as fast as the processes go).
//!
//! Per run: points/s a subscriber on the event server received over
//! `IEC101_BENCH_SECS` (default 10) after a warm-up, and the CPU seconds (user + system
//! of the gateway's process tree, from `/proc`) per 100,000 points; and the line's
//! physical limit: bits per second / bits per point, where a point costs its share of
//! one class 1 request (fixed frame) and one response (variable frame), 10 bits a
//! character (8N1), without the silent interval and turnaround times.
//!
//! Run with `plugins/iec101_master/bench/run.sh` (builds the release binaries first).
//! `GATEWAY_BIN_DIR` and `GATEWAY_TEST_VENV` override where the binaries and the venv
//! are; `IEC101_BENCH_RESULTS` where the results JSON is written.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway_eventer::client::{Client, ClientConfig, Notification};
use gateway_model::{EventType, RegisterEvent};
use gateway_test_support::process::Proc;
use gateway_test_support::procstat::{peak_rss_mib, tree_cpu_seconds};
use gateway_test_support::pty::PtyPair;
use gateway_test_support::{free_port, venv_with};
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// Line speed.
const BAUDRATE: u32 = 115_200;
/// Bits per character on the line (start, 8 data, no parity, stop).
const BITS_PER_CHAR: u32 = 10;
/// Information objects the outstation reports.
const POINTS: u32 = 960;
const WARM_UP: Duration = Duration::from_secs(3);
/// Bound on start-up: processes listening, the remote device CONNECTED.
const START_LIMIT: Duration = Duration::from_secs(60);
const GATEWAY_NAME: &str = "gw1";
const DEVICE_NAME: &str = "m";

#[derive(Clone, Copy, PartialEq)]
enum Gateway {
    Host,
    Hat,
}

impl Gateway {
    fn name(self) -> &'static str {
        match self {
            Self::Host => "gateway-host",
            Self::Hat => "hat-gateway 0.6.48",
        }
    }

    /// hat-gateway 0.6.48: `gateway/<type>/<name>`; ours adds the gateway name.
    fn event_type(self, suffix: &[&str]) -> EventType {
        let prefix: &[&str] = match self {
            Self::Hat => &["gateway", "iec101_master", DEVICE_NAME],
            Self::Host => &["gateway", GATEWAY_NAME, "iec101_master", DEVICE_NAME],
        };
        prefix
            .iter()
            .chain(suffix)
            .map(|s| (*s).to_owned())
            .collect()
    }
}

struct Env {
    bin_dir: PathBuf,
    venv: PathBuf,
    work_dir: PathBuf,
}

impl Env {
    fn write(&self, name: &str, value: &Value) -> PathBuf {
        let path = self.work_dir.join(name);
        std::fs::write(&path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
        path
    }

    fn gateway_host(&self, label: &str, event_server: Value, devices: Vec<Value>) -> Proc {
        let conf = json!({
            "name": GATEWAY_NAME,
            "event_server": event_server,
            "devices": devices,
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

    fn event_server(&self, port: u16) -> Proc {
        let embedded = json!({"embedded": {
            "store": "memory",
            "eventer_server": {"host": "127.0.0.1", "port": port},
            "enable_devices": false
        }});
        self.gateway_host("event-server", embedded, Vec::new())
    }

    fn gateway(&self, kind: Gateway, port: u16, line: &str) -> Proc {
        let mut device = device_conf(line);
        match kind {
            Gateway::Hat => {
                device["module"] = json!("hat.gateway.devices.iec101.master");
                let conf = json!({
                    "name": GATEWAY_NAME,
                    "event_server": {"eventer_server": {"host": "127.0.0.1", "port": port}},
                    "devices": [device]
                });
                let path = self.write("hat-gateway.json", &conf);
                Proc::spawn(
                    "hat-gateway",
                    Command::new(self.venv.join("bin/hat-gateway"))
                        .arg("--conf")
                        .arg(path),
                    &self.work_dir.join("hat-gateway.log"),
                )
            }
            Gateway::Host => {
                device["module"] = json!("iec101_master");
                let server = json!({"eventer_server": {"host": "127.0.0.1", "port": port}});
                self.gateway_host("gateway-host", server, vec![device])
            }
        }
    }

    /// `line.py` between two pty ends, paced to `BAUDRATE`.
    fn line(&self, a: &str, b: &str) -> Proc {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench/line.py");
        Proc::spawn(
            "line",
            Command::new(self.venv.join("bin/python"))
                .arg(script)
                .args(["--a", a, "--b", b, "--baudrate", &BAUDRATE.to_string()]),
            &self.work_dir.join("line.log"),
        )
    }

    fn outstation(&self, line: &str) -> Proc {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench/outstation.py");
        Proc::spawn(
            "outstation",
            Command::new(self.venv.join("bin/python"))
                .arg(script)
                .args(["--port", line, "--points", &POINTS.to_string()])
                .args(["--baudrate", &BAUDRATE.to_string()]),
            &self.work_dir.join("outstation.log"),
        )
    }
}

fn device_conf(line: &str) -> Value {
    json!({
        "name": DEVICE_NAME,
        "port": line,
        "baudrate": BAUDRATE,
        "bytesize": "EIGHTBITS",
        "parity": "NONE",
        "stopbits": "ONE",
        "flow_control": {"xonxoff": false, "rtscts": false, "dsrdtr": false},
        "silent_interval": 0.001,
        "cause_size": "TWO",
        "asdu_address_size": "TWO",
        "io_address_size": "THREE",
        "reconnect_delay": 1,
        "link_type": "UNBALANCED",
        "device_address_size": "ONE",
        "remote_devices": [{
            "address": 1,
            "response_timeout": 1,
            "send_retry_count": 3,
            "poll_class1_delay": 1,
            "poll_class2_delay": null,
            "reconnect_delay": 1,
            "time_sync_delay": null
        }]
    })
}

async fn connect(
    port: u16,
    subscriptions: Vec<EventType>,
    proc: &mut Proc,
) -> (Client, mpsc::Receiver<Notification>) {
    let deadline = Instant::now() + START_LIMIT;
    loop {
        let mut config = ClientConfig::new("bench/iec101");
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

struct Run {
    kind: Gateway,
    paced: bool,
    secs: f64,
    points: u64,
    cpu: f64,
    rss_mib: f64,
}

impl Run {
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
}

/// One gateway's run; `paced`: through `line.py` at `BAUDRATE`, else straight over one
/// pty pair (as fast as the processes go).
async fn run(env: &Env, kind: Gateway, paced: bool, window: Duration) -> Run {
    let pty = PtyPair::start("iec101-bench");
    let far = paced.then(|| PtyPair::start("iec101-bench-far"));
    let _line = far.as_ref().map(|far| env.line(&pty.b_str(), &far.a_str()));
    let outstation_end = far.as_ref().map_or_else(|| pty.b_str(), |far| far.b_str());
    let mut outstation = env.outstation(&outstation_end);
    let port = free_port();
    let mut server = env.event_server(port);
    connect(port, Vec::new(), &mut server).await.0.close().await;
    let mut gateway = env.gateway(kind, port, &pty.a_str());
    let status = kind.event_type(&["gateway", "remote_device", "1", "status"]);
    let data = kind.event_type(&["gateway", "remote_device", "1", "data", "*"]);
    let (client, mut rx) = connect(port, vec![status, data], &mut gateway).await;
    client
        .register(vec![
            RegisterEvent::json(kind.event_type(&["system", "enable"]), json!(true)),
            RegisterEvent::json(
                kind.event_type(&["system", "remote_device", "1", "enable"]),
                json!(true),
            ),
        ])
        .await
        .unwrap();
    let counter = Arc::new(AtomicU64::new(0));
    let deadline = tokio::time::Instant::now() + START_LIMIT;
    let mut connected = false;
    while !connected {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) => panic!("{}: remote device not CONNECTED", kind.name()),
            Ok(None) => panic!("{}: event server connection closed", kind.name()),
            Ok(Some(Notification::Events(events))) => {
                connected = events.iter().any(|e| {
                    e.payload.as_ref().and_then(|p| p.json_value()) == Some(json!("CONNECTED"))
                });
            }
            Ok(Some(_)) => {}
        }
    }
    let count = counter.clone();
    let task = tokio::spawn(async move {
        while let Some(notification) = rx.recv().await {
            if let Notification::Events(events) = notification {
                let data = events
                    .iter()
                    .filter(|e| e.event_type.iter().any(|s| s == "data"))
                    .count();
                count.fetch_add(data as u64, Ordering::Relaxed);
            }
        }
    });
    tokio::time::sleep(WARM_UP).await;
    gateway.check_alive();
    outstation.check_alive();
    let pid = gateway.pid();
    let (points0, cpu0, t0) = (
        counter.load(Ordering::Relaxed),
        tree_cpu_seconds(pid),
        Instant::now(),
    );
    tokio::time::sleep(window).await;
    let (points1, cpu1, elapsed) = (
        counter.load(Ordering::Relaxed),
        tree_cpu_seconds(pid),
        t0.elapsed(),
    );
    gateway.check_alive();
    let rss_mib = peak_rss_mib(pid);
    client.close().await;
    task.abort();
    drop(gateway);
    drop(outstation);
    drop(server);
    drop(pty);
    Run {
        kind,
        paced,
        secs: elapsed.as_secs_f64(),
        points: points1 - points0,
        cpu: cpu1 - cpu0,
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
        bin_dir.join("libiec101_master.so"),
    ] {
        assert!(
            needed.exists(),
            "{} is missing: run plugins/iec101_master/bench/run.sh \
             (or cargo build --release -p gateway-host -p iec101_master)",
            needed.display()
        );
    }
    let venv = venv_with(&["bin/hat-gateway"]);
    let work_dir = std::env::temp_dir().join(format!("iec101-side-by-side-{}", std::process::id()));
    std::fs::create_dir_all(&work_dir).unwrap();
    Env {
        bin_dir,
        venv,
        work_dir,
    }
}

fn main() {
    let secs: u64 = std::env::var("IEC101_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let env = environment();
    // One full ASDU: a class 1 request (fixed frame, 5 octets) and the response
    // (variable frame: 4 + control + address + 252-octet ASDU + checksum + stop).
    let octets_per_asdu: u32 = 5 + 4 + 1 + 1 + 252 - 3 + 2;
    let points_per_asdu: u32 = 48;
    let bits_per_point = f64::from(octets_per_asdu * BITS_PER_CHAR) / f64::from(points_per_asdu);
    let limit = f64::from(BAUDRATE) / bits_per_point;
    println!(
        "IEC 101 side by side: one hat-drivers outstation on a pty line at {BAUDRATE} baud \
         (8N1), {POINTS} short floats in full ASDUs of {points_per_asdu} (SQ=1), class 1 \
         polling; {secs} s per gateway after a {WARM_UP:?} warm-up; line limit \
         {limit:.0} points/s ({bits_per_point:.1} bits per point)"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let window = Duration::from_secs(secs);
    let runs: Vec<Run> = [
        (Gateway::Host, true),
        (Gateway::Hat, true),
        (Gateway::Host, false),
        (Gateway::Hat, false),
    ]
    .into_iter()
    .map(|(kind, paced)| runtime.block_on(run(&env, kind, paced, window)))
    .collect();
    println!(
        "{:<22} {:<22} {:>10} {:>12} {:>16} {:>12} {:>10}",
        "gateway", "line", "points/s", "% of limit", "CPU s/100k pts", "% one core", "peak RSS"
    );
    for r in &runs {
        println!(
            "{:<22} {:<22} {:>10.0} {:>11.1}% {:>16.3} {:>11.1}% {:>6.1} MiB",
            r.kind.name(),
            if r.paced {
                "115200 baud"
            } else {
                "pty pair, unpaced"
            },
            r.points_per_sec(),
            r.points_per_sec() / limit * 100.0,
            r.cpu_per_100k(),
            r.cpu / r.secs * 100.0,
            r.rss_mib
        );
    }
    let ratio = runs[1].cpu_per_100k() / runs[0].cpu_per_100k();
    let ratio_unpaced = runs[3].cpu_per_100k() / runs[2].cpu_per_100k();
    println!(
        "CPU per 100,000 points, hat-gateway / gateway-host: {ratio:.1}x at 115200 baud, \
         {ratio_unpaced:.1}x unpaced"
    );
    let results = json!({
        "benchmark": "iec101_master side by side",
        "date": std::env::var("IEC101_BENCH_DATE").ok(),
        "baudrate": BAUDRATE,
        "bits_per_point": bits_per_point,
        "line_limit_points_per_sec": limit,
        "window_secs": secs,
        "runs": runs.iter().map(|r| json!({
            "gateway": r.kind.name(),
            "line": if r.paced { "115200 baud (line.py)" } else { "pty pair, unpaced" },
            "points_per_sec": r.points_per_sec(),
            "fraction_of_line_limit": r.points_per_sec() / limit,
            "cpu_secs_per_100k_points": r.cpu_per_100k(),
            "cpu_fraction_of_one_core": r.cpu / r.secs,
            "peak_rss_mib": r.rss_mib,
        })).collect::<Vec<_>>(),
        "cpu_ratio_hat_over_host": ratio,
        "cpu_ratio_hat_over_host_unpaced": ratio_unpaced,
    });
    if let Ok(path) = std::env::var("IEC101_BENCH_RESULTS") {
        std::fs::write(&path, serde_json::to_vec_pretty(&results).unwrap()).unwrap();
        println!("results written to {}", PathBuf::from(path).display());
    }
}
