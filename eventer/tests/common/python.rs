//! The real Python eventer client (`tests/py/eventer_client.py`), driven over
//! stdin/stdout with one JSON object per line.

use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::{venv, WAIT};

/// A running `eventer_client.py`, killed on drop.
pub(crate) struct PyClient {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    /// Lines read while looking for another kind, in arrival order.
    stash: VecDeque<Value>,
}

impl PyClient {
    /// Starts the script against an Eventer server on 127.0.0.1:`port`.
    pub(crate) fn start(port: u16) -> PyClient {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/eventer_client.py");
        let mut child = Command::new(venv().join("bin/python"))
            .arg(script)
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("cannot start the Python eventer client");
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        PyClient {
            child,
            stdin,
            lines,
            stash: VecDeque::new(),
        }
    }

    /// Sends one command.
    pub(crate) async fn send(&mut self, command: Value) {
        let mut line = command.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// Every line in arrival order until (and including) the first of `kind`; lines
    /// stashed by earlier calls come first.
    pub(crate) async fn until(&mut self, kind: &str) -> Vec<Value> {
        let mut seen = Vec::new();
        while let Some(line) = self.stash.pop_front() {
            let found = line["kind"] == kind;
            seen.push(line);
            if found {
                return seen;
            }
        }
        loop {
            let line = tokio::time::timeout(WAIT, self.lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("no {kind:?} from the Python client; got {seen:?}"))
                .unwrap()
                .unwrap_or_else(|| panic!("Python client exited before {kind:?}; got {seen:?}"));
            let value: Value = serde_json::from_str(&line).unwrap();
            assert_ne!(value["kind"], "error", "Python client failed: {value}");
            let found = value["kind"] == kind;
            seen.push(value);
            if found {
                return seen;
            }
        }
    }

    /// The first line of `kind`; lines of other kinds before it are kept for later.
    pub(crate) async fn expect(&mut self, kind: &str) -> Value {
        let mut seen = self.until(kind).await;
        let found = seen.pop().unwrap();
        for other in seen.into_iter().rev() {
            self.stash.push_front(other);
        }
        found
    }

    /// Waits (bounded) for the script to exit and returns its success.
    pub(crate) async fn wait(&mut self) -> bool {
        tokio::time::timeout(WAIT, self.child.wait())
            .await
            .unwrap()
            .unwrap()
            .success()
    }
}
