//! Our [`MasterLink`] against hat-drivers' unbalanced slave link over a pty pair.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{hex, within, HatPeer};
use iec_link::{AddressSize, CloseReason, MasterConnectionOptions, MasterLink};

fn options(class2: Option<Duration>) -> MasterConnectionOptions {
    MasterConnectionOptions {
        name: Some("test".into()),
        response_timeout: Duration::from_millis(300),
        send_retry_count: 2,
        poll_class1_delay: Some(Duration::from_millis(50)),
        poll_class2_delay: class2,
        ..MasterConnectionOptions::default()
    }
}

#[tokio::test]
async fn two_slaves_on_one_line_exchange_class1_class2_and_commands() {
    let mut peer = HatPeer::start("master-two", "slave", &["--addr", "1", "--addr", "2"]).await;
    let link = MasterLink::open(&peer.params(), AddressSize::One)
        .await
        .unwrap();
    let c1 = within(
        "open 1",
        link.open_connection(1, options(Some(Duration::from_millis(100)))),
    )
    .await
    .unwrap();
    let c2 = within("open 2", link.open_connection(2, options(None)))
        .await
        .unwrap();
    peer.expect("OPENED 1").await;
    peer.expect("OPENED 2").await;
    assert_eq!(c1.info().address, 1);
    assert_eq!(c1.info().name.as_deref(), Some("test"));

    // Class 1 data of each slave reaches its own connection.
    peer.send("send 1 0102").await;
    peer.send("send 2 0a0b0c").await;
    assert_eq!(
        within("class 1 on 1", c1.receive()).await.unwrap(),
        Bytes::from_static(&[1, 2])
    );
    assert_eq!(
        within("class 1 on 2", c2.receive()).await.unwrap(),
        Bytes::from_static(&[10, 11, 12])
    );

    // Class 2 data (hat's poll_class2_cb) on the connection that polls class 2.
    peer.send("class2 1 c2c2").await;
    assert_eq!(
        within("class 2 on 1", c1.receive()).await.unwrap(),
        Bytes::from_static(&[0xc2, 0xc2])
    );

    // Our user data, confirmed and not.
    within("send", c1.send(Bytes::from_static(&[5, 6, 7]), true))
        .await
        .unwrap();
    peer.expect("RECV 1 050607").await;
    within("send no ack", c2.send(Bytes::from_static(&[8]), false))
        .await
        .unwrap();
    peer.expect("RECV 2 08").await;
    let many: Vec<u8> = (0..200).map(|i| i as u8).collect();
    within("send long", c2.send(Bytes::from(many.clone()), true))
        .await
        .unwrap();
    peer.expect(&format!("RECV 2 {}", hex(&many))).await;
    assert_eq!(link.stats().bad_frames, 0);
}

#[tokio::test]
async fn a_silent_slave_closes_the_connection_and_reopening_works_once_it_answers() {
    let mut peer = HatPeer::start("master-silent", "slave", &["--addr", "3"]).await;
    let link = MasterLink::open(&peer.params(), AddressSize::One)
        .await
        .unwrap();
    let conn = within("open", link.open_connection(3, options(None)))
        .await
        .unwrap();
    peer.send("mute").await;
    peer.expect("MUTED").await;
    // 50 ms poll delay, 300 ms timeout, 2 repetitions: closed within a second or so.
    let reason = within("closed", conn.closed()).await;
    assert_eq!(reason, CloseReason::NoResponse { retries: 2 });
    assert!(within("receive after close", conn.receive())
        .await
        .is_none());
    let err = conn.send(Bytes::from_static(&[1]), true).await.unwrap_err();
    assert_eq!(
        err,
        iec_link::LinkError::Closed(CloseReason::NoResponse { retries: 2 })
    );
    assert!(!link.is_closed());

    // Opening keeps resetting while the slave is silent ...
    let reopen = link.open_connection(3, options(None));
    tokio::pin!(reopen);
    assert!(
        tokio::time::timeout(Duration::from_millis(800), &mut reopen)
            .await
            .is_err()
    );
    // ... and succeeds once it answers again.
    peer.send("unmute").await;
    let conn = within("reopen", reopen).await.unwrap();
    peer.send("send 3 33").await;
    assert_eq!(
        within("data after reopen", conn.receive()).await.unwrap(),
        Bytes::from_static(&[0x33])
    );
}

#[tokio::test]
async fn garbage_between_frames_is_discarded_and_counted() {
    let mut peer = HatPeer::start("master-garbage", "slave", &["--addr", "1"]).await;
    let link = MasterLink::open(&peer.params(), AddressSize::One)
        .await
        .unwrap();
    let conn = within("open", link.open_connection(1, options(None)))
        .await
        .unwrap();
    // Garbage octets, a fixed frame with a bad checksum, a variable header whose
    // lengths disagree; then the line carries on.
    peer.send("garbage 0001ff").await;
    peer.expect("GARBAGE").await;
    peer.send("garbage 100001ff16").await;
    peer.expect("GARBAGE").await;
    peer.send("garbage 68030468").await;
    peer.expect("GARBAGE").await;
    peer.send("send 1 aabb").await;
    assert_eq!(
        within("data after garbage", conn.receive()).await.unwrap(),
        Bytes::from_static(&[0xaa, 0xbb])
    );
    let stats = link.stats();
    assert!(stats.discarded_bytes >= 3 + 5 + 4, "{stats:?}");
    assert!(stats.bad_frames >= 2, "{stats:?}");
    assert!(!conn.is_closed());
}

#[tokio::test]
async fn address_checks() {
    let peer = HatPeer::start("master-addr", "slave", &[]).await;
    let link = MasterLink::open(&peer.params(), AddressSize::One)
        .await
        .unwrap();
    assert!(matches!(
        link.open_connection(255, options(None)).await,
        Err(iec_link::LinkError::InvalidAddress { address: 255, .. })
    ));
    assert!(matches!(
        MasterLink::open(&peer.params(), AddressSize::Zero).await,
        Err(iec_link::LinkError::Unsupported(_))
    ));
}
