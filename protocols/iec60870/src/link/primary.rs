//! The primary station of one link connection (unbalanced master or the controlling half
//! of a balanced connection): link reset, FCB toggling, repetitions, class 1 / class 2
//! polling (unbalanced), status requests (balanced). It does not own the line: the
//! station asks it for its next request when the line is free and hands it the answer
//! or the timeout.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::frame::{Address, Direction, Frame, ReqFrame, ReqFunction, ResFrame, ResFunction};
use super::{CloseCause, ConnEvent, SendId};

/// Timing and addressing of a primary station.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimaryConfig {
    /// The remote link address.
    pub address: Address,
    /// DIR of our requests (balanced), `None` in unbalanced transmission.
    pub direction: Option<Direction>,
    /// How long to wait for the answer to a request.
    pub response_timeout: Duration,
    /// Repetitions of an unanswered request before the connection closes (the link reset
    /// of an opening connection is repeated without limit, as hat does).
    pub send_retry_count: u32,
    /// Pause between class 1 polls, cut short by ACD (unbalanced); `None`: no polling.
    pub poll_class1_delay: Option<Duration>,
    /// Pause between class 2 polls (unbalanced); `None`: no polling.
    pub poll_class2_delay: Option<Duration>,
    /// A status request after this long without a request (balanced); `None`: never.
    pub status_delay: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Job {
    Reset,
    Data(SendId),
    Class1,
    Class2,
    Status,
}

#[derive(Debug)]
struct Outstanding {
    job: Job,
    frame: ReqFrame,
    repetitions: u32,
    /// Waiting to be written again after a timeout.
    resend: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Resetting,
    Ready,
    Closed,
}

#[derive(Debug)]
struct Queued {
    id: SendId,
    data: Bytes,
    with_ack: bool,
    since: Instant,
}

/// The primary station state machine of one connection.
#[derive(Debug)]
pub struct Primary {
    config: PrimaryConfig,
    state: State,
    frame_count_bit: bool,
    data_flow_control: bool,
    queue: VecDeque<Queued>,
    class1_due: Option<Instant>,
    class2_due: Option<Instant>,
    status_due: Option<Instant>,
    outstanding: Option<Outstanding>,
    /// The last answered request was answered at its first transmission: the remote
    /// has not been asked to repeat a response, so a late one is not a duplicate.
    answered_first_time: bool,
    events: VecDeque<ConnEvent>,
}

impl Primary {
    /// A connection that starts by resetting the remote link.
    pub fn new(config: PrimaryConfig) -> Primary {
        Primary {
            config,
            state: State::Resetting,
            frame_count_bit: false,
            data_flow_control: false,
            queue: VecDeque::new(),
            class1_due: None,
            class2_due: None,
            status_due: None,
            outstanding: None,
            answered_first_time: false,
            events: VecDeque::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PrimaryConfig {
        &self.config
    }

    /// Whether the remote acknowledged the link reset.
    pub fn is_open(&self) -> bool {
        self.state == State::Ready
    }

    /// Whether the connection closed (no answer after the repetitions).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Queues user data: confirmed (`Data`, FCV = 1) or not (`DataNoRes`). The outcome is
    /// a [`ConnEvent::SendDone`] or [`ConnEvent::SendFailed`] with `id`; a closing
    /// connection fails what is left with [`ConnEvent::SendAborted`].
    pub fn push_send(&mut self, id: SendId, data: Bytes, with_ack: bool, now: Instant) {
        if self.state == State::Closed {
            self.events.push_back(ConnEvent::SendAborted(id));
            return;
        }
        self.queue.push_back(Queued {
            id,
            data,
            with_ack,
            since: now,
        });
    }

    /// When this connection next wants the line: `Some(t <= now)` means now, `None` means
    /// it has nothing to send (or is waiting for an answer).
    pub fn wants_line_at(&self, now: Instant) -> Option<Instant> {
        if let Some(out) = &self.outstanding {
            return out.resend.then_some(now);
        }
        match self.state {
            State::Closed => None,
            State::Resetting => Some(now),
            State::Ready => [
                self.data_due(),
                self.class1_due,
                self.class2_due,
                self.status_due,
            ]
            .into_iter()
            .flatten()
            .min(),
        }
    }

    fn data_due(&self) -> Option<Instant> {
        let front = self.queue.front()?;
        // With DFC set, confirmed data waits for a response without it.
        (!self.data_flow_control || !front.with_ack).then_some(front.since)
    }

    /// The request to write now, if one is due; the line is ours until its answer (or
    /// [`Primary::on_timeout`]) unless the request expects none (`DataNoRes`, already
    /// reported done).
    pub fn next_request(&mut self, now: Instant) -> Option<ReqFrame> {
        if let Some(out) = &mut self.outstanding {
            if !out.resend {
                return None;
            }
            out.resend = false;
            return Some(out.frame.clone());
        }
        let job = match self.state {
            State::Closed => return None,
            State::Resetting => Job::Reset,
            State::Ready => {
                let due = |t: Option<Instant>| t.filter(|t| *t <= now);
                let candidates = [
                    (due(self.data_due()), Job::Data(0)),
                    (due(self.class1_due), Job::Class1),
                    (due(self.class2_due), Job::Class2),
                    (due(self.status_due), Job::Status),
                ];
                let (_, job) = candidates
                    .into_iter()
                    .filter_map(|(t, job)| t.map(|t| (t, job)))
                    .min_by_key(|(t, _)| *t)?;
                job
            }
        };
        if let Some(delay) = self.config.status_delay {
            self.status_due = Some(now + delay);
        }
        let (function, fcv, data, job) = match job {
            Job::Reset => (ReqFunction::ResetLink, false, Bytes::new(), Job::Reset),
            Job::Class1 => {
                self.class1_due = None;
                (ReqFunction::ReqData1, true, Bytes::new(), Job::Class1)
            }
            Job::Class2 => {
                self.class2_due = None;
                (ReqFunction::ReqData2, true, Bytes::new(), Job::Class2)
            }
            Job::Status => {
                self.status_due = None;
                (ReqFunction::ReqStatus, false, Bytes::new(), Job::Status)
            }
            Job::Data(_) => {
                // data_due() was Some, so the queue has a front.
                let queued = self.queue.pop_front()?;
                if !queued.with_ack {
                    self.events.push_back(ConnEvent::SendDone(queued.id));
                    return Some(self.request(ReqFunction::DataNoRes, false, queued.data));
                }
                (ReqFunction::Data, true, queued.data, Job::Data(queued.id))
            }
        };
        if fcv {
            self.frame_count_bit = !self.frame_count_bit;
        }
        let frame = self.request(function, fcv, data);
        self.outstanding = Some(Outstanding {
            job,
            frame: frame.clone(),
            repetitions: 0,
            resend: false,
        });
        Some(frame)
    }

    fn request(&self, function: ReqFunction, fcv: bool, data: Bytes) -> ReqFrame {
        ReqFrame {
            direction: self.config.direction,
            frame_count_bit: fcv && self.frame_count_bit,
            frame_count_valid: fcv,
            function,
            address: self.config.address,
            data,
        }
    }

    /// Whether a request of ours waits for its answer.
    pub fn is_waiting(&self) -> bool {
        self.outstanding.as_ref().is_some_and(|out| !out.resend)
    }

    /// The answer (a response frame or the single character) to the outstanding request.
    pub fn on_response(&mut self, frame: &Frame, now: Instant) {
        let Some(out) = self.outstanding.take() else {
            return;
        };
        self.answered_first_time = out.repetitions == 0;
        let (function, access_demand, dfc, data) = match frame {
            Frame::Short => (ResFunction::Ack, false, false, Bytes::new()),
            Frame::Res(res) => (
                res.function,
                res.access_demand,
                res.data_flow_control,
                res.data.clone(),
            ),
            Frame::Req(_) => {
                self.outstanding = Some(out);
                return;
            }
        };
        if out.job == Job::Reset {
            if function == ResFunction::Ack {
                self.state = State::Ready;
                self.frame_count_bit = false;
                self.data_flow_control = false;
                self.class1_due = self.config.poll_class1_delay.map(|_| now);
                self.class2_due = self.config.poll_class2_delay.map(|_| now);
                self.status_due = self.config.status_delay.map(|d| now + d);
                self.events.push_back(ConnEvent::Opened);
            }
            // Anything else: the reset is sent again at the next turn.
            return;
        }
        self.data_flow_control = dfc;
        let ok = match function {
            ResFunction::ResData => {
                if !data.is_empty() {
                    self.events.push_back(ConnEvent::Received(data));
                }
                true
            }
            ResFunction::Ack | ResFunction::ResNack | ResFunction::ResStatus => true,
            ResFunction::Nack | ResFunction::NotFunctioning | ResFunction::NotImplemented => false,
        };
        match out.job {
            Job::Data(id) => self.events.push_back(if ok {
                ConnEvent::SendDone(id)
            } else {
                ConnEvent::SendFailed(id, function)
            }),
            Job::Class1 => {
                self.class1_due = self.config.poll_class1_delay.map(|d| now + d);
            }
            Job::Class2 => {
                self.class2_due = self.config.poll_class2_delay.map(|d| now + d);
            }
            Job::Reset | Job::Status => {}
        }
        if access_demand && self.config.poll_class1_delay.is_some() {
            // ACD: class 1 data waits; poll for it at once.
            self.class1_due = Some(now);
        }
    }

    /// A response that came when no request of this connection waited for it: the late
    /// answer to a request something else was taken for (a stray single character on the
    /// line). Its user data is delivered, unless the last answered request had been
    /// repeated (the remote repeats its last response to a repeated request, so the late
    /// one would be a duplicate); its ACD is honoured. Anything else is ignored.
    pub fn on_late_response(&mut self, res: &ResFrame, now: Instant) {
        if self.state != State::Ready || !self.answered_first_time {
            return;
        }
        if res.function == ResFunction::ResData && !res.data.is_empty() {
            self.events.push_back(ConnEvent::Received(res.data.clone()));
        }
        if res.access_demand && self.config.poll_class1_delay.is_some() {
            self.class1_due = Some(now);
        }
    }

    /// The outstanding request was not answered within the response timeout: it is
    /// repeated (same FCB) at the next turn, or the connection closes after
    /// `send_retry_count` repetitions.
    pub fn on_timeout(&mut self) {
        let Some(out) = &mut self.outstanding else {
            return;
        };
        self.answered_first_time = false;
        if out.job == Job::Reset {
            // hat repeats the reset of an opening connection until it is answered.
            self.outstanding = None;
            return;
        }
        if out.repetitions >= self.config.send_retry_count {
            let retries = out.repetitions;
            self.close(CloseCause::NoResponse { retries });
            return;
        }
        out.repetitions += 1;
        out.resend = true;
    }

    fn close(&mut self, cause: CloseCause) {
        self.state = State::Closed;
        if let Some(Outstanding {
            job: Job::Data(id), ..
        }) = self.outstanding.take()
        {
            self.events.push_back(ConnEvent::SendAborted(id));
        }
        for queued in self.queue.drain(..) {
            self.events.push_back(ConnEvent::SendAborted(queued.id));
        }
        self.events.push_back(ConnEvent::Closed(cause));
    }

    /// The next event for the connection's owner.
    pub fn poll_event(&mut self) -> Option<ConnEvent> {
        self.events.pop_front()
    }
}
