//! Our connections against hat-drivers' own IEC 104 APCI in Python: our `connect`
//! against hat's `listen` and hat's `connect` against our `Listener`; ASDUs both ways
//! in order, across the 32768 sequence wrap, with wait_ack and drain.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;

use common::{counter, counter_of, Peer, WAIT};
use iec104::{connect, Connection, ConnectionConfig, Listener};

/// More than one full sequence space, so N(S) and N(R) wrap.
const WRAP_COUNT: u32 = 32_768 + 500;

fn config(k: u16, w: u16) -> ConnectionConfig {
    ConnectionConfig {
        send_window_size: k,
        receive_window_size: w,
        ..ConnectionConfig::default()
    }
}

/// Sends counters `0..count` and waits for their acknowledgement.
async fn send_counters(connection: &Connection, count: u32) {
    let sender = connection.sender();
    for n in 0..count {
        sender.send(counter(n), false).await.unwrap();
    }
    tokio::time::timeout(WAIT * 3, sender.drain(true))
        .await
        .unwrap()
        .unwrap();
}

/// Receives `count` ASDUs and checks they are the counters `0..count` in order.
async fn receive_counters(connection: &mut Connection, count: u32) {
    for n in 0..count {
        let asdu = tokio::time::timeout(WAIT, connection.receive())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(counter_of(&asdu), n);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_connect_to_hat_listen_both_ways_across_the_sequence_wrap() {
    let mut peer = Peer::start("hat_peer.py", &["listen", "--k", "64", "--w", "32"]).await;
    let mut connection = connect(peer.addr(), &config(64, 32)).await.unwrap();
    peer.expect("CONNECTED").await;
    assert!(connection.sender().is_enabled());
    assert_eq!(connection.info().remote_addr, peer.addr());

    peer.command(&format!("expect {WRAP_COUNT}")).await;
    send_counters(&connection, WRAP_COUNT).await;
    peer.expect(&format!("GOT {WRAP_COUNT}")).await;

    peer.command(&format!("send {WRAP_COUNT} wait")).await;
    receive_counters(&mut connection, WRAP_COUNT).await;
    peer.expect(&format!("SENT {WRAP_COUNT}")).await;

    // hat-drivers' listening side is enabled by our STARTDT act.
    peer.command("enabled").await;
    peer.expect("ENABLED true").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hat_connect_to_our_listener_both_ways_with_wait_ack() {
    let listener = Listener::bind(SocketAddr::from(([127, 0, 0, 1], 0)), config(12, 8))
        .await
        .unwrap();
    let port = listener.local_addr().port().to_string();
    let mut peer = Peer::start("hat_peer.py", &["connect", &port]).await;
    let mut connection = tokio::time::timeout(WAIT, listener.accept())
        .await
        .unwrap()
        .unwrap();
    peer.expect("CONNECTED").await;
    let sender = connection.sender();
    // hat's connect sent STARTDT act and got our con.
    let mut enabled = sender.enabled();
    tokio::time::timeout(WAIT, enabled.wait_for(|enabled| *enabled))
        .await
        .unwrap()
        .unwrap();

    // wait_ack on one ASDU: resolves once hat acknowledged it (t2 or w frames later).
    peer.command("expect 1").await;
    tokio::time::timeout(WAIT, sender.send(counter(0), true))
        .await
        .unwrap()
        .unwrap();
    peer.expect("GOT 1").await;

    peer.command("expect 2000").await;
    let batch: Vec<_> = (1..2000).map(counter).collect();
    sender.send_all(batch, true).await.unwrap();
    peer.expect("GOT 2000").await;

    peer.command("send 2000 wait").await;
    receive_counters(&mut connection, 2000).await;
    peer.expect("SENT 2000").await;

    // hat closes: we see the peer's close as the reason.
    peer.command("close").await;
    let reason = tokio::time::timeout(WAIT, sender.closed()).await.unwrap();
    assert_eq!(reason, iec104::CloseReason::PeerClosed);
    assert!(matches!(
        connection.receive().await,
        Err(iec104::Error::Closed(iec104::CloseReason::PeerClosed))
    ));
}
