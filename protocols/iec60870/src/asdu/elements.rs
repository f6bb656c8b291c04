//! Writers of information element values, qualities and time tags.

use super::AsduError;
use crate::types::{
    Command, CounterQuality, Data, IndicationQuality, MeasurementQuality, NormalizedValue,
    ProtectionQuality, StatusValue, Time, TimeSize,
};

fn out_of_range(field: &'static str) -> AsduError {
    AsduError::OutOfRange { field }
}

fn indication_quality(q: &IndicationQuality) -> u8 {
    (if q.invalid { 0x80 } else { 0 })
        | (if q.not_topical { 0x40 } else { 0 })
        | (if q.substituted { 0x20 } else { 0 })
        | (if q.blocked { 0x10 } else { 0 })
}

fn measurement_quality(q: &MeasurementQuality) -> u8 {
    (if q.invalid { 0x80 } else { 0 })
        | (if q.not_topical { 0x40 } else { 0 })
        | (if q.substituted { 0x20 } else { 0 })
        | (if q.blocked { 0x10 } else { 0 })
        | (if q.overflow { 0x01 } else { 0 })
}

fn protection_quality(q: &ProtectionQuality) -> u8 {
    (if q.invalid { 0x80 } else { 0 })
        | (if q.not_topical { 0x40 } else { 0 })
        | (if q.substituted { 0x20 } else { 0 })
        | (if q.blocked { 0x10 } else { 0 })
        | (if q.time_invalid { 0x08 } else { 0 })
}

fn counter_quality(q: &CounterQuality) -> Result<u8, AsduError> {
    if q.sequence > 0x1F {
        return Err(out_of_range("counter quality sequence"));
    }
    Ok((if q.invalid { 0x80 } else { 0 })
        | (if q.adjusted { 0x40 } else { 0 })
        | (if q.overflow { 0x20 } else { 0 })
        | q.sequence)
}

/// NVA as hat writes it: the value times 0x7FFF, rounded half to even (Python's
/// `round`).
pub(super) fn normalized(value: NormalizedValue) -> Result<[u8; 2], AsduError> {
    let scaled = (f64::from(value.0) * 32767.0).round_ties_even();
    if !(-32768.0..=32767.0).contains(&scaled) {
        return Err(out_of_range("normalized value"));
    }
    Ok((scaled as i16).to_le_bytes())
}

fn status(value: &StatusValue) -> [u8; 4] {
    let word = |bits: &[bool; 16]| {
        bits.iter()
            .enumerate()
            .fold(0u16, |acc, (i, &bit)| acc | (u16::from(bit) << i))
    };
    let [v0, v1] = word(&value.value).to_le_bytes();
    let [c0, c1] = word(&value.change).to_le_bytes();
    [v0, v1, c0, c1]
}

fn command_octet(value: u8, select: bool, qualifier: u8) -> Result<u8, AsduError> {
    if qualifier > 0x1F {
        return Err(out_of_range("command qualifier"));
    }
    Ok(value | (qualifier << 2) | if select { 0x80 } else { 0 })
}

fn qos(select: bool) -> u8 {
    if select {
        0x80
    } else {
        0
    }
}

pub(super) fn put_data(out: &mut Vec<u8>, data: &Data) -> Result<(), AsduError> {
    match data {
        Data::Single(d) => out.push(d.value.to_u8() | indication_quality(&d.quality)),
        Data::Double(d) => out.push(d.value.to_u8() | indication_quality(&d.quality)),
        Data::StepPosition(d) => {
            if !(-64..=63).contains(&d.value.value) {
                return Err(out_of_range("step position value"));
            }
            let transient = if d.value.transient { 0x80 } else { 0 };
            out.push((d.value.value as u8 & 0x7F) | transient);
            out.push(measurement_quality(&d.quality));
        }
        Data::Bitstring(d) => {
            out.extend_from_slice(&d.value.0);
            out.push(measurement_quality(&d.quality));
        }
        Data::Normalized(d) => {
            out.extend_from_slice(&normalized(d.value)?);
            if let Some(quality) = &d.quality {
                out.push(measurement_quality(quality));
            }
        }
        Data::Scaled(d) => {
            out.extend_from_slice(&d.value.0.to_le_bytes());
            out.push(measurement_quality(&d.quality));
        }
        Data::Floating(d) => {
            out.extend_from_slice(&d.value.0.to_le_bytes());
            out.push(measurement_quality(&d.quality));
        }
        Data::BinaryCounter(d) => {
            out.extend_from_slice(&d.value.0.to_le_bytes());
            out.push(counter_quality(&d.quality)?);
        }
        Data::Protection(d) => {
            out.push(d.value.to_u8() | protection_quality(&d.quality));
            out.extend_from_slice(&d.elapsed_time.to_le_bytes());
        }
        Data::ProtectionStart(d) => {
            let v = &d.value;
            out.push(
                u8::from(v.general)
                    | u8::from(v.l1) << 1
                    | u8::from(v.l2) << 2
                    | u8::from(v.l3) << 3
                    | u8::from(v.ie) << 4
                    | u8::from(v.reverse) << 5,
            );
            out.push(protection_quality(&d.quality));
            out.extend_from_slice(&d.duration_time.to_le_bytes());
        }
        Data::ProtectionCommand(d) => {
            let v = &d.value;
            out.push(
                u8::from(v.general)
                    | u8::from(v.l1) << 1
                    | u8::from(v.l2) << 2
                    | u8::from(v.l3) << 3,
            );
            out.push(protection_quality(&d.quality));
            out.extend_from_slice(&d.operating_time.to_le_bytes());
        }
        Data::Status(d) => {
            out.extend_from_slice(&status(&d.value));
            out.push(measurement_quality(&d.quality));
        }
    }
    Ok(())
}

pub(super) fn put_command(out: &mut Vec<u8>, command: &Command) -> Result<(), AsduError> {
    match command {
        Command::Single(c) => out.push(command_octet(c.value.to_u8(), c.select, c.qualifier)?),
        Command::Double(c) => out.push(command_octet(c.value.to_u8(), c.select, c.qualifier)?),
        Command::Regulating(c) => out.push(command_octet(c.value.to_u8(), c.select, c.qualifier)?),
        Command::Normalized(c) => {
            out.extend_from_slice(&normalized(c.value)?);
            out.push(qos(c.select));
        }
        Command::Scaled(c) => {
            out.extend_from_slice(&c.value.0.to_le_bytes());
            out.push(qos(c.select));
        }
        Command::Floating(c) => {
            out.extend_from_slice(&c.value.0.to_le_bytes());
            out.push(qos(c.select));
        }
        Command::Bitstring(c) => out.extend_from_slice(&c.value.0),
    }
    Ok(())
}

/// Appends `time` as a tag of `size` octets (hat's `encode_time`: flags missing from a
/// smaller time read as false; a missing number is an error).
pub(super) fn put_time(out: &mut Vec<u8>, time: &Time, size: TimeSize) -> Result<(), AsduError> {
    let field = |value: Option<u8>, max: u8, name: &'static str| match value {
        Some(v) if v <= max => Ok(v),
        _ => Err(out_of_range(name)),
    };
    let flag = |value: Option<bool>, bit: u8| if value == Some(true) { bit } else { 0 };
    out.extend_from_slice(&time.milliseconds.to_le_bytes());
    let octets = size.octets();
    if octets > 2 {
        let minutes = field(time.minutes, 0x3F, "time minutes")?;
        out.push(flag(time.invalid, 0x80) | flag(time.substituted, 0x40) | minutes);
    }
    if octets > 3 {
        let hours = field(time.hours, 0x1F, "time hours")?;
        out.push(flag(time.summer_time, 0x80) | hours);
    }
    if octets > 4 {
        let day_of_week = field(time.day_of_week, 0x07, "time day_of_week")?;
        let day_of_month = field(time.day_of_month, 0x1F, "time day_of_month")?;
        out.push(day_of_week << 5 | day_of_month);
        out.push(field(time.months, 0x0F, "time months")?);
        out.push(field(time.years, 0x7F, "time years")?);
    }
    Ok(())
}
