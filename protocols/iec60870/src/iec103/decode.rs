//! Octets to [`Asdu`]: a cursor over the input that never reads past its end.

use super::types::*;
use super::Iec103Error;
use crate::types::{Time, TimeSize};

/// Reads from a slice front to back; every read checks the length first.
pub(super) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], Iec103Error> {
        if self.bytes.len() < n {
            return Err(Iec103Error::Truncated {
                needed: n,
                available: self.bytes.len(),
            });
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    pub(super) fn u8(&mut self) -> Result<u8, Iec103Error> {
        Ok(self.take(1)?[0])
    }

    pub(super) fn u16(&mut self) -> Result<u16, Iec103Error> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn f32(&mut self) -> Result<f32, Iec103Error> {
        let b = self.take(4)?;
        Ok(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f64(&mut self) -> Result<f64, Iec103Error> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_le_bytes(a))
    }

    fn time(&mut self, size: TimeSize) -> Result<Time, Iec103Error> {
        Ok(time(self.take(size.octets())?, size))
    }

    fn double(&mut self) -> Result<DoubleValue, Iec103Error> {
        coded(self.u8()?, DoubleValue::from_u8, "double value")
    }

    fn identification(&mut self) -> Result<Identification, Iec103Error> {
        Ok(Identification {
            group_id: self.u8()?,
            entry_id: self.u8()?,
        })
    }

    fn io_address(&mut self) -> Result<IoAddress, Iec103Error> {
        Ok(IoAddress {
            function_type: self.u8()?,
            information_number: self.u8()?,
        })
    }
}

fn coded<T>(value: u8, f: impl Fn(u8) -> Option<T>, field: &'static str) -> Result<T, Iec103Error> {
    f(value).ok_or(Iec103Error::InvalidValue { field })
}

/// A time of `size` from exactly `size.octets()` octets (hat's `decode_time`).
fn time(b: &[u8], size: TimeSize) -> Time {
    let n = size.octets();
    let has = |i: usize| n > i;
    Time {
        size,
        milliseconds: u16::from_le_bytes([b[0], b[1]]),
        invalid: has(2).then(|| b[2] & 0x80 != 0),
        substituted: has(2).then(|| b[2] & 0x40 != 0),
        minutes: has(2).then(|| b[2] & 0x3F),
        summer_time: has(3).then(|| b[3] & 0x80 != 0),
        hours: has(3).then(|| b[3] & 0x1F),
        day_of_week: has(4).then(|| b[4] >> 5),
        day_of_month: has(4).then(|| b[4] & 0x1F),
        months: has(4).then(|| b[5] & 0x0F),
        years: has(4).then(|| b[6] & 0x7F),
    }
}

/// A fraction of `bit_size` bits from `bit_offset` (hat's `_decode_fixed`); `bytes`
/// holds exactly the octets and at most eight.
fn fixed(bytes: &[u8], bit_offset: u32, bit_size: u32, signed: bool) -> f64 {
    let mut raw = 0u64;
    for (i, b) in bytes.iter().enumerate() {
        raw |= u64::from(*b) << (8 * i);
    }
    let mask = if bit_size >= 64 {
        u64::MAX
    } else {
        (1u64 << bit_size) - 1
    };
    let raw = (raw >> bit_offset) & mask;
    let limit_bits = bit_size - u32::from(signed);
    let limit = 2f64.powi(limit_bits as i32);
    let value = if signed && (raw >> limit_bits) & 1 == 1 {
        // Two's complement of `bit_size` bits.
        raw as f64 - 2f64.powi(bit_size as i32)
    } else {
        raw as f64
    };
    value / limit
}

fn measurand(r: &mut Reader<'_>) -> Result<MeasurandValue, Iec103Error> {
    let b = r.take(2)?;
    Ok(MeasurandValue {
        overflow: b[0] & 0x01 != 0,
        invalid: b[0] & 0x02 != 0,
        value: fixed(b, 3, 13, true),
    })
}

fn double_with_time(r: &mut Reader<'_>) -> Result<DoubleWithTimeValue, Iec103Error> {
    Ok(DoubleWithTimeValue {
        value: r.double()?,
        time: r.time(TimeSize::Four)?,
        supplementary: r.u8()?,
    })
}

fn double_with_relative_time(
    r: &mut Reader<'_>,
) -> Result<DoubleWithRelativeTimeValue, Iec103Error> {
    Ok(DoubleWithRelativeTimeValue {
        value: r.double()?,
        relative_time: r.u16()?,
        fault_number: r.u16()?,
        time: r.time(TimeSize::Four)?,
        supplementary: r.u8()?,
    })
}

fn measurand_with_relative_time(
    r: &mut Reader<'_>,
) -> Result<MeasurandWithRelativeTimeValue, Iec103Error> {
    Ok(MeasurandWithRelativeTimeValue {
        value: r.f32()?,
        relative_time: r.u16()?,
        fault_number: r.u16()?,
        time: r.time(TimeSize::Four)?,
    })
}

fn uint(bytes: &[u8]) -> Result<u64, Iec103Error> {
    if bytes.len() > 8 {
        return Err(Iec103Error::InvalidValue {
            field: "generic integer size",
        });
    }
    Ok(bytes
        .iter()
        .enumerate()
        .fold(0u64, |acc, (i, b)| acc | u64::from(*b) << (8 * i)))
}

/// A generic value of `value_type` from exactly the octets of one array element (hat's
/// `_decode_value` on `data[:byte_size]`).
fn element_value(bytes: &[u8], value_type: ValueType) -> Result<Value, Iec103Error> {
    let mut r = Reader::new(bytes);
    Ok(match value_type {
        ValueType::None => Value::None,
        ValueType::Text => Value::Text(bytes.to_vec()),
        ValueType::Bitstring => Value::Bitstring(
            bytes
                .iter()
                .flat_map(|b| (0..8).map(move |j| b & (1 << j) != 0))
                .collect(),
        ),
        ValueType::UInt => Value::UInt(uint(bytes)?),
        ValueType::Int => {
            let raw = uint(bytes)?;
            let Some(last) = bytes.last() else {
                return Err(Iec103Error::Truncated {
                    needed: 1,
                    available: 0,
                });
            };
            let bits = 8 * bytes.len() as u32;
            let value = if last & 0x80 != 0 && bits < 64 {
                (raw | (u64::MAX << bits)) as i64
            } else {
                raw as i64
            };
            Value::Int(value)
        }
        ValueType::UFixed | ValueType::Fixed => {
            if bytes.is_empty() {
                return Err(Iec103Error::Truncated {
                    needed: 1,
                    available: 0,
                });
            }
            uint(bytes)?;
            let signed = value_type == ValueType::Fixed;
            let v = fixed(bytes, 0, 8 * bytes.len() as u32, signed);
            if signed {
                Value::Fixed(v)
            } else {
                Value::UFixed(v)
            }
        }
        ValueType::Real32 => Value::Real32(r.f32()?),
        ValueType::Real64 => Value::Real64(r.f64()?),
        ValueType::Double => Value::Double(r.double()?),
        ValueType::Single => Value::Single(match r.u8()? {
            0 => false,
            1 => true,
            _ => {
                return Err(Iec103Error::InvalidValue {
                    field: "single value",
                })
            }
        }),
        ValueType::ExtendedDouble => Value::ExtendedDouble(coded(
            r.u8()?,
            DoubleValue::from_u8,
            "extended double value",
        )?),
        ValueType::Measurand => Value::Measurand(measurand(&mut r)?),
        ValueType::Time => Value::Time(r.time(TimeSize::Seven)?),
        ValueType::Identification => Value::Identification(r.identification()?),
        ValueType::RelativeTime => Value::RelativeTime(r.u16()?),
        ValueType::IoAddress => Value::IoAddress(r.io_address()?),
        ValueType::DoubleWithTime => Value::DoubleWithTime(double_with_time(&mut r)?),
        ValueType::DoubleWithRelativeTime => {
            Value::DoubleWithRelativeTime(double_with_relative_time(&mut r)?)
        }
        ValueType::MeasurandWithRelativeTime => {
            Value::MeasurandWithRelativeTime(measurand_with_relative_time(&mut r)?)
        }
        ValueType::TextNumber => Value::TextNumber(uint(bytes)?),
        ValueType::Reply => Value::Reply(coded(r.u8()?, ReplyValue::from_u8, "reply value")?),
        ValueType::Array => Value::Array(array(&mut r)?),
        ValueType::Index => Value::Index(uint(bytes)?),
    })
}

/// Generic data descriptor and values (hat's ARRAY `_decode_value`).
fn array(r: &mut Reader<'_>) -> Result<ArrayValue, Iec103Error> {
    let value_type = coded(r.u8()?, ValueType::from_u8, "generic data type")?;
    let data_size = usize::from(r.u8()?);
    let byte_size = if value_type == ValueType::Bitstring {
        data_size.div_ceil(8)
    } else {
        data_size
    };
    let number = r.u8()?;
    let more_follows = number & 0x80 != 0;
    let number = usize::from(number & 0x7F);
    let mut values = Vec::with_capacity(number);
    for _ in 0..number {
        values.push(element_value(r.take(byte_size)?, value_type)?);
    }
    Ok(ArrayValue {
        value_type,
        more_follows,
        values,
    })
}

fn descriptive_data(r: &mut Reader<'_>) -> Result<DescriptiveData, Iec103Error> {
    let description = coded(r.u8()?, Description::from_u8, "description")?;
    Ok(DescriptiveData {
        description,
        value: array(r)?,
    })
}

fn disturbance_order(r: &mut Reader<'_>) -> Result<DisturbanceOrder, Iec103Error> {
    let order_type = coded(r.u8()?, OrderType::from_u8, "order type")?;
    r.u8()?;
    let fault_number = r.u16()?;
    let channel = coded(r.u8()?, Channel::from_u8, "channel")?;
    Ok(DisturbanceOrder {
        order_type,
        fault_number,
        channel,
    })
}

fn element(r: &mut Reader<'_>, asdu_type: AsduType) -> Result<IoElement, Iec103Error> {
    Ok(match asdu_type {
        AsduType::TimeTaggedMessage => IoElement::TimeTaggedMessage(double_with_time(r)?),
        AsduType::TimeTaggedMessageWithRelativeTime => {
            IoElement::TimeTaggedMessageWithRelativeTime(double_with_relative_time(r)?)
        }
        AsduType::Measurands1 => IoElement::Measurands1(measurand(r)?),
        AsduType::TimeTaggedMeasurandsWithRelativeTime => {
            IoElement::TimeTaggedMeasurandsWithRelativeTime(measurand_with_relative_time(r)?)
        }
        AsduType::Identification => {
            let compatibility = r.u8()?;
            let mut value = [0u8; 8];
            value.copy_from_slice(r.take(8)?);
            let mut software = [0u8; 4];
            software.copy_from_slice(r.take(4)?);
            IoElement::Identification {
                compatibility,
                value,
                software,
            }
        }
        AsduType::TimeSynchronization => IoElement::TimeSynchronization(r.time(TimeSize::Seven)?),
        AsduType::GeneralInterrogation => IoElement::GeneralInterrogation(r.u8()?),
        AsduType::GeneralInterrogationTermination => {
            IoElement::GeneralInterrogationTermination(r.u8()?)
        }
        AsduType::Measurands2 => IoElement::Measurands2(measurand(r)?),
        AsduType::GenericData => {
            let return_identifier = r.u8()?;
            let ngd = r.u8()?;
            let mut data = Vec::new();
            for _ in 0..ngd & 0x3F {
                let identification = r.identification()?;
                data.push((identification, descriptive_data(r)?));
            }
            IoElement::GenericData {
                return_identifier,
                counter: ngd & 0x40 != 0,
                more_follows: ngd & 0x80 != 0,
                data,
            }
        }
        AsduType::GenericIdentification => {
            let return_identifier = r.u8()?;
            let identification = r.identification()?;
            let nde = r.u8()?;
            let mut data = Vec::new();
            for _ in 0..nde & 0x3F {
                data.push(descriptive_data(r)?);
            }
            IoElement::GenericIdentification {
                return_identifier,
                identification,
                counter: nde & 0x40 != 0,
                more_follows: nde & 0x80 != 0,
                data,
            }
        }
        AsduType::GeneralCommand => IoElement::GeneralCommand {
            value: r.double()?,
            return_identifier: r.u8()?,
        },
        AsduType::GenericCommand => {
            let return_identifier = r.u8()?;
            let count = r.u8()?;
            let mut data = Vec::new();
            for _ in 0..count {
                let identification = r.identification()?;
                let description = coded(r.u8()?, Description::from_u8, "description")?;
                data.push((identification, description));
            }
            IoElement::GenericCommand {
                return_identifier,
                data,
            }
        }
        AsduType::ListOfRecordedDisturbances => {
            let fault_number = r.u16()?;
            let sof = r.u8()?;
            IoElement::ListOfRecordedDisturbances {
                fault_number,
                trip: sof & 0x01 != 0,
                transmitted: sof & 0x02 != 0,
                test: sof & 0x04 != 0,
                other: sof & 0x08 != 0,
                time: r.time(TimeSize::Seven)?,
            }
        }
        AsduType::OrderForDisturbanceDataTransmission => {
            IoElement::OrderForDisturbanceDataTransmission(disturbance_order(r)?)
        }
        AsduType::AcknowledgementForDisturbanceDataTransmission => {
            IoElement::AcknowledgementForDisturbanceDataTransmission(disturbance_order(r)?)
        }
        AsduType::ReadyForTransmissionOfDisturbanceData => {
            r.u8()?;
            IoElement::ReadyForTransmissionOfDisturbanceData {
                fault_number: r.u16()?,
                number_of_faults: r.u16()?,
                number_of_channels: r.u8()?,
                number_of_elements: r.u16()?,
                interval: r.u16()?,
                time: r.time(TimeSize::Four)?,
            }
        }
        AsduType::ReadyForTransmissionOfAChannel => {
            r.u8()?;
            IoElement::ReadyForTransmissionOfAChannel {
                fault_number: r.u16()?,
                channel: coded(r.u8()?, Channel::from_u8, "channel")?,
                primary: r.f32()?,
                secondary: r.f32()?,
                reference: r.f32()?,
            }
        }
        AsduType::ReadyForTransmissionOfTags => {
            r.take(2)?;
            IoElement::ReadyForTransmissionOfTags {
                fault_number: r.u16()?,
            }
        }
        AsduType::TransmissionOfTags => {
            let fault_number = r.u16()?;
            let count = r.u8()?;
            let tag_position = r.u16()?;
            let mut values = Vec::new();
            for _ in 0..count {
                let address = r.io_address()?;
                values.push((address, r.double()?));
            }
            IoElement::TransmissionOfTags {
                fault_number,
                tag_position,
                values,
            }
        }
        AsduType::TransmissionOfDisturbanceValues => {
            r.u8()?;
            let fault_number = r.u16()?;
            let channel = coded(r.u8()?, Channel::from_u8, "channel")?;
            let count = r.u8()?;
            let element_number = r.u16()?;
            let mut values = Vec::new();
            for _ in 0..count {
                values.push(fixed(r.take(2)?, 0, 16, true));
            }
            IoElement::TransmissionOfDisturbanceValues {
                fault_number,
                channel,
                element_number,
                values,
            }
        }
        AsduType::EndOfTransmission => IoElement::EndOfTransmission(disturbance_order(r)?),
    })
}

pub(super) fn asdu(bytes: &[u8]) -> Result<Asdu, Iec103Error> {
    let (asdu, rest) = asdu_with_rest(bytes)?;
    if !rest.is_empty() {
        return Err(Iec103Error::TrailingBytes { count: rest.len() });
    }
    Ok(asdu)
}

pub(super) fn asdu_with_rest(bytes: &[u8]) -> Result<(Asdu, &[u8]), Iec103Error> {
    let mut r = Reader::new(bytes);
    let type_id = r.u8()?;
    let asdu_type = AsduType::from_u8(type_id).ok_or(Iec103Error::UnknownType { type_id })?;
    let vsq = r.u8()?;
    let number = usize::from(vsq & 0x7F);
    // Inverted sequence bit: clear means one object with `number` elements.
    let is_sequence = vsq & 0x80 == 0;
    let (io_count, element_count) = if is_sequence {
        (1, number)
    } else {
        (number, 1)
    };
    let cause = Cause::from_u8(r.u8()?);
    let address = r.u8()?;
    let mut ios = Vec::with_capacity(io_count);
    for _ in 0..io_count {
        let io_address = r.io_address()?;
        let mut elements = Vec::with_capacity(element_count);
        for _ in 0..element_count {
            elements.push(element(&mut r, asdu_type)?);
        }
        ios.push(Io {
            address: io_address,
            elements,
        });
    }
    Ok((
        Asdu {
            asdu_type,
            cause,
            address,
            ios,
        },
        r.bytes,
    ))
}
