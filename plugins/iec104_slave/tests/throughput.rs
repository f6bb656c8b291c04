//! Spontaneous data in bulk: 20,000 data events for 1,000 points reach a master
//! complete and in order, packed many points per ASDU. Prints the rate, the points per
//! ASDU and the CPU time of the test process (`--nocapture`). The master is this
//! workspace's own `iec104` client: the Python master would measure itself, not the
//! slave.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Instant;

use common::{conf, data_event, point, start, WAIT};
use iec60870::asdu::{AsduCodec, Profile};
use iec60870::types::{
    AsduAddress, CommandCause, Data, DataCause, FloatingValue, InterrogationMsg, Msg,
};
use serde_json::json;

const POINTS: u32 = 1_000;
const EVENTS: u32 = 20_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_events_arrive_complete_in_order_and_packed() {
    let points: Vec<_> = (0..POINTS)
        .map(|io| point("FLOATING", 1, io, None))
        .collect();
    let (device, _events, _) = start(&conf(json!(points), json!([])), vec![]).await;
    let codec = AsduCodec::new(Profile::iec104());
    // The master acknowledges every 5 ms (t2), not every 8 frames (w): the slave's
    // k window of 12 fills while events keep coming, as on a real WAN link, and the
    // queued points are packed together.
    let master_config = iec104::ConnectionConfig {
        receive_window_size: 10_000,
        supervisory_timeout: std::time::Duration::from_millis(5),
        ..iec104::ConnectionConfig::default()
    };
    let mut master = iec104::connect(device.local_addr(), &master_config)
        .await
        .unwrap();

    // Data transfer is on at the slave once it answered an interrogation.
    let gi = Msg::Interrogation(InterrogationMsg {
        is_test: false,
        originator_address: 0,
        asdu_address: 1 as AsduAddress,
        request: 20,
        is_negative_confirm: false,
        cause: CommandCause::Activation,
    });
    master
        .sender()
        .send(codec.encode_one(&gi).unwrap(), false)
        .await
        .unwrap();
    loop {
        let asdu = tokio::time::timeout(WAIT, master.receive())
            .await
            .unwrap()
            .unwrap();
        let msgs = codec.decode(&asdu).unwrap();
        if matches!(msgs[..], [Msg::Interrogation(m)] if m.cause == CommandCause::ActivationTermination)
        {
            break;
        }
    }

    let measurement = common::measurement();
    let events: Vec<_> = (0..EVENTS)
        .map(|i| {
            data_event(
                "floating",
                1,
                i % POINTS,
                json!({"value": f64::from(i), "quality": measurement}),
                None,
            )
        })
        .collect();
    let pid = std::process::id();
    let cpu_before = gateway_test_support::procstat::tree_cpu_seconds(pid);
    let started = Instant::now();
    let feeder = {
        let device = std::sync::Arc::new(device);
        let feeding = device.clone();
        (
            tokio::spawn(async move {
                for event in events {
                    feeding.process_event(event).await;
                }
            }),
            device,
        )
    };
    let mut received = 0u32;
    let mut asdus = 0u32;
    while received < EVENTS {
        let asdu = tokio::time::timeout(WAIT, master.receive())
            .await
            .unwrap()
            .unwrap();
        asdus += 1;
        for msg in codec.decode(&asdu).unwrap() {
            let Msg::Data(data) = msg else {
                panic!("unexpected {msg:?}")
            };
            assert_eq!(data.cause, DataCause::Spontaneous);
            assert_eq!(data.io_address, received % POINTS);
            let Data::Floating(value) = data.data else {
                panic!("unexpected {data:?}")
            };
            assert_eq!(value.value, FloatingValue(received as f32));
            received += 1;
        }
    }
    let elapsed = started.elapsed();
    let cpu = gateway_test_support::procstat::tree_cpu_seconds(pid) - cpu_before;
    feeder.0.await.unwrap();
    println!(
        "{EVENTS} data events: {:.0} points/s, {:.1} points per ASDU ({asdus} ASDUs), \
         {:.2} CPU s per 100,000 points (slave and master in this process)",
        f64::from(EVENTS) / elapsed.as_secs_f64(),
        f64::from(EVENTS) / f64::from(asdus),
        cpu * 100_000.0 / f64::from(EVENTS),
    );
    // Packing happened: each send takes many queued points.
    assert!(asdus * 4 < EVENTS, "{asdus} ASDUs for {EVENTS} points");
    feeder.1.close().await;
}
