//! The slave's events (hat-gateway's `iec101/slave.py`): `gateway/connections`,
//! `gateway/command/...` out; `system/data/...`, `system/command/...` in.

use gateway_model::{Event, EventType, Payload, RegisterEvent};
use iec60870::types::{CommandMsg, DataMsg};
use iec_common::{
    command_from_json, command_req_cause_to_json, command_res_cause_from_json, command_to_json,
    data_cause_from_json, data_from_json, time_from_source_timestamp, CommandKey, DataKey,
    Direction, EventKey, PayloadError,
};
use serde_json::{json, Value};

/// Connection id as hat numbers them: 1, 2, ... per device.
pub type ConnectionId = u64;

/// One entry of the `gateway/connections` payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionEntry {
    /// The device's connection id.
    pub id: ConnectionId,
    /// The link address of the connection.
    pub address: u16,
}

/// A `system/...` event the device understands.
#[derive(Debug, Clone, PartialEq)]
pub enum SystemEvent {
    /// `system/data/<type>/<asdu>/<io>`: a new current value.
    Data(DataKey, DataMsg),
    /// `system/command/<type>/<asdu>/<io>`: a command response for one connection.
    Command(ConnectionId, CommandMsg),
}

/// The device's event types.
#[derive(Debug, Clone)]
pub struct EventTypes {
    prefix: EventType,
}

impl EventTypes {
    /// Event types under `prefix` (the device's 4 segments).
    pub fn new(prefix: EventType) -> Self {
        Self { prefix }
    }

    /// The device prefix.
    pub fn prefix(&self) -> &[String] {
        &self.prefix
    }

    /// `<prefix>/system/data/*`, the start-up query.
    pub fn system_data_query(&self) -> EventType {
        let mut event_type = self.prefix.clone();
        event_type.extend(["system", "data", "*"].map(String::from));
        event_type
    }

    /// `gateway/connections` with hat's payload: `[{connection_id, address}]`.
    pub fn connections(&self, conns: &[ConnectionEntry]) -> RegisterEvent {
        let payload: Vec<Value> = conns
            .iter()
            .map(|conn| json!({"connection_id": conn.id, "address": conn.address}))
            .collect();
        let mut event_type = self.prefix.clone();
        event_type.extend(["gateway", "connections"].map(String::from));
        RegisterEvent::json(event_type, Value::Array(payload))
    }

    /// `gateway/command/<type>/<asdu>/<io>` for a command request from connection `id`
    /// (hat's `cmd_msg_to_event`: no source timestamp, 101 commands have no time tag).
    pub fn command(&self, id: ConnectionId, msg: &CommandMsg) -> RegisterEvent {
        let key = CommandKey {
            cmd_type: iec_common::CommandType::of(&msg.command),
            asdu_address: msg.asdu_address,
            io_address: msg.io_address,
        };
        let event_type = EventKey::Command(key).event_type(&self.prefix, Direction::Gateway);
        RegisterEvent::json(
            event_type,
            json!({
                "connection_id": id,
                "is_test": msg.is_test,
                "cause": command_req_cause_to_json(msg.cause),
                "command": command_to_json(&msg.command),
            }),
        )
    }

    /// Parses a `system/...` event (hat's `_process_event`).
    pub fn parse_system(&self, event: &Event) -> Result<SystemEvent, PayloadError> {
        let key = EventKey::parse(&self.prefix, Direction::System, &event.event_type)?;
        let payload = match &event.payload {
            Some(Payload::Json(text)) => text.value(),
            _ => return Err(invalid("", "not a JSON payload")),
        };
        match key {
            EventKey::Data(key) => Ok(SystemEvent::Data(key, data_msg(key, event, &payload)?)),
            EventKey::Command(key) => {
                let id = payload
                    .get("connection_id")
                    .and_then(Value::as_u64)
                    .ok_or(invalid("/connection_id", "not a connection id"))?;
                Ok(SystemEvent::Command(id, command_msg(key, &payload)?))
            }
            EventKey::Interrogation(_) | EventKey::CounterInterrogation(_) => {
                Err(PayloadError::EventType("unsupported event type"))
            }
        }
    }
}

fn invalid(pointer: &str, reason: &'static str) -> PayloadError {
    PayloadError::Invalid {
        pointer: pointer.to_owned(),
        reason,
    }
}

fn bool_field(payload: &Value, name: &'static str, pointer: &str) -> Result<bool, PayloadError> {
    payload
        .get(name)
        .and_then(Value::as_bool)
        .ok_or(invalid(pointer, "not a boolean"))
}

fn field<'a>(payload: &'a Value, name: &str, pointer: &str) -> Result<&'a Value, PayloadError> {
    payload.get(name).ok_or(invalid(pointer, "missing"))
}

/// hat's `data_msg_from_event`: originator 0, time from the source timestamp.
pub fn data_msg(key: DataKey, event: &Event, payload: &Value) -> Result<DataMsg, PayloadError> {
    Ok(DataMsg {
        is_test: bool_field(payload, "is_test", "/is_test")?,
        originator_address: 0,
        asdu_address: key.asdu_address,
        io_address: key.io_address,
        data: data_from_json(key.data_type, field(payload, "data", "/data")?)?,
        time: time_from_source_timestamp(event.source_timestamp),
        cause: data_cause_from_json(field(payload, "cause", "/cause")?)?,
    })
}

/// hat's `cmd_msg_from_event`: originator 0, no time tag.
pub fn command_msg(key: CommandKey, payload: &Value) -> Result<CommandMsg, PayloadError> {
    Ok(CommandMsg {
        is_test: bool_field(payload, "is_test", "/is_test")?,
        originator_address: 0,
        asdu_address: key.asdu_address,
        io_address: key.io_address,
        command: command_from_json(key.cmd_type, field(payload, "command", "/command")?)?,
        is_negative_confirm: bool_field(payload, "is_negative_confirm", "/is_negative_confirm")?,
        time: None,
        cause: command_res_cause_from_json(field(payload, "cause", "/cause")?)?,
    })
}
