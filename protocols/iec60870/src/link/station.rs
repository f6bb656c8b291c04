//! The stations of one line: they own the line's turn-taking (one request outstanding at
//! a time), encode frames and route received frames to the connections.
//!
//! All three take the same inputs (a received frame, a timer that expired, requests of
//! the owner) and give the same outputs ([`StationOutput`]): octets to write and
//! connection events. The owner writes the octets in order, keeping the line's silent
//! interval, and calls [`Station::on_timer`] at [`Station::next_timer`].

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;

use super::frame::{encode_to_bytes, Address, Frame, LinkFormat, ReqFrame, ReqFunction};
use super::primary::{Primary, PrimaryConfig};
use super::secondary::{Secondary, SecondaryConfig};
use super::{ConnEvent, ConnKey, SendId};

/// What a station asks its owner to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StationOutput {
    /// Write these octets (one frame) to the line.
    Write(Bytes),
    /// Something happened on a connection.
    Event(ConnKey, ConnEvent),
}

/// Why a connection cannot be added or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StationError {
    /// The address does not fit the address field or is the broadcast address.
    #[error("address {0} is not usable on this line")]
    InvalidAddress(Address),
    /// The connection exists already.
    #[error("connection {0:?} exists already")]
    Exists(ConnKey),
    /// No such connection.
    #[error("no connection {0:?}")]
    Unknown(ConnKey),
    /// The data does not fit one frame, or is empty.
    #[error("{len} octets of user data (1 to {max} fit one frame)")]
    DataSize {
        /// The length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The connection's configuration does not fit this kind of station.
    #[error("the connection configuration does not fit this station")]
    Mismatch,
}

/// The configuration of a connection to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnConfig {
    /// Unbalanced master connection.
    Master(PrimaryConfig),
    /// Unbalanced slave connection.
    Slave(SecondaryConfig),
    /// Balanced connection (both halves; addresses and directions must agree).
    Balanced(PrimaryConfig, SecondaryConfig),
}

/// A station on one line.
pub trait Station {
    /// Adds a connection.
    fn add(&mut self, config: ConnConfig, now: Instant) -> Result<ConnKey, StationError>;
    /// Removes a connection (its queued sends are reported aborted).
    fn remove(&mut self, key: ConnKey);
    /// Queues user data on a connection (`class2`: slave class 2 data).
    fn send(
        &mut self,
        key: ConnKey,
        id: SendId,
        data: Bytes,
        with_ack: bool,
        class2: bool,
        now: Instant,
    ) -> Result<(), StationError>;
    /// A frame arrived.
    fn on_frame(&mut self, frame: Frame, now: Instant);
    /// Time passed: call at [`Station::next_timer`] (earlier calls are harmless).
    fn on_timer(&mut self, now: Instant);
    /// When [`Station::on_timer`] should run next.
    fn next_timer(&self, now: Instant) -> Option<Instant>;
    /// The next output.
    fn poll_output(&mut self) -> Option<StationOutput>;
}

fn check_data(format: &LinkFormat, data: &Bytes) -> Result<(), StationError> {
    let max = format.max_data_len();
    if data.is_empty() || data.len() > max {
        return Err(StationError::DataSize {
            len: data.len(),
            max,
        });
    }
    Ok(())
}

/// The outputs waiting for the owner, and how many writes it has taken: a frame that
/// arrives while a request's octets still wait here was received before the request was
/// written and cannot be its answer.
#[derive(Debug, Default)]
struct Outputs {
    queue: VecDeque<StationOutput>,
    writes_pushed: u64,
    writes_taken: u64,
}

impl Outputs {
    fn push_event(&mut self, key: ConnKey, event: ConnEvent) {
        self.queue.push_back(StationOutput::Event(key, event));
    }

    fn pop(&mut self) -> Option<StationOutput> {
        let output = self.queue.pop_front()?;
        if matches!(output, StationOutput::Write(_)) {
            self.writes_taken += 1;
        }
        Some(output)
    }
}

fn write(format: &LinkFormat, outputs: &mut Outputs, frame: &Frame) {
    // Frames built here always fit: addresses and data lengths are checked on entry.
    if let Ok(octets) = encode_to_bytes(format, frame) {
        outputs.queue.push_back(StationOutput::Write(octets));
        outputs.writes_pushed += 1;
    }
}

/// The request on the line that waits for its answer.
#[derive(Debug, Clone, Copy)]
struct Awaiting {
    key: ConnKey,
    deadline: Instant,
    /// The request's place among the writes ([`Outputs::writes_pushed`] after it).
    write: u64,
}

impl Awaiting {
    /// Whether the owner has taken the request's octets to write them: only a frame
    /// received after that can answer it. (Two stray single characters read in one
    /// chunk would otherwise answer the pending request and the next one, written only
    /// after them; the real answers then came with nothing waiting and were lost.)
    fn written(&self, outputs: &Outputs) -> bool {
        outputs.writes_taken >= self.write
    }
}

/// Turn-taking of primaries sharing a line: round robin, one answer awaited at a time.
#[derive(Debug)]
struct PrimaryLine {
    awaiting: Option<Awaiting>,
    /// The key served last; the next turn starts after it.
    last: Option<ConnKey>,
}

impl PrimaryLine {
    fn new() -> PrimaryLine {
        PrimaryLine {
            awaiting: None,
            last: None,
        }
    }

    /// Gives the line to the next primary that wants it, until one request waits for an
    /// answer.
    fn dispatch<'a>(
        &mut self,
        format: &LinkFormat,
        primaries: impl Iterator<Item = (ConnKey, &'a mut Primary)>,
        outputs: &mut Outputs,
        now: Instant,
    ) {
        if self.awaiting.is_some() {
            return;
        }
        let mut all: Vec<(ConnKey, &mut Primary)> = primaries.collect();
        // Start after the one served last.
        let start = self
            .last
            .and_then(|last| all.iter().position(|(key, _)| *key > last))
            .unwrap_or(0);
        all.rotate_left(start);
        for (key, primary) in all {
            while let Some(req) = primary.next_request(now) {
                self.last = Some(key);
                write(format, outputs, &Frame::Req(req.clone()));
                if expects_response(format, &req) {
                    self.awaiting = Some(Awaiting {
                        key,
                        deadline: now + primary.config().response_timeout,
                        write: outputs.writes_pushed,
                    });
                    return;
                }
            }
        }
    }

    fn next_timer<'a>(
        &self,
        primaries: impl Iterator<Item = &'a Primary>,
        now: Instant,
    ) -> Option<Instant> {
        match self.awaiting {
            Some(awaiting) => Some(awaiting.deadline),
            None => primaries.filter_map(|p| p.wants_line_at(now)).min(),
        }
    }
}

fn expects_response(format: &LinkFormat, req: &ReqFrame) -> bool {
    req.function != ReqFunction::DataNoRes && Some(req.address) != format.address_size.broadcast()
}

fn drain_primary(key: ConnKey, primary: &mut Primary, outputs: &mut Outputs) {
    while let Some(event) = primary.poll_event() {
        outputs.push_event(key, event);
    }
}

fn drain_secondary(key: ConnKey, secondary: &mut Secondary, outputs: &mut Outputs) {
    while let Some(event) = secondary.poll_event() {
        outputs.push_event(key, event);
    }
}

/// Unbalanced master: primaries for several slave addresses, polled in turn.
#[derive(Debug)]
pub struct MasterStation {
    format: LinkFormat,
    conns: BTreeMap<ConnKey, Primary>,
    line: PrimaryLine,
    outputs: Outputs,
}

impl MasterStation {
    /// A master for frames of `format` (DIR unused).
    pub fn new(format: LinkFormat) -> MasterStation {
        MasterStation {
            format,
            conns: BTreeMap::new(),
            line: PrimaryLine::new(),
            outputs: Outputs::default(),
        }
    }

    fn step(&mut self, now: Instant) {
        self.line.dispatch(
            &self.format,
            self.conns.iter_mut().map(|(k, p)| (*k, p)),
            &mut self.outputs,
            now,
        );
        for (key, primary) in &mut self.conns {
            drain_primary(*key, primary, &mut self.outputs);
        }
        self.conns.retain(|_, p| !p.is_closed());
    }
}

fn usable_unbalanced(format: &LinkFormat, address: Address) -> bool {
    match format.address_size.broadcast() {
        Some(broadcast) => address < broadcast,
        None => false,
    }
}

impl Station for MasterStation {
    fn add(&mut self, config: ConnConfig, now: Instant) -> Result<ConnKey, StationError> {
        let ConnConfig::Master(config) = config else {
            return Err(StationError::Mismatch);
        };
        if !usable_unbalanced(&self.format, config.address) {
            return Err(StationError::InvalidAddress(config.address));
        }
        let key = ConnKey {
            direction: None,
            address: config.address,
        };
        if self.conns.contains_key(&key) {
            return Err(StationError::Exists(key));
        }
        self.conns.insert(
            key,
            Primary::new(PrimaryConfig {
                direction: None,
                ..config
            }),
        );
        self.step(now);
        Ok(key)
    }

    fn remove(&mut self, key: ConnKey) {
        // A request of the removed connection that waits for its answer keeps the line
        // until the answer (ignored) or its timeout: freeing it at once would take that
        // late answer for the answer to the next request.
        self.conns.remove(&key);
    }

    fn send(
        &mut self,
        key: ConnKey,
        id: SendId,
        data: Bytes,
        with_ack: bool,
        _class2: bool,
        now: Instant,
    ) -> Result<(), StationError> {
        check_data(&self.format, &data)?;
        let primary = self.conns.get_mut(&key).ok_or(StationError::Unknown(key))?;
        primary.push_send(id, data, with_ack, now);
        self.step(now);
        Ok(())
    }

    fn on_frame(&mut self, frame: Frame, now: Instant) {
        let awaiting = self
            .line
            .awaiting
            .filter(|awaiting| awaiting.written(&self.outputs));
        let answers = match (&frame, awaiting) {
            (Frame::Short, Some(_)) => true,
            (Frame::Res(res), Some(awaiting)) => res.address == awaiting.key.address,
            _ => false,
        };
        if !answers {
            // A response nobody waits for is a late answer to an earlier request (an
            // unbalanced slave speaks only when asked): one a stray single character
            // was taken for. Its data is not lost.
            if let Frame::Res(res) = &frame {
                if let Some(primary) = self.conns.get_mut(&ConnKey {
                    direction: None,
                    address: res.address,
                }) {
                    primary.on_late_response(res, now);
                }
                self.step(now);
            }
            return;
        }
        let Some(awaiting) = awaiting else {
            return;
        };
        self.line.awaiting = None;
        if let Some(primary) = self.conns.get_mut(&awaiting.key) {
            primary.on_response(&frame, now);
        }
        self.step(now);
    }

    fn on_timer(&mut self, now: Instant) {
        if let Some(awaiting) = self.line.awaiting {
            if now < awaiting.deadline {
                return;
            }
            self.line.awaiting = None;
            if let Some(primary) = self.conns.get_mut(&awaiting.key) {
                primary.on_timeout();
            }
        }
        self.step(now);
    }

    fn next_timer(&self, now: Instant) -> Option<Instant> {
        self.line.next_timer(self.conns.values(), now)
    }

    fn poll_output(&mut self) -> Option<StationOutput> {
        self.outputs.pop()
    }
}

/// Unbalanced slave: secondaries for one or more addresses.
#[derive(Debug)]
pub struct SlaveStation {
    format: LinkFormat,
    conns: BTreeMap<ConnKey, Secondary>,
    outputs: Outputs,
}

impl SlaveStation {
    /// A slave for frames of `format` (DIR unused).
    pub fn new(format: LinkFormat) -> SlaveStation {
        SlaveStation {
            format,
            conns: BTreeMap::new(),
            outputs: Outputs::default(),
        }
    }

    fn drain(&mut self) {
        for (key, secondary) in &mut self.conns {
            drain_secondary(*key, secondary, &mut self.outputs);
        }
        self.conns.retain(|_, s| !s.is_closed());
    }
}

impl Station for SlaveStation {
    fn add(&mut self, config: ConnConfig, _now: Instant) -> Result<ConnKey, StationError> {
        let ConnConfig::Slave(config) = config else {
            return Err(StationError::Mismatch);
        };
        if !usable_unbalanced(&self.format, config.address) {
            return Err(StationError::InvalidAddress(config.address));
        }
        let key = ConnKey {
            direction: None,
            address: config.address,
        };
        if self.conns.contains_key(&key) {
            return Err(StationError::Exists(key));
        }
        self.conns.insert(
            key,
            Secondary::new(SecondaryConfig {
                direction: None,
                balanced: false,
                ..config
            }),
        );
        Ok(key)
    }

    fn remove(&mut self, key: ConnKey) {
        self.conns.remove(&key);
    }

    fn send(
        &mut self,
        key: ConnKey,
        id: SendId,
        data: Bytes,
        _with_ack: bool,
        class2: bool,
        _now: Instant,
    ) -> Result<(), StationError> {
        check_data(&self.format, &data)?;
        let secondary = self.conns.get_mut(&key).ok_or(StationError::Unknown(key))?;
        if class2 {
            secondary.push_class2(id, data);
        } else {
            secondary.push_class1(id, data);
        }
        self.drain();
        Ok(())
    }

    fn on_frame(&mut self, frame: Frame, now: Instant) {
        let Frame::Req(req) = frame else {
            return;
        };
        let broadcast = Some(req.address) == self.format.address_size.broadcast();
        for (key, secondary) in &mut self.conns {
            if !broadcast && key.address != req.address {
                continue;
            }
            let response = secondary.on_request(&req, now);
            if let Some(response) = response.filter(|_| expects_response(&self.format, &req)) {
                write(&self.format, &mut self.outputs, &response);
            }
        }
        self.drain();
    }

    fn on_timer(&mut self, now: Instant) {
        for secondary in self.conns.values_mut() {
            secondary.on_timer(now);
        }
        self.drain();
    }

    fn next_timer(&self, _now: Instant) -> Option<Instant> {
        self.conns.values().filter_map(Secondary::next_timer).min()
    }

    fn poll_output(&mut self) -> Option<StationOutput> {
        self.outputs.pop()
    }
}

/// Balanced: each connection is a primary (our requests) and a secondary (answers to
/// the remote's requests) at once.
#[derive(Debug)]
pub struct BalancedStation {
    format: LinkFormat,
    conns: BTreeMap<ConnKey, (Primary, Secondary)>,
    line: PrimaryLine,
    outputs: Outputs,
}

impl BalancedStation {
    /// A balanced station for frames of `format` (DIR is used whatever
    /// `format.direction_valid` says).
    pub fn new(format: LinkFormat) -> BalancedStation {
        BalancedStation {
            format: LinkFormat {
                direction_valid: true,
                ..format
            },
            conns: BTreeMap::new(),
            line: PrimaryLine::new(),
            outputs: Outputs::default(),
        }
    }

    fn step(&mut self, now: Instant) {
        self.line.dispatch(
            &self.format,
            self.conns.iter_mut().map(|(k, (p, _))| (*k, p)),
            &mut self.outputs,
            now,
        );
        for (key, (primary, secondary)) in &mut self.conns {
            drain_secondary(*key, secondary, &mut self.outputs);
            drain_primary(*key, primary, &mut self.outputs);
        }
        self.conns.retain(|_, (p, _)| !p.is_closed());
    }
}

impl Station for BalancedStation {
    fn add(&mut self, config: ConnConfig, now: Instant) -> Result<ConnKey, StationError> {
        let ConnConfig::Balanced(primary, secondary) = config else {
            return Err(StationError::Mismatch);
        };
        if primary.direction.is_none()
            || primary.address != secondary.address
            || primary.direction != secondary.direction
        {
            return Err(StationError::Mismatch);
        }
        if primary.address > self.format.address_size.max_address() {
            return Err(StationError::InvalidAddress(primary.address));
        }
        let key = ConnKey {
            direction: primary.direction,
            address: primary.address,
        };
        if self.conns.contains_key(&key) {
            return Err(StationError::Exists(key));
        }
        let secondary = Secondary::new(SecondaryConfig {
            balanced: true,
            keep_alive_timeout: None,
            ..secondary
        });
        self.conns.insert(key, (Primary::new(primary), secondary));
        self.step(now);
        Ok(key)
    }

    fn remove(&mut self, key: ConnKey) {
        // A request of the removed connection that waits for its answer keeps the line
        // until the answer (ignored) or its timeout: freeing it at once would take that
        // late answer for the answer to the next request.
        self.conns.remove(&key);
    }

    fn send(
        &mut self,
        key: ConnKey,
        id: SendId,
        data: Bytes,
        with_ack: bool,
        _class2: bool,
        now: Instant,
    ) -> Result<(), StationError> {
        check_data(&self.format, &data)?;
        let (primary, _) = self.conns.get_mut(&key).ok_or(StationError::Unknown(key))?;
        primary.push_send(id, data, with_ack, now);
        self.step(now);
        Ok(())
    }

    fn on_frame(&mut self, frame: Frame, now: Instant) {
        match &frame {
            Frame::Req(req) => {
                // The remote's requests carry its direction; ours is the inverse.
                let key = ConnKey {
                    direction: req.direction.map(|d| d.inverse()),
                    address: req.address,
                };
                if let Some((_, secondary)) = self.conns.get_mut(&key) {
                    let response = secondary.on_request(req, now);
                    if let Some(response) =
                        response.filter(|_| req.function != ReqFunction::DataNoRes)
                    {
                        write(&self.format, &mut self.outputs, &response);
                    }
                }
            }
            Frame::Res(_) | Frame::Short => {
                let Some(awaiting) = self
                    .line
                    .awaiting
                    .filter(|awaiting| awaiting.written(&self.outputs))
                else {
                    return;
                };
                if let Frame::Res(res) = &frame {
                    if res.address != awaiting.key.address {
                        return;
                    }
                }
                self.line.awaiting = None;
                if let Some((primary, _)) = self.conns.get_mut(&awaiting.key) {
                    primary.on_response(&frame, now);
                }
            }
        }
        self.step(now);
    }

    fn on_timer(&mut self, now: Instant) {
        if let Some(awaiting) = self.line.awaiting {
            if now < awaiting.deadline {
                return;
            }
            self.line.awaiting = None;
            if let Some((primary, _)) = self.conns.get_mut(&awaiting.key) {
                primary.on_timeout();
            }
        }
        self.step(now);
    }

    fn next_timer(&self, now: Instant) -> Option<Instant> {
        self.line
            .next_timer(self.conns.values().map(|(p, _)| p), now)
    }

    fn poll_output(&mut self) -> Option<StationOutput> {
        self.outputs.pop()
    }
}
