//! IEC 60870-5 application layer without sockets: bytes in, frames out.
//!
//! Layers: [`types`] (values, qualities, time tags, causes: the data model of the
//! messages), [`asdu`] (ASDU encoding and decoding for 101 and 104 with configurable
//! field sizes), [`apci`] (the 104 APCI: I, S and U frames, the stream decoder and the
//! sans-IO connection state machine with sequence numbers, k/w windows and t1/t2/t3),
//! [`link`] (the IEC 60870-5-2 FT1.2 link layer of 101 and 103: frames, the stream
//! decoder and the master, slave and balanced station state machines) and [`iec103`]
//! (the 103 ASDUs of protection equipment, with function type / information number
//! addressing).
//! The async shells that own the I/O are `gateway-iec104` (TCP) and `gateway-iec-link`
//! (serial ports).

pub mod apci;
pub mod asdu;
pub mod iec103;
pub mod link;
pub mod types;
