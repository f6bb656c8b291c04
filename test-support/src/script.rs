//! A Python script of the test venv run as a test's peer: stdin and stdout piped, its
//! output lines read by a task into a channel with their arrival times, waits bounded
//! by a timeout that names the script; killed on drop.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use crate::venv_with;

/// Upper bound for any single expected line, unless [`PyScript::with_wait`] sets another.
pub const LINE_WAIT: Duration = Duration::from_secs(10);

/// Output lines buffered before the reader task stops reading (and the script blocks
/// on its stdout): far more than any test's peer prints between two reads, so a test
/// never throttles its peer, yet a runaway script cannot exhaust memory.
pub const LINE_QUEUE: usize = 1 << 16;

/// A running `<venv>/bin/python <script> <args>`, killed on drop.
pub struct PyScript {
    /// The script's file name, for messages.
    label: String,
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<(Instant, String)>,
    wait: Duration,
}

impl std::fmt::Debug for PyScript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PyScript")
            .field("label", &self.label)
            .field("pid", &self.child.id())
            .finish_non_exhaustive()
    }
}

impl PyScript {
    /// Starts `script` with `args` under the test venv's Python (panics with
    /// instructions when the venv is missing, or naming the script when it cannot
    /// start); its stderr is the test's. Must run inside a tokio runtime: the output
    /// reader is a task.
    pub fn start<S: AsRef<OsStr>>(script: &Path, args: &[S]) -> PyScript {
        PyScript::spawn(&[], script, args)
    }

    /// Like [`PyScript::start`], with Python's stdout and stderr unbuffered (`-u`), for
    /// scripts that print without flushing.
    pub fn start_unbuffered<S: AsRef<OsStr>>(script: &Path, args: &[S]) -> PyScript {
        PyScript::spawn(&["-u"], script, args)
    }

    fn spawn<S: AsRef<OsStr>>(python_args: &[&str], script: &Path, args: &[S]) -> PyScript {
        let python = venv_with(&["bin/python"]).join("bin/python");
        let label = script.file_name().map_or_else(
            || script.display().to_string(),
            |name| name.to_string_lossy().into_owned(),
        );
        let mut child = Command::new(python)
            .args(python_args)
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {label}: {e}"));
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel(LINE_QUEUE);
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if tx.send((Instant::now(), line)).await.is_err() {
                    break;
                }
            }
        });
        PyScript {
            label,
            child,
            stdin,
            lines,
            wait: LINE_WAIT,
        }
    }

    /// The same script with `wait` as the bound of every line wait instead of
    /// [`LINE_WAIT`].
    pub fn with_wait(mut self, wait: Duration) -> PyScript {
        self.wait = wait;
        self
    }

    /// The script's file name.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The next output line with the time it was read; panics naming the script when
    /// none arrives within the wait or the script's stdout closed.
    pub async fn next_at(&mut self) -> (Instant, String) {
        match tokio::time::timeout(self.wait, self.lines.recv()).await {
            Ok(Some(next)) => next,
            Ok(None) => panic!("{} exited (its output ended)", self.label),
            Err(_) => panic!("{} output timed out after {:?}", self.label, self.wait),
        }
    }

    /// The next output line (see [`PyScript::next_at`]).
    pub async fn next(&mut self) -> String {
        self.next_at().await.1
    }

    /// Next output line satisfying `pred` (earlier lines are skipped).
    pub async fn line(&mut self, pred: impl Fn(&str) -> bool) -> String {
        self.line_at(pred).await.1
    }

    /// Like [`PyScript::line`], with the time the line was read.
    pub async fn line_at(&mut self, pred: impl Fn(&str) -> bool) -> (Instant, String) {
        loop {
            let next = self.next_at().await;
            if pred(&next.1) {
                return next;
            }
        }
    }

    /// Every line received so far (non-blocking).
    pub fn drain(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok((_, line)) = self.lines.try_recv() {
            out.push(line);
        }
        out
    }

    /// Writes `line` and a newline to the script's stdin and flushes it.
    pub async fn send(&mut self, line: &str) {
        let label = &self.label;
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap_or_else(|e| panic!("cannot write to {label}: {e}"));
        self.stdin
            .flush()
            .await
            .unwrap_or_else(|e| panic!("cannot write to {label}: {e}"));
    }

    /// The process id (`None` once it has been waited for).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Kills the process now and waits for it.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }
}
