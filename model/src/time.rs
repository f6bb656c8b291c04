//! Event timestamps: whole seconds and microseconds since the Unix epoch.

use std::time::{SystemTime, UNIX_EPOCH};

/// `(s, us)` since 1970-01-01 UTC, ordered lexicographically.
///
/// Both fields are kept as received (`i64`) so that any frame re-encodes byte for
/// byte; values built here always have `0 <= us < 1_000_000`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    /// Whole seconds, signed (negative before 1970).
    pub s: i64,
    /// Microseconds, normally `0..1_000_000`.
    pub us: i64,
}

impl Timestamp {
    /// Builds a timestamp, carrying whole seconds out of `us` so that `0 <= us < 1e6`.
    pub fn new(s: i64, us: i64) -> Self {
        Self {
            s: s.saturating_add(us.div_euclid(1_000_000)),
            us: us.rem_euclid(1_000_000),
        }
    }

    /// The wall clock now.
    pub fn now() -> Self {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => Self::new(d.as_secs() as i64, i64::from(d.subsec_micros())),
            Err(before) => {
                let d = before.duration();
                Self::new(-(d.as_secs() as i64), -i64::from(d.subsec_micros()))
            }
        }
    }

    /// Seconds as a float, as hat's `timestamp_to_float`.
    pub fn to_f64(self) -> f64 {
        self.s as f64 + self.us as f64 * 1e-6
    }

    /// From float seconds, rounded to the nearest microsecond; negative values are
    /// floored so that `us` stays non-negative (hat's `timestamp_from_float`).
    pub fn from_f64(t: f64) -> Self {
        let s = t.floor();
        let us = ((t - s) * 1e6).round() as i64;
        Self::new(s as i64, us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_normalises_microseconds() {
        assert_eq!(Timestamp::new(1, 2_000_000), Timestamp { s: 3, us: 0 });
        assert_eq!(Timestamp::new(0, -1), Timestamp { s: -1, us: 999_999 });
    }

    #[test]
    fn float_round_trip() {
        let t = Timestamp::new(1_700_000_000, 123_456);
        assert_eq!(Timestamp::from_f64(t.to_f64()), t);
        assert_eq!(Timestamp::from_f64(-1.5), Timestamp { s: -2, us: 500_000 });
    }
}
