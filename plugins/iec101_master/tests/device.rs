//! The device's state machine on an in-memory link (no serial line): start-up enable
//! query, per-remote-device enable and disable, statuses, a remote device that does not
//! answer, a port that fails to open or closes, data and commands routed by remote
//! device address. Every registered event is checked against hat's schema by the
//! recorder. The same behaviours against hat-drivers over a pty are in `serial.rs`.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use futures::future::BoxFuture;
use iec101_master::config::{MasterConfig, RemoteDevice};
use iec101_master::line::{Conn, Link, LinkError, LinkOpener};
use iec101_master::MasterDevice;
use iec60870::asdu::{AsduAddressSize, AsduCodec, CauseSize, FieldSizes, IoAddressSize, Profile};
use iec60870::types::Msg;
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

/// The remote device's end of one fake connection.
struct RemoteEnd {
    address: u16,
    /// ASDUs to the master.
    tx: mpsc::UnboundedSender<Bytes>,
    /// ASDUs from the master.
    rx: mpsc::UnboundedReceiver<Bytes>,
    /// Cancelled when either side closes.
    closed: CancellationToken,
}

struct FakeConn {
    rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Bytes>>,
    tx: mpsc::UnboundedSender<Bytes>,
    closed: CancellationToken,
}

impl Conn for FakeConn {
    fn send(&self, asdu: Bytes) -> BoxFuture<'_, Result<(), LinkError>> {
        Box::pin(async move {
            if self.closed.is_cancelled() {
                return Err(LinkError("closed".into()));
            }
            self.tx.send(asdu).map_err(|_| LinkError("closed".into()))
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

/// What the fake line does; shared by every link it opens.
struct Line {
    /// Opens still to fail.
    failing_opens: AtomicUsize,
    /// Opens so far.
    opens: AtomicUsize,
    /// Addresses that answer a link reset.
    answering: Mutex<HashSet<u16>>,
    /// New connections, to the test.
    remotes: mpsc::UnboundedSender<RemoteEnd>,
    /// The open link's closing token.
    current: Mutex<Option<CancellationToken>>,
}

struct FakeOpener(Arc<Line>);

struct FakeLink {
    line: Arc<Line>,
    closed: CancellationToken,
}

impl LinkOpener for FakeOpener {
    fn open(&self, _: &MasterConfig) -> BoxFuture<'static, Result<Arc<dyn Link>, LinkError>> {
        let line = self.0.clone();
        Box::pin(async move {
            line.opens.fetch_add(1, Ordering::SeqCst);
            if line
                .failing_opens
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(LinkError("no such port".into()));
            }
            let closed = CancellationToken::new();
            *line.current.lock().unwrap() = Some(closed.clone());
            Ok(Arc::new(FakeLink { line, closed }) as Arc<dyn Link>)
        })
    }
}

impl Link for FakeLink {
    fn open_connection(
        &self,
        _: &MasterConfig,
        remote: &RemoteDevice,
    ) -> BoxFuture<'static, Result<Arc<dyn Conn>, LinkError>> {
        let line = self.line.clone();
        let link_closed = self.closed.clone();
        let address = remote.address;
        Box::pin(async move {
            if !line.answering.lock().unwrap().contains(&address) {
                // A remote device that does not answer: the reset is retried forever.
                std::future::pending::<()>().await;
            }
            let closed = link_closed.child_token();
            let (to_master, from_remote) = mpsc::unbounded_channel();
            let (to_remote, from_master) = mpsc::unbounded_channel();
            let _ = line.remotes.send(RemoteEnd {
                address,
                tx: to_master,
                rx: from_master,
                closed: closed.clone(),
            });
            Ok(Arc::new(FakeConn {
                rx: tokio::sync::Mutex::new(from_remote),
                tx: to_remote,
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
    remotes: mpsc::UnboundedReceiver<RemoteEnd>,
    device: MasterDevice,
    events: Events,
}

impl Rig {
    async fn start(conf: Value, enabled: &[u16], answering: &[u16], failing_opens: usize) -> Rig {
        let (remotes_tx, remotes) = mpsc::unbounded_channel();
        let line = Arc::new(Line {
            failing_opens: AtomicUsize::new(failing_opens),
            opens: AtomicUsize::new(0),
            answering: Mutex::new(answering.iter().copied().collect()),
            remotes: remotes_tx,
            current: Mutex::new(None),
        });
        let (recorder, events) = Recorder::new(enabled);
        let device = MasterDevice::create_with(
            &conf,
            prefix(),
            recorder,
            Arc::new(FakeOpener(line.clone())),
        )
        .await
        .unwrap();
        Rig {
            line,
            remotes,
            device,
            events,
        }
    }

    async fn remote(&mut self) -> RemoteEnd {
        tokio::time::timeout(WAIT, self.remotes.recv())
            .await
            .expect("no connection opened")
            .unwrap()
    }

    fn close_port(&self) {
        self.line.current.lock().unwrap().as_ref().unwrap().cancel();
    }
}

fn status(tail: &str) -> impl Fn(&str) -> (String, Value) + '_ {
    move |s| (tail.to_owned(), json!(s))
}

fn summary(event: &Recorded) -> (String, Value) {
    (event.tail.clone(), event.payload.clone())
}

fn conf_two() -> Value {
    conf("/dev/null", &[1, 2])
}

#[tokio::test]
async fn the_start_up_query_asks_every_remote_device_and_only_enabled_ones_connect() {
    let mut rig = Rig::start(conf_two(), &[2], &[1, 2], 0).await;
    let gw = status("gateway/status");
    let r2 = status("gateway/remote_device/2/status");
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(summary(&rig.events.next().await));
    }
    assert_eq!(
        seen,
        [
            gw("CONNECTING"),
            gw("CONNECTED"),
            r2("CONNECTING"),
            r2("CONNECTED")
        ]
    );
    let end = rig.remote().await;
    assert_eq!(end.address, 2);
    let queries = rig.events.recorder.queries.lock().unwrap().clone();
    let asked: Vec<String> = queries[0].iter().map(|t| t[4..].join("/")).collect();
    assert_eq!(
        asked,
        [
            "system/remote_device/1/enable",
            "system/remote_device/2/enable"
        ]
    );
    // Nothing for remote device 1.
    let quiet = rig.events.quiet_for(Duration::from_millis(300)).await;
    assert!(quiet.is_empty(), "{quiet:?}");
    rig.device.close().await;
    let rest: Vec<_> = rig.events.quiet_for(Duration::from_millis(50)).await;
    let rest: Vec<_> = rest.iter().map(summary).collect();
    assert_eq!(rest, [r2("DISCONNECTED"), gw("DISCONNECTED")]);
    assert!(end.closed.is_cancelled());
}

#[tokio::test]
async fn enable_and_disable_start_and_stop_one_remote_device() {
    let mut rig = Rig::start(conf_two(), &[], &[1, 2], 0).await;
    rig.events.until("gateway/status", json!("CONNECTED")).await;
    rig.device
        .process_event(system_event("system/remote_device/1/enable", json!(true)))
        .await;
    rig.events.until_remote(1, "CONNECTED").await;
    let first = rig.remote().await;
    assert_eq!(first.address, 1);
    // A second enable while running changes nothing.
    rig.device
        .process_event(system_event("system/remote_device/1/enable", json!(true)))
        .await;
    rig.device
        .process_event(system_event("system/remote_device/1/enable", json!(false)))
        .await;
    rig.events
        .expect("gateway/remote_device/1/status", json!("DISCONNECTED"))
        .await;
    tokio::time::timeout(WAIT, first.closed.cancelled())
        .await
        .unwrap();
    // Bad enable payloads and unknown addresses are ignored.
    for (tail, payload) in [
        ("system/remote_device/1/enable", json!("yes")),
        ("system/remote_device/9/enable", json!(true)),
        ("system/remote_device/x/enable", json!(true)),
    ] {
        rig.device.process_event(system_event(tail, payload)).await;
    }
    assert!(rig
        .events
        .quiet_for(Duration::from_millis(300))
        .await
        .is_empty());
    rig.device
        .process_event(system_event("system/remote_device/1/enable", json!(true)))
        .await;
    rig.events
        .expect("gateway/remote_device/1/status", json!("CONNECTING"))
        .await;
    rig.events
        .expect("gateway/remote_device/1/status", json!("CONNECTED"))
        .await;
    assert_eq!(rig.remote().await.address, 1);
    rig.device.close().await;
}

#[tokio::test]
async fn data_and_answers_are_registered_under_their_remote_device_and_commands_go_to_it() {
    let mut rig = Rig::start(conf_two(), &[1, 2], &[1, 2], 0).await;
    let mut ends = vec![rig.remote().await, rig.remote().await];
    ends.sort_by_key(|e| e.address);
    rig.events.until_connected(&[1, 2]).await;
    let codec = codec();
    for end in &ends {
        let msg: Msg = Msg::Data(iec60870::types::DataMsg {
            is_test: false,
            originator_address: 0,
            asdu_address: 7,
            io_address: u32::from(end.address) * 10,
            data: iec60870::types::Data::Scaled(iec60870::types::ScaledData {
                value: iec60870::types::ScaledValue(-5),
                quality: Default::default(),
            }),
            time: None,
            cause: iec60870::types::DataCause::Spontaneous,
        });
        end.tx.send(codec.encode_one(&msg).unwrap()).unwrap();
        let event = rig.events.next().await;
        assert_eq!(
            event.tail,
            format!(
                "gateway/remote_device/{}/data/scaled/7/{}",
                end.address,
                end.address * 10
            )
        );
        assert_eq!(event.payload["data"]["value"], json!(-5));
    }
    rig.device
        .process_event(system_event(
            "system/remote_device/2/command/double/3/4",
            json!({"is_test": false, "cause": "ACTIVATION", "command": {"value": "ON", "select": false, "qualifier": 1}}),
        ))
        .await;
    let asdu = tokio::time::timeout(WAIT, ends[1].rx.recv())
        .await
        .unwrap()
        .unwrap();
    let Msg::Command(cmd) = &codec.decode(&asdu).unwrap()[0] else {
        panic!("not a command")
    };
    assert_eq!((cmd.asdu_address, cmd.io_address, cmd.time), (3, 4, None));
    assert!(ends[0].rx.try_recv().is_err());
    // A command for a remote device that is not connected is dropped.
    rig.device
        .process_event(system_event("system/remote_device/2/enable", json!(false)))
        .await;
    rig.events.until_remote(2, "DISCONNECTED").await;
    rig.device
        .process_event(system_event(
            "system/remote_device/2/interrogation/3",
            json!({"is_test": false, "cause": "ACTIVATION", "request": 20}),
        ))
        .await;
    rig.device.close().await;
}

#[tokio::test]
async fn a_remote_device_that_does_not_answer_is_disconnected_and_tried_again_after_reconnect_delay(
) {
    let mut rig = Rig::start(conf("/dev/null", &[1]), &[1], &[], 0).await;
    rig.events.until_remote(1, "CONNECTING").await;
    let connecting = Instant::now();
    let disconnected = rig.events.until_remote(1, "DISCONNECTED").await;
    // response_timeout 0.3 s × (send_retry_count 2 + 1).
    let waited = disconnected.at - connecting;
    assert!(waited >= Duration::from_millis(850), "{waited:?}");
    let again = rig
        .events
        .expect("gateway/remote_device/1/status", json!("CONNECTING"))
        .await;
    let paused = again.at - disconnected.at;
    assert!(paused >= Duration::from_millis(280), "{paused:?}");
    // It answers now.
    rig.line.answering.lock().unwrap().insert(1);
    rig.events.until_remote(1, "CONNECTED").await;
    let end = rig.remote().await;
    // The connection ends (the remote stopped answering after the retries): it is
    // reported and opened again after reconnect_delay.
    end.closed.cancel();
    let down = rig
        .events
        .expect("gateway/remote_device/1/status", json!("DISCONNECTED"))
        .await;
    let up = rig
        .events
        .expect("gateway/remote_device/1/status", json!("CONNECTING"))
        .await;
    assert!(up.at - down.at >= Duration::from_millis(280));
    rig.events.until_remote(1, "CONNECTED").await;
    rig.device.close().await;
}

#[tokio::test]
async fn a_port_that_fails_to_open_is_retried_after_reconnect_delay_and_a_closed_one_reopened() {
    let mut rig = Rig::start(conf("/dev/null", &[1]), &[1], &[1], 1).await;
    let gw = "gateway/status";
    rig.events.expect(gw, json!("CONNECTING")).await;
    let down = rig.events.expect(gw, json!("DISCONNECTED")).await;
    let up = rig.events.expect(gw, json!("CONNECTING")).await;
    assert!(up.at - down.at >= Duration::from_millis(280));
    rig.events.expect(gw, json!("CONNECTED")).await;
    rig.events.until_remote(1, "CONNECTED").await;
    let end = rig.remote().await;
    rig.close_port();
    // The remote device goes first, then the link; the port is opened again at once.
    rig.events
        .expect("gateway/remote_device/1/status", json!("DISCONNECTED"))
        .await;
    rig.events.expect(gw, json!("DISCONNECTED")).await;
    assert!(end.closed.is_cancelled());
    rig.events.expect(gw, json!("CONNECTING")).await;
    rig.events.expect(gw, json!("CONNECTED")).await;
    rig.events.until_remote(1, "CONNECTED").await;
    assert_eq!(rig.line.opens.load(Ordering::SeqCst), 3);
    rig.device.close().await;
}
