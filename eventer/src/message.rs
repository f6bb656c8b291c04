//! The `HatEventer.Msg*` messages and their SBS encoding (the content of chatter
//! `Data.data`). Pure byte code.

use gateway_model::{Event, QueryParams, QueryResult, RegisterEvent, Status};

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
        todo!("issue 2: eventer messages")
    }

    /// Appends the SBS encoding of this message to `dst`.
    pub fn encode(&self, dst: &mut Vec<u8>) {
        let _ = dst;
        todo!("issue 2: eventer messages")
    }

    /// Decodes the SBS bytes of the message named `type_name`.
    pub fn decode(type_name: &str, data: &[u8]) -> Result<Self, MessageError> {
        let _ = (type_name, data);
        todo!("issue 2: eventer messages")
    }
}
