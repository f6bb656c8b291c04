//! FFI-safe mirrors of the hat-event data model and their conversions.
//!
//! Payloads cross as JSON text or bytes, exactly as on the wire; every other field is
//! a plain abi_stable value. The conversions are infallible in both directions.

use abi_stable::std_types::{ROption, RString, RVec};
use abi_stable::StableAbi;
use gateway_model::{
    Event, EventId, EventType, JsonText, Order, OrderBy, Payload, QueryLatestParams, QueryParams,
    QueryResult, QueryServerParams, QueryTimeseriesParams, RegisterEvent, Timestamp,
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

fn ffi_type(event_type: &[String]) -> FfiEventType {
    event_type
        .iter()
        .map(|s| RString::from(s.as_str()))
        .collect()
}

fn model_type(event_type: &FfiEventType) -> EventType {
    event_type.iter().map(|s| s.as_str().to_owned()).collect()
}

fn ffi_types(types: &Option<Vec<EventType>>) -> ROption<RVec<FfiEventType>> {
    types
        .as_ref()
        .map(|types| types.iter().map(|t| ffi_type(t)).collect())
        .into()
}

fn model_types(types: &ROption<RVec<FfiEventType>>) -> Option<Vec<EventType>> {
    types
        .as_ref()
        .into_option()
        .map(|types| types.iter().map(model_type).collect())
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

impl From<&FfiPayload> for Payload {
    fn from(payload: &FfiPayload) -> Self {
        match payload {
            FfiPayload::Binary { type_name, data } => Self::Binary {
                type_name: type_name.as_str().to_owned(),
                data: data.to_vec(),
            },
            // Both sides only ever build this variant from validated JSON text
            // (`JsonText`), so the text is not parsed again here.
            FfiPayload::Json(text) => Self::Json(JsonText::new_unchecked(text.as_str().to_owned())),
        }
    }
}

impl From<&Event> for FfiEvent {
    fn from(event: &Event) -> Self {
        Self {
            id: event.id.into(),
            event_type: ffi_type(&event.event_type),
            timestamp: event.timestamp.into(),
            source_timestamp: event.source_timestamp.map(FfiTimestamp::from).into(),
            payload: event.payload.as_ref().map(FfiPayload::from).into(),
        }
    }
}

impl From<&FfiEvent> for Event {
    fn from(event: &FfiEvent) -> Self {
        Self {
            id: event.id.into(),
            event_type: model_type(&event.event_type),
            timestamp: event.timestamp.into(),
            source_timestamp: event.source_timestamp.map(Timestamp::from).into_option(),
            payload: event.payload.as_ref().map(Payload::from).into_option(),
        }
    }
}

impl From<&RegisterEvent> for FfiRegisterEvent {
    fn from(event: &RegisterEvent) -> Self {
        Self {
            event_type: ffi_type(&event.event_type),
            source_timestamp: event.source_timestamp.map(FfiTimestamp::from).into(),
            payload: event.payload.as_ref().map(FfiPayload::from).into(),
        }
    }
}

impl From<&FfiRegisterEvent> for RegisterEvent {
    fn from(event: &FfiRegisterEvent) -> Self {
        Self {
            event_type: model_type(&event.event_type),
            source_timestamp: event.source_timestamp.map(Timestamp::from).into_option(),
            payload: event.payload.as_ref().map(Payload::from).into_option(),
        }
    }
}

impl From<&QueryParams> for FfiQueryParams {
    fn from(params: &QueryParams) -> Self {
        match params {
            QueryParams::Latest(p) => Self::Latest {
                event_types: ffi_types(&p.event_types),
            },
            QueryParams::Timeseries(p) => Self::Timeseries {
                event_types: ffi_types(&p.event_types),
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

impl From<&FfiQueryParams> for QueryParams {
    fn from(params: &FfiQueryParams) -> Self {
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
                order: if *ascending {
                    Order::Ascending
                } else {
                    Order::Descending
                },
                order_by: if *by_source_timestamp {
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
                server_id: *server_id,
                persisted: *persisted,
                max_results: max_results.into_option(),
                last_event_id: last_event_id.map(EventId::from).into_option(),
            }),
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

impl From<&FfiQueryResult> for QueryResult {
    fn from(result: &FfiQueryResult) -> Self {
        Self {
            events: result.events.iter().map(Event::from).collect(),
            more_follows: result.more_follows,
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
        assert_eq!(Event::from(&FfiEvent::from(&event)), event);
        let json = Event {
            payload: Some(Payload::json(serde_json::json!({"value": 1}))),
            source_timestamp: None,
            ..event
        };
        assert_eq!(Event::from(&FfiEvent::from(&json)), json);
    }

    #[test]
    fn register_event_round_trips() {
        let event = RegisterEvent::json(vec!["x".into()], serde_json::json!([1, "a"]));
        assert_eq!(RegisterEvent::from(&FfiRegisterEvent::from(&event)), event);
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
            assert_eq!(QueryParams::from(&FfiQueryParams::from(&params)), params);
        }
    }

    #[test]
    fn query_result_round_trips() {
        let result = QueryResult {
            events: vec![sample_event()],
            more_follows: true,
        };
        assert_eq!(QueryResult::from(&FfiQueryResult::from(&result)), result);
    }
}
