//! pymodbus's client as the real master over TCP with each framing (MBAP, RTU, ASCII):
//! every function code and data type, bit offsets and counts across register
//! boundaries, start-up values, writes answered through `system/write` (success,
//! failure, timeout), exceptions. Every registered event is checked against
//! hat-gateway 0.6.48's event schema by the recorder.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::*;
use modbus_slave::SlaveDevice;
use serde_json::{json, Value};

fn registers(result: &Value) -> Value {
    assert_eq!(result["error"], false, "{result}");
    result["registers"].clone()
}

fn exception(result: &Value) -> Value {
    assert_eq!(result["error"], true, "{result}");
    result["exception_code"].clone()
}

/// The latest `system/data` of every point, as the event server would answer.
fn latest() -> Vec<gateway_model::Event> {
    vec![
        data_event("coil", 1),
        data_event("coils", 0b1011),
        data_event("input", 0b110),
        data_event("hr", 0x1234),
        data_event("span", 0xAB_CDEF),
        data_event("low", 5),
        data_event("ir", 0x1234_5678),
        data_event("fifo", 0x4242),
    ]
}

/// Sends a write, answers its `gateway/write` with `success` and returns the
/// `gateway/write` payload and the client's result.
async fn write(
    client: &mut Client,
    device: &Arc<SlaveDevice>,
    registrations: &mut Registrations,
    method: &str,
    kwargs: Value,
    success: bool,
) -> (Value, Value) {
    client.send(method, kwargs).await;
    let write = registrations.write().await;
    device
        .process_event(write_result(&write["request_id"], success))
        .await;
    (write, client.result().await.expect("no response"))
}

/// Reads and writes of every kind, the same over each framing.
async fn exercise(framer: &str, modbus_type: &str) {
    let conf = tcp_conf(modbus_type, all_points());
    let (device, mut registrations, recorder) = start(&conf, latest()).await;
    assert_eq!(
        recorder.queries(),
        vec![vec!["gateway/gw/modbus_slave/dev/system/data/*".to_owned()]]
    );
    let port = device.local_addr().unwrap().port();
    let mut client = Client::tcp(port, framer).await;
    let connections = registrations.connections().await;
    assert_eq!(connections[0]["type"], "TCP");
    assert_eq!(connections[0]["connection_id"], 1);
    assert_eq!(connections[0]["local"]["port"], port);
    let connection_id = connections[0]["connection_id"].clone();

    // Start-up values, every table.
    let bits = |address: u16, count: u16| json!({"address": address, "count": count, "slave": 1});
    let r = client.call("read_coils", bits(0, 1)).await;
    assert_eq!(r["bits"], json!([1]), "{r}");
    // `coils` is 4 bits from coil 12: 0b1011, most significant bit first.
    let r = client.call("read_coils", bits(12, 4)).await;
    assert_eq!(r["bits"], json!([1, 0, 1, 1]), "{r}");
    let r = client.call("read_discrete_inputs", bits(5, 3)).await;
    assert_eq!(r["bits"], json!([1, 1, 0]), "{r}");
    let r = client.call("read_holding_registers", bits(0, 1)).await;
    assert_eq!(registers(&r), json!([0x1234]));
    // `span` fills register 10 from bit 4 and register 11 up to bit 12; `low` the rest.
    let r = client.call("read_holding_registers", bits(10, 2)).await;
    assert_eq!(registers(&r), json!([0x0ABC, 0xDEF5]));
    let r = client.call("read_input_registers", bits(3, 2)).await;
    assert_eq!(registers(&r), json!([0x1234, 0x5678]));
    let r = client
        .call("read_fifo_queue", json!({"address": 7, "slave": 1}))
        .await;
    // pymodbus 3.8 cannot decode FIFO registers (its decoder loops over the FIFO count
    // minus 4), so only the normal answer is checked here; `raw.rs` checks the bytes.
    assert_eq!(r["error"], false, "{r}");

    // A new value is served at once.
    device.process_event(data_event("low", 0xA)).await;
    let r = client.call("read_holding_registers", bits(11, 1)).await;
    assert_eq!(registers(&r), json!([0xDEFA]));

    // Writes: the points they touch, with the written bits in place.
    let (w, r) = write(
        &mut client,
        &device,
        &mut registrations,
        "write_coil",
        json!({"address": 0, "value": false, "slave": 1}),
        true,
    )
    .await;
    assert_eq!(w["data"], json!([{"name": "coil", "value": 0}]));
    assert_eq!(w["connection_id"], connection_id);
    assert_eq!(r["error"], false, "{r}");
    let (w, r) = write(
        &mut client,
        &device,
        &mut registrations,
        "write_coils",
        json!({"address": 13, "values": [false, false], "slave": 1}),
        true,
    )
    .await;
    assert_eq!(w["data"], json!([{"name": "coils", "value": 0b1001}]));
    assert_eq!(r["error"], false, "{r}");
    let (w, r) = write(
        &mut client,
        &device,
        &mut registrations,
        "write_register",
        json!({"address": 0, "value": 7, "slave": 1}),
        true,
    )
    .await;
    assert_eq!(w["data"], json!([{"name": "hr", "value": 7}]));
    assert_eq!(r["error"], false, "{r}");
    let (w, r) = write(
        &mut client,
        &device,
        &mut registrations,
        "write_registers",
        json!({"address": 10, "values": [0xFFFF, 0x0000], "slave": 1}),
        true,
    )
    .await;
    assert_eq!(
        w["data"],
        json!([{"name": "span", "value": 0xFFF000}, {"name": "low", "value": 0}])
    );
    assert_eq!(r["error"], false, "{r}");
    // FC22 on register 11: only `low` (bits 12..15) can change.
    let (w, r) = write(
        &mut client,
        &device,
        &mut registrations,
        "mask_write_register",
        json!({"address": 11, "and_mask": 0xFFF0, "or_mask": 0x0003, "slave": 1}),
        true,
    )
    .await;
    assert_eq!(w["data"], json!([{"name": "low", "value": 3}]));
    assert_eq!(r["error"], false, "{r}");
    // FC23: write `hr`, then read registers 10..11 (unchanged: only system/data changes
    // the table).
    let (w, r) = write(
        &mut client,
        &device,
        &mut registrations,
        "readwrite_registers",
        json!({"read_address": 10, "read_count": 2, "write_address": 0, "values": [9], "slave": 1}),
        true,
    )
    .await;
    assert_eq!(w["data"], json!([{"name": "hr", "value": 9}]));
    assert_eq!(registers(&r), json!([0x0ABC, 0xDEFA]));
    // A failed write is exception 4 (hat's FUNCTION_ERROR).
    let (_, r) = write(
        &mut client,
        &device,
        &mut registrations,
        "write_register",
        json!({"address": 0, "value": 1, "slave": 1}),
        false,
    )
    .await;
    assert_eq!(exception(&r), 4);

    // Exceptions: unconfigured entries, unknown unit ids.
    let r = client.call("read_holding_registers", bits(12, 1)).await;
    assert_eq!(exception(&r), 2);
    let r = client.call("read_coils", bits(1, 1)).await;
    assert_eq!(exception(&r), 2);
    let r = client
        .call(
            "read_holding_registers",
            json!({"address": 0, "count": 1, "slave": 9}),
        )
        .await;
    assert_eq!(exception(&r), 2);
    let r = client
        .call(
            "write_register",
            json!({"address": 30, "value": 1, "slave": 1}),
        )
        .await;
    assert_eq!(exception(&r), 2);

    drop(client);
    assert_eq!(registrations.connections().await, json!([]));
    device.close().await;
}

#[tokio::test]
async fn tcp_framing() {
    exercise("socket", "TCP").await;
}

#[tokio::test]
async fn rtu_framing_over_tcp() {
    exercise("rtu", "RTU").await;
}

#[tokio::test]
async fn ascii_framing_over_tcp() {
    exercise("ascii", "ASCII").await;
}

/// No `system/write` within `response_timeout`: exception 4, and a late answer is
/// ignored; the next write still works.
#[tokio::test]
async fn write_without_an_answer_times_out() {
    let mut conf = tcp_conf("TCP", all_points());
    conf["transport"]["response_timeout"] = json!(0.2);
    let (device, mut registrations, _) = start(&conf, vec![]).await;
    let mut client = Client::tcp(device.local_addr().unwrap().port(), "socket").await;
    let kwargs = json!({"address": 0, "value": 5, "slave": 1});
    client.send("write_register", kwargs.clone()).await;
    let first = registrations.write().await;
    let r = client.result().await.unwrap();
    assert_eq!(exception(&r), 4);
    device
        .process_event(write_result(&first["request_id"], true))
        .await;
    let (w, r) = write(
        &mut client,
        &device,
        &mut registrations,
        "write_register",
        kwargs,
        true,
    )
    .await;
    assert_ne!(w["request_id"], first["request_id"]);
    assert_eq!(r["error"], false, "{r}");
    device.close().await;
}
