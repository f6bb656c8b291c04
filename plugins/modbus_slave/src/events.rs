//! Event mapping: the event types and payloads the slave registers
//! (`gateway/connections`, `gateway/write`) and parsing of the system events it
//! consumes (`system/data/<name>`, `system/write`), as hat-gateway 0.6.48 has them.

use gateway_model::{Event, EventType, EventTypePrefix, Payload, RegisterEvent};
use serde_json::{json, Value};

use crate::data::WriteData;

/// One `gateway/connections` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionEntry {
    /// A TCP connection.
    Tcp {
        /// Connection id (from 1, never reused while the device runs).
        id: u64,
        /// Local address.
        local: std::net::SocketAddr,
        /// Remote address.
        remote: std::net::SocketAddr,
    },
    /// A master seen on the serial line.
    Serial {
        /// Connection id.
        id: u64,
    },
}

impl ConnectionEntry {
    fn to_json(&self) -> Value {
        match self {
            Self::Tcp { id, local, remote } => json!({
                "type": "TCP",
                "connection_id": id,
                "local": {"host": local.ip().to_string(), "port": local.port()},
                "remote": {"host": remote.ip().to_string(), "port": remote.port()},
            }),
            Self::Serial { id } => json!({"type": "SERIAL", "connection_id": id}),
        }
    }
}

/// A system event for this device.
#[derive(Debug, Clone, PartialEq)]
pub enum SystemEvent {
    /// `system/data/<name>` with `{"value": v}`.
    Data {
        /// Point name.
        name: String,
        /// The `value` field as received.
        value: Value,
    },
    /// `system/write` with `{"request_id": id, "success": bool}`.
    WriteResult {
        /// The `request_id` of the `gateway/write` it answers.
        request_id: String,
        /// Whether the write was accepted.
        success: bool,
    },
}

/// Builds event types under the device prefix.
#[derive(Debug, Clone)]
pub struct EventTypes {
    prefix: EventTypePrefix,
}

impl EventTypes {
    /// Types under `prefix`.
    pub fn new(prefix: EventType) -> Self {
        Self {
            prefix: EventTypePrefix::new(prefix),
        }
    }

    fn with(&self, tail: &[&str]) -> EventType {
        self.prefix.join(tail)
    }

    /// `P/gateway/connections` with every open connection.
    pub fn connections(&self, entries: &[ConnectionEntry]) -> RegisterEvent {
        let list: Vec<Value> = entries.iter().map(ConnectionEntry::to_json).collect();
        RegisterEvent::json(self.with(&["gateway", "connections"]), Value::Array(list))
    }

    /// `P/gateway/write` with `{request_id, connection_id, data}`.
    pub fn write(&self, request_id: &str, connection_id: u64, data: &[WriteData]) -> RegisterEvent {
        let data: Vec<Value> = data
            .iter()
            .map(|d| json!({"name": d.name, "value": d.value}))
            .collect();
        RegisterEvent::json(
            self.with(&["gateway", "write"]),
            json!({"request_id": request_id, "connection_id": connection_id, "data": data}),
        )
    }

    /// Query type of the start-up query: `P/system/data/*`.
    pub fn data_query(&self) -> EventType {
        self.with(&["system", "data", "*"])
    }

    /// Parses an event addressed to this device. `Err` carries the reason it is ignored.
    pub fn parse_system(&self, event: &Event) -> Result<SystemEvent, String> {
        let tail = self
            .prefix
            .strip(&event.event_type)
            .ok_or("event type outside the device prefix")?;
        let tail: Vec<&str> = tail.iter().map(String::as_str).collect();
        let payload = match &event.payload {
            Some(Payload::Json(text)) => text.value(),
            Some(Payload::Binary { .. }) => return Err("binary payload".to_owned()),
            None => return Err("no payload".to_owned()),
        };
        match tail.as_slice() {
            ["system", "data", name] => {
                let value = payload
                    .get("value")
                    .cloned()
                    .ok_or("data payload without value")?;
                Ok(SystemEvent::Data {
                    name: (*name).to_owned(),
                    value,
                })
            }
            ["system", "write"] => {
                let request_id = payload
                    .get("request_id")
                    .and_then(Value::as_str)
                    .ok_or("write payload without a string request_id")?;
                let success = payload
                    .get("success")
                    .and_then(Value::as_bool)
                    .ok_or("write payload without a boolean success")?;
                Ok(SystemEvent::WriteResult {
                    request_id: request_id.to_owned(),
                    success,
                })
            }
            _ => Err("unsupported event type".to_owned()),
        }
    }
}
