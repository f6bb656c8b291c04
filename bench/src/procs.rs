//! The processes a benchmark run starts (hat-event-server, gateway-host, hat-gateway)
//! and what is read off them: CPU seconds and peak RSS from `/proc`.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

/// The gateway name of every gateway under test (gateway-host and hat-gateway).
pub(crate) const GATEWAY_NAME: &str = "gw1";

/// Where the binaries and the venv are.
#[derive(Debug, Clone)]
pub(crate) struct Tools {
    /// Directory holding `gateway-host` and `libsim.so`.
    pub bin_dir: PathBuf,
    /// The Python venv with hat-event and hat-gateway.
    pub venv: PathBuf,
    /// Directory holding `hat_sim_device.py`.
    pub py_dir: PathBuf,
    /// Scratch directory of this run.
    pub work_dir: PathBuf,
}

/// A child process killed on drop.
pub(crate) struct Proc {
    /// What it is, for messages.
    pub label: String,
    child: Child,
}

impl Proc {
    pub(crate) fn spawn(label: &str, command: &mut Command, log: &Path) -> anyhow::Result<Self> {
        let log_file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err_file = log_file.try_clone()?;
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file))
            .stderr(Stdio::from(err_file))
            .spawn()
            .with_context(|| format!("starting {label}"))?;
        Ok(Self {
            label: label.to_owned(),
            child,
        })
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User + system CPU seconds used so far.
    pub(crate) fn cpu_seconds(&self) -> anyhow::Result<f64> {
        cpu_seconds_of(&format!("/proc/{}/stat", self.pid()))
    }

    /// Peak resident set size (VmHWM) in MiB.
    pub(crate) fn peak_rss_mib(&self) -> anyhow::Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let line = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .context("no VmHWM")?;
        let kib: f64 = line
            .split_whitespace()
            .nth(1)
            .context("bad VmHWM")?
            .parse()?;
        Ok(kib / 1024.0)
    }

    /// Threads of the process now.
    pub(crate) fn threads(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let line = status
            .lines()
            .find(|l| l.starts_with("Threads:"))
            .context("no Threads")?;
        Ok(line
            .split_whitespace()
            .nth(1)
            .context("bad Threads")?
            .parse()?)
    }

    /// Sends SIGTERM and waits (up to 60 s) for the process to exit.
    pub(crate) fn terminate_and_wait(&mut self) -> anyhow::Result<()> {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                bail!("{} did not exit within 60 s of SIGTERM", self.label);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Fails when the process has already exited.
    pub(crate) fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited early with {status}", self.label);
        }
        Ok(())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// User + system CPU seconds of this process (the bench's clients) so far.
pub(crate) fn own_cpu_seconds() -> anyhow::Result<f64> {
    cpu_seconds_of("/proc/self/stat")
}

/// User + system CPU seconds of the process whose `/proc/<pid>/stat` is at `path`.
fn cpu_seconds_of(path: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(path)?;
    // Fields after the parenthesised command name; utime and stime are the 14th and
    // 15th fields of the whole line, i.e. the 12th and 13th after the name.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("unexpected /proc stat format")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11).context("no utime")?.parse()?;
    let stime: f64 = fields.get(12).context("no stime")?.parse()?;
    Ok((utime + stime) / clock_ticks())
}

fn clock_ticks() -> f64 {
    // USER_HZ is 100 on every Linux architecture the project builds for.
    100.0
}

/// A loopback port that was free a moment ago.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Waits until `addr` accepts TCP connections or `proc` dies.
pub(crate) async fn wait_listening(addr: SocketAddr, proc: &mut Proc) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        proc.check_alive()?;
        if Instant::now() > deadline {
            bail!("{} did not listen on {addr} within 60 s", proc.label);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Tools {
    pub(crate) fn write_conf(&self, name: &str, conf: &Value) -> anyhow::Result<PathBuf> {
        let path = self.work_dir.join(name);
        std::fs::write(&path, serde_json::to_vec_pretty(conf)?)?;
        Ok(path)
    }

    /// Starts the real hat-event-server with the LMDB backend on `port`.
    pub(crate) async fn hat_event_server(&self, label: &str, port: u16) -> anyhow::Result<Proc> {
        let db = self.work_dir.join(format!("{label}.db"));
        let _ = std::fs::remove_dir_all(&db);
        let _ = std::fs::remove_file(&db);
        let conf = json!({
            "name": "event",
            "server_id": 1,
            "backend": {
                "module": "hat.event.backends.lmdb",
                "db_path": db,
                "identifier": null,
                "flush_period": 1,
                "cleanup_period": 60,
                "conditions": [],
                "latest": {"subscriptions": [["*"]]},
                "timeseries": [{"order_by": "TIMESTAMP", "subscriptions": [["*"]]}]
            },
            "modules": [],
            "eventer_server": {"host": "127.0.0.1", "port": port}
        });
        let path = self.write_conf(&format!("{label}.event.json"), &conf)?;
        let mut proc = Proc::spawn(
            label,
            Command::new(self.venv.join("bin/hat-event-server"))
                .arg("--conf")
                .arg(path),
            &self.work_dir.join(format!("{label}.event.log")),
        )?;
        wait_listening(SocketAddr::from(([127, 0, 0, 1], port)), &mut proc).await?;
        Ok(proc)
    }

    /// Starts gateway-host. `server` is `None` for the embedded server listening on
    /// `port`, or the port of a remote event server.
    pub(crate) async fn gateway_host(
        &self,
        label: &str,
        remote_port: Option<u16>,
        listen_port: u16,
        devices: &[Value],
        enable_devices: bool,
    ) -> anyhow::Result<Proc> {
        self.gateway_host_with_limits(
            label,
            remote_port,
            listen_port,
            devices,
            enable_devices,
            json!({}),
        )
        .await
    }

    /// [`Tools::gateway_host`] with `limits` as the embedded server's
    /// `event_server.embedded.limits` (ignored with a remote server).
    pub(crate) async fn gateway_host_with_limits(
        &self,
        label: &str,
        remote_port: Option<u16>,
        listen_port: u16,
        devices: &[Value],
        enable_devices: bool,
        limits: Value,
    ) -> anyhow::Result<Proc> {
        self.start_gateway_host(
            label,
            GATEWAY_NAME,
            remote_port,
            listen_port,
            devices,
            enable_devices,
            limits,
        )
        .await
    }

    /// gateway-host with no devices, only its embedded server listening on `port`: an
    /// event server of its own process for other gateways. Its gateway name is not
    /// theirs ([`GATEWAY_NAME`]): the embedded server refuses a TCP client's events
    /// under its own gateway's output types.
    pub(crate) async fn event_server(&self, label: &str, port: u16) -> anyhow::Result<Proc> {
        self.start_gateway_host(
            label,
            "bench-event-server",
            None,
            port,
            &[],
            false,
            json!({}),
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn start_gateway_host(
        &self,
        label: &str,
        name: &str,
        remote_port: Option<u16>,
        listen_port: u16,
        devices: &[Value],
        enable_devices: bool,
        limits: Value,
    ) -> anyhow::Result<Proc> {
        let event_server = match remote_port {
            Some(port) => json!({"eventer_server": {"host": "127.0.0.1", "port": port}}),
            None => json!({"embedded": {
                "store": "memory",
                "eventer_server": {"host": "127.0.0.1", "port": listen_port},
                "enable_devices": enable_devices,
                "limits": limits
            }}),
        };
        let conf = json!({
            "name": name,
            "event_server": event_server,
            "devices": devices,
            "log": {"level": "warn"}
        });
        let path = self.write_conf(&format!("{label}.gateway.json"), &conf)?;
        let mut proc = Proc::spawn(
            label,
            Command::new(self.bin_dir.join("gateway-host"))
                .arg("--conf")
                .arg(path)
                .env_remove("RUST_LOG")
                // Its pid file stays in the run's work dir, not in the home directory.
                .env("XDG_STATE_HOME", self.work_dir.join("state")),
            &self.work_dir.join(format!("{label}.gateway.log")),
        )?;
        if remote_port.is_none() {
            wait_listening(SocketAddr::from(([127, 0, 0, 1], listen_port)), &mut proc).await?;
        }
        Ok(proc)
    }

    /// Starts Python hat-gateway 0.6.48 against the event server on `port`.
    pub(crate) fn hat_gateway(
        &self,
        label: &str,
        port: u16,
        devices: &[Value],
    ) -> anyhow::Result<Proc> {
        let conf = json!({
            "name": GATEWAY_NAME,
            "event_server": {"eventer_server": {"host": "127.0.0.1", "port": port}},
            "devices": devices
        });
        let path = self.write_conf(&format!("{label}.hatgw.json"), &conf)?;
        Proc::spawn(
            label,
            Command::new(self.venv.join("bin/hat-gateway"))
                .arg("--conf")
                .arg(path)
                .env("PYTHONPATH", &self.py_dir),
            &self.work_dir.join(format!("{label}.hatgw.log")),
        )
    }
}
