//! IEC 60870-5-103 application layer (protection equipment): ASDU encoding and decoding
//! with function type / information number addressing, as hat-drivers'
//! `hat.drivers.iec60870.encodings.iec103` encodes them.
//!
//! The field sizes are fixed by 103: cause of transmission one octet, common address one
//! octet, information object address two octets (function type, information number).
//! The sequence bit of the variable structure qualifier is inverted with respect to
//! 101/104 (hat's `inverted_sequence_bit`): bit 7 clear means one object with several
//! elements (the measurands, the list of recorded disturbances).
//!
//! Time tags are [`crate::types::Time`] (CP32 in the time-tagged messages, CP56 in time
//! synchronisation and generic data), the same type the 101/104 codec uses.
//!
//! Decoding never panics: a short, unknown or out-of-range octet string is an
//! [`Iec103Error`]. [`Iec103Error::UnknownType`] is hat's `AsduTypeError` (a master skips
//! the ASDU); every other error means the peer sent a malformed ASDU.

mod decode;
mod encode;
mod types;

pub use types::{
    ArrayValue, Asdu, AsduType, Cause, Channel, Description, DescriptiveData, DisturbanceOrder,
    DoubleValue, DoubleWithRelativeTimeValue, DoubleWithTimeValue, Identification, Io, IoAddress,
    IoElement, KnownCause, MeasurandValue, MeasurandWithRelativeTimeValue, OrderType, ReplyValue,
    Value, ValueType,
};

/// The function type of global requests (general interrogation, time synchronisation).
pub const GLOBAL_FUNCTION_TYPE: u8 = 255;

/// The function type of the generic services.
pub const GENERIC_FUNCTION_TYPE: u8 = 254;

/// The information number of general interrogation and time synchronisation under
/// [`GLOBAL_FUNCTION_TYPE`].
pub const GENERAL_INTERROGATION_OR_TIME_SYNCHRONIZATION: u8 = 0;

/// The information number of the general interrogation of generic data under
/// [`GENERIC_FUNCTION_TYPE`].
pub const GENERAL_INTERROGATION_OF_GENERIC_DATA: u8 = 245;

/// The broadcast common address (hat's default ASDU address of time synchronisation).
pub const BROADCAST_ASDU_ADDRESS: u8 = 255;

/// Why an ASDU could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Iec103Error {
    /// The type identification is not a 103 type (hat's `AsduTypeError`).
    #[error("unknown 103 ASDU type {type_id}")]
    UnknownType {
        /// The type identification octet.
        type_id: u8,
    },
    /// The octets end inside the header or an element.
    #[error("103 ASDU truncated: {needed} octets needed, {available} available")]
    Truncated {
        /// Octets needed at the point decoding stopped.
        needed: usize,
        /// Octets there were.
        available: usize,
    },
    /// Octets follow the last information object.
    #[error("{count} octets after the last information object")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// A coded field holds a value hat does not name (a double point of 4, an unknown
    /// description, order type, channel, value type or reply), or a generic integer is
    /// wider than eight octets.
    #[error("invalid {field} in 103 ASDU")]
    InvalidValue {
        /// The field.
        field: &'static str,
    },
    /// A value does not fit its wire field (a fraction outside its range, more elements
    /// than the count field holds, an element of another ASDU type, a time missing a
    /// field or of a smaller size).
    #[error("{field} out of range for encoding")]
    OutOfRange {
        /// The field.
        field: &'static str,
    },
}

/// Decodes one ASDU (hat's `Encoder.decode_asdu`); octets after the last object are an
/// error.
pub fn decode(bytes: &[u8]) -> Result<Asdu, Iec103Error> {
    decode::asdu(bytes)
}

/// Decodes one ASDU from the start of `bytes` and returns the octets after it, as hat's
/// `Encoder.decode_asdu` does (hat's master ignores them).
pub fn decode_with_rest(bytes: &[u8]) -> Result<(Asdu, &[u8]), Iec103Error> {
    decode::asdu_with_rest(bytes)
}

/// Encodes one ASDU (hat's `Encoder.encode_asdu`).
pub fn encode(asdu: &Asdu) -> Result<Vec<u8>, Iec103Error> {
    let mut out = Vec::with_capacity(32);
    encode::asdu(&mut out, asdu)?;
    Ok(out)
}

/// The measurand kinds hat names for the positions of the measurands I and II sequences
/// (hat's `MeasurandType`, lower-cased as hat-gateway's event types use them).
pub fn measurand_type_name(asdu_type: AsduType, index: usize) -> Option<&'static str> {
    const M1: [&str; 4] = ["m1_i_l2", "m1_u_l12", "m1_p", "m1_q"];
    const M2: [&str; 9] = [
        "m2_i_l1", "m2_i_l2", "m2_i_l3", "m2_u_l1e", "m2_u_l2e", "m2_u_l3e", "m2_p", "m2_q", "m2_f",
    ];
    match asdu_type {
        AsduType::Measurands1 => M1.get(index).copied(),
        AsduType::Measurands2 => M2.get(index).copied(),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
