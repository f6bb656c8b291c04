//! The resolved, validated description of a gateway run: what the configuration
//! module produces and the runner consumes. No parsing happens here.

use std::sync::Arc;
use std::time::Duration;

use crate::device::DeviceFactory;

/// Default capacity of a device's event queue (`event_queue_size`).
pub const DEFAULT_EVENT_QUEUE_SIZE: usize = 1024;

/// Default time a device's `create` may take before the attempt is abandoned and the
/// device failed (`create_timeout`).
pub const DEFAULT_CREATE_TIMEOUT: Duration = Duration::from_secs(30);

/// Default time a device's `close` may take before the instance is abandoned
/// (`close_timeout`).
pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything the runner needs to run a gateway.
#[derive(Debug, Clone)]
pub struct GatewaySpec {
    /// Gateway name (`<gateway_name>` in every event type prefix).
    pub name: String,
    /// Where the event server is.
    pub event_server: EventServerSpec,
    /// Run devices only while the event server is `operational`.
    pub require_operational: bool,
    /// Configured devices, in configuration order.
    pub devices: Vec<DeviceSpec>,
    /// The event-type layout (`event_types`).
    pub event_types: EventTypes,
}

impl GatewaySpec {
    /// The event-type prefix of a device of this gateway, by its layout.
    pub fn device_prefix(&self, device_type: &str, device: &str) -> gateway_model::EventType {
        self.event_types
            .device_prefix(&self.name, device_type, device)
    }
}

/// The event-type layout of a gateway (`event_types` in the main configuration;
/// `docs/gateway-semantics.md` section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EventTypes {
    /// `seeds` (the default): the original hat-gateway documents' 4-segment prefix
    /// `gateway/<gateway>/<device_type>/<device>`, one subscription
    /// `gateway/<gateway>/?/?/system/*`, an initial `running=false` per device.
    #[default]
    Seeds,
    /// `hat-gateway-0.6`: hat-gateway 0.6.5 to 0.6.48's 3-segment prefix
    /// `gateway/<device_type>/<device>`, one subscription per device
    /// (`gateway/<device_type>/<device>/system/*`), no initial `running=false`.
    HatGateway06,
}

impl EventTypes {
    /// The configuration value: `seeds` or `hat-gateway-0.6`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Seeds => "seeds",
            Self::HatGateway06 => "hat-gateway-0.6",
        }
    }

    /// Segments of a device prefix: 4 (`seeds`) or 3 (`hat-gateway-0.6`).
    pub const fn prefix_len(self) -> usize {
        match self {
            Self::Seeds => 4,
            Self::HatGateway06 => 3,
        }
    }

    /// A device's event-type prefix.
    pub fn device_prefix(
        self,
        gateway: &str,
        device_type: &str,
        device: &str,
    ) -> gateway_model::EventType {
        match self {
            Self::Seeds => gateway_model::EventTypePrefix::device(gateway, device_type, device),
            Self::HatGateway06 => gateway_model::EventTypePrefix::hat_device(device_type, device),
        }
        .into_event_type()
    }

    /// Whether a proxy registers `running=false` when it starts (the seeds do;
    /// hat-gateway 0.6.43 and later do not).
    pub const fn initial_running_false(self) -> bool {
        matches!(self, Self::Seeds)
    }
}

/// `event_server` section: exactly one mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventServerSpec {
    /// A remote hat-event server; reconnect forever with backoff.
    Remote {
        /// Host name or address.
        host: String,
        /// TCP port.
        port: u16,
        /// Client token sent in `MsgInitReq`.
        token: Option<String>,
    },
    /// hat-monitor redundancy (`monitor_component`): this gateway is a monitor
    /// component in `gateway_group` and runs its devices only while blessed; the event
    /// server is the active member of `event_server_group`.
    Monitor {
        /// Local Monitor Server host name or address.
        host: String,
        /// Local Monitor Server port.
        port: u16,
        /// Monitor group of the gateways (one of them is blessed).
        gateway_group: String,
        /// Monitor group of the event servers (the blessed one is used).
        event_server_group: String,
    },
    /// An Eventer server inside this process.
    Embedded {
        /// Also listen on this address for other components and tools.
        listen: Option<(String, u16)>,
        /// Register `enable=true` at start for every device without an enable event.
        enable_devices: bool,
    },
}

/// One configured device.
#[derive(Clone)]
pub struct DeviceSpec {
    /// Plugin's device type.
    pub device_type: String,
    /// Device name from the configuration.
    pub name: String,
    /// The whole device entry, as given to the plugin's `create`.
    pub conf: serde_json::Value,
    /// The loaded plugin.
    pub factory: Arc<dyn DeviceFactory>,
    /// What happens when the device fails.
    pub restart: RestartPolicy,
    /// Capacity of the device's event queue.
    pub event_queue_size: usize,
    /// How long `create` may take before the attempt is abandoned and the device failed.
    pub create_timeout: Duration,
    /// How long `close` may take before the instance is abandoned.
    pub close_timeout: Duration,
}

impl DeviceSpec {
    /// A device with the host defaults: `restart: never`, the default queue size and
    /// timeouts.
    pub fn new(
        device_type: impl Into<String>,
        name: impl Into<String>,
        conf: serde_json::Value,
        factory: Arc<dyn DeviceFactory>,
    ) -> Self {
        Self {
            device_type: device_type.into(),
            name: name.into(),
            conf,
            factory,
            restart: RestartPolicy::Never,
            event_queue_size: DEFAULT_EVENT_QUEUE_SIZE,
            create_timeout: DEFAULT_CREATE_TIMEOUT,
            close_timeout: DEFAULT_CLOSE_TIMEOUT,
        }
    }
}

impl DeviceSpec {
    /// True when `other` would run exactly as this device does: the same entry (every
    /// key, host keys included) and the same device type code ([`same_factory`]).
    /// A reload keeps a device running only when this holds.
    pub fn same_as(&self, other: &Self) -> bool {
        self.device_type == other.device_type
            && self.name == other.name
            && self.conf == other.conf
            && self.restart == other.restart
            && self.event_queue_size == other.event_queue_size
            && self.create_timeout == other.create_timeout
            && self.close_timeout == other.close_timeout
            && same_factory(&self.factory, &other.factory)
    }
}

/// Two device types are the same code: loaded from the same library file, unchanged
/// since ([`DeviceFactory::origin`]), or (built in) the same object.
pub fn same_factory(a: &Arc<dyn DeviceFactory>, b: &Arc<dyn DeviceFactory>) -> bool {
    match (a.origin(), b.origin()) {
        (Some(a), Some(b)) => a == b,
        (None, None) => std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b)),
        _ => false,
    }
}

impl std::fmt::Debug for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceSpec")
            .field("device_type", &self.device_type)
            .field("name", &self.name)
            .field("conf", &self.conf)
            .field("restart", &self.restart)
            .field("event_queue_size", &self.event_queue_size)
            .field("create_timeout", &self.create_timeout)
            .field("close_timeout", &self.close_timeout)
            .finish_non_exhaustive()
    }
}

/// Per-device restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// hat's behaviour: a failed device stays down until `enable` goes false then true.
    Never,
    /// Re-create after a failure with exponential backoff; give up (stay failed) after
    /// `max_restarts` failures within `window`.
    OnFailure {
        /// First delay.
        initial_backoff: Duration,
        /// Delay cap.
        max_backoff: Duration,
        /// Crash-loop limit.
        max_restarts: u32,
        /// Window the limit counts failures in.
        window: Duration,
    },
}

impl RestartPolicy {
    /// `on-failure` with the defaults: 0.5 s doubling to 30 s, at most 5 failures per 5 min.
    pub const ON_FAILURE_DEFAULT: Self = Self::OnFailure {
        initial_backoff: Duration::from_millis(500),
        max_backoff: Duration::from_secs(30),
        max_restarts: 5,
        window: Duration::from_secs(300),
    };
}
