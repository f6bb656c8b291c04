//! Handle life cycles: dropping and closing connections and links, cancelled opens,
//! addresses in use, oversized data (against hat-drivers' slave link on a pty pair).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{within, HatPeer};
use iec_link::{AddressSize, CloseReason, LinkError, MasterConnectionOptions, MasterLink};

fn options() -> MasterConnectionOptions {
    MasterConnectionOptions {
        response_timeout: Duration::from_millis(300),
        poll_class1_delay: Some(Duration::from_millis(50)),
        ..MasterConnectionOptions::default()
    }
}

#[tokio::test]
async fn connections_close_by_handle_and_free_their_address() {
    let mut peer = HatPeer::start("handles-conn", "slave", &["--addr", "1"]).await;
    let link = MasterLink::open(&peer.params(), AddressSize::One)
        .await
        .unwrap();
    let conn = within("open", link.open_connection(1, options()))
        .await
        .unwrap();
    peer.expect("OPENED 1").await;
    assert_eq!(
        within("second open", link.open_connection(1, options()))
            .await
            .unwrap_err(),
        LinkError::AddressInUse(1)
    );
    // A frame too long for the link is refused, the connection stays.
    let err = conn
        .send(Bytes::from(vec![0; 254]), true)
        .await
        .unwrap_err();
    assert_eq!(err, LinkError::DataSize { len: 254, max: 253 });
    assert!(!conn.is_closed());

    let clone = conn.clone();
    conn.close();
    assert_eq!(within("closed", clone.closed()).await, CloseReason::Local);
    assert_eq!(
        clone
            .send(Bytes::from_static(&[1]), true)
            .await
            .unwrap_err(),
        LinkError::Closed(CloseReason::Local)
    );
    // The address is free again; dropping every clone closes that one too.
    let again = within("reopen", link.open_connection(1, options()))
        .await
        .unwrap();
    drop(again);
    drop(conn);
    drop(clone);
    let third = within("reopen after drop", link.open_connection(1, options()))
        .await
        .unwrap();
    peer.send("send 1 01").await;
    assert_eq!(
        within("data", third.receive()).await.unwrap(),
        Bytes::from_static(&[1])
    );
}

#[tokio::test]
async fn a_cancelled_open_stops_resetting_and_frees_the_address() {
    // No slave answers for address 9.
    let peer = HatPeer::start("handles-cancel", "slave", &["--addr", "1"]).await;
    let link = MasterLink::open(&peer.params(), AddressSize::One)
        .await
        .unwrap();
    let open = tokio::time::timeout(
        Duration::from_millis(500),
        link.open_connection(9, options()),
    )
    .await;
    assert!(open.is_err());
    // Not in use any more (a second attempt is not refused as AddressInUse).
    let open = tokio::time::timeout(
        Duration::from_millis(300),
        link.open_connection(9, options()),
    )
    .await;
    assert!(open.is_err());
    let conn = within("other address", link.open_connection(1, options()))
        .await
        .unwrap();
    assert!(!conn.is_closed());
}

#[tokio::test]
async fn closing_or_dropping_the_link_closes_its_connections() {
    let peer = HatPeer::start("handles-link", "slave", &["--addr", "1", "--addr", "2"]).await;
    let link = MasterLink::open(&peer.params(), AddressSize::One)
        .await
        .unwrap();
    let c1 = within("open 1", link.open_connection(1, options()))
        .await
        .unwrap();
    let clone = link.clone();
    link.close();
    assert_eq!(
        within("link closed", clone.closed()).await,
        CloseReason::Local
    );
    assert_eq!(within("conn closed", c1.closed()).await, CloseReason::Local);
    assert!(within("receive", c1.receive()).await.is_none());
    assert!(matches!(
        clone.open_connection(2, options()).await,
        Err(LinkError::Closed(CloseReason::Local))
    ));
    drop(peer);

    let peer = HatPeer::start("handles-drop", "slave", &["--addr", "1"]).await;
    let link = MasterLink::open(&peer.params(), AddressSize::One)
        .await
        .unwrap();
    let conn = within("open", link.open_connection(1, options()))
        .await
        .unwrap();
    drop(link);
    assert_eq!(
        within("dropped link", conn.closed()).await,
        CloseReason::Local
    );
}

#[tokio::test]
async fn a_missing_port_and_unsupported_settings_are_errors() {
    let mut params = iec_link::SerialParams::new("/nonexistent/tty-for-test", 9600);
    assert!(matches!(
        MasterLink::open(&params, AddressSize::One).await,
        Err(LinkError::Open { .. })
    ));
    params.parity = iec_link::Parity::Mark;
    assert!(matches!(
        MasterLink::open(&params, AddressSize::One).await,
        Err(LinkError::Unsupported(_))
    ));
    assert_eq!(params.bits_per_char(), 11);
}
