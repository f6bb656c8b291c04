//! A real hat-event-server 0.9.44 (LMDB backend) on a free loopback port, killed on
//! drop, with graceful stop and restart on the same port and database.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::process::{spawn_logged, wait_accepting};
use crate::{free_port, venv_with, TempDir};

/// How long hat-event-server may take to start accepting connections.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stop or a restart may take.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Backend flush period (seconds) of [`HatEventServer`].
const FLUSH_PERIOD: f64 = 0.2;

/// The configuration of hat-event-server `server_id` 1 with the LMDB backend at `db`
/// (every type in latest and in one timeseries partition), its eventer server on
/// 127.0.0.1:`port`.
pub fn lmdb_config(db: &Path, port: u16, flush_period: f64) -> Value {
    json!({
        "name": "event",
        "server_id": 1,
        "backend": {
            "module": "hat.event.backends.lmdb",
            "db_path": db,
            "identifier": null,
            "flush_period": flush_period,
            "cleanup_period": 60,
            "conditions": [],
            "latest": {"subscriptions": [["*"]]},
            "timeseries": [{"order_by": "TIMESTAMP", "subscriptions": [["*"]]}]
        },
        "modules": [],
        "eventer_server": {"host": "127.0.0.1", "port": port}
    })
}

/// A real hat-event-server process ([`lmdb_config`], flush period 0.2 s) with its
/// database and log in a temp dir; killed on drop.
pub struct HatEventServer {
    child: Option<Child>,
    dir: TempDir,
    /// Also a timeseries partition ordered by source timestamp.
    source_partition: bool,
    /// Where its eventer server listens.
    pub addr: SocketAddr,
}

impl std::fmt::Debug for HatEventServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HatEventServer")
            .field("addr", &self.addr)
            .field("pid", &self.child.as_ref().map(Child::id))
            .finish_non_exhaustive()
    }
}

impl HatEventServer {
    /// Starts a server on a free port with a fresh database and waits (bounded) until it
    /// accepts TCP connections; tries another port when the process exits early.
    pub async fn start() -> HatEventServer {
        Self::start_with(false).await
    }

    /// [`HatEventServer::start`] with a second timeseries partition, every type ordered
    /// by source timestamp (hat answers source-timestamp timeseries queries only from
    /// such a partition).
    pub async fn start_with_source_partition() -> HatEventServer {
        Self::start_with(true).await
    }

    async fn start_with(source_partition: bool) -> HatEventServer {
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let mut server = HatEventServer {
                child: None,
                dir: TempDir::new("hat-event-server"),
                source_partition,
                addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
            };
            if server.spawn().await {
                return server;
            }
            last_log = server.log();
        }
        panic!("hat-event-server did not start; last log:\n{last_log}");
    }

    /// Spawns the process and waits until it accepts; false if it exited.
    async fn spawn(&mut self) -> bool {
        let venv = venv_with(&["bin/python", "bin/hat-event-server"]);
        let mut conf = lmdb_config(
            &self.dir.path().join("event.db"),
            self.addr.port(),
            FLUSH_PERIOD,
        );
        if self.source_partition {
            if let Some(partitions) = conf["backend"]["timeseries"].as_array_mut() {
                partitions.push(json!({"order_by": "SOURCE_TIMESTAMP", "subscriptions": [["*"]]}));
            }
        }
        let conf_path = self.dir.write("event.json", &conf.to_string());
        let child = self.child.insert(spawn_logged(
            "hat-event-server",
            Command::new(venv.join("bin/hat-event-server"))
                .arg("--conf")
                .arg(&conf_path),
            &self.dir.path().join("server.log"),
        ));
        match wait_accepting(self.addr, child, START_TIMEOUT).await {
            Some(accepting) => accepting,
            None => panic!(
                "hat-event-server not accepting after {START_TIMEOUT:?}; log:\n{}",
                self.log()
            ),
        }
    }

    /// The server's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The server's process id (panics after [`HatEventServer::kill`]).
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .expect("hat-event-server not running")
            .id()
    }

    /// Sends SIGTERM (a graceful shutdown, as an operator would).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (bounded by [`STOP_TIMEOUT`]) for the process to exit after
    /// [`HatEventServer::terminate`].
    pub async fn wait_exit(&mut self) {
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("hat-event-server did not exit");
    }

    /// Kills the process (SIGKILL: the connection is lost, not closed politely).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same database.
    pub async fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if self.spawn().await {
                return;
            }
            // The port may still be held briefly after the kill.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("hat-event-server did not restart; log:\n{}", self.log());
    }
}

impl Drop for HatEventServer {
    fn drop(&mut self) {
        self.kill();
    }
}
