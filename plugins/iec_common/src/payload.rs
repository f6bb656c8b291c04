//! Data and command values as JSON (hat's `data_to_json`, `data_from_json`,
//! `command_to_json`, `command_from_json` and their value and quality helpers).
//!
//! The shapes are hat-gateway 0.6.48's, special cases included: a normalized value's
//! quality is `null` for M_ME_ND (and `null` or `{}` read as no quality); a floating
//! value that is not finite is the string `"nan"`, `"inf"` or `"-inf"`; a bitstring is
//! a list of its 4 octets; a status value is `{"value": [16 bools], "change": [16
//! bools]}`; a counter quality's `sequence` is an integer (hat's event schema says
//! boolean, hat's code writes the integer; a boolean is read as 0 or 1).

use iec60870::types::{
    BinaryCounterData, BinaryCounterValue, BitstringCommand, BitstringData, BitstringValue,
    Command, CounterQuality, Data, DoubleCommand, DoubleData, DoubleValue, FloatingCommand,
    FloatingData, FloatingValue, IndicationQuality, MeasurementQuality, NormalizedCommand,
    NormalizedData, NormalizedValue, ProtectionCommandData, ProtectionCommandValue, ProtectionData,
    ProtectionQuality, ProtectionStartData, ProtectionStartValue, ProtectionValue,
    RegulatingCommand, RegulatingValue, ScaledCommand, ScaledData, ScaledValue, SingleCommand,
    SingleData, SingleValue, StatusData, StatusValue, StepPositionData, StepPositionValue,
};
use serde_json::{json, Map, Value};

mod ser;

pub use ser::DataJson;

use crate::keys::{CommandType, DataType};
use crate::PayloadError;

/// Data as hat's JSON (`{"value", "quality", ...}`).
pub fn data_to_json(data: &Data) -> Value {
    // Cannot fail: every key is a string and every float is finite or written as a
    // string ([`ser::DataJson`]).
    serde_json::to_value(DataJson(data)).unwrap_or(Value::Null)
}

/// Data of `data_type` from hat's JSON.
pub fn data_from_json(data_type: DataType, json: &Value) -> Result<Data, PayloadError> {
    let o = Obj::new(json, "")?;
    let value = o.get("value")?;
    let quality = o.get("quality")?;
    Ok(match data_type {
        DataType::Single => Data::Single(SingleData {
            value: single_from(value, &o.at("value"))?,
            quality: indication_from(quality, &o.at("quality"))?,
        }),
        DataType::Double => Data::Double(DoubleData {
            value: double_from(value, &o.at("value"))?,
            quality: indication_from(quality, &o.at("quality"))?,
        }),
        DataType::StepPosition => {
            let v = Obj::new(value, &o.at("value"))?;
            let position = v.int("value", -64, 63)?;
            Data::StepPosition(StepPositionData {
                value: StepPositionValue {
                    // In range by the check above.
                    value: position as i8,
                    transient: v.bool("transient")?,
                },
                quality: measurement_from(quality, &o.at("quality"))?,
            })
        }
        DataType::Bitstring => Data::Bitstring(BitstringData {
            value: bitstring_from(value, &o.at("value"))?,
            quality: measurement_from(quality, &o.at("quality"))?,
        }),
        DataType::Normalized => Data::Normalized(NormalizedData {
            value: NormalizedValue(number(value, &o.at("value"))? as f32),
            quality: match quality {
                Value::Null => None,
                Value::Object(map) if map.is_empty() => None,
                q => Some(measurement_from(q, &o.at("quality"))?),
            },
        }),
        DataType::Scaled => Data::Scaled(ScaledData {
            value: ScaledValue(
                int(value, &o.at("value"), i16::MIN.into(), i16::MAX.into())? as i16,
            ),
            quality: measurement_from(quality, &o.at("quality"))?,
        }),
        DataType::Floating => Data::Floating(FloatingData {
            value: FloatingValue(floating_from(value, &o.at("value"))?),
            quality: measurement_from(quality, &o.at("quality"))?,
        }),
        DataType::BinaryCounter => Data::BinaryCounter(BinaryCounterData {
            value: BinaryCounterValue(
                int(value, &o.at("value"), i32::MIN.into(), i32::MAX.into())? as i32,
            ),
            quality: counter_from(quality, &o.at("quality"))?,
        }),
        DataType::Protection => Data::Protection(ProtectionData {
            value: match value.as_str() {
                Some("OFF") => ProtectionValue::Off,
                Some("ON") => ProtectionValue::On,
                _ => return Err(invalid(&o.at("value"), "not OFF or ON")),
            },
            quality: protection_from(quality, &o.at("quality"))?,
            elapsed_time: o.int("elapsed_time", 0, 0xFFFF)? as u16,
        }),
        DataType::ProtectionStart => {
            let v = Obj::new(value, &o.at("value"))?;
            Data::ProtectionStart(ProtectionStartData {
                value: ProtectionStartValue {
                    general: v.bool("general")?,
                    l1: v.bool("l1")?,
                    l2: v.bool("l2")?,
                    l3: v.bool("l3")?,
                    ie: v.bool("ie")?,
                    reverse: v.bool("reverse")?,
                },
                quality: protection_from(quality, &o.at("quality"))?,
                duration_time: o.int("duration_time", 0, 0xFFFF)? as u16,
            })
        }
        DataType::ProtectionCommand => {
            let v = Obj::new(value, &o.at("value"))?;
            Data::ProtectionCommand(ProtectionCommandData {
                value: ProtectionCommandValue {
                    general: v.bool("general")?,
                    l1: v.bool("l1")?,
                    l2: v.bool("l2")?,
                    l3: v.bool("l3")?,
                },
                quality: protection_from(quality, &o.at("quality"))?,
                operating_time: o.int("operating_time", 0, 0xFFFF)? as u16,
            })
        }
        DataType::Status => {
            let v = Obj::new(value, &o.at("value"))?;
            Data::Status(StatusData {
                value: StatusValue {
                    value: bits16(v.get("value")?, &v.at("value"))?,
                    change: bits16(v.get("change")?, &v.at("change"))?,
                },
                quality: measurement_from(quality, &o.at("quality"))?,
            })
        }
    })
}

/// A command as hat's JSON (`{"value", "select", "qualifier"}` and the like).
pub fn command_to_json(command: &Command) -> Value {
    match command {
        Command::Single(c) => {
            json!({"value": single_name(c.value), "select": c.select, "qualifier": c.qualifier})
        }
        Command::Double(c) => {
            json!({"value": double_name(c.value), "select": c.select, "qualifier": c.qualifier})
        }
        Command::Regulating(c) => {
            json!({"value": regulating_name(c.value), "select": c.select, "qualifier": c.qualifier})
        }
        Command::Normalized(c) => json!({"value": normalized_json(c.value), "select": c.select}),
        Command::Scaled(c) => json!({"value": c.value.0, "select": c.select}),
        Command::Floating(c) => json!({"value": floating_json(c.value), "select": c.select}),
        Command::Bitstring(c) => json!({"value": c.value.0}),
    }
}

/// A command of `cmd_type` from hat's JSON.
pub fn command_from_json(cmd_type: CommandType, json: &Value) -> Result<Command, PayloadError> {
    let o = Obj::new(json, "")?;
    let value = o.get("value")?;
    let at = o.at("value");
    let qualifier = || o.int("qualifier", 0, 31).map(|q| q as u8);
    Ok(match cmd_type {
        CommandType::Single => Command::Single(SingleCommand {
            value: single_from(value, &at)?,
            select: o.bool("select")?,
            qualifier: qualifier()?,
        }),
        CommandType::Double => Command::Double(DoubleCommand {
            value: double_from(value, &at)?,
            select: o.bool("select")?,
            qualifier: qualifier()?,
        }),
        CommandType::Regulating => Command::Regulating(RegulatingCommand {
            value: match value.as_str() {
                Some("LOWER") => RegulatingValue::Lower,
                Some("HIGHER") => RegulatingValue::Higher,
                _ => return Err(invalid(&at, "not LOWER or HIGHER")),
            },
            select: o.bool("select")?,
            qualifier: qualifier()?,
        }),
        CommandType::Normalized => Command::Normalized(NormalizedCommand {
            value: NormalizedValue(number(value, &at)? as f32),
            select: o.bool("select")?,
        }),
        CommandType::Scaled => Command::Scaled(ScaledCommand {
            value: ScaledValue(int(value, &at, i16::MIN.into(), i16::MAX.into())? as i16),
            select: o.bool("select")?,
        }),
        CommandType::Floating => Command::Floating(FloatingCommand {
            value: FloatingValue(floating_from(value, &at)?),
            select: o.bool("select")?,
        }),
        CommandType::Bitstring => Command::Bitstring(BitstringCommand {
            value: bitstring_from(value, &at)?,
        }),
    })
}

/// A normalized value as hat reports it: hat decodes the 16-bit wire value as
/// `raw / 0x7fff` in double precision; the model keeps an `f32`, so the raw value is
/// recovered (exact: 16 bits fit an `f32` mantissa) and divided again in `f64`.
fn normalized_json(value: NormalizedValue) -> Value {
    json!(ser::normalized(value))
}

/// A floating value as hat reports it: the number, or Python's `str` of a value that is
/// not finite.
fn floating_json(value: FloatingValue) -> Value {
    serde_json::to_value(ser::Floating(value)).unwrap_or(Value::Null)
}

/// Python's `float(value)` for a JSON number or string.
fn floating_from(value: &Value, at: &str) -> Result<f32, PayloadError> {
    match value {
        Value::Number(n) => n
            .as_f64()
            .map(|f| f as f32)
            .ok_or_else(|| invalid(at, "not a number")),
        Value::String(s) => {
            let text = s.trim().to_ascii_lowercase();
            let text = text.strip_prefix('+').unwrap_or(&text);
            match text {
                "nan" | "-nan" => Ok(f32::NAN),
                "inf" | "infinity" => Ok(f32::INFINITY),
                "-inf" | "-infinity" => Ok(f32::NEG_INFINITY),
                other => other
                    .parse::<f64>()
                    .map(|f| f as f32)
                    .map_err(|_| invalid(at, "not a number or \"nan\", \"inf\", \"-inf\"")),
            }
        }
        _ => Err(invalid(at, "not a number")),
    }
}

fn single_name(value: SingleValue) -> &'static str {
    match value {
        SingleValue::Off => "OFF",
        SingleValue::On => "ON",
    }
}

fn double_name(value: DoubleValue) -> &'static str {
    match value {
        DoubleValue::Intermediate => "INTERMEDIATE",
        DoubleValue::Off => "OFF",
        DoubleValue::On => "ON",
        DoubleValue::Fault => "FAULT",
    }
}

fn regulating_name(value: RegulatingValue) -> &'static str {
    match value {
        RegulatingValue::Lower => "LOWER",
        RegulatingValue::Higher => "HIGHER",
    }
}

fn protection_name(value: ProtectionValue) -> &'static str {
    match value {
        ProtectionValue::Off => "OFF",
        ProtectionValue::On => "ON",
    }
}

fn single_from(value: &Value, at: &str) -> Result<SingleValue, PayloadError> {
    match value.as_str() {
        Some("OFF") => Ok(SingleValue::Off),
        Some("ON") => Ok(SingleValue::On),
        _ => Err(invalid(at, "not OFF or ON")),
    }
}

fn double_from(value: &Value, at: &str) -> Result<DoubleValue, PayloadError> {
    match value.as_str() {
        Some("INTERMEDIATE") => Ok(DoubleValue::Intermediate),
        Some("OFF") => Ok(DoubleValue::Off),
        Some("ON") => Ok(DoubleValue::On),
        Some("FAULT") => Ok(DoubleValue::Fault),
        _ => Err(invalid(at, "not INTERMEDIATE, OFF, ON or FAULT")),
    }
}

fn bitstring_from(value: &Value, at: &str) -> Result<BitstringValue, PayloadError> {
    let items = value
        .as_array()
        .filter(|items| items.len() == 4)
        .ok_or_else(|| invalid(at, "not a list of 4 octets"))?;
    let mut octets = [0u8; 4];
    for (i, item) in items.iter().enumerate() {
        octets[i] = int(item, &format!("{at}/{i}"), 0, 255)? as u8;
    }
    Ok(BitstringValue(octets))
}

fn bits16(value: &Value, at: &str) -> Result<[bool; 16], PayloadError> {
    let items = value
        .as_array()
        .filter(|items| items.len() == 16)
        .ok_or_else(|| invalid(at, "not a list of 16 booleans"))?;
    let mut bits = [false; 16];
    for (i, item) in items.iter().enumerate() {
        bits[i] = item
            .as_bool()
            .ok_or_else(|| invalid(&format!("{at}/{i}"), "not a boolean"))?;
    }
    Ok(bits)
}

fn indication_from(value: &Value, at: &str) -> Result<IndicationQuality, PayloadError> {
    let q = Obj::new(value, at)?;
    Ok(IndicationQuality {
        invalid: q.bool("invalid")?,
        not_topical: q.bool("not_topical")?,
        substituted: q.bool("substituted")?,
        blocked: q.bool("blocked")?,
    })
}

fn measurement_from(value: &Value, at: &str) -> Result<MeasurementQuality, PayloadError> {
    let q = Obj::new(value, at)?;
    Ok(MeasurementQuality {
        invalid: q.bool("invalid")?,
        not_topical: q.bool("not_topical")?,
        substituted: q.bool("substituted")?,
        blocked: q.bool("blocked")?,
        overflow: q.bool("overflow")?,
    })
}

fn counter_from(value: &Value, at: &str) -> Result<CounterQuality, PayloadError> {
    let q = Obj::new(value, at)?;
    let sequence = match q.get("sequence")? {
        // hat's event schema types `sequence` as a boolean; Python reads it as 0 or 1.
        Value::Bool(b) => u8::from(*b),
        other => int(other, &q.at("sequence"), 0, 31)? as u8,
    };
    Ok(CounterQuality {
        invalid: q.bool("invalid")?,
        adjusted: q.bool("adjusted")?,
        overflow: q.bool("overflow")?,
        sequence,
    })
}

fn protection_from(value: &Value, at: &str) -> Result<ProtectionQuality, PayloadError> {
    let q = Obj::new(value, at)?;
    Ok(ProtectionQuality {
        invalid: q.bool("invalid")?,
        not_topical: q.bool("not_topical")?,
        substituted: q.bool("substituted")?,
        blocked: q.bool("blocked")?,
        time_invalid: q.bool("time_invalid")?,
    })
}

/// An error at the JSON pointer `at`.
pub(crate) fn invalid(at: &str, reason: &'static str) -> PayloadError {
    PayloadError::Invalid {
        pointer: if at.is_empty() {
            "/".to_owned()
        } else {
            at.to_owned()
        },
        reason,
    }
}

/// An integer in `min..=max`.
pub(crate) fn int(value: &Value, at: &str, min: i64, max: i64) -> Result<i64, PayloadError> {
    value
        .as_i64()
        .ok_or_else(|| invalid(at, "not an integer"))
        .and_then(|v| {
            if (min..=max).contains(&v) {
                Ok(v)
            } else {
                Err(invalid(at, "integer out of range"))
            }
        })
}

fn number(value: &Value, at: &str) -> Result<f64, PayloadError> {
    value.as_f64().ok_or_else(|| invalid(at, "not a number"))
}

/// A JSON object with the pointer it was found at, for error messages.
pub(crate) struct Obj<'a> {
    map: &'a Map<String, Value>,
    at: String,
}

impl<'a> Obj<'a> {
    pub(crate) fn new(value: &'a Value, at: &str) -> Result<Self, PayloadError> {
        value
            .as_object()
            .map(|map| Self {
                map,
                at: at.to_owned(),
            })
            .ok_or_else(|| invalid(at, "not an object"))
    }

    pub(crate) fn at(&self, key: &str) -> String {
        format!("{}/{key}", self.at)
    }

    pub(crate) fn get(&self, key: &str) -> Result<&'a Value, PayloadError> {
        self.map
            .get(key)
            .ok_or_else(|| invalid(&self.at(key), "missing"))
    }

    pub(crate) fn bool(&self, key: &str) -> Result<bool, PayloadError> {
        self.get(key)?
            .as_bool()
            .ok_or_else(|| invalid(&self.at(key), "not a boolean"))
    }

    pub(crate) fn int(&self, key: &str, min: i64, max: i64) -> Result<i64, PayloadError> {
        int(self.get(key)?, &self.at(key), min, max)
    }
}
