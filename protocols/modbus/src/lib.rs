//! Sans-IO Modbus shared by the `modbus_master` and `modbus_slave` plugins.
//!
//! Layers, like tokio-modbus's split: [`frame`] holds the wire types (requests,
//! responses, exception codes, ADUs, the framing kind) and [`codec`] turns bytes into
//! them and back: [`codec::pdu`] for function code + data, [`codec::framing`] for the
//! TCP (MBAP), RTU (CRC-16) and ASCII (LRC) envelopes. Both directions are covered:
//! a master encodes requests and decodes responses, a slave decodes requests and
//! encodes responses. Nothing here owns a socket or a clock.
//!
//! Results are two-level ([`frame::Reply`]): `Err(ExceptionCode)` inside `Ok` means the
//! device answered with an exception; an outer error means the exchange itself failed
//! (bad bytes, timeout, closed connection).

pub mod codec;
pub mod frame;

pub use codec::framing::{crc16, lrc, FrameError, Framer};
pub use codec::pdu::{
    decode_request, decode_response, encode_response, pack_bits, request_len, response_len,
    BadRequest, PduError,
};
pub use frame::{Adu, ExceptionCode, ModbusType, Reply, Request, Response};
