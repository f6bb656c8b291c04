//! Our [`BalancedLink`] against hat-drivers' balanced link over a pty pair.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{within, HatPeer};
use iec_link::{AddressSize, BalancedConnectionOptions, BalancedLink, CloseReason, Direction};

fn options() -> BalancedConnectionOptions {
    BalancedConnectionOptions {
        name: None,
        response_timeout: Duration::from_millis(300),
        send_retry_count: 2,
        status_delay: Duration::from_millis(100),
        ..BalancedConnectionOptions::default()
    }
}

async fn both_ways(size: AddressSize, size_arg: &str, address: u16, ours: Direction, label: &str) {
    let addr = address.to_string();
    let theirs = match ours {
        Direction::AToB => "B_TO_A",
        Direction::BToA => "A_TO_B",
    };
    let mut peer = HatPeer::start(
        label,
        "balanced",
        &[
            "--addr",
            &addr,
            "--address-size",
            size_arg,
            "--direction",
            theirs,
            "--status-delay",
            "0.1",
        ],
    )
    .await;
    let link = BalancedLink::open(&peer.params(), size).await.unwrap();
    let conn = within("open", link.open_connection(ours, address, options()))
        .await
        .unwrap();
    peer.expect(&format!("OPENED {addr}")).await;

    within("send", conn.send(Bytes::from_static(&[1, 2]), true))
        .await
        .unwrap();
    peer.expect(&format!("RECV {addr} 0102")).await;
    within("send no ack", conn.send(Bytes::from_static(&[3]), false))
        .await
        .unwrap();
    peer.expect(&format!("RECV {addr} 03")).await;
    peer.send(&format!("send {addr} 0405")).await;
    assert_eq!(
        within("receive", conn.receive()).await.unwrap(),
        Bytes::from_static(&[4, 5])
    );
    peer.expect(&format!("SENT {addr}")).await;
    // Idle for several status delays on both sides: status requests keep it open.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!conn.is_closed());
    peer.send(&format!("send {addr} 06 noack")).await;
    assert_eq!(
        within("receive", conn.receive()).await.unwrap(),
        Bytes::from_static(&[6])
    );
    assert_eq!(link.stats().bad_frames, 0);
}

#[tokio::test]
async fn balanced_data_both_ways_with_one_octet_addresses() {
    both_ways(AddressSize::One, "1", 4, Direction::AToB, "bal-one").await;
}

#[tokio::test]
async fn balanced_data_both_ways_without_address_field_as_station_b() {
    both_ways(AddressSize::Zero, "0", 0, Direction::BToA, "bal-zero").await;
}

#[tokio::test]
async fn balanced_data_both_ways_with_two_octet_addresses_as_station_b() {
    both_ways(AddressSize::Two, "2", 1000, Direction::BToA, "bal-two").await;
}

#[tokio::test]
async fn a_silent_balanced_peer_closes_the_connection() {
    let mut peer = HatPeer::start(
        "bal-silent",
        "balanced",
        &[
            "--addr",
            "1",
            "--direction",
            "B_TO_A",
            "--status-delay",
            "10",
        ],
    )
    .await;
    let link = BalancedLink::open(&peer.params(), AddressSize::One)
        .await
        .unwrap();
    let conn = within("open", link.open_connection(Direction::AToB, 1, options()))
        .await
        .unwrap();
    peer.send("mute").await;
    peer.expect("MUTED").await;
    let err = within("send", conn.send(Bytes::from_static(&[9]), true))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        iec_link::LinkError::Closed(CloseReason::NoResponse { retries: 2 })
    );
    assert!(conn.is_closed());
}
