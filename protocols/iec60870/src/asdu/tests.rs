//! Unit tests of the codec internals: time tags.

use super::decode::decode_time;
use super::elements::put_time;
use crate::types::{Time, TimeSize};

#[test]
fn time_tag_fields_map_to_their_bits() {
    let octets = [0x39, 0x30, 0xE2, 0x8C, 0x6F, 0x06, 0x18];
    let time = decode_time(&octets, TimeSize::Seven);
    assert_eq!(
        time,
        Time {
            size: TimeSize::Seven,
            milliseconds: 12345,
            invalid: Some(true),
            substituted: Some(true),
            minutes: Some(34),
            summer_time: Some(true),
            hours: Some(12),
            day_of_week: Some(3),
            day_of_month: Some(15),
            months: Some(6),
            years: Some(24),
        }
    );
    let mut out = Vec::new();
    put_time(&mut out, &time, TimeSize::Seven).unwrap();
    assert_eq!(out, octets);
    out.clear();
    put_time(&mut out, &time, TimeSize::Three).unwrap();
    assert_eq!(out, octets[..3]);
    let short = decode_time(&octets, TimeSize::Three);
    assert_eq!(
        (short.hours, short.years, short.minutes),
        (None, None, Some(34))
    );
}
