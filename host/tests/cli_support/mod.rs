//! Helpers for tests that run the real `gateway-host` binary.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Bound on one run of the binary; config errors come back in milliseconds.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// The state dir (`XDG_STATE_HOME`) the binary gets in tests.
pub(crate) fn test_state_home() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("state")
}

/// The gateway-host binary, with no RUST_LOG and its state dir under the target dir.
pub(crate) fn gateway_host() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gateway-host"));
    cmd.env_remove("RUST_LOG");
    // Pid files (and any default event store file) go under the target dir, never into
    // the home of whoever runs the tests.
    cmd.env("XDG_STATE_HOME", test_state_home());
    cmd
}

/// What a run of the binary produced.
#[derive(Debug)]
pub(crate) struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub(crate) fn assert_exit(&self, code: i32) {
        assert_eq!(
            self.code,
            Some(code),
            "exit status; stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
    }
}

/// Runs `cmd` to completion with `stdin` as its input (closed when `None`), killing it
/// (by its own pid) if it outlives [`RUN_TIMEOUT`].
pub(crate) fn run(cmd: &mut Command, stdin: Option<&str>) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gateway-host starts");
    let pid = child.id();
    let mut input = child.stdin.take().unwrap();
    let text = stdin.unwrap_or("").to_owned();
    let writer = std::thread::spawn(move || {
        // The binary may exit before reading everything (e.g. usage errors).
        let _ = input.write_all(text.as_bytes());
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(RUN_TIMEOUT) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("gateway-host did not exit within {RUN_TIMEOUT:?}");
        }
    };
    writer.join().unwrap();
    Output {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

pub(crate) use gateway_test_support::TempDir;

/// Asserts that nobody connected to `listener` (the stand-in event server).
pub(crate) fn assert_no_connection(listener: &std::net::TcpListener) {
    listener.set_nonblocking(true).unwrap();
    match listener.accept() {
        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
        Ok((_, peer)) => panic!("gateway-host connected to the event server from {peer}"),
        Err(err) => panic!("accept failed: {err}"),
    }
}

/// File name of the `sim` plugin library on this platform.
pub(crate) fn sim_library_name() -> &'static str {
    if cfg!(target_os = "windows") {
        "sim.dll"
    } else if cfg!(target_os = "macos") {
        "libsim.dylib"
    } else {
        "libsim.so"
    }
}

/// The directory holding the built `sim` plugin (the binary's own target directory).
/// Fails the test, saying how to build it, when it is missing.
pub(crate) fn sim_plugin_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_gateway-host"))
        .parent()
        .unwrap()
        .to_owned();
    let lib = dir.join(sim_library_name());
    assert!(
        lib.is_file(),
        "{} not found: build the sim plugin first (cargo build --workspace, or cargo build -p gateway-plugin-sim)",
        lib.display()
    );
    dir
}

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// A long-running `gateway-host` process whose output is read line by line.
/// Killed (by its own pid) on drop if still running.
pub(crate) struct Proc {
    child: std::process::Child,
    lines: mpsc::Receiver<(Stream, String)>,
    /// Everything read so far, for failure messages.
    pub seen: Vec<(Stream, String)>,
}

impl Proc {
    pub(crate) fn spawn(cmd: &mut Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gateway-host starts");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for (stream, reader) in [
            (
                Stream::Stdout,
                Box::new(stdout) as Box<dyn std::io::Read + Send>,
            ),
            (Stream::Stderr, Box::new(stderr)),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(reader).lines() {
                    let Ok(line) = line else { break };
                    if tx.send((stream, line)).is_err() {
                        break;
                    }
                }
            });
        }
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (bounded) for a line of `stream` satisfying `pred` and returns it.
    pub(crate) fn expect_line(&mut self, stream: Stream, pred: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + RUN_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((s, line)) => {
                    self.seen.push((s, line.clone()));
                    if s == stream && pred(&line) {
                        return line;
                    }
                }
                Err(err) => panic!(
                    "no matching {stream:?} line ({err}); output so far:\n{}",
                    self.transcript()
                ),
            }
        }
    }

    pub(crate) fn transcript(&self) -> String {
        self.seen
            .iter()
            .map(|(s, l)| format!("{s:?}: {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`TERM`, `INT`) to this process only.
    pub(crate) fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (bounded) for the exit status.
    pub(crate) fn wait(&mut self) -> Option<i32> {
        let deadline = std::time::Instant::now() + RUN_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "gateway-host did not exit; output:\n{}",
                self.transcript()
            );
            // Bounded poll of the exit status (std has no wait with timeout).
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
