//! The device's state machine over an in-memory link: statuses, enable, data,
//! commands, interrogations, clock sync, remote devices that stop answering, a port
//! that fails. Every registered payload is checked against hat-gateway's schema.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use iec103_master::link::Link as _;
use iec103_master::MasterDevice;
use iec60870::iec103::*;
use iec60870::types::{Time, TimeSize};
use serde_json::json;

fn t4() -> Time {
    Time {
        size: TimeSize::Four,
        day_of_week: None,
        day_of_month: None,
        months: None,
        years: None,
        ..iec_common::time::time_now()
    }
}

fn ioa(function_type: u8, information_number: u8) -> IoAddress {
    IoAddress {
        function_type,
        information_number,
    }
}

fn one(asdu_type: AsduType, cause: Cause, address: u8, io: IoAddress, e: IoElement) -> Asdu {
    Asdu {
        asdu_type,
        cause,
        address,
        ios: vec![Io {
            address: io,
            elements: vec![e],
        }],
    }
}

fn message(cause: Cause, value: DoubleValue, supplementary: u8) -> Asdu {
    one(
        AsduType::TimeTaggedMessage,
        cause,
        5,
        ioa(160, 16),
        IoElement::TimeTaggedMessage(DoubleWithTimeValue {
            value,
            time: t4(),
            supplementary,
        }),
    )
}

struct Setup {
    device: MasterDevice,
    events: Registrations,
    line: FakeLine,
}

async fn setup(addresses: &[u16], enabled: &[(u16, bool)], time_sync: Option<f64>) -> Setup {
    let line = FakeLine::new(addresses);
    let (recorder, events) = Recorder::new(enabled);
    let device = MasterDevice::create(
        &config("/dev/fake", addresses, time_sync),
        prefix(),
        recorder,
        line.opener.clone(),
    )
    .await
    .unwrap();
    Setup {
        device,
        events,
        line,
    }
}

#[tokio::test]
async fn statuses_follow_the_link_and_the_enabled_remote_devices() {
    let mut s = setup(&[1, 2], &[(1, true)], None).await;
    let link = s.line.link().await;
    assert_eq!(s.events.next().await.tail, "gateway/status");
    let connected = s.events.next().await;
    assert_eq!(
        (connected.tail.as_str(), connected.payload),
        ("gateway/status", json!("CONNECTED"))
    );
    let peer = link.peer().await;
    assert_eq!(peer.address, 1);
    s.events
        .until_payload("gateway/remote_device/1/status", json!("CONNECTED"))
        .await;
    // Device 2 is disabled: no status until it is enabled.
    assert!(s
        .events
        .drain()
        .iter()
        .all(|e| !e.tail.contains("remote_device/2")));
    s.device.process_event(enable_event(2, true)).await;
    assert_eq!(
        s.events.next().await,
        Registered {
            tail: "gateway/remote_device/2/status".into(),
            payload: json!("CONNECTING"),
            source_timestamp: None
        }
    );
    // Kept: dropping a peer's sender closes its connection.
    let peer2 = link.peer().await;
    assert_eq!(peer2.address, 2);
    s.events
        .until_payload("gateway/remote_device/2/status", json!("CONNECTED"))
        .await;
    // Disabling ends its loop.
    s.device.process_event(enable_event(2, false)).await;
    s.events
        .until_payload("gateway/remote_device/2/status", json!("DISCONNECTED"))
        .await;
    // Closing: every remote device and the device report DISCONNECTED.
    s.device.close().await;
    let rest: Vec<_> = s
        .events
        .drain()
        .into_iter()
        .map(|e| (e.tail, e.payload))
        .collect();
    assert_eq!(
        rest,
        vec![
            (
                "gateway/remote_device/1/status".into(),
                json!("DISCONNECTED")
            ),
            ("gateway/status".into(), json!("DISCONNECTED")),
        ]
    );
}

#[tokio::test]
async fn data_events_have_hat_types_payloads_and_timestamps() {
    let mut s = setup(&[1], &[(1, true)], None).await;
    let link = s.line.link().await;
    let peer = link.peer().await;
    s.events
        .until_payload("gateway/remote_device/1/status", json!("CONNECTED"))
        .await;
    let before = gateway_model::Timestamp::now();
    peer.send(&message(
        Cause::Known(KnownCause::Spontaneous),
        DoubleValue::On,
        0,
    ));
    let e = s.events.next().await;
    assert_eq!(e.tail, "gateway/remote_device/1/data/double/5/160/16");
    assert_eq!(e.payload, json!({"cause": "SPONTANEOUS", "value": "ON"}));
    let ts = e.source_timestamp.unwrap();
    assert!((ts.s - before.s).abs() <= 2, "{ts:?} vs {before:?}");
    // Other causes are numbers.
    peer.send(&message(Cause::Other(99), DoubleValue::Error, 0));
    let e = s.events.next().await;
    assert_eq!(e.payload, json!({"cause": 99, "value": "ERROR"}));
    // Measurands II: one event per measurand.
    peer.send(&Asdu {
        asdu_type: AsduType::Measurands2,
        cause: Cause::Known(KnownCause::Cyclic),
        address: 5,
        ios: vec![Io {
            address: ioa(128, 148),
            elements: (0..3)
                .map(|n| {
                    IoElement::Measurands2(MeasurandValue {
                        overflow: n == 1,
                        invalid: n == 2,
                        value: f64::from(n) * 0.25,
                    })
                })
                .collect(),
        }],
    });
    for (n, name) in ["m2_i_l1", "m2_i_l2", "m2_i_l3"].iter().enumerate() {
        let e = s.events.next().await;
        assert_eq!(
            e.tail,
            format!("gateway/remote_device/1/data/{name}/5/128/148")
        );
        assert_eq!(
            e.payload,
            json!({"cause": "CYCLIC", "value": {"overflow": n == 1, "invalid": n == 2, "value": n as f64 * 0.25}})
        );
        assert_eq!(e.source_timestamp, None);
    }
    // An unknown ASDU type is skipped; the connection goes on.
    peer.to_device.send(vec![99, 0x81, 1, 5, 0, 0]).unwrap();
    peer.send(&message(
        Cause::Known(KnownCause::Cyclic),
        DoubleValue::Off,
        0,
    ));
    assert_eq!(
        s.events.next().await.payload,
        json!({"cause": "CYCLIC", "value": "OFF"})
    );
    // Octets after the last object are ignored, as hat's master ignores them.
    let mut padded = encode(&message(
        Cause::Known(KnownCause::Cyclic),
        DoubleValue::Transient,
        0,
    ))
    .unwrap();
    padded.extend_from_slice(&[0, 0]);
    peer.to_device.send(padded).unwrap();
    assert_eq!(
        s.events.next().await.payload,
        json!({"cause": "CYCLIC", "value": "TRANSIENT"})
    );
    // A malformed one ends the connection; it is opened again.
    peer.to_device.send(vec![1, 0x81, 1]).unwrap();
    s.events
        .until_payload("gateway/remote_device/1/status", json!("DISCONNECTED"))
        .await;
    s.events
        .until_payload("gateway/remote_device/1/status", json!("CONNECTED"))
        .await;
    link.peer().await;
    s.device.close().await;
}

#[tokio::test]
async fn commands_are_answered_with_their_return_identifier() {
    let mut s = setup(&[1], &[(1, true)], None).await;
    let link = s.line.link().await;
    let mut peer = link.peer().await;
    s.events
        .until_payload("gateway/remote_device/1/status", json!("CONNECTED"))
        .await;
    let command = |session: u32, value: &str| {
        system_event(
            "system/remote_device/1/command/5/160/16",
            json!({"session_id": session, "value": value}),
        )
    };
    s.device.process_event(command(7, "ON")).await;
    let asdu = peer.next().await;
    assert_eq!(asdu.asdu_type, AsduType::GeneralCommand);
    assert_eq!(asdu.cause, Cause::Known(KnownCause::GeneralCommand));
    assert_eq!(asdu.address, 5);
    assert_eq!(asdu.ios[0].address, ioa(160, 16));
    let IoElement::GeneralCommand {
        value,
        return_identifier,
    } = asdu.ios[0].elements[0]
    else {
        panic!("{asdu:?}")
    };
    assert_eq!(value, DoubleValue::On);
    // Another return identifier is not the answer; the right one is.
    peer.send(&message(
        Cause::Known(KnownCause::GeneralCommand),
        DoubleValue::On,
        return_identifier.wrapping_add(1),
    ));
    peer.send(&message(
        Cause::Known(KnownCause::GeneralCommand),
        DoubleValue::On,
        return_identifier,
    ));
    let e = s.events.next().await;
    assert_eq!(e.tail, "gateway/remote_device/1/command/5/160/16");
    assert_eq!(e.payload, json!({"success": true, "session_id": 7}));
    // A negative answer.
    s.device.process_event(command(8, "OFF")).await;
    let asdu = peer.next().await;
    let IoElement::GeneralCommand {
        return_identifier: next_id,
        ..
    } = asdu.ios[0].elements[0]
    else {
        panic!("{asdu:?}")
    };
    assert_eq!(next_id, return_identifier.wrapping_add(1));
    peer.send(&message(
        Cause::Known(KnownCause::GeneralCommandNack),
        DoubleValue::Off,
        next_id,
    ));
    let e = s.events.next().await;
    assert_eq!(e.payload, json!({"success": false, "session_id": 8}));
    // A command while the remote device is not connected is ignored.
    s.device.process_event(enable_event(1, false)).await;
    s.events
        .until_payload("gateway/remote_device/1/status", json!("DISCONNECTED"))
        .await;
    s.device.process_event(command(9, "ON")).await;
    s.device.close().await;
    assert!(s.events.drain().iter().all(|e| !e.tail.contains("command")));
}

#[tokio::test]
async fn general_interrogation_ends_at_its_termination() {
    let mut s = setup(&[1], &[(1, true)], None).await;
    let link = s.line.link().await;
    let mut peer = link.peer().await;
    s.events
        .until_payload("gateway/remote_device/1/status", json!("CONNECTED"))
        .await;
    s.device
        .process_event(system_event(
            "system/remote_device/1/interrogation/5",
            json!(null),
        ))
        .await;
    let asdu = peer.next().await;
    assert_eq!(asdu.asdu_type, AsduType::GeneralInterrogation);
    assert_eq!(asdu.address, 5);
    assert_eq!(asdu.ios[0].address, ioa(255, 0));
    let IoElement::GeneralInterrogation(scan) = asdu.ios[0].elements[0] else {
        panic!("{asdu:?}")
    };
    peer.send(&message(
        Cause::Known(KnownCause::GeneralInterrogation),
        DoubleValue::On,
        0,
    ));
    let termination = |scan| {
        one(
            AsduType::GeneralInterrogationTermination,
            Cause::Known(KnownCause::TerminationOfGeneralInterrogation),
            5,
            ioa(255, 0),
            IoElement::GeneralInterrogationTermination(scan),
        )
    };
    peer.send(&termination(scan.wrapping_add(3)));
    peer.send(&termination(scan));
    let e = s.events.next().await;
    assert_eq!(
        e.payload,
        json!({"cause": "GENERAL_INTERROGATION", "value": "ON"})
    );
    let e = s.events.next().await;
    assert_eq!(e.tail, "gateway/remote_device/1/interrogation/5");
    assert_eq!(e.payload, json!(null));
    s.device.close().await;
}

#[tokio::test]
async fn clock_sync_is_sent_every_time_sync_delay() {
    let mut s = setup(&[1], &[(1, true)], Some(0.05)).await;
    let link = s.line.link().await;
    let mut peer = link.peer().await;
    for _ in 0..3 {
        let asdu = peer.next().await;
        assert_eq!(asdu.asdu_type, AsduType::TimeSynchronization);
        assert_eq!(asdu.cause, Cause::Known(KnownCause::TimeSynchronization));
        assert_eq!(asdu.address, BROADCAST_ASDU_ADDRESS);
        let IoElement::TimeSynchronization(t) = asdu.ios[0].elements[0] else {
            panic!("{asdu:?}")
        };
        let ts = iec_common::time::time_to_timestamp(&t).unwrap();
        assert!((ts.s - gateway_model::Timestamp::now().s).abs() <= 2);
    }
    s.device.close().await;
}

#[tokio::test]
async fn a_remote_device_that_stops_answering_is_reconnected_when_it_answers() {
    let mut s = setup(&[1, 2], &[(1, true), (2, true)], None).await;
    let link = s.line.link().await;
    let mut peers = [link.peer().await, link.peer().await];
    peers.sort_by_key(|p| p.address);
    let mut connected = std::collections::BTreeSet::new();
    while connected.len() < 2 {
        let e = s.events.next().await;
        if e.payload == json!("CONNECTED") && e.tail.starts_with("gateway/remote_device/") {
            connected.insert(e.tail);
        }
    }
    // Device 1 stops answering: the link gives up on it.
    s.line.set_answering(1, false);
    peers[0].closed.cancel();
    s.events
        .until_payload("gateway/remote_device/1/status", json!("DISCONNECTED"))
        .await;
    s.events
        .until_payload("gateway/remote_device/1/status", json!("CONNECTING"))
        .await;
    // Device 2 is not affected.
    peers[1].send(&message(
        Cause::Known(KnownCause::Spontaneous),
        DoubleValue::On,
        0,
    ));
    s.events
        .until("gateway/remote_device/2/data/double/5/160/16")
        .await;
    // Device 1 answers again.
    s.line.set_answering(1, true);
    let again = link.peer().await;
    assert_eq!(again.address, 1);
    s.events
        .until_payload("gateway/remote_device/1/status", json!("CONNECTED"))
        .await;
    s.device.close().await;
}

#[tokio::test]
async fn dropping_the_device_closes_the_link() {
    let mut s = setup(&[1], &[(1, true)], None).await;
    let link = s.line.link().await;
    let _peer = link.peer().await;
    s.events
        .until_payload("gateway/remote_device/1/status", json!("CONNECTED"))
        .await;
    drop(s.device);
    tokio::time::timeout(WAIT, link.closed.cancelled())
        .await
        .expect("the link was not closed");
    s.events
        .until_payload("gateway/status", json!("DISCONNECTED"))
        .await;
}

#[tokio::test]
async fn a_failing_port_is_reopened_after_reconnect_delay() {
    let mut s = setup(&[1], &[(1, true)], None).await;
    *s.line.opener.fail.lock().unwrap() = 0;
    let link = s.line.link().await;
    let _peer = link.peer().await;
    s.events
        .until_payload("gateway/remote_device/1/status", json!("CONNECTED"))
        .await;
    // The port fails; the next open fails too.
    *s.line.opener.fail.lock().unwrap() = 1;
    link.close();
    let mut statuses = Vec::new();
    while statuses.len() < 6 {
        let e = s.events.next().await;
        statuses.push((e.tail, e.payload));
    }
    assert_eq!(
        statuses,
        vec![
            (
                "gateway/remote_device/1/status".into(),
                json!("DISCONNECTED")
            ),
            ("gateway/status".into(), json!("DISCONNECTED")),
            ("gateway/status".into(), json!("CONNECTING")),
            ("gateway/status".into(), json!("DISCONNECTED")),
            ("gateway/status".into(), json!("CONNECTING")),
            ("gateway/status".into(), json!("CONNECTED")),
        ]
    );
    let link = s.line.link().await;
    let _peer = link.peer().await;
    s.events
        .until_payload("gateway/remote_device/1/status", json!("CONNECTED"))
        .await;
    s.device.close().await;
}
