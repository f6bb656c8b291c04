//! Subscriptions: sets of query types with `?` (any one segment) and a final `*`
//! (any number of further segments, including none).

use crate::EventType;

/// A query type had `*` somewhere other than the last segment.
///
/// The message is hat's own (`MsgInitRes error "invalid query event type"`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid query event type")]
pub struct InvalidQueryType;

/// A validated set of query types. An empty subscription matches nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscription {
    query_types: Vec<EventType>,
}

impl Subscription {
    /// Validates the query types (`*` only as the last segment).
    pub fn new(query_types: Vec<EventType>) -> Result<Self, InvalidQueryType> {
        for query_type in &query_types {
            if let Some(pos) = query_type.iter().position(|s| s == "*") {
                if pos + 1 != query_type.len() {
                    return Err(InvalidQueryType);
                }
            }
        }
        Ok(Self { query_types })
    }

    /// The query types as given.
    pub fn query_types(&self) -> &[EventType] {
        &self.query_types
    }

    /// True when `event_type` matches any of the query types.
    pub fn matches(&self, event_type: &[String]) -> bool {
        self.query_types
            .iter()
            .any(|q| query_type_matches(q, event_type))
    }
}

/// True when one query type matches an event type (hat's `matches_query_type`).
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
    }
}
