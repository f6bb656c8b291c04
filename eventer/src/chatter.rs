//! Chatter framing (`[L][N big-endian, L bytes][SBS HatChatter.Msg]`) and the message
//! header. Pure byte code: no sockets, drivable from tests and the fuzzer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::sbs::{Reader, SbsError, SizeCounter, Writer};

/// Default maximum frame body size accepted from a peer (16 MiB).
pub const DEFAULT_MAX_FRAME_SIZE: usize = 16 * 1024 * 1024;

/// `Data.type` of a chatter keepalive request.
pub const PING_TYPE: &str = "HatChatter.Ping";
/// `Data.type` of a chatter keepalive reply.
pub const PONG_TYPE: &str = "HatChatter.Pong";

/// Largest length field (`L`) accepted: the body length must fit in a `u64`.
///
/// Python always sends the minimal `L` (at most 4 for any sane frame), so a longer
/// field only comes from a broken or hostile peer.
pub const MAX_LENGTH_FIELD: u8 = 8;

/// One `HatChatter.Msg` as written by its sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    /// Sender's per-connection message counter (starts at 1).
    pub id: i64,
    /// Id of the conversation's first message (in the owner's numbering).
    pub first: i64,
    /// True when the sender owns (started) the conversation.
    pub owner: bool,
    /// Always true in hat-open.
    pub token: bool,
    /// True when the conversation ends with this message.
    pub last: bool,
    /// Fully qualified SBS type of `data`, e.g. `HatEventer.MsgInitReq`.
    pub data_type: String,
    /// SBS encoding of the message named by `data_type`.
    pub data: Bytes,
}

/// The conversation fields of a [`Msg`] (everything but `Data`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MsgHeader {
    /// Sender's per-connection message counter (starts at 1).
    pub id: i64,
    /// Id of the conversation's first message (in the owner's numbering).
    pub first: i64,
    /// True when the sender owns (started) the conversation.
    pub owner: bool,
    /// Always true in hat-open.
    pub token: bool,
    /// True when the conversation ends with this message.
    pub last: bool,
}

impl MsgHeader {
    /// First message of a new conversation owned by the sender (`first = id`).
    pub fn new_conversation(id: i64, last: bool) -> Self {
        Self {
            id,
            first: id,
            owner: true,
            token: true,
            last,
        }
    }

    /// A reply in the conversation the peer started with its message `first`.
    pub fn reply(id: i64, first: i64, last: bool) -> Self {
        Self {
            id,
            first,
            owner: false,
            token: true,
            last,
        }
    }

    fn write<W: Writer>(&self, w: &mut W) {
        w.put_integer(self.id);
        w.put_integer(self.first);
        w.put_bool(self.owner);
        w.put_bool(self.token);
        w.put_bool(self.last);
    }
}

impl Msg {
    /// A message with the given header and payload.
    pub fn new(header: MsgHeader, data_type: impl Into<String>, data: Bytes) -> Self {
        Self {
            id: header.id,
            first: header.first,
            owner: header.owner,
            token: header.token,
            last: header.last,
            data_type: data_type.into(),
            data,
        }
    }

    /// The conversation fields.
    pub fn header(&self) -> MsgHeader {
        MsgHeader {
            id: self.id,
            first: self.first,
            owner: self.owner,
            token: self.token,
            last: self.last,
        }
    }

    /// A keepalive request: a new conversation, `last = false`
    /// (`docs/eventer-protocol.md` 3.5).
    pub fn ping(id: i64) -> Self {
        Self::new(
            MsgHeader::new_conversation(id, false),
            PING_TYPE,
            Bytes::new(),
        )
    }

    /// The keepalive reply to the peer's Ping `ping_id`: `last = true`
    /// (`docs/eventer-protocol.md` 3.5).
    pub fn pong(id: i64, ping_id: i64) -> Self {
        Self::new(MsgHeader::reply(id, ping_id, true), PONG_TYPE, Bytes::new())
    }

    /// True for `HatChatter.Ping`.
    pub fn is_ping(&self) -> bool {
        self.data_type == PING_TYPE
    }

    /// True for `HatChatter.Pong`.
    pub fn is_pong(&self) -> bool {
        self.data_type == PONG_TYPE
    }
}

/// Errors of the framing layer. Each one ends the connection.
#[derive(Debug, thiserror::Error)]
pub enum ChatterError {
    /// Socket error.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The length-of-length byte was zero, or the length itself was zero.
    #[error("invalid frame length prefix: {0}")]
    InvalidLength(String),
    /// The announced body is bigger than the configured maximum.
    #[error("frame of {size} bytes exceeds the maximum of {max} bytes")]
    FrameTooLarge {
        /// Announced size (saturated at `u64::MAX`).
        size: u64,
        /// Configured maximum.
        max: usize,
    },
    /// The body is not a valid `HatChatter.Msg`.
    #[error("invalid chatter message: {0}")]
    InvalidMsg(#[from] crate::sbs::SbsError),
    /// Incomplete frames of all connections sharing one [`InputBudget`] would hold
    /// more than its limit (many peers each sending most of a large frame).
    #[error(
        "a frame of {frame} bytes would take the incomplete frames of all connections past \
         the limit of {limit} bytes (max_buffered_input)"
    )]
    InputBudgetExceeded {
        /// Size (prefix and body) of the frame that did not fit.
        frame: usize,
        /// The budget's limit.
        limit: usize,
    },
    /// The peer closed the stream in the middle of a frame.
    #[error("connection closed in the middle of a frame ({buffered} bytes buffered)")]
    TruncatedFrame {
        /// Bytes of the incomplete frame that had arrived.
        buffered: usize,
    },
}

/// Bytes of the `[L][N]` prefix for a body of `body_len` bytes (minimal `L`, at least 1).
pub fn prefix_len(body_len: usize) -> usize {
    1 + length_field_len(body_len)
}

fn length_field_len(body_len: usize) -> usize {
    let bits = usize::BITS - body_len.leading_zeros();
    (bits as usize).div_ceil(8).max(1)
}

/// Appends the `[L][N]` prefix for a body of `body_len` bytes.
pub fn put_prefix(body_len: usize, dst: &mut BytesMut) {
    let l = length_field_len(body_len);
    // `l` is at most size_of::<usize>() (8), so it fits a byte.
    dst.put_u8(l as u8);
    dst.put_slice(&(body_len as u64).to_be_bytes()[8 - l..]);
}

/// Appends one complete frame whose `Data.data` (of exactly `data_len` bytes) is
/// written by `write_data` straight into `dst`: no intermediate buffer.
///
/// `write_data` must append exactly `data_len` bytes; the frame is corrupt otherwise
/// (checked in debug builds).
pub fn encode_frame_with(
    header: &MsgHeader,
    data_type: &str,
    data_len: usize,
    write_data: impl FnOnce(&mut BytesMut),
    dst: &mut BytesMut,
) {
    put_frame_head(header, data_type, data_len, 0, dst);
    let before = dst.len();
    write_data(dst);
    debug_assert_eq!(dst.len() - before, data_len, "Data.data size mismatch");
}

/// Appends everything of a frame before its `data_len` bytes of `Data.data`: the
/// length prefix, the header, the data type and the data's length. Reserves room for
/// the data too, less the `have` bytes of it that `dst` already holds elsewhere.
pub(crate) fn put_frame_head(
    header: &MsgHeader,
    data_type: &str,
    data_len: usize,
    have: usize,
    dst: &mut BytesMut,
) {
    let mut size = SizeCounter::default();
    header.write(&mut size);
    size.put_str(data_type);
    size.put_count(data_len);
    let body_len = size.0 + data_len;
    dst.reserve((prefix_len(body_len) + body_len).saturating_sub(have));
    put_prefix(body_len, dst);
    header.write(dst);
    dst.put_str(data_type);
    dst.put_count(data_len);
}

/// Appends one complete frame (prefix + body) for `msg` to `dst`.
pub fn encode_frame(msg: &Msg, dst: &mut BytesMut) {
    encode_frame_with(
        &msg.header(),
        &msg.data_type,
        msg.data.len(),
        |dst| dst.put_slice(&msg.data),
        dst,
    );
}

/// Decodes the SBS body of a frame (without the length prefix).
pub fn decode_msg(body: &[u8]) -> Result<Msg, ChatterError> {
    let mut r = Reader::new(body);
    let (header, data_type) = read_header(&mut r)?;
    let data = Bytes::copy_from_slice(r.bytes()?);
    r.finish()?;
    Ok(Msg::new(header, data_type, data))
}

/// Decodes the SBS body of a frame; `data` shares `body`'s memory (no copy).
pub fn decode_msg_bytes(body: Bytes) -> Result<Msg, ChatterError> {
    let mut r = Reader::new(&body);
    let (header, data_type) = read_header(&mut r)?;
    let data_len = r.bytes()?.len();
    r.finish()?;
    let data = body.slice(body.len() - data_len..);
    Ok(Msg::new(header, data_type, data))
}

fn read_header(r: &mut Reader<'_>) -> Result<(MsgHeader, String), SbsError> {
    let header = MsgHeader {
        id: r.integer()?,
        first: r.integer()?,
        owner: r.boolean()?,
        token: r.boolean()?,
        last: r.boolean()?,
    };
    Ok((header, r.string()?))
}

/// Bytes that the incomplete frames of several connections may hold together: each
/// codec takes a frame's whole size (as announced by its prefix) from the budget while
/// the frame is incomplete and gives it back once the frame is decoded or the codec is
/// dropped. Cheap to clone (a shared counter); equal when shared.
#[derive(Debug, Clone)]
pub struct InputBudget {
    used: Arc<AtomicUsize>,
    limit: usize,
}

impl InputBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            used: Arc::new(AtomicUsize::new(0)),
            limit,
        }
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes held now by incomplete frames.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn try_take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

impl InputBudget {
    /// Takes `bytes` for as long as the returned share lives; `None` when they do not
    /// fit.
    pub fn share(&self, bytes: usize) -> Option<InputShare> {
        self.try_take(bytes).then(|| InputShare {
            _hold: Some(Arc::new(ShareGuard {
                budget: self.clone(),
                bytes,
            })),
        })
    }
}

/// Bytes of an [`InputBudget`] held by a received message until it is dropped (clones
/// share one hold). Ignored by comparisons.
#[derive(Debug, Clone, Default)]
pub struct InputShare {
    /// Only dropped: gives the bytes back.
    _hold: Option<Arc<ShareGuard>>,
}

#[derive(Debug)]
struct ShareGuard {
    budget: InputBudget,
    bytes: usize,
}

impl Drop for ShareGuard {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

impl PartialEq for InputShare {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl Eq for InputShare {}

impl PartialEq for InputBudget {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.used, &other.used) && self.limit == other.limit
    }
}

impl Eq for InputBudget {}

/// tokio-util codec for chatter frames with a maximum body size and, optionally, an
/// [`InputBudget`] shared with other connections.
#[derive(Debug)]
pub struct FrameCodec {
    max_frame_size: usize,
    budget: Option<InputBudget>,
    /// Bytes of `budget` held for the incomplete frame at the start of the buffer.
    held: usize,
}

impl Clone for FrameCodec {
    /// A codec with the same settings and nothing held.
    fn clone(&self) -> Self {
        Self {
            max_frame_size: self.max_frame_size,
            budget: self.budget.clone(),
            held: 0,
        }
    }
}

impl Drop for FrameCodec {
    fn drop(&mut self) {
        self.release();
    }
}

impl FrameCodec {
    /// A codec that rejects frames whose body exceeds `max_frame_size` bytes.
    pub fn new(max_frame_size: usize) -> Self {
        Self {
            max_frame_size,
            budget: None,
            held: 0,
        }
    }

    /// [`FrameCodec::new`] whose incomplete frames are counted against `budget`; a
    /// frame that does not fit ends the connection with
    /// [`ChatterError::InputBudgetExceeded`].
    pub fn with_budget(max_frame_size: usize, budget: Option<InputBudget>) -> Self {
        Self {
            max_frame_size,
            budget,
            held: 0,
        }
    }

    fn release(&mut self) {
        if let Some(budget) = &self.budget {
            if self.held > 0 {
                budget.give_back(self.held);
            }
        }
        self.held = 0;
    }

    /// The configured maximum body size.
    pub fn max_frame_size(&self) -> usize {
        self.max_frame_size
    }

    /// Validates the prefix at the start of `src`; returns `(prefix_len, body_len)`
    /// once the whole prefix is buffered.
    fn parse_prefix(&self, src: &[u8]) -> Result<Option<(usize, usize)>, ChatterError> {
        let Some(&l) = src.first() else {
            return Ok(None);
        };
        if l == 0 {
            return Err(ChatterError::InvalidLength(
                "length-of-length byte is 0".into(),
            ));
        }
        if l > MAX_LENGTH_FIELD {
            return Err(ChatterError::InvalidLength(format!(
                "length field of {l} bytes (at most {MAX_LENGTH_FIELD} accepted)"
            )));
        }
        let l = usize::from(l);
        let Some(field) = src.get(1..1 + l) else {
            return Ok(None);
        };
        let n = field.iter().fold(0u64, |n, &b| (n << 8) | u64::from(b));
        if n == 0 {
            return Err(ChatterError::InvalidLength("frame length is 0".into()));
        }
        match usize::try_from(n) {
            Ok(n) if n <= self.max_frame_size => Ok(Some((1 + l, n))),
            _ => Err(ChatterError::FrameTooLarge {
                size: n,
                max: self.max_frame_size,
            }),
        }
    }
}

impl Default for FrameCodec {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME_SIZE)
    }
}

impl tokio_util::codec::Decoder for FrameCodec {
    type Item = Msg;
    type Error = ChatterError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Msg>, ChatterError> {
        let Some((prefix, body_len)) = self.parse_prefix(src)? else {
            return Ok(None);
        };
        // The size was checked against the maximum before anything is reserved.
        let total = prefix + body_len;
        if src.len() < total {
            if let Some(budget) = &self.budget {
                if self.held < total {
                    if !budget.try_take(total - self.held) {
                        return Err(ChatterError::InputBudgetExceeded {
                            frame: total,
                            limit: budget.limit(),
                        });
                    }
                    self.held = total;
                }
            }
            src.reserve(total - src.len());
            return Ok(None);
        }
        self.release();
        src.advance(prefix);
        let body = src.split_to(body_len).freeze();
        decode_msg_bytes(body).map(Some)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Msg>, ChatterError> {
        match self.decode(src)? {
            Some(msg) => Ok(Some(msg)),
            None if src.is_empty() => Ok(None),
            None => Err(ChatterError::TruncatedFrame {
                buffered: src.len(),
            }),
        }
    }
}

impl tokio_util::codec::Encoder<&Msg> for FrameCodec {
    type Error = ChatterError;

    fn encode(&mut self, msg: &Msg, dst: &mut BytesMut) -> Result<(), ChatterError> {
        encode_frame(msg, dst);
        Ok(())
    }
}

#[cfg(test)]
#[path = "chatter_tests.rs"]
mod tests;
