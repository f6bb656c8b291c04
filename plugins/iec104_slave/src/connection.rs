//! One task per master connection: decodes received ASDUs for the device task, and
//! encodes what the device queues for this master, many points per ASDU, keeping
//! buffered values' acknowledgements in order.

use std::collections::VecDeque;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::future::OptionFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use iec60870::asdu::{AsduCodec, AsduError};
use iec60870::types::{DataMsg, Msg};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::device::BufferRef;
use crate::events::ConnectionId;

/// Most sends of buffered values waiting for their acknowledgement: beyond it the task
/// stops taking from its queue, so the queue (bounded) fills when the master stops
/// acknowledging and the device closes the connection.
pub const MAX_ACKS_IN_FLIGHT: usize = 64;

/// What the device queues for one master.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    /// The answer to one request: batches in order, each one hat `send` (encoded
    /// together), no acknowledgement awaited. One queue entry however long the answer
    /// (an interrogation of thousands of ASDU addresses), so the queue bound limits
    /// requests, not the size of the station.
    Reply(Vec<Vec<Msg>>),
    /// Every buffered value, for a master that just started data transfer (one queue
    /// entry however full the buffers); each leaves its buffer once acknowledged.
    Buffered(Vec<(DataMsg, BufferRef)>),
    /// Spontaneous (or buffered) data; `ack` is removed from its buffer once the master
    /// acknowledged the ASDU carrying it.
    Data {
        /// The value.
        msg: DataMsg,
        /// Buffer entry of the value, if the point is buffered.
        ack: Option<BufferRef>,
    },
}

/// What a connection task reports to the device task.
#[derive(Debug)]
pub struct ConnEvent {
    /// The connection.
    pub id: ConnectionId,
    /// What happened.
    pub kind: ConnEventKind,
}

/// Kinds of [`ConnEvent`].
#[derive(Debug)]
pub enum ConnEventKind {
    /// Messages of one received ASDU.
    Received(Vec<Msg>),
    /// The master started (`true`) or stopped data transfer.
    Enabled(bool),
    /// The master acknowledged the ASDUs carrying these buffered values.
    Acked(Vec<BufferRef>),
    /// The connection ended; the last event of a connection.
    Closed,
}

type AckFuture = BoxFuture<'static, Result<Vec<BufferRef>, iec104::Error>>;

/// Serves one connection until it closes or `cancel` fires. The caller reports
/// `Closed` once this has returned (or panicked).
///
/// `max_pending` items are taken from `out` while a send is in flight and encoded
/// together into the next send: the device's queue stays short during a burst the
/// link can work off, and a congested link carries many points per ASDU.
pub async fn run(
    id: ConnectionId,
    mut conn: iec104::Connection,
    mut out: mpsc::Receiver<Outgoing>,
    to_device: mpsc::Sender<ConnEvent>,
    codec: AsduCodec,
    max_pending: usize,
    cancel: CancellationToken,
) {
    let sender = conn.sender();
    let reporter = Reporter { id, to_device };
    let mut acks: FuturesUnordered<AckFuture> = FuturesUnordered::new();
    // Receiving and sending run side by side in this task: a send waiting for room in
    // the window never stops the receiving of the master's requests.
    let reason = tokio::select! {
        () = cancel.cancelled() => "closed by the device".to_owned(),
        reason = receive_loop(&mut conn, &codec, &reporter) => reason,
        reason = send_loop(&sender, &mut out, &codec, max_pending, &mut acks, &reporter) => reason,
    };
    tracing::info!(reason, "connection ends");
    sender.close();
    // Acknowledgements that arrived before the end still count: a buffered value the
    // master acknowledged is not sent again to the next master.
    let mut acked = Vec::new();
    while let Some(Some(result)) = acks.next().now_or_never() {
        if let Ok(refs) = result {
            acked.extend(refs);
        }
    }
    if !acked.is_empty() {
        reporter.report(ConnEventKind::Acked(acked)).await;
    }
}

struct Reporter {
    id: ConnectionId,
    to_device: mpsc::Sender<ConnEvent>,
}

impl Reporter {
    async fn report(&self, kind: ConnEventKind) {
        // The device task only goes away after every connection reported Closed.
        let _ = self.to_device.send(ConnEvent { id: self.id, kind }).await;
    }
}

/// Decodes every received ASDU for the device and reports STARTDT/STOPDT; returns why
/// the connection ended.
async fn receive_loop(
    conn: &mut iec104::Connection,
    codec: &AsduCodec,
    reporter: &Reporter,
) -> String {
    let mut enabled = conn.sender().enabled();
    let initial = *enabled.borrow_and_update();
    reporter.report(ConnEventKind::Enabled(initial)).await;
    loop {
        tokio::select! {
            // STARTDT comes before the ASDUs after it: when both are ready, the device
            // learns of it first, so data it sends after answering is not withheld.
            biased;
            changed = enabled.changed() => match changed {
                Ok(()) => {
                    let now = *enabled.borrow_and_update();
                    reporter.report(ConnEventKind::Enabled(now)).await;
                }
                Err(_) => return "connection closed".to_owned(),
            },
            // Cancel-safe (iec104::Connection::receive).
            received = conn.receive() => match received {
                Ok(asdu) => match codec.decode(&asdu) {
                    Ok(msgs) => reporter.report(ConnEventKind::Received(msgs)).await,
                    Err(AsduError::UnknownType { type_id }) => {
                        // hat's AsduTypeError: logged, the connection goes on.
                        tracing::warn!(type_id, "ASDU of unknown type ignored");
                    }
                    Err(err) => return format!("malformed ASDU: {err}"),
                },
                Err(err) => return err.to_string(),
            },
        }
    }
}

/// Encodes and sends what the device queues; reports acknowledged buffered values.
///
/// One send is in flight at a time; what arrives meanwhile waits in `pending` and goes
/// in the next send, encoded together.
async fn send_loop(
    sender: &iec104::Sender,
    out: &mut mpsc::Receiver<Outgoing>,
    codec: &AsduCodec,
    max_pending: usize,
    acks: &mut FuturesUnordered<AckFuture>,
    reporter: &Reporter,
) -> String {
    let mut pending: VecDeque<Outgoing> = VecDeque::new();
    let mut in_flight: Option<AckFuture> = None;
    loop {
        if in_flight.is_none() && !pending.is_empty() {
            let (asdus, refs) = encode(codec, &mut pending);
            if sender.is_enabled() {
                let sender = sender.clone();
                // Resolves once queued in the connection (in order: one at a time).
                in_flight = Some(Box::pin(async move {
                    sender.send_all(asdus, false).await.map(|()| refs)
                }));
            } else {
                // Stopped (STOPDT): the connection would discard these. Buffered
                // values keep their place in the buffers and go again at the next
                // STARTDT.
                tracing::debug!(count = asdus.len(), "data transfer stopped: ASDUs dropped");
            }
        }
        let can_take = pending.len() < max_pending && acks.len() < MAX_ACKS_IN_FLIGHT;
        let sending = in_flight.is_some();
        tokio::select! {
            item = out.recv(), if can_take => {
                let Some(item) = item else {
                    return "closed by the device".to_owned();
                };
                pending.push_back(item);
                while pending.len() < max_pending {
                    match out.try_recv() {
                        Ok(item) => pending.push_back(item),
                        Err(_) => break,
                    }
                }
            },
            // Not polled (nor awaited) when nothing is in flight.
            Some(sent) = OptionFuture::from(in_flight.as_mut()), if sending => {
                in_flight = None;
                match sent {
                    Ok(refs) if refs.is_empty() => {}
                    Ok(refs) => {
                        // A drain resolves once everything queued before it is
                        // acknowledged: those values may leave their buffers then.
                        let sender = sender.clone();
                        acks.push(Box::pin(async move { sender.drain(true).await.map(|()| refs) }));
                    }
                    Err(err) => return format!("sending: {err}"),
                }
            },
            Some(result) = acks.next() => match result {
                Ok(refs) => reporter.report(ConnEventKind::Acked(refs)).await,
                Err(err) => return format!("waiting for acknowledgement: {err}"),
            },
        }
    }
}

/// Encodes everything in `pending` (emptying it): replies as their own batches, runs of
/// data messages together so the codec packs compatible points into shared ASDUs. A
/// message that cannot be encoded is logged and dropped alone (hat logs the failed
/// send of that message); its buffer entry stays.
fn encode(codec: &AsduCodec, pending: &mut VecDeque<Outgoing>) -> (Vec<Bytes>, Vec<BufferRef>) {
    let mut asdus = Vec::new();
    let mut acks = Vec::new();
    let mut run: Vec<Msg> = Vec::new();
    let mut run_acks: Vec<Option<BufferRef>> = Vec::new();
    for item in pending.drain(..) {
        match item {
            Outgoing::Data { msg, ack } => {
                run.push(Msg::Data(msg));
                run_acks.push(ack);
            }
            Outgoing::Buffered(values) => {
                for (msg, ack) in values {
                    run.push(Msg::Data(msg));
                    run_acks.push(Some(ack));
                }
            }
            Outgoing::Reply(batches) => {
                flush(codec, &mut run, &mut run_acks, &mut asdus, &mut acks);
                for batch in batches {
                    run = batch;
                    run_acks.resize(run.len(), None);
                    flush(codec, &mut run, &mut run_acks, &mut asdus, &mut acks);
                }
            }
        }
    }
    flush(codec, &mut run, &mut run_acks, &mut asdus, &mut acks);
    (asdus, acks)
}

fn flush(
    codec: &AsduCodec,
    run: &mut Vec<Msg>,
    run_acks: &mut Vec<Option<BufferRef>>,
    asdus: &mut Vec<Bytes>,
    acks: &mut Vec<BufferRef>,
) {
    if run.is_empty() {
        return;
    }
    match codec.encode(run) {
        Ok(encoded) => {
            asdus.extend(encoded);
            acks.extend(run_acks.iter().flatten());
        }
        Err(_) => {
            for (msg, ack) in run.iter().zip(run_acks.iter()) {
                match codec.encode_one(msg) {
                    Ok(asdu) => {
                        asdus.push(asdu);
                        acks.extend(ack);
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, ?msg, "message not encodable: dropped")
                    }
                }
            }
        }
    }
    run.clear();
    run_acks.clear();
}

#[cfg(test)]
mod tests {
    use gateway_model::EventId;
    use iec60870::asdu::Profile;
    use iec60870::types::{
        CommandCause, Data, DataCause, InterrogationMsg, ScaledData, ScaledValue,
    };

    use super::*;

    fn scaled(io_address: u32) -> DataMsg {
        DataMsg {
            is_test: false,
            originator_address: 0,
            asdu_address: 1,
            io_address,
            data: Data::Scaled(ScaledData {
                value: ScaledValue(io_address as i16),
                quality: Default::default(),
            }),
            time: None,
            cause: DataCause::Spontaneous,
        }
    }

    fn id(instance: i64) -> EventId {
        EventId {
            server: 1,
            session: 1,
            instance,
        }
    }

    #[test]
    fn spontaneous_points_share_asdus_and_replies_keep_their_place() {
        let codec = AsduCodec::new(Profile::iec104());
        let reply = Msg::Interrogation(InterrogationMsg {
            is_test: false,
            originator_address: 0,
            asdu_address: 1,
            request: 20,
            is_negative_confirm: false,
            cause: CommandCause::ActivationConfirmation,
        });
        let mut pending: VecDeque<Outgoing> = (0..200)
            .map(|i| Outgoing::Data {
                msg: scaled(i * 2),
                ack: (i % 50 == 0).then(|| (0, id(i.into()))),
            })
            .collect();
        pending.push_back(Outgoing::Reply(vec![vec![reply]]));
        pending.push_back(Outgoing::Data {
            msg: scaled(1),
            ack: None,
        });
        let (asdus, acks) = encode(&codec, &mut pending);
        assert!(pending.is_empty());
        // 200 non-consecutive scaled points of 6 octets each (3 address, 2 value,
        // 1 quality) fill ASDUs of at most 249 octets: 40 per ASDU.
        assert_eq!(asdus.len(), 5 + 1 + 1, "{}", asdus.len());
        assert_eq!(acks, [0, 50, 100, 150].map(|i| (0, id(i))));
        let decoded: Vec<Vec<Msg>> = asdus.iter().map(|a| codec.decode(a).unwrap()).collect();
        let points: Vec<u32> = decoded[..5]
            .iter()
            .flatten()
            .map(|m| match m {
                Msg::Data(d) => d.io_address,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(points, (0..200).map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(decoded[5], [reply]);
        assert_eq!(decoded[6], [Msg::Data(scaled(1))]);
    }

    #[test]
    fn a_message_that_cannot_be_encoded_is_dropped_alone() {
        let codec = AsduCodec::new(Profile::iec104());
        let mut bad = scaled(5);
        // Beyond the 2-octet ASDU address field of 104 is impossible (u16); an IO
        // address beyond 3 octets is not.
        bad.io_address = 0x0100_0000;
        let mut pending: VecDeque<Outgoing> = [
            Outgoing::Data {
                msg: scaled(1),
                ack: Some((0, id(1))),
            },
            Outgoing::Data {
                msg: bad,
                ack: Some((0, id(2))),
            },
            Outgoing::Data {
                msg: scaled(3),
                ack: Some((0, id(3))),
            },
        ]
        .into();
        let (asdus, acks) = encode(&codec, &mut pending);
        assert_eq!(asdus.len(), 2);
        assert_eq!(acks, [(0, id(1)), (0, id(3))]);
    }
}
