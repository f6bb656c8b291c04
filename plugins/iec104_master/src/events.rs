//! Event mapping of the master (hat's `_msg_to_event` and `_msg_from_event`): received
//! messages to `gateway/...` events, `system/...` events to messages to send.

use gateway_model::{Event, InvalidJson, JsonText, Payload, RegisterEvent};
use iec60870::types::{
    ClockSyncCause, ClockSyncMsg, CommandMsg, CounterInterrogationMsg, FreezeCode,
    InterrogationMsg, Msg,
};
use iec_common::payload::{command_from_json, command_to_json, DataJson};
use iec_common::{
    command_req_cause_from_json, command_res_cause_to_json, data_cause_to_json,
    time_from_source_timestamp, time_to_source_timestamp, CommandKey, CommandType, DataKey,
    DataType, Direction, EventKey, PayloadError,
};
use serde::Serialize;
use serde_json::{json, Value};

/// ASDU address of a broadcast (clock synchronisation goes to every station).
pub const GLOBAL_ASDU_ADDRESS: u16 = 0xFFFF;

/// The payload of a `gateway/data` event.
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

/// The event reporting a received message; `Ok(None)` for clock synchronisation
/// responses, which hat skips silently.
pub fn msg_to_event(prefix: &[String], msg: &Msg) -> Result<Option<RegisterEvent>, MsgError> {
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
                event_type: key.event_type(prefix, Direction::Gateway),
                source_timestamp: time_to_source_timestamp(m.time.as_ref())?,
                payload: Some(Payload::Json(JsonText::serialize(&payload)?)),
            }
        }
        Msg::Command(m) => {
            let key = EventKey::Command(CommandKey {
                cmd_type: CommandType::of(&m.command),
                asdu_address: m.asdu_address,
                io_address: m.io_address,
            });
            let payload = json!({
                "is_test": m.is_test,
                "is_negative_confirm": m.is_negative_confirm,
                "cause": command_res_cause_to_json(m.cause),
                "command": command_to_json(&m.command),
            });
            event(
                prefix,
                key,
                payload,
                time_to_source_timestamp(m.time.as_ref())?,
            )
        }
        Msg::Interrogation(m) => {
            let payload = json!({
                "is_test": m.is_test,
                "is_negative_confirm": m.is_negative_confirm,
                "request": m.request,
                "cause": command_res_cause_to_json(m.cause),
            });
            event(
                prefix,
                EventKey::Interrogation(m.asdu_address),
                payload,
                None,
            )
        }
        Msg::CounterInterrogation(m) => {
            let payload = json!({
                "is_test": m.is_test,
                "is_negative_confirm": m.is_negative_confirm,
                "request": m.request,
                "freeze": freeze_name(m.freeze),
                "cause": command_res_cause_to_json(m.cause),
            });
            event(
                prefix,
                EventKey::CounterInterrogation(m.asdu_address),
                payload,
                None,
            )
        }
        Msg::ClockSync(_) => return Ok(None),
        Msg::Initialization(_) => return Err(MsgError::Unsupported("initialization")),
        Msg::Read(_) => return Err(MsgError::Unsupported("read")),
        Msg::Test(_) => return Err(MsgError::Unsupported("test")),
        Msg::Reset(_) => return Err(MsgError::Unsupported("reset")),
        Msg::Delay(_) => return Err(MsgError::Unsupported("delay")),
        Msg::Parameter(_) => return Err(MsgError::Unsupported("parameter")),
        Msg::ParameterActivation(_) => return Err(MsgError::Unsupported("parameter activation")),
    };
    Ok(Some(event))
}

fn event(
    prefix: &[String],
    key: EventKey,
    payload: Value,
    source_timestamp: Option<gateway_model::Timestamp>,
) -> RegisterEvent {
    RegisterEvent {
        event_type: key.event_type(prefix, Direction::Gateway),
        source_timestamp,
        payload: Some(Payload::json(payload)),
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

/// The message a `system/...` event asks to send (hat's `_msg_from_event`): commands
/// (with the event's source timestamp as time tag), interrogations and counter
/// interrogations; originator address 0, never a negative confirmation.
pub fn msg_from_event(prefix: &[String], event: &Event) -> Result<Msg, PayloadError> {
    let key = EventKey::parse(prefix, Direction::System, &event.event_type)?;
    let payload = match &event.payload {
        Some(Payload::Json(text)) => text.value(),
        Some(Payload::Binary { .. }) => return Err(invalid("/", "binary payload")),
        None => return Err(invalid("/", "no payload")),
    };
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
            time: time_from_source_timestamp(event.source_timestamp),
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
        EventKey::Data(_) => return Err(PayloadError::EventType("unsupported event type")),
    })
}

/// The clock synchronisation hat's master sends every `time_sync_delay`.
pub fn clock_sync_msg() -> Msg {
    Msg::ClockSync(ClockSyncMsg {
        is_test: false,
        originator_address: 0,
        asdu_address: GLOBAL_ASDU_ADDRESS,
        time: iec_common::time_now(),
        is_negative_confirm: false,
        cause: ClockSyncCause::Activation,
    })
}
