//! Time tags CP16/CP24/CP32/CP56 (hat's `Time` and `TimeSize`) and conversion of CP56
//! to and from [`SystemTime`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Size of a time tag in octets (hat's `TimeSize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeSize {
    /// CP16: milliseconds only.
    Two,
    /// CP24: milliseconds and minutes.
    Three,
    /// CP32: up to hours.
    Four,
    /// CP56: full date.
    Seven,
}

impl TimeSize {
    /// The size in octets.
    pub const fn octets(self) -> usize {
        match self {
            Self::Two => 2,
            Self::Three => 3,
            Self::Four => 4,
            Self::Seven => 7,
        }
    }
}

/// A time tag (hat's `Time`). The optional fields are present exactly for the sizes
/// hat documents: `invalid`, `substituted`, `minutes` from THREE; `summer_time`, `hours`
/// from FOUR; `day_of_week`, `day_of_month`, `months`, `years` for SEVEN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Time {
    /// Size of the tag.
    pub size: TimeSize,
    /// Milliseconds within the minute, 0 to 59999.
    pub milliseconds: u16,
    /// IV bit (THREE, FOUR, SEVEN).
    pub invalid: Option<bool>,
    /// Bit 6 of the minutes octet (RES1 in the standard, `substituted` in hat; THREE,
    /// FOUR, SEVEN).
    pub substituted: Option<bool>,
    /// Minutes, 0 to 59 (THREE, FOUR, SEVEN).
    pub minutes: Option<u8>,
    /// SU: summer time (FOUR, SEVEN).
    pub summer_time: Option<bool>,
    /// Hours, 0 to 23 (FOUR, SEVEN).
    pub hours: Option<u8>,
    /// Day of week, 1 (Monday) to 7, 0 when not used (SEVEN).
    pub day_of_week: Option<u8>,
    /// Day of month, 1 to 31 (SEVEN).
    pub day_of_month: Option<u8>,
    /// Month, 1 to 12 (SEVEN).
    pub months: Option<u8>,
    /// Year within the century, 0 to 99 (SEVEN).
    pub years: Option<u8>,
}

const MILLIS_PER_DAY: u64 = 86_400_000;

impl Time {
    /// A SEVEN-size time of `time` in UTC, rounded to the nearest millisecond, `invalid`
    /// and `substituted` false, `summer_time` false.
    ///
    /// Hat's `time_from_datetime` uses the local time zone of the process; this uses UTC
    /// (a gateway's tests and deployments run in UTC). A time before 1970 is taken as
    /// 1970-01-01T00:00:00Z. The year is kept modulo 100, as CP56 does.
    pub fn from_system_time(time: SystemTime) -> Time {
        let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        let millis =
            since_epoch.as_secs() * 1000 + u64::from((since_epoch.subsec_micros() + 500) / 1000);
        let days = millis / MILLIS_PER_DAY;
        let millis_of_day = millis % MILLIS_PER_DAY;
        let (year, month, day) = civil_from_days(days);
        // 1970-01-01 was a Thursday (4 with Monday as 1).
        let day_of_week = ((days + 3) % 7 + 1) as u8;
        Time {
            size: TimeSize::Seven,
            milliseconds: (millis_of_day % 60_000) as u16,
            invalid: Some(false),
            substituted: Some(false),
            minutes: Some((millis_of_day / 60_000 % 60) as u8),
            summer_time: Some(false),
            hours: Some((millis_of_day / 3_600_000) as u8),
            day_of_week: Some(day_of_week),
            day_of_month: Some(day),
            months: Some(month),
            years: Some((year % 100) as u8),
        }
    }

    /// The instant of a SEVEN-size time read as UTC (years below 70 are 20xx, others 19xx,
    /// as hat reads them). `None` for other sizes, a missing field or an impossible date
    /// or time of day. `summer_time` and `day_of_week` are not used.
    pub fn to_system_time(&self) -> Option<SystemTime> {
        if self.size != TimeSize::Seven {
            return None;
        }
        let years = self.years?;
        let months = self.months?;
        let day = self.day_of_month?;
        let hours = self.hours?;
        let minutes = self.minutes?;
        if years > 99
            || !(1..=12).contains(&months)
            || day < 1
            || hours > 23
            || minutes > 59
            || self.milliseconds > 59_999
        {
            return None;
        }
        let year = if years < 70 {
            2000 + u64::from(years)
        } else {
            1900 + u64::from(years)
        };
        if day > days_in_month(year, months) {
            return None;
        }
        let days = days_from_civil(year, months, day);
        let millis = days * MILLIS_PER_DAY
            + u64::from(hours) * 3_600_000
            + u64::from(minutes) * 60_000
            + u64::from(self.milliseconds);
        Some(UNIX_EPOCH + Duration::from_millis(millis))
    }
}

fn is_leap(year: u64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: u64, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a date on or after it (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: u64, month: u8, day: u8) -> u64 {
    let (y, m) = if month <= 2 {
        (year - 1, u64::from(month) + 9)
    } else {
        (year, u64::from(month) - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + u64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Year, month and day of `days` since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u8, u8) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_is_thursday_first_of_january_1970() {
        let t = Time::from_system_time(UNIX_EPOCH);
        assert_eq!(t.years, Some(70));
        assert_eq!(t.months, Some(1));
        assert_eq!(t.day_of_month, Some(1));
        assert_eq!(t.day_of_week, Some(4));
        assert_eq!(t.to_system_time(), Some(UNIX_EPOCH));
    }

    #[test]
    fn known_instant_converts_both_ways() {
        // 2024-02-29T23:59:58.123Z, a Thursday.
        let instant = UNIX_EPOCH + Duration::from_millis(1_709_251_198_123);
        let t = Time::from_system_time(instant);
        assert_eq!(
            (
                t.years,
                t.months,
                t.day_of_month,
                t.hours,
                t.minutes,
                t.milliseconds
            ),
            (Some(24), Some(2), Some(29), Some(23), Some(59), 58_123)
        );
        assert_eq!(t.day_of_week, Some(4));
        assert_eq!(t.to_system_time(), Some(instant));
    }

    #[test]
    fn rounds_to_the_nearest_millisecond() {
        let t = Time::from_system_time(UNIX_EPOCH + Duration::from_micros(1_500));
        assert_eq!(t.milliseconds, 2);
        let t = Time::from_system_time(UNIX_EPOCH + Duration::from_micros(1_499));
        assert_eq!(t.milliseconds, 1);
    }

    #[test]
    fn every_day_over_a_century_round_trips() {
        for day in (0..36_500u64).step_by(7) {
            let instant = UNIX_EPOCH + Duration::from_millis(day * MILLIS_PER_DAY + 3_723_456);
            assert_eq!(
                Time::from_system_time(instant).to_system_time(),
                Some(instant)
            );
        }
    }

    #[test]
    fn impossible_dates_and_other_sizes_give_none() {
        let t = Time::from_system_time(UNIX_EPOCH);
        assert_eq!(
            Time {
                day_of_month: Some(31),
                months: Some(2),
                ..t
            }
            .to_system_time(),
            None
        );
        assert_eq!(
            Time {
                months: Some(13),
                ..t
            }
            .to_system_time(),
            None
        );
        assert_eq!(
            Time {
                hours: Some(24),
                ..t
            }
            .to_system_time(),
            None
        );
        assert_eq!(
            Time {
                size: TimeSize::Four,
                ..t
            }
            .to_system_time(),
            None
        );
        assert_eq!(Time { years: None, ..t }.to_system_time(), None);
    }
}
