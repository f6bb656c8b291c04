//! The task that owns a port: it feeds received octets through the decoder into the
//! sans-IO station, writes what the station asks for (keeping the silent interval),
//! arms the station's timer and routes connection events to the handles.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Instant;

use bytes::Bytes;
use iec60870::link::{
    BalancedStation, CloseCause, ConnConfig, ConnEvent, ConnKey, Decoder, LinkFormat,
    MasterStation, PrimaryConfig, SecondaryConfig, SendId, SlaveStation, Station, StationError,
    StationOutput,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};

use crate::connection::{ConnectionHandle, HandleParts};
use crate::{
    Address, AddressSize, BalancedConnectionOptions, CloseReason, ConnectionInfo, DecoderStats,
    Direction, LinkError, MasterConnectionOptions, SerialParams, SlaveConnectionOptions,
};

/// Octets read from the port at once.
const READ_CHUNK: usize = 1024;

/// What kind of connection to open.
#[derive(Debug)]
pub(crate) enum ConnRequest {
    Master {
        address: Address,
        options: MasterConnectionOptions,
    },
    Slave {
        address: Address,
        options: SlaveConnectionOptions,
    },
    Balanced {
        direction: Direction,
        address: Address,
        options: BalancedConnectionOptions,
    },
}

impl ConnRequest {
    fn parts(self) -> (ConnConfig, Option<String>, usize, usize) {
        match self {
            ConnRequest::Master { address, options } => (
                ConnConfig::Master(PrimaryConfig {
                    address,
                    direction: None,
                    response_timeout: options.response_timeout,
                    send_retry_count: options.send_retry_count,
                    poll_class1_delay: options.poll_class1_delay,
                    poll_class2_delay: options.poll_class2_delay,
                    status_delay: None,
                }),
                options.name,
                options.send_queue_size,
                options.receive_queue_size,
            ),
            ConnRequest::Slave { address, options } => (
                ConnConfig::Slave(SecondaryConfig {
                    address,
                    direction: None,
                    balanced: false,
                    keep_alive_timeout: Some(options.keep_alive_timeout),
                }),
                options.name,
                options.send_queue_size,
                options.receive_queue_size,
            ),
            ConnRequest::Balanced {
                direction,
                address,
                options,
            } => (
                ConnConfig::Balanced(
                    PrimaryConfig {
                        address,
                        direction: Some(direction),
                        response_timeout: options.response_timeout,
                        send_retry_count: options.send_retry_count,
                        poll_class1_delay: None,
                        poll_class2_delay: None,
                        status_delay: Some(options.status_delay),
                    },
                    SecondaryConfig {
                        address,
                        direction: Some(direction),
                        balanced: true,
                        keep_alive_timeout: None,
                    },
                ),
                options.name,
                options.send_queue_size,
                options.receive_queue_size,
            ),
        }
    }
}

/// Requests of the handles to the link task.
#[derive(Debug)]
pub(crate) enum Command {
    Open {
        config: ConnConfig,
        name: Option<String>,
        conn_id: u64,
        send_queue_size: usize,
        receive_queue_size: usize,
        reply: oneshot::Sender<Result<ConnectionHandle, LinkError>>,
    },
    Close {
        key: ConnKey,
        conn_id: u64,
    },
    /// An open_connection future was dropped before the connection opened.
    CancelOpen {
        conn_id: u64,
    },
    Send {
        key: ConnKey,
        conn_id: u64,
        data: Bytes,
        with_ack: bool,
        class2: bool,
        reply: oneshot::Sender<Result<(), LinkError>>,
    },
    CloseLink,
}

#[derive(Debug)]
struct Shared {
    port: String,
    commands: mpsc::UnboundedSender<Command>,
    state: watch::Receiver<Option<CloseReason>>,
    stats: Arc<StdMutex<DecoderStats>>,
    next_conn_id: std::sync::atomic::AtomicU64,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::CloseLink);
    }
}

/// A handle on the link task.
#[derive(Debug, Clone)]
pub(crate) struct LinkHandle {
    shared: Arc<Shared>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Master,
    Slave,
    Balanced,
}

impl LinkHandle {
    pub(crate) fn open_master(p: &SerialParams, size: AddressSize) -> Result<Self, LinkError> {
        LinkHandle::open(p, size, Kind::Master)
    }

    pub(crate) fn open_slave(p: &SerialParams, size: AddressSize) -> Result<Self, LinkError> {
        LinkHandle::open(p, size, Kind::Slave)
    }

    pub(crate) fn open_balanced(p: &SerialParams, size: AddressSize) -> Result<Self, LinkError> {
        LinkHandle::open(p, size, Kind::Balanced)
    }

    fn open(
        params: &SerialParams,
        address_size: AddressSize,
        kind: Kind,
    ) -> Result<Self, LinkError> {
        if kind != Kind::Balanced && address_size == AddressSize::Zero {
            return Err(LinkError::Unsupported(
                "unbalanced transmission needs a link address (size One or Two)".into(),
            ));
        }
        let port = params.open()?;
        let format = LinkFormat {
            address_size,
            direction_valid: kind == Kind::Balanced,
        };
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (state_tx, state) = watch::channel(None);
        let stats = Arc::new(StdMutex::new(DecoderStats::default()));
        let task = LinkTask {
            port_name: params.port.clone(),
            silent_interval: params.silent_interval,
            decoder: Decoder::new(format),
            stats: stats.clone(),
            commands: commands.downgrade(),
            conns: HashMap::new(),
            opening: HashMap::new(),
            next_send_id: 0,
            last_io: None,
        };
        match kind {
            Kind::Master => {
                tokio::spawn(task.run(port, MasterStation::new(format), command_rx, state_tx));
            }
            Kind::Slave => {
                tokio::spawn(task.run(port, SlaveStation::new(format), command_rx, state_tx));
            }
            Kind::Balanced => {
                tokio::spawn(task.run(port, BalancedStation::new(format), command_rx, state_tx));
            }
        }
        Ok(LinkHandle {
            shared: Arc::new(Shared {
                port: params.port.clone(),
                commands,
                state,
                stats,
                next_conn_id: std::sync::atomic::AtomicU64::new(1),
            }),
        })
    }

    pub(crate) fn port(&self) -> &str {
        &self.shared.port
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.shared.state.borrow().is_some()
    }

    pub(crate) async fn closed(&self) -> CloseReason {
        let mut state = self.shared.state.clone();
        let reason = match state.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone(),
            Err(_) => None,
        };
        reason.unwrap_or_else(|| CloseReason::LinkClosed("the link task ended".into()))
    }

    pub(crate) fn close(&self) {
        let _ = self.shared.commands.send(Command::CloseLink);
    }

    pub(crate) fn stats(&self) -> DecoderStats {
        match self.shared.stats.lock() {
            Ok(stats) => *stats,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    pub(crate) async fn open_connection(
        &self,
        req: ConnRequest,
    ) -> Result<ConnectionHandle, LinkError> {
        let (config, name, send_queue_size, receive_queue_size) = req.parts();
        let conn_id = self
            .shared
            .next_conn_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (reply, opened) = oneshot::channel();
        let command = Command::Open {
            config,
            name,
            conn_id,
            send_queue_size,
            receive_queue_size,
            reply,
        };
        if self.shared.commands.send(command).is_err() {
            return Err(LinkError::Closed(self.closed().await));
        }
        // Dropping this future before the answer cancels the opening.
        struct CancelGuard<'a> {
            commands: &'a mpsc::UnboundedSender<Command>,
            conn_id: u64,
            armed: bool,
        }
        impl Drop for CancelGuard<'_> {
            fn drop(&mut self) {
                if self.armed {
                    let _ = self.commands.send(Command::CancelOpen {
                        conn_id: self.conn_id,
                    });
                }
            }
        }
        let mut guard = CancelGuard {
            commands: &self.shared.commands,
            conn_id,
            armed: true,
        };
        let result = opened.await;
        guard.armed = false;
        match result {
            Ok(result) => result,
            Err(_) => Err(LinkError::Closed(self.closed().await)),
        }
    }
}

/// One connection as the task keeps it.
struct Entry {
    conn_id: u64,
    received: mpsc::Sender<Bytes>,
    state: watch::Sender<Option<CloseReason>>,
    pending: HashMap<SendId, oneshot::Sender<Result<(), LinkError>>>,
}

/// A connection waiting for its Opened event.
struct Opening {
    key: ConnKey,
    entry: Entry,
    parts: HandleParts,
    reply: oneshot::Sender<Result<ConnectionHandle, LinkError>>,
}

struct LinkTask {
    port_name: String,
    silent_interval: std::time::Duration,
    decoder: Decoder,
    stats: Arc<StdMutex<DecoderStats>>,
    /// For the handles built here; weak, so the task does not keep itself alive.
    commands: mpsc::WeakUnboundedSender<Command>,
    conns: HashMap<ConnKey, Entry>,
    /// Keyed by connection key.
    opening: HashMap<ConnKey, Opening>,
    next_send_id: SendId,
    last_io: Option<Instant>,
}

impl LinkTask {
    async fn run<S: Station>(
        mut self,
        mut port: tokio_serial::SerialStream,
        mut station: S,
        mut commands: mpsc::UnboundedReceiver<Command>,
        state: watch::Sender<Option<CloseReason>>,
    ) {
        let mut buf = vec![0u8; READ_CHUNK];
        let reason = 'run: loop {
            while let Some(output) = station.poll_output() {
                match output {
                    StationOutput::Write(octets) => {
                        tracing::trace!(port = %self.port_name, octets = ?&octets[..], "writing");
                        if let Err(reason) = self.write(&mut port, &octets).await {
                            break 'run reason;
                        }
                    }
                    StationOutput::Event(key, event) => {
                        self.on_event(&mut station, key, event).await
                    }
                }
            }
            let timer = station.next_timer(Instant::now());
            tokio::select! {
                read = port.read(&mut buf) => match read {
                    Ok(0) => break 'run self.port_failed("end of file"),
                    Ok(n) => {
                        let now = Instant::now();
                        self.last_io = Some(now);
                        self.decoder.push(&buf[..n]);
                        while let Some(frame) = self.decoder.next_frame() {
                            tracing::trace!(port = %self.port_name, ?frame, "received");
                            station.on_frame(frame, now);
                        }
                        if let Some(dropped) = self.decoder.take_dropped() {
                            tracing::debug!(port = %self.port_name, error = %dropped.error, octets = dropped.octets, "discarded octets on the line");
                        }
                        if let Ok(mut stats) = self.stats.lock() {
                            *stats = self.decoder.stats();
                        }
                    }
                    Err(err) => break 'run self.port_failed(&err.to_string()),
                },
                command = commands.recv() => match command {
                    None | Some(Command::CloseLink) => break 'run CloseReason::Local,
                    Some(command) => self.on_command(&mut station, command),
                },
                () = sleep_until(timer) => station.on_timer(Instant::now()),
            }
        };
        tracing::debug!(port = %self.port_name, %reason, "link closed");
        for (_, opening) in self.opening.drain() {
            let _ = opening.entry.state.send(Some(reason.clone()));
            let _ = opening.reply.send(Err(LinkError::Closed(reason.clone())));
        }
        for (_, entry) in self.conns.drain() {
            let _ = entry.state.send(Some(reason.clone()));
        }
        let _ = state.send(Some(reason));
    }

    fn port_failed(&self, reason: &str) -> CloseReason {
        tracing::warn!(port = %self.port_name, reason, "serial port failed");
        CloseReason::PortFailed {
            port: self.port_name.clone(),
            reason: reason.to_owned(),
        }
    }

    async fn write(
        &mut self,
        port: &mut tokio_serial::SerialStream,
        octets: &[u8],
    ) -> Result<(), CloseReason> {
        if let Some(last) = self.last_io {
            let ready = last + self.silent_interval;
            if ready > Instant::now() {
                tokio::time::sleep_until(ready.into()).await;
            }
        }
        let result = async {
            port.write_all(octets).await?;
            port.flush().await
        }
        .await;
        self.last_io = Some(Instant::now());
        result.map_err(|err| self.port_failed(&err.to_string()))
    }

    fn on_command<S: Station>(&mut self, station: &mut S, command: Command) {
        let now = Instant::now();
        match command {
            Command::Open {
                config,
                name,
                conn_id,
                send_queue_size,
                receive_queue_size,
                reply,
            } => {
                let Some(commands) = self.commands.upgrade() else {
                    return;
                };
                let key = match station.add(config, now) {
                    Ok(key) => key,
                    Err(err) => {
                        let _ = reply.send(Err(station_error(err, self.address_size_hint())));
                        return;
                    }
                };
                let (received_tx, received) = mpsc::channel(receive_queue_size.max(1));
                let (state_tx, state) = watch::channel(None);
                let info = ConnectionInfo {
                    name,
                    port: self.port_name.clone(),
                    address: key.address,
                };
                self.opening.insert(
                    key,
                    Opening {
                        key,
                        entry: Entry {
                            conn_id,
                            received: received_tx,
                            state: state_tx,
                            pending: HashMap::new(),
                        },
                        parts: HandleParts {
                            info,
                            key,
                            conn_id,
                            commands,
                            received,
                            state,
                            send_queue_size,
                        },
                        reply,
                    },
                );
            }
            Command::CancelOpen { conn_id } => {
                if let Some(key) = self
                    .opening
                    .iter()
                    .find(|(_, o)| o.entry.conn_id == conn_id)
                    .map(|(k, _)| *k)
                {
                    self.opening.remove(&key);
                    station.remove(key);
                }
            }
            Command::Close { key, conn_id } => {
                if self.conns.get(&key).is_some_and(|e| e.conn_id == conn_id) {
                    station.remove(key);
                    if let Some(entry) = self.conns.remove(&key) {
                        let _ = entry.state.send(Some(CloseReason::Local));
                    }
                }
            }
            Command::Send {
                key,
                conn_id,
                data,
                with_ack,
                class2,
                reply,
            } => {
                let Some(entry) = self.conns.get_mut(&key).filter(|e| e.conn_id == conn_id) else {
                    let _ = reply.send(Err(LinkError::Closed(CloseReason::Local)));
                    return;
                };
                let id = self.next_send_id;
                self.next_send_id += 1;
                let len = data.len();
                match station.send(key, id, data, with_ack, class2, now) {
                    Ok(()) => {
                        entry.pending.insert(id, reply);
                    }
                    Err(StationError::DataSize { max, .. }) => {
                        let _ = reply.send(Err(LinkError::DataSize { len, max }));
                    }
                    Err(_) => {
                        let _ = reply.send(Err(LinkError::Closed(CloseReason::Local)));
                    }
                }
            }
            Command::CloseLink => {}
        }
    }

    fn address_size_hint(&self) -> AddressSize {
        self.decoder_format().address_size
    }

    fn decoder_format(&self) -> LinkFormat {
        self.decoder.format()
    }

    async fn on_event<S: Station>(&mut self, station: &mut S, key: ConnKey, event: ConnEvent) {
        match event {
            ConnEvent::Opened => {
                let Some(opening) = self.opening.remove(&key) else {
                    return;
                };
                let handle = ConnectionHandle::new(opening.parts);
                self.conns.insert(opening.key, opening.entry);
                // A dropped receiver means the opener went away: the handle's drop closes
                // the connection again.
                let _ = opening.reply.send(Ok(handle));
            }
            ConnEvent::Received(data) => {
                if let Some(entry) = self.conns.get(&key) {
                    // Waits while the reader is behind: the line pauses with it.
                    let _ = entry.received.send(data).await;
                } else if let Some(opening) = self.opening.get(&key) {
                    // Balanced: the remote may send before it answered our reset; keep
                    // the data for the handle to come (nobody reads yet, so no waiting).
                    if opening.entry.received.try_send(data).is_err() {
                        tracing::warn!(port = %self.port_name, address = key.address, "receive queue full before the connection opened: data dropped");
                    }
                }
            }
            ConnEvent::SendDone(id) => self.complete(key, id, Ok(())),
            ConnEvent::SendFailed(id, function) => {
                self.complete(key, id, Err(LinkError::Rejected(function)))
            }
            ConnEvent::SendAborted(id) => {
                if let Some(entry) = self.conns.get_mut(&key) {
                    // Dropped: the sender reads the close reason.
                    entry.pending.remove(&id);
                }
            }
            ConnEvent::Closed(cause) => {
                let reason = match cause {
                    CloseCause::NoResponse { retries } => CloseReason::NoResponse { retries },
                    CloseCause::KeepAliveTimeout => CloseReason::KeepAliveTimeout,
                };
                tracing::info!(port = %self.port_name, address = key.address, %reason, "link connection closed");
                station.remove(key);
                if let Some(entry) = self.conns.remove(&key) {
                    let _ = entry.state.send(Some(reason));
                }
            }
        }
    }

    fn complete(&mut self, key: ConnKey, id: SendId, result: Result<(), LinkError>) {
        if let Some(reply) = self.conns.get_mut(&key).and_then(|e| e.pending.remove(&id)) {
            let _ = reply.send(result);
        }
    }
}

fn station_error(err: StationError, size: AddressSize) -> LinkError {
    match err {
        StationError::InvalidAddress(address) => LinkError::InvalidAddress { address, size },
        StationError::Exists(key) => LinkError::AddressInUse(key.address),
        StationError::DataSize { len, max } => LinkError::DataSize { len, max },
        StationError::Unknown(_) | StationError::Mismatch => {
            LinkError::Unsupported(err.to_string())
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}
