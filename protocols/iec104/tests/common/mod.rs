//! Test kit: Python peers (hat-drivers' APCI, a raw-socket peer) driven over stdin and
//! stdout, counter ASDUs, and a log capture for the close reasons.
#![allow(clippy::unwrap_used, dead_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use gateway_test_support::script::PyScript;

/// Upper bound for any single expected line or event.
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// A Python peer process (`tests/py/<script>`), killed on drop.
pub(crate) struct Peer {
    script: PyScript,
    /// Listening port (listen mode), else 0.
    pub port: u16,
}

impl Peer {
    /// Starts `script` with `args`; in listen mode waits for its `PORT n` line.
    pub(crate) async fn start(script: &str, args: &[&str]) -> Peer {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/py")
            .join(script);
        let mut peer = Peer {
            script: PyScript::start_unbuffered(&path, args).with_wait(WAIT),
            port: 0,
        };
        if args.first() == Some(&"listen") {
            let line = peer.next_line().await;
            peer.port = line.strip_prefix("PORT ").unwrap().parse().unwrap();
        }
        peer
    }

    /// The peer's listening address.
    pub(crate) fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The next line the peer printed (panics after [`WAIT`]).
    pub(crate) async fn next_line(&mut self) -> String {
        self.script.next().await
    }

    /// Lines up to and including the first `matching` one (that one last).
    pub(crate) async fn until(&mut self, matching: impl Fn(&str) -> bool) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.next_line().await;
            let done = matching(&line);
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    /// Waits for the exact line `wanted`; panics if a line starting with "BAD" came first.
    pub(crate) async fn expect(&mut self, wanted: &str) {
        let lines = self.until(|line| line == wanted).await;
        let bad: Vec<_> = lines.iter().filter(|l| l.starts_with("BAD")).collect();
        assert!(bad.is_empty(), "peer reported {bad:?}");
    }

    /// Writes one command line.
    pub(crate) async fn command(&mut self, line: &str) {
        self.script.send(line).await;
    }
}

/// The counter ASDU the peers use: 4 bytes, little endian.
pub(crate) fn counter(n: u32) -> Bytes {
    Bytes::from(n.to_le_bytes().to_vec())
}

/// The hex text of counter `n` as the raw peer prints it.
pub(crate) fn counter_hex(n: u32) -> String {
    n.to_le_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// The counter an ASDU carries.
pub(crate) fn counter_of(asdu: &[u8]) -> u32 {
    u32::from_le_bytes(asdu.try_into().unwrap())
}

/// Log lines of the whole test binary, captured by a global subscriber (a thread-local
/// one races with tests on other threads over tracing's per-callsite interest cache).
#[derive(Clone, Default)]
pub(crate) struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    /// The capture, installed as the global subscriber on first use.
    pub(crate) fn global() -> LogCapture {
        static GLOBAL: std::sync::OnceLock<LogCapture> = std::sync::OnceLock::new();
        GLOBAL
            .get_or_init(|| {
                let capture = LogCapture::default();
                let writer = capture.clone();
                let subscriber = tracing_subscriber::fmt()
                    .with_max_level(tracing::Level::DEBUG)
                    .with_ansi(false)
                    .with_writer(move || writer.clone())
                    .finish();
                tracing::subscriber::set_global_default(subscriber).unwrap();
                capture
            })
            .clone()
    }

    /// Everything logged so far.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
