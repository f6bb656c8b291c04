//! Event types and payloads of the device (hat-gateway 0.6.48's `iec103/master.py`):
//! received ASDUs to `gateway/remote_device/<address>/...` events, command replies and
//! interrogation ends; `system/remote_device/<address>/...` events to requests.

use gateway_model::{Event, EventType, RegisterEvent, Timestamp};
use iec60870::iec103::{
    measurand_type_name, Asdu, AsduType, Cause, DoubleValue, IoAddress, IoElement, KnownCause,
    MeasurandValue,
};
use iec60870::types::{Time, TimeSize};
use serde_json::{json, Value};

/// Event types under the device prefix.
#[derive(Debug, Clone)]
pub struct EventTypes {
    prefix: EventType,
}

impl EventTypes {
    /// Types under `prefix`.
    pub fn new(prefix: EventType) -> EventTypes {
        EventTypes { prefix }
    }

    /// The device prefix.
    pub fn prefix(&self) -> &EventType {
        &self.prefix
    }

    fn with(&self, tail: &[&str]) -> EventType {
        let mut t = self.prefix.clone();
        t.extend(tail.iter().map(|s| (*s).to_owned()));
        t
    }

    /// `gateway/status`.
    pub fn status(&self) -> EventType {
        self.with(&["gateway", "status"])
    }

    /// `gateway/remote_device/<address>/status`.
    pub fn remote_status(&self, address: u16) -> EventType {
        self.with(&["gateway", "remote_device", &address.to_string(), "status"])
    }

    /// `system/remote_device/<address>/enable` of every configured address: the start-up
    /// query (hat's `QueryLatestParams`).
    pub fn enable_queries(&self, addresses: impl IntoIterator<Item = u16>) -> Vec<EventType> {
        addresses
            .into_iter()
            .map(|a| self.with(&["system", "remote_device", &a.to_string(), "enable"]))
            .collect()
    }

    /// `gateway/remote_device/<address>/command/<asdu>/<function type>/<information
    /// number>`.
    pub fn command(&self, address: u16, asdu: u8, io: IoAddress) -> EventType {
        self.with(&[
            "gateway",
            "remote_device",
            &address.to_string(),
            "command",
            &asdu.to_string(),
            &io.function_type.to_string(),
            &io.information_number.to_string(),
        ])
    }

    /// `gateway/remote_device/<address>/interrogation/<asdu>`.
    pub fn interrogation(&self, address: u16, asdu: u8) -> EventType {
        self.with(&[
            "gateway",
            "remote_device",
            &address.to_string(),
            "interrogation",
            &asdu.to_string(),
        ])
    }

    fn data(&self, address: u16, data_type: &str, asdu: u8, io: IoAddress) -> EventType {
        self.with(&[
            "gateway",
            "remote_device",
            &address.to_string(),
            "data",
            data_type,
            &asdu.to_string(),
            &io.function_type.to_string(),
            &io.information_number.to_string(),
        ])
    }
}

/// A `gateway/...status` payload.
pub fn status_event(event_type: EventType, status: &str) -> RegisterEvent {
    RegisterEvent::json(event_type, json!(status))
}

/// What a `system/...` event asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum SystemRequest {
    /// `system/remote_device/<address>/enable` with a boolean payload.
    Enable {
        /// Remote device.
        address: u16,
        /// Enabled or not.
        enable: bool,
    },
    /// `system/remote_device/<address>/command/<asdu>/<ft>/<in>` with `{session_id,
    /// value}`.
    Command {
        /// Remote device.
        address: u16,
        /// Common address of ASDU.
        asdu: u8,
        /// Function type and information number.
        io: IoAddress,
        /// Commanded state.
        value: DoubleValue,
        /// Echoed in the answer event.
        session_id: Value,
    },
    /// `system/remote_device/<address>/interrogation/<asdu>` (payload not used).
    Interrogation {
        /// Remote device.
        address: u16,
        /// Common address of ASDU.
        asdu: u8,
    },
}

/// Why a `system/...` event was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RequestError(pub &'static str);

fn segment<T: std::str::FromStr>(
    s: Option<&String>,
    what: &'static str,
) -> Result<T, RequestError> {
    s.and_then(|s| s.parse().ok()).ok_or(RequestError(what))
}

/// Parses a `system/...` event of the device (hat's `_process_event`).
pub fn parse_request(types: &EventTypes, event: &Event) -> Result<SystemRequest, RequestError> {
    let tail = event
        .event_type
        .strip_prefix(types.prefix().as_slice())
        .ok_or(RequestError("event type outside the device prefix"))?;
    if tail.len() < 4 || tail[0] != "system" || tail[1] != "remote_device" {
        return Err(RequestError("unexpected event type"));
    }
    let address: u16 = segment(tail.get(2), "invalid remote device address")?;
    let payload = event.payload.as_ref().and_then(|p| p.json_value());
    match (tail[3].as_str(), tail.len()) {
        ("enable", 4) => match payload {
            Some(Value::Bool(enable)) => Ok(SystemRequest::Enable { address, enable }),
            _ => Err(RequestError("invalid enable event payload")),
        },
        ("command", 7) => {
            let asdu = segment(tail.get(4), "invalid ASDU address")?;
            let io = IoAddress {
                function_type: segment(tail.get(5), "invalid function type")?,
                information_number: segment(tail.get(6), "invalid information number")?,
            };
            let payload = payload.ok_or(RequestError("command without payload"))?;
            let value = payload
                .get("value")
                .and_then(Value::as_str)
                .and_then(DoubleValue::from_name)
                .ok_or(RequestError("invalid command value"))?;
            let session_id = payload
                .get("session_id")
                .cloned()
                .ok_or(RequestError("command without session_id"))?;
            Ok(SystemRequest::Command {
                address,
                asdu,
                io,
                value,
                session_id,
            })
        }
        ("interrogation", 5) => Ok(SystemRequest::Interrogation {
            address,
            asdu: segment(tail.get(4), "invalid ASDU address")?,
        }),
        _ => Err(RequestError("unexpected event type")),
    }
}

/// The enable state of the start-up query's events (hat applies them in order).
pub fn enabled_from_query(types: &EventTypes, events: &[Event]) -> Vec<(u16, bool)> {
    events
        .iter()
        .filter_map(|e| match parse_request(types, e) {
            Ok(SystemRequest::Enable { address, enable }) => Some((address, enable)),
            _ => None,
        })
        .collect()
}

/// One thing a received ASDU carries for the master.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// A data event to register.
    Event(RegisterEvent),
    /// The reply to the general command with this return identifier (type 1 with cause
    /// GENERAL_COMMAND, or GENERAL_COMMAND_NACK when `success` is false).
    CommandReply {
        /// The return identifier (the supplementary information).
        return_identifier: u8,
        /// Positive acknowledgement.
        success: bool,
    },
    /// The end of the general interrogation with this scan number.
    InterrogationEnd {
        /// The scan number.
        scan_number: u8,
    },
    /// A data value hat-gateway has no event for (type 4), or a double point whose time
    /// cannot be a timestamp: logged and skipped.
    Skipped(&'static str),
}

/// Why a received ASDU ends the connection (hat's receive loop raising).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReceiveError(pub &'static str);

/// hat's `DataCause` names, else the number.
fn cause_json(cause: Cause) -> Value {
    match cause {
        Cause::Known(
            c @ (KnownCause::Spontaneous
            | KnownCause::Cyclic
            | KnownCause::TestMode
            | KnownCause::GeneralInterrogation
            | KnownCause::LocalOperation
            | KnownCause::RemoteOperation),
        ) => json!(c.name()),
        other => json!(other.to_u8()),
    }
}

fn measurand_json(m: &MeasurandValue) -> Value {
    json!({"overflow": m.overflow, "invalid": m.invalid, "value": m.value})
}

/// Everything a received ASDU from remote device `address` carries, in hat's order
/// (hat's `MasterConnection._receive_loop` and the device's `_on_data`). `now` is
/// the reference for completing four-octet times.
pub fn received(
    types: &EventTypes,
    address: u16,
    asdu: &Asdu,
    now: Timestamp,
) -> Result<Vec<Received>, ReceiveError> {
    let mut out = Vec::new();
    for io in &asdu.ios {
        match asdu.asdu_type {
            AsduType::Measurands1 | AsduType::Measurands2 => {
                let mut events = Vec::with_capacity(io.elements.len());
                for (i, element) in io.elements.iter().enumerate() {
                    let (IoElement::Measurands1(m) | IoElement::Measurands2(m)) = element else {
                        return Err(ReceiveError("element of another ASDU type"));
                    };
                    let name = measurand_type_name(asdu.asdu_type, i)
                        .ok_or(ReceiveError("more measurands than the type names"))?;
                    events.push(Received::Event(RegisterEvent::json(
                        types.data(address, name, asdu.address, io.address),
                        json!({"cause": cause_json(asdu.cause), "value": measurand_json(m)}),
                    )));
                }
                out.extend(events);
            }
            _ => {
                for element in &io.elements {
                    if let Some(r) =
                        element_received(types, address, asdu, io.address, element, now)
                    {
                        out.push(r);
                    }
                }
            }
        }
    }
    Ok(out)
}

fn element_received(
    types: &EventTypes,
    address: u16,
    asdu: &Asdu,
    io: IoAddress,
    element: &IoElement,
    now: Timestamp,
) -> Option<Received> {
    let double = |value: DoubleValue, time: &Time| {
        let source_timestamp = match source_timestamp(time, now) {
            Ok(ts) => ts,
            Err(reason) => return Received::Skipped(reason),
        };
        Received::Event(RegisterEvent {
            source_timestamp,
            ..RegisterEvent::json(
                types.data(address, "double", asdu.address, io),
                json!({"cause": cause_json(asdu.cause), "value": value.name()}),
            )
        })
    };
    match element {
        IoElement::TimeTaggedMessage(v) => match asdu.cause {
            Cause::Known(KnownCause::GeneralCommand) => Some(Received::CommandReply {
                return_identifier: v.supplementary,
                success: true,
            }),
            Cause::Known(KnownCause::GeneralCommandNack) => Some(Received::CommandReply {
                return_identifier: v.supplementary,
                success: false,
            }),
            _ => Some(double(v.value, &v.time)),
        },
        IoElement::TimeTaggedMessageWithRelativeTime(v) => Some(double(v.value, &v.time)),
        IoElement::TimeTaggedMeasurandsWithRelativeTime(_) => {
            Some(Received::Skipped("unsupported data value"))
        }
        IoElement::GeneralInterrogationTermination(scan_number) => {
            Some(Received::InterrogationEnd {
                scan_number: *scan_number,
            })
        }
        // Identification, time synchronisation answers, generic and disturbance data:
        // hat's master only logs them.
        _ => None,
    }
}

const HALF_DAY_US: i128 = 12 * 3600 * 1_000_000;

fn micros(ts: Timestamp) -> i128 {
    i128::from(ts.s) * 1_000_000 + i128::from(ts.us)
}

fn from_micros(us: i128) -> Timestamp {
    // Within a day of a real clock: fits an i64 of seconds.
    Timestamp::new(
        (us.div_euclid(1_000_000)) as i64,
        us.rem_euclid(1_000_000) as i64,
    )
}

/// The source timestamp of a four-octet time (hat's `_time_iec103_to_source_ts`): the
/// date is taken from `now`, 12 hours before it or 12 hours after it, whichever gives
/// the instant nearest `now`; candidates whose summer time flag differs from the
/// time's are not used (`None` when none is left). An impossible time is an error (hat
/// raises and the event is dropped).
pub fn source_timestamp(time: &Time, now: Timestamp) -> Result<Option<Timestamp>, &'static str> {
    if time.size != TimeSize::Four {
        return Err("time of another size than four octets");
    }
    let now_us = micros(now);
    let mut best: Option<(i128, Timestamp)> = None;
    for offset in [-HALF_DAY_US, 0, HALF_DAY_US] {
        let candidate = iec_common::time::time_from_timestamp(from_micros(now_us + offset));
        if candidate.summer_time != time.summer_time {
            continue;
        }
        let seven = Time {
            size: TimeSize::Seven,
            day_of_week: candidate.day_of_week,
            day_of_month: candidate.day_of_month,
            months: candidate.months,
            years: candidate.years,
            ..*time
        };
        let ts = iec_common::time::time_to_timestamp(&seven)
            .map_err(|_| "impossible time in a time-tagged message")?;
        let distance = (micros(ts) - now_us).abs();
        if best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, ts));
        }
    }
    Ok(best.map(|(_, ts)| ts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time4(hours: u8, minutes: u8, ms: u16) -> Time {
        Time {
            size: TimeSize::Four,
            milliseconds: ms,
            invalid: Some(false),
            substituted: Some(false),
            minutes: Some(minutes),
            summer_time: Some(false),
            hours: Some(hours),
            day_of_week: None,
            day_of_month: None,
            months: None,
            years: None,
        }
    }

    fn asdu(asdu_type: AsduType, cause: Cause, elements: Vec<IoElement>) -> Asdu {
        Asdu {
            asdu_type,
            cause,
            address: 5,
            ios: vec![iec60870::iec103::Io {
                address: IoAddress {
                    function_type: 1,
                    information_number: 2,
                },
                elements,
            }],
        }
    }

    #[test]
    fn what_hat_does_with_each_kind_of_asdu() {
        let types = EventTypes::new(vec!["p".into()]);
        let now = Timestamp::now();
        let dwt = iec60870::iec103::DoubleWithTimeValue {
            value: DoubleValue::On,
            time: time4(0, 0, 0),
            supplementary: 9,
        };
        // Type 1 with a command cause is a command reply, not data.
        let reply = received(
            &types,
            1,
            &asdu(
                AsduType::TimeTaggedMessage,
                Cause::Known(KnownCause::GeneralCommandNack),
                vec![IoElement::TimeTaggedMessage(dwt)],
            ),
            now,
        )
        .unwrap();
        assert_eq!(
            reply,
            [Received::CommandReply {
                return_identifier: 9,
                success: false
            }]
        );
        // Type 2 with the same cause is data, the cause a number (not a data cause).
        let data = received(
            &types,
            1,
            &asdu(
                AsduType::TimeTaggedMessageWithRelativeTime,
                Cause::Known(KnownCause::GeneralCommand),
                vec![IoElement::TimeTaggedMessageWithRelativeTime(
                    iec60870::iec103::DoubleWithRelativeTimeValue {
                        value: DoubleValue::Off,
                        relative_time: 0,
                        fault_number: 0,
                        time: time4(0, 0, 0),
                        supplementary: 0,
                    },
                )],
            ),
            now,
        )
        .unwrap();
        let [Received::Event(e)] = data.as_slice() else {
            panic!("{data:?}")
        };
        assert_eq!(
            e.event_type.join("/"),
            "p/gateway/remote_device/1/data/double/5/1/2"
        );
        assert_eq!(
            e.payload.as_ref().and_then(|p| p.json_value()),
            Some(json!({"cause": 20, "value": "OFF"}))
        );
        // Type 4 has no event.
        let skipped = received(
            &types,
            1,
            &asdu(
                AsduType::TimeTaggedMeasurandsWithRelativeTime,
                Cause::Known(KnownCause::Spontaneous),
                vec![IoElement::TimeTaggedMeasurandsWithRelativeTime(
                    iec60870::iec103::MeasurandWithRelativeTimeValue {
                        value: 1.0,
                        relative_time: 0,
                        fault_number: 0,
                        time: time4(0, 0, 0),
                    },
                )],
            ),
            now,
        )
        .unwrap();
        assert_eq!(skipped, [Received::Skipped("unsupported data value")]);
        // Measurands I name four positions: a fifth ends the connection (hat raises).
        let m = MeasurandValue {
            overflow: false,
            invalid: false,
            value: 0.0,
        };
        let five = asdu(
            AsduType::Measurands1,
            Cause::Known(KnownCause::Cyclic),
            vec![IoElement::Measurands1(m); 5],
        );
        assert!(received(&types, 1, &five, now).is_err());
        // The general interrogation termination is no event but the end of a request.
        let end = received(
            &types,
            1,
            &asdu(
                AsduType::GeneralInterrogationTermination,
                Cause::Known(KnownCause::TerminationOfGeneralInterrogation),
                vec![IoElement::GeneralInterrogationTermination(4)],
            ),
            now,
        )
        .unwrap();
        assert_eq!(end, [Received::InterrogationEnd { scan_number: 4 }]);
    }

    #[test]
    fn four_octet_time_takes_the_nearest_date() {
        // Only meaningful in UTC (the tests' zone); the local zone is the system's.
        if iec_common::time::time_from_timestamp(Timestamp::new(0, 0)).hours != Some(0) {
            return;
        }
        // 2026-12-02T23:50:00Z; a time of 00:10 is ten minutes later, on the next day.
        let now = Timestamp::new(1_796_255_400, 0);
        let ts = source_timestamp(&time4(0, 10, 0), now).unwrap().unwrap();
        assert_eq!(ts.s - now.s, 20 * 60);
        // 23:40 is ten minutes before, today.
        let ts = source_timestamp(&time4(23, 40, 1_500), now)
            .unwrap()
            .unwrap();
        assert_eq!((ts.s - now.s, ts.us), (-10 * 60 + 1, 500_000));
        // Summer time flag set: no candidate in UTC.
        let summer = Time {
            summer_time: Some(true),
            ..time4(1, 0, 0)
        };
        assert_eq!(source_timestamp(&summer, now), Ok(None));
        // Hours 31 (masked field) is impossible.
        assert!(source_timestamp(&time4(31, 0, 0), now).is_err());
    }
}
