//! In-memory event storage with hat-event-server's id, timestamp and query
//! semantics (`docs/eventer-protocol.md` sections 6.6, 8.4 and 8.5).

use std::borrow::Borrow;
use std::collections::{HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use gateway_model::{
    query_type_matches, Event, EventId, EventType, Order, OrderBy, QueryLatestParams, QueryParams,
    QueryResult, QueryServerParams, QueryTimeseriesParams, RegisterEvent, Timestamp,
};

/// The most results one query returns (hat's LMDB default).
pub const MAX_QUERY_RESULTS: usize = 4096;

/// Default number of events kept for timeseries and server queries; older events are
/// forgotten (the latest event of every type is always kept).
pub const DEFAULT_RETAINED_EVENTS: usize = 1_000_000;

/// Events in registration order plus the latest event of each type.
///
/// Each event is stored once and shared by both indexes: with thousands of devices the
/// event types (one allocation per segment) dominated the gateway's memory when the
/// history, the latest map's keys and its values each held a copy.
#[derive(Debug)]
pub struct EventStore {
    server_id: i64,
    session: i64,
    retained: usize,
    events: VecDeque<Arc<Event>>,
    latest: HashSet<ByType>,
}

/// A stored event hashed and compared by its type, so the latest index needs no key
/// of its own and can be looked up with a plain `&[String]`.
#[derive(Debug, Clone)]
struct ByType(Arc<Event>);

impl PartialEq for ByType {
    fn eq(&self, other: &Self) -> bool {
        self.0.event_type == other.0.event_type
    }
}

impl Eq for ByType {}

impl Hash for ByType {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Must hash like `[String]` for the `Borrow` lookup below.
        self.0.event_type.as_slice().hash(state);
    }
}

impl Borrow<[String]> for ByType {
    fn borrow(&self) -> &[String] {
        &self.0.event_type
    }
}

impl EventStore {
    /// An empty store for `server_id`, keeping at most `retained` events.
    pub fn new(server_id: i64, retained: usize) -> Self {
        Self {
            server_id,
            session: 0,
            retained: retained.max(1),
            events: VecDeque::new(),
            latest: HashSet::new(),
        }
    }

    /// Registers one request as one session: ids `(server, session, 1..n)` in request
    /// order and one timestamp for all. An empty request consumes no session.
    pub fn register(&mut self, events: Vec<RegisterEvent>) -> Vec<Event> {
        if events.is_empty() {
            return Vec::new();
        }
        self.session += 1;
        let timestamp = Timestamp::now();
        let stored: Vec<Event> = events
            .into_iter()
            .zip(1..)
            .map(|(event, instance)| Event {
                id: EventId {
                    server: self.server_id,
                    session: self.session,
                    instance,
                },
                event_type: event.event_type,
                timestamp,
                source_timestamp: event.source_timestamp,
                payload: event.payload,
            })
            .collect();
        for event in &stored {
            let shared = Arc::new(event.clone());
            self.latest.replace(ByType(shared.clone()));
            if self.events.len() >= self.retained {
                self.events.pop_front();
            }
            self.events.push_back(shared);
        }
        stored
    }

    /// Answers a query.
    pub fn query(&self, params: &QueryParams) -> QueryResult {
        match params {
            QueryParams::Latest(params) => self.query_latest(params),
            QueryParams::Timeseries(params) => self.query_timeseries(params),
            QueryParams::Server(params) => self.query_server(params),
        }
    }

    fn query_latest(&self, params: &QueryLatestParams) -> QueryResult {
        let mut events: Vec<Event> = self
            .latest
            .iter()
            .map(|ByType(e)| e)
            .filter(|e| matches_any(params.event_types.as_deref(), &e.event_type))
            .map(|e| Event::clone(e))
            .collect();
        events.sort_by_key(|e| e.id);
        QueryResult {
            events,
            more_follows: false,
        }
    }

    fn query_timeseries(&self, params: &QueryTimeseriesParams) -> QueryResult {
        let in_range =
            |value: Option<Timestamp>, from: Option<Timestamp>, to: Option<Timestamp>| {
                if from.is_none() && to.is_none() {
                    return true;
                }
                // With a bound set, events without that timestamp are excluded.
                value.is_some_and(|v| from.is_none_or(|f| v >= f) && to.is_none_or(|t| v <= t))
            };
        let mut events: Vec<&Event> = self
            .events
            .iter()
            .map(|e| &**e)
            .filter(|e| matches_any(params.event_types.as_deref(), &e.event_type))
            .filter(|e| in_range(Some(e.timestamp), params.t_from, params.t_to))
            .filter(|e| in_range(e.source_timestamp, params.source_t_from, params.source_t_to))
            .collect();
        match params.order_by {
            OrderBy::Timestamp => events.sort_by_key(|e| (e.timestamp, e.id)),
            OrderBy::SourceTimestamp => events.sort_by_key(|e| (e.source_timestamp, e.id)),
        }
        if params.order == Order::Descending {
            events.reverse();
        }
        if let Some(last) = params.last_event_id {
            // Skip up to and including the cursor; unknown cursor = empty result.
            match events.iter().position(|e| e.id == last) {
                Some(pos) => {
                    events.drain(..=pos);
                }
                None => events.clear(),
            }
        }
        limit(events, params.max_results)
    }

    fn query_server(&self, params: &QueryServerParams) -> QueryResult {
        if params.server_id != self.server_id {
            return QueryResult::default();
        }
        let after = params.last_event_id.unwrap_or_default();
        let events: Vec<&Event> = self
            .events
            .iter()
            .map(|e| &**e)
            .filter(|e| e.id > after)
            .collect();
        limit(events, params.max_results)
    }
}

fn matches_any(query_types: Option<&[EventType]>, event_type: &[String]) -> bool {
    match query_types {
        None => true,
        Some(types) => types.iter().any(|q| query_type_matches(q, event_type)),
    }
}

fn limit(events: Vec<&Event>, max_results: Option<i64>) -> QueryResult {
    let cap = max_results
        .and_then(|m| usize::try_from(m).ok())
        .unwrap_or(MAX_QUERY_RESULTS)
        .min(MAX_QUERY_RESULTS);
    let more_follows = events.len() > cap;
    QueryResult {
        events: events.into_iter().take(cap).cloned().collect(),
        more_follows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_model::event_type_from_str as t;

    fn reg(ty: &str, v: i64) -> RegisterEvent {
        RegisterEvent::json(t(ty), serde_json::json!(v))
    }

    #[test]
    fn one_session_and_timestamp_per_request() {
        let mut store = EventStore::new(1, 10);
        let a = store.register(vec![reg("a", 1), reg("b", 2)]);
        let b = store.register(vec![reg("a", 3)]);
        assert_eq!(
            a[0].id,
            EventId {
                server: 1,
                session: 1,
                instance: 1
            }
        );
        assert_eq!(
            a[1].id,
            EventId {
                server: 1,
                session: 1,
                instance: 2
            }
        );
        assert_eq!(a[0].timestamp, a[1].timestamp);
        assert_eq!(b[0].id.session, 2);
        assert!(store.register(vec![]).is_empty());
        assert_eq!(store.register(vec![reg("c", 1)])[0].id.session, 3);
    }

    #[test]
    fn latest_keeps_newest_per_type() {
        let mut store = EventStore::new(1, 10);
        store.register(vec![reg("x/a", 1)]);
        store.register(vec![reg("x/a", 2), reg("x/b", 3), reg("y", 4)]);
        let result = store.query(&QueryParams::Latest(QueryLatestParams {
            event_types: Some(vec![t("x/*")]),
        }));
        let values: Vec<_> = result
            .events
            .iter()
            .map(|e| e.payload.as_ref().and_then(|p| p.json_value()))
            .collect();
        assert_eq!(
            values,
            vec![Some(serde_json::json!(2)), Some(serde_json::json!(3))]
        );
    }

    #[test]
    fn timeseries_orders_limits_and_pages() {
        let mut store = EventStore::new(1, 10);
        for i in 0..5 {
            store.register(vec![reg("a", i)]);
        }
        let params = QueryTimeseriesParams {
            order: Order::Ascending,
            max_results: Some(2),
            ..Default::default()
        };
        let first = store.query(&QueryParams::Timeseries(params.clone()));
        assert!(first.more_follows);
        assert_eq!(first.events.len(), 2);
        let next = store.query(&QueryParams::Timeseries(QueryTimeseriesParams {
            last_event_id: Some(first.events[1].id),
            ..params
        }));
        assert_eq!(next.events[0].id.session, 3);
    }

    #[test]
    fn server_query_and_retention() {
        let mut store = EventStore::new(7, 3);
        for i in 0..5 {
            store.register(vec![reg("a", i)]);
        }
        let result = store.query(&QueryParams::Server(QueryServerParams {
            server_id: 7,
            last_event_id: Some(EventId {
                server: 7,
                session: 3,
                instance: 1,
            }),
            ..Default::default()
        }));
        let sessions: Vec<_> = result.events.iter().map(|e| e.id.session).collect();
        assert_eq!(sessions, vec![4, 5]);
        let other = store.query(&QueryParams::Server(QueryServerParams {
            server_id: 1,
            ..Default::default()
        }));
        assert!(other.events.is_empty());
    }
}
