//! Subscriptions: sets of query types with `?` (any one segment) and a final `*`
//! (any number of further segments, including none).
//!
//! Matching is done by a trie over the query types' segments ([`SubscriptionTrie`], as
//! hat-event does): an event type walks down the branch of its own segment and the `?`
//! branch at each level, so the cost of one match depends on the event type's length
//! and the wildcards on its path, not on how many query types there are. A gateway with
//! 100,000 devices used to compare every event type against every pattern.

/// The trie's branches by segment. foldhash instead of std's SipHash: an event type
/// is hashed once per segment at every match, and SipHash of those short strings was
/// about a tenth of the embedded server's CPU per event (issue 12). Its seeds are
/// random per process, like std's.
type HashMap<K, V> = foldhash::HashMap<K, V>;
use std::ops::ControlFlow;

use crate::EventType;

/// A query type had `*` somewhere other than the last segment.
///
/// The message is hat's own (`MsgInitRes error "invalid query event type"`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid query event type")]
pub struct InvalidQueryType;

/// Checks hat's rule for query types: `*` only as the last segment.
pub fn validate_query_type(query_type: &[String]) -> Result<(), InvalidQueryType> {
    match query_type.iter().position(|s| s == "*") {
        Some(pos) if pos + 1 != query_type.len() => Err(InvalidQueryType),
        _ => Ok(()),
    }
}

/// A validated set of query types. An empty subscription matches nothing.
///
/// Backed by a [`SubscriptionTrie`]: [`Subscription::matches`] costs the same for one
/// query type as for 100,000. Two subscriptions are equal when their query types are
/// equal, in order.
#[derive(Debug, Clone, Default)]
pub struct Subscription {
    query_types: Vec<EventType>,
    trie: SubscriptionTrie<()>,
}

impl PartialEq for Subscription {
    fn eq(&self, other: &Self) -> bool {
        self.query_types == other.query_types
    }
}

impl Eq for Subscription {}

impl Subscription {
    /// Validates the query types (`*` only as the last segment).
    pub fn new(query_types: Vec<EventType>) -> Result<Self, InvalidQueryType> {
        let mut trie = SubscriptionTrie::new();
        for query_type in &query_types {
            trie.insert(query_type, ())?;
        }
        Ok(Self { query_types, trie })
    }

    /// The query types as given.
    pub fn query_types(&self) -> &[EventType] {
        &self.query_types
    }

    /// True when `event_type` matches any of the query types.
    pub fn matches(&self, event_type: &[String]) -> bool {
        self.trie.matches(event_type)
    }

    /// The trie nodes one [`Subscription::matches`] of `event_type` visits: the work of a
    /// match, for tests and diagnostics (it does not grow with the number of query types).
    pub fn match_cost(&self, event_type: &[String]) -> usize {
        self.trie.match_cost(event_type)
    }
}

/// Query types mapped to values (e.g. subscribers), looked up by event type.
///
/// A value is stored once per query type it was inserted with; the same query type may
/// hold several values. [`SubscriptionTrie::for_each_match`] visits, for one event type,
/// only the trie branches that can match it: at each segment the branch of that exact
/// segment and the `?` branch, plus the `*` ends met on the way. The cost is bounded by
/// the event type's length and the wildcards in the stored query types, never by their
/// number.
#[derive(Debug, Clone)]
pub struct SubscriptionTrie<V> {
    root: Node<V>,
    len: usize,
}

#[derive(Debug, Clone)]
struct Node<V> {
    /// Values of query types that end at this node.
    exact: Vec<V>,
    /// Values of query types that end with `*` right after this node.
    rest: Vec<V>,
    /// The `?` branch.
    any: Option<Box<Node<V>>>,
    /// Branches of literal segments.
    children: HashMap<String, Node<V>>,
}

impl<V> Default for Node<V> {
    fn default() -> Self {
        Self {
            exact: Vec::new(),
            rest: Vec::new(),
            any: None,
            children: HashMap::default(),
        }
    }
}

impl<V> Node<V> {
    fn is_empty(&self) -> bool {
        self.exact.is_empty()
            && self.rest.is_empty()
            && self.any.is_none()
            && self.children.is_empty()
    }

    fn walk<'a, F>(
        &'a self,
        event_type: &[String],
        visits: &mut usize,
        f: &mut F,
    ) -> ControlFlow<()>
    where
        F: FnMut(&'a V) -> ControlFlow<()>,
    {
        *visits += 1;
        for value in &self.rest {
            f(value)?;
        }
        match event_type.split_first() {
            None => {
                for value in &self.exact {
                    f(value)?;
                }
            }
            Some((segment, rest)) => {
                if let Some(child) = self.children.get(segment) {
                    child.walk(rest, visits, f)?;
                }
                if let Some(any) = &self.any {
                    any.walk(rest, visits, f)?;
                }
            }
        }
        ControlFlow::Continue(())
    }

    /// Removes one value equal to `value` stored under `query_type`; prunes nodes left
    /// empty.
    fn remove(&mut self, query_type: &[String], value: &V) -> bool
    where
        V: PartialEq,
    {
        fn take<V: PartialEq>(values: &mut Vec<V>, value: &V) -> bool {
            match values.iter().position(|v| v == value) {
                Some(pos) => {
                    values.swap_remove(pos);
                    true
                }
                None => false,
            }
        }
        match query_type.split_first() {
            None => take(&mut self.exact, value),
            Some((first, [])) if first == "*" => take(&mut self.rest, value),
            Some((first, rest)) if first == "?" => {
                let Some(any) = &mut self.any else {
                    return false;
                };
                let removed = any.remove(rest, value);
                if any.is_empty() {
                    self.any = None;
                }
                removed
            }
            Some((first, rest)) => {
                let Some(child) = self.children.get_mut(first) else {
                    return false;
                };
                let removed = child.remove(rest, value);
                if child.is_empty() {
                    self.children.remove(first);
                }
                removed
            }
        }
    }
}

impl<V> Default for SubscriptionTrie<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> SubscriptionTrie<V> {
    /// An empty trie: matches nothing.
    pub fn new() -> Self {
        Self {
            root: Node::default(),
            len: 0,
        }
    }

    /// Number of (query type, value) entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing was inserted (or everything was removed).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Stores `value` under `query_type`, after checking it (`*` only last). Cost: one
    /// step per segment.
    pub fn insert(&mut self, query_type: &[String], value: V) -> Result<(), InvalidQueryType> {
        validate_query_type(query_type)?;
        let mut node = &mut self.root;
        for segment in query_type {
            node = match segment.as_str() {
                "*" => {
                    // Validated above: `*` is the last segment.
                    node.rest.push(value);
                    self.len += 1;
                    return Ok(());
                }
                "?" => node.any.get_or_insert_with(Box::default),
                _ => node.children.entry(segment.clone()).or_default(),
            };
        }
        node.exact.push(value);
        self.len += 1;
        Ok(())
    }

    /// Removes one entry of `value` under exactly `query_type` (the text it was inserted
    /// with); false when there was none.
    pub fn remove(&mut self, query_type: &[String], value: &V) -> bool
    where
        V: PartialEq,
    {
        let removed = self.root.remove(query_type, value);
        if removed {
            self.len -= 1;
        }
        removed
    }

    /// True when `event_type` matches any stored query type. Stops at the first match.
    pub fn matches(&self, event_type: &[String]) -> bool {
        let mut visits = 0;
        self.root
            .walk(event_type, &mut visits, &mut |_| ControlFlow::Break(()))
            .is_break()
    }

    /// Calls `f` with the value of every entry whose query type matches `event_type`,
    /// in no particular order; a value stored under two matching query types is seen
    /// twice.
    pub fn for_each_match<'a>(&'a self, event_type: &[String], mut f: impl FnMut(&'a V)) {
        let mut visits = 0;
        let _ = self.root.walk(event_type, &mut visits, &mut |value| {
            f(value);
            ControlFlow::Continue(())
        });
    }

    /// The values [`SubscriptionTrie::for_each_match`] would visit, collected.
    pub fn matching(&self, event_type: &[String]) -> Vec<&V> {
        let mut out = Vec::new();
        self.for_each_match(event_type, |value| out.push(value));
        out
    }

    /// The trie nodes a full walk for `event_type` visits (what
    /// [`SubscriptionTrie::for_each_match`] costs, before calling `f`): for tests and
    /// diagnostics. It does not grow with the number of stored query types.
    pub fn match_cost(&self, event_type: &[String]) -> usize {
        let mut visits = 0;
        let _ = self
            .root
            .walk(event_type, &mut visits, &mut |_| ControlFlow::Continue(()));
        visits
    }
}

/// True when one query type matches an event type (hat's `matches_query_type`).
///
/// Compares one pattern; to match against many, build a [`Subscription`] or a
/// [`SubscriptionTrie`] once.
pub fn query_type_matches(query_type: &[String], event_type: &[String]) -> bool {
    let (prefix, open_ended) = match query_type.split_last() {
        Some((last, prefix)) if last == "*" => (prefix, true),
        _ => (query_type, false),
    };
    if open_ended {
        if event_type.len() < prefix.len() {
            return false;
        }
    } else if event_type.len() != prefix.len() {
        return false;
    }
    prefix
        .iter()
        .zip(event_type)
        .all(|(q, e)| q == "?" || q == e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> EventType {
        crate::event_type_from_str(text)
    }

    #[test]
    fn star_matches_everything_including_empty() {
        let s = Subscription::new(vec![t("*")]).unwrap();
        assert!(s.matches(&[]));
        assert!(s.matches(&t("a/b")));
    }

    #[test]
    fn star_only_last() {
        assert_eq!(Subscription::new(vec![t("*/a")]), Err(InvalidQueryType));
        let mut trie = SubscriptionTrie::new();
        assert_eq!(trie.insert(&t("a/*/b"), 1), Err(InvalidQueryType));
        assert!(trie.is_empty());
    }

    #[test]
    fn question_mark_is_one_segment() {
        let s = Subscription::new(vec![t("?")]).unwrap();
        assert!(s.matches(&t("x")));
        assert!(!s.matches(&[]));
        assert!(!s.matches(&t("x/y")));
    }

    #[test]
    fn empty_subscription_matches_nothing() {
        assert!(!Subscription::default().matches(&[]));
        assert!(!Subscription::default().matches(&t("a")));
    }

    #[test]
    fn star_after_prefix_matches_the_prefix_itself() {
        let s = Subscription::new(vec![t("a/*")]).unwrap();
        assert!(s.matches(&t("a")));
        assert!(s.matches(&t("a/b/c")));
        assert!(!s.matches(&t("b")));
        assert!(!s.matches(&[]));
    }

    #[test]
    fn trie_returns_every_matching_value() {
        let mut trie = SubscriptionTrie::new();
        trie.insert(&t("gateway/gw/?/?/system/*"), "system")
            .unwrap();
        trie.insert(&t("gateway/gw/sim/s1/system/enable"), "s1")
            .unwrap();
        trie.insert(&t("gateway/gw/sim/s2/system/enable"), "s2")
            .unwrap();
        trie.insert(&t("*"), "all").unwrap();
        trie.insert(&t("*"), "all").unwrap();
        assert_eq!(trie.len(), 5);
        let mut got = trie.matching(&t("gateway/gw/sim/s1/system/enable"));
        got.sort();
        assert_eq!(got, vec![&"all", &"all", &"s1", &"system"]);
        assert_eq!(trie.matching(&t("other")), vec![&"all", &"all"]);
    }

    #[test]
    fn remove_takes_one_entry_and_prunes() {
        let mut trie = SubscriptionTrie::new();
        trie.insert(&t("a/?/c"), 1).unwrap();
        trie.insert(&t("a/?/c"), 2).unwrap();
        trie.insert(&t("a/*"), 3).unwrap();
        assert!(
            !trie.remove(&t("a/b/c"), &1),
            "removal is by the inserted text"
        );
        assert!(trie.remove(&t("a/?/c"), &1));
        assert!(!trie.remove(&t("a/?/c"), &1));
        assert_eq!(trie.matching(&t("a/x/c")), vec![&3, &2]);
        assert!(trie.remove(&t("a/?/c"), &2));
        assert!(trie.remove(&t("a/*"), &3));
        assert!(trie.is_empty());
        assert!(trie.root.is_empty(), "empty branches are pruned");
        assert!(!trie.matches(&t("a/x/c")));
    }

    /// A small deterministic generator (xorshift64*): no extra crate for the random
    /// comparisons below, and a failure reproduces.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn event_type(&mut self, alphabet: &[&str], max_len: usize) -> EventType {
            let len = self.below(max_len + 1);
            (0..len)
                .map(|_| alphabet[self.below(alphabet.len())].to_owned())
                .collect()
        }

        fn query_type(&mut self, max_len: usize) -> EventType {
            let mut query = self.event_type(&["a", "b", "c", "?", "?", ""], max_len);
            if self.below(3) == 0 {
                query.push("*".to_owned());
            }
            query
        }
    }

    /// Every event type of up to `max_len` segments over `alphabet`.
    fn all_types(alphabet: &[&str], max_len: usize) -> Vec<EventType> {
        let mut out = vec![Vec::new()];
        let mut level = vec![Vec::new()];
        for _ in 0..max_len {
            let mut next = Vec::new();
            for prefix in &level {
                for segment in alphabet {
                    let mut t: EventType = prefix.clone();
                    t.push((*segment).to_owned());
                    next.push(t);
                }
            }
            out.extend(next.iter().cloned());
            level = next;
        }
        out
    }

    #[test]
    fn exhaustive_single_patterns_agree_with_query_type_matches() {
        // Every query type of up to 3 segments over {a, b, ?} with and without a final
        // `*`, against every event type of up to 4 segments over {a, b, ?, *} (event
        // types may hold the wildcard characters literally).
        let mut queries = all_types(&["a", "b", "?"], 3);
        let open: Vec<EventType> = queries
            .iter()
            .map(|q| {
                let mut q = q.clone();
                q.push("*".to_owned());
                q
            })
            .collect();
        queries.extend(open);
        let events = all_types(&["a", "b", "?", "*"], 4);
        for query in &queries {
            let s = Subscription::new(vec![query.clone()]).unwrap();
            for event in &events {
                assert_eq!(
                    s.matches(event),
                    query_type_matches(query, event),
                    "query {query:?} event {event:?}"
                );
            }
        }
    }

    #[test]
    fn random_pattern_sets_agree_with_a_scan() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..300 {
            let count = rng.below(40);
            let queries: Vec<EventType> = (0..count).map(|_| rng.query_type(5)).collect();
            let s = Subscription::new(queries.clone()).unwrap();
            let mut trie = SubscriptionTrie::new();
            for (i, q) in queries.iter().enumerate() {
                trie.insert(q, i).unwrap();
            }
            for _ in 0..200 {
                let event = rng.event_type(&["a", "b", "c", "d", "", "?"], 6);
                let scan = queries.iter().any(|q| query_type_matches(q, &event));
                assert_eq!(s.matches(&event), scan, "{queries:?} {event:?}");
                let mut got: Vec<usize> = trie.matching(&event).into_iter().copied().collect();
                got.sort_unstable();
                let want: Vec<usize> = (0..count)
                    .filter(|&i| query_type_matches(&queries[i], &event))
                    .collect();
                assert_eq!(got, want, "{queries:?} {event:?}");
            }
        }
    }

    /// The fault issue 12 measured: the start-up enable query's patterns are one per
    /// device, and the cost of matching one event type must not grow with them.
    #[test]
    fn match_cost_does_not_grow_with_the_number_of_patterns() {
        fn enable_patterns(devices: usize) -> Vec<EventType> {
            let mut patterns = vec![t("gateway/gw/?/?/system/*")];
            patterns.extend((0..devices).map(|i| t(&format!("gateway/gw/sim/d{i}/system/enable"))));
            patterns
        }
        let event = t("gateway/gw/sim/d7/system/enable");
        let miss = t("gateway/gw/sim/d7/gateway/running");
        let small = Subscription::new(enable_patterns(10)).unwrap();
        let large = Subscription::new(enable_patterns(10_000)).unwrap();
        assert!(small.matches(&event) && large.matches(&event));
        assert!(!small.matches(&miss) && !large.matches(&miss));
        assert_eq!(small.match_cost(&event), large.match_cost(&event));
        assert_eq!(small.match_cost(&miss), large.match_cost(&miss));
        // One node per segment on the literal path and on the `?` path, at most.
        assert!(large.match_cost(&event) <= 2 * (event.len() + 1));
    }
}
