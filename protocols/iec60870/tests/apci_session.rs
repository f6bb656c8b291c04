//! The APCI state machine driven with an injected clock: STARTDT/STOPDT roles, k and w
//! windows, t1/t2/t3, sequence numbers across the 32768 wrap and the close reasons.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use iec60870::apci::{
    decode_all, ApciError, Apdu, CloseReason, Event, Role, SendError, SendId, SendOutcome, Session,
    SessionConfig, TimeoutCause, UFunction,
};

const T1: Duration = Duration::from_secs(15);
const T2: Duration = Duration::from_secs(10);
const T3: Duration = Duration::from_secs(20);

fn config(k: u16, w: u16) -> SessionConfig {
    SessionConfig {
        response_timeout: T1,
        supervisory_timeout: T2,
        test_timeout: T3,
        send_window_size: k,
        receive_window_size: w,
    }
}

/// Frames the session wrote since the last call.
fn written(session: &mut Session) -> Vec<Apdu> {
    decode_all(&session.take_transmit()).unwrap()
}

fn events(session: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| session.poll_event()).collect()
}

fn asdu(n: u32) -> Bytes {
    Bytes::from(n.to_le_bytes().to_vec())
}

fn i_frame(send_seq: u16, recv_seq: u16, n: u32) -> Apdu {
    Apdu::I {
        send_seq,
        recv_seq,
        asdu: asdu(n),
    }
}

/// A controlled session with data transfer started at `now`.
fn started(config: SessionConfig, now: Instant) -> Session {
    let mut session = Session::new(config, Role::Controlled, now);
    session.handle_apdu(Apdu::U(UFunction::StartDtAct), now);
    assert_eq!(written(&mut session), [Apdu::U(UFunction::StartDtCon)]);
    assert_eq!(events(&mut session), [Event::Enabled(true)]);
    session
}

fn sent(session: &mut Session, n: u32, now: Instant) -> SendId {
    match session.send_asdu(asdu(n), now).unwrap() {
        SendOutcome::Sent(id) => id,
        SendOutcome::Discarded => panic!("discarded"),
    }
}

#[test]
fn controlling_side_sends_startdt_act_and_is_enabled_by_the_con() {
    let now = Instant::now();
    let mut session = Session::new(config(12, 8), Role::Controlling, now);
    assert_eq!(written(&mut session), [Apdu::U(UFunction::StartDtAct)]);
    assert!(!session.is_enabled());
    assert_eq!(session.poll_timeout(), Some(now + T1));
    session.handle_apdu(Apdu::U(UFunction::StartDtCon), now);
    assert!(session.is_enabled());
    assert_eq!(events(&mut session), [Event::Enabled(true)]);
    // STOPDT act is ignored by the controlling side, as hat-drivers' always_enabled.
    session.handle_apdu(Apdu::U(UFunction::StopDtAct), now);
    assert!(session.is_enabled());
    assert!(written(&mut session).is_empty());
}

#[test]
fn startdt_con_missing_for_t1_closes() {
    let now = Instant::now();
    let mut session = Session::new(config(12, 8), Role::Controlling, now);
    session.handle_timeout(now + T1 - Duration::from_millis(1));
    assert!(!session.is_closed());
    session.handle_timeout(now + T1);
    assert_eq!(
        session.close_reason(),
        Some(&CloseReason::ResponseTimeout(TimeoutCause::StartDtCon))
    );
    assert_eq!(session.poll_timeout(), None);
}

#[test]
fn controlled_side_discards_asdus_while_stopped_and_follows_startdt_stopdt() {
    let now = Instant::now();
    let mut session = Session::new(config(12, 8), Role::Controlled, now);
    assert!(written(&mut session).is_empty());
    assert_eq!(session.send_asdu(asdu(1), now), Ok(SendOutcome::Discarded));
    assert!(written(&mut session).is_empty());

    session.handle_apdu(Apdu::U(UFunction::StartDtAct), now);
    assert_eq!(written(&mut session), [Apdu::U(UFunction::StartDtCon)]);
    assert_eq!(events(&mut session), [Event::Enabled(true)]);
    assert_eq!(
        session.send_asdu(asdu(2), now),
        Ok(SendOutcome::Sent(SendId(0)))
    );
    assert_eq!(written(&mut session), [i_frame(0, 0, 2)]);

    // STOPDT act: an S-frame acknowledging what was received, then STOPDT con.
    session.handle_apdu(i_frame(0, 1, 7), now);
    session.handle_apdu(Apdu::U(UFunction::StopDtAct), now);
    assert_eq!(
        written(&mut session),
        [Apdu::S { recv_seq: 1 }, Apdu::U(UFunction::StopDtCon)]
    );
    assert_eq!(
        events(&mut session),
        [
            Event::Acknowledged(SendId(1)),
            Event::Received(asdu(7)),
            Event::Enabled(false)
        ]
    );
    assert_eq!(session.send_asdu(asdu(3), now), Ok(SendOutcome::Discarded));
    // I-frames received while stopped are still delivered (hat-drivers does not check).
    session.handle_apdu(i_frame(1, 1, 8), now);
    assert_eq!(events(&mut session), [Event::Received(asdu(8))]);
}

#[test]
fn testfr_act_is_answered_in_every_state() {
    let now = Instant::now();
    let mut session = Session::new(config(12, 8), Role::Controlled, now);
    session.handle_apdu(Apdu::U(UFunction::TestFrAct), now);
    assert_eq!(written(&mut session), [Apdu::U(UFunction::TestFrCon)]);
}

#[test]
fn k_unacknowledged_frames_fill_the_window_until_acknowledged() {
    let now = Instant::now();
    let mut session = started(config(3, 8), now);
    for n in 0..3 {
        assert!(session.can_send());
        assert_eq!(sent(&mut session, n, now), SendId(u64::from(n)));
    }
    assert!(!session.can_send());
    assert_eq!(
        session.send_asdu(asdu(3), now),
        Err(SendError::WindowFull(asdu(3)))
    );
    assert_eq!(written(&mut session).len(), 3);
    session.handle_apdu(Apdu::S { recv_seq: 2 }, now);
    assert_eq!(events(&mut session), [Event::Acknowledged(SendId(2))]);
    assert_eq!(session.unacknowledged(), 1);
    assert_eq!(sent(&mut session, 3, now), SendId(3));
    assert_eq!(sent(&mut session, 4, now), SendId(4));
    assert!(!session.can_send());
    assert_eq!(written(&mut session), [i_frame(3, 0, 3), i_frame(4, 0, 4)]);
}

#[test]
fn w_received_frames_are_acknowledged_with_an_s_frame() {
    let now = Instant::now();
    let mut session = started(config(12, 3), now);
    session.handle_apdu(i_frame(0, 0, 0), now);
    session.handle_apdu(i_frame(1, 0, 1), now);
    assert!(written(&mut session).is_empty());
    session.handle_apdu(i_frame(2, 0, 2), now);
    assert_eq!(written(&mut session), [Apdu::S { recv_seq: 3 }]);
    session.handle_apdu(i_frame(3, 0, 3), now);
    assert!(written(&mut session).is_empty());
    // Our own I-frame carries N(R) and restarts the count.
    sent(&mut session, 9, now);
    session.handle_apdu(i_frame(4, 0, 4), now);
    session.handle_apdu(i_frame(5, 0, 5), now);
    assert_eq!(written(&mut session), [i_frame(0, 4, 9)]);
    session.handle_apdu(i_frame(6, 0, 6), now);
    assert_eq!(written(&mut session), [Apdu::S { recv_seq: 7 }]);
    let received: Vec<_> = events(&mut session)
        .into_iter()
        .filter_map(|event| match event {
            Event::Received(asdu) => Some(asdu),
            _ => None,
        })
        .collect();
    assert_eq!(received, (0..7).map(asdu).collect::<Vec<_>>());
}

#[test]
fn t2_acknowledges_received_frames_within_the_supervisory_timeout() {
    let start = Instant::now();
    let mut session = started(config(12, 8), start);
    let first = start + Duration::from_secs(1);
    session.handle_apdu(i_frame(0, 0, 0), first);
    session.handle_apdu(i_frame(1, 0, 1), first + Duration::from_secs(5));
    // t2 runs from the first unacknowledged frame, not the last.
    assert_eq!(session.poll_timeout(), Some(first + T2));
    session.handle_timeout(first + T2 - Duration::from_millis(1));
    assert!(written(&mut session).is_empty());
    session.handle_timeout(first + T2);
    assert_eq!(written(&mut session), [Apdu::S { recv_seq: 2 }]);
    // Nothing left to acknowledge: no more S-frames.
    session.handle_timeout(first + T2 + T2);
    assert!(!written(&mut session)
        .iter()
        .any(|apdu| matches!(apdu, Apdu::S { .. })));
}

#[test]
fn t3_idle_sends_testfr_act_and_a_missing_con_closes_after_t1() {
    let start = Instant::now();
    let mut session = started(config(12, 8), start);
    let last = start + Duration::from_secs(3);
    session.handle_apdu(Apdu::S { recv_seq: 0 }, last);
    assert_eq!(session.poll_timeout(), Some(last + T3));
    session.handle_timeout(last + T3 - Duration::from_millis(1));
    assert!(written(&mut session).is_empty());
    session.handle_timeout(last + T3);
    assert_eq!(written(&mut session), [Apdu::U(UFunction::TestFrAct)]);
    // Answered: idle again from the con.
    let con = last + T3 + Duration::from_secs(1);
    session.handle_apdu(Apdu::U(UFunction::TestFrCon), con);
    assert_eq!(session.poll_timeout(), Some(con + T3));
    session.handle_timeout(con + T3);
    assert_eq!(written(&mut session), [Apdu::U(UFunction::TestFrAct)]);
    assert_eq!(session.poll_timeout(), Some(con + T3 + T1));
    session.handle_timeout(con + T3 + T1);
    assert_eq!(
        session.close_reason(),
        Some(&CloseReason::ResponseTimeout(TimeoutCause::TestFrCon))
    );
}

#[test]
fn t1_closes_when_an_i_frame_stays_unacknowledged() {
    let start = Instant::now();
    let mut session = started(config(12, 8), start);
    sent(&mut session, 0, start);
    let second = start + Duration::from_secs(5);
    sent(&mut session, 1, second);
    session.handle_apdu(Apdu::S { recv_seq: 1 }, start + Duration::from_secs(6));
    // The oldest unacknowledged frame is now the second one.
    assert_eq!(session.poll_timeout(), Some(second + T1));
    session.handle_timeout(second + T1 - Duration::from_millis(1));
    assert!(!session.is_closed());
    session.handle_timeout(second + T1);
    assert_eq!(
        session.close_reason(),
        Some(&CloseReason::ResponseTimeout(TimeoutCause::Acknowledgement))
    );
    assert_eq!(
        session.send_asdu(asdu(2), second + T1),
        Err(SendError::Closed(asdu(2)))
    );
}

#[test]
fn ack_for_an_unsent_frame_closes() {
    let now = Instant::now();
    let mut session = started(config(12, 8), now);
    sent(&mut session, 0, now);
    session.handle_apdu(Apdu::S { recv_seq: 2 }, now);
    assert_eq!(
        session.close_reason(),
        Some(&CloseReason::Protocol(ApciError::AckForUnsent {
            ack: 2,
            acked: 0,
            sent: 1
        }))
    );
}

#[test]
fn ack_going_backwards_closes() {
    let now = Instant::now();
    let mut session = started(config(12, 8), now);
    sent(&mut session, 0, now);
    sent(&mut session, 1, now);
    session.handle_apdu(Apdu::S { recv_seq: 2 }, now);
    session.handle_apdu(Apdu::S { recv_seq: 1 }, now);
    assert!(matches!(
        session.close_reason(),
        Some(CloseReason::Protocol(ApciError::AckForUnsent {
            ack: 1,
            ..
        }))
    ));
}

#[test]
fn out_of_order_send_sequence_closes_and_later_input_is_ignored() {
    let now = Instant::now();
    let mut session = started(config(12, 8), now);
    session.handle_apdu(i_frame(0, 0, 0), now);
    session.handle_apdu(i_frame(2, 0, 2), now);
    assert_eq!(
        session.close_reason(),
        Some(&CloseReason::Protocol(ApciError::SequenceMismatch {
            expected: 1,
            received: 2
        }))
    );
    assert_eq!(events(&mut session), [Event::Received(asdu(0))]);
    session.handle_apdu(i_frame(1, 0, 1), now);
    assert!(events(&mut session).is_empty());
    // The first reason stays.
    session.close(CloseReason::Local);
    assert!(matches!(
        session.close_reason(),
        Some(CloseReason::Protocol(_))
    ));
}

#[test]
fn garbage_in_the_byte_stream_closes_with_the_decoder_error() {
    let now = Instant::now();
    let mut session = started(config(12, 8), now);
    let mut buf = BytesMut::from(&[0x68, 4, 0x43, 0, 0, 0, 0x99, 1, 2][..]);
    session.handle_data(&mut buf, now);
    assert_eq!(written(&mut session), [Apdu::U(UFunction::TestFrCon)]);
    assert_eq!(
        session.close_reason(),
        Some(&CloseReason::Protocol(ApciError::InvalidStartByte(0x99)))
    );
}

#[test]
fn partial_frames_in_the_byte_stream_wait() {
    let now = Instant::now();
    let mut session = started(config(12, 8), now);
    let frame = i_frame(0, 0, 42).to_bytes().unwrap();
    let mut buf = BytesMut::from(&frame[..4]);
    session.handle_data(&mut buf, now);
    assert!(events(&mut session).is_empty());
    buf.extend_from_slice(&frame[4..]);
    session.handle_data(&mut buf, now);
    assert_eq!(events(&mut session), [Event::Received(asdu(42))]);
    assert!(!session.is_closed());
}

#[test]
fn sequence_numbers_wrap_at_32768_both_ways() {
    let now = Instant::now();
    let mut session = started(config(12, 8), now);
    let total: u32 = 32768 * 2 + 100;
    let mut peer_recv: u16 = 0;
    for n in 0..total {
        // The peer sends one I-frame, we send one, the peer acknowledges ours.
        let peer_send = (n % 32768) as u16;
        session.handle_apdu(i_frame(peer_send, peer_recv, n), now);
        let id = sent(&mut session, n, now);
        assert_eq!(id, SendId(u64::from(n)));
        for apdu in written(&mut session) {
            if let Apdu::I {
                send_seq, recv_seq, ..
            } = apdu
            {
                assert_eq!(send_seq, (n % 32768) as u16);
                assert_eq!(recv_seq, ((n + 1) % 32768) as u16);
                peer_recv = (send_seq + 1) % 32768;
            }
        }
    }
    assert!(!session.is_closed(), "{:?}", session.close_reason());
    assert_eq!(session.send_seq(), (total % 32768) as u16);
    assert_eq!(session.recv_seq(), (total % 32768) as u16);
    session.handle_apdu(
        Apdu::S {
            recv_seq: peer_recv,
        },
        now,
    );
    assert_eq!(session.unacknowledged(), 0);
    let last_ack = events(&mut session)
        .into_iter()
        .filter_map(|event| match event {
            Event::Acknowledged(id) => Some(id),
            _ => None,
        })
        .last();
    assert_eq!(last_ack, Some(SendId(u64::from(total))));
}

#[test]
fn a_full_window_acknowledged_across_the_wrap() {
    let now = Instant::now();
    let mut session = started(config(10, 8), now);
    // Move N(S) to 32763 with a window of 10 and acks of 10.
    let mut n = 0;
    while session.send_seq() != 32763 {
        while session.can_send() && session.send_seq() != 32763 {
            sent(&mut session, n, now);
            n += 1;
        }
        session.handle_apdu(
            Apdu::S {
                recv_seq: session.send_seq(),
            },
            now,
        );
    }
    for _ in 0..10 {
        sent(&mut session, n, now);
        n += 1;
    }
    assert_eq!(session.send_seq(), 5);
    assert!(!session.can_send());
    session.handle_apdu(Apdu::S { recv_seq: 2 }, now);
    assert_eq!(session.unacknowledged(), 3);
    session.handle_apdu(Apdu::S { recv_seq: 5 }, now);
    assert_eq!(session.unacknowledged(), 0);
    assert!(!session.is_closed());
}

#[test]
fn send_window_of_zero_counts_as_one() {
    let now = Instant::now();
    let mut session = started(config(0, 8), now);
    sent(&mut session, 0, now);
    assert!(!session.can_send());
}

#[test]
fn too_long_asdu_is_handed_back() {
    let now = Instant::now();
    let mut session = started(config(12, 8), now);
    let long = Bytes::from(vec![0; 250]);
    assert_eq!(
        session.send_asdu(long.clone(), now),
        Err(SendError::AsduTooLong(long))
    );
    assert!(written(&mut session).is_empty());
}
