//! Captures the log output of a test that runs on a current-thread runtime (the
//! default of `#[tokio::test]`), so it can assert on levels and span fields.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use tracing::subscriber::{DefaultGuard, NoSubscriber};
use tracing::Dispatch;

/// The captured output; clones share it.
#[derive(Clone, Default)]
pub(crate) struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl LogBuf {
    /// Everything logged so far.
    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    /// The first line containing every piece of `needles` (panics with the whole log
    /// when there is none).
    pub(crate) fn line_with(&self, needles: &[&str]) -> String {
        let text = self.text();
        text.lines()
            .find(|line| needles.iter().all(|n| line.contains(n)))
            .unwrap_or_else(|| panic!("no log line with {needles:?} in:\n{text}"))
            .to_owned()
    }
}

impl Write for LogBuf {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuf {
    type Writer = LogBuf;

    fn make_writer(&'a self) -> LogBuf {
        self.clone()
    }
}

/// Sends DEBUG and above of this thread to a new [`LogBuf`] until the guard drops.
pub(crate) fn capture() -> (LogBuf, DefaultGuard) {
    // tracing caches each callsite's interest when it is first hit. While exactly one
    // dispatcher exists it asks only the dispatcher of the thread that hits it, so a
    // callsite first reached by another test (no subscriber) would be cached as
    // "never" and vanish from this capture. A second dispatcher kept for the whole
    // process makes tracing ask every live dispatcher instead.
    static SECOND_DISPATCHER: OnceLock<Dispatch> = OnceLock::new();
    SECOND_DISPATCHER.get_or_init(|| Dispatch::new(NoSubscriber::default()));
    let logs = LogBuf::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    (logs, guard)
}
