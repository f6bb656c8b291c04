//! The link stations as pure state machines: frames and timers in, frames and connection
//! events out (an in-memory peer plays the other end).
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use iec60870::link::{
    decode, encode_to_bytes, AddressSize, BalancedStation, CloseCause, ConnConfig, ConnEvent,
    ConnKey, Direction, Frame, LinkFormat, MasterStation, PrimaryConfig, ReqFrame, ReqFunction,
    ResFrame, ResFunction, SecondaryConfig, SlaveStation, Station, StationError, StationOutput,
};

const ONE: LinkFormat = LinkFormat {
    address_size: AddressSize::One,
    direction_valid: false,
};
const BAL: LinkFormat = LinkFormat {
    address_size: AddressSize::One,
    direction_valid: true,
};
const TIMEOUT: Duration = Duration::from_millis(100);

/// Drains a station's outputs into decoded frames and events.
fn outputs(
    station: &mut impl Station,
    format: &LinkFormat,
) -> (Vec<Frame>, Vec<(ConnKey, ConnEvent)>) {
    let mut frames = Vec::new();
    let mut events = Vec::new();
    while let Some(out) = station.poll_output() {
        match out {
            StationOutput::Write(octets) => frames.push(decode(format, &octets).unwrap()),
            StationOutput::Event(key, event) => events.push((key, event)),
        }
    }
    (frames, events)
}

fn key(address: u16) -> ConnKey {
    ConnKey {
        direction: None,
        address,
    }
}

fn master_config(address: u16) -> PrimaryConfig {
    PrimaryConfig {
        address,
        direction: None,
        response_timeout: TIMEOUT,
        send_retry_count: 2,
        poll_class1_delay: Some(Duration::from_secs(1)),
        poll_class2_delay: None,
        status_delay: None,
    }
}

fn res(function: ResFunction, address: u16, acd: bool, dfc: bool, data: &[u8]) -> Frame {
    Frame::Res(ResFrame {
        direction: None,
        access_demand: acd,
        data_flow_control: dfc,
        function,
        address,
        data: Bytes::copy_from_slice(data),
    })
}

fn req(function: ReqFunction, address: u16, fcb: bool, fcv: bool, data: &[u8]) -> ReqFrame {
    ReqFrame {
        direction: None,
        frame_count_bit: fcb,
        frame_count_valid: fcv,
        function,
        address,
        data: Bytes::copy_from_slice(data),
    }
}

fn as_req(frame: &Frame) -> &ReqFrame {
    match frame {
        Frame::Req(req) => req,
        other => panic!("not a request: {other:?}"),
    }
}

/// A master with one connection to `address`, opened (reset acknowledged).
fn open_master(config: PrimaryConfig, t: Instant) -> MasterStation {
    let mut master = MasterStation::new(ONE);
    let address = config.address;
    master.add(ConnConfig::Master(config), t).unwrap();
    let (frames, _) = outputs(&mut master, &ONE);
    assert_eq!(frames.len(), 1);
    assert_eq!(as_req(&frames[0]).function, ReqFunction::ResetLink);
    master.on_frame(Frame::Short, t);
    let (_, events) = outputs(&mut master, &ONE);
    assert_eq!(events, vec![(key(address), ConnEvent::Opened)]);
    master
}

#[test]
fn master_resets_the_link_until_answered_then_polls_class1_with_fcb_1() {
    let t = Instant::now();
    let mut master = MasterStation::new(ONE);
    master.add(ConnConfig::Master(master_config(1)), t).unwrap();
    let (frames, events) = outputs(&mut master, &ONE);
    assert_eq!(
        frames,
        vec![Frame::Req(req(
            ReqFunction::ResetLink,
            1,
            false,
            false,
            &[]
        ))]
    );
    assert!(events.is_empty());
    assert_eq!(master.next_timer(t), Some(t + TIMEOUT));
    // Unanswered resets are repeated without limit (far beyond send_retry_count).
    for i in 1..=10u32 {
        let now = t + TIMEOUT * i;
        master.on_timer(now);
        let (frames, events) = outputs(&mut master, &ONE);
        assert_eq!(
            frames,
            vec![Frame::Req(req(
                ReqFunction::ResetLink,
                1,
                false,
                false,
                &[]
            ))]
        );
        assert!(events.is_empty());
    }
    let now = t + TIMEOUT * 11;
    // A NACK to the reset is not an open; the reset goes out again.
    master.on_frame(res(ResFunction::Nack, 1, false, false, &[]), now);
    let (frames, events) = outputs(&mut master, &ONE);
    assert_eq!(as_req(&frames[0]).function, ReqFunction::ResetLink);
    assert!(events.is_empty());
    master.on_frame(res(ResFunction::Ack, 1, false, false, &[]), now);
    let (frames, events) = outputs(&mut master, &ONE);
    assert_eq!(events, vec![(key(1), ConnEvent::Opened)]);
    // The first poll carries FCB = 1, FCV = 1.
    assert_eq!(
        frames,
        vec![Frame::Req(req(ReqFunction::ReqData1, 1, true, true, &[]))]
    );
}

#[test]
fn master_toggles_fcb_repeats_with_the_same_fcb_and_closes_after_the_retries() {
    let t = Instant::now();
    let mut master = open_master(master_config(1), t);
    let (frames, _) = outputs(&mut master, &ONE);
    assert!(
        frames.is_empty(),
        "the poll went out in open_master: {frames:?}"
    );
    master
        .send(key(1), 7, Bytes::from_static(&[1]), true, false, t)
        .unwrap();
    // The poll of open_master still waits; answer it.
    master.on_frame(Frame::Short, t);
    let (frames, events) = outputs(&mut master, &ONE);
    assert!(events.is_empty());
    let data = as_req(&frames[0]);
    assert_eq!(
        (data.function, data.frame_count_bit, data.frame_count_valid),
        (ReqFunction::Data, false, true)
    );
    // No answer: repeated twice with the same FCB, then closed.
    for i in 1..=2u32 {
        master.on_timer(t + TIMEOUT * i);
        let (frames, events) = outputs(&mut master, &ONE);
        assert_eq!(frames, vec![Frame::Req(data.clone())]);
        assert!(events.is_empty());
    }
    master
        .send(key(1), 8, Bytes::from_static(&[2]), true, false, t)
        .unwrap();
    master.on_timer(t + TIMEOUT * 3);
    let (frames, events) = outputs(&mut master, &ONE);
    assert!(frames.is_empty());
    assert_eq!(
        events,
        vec![
            (key(1), ConnEvent::SendAborted(7)),
            (key(1), ConnEvent::SendAborted(8)),
            (
                key(1),
                ConnEvent::Closed(CloseCause::NoResponse { retries: 2 })
            ),
        ]
    );
    assert_eq!(master.next_timer(t), None);
    assert!(matches!(
        master.send(key(1), 9, Bytes::from_static(&[3]), true, false, t),
        Err(StationError::Unknown(_))
    ));
}

#[test]
fn master_answers_complete_sends_and_deliver_data() {
    let t = Instant::now();
    let mut master = open_master(master_config(1), t);
    // Class 1 poll answered with data (ACD set: polled again at once).
    master.on_frame(res(ResFunction::ResData, 1, true, false, &[9, 9]), t);
    let (frames, events) = outputs(&mut master, &ONE);
    assert_eq!(
        events,
        vec![(key(1), ConnEvent::Received(Bytes::from_static(&[9, 9])))]
    );
    let poll = as_req(&frames[0]);
    assert_eq!(
        (poll.function, poll.frame_count_bit),
        (ReqFunction::ReqData1, false)
    );
    // Without ACD the next class 1 poll waits for the delay.
    master.on_frame(res(ResFunction::ResNack, 1, false, false, &[]), t);
    let (frames, _) = outputs(&mut master, &ONE);
    assert!(frames.is_empty());
    assert_eq!(master.next_timer(t), Some(t + Duration::from_secs(1)));
    // Confirmed data: ACK completes it, NACK fails it (connection stays).
    master
        .send(key(1), 1, Bytes::from_static(&[1]), true, false, t)
        .unwrap();
    let (frames, _) = outputs(&mut master, &ONE);
    assert_eq!(as_req(&frames[0]).function, ReqFunction::Data);
    master.on_frame(Frame::Short, t);
    let (_, events) = outputs(&mut master, &ONE);
    assert_eq!(events, vec![(key(1), ConnEvent::SendDone(1))]);
    master
        .send(key(1), 2, Bytes::from_static(&[2]), true, false, t)
        .unwrap();
    let _ = outputs(&mut master, &ONE);
    master.on_frame(res(ResFunction::Nack, 1, false, false, &[]), t);
    let (_, events) = outputs(&mut master, &ONE);
    assert_eq!(
        events,
        vec![(key(1), ConnEvent::SendFailed(2, ResFunction::Nack))]
    );
    // Unconfirmed data: written with FCV = 0, done at once, the line stays free.
    master
        .send(key(1), 3, Bytes::from_static(&[3]), false, false, t)
        .unwrap();
    let (frames, events) = outputs(&mut master, &ONE);
    assert_eq!(
        frames,
        vec![Frame::Req(req(
            ReqFunction::DataNoRes,
            1,
            false,
            false,
            &[3]
        ))]
    );
    assert_eq!(events, vec![(key(1), ConnEvent::SendDone(3))]);
    master
        .send(key(1), 4, Bytes::from_static(&[4]), true, false, t)
        .unwrap();
    let (frames, _) = outputs(&mut master, &ONE);
    assert_eq!(as_req(&frames[0]).function, ReqFunction::Data);
    // Empty or oversized data is refused before it is queued.
    assert!(matches!(
        master.send(key(1), 5, Bytes::new(), true, false, t),
        Err(StationError::DataSize { .. })
    ));
}

#[test]
fn master_ignores_answers_from_other_addresses_and_frames_when_idle() {
    let t = Instant::now();
    let mut master = open_master(master_config(1), t);
    master.on_frame(res(ResFunction::ResData, 2, false, false, &[1]), t);
    let (frames, events) = outputs(&mut master, &ONE);
    assert!(frames.is_empty() && events.is_empty());
    // Still waiting: the timeout repeats the poll.
    master.on_timer(t + TIMEOUT);
    let (frames, _) = outputs(&mut master, &ONE);
    assert_eq!(as_req(&frames[0]).function, ReqFunction::ReqData1);
    master.on_frame(Frame::Short, t + TIMEOUT);
    master.on_frame(Frame::Short, t + TIMEOUT);
    let (frames, events) = outputs(&mut master, &ONE);
    assert!(frames.is_empty() && events.is_empty());
}

/// A master polling class 1 and class 2 (the plugin's usual configuration).
fn polling_master(t: Instant) -> MasterStation {
    let mut config = master_config(1);
    config.poll_class1_delay = Some(Duration::from_secs(1));
    config.poll_class2_delay = Some(Duration::from_secs(1));
    let mut master = open_master(config, t);
    let (frames, _) = outputs(&mut master, &ONE);
    assert!(
        frames.is_empty(),
        "the class 1 poll went out in open_master"
    );
    master
}

#[test]
fn master_does_not_take_a_frame_read_before_a_request_was_written_for_its_answer() {
    // Two stray single characters read in one chunk while the class 1 poll waits: the
    // first is taken for its answer (it cannot be told from one), the second arrives
    // before the class 2 poll it dispatches is written and does not answer it.
    let t = Instant::now();
    let mut master = polling_master(t);
    master.on_frame(Frame::Short, t);
    master.on_frame(Frame::Short, t);
    let (frames, _) = outputs(&mut master, &ONE);
    assert_eq!(as_req(&frames[0]).function, ReqFunction::ReqData2);
    assert_eq!(
        master.next_timer(t),
        Some(t + TIMEOUT),
        "the poll still waits"
    );
    // The real answers follow: the first (with data) is taken for the waiting poll's.
    master.on_frame(res(ResFunction::ResData, 1, false, false, &[7]), t);
    master.on_frame(Frame::Short, t);
    let (frames, events) = outputs(&mut master, &ONE);
    assert!(frames.is_empty());
    assert_eq!(
        events,
        vec![(key(1), ConnEvent::Received(Bytes::from_static(&[7])))]
    );
}

#[test]
fn master_delivers_the_data_of_a_late_answer_a_stray_single_character_was_taken_for() {
    // Stray single characters answer the class 1 poll and then the class 2 poll: the
    // real answer to the class 1 poll comes with nothing waiting; its data is
    // delivered, not lost (the remote has handed it out), and its ACD honoured.
    let t = Instant::now();
    let mut master = polling_master(t);
    master.on_frame(Frame::Short, t);
    let (frames, _) = outputs(&mut master, &ONE);
    assert_eq!(as_req(&frames[0]).function, ReqFunction::ReqData2);
    master.on_frame(Frame::Short, t);
    assert!(outputs(&mut master, &ONE).0.is_empty(), "the line is idle");
    master.on_frame(res(ResFunction::ResData, 1, true, false, &[7]), t);
    let (frames, events) = outputs(&mut master, &ONE);
    assert_eq!(
        events,
        vec![(key(1), ConnEvent::Received(Bytes::from_static(&[7])))]
    );
    assert_eq!(as_req(&frames[0]).function, ReqFunction::ReqData1);
    // A late answer of another address (no connection) or without data is ignored.
    master.on_frame(Frame::Short, t);
    master.on_frame(res(ResFunction::ResData, 2, false, false, &[8]), t);
    master.on_frame(res(ResFunction::ResNack, 1, false, false, &[]), t);
    let (frames, events) = outputs(&mut master, &ONE);
    assert!(
        frames.is_empty() && events.is_empty(),
        "{frames:?} {events:?}"
    );
}

#[test]
fn master_drops_a_late_answer_after_a_repeated_request_as_a_duplicate() {
    // A poll that timed out is repeated with the same FCB; the remote answers the
    // repetition with its last response again: the second copy, coming when nothing
    // waits, is not delivered.
    let t = Instant::now();
    let mut master = open_master(master_config(1), t);
    master.on_timer(t + TIMEOUT);
    let (frames, _) = outputs(&mut master, &ONE);
    assert_eq!(as_req(&frames[0]).function, ReqFunction::ReqData1);
    master.on_frame(
        res(ResFunction::ResData, 1, false, false, &[7]),
        t + TIMEOUT,
    );
    let (frames, events) = outputs(&mut master, &ONE);
    assert_eq!(
        events,
        vec![(key(1), ConnEvent::Received(Bytes::from_static(&[7])))]
    );
    assert!(frames.is_empty(), "the line is idle");
    master.on_frame(
        res(ResFunction::ResData, 1, false, false, &[7]),
        t + TIMEOUT,
    );
    let (frames, events) = outputs(&mut master, &ONE);
    assert!(
        frames.is_empty() && events.is_empty(),
        "{frames:?} {events:?}"
    );
}

#[test]
fn master_with_dfc_holds_confirmed_data_until_a_response_clears_it() {
    let t = Instant::now();
    let mut config = master_config(1);
    config.poll_class2_delay = Some(Duration::from_millis(10));
    let mut master = open_master(config, t);
    master.on_frame(res(ResFunction::ResNack, 1, false, true, &[]), t);
    let _ = outputs(&mut master, &ONE); // class 2 poll
    master
        .send(key(1), 1, Bytes::from_static(&[1]), true, false, t)
        .unwrap();
    master.on_frame(res(ResFunction::ResNack, 1, false, true, &[]), t);
    let (frames, _) = outputs(&mut master, &ONE);
    assert!(frames.is_empty(), "data held back by DFC: {frames:?}");
    let later = t + Duration::from_millis(10);
    master.on_timer(later);
    let (frames, _) = outputs(&mut master, &ONE);
    assert_eq!(as_req(&frames[0]).function, ReqFunction::ReqData2);
    master.on_frame(res(ResFunction::ResNack, 1, false, false, &[]), later);
    let (frames, _) = outputs(&mut master, &ONE);
    assert_eq!(as_req(&frames[0]).function, ReqFunction::Data);
}

#[test]
fn master_polls_several_addresses_in_turn() {
    let t = Instant::now();
    let mut master = MasterStation::new(ONE);
    for address in [1, 2, 3] {
        let mut config = master_config(address);
        config.poll_class1_delay = Some(Duration::ZERO);
        master.add(ConnConfig::Master(config), t).unwrap();
    }
    assert!(matches!(
        master.add(ConnConfig::Master(master_config(2)), t),
        Err(StationError::Exists(_))
    ));
    assert!(matches!(
        master.add(ConnConfig::Master(master_config(255)), t),
        Err(StationError::InvalidAddress(255))
    ));
    let mut order = Vec::new();
    for _ in 0..9 {
        let (frames, _) = outputs(&mut master, &ONE);
        assert_eq!(frames.len(), 1, "one request on the line at a time");
        order.push(as_req(&frames[0]).address);
        master.on_frame(Frame::Short, t);
    }
    assert_eq!(order, vec![1, 2, 3, 1, 2, 3, 1, 2, 3]);
    // A removed connection's request keeps the line until its (late) answer, which
    // is not taken for the answer to the next request.
    let (frames, _) = outputs(&mut master, &ONE);
    let waiting = as_req(&frames[0]).address;
    master.remove(key(waiting));
    master.on_timer(t);
    assert!(outputs(&mut master, &ONE).0.is_empty());
    master.on_frame(Frame::Short, t);
    let (frames, events) = outputs(&mut master, &ONE);
    assert!(events.is_empty());
    assert_ne!(as_req(&frames[0]).address, waiting);
    // Or until its timeout.
    let next = as_req(&frames[0]).address;
    master.remove(key(next));
    master.on_timer(t + TIMEOUT);
    let (frames, _) = outputs(&mut master, &ONE);
    let remaining: Vec<u16> = [1, 2, 3]
        .into_iter()
        .filter(|a| *a != waiting && *a != next)
        .collect();
    assert_eq!(as_req(&frames[0]).address, remaining[0]);
}

fn slave_config(address: u16, keep_alive: Option<Duration>) -> SecondaryConfig {
    SecondaryConfig {
        address,
        direction: None,
        balanced: false,
        keep_alive_timeout: keep_alive,
    }
}

#[test]
fn slave_answers_reset_status_and_polls() {
    let t = Instant::now();
    let mut slave = SlaveStation::new(ONE);
    slave
        .add(ConnConfig::Slave(slave_config(4, None)), t)
        .unwrap();
    slave.on_frame(
        Frame::Req(req(ReqFunction::ResetLink, 4, false, false, &[])),
        t,
    );
    let (frames, events) = outputs(&mut slave, &ONE);
    assert_eq!(frames, vec![Frame::Short]);
    assert_eq!(events, vec![(key(4), ConnEvent::Opened)]);
    slave.on_frame(
        Frame::Req(req(ReqFunction::ReqStatus, 4, false, false, &[])),
        t,
    );
    let (frames, _) = outputs(&mut slave, &ONE);
    assert_eq!(
        frames,
        vec![res(ResFunction::ResStatus, 4, false, false, &[])]
    );
    // Nothing to send: class 1 poll answered with the single character.
    slave.on_frame(
        Frame::Req(req(ReqFunction::ReqData1, 4, true, true, &[])),
        t,
    );
    assert_eq!(outputs(&mut slave, &ONE).0, vec![Frame::Short]);
    // Other addresses are not ours.
    slave.on_frame(
        Frame::Req(req(ReqFunction::ReqData1, 5, false, true, &[])),
        t,
    );
    assert!(outputs(&mut slave, &ONE).0.is_empty());
    // Unbalanced test function is not implemented.
    slave.on_frame(Frame::Req(req(ReqFunction::Test, 4, false, true, &[])), t);
    assert_eq!(
        outputs(&mut slave, &ONE).0,
        vec![res(ResFunction::NotImplemented, 4, false, false, &[])]
    );
}

#[test]
fn slave_sets_acd_and_hands_out_class2_before_class1() {
    let t = Instant::now();
    let mut slave = SlaveStation::new(ONE);
    slave
        .add(ConnConfig::Slave(slave_config(4, None)), t)
        .unwrap();
    slave.on_frame(
        Frame::Req(req(ReqFunction::ResetLink, 4, false, false, &[])),
        t,
    );
    let _ = outputs(&mut slave, &ONE);
    slave
        .send(key(4), 1, Bytes::from_static(&[1]), true, false, t)
        .unwrap();
    slave
        .send(key(4), 2, Bytes::from_static(&[2]), true, true, t)
        .unwrap();
    // Class 2 poll: class 2 data, ACD tells the master class 1 data waits.
    slave.on_frame(
        Frame::Req(req(ReqFunction::ReqData2, 4, true, true, &[])),
        t,
    );
    let (frames, events) = outputs(&mut slave, &ONE);
    assert_eq!(
        frames,
        vec![res(ResFunction::ResData, 4, true, false, &[2])]
    );
    assert_eq!(events, vec![(key(4), ConnEvent::SendDone(2))]);
    slave.on_frame(
        Frame::Req(req(ReqFunction::ReqData1, 4, false, true, &[])),
        t,
    );
    let (frames, events) = outputs(&mut slave, &ONE);
    assert_eq!(
        frames,
        vec![res(ResFunction::ResData, 4, false, false, &[1])]
    );
    assert_eq!(events, vec![(key(4), ConnEvent::SendDone(1))]);
    // A class 2 poll with only class 1 data gets the class 1 data.
    slave
        .send(key(4), 3, Bytes::from_static(&[3]), true, false, t)
        .unwrap();
    slave.on_frame(
        Frame::Req(req(ReqFunction::ReqData2, 4, true, true, &[])),
        t,
    );
    assert_eq!(
        outputs(&mut slave, &ONE).0,
        vec![res(ResFunction::ResData, 4, false, false, &[3])]
    );
    // ACD on an acknowledgement: no single character then.
    slave
        .send(key(4), 4, Bytes::from_static(&[4]), true, false, t)
        .unwrap();
    slave.on_frame(Frame::Req(req(ReqFunction::Data, 4, false, true, &[7])), t);
    let (frames, events) = outputs(&mut slave, &ONE);
    assert_eq!(frames, vec![res(ResFunction::Ack, 4, true, false, &[])]);
    assert_eq!(
        events,
        vec![(key(4), ConnEvent::Received(Bytes::from_static(&[7])))]
    );
}

#[test]
fn slave_repeats_its_last_response_to_a_repeated_fcb() {
    let t = Instant::now();
    let mut slave = SlaveStation::new(ONE);
    slave
        .add(ConnConfig::Slave(slave_config(4, None)), t)
        .unwrap();
    slave.on_frame(
        Frame::Req(req(ReqFunction::ResetLink, 4, false, false, &[])),
        t,
    );
    let _ = outputs(&mut slave, &ONE);
    slave
        .send(key(4), 1, Bytes::from_static(&[1]), true, false, t)
        .unwrap();
    slave
        .send(key(4), 2, Bytes::from_static(&[2]), true, false, t)
        .unwrap();
    let poll = Frame::Req(req(ReqFunction::ReqData1, 4, true, true, &[]));
    slave.on_frame(poll.clone(), t);
    let (first, _) = outputs(&mut slave, &ONE);
    assert_eq!(first, vec![res(ResFunction::ResData, 4, true, false, &[1])]);
    // The master lost it and repeats (same FCB): same answer, nothing consumed.
    slave.on_frame(poll, t);
    let (again, events) = outputs(&mut slave, &ONE);
    assert_eq!(again, first);
    assert!(events.is_empty());
    // A repeated user data frame is not delivered twice.
    let data = Frame::Req(req(ReqFunction::Data, 4, false, true, &[5]));
    slave.on_frame(data.clone(), t);
    slave.on_frame(data, t);
    let (frames, events) = outputs(&mut slave, &ONE);
    assert_eq!(frames.len(), 2);
    assert_eq!(
        events,
        vec![(key(4), ConnEvent::Received(Bytes::from_static(&[5])))]
    );
    // The next FCB gets the next data.
    slave.on_frame(
        Frame::Req(req(ReqFunction::ReqData1, 4, true, true, &[])),
        t,
    );
    assert_eq!(
        outputs(&mut slave, &ONE).0,
        vec![res(ResFunction::ResData, 4, false, false, &[2])]
    );
}

#[test]
fn slave_suppresses_answers_to_no_reply_data_and_broadcasts() {
    let t = Instant::now();
    let mut slave = SlaveStation::new(ONE);
    slave
        .add(ConnConfig::Slave(slave_config(1, None)), t)
        .unwrap();
    slave
        .add(ConnConfig::Slave(slave_config(2, None)), t)
        .unwrap();
    slave.on_frame(
        Frame::Req(req(ReqFunction::DataNoRes, 1, false, false, &[1])),
        t,
    );
    let (frames, events) = outputs(&mut slave, &ONE);
    assert!(frames.is_empty());
    assert_eq!(
        events,
        vec![
            (key(1), ConnEvent::Opened),
            (key(1), ConnEvent::Received(Bytes::from_static(&[1])))
        ]
    );
    slave.on_frame(
        Frame::Req(req(ReqFunction::DataNoRes, 0xFF, false, false, &[2])),
        t,
    );
    let (frames, events) = outputs(&mut slave, &ONE);
    assert!(frames.is_empty());
    assert_eq!(
        events,
        vec![
            (key(1), ConnEvent::Received(Bytes::from_static(&[2]))),
            (key(2), ConnEvent::Opened),
            (key(2), ConnEvent::Received(Bytes::from_static(&[2]))),
        ]
    );
    // Responses of ours are not requests: ignored.
    slave.on_frame(Frame::Short, t);
    assert_eq!(outputs(&mut slave, &ONE), (vec![], vec![]));
}

#[test]
fn slave_keep_alive_timeout_closes_after_the_last_request() {
    let t = Instant::now();
    let keep_alive = Duration::from_millis(500);
    let mut slave = SlaveStation::new(ONE);
    slave
        .add(ConnConfig::Slave(slave_config(1, Some(keep_alive))), t)
        .unwrap();
    // Not armed before the first request.
    assert_eq!(slave.next_timer(t), None);
    slave.on_frame(
        Frame::Req(req(ReqFunction::ResetLink, 1, false, false, &[])),
        t,
    );
    let _ = outputs(&mut slave, &ONE);
    let later = t + Duration::from_millis(400);
    slave.on_frame(
        Frame::Req(req(ReqFunction::ReqData1, 1, true, true, &[])),
        later,
    );
    let _ = outputs(&mut slave, &ONE);
    assert_eq!(slave.next_timer(later), Some(later + keep_alive));
    slave.on_timer(t + keep_alive);
    assert_eq!(outputs(&mut slave, &ONE), (vec![], vec![]));
    slave
        .send(key(1), 9, Bytes::from_static(&[1]), true, false, later)
        .unwrap();
    slave.on_timer(later + keep_alive);
    let (_, events) = outputs(&mut slave, &ONE);
    assert_eq!(
        events,
        vec![
            (key(1), ConnEvent::SendAborted(9)),
            (key(1), ConnEvent::Closed(CloseCause::KeepAliveTimeout))
        ]
    );
    // Gone: its address can be added again.
    slave
        .add(ConnConfig::Slave(slave_config(1, Some(keep_alive))), later)
        .unwrap();
}

fn balanced_configs(direction: Direction) -> ConnConfig {
    ConnConfig::Balanced(
        PrimaryConfig {
            address: 1,
            direction: Some(direction),
            response_timeout: TIMEOUT,
            send_retry_count: 1,
            poll_class1_delay: None,
            poll_class2_delay: None,
            status_delay: Some(Duration::from_millis(300)),
        },
        SecondaryConfig {
            address: 1,
            direction: Some(direction),
            balanced: true,
            keep_alive_timeout: None,
        },
    )
}

fn deliver(
    from: &mut BalancedStation,
    to: &mut BalancedStation,
    now: Instant,
) -> Vec<(ConnKey, ConnEvent)> {
    let mut events = Vec::new();
    while let Some(out) = from.poll_output() {
        match out {
            StationOutput::Write(octets) => to.on_frame(decode(&BAL, &octets).unwrap(), now),
            StationOutput::Event(key, event) => events.push((key, event)),
        }
    }
    events
}

#[test]
fn two_balanced_stations_open_exchange_data_and_send_status_requests() {
    let t = Instant::now();
    let mut a = BalancedStation::new(BAL);
    let mut b = BalancedStation::new(BAL);
    let ka = a.add(balanced_configs(Direction::AToB), t).unwrap();
    let kb = b.add(balanced_configs(Direction::BToA), t).unwrap();
    // Both reset each other; pass frames until quiet.
    let mut a_events = Vec::new();
    let mut b_events = Vec::new();
    for _ in 0..4 {
        a_events.extend(deliver(&mut a, &mut b, t));
        b_events.extend(deliver(&mut b, &mut a, t));
    }
    assert_eq!(a_events, vec![(ka, ConnEvent::Opened)]);
    assert_eq!(b_events, vec![(kb, ConnEvent::Opened)]);
    a.send(ka, 1, Bytes::from_static(&[1, 2]), true, false, t)
        .unwrap();
    b.send(kb, 2, Bytes::from_static(&[3]), false, false, t)
        .unwrap();
    let (mut a_events, mut b_events) = (Vec::new(), Vec::new());
    for _ in 0..4 {
        a_events.extend(deliver(&mut a, &mut b, t));
        b_events.extend(deliver(&mut b, &mut a, t));
    }
    assert_eq!(
        a_events,
        vec![
            (ka, ConnEvent::Received(Bytes::from_static(&[3]))),
            (ka, ConnEvent::SendDone(1))
        ]
    );
    assert_eq!(
        b_events,
        vec![
            (kb, ConnEvent::SendDone(2)),
            (kb, ConnEvent::Received(Bytes::from_static(&[1, 2])))
        ]
    );
    // Idle: a status request (FCV = 0, our DIR) after the status delay.
    let later = t + Duration::from_millis(300);
    assert_eq!(a.next_timer(t), Some(later));
    a.on_timer(later);
    let (frames, _) = outputs(&mut a, &BAL);
    let status = as_req(&frames[0]);
    assert_eq!(
        (status.function, status.frame_count_valid, status.direction),
        (ReqFunction::ReqStatus, false, Some(Direction::AToB))
    );
    b.on_frame(frames[0].clone(), later);
    let (frames, _) = outputs(&mut b, &BAL);
    // The answer first (b's own status request, due as well, follows it).
    assert_eq!(
        frames[..1],
        [Frame::Res(ResFrame {
            direction: Some(Direction::BToA),
            access_demand: false,
            data_flow_control: false,
            function: ResFunction::ResStatus,
            address: 1,
            data: Bytes::new(),
        })]
    );
    assert_eq!(as_req(&frames[1]).function, ReqFunction::ReqStatus);
}

#[test]
fn balanced_answers_only_requests_of_the_opposite_direction_and_closes_without_answers() {
    let t = Instant::now();
    let mut a = BalancedStation::new(BAL);
    let ka = a.add(balanced_configs(Direction::AToB), t).unwrap();
    let _ = outputs(&mut a, &BAL);
    let mut test = req(ReqFunction::Test, 1, true, true, &[]);
    test.direction = Some(Direction::AToB);
    a.on_frame(Frame::Req(test.clone()), t);
    assert!(
        outputs(&mut a, &BAL).0.is_empty(),
        "a request in our own direction is an echo"
    );
    test.direction = Some(Direction::BToA);
    a.on_frame(Frame::Req(test), t);
    assert_eq!(outputs(&mut a, &BAL).0, vec![Frame::Short]);
    // Open, then one unanswered request and its single repetition close it.
    a.on_frame(Frame::Short, t);
    let _ = outputs(&mut a, &BAL);
    a.send(ka, 1, Bytes::from_static(&[1]), true, false, t)
        .unwrap();
    let _ = outputs(&mut a, &BAL);
    a.on_timer(t + TIMEOUT);
    let (frames, _) = outputs(&mut a, &BAL);
    assert_eq!(as_req(&frames[0]).function, ReqFunction::Data);
    a.on_timer(t + TIMEOUT * 2);
    let (_, events) = outputs(&mut a, &BAL);
    assert_eq!(
        events,
        vec![
            (ka, ConnEvent::SendAborted(1)),
            (ka, ConnEvent::Closed(CloseCause::NoResponse { retries: 1 }))
        ]
    );
    // Encodes nothing for unknown keys.
    assert!(encode_to_bytes(&BAL, &Frame::Short).is_ok());
}
