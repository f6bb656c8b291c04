//! The secondary station of one link connection (unbalanced slave or the answering half
//! of a balanced connection): answers requests, repeats the last response when the
//! master repeats a request (same FCB), hands out class 1 / class 2 data, watches the
//! keep-alive timeout.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::frame::{Address, Direction, Frame, ReqFrame, ReqFunction, ResFrame, ResFunction};
use super::{CloseCause, ConnEvent, SendId};

/// Addressing and timing of a secondary station.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecondaryConfig {
    /// Our link address.
    pub address: Address,
    /// DIR of our responses (balanced: the direction of our own requests), `None` in
    /// unbalanced transmission.
    pub direction: Option<Direction>,
    /// Balanced transmission (test function answered, no class data, no ACD).
    pub balanced: bool,
    /// The connection closes when no request arrives for this long; `None`: never.
    pub keep_alive_timeout: Option<Duration>,
}

/// The secondary station state machine of one connection.
#[derive(Debug)]
pub struct Secondary {
    config: SecondaryConfig,
    frame_count_bit: Option<bool>,
    last_response: Option<Frame>,
    class1: VecDeque<(SendId, Bytes)>,
    class2: VecDeque<(SendId, Bytes)>,
    active: bool,
    closed: bool,
    keep_alive_deadline: Option<Instant>,
    events: VecDeque<ConnEvent>,
}

impl Secondary {
    /// A station waiting for the first request.
    pub fn new(config: SecondaryConfig) -> Secondary {
        Secondary {
            config,
            frame_count_bit: None,
            last_response: None,
            class1: VecDeque::new(),
            class2: VecDeque::new(),
            active: false,
            closed: false,
            keep_alive_deadline: None,
            events: VecDeque::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SecondaryConfig {
        &self.config
    }

    /// Whether a request arrived (the connection is open).
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Whether the keep-alive timeout closed the connection.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Queues class 1 data (sets ACD; answered to class 1 and class 2 polls).
    /// [`ConnEvent::SendDone`] once a response carried it.
    pub fn push_class1(&mut self, id: SendId, data: Bytes) {
        if self.closed {
            self.events.push_back(ConnEvent::SendAborted(id));
        } else {
            self.class1.push_back((id, data));
        }
    }

    /// Queues class 2 data (answered to class 2 polls before class 1 data).
    pub fn push_class2(&mut self, id: SendId, data: Bytes) {
        if self.closed {
            self.events.push_back(ConnEvent::SendAborted(id));
        } else {
            self.class2.push_back((id, data));
        }
    }

    /// Class 1 and class 2 data waiting.
    pub fn queued(&self) -> (usize, usize) {
        (self.class1.len(), self.class2.len())
    }

    /// Handles a request addressed to us (or broadcast); returns the response to write,
    /// `None` when none is due (`DataNoRes`, broadcasts are the caller's to suppress).
    pub fn on_request(&mut self, req: &ReqFrame, now: Instant) -> Option<Frame> {
        if self.closed {
            return None;
        }
        if let Some(timeout) = self.config.keep_alive_timeout {
            self.keep_alive_deadline = Some(now + timeout);
        }
        if !self.active {
            self.active = true;
            // A balanced connection opens when the remote answered our reset.
            if !self.config.balanced {
                self.events.push_back(ConnEvent::Opened);
            }
        }
        if req.frame_count_valid {
            if Some(req.frame_count_bit) == self.frame_count_bit {
                // A repetition: the primary missed our response.
                return self.last_response.clone();
            }
            self.frame_count_bit = Some(req.frame_count_bit);
        }
        let (function, data) = match req.function {
            ReqFunction::ResetLink | ReqFunction::ResetProcess => {
                if !req.frame_count_valid {
                    // The next valid FCB is 1.
                    self.frame_count_bit = Some(false);
                }
                (ResFunction::Ack, None)
            }
            ReqFunction::Test if self.config.balanced => (ResFunction::Ack, None),
            ReqFunction::Data | ReqFunction::DataNoRes => {
                if !req.data.is_empty() {
                    self.events.push_back(ConnEvent::Received(req.data.clone()));
                }
                (ResFunction::Ack, None)
            }
            ReqFunction::ReqStatus => (ResFunction::ResStatus, None),
            ReqFunction::ReqAccessDemand if !self.config.balanced => (ResFunction::ResNack, None),
            ReqFunction::ReqData1 if !self.config.balanced => match self.class1.pop_front() {
                Some(item) => (ResFunction::ResData, Some(item)),
                None => (ResFunction::ResNack, None),
            },
            ReqFunction::ReqData2 if !self.config.balanced => {
                match self.class2.pop_front().or_else(|| self.class1.pop_front()) {
                    Some(item) => (ResFunction::ResData, Some(item)),
                    None => (ResFunction::ResNack, None),
                }
            }
            _ => (ResFunction::NotImplemented, None),
        };
        let access_demand = !self.config.balanced && !self.class1.is_empty();
        let response = if !access_demand
            && (function == ResFunction::Ack
                || (function == ResFunction::ResNack && !self.config.balanced))
        {
            Frame::Short
        } else {
            let data = match data {
                Some((id, data)) => {
                    self.events.push_back(ConnEvent::SendDone(id));
                    data
                }
                None => Bytes::new(),
            };
            Frame::Res(ResFrame {
                direction: self.config.direction,
                access_demand,
                data_flow_control: false,
                function,
                address: self.config.address,
                data,
            })
        };
        self.last_response = Some(response.clone());
        Some(response)
    }

    /// When [`Secondary::on_timer`] is next due.
    pub fn next_timer(&self) -> Option<Instant> {
        if self.closed {
            None
        } else {
            self.keep_alive_deadline
        }
    }

    /// Checks the keep-alive timeout.
    pub fn on_timer(&mut self, now: Instant) {
        if let Some(deadline) = self.keep_alive_deadline {
            if now >= deadline && !self.closed {
                self.closed = true;
                for (id, _) in self.class1.drain(..).chain(self.class2.drain(..)) {
                    self.events.push_back(ConnEvent::SendAborted(id));
                }
                self.events
                    .push_back(ConnEvent::Closed(CloseCause::KeepAliveTimeout));
            }
        }
    }

    /// The next event for the connection's owner.
    pub fn poll_event(&mut self) -> Option<ConnEvent> {
        self.events.pop_front()
    }
}
