//! Host-side view of a device type and a device instance.
//!
//! The engine drives devices only through these traits. The plugin loader
//! (`crate::plugins`) implements [`DeviceFactory`] for each loaded library; engine
//! tests can implement them in memory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use futures::future::BoxFuture;
use gateway_model::{Event, EventType};

/// Why a device call failed. The engine treats every variant as a device failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// The plugin returned an error.
    #[error("device error: {0}")]
    Failed(String),
    /// The plugin panicked; the panic was caught at the boundary.
    #[error("device panicked: {0}")]
    Panicked(String),
}

/// The event-client contract (`gateway_model::client`): what a device and the engine
/// may ask of the event server. The host's name for [`gateway_model::EventClient`];
/// the Eventer client and the embedded server's local connection implement it.
pub use gateway_model::client::{ClientError, EventClient as DeviceClient};

/// Everything a new device instance is given besides its configuration.
#[derive(Clone)]
pub struct DeviceContext {
    /// `[gateway, <gateway name>, <device type>, <device name>]`.
    pub prefix: EventType,
    /// The device's access to the event server.
    pub client: Arc<dyn DeviceClient>,
    /// The device's span (`gateway`, `device_type`, `device` fields); plugin log lines
    /// are emitted inside it.
    pub span: tracing::Span,
}

impl std::fmt::Debug for DeviceContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceContext")
            .field("prefix", &self.prefix)
            .field("span", &self.span)
            .finish_non_exhaustive()
    }
}

/// A device type: what a hat-gateway device module exposes.
pub trait DeviceFactory: Send + Sync {
    /// `device_type` of the module.
    fn device_type(&self) -> &str;

    /// `json_schema_id` of the device configuration, if the plugin has a schema.
    fn json_schema_id(&self) -> Option<&str>;

    /// The schema itself, if the plugin has one.
    fn json_schema(&self) -> Option<&serde_json::Value>;

    /// Where the code came from (a plugin library), to tell on reload whether a device
    /// type is still the same code. `None` for device types built into the process:
    /// they are the same when they are the same object.
    fn origin(&self) -> Option<FactoryOrigin> {
        None
    }

    /// Creates a device instance from its (already validated) configuration entry.
    fn create(
        &self,
        conf: serde_json::Value,
        context: DeviceContext,
    ) -> BoxFuture<'static, Result<Box<dyn DeviceInstance>, DeviceError>>;
}

/// The library file a device type was loaded from, and that file as it was when it was
/// loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactoryOrigin {
    /// Canonical path of the library.
    pub path: PathBuf,
    /// The file when it was loaded (`None`: it could not be read).
    pub stamp: Option<FileStamp>,
}

/// What tells one version of a file from another without reading it: size,
/// modification time and (on Unix) device and inode, so that a file replaced by a
/// rename or rewritten in place is seen as changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    /// Size in bytes.
    pub len: u64,
    /// Modification time, where the platform has one.
    pub modified: Option<SystemTime>,
    /// `(device, inode)` on Unix.
    pub inode: Option<(u64, u64)>,
}

impl FileStamp {
    /// The stamp of `path` now; `None` when its metadata cannot be read.
    pub fn of(path: &Path) -> Option<Self> {
        let meta = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        let inode = {
            use std::os::unix::fs::MetadataExt;
            Some((meta.dev(), meta.ino()))
        };
        #[cfg(not(unix))]
        let inode = None;
        Some(Self {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode,
        })
    }
}

/// A running device instance.
pub trait DeviceInstance: Send + Sync {
    /// Hands one event to the device; the engine awaits it before the next one.
    fn process_event(&self, event: Event) -> BoxFuture<'_, Result<(), DeviceError>>;

    /// Closes the instance and waits until it is closed. Idempotent.
    fn close(&self) -> BoxFuture<'_, ()>;

    /// Resolves when the instance has closed, on its own or after [`close`](Self::close).
    fn closed(&self) -> BoxFuture<'_, ()>;
}
