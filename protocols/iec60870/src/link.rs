//! IEC 60870-5-2 link layer (FT1.2 frames), sans-IO: frame codec, stream decoder and
//! the primary and secondary station state machines for balanced and unbalanced
//! transmission. The async shell that owns a serial port is the `gateway-iec-link` crate.
