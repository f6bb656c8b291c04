//! [`Asdu`] to octets, octet for octet what hat's encoder writes.

use super::types::*;
use super::Iec103Error;
use crate::types::{Time, TimeSize};

fn out_of_range(field: &'static str) -> Iec103Error {
    Iec103Error::OutOfRange { field }
}

fn count<T>(items: &[T], max: usize, field: &'static str) -> Result<u8, Iec103Error> {
    if items.len() > max {
        return Err(out_of_range(field));
    }
    // Cannot truncate: `max` is at most 255.
    Ok(items.len() as u8)
}

/// Appends `time` as a tag of `size` octets (hat's `encode_time`: the time must be at
/// least that size; numbers are masked to their bits).
fn put_time(out: &mut Vec<u8>, time: &Time, size: TimeSize) -> Result<(), Iec103Error> {
    if time.size.octets() < size.octets() {
        return Err(out_of_range("time size"));
    }
    let field = |v: Option<u8>, name| v.ok_or(out_of_range(name));
    let flag = |v: Option<bool>, bit: u8| if v == Some(true) { bit } else { 0 };
    out.extend_from_slice(&time.milliseconds.to_le_bytes());
    let octets = size.octets();
    if octets > 2 {
        let minutes = field(time.minutes, "time minutes")?;
        out.push(flag(time.invalid, 0x80) | flag(time.substituted, 0x40) | (minutes & 0x3F));
    }
    if octets > 3 {
        let hours = field(time.hours, "time hours")?;
        out.push(flag(time.summer_time, 0x80) | (hours & 0x1F));
    }
    if octets > 4 {
        let day_of_week = field(time.day_of_week, "time day_of_week")?;
        let day_of_month = field(time.day_of_month, "time day_of_month")?;
        out.push((day_of_week & 0x07) << 5 | (day_of_month & 0x1F));
        out.push(field(time.months, "time months")? & 0x0F);
        out.push(field(time.years, "time years")? & 0x7F);
    }
    Ok(())
}

/// A fraction as `bit_size` bits shifted by `bit_offset` in `size` octets, little endian
/// (hat's `_encode_fixed`: truncated toward zero; -1.0 <= value < 1.0 signed, 0.0 <=
/// value < 1.0 unsigned).
fn put_fixed(
    out: &mut Vec<u8>,
    value: f64,
    bit_offset: u32,
    bit_size: u32,
    signed: bool,
    field: &'static str,
) -> Result<usize, Iec103Error> {
    let low = if signed { -1.0 } else { 0.0 };
    if !(low..1.0).contains(&value) || bit_offset + bit_size > 64 {
        return Err(out_of_range(field));
    }
    let limit = 2f64.powi((bit_size - u32::from(signed)) as i32);
    // In range: |value * limit| <= 2^64, so the integer part fits an i128.
    let data = (value * limit).trunc() as i128;
    let mask = (1u128 << bit_size) - 1;
    let data = ((data as u128) & mask) << bit_offset;
    let size = (bit_offset + bit_size).div_ceil(8) as usize;
    out.extend_from_slice(&data.to_le_bytes()[..size]);
    Ok(size)
}

fn put_measurand(out: &mut Vec<u8>, m: &MeasurandValue) -> Result<(), Iec103Error> {
    let start = out.len();
    put_fixed(out, m.value, 3, 13, true, "measurand value")?;
    out[start] |= u8::from(m.overflow) | u8::from(m.invalid) << 1;
    Ok(())
}

fn put_double_with_time(out: &mut Vec<u8>, v: &DoubleWithTimeValue) -> Result<(), Iec103Error> {
    out.push(v.value.to_u8());
    put_time(out, &v.time, TimeSize::Four)?;
    out.push(v.supplementary);
    Ok(())
}

fn put_double_with_relative_time(
    out: &mut Vec<u8>,
    v: &DoubleWithRelativeTimeValue,
) -> Result<(), Iec103Error> {
    out.push(v.value.to_u8());
    out.extend_from_slice(&v.relative_time.to_le_bytes());
    out.extend_from_slice(&v.fault_number.to_le_bytes());
    put_time(out, &v.time, TimeSize::Four)?;
    out.push(v.supplementary);
    Ok(())
}

fn put_measurand_with_relative_time(
    out: &mut Vec<u8>,
    v: &MeasurandWithRelativeTimeValue,
) -> Result<(), Iec103Error> {
    out.extend_from_slice(&v.value.to_le_bytes());
    out.extend_from_slice(&v.relative_time.to_le_bytes());
    out.extend_from_slice(&v.fault_number.to_le_bytes());
    put_time(out, &v.time, TimeSize::Four)
}

fn bit_length(v: u64) -> usize {
    (64 - v.leading_zeros()) as usize
}

/// Octets a value needs at least (hat's `_get_value_min_size`).
fn min_size(value: &Value) -> usize {
    match value {
        Value::None => 0,
        Value::Text(t) => t.len(),
        Value::Bitstring(b) => b.len().div_ceil(8),
        Value::UInt(v) | Value::TextNumber(v) | Value::Index(v) => bit_length(*v).div_ceil(8),
        Value::Int(v) => (bit_length(v.unsigned_abs()) + 8) / 8,
        Value::UFixed(_) | Value::Fixed(_) => 2,
        Value::Real32(_) => 4,
        Value::Real64(_) => 8,
        Value::Double(_) | Value::Single(_) | Value::ExtendedDouble(_) | Value::Reply(_) => 1,
        Value::Measurand(_) => 2,
        Value::Time(_) => 7,
        Value::Identification(_) | Value::RelativeTime(_) | Value::IoAddress(_) => 2,
        Value::DoubleWithTime(_) => 6,
        Value::DoubleWithRelativeTime(_) => 10,
        Value::MeasurandWithRelativeTime(_) => 12,
        Value::Array(a) => 3 + a.values.len() * a.values.iter().map(min_size).max().unwrap_or(0),
    }
}

fn zeros(out: &mut Vec<u8>, n: usize) {
    out.resize(out.len() + n, 0);
}

fn put_uint(out: &mut Vec<u8>, v: u64, size: usize) -> Result<(), Iec103Error> {
    if size > 8 {
        return Err(out_of_range("generic integer size"));
    }
    out.extend_from_slice(&v.to_le_bytes()[..size]);
    Ok(())
}

/// Appends a generic value in `size` octets, at least [`min_size`] (hat's
/// `_encode_value`, padding with zeros; an array ignores `size`, as hat's does).
fn put_value(out: &mut Vec<u8>, value: &Value, size: usize) -> Result<(), Iec103Error> {
    let min = min_size(value);
    if size < min {
        return Err(out_of_range("generic value size"));
    }
    match value {
        Value::None => zeros(out, size),
        Value::Text(t) => {
            out.extend_from_slice(t);
            zeros(out, size - t.len());
        }
        Value::Bitstring(bits) => {
            for i in 0..size {
                let mut acc = 0u8;
                for j in 0..8 {
                    if bits.get(i * 8 + j) == Some(&true) {
                        acc |= 1 << j;
                    }
                }
                out.push(acc);
            }
        }
        Value::UInt(v) | Value::TextNumber(v) | Value::Index(v) => put_uint(out, *v, size)?,
        Value::Int(v) => put_uint(out, *v as u64, size)?,
        Value::UFixed(v) => {
            if size > 8 {
                return Err(out_of_range("generic fraction size"));
            }
            put_fixed(out, *v, 0, 8 * size as u32, false, "ufixed value")?;
        }
        Value::Fixed(v) => {
            if size > 8 {
                return Err(out_of_range("generic fraction size"));
            }
            put_fixed(out, *v, 0, 8 * size as u32, true, "fixed value")?;
        }
        Value::Real32(v) => {
            out.extend_from_slice(&v.to_le_bytes());
            zeros(out, size - 4);
        }
        Value::Real64(v) => {
            out.extend_from_slice(&v.to_le_bytes());
            zeros(out, size - 8);
        }
        Value::Double(v) | Value::ExtendedDouble(v) => {
            out.push(v.to_u8());
            zeros(out, size - 1);
        }
        Value::Single(v) => {
            out.push(u8::from(*v));
            zeros(out, size - 1);
        }
        Value::Measurand(m) => {
            put_measurand(out, m)?;
            zeros(out, size - 2);
        }
        Value::Time(t) => {
            put_time(out, t, TimeSize::Seven)?;
            zeros(out, size - 7);
        }
        Value::Identification(i) => {
            out.extend_from_slice(&[i.group_id, i.entry_id]);
            zeros(out, size - 2);
        }
        Value::RelativeTime(v) => {
            out.extend_from_slice(&v.to_le_bytes());
            zeros(out, size - 2);
        }
        Value::IoAddress(a) => {
            out.extend_from_slice(&[a.function_type, a.information_number]);
            zeros(out, size - 2);
        }
        Value::DoubleWithTime(v) => {
            put_double_with_time(out, v)?;
            zeros(out, size - 6);
        }
        Value::DoubleWithRelativeTime(v) => {
            put_double_with_relative_time(out, v)?;
            zeros(out, size - 10);
        }
        Value::MeasurandWithRelativeTime(v) => {
            put_measurand_with_relative_time(out, v)?;
            zeros(out, size - 12);
        }
        Value::Reply(v) => {
            out.push(v.to_u8());
            // Hat pads a reply to `size - 12` octets (a quirk kept for identical octets).
            zeros(out, size.saturating_sub(12));
        }
        Value::Array(a) => put_array(out, a)?,
    }
    Ok(())
}

fn put_array(out: &mut Vec<u8>, a: &ArrayValue) -> Result<(), Iec103Error> {
    if a.values.iter().any(|v| v.value_type() != a.value_type) {
        return Err(out_of_range("array value type"));
    }
    let number = count(&a.values, 0x7F, "array length")?;
    let size = a.values.iter().map(min_size).max().unwrap_or(0);
    let size_octet = if a.value_type == ValueType::Bitstring {
        a.values
            .iter()
            .map(|v| match v {
                Value::Bitstring(b) => b.len(),
                _ => 0,
            })
            .max()
            .unwrap_or(0)
    } else {
        size
    };
    let size_octet = u8::try_from(size_octet).map_err(|_| out_of_range("array value size"))?;
    out.push(a.value_type.to_u8());
    out.push(size_octet);
    out.push(if a.more_follows { 0x80 } else { 0 } | number);
    for v in &a.values {
        put_value(out, v, size)?;
    }
    Ok(())
}

fn put_descriptive_data(out: &mut Vec<u8>, d: &DescriptiveData) -> Result<(), Iec103Error> {
    out.push(d.description.to_u8());
    put_array(out, &d.value)
}

fn put_order(out: &mut Vec<u8>, o: &DisturbanceOrder) {
    out.push(o.order_type.to_u8());
    out.push(0x01);
    out.extend_from_slice(&o.fault_number.to_le_bytes());
    out.push(o.channel.to_u8());
}

fn flags(more_follows: bool, counter: bool, n: u8) -> u8 {
    (if more_follows { 0x80 } else { 0 }) | (if counter { 0x40 } else { 0 }) | n
}

fn put_element(out: &mut Vec<u8>, element: &IoElement) -> Result<(), Iec103Error> {
    match element {
        IoElement::TimeTaggedMessage(v) => put_double_with_time(out, v)?,
        IoElement::TimeTaggedMessageWithRelativeTime(v) => put_double_with_relative_time(out, v)?,
        IoElement::Measurands1(m) | IoElement::Measurands2(m) => put_measurand(out, m)?,
        IoElement::TimeTaggedMeasurandsWithRelativeTime(v) => {
            put_measurand_with_relative_time(out, v)?
        }
        IoElement::Identification {
            compatibility,
            value,
            software,
        } => {
            out.push(*compatibility);
            out.extend_from_slice(value);
            out.extend_from_slice(software);
        }
        IoElement::TimeSynchronization(t) => put_time(out, t, TimeSize::Seven)?,
        IoElement::GeneralInterrogation(scan)
        | IoElement::GeneralInterrogationTermination(scan) => out.push(*scan),
        IoElement::GenericData {
            return_identifier,
            counter,
            more_follows,
            data,
        } => {
            out.push(*return_identifier);
            out.push(flags(
                *more_follows,
                *counter,
                count(data, 0x3F, "generic data entries")?,
            ));
            for (identification, d) in data {
                out.extend_from_slice(&[identification.group_id, identification.entry_id]);
                put_descriptive_data(out, d)?;
            }
        }
        IoElement::GenericIdentification {
            return_identifier,
            identification,
            counter,
            more_follows,
            data,
        } => {
            out.push(*return_identifier);
            out.extend_from_slice(&[identification.group_id, identification.entry_id]);
            out.push(flags(
                *more_follows,
                *counter,
                count(data, 0x3F, "generic identification entries")?,
            ));
            for d in data {
                put_descriptive_data(out, d)?;
            }
        }
        IoElement::GeneralCommand {
            value,
            return_identifier,
        } => out.extend_from_slice(&[value.to_u8(), *return_identifier]),
        IoElement::GenericCommand {
            return_identifier,
            data,
        } => {
            out.push(*return_identifier);
            out.push(count(data, 0xFF, "generic command entries")?);
            for (identification, description) in data {
                out.extend_from_slice(&[
                    identification.group_id,
                    identification.entry_id,
                    description.to_u8(),
                ]);
            }
        }
        IoElement::ListOfRecordedDisturbances {
            fault_number,
            trip,
            transmitted,
            test,
            other,
            time,
        } => {
            out.extend_from_slice(&fault_number.to_le_bytes());
            out.push(
                u8::from(*other) << 3
                    | u8::from(*test) << 2
                    | u8::from(*transmitted) << 1
                    | u8::from(*trip),
            );
            put_time(out, time, TimeSize::Seven)?;
        }
        IoElement::OrderForDisturbanceDataTransmission(o)
        | IoElement::AcknowledgementForDisturbanceDataTransmission(o)
        | IoElement::EndOfTransmission(o) => put_order(out, o),
        IoElement::ReadyForTransmissionOfDisturbanceData {
            fault_number,
            number_of_faults,
            number_of_channels,
            number_of_elements,
            interval,
            time,
        } => {
            out.push(0x01);
            out.extend_from_slice(&fault_number.to_le_bytes());
            out.extend_from_slice(&number_of_faults.to_le_bytes());
            out.push(*number_of_channels);
            out.extend_from_slice(&number_of_elements.to_le_bytes());
            out.extend_from_slice(&interval.to_le_bytes());
            put_time(out, time, TimeSize::Four)?;
        }
        IoElement::ReadyForTransmissionOfAChannel {
            fault_number,
            channel,
            primary,
            secondary,
            reference,
        } => {
            out.push(0x01);
            out.extend_from_slice(&fault_number.to_le_bytes());
            out.push(channel.to_u8());
            for v in [primary, secondary, reference] {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        IoElement::ReadyForTransmissionOfTags { fault_number } => {
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&fault_number.to_le_bytes());
        }
        IoElement::TransmissionOfTags {
            fault_number,
            tag_position,
            values,
        } => {
            out.extend_from_slice(&fault_number.to_le_bytes());
            out.push(count(values, 0xFF, "tags")?);
            out.extend_from_slice(&tag_position.to_le_bytes());
            for (address, value) in values {
                out.extend_from_slice(&[
                    address.function_type,
                    address.information_number,
                    value.to_u8(),
                ]);
            }
        }
        IoElement::TransmissionOfDisturbanceValues {
            fault_number,
            channel,
            element_number,
            values,
        } => {
            out.push(0x01);
            out.extend_from_slice(&fault_number.to_le_bytes());
            out.push(channel.to_u8());
            out.push(count(values, 0xFF, "disturbance values")?);
            out.extend_from_slice(&element_number.to_le_bytes());
            for v in values {
                put_fixed(out, *v, 0, 16, true, "disturbance value")?;
            }
        }
    }
    Ok(())
}

pub(super) fn asdu(out: &mut Vec<u8>, asdu: &Asdu) -> Result<(), Iec103Error> {
    out.push(asdu.asdu_type.to_u8());
    let is_sequence = asdu.ios.len() == 1 && asdu.ios[0].elements.len() > 1;
    if is_sequence {
        out.push(count(&asdu.ios[0].elements, 0x7F, "number of elements")?);
    } else {
        out.push(0x80 | count(&asdu.ios, 0x7F, "number of objects")?);
    }
    out.push(asdu.cause.to_u8());
    out.push(asdu.address);
    for io in &asdu.ios {
        if !is_sequence && io.elements.len() != 1 {
            return Err(out_of_range("number of elements of an object"));
        }
        out.extend_from_slice(&[io.address.function_type, io.address.information_number]);
        for element in &io.elements {
            if element.asdu_type() != asdu.asdu_type {
                return Err(out_of_range("element of another ASDU type"));
            }
            put_element(out, element)?;
        }
    }
    Ok(())
}
