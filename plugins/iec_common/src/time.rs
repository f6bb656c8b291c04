//! Time tags to and from event source timestamps (hat's `time_to_source_timestamp` and
//! `time_from_source_timestamp`, built on hat-drivers' `time_to_datetime` and
//! `time_from_datetime`).
//!
//! hat reads and writes time tags in the process's local time zone (`time.localtime`,
//! naive datetimes with `fold = not summer_time`); so does this module, with the system
//! zone (`TZ`, else `/etc/localtime`; UTC when neither names a zone).

use std::sync::OnceLock;

use gateway_model::Timestamp;
use iec60870::types::{Time, TimeSize};
use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};

use crate::PayloadError;

/// The zone time tags are read and written in, looked up once per process (hat's
/// `time.localtime` likewise reads the zone once, at interpreter start).
fn local_zone() -> &'static TimeZone {
    static ZONE: OnceLock<TimeZone> = OnceLock::new();
    ZONE.get_or_init(TimeZone::system)
}

/// The instant of a time tag (hat's `time_to_datetime`). SEVEN is a full local date
/// (years below 70 are 20xx); TWO and THREE take the missing fields from the current
/// local time, moving by a minute or an hour to the nearest matching instant, as hat
/// does. FOUR is not supported (neither in hat).
pub fn time_to_timestamp(time: &Time) -> Result<Timestamp, PayloadError> {
    time_to_timestamp_at(time, jiff::Timestamp::now())
}

/// [`time_to_timestamp`] with `now` for the sizes that need it.
pub fn time_to_timestamp_at(time: &Time, now: jiff::Timestamp) -> Result<Timestamp, PayloadError> {
    let zone = local_zone();
    let bad = |_| PayloadError::Time("impossible date or time of day");
    let millis = i32::from(time.milliseconds);
    if millis > 59_999 {
        return Err(PayloadError::Time("milliseconds above 59999"));
    }
    let second = (millis / 1000) as i8;
    let nanos = (millis % 1000) * 1_000_000;
    let instant = match time.size {
        TimeSize::Seven => {
            let field = |v: Option<u8>| v.ok_or(PayloadError::Time("missing field of a CP56 time"));
            let years = i16::from(field(time.years)?);
            let year = if years < 70 {
                2000 + years
            } else {
                1900 + years
            };
            let civil = DateTime::new(
                year,
                to_i8(field(time.months)?)?,
                to_i8(field(time.day_of_month)?)?,
                to_i8(field(time.hours)?)?,
                to_i8(field(time.minutes)?)?,
                second,
                nanos,
            )
            .map_err(bad)?;
            // Python's `fold = not summer_time`: in a repeated hour fold 0 is the first
            // (summer) occurrence, fold 1 the second; in a skipped hour Python's
            // `timestamp()` maps fold 0 with the offset after the transition and fold 1
            // with the one before it.
            let fold = !time.summer_time.unwrap_or(false);
            let offset = match zone.to_ambiguous_timestamp(civil).offset() {
                AmbiguousOffset::Unambiguous { offset } => offset,
                AmbiguousOffset::Fold { before, after } => {
                    if fold {
                        after
                    } else {
                        before
                    }
                }
                AmbiguousOffset::Gap { before, after } => {
                    if fold {
                        before
                    } else {
                        after
                    }
                }
            };
            offset.to_timestamp(civil).map_err(bad)?
        }
        TimeSize::Two | TimeSize::Three => {
            let local_now = zone.to_offset_info(now).offset().to_datetime(now);
            let minute = match (time.size, time.minutes) {
                (TimeSize::Three, Some(m)) => to_i8(m)?,
                (TimeSize::Three, None) => return Err(PayloadError::Time("missing minutes")),
                _ => local_now.minute(),
            };
            let civil = local_now
                .with()
                .minute(minute)
                .second(second)
                .subsec_nanosecond(nanos)
                .build()
                .map_err(bad)?;
            let now_in_unit;
            let t_in_unit;
            let unit;
            let subsec_now = f64::from(local_now.subsec_nanosecond()) / 1e9;
            if time.size == TimeSize::Two {
                now_in_unit = f64::from(local_now.second()) + subsec_now;
                t_in_unit = f64::from(millis) / 1000.0;
                unit = jiff::SignedDuration::from_secs(60);
            } else {
                now_in_unit = f64::from(local_now.minute())
                    + (f64::from(local_now.second()) + subsec_now) / 60.0;
                t_in_unit = f64::from(minute) + f64::from(millis) / 60_000.0;
                unit = jiff::SignedDuration::from_secs(3600);
            }
            let civil = if (now_in_unit - t_in_unit).abs() > 30.0 {
                if now_in_unit < t_in_unit {
                    civil.checked_sub(unit).map_err(bad)?
                } else {
                    civil.checked_add(unit).map_err(bad)?
                }
            } else {
                civil
            };
            zone.to_timestamp(civil).map_err(bad)?
        }
        TimeSize::Four => return Err(PayloadError::Time("CP32 time is not supported")),
    };
    Ok(Timestamp::new(
        instant.as_second(),
        i64::from(instant.subsec_microsecond()),
    ))
}

fn to_i8(value: u8) -> Result<i8, PayloadError> {
    i8::try_from(value).map_err(|_| PayloadError::Time("field out of range"))
}

/// A SEVEN-size (CP56) time tag of `timestamp` in local time (hat's
/// `time_from_datetime`): rounded to the nearest millisecond (ties to even, as Python's
/// `round`), `invalid` and `substituted` false, `summer_time` from the zone.
pub fn time_from_timestamp(timestamp: Timestamp) -> Time {
    let zone = local_zone();
    let us = timestamp.us.rem_euclid(1_000_000);
    let s = timestamp
        .s
        .saturating_add(timestamp.us.div_euclid(1_000_000));
    let (whole_ms, rest_us) = (us / 1000, us % 1000);
    let ms = if rest_us > 500 || (rest_us == 500 && whole_ms % 2 == 1) {
        whole_ms + 1
    } else {
        whole_ms
    };
    let total_ms = i128::from(s) * 1000 + i128::from(ms);
    let instant = jiff::Timestamp::from_millisecond(i64::try_from(total_ms).unwrap_or(0))
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let info = zone.to_offset_info(instant);
    let civil = info.offset().to_datetime(instant);
    // The civil fields are in range by construction of `DateTime`.
    let u = |v: i8| v as u8;
    Time {
        size: TimeSize::Seven,
        milliseconds: (i32::from(civil.second()) * 1000 + i32::from(civil.millisecond())) as u16,
        invalid: Some(false),
        substituted: Some(false),
        minutes: Some(u(civil.minute())),
        summer_time: Some(info.dst().is_dst()),
        hours: Some(u(civil.hour())),
        day_of_week: Some(civil.weekday().to_monday_one_offset() as u8),
        day_of_month: Some(u(civil.day())),
        months: Some(u(civil.month())),
        years: Some(civil.year().rem_euclid(100) as u8),
    }
}

/// hat's `time_to_source_timestamp`: `None` stays `None`.
pub fn time_to_source_timestamp(time: Option<&Time>) -> Result<Option<Timestamp>, PayloadError> {
    time.map(time_to_timestamp).transpose()
}

/// hat's `time_from_source_timestamp`: `None` stays `None`.
pub fn time_from_source_timestamp(timestamp: Option<Timestamp>) -> Option<Time> {
    timestamp.map(time_from_timestamp)
}

/// The current time as a CP56 time tag (what hat's clock synchronisation sends).
pub fn time_now() -> Time {
    time_from_timestamp(Timestamp::now())
}
