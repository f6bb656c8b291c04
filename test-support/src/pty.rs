//! A serial line for tests: a socat pseudo-terminal pair (`socat pty,raw,echo=0
//! pty,raw,echo=0`), so a device under test and a real peer (pymodbus, hat-drivers) talk
//! over real ttys. `scripts/test.sh` installs socat.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::TempDir;

/// How long socat may take to create both ends.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Two linked ptys, `a` and `b` (symlinks in a private directory); socat is killed and
/// the directory removed on drop.
#[derive(Debug)]
pub struct PtyPair {
    child: Child,
    dir: TempDir,
}

impl PtyPair {
    /// Starts socat and waits until both ends exist. `label` names the directory.
    pub fn start(label: &str) -> PtyPair {
        let dir = TempDir::new(&format!("pty-{label}"));
        let link = |end: &str| format!("pty,raw,echo=0,link={}", dir.path().join(end).display());
        let child = Command::new("socat")
            .args([link("a"), link("b")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat is needed for the serial tests (scripts/test.sh installs it)");
        let pair = PtyPair { child, dir };
        let started = Instant::now();
        // socat creates the links once it has opened both ptys; nothing to wait on but
        // the files themselves.
        while !(pair.a().exists() && pair.b().exists()) {
            assert!(
                started.elapsed() < START_TIMEOUT,
                "socat did not create the pty pair within {START_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        pair
    }

    /// End `a` (a path to open as a serial port).
    pub fn a(&self) -> PathBuf {
        self.dir.path().join("a")
    }

    /// End `b`.
    pub fn b(&self) -> PathBuf {
        self.dir.path().join("b")
    }

    /// End `a` as a string, for configurations.
    pub fn a_str(&self) -> String {
        self.a().display().to_string()
    }

    /// End `b` as a string, for configurations.
    pub fn b_str(&self) -> String {
        self.b().display().to_string()
    }
}

impl Drop for PtyPair {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::PtyPair;

    #[test]
    fn bytes_written_to_one_end_arrive_at_the_other() {
        if std::process::Command::new("socat")
            .arg("-V")
            .output()
            .is_err()
        {
            panic!("socat missing: scripts/test.sh installs it");
        }
        let pair = PtyPair::start("selftest");
        let mut a = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(pair.a())
            .unwrap();
        let mut b = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(pair.b())
            .unwrap();
        a.write_all(b"\x10\x49\x01\x4a\x16").unwrap();
        let mut buf = [0u8; 5];
        b.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"\x10\x49\x01\x4a\x16");
    }
}
