//! The stream decoder: octets in arbitrary chunks in, frames out. Garbage before a start
//! character is skipped octet by octet; a frame whose header is consistent but whose
//! checksum, stop character or function code is wrong is dropped whole (its length is
//! known), as hat's endpoint does. Both are counted, never fatal.

use bytes::{Buf, BytesMut};

use super::frame::{decode, frame_len, Frame, FrameError, LinkFormat};

/// What the decoder has thrown away so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecoderStats {
    /// Octets that were not part of a valid frame (garbage and the octets of bad frames).
    pub discarded_bytes: u64,
    /// Frames dropped: inconsistent variable headers, bad checksums, bad stop
    /// characters, reserved function codes.
    pub bad_frames: u64,
    /// Valid frames decoded.
    pub frames: u64,
}

/// A frame the decoder dropped, for logging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// Why.
    pub error: FrameError,
    /// Octets discarded with it.
    pub octets: usize,
}

/// Incremental FT1.2 decoder. Memory is bounded by one frame (at most 261 octets) plus
/// the chunk last pushed.
#[derive(Debug)]
pub struct Decoder {
    format: LinkFormat,
    buf: BytesMut,
    stats: DecoderStats,
    last_error: Option<Dropped>,
}

impl Decoder {
    /// A decoder for frames of `format`.
    pub fn new(format: LinkFormat) -> Decoder {
        Decoder {
            format,
            buf: BytesMut::with_capacity(512),
            stats: DecoderStats::default(),
            last_error: None,
        }
    }

    /// Appends received octets.
    pub fn push(&mut self, octets: &[u8]) {
        self.buf.extend_from_slice(octets);
    }

    /// The next complete frame of the octets pushed so far, `None` when more are needed.
    /// Every octet is looked at a bounded number of times (no rescanning of the buffer).
    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            match frame_len(&self.format, &self.buf) {
                Ok(None) => return None,
                Ok(Some(len)) if self.buf.len() < len => return None,
                Ok(Some(len)) => {
                    let result = decode(&self.format, &self.buf[..len]);
                    self.buf.advance(len);
                    match result {
                        Ok(frame) => {
                            self.stats.frames += 1;
                            return Some(frame);
                        }
                        Err(error) => {
                            self.stats.bad_frames += 1;
                            self.stats.discarded_bytes += len as u64;
                            self.last_error = Some(Dropped { error, octets: len });
                        }
                    }
                }
                Err(error) => {
                    // Skip to the next octet that could start a frame: a garbage octet or
                    // a start character whose header turned out inconsistent.
                    if !matches!(error, FrameError::Start(_)) {
                        self.stats.bad_frames += 1;
                    }
                    let skip = 1 + self.buf[1..]
                        .iter()
                        .position(|b| is_start(*b))
                        .unwrap_or(self.buf.len() - 1);
                    self.buf.advance(skip);
                    self.stats.discarded_bytes += skip as u64;
                    self.last_error = Some(Dropped {
                        error,
                        octets: skip,
                    });
                }
            }
        }
    }

    /// The frame format.
    pub fn format(&self) -> LinkFormat {
        self.format
    }

    /// Counters so far.
    pub fn stats(&self) -> DecoderStats {
        self.stats
    }

    /// The last drop since the previous call (for a log line), cleared by reading it.
    pub fn take_dropped(&mut self) -> Option<Dropped> {
        self.last_error.take()
    }

    /// Octets held waiting for the rest of a frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Forgets buffered octets (after the port was reopened).
    pub fn clear(&mut self) {
        self.buf.clear();
    }
}

fn is_start(octet: u8) -> bool {
    matches!(
        octet,
        super::frame::FIXED_START | super::frame::VARIABLE_START | super::frame::SINGLE_CHAR_ACK
    )
}
