//! The benchmark scenarios of issue 6: throughput, command round trip, scale, floor.
//! Each drives the gateways through a real Eventer client and measures from outside.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use gateway_eventer::client::{Client, ClientConfig, Notification};
use gateway_model::{Event, EventType, RegisterEvent};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::procs::{free_port, Proc, Tools};

/// Events per register request of the floor client (the sim devices use the same).
pub(crate) const BATCH: usize = 1000;

/// Longest a single wait may take before the scenario is reported as failed.
const WAIT_LIMIT: Duration = Duration::from_secs(600);

/// Distinct event types the start-up scenario lets the embedded server hold per
/// device (`event_server.embedded.limits.max_event_types`): each `sim` device has 6
/// (`system/enable`, `gateway/running` and its 4 points' data; with 4, the server
/// refused most devices' initial data events).
const STARTUP_TYPES_PER_DEVICE: usize = 8;

/// Bytes of notifications and answers the embedded server may queue for the start-up
/// scenario's subscriber (`event_server.embedded.limits.max_outbound_bytes`).
const STARTUP_OUTBOUND_BYTES: usize = 1 << 30;

/// Which gateway implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gateway {
    /// gateway-host with the `sim` plugin (4-segment prefix).
    Host,
    /// Python hat-gateway 0.6.48 with `bench/py/hat_sim_device.py` (3-segment prefix).
    Hat,
}

impl Gateway {
    fn prefix(self, device: &str) -> EventType {
        let segments: &[&str] = match self {
            Self::Host => &["gateway", "gw1", "sim", device],
            Self::Hat => &["gateway", "sim", device],
        };
        segments.iter().map(|s| (*s).to_owned()).collect()
    }

    fn device_conf(self, name: &str) -> Value {
        let module = match self {
            Self::Host => "sim",
            Self::Hat => "hat_sim_device",
        };
        json!({"module": module, "name": name, "points": ["p0", "p1", "p2", "p3"]})
    }
}

fn with(prefix: &EventType, suffix: &[&str]) -> EventType {
    let mut t = prefix.clone();
    t.extend(suffix.iter().map(|s| (*s).to_owned()));
    t
}

async fn connect(
    port: u16,
    name: &str,
    subscriptions: Vec<EventType>,
) -> anyhow::Result<(Client, mpsc::Receiver<Notification>)> {
    let mut config = ClientConfig::new(name);
    config.subscriptions = subscriptions;
    Client::connect(SocketAddr::from(([127, 0, 0, 1], port)), config)
        .await
        .with_context(|| format!("connecting {name} to port {port}"))
}

async fn next_events(rx: &mut mpsc::Receiver<Notification>) -> anyhow::Result<Vec<Event>> {
    loop {
        match tokio::time::timeout(WAIT_LIMIT, rx.recv()).await {
            Err(_) => bail!("no notification within {WAIT_LIMIT:?}"),
            Ok(None) => bail!("event server connection closed"),
            Ok(Some(Notification::Events(events))) => return Ok(events),
            Ok(Some(Notification::Status(_))) => {}
        }
    }
}

fn is_json(event: &Event, value: &Value) -> bool {
    event
        .payload
        .as_ref()
        .and_then(|p| p.json_value())
        .is_some_and(|v| &v == value)
}

/// Registers `enable=true` for `device` and waits for its `running=true`.
async fn enable_and_wait(port: u16, gateway: Gateway, device: &str) -> anyhow::Result<()> {
    let prefix = gateway.prefix(device);
    let running = with(&prefix, &["gateway", "running"]);
    let (client, mut rx) = connect(port, "bench/enable", vec![running.clone()]).await?;
    client
        .register(vec![RegisterEvent::json(
            with(&prefix, &["system", "enable"]),
            json!(true),
        )])
        .await?;
    // Already running (an earlier scenario enabled it) gives no new event: ask first.
    let latest = client
        .query(gateway_model::QueryParams::Latest(
            gateway_model::QueryLatestParams {
                event_types: Some(vec![running]),
            },
        ))
        .await?;
    if !latest.events.iter().any(|e| is_json(e, &json!(true))) {
        while !next_events(&mut rx)
            .await?
            .iter()
            .any(|e| is_json(e, &json!(true)))
        {}
    }
    client.close().await;
    Ok(())
}

/// Result of one throughput or floor run.
#[derive(Debug, Clone)]
pub(crate) struct Throughput {
    /// Data events the subscriber counted.
    pub events: u64,
    /// Seconds from the burst request to the completion event.
    pub seconds: f64,
    /// CPU seconds of the gateway process (for a floor: the event server's) per 100,000
    /// events.
    pub cpu_per_100k: Option<f64>,
}

impl Throughput {
    /// Events per second.
    pub(crate) fn rate(&self) -> f64 {
        self.events as f64 / self.seconds
    }

    /// As JSON.
    pub(crate) fn to_json(&self) -> Value {
        json!({"events": self.events, "seconds": self.seconds, "events_per_s": self.rate(),
               "cpu_s_per_100k_events": self.cpu_per_100k})
    }
}

/// Counts `P/gateway/data/*` events until `P/gateway/burst` arrives.
async fn count_until_done(rx: &mut mpsc::Receiver<Notification>) -> anyhow::Result<u64> {
    let mut count = 0u64;
    loop {
        for event in next_events(rx).await? {
            match event.event_type.iter().rev().nth(1).map(String::as_str) {
                Some("data") => count += 1,
                _ if event.event_type.last().is_some_and(|s| s == "burst") => return Ok(count),
                _ => {}
            }
        }
    }
}

/// The client that counts a burst: subscribed to the data and the burst-done events
/// under `prefix`.
async fn burst_subscriber(
    server_port: u16,
    prefix: &EventType,
) -> anyhow::Result<(Client, mpsc::Receiver<Notification>)> {
    connect(
        server_port,
        "bench/subscriber",
        vec![
            with(prefix, &["gateway", "data", "*"]),
            with(prefix, &["gateway", "burst"]),
        ],
    )
    .await
}

/// A `sim` device's burst of `count` events, counted by a separate subscriber.
/// `server_port` is the event server; `gateway` is the gateway process to charge CPU to.
pub(crate) async fn burst(
    server_port: u16,
    kind: Gateway,
    gateway: &Proc,
    count: u64,
) -> anyhow::Result<Throughput> {
    let prefix = kind.prefix("s1");
    enable_and_wait(server_port, kind, "s1").await?;
    let (_sub, mut rx) = burst_subscriber(server_port, &prefix).await?;
    let (ctl, _ctl_rx) = connect(server_port, "bench/control", vec![]).await?;
    let cpu0 = gateway.cpu_seconds()?;
    let t0 = Instant::now();
    ctl.register(vec![RegisterEvent::json(
        with(&prefix, &["system", "burst"]),
        json!({"count": count, "id": 1}),
    )])
    .await?;
    let events = count_until_done(&mut rx).await?;
    let seconds = t0.elapsed().as_secs_f64();
    let cpu = gateway.cpu_seconds()? - cpu0;
    Ok(Throughput {
        events,
        seconds,
        cpu_per_100k: Some(cpu / events.max(1) as f64 * 100_000.0),
    })
}

/// The floor: the same events registered straight into the server by one client.
/// With `server`, its CPU per 100,000 events is measured too.
pub(crate) async fn floor(
    server_port: u16,
    count: u64,
    server: Option<&Proc>,
) -> anyhow::Result<Throughput> {
    // Not the gateway's own name: the embedded server refuses a TCP client's events
    // under `gateway/gw1/?/?/gateway/...` (no client can forge the gateway's output).
    let prefix: EventType = ["gateway", "floor", "sim", "floor"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let (_sub, mut rx) = burst_subscriber(server_port, &prefix).await?;
    let (ctl, _ctl_rx) = connect(server_port, "bench/floor", vec![]).await?;
    let points = ["p0", "p1", "p2", "p3"];
    let data_types: Vec<EventType> = points
        .iter()
        .map(|p| with(&prefix, &["gateway", "data", p]))
        .collect();
    let cpu0 = server.map(Proc::cpu_seconds).transpose()?;
    let t0 = Instant::now();
    let mut seq = 0u64;
    while seq < count {
        let n = (count - seq).min(BATCH as u64);
        // The payload text serde_json writes for `{"value": i}`, without building a
        // `Value` map per event: the floor measures the server, not the client's JSON.
        let batch = (seq..seq + n)
            .map(|i| RegisterEvent {
                event_type: data_types[(i % points.len() as u64) as usize].clone(),
                source_timestamp: None,
                payload: Some(gateway_model::Payload::Json(
                    gateway_model::JsonText::new_unchecked(format!("{{\"value\":{i}}}")),
                )),
            })
            .collect();
        ctl.register(batch).await?;
        seq += n;
    }
    ctl.register(vec![RegisterEvent::json(
        with(&prefix, &["gateway", "burst"]),
        json!({"id": 1, "count": count}),
    )])
    .await?;
    let events = count_until_done(&mut rx).await?;
    let seconds = t0.elapsed().as_secs_f64();
    let cpu_per_100k = match (server, cpu0) {
        (Some(server), Some(cpu0)) => {
            Some((server.cpu_seconds()? - cpu0) / events.max(1) as f64 * 100_000.0)
        }
        _ => None,
    };
    Ok(Throughput {
        events,
        seconds,
        cpu_per_100k,
    })
}

/// Latency percentiles of sequential write commands, in milliseconds.
#[derive(Debug, Clone)]
pub(crate) struct RoundTrip {
    /// Commands sent.
    pub count: usize,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Maximum.
    pub max_ms: f64,
}

impl RoundTrip {
    /// As JSON.
    pub(crate) fn to_json(&self) -> Value {
        json!({"count": self.count, "p50_ms": self.p50_ms, "p99_ms": self.p99_ms, "max_ms": self.max_ms})
    }
}

/// `count` sequential `write` commands, each timed until its result event arrives.
pub(crate) async fn round_trip(
    server_port: u16,
    kind: Gateway,
    count: usize,
) -> anyhow::Result<RoundTrip> {
    Ok(round_trip_on(server_port, kind, "s1", count, false)
        .await?
        .0)
}

/// Where a command's round trip went, in milliseconds per hop, from the server's
/// timestamps of the command event and of its result event (the event server and the
/// harness share the machine's clock):
/// `in`: harness sends the command until the server stores it (client write, TCP,
/// the server reading it); `gateway`: until the server stores the result (notify to
/// the gateway, routing, the device's `process_event`, its register, the lane and
/// round); `out`: until the harness has the result (the server's fan-out to TCP
/// connections, TCP, the harness reading it).
#[derive(Debug, Clone, Default)]
pub(crate) struct Hops {
    /// Per command: `[in, gateway, out]`.
    samples: Vec<[f64; 3]>,
}

/// Names of the [`Hops`] columns.
const HOP_NAMES: [&str; 3] = ["in", "gateway", "out"];

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

impl Hops {
    fn column(&self, hop: usize) -> Vec<f64> {
        let mut values: Vec<f64> = self.samples.iter().map(|s| s[hop]).collect();
        values.sort_by(f64::total_cmp);
        values
    }

    /// The slowest 1 % of commands: the mean of each hop over them.
    fn tail_means(&self) -> [f64; 3] {
        let mut by_total: Vec<&[f64; 3]> = self.samples.iter().collect();
        by_total.sort_by(|a, b| b.iter().sum::<f64>().total_cmp(&a.iter().sum::<f64>()));
        let tail = &by_total[..(by_total.len() / 100).max(1).min(by_total.len())];
        let mut means = [0.0; 3];
        for sample in tail {
            for (mean, value) in means.iter_mut().zip(sample.iter()) {
                *mean += value / tail.len() as f64;
            }
        }
        means
    }

    /// Prints p50 / p99 / max of each hop and the slowest 1 %'s mean per hop.
    pub(crate) fn print(&self) {
        let tail = self.tail_means();
        for (hop, name) in HOP_NAMES.iter().enumerate() {
            let values = self.column(hop);
            println!(
                "    hop {name:8} p50 {:8.3} ms  p99 {:8.3} ms  max {:8.3} ms  (slowest 1 %: mean {:.3} ms)",
                percentile(&values, 0.5),
                percentile(&values, 0.99),
                percentile(&values, 1.0),
                tail[hop],
            );
        }
    }

    /// As JSON.
    pub(crate) fn to_json(&self) -> Value {
        let tail = self.tail_means();
        let mut doc = json!({});
        for (hop, name) in HOP_NAMES.iter().enumerate() {
            let values = self.column(hop);
            doc[*name] = json!({
                "p50_ms": percentile(&values, 0.5),
                "p99_ms": percentile(&values, 0.99),
                "max_ms": percentile(&values, 1.0),
                "slowest_1pct_mean_ms": tail[hop],
            });
        }
        doc
    }
}

fn unix_ms(time: std::time::SystemTime) -> f64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

fn event_ms(event: &Event) -> f64 {
    event.timestamp.s as f64 * 1000.0 + event.timestamp.us as f64 / 1000.0
}

/// [`round_trip`] on the device named `device`; with `hops`, the commander also
/// subscribes to its own commands (one more notify per command) to split each round
/// trip into [`Hops`].
async fn round_trip_on(
    server_port: u16,
    kind: Gateway,
    device: &str,
    count: usize,
    hops: bool,
) -> anyhow::Result<(RoundTrip, Option<Hops>)> {
    let prefix = kind.prefix(device);
    enable_and_wait(server_port, kind, device).await?;
    let result_type = with(&prefix, &["gateway", "write", "p0"]);
    let command_type = with(&prefix, &["system", "write", "p0"]);
    let mut subscriptions = vec![result_type.clone()];
    if hops {
        subscriptions.push(command_type.clone());
    }
    let (client, mut rx) = connect(server_port, "bench/commander", subscriptions).await?;
    let mut samples = Vec::with_capacity(count);
    let mut split = Hops::default();
    for id in 0..count {
        let sent = std::time::SystemTime::now();
        let t0 = Instant::now();
        client
            .register(vec![RegisterEvent::json(
                command_type.clone(),
                json!({"value": id, "id": id}),
            )])
            .await?;
        let mut command_ms = None;
        let result_ms = 'wait: loop {
            for event in next_events(&mut rx).await? {
                let payload = event.payload.as_ref().and_then(|p| p.json_value());
                if payload.as_ref().and_then(|v| v.get("id")) != Some(&json!(id)) {
                    continue;
                }
                if event.event_type == command_type {
                    command_ms = Some(event_ms(&event));
                } else {
                    break 'wait event_ms(&event);
                }
            }
        };
        samples.push(t0.elapsed().as_secs_f64() * 1000.0);
        if hops {
            let received = unix_ms(std::time::SystemTime::now());
            let command_ms = command_ms.context("the result came before its command")?;
            split.samples.push([
                command_ms - unix_ms(sent),
                result_ms - command_ms,
                received - result_ms,
            ]);
        }
    }
    samples.sort_by(f64::total_cmp);
    let pick = |q: f64| percentile(&samples, q);
    let round_trip = RoundTrip {
        count,
        p50_ms: pick(0.5),
        p99_ms: pick(0.99),
        max_ms: pick(1.0),
    };
    Ok((round_trip, hops.then_some(split)))
}

/// Result of a scale run.
#[derive(Debug, Clone)]
pub(crate) struct Scale {
    /// Devices configured and enabled.
    pub devices: usize,
    /// Seconds from process start until every `running=true` was seen.
    pub seconds: f64,
    /// Peak RSS of the gateway process.
    pub peak_rss_mib: f64,
}

impl Scale {
    /// As JSON.
    pub(crate) fn to_json(&self) -> Value {
        json!({"devices": self.devices, "seconds_to_all_running": self.seconds, "peak_rss_mib": self.peak_rss_mib})
    }
}

fn device_names(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("d{i}")).collect()
}

/// Waits until `running=true` was seen for every device in `names`.
async fn wait_all_running(
    rx: &mut mpsc::Receiver<Notification>,
    names: &[String],
) -> anyhow::Result<()> {
    let mut pending: HashSet<&str> = names.iter().map(String::as_str).collect();
    while !pending.is_empty() {
        for event in next_events(rx).await? {
            if is_json(&event, &json!(true)) {
                let n = event.event_type.len();
                if n >= 3 {
                    pending.remove(event.event_type[n - 3].as_str());
                }
            }
        }
    }
    Ok(())
}

/// `count` devices, all enabled beforehand on a real hat-event server: time from the
/// gateway's start until every `running=true` has been seen, and its peak RSS.
pub(crate) async fn scale_on_server(
    tools: &Tools,
    server_port: u16,
    kind: Gateway,
    count: usize,
) -> anyhow::Result<Scale> {
    let names = device_names(count);
    let (ctl, _ctl_rx) = connect(server_port, "bench/control", vec![]).await?;
    for chunk in names.chunks(BATCH) {
        let enables = chunk
            .iter()
            .map(|n| RegisterEvent::json(with(&kind.prefix(n), &["system", "enable"]), json!(true)))
            .collect();
        ctl.register_with_response(enables).await?;
    }
    let running = with(&kind.prefix("?"), &["gateway", "running"]);
    let (_sub, mut rx) = connect(server_port, "bench/subscriber", vec![running]).await?;
    let confs: Vec<Value> = names.iter().map(|n| kind.device_conf(n)).collect();
    let label = format!("scale-{kind:?}-{count}").to_lowercase();
    let t0 = Instant::now();
    let gateway = match kind {
        Gateway::Host => {
            tools
                .gateway_host(&label, Some(server_port), 0, &confs, false)
                .await?
        }
        Gateway::Hat => tools.hat_gateway(&label, server_port, &confs)?,
    };
    wait_all_running(&mut rx, &names).await?;
    Ok(Scale {
        devices: count,
        seconds: t0.elapsed().as_secs_f64(),
        peak_rss_mib: gateway.peak_rss_mib()?,
    })
}

/// `count` devices on gateway-host's embedded server with `enable_devices: true`.
pub(crate) async fn scale_embedded(tools: &Tools, count: usize) -> anyhow::Result<Scale> {
    let run = startup_embedded(tools, count, WAIT_LIMIT).await?;
    if run.running < count {
        bail!(
            "only {} of {count} devices running after {:.0} s",
            run.running,
            run.seconds
        );
    }
    Ok(Scale {
        devices: count,
        seconds: run.seconds,
        peak_rss_mib: run.peak_rss_kib / 1024.0,
    })
}

/// Result of one start-up run (issue 12): start until every device is running.
#[derive(Debug, Clone)]
pub(crate) struct Startup {
    /// Devices configured and enabled.
    pub devices: usize,
    /// Devices seen running (`devices` unless the run timed out or the gateway died).
    pub running: usize,
    /// Seconds from process start until the last `running=true` (or the time limit).
    pub seconds: f64,
    /// Peak RSS of the gateway process, KiB.
    pub peak_rss_kib: f64,
    /// Threads of the gateway process at the end.
    pub threads: Option<u64>,
    /// CPU seconds (user + system) of the gateway process at the end.
    pub cpu_seconds: Option<f64>,
    /// Why the run stopped short, if it did.
    pub stopped: Option<String>,
}

impl Startup {
    /// Microseconds per device.
    pub(crate) fn us_per_device(&self) -> f64 {
        self.seconds * 1e6 / self.devices.max(1) as f64
    }

    /// Peak RSS per device, KiB.
    pub(crate) fn kib_per_device(&self) -> f64 {
        self.peak_rss_kib / self.devices.max(1) as f64
    }

    /// As JSON.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "devices": self.devices,
            "running": self.running,
            "seconds_to_all_running": self.seconds,
            "us_per_device": self.us_per_device(),
            "peak_rss_mib": self.peak_rss_kib / 1024.0,
            "kib_per_device": self.kib_per_device(),
            "threads": self.threads,
            "cpu_seconds": self.cpu_seconds,
            "stopped": self.stopped,
        })
    }
}

/// `count` `sim` devices on gateway-host's embedded server with `enable_devices: true`:
/// time from the process start until every `running=true` was seen, and its peak RSS.
/// After `limit` (or when the gateway dies) the run stops and says how far it got.
pub(crate) async fn startup_embedded(
    tools: &Tools,
    count: usize,
    limit: Duration,
) -> anyhow::Result<Startup> {
    let names = device_names(count);
    let confs: Vec<Value> = names.iter().map(|n| Gateway::Host.device_conf(n)).collect();
    let port = free_port()?;
    let t0 = Instant::now();
    let deadline = tokio::time::Instant::now() + limit;
    let label = format!("scale-embedded-{count}");
    // Each device has an enable and a running type and its points' data types: the
    // default 100,000 distinct types would refuse the 100,000-device run.
    // The subscriber gets a notification per device and the latest query's answer
    // holds every device's running event (about 15 MB at 100,000 devices): the
    // default outbound limits (16 MiB, 4096 messages) would drop it as a slow client.
    let limits = json!({
        "max_event_types": STARTUP_TYPES_PER_DEVICE * count.max(1) + 1_000,
        "max_outbound_bytes": STARTUP_OUTBOUND_BYTES,
        "max_outbound_messages": count.max(1) + 4_096,
    });
    let mut gateway = tools
        .gateway_host_with_limits(&label, None, port, &confs, true, limits)
        .await?;
    // The subscriber can only connect once the server listens; what happened before
    // is read with a latest query after subscribing, so nothing is missed.
    let running = with(&Gateway::Host.prefix("?"), &["gateway", "running"]);
    let (client, mut rx) = connect(port, "bench/subscriber", vec![running.clone()]).await?;
    // The query's answer queues behind the notifications on the connection, so they
    // are drained while it runs (a client that stops reading is dropped by the server).
    // The task gets a clone: dropping the last clone would close the connection.
    let query_client = client.clone();
    let mut query = tokio::spawn(async move {
        query_client
            .query(gateway_model::QueryParams::Latest(
                gateway_model::QueryLatestParams {
                    event_types: Some(vec![running]),
                },
            ))
            .await
    });
    let mut pending: HashSet<String> = names.iter().cloned().collect();
    let mark_running = |events: &[Event], pending: &mut HashSet<String>| {
        for event in events.iter().filter(|e| is_json(e, &json!(true))) {
            let n = event.event_type.len();
            pending.remove(&event.event_type[n - 3]);
        }
    };
    let mut answered = false;
    // Checks now and then that the gateway still lives (it cannot say so itself).
    let mut alive = tokio::time::interval(Duration::from_millis(500));
    let mut stopped = None;
    while !answered || !pending.is_empty() {
        tokio::select! {
            result = &mut query, if !answered => {
                match result? {
                    Ok(result) => mark_running(&result.events, &mut pending),
                    Err(err) => {
                        stopped = Some(format!("latest query: {err}"));
                        break;
                    }
                }
                answered = true;
            }
            events = next_events(&mut rx) => match events {
                Ok(events) => mark_running(&events, &mut pending),
                Err(err) => {
                    stopped = Some(err.to_string());
                    break;
                }
            },
            () = tokio::time::sleep_until(deadline) => {
                stopped = Some(format!("time limit of {} s", limit.as_secs()));
                break;
            }
            _ = alive.tick() => {
                if let Err(err) = gateway.check_alive() {
                    stopped = Some(err.to_string());
                    break;
                }
            }
        }
    }
    let seconds = t0.elapsed().as_secs_f64();
    let (peak_rss_kib, threads, cpu_seconds) = match &stopped {
        // A dead process has no figures left.
        Some(_) if gateway.check_alive().is_err() => (0.0, None, None),
        _ => (
            gateway.peak_rss_mib()? * 1024.0,
            gateway.threads().ok(),
            gateway.cpu_seconds().ok(),
        ),
    };
    if let Some(why) = &mut stopped {
        // What the gateway said first and last says why.
        let log = std::fs::read_to_string(tools.work_dir.join(format!("{label}.gateway.log")))
            .unwrap_or_default();
        let first_error = log.lines().find(|l| l.contains("ERROR"));
        let last = log.lines().rev().find(|l| !l.trim().is_empty());
        for line in first_error.into_iter().chain(last) {
            let line: String = line.chars().take(300).collect();
            why.push_str(&format!("; gateway log: {line}"));
        }
        eprintln!(
            "  start-up of {count} devices stopped ({why}); logs kept in {}",
            tools.work_dir.display()
        );
    }
    Ok(Startup {
        devices: count,
        running: count - pending.len(),
        seconds,
        peak_rss_kib,
        threads,
        cpu_seconds,
        stopped,
    })
}

/// Seconds between the changes of the latency scenario's loading device (each of its
/// points changes every period: 1,000 points give 100,000 events/s).
pub(crate) const LOAD_PERIOD_S: f64 = 0.01;

/// Command round trips on one device while another device of the same gateway loads
/// it (issue 12, goal 4).
#[derive(Debug, Clone)]
pub(crate) struct LoadedRoundTrip {
    /// The round trips, measured as [`round_trip`] does.
    pub round_trip: RoundTrip,
    /// The round trips split into hops (`--hops`).
    pub hops: Option<Hops>,
    /// Events per second the loading device offered (points / period).
    pub offered_per_s: f64,
    /// Events per second it registered while the commands ran (from its points' values).
    pub load_per_s: f64,
    /// CPU seconds of the gateway process per 100,000 load events.
    pub cpu_per_100k: f64,
}

impl LoadedRoundTrip {
    /// As JSON.
    pub(crate) fn to_json(&self) -> Value {
        let mut doc = self.round_trip.to_json();
        doc["offered_events_per_s"] = json!(self.offered_per_s);
        doc["load_events_per_s"] = json!(self.load_per_s);
        doc["cpu_s_per_100k_events"] = json!(self.cpu_per_100k);
        if let Some(hops) = &self.hops {
            doc["hops"] = hops.to_json();
        }
        doc
    }
}

/// The sum of the loading device's point values: every point goes up by 1 per period,
/// so the difference of two sums is the events registered in between.
async fn load_sum(client: &Client, prefix: &EventType) -> anyhow::Result<i64> {
    let result = client
        .query(gateway_model::QueryParams::Latest(
            gateway_model::QueryLatestParams {
                event_types: Some(vec![with(prefix, &["gateway", "data", "*"])]),
            },
        ))
        .await?;
    Ok(result
        .events
        .iter()
        .filter_map(|e| e.payload.as_ref()?.json_value()?.get("value")?.as_i64())
        .sum())
}

/// `writes` sequential write commands to device `s2` of gateway-host on its embedded
/// server, while device `load` changes `load_points` points every [`LOAD_PERIOD_S`];
/// with `hops`, each round trip is split into [`Hops`] too.
pub(crate) async fn round_trip_under_load(
    tools: &Tools,
    writes: usize,
    load_points: usize,
    hops: bool,
) -> anyhow::Result<LoadedRoundTrip> {
    let points: Vec<String> = (0..load_points).map(|i| format!("p{i}")).collect();
    let devices = [
        json!({"module": "sim", "name": "load", "points": points, "period": LOAD_PERIOD_S}),
        json!({"module": "sim", "name": "s2", "points": ["p0"]}),
    ];
    let port = free_port()?;
    let gateway = tools
        .gateway_host("latency", None, port, &devices, true)
        .await?;
    let load = Gateway::Host.prefix("load");
    enable_and_wait(port, Gateway::Host, "load").await?;
    let (ctl, _ctl_rx) = connect(port, "bench/load-counter", vec![]).await?;
    let sum0 = load_sum(&ctl, &load).await?;
    let cpu0 = gateway.cpu_seconds()?;
    let t0 = Instant::now();
    let (round_trip, hops) = round_trip_on(port, Gateway::Host, "s2", writes, hops).await?;
    let seconds = t0.elapsed().as_secs_f64();
    let cpu = gateway.cpu_seconds()? - cpu0;
    let events = (load_sum(&ctl, &load).await? - sum0).max(0) as f64;
    Ok(LoadedRoundTrip {
        round_trip,
        hops,
        offered_per_s: load_points as f64 / LOAD_PERIOD_S,
        load_per_s: events / seconds,
        cpu_per_100k: cpu / events.max(1.0) * 100_000.0,
    })
}
