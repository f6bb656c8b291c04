//! Host-side view of a device type and a device instance.
//!
//! The engine drives devices only through these traits. The plugin loader
//! (`crate::plugins`) implements [`DeviceFactory`] for each loaded library; engine
//! tests can implement them in memory.

use std::sync::Arc;

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

    /// Creates a device instance from its (already validated) configuration entry.
    fn create(
        &self,
        conf: serde_json::Value,
        context: DeviceContext,
    ) -> BoxFuture<'static, Result<Box<dyn DeviceInstance>, DeviceError>>;
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
