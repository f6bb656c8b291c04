//! ASDU codec of IEC 60870-5-101 and -104: [`Msg`]s to ASDU octets and back.
//!
//! An ASDU is the data unit identifier (type id, variable structure qualifier, cause of
//! transmission, common address) followed by information objects; the codec maps each
//! information element to one [`Msg`] as hat-drivers' `iec101`/`iec104` message encoders
//! do. Which type ids exist and how wide the address fields are is the [`Profile`]:
//! 104 fixes the sizes (cause 2, common address 2, object address 3 octets) and adds the
//! time-tagged commands 58 to 64 and C_TS_TA_1; 101 has configurable sizes, the CP24
//! time-tagged monitoring types, C_TS_NA_1 and C_CD_NA_1.
//!
//! Decoding reads straight from the input slice and allocates only the output vector;
//! encoding writes every ASDU of a call into one buffer allocated once per call, so
//! neither allocates per element.

mod decode;
mod elements;
mod encode;
mod table;

#[cfg(test)]
mod tests;

use bytes::Bytes;

use crate::types::Msg;

/// Largest ASDU octet count the codec can be configured for: the length octet of a 101
/// FT1.2 frame and of a 104 APDU leaves at most 255 (253 for 104) octets.
pub const MAX_ASDU_SIZE_LIMIT: usize = 255;

/// Smallest largest-ASDU size the codec accepts: the largest single message (a 6-octet
/// header, a 3-octet address, a 5-octet element and a 7-octet time tag).
pub const MIN_ASDU_SIZE_LIMIT: usize = 21;

/// Default largest ASDU of 104: the APDU length octet (at most 253) minus the 4 control
/// field octets. Hat-drivers' default too.
pub const IEC104_MAX_ASDU_SIZE: usize = 249;

/// Default largest ASDU of 101, hat-drivers' default (an FT1.2 frame carries up to 255
/// octets after its length: control, link address and the ASDU).
pub const IEC101_MAX_ASDU_SIZE: usize = 252;

/// Number of information objects (or elements of a sequence) one ASDU can carry: the
/// variable structure qualifier has 7 bits for it.
const MAX_OBJECTS_PER_ASDU: usize = 127;

/// Size of the cause of transmission field (hat's `CauseSize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CauseSize {
    /// Cause only, no originator address.
    One,
    /// Cause and originator address.
    Two,
}

/// Size of the common address of ASDU (hat's `AsduAddressSize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AsduAddressSize {
    /// Addresses 0 to 255.
    One,
    /// Addresses 0 to 65535.
    Two,
}

/// Size of the information object address (hat's `IoAddressSize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IoAddressSize {
    /// Addresses 0 to 255.
    One,
    /// Addresses 0 to 65535.
    Two,
    /// Addresses 0 to 16777215.
    Three,
}

impl CauseSize {
    /// The size in octets.
    pub const fn octets(self) -> usize {
        match self {
            Self::One => 1,
            Self::Two => 2,
        }
    }
}

impl AsduAddressSize {
    /// The size in octets.
    pub const fn octets(self) -> usize {
        match self {
            Self::One => 1,
            Self::Two => 2,
        }
    }
}

impl IoAddressSize {
    /// The size in octets.
    pub const fn octets(self) -> usize {
        match self {
            Self::One => 1,
            Self::Two => 2,
            Self::Three => 3,
        }
    }
}

/// Sizes of the ASDU's address and cause fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldSizes {
    /// Cause of transmission.
    pub cause: CauseSize,
    /// Common address of ASDU.
    pub asdu_address: AsduAddressSize,
    /// Information object address.
    pub io_address: IoAddressSize,
}

impl FieldSizes {
    /// The fixed sizes of 104: 2, 2 and 3 octets.
    pub const IEC104: FieldSizes = FieldSizes {
        cause: CauseSize::Two,
        asdu_address: AsduAddressSize::Two,
        io_address: IoAddressSize::Three,
    };
}

/// Which companion standard's type set and field sizes the codec speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Profile {
    iec104: bool,
    sizes: FieldSizes,
}

impl Profile {
    /// IEC 60870-5-104: sizes 2/2/3, the 104 type set.
    pub const fn iec104() -> Profile {
        Profile {
            iec104: true,
            sizes: FieldSizes::IEC104,
        }
    }

    /// IEC 60870-5-101 with the given field sizes, the 101 type set.
    pub const fn iec101(sizes: FieldSizes) -> Profile {
        Profile {
            iec104: false,
            sizes,
        }
    }

    /// Whether this is the 104 profile.
    pub const fn is_iec104(&self) -> bool {
        self.iec104
    }

    /// The field sizes.
    pub const fn sizes(&self) -> FieldSizes {
        self.sizes
    }

    /// Whether `type_id` is a type this profile decodes to messages.
    pub fn supports_type_id(&self, type_id: u8) -> bool {
        table::lookup(self.iec104, type_id).is_some()
    }
}

/// Why an ASDU could not be decoded or a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AsduError {
    /// The type id is not one this profile carries as messages (hat's `AsduTypeError`;
    /// file transfer types count as unknown). A master logs and skips the ASDU.
    #[error("unknown ASDU type id {type_id}")]
    UnknownType {
        /// The type id.
        type_id: u8,
    },
    /// The ASDU ends before its header or its information objects do.
    #[error("ASDU truncated: {needed} octets needed, {available} available")]
    Truncated {
        /// Octets the header and objects need.
        needed: usize,
        /// Octets there are.
        available: usize,
    },
    /// Octets follow the last information object.
    #[error("{count} octets after the last information object of type id {type_id}")]
    TrailingBytes {
        /// The type id.
        type_id: u8,
        /// How many octets are left over.
        count: usize,
    },
    /// The variable structure qualifier says zero objects.
    #[error("ASDU of type id {type_id} with no information objects")]
    NoObjects {
        /// The type id.
        type_id: u8,
    },
    /// An element holds a value the standard does not permit (a regulating step or
    /// protection event of 0 or 3), or a sequence (SQ=1) runs past the largest object
    /// address of the field.
    #[error("invalid {field} in ASDU of type id {type_id}")]
    InvalidValue {
        /// The type id.
        type_id: u8,
        /// The element field.
        field: &'static str,
    },
    /// A message field does not fit its wire field (an address above the configured
    /// size, an `Other` cause above 63, a qualifier above 31, a normalized value outside
    /// -1.0..1.0, a missing time field, ...).
    #[error("{field} out of range for encoding")]
    OutOfRange {
        /// The message field.
        field: &'static str,
    },
    /// The message has no type id in this profile (a delay message in 104, a protection
    /// event without time, status with time, a time tag of a size the type cannot carry).
    #[error("message not encodable in this profile: {reason}")]
    Unsupported {
        /// What is missing.
        reason: &'static str,
    },
    /// A configured largest ASDU size outside what one ASDU can be.
    #[error("largest ASDU size {size} outside {MIN_ASDU_SIZE_LIMIT}..={MAX_ASDU_SIZE_LIMIT}")]
    InvalidMaxAsduSize {
        /// The size asked for.
        size: usize,
    },
}

/// Encoder and decoder of ASDUs for one [`Profile`]. Cheap to copy; holds no state
/// between calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsduCodec {
    profile: Profile,
    max_asdu_size: usize,
}

impl AsduCodec {
    /// A codec for `profile` with the profile's default largest ASDU size.
    pub const fn new(profile: Profile) -> AsduCodec {
        AsduCodec {
            profile,
            max_asdu_size: if profile.iec104 {
                IEC104_MAX_ASDU_SIZE
            } else {
                IEC101_MAX_ASDU_SIZE
            },
        }
    }

    /// The same codec packing ASDUs of at most `size` octets
    /// ([`MIN_ASDU_SIZE_LIMIT`] to [`MAX_ASDU_SIZE_LIMIT`]).
    pub fn with_max_asdu_size(self, size: usize) -> Result<AsduCodec, AsduError> {
        if !(MIN_ASDU_SIZE_LIMIT..=MAX_ASDU_SIZE_LIMIT).contains(&size) {
            return Err(AsduError::InvalidMaxAsduSize { size });
        }
        Ok(AsduCodec {
            max_asdu_size: size,
            ..self
        })
    }

    /// The profile.
    pub const fn profile(&self) -> Profile {
        self.profile
    }

    /// The largest ASDU [`encode`](Self::encode) produces.
    pub const fn max_asdu_size(&self) -> usize {
        self.max_asdu_size
    }

    /// The messages of one ASDU, one per information element, in wire order.
    pub fn decode(&self, asdu: &[u8]) -> Result<Vec<Msg>, AsduError> {
        let mut msgs = Vec::new();
        self.decode_into(asdu, &mut msgs)?;
        Ok(msgs)
    }

    /// Appends the messages of one ASDU to `out` (which a caller can reuse between
    /// ASDUs). On error `out` holds what it held before.
    pub fn decode_into(&self, asdu: &[u8], out: &mut Vec<Msg>) -> Result<(), AsduError> {
        let start = out.len();
        let result = decode::decode_into(self, asdu, out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    /// Encodes `msgs` into as few ASDUs as the packing rule allows: consecutive data
    /// messages of the same type id, cause, flags, originator and common address share
    /// one ASDU up to [`max_asdu_size`](Self::max_asdu_size) octets and 127 objects
    /// (as a sequence, SQ=1, when their object addresses are consecutive and they carry
    /// no time tag). Every other message gets its own ASDU, as the standard has commands
    /// and system messages carry one object. Nothing is returned on error.
    pub fn encode(&self, msgs: &[Msg]) -> Result<Vec<Bytes>, AsduError> {
        let mut asdus = Vec::new();
        self.encode_each(msgs, |asdu| asdus.push(Bytes::copy_from_slice(asdu)))?;
        Ok(asdus)
    }

    /// Like [`encode`](Self::encode) but lends each ASDU to `emit` from a reused buffer
    /// instead of allocating one per ASDU. On error the ASDUs before the one holding the
    /// failing message have been emitted (each complete); nothing after.
    pub fn encode_each(&self, msgs: &[Msg], emit: impl FnMut(&[u8])) -> Result<(), AsduError> {
        encode::encode_each(self, msgs, emit)
    }

    /// Encodes one message as one ASDU.
    pub fn encode_one(&self, msg: &Msg) -> Result<Bytes, AsduError> {
        let mut out = Bytes::new();
        encode::encode_each(self, std::slice::from_ref(msg), |asdu| {
            out = Bytes::copy_from_slice(asdu)
        })?;
        Ok(out)
    }
}
