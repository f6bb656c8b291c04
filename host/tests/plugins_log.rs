//! Plugin log records (tracing events and panic messages) reach the host's log inside
//! the device's span. Own test binary: it installs a global subscriber.

#![allow(clippy::unwrap_used)]

mod plugin_support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use gateway_host::device::DeviceFactory;
use gateway_host::plugins::{PluginRegistry, PluginSearch};
use plugin_support::*;
use serde_json::json;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_logs_and_panics_go_to_the_host_log_in_the_device_span() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let dir = PluginDir::new();
    dir.add_library("gateway_fixture_faulty", None);
    let registry = PluginRegistry::new(PluginSearch::new(vec![dir.path.clone()], false));
    let plugin = registry.resolve("gateway_fixture_faulty").unwrap();
    let (client, _calls) = RecordingClient::new();
    let device = plugin
        .create(
            json!({"fail": "event_panic"}),
            context(client, "fixture_faulty", "logdev"),
        )
        .await
        .unwrap();
    let prefix = prefix("fixture_faulty", "logdev");
    device
        .process_event(event(&prefix, &["system", "x"], json!(1)))
        .await
        .unwrap_err();
    device.close().await;

    let text = captured.text();
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no log line with {needle:?} in:\n{text}"))
            .to_owned()
    };
    // The plugin's own tracing event, with its fields, in the device span.
    let created = line("fixture device creating");
    assert!(created.contains("fail=event_panic"), "{created}");
    assert!(created.contains("INFO"), "{created}");
    assert!(created.contains("device=\"logdev\""), "{created}");
    // The panic message went through the host log (the plugin's panic hook), in the
    // device span, instead of the plugin's stderr.
    let panic = line("plugin panicked: fixture: panic in process_event");
    assert!(panic.contains("ERROR"), "{panic}");
    assert!(panic.contains("device=\"logdev\""), "{panic}");
    assert!(panic.contains("device_type=\"fixture_faulty\""), "{panic}");
}
