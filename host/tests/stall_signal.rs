//! A second SIGTERM exits at once (issue 11 item 2): the real binary runs a fixture
//! device whose `close` never finishes; the first SIGTERM starts the shutdown, which
//! waits for that close (up to its 10 s `close_timeout`); the second exits within a
//! second, status 143, after logging the call it abandoned. Needs the fixture cdylib
//! (`cargo build --workspace --all-targets`).
#![allow(clippy::unwrap_used)]

mod cli_support;
mod plugin_support;

use std::time::{Duration, Instant};

use cli_support::{gateway_host, Proc, Stream, TempDir};
use plugin_support::PluginDir;

#[test]
fn a_second_sigterm_exits_at_once_naming_what_it_abandoned() {
    let plugins = PluginDir::new();
    plugins.add_library("gateway_fixture_faulty", None);
    let dir = TempDir::new("host-signal");
    let conf = dir.write(
        "gateway.yaml",
        "name: gw1\n\
         event_server:\n  embedded:\n    store: memory\n    enable_devices: true\n\
         devices:\n  - {module: gateway_fixture_faulty, name: h, fail: hang_close}\n\
         log: {level: info, format: json}\n",
    );
    let mut daemon = Proc::spawn(
        gateway_host()
            .arg("--conf")
            .arg(&conf)
            .arg("--plugins-dir")
            .arg(&plugins.path),
    );
    daemon.expect_line(Stream::Stderr, |l| l.contains("device created"));
    daemon.signal("TERM");
    daemon.expect_line(Stream::Stderr, |l| {
        l.contains("shutdown: closing the device")
    });
    let second = Instant::now();
    daemon.signal("TERM");
    let line = daemon.expect_line(Stream::Stderr, |l| l.contains("second signal"));
    let status = daemon.wait();
    let took = second.elapsed();
    eprintln!("exit {status:?} {took:?} after the second SIGTERM: {line}");
    assert_eq!(status, Some(143), "{}", daemon.transcript());
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(
        line.contains("close of gateway/gw1/fixture_faulty/h"),
        "{line}"
    );
}
