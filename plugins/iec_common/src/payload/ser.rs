//! hat's data JSON written straight to text through serde's `Serialize`, without a
//! `serde_json::Value` tree in between. A master turns every received point into one
//! of these; building and dropping the value tree (a `BTreeMap` per object) cost more
//! than the rest of the receive path. [`super::data_to_json`] is built on this, so
//! there is one definition of the shapes.

use iec60870::types::{
    CounterQuality, Data, FloatingValue, IndicationQuality, MeasurementQuality, NormalizedValue,
    ProtectionQuality,
};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use super::{double_name, protection_name, single_name};

/// Data as hat's JSON (`{"value", "quality", ...}`), serialized directly.
#[derive(Debug, Clone, Copy)]
pub struct DataJson<'a>(pub &'a Data);

impl Serialize for DataJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        match self.0 {
            Data::Single(d) => {
                map.serialize_entry("value", single_name(d.value))?;
                map.serialize_entry("quality", &Indication(&d.quality))?;
            }
            Data::Double(d) => {
                map.serialize_entry("value", double_name(d.value))?;
                map.serialize_entry("quality", &Indication(&d.quality))?;
            }
            Data::StepPosition(d) => {
                map.serialize_entry(
                    "value",
                    &Fields(&[
                        ("value", Field::Int(i64::from(d.value.value))),
                        ("transient", Field::Bool(d.value.transient)),
                    ]),
                )?;
                map.serialize_entry("quality", &Measurement(&d.quality))?;
            }
            Data::Bitstring(d) => {
                map.serialize_entry("value", &d.value.0)?;
                map.serialize_entry("quality", &Measurement(&d.quality))?;
            }
            Data::Normalized(d) => {
                map.serialize_entry("value", &normalized(d.value))?;
                map.serialize_entry("quality", &d.quality.as_ref().map(Measurement))?;
            }
            Data::Scaled(d) => {
                map.serialize_entry("value", &d.value.0)?;
                map.serialize_entry("quality", &Measurement(&d.quality))?;
            }
            Data::Floating(d) => {
                map.serialize_entry("value", &Floating(d.value))?;
                map.serialize_entry("quality", &Measurement(&d.quality))?;
            }
            Data::BinaryCounter(d) => {
                map.serialize_entry("value", &d.value.0)?;
                map.serialize_entry("quality", &Counter(&d.quality))?;
            }
            Data::Protection(d) => {
                map.serialize_entry("value", protection_name(d.value))?;
                map.serialize_entry("quality", &Protection(&d.quality))?;
                map.serialize_entry("elapsed_time", &d.elapsed_time)?;
            }
            Data::ProtectionStart(d) => {
                let v = &d.value;
                map.serialize_entry(
                    "value",
                    &Fields(&[
                        ("general", Field::Bool(v.general)),
                        ("l1", Field::Bool(v.l1)),
                        ("l2", Field::Bool(v.l2)),
                        ("l3", Field::Bool(v.l3)),
                        ("ie", Field::Bool(v.ie)),
                        ("reverse", Field::Bool(v.reverse)),
                    ]),
                )?;
                map.serialize_entry("quality", &Protection(&d.quality))?;
                map.serialize_entry("duration_time", &d.duration_time)?;
            }
            Data::ProtectionCommand(d) => {
                let v = &d.value;
                map.serialize_entry(
                    "value",
                    &Fields(&[
                        ("general", Field::Bool(v.general)),
                        ("l1", Field::Bool(v.l1)),
                        ("l2", Field::Bool(v.l2)),
                        ("l3", Field::Bool(v.l3)),
                    ]),
                )?;
                map.serialize_entry("quality", &Protection(&d.quality))?;
                map.serialize_entry("operating_time", &d.operating_time)?;
            }
            Data::Status(d) => {
                map.serialize_entry(
                    "value",
                    &StatusJson {
                        value: &d.value.value,
                        change: &d.value.change,
                    },
                )?;
                map.serialize_entry("quality", &Measurement(&d.quality))?;
            }
        }
        map.end()
    }
}

/// A normalized value as hat reports it: the raw 16-bit value over 32767 in double
/// precision (the model holds an `f32`, hat computes in Python floats).
pub(super) fn normalized(value: NormalizedValue) -> f64 {
    let raw = (f64::from(value.0) * 32767.0).round();
    raw / 32767.0
}

/// A floating value as hat reports it: the number, or Python's `str` of a value that
/// is not finite.
#[derive(Debug, Clone, Copy)]
pub(super) struct Floating(pub(super) FloatingValue);

impl Serialize for Floating {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let v = self.0 .0;
        if v.is_nan() {
            serializer.serialize_str("nan")
        } else if v.is_infinite() {
            serializer.serialize_str(if v > 0.0 { "inf" } else { "-inf" })
        } else {
            serializer.serialize_f64(f64::from(v))
        }
    }
}

#[derive(Serialize)]
struct StatusJson<'a> {
    value: &'a [bool; 16],
    change: &'a [bool; 16],
}

/// One scalar of a flat JSON object.
#[derive(Debug, Clone, Copy)]
enum Field {
    Bool(bool),
    Int(i64),
}

/// A flat JSON object of named scalars, in the given order.
struct Fields<'a>(&'a [(&'static str, Field)]);

impl Serialize for Fields<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, field) in self.0 {
            match field {
                Field::Bool(b) => map.serialize_entry(name, b)?,
                Field::Int(i) => map.serialize_entry(name, i)?,
            }
        }
        map.end()
    }
}

macro_rules! quality_json {
    ($name:ident, $quality:ty, { $($field:ident: $kind:ident,)+ }) => {
        struct $name<'a>(&'a $quality);

        impl Serialize for $name<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let q = self.0;
                Fields(&[$((stringify!($field), quality_json!(@$kind q.$field)),)+])
                    .serialize(serializer)
            }
        }
    };
    (@bool $e:expr) => { Field::Bool($e) };
    (@int $e:expr) => { Field::Int(i64::from($e)) };
}

quality_json!(Indication, IndicationQuality, {
    invalid: bool, not_topical: bool, substituted: bool, blocked: bool,
});
quality_json!(Measurement, MeasurementQuality, {
    invalid: bool, not_topical: bool, substituted: bool, blocked: bool, overflow: bool,
});
quality_json!(Counter, CounterQuality, {
    invalid: bool, adjusted: bool, overflow: bool, sequence: int,
});
quality_json!(Protection, ProtectionQuality, {
    invalid: bool, not_topical: bool, substituted: bool, blocked: bool, time_invalid: bool,
});
