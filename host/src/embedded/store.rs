//! In-memory event storage with hat-event-server's id, timestamp and query
//! semantics (`docs/eventer-protocol.md` sections 6.6, 8.4 and 8.5).

use std::collections::{HashMap, VecDeque};
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

/// Default [`EventStore::max_event_types`]: distinct event types (the latest index) at
/// most; a request that would add more is refused.
pub const DEFAULT_MAX_EVENT_TYPES: usize = 100_000;

/// Default bytes (estimated, see [`event_size`]) of the retained history; older events
/// are forgotten past it, as past [`DEFAULT_RETAINED_EVENTS`].
pub const DEFAULT_RETAINED_BYTES: usize = 256 * 1024 * 1024;

/// Default bytes (estimated) of the latest index (one event per type); a request that
/// would take it past this is refused.
pub const DEFAULT_MAX_LATEST_BYTES: usize = 256 * 1024 * 1024;

/// Bookkeeping bytes counted per stored event besides its type and payload.
const EVENT_OVERHEAD: usize = 160;

/// Estimated memory of one stored event: type segments, payload and bookkeeping.
pub fn event_size(event: &Event) -> usize {
    let segments: usize = event.event_type.iter().map(|s| s.len() + 24).sum();
    let payload = match &event.payload {
        None => 0,
        Some(gateway_model::Payload::Json(text)) => text.as_str().len(),
        Some(gateway_model::Payload::Binary { type_name, data }) => type_name.len() + data.len(),
    };
    EVENT_OVERHEAD + segments + payload
}

/// Why [`EventStore::check_limits`] refuses a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreLimit {
    /// More distinct event types than `max_event_types`.
    #[error("the request would store more than max_event_types = {limit} distinct event types")]
    EventTypes {
        /// The limit.
        limit: usize,
    },
    /// The latest index would hold more than `max_latest_bytes`.
    #[error("the request would take the latest events past max_latest_bytes = {limit} bytes")]
    LatestBytes {
        /// The limit.
        limit: usize,
    },
}

/// The store's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// Events kept for timeseries / server queries.
    pub retained_events: usize,
    /// Estimated bytes kept for timeseries / server queries.
    pub retained_bytes: usize,
    /// Distinct event types at most.
    pub max_event_types: usize,
    /// Estimated bytes of the latest index at most.
    pub max_latest_bytes: usize,
    /// Seconds an event is kept for timeseries / server queries (by its `timestamp`);
    /// `None`: no age limit.
    pub retained_seconds: Option<u64>,
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self {
            retained_events: DEFAULT_RETAINED_EVENTS,
            retained_bytes: DEFAULT_RETAINED_BYTES,
            max_event_types: DEFAULT_MAX_EVENT_TYPES,
            max_latest_bytes: DEFAULT_MAX_LATEST_BYTES,
            retained_seconds: None,
        }
    }
}

/// Events in registration order plus the latest event of each type.
///
/// Each event is stored once and shared by both indexes: with thousands of devices the
/// event types (one allocation per segment) dominated the gateway's memory when the
/// history, the latest map's keys and its values each held a copy. The latest index is
/// a trie over the type's segments, so a latest query with `?` and `*` visits only the
/// branches its query types can match (the start-up query for
/// `gateway/<name>/?/?/system/enable` visits one node per device, not every type).
#[derive(Debug)]
pub struct EventStore {
    server_id: i64,
    session: i64,
    retained: usize,
    limits: StoreLimits,
    events: VecDeque<Arc<Event>>,
    /// Estimated bytes of `events`.
    events_bytes: usize,
    latest: LatestNode,
    /// Distinct types in `latest`.
    latest_types: usize,
    /// Estimated bytes of `latest`.
    latest_bytes: usize,
    /// Number of the next type stored for the first time ([`LatestNode::order`]).
    next_type_order: u64,
    /// New types of requests given their ids but not stored yet (the file store's
    /// commits), with the number of such requests: [`EventStore::check_limits`]
    /// counts them, so concurrent requests cannot take the store past
    /// `max_event_types` together.
    pending_types: HashMap<EventType, usize>,
}

/// One node of the latest index: the latest event of the type ending here, and the
/// types that continue with one more segment.
#[derive(Debug, Default)]
struct LatestNode {
    event: Option<Arc<Event>>,
    /// When the type ending here was first stored (latest queries answer in this
    /// order, as hat's LMDB backend answers in its dict's insertion order).
    order: u64,
    children: Children,
}

/// Children of a node with at most this many are kept in a list, more in a hash map.
/// Most nodes of a gateway's types have one to a few children (a device's `gateway`
/// and `system`, a point's one data type), where an empty-hashed map costs about 400
/// bytes; a device type with 100,000 devices needs the map.
const SMALL_CHILDREN: usize = 8;

/// The children of a [`LatestNode`] by their segment.
#[derive(Debug)]
enum Children {
    /// At most [`SMALL_CHILDREN`], in insertion order, searched one by one.
    Small(Vec<(Box<str>, LatestNode)>),
    /// Boxed so that every node's `Children` is the size of a `Vec`: most are small.
    /// foldhash, not SipHash: every register walks this trie once per segment of each
    /// event's type, twice (limit check and store), and SipHash of the short segments
    /// was a tenth of the server's CPU per event (issue 12).
    #[allow(clippy::box_collection)]
    Large(Box<foldhash::HashMap<Box<str>, LatestNode>>),
}

impl Default for Children {
    fn default() -> Self {
        Self::Small(Vec::new())
    }
}

impl Children {
    fn get(&self, segment: &str) -> Option<&LatestNode> {
        match self {
            Self::Small(list) => list.iter().find(|(s, _)| &**s == segment).map(|(_, n)| n),
            Self::Large(map) => map.get(segment),
        }
    }

    /// The child for `segment`, added empty when missing (`None` never happens).
    fn get_or_add(&mut self, segment: &str) -> Option<&mut LatestNode> {
        if let Self::Small(list) = self {
            if list.len() >= SMALL_CHILDREN && !list.iter().any(|(s, _)| &**s == segment) {
                let map: foldhash::HashMap<Box<str>, LatestNode> =
                    std::mem::take(list).into_iter().collect();
                *self = Self::Large(Box::new(map));
            }
        }
        match self {
            Self::Small(list) => {
                let i = match list.iter().position(|(s, _)| &**s == segment) {
                    Some(i) => i,
                    None => {
                        list.push((segment.into(), LatestNode::default()));
                        list.len() - 1
                    }
                };
                list.get_mut(i).map(|(_, n)| n)
            }
            Self::Large(map) => {
                // `entry` would allocate the key even when the child exists.
                if !map.contains_key(segment) {
                    map.insert(segment.into(), LatestNode::default());
                }
                map.get_mut(segment)
            }
        }
    }

    fn values(&self) -> impl Iterator<Item = &LatestNode> {
        let (small, large) = match self {
            Self::Small(list) => (Some(list.iter().map(|(_, n)| n)), None),
            Self::Large(map) => (None, Some(map.values())),
        };
        small
            .into_iter()
            .flatten()
            .chain(large.into_iter().flatten())
    }
}

impl LatestNode {
    fn get(&self, event_type: &[String]) -> Option<&Arc<Event>> {
        let mut node = self;
        for segment in event_type {
            node = node.children.get(segment)?;
        }
        node.event.as_ref()
    }

    /// Replaces the latest event of its type; returns the one it replaced. A type
    /// stored for the first time gets `order`.
    fn replace(&mut self, event: Arc<Event>, order: u64) -> Option<Arc<Event>> {
        let mut node = self;
        for segment in &event.event_type {
            // Added when missing.
            node = node.children.get_or_add(segment)?;
        }
        if node.event.is_none() {
            node.order = order;
        }
        node.event.replace(event)
    }

    /// Every latest event whose type matches `query_type`, with its type's order.
    fn collect<'a>(&'a self, query_type: &[String], out: &mut Vec<(u64, &'a Arc<Event>)>) {
        match query_type.split_first() {
            None => out.extend(self.event.as_ref().map(|e| (self.order, e))),
            Some((first, _)) if first == "*" => self.collect_all(out),
            Some((first, rest)) if first == "?" => {
                for child in self.children.values() {
                    child.collect(rest, out);
                }
            }
            Some((first, rest)) => {
                if let Some(child) = self.children.get(first) {
                    child.collect(rest, out);
                }
            }
        }
    }

    fn collect_all<'a>(&'a self, out: &mut Vec<(u64, &'a Arc<Event>)>) {
        out.extend(self.event.as_ref().map(|e| (self.order, e)));
        for child in self.children.values() {
            child.collect_all(out);
        }
    }
}

impl EventStore {
    /// An empty store for `server_id`, keeping at most `retained` events.
    pub fn new(server_id: i64, retained: usize) -> Self {
        Self::with_limits(
            server_id,
            StoreLimits {
                retained_events: retained,
                ..StoreLimits::default()
            },
        )
    }

    /// An empty store for `server_id` with `limits`.
    pub fn with_limits(server_id: i64, limits: StoreLimits) -> Self {
        Self {
            server_id,
            session: 0,
            retained: limits.retained_events.max(1),
            limits,
            events: VecDeque::new(),
            events_bytes: 0,
            latest: LatestNode::default(),
            latest_types: 0,
            latest_bytes: 0,
            next_type_order: 0,
            pending_types: HashMap::new(),
        }
    }

    /// Distinct event types stored (the latest index).
    pub fn event_types(&self) -> usize {
        self.latest_types
    }

    /// Events retained for timeseries / server queries.
    pub fn retained(&self) -> usize {
        self.events.len()
    }

    /// Checks that storing `events` keeps the latest index within
    /// [`StoreLimits::max_event_types`] and [`StoreLimits::max_latest_bytes`] (the
    /// history is trimmed instead, never refused).
    pub fn check_limits(&self, events: &[RegisterEvent]) -> Result<(), StoreLimit> {
        let mut new_types: std::collections::HashSet<&[String]> = std::collections::HashSet::new();
        let mut added_bytes = 0usize;
        for event in events {
            let size = EVENT_OVERHEAD
                + event.event_type.iter().map(|s| s.len() + 24).sum::<usize>()
                + event.payload.as_ref().map_or(0, payload_len);
            added_bytes = added_bytes.saturating_add(size);
            if self.latest.get(&event.event_type).is_none()
                && !self.pending_types.contains_key(&event.event_type)
            {
                new_types.insert(&event.event_type);
            }
        }
        if self.latest_types + self.pending_types.len() + new_types.len()
            > self.limits.max_event_types
        {
            return Err(StoreLimit::EventTypes {
                limit: self.limits.max_event_types,
            });
        }
        if self.latest_bytes.saturating_add(added_bytes) > self.limits.max_latest_bytes {
            return Err(StoreLimit::LatestBytes {
                limit: self.limits.max_latest_bytes,
            });
        }
        Ok(())
    }

    /// Registers one request as one session: ids `(server, session, 1..n)` in request
    /// order and one timestamp for all. An empty request consumes no session.
    pub fn register(&mut self, events: Vec<RegisterEvent>) -> Vec<Event> {
        let stored = self.allocate(events);
        self.insert(&stored);
        stored
    }

    /// [`EventStore::register`] whose events are shared with the store (history and
    /// latest index) instead of copied: what the embedded server notifies.
    pub fn register_shared(&mut self, events: Vec<RegisterEvent>) -> Vec<Arc<Event>> {
        let stored: Vec<Arc<Event>> = self.allocate(events).into_iter().map(Arc::new).collect();
        self.insert_shared(&stored);
        stored
    }

    /// Gives one request its session, ids and timestamp without storing it (the
    /// persistent store stores it once it is committed, [`EventStore::insert`]). An
    /// empty request consumes no session.
    pub fn allocate(&mut self, events: Vec<RegisterEvent>) -> Vec<Event> {
        if events.is_empty() {
            return Vec::new();
        }
        self.session += 1;
        let timestamp = Timestamp::now();
        events
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
            .collect()
    }

    /// Counts the new types of `events` (allocated, not stored yet) against
    /// `max_event_types` until [`EventStore::release`] is given what this returns.
    pub fn reserve(&mut self, events: &[Event]) -> Vec<EventType> {
        let mut reserved: Vec<EventType> = Vec::new();
        for event in events {
            if self.latest.get(&event.event_type).is_none() && !reserved.contains(&event.event_type)
            {
                reserved.push(event.event_type.clone());
            }
        }
        for event_type in &reserved {
            *self.pending_types.entry(event_type.clone()).or_insert(0) += 1;
        }
        reserved
    }

    /// Ends a [`EventStore::reserve`] (its request was stored, or failed).
    pub fn release(&mut self, reserved: &[EventType]) {
        for event_type in reserved {
            if let Some(count) = self.pending_types.get_mut(event_type) {
                *count -= 1;
                if *count == 0 {
                    self.pending_types.remove(event_type);
                }
            }
        }
    }

    /// Stores events that have their ids (from [`EventStore::allocate`], or read back
    /// from a file) as the newest: the latest index and the history, which is trimmed
    /// to the limits.
    pub fn insert(&mut self, stored: &[Event]) {
        let shared: Vec<Arc<Event>> = stored.iter().cloned().map(Arc::new).collect();
        self.insert_shared(&shared);
    }

    /// [`EventStore::insert`] of shared events: the store keeps a handle of each, no
    /// copy (every copy of an event is one allocation per type segment and payload).
    pub fn insert_shared(&mut self, stored: &[Arc<Event>]) {
        for shared in stored {
            let event: &Event = shared;
            let shared = shared.clone();
            let size = event_size(event);
            self.set_latest(shared.clone(), size);
            self.session = self.session.max(event.id.session);
            self.events.push_back(shared);
            self.events_bytes += size;
            while self.events.len() > self.retained
                || (self.events_bytes > self.limits.retained_bytes && self.events.len() > 1)
            {
                match self.events.pop_front() {
                    Some(old) => {
                        self.events_bytes = self.events_bytes.saturating_sub(event_size(&old));
                    }
                    None => break,
                }
            }
        }
        if let Some(newest) = stored.last() {
            self.trim_age(newest.timestamp);
        }
    }

    fn set_latest(&mut self, event: Arc<Event>, size: usize) {
        match self.latest.replace(event, self.next_type_order) {
            Some(old) => {
                self.latest_bytes = self.latest_bytes.saturating_sub(event_size(&old));
            }
            None => {
                self.latest_types += 1;
                self.next_type_order += 1;
            }
        }
        self.latest_bytes += size;
    }

    /// Stores an event read back from a file as the latest of its type only (it is
    /// older than the retained history).
    pub fn restore_latest(&mut self, event: Event) {
        let size = event_size(&event);
        self.session = self.session.max(event.id.session);
        if let Some(current) = self.latest.get(&event.event_type) {
            if current.id >= event.id {
                return;
            }
        }
        self.set_latest(Arc::new(event), size);
    }

    /// The next session is after `session` at least (ids continue after a restart).
    pub fn continue_after(&mut self, session: i64) {
        self.session = self.session.max(session);
    }

    /// The last session given out.
    pub fn session(&self) -> i64 {
        self.session
    }

    /// Forgets the history older than [`StoreLimits::retained_seconds`] before `now`
    /// (the latest event of every type stays). Returns how many events went.
    pub fn trim_age(&mut self, now: Timestamp) -> usize {
        let Some(seconds) = self.limits.retained_seconds else {
            return 0;
        };
        let limit = Timestamp::new(
            now.s
                .saturating_sub(i64::try_from(seconds).unwrap_or(i64::MAX)),
            now.us,
        );
        let mut removed = 0;
        while self.events.front().is_some_and(|e| e.timestamp < limit) {
            if let Some(old) = self.events.pop_front() {
                self.events_bytes = self.events_bytes.saturating_sub(event_size(&old));
                removed += 1;
            }
        }
        removed
    }

    /// The id of the oldest event of the history (`None`: empty).
    pub fn oldest_retained(&self) -> Option<EventId> {
        self.events.front().map(|e| e.id)
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
        let mut found: Vec<(u64, &Arc<Event>)> = Vec::new();
        match params.event_types.as_deref() {
            None => self.latest.collect_all(&mut found),
            Some(types) => {
                for query_type in types {
                    self.latest.collect(query_type, &mut found);
                }
            }
        }
        // hat's order: the type's first registration (its dict's insertion order).
        found.sort_by_key(|(order, _)| *order);
        // Query types that overlap find one event more than once.
        found.dedup_by_key(|(order, _)| *order);
        let events: Vec<Event> = found.into_iter().map(|(_, e)| Event::clone(e)).collect();
        QueryResult {
            events,
            more_follows: false,
        }
    }

    /// hat's LMDB order of work: the events in the range of the order-by timestamp
    /// (`t_from`/`t_to`, or `source_t_from`/`source_t_to` and only events that have
    /// one), sorted by it and the id; then everything up to and including
    /// `last_event_id` is skipped, whatever the other filters say (a cursor outside
    /// that range: nothing); then the event types and the other timestamp's range
    /// filter; then `max_results`.
    fn query_timeseries(&self, params: &QueryTimeseriesParams) -> QueryResult {
        let within = |v: Timestamp, from: Option<Timestamp>, to: Option<Timestamp>| {
            from.is_none_or(|f| v >= f) && to.is_none_or(|t| v <= t)
        };
        // With a bound set, events without that timestamp are excluded.
        let in_range =
            |value: Option<Timestamp>, from: Option<Timestamp>, to: Option<Timestamp>| {
                (from.is_none() && to.is_none()) || value.is_some_and(|v| within(v, from, to))
            };
        let (mut events, other): (Vec<(Timestamp, &Event)>, _) = match params.order_by {
            OrderBy::Timestamp => (
                self.events
                    .iter()
                    .filter(|e| within(e.timestamp, params.t_from, params.t_to))
                    .map(|e| (e.timestamp, &**e))
                    .collect(),
                (params.source_t_from, params.source_t_to),
            ),
            OrderBy::SourceTimestamp => (
                self.events
                    .iter()
                    .filter_map(|e| Some((e.source_timestamp?, &**e)))
                    .filter(|(t, _)| within(*t, params.source_t_from, params.source_t_to))
                    .collect(),
                (params.t_from, params.t_to),
            ),
        };
        events.sort_by_key(|(t, e)| (*t, e.id));
        if params.order == Order::Descending {
            events.reverse();
        }
        let mut events: &[(Timestamp, &Event)] = &events;
        if let Some(last) = params.last_event_id {
            // Skip up to and including the cursor; unknown cursor = empty result.
            events = match events.iter().position(|(_, e)| e.id == last) {
                Some(pos) => &events[pos + 1..],
                None => &[],
            };
        }
        let events: Vec<&Event> = events
            .iter()
            .map(|(_, e)| *e)
            .filter(|e| matches_any(params.event_types.as_deref(), &e.event_type))
            .filter(|e| match params.order_by {
                OrderBy::Timestamp => in_range(e.source_timestamp, other.0, other.1),
                OrderBy::SourceTimestamp => in_range(Some(e.timestamp), other.0, other.1),
            })
            .collect();
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

fn payload_len(payload: &gateway_model::Payload) -> usize {
    match payload {
        gateway_model::Payload::Json(text) => text.as_str().len(),
        gateway_model::Payload::Binary { type_name, data } => type_name.len() + data.len(),
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

    /// The latest index keeps a node's few children in a list and switches to a map
    /// past `SMALL_CHILDREN`: lookups, replacements, `?` and `*` hold across the switch.
    #[test]
    fn latest_index_small_and_large_nodes() {
        let mut store = EventStore::new(1, 1_000);
        let n = SMALL_CHILDREN * 3;
        for round in 0..2 {
            for i in 0..n {
                store.register(vec![
                    reg(&format!("g/d{i}/running"), round * 100 + i as i64),
                    reg(&format!("g/d{i}/enable"), -1),
                ]);
            }
        }
        assert_eq!(store.event_types(), 2 * n);
        assert!(matches!(
            store.latest.children.get("g").map(|g| &g.children),
            Some(Children::Large(_))
        ));
        let latest = |query: &str| -> Vec<i64> {
            store
                .query(&QueryParams::Latest(QueryLatestParams {
                    event_types: Some(vec![t(query)]),
                }))
                .events
                .iter()
                .filter_map(|e| e.payload.as_ref()?.json_value()?.as_i64())
                .collect()
        };
        // First-registration order of the types, newest value of each.
        let expected: Vec<i64> = (0..n as i64).map(|i| 100 + i).collect();
        assert_eq!(latest("g/?/running"), expected);
        assert_eq!(latest("g/d3/running"), vec![103]);
        assert_eq!(latest("g/*").len(), 2 * n);
        assert!(latest("g/d999/running").is_empty());
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

    fn values(result: &QueryResult) -> Vec<i64> {
        result
            .events
            .iter()
            .map(|e| e.payload.as_ref().and_then(|p| p.json_value()))
            .map(|v| v.and_then(|v| v.as_i64()).unwrap_or(-1))
            .collect()
    }

    #[test]
    fn latest_answers_in_first_registration_order_of_the_types() {
        let mut store = EventStore::new(1, 10);
        store.register(vec![reg("x/b", 1), reg("x/a", 2)]);
        store.register(vec![reg("x/c", 3)]);
        store.register(vec![reg("x/b", 4)]);
        let result = store.query(&QueryParams::Latest(QueryLatestParams {
            event_types: Some(vec![t("x/*")]),
        }));
        // Not by id (that would be 2, 3, 4).
        assert_eq!(values(&result), vec![4, 2, 3]);
    }

    #[test]
    fn timeseries_cursor_is_skipped_to_before_the_type_filter() {
        let mut store = EventStore::new(1, 10);
        store.register(vec![reg("a", 1)]);
        let other = store.register(vec![reg("b", 2)]);
        store.register(vec![reg("a", 3)]);
        let result = store.query(&QueryParams::Timeseries(QueryTimeseriesParams {
            event_types: Some(vec![t("a")]),
            order: Order::Ascending,
            last_event_id: Some(other[0].id),
            ..Default::default()
        }));
        assert_eq!(values(&result), vec![3]);
    }

    #[test]
    fn new_event_types_past_the_limit_are_refused_known_ones_accepted() {
        let mut store = EventStore::with_limits(
            1,
            StoreLimits {
                max_event_types: 2,
                ..StoreLimits::default()
            },
        );
        store.register(vec![reg("a", 1), reg("b", 2)]);
        assert_eq!(
            store.check_limits(&[reg("c", 3)]),
            Err(StoreLimit::EventTypes { limit: 2 })
        );
        assert_eq!(store.check_limits(&[reg("a", 3), reg("b", 4)]), Ok(()));
        assert_eq!(store.event_types(), 2);
    }

    #[test]
    fn latest_bytes_past_the_limit_are_refused() {
        let store = EventStore::with_limits(
            1,
            StoreLimits {
                max_latest_bytes: 1000,
                ..StoreLimits::default()
            },
        );
        let big = RegisterEvent::json(t("a"), serde_json::json!("x".repeat(2000)));
        assert_eq!(
            store.check_limits(&[big]),
            Err(StoreLimit::LatestBytes { limit: 1000 })
        );
    }

    #[test]
    fn history_is_trimmed_to_retained_bytes() {
        let mut store = EventStore::with_limits(
            1,
            StoreLimits {
                retained_bytes: 10_000,
                ..StoreLimits::default()
            },
        );
        for i in 0..1000 {
            store.register(vec![reg("a", i)]);
        }
        let per_event = event_size(
            &store
                .query(&QueryParams::Latest(QueryLatestParams {
                    event_types: None,
                }))
                .events[0],
        );
        assert!(
            store.retained() <= 10_000 / per_event,
            "{}",
            store.retained()
        );
        assert!(store.retained() >= 10_000 / per_event - 1);
        assert_eq!(store.event_types(), 1);
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
