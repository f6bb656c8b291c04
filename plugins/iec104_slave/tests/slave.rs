//! The slave device against real hat-drivers IEC 104 masters: start-up values,
//! interrogations, spontaneous data of every type to two masters, buffered data across
//! reconnects, allow-list and connection limit, `gateway/connections`, commands both
//! ways, malformed input. Every registered event is checked against hat's schemas.
#![allow(clippy::unwrap_used)]

mod common;

use common::{conf, data_event, point, raw_event, single, start, system_event, Master};
use gateway_model::{Payload, Timestamp};
use serde_json::{json, Value};

fn data_msgs(msgs: &[Value]) -> Vec<&Value> {
    msgs.iter().filter(|m| m["_type"] == "DataMsg").collect()
}

#[tokio::test]
async fn interrogation_at_start_answers_the_latest_system_data_values() {
    let conf = conf(
        json!([
            point("SINGLE", 1, 10, None),
            point("SCALED", 1, 11, None),
            point("SINGLE", 1, 12, None),
            point("BINARY_COUNTER", 1, 13, None),
        ]),
        json!([]),
    );
    let latest = vec![
        data_event("single", 1, 10, single("ON"), None),
        data_event(
            "scaled",
            1,
            11,
            json!({"value": -7, "quality": common::measurement()}),
            None,
        ),
        // Not configured: skipped.
        data_event("single", 1, 99, single("ON"), None),
    ];
    let (device, _events, recorder) = start(&conf, latest).await;
    assert_eq!(
        recorder.queries(),
        vec![vec!["gateway/gw/iec104_slave/dev/system/data/*".to_owned()]]
    );
    let mut master = Master::connected(device.local_addr().port()).await;
    let msgs = master.interrogate("gi", 0xFFFF).await;
    assert_eq!(msgs[0]["_type"], "InterrogationMsg");
    assert_eq!(msgs[0]["cause"], "ACTIVATION_CONFIRMATION");
    assert_eq!(msgs[0]["is_negative_confirm"], false);
    let data = data_msgs(&msgs);
    assert_eq!(data.len(), 2, "{msgs:?}");
    assert_eq!(data[0]["io_address"], 10);
    assert_eq!(data[0]["data"]["value"], "ON");
    assert_eq!(data[0]["cause"], "INTERROGATED_STATION");
    assert_eq!(data[1]["io_address"], 11);
    assert_eq!(data[1]["data"]["value"]["value"], -7);
    assert_eq!(msgs.last().unwrap()["cause"], "ACTIVATION_TERMINATION");

    // An address without points: positive confirmation and termination, no data.
    let msgs = master.interrogate("gi", 5).await;
    let causes: Vec<&Value> = msgs.iter().map(|m| &m["cause"]).collect();
    assert_eq!(
        causes,
        [
            &json!("ACTIVATION_CONFIRMATION"),
            &json!("ACTIVATION_TERMINATION")
        ]
    );
    assert!(msgs.iter().all(|m| m["asdu_address"] == 5));
    device.close().await;
}

#[tokio::test]
async fn counter_interrogation_answers_the_counters() {
    let conf = conf(
        json!([
            point("BINARY_COUNTER", 2, 1, None),
            point("SINGLE", 2, 2, None)
        ]),
        json!([]),
    );
    let counter = json!({"value": 123456, "quality":
        {"invalid": false, "adjusted": false, "overflow": false, "sequence": true}});
    let latest = vec![
        data_event("binary_counter", 2, 1, counter, None),
        data_event("single", 2, 2, single("OFF"), None),
    ];
    let (device, _events, _) = start(&conf, latest).await;
    let mut master = Master::connected(device.local_addr().port()).await;
    let msgs = master.interrogate("ci", 2).await;
    assert_eq!(msgs[0]["_type"], "CounterInterrogationMsg");
    assert_eq!(msgs[0]["cause"], "ACTIVATION_CONFIRMATION");
    let data = data_msgs(&msgs);
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["cause"], "INTERROGATED_COUNTER");
    assert_eq!(data[0]["data"]["value"]["value"], 123456);
    assert_eq!(data[0]["data"]["quality"]["sequence"], 1);
    assert_eq!(msgs.last().unwrap()["cause"], "ACTIVATION_TERMINATION");
    device.close().await;
}

/// (data type, hat's payload `data`, expected value as hat's master prints it).
fn every_type() -> Vec<(&'static str, Value, Value)> {
    let m = common::measurement();
    let p = json!({"invalid": false, "not_topical": false, "substituted": false,
                   "blocked": false, "time_invalid": false});
    vec![
        ("single", single("ON"), json!("ON")),
        (
            "double",
            json!({"value": "FAULT", "quality": common::indication()}),
            json!("FAULT"),
        ),
        (
            "step_position",
            json!({"value": {"value": -5, "transient": true}, "quality": m}),
            json!({"_type": "StepPositionValue", "value": -5, "transient": true}),
        ),
        (
            "bitstring",
            json!({"value": [1, 2, 3, 4], "quality": m}),
            json!({"_type": "BitstringValue", "value": [1, 2, 3, 4]}),
        ),
        (
            "normalized",
            json!({"value": 0.5, "quality": m}),
            json!({"_type": "NormalizedValue", "value": 0.5}),
        ),
        (
            "scaled",
            json!({"value": -300, "quality": m}),
            json!({"_type": "ScaledValue", "value": -300}),
        ),
        (
            "floating",
            json!({"value": 2.5, "quality": m}),
            json!({"_type": "FloatingValue", "value": 2.5}),
        ),
        (
            "binary_counter",
            json!({"value": 77, "quality": {"invalid": false, "adjusted": true,
                                            "overflow": false, "sequence": true}}),
            json!({"_type": "BinaryCounterValue", "value": 77}),
        ),
        (
            "protection",
            json!({"value": "ON", "quality": p, "elapsed_time": 250}),
            json!("ON"),
        ),
        (
            "protection_start",
            json!({"value": {"general": true, "l1": false, "l2": true, "l3": false,
                             "ie": false, "reverse": true},
                   "quality": p, "duration_time": 10}),
            json!({"_type": "ProtectionStartValue", "general": true, "l1": false,
                   "l2": true, "l3": false, "ie": false, "reverse": true}),
        ),
        (
            "protection_command",
            json!({"value": {"general": false, "l1": true, "l2": false, "l3": true},
                   "quality": p, "operating_time": 20}),
            json!({"_type": "ProtectionCommandValue", "general": false, "l1": true,
                   "l2": false, "l3": true}),
        ),
        (
            "status",
            json!({"value": {"value": [true, false, true, false, true, false, true, false,
                                       true, false, true, false, true, false, true, false],
                             "change": vec![false; 16]},
                   "quality": m}),
            json!({"_type": "StatusValue",
                   "value": [true, false, true, false, true, false, true, false,
                             true, false, true, false, true, false, true, false],
                   "change": vec![false; 16]}),
        ),
    ]
}

#[tokio::test]
async fn spontaneous_data_of_every_type_with_time_reaches_two_masters() {
    let types = every_type();
    let points: Vec<Value> = types
        .iter()
        .enumerate()
        .map(|(i, (t, _, _))| point(&t.to_uppercase(), 1, 100 + i as u32, None))
        .collect();
    let (device, _events, _) = start(&conf(json!(points), json!([])), vec![]).await;
    let port = device.local_addr().port();
    let mut a = Master::connected(port).await;
    let mut b = Master::connected(port).await;
    // Both masters are enabled once they answered an interrogation.
    a.interrogate("gi", 1).await;
    b.interrogate("gi", 1).await;
    let at = Timestamp::new(1_700_000_000, 250_000);
    for (i, (data_type, data, _)) in types.iter().enumerate() {
        // Status carries no time tag in IEC 104 (M_PS_NA_1 only).
        let ts = (*data_type != "status").then_some(at);
        device
            .process_event(data_event(data_type, 1, 100 + i as u32, data.clone(), ts))
            .await;
    }
    for master in [&mut a, &mut b] {
        for (i, (data_type, _, expected)) in types.iter().enumerate() {
            let msg = master.msg().await;
            assert_eq!(msg["_type"], "DataMsg", "{data_type}: {msg}");
            assert_eq!(msg["io_address"], 100 + i, "{data_type}: {msg}");
            assert_eq!(msg["cause"], "SPONTANEOUS");
            if *data_type == "normalized" {
                // 0.5 travels as 16384 / 32767.
                let value = msg["data"]["value"]["value"].as_f64().unwrap();
                assert!((value - 0.5).abs() < 1.0 / 32767.0, "{msg}");
            } else {
                assert_eq!(msg["data"]["value"], *expected, "{data_type}: {msg}");
            }
            if *data_type == "status" {
                assert_eq!(msg["time"], Value::Null);
            } else {
                assert_eq!(msg["time"]["milliseconds"], 20_250, "{data_type}: {msg}");
            }
        }
    }
    device.close().await;
}

#[tokio::test]
async fn buffered_data_waits_for_an_acknowledging_master() {
    let conf = conf(
        json!([
            point("SINGLE", 1, 1, Some("b")),
            point("SINGLE", 1, 2, None)
        ]),
        json!([{"name": "b", "size": 10}]),
    );
    let (device, mut events, _) = start(&conf, vec![]).await;
    let port = device.local_addr().port();

    // A master that withholds acknowledgements (window 100, t2 60 s) gets the value,
    // then goes away without acknowledging it.
    let mut first = Master::start().await;
    assert!(first.connect_with(port, 100, 60.0).await);
    events.connections_count(1).await;
    first.interrogate("gi", 1).await;
    device
        .process_event(data_event("single", 1, 1, single("ON"), None))
        .await;
    device
        .process_event(data_event("single", 1, 2, single("ON"), None))
        .await;
    assert_eq!(first.msg().await["io_address"], 1);
    assert_eq!(first.msg().await["io_address"], 2);
    first.command("close").await;
    events.connections_count(0).await;

    // The next master gets the buffered value (not the unbuffered one) as soon as it
    // starts data transfer, and acknowledges it.
    let mut second = Master::connected(port).await;
    let msg = second.msg().await;
    assert_eq!(
        (msg["io_address"].clone(), msg["cause"].clone()),
        (json!(1), json!("SPONTANEOUS"))
    );
    let gi = second.interrogate("gi", 1).await;
    assert!(data_msgs(&gi)
        .iter()
        .all(|m| m["cause"] == "INTERROGATED_STATION"));
    second.command("close").await;
    events.connections_count(0).await;

    // Acknowledged: a third master gets nothing before its interrogation answer.
    let mut third = Master::connected(port).await;
    let msgs = third.interrogate("gi", 1).await;
    assert_eq!(msgs[0]["cause"], "ACTIVATION_CONFIRMATION", "{msgs:?}");
    assert!(msgs.iter().all(|m| m["cause"] != "SPONTANEOUS"), "{msgs:?}");
    device.close().await;
}

#[tokio::test]
async fn connections_are_reported_with_hats_payload() {
    let (device, mut events, _) = start(&conf(json!([]), json!([])), vec![]).await;
    let port = device.local_addr().port();
    let mut a = Master::connected(port).await;
    let payload = events.connections_count(1).await;
    assert_eq!(
        payload,
        json!([{"connection_id": 1,
                "local": {"host": "127.0.0.1", "port": port},
                "remote": {"host": "127.0.0.1", "port": a.local_port}}])
    );
    let b = Master::connected(port).await;
    let payload = events.connections_count(2).await;
    assert_eq!(payload[1]["connection_id"], 2);
    assert_eq!(payload[1]["remote"]["port"], b.local_port);
    a.command("close").await;
    let payload = events.connections_count(1).await;
    assert_eq!(payload[0]["connection_id"], 2);
    device.close().await;
    assert_eq!(events.connections().await, json!([]));
}

#[tokio::test]
async fn allow_list_and_max_connections_close_at_once() {
    let mut entry = conf(json!([]), json!([]));
    entry["remote_hosts"] = json!(["127.0.0.2"]);
    let (device, mut events, _) = start(&entry, vec![]).await;
    let mut master = Master::start().await;
    assert!(!master.connect(device.local_addr().port()).await);
    device.close().await;
    // The refused connection was never registered (and with no connection, closing
    // registers nothing).
    assert!(events.0.try_recv().is_err());

    entry["remote_hosts"] = json!(["127.0.0.1"]);
    entry["max_connections"] = json!(1);
    let (device, mut events, _) = start(&entry, vec![]).await;
    let port = device.local_addr().port();
    let mut first = Master::connected(port).await;
    events.connections_count(1).await;
    let mut second = Master::start().await;
    assert!(!second.connect(port).await);
    // The first connection still works, and a place frees up when it closes.
    first.interrogate("gi", 1).await;
    first.command("close").await;
    events.connections_count(0).await;
    assert!(second.connect(port).await);
    events.connections_count(1).await;
    device.close().await;
}

#[tokio::test]
async fn a_large_station_answers_in_full_through_a_short_queue() {
    // 300 ASDU addresses with a buffered and an unbuffered point each, and a queue of
    // 4 entries per connection: answers and buffered values must not count per message.
    let points: Vec<Value> = (1..=300)
        .flat_map(|a| {
            [
                point("SINGLE", a, 1, Some("b")),
                point("SINGLE", a, 2, None),
            ]
        })
        .collect();
    let mut entry = conf(json!(points), json!([{"name": "b", "size": 1000}]));
    entry["send_queue_size"] = json!(4);
    let latest = (1..=300)
        .map(|a| data_event("single", a, 2, single("OFF"), None))
        .collect();
    let (device, _events, _) = start(&entry, latest).await;
    // Buffered while no master is connected.
    for a in 1..=60 {
        device
            .process_event(data_event("single", a, 1, single("ON"), None))
            .await;
    }
    let mut master = Master::connected(device.local_addr().port()).await;
    for a in 1..=60 {
        let msg = master.msg().await;
        assert_eq!(
            (msg["asdu_address"].clone(), msg["cause"].clone()),
            (json!(a), json!("SPONTANEOUS"))
        );
    }
    master.command("gi 65535").await;
    let (mut confirmations, mut terminations, mut values) = (0, 0, 0);
    while terminations < 300 {
        let msg = master.msg().await;
        match msg["cause"].as_str().unwrap() {
            "ACTIVATION_CONFIRMATION" => confirmations += 1,
            "ACTIVATION_TERMINATION" => terminations += 1,
            "INTERROGATED_STATION" => values += 1,
            other => panic!("{other}: {msg}"),
        }
    }
    assert_eq!((confirmations, values), (300, 360));
    device.close().await;
}

#[tokio::test]
async fn a_dual_stack_listener_admits_an_allowed_ipv4_master() {
    let mut entry = conf(json!([]), json!([]));
    entry["local_host"] = json!("::");
    entry["remote_hosts"] = json!(["127.0.0.1"]);
    let (device, mut events, _) = start(&entry, vec![]).await;
    let _master = Master::connected(device.local_addr().port()).await;
    let payload = events.connections_count(1).await;
    // hat's payload shows the addresses as the socket has them.
    assert_eq!(payload[0]["remote"]["host"], "::ffff:127.0.0.1");
    device.close().await;
}

#[tokio::test]
async fn commands_both_ways() {
    let (device, mut events, _) = start(&conf(json!([]), json!([])), vec![]).await;
    let mut master = Master::connected(device.local_addr().port()).await;
    events.connections_count(1).await;
    master
        .command(
            r#"command {"type": "single", "value": "ON", "select": true, "qualifier": 2,
               "asdu_address": 3, "io_address": 44, "time": 1700000000.5}"#
                .replace('\n', " ")
                .as_str(),
        )
        .await;
    let event = events.next().await;
    assert_eq!(event.tail, "gateway/command/single/3/44");
    assert_eq!(
        event.payload,
        json!({"connection_id": 1, "is_test": false, "cause": "ACTIVATION",
               "command": {"value": "ON", "select": true, "qualifier": 2}})
    );
    assert_eq!(
        event.source_timestamp,
        Some(Timestamp::new(1_700_000_000, 500_000))
    );

    // The response goes back to that connection with the given cause and flag.
    for (cause, negative) in [
        ("ACTIVATION_CONFIRMATION", true),
        ("ACTIVATION_TERMINATION", false),
    ] {
        let response = system_event(
            "system/command/single/3/44",
            json!({"connection_id": 1, "is_test": false, "cause": cause,
                   "command": {"value": "ON", "select": true, "qualifier": 2},
                   "is_negative_confirm": negative}),
            None,
        );
        device.process_event(response).await;
        let msg = master.msg().await;
        assert_eq!(msg["_type"], "CommandMsg");
        assert_eq!(msg["cause"], cause);
        assert_eq!(msg["is_negative_confirm"], negative);
        assert_eq!(msg["io_address"], 44);
        assert_eq!(msg["command"]["value"], "ON");
        assert_eq!(msg["command"]["select"], true);
    }

    // A command of another type, and one with a response cause from the master (hat
    // refuses that with UNKNOWN_CAUSE).
    master
        .command(
            r#"command {"type": "floating", "value": 1.5, "asdu_address": 3, "io_address": 45}"#,
        )
        .await;
    let event = events.next().await;
    assert_eq!(event.tail, "gateway/command/floating/3/45");
    assert_eq!(
        event.payload["command"],
        json!({"value": 1.5, "select": false})
    );
    assert_eq!(event.source_timestamp, None);
    master
        .command(r#"command {"type": "single", "value": "OFF", "asdu_address": 3, "io_address": 46, "cause": 7}"#)
        .await;
    let msg = master.msg().await;
    assert_eq!(msg["cause"], "UNKNOWN_CAUSE");
    assert_eq!(msg["is_negative_confirm"], true);
    device.close().await;
}

#[tokio::test]
async fn malformed_input_ends_only_that_connection_and_bad_events_are_ignored() {
    let conf = conf(json!([point("SINGLE", 1, 1, None)]), json!([]));
    let (device, mut events, _) = start(&conf, vec![]).await;
    let port = device.local_addr().port();
    let mut good = Master::connected(port).await;
    let mut bad = Master::connected(port).await;
    let mut garbage = Master::connected(port).await;
    events.connections_count(3).await;
    good.interrogate("gi", 1).await;

    // M_SP_NA_1 saying one object but carrying none: a malformed ASDU.
    bad.command("asdu 01010300010001").await;
    bad.closed().await;
    // Bytes that are not an APDU at all.
    garbage.command("raw ffffffff").await;
    garbage.closed().await;
    let payload = events.connections_count(1).await;
    assert_eq!(payload[0]["connection_id"], 1);

    // Bad system events: logged and ignored; the device keeps serving.
    for event in [
        raw_event(
            "system/data/single/1/1",
            Some(Payload::json(json!({"is_test": false}))),
        ),
        raw_event("system/data/single/1/1", None),
        raw_event("system/data/nonsense/1/1", Some(Payload::json(json!({})))),
        raw_event("system/something", Some(Payload::json(json!({})))),
        raw_event(
            "system/command/single/1/1",
            Some(Payload::json(json!({"connection_id": 99, "is_test": false,
                "cause": "ACTIVATION_CONFIRMATION", "is_negative_confirm": false,
                "command": {"value": "ON", "select": false, "qualifier": 0}}))),
        ),
        // Not configured.
        data_event("single", 1, 2, single("ON"), None),
    ] {
        device.process_event(event).await;
    }
    device
        .process_event(data_event("single", 1, 1, single("OFF"), None))
        .await;
    let msg = good.msg().await;
    assert_eq!(
        (msg["io_address"].clone(), msg["data"]["value"].clone()),
        (json!(1), json!("OFF"))
    );
    device.close().await;
}

/// Reads one APDU (start byte, length, body) from a raw socket.
async fn read_apdu(socket: &mut tokio::net::TcpStream) -> Vec<u8> {
    use tokio::io::AsyncReadExt as _;
    let mut head = [0u8; 2];
    tokio::time::timeout(common::WAIT, socket.read_exact(&mut head))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head[0], 0x68);
    let mut body = vec![0u8; usize::from(head[1])];
    socket.read_exact(&mut body).await.unwrap();
    body
}

/// The next APDU that is not an S-frame (the slave acknowledges our I-frames after t2).
async fn read_non_s(socket: &mut tokio::net::TcpStream) -> Vec<u8> {
    loop {
        let apdu = read_apdu(socket).await;
        if apdu[0] & 3 != 1 {
            return apdu;
        }
    }
}

#[tokio::test]
async fn a_master_that_stops_acknowledging_is_closed_when_its_queue_fills() {
    use tokio::io::AsyncWriteExt as _;
    // One point per ASDU address, so no two values share an ASDU.
    let points: Vec<Value> = (1..=3000).map(|a| point("SINGLE", a, 1, None)).collect();
    let mut entry = conf(json!(points), json!([]));
    entry["send_queue_size"] = json!(8);
    let (device, mut events, _) = start(&entry, vec![]).await;

    // A raw master: STARTDT act, one interrogation, then it never reads or
    // acknowledges again.
    let mut socket = tokio::net::TcpStream::connect(device.local_addr())
        .await
        .unwrap();
    socket.write_all(&[0x68, 4, 0x07, 0, 0, 0]).await.unwrap();
    assert_eq!(read_apdu(&mut socket).await, [0x0B, 0, 0, 0], "STARTDT con");
    // C_IC_NA_1 of ASDU 1, N(S) 0, N(R) 0.
    let gi = [0x68, 14, 0, 0, 0, 0, 100, 1, 6, 0, 1, 0, 0, 0, 0, 20];
    socket.write_all(&gi).await.unwrap();
    loop {
        let apdu = read_apdu(&mut socket).await;
        // I-frame with type id 100 and cause 10 (activation termination).
        if apdu[0] & 1 == 0 && apdu[4] == 100 && apdu[6] & 0x3F == 10 {
            break;
        }
    }
    events.connections_count(1).await;
    for asdu in 1..=3000 {
        device
            .process_event(data_event("single", asdu, 1, single("ON"), None))
            .await;
    }
    // k = 12 I-frames out, the connection's and the device's queues full: closed.
    events.connections_count(0).await;

    // The device serves the next master as before.
    let mut master = Master::connected(device.local_addr().port()).await;
    let msgs = master.interrogate("gi", 7).await;
    assert_eq!(data_msgs(&msgs).len(), 1);
    device.close().await;
}

#[tokio::test]
async fn buffered_values_go_again_to_a_master_that_restarts_data_transfer() {
    use tokio::io::AsyncWriteExt as _;
    let conf = conf(
        json!([point("SINGLE", 1, 1, Some("b"))]),
        json!([{"name": "b", "size": 10}]),
    );
    let (device, mut events, _) = start(&conf, vec![]).await;
    // A raw master that never acknowledges: STARTDT, one interrogation as a barrier.
    let mut socket = tokio::net::TcpStream::connect(device.local_addr())
        .await
        .unwrap();
    socket.write_all(&[0x68, 4, 0x07, 0, 0, 0]).await.unwrap();
    assert_eq!(read_apdu(&mut socket).await, [0x0B, 0, 0, 0], "STARTDT con");
    socket
        .write_all(&[0x68, 14, 0, 0, 0, 0, 100, 1, 6, 0, 1, 0, 0, 0, 0, 20])
        .await
        .unwrap();
    loop {
        let apdu = read_apdu(&mut socket).await;
        if apdu[0] & 1 == 0 && apdu[4] == 100 && apdu[6] & 0x3F == 10 {
            break;
        }
    }
    events.connections_count(1).await;
    device
        .process_event(data_event("single", 1, 1, single("ON"), None))
        .await;
    let first = read_non_s(&mut socket).await;
    // M_SP_NA_1, cause spontaneous, IO 1, ON: after the 4-octet control field.
    assert_eq!(first[4..], [1, 1, 3, 0, 1, 0, 1, 0, 0, 1]);

    // STOPDT, then STARTDT again: the unacknowledged buffered value comes again.
    socket.write_all(&[0x68, 4, 0x13, 0, 0, 0]).await.unwrap();
    assert_eq!(read_non_s(&mut socket).await, [0x23, 0, 0, 0], "STOPDT con");
    socket.write_all(&[0x68, 4, 0x07, 0, 0, 0]).await.unwrap();
    assert_eq!(
        read_non_s(&mut socket).await,
        [0x0B, 0, 0, 0],
        "STARTDT con"
    );
    let again = read_non_s(&mut socket).await;
    assert_eq!(again[4..], first[4..]);
    device.close().await;
}
