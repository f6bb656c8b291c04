//! A raw TCP peer against the slave: the exceptions for malformed requests, the FC24
//! bytes, frames that cannot be parsed, the allow-list, `max_connections` and
//! `keep_alive_timeout`; each keeps the device serving and updates
//! `gateway/connections` as the connection table changes.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends one MBAP request (unit 1, transaction 7) and returns the response PDU.
async fn exchange(stream: &mut TcpStream, unit: u8, pdu: &[u8]) -> Vec<u8> {
    let mut frame = vec![0, 7, 0, 0];
    frame.extend_from_slice(&((pdu.len() + 1) as u16).to_be_bytes());
    frame.push(unit);
    frame.extend_from_slice(pdu);
    stream.write_all(&frame).await.unwrap();
    let mut header = [0u8; 7];
    tokio::time::timeout(WAIT, stream.read_exact(&mut header))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&header[..4], &[0, 7, 0, 0], "transaction id echoed");
    assert_eq!(header[6], unit);
    let len = usize::from(u16::from_be_bytes([header[4], header[5]])) - 1;
    let mut response = vec![0u8; len];
    stream.read_exact(&mut response).await.unwrap();
    response
}

/// Waits until the peer closed `stream` (EOF or reset).
async fn closed(stream: &mut TcpStream) {
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(WAIT, stream.read(&mut buf))
        .await
        .expect("connection not closed")
        .unwrap_or(0);
    assert_eq!(n, 0, "expected the connection closed");
}

fn conf_with(transport: Value) -> Value {
    let mut conf = tcp_conf("TCP", all_points());
    for (key, value) in transport.as_object().unwrap() {
        conf["transport"][key] = value.clone();
    }
    conf
}

#[tokio::test]
async fn malformed_requests_get_the_standard_exception_and_keep_the_connection() {
    let (device, mut registrations, _) = start(
        &tcp_conf("TCP", all_points()),
        vec![data_event("fifo", 0x4242)],
    )
    .await;
    let mut stream = TcpStream::connect(device.local_addr().unwrap())
        .await
        .unwrap();
    assert_eq!(
        registrations.connections().await.as_array().unwrap().len(),
        1
    );
    // Unknown function code: illegal function.
    assert_eq!(
        exchange(&mut stream, 1, &[0x2B, 0x0E, 1, 0]).await,
        [0xAB, 1]
    );
    // Quantity 0 and over 125 registers: illegal data value.
    assert_eq!(exchange(&mut stream, 1, &[3, 0, 0, 0, 0]).await, [0x83, 3]);
    assert_eq!(
        exchange(&mut stream, 1, &[3, 0, 0, 0, 126]).await,
        [0x83, 3]
    );
    // Byte count disagreeing with the quantity: illegal data value.
    assert_eq!(
        exchange(&mut stream, 1, &[16, 0, 0, 0, 1, 4, 0, 1, 0, 2]).await,
        [0x90, 3]
    );
    // A coil value other than 0xFF00 / 0x0000: illegal data value.
    assert_eq!(
        exchange(&mut stream, 1, &[5, 0, 0, 0x12, 0x34]).await,
        [0x85, 3]
    );
    // A range past 0xFFFF: illegal data address.
    assert_eq!(
        exchange(&mut stream, 1, &[1, 0xFF, 0xFF, 0, 2]).await,
        [0x81, 2]
    );
    // Broadcast and unknown units on TCP: illegal data address (hat).
    assert_eq!(exchange(&mut stream, 0, &[3, 0, 0, 0, 1]).await, [0x83, 2]);
    assert_eq!(exchange(&mut stream, 5, &[3, 0, 0, 0, 1]).await, [0x83, 2]);
    // FC24 in the standard encoding: byte count 4, FIFO count 1, the register.
    assert_eq!(
        exchange(&mut stream, 1, &[24, 0, 7]).await,
        [24, 0, 4, 0, 1, 0x42, 0x42]
    );
    // Still served.
    assert_eq!(
        exchange(&mut stream, 1, &[3, 0, 0, 0, 1]).await,
        [3, 2, 0, 0]
    );
    device.close().await;
}

#[tokio::test]
async fn an_unparsable_frame_closes_only_that_connection() {
    let (device, mut registrations, _) = start(&tcp_conf("TCP", all_points()), vec![]).await;
    let addr = device.local_addr().unwrap();
    let mut good = TcpStream::connect(addr).await.unwrap();
    assert_eq!(
        registrations.connections().await.as_array().unwrap().len(),
        1
    );
    let mut bad = TcpStream::connect(addr).await.unwrap();
    let both = registrations.connections().await;
    assert_eq!(both.as_array().unwrap().len(), 2);
    bad.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    closed(&mut bad).await;
    let left = registrations.connections().await;
    assert_eq!(left, json!([both[0]]));
    assert_eq!(exchange(&mut good, 1, &[3, 0, 0, 0, 1]).await, [3, 2, 0, 0]);
    // An MBAP length beyond any PDU closes the connection too.
    good.write_all(&[0, 1, 0, 0, 0xFF, 0xFF, 1]).await.unwrap();
    closed(&mut good).await;
    assert_eq!(registrations.connections().await, json!([]));
    let mut again = TcpStream::connect(addr).await.unwrap();
    assert_eq!(
        exchange(&mut again, 1, &[3, 0, 0, 0, 1]).await,
        [3, 2, 0, 0]
    );
    device.close().await;
}

#[tokio::test]
async fn hosts_outside_the_allow_list_are_refused() {
    let conf = conf_with(json!({"remote_hosts": ["192.0.2.1"]}));
    let (device, mut registrations, _) = start(&conf, vec![]).await;
    let mut refused = TcpStream::connect(device.local_addr().unwrap())
        .await
        .unwrap();
    closed(&mut refused).await;
    device.close().await;
    // Nothing but the start-up list: a refused host never becomes a connection.
    assert!(registrations.is_idle());

    let conf = conf_with(json!({"remote_hosts": ["127.0.0.1"]}));
    let (device, mut registrations, _) = start(&conf, vec![]).await;
    let mut allowed = TcpStream::connect(device.local_addr().unwrap())
        .await
        .unwrap();
    assert_eq!(
        exchange(&mut allowed, 1, &[3, 0, 0, 0, 1]).await,
        [3, 2, 0, 0]
    );
    let entry = &registrations.connections().await[0];
    assert_eq!(entry["remote"]["host"], "127.0.0.1");
    assert_eq!(
        entry["remote"]["port"],
        allowed.local_addr().unwrap().port()
    );
    device.close().await;
}

#[tokio::test]
async fn connections_beyond_max_connections_are_refused() {
    let conf = conf_with(json!({"max_connections": 1}));
    let (device, mut registrations, _) = start(&conf, vec![]).await;
    let addr = device.local_addr().unwrap();
    let mut first = TcpStream::connect(addr).await.unwrap();
    assert_eq!(
        registrations.connections().await.as_array().unwrap().len(),
        1
    );
    let mut second = TcpStream::connect(addr).await.unwrap();
    closed(&mut second).await;
    assert_eq!(
        exchange(&mut first, 1, &[3, 0, 0, 0, 1]).await,
        [3, 2, 0, 0]
    );
    drop(first);
    assert_eq!(registrations.connections().await, json!([]));
    let mut third = TcpStream::connect(addr).await.unwrap();
    let entry = &registrations.connections().await[0];
    // A refused connection takes no id (as in hat).
    assert_eq!(entry["connection_id"], 2);
    assert_eq!(
        exchange(&mut third, 1, &[3, 0, 0, 0, 1]).await,
        [3, 2, 0, 0]
    );
    device.close().await;
    assert_eq!(registrations.connections().await, json!([]));
}

#[tokio::test]
async fn idle_connections_are_closed_after_keep_alive_timeout() {
    let conf = conf_with(json!({"keep_alive_timeout": 1.0}));
    let (device, mut registrations, _) = start(&conf, vec![]).await;
    let mut stream = TcpStream::connect(device.local_addr().unwrap())
        .await
        .unwrap();
    assert_eq!(
        registrations.connections().await.as_array().unwrap().len(),
        1
    );
    let opened = tokio::time::Instant::now();
    // Requests keep it open well past the timeout.
    for _ in 0..15 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            exchange(&mut stream, 1, &[3, 0, 0, 0, 1]).await,
            [3, 2, 0, 0]
        );
    }
    assert!(opened.elapsed() > Duration::from_millis(1500));
    let idle = tokio::time::Instant::now();
    closed(&mut stream).await;
    assert!(
        idle.elapsed() >= Duration::from_millis(950),
        "{:?}",
        idle.elapsed()
    );
    assert_eq!(registrations.connections().await, json!([]));
    device.close().await;
}

/// Closing the device does not wait for a write's `system/write` (response_timeout
/// is far longer than the wait here).
#[tokio::test]
async fn close_does_not_wait_for_a_pending_write() {
    let conf = conf_with(json!({"response_timeout": 600}));
    let (device, mut registrations, _) = start(&conf, vec![]).await;
    let mut stream = TcpStream::connect(device.local_addr().unwrap())
        .await
        .unwrap();
    stream
        .write_all(&[0, 1, 0, 0, 0, 6, 1, 6, 0, 0, 0, 9])
        .await
        .unwrap();
    assert_eq!(
        registrations.write().await["data"],
        json!([{"name": "hr", "value": 9}])
    );
    tokio::time::timeout(WAIT, device.close())
        .await
        .expect("close waited for the pending write");
    closed(&mut stream).await;
    assert_eq!(registrations.connections().await, json!([]));
}
