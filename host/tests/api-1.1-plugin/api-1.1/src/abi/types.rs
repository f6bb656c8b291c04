//! FFI-safe mirrors of the hat-event data model and their conversions.
//!
//! Payloads cross as JSON text or bytes, exactly as on the wire; every other field is
//! a plain abi_stable value. Conversions take their input by value so buffers move
//! instead of being cloned (model -> FFI also has by-reference forms). FFI -> model
//! conversions of types that carry payloads either validate the JSON text
//! (`into_*`, for what the host receives from a plugin) or trust it
//! (`into_*_unchecked`, for what a plugin receives from the host).

use abi_stable::std_types::{ROption, RString, RVec};
use abi_stable::StableAbi;
use gateway_model::{
    Event, EventId, EventType, InvalidJson, JsonText, Order, OrderBy, Payload, QueryLatestParams,
    QueryParams, QueryResult, QueryServerParams, QueryTimeseriesParams, RegisterEvent, Timestamp,
};

/// An event type: its segments.
pub type FfiEventType = RVec<RString>;

/// [`Timestamp`] across the boundary.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub struct FfiTimestamp {
    /// Whole seconds since the epoch.
    pub s: i64,
    /// Microseconds.
    pub us: i64,
}

/// [`EventId`] across the boundary.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub struct FfiEventId {
    /// Server id.
    pub server: i64,
    /// Session.
    pub session: i64,
    /// Instance.
    pub instance: i64,
}

/// [`Payload`] across the boundary: JSON text or bytes.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub enum FfiPayload {
    /// Opaque bytes with an application-chosen type label.
    Binary {
        /// The label.
        type_name: RString,
        /// The bytes.
        data: RVec<u8>,
    },
    /// JSON text (validated by whoever built it).
    Json(RString),
}

/// [`Event`] across the boundary.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct FfiEvent {
    /// Assigned by the server.
    pub id: FfiEventId,
    /// Event type.
    pub event_type: FfiEventType,
    /// Server timestamp.
    pub timestamp: FfiTimestamp,
    /// Source timestamp.
    pub source_timestamp: ROption<FfiTimestamp>,
    /// Payload.
    pub payload: ROption<FfiPayload>,
}

/// [`RegisterEvent`] across the boundary.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct FfiRegisterEvent {
    /// Event type.
    pub event_type: FfiEventType,
    /// Source timestamp.
    pub source_timestamp: ROption<FfiTimestamp>,
    /// Payload.
    pub payload: ROption<FfiPayload>,
}

/// [`QueryParams`] across the boundary.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub enum FfiQueryParams {
    /// `latest`.
    Latest {
        /// Query types; `None` = all.
        event_types: ROption<RVec<FfiEventType>>,
    },
    /// `timeseries`.
    Timeseries {
        /// Query types; `None` = all.
        event_types: ROption<RVec<FfiEventType>>,
        /// Lower bound on `timestamp`.
        t_from: ROption<FfiTimestamp>,
        /// Upper bound on `timestamp`.
        t_to: ROption<FfiTimestamp>,
        /// Lower bound on `source_timestamp`.
        source_t_from: ROption<FfiTimestamp>,
        /// Upper bound on `source_timestamp`.
        source_t_to: ROption<FfiTimestamp>,
        /// `true` = ascending.
        ascending: bool,
        /// `true` = order by source timestamp.
        by_source_timestamp: bool,
        /// Result limit.
        max_results: ROption<i64>,
        /// Pagination cursor.
        last_event_id: ROption<FfiEventId>,
    },
    /// `server`.
    Server {
        /// Server id.
        server_id: i64,
        /// Only persisted events.
        persisted: bool,
        /// Result limit.
        max_results: ROption<i64>,
        /// Results after this event.
        last_event_id: ROption<FfiEventId>,
    },
}

/// [`QueryResult`] across the boundary.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct FfiQueryResult {
    /// Matching events.
    pub events: RVec<FfiEvent>,
    /// Cut off by the limit.
    pub more_follows: bool,
}

fn ffi_type(event_type: EventType) -> FfiEventType {
    // `RString::from(String)` keeps the string's buffer.
    event_type.into_iter().map(RString::from).collect()
}

fn ffi_type_ref(event_type: &[String]) -> FfiEventType {
    event_type
        .iter()
        .map(|s| RString::from(s.as_str()))
        .collect()
}

fn model_type(event_type: FfiEventType) -> EventType {
    // Keeps the buffer when it was allocated on this side of the boundary; otherwise
    // one copy into this side's allocator (never a copy and a clone).
    event_type.into_iter().map(RString::into_string).collect()
}

fn ffi_types(types: Option<Vec<EventType>>) -> ROption<RVec<FfiEventType>> {
    types
        .map(|types| types.into_iter().map(ffi_type).collect())
        .into()
}

fn model_types(types: ROption<RVec<FfiEventType>>) -> Option<Vec<EventType>> {
    types
        .into_option()
        .map(|types| types.into_iter().map(model_type).collect())
}

impl From<Timestamp> for FfiTimestamp {
    fn from(t: Timestamp) -> Self {
        Self { s: t.s, us: t.us }
    }
}

impl From<FfiTimestamp> for Timestamp {
    fn from(t: FfiTimestamp) -> Self {
        Self { s: t.s, us: t.us }
    }
}

impl From<EventId> for FfiEventId {
    fn from(id: EventId) -> Self {
        Self {
            server: id.server,
            session: id.session,
            instance: id.instance,
        }
    }
}

impl From<FfiEventId> for EventId {
    fn from(id: FfiEventId) -> Self {
        Self {
            server: id.server,
            session: id.session,
            instance: id.instance,
        }
    }
}

// Model -> FFI. The model side's JSON text is a `JsonText`, valid by construction, so
// nothing is checked; by value the buffers move across instead of being copied.

impl From<Payload> for FfiPayload {
    fn from(payload: Payload) -> Self {
        match payload {
            Payload::Binary { type_name, data } => Self::Binary {
                type_name: type_name.into(),
                data: data.into(),
            },
            Payload::Json(text) => Self::Json(text.into_string().into()),
        }
    }
}

impl From<&Payload> for FfiPayload {
    fn from(payload: &Payload) -> Self {
        match payload {
            Payload::Binary { type_name, data } => Self::Binary {
                type_name: type_name.as_str().into(),
                data: data.as_slice().into(),
            },
            Payload::Json(text) => Self::Json(text.as_str().into()),
        }
    }
}

impl From<Event> for FfiEvent {
    fn from(event: Event) -> Self {
        Self {
            id: event.id.into(),
            event_type: ffi_type(event.event_type),
            timestamp: event.timestamp.into(),
            source_timestamp: event.source_timestamp.map(FfiTimestamp::from).into(),
            payload: event.payload.map(FfiPayload::from).into(),
        }
    }
}

impl From<&Event> for FfiEvent {
    fn from(event: &Event) -> Self {
        Self {
            id: event.id.into(),
            event_type: ffi_type_ref(&event.event_type),
            timestamp: event.timestamp.into(),
            source_timestamp: event.source_timestamp.map(FfiTimestamp::from).into(),
            payload: event.payload.as_ref().map(FfiPayload::from).into(),
        }
    }
}

impl From<RegisterEvent> for FfiRegisterEvent {
    fn from(event: RegisterEvent) -> Self {
        Self {
            event_type: ffi_type(event.event_type),
            source_timestamp: event.source_timestamp.map(FfiTimestamp::from).into(),
            payload: event.payload.map(FfiPayload::from).into(),
        }
    }
}

impl From<&RegisterEvent> for FfiRegisterEvent {
    fn from(event: &RegisterEvent) -> Self {
        Self {
            event_type: ffi_type_ref(&event.event_type),
            source_timestamp: event.source_timestamp.map(FfiTimestamp::from).into(),
            payload: event.payload.as_ref().map(FfiPayload::from).into(),
        }
    }
}

impl From<QueryResult> for FfiQueryResult {
    fn from(result: QueryResult) -> Self {
        Self {
            events: result.events.into_iter().map(FfiEvent::from).collect(),
            more_follows: result.more_follows,
        }
    }
}

impl From<&QueryResult> for FfiQueryResult {
    fn from(result: &QueryResult) -> Self {
        Self {
            events: result.events.iter().map(FfiEvent::from).collect(),
            more_follows: result.more_follows,
        }
    }
}

// FFI -> model. JSON text that crossed the boundary is only as good as the side that
// built it, so each conversion comes in two forms:
// - `into_*` validates the text: for what the host receives from a plugin (a plugin
//   is third-party code and may hand over any bytes, e.g. through the raw ABI or
//   `JsonText::new_unchecked`; invalid text must never reach the event server);
// - `into_*_unchecked` trusts it: for what a plugin receives from the host, which
//   only builds JSON payloads from `JsonText` (validated when it entered the host).

impl FfiPayload {
    /// Into the model, validating JSON text (for a payload from an untrusted side).
    pub fn into_payload(self) -> Result<Payload, InvalidJson> {
        match self {
            Self::Json(text) => Ok(Payload::Json(JsonText::new(text.into_string())?)),
            binary => Ok(binary.into_payload_unchecked()),
        }
    }

    /// Into the model without validating JSON text: only for a payload the other
    /// side built from a [`JsonText`] and that side is trusted (the host).
    pub fn into_payload_unchecked(self) -> Payload {
        match self {
            Self::Binary { type_name, data } => Payload::Binary {
                type_name: type_name.into_string(),
                data: data.into_vec(),
            },
            Self::Json(text) => Payload::Json(JsonText::new_unchecked(text.into_string())),
        }
    }
}

impl FfiEvent {
    /// Into the model, validating a JSON payload.
    pub fn into_event(self) -> Result<Event, InvalidJson> {
        let payload = self
            .payload
            .into_option()
            .map(FfiPayload::into_payload)
            .transpose()?;
        Ok(Event {
            id: self.id.into(),
            event_type: model_type(self.event_type),
            timestamp: self.timestamp.into(),
            source_timestamp: self.source_timestamp.map(Timestamp::from).into_option(),
            payload,
        })
    }

    /// Into the model without validating a JSON payload (see
    /// [`FfiPayload::into_payload_unchecked`]).
    pub fn into_event_unchecked(self) -> Event {
        Event {
            id: self.id.into(),
            event_type: model_type(self.event_type),
            timestamp: self.timestamp.into(),
            source_timestamp: self.source_timestamp.map(Timestamp::from).into_option(),
            payload: self
                .payload
                .into_option()
                .map(FfiPayload::into_payload_unchecked),
        }
    }
}

impl FfiRegisterEvent {
    /// Into the model, validating a JSON payload.
    pub fn into_register_event(self) -> Result<RegisterEvent, InvalidJson> {
        let payload = self
            .payload
            .into_option()
            .map(FfiPayload::into_payload)
            .transpose()?;
        Ok(RegisterEvent {
            event_type: model_type(self.event_type),
            source_timestamp: self.source_timestamp.map(Timestamp::from).into_option(),
            payload,
        })
    }

    /// Into the model without validating a JSON payload (see
    /// [`FfiPayload::into_payload_unchecked`]).
    pub fn into_register_event_unchecked(self) -> RegisterEvent {
        RegisterEvent {
            event_type: model_type(self.event_type),
            source_timestamp: self.source_timestamp.map(Timestamp::from).into_option(),
            payload: self
                .payload
                .into_option()
                .map(FfiPayload::into_payload_unchecked),
        }
    }
}

impl FfiQueryResult {
    /// Into the model, validating JSON payloads.
    pub fn into_query_result(self) -> Result<QueryResult, InvalidJson> {
        Ok(QueryResult {
            events: self
                .events
                .into_iter()
                .map(FfiEvent::into_event)
                .collect::<Result<_, _>>()?,
            more_follows: self.more_follows,
        })
    }

    /// Into the model without validating JSON payloads (see
    /// [`FfiPayload::into_payload_unchecked`]).
    pub fn into_query_result_unchecked(self) -> QueryResult {
        QueryResult {
            events: self
                .events
                .into_iter()
                .map(FfiEvent::into_event_unchecked)
                .collect(),
            more_follows: self.more_follows,
        }
    }
}

impl From<QueryParams> for FfiQueryParams {
    fn from(params: QueryParams) -> Self {
        match params {
            QueryParams::Latest(p) => Self::Latest {
                event_types: ffi_types(p.event_types),
            },
            QueryParams::Timeseries(p) => Self::Timeseries {
                event_types: ffi_types(p.event_types),
                t_from: p.t_from.map(FfiTimestamp::from).into(),
                t_to: p.t_to.map(FfiTimestamp::from).into(),
                source_t_from: p.source_t_from.map(FfiTimestamp::from).into(),
                source_t_to: p.source_t_to.map(FfiTimestamp::from).into(),
                ascending: p.order == Order::Ascending,
                by_source_timestamp: p.order_by == OrderBy::SourceTimestamp,
                max_results: p.max_results.into(),
                last_event_id: p.last_event_id.map(FfiEventId::from).into(),
            },
            QueryParams::Server(p) => Self::Server {
                server_id: p.server_id,
                persisted: p.persisted,
                max_results: p.max_results.into(),
                last_event_id: p.last_event_id.map(FfiEventId::from).into(),
            },
        }
    }
}

impl From<FfiQueryParams> for QueryParams {
    fn from(params: FfiQueryParams) -> Self {
        match params {
            FfiQueryParams::Latest { event_types } => Self::Latest(QueryLatestParams {
                event_types: model_types(event_types),
            }),
            FfiQueryParams::Timeseries {
                event_types,
                t_from,
                t_to,
                source_t_from,
                source_t_to,
                ascending,
                by_source_timestamp,
                max_results,
                last_event_id,
            } => Self::Timeseries(QueryTimeseriesParams {
                event_types: model_types(event_types),
                t_from: t_from.map(Timestamp::from).into_option(),
                t_to: t_to.map(Timestamp::from).into_option(),
                source_t_from: source_t_from.map(Timestamp::from).into_option(),
                source_t_to: source_t_to.map(Timestamp::from).into_option(),
                order: if ascending {
                    Order::Ascending
                } else {
                    Order::Descending
                },
                order_by: if by_source_timestamp {
                    OrderBy::SourceTimestamp
                } else {
                    OrderBy::Timestamp
                },
                max_results: max_results.into_option(),
                last_event_id: last_event_id.map(EventId::from).into_option(),
            }),
            FfiQueryParams::Server {
                server_id,
                persisted,
                max_results,
                last_event_id,
            } => Self::Server(QueryServerParams {
                server_id,
                persisted,
                max_results: max_results.into_option(),
                last_event_id: last_event_id.map(EventId::from).into_option(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_event() -> Event {
        Event {
            id: EventId {
                server: 1,
                session: 2,
                instance: 3,
            },
            event_type: vec!["a".into(), "b".into()],
            timestamp: Timestamp::new(10, 20),
            source_timestamp: Some(Timestamp::new(5, 6)),
            payload: Some(Payload::Binary {
                type_name: "t".into(),
                data: vec![1, 2, 3],
            }),
        }
    }

    #[test]
    fn event_round_trips() {
        let event = sample_event();
        assert_eq!(FfiEvent::from(&event), FfiEvent::from(event.clone()));
        assert_eq!(FfiEvent::from(event.clone()).into_event().unwrap(), event);
        let json = Event {
            payload: Some(Payload::json(serde_json::json!({"value": 1}))),
            source_timestamp: None,
            ..event
        };
        assert_eq!(FfiEvent::from(json.clone()).into_event().unwrap(), json);
        assert_eq!(FfiEvent::from(json.clone()).into_event_unchecked(), json);
    }

    #[test]
    fn register_event_round_trips() {
        let event = RegisterEvent::json(vec!["x".into()], serde_json::json!([1, "a"]));
        assert_eq!(
            FfiRegisterEvent::from(&event),
            FfiRegisterEvent::from(event.clone())
        );
        assert_eq!(
            FfiRegisterEvent::from(event.clone())
                .into_register_event()
                .unwrap(),
            event
        );
        assert_eq!(
            FfiRegisterEvent::from(event.clone()).into_register_event_unchecked(),
            event
        );
    }

    #[test]
    fn invalid_json_text_is_refused_by_the_checked_conversions() {
        let bad = || FfiPayload::Json("{\"value\": ".into());
        assert!(bad().into_payload().is_err());
        let register = FfiRegisterEvent {
            event_type: vec![RString::from("x")].into(),
            source_timestamp: ROption::RNone,
            payload: ROption::RSome(bad()),
        };
        assert!(register.into_register_event().is_err());
        let event = FfiEvent {
            payload: ROption::RSome(bad()),
            ..FfiEvent::from(sample_event())
        };
        assert!(event.clone().into_event().is_err());
        let result = FfiQueryResult {
            events: vec![event].into(),
            more_follows: false,
        };
        assert!(result.into_query_result().is_err());
        // Binary payloads carry no text to check.
        let binary = FfiPayload::Binary {
            type_name: "t".into(),
            data: vec![0xff].into(),
        };
        assert!(binary.into_payload().is_ok());
    }

    #[test]
    fn query_params_round_trip() {
        let all = [
            QueryParams::Latest(QueryLatestParams {
                event_types: Some(vec![vec!["a".into(), "*".into()]]),
            }),
            QueryParams::Latest(QueryLatestParams { event_types: None }),
            QueryParams::Timeseries(QueryTimeseriesParams {
                event_types: None,
                t_from: Some(Timestamp::new(1, 0)),
                t_to: None,
                source_t_from: None,
                source_t_to: Some(Timestamp::new(2, 0)),
                order: Order::Ascending,
                order_by: OrderBy::SourceTimestamp,
                max_results: Some(7),
                last_event_id: Some(EventId::default()),
            }),
            QueryParams::Server(QueryServerParams {
                server_id: 4,
                persisted: true,
                max_results: None,
                last_event_id: None,
            }),
        ];
        for params in all {
            assert_eq!(
                QueryParams::from(FfiQueryParams::from(params.clone())),
                params
            );
        }
    }

    #[test]
    fn query_result_round_trips() {
        let result = QueryResult {
            events: vec![sample_event()],
            more_follows: true,
        };
        assert_eq!(
            FfiQueryResult::from(&result),
            FfiQueryResult::from(result.clone())
        );
        assert_eq!(
            FfiQueryResult::from(result.clone())
                .into_query_result()
                .unwrap(),
            result
        );
        assert_eq!(
            FfiQueryResult::from(result.clone()).into_query_result_unchecked(),
            result
        );
    }
}
