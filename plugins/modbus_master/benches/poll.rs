//! Polling benchmark: 10 remote devices x 1000 holding registers every 100 ms
//! (100,000 points/s) over one Modbus TCP connection on loopback.
//!
//! The slave is this binary re-executed as a child process (`support/slave.rs`, a
//! minimal Rust Modbus TCP slave), so `getrusage(RUSAGE_SELF)` counts only the master.
//! Two runs: `static` (values never change: polling cost only) and `changing` (every
//! register changes on every read: every point also produces a CHANGE event).
//!
//! `cargo bench -p modbus_master --bench poll`; `MODBUS_BENCH_SECS` sets the measured
//! window per run (default 10 s).
#![allow(clippy::unwrap_used)]

#[path = "support/slave.rs"]
mod slave;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use gateway_model::{ClientError, Event, EventClient, QueryParams, QueryResult, RegisterEvent};
use modbus_master::MasterDevice;
use serde_json::json;

const REMOTE_DEVICES: u8 = 10;
const POINTS: u16 = 1000;
const INTERVAL: f64 = 0.1;

fn main() {
    if let Ok(mode) = std::env::var(slave::SLAVE_ENV) {
        return slave::run_slave(mode == "changing");
    }
    let secs: u64 = std::env::var("MODBUS_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    println!(
        "modbus_master poll benchmark: {REMOTE_DEVICES} remote devices x {POINTS} holding registers every {INTERVAL} s \
         (target {} points/s), {secs} s per run",
        (f64::from(REMOTE_DEVICES) * f64::from(POINTS) / INTERVAL) as u64
    );
    for mode in ["static", "changing"] {
        run_master(mode, Duration::from_secs(secs));
    }
}

struct CountingSink {
    events: AtomicU64,
}

impl EventClient for CountingSink {
    fn register(&self, events: Vec<RegisterEvent>) -> BoxFuture<'_, Result<(), ClientError>> {
        self.events
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        Box::pin(async { Ok(()) })
    }

    fn register_with_response(
        &self,
        _: Vec<RegisterEvent>,
    ) -> BoxFuture<'_, Result<Option<Vec<Event>>, ClientError>> {
        Box::pin(async { Ok(None) })
    }

    fn query(&self, _: QueryParams) -> BoxFuture<'_, Result<QueryResult, ClientError>> {
        Box::pin(async { Ok(QueryResult::default()) })
    }
}

fn cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a complete rusage into the pointer it is given.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn run_master(mode: &str, window: Duration) {
    let mut slave = slave::Slave::spawn(mode == "changing");
    let port = slave.port;
    let mut ask = move || slave.served();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let remote_devices: Vec<_> = (1..=REMOTE_DEVICES)
        .map(|id| {
            let data: Vec<_> = (0..POINTS)
                .map(|a| json!({"name": format!("p{a}"), "interval": INTERVAL, "data_type": "HOLDING_REGISTER",
                                "start_address": a, "bit_offset": 0, "bit_count": 16}))
                .collect();
            json!({"device_id": id, "timeout_poll_delay": 1, "data": data})
        })
        .collect();
    let conf = json!({
        "name": "bench",
        "connection": {
            "modbus_type": "TCP",
            "transport": {"type": "TCP", "host": "127.0.0.1", "port": port},
            "connect_timeout": 5, "connect_delay": 1, "request_timeout": 2, "request_delay": 0,
            "request_retry_immediate_count": 0, "request_retry_delayed_count": 0, "request_retry_delay": 1
        },
        "remote_devices": remote_devices
    });
    let sink = Arc::new(CountingSink {
        events: AtomicU64::new(0),
    });
    let prefix = ["gateway", "bench", "modbus_master", "bench"]
        .map(String::from)
        .to_vec();
    let enabled: Vec<u8> = (1..=REMOTE_DEVICES).collect();
    let device = runtime.block_on(async {
        let device = MasterDevice::create(&conf, prefix.clone(), sink.clone()).unwrap();
        for id in enabled {
            let mut event_type = prefix.clone();
            event_type
                .extend(["system", "remote_device", &id.to_string(), "enable"].map(String::from));
            device
                .process_event(Event {
                    id: Default::default(),
                    event_type,
                    timestamp: Default::default(),
                    source_timestamp: None,
                    payload: Some(gateway_model::Payload::json(json!(true))),
                })
                .await;
        }
        device
    });
    // Warm-up: connection, first interrogation of every point.
    std::thread::sleep(Duration::from_secs(1));
    let (points0, events0, cpu0, t0) = (
        ask(),
        sink.events.load(Ordering::Relaxed),
        cpu_seconds(),
        Instant::now(),
    );
    std::thread::sleep(window);
    let (points1, events1, cpu1, elapsed) = (
        ask(),
        sink.events.load(Ordering::Relaxed),
        cpu_seconds(),
        t0.elapsed(),
    );
    runtime.block_on(device.close());
    drop(runtime);
    drop(ask);

    let points = (points1 - points0) as f64;
    let cpu = cpu1 - cpu0;
    let rate = points / elapsed.as_secs_f64();
    println!(
        "{mode:>8}: {rate:>9.0} points/s read, {:>9.0} events/s, CPU {:.3} s per 100,000 points, {:.1}% of one core",
        (events1 - events0) as f64 / elapsed.as_secs_f64(),
        cpu / points * 100_000.0,
        cpu / elapsed.as_secs_f64() * 100.0
    );
}
