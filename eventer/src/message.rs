//! The `HatEventer.Msg*` messages and their SBS encoding (the content of chatter
//! `Data.data`). Pure byte code.
//!
//! Encoding is written once, generic over [`Writer`]: the same code computes the
//! exact size (for the `Data.data` length prefix) and writes the bytes, so a whole
//! frame is produced without an intermediate buffer ([`EventerMsg::encode_frame`]).

use bytes::{Bytes, BytesMut};
use gateway_model::{
    Event, EventId, EventType, InvalidJson, JsonText, Order, OrderBy, Payload, QueryLatestParams,
    QueryParams, QueryResult, QueryServerParams, QueryTimeseriesParams, RegisterEvent, Status,
    Timestamp,
};

use crate::chatter::{self, Msg, MsgHeader};
use crate::sbs::{Reader, SbsError, SizeCounter, Writer};

/// `Data.type` of [`EventerMsg::InitReq`].
pub const MSG_INIT_REQ: &str = "HatEventer.MsgInitReq";
/// `Data.type` of [`EventerMsg::InitRes`].
pub const MSG_INIT_RES: &str = "HatEventer.MsgInitRes";
/// `Data.type` of [`EventerMsg::StatusNotify`].
pub const MSG_STATUS_NOTIFY: &str = "HatEventer.MsgStatusNotify";
/// `Data.type` of [`EventerMsg::EventsNotify`].
pub const MSG_EVENTS_NOTIFY: &str = "HatEventer.MsgEventsNotify";
/// `Data.type` of [`EventerMsg::EventsAck`].
pub const MSG_EVENTS_ACK: &str = "HatEventer.MsgEventsAck";
/// `Data.type` of [`EventerMsg::RegisterReq`].
pub const MSG_REGISTER_REQ: &str = "HatEventer.MsgRegisterReq";
/// `Data.type` of [`EventerMsg::RegisterRes`].
pub const MSG_REGISTER_RES: &str = "HatEventer.MsgRegisterRes";
/// `Data.type` of [`EventerMsg::QueryReq`].
pub const MSG_QUERY_REQ: &str = "HatEventer.MsgQueryReq";
/// `Data.type` of [`EventerMsg::QueryRes`].
pub const MSG_QUERY_RES: &str = "HatEventer.MsgQueryRes";

/// Every Eventer message type name, in schema order.
pub const EVENTER_TYPE_NAMES: [&str; 9] = [
    MSG_INIT_REQ,
    MSG_INIT_RES,
    MSG_STATUS_NOTIFY,
    MSG_EVENTS_NOTIFY,
    MSG_EVENTS_ACK,
    MSG_REGISTER_REQ,
    MSG_REGISTER_RES,
    MSG_QUERY_REQ,
    MSG_QUERY_RES,
];

/// Smallest encodings, used to bound array counts by the remaining input.
/// Event: id (3) + type (1) + timestamp (2) + two Optional tags (2).
const MIN_EVENT_LEN: usize = 8;
/// RegisterEvent: type (1) + two Optional tags (2).
const MIN_REGISTER_EVENT_LEN: usize = 3;
/// String / EventType: the count byte.
const MIN_COUNTED_LEN: usize = 1;

/// `HatEventer.MsgInitReq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitReq {
    /// Free text, by convention `<component type>/<instance name>`.
    pub client_name: String,
    /// Checked against the server's token when present.
    pub client_token: Option<String>,
    /// Query types the client wants notifications for.
    pub subscriptions: Vec<gateway_model::EventType>,
    /// Only events whose `id.server` equals this are notified.
    pub server_id: Option<i64>,
    /// Notify after the backend wrote the batch instead of right after registering.
    pub persisted: bool,
}

/// `HatEventer.MsgInitRes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitRes {
    /// Index 0: accepted, with the server's current status.
    Success(Status),
    /// Index 1: refused, with hat's reason text.
    Error(String),
}

/// `HatEventer.MsgRegisterRes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterRes {
    /// Index 0: one event per registered event, in request order.
    Events(Vec<Event>),
    /// Index 1: the server is not operational.
    Failure,
}

/// Every Eventer message, tagged by its `Data.type` name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventerMsg {
    /// `HatEventer.MsgInitReq`
    InitReq(InitReq),
    /// `HatEventer.MsgInitRes`
    InitRes(InitRes),
    /// `HatEventer.MsgStatusNotify`
    StatusNotify(Status),
    /// `HatEventer.MsgEventsNotify`
    EventsNotify(Vec<Event>),
    /// `HatEventer.MsgEventsAck`
    EventsAck,
    /// `HatEventer.MsgRegisterReq`
    RegisterReq(Vec<RegisterEvent>),
    /// `HatEventer.MsgRegisterRes`
    RegisterRes(RegisterRes),
    /// `HatEventer.MsgQueryReq`
    QueryReq(QueryParams),
    /// `HatEventer.MsgQueryRes`
    QueryRes(QueryResult),
}

/// Errors decoding an Eventer message. Each one ends the connection.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// `Data.type` names no Eventer message.
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    /// The SBS bytes do not decode as the named type.
    #[error("invalid SBS in {type_name}: {source}")]
    InvalidSbs {
        /// The `Data.type` being decoded.
        type_name: &'static str,
        /// What was wrong.
        source: crate::sbs::SbsError,
    },
    /// A JSON payload's text is not valid JSON.
    #[error("invalid JSON payload in {type_name}: {source}")]
    InvalidJson {
        /// The `Data.type` being decoded.
        type_name: &'static str,
        /// What serde_json said.
        source: gateway_model::InvalidJson,
    },
}

impl EventerMsg {
    /// The fully qualified `Data.type` name, e.g. `HatEventer.MsgInitReq`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::InitReq(_) => MSG_INIT_REQ,
            Self::InitRes(_) => MSG_INIT_RES,
            Self::StatusNotify(_) => MSG_STATUS_NOTIFY,
            Self::EventsNotify(_) => MSG_EVENTS_NOTIFY,
            Self::EventsAck => MSG_EVENTS_ACK,
            Self::RegisterReq(_) => MSG_REGISTER_REQ,
            Self::RegisterRes(_) => MSG_REGISTER_RES,
            Self::QueryReq(_) => MSG_QUERY_REQ,
            Self::QueryRes(_) => MSG_QUERY_RES,
        }
    }

    /// Appends the SBS encoding of this message to `dst`.
    pub fn encode(&self, dst: &mut Vec<u8>) {
        dst.reserve(self.encoded_len());
        self.write(dst);
    }

    /// Exact size of the SBS encoding in bytes.
    pub fn encoded_len(&self) -> usize {
        let mut size = SizeCounter::default();
        self.write(&mut size);
        size.0
    }

    /// Writes the SBS encoding into any [`Writer`].
    pub fn write<W: Writer>(&self, w: &mut W) {
        match self {
            Self::InitReq(req) => {
                w.put_str(&req.client_name);
                put_optional(w, req.client_token.as_deref(), |w, t| w.put_str(t));
                put_event_types(w, &req.subscriptions);
                put_optional(w, req.server_id, |w, id| w.put_integer(id));
                w.put_bool(req.persisted);
            }
            Self::InitRes(InitRes::Success(status)) => {
                w.put_choice(0);
                put_status(w, *status);
            }
            Self::InitRes(InitRes::Error(text)) => {
                w.put_choice(1);
                w.put_str(text);
            }
            Self::StatusNotify(status) => put_status(w, *status),
            Self::EventsNotify(events) => put_events(w, events),
            Self::EventsAck => {}
            Self::RegisterReq(events) => {
                w.put_count(events.len());
                for event in events {
                    put_event_type(w, &event.event_type);
                    put_optional(w, event.source_timestamp, put_timestamp);
                    put_optional(w, event.payload.as_ref(), put_payload);
                }
            }
            Self::RegisterRes(RegisterRes::Events(events)) => {
                w.put_choice(0);
                put_events(w, events);
            }
            Self::RegisterRes(RegisterRes::Failure) => w.put_choice(1),
            Self::QueryReq(params) => put_query_params(w, params),
            Self::QueryRes(result) => {
                put_events(w, &result.events);
                w.put_bool(result.more_follows);
            }
        }
    }

    /// Appends a whole chatter frame (prefix, header, `Data`) carrying this message
    /// to `dst`, encoding the message straight into it.
    ///
    /// The message is written once, at the end of `dst`; the frame's head, whose
    /// length prefixes need the message's size, is then put before it and the message
    /// moved up by the head's few bytes. Counting the size first
    /// ([`EventerMsg::encoded_len`]) walks every event's segments and payload a second
    /// time, which cost about as much as writing them (issue 12).
    pub fn encode_frame(&self, header: &MsgHeader, dst: &mut BytesMut) {
        let start = dst.len();
        self.write(dst);
        let data_len = dst.len() - start;
        let mut head = BytesMut::new();
        chatter::put_frame_head(header, self.type_name(), data_len, data_len, &mut head);
        let head_len = head.len();
        dst.resize(start + data_len + head_len, 0);
        dst.copy_within(start..start + data_len, start + head_len);
        dst[start..start + head_len].copy_from_slice(&head);
    }

    /// A chatter message carrying this message.
    pub fn to_msg(&self, header: MsgHeader) -> Msg {
        let mut data = Vec::new();
        self.encode(&mut data);
        Msg::new(header, self.type_name(), Bytes::from(data))
    }

    /// Decodes the SBS bytes of the message named `type_name`.
    ///
    /// The whole input must be consumed: trailing bytes are invalid SBS here (hat
    /// ignores them, but never sends them).
    pub fn decode(type_name: &str, data: &[u8]) -> Result<Self, MessageError> {
        let Some(&name) = EVENTER_TYPE_NAMES.iter().find(|n| **n == type_name) else {
            return Err(MessageError::UnknownType(type_name.to_owned()));
        };
        let mut r = Reader::new(data);
        let decoded = read_message(name, &mut r).and_then(|msg| {
            r.finish()?;
            Ok(msg)
        });
        decoded.map_err(|fault| match fault {
            Fault::Sbs(source) => MessageError::InvalidSbs {
                type_name: name,
                source,
            },
            Fault::Json(source) => MessageError::InvalidJson {
                type_name: name,
                source,
            },
        })
    }

    /// Decodes the `Data` of a chatter message.
    pub fn from_msg(msg: &Msg) -> Result<Self, MessageError> {
        Self::decode(&msg.data_type, &msg.data)
    }
}

// ------------------------------------------------------------------ encoding --

fn put_optional<W: Writer, T>(w: &mut W, value: Option<T>, put: impl FnOnce(&mut W, T)) {
    w.put_optional_tag(value.is_some());
    if let Some(v) = value {
        put(w, v);
    }
}

fn put_status<W: Writer>(w: &mut W, status: Status) {
    w.put_choice(match status {
        Status::Standby => 0,
        Status::Starting => 1,
        Status::Operational => 2,
        Status::Stopping => 3,
    });
}

fn put_timestamp<W: Writer>(w: &mut W, t: Timestamp) {
    w.put_integer(t.s);
    w.put_integer(t.us);
}

fn put_event_id<W: Writer>(w: &mut W, id: EventId) {
    w.put_integer(id.server);
    w.put_integer(id.session);
    w.put_integer(id.instance);
}

fn put_event_type<W: Writer>(w: &mut W, event_type: &[String]) {
    w.put_count(event_type.len());
    for segment in event_type {
        w.put_str(segment);
    }
}

fn put_event_types<W: Writer>(w: &mut W, types: &[EventType]) {
    w.put_count(types.len());
    for t in types {
        put_event_type(w, t);
    }
}

fn put_payload<W: Writer>(w: &mut W, payload: &Payload) {
    match payload {
        Payload::Binary { type_name, data } => {
            w.put_choice(0);
            w.put_str(type_name);
            w.put_bytes(data);
        }
        Payload::Json(text) => {
            w.put_choice(1);
            w.put_str(text.as_str());
        }
    }
}

fn put_event<W: Writer>(w: &mut W, event: &Event) {
    put_event_id(w, event.id);
    put_event_type(w, &event.event_type);
    put_timestamp(w, event.timestamp);
    put_optional(w, event.source_timestamp, put_timestamp);
    put_optional(w, event.payload.as_ref(), put_payload);
}

/// `MsgEventsNotify` of the events `events` yields, without an owned copy of them
/// (the server's notify of a stored batch, [`crate::connection::EncodedMsg::events_notify`]).
pub(crate) fn put_events_notify<'a, W: Writer>(
    w: &mut W,
    events: impl ExactSizeIterator<Item = &'a Event>,
) {
    w.put_count(events.len());
    for event in events {
        put_event(w, event);
    }
}

fn put_events<W: Writer>(w: &mut W, events: &[Event]) {
    w.put_count(events.len());
    for event in events {
        put_event(w, event);
    }
}

fn put_query_params<W: Writer>(w: &mut W, params: &QueryParams) {
    match params {
        QueryParams::Latest(p) => {
            w.put_choice(0);
            put_optional(w, p.event_types.as_deref(), put_event_types);
        }
        QueryParams::Timeseries(p) => {
            w.put_choice(1);
            put_optional(w, p.event_types.as_deref(), put_event_types);
            put_optional(w, p.t_from, put_timestamp);
            put_optional(w, p.t_to, put_timestamp);
            put_optional(w, p.source_t_from, put_timestamp);
            put_optional(w, p.source_t_to, put_timestamp);
            w.put_choice(match p.order {
                Order::Descending => 0,
                Order::Ascending => 1,
            });
            w.put_choice(match p.order_by {
                OrderBy::Timestamp => 0,
                OrderBy::SourceTimestamp => 1,
            });
            put_optional(w, p.max_results, |w, n| w.put_integer(n));
            put_optional(w, p.last_event_id, put_event_id);
        }
        QueryParams::Server(p) => {
            w.put_choice(2);
            w.put_integer(p.server_id);
            w.put_bool(p.persisted);
            put_optional(w, p.max_results, |w, n| w.put_integer(n));
            put_optional(w, p.last_event_id, put_event_id);
        }
    }
}

// ------------------------------------------------------------------ decoding --

/// Why a message failed to decode, before the type name is attached.
enum Fault {
    Sbs(SbsError),
    Json(InvalidJson),
}

impl From<SbsError> for Fault {
    fn from(err: SbsError) -> Self {
        Self::Sbs(err)
    }
}

type Decoded<T> = Result<T, Fault>;

fn read_message(name: &'static str, r: &mut Reader<'_>) -> Decoded<EventerMsg> {
    Ok(match name {
        MSG_INIT_REQ => EventerMsg::InitReq(InitReq {
            client_name: r.string()?,
            client_token: read_optional(r, Reader::string)?,
            subscriptions: read_event_types(r)?,
            server_id: read_optional(r, Reader::integer)?,
            persisted: r.boolean()?,
        }),
        MSG_INIT_RES => EventerMsg::InitRes(match r.choice(2, "MsgInitRes")? {
            0 => InitRes::Success(read_status(r)?),
            _ => InitRes::Error(r.string()?),
        }),
        MSG_STATUS_NOTIFY => EventerMsg::StatusNotify(read_status(r)?),
        MSG_EVENTS_NOTIFY => EventerMsg::EventsNotify(read_events(r)?),
        MSG_EVENTS_ACK => EventerMsg::EventsAck,
        MSG_REGISTER_REQ => {
            let (count, capacity) = r.array(MIN_REGISTER_EVENT_LEN)?;
            let mut events = Vec::with_capacity(capacity);
            for _ in 0..count {
                events.push(RegisterEvent {
                    event_type: read_event_type(r)?,
                    source_timestamp: read_optional(r, read_timestamp)?,
                    payload: read_optional_payload(r)?,
                });
            }
            EventerMsg::RegisterReq(events)
        }
        MSG_REGISTER_RES => EventerMsg::RegisterRes(match r.choice(2, "MsgRegisterRes")? {
            0 => RegisterRes::Events(read_events(r)?),
            _ => RegisterRes::Failure,
        }),
        MSG_QUERY_REQ => EventerMsg::QueryReq(read_query_params(r)?),
        _ => EventerMsg::QueryRes(QueryResult {
            events: read_events(r)?,
            more_follows: r.boolean()?,
        }),
    })
}

fn read_optional<'a, T>(
    r: &mut Reader<'a>,
    read: impl FnOnce(&mut Reader<'a>) -> Result<T, SbsError>,
) -> Result<Option<T>, SbsError> {
    if r.optional("Optional")? {
        read(r).map(Some)
    } else {
        Ok(None)
    }
}

fn read_status(r: &mut Reader<'_>) -> Result<Status, SbsError> {
    Ok(match r.choice(4, "Status")? {
        0 => Status::Standby,
        1 => Status::Starting,
        2 => Status::Operational,
        _ => Status::Stopping,
    })
}

fn read_timestamp(r: &mut Reader<'_>) -> Result<Timestamp, SbsError> {
    Ok(Timestamp {
        s: r.integer()?,
        us: r.integer()?,
    })
}

fn read_event_id(r: &mut Reader<'_>) -> Result<EventId, SbsError> {
    Ok(EventId {
        server: r.integer()?,
        session: r.integer()?,
        instance: r.integer()?,
    })
}

fn read_event_type(r: &mut Reader<'_>) -> Result<EventType, SbsError> {
    let (count, capacity) = r.array(MIN_COUNTED_LEN)?;
    let mut segments = Vec::with_capacity(capacity);
    for _ in 0..count {
        segments.push(r.string()?);
    }
    Ok(segments)
}

fn read_event_types(r: &mut Reader<'_>) -> Result<Vec<EventType>, SbsError> {
    let (count, capacity) = r.array(MIN_COUNTED_LEN)?;
    let mut types = Vec::with_capacity(capacity);
    for _ in 0..count {
        types.push(read_event_type(r)?);
    }
    Ok(types)
}

fn read_optional_payload(r: &mut Reader<'_>) -> Decoded<Option<Payload>> {
    if !r.optional("Optional")? {
        return Ok(None);
    }
    Ok(Some(match r.choice(2, "EventPayload")? {
        0 => Payload::Binary {
            type_name: r.string()?,
            data: r.bytes()?.to_vec(),
        },
        _ => Payload::Json(JsonText::new(r.string()?).map_err(Fault::Json)?),
    }))
}

fn read_events(r: &mut Reader<'_>) -> Decoded<Vec<Event>> {
    let (count, capacity) = r.array(MIN_EVENT_LEN)?;
    let mut events = Vec::with_capacity(capacity);
    for _ in 0..count {
        events.push(Event {
            id: read_event_id(r)?,
            event_type: read_event_type(r)?,
            timestamp: read_timestamp(r)?,
            source_timestamp: read_optional(r, read_timestamp)?,
            payload: read_optional_payload(r)?,
        });
    }
    Ok(events)
}

fn read_query_params(r: &mut Reader<'_>) -> Result<QueryParams, SbsError> {
    Ok(match r.choice(3, "QueryParams")? {
        0 => QueryParams::Latest(QueryLatestParams {
            event_types: read_optional(r, read_event_types)?,
        }),
        1 => QueryParams::Timeseries(QueryTimeseriesParams {
            event_types: read_optional(r, read_event_types)?,
            t_from: read_optional(r, read_timestamp)?,
            t_to: read_optional(r, read_timestamp)?,
            source_t_from: read_optional(r, read_timestamp)?,
            source_t_to: read_optional(r, read_timestamp)?,
            order: match r.choice(2, "Order")? {
                0 => Order::Descending,
                _ => Order::Ascending,
            },
            order_by: match r.choice(2, "OrderBy")? {
                0 => OrderBy::Timestamp,
                _ => OrderBy::SourceTimestamp,
            },
            max_results: read_optional(r, Reader::integer)?,
            last_event_id: read_optional(r, read_event_id)?,
        }),
        _ => QueryParams::Server(QueryServerParams {
            server_id: r.integer()?,
            persisted: r.boolean()?,
            max_results: read_optional(r, Reader::integer)?,
            last_event_id: read_optional(r, read_event_id)?,
        }),
    })
}

#[cfg(test)]
#[path = "message_tests.rs"]
mod tests;
