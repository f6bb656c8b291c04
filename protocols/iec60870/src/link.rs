//! IEC 60870-5-2 link layer (FT1.2 frames), sans-IO: frame codec, stream decoder and
//! the primary and secondary station state machines for balanced and unbalanced
//! transmission. The async shell that owns a serial port is the `gateway-iec-link` crate.
//!
//! Layers: [`encode`] / [`decode`] (one frame), [`Decoder`] (a byte stream in arbitrary
//! chunks, resynchronising after garbage and counting what it drops), [`Primary`] and
//! [`Secondary`] (one connection's half: FCB/FCV, repetitions, polling, class data,
//! keep-alive), and the line stations [`MasterStation`], [`SlaveStation`],
//! [`BalancedStation`] (turn-taking on the line, routing by address and direction) behind
//! the [`Station`] trait. Time is an input (`now: Instant`); nothing here sleeps or
//! reads a clock.

mod decoder;
mod frame;
mod primary;
mod secondary;
mod station;

use bytes::Bytes;

pub use decoder::{Decoder, DecoderStats, Dropped};
pub use frame::{
    checksum, decode, encode, encode_to_bytes, frame_len, Address, AddressSize, Direction,
    EncodeError, Frame, FrameError, LinkFormat, ReqFrame, ReqFunction, ResFrame, ResFunction,
    FIXED_START, SINGLE_CHAR_ACK, STOP, VARIABLE_START,
};
pub use primary::{Primary, PrimaryConfig};
pub use secondary::{Secondary, SecondaryConfig};
pub use station::{
    BalancedStation, ConnConfig, MasterStation, SlaveStation, Station, StationError, StationOutput,
};

/// The owner's name for one queued send, echoed in its outcome event.
pub type SendId = u64;

/// A connection on a line: the remote address and, in balanced transmission, the DIR of
/// our requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnKey {
    /// DIR of our requests (balanced), `None` in unbalanced transmission.
    pub direction: Option<Direction>,
    /// The link address.
    pub address: Address,
}

/// What happened on a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnEvent {
    /// Primary: the remote acknowledged the link reset. Unbalanced secondary: the first
    /// request arrived.
    Opened,
    /// User data (an ASDU) arrived.
    Received(Bytes),
    /// A send was written (without confirmation) or confirmed; slave: a response carried it.
    SendDone(SendId),
    /// The remote answered a send negatively.
    SendFailed(SendId, ResFunction),
    /// A send was dropped because the connection closed.
    SendAborted(SendId),
    /// The connection closed.
    Closed(CloseCause),
}

/// Why a connection closed by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCause {
    /// A request and its repetitions were not answered.
    NoResponse {
        /// Repetitions sent.
        retries: u32,
    },
    /// No request from the master within the keep-alive timeout.
    KeepAliveTimeout,
}
