//! Time tags in a zone with summer time, against hat-gateway 0.6.48's own
//! `time_from_source_timestamp` / `time_to_source_timestamp` run in the same zone:
//! instants around both 2024 transitions of Europe/Zagreb, and civil times in the
//! repeated and the skipped hour with either summer-time flag.
//!
//! The only test of this binary: it sets `TZ` before any time tag is converted (the
//! zone is read once per process).
#![allow(clippy::unwrap_used)]

use std::process::Command;

use gateway_model::Timestamp;
use iec60870::types::{Time, TimeSize};
use iec_common::{time_from_timestamp, time_to_timestamp};
use serde_json::{json, Value};

const ZONE: &str = "Europe/Zagreb";

const HAT: &str = r#"
import json, sys
import hat.event.common
from hat.drivers import iec104
from hat.gateway.devices.iec101 import common
spec = json.load(sys.stdin)
out = {"from": [], "to": []}
for s, us in spec["stamps"]:
    t = common.time_from_source_timestamp(hat.event.common.Timestamp(s=s, us=us))
    out["from"].append(t._asdict() | {"size": t.size.name})
for f in spec["times"]:
    t = iec104.Time(size=iec104.TimeSize.SEVEN, milliseconds=f[5], invalid=False,
                    substituted=False, minutes=f[4], summer_time=f[6], hours=f[3],
                    day_of_week=None, day_of_month=f[2], months=f[1], years=f[0])
    ts = common.time_to_source_timestamp(t)
    out["to"].append([ts.s, ts.us])
print(json.dumps(out))
"#;

fn hat(stamps: &[Timestamp], times: &[Time]) -> Value {
    let venv = gateway_test_support::venv_with(&["bin/python"]);
    let spec = json!({
        "stamps": stamps.iter().map(|t| json!([t.s, t.us])).collect::<Vec<_>>(),
        "times": times.iter().map(|t| json!([t.years, t.months, t.day_of_month, t.hours, t.minutes, t.milliseconds, t.summer_time])).collect::<Vec<_>>(),
    });
    let mut child = Command::new(venv.join("bin/python"))
        .args(["-c", HAT])
        .env("TZ", ZONE)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(spec.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

fn civil(hours: u8, minutes: u8, day: u8, month: u8, summer_time: bool) -> Time {
    Time {
        size: TimeSize::Seven,
        milliseconds: 30_250,
        invalid: Some(false),
        substituted: Some(false),
        minutes: Some(minutes),
        summer_time: Some(summer_time),
        hours: Some(hours),
        day_of_week: None,
        day_of_month: Some(day),
        months: Some(month),
        years: Some(24),
    }
}

#[test]
fn time_tags_match_hat_in_a_zone_with_summer_time() {
    // Set before the first conversion; this binary has no other test.
    std::env::set_var("TZ", ZONE);
    // 2024-03-31 01:00 UTC (02:00 CET -> 03:00 CEST), 2024-10-27 01:00 UTC (03:00 CEST
    // -> 02:00 CET): every quarter hour around both, and odd microseconds.
    let mut stamps = Vec::new();
    for transition in [1_711_846_800i64, 1_729_990_800] {
        for quarter in -8..=8i64 {
            stamps.push(Timestamp::new(transition + quarter * 900, 0));
        }
        stamps.push(Timestamp::new(transition - 1, 999_600));
        stamps.push(Timestamp::new(transition, 1_500));
        stamps.push(Timestamp::new(transition, 2_500));
    }
    // The repeated hour (27 October, 02:xx) and the skipped one (31 March, 02:xx) with
    // either summer-time flag, and plain winter and summer times.
    let times = vec![
        civil(2, 30, 27, 10, true),
        civil(2, 30, 27, 10, false),
        civil(2, 30, 31, 3, true),
        civil(2, 30, 31, 3, false),
        civil(12, 0, 15, 1, false),
        civil(12, 0, 15, 7, true),
    ];
    let hat = hat(&stamps, &times);
    for (stamp, expected) in stamps.iter().zip(hat["from"].as_array().unwrap()) {
        let t = time_from_timestamp(*stamp);
        let ours = json!({
            "size": "SEVEN", "milliseconds": t.milliseconds, "invalid": t.invalid,
            "substituted": t.substituted, "minutes": t.minutes, "summer_time": t.summer_time,
            "hours": t.hours, "day_of_week": t.day_of_week, "day_of_month": t.day_of_month,
            "months": t.months, "years": t.years,
        });
        assert_eq!(&ours, expected, "{stamp:?}");
    }
    for (time, expected) in times.iter().zip(hat["to"].as_array().unwrap()) {
        let ts = time_to_timestamp(time).unwrap();
        assert_eq!(json!([ts.s, ts.us]), *expected, "{time:?}");
    }
}
