//! A real hat-monitor 0.8.23 server and hat-event-server 0.9.44 processes in monitor
//! mode (redundancy), on free loopback ports, killed on drop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::hat::{START_TIMEOUT, STOP_TIMEOUT};
use crate::process::{spawn_logged, wait_accepting};
use crate::{free_port, venv_with, TempDir};

/// A venv tool process with its configuration and log in a temp dir; killed on drop.
#[derive(Debug)]
pub struct HatProcess {
    label: String,
    child: Option<Child>,
    dir: TempDir,
}

impl HatProcess {
    /// Starts `bin/<tool> --conf <conf>` and waits (bounded) until `addr` accepts; `None`
    /// when the process exited first (a port taken meanwhile, say).
    async fn start(tool: &str, conf: &Value, addr: SocketAddr) -> Option<HatProcess> {
        let venv = venv_with(&["bin/python", &format!("bin/{tool}")]);
        let dir = TempDir::new(tool);
        let conf_path = dir.write("conf.json", &conf.to_string());
        let log = dir.path().join("out.log");
        let mut child = spawn_logged(
            tool,
            Command::new(venv.join("bin").join(tool))
                .arg("--conf")
                .arg(&conf_path),
            &log,
        );
        match wait_accepting(addr, &mut child, START_TIMEOUT).await {
            Some(true) => Some(HatProcess {
                label: tool.to_owned(),
                child: Some(child),
                dir,
            }),
            Some(false) => {
                eprintln!(
                    "{tool} exited at start:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
                None
            }
            None => panic!(
                "{tool} not accepting on {addr} after {START_TIMEOUT:?}; log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ),
        }
    }

    /// The process's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Where its output goes.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("out.log")
    }

    /// Sends SIGTERM (graceful stop) and waits (bounded by [`STOP_TIMEOUT`]) for the exit.
    pub async fn terminate(&mut self) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                self.child = None;
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{} did not exit after SIGTERM", self.label);
    }

    /// SIGKILL: connections are lost, not closed politely.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for HatProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A hat-monitor server (no parents: it is its own master) with BLESS_ONE as the
/// default algorithm.
#[derive(Debug)]
pub struct HatMonitor {
    /// The process.
    pub process: HatProcess,
    /// Where components connect (`server`).
    pub addr: SocketAddr,
}

impl HatMonitor {
    /// Starts on free ports (`group_algorithms`: e.g. `{"event": "BLESS_ONE"}`).
    pub async fn start(group_algorithms: Value) -> HatMonitor {
        for _attempt in 0..3 {
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let conf = json!({
                "type": "monitor",
                "log": {"version": 1},
                "default_algorithm": "BLESS_ONE",
                "group_algorithms": group_algorithms,
                "server": {"host": "127.0.0.1", "port": addr.port(), "default_rank": 1},
                "master": {"host": "127.0.0.1", "port": free_port()},
                "slave": {
                    "parents": [],
                    "connect_timeout": 0.5,
                    "connect_retry_count": 1,
                    "connect_retry_delay": 0.1
                }
            });
            if let Some(process) = HatProcess::start("hat-monitor", &conf, addr).await {
                return HatMonitor { process, addr };
            }
        }
        panic!("hat-monitor did not start");
    }
}

/// A hat-event-server in monitor mode: component `name` in `group`, `server_id`, LMDB
/// backend, its Eventer server on a free port.
#[derive(Debug)]
pub struct MonitoredEventServer {
    /// The process.
    pub process: HatProcess,
    /// Its Eventer server.
    pub addr: SocketAddr,
    /// Its server id.
    pub server_id: i64,
    _db: TempDir,
}

impl MonitoredEventServer {
    /// Starts it and waits until its Eventer server accepts.
    pub async fn start(
        monitor: SocketAddr,
        group: &str,
        name: &str,
        server_id: i64,
    ) -> MonitoredEventServer {
        for _attempt in 0..3 {
            let db = TempDir::new("hat-event-db");
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let mut conf = crate::hat::lmdb_config(&db.path().join("event.db"), addr.port(), 0.2);
            conf["name"] = json!(name);
            conf["server_id"] = json!(server_id);
            conf["log"] = json!({"version": 1});
            conf["monitor_component"] = json!({
                "host": "127.0.0.1",
                "port": monitor.port(),
                "group": group
            });
            if let Some(process) = HatProcess::start("hat-event-server", &conf, addr).await {
                return MonitoredEventServer {
                    process,
                    addr,
                    server_id,
                    _db: db,
                };
            }
        }
        panic!("hat-event-server {name} did not start");
    }
}

/// A hat-gateway 0.6.48 process in monitor mode: component `name` in `gateway_group`,
/// finding its event server in `event_server_group`, with the device entries `devices`
/// (hat-gateway's own configuration format). Its Adminer server listens on a free port;
/// hat-gateway opens it only after it has connected to the monitor and declared itself
/// ready, so [`MonitoredHatGateway::start`] returns once the component takes part in the
/// election.
#[derive(Debug)]
pub struct MonitoredHatGateway {
    /// The process.
    pub process: HatProcess,
}

impl MonitoredHatGateway {
    /// Starts it and waits until it is connected to the monitor.
    pub async fn start(
        monitor: SocketAddr,
        name: &str,
        gateway_group: &str,
        event_server_group: &str,
        devices: Value,
    ) -> MonitoredHatGateway {
        for _attempt in 0..3 {
            let adminer = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let conf = json!({
                "type": "gateway",
                "log": {
                    "version": 1,
                    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
                    "handlers": {"console": {
                        "class": "logging.StreamHandler",
                        "formatter": "plain",
                        "level": "INFO"
                    }},
                    "root": {"level": "INFO", "handlers": ["console"]},
                    "disable_existing_loggers": false
                },
                "name": name,
                "event_server": {"monitor_component": {
                    "host": "127.0.0.1",
                    "port": monitor.port(),
                    "gateway_group": gateway_group,
                    "event_server_group": event_server_group
                }},
                "adminer_server": {"host": "127.0.0.1", "port": adminer.port()},
                "devices": devices
            });
            if let Some(process) = HatProcess::start("hat-gateway", &conf, adminer).await {
                return MonitoredHatGateway { process };
            }
        }
        panic!("hat-gateway {name} did not start");
    }
}
