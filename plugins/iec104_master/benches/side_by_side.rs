//! Side-by-side IEC 60870-5-104 master benchmark: gateway-host's `iec104_master` and
//! hat-gateway 0.6.48's, receiving spontaneous measured values from the same fast Rust
//! outstation (`support/outstation.rs`, in this process on its own runtime thread), in
//! one run.
//!
//! Runs, one after the other:
//!
//! 1. throughput, gateway-host on its own embedded event server;
//! 2. throughput, gateway-host into a shared event server;
//! 3. throughput, hat-gateway 0.6.48 into the same shared event server;
//! 4. and 5. CPU at the same load, gateway-host and hat-gateway into the shared event
//!    server while `SAME_LOAD_RATE` points/s are offered (the fair CPU comparison: in
//!    the flood runs the two cores are saturated);
//! 6. command round trip, gateway-host on its embedded server, while the outstation
//!    offers `PACED_RATE` points/s (the target);
//! 7. and 8. command round trip, gateway-host and hat-gateway into the shared event
//!    server, while `SUSTAINABLE_RATE` points/s are offered (a load both sustain);
//! 9. command round trip, hat-gateway, while `PACED_RATE` points/s are offered (more than
//!    it takes: each command waits behind its backlog, so only a few are sent).
//!
//! The shared event server is a `gateway-host` process with no devices, only its
//! embedded Eventer server listening: it is not the bottleneck (it takes 200,000+
//! events/s), so the figures are the gateways' own. In the flood runs the outstation
//! sends as fast as the master's acknowledgements let it (k = `K` frames in flight);
//! points/s is what a subscriber on the event server receives, measured
//! over `IEC104_BENCH_SECS` (default 10) after a warm-up. CPU = user + system seconds of
//! the gateway process tree from `/proc`; the event server's CPU is reported
//! separately (in run 1 it is inside the gateway process, and so is the cost of
//! notifying the counting subscriber).
//!
//! A command round trip is: a client registers `system/command/single/1/<io>`, the
//! gateway sends C_SC_NA_1 activation, the outstation answers activation confirmation
//! at once, the gateway registers `gateway/command/single/1/<io>` and the client's
//! subscription sees it.
//!
//! Run with `plugins/iec104_master/bench/run.sh` (builds the release binaries first).
//! `GATEWAY_BIN_DIR` and `GATEWAY_TEST_VENV` override where the binaries and the venv
//! are; `IEC104_BENCH_RESULTS` where the results JSON is written.
#![allow(clippy::unwrap_used)]

#[path = "support/outstation.rs"]
mod outstation;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use gateway_eventer::client::{Client, ClientConfig, Notification};
use gateway_model::{EventType, RegisterEvent};
use gateway_test_support::process::Proc;
use gateway_test_support::procstat::{peak_rss_mib, tree_cpu_seconds};
use gateway_test_support::{free_port, venv_with};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use outstation::{Load, Outstation};

/// Information objects the outstation reports (IOA 1..=POINTS of ASDU address 1).
const POINTS: u32 = 1000;
/// Offered load of the command round-trip runs (the figure).
const PACED_RATE: u32 = 50_000;
/// Offered load of the same-load throughput runs: under what hat-gateway takes, so both
/// gateways receive the same points and CPU per point is not inflated by the two cores
/// being saturated (in the flood runs gateway-host, its event server, the outstation and
/// the counting subscriber share two cores).
const SAME_LOAD_RATE: u32 = 20_000;
/// Offered load of the side-by-side round-trip runs: one both gateways sustain.
const SUSTAINABLE_RATE: u32 = 5_000;
/// Command round trips per run.
const COMMANDS: usize = 2_000;
/// Round trips of hat-gateway while `PACED_RATE` is offered: more than it can take, so
/// each command waits behind its receive backlog (about 1.5 s each).
const OVERLOADED_COMMANDS: usize = 20;
/// Send window (k) of both sides; w is 2/3 of it, as the standard's defaults (12/8).
const K: u16 = 12;
const W: u16 = 8;
const WARM_UP: Duration = Duration::from_secs(3);
/// Bound on start-up: processes listening, the master CONNECTED.
const START_LIMIT: Duration = Duration::from_secs(60);
/// Bound on one command round trip.
const COMMAND_LIMIT: Duration = Duration::from_secs(10);
const GATEWAY_NAME: &str = "gw1";
const DEVICE_NAME: &str = "m";
/// The targets.
const TARGET_CPU_RATIO: f64 = 20.0;
const TARGET_P99_MS: f64 = 2.0;

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
    fn prefix(self) -> EventType {
        let segments: &[&str] = match self {
            Self::Hat => &["gateway", "iec104_master", DEVICE_NAME],
            Self::Host => &["gateway", GATEWAY_NAME, "iec104_master", DEVICE_NAME],
        };
        segments.iter().map(|s| s.to_string()).collect()
    }

    fn event_type(self, suffix: &[&str]) -> EventType {
        let mut t = self.prefix();
        t.extend(suffix.iter().map(|s| s.to_string()));
        t
    }
}

/// Where the event server of a run is.
#[derive(Clone, Copy, PartialEq)]
enum Server {
    /// The gateway's own embedded server (gateway-host only).
    Own,
    /// A separate gateway-host process with only its embedded server.
    Shared,
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

    /// The shared event server: gateway-host with no devices.
    fn event_server(&self, port: u16) -> Proc {
        let embedded = json!({"embedded": {
            "store": "memory",
            "eventer_server": {"host": "127.0.0.1", "port": port},
            "enable_devices": false
        }});
        self.gateway_host("event-server", embedded, Vec::new())
    }

    fn gateway(&self, kind: Gateway, server: Server, port: u16, outstation: u16) -> Proc {
        let mut device = device_conf(outstation);
        match kind {
            Gateway::Hat => {
                device["module"] = json!("hat.gateway.devices.iec104.master");
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
                device["module"] = json!("iec104_master");
                let event_server = match server {
                    Server::Own => json!({"embedded": {
                        "store": "memory",
                        "eventer_server": {"host": "127.0.0.1", "port": port},
                        "enable_devices": false
                    }}),
                    Server::Shared => {
                        json!({"eventer_server": {"host": "127.0.0.1", "port": port}})
                    }
                };
                self.gateway_host("gateway-host", event_server, vec![device])
            }
        }
    }
}

fn device_conf(outstation: u16) -> Value {
    json!({
        "name": DEVICE_NAME,
        "remote_addresses": [{"host": "127.0.0.1", "port": outstation}],
        "response_timeout": 15,
        "supervisory_timeout": 10,
        "test_timeout": 20,
        "send_window_size": K,
        "receive_window_size": W,
        "reconnect_delay": 1,
        "time_sync_delay": null
    })
}

/// Connects a client, retrying until the server listens or `proc` dies.
async fn connect(
    port: u16,
    subscriptions: Vec<EventType>,
    proc: &mut Proc,
) -> (Client, mpsc::Receiver<Notification>) {
    let deadline = Instant::now() + START_LIMIT;
    loop {
        let mut config = ClientConfig::new("bench/iec104");
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

/// The processes of one run, the master enabled and CONNECTED.
struct Running {
    gateway: Proc,
    server: Option<Proc>,
    port: u16,
}

async fn start(env: &Env, kind: Gateway, server: Server, outstation: u16) -> Running {
    let port = free_port();
    let mut shared = (server == Server::Shared).then(|| env.event_server(port));
    if let Some(shared) = shared.as_mut() {
        // The gateway connects once; make sure the server listens first.
        connect(port, Vec::new(), shared).await.0.close().await;
    }
    let mut gateway = env.gateway(kind, server, port, outstation);
    let status = kind.event_type(&["gateway", "status"]);
    let (client, mut rx) = connect(port, vec![status], &mut gateway).await;
    client
        .register(vec![RegisterEvent::json(
            kind.event_type(&["system", "enable"]),
            json!(true),
        )])
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + START_LIMIT;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) => panic!("{}: not CONNECTED within {START_LIMIT:?}", kind.name()),
            Ok(None) => panic!("{}: event server connection closed", kind.name()),
            Ok(Some(Notification::Events(events))) => {
                let connected = events.iter().any(|e| {
                    e.payload.as_ref().and_then(|p| p.json_value()) == Some(json!("CONNECTED"))
                });
                if connected {
                    break;
                }
            }
            Ok(Some(Notification::Status(_))) => {}
        }
    }
    client.close().await;
    Running {
        gateway,
        server: shared,
        port,
    }
}

struct Throughput {
    kind: Gateway,
    server: Server,
    load: Load,
    secs: f64,
    points: u64,
    cpu: f64,
    server_cpu: Option<f64>,
    rss_mib: f64,
}

fn label(kind: Gateway, server: Server) -> String {
    let server = match server {
        Server::Own => "own embedded server",
        Server::Shared => "shared event server",
    };
    format!("{}, {server}", kind.name())
}

impl Throughput {
    fn label(&self) -> String {
        match self.load {
            Load::Paced(rate) => format!("{}, {rate}/s offered", label(self.kind, self.server)),
            _ => format!("{}, flood", label(self.kind, self.server)),
        }
    }

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

/// Counts data events the subscriber receives, until `stop` fires.
fn count_data(
    mut rx: mpsc::Receiver<Notification>,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicU64>,
    tokio::task::JoinHandle<()>,
) {
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let count = counter.clone();
    let task = tokio::spawn(async move {
        while let Some(notification) = rx.recv().await {
            if let Notification::Events(events) = notification {
                count.fetch_add(events.len() as u64, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    (counter, task)
}

async fn throughput(
    env: &Env,
    kind: Gateway,
    server: Server,
    load: Load,
    outstation: &Outstation,
    window: Duration,
) -> Throughput {
    outstation.set_load(load);
    let mut run = start(env, kind, server, outstation.port()).await;
    let data = kind.event_type(&["gateway", "data", "*"]);
    let (client, rx) = connect(run.port, vec![data], &mut run.gateway).await;
    let (counter, task) = count_data(rx);
    tokio::time::sleep(WARM_UP).await;
    run.gateway.check_alive();
    let gw_pid = run.gateway.pid();
    let server_pid = run.server.as_ref().map(|s| s.pid());
    let read = || counter.load(std::sync::atomic::Ordering::Relaxed);
    let (points0, cpu0, scpu0, t0) = (
        read(),
        tree_cpu_seconds(gw_pid),
        server_pid.map(tree_cpu_seconds),
        Instant::now(),
    );
    tokio::time::sleep(window).await;
    let (points1, cpu1, scpu1, elapsed) = (
        read(),
        tree_cpu_seconds(gw_pid),
        server_pid.map(tree_cpu_seconds),
        t0.elapsed(),
    );
    run.gateway.check_alive();
    let rss_mib = peak_rss_mib(gw_pid);
    outstation.set_load(Load::Idle);
    client.close().await;
    task.abort();
    drop(run);
    Throughput {
        kind,
        server,
        load,
        secs: elapsed.as_secs_f64(),
        points: points1 - points0,
        cpu: cpu1 - cpu0,
        server_cpu: scpu0.zip(scpu1).map(|(a, b)| b - a),
        rss_mib,
    }
}

struct RoundTrips {
    kind: Gateway,
    server: Server,
    /// Points per second the outstation offered.
    offered: u32,
    /// Sorted round trips in milliseconds.
    millis: Vec<f64>,
    /// Points per second the subscriber saw while the commands ran.
    points_per_sec: f64,
}

impl RoundTrips {
    fn quantile(&self, q: f64) -> f64 {
        let index = ((self.millis.len() as f64 * q).ceil() as usize).saturating_sub(1);
        self.millis[index.min(self.millis.len() - 1)]
    }
}

async fn round_trips(
    env: &Env,
    kind: Gateway,
    server: Server,
    outstation: &Outstation,
    offered: u32,
    commands: usize,
) -> RoundTrips {
    outstation.set_load(Load::Paced(offered));
    let mut run = start(env, kind, server, outstation.port()).await;
    let data = kind.event_type(&["gateway", "data", "*"]);
    let (data_client, data_rx) = connect(run.port, vec![data], &mut run.gateway).await;
    let (counter, task) = count_data(data_rx);
    let response = kind.event_type(&["gateway", "command", "*"]);
    let (client, mut rx) = connect(run.port, vec![response], &mut run.gateway).await;
    tokio::time::sleep(WARM_UP).await;
    let points0 = counter.load(std::sync::atomic::Ordering::Relaxed);
    let t0 = Instant::now();
    let mut millis = Vec::with_capacity(commands);
    for i in 0..commands {
        let io = (i % 100 + 1).to_string();
        let command = RegisterEvent::json(
            kind.event_type(&["system", "command", "single", "1", &io]),
            json!({"is_test": false, "cause": "ACTIVATION",
                   "command": {"value": if i % 2 == 0 { "ON" } else { "OFF" },
                               "select": false, "qualifier": 0}}),
        );
        let sent = Instant::now();
        client.register(vec![command]).await.unwrap();
        loop {
            match tokio::time::timeout(COMMAND_LIMIT, rx.recv()).await {
                Err(_) => panic!("{}: command {i} not answered", kind.name()),
                Ok(None) => panic!("{}: event server connection closed", kind.name()),
                Ok(Some(Notification::Events(events))) => {
                    if events.iter().any(|e| e.event_type.last() == Some(&io)) {
                        break;
                    }
                }
                Ok(Some(Notification::Status(_))) => {}
            }
        }
        millis.push(sent.elapsed().as_secs_f64() * 1000.0);
    }
    let points = counter.load(std::sync::atomic::Ordering::Relaxed) - points0;
    let points_per_sec = points as f64 / t0.elapsed().as_secs_f64();
    run.gateway.check_alive();
    outstation.set_load(Load::Idle);
    client.close().await;
    data_client.close().await;
    task.abort();
    drop(run);
    millis.sort_by(f64::total_cmp);
    RoundTrips {
        kind,
        server,
        offered,
        millis,
        points_per_sec,
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
        bin_dir.join("libiec104_master.so"),
    ] {
        assert!(
            needed.exists(),
            "{} is missing: run plugins/iec104_master/bench/run.sh \
             (or cargo build --release -p gateway-host -p iec104_master)",
            needed.display()
        );
    }
    let venv = venv_with(&["bin/hat-gateway"]);
    let work_dir = std::env::temp_dir().join(format!("iec104-side-by-side-{}", std::process::id()));
    std::fs::create_dir_all(&work_dir).unwrap();
    Env {
        bin_dir,
        venv,
        work_dir,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let secs: u64 = std::env::var("IEC104_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let commands: usize = std::env::var("IEC104_BENCH_COMMANDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(COMMANDS);
    let env = environment();
    let outstation = Outstation::start(POINTS, K, W);
    println!(
        "IEC 104 side by side: one Rust outstation on loopback, {POINTS} measured values \
         (M_ME_NC_1, short float, spontaneous, packed into full ASDUs), k = {K}, w = {W}; \
         throughput {secs} s per gateway after a {WARM_UP:?} warm-up; {commands} command \
         round trips while {PACED_RATE} or {SUSTAINABLE_RATE} points/s are offered"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let window = Duration::from_secs(secs);
    let runs: Vec<Throughput> = [
        (Gateway::Host, Server::Own, Load::Flood),
        (Gateway::Host, Server::Shared, Load::Flood),
        (Gateway::Hat, Server::Shared, Load::Flood),
        (Gateway::Host, Server::Shared, Load::Paced(SAME_LOAD_RATE)),
        (Gateway::Hat, Server::Shared, Load::Paced(SAME_LOAD_RATE)),
    ]
    .into_iter()
    .map(|(kind, server, load)| {
        runtime.block_on(throughput(&env, kind, server, load, &outstation, window))
    })
    .collect();
    let trips: Vec<RoundTrips> = [
        (Gateway::Host, Server::Own, PACED_RATE, commands),
        (Gateway::Host, Server::Shared, SUSTAINABLE_RATE, commands),
        (Gateway::Hat, Server::Shared, SUSTAINABLE_RATE, commands),
        (
            Gateway::Hat,
            Server::Shared,
            PACED_RATE,
            OVERLOADED_COMMANDS,
        ),
    ]
    .into_iter()
    .map(|(kind, server, rate, count)| {
        runtime.block_on(round_trips(&env, kind, server, &outstation, rate, count))
    })
    .collect();

    println!(
        "{:<44} {:>10} {:>16} {:>12} {:>14} {:>10}",
        "throughput", "points/s", "CPU s/100k pts", "% one core", "event server %", "peak RSS"
    );
    for r in &runs {
        println!(
            "{:<44} {:>10.0} {:>16.4} {:>11.1}% {:>14} {:>6.1} MiB",
            r.label(),
            r.points_per_sec(),
            r.cpu_per_100k(),
            r.cpu / r.secs * 100.0,
            r.server_cpu.map_or("in process".to_owned(), |c| format!(
                "{:.1}%",
                c / r.secs * 100.0
            )),
            r.rss_mib
        );
    }
    let ratio_shared = runs[2].cpu_per_100k() / runs[1].cpu_per_100k();
    let ratio_own = runs[2].cpu_per_100k() / runs[0].cpu_per_100k();
    let ratio_same_load = runs[4].cpu_per_100k() / runs[3].cpu_per_100k();
    println!(
        "CPU per 100,000 points, hat-gateway / gateway-host: {ratio_same_load:.1}x at the same \
         {SAME_LOAD_RATE} points/s (target {TARGET_CPU_RATIO}x: {}); flooding, {ratio_shared:.1}x \
         on the same shared event server, {ratio_own:.1}x against gateway-host on its own \
         embedded server; flood points/s ratio {:.1}x",
        if ratio_same_load >= TARGET_CPU_RATIO {
            "met"
        } else {
            "NOT met"
        },
        runs[1].points_per_sec() / runs[2].points_per_sec()
    );
    println!(
        "{:<44} {:>10} {:>10} {:>10} {:>10} {:>10} {:>12}",
        "command round trip", "offered/s", "p50 ms", "p99 ms", "max ms", "commands", "points/s"
    );
    for t in &trips {
        println!(
            "{:<44} {:>10} {:>10.3} {:>10.3} {:>10.3} {:>10} {:>12.0}",
            label(t.kind, t.server),
            t.offered,
            t.quantile(0.5),
            t.quantile(0.99),
            t.millis.last().copied().unwrap_or(0.0),
            t.millis.len(),
            t.points_per_sec
        );
    }
    let p99 = trips[0].quantile(0.99);
    println!(
        "target: gateway-host command round trip p99 under {TARGET_P99_MS} ms while \
         {PACED_RATE} points/s are offered: p99 {p99:.3} ms at {:.0} points/s -> {}",
        trips[0].points_per_sec,
        if p99 < TARGET_P99_MS {
            "met"
        } else {
            "NOT met"
        }
    );

    let results = json!({
        "benchmark": "iec104_master side by side",
        "date": std::env::var("IEC104_BENCH_DATE").ok(),
        "setup": {"points": POINTS, "k": K, "w": W, "window_secs": secs,
                  "paced_rate": PACED_RATE, "commands": commands},
        "throughput": runs.iter().map(|r| json!({
            "run": r.label(), "points_per_sec": r.points_per_sec(),
            "cpu_s_per_100k_points": r.cpu_per_100k(), "cpu_s": r.cpu, "secs": r.secs,
            "event_server_cpu_s": r.server_cpu, "peak_rss_mib": r.rss_mib,
        })).collect::<Vec<_>>(),
        "cpu_ratio_same_load": ratio_same_load,
        "cpu_ratio_shared_server": ratio_shared,
        "cpu_ratio_own_server": ratio_own,
        "round_trips": trips.iter().map(|t| json!({
            "run": label(t.kind, t.server), "offered_points_per_sec": t.offered, "p50_ms": t.quantile(0.5), "p99_ms": t.quantile(0.99),
            "max_ms": t.millis.last(), "commands": t.millis.len(),
            "points_per_sec": t.points_per_sec,
        })).collect::<Vec<_>>(),
    });
    if let Some(path) = std::env::var_os("IEC104_BENCH_RESULTS") {
        std::fs::write(&path, serde_json::to_vec_pretty(&results).unwrap()).unwrap();
        println!("results written to {}", PathBuf::from(path).display());
    }
    drop(outstation);
    let _ = std::fs::remove_dir_all(&env.work_dir);
}
