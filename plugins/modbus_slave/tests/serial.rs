//! The slave on a serial line made of a socat pseudo-terminal pair, pymodbus's serial
//! client as the master (RTU and ASCII): reads, a write round trip, exceptions, no
//! answer to unknown units, hat's serial connection (from the first request until
//! `keep_alive_timeout` passes without one), and garbage on the line discarded.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn exercise(modbus_type: &str, framer: &str) {
    let pty = PtyPair::start(framer).await;
    let mut conf = serial_conf(modbus_type, &pty.end("a"), all_points());
    // Long enough that a busy machine does not expire it between two requests.
    conf["transport"]["keep_alive_timeout"] = json!(1.5);
    let (device, mut registrations, _) = start(&conf, vec![data_event("span", 0xAB_CDEF)]).await;
    let mut client = Client::serial(&pty.end("b"), framer).await;
    let read = json!({"address": 10, "count": 2, "slave": 1});
    let r = client.call("read_holding_registers", read.clone()).await;
    assert_eq!(r["registers"], json!([0x0ABC, 0xDEF0]), "{r}");
    // The first request makes the master a connection.
    let first = registrations.connections().await;
    assert_eq!(first, json!([{"type": "SERIAL", "connection_id": 1}]));

    client
        .send(
            "write_coils",
            json!({"address": 12, "values": [true, false], "slave": 1}),
        )
        .await;
    let write = registrations.write().await;
    assert_eq!(write["connection_id"], 1);
    assert_eq!(write["data"], json!([{"name": "coils", "value": 0b1000}]));
    device
        .process_event(write_result(&write["request_id"], true))
        .await;
    let r = client.result().await.unwrap();
    assert_eq!(r["error"], false, "{r}");

    let r = client
        .call(
            "read_input_registers",
            json!({"address": 0, "count": 1, "slave": 1}),
        )
        .await;
    assert_eq!(r["exception_code"], 2, "{r}");
    // Unknown units get no answer on a serial line.
    client
        .send(
            "read_holding_registers",
            json!({"address": 10, "count": 1, "slave": 7}),
        )
        .await;
    assert!(client.result().await.is_err());

    // Idle past keep_alive_timeout: the master is gone; its next request is a new one
    // (requests to unknown units do not make a connection nor use up an id).
    assert_eq!(registrations.connections().await, json!([]));
    client
        .send(
            "read_holding_registers",
            json!({"address": 10, "count": 1, "slave": 7}),
        )
        .await;
    assert!(client.result().await.is_err());
    let r = client.call("read_holding_registers", read).await;
    assert_eq!(r["registers"], json!([0x0ABC, 0xDEF0]), "{r}");
    assert_eq!(
        registrations.connections().await,
        json!([{"type": "SERIAL", "connection_id": 2}])
    );
    device.close().await;
    assert_eq!(registrations.connections().await, json!([]));
}

#[tokio::test]
async fn rtu_over_serial_pty() {
    exercise("RTU", "rtu").await;
}

#[tokio::test]
async fn ascii_over_serial_pty() {
    exercise("ASCII", "ascii").await;
}

#[tokio::test]
async fn garbage_on_the_line_is_discarded() {
    let pty = PtyPair::start("garbage").await;
    let conf = serial_conf("RTU", &pty.end("a"), all_points());
    let (device, _registrations, _) = start(&conf, vec![data_event("hr", 0x1234)]).await;
    let builder = tokio_serial::new(pty.end("b").to_str().unwrap(), 19200);
    let mut line = tokio_serial::SerialStream::open(&builder).unwrap();
    // A frame with a bad CRC, then bytes that frame nothing.
    line.write_all(&[1, 3, 0, 0, 0, 1, 0xDE, 0xAD])
        .await
        .unwrap();
    line.write_all(&[1, 0x2B, 0xFF, 0xFF]).await.unwrap();
    // A valid request is answered once the garbage is gone (the first copies may be
    // discarded with it).
    let mut request = vec![1u8, 3, 0, 0, 0, 1];
    let crc = modbus::crc16(&request);
    request.extend_from_slice(&crc.to_le_bytes());
    let mut response = vec![1u8, 3, 2, 0x12, 0x34];
    let crc = modbus::crc16(&response);
    response.extend_from_slice(&crc.to_le_bytes());
    let answered = tokio::time::timeout(WAIT, async {
        loop {
            line.write_all(&request).await.unwrap();
            let mut buf = [0u8; 7];
            let attempt = tokio::time::timeout(
                std::time::Duration::from_millis(500),
                line.read_exact(&mut buf),
            )
            .await;
            if let Ok(Ok(_)) = attempt {
                return buf.to_vec();
            }
        }
    })
    .await
    .expect("the valid request was never answered");
    assert_eq!(answered, response);
    device.close().await;
}
