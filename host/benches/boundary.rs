//! The cost of the plugin boundary: the `sim` device driven through the dynamic
//! boundary (libsim.so loaded by the real loader: FFI conversions, the plugin's own
//! runtime entered around each poll, FFI futures, JSON checks of what the plugin
//! registers) against the same device linked statically (the `sim` rlib). Both are
//! driven as a host `DeviceInstance` on the same host runtime and register through
//! the SDK `Client` into the same event client (a counter; the host's and the SDK's
//! client are one contract), so the only
//! difference is the boundary.
//!
//! Workloads: `write` (one `system/write` event -> one registration of 2 events) and
//! `burst` (one `system/burst` event of 1000 -> 2 registrations). At the end a
//! summary prints the dynamic/static throughput ratio (target: >= 0.90).
//!
//! Since issue 11 every plugin device call runs on the plugin call pool
//! (`host/src/plugins/call_thread.rs`), so a blocking plugin cannot stall the host:
//! one hand-over to a pool thread and one back per call. On the 2-core machine of
//! 2026-12-03 the first form of it, a thread per device, moved `write` from 7.2 us to
//! 14.6 us per event (dynamic/static from 0.66 to 0.23; the static side was faster in
//! the second run) and left `burst`, one call per 1001 registrations, unchanged
//! (1.68 ms before, 1.38 ms after). The shared pool that replaced it costs the same
//! hand-over: on the same machine under a load of about 3, `write` 18.9 us with a
//! thread per device, 20.5 and 25.5 us with the pool (best of 5 rounds: 45,000 and
//! 63,000-66,000 registered events/s); `burst` 1.33 ms and 1.01-1.35 ms.
//!
//! What is left of the difference besides that hand-over is copying:
//! every event that crosses is converted by move, but abi_stable never lets one
//! side take over a buffer the other side's allocator made, so the receiving side
//! copies each event-type segment and the payload text into its own allocation (one
//! allocation per string, where the static device hands the host its own), and the
//! host parses the JSON text a plugin registers. On a 2-core machine that is about
//! 1.4 us per `write` and 0.45 us per burst event: ratios around 0.6 and 0.5-0.65.
//!
//! Needs libsim.so of the same profile: `cargo build --release -p gateway-plugin-sim`
//! (a `cargo bench -p gateway-host` builds it as a dependency).

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use futures::future::BoxFuture;
use gateway_host::device::{
    ClientError, DeviceClient, DeviceContext, DeviceError, DeviceFactory, DeviceInstance,
};
use gateway_host::plugins::{PluginRegistry, PluginSearch};
use gateway_model::{
    Event, EventId, EventType, Payload, QueryParams, QueryResult, RegisterEvent, Timestamp,
};
use gateway_plugin_api::sdk::{Client, Context, Device as _};
use serde_json::json;

/// Counts registered events; answers immediately. The host-side client of both
/// sides.
#[derive(Default)]
struct Counter {
    events: AtomicU64,
}

impl DeviceClient for Counter {
    fn register(&self, events: Vec<RegisterEvent>) -> BoxFuture<'_, Result<(), ClientError>> {
        self.events
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        Box::pin(async { Ok(()) })
    }

    fn register_with_response(
        &self,
        _events: Vec<RegisterEvent>,
    ) -> BoxFuture<'_, Result<Option<Vec<Event>>, ClientError>> {
        Box::pin(async { Ok(None) })
    }

    fn query(&self, _params: QueryParams) -> BoxFuture<'_, Result<QueryResult, ClientError>> {
        Box::pin(async { Ok(QueryResult::default()) })
    }
}

/// The statically linked device as a host [`DeviceInstance`], like the dynamic one.
struct StaticSim(sim::SimDevice);

impl DeviceInstance for StaticSim {
    fn process_event(&self, event: Event) -> BoxFuture<'_, Result<(), DeviceError>> {
        Box::pin(async move {
            self.0
                .process_event(event)
                .await
                .map_err(|err| DeviceError::Failed(err.to_string()))
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.0.close())
    }

    fn closed(&self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::pending())
    }
}

/// A sim device as the engine drives it: dynamic (libsim.so) or static (rlib).
type Driven = Box<dyn DeviceInstance>;

async fn process(device: &Driven, event: Event) {
    device.process_event(event).await.unwrap();
}

fn prefix() -> EventType {
    ["gateway", "bench", "sim", "s"].map(String::from).to_vec()
}

fn event(suffix: &[&str], value: serde_json::Value) -> Event {
    let mut event_type = prefix();
    event_type.extend(suffix.iter().map(|s| (*s).to_owned()));
    Event {
        id: EventId::default(),
        event_type,
        timestamp: Timestamp::now(),
        source_timestamp: None,
        payload: Some(Payload::json(value)),
    }
}

fn libsim() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    for candidate in [
        profile_dir.join("libsim.so"),
        profile_dir.join("deps/libsim.so"),
    ] {
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "libsim.so not found in {}: run `cargo build --release -p gateway-plugin-sim` first",
        profile_dir.display()
    );
}

fn devices(rt: &tokio::runtime::Runtime) -> (Driven, Driven) {
    let conf = json!({"name": "s", "module": "sim", "points": ["a", "b", "c"]});
    // The bench reads the library in place; its directory's mode is the builder's.
    let registry = PluginRegistry::new(PluginSearch::new(Vec::new(), true));
    let plugin = registry.load_file(&libsim()).unwrap();
    let context = || DeviceContext {
        prefix: prefix(),
        client: Arc::new(Counter::default()),
        span: tracing::Span::none(),
    };
    let dynamic = rt.block_on(plugin.create(conf.clone(), context())).unwrap();
    let statically = rt.block_on(async {
        let context = context();
        let client = Client::new(context.client, context.prefix);
        sim::create(conf, Context::new(client)).await.unwrap()
    });
    (dynamic, Box::new(StaticSim(statically)))
}

fn write_event(i: u64) -> Event {
    event(&["system", "write", "b"], json!({"value": i, "id": i}))
}

fn burst_event() -> Event {
    event(&["system", "burst"], json!({"count": 1000, "id": 1}))
}

async fn run(device: &Driven, iters: u64, make: &dyn Fn(u64) -> Event) -> Duration {
    let start = Instant::now();
    for i in 0..iters {
        process(device, make(i)).await;
    }
    start.elapsed()
}

fn host_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn bench_boundary(c: &mut Criterion) {
    let rt = host_runtime();
    let (dynamic, statically) = devices(&rt);
    let mut group = c.benchmark_group("write");
    group.throughput(Throughput::Elements(1));
    for (name, device) in [("dynamic", &dynamic), ("static", &statically)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| rt.block_on(run(device, iters, &write_event)))
        });
    }
    group.finish();
    let mut group = c.benchmark_group("burst1000");
    group.throughput(Throughput::Elements(1001));
    for (name, device) in [("dynamic", &dynamic), ("static", &statically)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| rt.block_on(run(device, iters, &|_| burst_event())))
        });
    }
    group.finish();
}

/// Best of a few rounds, events per second.
fn throughput(
    rt: &tokio::runtime::Runtime,
    device: &Driven,
    iters: u64,
    make: &dyn Fn(u64) -> Event,
) -> f64 {
    let best = (0..5)
        .map(|_| rt.block_on(run(device, iters, make)))
        .min()
        .unwrap();
    iters as f64 / best.as_secs_f64()
}

fn summary() {
    let rt = host_runtime();
    let (dynamic, statically) = devices(&rt);
    println!("\nboundary summary (best of 5 rounds):");
    for (name, iters, make) in [
        (
            "write (1 event in, 2 registered)",
            20_000u64,
            &write_event as &dyn Fn(u64) -> Event,
        ),
        ("burst (1 event in, 1001 registered)", 200, &|_| {
            burst_event()
        }),
    ] {
        let d = throughput(&rt, &dynamic, iters, make);
        let s = throughput(&rt, &statically, iters, make);
        println!(
            "  {name}: dynamic {d:.0} ev/s, static {s:.0} ev/s, dynamic/static = {:.2}",
            d / s
        );
    }
}

/// What `criterion_group!` would generate, written out: the macro's `pub fn` cannot
/// carry the documentation `missing_docs` asks for.
fn benches() {
    let mut c = Criterion::default().configure_from_args();
    bench_boundary(&mut c);
}

fn main() {
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
    summary();
}
