//! Chatter framing (`[L][N big-endian, L bytes][SBS HatChatter.Msg]`) and the message
//! header. Pure byte code: no sockets, drivable from tests and the fuzzer.

use bytes::{Bytes, BytesMut};

/// Default maximum frame body size accepted from a peer (16 MiB).
pub const DEFAULT_MAX_FRAME_SIZE: usize = 16 * 1024 * 1024;

/// `Data.type` of a chatter keepalive request.
pub const PING_TYPE: &str = "HatChatter.Ping";
/// `Data.type` of a chatter keepalive reply.
pub const PONG_TYPE: &str = "HatChatter.Pong";

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
    /// The peer closed the stream in the middle of a frame.
    #[error("connection closed in the middle of a frame ({buffered} bytes buffered)")]
    TruncatedFrame {
        /// Bytes of the incomplete frame that had arrived.
        buffered: usize,
    },
}

/// Appends one complete frame (prefix + body) for `msg` to `dst`.
pub fn encode_frame(msg: &Msg, dst: &mut BytesMut) {
    let _ = (msg, dst);
    todo!("issue 2: chatter framing")
}

/// Decodes the SBS body of a frame (without the length prefix).
pub fn decode_msg(body: &[u8]) -> Result<Msg, ChatterError> {
    let _ = body;
    todo!("issue 2: chatter framing")
}

/// tokio-util codec for chatter frames with a maximum body size.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    max_frame_size: usize,
}

impl FrameCodec {
    /// A codec that rejects frames whose body exceeds `max_frame_size` bytes.
    pub fn new(max_frame_size: usize) -> Self {
        Self { max_frame_size }
    }

    /// The configured maximum body size.
    pub fn max_frame_size(&self) -> usize {
        self.max_frame_size
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
        let _ = src;
        todo!("issue 2: chatter framing")
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Msg>, ChatterError> {
        let _ = src;
        todo!("issue 2: chatter framing")
    }
}

impl tokio_util::codec::Encoder<&Msg> for FrameCodec {
    type Error = ChatterError;

    fn encode(&mut self, msg: &Msg, dst: &mut BytesMut) -> Result<(), ChatterError> {
        encode_frame(msg, dst);
        Ok(())
    }
}
