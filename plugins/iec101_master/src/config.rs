//! Device configuration (hat-gateway's `iec101.yaml#/$defs/master`), its JSON Schema
//! and the checks the schema cannot express.

use std::time::Duration;

use iec60870::asdu::FieldSizes;
use iec_common::seconds::check_seconds;
pub use iec_common::seconds::secs;
pub use iec_common::serial::{
    ByteSize, FlowControl, LinkDirection, Parity, SerialConfig, Size, StopBits,
};
use serde::Deserialize;

/// JSON Schema id of the device configuration (the same id hat-gateway uses).
pub const JSON_SCHEMA_ID: &str = "hat-gateway://iec101.yaml#/$defs/master";

/// The JSON Schema document (`schemas/iec101_master.json`), embedded in the plugin.
pub const JSON_SCHEMA: &str = include_str!("../../../schemas/iec101_master.json");

/// Default of the most received ASDUs registered in one call: every ASDU already
/// received, up to this many, is registered together (one register per wakeup).
pub const DEFAULT_REGISTER_BATCH_SIZE: usize = 256;

/// Default of the ASDUs waiting per remote device to be sent or registered (hat's
/// link queues hold 1024).
pub const DEFAULT_QUEUE_SIZE: usize = 1024;

/// Why a configuration was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The entry does not have the documented shape.
    #[error("invalid iec101_master configuration: {0}")]
    Shape(String),
    /// A value is well-formed but not acceptable.
    #[error("invalid iec101_master configuration at {pointer}: {reason}")]
    Invalid {
        /// JSON pointer of the offending value, e.g. `/remote_devices/1/address`.
        pointer: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// One `remote_devices[]` entry of a balanced link.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BalancedRemote {
    /// Direction of our frames.
    pub direction: LinkDirection,
    /// Link address of the remote station.
    pub address: u32,
    /// Wait for a link response (s).
    pub response_timeout: f64,
    /// Repetitions of an unanswered request.
    pub send_retry_count: u32,
    /// Period of link status requests while idle (s).
    pub status_delay: f64,
    /// Pause before connecting again (s).
    pub reconnect_delay: f64,
    /// Period of clock synchronisation (s); `None`: none.
    pub time_sync_delay: Option<f64>,
}

/// One `remote_devices[]` entry of an unbalanced link.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct UnbalancedRemote {
    /// Link address of the remote station.
    pub address: u32,
    /// Wait for a link response (s).
    pub response_timeout: f64,
    /// Repetitions of an unanswered request.
    pub send_retry_count: u32,
    /// Period of class 1 polls (s); `None`: no class 1 polling.
    pub poll_class1_delay: Option<f64>,
    /// Period of class 2 polls (s); `None`: no class 2 polling.
    pub poll_class2_delay: Option<f64>,
    /// Pause before connecting again (s).
    pub reconnect_delay: f64,
    /// Period of clock synchronisation (s); `None`: none.
    pub time_sync_delay: Option<f64>,
}

/// `link_type` with its device address size and remote devices.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "link_type", rename_all = "UPPERCASE")]
pub enum Link {
    /// Balanced transmission: each remote device is a peer on a point-to-point line.
    Balanced {
        /// Link address size (`ZERO`, `ONE`, `TWO`).
        device_address_size: Size,
        /// The remote devices.
        remote_devices: Vec<BalancedRemote>,
    },
    /// Unbalanced transmission: we poll every remote device on the line.
    Unbalanced {
        /// Link address size (`ONE`, `TWO`).
        device_address_size: Size,
        /// The remote devices.
        remote_devices: Vec<UnbalancedRemote>,
    },
}

/// What one remote device's connection loop needs, for either link type.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteDevice {
    /// Link address.
    pub address: u16,
    /// Wait for a link response.
    pub response_timeout: Duration,
    /// Repetitions of an unanswered request.
    pub send_retry_count: u32,
    /// Pause before connecting again.
    pub reconnect_delay: Duration,
    /// Period of clock synchronisation.
    pub time_sync_delay: Option<Duration>,
    /// Balanced: direction and status delay; unbalanced: poll delays.
    pub kind: RemoteKind,
}

/// The link-type specific part of a [`RemoteDevice`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RemoteKind {
    /// Balanced link.
    Balanced {
        /// Direction of our frames.
        direction: LinkDirection,
        /// Period of link status requests.
        status_delay: Duration,
    },
    /// Unbalanced link.
    Unbalanced {
        /// Class 1 poll period.
        poll_class1_delay: Option<Duration>,
        /// Class 2 poll period.
        poll_class2_delay: Option<Duration>,
    },
}

/// The whole device entry (`module` and other extra fields are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct MasterConfig {
    /// Device name.
    pub name: String,
    /// Serial port and line settings.
    #[serde(flatten)]
    pub serial: SerialConfig,
    /// Cause of transmission size (`ONE`, `TWO`).
    pub cause_size: Size,
    /// Common address size (`ONE`, `TWO`).
    pub asdu_address_size: Size,
    /// Information object address size (`ONE`, `TWO`, `THREE`).
    pub io_address_size: Size,
    /// Pause before opening the port again (s).
    pub reconnect_delay: f64,
    /// Link type, address size and remote devices.
    #[serde(flatten)]
    pub link: Link,
    /// Extension: most received ASDUs registered in one call (default
    /// [`DEFAULT_REGISTER_BATCH_SIZE`]).
    #[serde(default)]
    pub register_batch_size: Option<usize>,
    /// Extension: ASDUs waiting per remote device to be sent, and received ones
    /// waiting to be registered (default [`DEFAULT_QUEUE_SIZE`]).
    #[serde(default)]
    pub queue_size: Option<usize>,
}

fn invalid(pointer: impl Into<String>, reason: &'static str) -> ConfigError {
    ConfigError::Invalid {
        pointer: pointer.into(),
        reason,
    }
}

impl MasterConfig {
    /// Parses and checks a device entry.
    pub fn from_json(conf: &serde_json::Value) -> Result<Self, ConfigError> {
        let parsed: Self = serde_json::from_value(conf.clone())
            .map_err(|err| ConfigError::Shape(err.to_string()))?;
        parsed.validate()?;
        Ok(parsed)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.serial.baudrate == 0 {
            return Err(invalid("/baudrate", "must be above 0"));
        }
        for (field, value) in [
            ("silent_interval", self.serial.silent_interval),
            ("reconnect_delay", self.reconnect_delay),
        ] {
            check_seconds(value).map_err(|r| invalid(format!("/{field}"), r))?;
        }
        self.field_sizes()?;
        for (field, value) in [
            ("register_batch_size", self.register_batch_size),
            ("queue_size", self.queue_size),
        ] {
            if value == Some(0) {
                return Err(invalid(format!("/{field}"), "must be at least 1"));
            }
        }
        let (size, max_address) = match &self.link {
            Link::Balanced {
                device_address_size,
                ..
            } => (*device_address_size, device_address_size.address_limit()),
            Link::Unbalanced {
                device_address_size,
                ..
            } => {
                if *device_address_size == Size::Zero {
                    return Err(invalid(
                        "/device_address_size",
                        "an unbalanced link needs ONE or TWO",
                    ));
                }
                // The highest address is the broadcast one.
                (
                    *device_address_size,
                    device_address_size.address_limit().saturating_sub(1),
                )
            }
        };
        if size == Size::Three {
            return Err(invalid("/device_address_size", "must be ZERO, ONE or TWO"));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, remote) in self.remote_devices().into_iter().enumerate() {
            let pointer = |field: &str| format!("/remote_devices/{i}/{field}");
            if remote.address > max_address {
                return Err(invalid(
                    pointer("address"),
                    "does not fit device_address_size (or is the broadcast address)",
                ));
            }
            if !seen.insert(remote.address) {
                return Err(invalid(
                    pointer("address"),
                    "duplicate remote device address",
                ));
            }
            for (field, value) in remote.seconds {
                if let Some(value) = value {
                    check_seconds(value).map_err(|r| invalid(pointer(field), r))?;
                }
            }
        }
        Ok(())
    }

    /// The remote devices' addresses and seconds fields, for validation.
    fn remote_devices(&self) -> Vec<RawRemote> {
        match &self.link {
            Link::Balanced { remote_devices, .. } => remote_devices
                .iter()
                .map(|r| RawRemote {
                    address: r.address,
                    seconds: vec![
                        ("response_timeout", Some(r.response_timeout)),
                        ("status_delay", Some(r.status_delay)),
                        ("reconnect_delay", Some(r.reconnect_delay)),
                        ("time_sync_delay", r.time_sync_delay),
                    ],
                })
                .collect(),
            Link::Unbalanced { remote_devices, .. } => remote_devices
                .iter()
                .map(|r| RawRemote {
                    address: r.address,
                    seconds: vec![
                        ("response_timeout", Some(r.response_timeout)),
                        ("poll_class1_delay", r.poll_class1_delay),
                        ("poll_class2_delay", r.poll_class2_delay),
                        ("reconnect_delay", Some(r.reconnect_delay)),
                        ("time_sync_delay", r.time_sync_delay),
                    ],
                })
                .collect(),
        }
    }

    /// The ASDU field sizes.
    pub fn field_sizes(&self) -> Result<FieldSizes, ConfigError> {
        iec_common::serial::field_sizes(
            self.cause_size,
            self.asdu_address_size,
            self.io_address_size,
        )
        .map_err(|err| invalid(err.pointer, err.reason))
    }

    /// The broadcast common address of the configured size (clock synchronisation
    /// goes there).
    pub fn broadcast_asdu_address(&self) -> u16 {
        self.asdu_address_size.broadcast_asdu_address()
    }

    /// Whether the link is balanced.
    pub fn is_balanced(&self) -> bool {
        matches!(self.link, Link::Balanced { .. })
    }

    /// The link address size.
    pub fn device_address_size(&self) -> Size {
        match &self.link {
            Link::Balanced {
                device_address_size,
                ..
            }
            | Link::Unbalanced {
                device_address_size,
                ..
            } => *device_address_size,
        }
    }

    /// Every remote device in configuration order (validated: addresses fit 16 bits).
    pub fn remotes(&self) -> Vec<RemoteDevice> {
        match &self.link {
            Link::Balanced { remote_devices, .. } => remote_devices
                .iter()
                .map(|r| RemoteDevice {
                    address: r.address as u16,
                    response_timeout: secs(r.response_timeout),
                    send_retry_count: r.send_retry_count,
                    reconnect_delay: secs(r.reconnect_delay),
                    time_sync_delay: r.time_sync_delay.map(secs),
                    kind: RemoteKind::Balanced {
                        direction: r.direction,
                        status_delay: secs(r.status_delay),
                    },
                })
                .collect(),
            Link::Unbalanced { remote_devices, .. } => remote_devices
                .iter()
                .map(|r| RemoteDevice {
                    address: r.address as u16,
                    response_timeout: secs(r.response_timeout),
                    send_retry_count: r.send_retry_count,
                    reconnect_delay: secs(r.reconnect_delay),
                    time_sync_delay: r.time_sync_delay.map(secs),
                    kind: RemoteKind::Unbalanced {
                        poll_class1_delay: r.poll_class1_delay.map(secs),
                        poll_class2_delay: r.poll_class2_delay.map(secs),
                    },
                })
                .collect(),
        }
    }

    /// Most received ASDUs registered in one call.
    pub fn register_batch_size(&self) -> usize {
        self.register_batch_size
            .unwrap_or(DEFAULT_REGISTER_BATCH_SIZE)
    }

    /// ASDUs queued per remote device.
    pub fn queue_size(&self) -> usize {
        self.queue_size.unwrap_or(DEFAULT_QUEUE_SIZE)
    }
}

struct RawRemote {
    address: u32,
    seconds: Vec<(&'static str, Option<f64>)>,
}
