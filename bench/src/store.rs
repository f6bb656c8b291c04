//! The event store scenario (issue 14): durable events/s of the embedded server's
//! event store file next to its memory store and next to hat-event-server's LMDB
//! backend, and the bytes per event the file takes.
//!
//! Each server gets the same burst through the TCP Eventer interface:
//! [`CONNECTIONS`] clients, each sending register requests of [`BATCH`] events with
//! response, one at a time, until `events` are registered; every request is answered
//! before the clock stops. The file store answers only after its commit (fsync), the
//! memory store at once, hat-event before its next flush (up to 1 s later).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use gateway_eventer::client::{Client, ClientConfig};
use gateway_model::{RegisterEvent, Status};
use serde_json::{json, Value};

use crate::procs::{free_port, wait_listening, Proc, Tools};

/// Concurrent client connections of the burst.
pub(crate) const CONNECTIONS: usize = 8;

/// Events per register request.
pub(crate) const BATCH: usize = 100;

/// One server's figures.
#[derive(Debug, Clone)]
pub(crate) struct StoreRun {
    /// Events registered and answered.
    pub events: u64,
    /// From the first request sent to the last answer.
    pub seconds: f64,
    /// The server process's CPU seconds during the burst.
    pub cpu_seconds: f64,
    /// Size of the database file after a graceful stop, per event; `None` when the
    /// server keeps no file.
    pub bytes_per_event: Option<f64>,
}

impl StoreRun {
    /// Events per second.
    pub(crate) fn rate(&self) -> f64 {
        if self.seconds > 0.0 {
            self.events as f64 / self.seconds
        } else {
            f64::NAN
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "events": self.events,
            "seconds": self.seconds,
            "events_per_s": self.rate(),
            "cpu_seconds": self.cpu_seconds,
            "bytes_per_event": self.bytes_per_event,
        })
    }
}

/// The three runs: the embedded server's file store, its memory store, hat-event LMDB.
#[derive(Debug, Clone)]
pub(crate) struct StoreResults {
    /// `event_server.embedded.db_path` (durable).
    pub file: StoreRun,
    /// `store: memory`.
    pub memory: StoreRun,
    /// hat-event-server 0.9.44, LMDB backend, `flush_period` 1 s.
    pub hat_lmdb: StoreRun,
}

impl StoreResults {
    /// The JSON figures (`store` in the results file).
    pub(crate) fn to_json(&self, smoke: bool) -> Value {
        json!({
            "connections": CONNECTIONS,
            "batch": BATCH,
            "file": self.file.to_json(),
            "memory": self.memory.to_json(),
            "hat_lmdb": self.hat_lmdb.to_json(),
            "file_vs_memory": self.file.rate() / self.memory.rate(),
            "file_vs_hat_lmdb": self.file.rate() / self.hat_lmdb.rate(),
            "smoke": smoke,
        })
    }

    /// Prints the table.
    pub(crate) fn print(&self) {
        println!("| server | events/s | CPU s | bytes/event on disk |");
        println!("|---|---|---|---|");
        for (name, run) in [
            ("embedded, event store file (durable)", &self.file),
            ("embedded, memory store", &self.memory),
            ("hat-event 0.9.44, LMDB backend", &self.hat_lmdb),
        ] {
            println!(
                "| {name} | {:.0} | {:.2} | {} |",
                run.rate(),
                run.cpu_seconds,
                run.bytes_per_event
                    .map_or_else(|| "-".to_owned(), |b| format!("{b:.0}"))
            );
        }
        println!(
            "file store: {:.0} % of the memory store, {:.1}x hat-event LMDB",
            100.0 * self.file.rate() / self.memory.rate(),
            self.file.rate() / self.hat_lmdb.rate()
        );
    }
}

/// Runs the scenario with bursts of `events`.
pub(crate) async fn run(tools: &Tools, events: u64) -> anyhow::Result<StoreResults> {
    let db = tools.work_dir.join("store-file.redb");
    let _ = std::fs::remove_file(&db);
    let file = embedded(
        tools,
        "store-file",
        json!({"db_path": db}),
        events,
        Some(&db),
    )
    .await?;
    println!("  event store file: {:.0} events/s", file.rate());
    let memory = embedded(
        tools,
        "store-memory",
        json!({"store": "memory"}),
        events,
        None,
    )
    .await?;
    println!("  memory store: {:.0} events/s", memory.rate());
    let hat_lmdb = hat(tools, events).await?;
    println!("  hat-event LMDB: {:.0} events/s", hat_lmdb.rate());
    Ok(StoreResults {
        file,
        memory,
        hat_lmdb,
    })
}

async fn embedded(
    tools: &Tools,
    label: &str,
    store: Value,
    events: u64,
    db: Option<&Path>,
) -> anyhow::Result<StoreRun> {
    let port = free_port()?;
    let mut embedded = json!({"eventer_server": {"host": "127.0.0.1", "port": port}});
    if let (Some(target), Some(settings)) = (embedded.as_object_mut(), store.as_object()) {
        target.extend(settings.clone());
    }
    let conf = json!({
        "name": "bench",
        "event_server": {"embedded": embedded},
        "devices": [],
        "log": {"level": "warn"}
    });
    let path = tools.write_conf(&format!("{label}.gateway.json"), &conf)?;
    let mut proc = Proc::spawn(
        label,
        Command::new(tools.bin_dir.join("gateway-host"))
            .arg("--conf")
            .arg(path)
            .env_remove("RUST_LOG")
            // Its pid file stays in the run's work dir, not in the home directory.
            .env("XDG_STATE_HOME", tools.work_dir.join("state")),
        &tools.work_dir.join(format!("{label}.gateway.log")),
    )?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_listening(addr, &mut proc).await?;
    let mut run = burst(addr, &proc, events).await?;
    proc.terminate_and_wait()?;
    if let Some(db) = db {
        run.bytes_per_event = Some(file_size(db)? as f64 / run.events as f64);
    }
    Ok(run)
}

async fn hat(tools: &Tools, events: u64) -> anyhow::Result<StoreRun> {
    let port = free_port()?;
    let mut proc = tools.hat_event_server("store-hat", port).await?;
    let mut run = burst(SocketAddr::from(([127, 0, 0, 1], port)), &proc, events).await?;
    proc.terminate_and_wait()?;
    run.bytes_per_event =
        Some(file_size(&tools.work_dir.join("store-hat.db"))? as f64 / run.events as f64);
    Ok(run)
}

/// Bytes of a file, or of every file under a directory (LMDB may use either).
fn file_size(path: &Path) -> anyhow::Result<u64> {
    let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
    if !meta.is_dir() {
        return Ok(meta.len());
    }
    let mut total = 0;
    for entry in std::fs::read_dir(path)? {
        total += file_size(&entry?.path())?;
    }
    Ok(total)
}

/// The burst: [`CONNECTIONS`] clients, requests of [`BATCH`] events each answered.
async fn burst(addr: SocketAddr, proc: &Proc, events: u64) -> anyhow::Result<StoreRun> {
    let mut clients = Vec::new();
    for i in 0..CONNECTIONS {
        let (client, mut rx) =
            Client::connect(addr, ClientConfig::new(format!("bench/store{i}"))).await?;
        while client.status() != Status::Operational {
            if rx.recv().await.is_none() {
                bail!("{addr}: closed before operational");
            }
        }
        clients.push(client);
    }
    let requests = events.div_ceil(BATCH as u64);
    let next = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let cpu0 = proc.cpu_seconds()?;
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for (i, client) in clients.into_iter().enumerate() {
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let event_type: Vec<String> = ["bench", "store", &i.to_string(), "value"]
                .iter()
                .map(|s| (*s).to_owned())
                .collect();
            let mut answered = 0u64;
            loop {
                let request = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if request >= requests {
                    return Ok::<u64, anyhow::Error>(answered);
                }
                let first = request * BATCH as u64;
                let batch: Vec<RegisterEvent> = (first..(first + BATCH as u64).min(events))
                    .map(|n| RegisterEvent::json(event_type.clone(), json!(n)))
                    .collect();
                match client.register_with_response(batch).await? {
                    Some(stored) => answered += stored.len() as u64,
                    None => bail!("a register request was answered failure"),
                }
            }
        }));
    }
    let mut answered = 0;
    for task in tasks {
        answered += task.await??;
    }
    let seconds = t0.elapsed().as_secs_f64();
    Ok(StoreRun {
        events: answered,
        seconds,
        cpu_seconds: proc.cpu_seconds()? - cpu0,
        bytes_per_event: None,
    })
}
