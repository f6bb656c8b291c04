//! Test support shared by the workspace's integration tests and benches (a
//! dev-dependency only): the Python test venv, free loopback ports, temp dirs, child
//! processes killed on drop, socat pty pairs as serial lines, Python peer scripts with piped stdin and stdout, what
//! benchmarks read off processes in `/proc`, a real hat-event-server, and hat-monitor with
//! event servers in monitor mode.
//!
//! Everything here panics on failure: it runs inside tests, where a panic with a clear
//! message is the failure report.
#![allow(clippy::unwrap_used)]

pub mod hat;
pub mod monitor;
pub mod process;
pub mod procstat;
pub mod pty;
pub mod script;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// The workspace root (the parent of this crate's directory).
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The Python test venv (`$GATEWAY_TEST_VENV`, default `.venv` at the workspace root)
/// made by `scripts/test-env.sh`. Panics with instructions when any of `tools` (paths
/// relative to the venv, e.g. `bin/python`) is missing.
pub fn venv_with(tools: &[&str]) -> PathBuf {
    let venv = std::env::var_os("GATEWAY_TEST_VENV")
        .map_or_else(|| workspace_dir().join(".venv"), PathBuf::from);
    for tool in tools {
        assert!(
            venv.join(tool).exists(),
            "the test venv is missing {} (looked in {}): run scripts/test-env.sh \
             (or set GATEWAY_TEST_VENV to a venv it created)",
            tool,
            venv.display()
        );
    }
    venv
}

/// A free loopback port: bind port 0, read the port, release it. Whoever binds it next
/// may lose a race for it; [`hat::HatEventServer::start`] retries then.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A fresh, empty directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `gateway-<label>-<pid>-<n>` under the system temp dir.
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "gateway-{label}-{}-{}",
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

    /// Writes `text` to `name` (relative, parents created) and returns the path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
