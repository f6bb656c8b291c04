//! Bytes to frames and back: PDUs ([`pdu`]) and their ADU envelopes ([`framing`]).

pub mod framing;
pub mod pdu;

#[cfg(test)]
mod framing_tests;
#[cfg(test)]
mod pdu_tests;
