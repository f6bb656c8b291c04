//! Event mapping of the master (hat's `_msg_to_event`, `_command_from_event`,
//! `_interrogation_from_event`, `_counter_interrogation_from_event` and the enable
//! events): received messages to `gateway/remote_device/<address>/...` events,
//! `system/remote_device/<address>/...` events to enables and messages to send.

use gateway_model::{Event, EventType, InvalidJson, JsonText, Payload, RegisterEvent};
use iec60870::types::{
    ClockSyncCause, ClockSyncMsg, CommandMsg, CounterInterrogationMsg, FreezeCode,
    InterrogationMsg, Msg,
};
use iec_common::payload::{command_from_json, command_to_json, DataJson};
use iec_common::{
    command_req_cause_from_json, command_res_cause_to_json, data_cause_to_json,
    time_to_source_timestamp, CommandKey, CommandType, DataKey, DataType, EventKey, PayloadError,
};
use serde::Serialize;
use serde_json::{json, Value};

/// A link address of a remote device.
pub type Address = u16;

/// The payload of a `gateway/.../data` event.
#[derive(Serialize)]
struct DataEventPayload<'a> {
    is_test: bool,
    cause: Value,
    data: DataJson<'a>,
}

/// Why a received message produced no event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MsgError {
    /// A message kind a master does not report (hat: "unsupported message type").
    #[error("unsupported message type {0}")]
    Unsupported(&'static str),
    /// The message holds something without a JSON form (an impossible time tag).
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// The payload could not be written as JSON (cannot happen for hat's shapes).
    #[error("payload not serializable: {}", .0.reason)]
    Json(#[from] InvalidJson),
}

/// The device's event types under its prefix.
#[derive(Debug, Clone)]
pub struct EventTypes {
    prefix: EventType,
}

/// A `system/remote_device/<address>/...` event the master understands.
#[derive(Debug, Clone, PartialEq)]
pub enum SystemEvent {
    /// `enable`: start or stop the remote device's connection.
    Enable(Address, bool),
    /// `command`, `interrogation`, `counter_interrogation`: a message to send.
    Send(Address, Msg),
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

    fn with(&self, tail: &[&str]) -> EventType {
        let mut event_type = Vec::with_capacity(self.prefix.len() + tail.len() + 4);
        event_type.extend_from_slice(&self.prefix);
        event_type.extend(tail.iter().map(|s| (*s).to_owned()));
        event_type
    }

    /// `gateway/status` with `status`.
    pub fn status(&self, status: &str) -> RegisterEvent {
        RegisterEvent::json(self.with(&["gateway", "status"]), json!(status))
    }

    /// `gateway/remote_device/<address>/status` with `status`.
    pub fn remote_status(&self, address: Address, status: &str) -> RegisterEvent {
        let address = address.to_string();
        RegisterEvent::json(
            self.with(&["gateway", "remote_device", &address, "status"]),
            json!(status),
        )
    }

    /// `system/remote_device/<address>/enable` of every configured remote device:
    /// the start-up query.
    pub fn enable_query(&self, addresses: impl IntoIterator<Item = Address>) -> Vec<EventType> {
        addresses
            .into_iter()
            .map(|a| self.with(&["system", "remote_device", &a.to_string(), "enable"]))
            .collect()
    }

    fn remote_type(&self, address: Address, key: EventKey) -> EventType {
        let mut event_type = self.with(&["gateway", "remote_device", &address.to_string()]);
        key.push_segments(&mut event_type);
        event_type
    }

    /// The event reporting a message received from remote device `address`; `Ok(None)`
    /// for clock synchronisation responses, which hat skips silently.
    pub fn msg_to_event(
        &self,
        address: Address,
        msg: &Msg,
    ) -> Result<Option<RegisterEvent>, MsgError> {
        let event = match msg {
            Msg::Data(m) => {
                let key = EventKey::Data(DataKey {
                    data_type: DataType::of(&m.data),
                    asdu_address: m.asdu_address,
                    io_address: m.io_address,
                });
                // Written straight to text: this runs for every received point.
                let payload = DataEventPayload {
                    is_test: m.is_test,
                    cause: data_cause_to_json(m.cause),
                    data: DataJson(&m.data),
                };
                RegisterEvent {
                    event_type: self.remote_type(address, key),
                    source_timestamp: time_to_source_timestamp(m.time.as_ref())?,
                    payload: Some(Payload::Json(JsonText::serialize(&payload)?)),
                }
            }
            // hat's 101 command events carry no source timestamp (101 commands have
            // no time tag).
            Msg::Command(m) => RegisterEvent::json(
                self.remote_type(
                    address,
                    EventKey::Command(CommandKey {
                        cmd_type: CommandType::of(&m.command),
                        asdu_address: m.asdu_address,
                        io_address: m.io_address,
                    }),
                ),
                json!({
                    "is_test": m.is_test,
                    "is_negative_confirm": m.is_negative_confirm,
                    "cause": command_res_cause_to_json(m.cause),
                    "command": command_to_json(&m.command),
                }),
            ),
            Msg::Interrogation(m) => RegisterEvent::json(
                self.remote_type(address, EventKey::Interrogation(m.asdu_address)),
                json!({
                    "is_test": m.is_test,
                    "is_negative_confirm": m.is_negative_confirm,
                    "request": m.request,
                    "cause": command_res_cause_to_json(m.cause),
                }),
            ),
            Msg::CounterInterrogation(m) => RegisterEvent::json(
                self.remote_type(address, EventKey::CounterInterrogation(m.asdu_address)),
                json!({
                    "is_test": m.is_test,
                    "is_negative_confirm": m.is_negative_confirm,
                    "request": m.request,
                    "freeze": freeze_name(m.freeze),
                    "cause": command_res_cause_to_json(m.cause),
                }),
            ),
            Msg::ClockSync(_) => return Ok(None),
            Msg::Initialization(_) => return Err(MsgError::Unsupported("initialization")),
            Msg::Read(_) => return Err(MsgError::Unsupported("read")),
            Msg::Test(_) => return Err(MsgError::Unsupported("test")),
            Msg::Reset(_) => return Err(MsgError::Unsupported("reset")),
            Msg::Delay(_) => return Err(MsgError::Unsupported("delay")),
            Msg::Parameter(_) => return Err(MsgError::Unsupported("parameter")),
            Msg::ParameterActivation(_) => {
                return Err(MsgError::Unsupported("parameter activation"))
            }
        };
        Ok(Some(event))
    }

    /// Parses a `system/remote_device/<address>/...` event (hat's `_process_event`).
    pub fn parse_system(&self, event: &Event) -> Result<SystemEvent, PayloadError> {
        let tail = event
            .event_type
            .strip_prefix(self.prefix.as_slice())
            .ok_or(PayloadError::EventType("outside the device prefix"))?;
        let tail: Vec<&str> = tail.iter().map(String::as_str).collect();
        let ["system", "remote_device", address, rest @ ..] = tail.as_slice() else {
            return Err(PayloadError::EventType("unexpected event type"));
        };
        let address: Address = address
            .parse()
            .map_err(|_| PayloadError::EventType("remote device address is not an integer"))?;
        let payload = match &event.payload {
            Some(Payload::Json(text)) => text.value(),
            Some(Payload::Binary { .. }) => return Err(invalid("/", "binary payload")),
            None => return Err(invalid("/", "no payload")),
        };
        if rest == ["enable"] {
            let enable = payload
                .as_bool()
                .ok_or_else(|| invalid("/", "invalid enable event payload"))?;
            return Ok(SystemEvent::Enable(address, enable));
        }
        let key = EventKey::parse_segments(rest)?;
        Ok(SystemEvent::Send(address, msg_from_payload(key, &payload)?))
    }
}

/// hat's `FreezeCode` member name.
pub fn freeze_name(freeze: FreezeCode) -> &'static str {
    match freeze {
        FreezeCode::Read => "READ",
        FreezeCode::Freeze => "FREEZE",
        FreezeCode::FreezeAndReset => "FREEZE_AND_RESET",
        FreezeCode::Reset => "RESET",
    }
}

fn freeze_from_name(name: &Value) -> Result<FreezeCode, PayloadError> {
    match name.as_str() {
        Some("READ") => Ok(FreezeCode::Read),
        Some("FREEZE") => Ok(FreezeCode::Freeze),
        Some("FREEZE_AND_RESET") => Ok(FreezeCode::FreezeAndReset),
        Some("RESET") => Ok(FreezeCode::Reset),
        _ => Err(invalid(
            "/freeze",
            "not READ, FREEZE, FREEZE_AND_RESET or RESET",
        )),
    }
}

fn invalid(pointer: &str, reason: &'static str) -> PayloadError {
    PayloadError::Invalid {
        pointer: pointer.to_owned(),
        reason,
    }
}

/// The message a command, interrogation or counter interrogation payload asks to send:
/// originator address 0, never a negative confirmation, no time tag (101 commands have
/// none).
fn msg_from_payload(key: EventKey, payload: &Value) -> Result<Msg, PayloadError> {
    let object = payload
        .as_object()
        .ok_or_else(|| invalid("/", "not an object"))?;
    let field = |name: &'static str| {
        object.get(name).ok_or_else(|| PayloadError::Invalid {
            pointer: format!("/{name}"),
            reason: "missing",
        })
    };
    let is_test = field("is_test")?
        .as_bool()
        .ok_or_else(|| invalid("/is_test", "not a boolean"))?;
    let cause = command_req_cause_from_json(field("cause")?)?;
    let request = |max: u64| {
        field("request")?
            .as_u64()
            .filter(|r| *r <= max)
            .map(|r| r as u8)
            .ok_or_else(|| invalid("/request", "not an integer in range"))
    };
    Ok(match key {
        EventKey::Command(key) => Msg::Command(CommandMsg {
            is_test,
            originator_address: 0,
            asdu_address: key.asdu_address,
            io_address: key.io_address,
            command: command_from_json(key.cmd_type, field("command")?).map_err(
                |err| match err {
                    PayloadError::Invalid { pointer, reason } => PayloadError::Invalid {
                        pointer: format!("/command{pointer}"),
                        reason,
                    },
                    other => other,
                },
            )?,
            is_negative_confirm: false,
            time: None,
            cause,
        }),
        EventKey::Interrogation(asdu_address) => Msg::Interrogation(InterrogationMsg {
            is_test,
            originator_address: 0,
            asdu_address,
            request: request(255)?,
            is_negative_confirm: false,
            cause,
        }),
        EventKey::CounterInterrogation(asdu_address) => {
            Msg::CounterInterrogation(CounterInterrogationMsg {
                is_test,
                originator_address: 0,
                asdu_address,
                request: request(63)?,
                freeze: freeze_from_name(field("freeze")?)?,
                is_negative_confirm: false,
                cause,
            })
        }
        EventKey::Data(_) => return Err(PayloadError::EventType("unexpected event type")),
    })
}

/// The clock synchronisation hat's master sends every `time_sync_delay`, to the
/// broadcast common address of the configured size.
pub fn clock_sync_msg(broadcast_asdu_address: u16) -> Msg {
    Msg::ClockSync(ClockSyncMsg {
        is_test: false,
        originator_address: 0,
        asdu_address: broadcast_asdu_address,
        time: iec_common::time_now(),
        is_negative_confirm: false,
        cause: ClockSyncCause::Activation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_model::{EventId, Timestamp};

    fn types() -> EventTypes {
        EventTypes::new(
            ["gateway", "gw", "iec101_master", "dev"]
                .map(String::from)
                .to_vec(),
        )
    }

    fn event(tail: &str, payload: Value) -> Event {
        let mut event_type = types().prefix().to_vec();
        event_type.extend(tail.split('/').map(String::from));
        Event {
            id: EventId::default(),
            event_type,
            timestamp: Timestamp::default(),
            source_timestamp: Some(Timestamp::new(1, 0)),
            payload: Some(Payload::Json(JsonText::from_value(&payload))),
        }
    }

    #[test]
    fn enable_events_name_their_remote_device() {
        let types = types();
        assert_eq!(
            types.parse_system(&event("system/remote_device/7/enable", json!(true))),
            Ok(SystemEvent::Enable(7, true))
        );
        assert!(types
            .parse_system(&event("system/remote_device/7/enable", json!("yes")))
            .is_err());
        assert!(types
            .parse_system(&event("system/remote_device/x/enable", json!(true)))
            .is_err());
        assert!(types
            .parse_system(&event("system/enable", json!(true)))
            .is_err());
    }

    #[test]
    fn commands_carry_no_time_tag_and_interrogations_their_request() {
        let types = types();
        let cmd = types
            .parse_system(&event(
                "system/remote_device/3/command/single/1/5",
                json!({"is_test": false, "cause": "ACTIVATION", "command": {"value": "ON", "select": true, "qualifier": 2}}),
            ))
            .unwrap();
        let SystemEvent::Send(3, Msg::Command(cmd)) = cmd else {
            panic!("{cmd:?}")
        };
        assert_eq!((cmd.asdu_address, cmd.io_address, cmd.time), (1, 5, None));
        let gi = types
            .parse_system(&event(
                "system/remote_device/3/counter_interrogation/9",
                json!({"is_test": true, "cause": 6, "request": 5, "freeze": "FREEZE"}),
            ))
            .unwrap();
        let SystemEvent::Send(3, Msg::CounterInterrogation(gi)) = gi else {
            panic!("{gi:?}")
        };
        assert_eq!(
            (gi.asdu_address, gi.request, gi.freeze),
            (9, 5, FreezeCode::Freeze)
        );
        assert!(types
            .parse_system(&event(
                "system/remote_device/3/interrogation/9",
                json!({"is_test": true, "cause": "ACTIVATION", "request": 256}),
            ))
            .is_err());
    }

    #[test]
    fn remote_device_events_are_under_their_address() {
        let types = types();
        assert_eq!(
            types.remote_status(4, "CONNECTED").event_type[4..],
            ["gateway", "remote_device", "4", "status"]
        );
        let msg = Msg::Interrogation(InterrogationMsg {
            is_test: false,
            originator_address: 0,
            asdu_address: 12,
            request: 20,
            is_negative_confirm: false,
            cause: iec60870::types::CommandCause::ActivationConfirmation,
        });
        let event = types.msg_to_event(4, &msg).unwrap().unwrap();
        assert_eq!(
            event.event_type[4..],
            ["gateway", "remote_device", "4", "interrogation", "12"]
        );
    }
}
