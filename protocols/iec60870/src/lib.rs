//! IEC 60870-5 application layer without sockets: bytes in, frames out.
//!
//! Layers: [`types`] (values, qualities, time tags, causes: the data model of the
//! messages), [`asdu`] (ASDU encoding and decoding for 101 and 104 with configurable
//! field sizes), [`apci`] (the 104 APCI: I, S and U frames, the stream decoder and the
//! sans-IO connection state machine with sequence numbers, k/w windows and t1/t2/t3).
//! The async shell that owns a socket is the `gateway-iec104` crate.

pub mod apci;
pub mod asdu;
pub mod iec103;
pub mod link;
pub mod types;
