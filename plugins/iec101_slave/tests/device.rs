//! The device's state machine on an in-memory link (no serial line): start-up query and
//! connections, data to every connection with its point's `with_ack`, buffers kept
//! until sent and replayed to a new connection, interrogation answers, commands both
//! ways with connection ids, a closed connection opened again, a port that cannot be
//! opened. Every registered event is checked against hat's schema by the recorder.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures::future::BoxFuture;
use iec101_slave::config::SlaveConfig;
use iec101_slave::line::{Conn, DeviceLink, Link, LinkError, LinkOpener};
use iec101_slave::SlaveDevice;
use iec60870::asdu::{AsduAddressSize, AsduCodec, CauseSize, FieldSizes, IoAddressSize, Profile};
use iec60870::types::{CommandCause, DataCause, InterrogationMsg, Msg};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn codec() -> AsduCodec {
    AsduCodec::new(Profile::iec101(FieldSizes {
        cause: CauseSize::Two,
        asdu_address: AsduAddressSize::Two,
        io_address: IoAddressSize::Three,
    }))
}

/// The master's end of one fake connection.
struct MasterEnd {
    address: u16,
    /// ASDUs to the slave.
    tx: mpsc::UnboundedSender<Bytes>,
    /// ASDUs from the slave, with their `with_ack`.
    rx: mpsc::UnboundedReceiver<(Bytes, bool)>,
    closed: CancellationToken,
}

impl MasterEnd {
    async fn recv(&mut self) -> (Vec<Msg>, bool) {
        let (asdu, with_ack) = tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("nothing sent")
            .unwrap();
        (codec().decode(&asdu).unwrap(), with_ack)
    }

    fn send(&self, msg: Msg) {
        self.tx.send(codec().encode_one(&msg).unwrap()).unwrap();
    }
}

struct FakeConn {
    rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Bytes>>,
    tx: mpsc::UnboundedSender<(Bytes, bool)>,
    closed: CancellationToken,
}

impl Conn for FakeConn {
    fn send(&self, asdu: Bytes, with_ack: bool) -> BoxFuture<'_, Result<(), LinkError>> {
        Box::pin(async move {
            if self.closed.is_cancelled() {
                return Err(LinkError("closed".into()));
            }
            self.tx
                .send((asdu, with_ack))
                .map_err(|_| LinkError("closed".into()))
        })
    }

    fn receive(&self) -> BoxFuture<'_, Option<Bytes>> {
        Box::pin(async move {
            let mut rx = self.rx.lock().await;
            tokio::select! {
                () = self.closed.cancelled() => None,
                asdu = rx.recv() => asdu,
            }
        })
    }

    fn close(&self) {
        self.closed.cancel();
    }
}

struct Line {
    fail: bool,
    /// Connections waiting for a master, by address: the test opens them.
    masters: mpsc::UnboundedSender<MasterEnd>,
    /// Gate per open: the connection opens when the test sends on it.
    gates: Mutex<Vec<(u16, tokio::sync::oneshot::Sender<()>)>>,
}

struct FakeOpener(Arc<Line>);

struct FakeLink {
    line: Arc<Line>,
    closed: CancellationToken,
}

impl LinkOpener for FakeOpener {
    fn open(&self, _: &SlaveConfig) -> BoxFuture<'static, Result<Arc<dyn Link>, LinkError>> {
        let line = self.0.clone();
        Box::pin(async move {
            if line.fail {
                return Err(LinkError("no such port".into()));
            }
            Ok(Arc::new(FakeLink {
                line,
                closed: CancellationToken::new(),
            }) as Arc<dyn Link>)
        })
    }
}

impl Link for FakeLink {
    fn open_connection(
        &self,
        _: &SlaveConfig,
        device: &DeviceLink,
    ) -> BoxFuture<'static, Result<Arc<dyn Conn>, LinkError>> {
        let line = self.line.clone();
        let closed = self.closed.child_token();
        let address = device.address();
        Box::pin(async move {
            let (gate, opened) = tokio::sync::oneshot::channel();
            line.gates.lock().unwrap().push((address, gate));
            // The master resets the link when the test says so.
            if opened.await.is_err() {
                std::future::pending::<()>().await;
            }
            let (to_slave, from_master) = mpsc::unbounded_channel();
            let (to_master, from_slave) = mpsc::unbounded_channel();
            let _ = line.masters.send(MasterEnd {
                address,
                tx: to_slave,
                rx: from_slave,
                closed: closed.clone(),
            });
            Ok(Arc::new(FakeConn {
                rx: tokio::sync::Mutex::new(from_master),
                tx: to_master,
                closed,
            }) as Arc<dyn Conn>)
        })
    }

    fn closed(&self) -> BoxFuture<'static, ()> {
        let closed = self.closed.clone();
        Box::pin(async move { closed.cancelled().await })
    }

    fn close(&self) {
        self.closed.cancel();
    }
}

struct Rig {
    line: Arc<Line>,
    masters: mpsc::UnboundedReceiver<MasterEnd>,
    device: SlaveDevice,
    events: Events,
}

impl Rig {
    async fn start(conf: Value, initial: Vec<gateway_model::Event>) -> Rig {
        let (masters_tx, masters) = mpsc::unbounded_channel();
        let line = Arc::new(Line {
            fail: false,
            masters: masters_tx,
            gates: Mutex::new(Vec::new()),
        });
        let (recorder, mut events) = Recorder::new(initial);
        let device = SlaveDevice::create_with(
            &conf,
            prefix(),
            recorder,
            Arc::new(FakeOpener(line.clone())),
        )
        .await
        .unwrap();
        events.expect("gateway/connections", json!([])).await;
        Rig {
            line,
            masters,
            device,
            events,
        }
    }

    /// A master resets the link of `address`.
    async fn connect(&mut self, address: u16) -> MasterEnd {
        let gate = loop {
            let found = {
                let mut gates = self.line.gates.lock().unwrap();
                gates
                    .iter()
                    .position(|(a, _)| *a == address)
                    .map(|i| gates.remove(i).1)
            };
            if let Some(gate) = found {
                break gate;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        gate.send(()).unwrap();
        tokio::time::timeout(WAIT, self.masters.recv())
            .await
            .unwrap()
            .unwrap()
    }
}

fn gi(asdu_address: u16) -> Msg {
    Msg::Interrogation(InterrogationMsg {
        is_test: false,
        originator_address: 0,
        asdu_address,
        request: 20,
        is_negative_confirm: false,
        cause: CommandCause::Activation,
    })
}

#[tokio::test]
async fn connections_are_registered_with_their_link_address_and_reopened_after_closing() {
    let conf = conf("/dev/null", &[3, 4], json!([]));
    let mut rig = Rig::start(conf, vec![]).await;
    let queries = rig.events.recorder.queries.lock().unwrap().clone();
    assert_eq!(queries[0][0][4..], ["system", "data", "*"]);
    let four = rig.connect(4).await;
    assert_eq!(four.address, 4);
    rig.events
        .expect(
            "gateway/connections",
            json!([{"connection_id": 1, "address": 4}]),
        )
        .await;
    let three = rig.connect(3).await;
    rig.events
        .expect(
            "gateway/connections",
            json!([{"connection_id": 1, "address": 4}, {"connection_id": 2, "address": 3}]),
        )
        .await;
    four.closed.cancel();
    rig.events
        .expect(
            "gateway/connections",
            json!([{"connection_id": 2, "address": 3}]),
        )
        .await;
    // Address 4 is served again: a new connection with a new id.
    let _four = rig.connect(4).await;
    rig.events
        .expect(
            "gateway/connections",
            json!([{"connection_id": 2, "address": 3}, {"connection_id": 3, "address": 4}]),
        )
        .await;
    rig.device.close().await;
    rig.events.expect("gateway/connections", json!([])).await;
    assert!(three.closed.is_cancelled());
}

#[tokio::test]
async fn data_goes_to_every_connection_with_its_with_ack_and_buffers_replay_to_new_ones() {
    let data = json!([
        point("SCALED", 1, 1, None, true),
        point("SCALED", 1, 2, Some("b"), false),
    ]);
    let mut rig = Rig::start(conf("/dev/null", &[1, 2], data), vec![]).await;
    let mut first = rig.connect(1).await;
    rig.events.until("gateway/connections").await;
    rig.device
        .process_event(system_event("system/data/scaled/1/1", scaled(10), 1))
        .await;
    let (msgs, with_ack) = first.recv().await;
    assert!(with_ack);
    let Msg::Data(m) = &msgs[0] else { panic!() };
    assert_eq!((m.io_address, m.cause), (1, DataCause::Spontaneous));
    // A buffered point: sent (so taken out of the buffer) and without ack.
    rig.device
        .process_event(system_event("system/data/scaled/1/2", scaled(20), 2))
        .await;
    let (msgs, with_ack) = first.recv().await;
    assert!(!with_ack);
    assert!(matches!(&msgs[0], Msg::Data(m) if m.io_address == 2));
    // While nobody is connected a buffered change waits in its buffer.
    first.closed.cancel();
    rig.events.until("gateway/connections").await;
    rig.device
        .process_event(system_event("system/data/scaled/1/2", scaled(21), 3))
        .await;
    rig.device
        .process_event(system_event("system/data/scaled/1/1", scaled(11), 4))
        .await;
    let mut second = rig.connect(2).await;
    rig.events.until("gateway/connections").await;
    let (msgs, _) = second.recv().await;
    let Msg::Data(m) = &msgs[0] else { panic!() };
    assert_eq!(m.io_address, 2);
    assert!(matches!(m.data, iec60870::types::Data::Scaled(s) if s.value.0 == 21));
    // Once sent it left the buffer: a third connection gets nothing.
    let mut third = rig.connect(1).await;
    rig.events.until("gateway/connections").await;
    assert!(
        tokio::time::timeout(Duration::from_millis(200), third.rx.recv())
            .await
            .is_err()
    );
    // Unconfigured points are ignored.
    rig.device
        .process_event(system_event("system/data/scaled/9/9", scaled(1), 5))
        .await;
    assert!(
        tokio::time::timeout(Duration::from_millis(200), third.rx.recv())
            .await
            .is_err()
    );
    rig.device.close().await;
}

#[tokio::test]
async fn interrogation_answers_the_current_values_between_confirmation_and_termination() {
    let data = json!([
        point("SCALED", 1, 1, None, false),
        point("SINGLE", 1, 2, None, false),
        point("BINARY_COUNTER", 1, 3, None, false),
    ]);
    let initial = vec![system_event("system/data/scaled/1/1", scaled(5), 1)];
    let mut rig = Rig::start(conf("/dev/null", &[1], data), initial).await;
    let mut master = rig.connect(1).await;
    rig.events.until("gateway/connections").await;
    master.send(gi(0xFFFF));
    let mut causes = Vec::new();
    for _ in 0..3 {
        let (msgs, with_ack) = master.recv().await;
        assert!(with_ack);
        for msg in msgs {
            causes.push(match msg {
                Msg::Interrogation(m) => format!("{:?}", m.cause),
                Msg::Data(m) => format!("data {} {:?}", m.io_address, m.cause),
                other => panic!("{other:?}"),
            });
        }
    }
    assert_eq!(
        causes,
        [
            "ActivationConfirmation",
            "data 1 InterrogatedStation",
            "ActivationTermination"
        ]
    );
    rig.device.close().await;
}

#[tokio::test]
async fn commands_become_events_with_their_connection_and_responses_go_back_to_it() {
    let mut rig = Rig::start(conf("/dev/null", &[1], json!([])), vec![]).await;
    let mut master = rig.connect(1).await;
    rig.events.until("gateway/connections").await;
    let cmd = iec60870::types::CommandMsg {
        is_test: false,
        originator_address: 0,
        asdu_address: 2,
        io_address: 3,
        command: iec60870::types::Command::Single(iec60870::types::SingleCommand {
            value: iec60870::types::SingleValue::On,
            select: false,
            qualifier: 0,
        }),
        is_negative_confirm: false,
        time: None,
        cause: CommandCause::Activation,
    };
    master.send(Msg::Command(cmd));
    let event = rig.events.until("gateway/command/single/2/3").await;
    assert_eq!(
        event.payload,
        json!({"connection_id": 1, "is_test": false, "cause": "ACTIVATION", "command": {"value": "ON", "select": false, "qualifier": 0}})
    );
    assert_eq!(event.source_timestamp, None);
    rig.device
        .process_event(system_event(
            "system/command/single/2/3",
            json!({"connection_id": 1, "is_test": false, "is_negative_confirm": true, "cause": "ACTIVATION_CONFIRMATION", "command": {"value": "ON", "select": false, "qualifier": 0}}),
            1,
        ))
        .await;
    let (msgs, _) = master.recv().await;
    let Msg::Command(back) = &msgs[0] else {
        panic!()
    };
    assert!(back.is_negative_confirm);
    assert_eq!(back.cause, CommandCause::ActivationConfirmation);
    // A response for a connection that does not exist goes nowhere.
    rig.device
        .process_event(system_event(
            "system/command/single/2/3",
            json!({"connection_id": 7, "is_test": false, "is_negative_confirm": false, "cause": "ACTIVATION_CONFIRMATION", "command": {"value": "ON", "select": false, "qualifier": 0}}),
            2,
        ))
        .await;
    assert!(
        tokio::time::timeout(Duration::from_millis(200), master.rx.recv())
            .await
            .is_err()
    );
    rig.device.close().await;
}

#[tokio::test]
async fn a_port_that_cannot_be_opened_fails_create() {
    let (masters, _rx) = mpsc::unbounded_channel();
    let line = Arc::new(Line {
        fail: true,
        masters,
        gates: Mutex::new(Vec::new()),
    });
    let (recorder, _events) = Recorder::new(vec![]);
    let err = SlaveDevice::create_with(
        &conf("/dev/null", &[1], json!([])),
        prefix(),
        recorder,
        Arc::new(FakeOpener(line)),
    )
    .await
    .err()
    .unwrap();
    assert!(err.to_string().contains("no such port"), "{err}");
}
