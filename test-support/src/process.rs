//! Child processes with their output in a log file, killed on drop.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Spawns `command` with stdin closed and stdout and stderr appended to `log` (created
/// when missing). Panics naming `label` when it cannot start.
pub fn spawn_logged(label: &str, command: &mut Command, log: &Path) -> Child {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
    let err = out.try_clone().unwrap();
    command
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {label}: {e}"))
}

/// A child process killed on drop.
#[derive(Debug)]
pub struct Proc {
    /// What it is, for messages.
    pub label: String,
    child: Child,
}

impl Proc {
    /// Starts `command` as [`spawn_logged`] does.
    pub fn spawn(label: &str, command: &mut Command, log: &Path) -> Proc {
        Proc {
            label: label.to_owned(),
            child: spawn_logged(label, command, log),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Panics when the process has already exited.
    pub fn check_alive(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("{} exited early with {status}", self.label);
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `addr` every 50 ms until a TCP connect succeeds (true), `child` exits (false)
/// or `limit` passes (`None`).
pub async fn wait_accepting(addr: SocketAddr, child: &mut Child, limit: Duration) -> Option<bool> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return Some(false);
        }
        if let Ok(stream) = tokio::net::TcpStream::connect(addr).await {
            // A connect to a free port in the ephemeral range can succeed against itself
            // (TCP simultaneous open when the kernel picks that port as the source):
            // only a different local address means something is listening.
            if stream.local_addr().ok() != Some(addr) {
                return Some(true);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}
