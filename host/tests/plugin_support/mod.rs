//! Shared helpers of the plugin integration tests: locating the cdylibs the workspace
//! build produced, private plugin directories, and an in-memory host client (the SDK
//! test kit's recording client behind the host's client trait).

#![allow(dead_code, unused_imports, clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use gateway_host::device::{ClientError, DeviceClient, DeviceContext};
use gateway_model::{
    Event, EventId, EventType, Payload, QueryParams, QueryResult, RegisterEvent, Timestamp,
};
use gateway_plugin_api::sdk::testing::RecordingBackend;

/// Bound on every wait for something a plugin does.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(20);

/// `target/<profile>`: the directory of the test executable's parent (`deps`).
pub(crate) fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_owned()
}

/// A cdylib built by `cargo build --workspace --all-targets` (scripts/test.sh).
pub(crate) fn built_library(lib_name: &str) -> PathBuf {
    let file = format!("lib{lib_name}.so");
    let path = profile_dir().join(&file);
    assert!(
        path.is_file(),
        "{} is missing: build the plugin cdylibs first with `cargo build --workspace --all-targets` \
         (scripts/test.sh does)",
        path.display()
    );
    path
}

/// A fresh plugin directory (mode 0755) under the system temp dir.
pub(crate) struct PluginDir {
    pub path: PathBuf,
}

impl PluginDir {
    pub(crate) fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "gateway-plugin-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self { path }
    }

    /// Copies a built library in, under `file_name` (default: its own name).
    pub(crate) fn add_library(&self, lib_name: &str, file_name: Option<&str>) -> PathBuf {
        let source = built_library(lib_name);
        let target = self
            .path
            .join(file_name.map_or_else(|| format!("lib{lib_name}.so"), str::to_owned));
        std::fs::copy(&source, &target).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
        target
    }

    /// Writes a file with mode 0644.
    pub(crate) fn add_file(&self, file_name: &str, bytes: &[u8]) -> PathBuf {
        let target = self.path.join(file_name);
        std::fs::write(&target, bytes).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
        target
    }

    pub(crate) fn canonical(&self, file_name: &str) -> PathBuf {
        self.path.join(file_name).canonicalize().unwrap()
    }
}

impl Drop for PluginDir {
    fn drop(&mut self) {
        // Loaded libraries stay mapped after their file is removed.
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

pub(crate) use gateway_plugin_api::sdk::testing::{Call, CallLog};

/// The SDK test kit's recording client as the host's client (both are the one
/// event-client contract): every call the plugin makes through the real loader and
/// adapter lands in the kit's [`CallLog`].
pub(crate) struct RecordingClient {
    pub backend: Arc<RecordingBackend>,
}

impl RecordingClient {
    pub(crate) fn new() -> (Arc<Self>, CallLog) {
        let (backend, calls) = RecordingBackend::new();
        (Arc::new(Self { backend }), calls)
    }
}

impl DeviceClient for RecordingClient {
    fn register(&self, events: Vec<RegisterEvent>) -> BoxFuture<'_, Result<(), ClientError>> {
        self.backend.register(events)
    }

    fn register_with_response(
        &self,
        events: Vec<RegisterEvent>,
    ) -> BoxFuture<'_, Result<Option<Vec<Event>>, ClientError>> {
        self.backend.register_with_response(events)
    }

    fn query(&self, params: QueryParams) -> BoxFuture<'_, Result<QueryResult, ClientError>> {
        self.backend.query(params)
    }
}

pub(crate) fn prefix(device_type: &str, name: &str) -> EventType {
    ["gateway", "gw", device_type, name]
        .map(String::from)
        .to_vec()
}

pub(crate) fn context(
    client: Arc<RecordingClient>,
    device_type: &str,
    name: &str,
) -> DeviceContext {
    DeviceContext {
        prefix: prefix(device_type, name),
        client,
        span: tracing::info_span!("device", gateway = "gw", device_type, device = name),
    }
}

/// A notified event `prefix/suffix` with a JSON payload.
pub(crate) fn event(prefix: &[String], suffix: &[&str], value: serde_json::Value) -> Event {
    let mut event_type = prefix.to_vec();
    event_type.extend(suffix.iter().map(|s| (*s).to_owned()));
    Event {
        id: EventId::default(),
        event_type,
        timestamp: Timestamp::now(),
        source_timestamp: None,
        payload: Some(Payload::json(value)),
    }
}

/// The next registration (fire-and-forget) call, as `(suffix after the prefix, JSON)`.
pub(crate) async fn next_register(calls: &mut CallLog) -> Vec<(String, serde_json::Value)> {
    summary(&calls.next_register().await)
}

pub(crate) fn summary(events: &[RegisterEvent]) -> Vec<(String, serde_json::Value)> {
    events
        .iter()
        .map(|e| {
            let value = e
                .payload
                .as_ref()
                .and_then(Payload::json_value)
                .unwrap_or(serde_json::Value::Null);
            (e.event_type[4..].join("/"), value)
        })
        .collect()
}

pub(crate) fn path_in(err: &impl std::fmt::Display, path: &Path) -> bool {
    err.to_string().contains(&path.display().to_string())
}
