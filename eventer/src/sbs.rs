//! SBS (hat's Simple Binary Serialization) primitives: hat's Integer encoding (not
//! LEB128), Boolean, Float, String, Bytes, Array/Choice/Optional prefixes.

/// Errors decoding SBS bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SbsError {
    /// The input ended before the value did.
    #[error("unexpected end of input")]
    UnexpectedEnd,
    /// An Integer does not fit in i64 (or is longer than 10 bytes).
    #[error("integer overflows i64")]
    IntegerOverflow,
    /// A String is not valid UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// A Choice index is out of range.
    #[error("choice index {index} out of range for {type_name}")]
    InvalidChoice {
        /// Index read.
        index: i64,
        /// Type being decoded.
        type_name: &'static str,
    },
    /// A length or count is negative or larger than the remaining input.
    #[error("invalid length {0}")]
    InvalidLength(i64),
}
