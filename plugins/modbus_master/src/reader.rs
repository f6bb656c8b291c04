//! Remote-device reader: polls one remote device's read groups through the shared
//! connection, tracks its status and reports values (`docs/modbus-master.md`
//! sections 7 and 8).

use std::sync::Arc;

use serde_json::json;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::Instrument;

use crate::config::secs;
use crate::connection::{ConnectionHandle, RequestError};
use crate::data::{decode_value, ReadGroup};
use crate::device::Shared;
use modbus::{Reply, Response};

/// A running reader; the device task owns it. Dropping it stops the reader, which
/// then registers `DISABLED`.
pub struct Reader {
    /// Sends the status the reader registers last (see [`Reader::stop`]).
    stop: oneshot::Sender<&'static str>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("finished", &self.task.is_finished())
            .finish_non_exhaustive()
    }
}

impl Reader {
    /// Starts polling remote device number `index` of the configuration.
    pub fn start(shared: Arc<Shared>, index: usize, conn: ConnectionHandle) -> Self {
        let (stop, stopped) = oneshot::channel();
        let device_id = shared.config.remote_devices[index].device_id;
        let span = tracing::debug_span!("remote_device", device_id);
        let task = tokio::spawn(run(shared, index, conn, stopped).instrument(span));
        Self { stop, task }
    }

    /// True while the reader task has not ended.
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }

    /// Stops the reader and waits until it has registered `status` (`DISABLED` when
    /// disabled or closing, `DISCONNECTED` when the connection was lost).
    pub async fn stop(self, status: &'static str) {
        // The reader may have ended already (it only ends when stopped or on panic).
        let _ = self.stop.send(status);
        if let Err(err) = self.task.await {
            tracing::error!(error = %err, "remote device reader failed");
        }
    }
}

/// Last reported outcome of one point: a value, or an exception.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    Value(u64),
    Exception,
}

struct StatusTracker {
    device_id: u8,
    current: Option<&'static str>,
}

impl StatusTracker {
    async fn set(&mut self, shared: &Shared, status: &'static str) {
        if self.current == Some(status) {
            return;
        }
        self.current = Some(status);
        shared
            .register(vec![shared.types.remote_status(self.device_id, status)])
            .await;
    }
}

async fn run(
    shared: Arc<Shared>,
    index: usize,
    conn: ConnectionHandle,
    stopped: oneshot::Receiver<&'static str>,
) {
    let device_id = shared.config.remote_devices[index].device_id;
    let mut status = StatusTracker {
        device_id,
        current: None,
    };
    let last = tokio::select! {
        // A dropped handle stops the reader too.
        last = stopped => last.unwrap_or("DISABLED"),
        // Not cancel safe (a registration may be cut short), which is fine: the reader
        // is going away and its last word is registered below.
        () = poll(&shared, index, &conn, &mut status) => "DISABLED",
    };
    status.set(&shared, last).await;
}

async fn poll(shared: &Shared, index: usize, conn: &ConnectionHandle, status: &mut StatusTracker) {
    let remote = &shared.config.remote_devices[index];
    let groups = &shared.groups[index];
    if groups.is_empty() {
        status.set(shared, "CONNECTED").await;
        return std::future::pending().await;
    }
    loop {
        status.set(shared, "CONNECTING").await;
        let mut last_start: Vec<Option<Instant>> = vec![None; groups.len()];
        let mut last: Vec<Option<Last>> = vec![None; remote.data.len()];
        let timed_out = loop {
            let now = Instant::now();
            let due: Vec<usize> = (0..groups.len())
                .filter(|&g| {
                    last_start[g].is_none_or(|t| now.duration_since(t) >= secs(groups[g].interval))
                })
                .collect();
            if due.is_empty() {
                let next = (0..groups.len())
                    .filter_map(|g| last_start[g].map(|t| t + secs(groups[g].interval)))
                    .min();
                if let Some(next) = next {
                    tokio::time::sleep_until(next).await;
                }
                continue;
            }
            for &g in &due {
                last_start[g] = Some(now);
            }
            let mut timed_out = false;
            for &g in &due {
                match conn.send(remote.device_id, groups[g].request()).await {
                    Ok(response) => {
                        status.set(shared, "CONNECTED").await;
                        let events = group_events(shared, index, &groups[g], &response, &mut last);
                        if !events.is_empty() {
                            shared.register(events).await;
                        }
                    }
                    Err(RequestError::Timeout) => {
                        timed_out = true;
                        break;
                    }
                    // The device task notices the closed connection and stops us.
                    Err(RequestError::Closed) => return std::future::pending().await,
                }
            }
            if timed_out {
                break true;
            }
        };
        if timed_out {
            status.set(shared, "DISCONNECTED").await;
            tokio::time::sleep(secs(remote.timeout_poll_delay)).await;
        }
    }
}

fn group_events(
    shared: &Shared,
    index: usize,
    group: &ReadGroup,
    response: &Reply,
    last: &mut [Option<Last>],
) -> Vec<gateway_model::RegisterEvent> {
    let remote = &shared.config.remote_devices[index];
    let quantity = group.quantity as usize;
    let registers: Vec<u16> = match response {
        Err(code) => {
            let result = code.name();
            return group
                .points
                .iter()
                .map(|&p| {
                    last[p] = Some(Last::Exception);
                    let name = &remote.data[p].name;
                    shared
                        .types
                        .read(remote.device_id, name, json!({"result": result}))
                })
                .collect();
        }
        // Coil responses come in whole bytes; reads are cut to the requested quantity.
        Ok(Response::Bits(bits)) => bits.iter().take(quantity).map(|b| u16::from(*b)).collect(),
        Ok(Response::Registers(regs)) if group.data_type == crate::config::DataType::Queue => {
            regs.clone()
        }
        Ok(Response::Registers(regs)) => regs.iter().take(quantity).copied().collect(),
        Ok(Response::WriteEcho { .. } | Response::MaskEcho { .. }) => Vec::new(),
    };
    let mut events = Vec::new();
    for &p in &group.points {
        let point = &remote.data[p];
        let offset = usize::from(point.start_address - group.start_address);
        let value = decode_value(point, &registers, offset);
        let cause = match last[p] {
            None | Some(Last::Exception) => "INTERROGATE",
            Some(Last::Value(previous)) if previous != value => "CHANGE",
            Some(Last::Value(_)) => continue,
        };
        last[p] = Some(Last::Value(value));
        events.push(shared.types.read(
            remote.device_id,
            &point.name,
            json!({"result": "SUCCESS", "value": value, "cause": cause}),
        ));
    }
    events
}
