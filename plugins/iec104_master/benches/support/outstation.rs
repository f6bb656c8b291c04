//! A fast IEC 104 outstation for the side-by-side benchmark, on the workspace's own
//! codec and connection crates, running on a runtime thread of its own.
//!
//! Every master that connects gets spontaneous short floats (M_ME_NC_1) for IOA
//! 1..=points of ASDU address 1, each value different from the last, packed into full
//! ASDUs; how many depends on the [`Load`]. Every command activation is answered with an
//! activation confirmation at once.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use iec60870::asdu::{AsduCodec, Profile};
use iec60870::types::{
    CommandCause, CommandMsg, Data, DataCause, DataMsg, FloatingData, FloatingValue,
    MeasurementQuality, Msg,
};
use tokio::sync::watch;

/// What the outstation sends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Load {
    /// Nothing.
    Idle,
    /// As fast as the master acknowledges.
    Flood,
    /// This many points per second.
    Paced(u32),
}

/// Points per batch handed to the connection at once (about 10 full ASDUs).
const BATCH: u32 = 300;
/// How often the paced load tops up what is due.
const PACE_TICK: Duration = Duration::from_millis(2);

/// The running outstation; stops on drop.
pub(crate) struct Outstation {
    port: u16,
    load: watch::Sender<Load>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Outstation {
    /// Listens on a free loopback port with send window `k` and receive window `w`.
    pub(crate) fn start(points: u32, k: u16, w: u16) -> Outstation {
        let (load, load_rx) = watch::channel(Load::Idle);
        let (stop, stop_rx) = tokio::sync::oneshot::channel();
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let config = iec104::ConnectionConfig {
                    send_window_size: k,
                    receive_window_size: w,
                    ..Default::default()
                };
                let listener =
                    iec104::Listener::bind(SocketAddr::from(([127, 0, 0, 1], 0)), config)
                        .await
                        .unwrap();
                port_tx.send(listener.local_addr().port()).unwrap();
                let accept = async {
                    loop {
                        let Ok(connection) = listener.accept().await else {
                            continue;
                        };
                        tokio::spawn(serve(connection, points, load_rx.clone()));
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stop_rx => {}
                }
            });
        });
        Outstation {
            port: port_rx.recv().unwrap(),
            load,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The port it listens on.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Changes what every connected (and every future) master gets.
    pub(crate) fn set_load(&self, load: Load) {
        self.load.send_replace(load);
    }
}

impl Drop for Outstation {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn data_msg(io_address: u32, value: f32) -> Msg {
    Msg::Data(DataMsg {
        is_test: false,
        originator_address: 0,
        asdu_address: 1,
        io_address,
        data: Data::Floating(FloatingData {
            value: FloatingValue(value),
            quality: MeasurementQuality {
                invalid: false,
                not_topical: false,
                substituted: false,
                blocked: false,
                overflow: false,
            },
        }),
        time: None,
        cause: DataCause::Spontaneous,
    })
}

/// One master: answers its commands and sends it data until it goes away.
async fn serve(mut connection: iec104::Connection, points: u32, mut load: watch::Receiver<Load>) {
    let sender = connection.sender();
    let codec = AsduCodec::new(Profile::iec104());
    let answer = {
        let sender = sender.clone();
        async move {
            while let Ok(asdu) = connection.receive().await {
                let Ok(msgs) = codec.decode(&asdu) else {
                    continue;
                };
                for msg in msgs {
                    if let Msg::Command(command) = msg {
                        if command.cause == CommandCause::Activation {
                            let reply = Msg::Command(CommandMsg {
                                cause: CommandCause::ActivationConfirmation,
                                ..command
                            });
                            if let Ok(bytes) = codec.encode_one(&reply) {
                                if sender.send(bytes, false).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let send = async move {
        let mut next_io = 0u32;
        let mut counter = 0u64;
        let mut batch = Vec::with_capacity(BATCH as usize);
        let mut paced_since: Option<(Instant, u64)> = None;
        loop {
            let current = *load.borrow_and_update();
            let count = match current {
                Load::Idle => {
                    paced_since = None;
                    if load.changed().await.is_err() {
                        return;
                    }
                    continue;
                }
                Load::Flood => {
                    paced_since = None;
                    BATCH
                }
                Load::Paced(rate) => {
                    let (start, sent) = *paced_since.get_or_insert((Instant::now(), counter));
                    let due = (start.elapsed().as_secs_f64() * f64::from(rate)) as u64;
                    let owed = due.saturating_sub(counter - sent);
                    if owed == 0 {
                        tokio::time::sleep(PACE_TICK).await;
                        continue;
                    }
                    owed.min(u64::from(BATCH)) as u32
                }
            };
            batch.clear();
            for _ in 0..count {
                next_io = next_io % points + 1;
                counter += 1;
                batch.push(data_msg(next_io, counter as f32));
            }
            let Ok(asdus) = codec.encode(&batch) else {
                return;
            };
            if sender.send_all(asdus, false).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = answer => {}
        _ = send => {}
    }
}
