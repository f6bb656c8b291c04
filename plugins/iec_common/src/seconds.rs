//! Durations in seconds as hat's configurations give them (JSON numbers), the check
//! every IEC device configuration applies to them and their conversion.

use std::time::Duration;

/// The largest number of seconds a configuration may give: bounded well below what
/// `Instant + Duration` can hold (about 31 years).
pub const MAX_SECONDS: f64 = 1e9;

/// Checks a configured number of seconds: finite, between 0 and [`MAX_SECONDS`].
pub fn check_seconds(value: f64) -> Result<(), &'static str> {
    if value.is_finite() && (0.0..=MAX_SECONDS).contains(&value) {
        Ok(())
    } else {
        Err("must be a number of seconds between 0 and 1e9")
    }
}

/// Seconds (already validated) as a duration; out-of-range values saturate.
pub fn secs(value: f64) -> Duration {
    Duration::try_from_secs_f64(value).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_seconds_takes_zero_to_max_and_refuses_the_rest() {
        assert_eq!(check_seconds(0.0), Ok(()));
        assert_eq!(check_seconds(MAX_SECONDS), Ok(()));
        for bad in [-0.5, MAX_SECONDS * 2.0, f64::NAN, f64::INFINITY] {
            assert!(check_seconds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secs_converts_and_saturates() {
        assert_eq!(secs(1.5), Duration::from_millis(1500));
        assert_eq!(secs(f64::INFINITY), Duration::MAX);
        assert_eq!(secs(-1.0), Duration::MAX);
    }
}
