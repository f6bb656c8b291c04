//! hat-drivers' unbalanced master link against our [`SlaveLink`] over a pty pair.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{within, HatPeer};
use iec_link::{AddressSize, CloseReason, SlaveConnectionOptions, SlaveLink};

fn options(keep_alive: Duration) -> SlaveConnectionOptions {
    SlaveConnectionOptions {
        name: None,
        keep_alive_timeout: keep_alive,
        ..SlaveConnectionOptions::default()
    }
}

#[tokio::test]
async fn hat_master_polls_two_addresses_class1_class2_and_sends_data() {
    let mut peer = HatPeer::start(
        "slave-two",
        "master",
        &[
            "--addr",
            "7",
            "--addr",
            "300",
            "--address-size",
            "2",
            "--class2",
            "0.05",
        ],
    )
    .await;
    let link = SlaveLink::open(&peer.params(), AddressSize::Two)
        .await
        .unwrap();
    let (c7, c300) = tokio::join!(
        link.open_connection(7, options(Duration::from_secs(30))),
        link.open_connection(300, options(Duration::from_secs(30))),
    );
    let (c7, c300) = (c7.unwrap(), c300.unwrap());
    peer.expect("OPENED 7").await;
    peer.expect("OPENED 300").await;

    // Class 1 (ACD, class 1 poll) and class 2 data reach hat's connections.
    within("class 1", c7.send(Bytes::from_static(&[1, 2, 3]), true))
        .await
        .unwrap();
    peer.expect("RECV 7 010203").await;
    within("class 2", c300.send_class2(Bytes::from_static(&[4])))
        .await
        .unwrap();
    peer.expect("RECV 300 04").await;
    // Several queued at once arrive in order.
    let sends: Vec<_> = (0u8..5)
        .map(|i| {
            let c7 = c7.clone();
            tokio::spawn(async move { c7.send(Bytes::from(vec![i; 3]), true).await })
        })
        .collect();
    for send in sends {
        within("queued send", send).await.unwrap().unwrap();
    }
    for i in 0u8..5 {
        peer.expect(&format!("RECV 7 {i:02x}{i:02x}{i:02x}")).await;
    }

    // hat's user data, confirmed and not.
    peer.send("send 300 aabbcc").await;
    assert_eq!(
        within("data", c300.receive()).await.unwrap(),
        Bytes::from_static(&[0xaa, 0xbb, 0xcc])
    );
    peer.expect("SENT 300").await;
    peer.send("send 7 dd noack").await;
    assert_eq!(
        within("data no ack", c7.receive()).await.unwrap(),
        Bytes::from_static(&[0xdd])
    );
}

#[tokio::test]
async fn keep_alive_timeout_closes_a_connection_the_master_stopped_polling() {
    let mut peer = HatPeer::start("slave-keepalive", "master", &["--addr", "5"]).await;
    let link = SlaveLink::open(&peer.params(), AddressSize::One)
        .await
        .unwrap();
    let conn = within(
        "open",
        link.open_connection(5, options(Duration::from_millis(400))),
    )
    .await
    .unwrap();
    peer.expect("OPENED 5").await;
    // Polled every 50 ms: stays open well past the keep-alive timeout.
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(!conn.is_closed());
    peer.send("close 5").await;
    peer.expect("CLOSED 5").await;
    assert_eq!(
        within("keep alive", conn.closed()).await,
        CloseReason::KeepAliveTimeout
    );
    assert!(!link.is_closed());
    // The address can be opened again (it waits for the master's next request).
    let again = link.open_connection(5, options(Duration::from_secs(30)));
    tokio::pin!(again);
    assert!(tokio::time::timeout(Duration::from_millis(300), &mut again)
        .await
        .is_err());
}

#[tokio::test]
async fn a_vanished_port_closes_link_and_connections_with_the_reason() {
    let mut peer = HatPeer::start("slave-vanish", "master", &["--addr", "1"]).await;
    let link = SlaveLink::open(&peer.params(), AddressSize::One)
        .await
        .unwrap();
    let conn = within(
        "open",
        link.open_connection(1, options(Duration::from_secs(30))),
    )
    .await
    .unwrap();
    peer.expect("OPENED 1").await;
    // Killing socat removes both ptys: our reads fail.
    let HatPeer { script, pty } = peer;
    drop(pty);
    let reason = within("link closed", link.closed()).await;
    assert!(
        matches!(reason, CloseReason::PortFailed { .. }),
        "{reason:?}"
    );
    assert_eq!(within("conn closed", conn.closed()).await, reason);
    assert!(reason.to_string().contains("failed"), "{reason}");
    drop(script);
}

#[tokio::test]
async fn garbage_from_the_master_is_discarded_and_the_line_carries_on() {
    let mut peer = HatPeer::start("slave-garbage", "master", &["--addr", "2"]).await;
    let link = SlaveLink::open(&peer.params(), AddressSize::One)
        .await
        .unwrap();
    let conn = within(
        "open",
        link.open_connection(2, options(Duration::from_secs(30))),
    )
    .await
    .unwrap();
    peer.expect("OPENED 2").await;
    // Noise, a request with a bad checksum, a variable header with a bad repeat.
    peer.send("garbage 00ff7f").await;
    peer.expect("GARBAGE").await;
    peer.send("garbage 107a0100").await;
    peer.expect("GARBAGE").await;
    peer.send("garbage 68050568").await;
    peer.expect("GARBAGE").await;
    // The rest of that frame, with a bad checksum: without it the master's next request
    // is read as the bogus frame's body, and on a loaded machine its retries can run out
    // before the line has resynchronised.
    peer.send("garbage 01020304050016").await;
    peer.expect("GARBAGE").await;
    peer.send("send 2 0102").await;
    assert_eq!(
        within("data", conn.receive()).await.unwrap(),
        Bytes::from_static(&[1, 2])
    );
    within("class 1", conn.send(Bytes::from_static(&[3]), true))
        .await
        .unwrap();
    peer.expect("RECV 2 03").await;
    let stats = link.stats();
    assert!(stats.discarded_bytes >= 3, "{stats:?}");
    assert!(stats.bad_frames >= 1, "{stats:?}");
    assert!(!conn.is_closed());
}
