//! IEC 60870-5-2 link layer (FT1.2 frames), sans-IO: frame codec, stream decoder and
//! the primary and secondary station state machines for balanced and unbalanced
//! transmission. The async shell that owns a serial port is the `gateway-iec-link` crate.

mod decoder;
mod frame;

pub use decoder::{Decoder, DecoderStats, Dropped};
pub use frame::{
    checksum, decode, encode, encode_to_bytes, frame_len, Address, AddressSize, Direction,
    EncodeError, Frame, FrameError, LinkFormat, ReqFrame, ReqFunction, ResFrame, ResFunction,
    FIXED_START, SINGLE_CHAR_ACK, STOP, VARIABLE_START,
};
