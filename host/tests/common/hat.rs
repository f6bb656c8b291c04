//! A real hat-event-server 0.9.44 (LMDB backend) for the remote-mode behaviour
//! tests, with kill and restart on the same port and database. Same approach as the
//! eventer crate's test launcher.
#![allow(clippy::unwrap_used, dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use gateway_eventer::client::{Client, ClientConfig, Notification};
use gateway_model::{Event, Status};
use tokio::sync::mpsc;

use super::WAIT;

/// How long hat-event-server may take to start accepting connections.
const SERVER_START_TIMEOUT: Duration = Duration::from_secs(60);

/// The venv with hat-event 0.9.44; panics with instructions when it is missing.
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

fn temp_dir() -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let path = std::env::temp_dir().join(format!(
        "gateway-host-hat-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path).unwrap();
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real hat-event-server process (server_id 1), killed on drop.
pub struct HatServer {
    child: Option<Child>,
    dir: PathBuf,
    /// Where its eventer server listens.
    pub addr: SocketAddr,
}

impl HatServer {
    /// Starts a server on a free port with a fresh database.
    pub async fn start() -> HatServer {
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let mut server = HatServer {
                child: None,
                dir: temp_dir(),
                addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
            };
            if server.spawn().await {
                return server;
            }
            last_log = server.log();
        }
        panic!("hat-event-server did not start; last log:\n{last_log}");
    }

    async fn spawn(&mut self) -> bool {
        let conf = serde_json::json!({
            "name": "event",
            "server_id": 1,
            "backend": {
                "module": "hat.event.backends.lmdb",
                "db_path": self.dir.join("event.db"),
                "identifier": null,
                "flush_period": 0.2,
                "cleanup_period": 60,
                "conditions": [],
                "latest": {"subscriptions": [["*"]]},
                "timeseries": [{"order_by": "TIMESTAMP", "subscriptions": [["*"]]}]
            },
            "modules": [],
            "eventer_server": {"host": "127.0.0.1", "port": self.addr.port()}
        });
        let conf_path = self.dir.join("event.json");
        std::fs::write(&conf_path, conf.to_string()).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .unwrap();
        let child = Command::new(venv().join("bin/hat-event-server"))
            .arg("--conf")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start hat-event-server");
        self.child = Some(child);
        self.wait_accepting().await
    }

    /// Polls (bounded) until a TCP connect succeeds; false if the process exited.
    async fn wait_accepting(&mut self) -> bool {
        let deadline = Instant::now() + SERVER_START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(_)) = child.try_wait() {
                    return false;
                }
            }
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("hat-event-server not accepting; log:\n{}", self.log());
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
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if self.spawn().await {
                return;
            }
            // The port may still be held briefly after the kill.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("hat-event-server did not restart; log:\n{}", self.log());
    }

    /// The server's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for HatServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Our eventer client, subscribed to `subscriptions`, once the server is operational.
pub async fn connect_observer(
    addr: SocketAddr,
    subscriptions: &[&str],
) -> (Client, mpsc::Receiver<Notification>) {
    let mut config = ClientConfig::new("test/observer");
    config.subscriptions = subscriptions
        .iter()
        .map(|s| gateway_model::event_type_from_str(s))
        .collect();
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

/// Events seen by a TCP observer.
pub struct TcpObserver {
    pub client: Client,
    rx: mpsc::Receiver<Notification>,
    pub events: Vec<Event>,
}

impl TcpObserver {
    /// Connects an observer to `gateway/*` and `event/*`.
    pub async fn connect(addr: SocketAddr) -> TcpObserver {
        let (client, rx) = connect_observer(addr, &["gateway/*", "event/*"]).await;
        TcpObserver {
            client,
            rx,
            events: Vec::new(),
        }
    }

    /// Waits until `pred` holds for the events seen so far.
    pub async fn wait_for(&mut self, what: &str, pred: impl Fn(&[Event]) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !pred(&self.events) {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(Notification::Events(events))) => self.events.extend(events),
                Ok(Some(Notification::Status(_))) => {}
                Ok(None) => panic!("observer disconnected waiting for {what}"),
                Err(_) => panic!("timed out waiting for {what}; events: {:#?}", self.events),
            }
        }
    }

    /// Waits until `device`'s running values equal `expected`.
    pub async fn wait_running(&mut self, device: &str, expected: &[bool]) {
        let what = format!("running {expected:?} of {device}");
        self.wait_for(&what, |e| {
            super::running_values(e, device).len() >= expected.len()
        })
        .await;
        assert_eq!(super::running_values(&self.events, device), expected);
    }

    /// Registers events (with response, so they are stored when this returns).
    pub async fn register(&self, events: Vec<gateway_model::RegisterEvent>) {
        let stored = self.client.register_with_response(events).await.unwrap();
        assert!(stored.is_some(), "server refused the registration");
    }
}
