//! `gateway-bench`: gateway-host against Python hat-gateway 0.6.48, side by side in
//! one run on one machine (issue 6). Prints a table and writes every figure as JSON.
//!
//! Run it through `bench/run.sh`, which creates the venv and builds in release mode.

mod procs;
mod scenarios;
mod store;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use serde_json::{json, Value};

use procs::{free_port, Proc, Tools};
use scenarios::{Gateway, LoadedRoundTrip, Scale, Startup, Throughput};

/// Which scenarios a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Only {
    /// Every scenario.
    All,
    /// Only the start-up scenario on the embedded server (issue 12); its figures are
    /// merged into the JSON file under `startup_embedded`, the rest of the file is kept.
    Startup,
    /// Only the event store scenario (issue 14): durable events/s of the embedded
    /// server's file next to its memory store and hat-event LMDB; merged under `store`.
    Store,
    /// Only the gateways alone (issue 12, goal 3): gateway-host and hat-gateway each
    /// bursting into an embedded server of its own process; merged under `gateway_alone`.
    Alone,
    /// Only the command round trip under load (issue 12, goal 4); merged under
    /// `round_trip_under_load`.
    Latency,
    /// Only the floor of the embedded server (issue 12, goal 2): events/s and the
    /// server's CPU per 100,000 events, and the bench's own (client and subscriber);
    /// merged under `floor_embedded`.
    Floor,
}

/// Command-line options.
#[derive(Debug, Parser)]
#[command(about = "Side-by-side benchmark of gateway-host and hat-gateway 0.6.48")]
struct Args {
    /// Tiny sizes, for the test suite (checks the harness, measures nothing).
    #[arg(long)]
    smoke: bool,
    /// Directory with the gateway-host binary and libsim.so (default: this binary's).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// The Python venv with hat-event 0.9.44 and hat-gateway 0.6.48.
    #[arg(long, env = "GATEWAY_TEST_VENV")]
    venv: PathBuf,
    /// Where to write the JSON results.
    #[arg(long, default_value = "bench-results.json")]
    out: PathBuf,
    /// Events in the throughput burst.
    #[arg(long, default_value_t = 200_000)]
    events: u64,
    /// Sequential write commands in the round-trip scenario.
    #[arg(long, default_value_t = 10_000)]
    writes: usize,
    /// Sequential write commands in the round trip under load (issue 12, goal 4).
    #[arg(long, default_value_t = 10_000)]
    loaded_writes: usize,
    /// Points of the loading device in the round trip under load; each changes every
    /// 10 ms (1,000 points: 100,000 events/s).
    #[arg(long, default_value_t = 1_000)]
    load_points: usize,
    /// Split each command round trip under load into its hops (the commander also
    /// subscribes to its own commands to learn when the server stored them).
    #[arg(long)]
    hops: bool,
    /// Device counts of the scale scenario.
    #[arg(long, value_delimiter = ',', default_values_t = [1_000, 10_000])]
    scale: Vec<usize>,
    /// Skip the Python hat-gateway runs of the scale scenario above this many devices.
    #[arg(long, default_value_t = 10_000)]
    hat_scale_max: usize,
    /// Which scenarios to run.
    #[arg(long, value_enum, default_value_t = Only::All)]
    only: Only,
    /// Device counts of the start-up scenario (gateway-host, embedded server).
    #[arg(long, value_delimiter = ',', default_values_t = [1_000, 10_000, 100_000])]
    startup: Vec<usize>,
    /// Seconds one start-up run may take before it is reported as stopped short.
    #[arg(long, default_value_t = 120)]
    startup_limit_s: u64,
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        f64::NAN
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.smoke {
        args.events = 2_000;
        args.writes = 50;
        args.loaded_writes = 50;
        args.load_points = 10;
        args.scale = vec![20];
        args.startup = vec![20];
    }
    let exe_dir = std::env::current_exe()?
        .parent()
        .context("executable has no directory")?
        .to_path_buf();
    let bin_dir = args.bin_dir.clone().unwrap_or(exe_dir);
    let work_dir = std::env::temp_dir().join(format!("gateway-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work_dir)?;
    let py_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("py");
    let tools = Tools {
        bin_dir,
        venv: args.venv.clone(),
        py_dir,
        work_dir: work_dir.clone(),
    };
    let result = run(&tools, &args).await;
    match result {
        Ok(Finished::Complete) => {
            let _ = std::fs::remove_dir_all(&work_dir);
        }
        Ok(Finished::StoppedShort) | Err(_) => eprintln!("logs kept in {}", work_dir.display()),
    }
    result.map(|_| ())
}

/// How a run that produced its figures ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Finished {
    /// Every scenario ran to its end.
    Complete,
    /// A start-up run stopped short (its figures say how far it got); the logs are kept.
    StoppedShort,
}

fn finished(runs: &[Startup]) -> Finished {
    if runs.iter().any(|r| r.stopped.is_some()) {
        Finished::StoppedShort
    } else {
        Finished::Complete
    }
}

/// The start-up scenario: each count once, printed as it finishes.
async fn startup(tools: &Tools, args: &Args) -> anyhow::Result<Vec<Startup>> {
    println!(
        "start-up on the embedded server: {:?} devices",
        args.startup
    );
    let limit = Duration::from_secs(args.startup_limit_s);
    let mut runs = Vec::new();
    for &count in &args.startup {
        let run = scenarios::startup_embedded(tools, count, limit).await?;
        print_startup(&run);
        runs.push(run);
    }
    Ok(runs)
}

fn print_startup(s: &Startup) {
    println!(
        "  {:>7} devices {:>7} running {:8.2} s {:8.1} us/device {:8.1} MiB {:6.1} KiB/device {:7.2} CPU s{}",
        s.devices,
        s.running,
        s.seconds,
        s.us_per_device(),
        s.peak_rss_kib / 1024.0,
        s.kib_per_device(),
        s.cpu_seconds.unwrap_or(f64::NAN),
        s.stopped
            .as_ref()
            .map(|why| format!("  STOPPED: {why}"))
            .unwrap_or_default()
    );
}

fn startup_json(runs: &[Startup]) -> Value {
    Value::Array(runs.iter().map(Startup::to_json).collect())
}

/// Keeps what a full run wrote to `out`; replaces only the keys of `entries`.
fn merge_into(out: &std::path::Path, entries: Vec<(&str, Value)>) -> anyhow::Result<()> {
    let mut doc = std::fs::read(out)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    for (key, value) in entries {
        doc[key] = value;
    }
    std::fs::write(out, serde_json::to_vec_pretty(&doc)?)?;
    println!("\nresults written to {}", out.display());
    Ok(())
}

/// The one `sim` device of the throughput scenarios (hat-gateway's for [`Gateway::Hat`]).
fn burst_device(kind: Gateway) -> Vec<Value> {
    let module = match kind {
        Gateway::Host => "sim",
        Gateway::Hat => "hat_sim_device",
    };
    vec![json!({"module": module, "name": "s1", "points": ["p0", "p1", "p2", "p3"]})]
}

/// The gateways alone (goal 3): each bursts into the same event server, gateway-host's
/// embedded server in a process of its own, and only the gateway's CPU is counted.
struct Alone {
    /// gateway-host.
    host: Throughput,
    /// hat-gateway 0.6.48.
    hat: Throughput,
}

impl Alone {
    /// hat-gateway's CPU per event over gateway-host's.
    fn cpu_ratio(&self) -> f64 {
        ratio(
            self.hat.cpu_per_100k.unwrap_or(0.0),
            self.host.cpu_per_100k.unwrap_or(0.0),
        )
    }

    fn to_json(&self) -> Value {
        json!({
            "host_on_separate_embedded": self.host.to_json(),
            "hat_gateway_on_separate_embedded": self.hat.to_json(),
            "hat_over_host_cpu": self.cpu_ratio(),
        })
    }

    fn print(&self) {
        println!("the gateway alone (burst into a separate embedded server process):");
        for (label, t) in [
            ("gateway-host", &self.host),
            ("hat-gateway 0.6.48", &self.hat),
        ] {
            println!(
                "  {label:20} {:>10.0} events/s {:8.3} gateway CPU s per 100k events",
                t.rate(),
                t.cpu_per_100k.unwrap_or(f64::NAN)
            );
        }
        println!(
            "  hat-gateway needs {:.1}x the CPU per event",
            self.cpu_ratio()
        );
    }
}

/// gateway-host (labelled `host_label`), then hat-gateway (`hat_label`), each bursting
/// `n` events into the event server on `port`.
async fn alone(
    tools: &Tools,
    port: u16,
    n: u64,
    host_label: &str,
    hat_label: &str,
) -> anyhow::Result<(Alone, Throughput)> {
    let gw = tools
        .gateway_host(
            host_label,
            Some(port),
            0,
            &burst_device(Gateway::Host),
            false,
        )
        .await?;
    let host = scenarios::burst(port, Gateway::Host, &gw, n).await?;
    println!("  ({host_label}) {:.0} events/s", host.rate());
    drop(gw);
    let hat: Proc = tools.hat_gateway(hat_label, port, &burst_device(Gateway::Hat))?;
    let hat_run = scenarios::burst(port, Gateway::Hat, &hat, n).await?;
    println!("  ({hat_label}) {:.0} events/s", hat_run.rate());
    drop(hat);
    Ok((
        Alone {
            host,
            hat: hat_run.clone(),
        },
        hat_run,
    ))
}

fn print_loaded(rt: &LoadedRoundTrip) {
    println!(
        "command round trip under load ({} writes to one device while another registers {:.0} events/s, {:.0} offered):",
        rt.round_trip.count, rt.load_per_s, rt.offered_per_s
    );
    println!(
        "  gateway-host, embedded server    p50 {:8.3} ms  p99 {:8.3} ms  max {:8.3} ms",
        rt.round_trip.p50_ms, rt.round_trip.p99_ms, rt.round_trip.max_ms
    );
    if let Some(hops) = &rt.hops {
        hops.print();
    }
}

async fn run(tools: &Tools, args: &Args) -> anyhow::Result<Finished> {
    match args.only {
        Only::All => {}
        Only::Startup => {
            let runs = startup(tools, args).await?;
            merge_into(
                &args.out,
                vec![
                    ("startup_embedded", startup_json(&runs)),
                    ("startup_unix_time", json!(unix_time()?)),
                    ("startup_smoke", json!(args.smoke)),
                ],
            )?;
            return Ok(finished(&runs));
        }
        Only::Store => {
            println!(
                "event store: burst of {} events, every register answered",
                args.events
            );
            let results = store::run(tools, args.events).await?;
            results.print();
            merge_into(
                &args.out,
                vec![
                    ("store", results.to_json(args.smoke)),
                    ("store_unix_time", json!(unix_time()?)),
                ],
            )?;
            return Ok(Finished::Complete);
        }
        Only::Alone => {
            let port = free_port()?;
            let _server = tools.event_server("alone-server", port).await?;
            let (alone, _) = alone(tools, port, args.events, "e", "d").await?;
            alone.print();
            let mut doc = alone.to_json();
            doc["unix_time"] = json!(unix_time()?);
            doc["smoke"] = json!(args.smoke);
            merge_into(&args.out, vec![("gateway_alone", doc)])?;
            return Ok(Finished::Complete);
        }
        Only::Floor => {
            let port = free_port()?;
            let server = tools.event_server("floor-embedded", port).await?;
            let bench0 = procs::own_cpu_seconds()?;
            let floor = scenarios::floor(port, args.events, Some(&server)).await?;
            let bench_cpu =
                (procs::own_cpu_seconds()? - bench0) / floor.events.max(1) as f64 * 100_000.0;
            println!(
                "floor of the embedded server: {:.0} events/s, server {:.3} CPU s per 100k \
                 events, bench client and subscriber {bench_cpu:.3}",
                floor.rate(),
                floor.cpu_per_100k.unwrap_or(f64::NAN)
            );
            let mut doc = floor.to_json();
            doc["bench_cpu_s_per_100k_events"] = json!(bench_cpu);
            doc["unix_time"] = json!(unix_time()?);
            doc["smoke"] = json!(args.smoke);
            merge_into(&args.out, vec![("floor_embedded", doc)])?;
            return Ok(Finished::Complete);
        }
        Only::Latency => {
            let rt = scenarios::round_trip_under_load(
                tools,
                args.loaded_writes,
                args.load_points,
                args.hops,
            )
            .await?;
            print_loaded(&rt);
            let mut doc = rt.to_json();
            doc["unix_time"] = json!(unix_time()?);
            doc["smoke"] = json!(args.smoke);
            merge_into(&args.out, vec![("round_trip_under_load", doc)])?;
            return Ok(Finished::Complete);
        }
    }
    let n = args.events;
    let dev = burst_device;

    println!("throughput: burst of {n} events");
    // (a) gateway-host on its embedded server.
    let port = free_port()?;
    let gw = tools
        .gateway_host("a", None, port, &dev(Gateway::Host), false)
        .await?;
    let a = scenarios::burst(port, Gateway::Host, &gw, n).await?;
    println!("  (a) {:.0} events/s", a.rate());
    let rt_host = scenarios::round_trip(port, Gateway::Host, args.writes).await?;
    drop(gw);
    // Floor of the embedded server: gateway-host with no devices.
    let port = free_port()?;
    let server = tools.event_server("floor-embedded", port).await?;
    let floor_embedded = scenarios::floor(port, n, Some(&server)).await?;
    println!("  floor_embedded {:.0} events/s", floor_embedded.rate());
    // (e) gateway-host and (d) hat-gateway on that server, a process of its own: the
    // gateways alone (goal 3).
    let (alone, d) = alone(tools, port, n, "e", "d").await?;
    drop(server);
    let loaded =
        scenarios::round_trip_under_load(tools, args.loaded_writes, args.load_points, args.hops)
            .await?;

    // (b) gateway-host and (c) hat-gateway on the real hat-event server, and its floor.
    let port = free_port()?;
    let server = tools.hat_event_server("floor-hat", port).await?;
    let floor_hat = scenarios::floor(port, n, Some(&server)).await?;
    println!("  floor_hat {:.0} events/s", floor_hat.rate());
    drop(server);
    let port = free_port()?;
    let server = tools.hat_event_server("b", port).await?;
    let gw = tools
        .gateway_host("b", Some(port), 0, &dev(Gateway::Host), false)
        .await?;
    let b = scenarios::burst(port, Gateway::Host, &gw, n).await?;
    println!("  (b) {:.0} events/s", b.rate());
    drop(gw);
    drop(server);
    let port = free_port()?;
    let server = tools.hat_event_server("c", port).await?;
    let hat = tools.hat_gateway("c", port, &dev(Gateway::Hat))?;
    let c = scenarios::burst(port, Gateway::Hat, &hat, n).await?;
    println!("  (c) {:.0} events/s", c.rate());
    let rt_hat = scenarios::round_trip(port, Gateway::Hat, args.writes).await?;
    drop(hat);
    drop(server);

    println!("scale: {:?} devices", args.scale);
    let mut scale = Vec::new();
    for &count in &args.scale {
        let embedded = scenarios::scale_embedded(tools, count).await?;
        let port = free_port()?;
        let server = tools
            .hat_event_server(&format!("scale-host-{count}"), port)
            .await?;
        let host = scenarios::scale_on_server(tools, port, Gateway::Host, count).await?;
        drop(server);
        let hat = if count <= args.hat_scale_max {
            let port = free_port()?;
            let server = tools
                .hat_event_server(&format!("scale-hat-{count}"), port)
                .await?;
            let r = scenarios::scale_on_server(tools, port, Gateway::Hat, count).await?;
            drop(server);
            Some(r)
        } else {
            None
        };
        scale.push((count, embedded, host, hat));
    }
    let startup_runs = startup(tools, args).await?;

    print_table(
        &[("a", &a), ("b", &b), ("c", &c), ("d", &d)],
        &floor_embedded,
        &floor_hat,
    );
    println!();
    alone.print();
    println!();
    println!("command round trip ({} sequential writes):", args.writes);
    for (label, rt) in [
        ("gateway-host, embedded server", &rt_host),
        ("hat-gateway, hat-event server", &rt_hat),
    ] {
        println!(
            "  {label:32} p50 {:8.3} ms  p99 {:8.3} ms  max {:8.3} ms",
            rt.p50_ms, rt.p99_ms, rt.max_ms
        );
    }
    print_loaded(&loaded);
    println!();
    println!("scale (start until every running=true; peak RSS):");
    let show = |label: &str, s: &Scale| {
        println!(
            "  {label:40} {:>6} devices {:8.2} s {:8.1} MiB",
            s.devices, s.seconds, s.peak_rss_mib
        )
    };
    for (_, embedded, host, hat) in &scale {
        show("gateway-host, embedded server", embedded);
        show("gateway-host, hat-event server", host);
        match hat {
            Some(hat) => show("hat-gateway, hat-event server", hat),
            None => println!("  hat-gateway: skipped (--hat-scale-max)"),
        }
    }

    println!();
    println!("start-up on the embedded server (start until every running=true; peak RSS):");
    for run in &startup_runs {
        print_startup(run);
    }

    let doc = json!({
        "smoke": args.smoke,
        "unix_time": unix_time()?,
        "startup_embedded": startup_json(&startup_runs),
        "startup_unix_time": unix_time()?,
        "startup_smoke": args.smoke,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "throughput": {
            "a_host_embedded": a.to_json(),
            "b_host_hat_event": b.to_json(),
            "c_hat_gateway_hat_event": c.to_json(),
            "d_hat_gateway_host_embedded": d.to_json(),
            "floor_embedded": floor_embedded.to_json(),
            "floor_hat_event": floor_hat.to_json(),
            "ratios": {
                "b_over_c_rate": ratio(b.rate(), c.rate()),
                "c_over_b_cpu": ratio(c.cpu_per_100k.unwrap_or(0.0), b.cpu_per_100k.unwrap_or(0.0)),
                "a_over_floor_embedded": ratio(a.rate(), floor_embedded.rate()),
                "b_over_floor_hat_event": ratio(b.rate(), floor_hat.rate()),
                "c_over_floor_hat_event": ratio(c.rate(), floor_hat.rate()),
                "d_over_floor_embedded": ratio(d.rate(), floor_embedded.rate()),
            }
        },
        "round_trip": {"host_embedded": rt_host.to_json(), "hat_gateway_hat_event": rt_hat.to_json()},
        "round_trip_under_load": loaded.to_json(),
        "gateway_alone": alone.to_json(),
        "scale": scale.iter().map(|(count, e, h, p)| json!({
            "devices": count,
            "host_embedded": e.to_json(),
            "host_hat_event": h.to_json(),
            "hat_gateway_hat_event": p.as_ref().map(Scale::to_json),
        })).collect::<Vec<Value>>(),
    });
    std::fs::write(&args.out, serde_json::to_vec_pretty(&doc)?)?;
    println!("\nresults written to {}", args.out.display());
    Ok(finished(&startup_runs))
}

fn unix_time() -> anyhow::Result<u64> {
    Ok(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs())
}

fn print_table(runs: &[(&str, &Throughput)], floor_embedded: &Throughput, floor_hat: &Throughput) {
    let names = [
        ("a", "gateway-host on its embedded server", floor_embedded),
        ("b", "gateway-host on hat-event 0.9.44", floor_hat),
        ("c", "hat-gateway 0.6.48 on hat-event 0.9.44", floor_hat),
        (
            "d",
            "hat-gateway 0.6.48 on gateway-host embedded",
            floor_embedded,
        ),
    ];
    println!();
    println!(
        "{:46} {:>12} {:>14} {:>9}",
        "throughput", "events/s", "CPU s/100k ev", "of floor"
    );
    for (key, label, floor) in names {
        if let Some((_, t)) = runs.iter().find(|(k, _)| *k == key) {
            println!(
                "({key}) {label:42} {:>12.0} {:>14.3} {:>8.1}%",
                t.rate(),
                t.cpu_per_100k.unwrap_or(f64::NAN),
                ratio(t.rate(), floor.rate()) * 100.0
            );
        }
    }
    println!(
        "floor: client straight into the embedded server    {:>12.0}",
        floor_embedded.rate()
    );
    println!(
        "floor: client straight into hat-event 0.9.44       {:>12.0}",
        floor_hat.rate()
    );
    let (b, c) = (runs[1].1, runs[2].1);
    println!(
        "gateway-host / hat-gateway on hat-event: {:.1}x events/s, {:.1}x less CPU per event",
        ratio(b.rate(), c.rate()),
        ratio(c.cpu_per_100k.unwrap_or(0.0), b.cpu_per_100k.unwrap_or(0.0))
    );
}
