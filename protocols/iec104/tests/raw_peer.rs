//! Our connections against a raw-socket peer that prints every frame and does only what
//! it is told: the k window, wait_ack, t3 test frames, t1 expiry, STARTDT/STOPDT on the
//! listening side, and malformed frames ending one connection with a logged reason.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{counter, counter_hex, LogCapture, Peer, WAIT};
use iec104::{connect, ApciError, CloseReason, ConnectionConfig, Error, Listener, TimeoutCause};

fn config() -> ConnectionConfig {
    ConnectionConfig {
        send_window_size: 5,
        receive_window_size: 8,
        ..ConnectionConfig::default()
    }
}

/// A raw peer listening and confirming STARTDT, and our connection to it.
async fn connected(config: &ConnectionConfig, args: &[&str]) -> (Peer, iec104::Connection) {
    let mut all = vec!["listen", "--auto-startdt"];
    all.extend_from_slice(args);
    let mut peer = Peer::start("raw_peer.py", &all).await;
    let connection = tokio::time::timeout(WAIT, connect(peer.addr(), config))
        .await
        .unwrap()
        .unwrap();
    peer.expect("CONNECTED").await;
    peer.expect("U STARTDT_ACT").await;
    (peer, connection)
}

/// Our listener and a raw peer connected to it (data transfer not started).
async fn accepted(config: ConnectionConfig) -> (Listener, Peer, iec104::Connection) {
    let listener = Listener::bind(SocketAddr::from(([127, 0, 0, 1], 0)), config)
        .await
        .unwrap();
    let port = listener.local_addr().port().to_string();
    let mut peer = Peer::start("raw_peer.py", &["connect", &port]).await;
    let connection = tokio::time::timeout(WAIT, listener.accept())
        .await
        .unwrap()
        .unwrap();
    peer.expect("CONNECTED").await;
    (listener, peer, connection)
}

fn i_line(send_seq: u16, recv_seq: u16, n: u32) -> String {
    format!("I {send_seq} {recv_seq} {}", counter_hex(n))
}

#[tokio::test]
async fn window_full_stops_at_k_and_nothing_is_lost_when_acked() {
    let (mut peer, connection) = connected(&config(), &["--auto-testfr"]).await;
    let sender = connection.sender();
    let sending = tokio::spawn(async move {
        for n in 0..12 {
            sender.send(counter(n), false).await.unwrap();
        }
        sender.drain(true).await
    });
    for n in 0..5 {
        assert_eq!(peer.next_line().await, i_line(n as u16, 0, n));
    }
    // Our answer to a link test comes after whatever we wrote before it: no sixth
    // I-frame while five are unacknowledged.
    peer.command("u TESTFR_ACT").await;
    assert_eq!(peer.next_line().await, "DONE");
    assert_eq!(peer.next_line().await, "U TESTFR_CON");
    peer.command("s 3").await;
    let lines = peer.until(|line| line == i_line(7, 0, 7)).await;
    assert_eq!(
        lines,
        ["DONE", &i_line(5, 0, 5), &i_line(6, 0, 6), &i_line(7, 0, 7)]
    );
    peer.command("u TESTFR_ACT").await;
    assert_eq!(peer.next_line().await, "DONE");
    assert_eq!(peer.next_line().await, "U TESTFR_CON");
    assert!(!sending.is_finished());
    peer.command("s 8").await;
    let lines = peer.until(|line| line == i_line(11, 0, 11)).await;
    assert_eq!(
        lines,
        [
            "DONE",
            &i_line(8, 0, 8),
            &i_line(9, 0, 9),
            &i_line(10, 0, 10),
            &i_line(11, 0, 11)
        ]
    );
    peer.command("s 12").await;
    tokio::time::timeout(WAIT, sending)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn wait_ack_resolves_only_with_the_peers_acknowledgement() {
    let (mut peer, connection) = connected(&config(), &["--auto-testfr"]).await;
    let sender = connection.sender();
    let waiting = tokio::spawn(async move { sender.send(counter(7), true).await });
    assert_eq!(peer.next_line().await, i_line(0, 0, 7));
    // A link test round trip after the I-frame: still not acknowledged.
    peer.command("u TESTFR_ACT").await;
    peer.expect("U TESTFR_CON").await;
    assert!(!waiting.is_finished());
    peer.command("s 1").await;
    tokio::time::timeout(WAIT, waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn received_i_frames_are_acknowledged_after_w_frames() {
    let (mut peer, mut connection) = connected(&config(), &[]).await;
    for n in 0..8u16 {
        peer.command(&format!("i {n} 0 {}", counter_hex(u32::from(n))))
            .await;
    }
    // The first acknowledgement comes after the eighth frame and acknowledges all eight.
    let lines = peer.until(|line| line.starts_with('S')).await;
    assert_eq!(
        lines.iter().filter(|line| *line == "DONE").count(),
        8,
        "{lines:?}"
    );
    assert_eq!(lines.last().unwrap(), "S 8");
    for n in 0..8 {
        assert_eq!(connection.receive().await.unwrap(), counter(n));
    }
}

#[tokio::test]
async fn t2_acknowledges_fewer_than_w_frames() {
    let config = ConnectionConfig {
        supervisory_timeout: Duration::from_millis(200),
        ..config()
    };
    let (mut peer, mut connection) = connected(&config, &[]).await;
    peer.command(&format!("i 0 0 {}", counter_hex(1))).await;
    assert_eq!(peer.next_line().await, "DONE");
    assert_eq!(peer.next_line().await, "S 1");
    assert_eq!(connection.receive().await.unwrap(), counter(1));
}

#[tokio::test]
async fn t3_sends_test_frames_when_idle() {
    let config = ConnectionConfig {
        test_timeout: Duration::from_millis(200),
        ..config()
    };
    let (mut peer, connection) = connected(&config, &[]).await;
    assert_eq!(peer.next_line().await, "U TESTFR_ACT");
    peer.command("u TESTFR_CON").await;
    assert_eq!(peer.next_line().await, "DONE");
    // Idle again after the con: another test frame, and the connection stays up.
    assert_eq!(peer.next_line().await, "U TESTFR_ACT");
    peer.command("u TESTFR_CON").await;
    assert_eq!(peer.next_line().await, "DONE");
    assert!(!connection.sender().is_closed());
}

#[tokio::test]
async fn t1_closes_when_testfr_is_not_confirmed() {
    let config = ConnectionConfig {
        test_timeout: Duration::from_millis(100),
        response_timeout: Duration::from_millis(300),
        ..config()
    };
    let (mut peer, connection) = connected(&config, &[]).await;
    assert_eq!(peer.next_line().await, "U TESTFR_ACT");
    let reason = tokio::time::timeout(WAIT, connection.sender().closed())
        .await
        .unwrap();
    assert_eq!(
        reason,
        CloseReason::ResponseTimeout(TimeoutCause::TestFrCon)
    );
    assert_eq!(peer.next_line().await, "DISCONNECTED");
}

#[tokio::test]
async fn t1_closes_when_an_i_frame_is_not_acknowledged() {
    let config = ConnectionConfig {
        response_timeout: Duration::from_millis(300),
        ..config()
    };
    let (mut peer, connection) = connected(&config, &["--auto-testfr"]).await;
    let sender = connection.sender();
    let waiting = tokio::spawn(async move { sender.send(counter(0), true).await });
    assert_eq!(peer.next_line().await, i_line(0, 0, 0));
    let result = tokio::time::timeout(WAIT, waiting).await.unwrap().unwrap();
    assert!(
        matches!(
            result,
            Err(Error::Closed(CloseReason::ResponseTimeout(
                TimeoutCause::Acknowledgement
            )))
        ),
        "{result:?}"
    );
    assert_eq!(peer.next_line().await, "DISCONNECTED");
}

#[tokio::test]
async fn missing_startdt_con_fails_connect_after_t1() {
    let peer = Peer::start("raw_peer.py", &["listen"]).await;
    let config = ConnectionConfig {
        response_timeout: Duration::from_millis(300),
        ..config()
    };
    let result = tokio::time::timeout(WAIT, connect(peer.addr(), &config))
        .await
        .unwrap();
    assert!(
        matches!(
            result,
            Err(Error::Closed(CloseReason::ResponseTimeout(
                TimeoutCause::StartDtCon
            )))
        ),
        "{result:?}"
    );
}

#[tokio::test]
async fn connect_to_a_closed_port_fails() {
    let addr = SocketAddr::from(([127, 0, 0, 1], gateway_test_support::free_port()));
    let result = connect(addr, &config()).await;
    assert!(
        matches!(result, Err(Error::Connect { addr: a, .. }) if a == addr),
        "{result:?}"
    );
}

#[tokio::test]
async fn listener_follows_startdt_and_stopdt_and_discards_while_stopped() {
    let (_listener, mut peer, mut connection) = accepted(config()).await;
    let sender = connection.sender();
    assert!(!sender.is_enabled());
    // Stopped: discarded, never written.
    assert!(matches!(
        sender.send(counter(99), true).await,
        Err(Error::Disabled)
    ));

    peer.command("u STARTDT_ACT").await;
    peer.expect("U STARTDT_CON").await;
    let mut enabled = sender.enabled();
    enabled.wait_for(|enabled| *enabled).await.unwrap();
    sender.send(counter(1), false).await.unwrap();
    assert_eq!(peer.next_line().await, i_line(0, 0, 1));
    peer.command(&format!("i 0 1 {}", counter_hex(2))).await;
    assert_eq!(connection.receive().await.unwrap(), counter(2));

    // STOPDT act: we acknowledge what we received, then confirm.
    peer.command("u STOPDT_ACT").await;
    let lines = peer.until(|line| line == "U STOPDT_CON").await;
    assert_eq!(lines[lines.len() - 2..], ["S 1", "U STOPDT_CON"]);
    enabled.wait_for(|enabled| !*enabled).await.unwrap();
    assert!(matches!(
        sender.send(counter(3), true).await,
        Err(Error::Disabled)
    ));
    // Started again: the next I-frame is the one sent after, nothing from the stop.
    peer.command("u STARTDT_ACT").await;
    peer.expect("U STARTDT_CON").await;
    enabled.wait_for(|enabled| *enabled).await.unwrap();
    sender.send(counter(4), false).await.unwrap();
    assert_eq!(peer.next_line().await, i_line(1, 1, 4));
}

/// Bad bytes from a peer close that connection with a logged reason; the listener and
/// the next connection keep working.
async fn bad_input_closes_only_that_connection(bad: &str, expected: CloseReason) {
    let logs = LogCapture::global();
    let (listener, mut peer, mut connection) = accepted(config()).await;
    peer.command("u STARTDT_ACT").await;
    peer.expect("U STARTDT_CON").await;
    peer.command(bad).await;
    let reason = tokio::time::timeout(WAIT, connection.sender().closed())
        .await
        .unwrap();
    assert_eq!(reason, expected);
    peer.expect("DISCONNECTED").await;
    assert!(matches!(connection.receive().await, Err(Error::Closed(r)) if r == expected));
    // The close is logged before it is published, in the connection's span.
    let remote = format!("remote={}", connection.info().remote_addr);
    let logged = logs.text();
    assert!(
        logged
            .lines()
            .any(|line| line.contains("IEC 104 connection closed")
                && line.contains(&expected.to_string())
                && line.contains(&remote)),
        "{logged}"
    );

    let port = listener.local_addr().port().to_string();
    let mut next = Peer::start("raw_peer.py", &["connect", &port]).await;
    let connection = tokio::time::timeout(WAIT, listener.accept())
        .await
        .unwrap()
        .unwrap();
    next.expect("CONNECTED").await;
    next.command("u STARTDT_ACT").await;
    next.expect("U STARTDT_CON").await;
    connection.sender().send(counter(5), false).await.unwrap();
    assert_eq!(next.next_line().await, i_line(0, 0, 5));
}

#[tokio::test]
async fn garbage_start_byte_closes_that_connection() {
    bad_input_closes_only_that_connection(
        "raw 474554202f20485454502f312e310d0a",
        CloseReason::Protocol(ApciError::InvalidStartByte(0x47)),
    )
    .await;
}

#[tokio::test]
async fn bad_length_closes_that_connection() {
    bad_input_closes_only_that_connection(
        "raw 6802",
        CloseReason::Protocol(ApciError::InvalidLength(2)),
    )
    .await;
}

#[tokio::test]
async fn unknown_u_function_closes_that_connection() {
    bad_input_closes_only_that_connection(
        "raw 680433000000",
        CloseReason::Protocol(ApciError::InvalidControlField([0x33, 0, 0, 0])),
    )
    .await;
}

#[tokio::test]
async fn out_of_order_send_sequence_closes_that_connection() {
    bad_input_closes_only_that_connection(
        "i 5 0 01020304",
        CloseReason::Protocol(ApciError::SequenceMismatch {
            expected: 0,
            received: 5,
        }),
    )
    .await;
}

#[tokio::test]
async fn ack_for_an_unsent_frame_closes_that_connection() {
    bad_input_closes_only_that_connection(
        "s 3",
        CloseReason::Protocol(ApciError::AckForUnsent {
            ack: 3,
            acked: 0,
            sent: 0,
        }),
    )
    .await;
}

#[tokio::test]
async fn close_ends_the_connection_and_fails_what_waits() {
    let (mut peer, mut connection) = connected(&config(), &[]).await;
    let sender = connection.sender();
    let waiter = sender.clone();
    let waiting = tokio::spawn(async move { waiter.send(counter(0), true).await });
    assert_eq!(peer.next_line().await, i_line(0, 0, 0));
    sender.close();
    assert_eq!(
        tokio::time::timeout(WAIT, sender.closed()).await.unwrap(),
        CloseReason::Local
    );
    assert!(sender.is_closed());
    assert!(!sender.is_enabled());
    let result = tokio::time::timeout(WAIT, waiting).await.unwrap().unwrap();
    assert!(
        matches!(result, Err(Error::Closed(CloseReason::Local))),
        "{result:?}"
    );
    assert!(matches!(
        sender.send(counter(1), false).await,
        Err(Error::Closed(CloseReason::Local))
    ));
    assert!(matches!(
        connection.receive().await,
        Err(Error::Closed(CloseReason::Local))
    ));
    assert_eq!(peer.next_line().await, "DISCONNECTED");
}

#[tokio::test]
async fn dropping_every_handle_closes_the_connection() {
    let (mut peer, connection) = connected(&config(), &[]).await;
    let sender = connection.sender();
    drop(connection);
    // A sender alone keeps it open.
    sender.send(counter(3), false).await.unwrap();
    assert_eq!(peer.next_line().await, i_line(0, 0, 3));
    drop(sender);
    assert_eq!(peer.next_line().await, "DISCONNECTED");
}

#[tokio::test]
async fn a_full_receive_queue_stops_reading_and_loses_nothing() {
    let config = ConnectionConfig {
        receive_queue_size: 2,
        receive_window_size: 1,
        ..config()
    };
    let (mut peer, mut connection) = connected(&config, &[]).await;
    for n in 0..6u16 {
        peer.command(&format!("i {n} 0 {}", counter_hex(u32::from(n))))
            .await;
    }
    // Two ASDUs fit the queue and a third waits for room: three acknowledged, then the
    // socket is not read any more (the link test is not answered yet).
    peer.until(|line| line == "S 3").await;
    peer.command("u TESTFR_ACT").await;
    let lines = peer.until(|line| line == "DONE").await;
    assert!(lines.iter().all(|line| line == "DONE"), "{lines:?}");
    for n in 0..6 {
        assert_eq!(connection.receive().await.unwrap(), counter(n));
    }
    let lines = peer.until(|line| line == "U TESTFR_CON").await;
    assert_eq!(lines, ["S 4", "S 5", "S 6", "U TESTFR_CON"]);
}

#[tokio::test]
async fn without_a_receiver_asdus_are_dropped_and_the_link_keeps_working() {
    let config = ConnectionConfig {
        receive_queue_size: 1,
        receive_window_size: 1,
        ..config()
    };
    let (mut peer, connection) = connected(&config, &[]).await;
    let sender = connection.sender();
    drop(connection);
    for n in 0..3u16 {
        peer.command(&format!("i {n} 0 {}", counter_hex(u32::from(n))))
            .await;
    }
    peer.command("u TESTFR_ACT").await;
    let lines = peer.until(|line| line == "U TESTFR_CON").await;
    let acks: Vec<_> = lines.iter().filter(|line| line.starts_with('S')).collect();
    assert_eq!(acks, ["S 1", "S 2", "S 3"]);
    sender.send(counter(9), false).await.unwrap();
    assert_eq!(peer.next_line().await, i_line(0, 3, 9));
}

/// The futures of the API can be spawned on a multi-threaded runtime.
#[test]
fn api_futures_are_send() {
    fn assert_send<T: Send>(_: T) {}
    let addr = SocketAddr::from(([127, 0, 0, 1], 1));
    let config = config();
    assert_send(connect(addr, &config));
    assert_send(Listener::bind(addr, config.clone()));
    fn with_connection(connection: &mut iec104::Connection, listener: &Listener) {
        let sender = connection.sender();
        assert_send(sender.send(counter(0), true));
        assert_send(sender.send_all(vec![counter(0)], true));
        assert_send(sender.drain(true));
        assert_send(sender.closed());
        assert_send(listener.accept());
        assert_send(connection.receive());
    }
    let _ = with_connection;
}
