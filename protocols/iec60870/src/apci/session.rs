//! The sans-IO APCI connection state machine: sequence numbers, the k and w windows,
//! timers t1/t2/t3 and STARTDT/STOPDT, with time given as [`Instant`] inputs.
//!
//! Inputs: [`Session::handle_apdu`] / [`Session::handle_data`] (what the peer sent),
//! [`Session::send_asdu`] (what we want to send), [`Session::handle_timeout`] (the clock
//! reached [`Session::poll_timeout`]), [`Session::close`]. Outputs: bytes to write
//! ([`Session::take_transmit`]) and [`Event`]s ([`Session::poll_event`]); once closed,
//! [`Session::close_reason`] says why and every input is ignored.
//!
//! Behaviour follows hat-drivers' APCI connection and the standard: the controlling
//! (connecting) side sends STARTDT act and counts as enabled from its confirmation on,
//! ignoring STOPDT act; the controlled (listening) side starts stopped and follows the
//! peer's STARTDT/STOPDT act. ASDUs given to send while data transfer is stopped are
//! discarded (as hat does); I-frames received while stopped are still delivered (hat does
//! not check). t3 counts from the last frame received (the standard's idle time).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::{encode_i, encode_s, encode_u, ApciError, Apdu, ApduDecoder, UFunction};
use super::{MAX_ASDU_SIZE, SEQUENCE_MODULO};

/// Largest usable k: at most 32767 I-frames can be outstanding in a 15-bit sequence space.
const MAX_SEND_WINDOW: u16 = SEQUENCE_MODULO - 1;

/// Timers and windows of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// t1: an I-frame or U act we sent must be answered within this; otherwise close.
    pub response_timeout: Duration,
    /// t2: received I-frames are acknowledged at the latest this long after the first
    /// unacknowledged one.
    pub supervisory_timeout: Duration,
    /// t3: after this long without receiving any frame, send TESTFR act.
    pub test_timeout: Duration,
    /// k: at most this many of our I-frames unacknowledged; 0 counts as 1, values above
    /// 32767 as 32767.
    pub send_window_size: u16,
    /// w: acknowledge after this many received I-frames (0 acknowledges every frame).
    pub receive_window_size: u16,
}

impl Default for SessionConfig {
    /// hat-drivers' defaults: t1 15 s, t2 10 s, t3 20 s, k 12, w 8.
    fn default() -> Self {
        SessionConfig {
            response_timeout: Duration::from_secs(15),
            supervisory_timeout: Duration::from_secs(10),
            test_timeout: Duration::from_secs(20),
            send_window_size: 12,
            receive_window_size: 8,
        }
    }
}

/// Which end of the connection this session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The connecting side (master): sends STARTDT act at start.
    Controlling,
    /// The listening side (slave, outstation): answers STARTDT/STOPDT.
    Controlled,
}

/// Position of an ASDU in the stream of I-frames this session sent (0, 1, 2, ...; not
/// wrapped like N(S)), for waiting on its acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SendId(pub u64);

/// What [`Session::send_asdu`] did with an ASDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    /// Framed into the transmit buffer as an I-frame.
    Sent(SendId),
    /// Dropped because data transfer is stopped (STOPDT, or STARTDT not confirmed yet).
    Discarded,
}

/// Why [`Session::send_asdu`] did not take an ASDU; it is handed back untouched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// k I-frames are unacknowledged: offer it again after the next
    /// [`Event::Acknowledged`].
    WindowFull(Bytes),
    /// The session is closed.
    Closed(Bytes),
    /// Longer than the 249 bytes an I-frame can carry.
    AsduTooLong(Bytes),
}

/// What a session reports to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An ASDU the peer sent, in order.
    Received(Bytes),
    /// Every I-frame with a [`SendId`] below this one is acknowledged by the peer.
    Acknowledged(SendId),
    /// Data transfer started (`true`) or stopped (`false`).
    Enabled(bool),
}

/// What t1 expired waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutCause {
    /// The acknowledgement of an I-frame we sent.
    Acknowledgement,
    /// TESTFR con after our TESTFR act.
    TestFrCon,
    /// STARTDT con after our STARTDT act.
    StartDtCon,
}

impl std::fmt::Display for TimeoutCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TimeoutCause::Acknowledgement => "the acknowledgement of an I-frame",
            TimeoutCause::TestFrCon => "TESTFR con",
            TimeoutCause::StartDtCon => "STARTDT con",
        })
    }
}

/// Why a connection ended. The session itself closes with `Local`, `Protocol` and
/// `ResponseTimeout`; the I/O shell adds `PeerClosed` and `Io`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloseReason {
    /// Closed on our side (by the owner, or every handle dropped).
    #[error("closed locally")]
    Local,
    /// The peer closed the TCP connection.
    #[error("closed by the peer")]
    PeerClosed,
    /// Reading or writing the socket failed.
    #[error("I/O error: {0}")]
    Io(String),
    /// The peer broke the framing or the sequence rules.
    #[error("protocol violation: {0}")]
    Protocol(ApciError),
    /// t1 expired.
    #[error("response timeout (t1) waiting for {0}")]
    ResponseTimeout(TimeoutCause),
}

/// The APCI state of one connection. Deterministic: same inputs, same outputs.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    role: Role,
    enabled: bool,
    /// N(S) of our next I-frame.
    send_seq: u16,
    /// N(S) we expect in the peer's next I-frame (our N(R)).
    recv_seq: u16,
    /// Send times of our unacknowledged I-frames, oldest first (at most k entries: the
    /// window bounds it).
    unacked: VecDeque<Instant>,
    /// I-frames sent since the session began (the next [`SendId`]).
    sent_total: u64,
    /// Received I-frames not yet acknowledged by us (counts towards w).
    unacked_received: u16,
    /// t2 deadline, running while received I-frames are unacknowledged.
    supervisory_deadline: Option<Instant>,
    /// t3 deadline: last frame received plus t3.
    idle_deadline: Instant,
    /// t1 deadline of our outstanding TESTFR act.
    test_deadline: Option<Instant>,
    /// t1 deadline of our outstanding STARTDT act.
    startdt_deadline: Option<Instant>,
    transmit: BytesMut,
    /// Events not yet polled; bounded by the owner, who polls after every input (at most
    /// a few events per input APDU).
    events: VecDeque<Event>,
    closed: Option<CloseReason>,
}

impl Session {
    /// A session for a connection that opened at `now`. A controlling session starts by
    /// writing STARTDT act.
    pub fn new(config: SessionConfig, role: Role, now: Instant) -> Session {
        let mut config = config;
        config.send_window_size = config.send_window_size.clamp(1, MAX_SEND_WINDOW);
        let mut session = Session {
            config,
            role,
            enabled: false,
            send_seq: 0,
            recv_seq: 0,
            unacked: VecDeque::with_capacity(usize::from(config.send_window_size)),
            sent_total: 0,
            unacked_received: 0,
            supervisory_deadline: None,
            idle_deadline: now + config.test_timeout,
            test_deadline: None,
            startdt_deadline: None,
            transmit: BytesMut::new(),
            events: VecDeque::new(),
            closed: None,
        };
        if role == Role::Controlling {
            encode_u(UFunction::StartDtAct, &mut session.transmit);
            session.startdt_deadline = Some(now + config.response_timeout);
        }
        session
    }

    /// The configuration in effect (k clamped to 1..=32767).
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// This session's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether data transfer is started (ASDUs given to send are framed, not discarded).
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Why the session closed, once it has.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        self.closed.as_ref()
    }

    /// Whether the session has closed.
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// Closes the session with `reason` unless it is closed already (the first reason wins).
    pub fn close(&mut self, reason: CloseReason) {
        if self.closed.is_none() {
            self.closed = Some(reason);
        }
    }

    /// N(S) of the next I-frame we send.
    pub fn send_seq(&self) -> u16 {
        self.send_seq
    }

    /// N(S) expected in the peer's next I-frame.
    pub fn recv_seq(&self) -> u16 {
        self.recv_seq
    }

    /// Our I-frames the peer has not acknowledged yet.
    pub fn unacknowledged(&self) -> usize {
        self.unacked.len()
    }

    /// The [`SendId`] the next framed ASDU gets (how many I-frames were sent so far).
    pub fn next_send_id(&self) -> SendId {
        SendId(self.sent_total)
    }

    /// Whether [`Session::send_asdu`] would take an ASDU now: open, and the window has
    /// room (or data transfer is stopped, so it would be discarded).
    pub fn can_send(&self) -> bool {
        self.closed.is_none()
            && (!self.enabled || self.unacked.len() < usize::from(self.config.send_window_size))
    }

    /// Frames `asdu` as the next I-frame (carrying our current N(R), which also
    /// acknowledges what we received), or discards it while data transfer is stopped.
    pub fn send_asdu(&mut self, asdu: Bytes, now: Instant) -> Result<SendOutcome, SendError> {
        if self.closed.is_some() {
            return Err(SendError::Closed(asdu));
        }
        if asdu.len() > MAX_ASDU_SIZE {
            return Err(SendError::AsduTooLong(asdu));
        }
        if !self.enabled {
            return Ok(SendOutcome::Discarded);
        }
        if self.unacked.len() >= usize::from(self.config.send_window_size) {
            return Err(SendError::WindowFull(asdu));
        }
        if encode_i(self.send_seq, self.recv_seq, &asdu, &mut self.transmit).is_err() {
            return Err(SendError::AsduTooLong(asdu));
        }
        // An I-frame carries N(R): it acknowledges everything received, like an S-frame.
        self.unacked_received = 0;
        self.supervisory_deadline = None;
        self.unacked.push_back(now);
        self.send_seq = (self.send_seq + 1) % SEQUENCE_MODULO;
        let id = SendId(self.sent_total);
        self.sent_total += 1;
        Ok(SendOutcome::Sent(id))
    }

    /// Decodes and handles every whole APDU at the front of `buf` (partial frames stay in
    /// it). A decoding error closes the session with [`CloseReason::Protocol`].
    pub fn handle_data(&mut self, buf: &mut BytesMut, now: Instant) {
        let mut decoder = ApduDecoder::new();
        while self.closed.is_none() {
            match decoder.decode(buf) {
                Ok(Some(apdu)) => self.handle_apdu(apdu, now),
                Ok(None) => return,
                Err(error) => self.close(CloseReason::Protocol(error)),
            }
        }
    }

    /// Handles one APDU the peer sent at `now`.
    pub fn handle_apdu(&mut self, apdu: Apdu, now: Instant) {
        if self.closed.is_some() {
            return;
        }
        self.idle_deadline = now + self.config.test_timeout;
        match apdu {
            Apdu::I {
                send_seq,
                recv_seq,
                asdu,
            } => {
                if !self.acknowledge(recv_seq) {
                    return;
                }
                if send_seq != self.recv_seq {
                    self.close(CloseReason::Protocol(ApciError::SequenceMismatch {
                        expected: self.recv_seq,
                        received: send_seq,
                    }));
                    return;
                }
                self.recv_seq = (self.recv_seq + 1) % SEQUENCE_MODULO;
                self.supervisory_deadline
                    .get_or_insert(now + self.config.supervisory_timeout);
                // hat-drivers passes on no empty ASDU either.
                if !asdu.is_empty() {
                    self.events.push_back(Event::Received(asdu));
                }
                self.unacked_received = self.unacked_received.saturating_add(1);
                if self.unacked_received >= self.config.receive_window_size {
                    self.write_s();
                }
            }
            Apdu::S { recv_seq } => {
                self.acknowledge(recv_seq);
            }
            Apdu::U(function) => self.handle_u(function),
        }
    }

    fn handle_u(&mut self, function: UFunction) {
        match function {
            UFunction::StartDtAct => {
                encode_u(UFunction::StartDtCon, &mut self.transmit);
                self.set_enabled(true);
            }
            // The controlling side stays enabled (hat-drivers' `always_enabled`); a
            // controlled side first acknowledges what it received, as hat does.
            UFunction::StopDtAct if self.role == Role::Controlled => {
                self.write_s();
                self.set_enabled(false);
                encode_u(UFunction::StopDtCon, &mut self.transmit);
            }
            UFunction::StartDtCon if self.startdt_deadline.is_some() => {
                self.startdt_deadline = None;
                self.set_enabled(true);
            }
            UFunction::TestFrAct => encode_u(UFunction::TestFrCon, &mut self.transmit),
            UFunction::TestFrCon => self.test_deadline = None,
            UFunction::StopDtAct | UFunction::StartDtCon | UFunction::StopDtCon => {}
        }
    }

    fn set_enabled(&mut self, enabled: bool) {
        if self.enabled != enabled {
            self.enabled = enabled;
            self.events.push_back(Event::Enabled(enabled));
        }
    }

    /// Applies the peer's N(R); false (and closed) if it acknowledges an unsent frame.
    fn acknowledge(&mut self, ack: u16) -> bool {
        // The window is at most 32767 frames, so the distance mod 2^15 is unambiguous.
        let oldest = self.send_seq.wrapping_sub(self.unacked.len() as u16) % SEQUENCE_MODULO;
        let newly = usize::from(ack.wrapping_sub(oldest) % SEQUENCE_MODULO);
        if newly > self.unacked.len() {
            self.close(CloseReason::Protocol(ApciError::AckForUnsent {
                ack,
                acked: oldest,
                sent: self.send_seq,
            }));
            return false;
        }
        if newly > 0 {
            self.unacked.drain(..newly);
            let acked_total = self.sent_total - self.unacked.len() as u64;
            self.events
                .push_back(Event::Acknowledged(SendId(acked_total)));
        }
        true
    }

    fn write_s(&mut self) {
        encode_s(self.recv_seq, &mut self.transmit);
        self.unacked_received = 0;
        self.supervisory_deadline = None;
    }

    /// The next instant [`Session::handle_timeout`] must be called at; `None` once closed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed.is_some() {
            return None;
        }
        let t1 = self
            .unacked
            .front()
            .map(|sent| *sent + self.config.response_timeout);
        let t3 = match self.test_deadline {
            Some(deadline) => deadline,
            None => self.idle_deadline,
        };
        [
            t1,
            self.supervisory_deadline,
            self.startdt_deadline,
            Some(t3),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Handles every timer due at `now`: t1 expiry closes, t2 writes an S-frame, t3 writes
    /// TESTFR act (answered within t1).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed.is_some() {
            return;
        }
        let t1 = self.config.response_timeout;
        let expired = |deadline: Option<Instant>| deadline.is_some_and(|d| d <= now);
        if expired(self.startdt_deadline) {
            self.close(CloseReason::ResponseTimeout(TimeoutCause::StartDtCon));
        } else if expired(self.test_deadline) {
            self.close(CloseReason::ResponseTimeout(TimeoutCause::TestFrCon));
        } else if expired(self.unacked.front().map(|sent| *sent + t1)) {
            self.close(CloseReason::ResponseTimeout(TimeoutCause::Acknowledgement));
        }
        if self.closed.is_some() {
            return;
        }
        if expired(self.supervisory_deadline) {
            self.write_s();
        }
        if self.test_deadline.is_none() && self.idle_deadline <= now {
            encode_u(UFunction::TestFrAct, &mut self.transmit);
            self.test_deadline = Some(now + t1);
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether there are bytes to write.
    pub fn has_transmit(&self) -> bool {
        !self.transmit.is_empty()
    }

    /// Takes the bytes to write (every frame produced so far, in order).
    pub fn take_transmit(&mut self) -> BytesMut {
        self.transmit.split()
    }
}

/// Decodes every frame of `bytes` (for tests and logs); stops at the first error.
pub fn decode_all(bytes: &[u8]) -> Result<Vec<Apdu>, ApciError> {
    let mut buf = BytesMut::from(bytes);
    let mut decoder = ApduDecoder::new();
    let mut frames = Vec::new();
    while let Some(apdu) = decoder.decode(&mut buf)? {
        frames.push(apdu);
    }
    Ok(frames)
}
