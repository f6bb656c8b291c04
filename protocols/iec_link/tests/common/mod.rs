//! Test kit: a socat pty pair as the line and hat-drivers' link layer
//! (`tests/py/hat_link.py`) as the peer, driven over stdin and stdout.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use gateway_test_support::pty::PtyPair;
use gateway_test_support::script::PyScript;
use iec_link::SerialParams;

/// Upper bound for any single expected line or event.
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// The hat peer on end `b` of a fresh pty pair; our side opens end `a`.
pub(crate) struct HatPeer {
    pub(crate) script: PyScript,
    pub(crate) pty: PtyPair,
}

impl HatPeer {
    /// Starts `hat_link.py MODE <pty b> ARGS` and waits for its READY line.
    pub(crate) async fn start(label: &str, mode: &str, args: &[&str]) -> HatPeer {
        let pty = PtyPair::start(label);
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/hat_link.py");
        let mut full = vec![mode.to_owned(), pty.b_str()];
        full.extend(args.iter().map(|s| (*s).to_owned()));
        let mut script = PyScript::start_unbuffered(&path, &full).with_wait(WAIT);
        script.line(|l| l == "READY").await;
        HatPeer { script, pty }
    }

    /// Serial parameters of our end (hat's serial defaults: 9600 8N1; ptys ignore them).
    pub(crate) fn params(&self) -> SerialParams {
        let mut params = SerialParams::new(self.pty.a_str(), 9600);
        params.parity = iec_link::Parity::None;
        params
    }

    /// The first line equal to `line` (others skipped).
    pub(crate) async fn expect(&mut self, line: &str) {
        self.script.line(|l| l == line).await;
    }

    /// Sends a command line.
    pub(crate) async fn send(&mut self, line: &str) {
        self.script.send(line).await;
    }

    /// The next line starting with `prefix`.
    pub(crate) async fn line_starting(&mut self, prefix: &str) -> String {
        self.script.line(|l| l.starts_with(prefix)).await
    }
}

/// Hex of octets, as the script prints them.
pub(crate) fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// Octets of hex.
pub(crate) fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// Awaits `fut` for at most [`WAIT`], naming `what` on timeout.
pub(crate) async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}
