//! Helpers shared by the eventer integration tests: the test venv, a real
//! hat-event-server process (LMDB backend) on a free loopback port, and temp dirs.
#![allow(dead_code)]

pub mod logs;
pub mod memory;
pub mod python;
pub mod raw;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use gateway_eventer::client::{Client, ClientConfig, Notification};
use gateway_eventer::model::Status;
use tokio::sync::mpsc;

/// Bound for anything that must happen in a test (replies, notifications, closes).
pub const WAIT: Duration = Duration::from_secs(10);
/// How long hat-event-server may take to start accepting connections.
const SERVER_START_TIMEOUT: Duration = Duration::from_secs(60);

/// The Python venv with hat-event 0.9.44 (`$GATEWAY_TEST_VENV`, default `.venv` at the
/// workspace root). Panics with instructions when it is missing.
pub fn venv() -> PathBuf {
    let venv = match std::env::var_os("GATEWAY_TEST_VENV") {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv"),
    };
    for tool in ["bin/python", "bin/hat-event-server"] {
        assert!(
            venv.join(tool).exists(),
            "the test venv is missing {} (looked in {}): run scripts/test-env.sh \
             (or set GATEWAY_TEST_VENV to a venv with hat-event==0.9.44)",
            tool,
            venv.display()
        );
    }
    venv
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a fresh, empty directory.
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "gateway-eventer-{label}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free loopback port: bind port 0, read the port, release it. The server started on
/// it may lose a race for the port; [`EventServer::start`] retries then.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A real hat-event-server (server_id 1, LMDB backend, every type in latest and in one
/// timeseries partition), killed on drop.
pub struct EventServer {
    child: Child,
    dir: TempDir,
    /// Where its eventer server listens.
    pub addr: SocketAddr,
}

impl EventServer {
    /// Starts the server and waits (bounded) until it accepts TCP connections.
    pub async fn start() -> EventServer {
        let venv = venv();
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let dir = TempDir::new("hat-event-server");
            let port = free_port();
            let conf = serde_json::json!({
                "name": "event",
                "server_id": 1,
                "backend": {
                    "module": "hat.event.backends.lmdb",
                    "db_path": dir.path().join("event.db"),
                    "identifier": null,
                    "flush_period": 0.2,
                    "cleanup_period": 60,
                    "conditions": [],
                    "latest": {"subscriptions": [["*"]]},
                    "timeseries": [{"order_by": "TIMESTAMP", "subscriptions": [["*"]]}]
                },
                "modules": [],
                "eventer_server": {"host": "127.0.0.1", "port": port}
            });
            let conf_path = dir.path().join("event.json");
            std::fs::write(&conf_path, conf.to_string()).unwrap();
            let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
            let child = Command::new(venv.join("bin/hat-event-server"))
                .arg("--conf")
                .arg(&conf_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("cannot start hat-event-server");
            let mut server = EventServer {
                child,
                dir,
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
            };
            if server.wait_accepting().await {
                return server;
            }
            last_log = server.log();
        }
        panic!("hat-event-server did not start; last log:\n{last_log}");
    }

    /// Polls (bounded) until a TCP connect succeeds; false if the process exited.
    async fn wait_accepting(&mut self) -> bool {
        let deadline = Instant::now() + SERVER_START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "hat-event-server not accepting after {SERVER_START_TIMEOUT:?}; log:\n{}",
            self.log()
        );
    }

    /// The server's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
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

    /// Waits (bounded) for the process to exit after [`EventServer::terminate`].
    pub async fn wait_exit(&mut self) {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("hat-event-server did not exit");
    }
}

impl Drop for EventServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Connects our client and waits (bounded) until the server reports `operational`
/// (hat-event-server starts its engine shortly after it opens the port).
pub async fn connect_operational(
    addr: SocketAddr,
    config: ClientConfig,
) -> (Client, mpsc::Receiver<Notification>) {
    let (client, mut notifications) = Client::connect(addr, config).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while client.status() != Status::Operational {
        match tokio::time::timeout_at(deadline, notifications.recv()).await {
            Ok(Some(Notification::Status(_))) => {}
            Ok(other) => panic!("unexpected before operational: {other:?}"),
            Err(_) => panic!("server not operational within {WAIT:?}"),
        }
    }
    (client, notifications)
}

/// The next notification, within [`WAIT`].
pub async fn next_notification(rx: &mut mpsc::Receiver<Notification>) -> Notification {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("no notification in time")
        .expect("notification channel closed")
}

/// The next events notification (skipping status changes), within [`WAIT`].
pub async fn next_events(
    rx: &mut mpsc::Receiver<Notification>,
) -> Vec<gateway_eventer::model::Event> {
    loop {
        if let Notification::Events(events) = next_notification(rx).await {
            return events;
        }
    }
}

/// Event types of a batch as slash-separated text, for readable assertions.
pub fn types(events: &[gateway_eventer::model::Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| gateway_eventer::model::event_type_to_string(&e.event_type))
        .collect()
}
