//! The thin tokio shell: a task owns the chatter connection to the local Monitor Server
//! and [`MonitorComponent`] pumps its messages through the [`Component`] state machine.
//!
//! The connection task numbers every message it sends from 1 upwards, answers every
//! `HatChatter.Ping` with a `HatChatter.Pong`, sends its own Ping after `ping_delay`
//! without receiving anything and ends the connection when nothing arrives within
//! `ping_timeout` after that (hat's chatter defaults, 20 s and 20 s). Any failure (socket
//! error, bad frame, a message that does not decode, an unsupported type) ends the
//! connection with a reason; `HatObserver.MsgClose` ends it too.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use gateway_eventer::chatter::{FrameCodec, Msg, MsgHeader, DEFAULT_MAX_FRAME_SIZE};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use crate::component::{Action, Component};
use crate::message::{MsgClient, ServerMsg, MSG_CLIENT_TYPE};

/// Default time without receiving anything before a Ping is sent (hat's 20 s).
pub const DEFAULT_PING_DELAY: Duration = Duration::from_secs(20);
/// Default time to wait for any message after our Ping (hat's 20 s).
pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(20);
/// Default time a TCP connect to the Monitor Server may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Received server messages waiting for [`MonitorComponent::next`]; when full, the
/// connection task stops reading the socket until the owner catches up.
pub const INBOUND_CAPACITY: usize = 64;
/// Our messages waiting for the connection task. Each is produced by one received
/// message or one owner call, and the task stops reading while it cannot write, so
/// this fills only when the server stops reading; that ends the connection.
pub const OUTBOUND_CAPACITY: usize = 256;

/// Connection settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorConfig {
    /// Time without receiving anything before we send a Ping; `None` disables ours
    /// (the server's are still answered).
    pub ping_delay: Option<Duration>,
    /// Time to wait for any message after our Ping before ending the connection.
    pub ping_timeout: Duration,
    /// Largest frame body accepted from the server, in bytes.
    pub max_frame_size: usize,
    /// Time the TCP connect may take.
    pub connect_timeout: Duration,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            ping_delay: Some(DEFAULT_PING_DELAY),
            ping_timeout: DEFAULT_PING_TIMEOUT,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

/// Why the monitor connection could not be made or ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MonitorError {
    /// The TCP connect failed or timed out.
    #[error("cannot connect to the monitor server: {0}")]
    Connect(String),
    /// The server sent `HatObserver.MsgClose`.
    #[error("the monitor server closed the connection (MsgClose)")]
    CloseRequested,
    /// The connection was lost or ended on bad input.
    #[error("monitor connection lost: {0}")]
    Lost(String),
}

/// What the owner of a [`MonitorComponent`] is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentEvent {
    /// The component list (or this component's entry) changed; read it with
    /// [`MonitorComponent::component`].
    StateChanged,
    /// Became active: start working.
    Start,
    /// No longer active: stop working, then call [`MonitorComponent::runner_stopped`].
    Stop,
}

/// A monitor component connected to its Monitor Server.
#[derive(Debug)]
pub struct MonitorComponent {
    component: Component,
    outbound: mpsc::Sender<MsgClient>,
    inbound: mpsc::Receiver<Result<ServerMsg, MonitorError>>,
    events: VecDeque<ComponentEvent>,
    failed: Option<MonitorError>,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl MonitorComponent {
    /// Connects to the Monitor Server at `addr` as component `name` in `group` with
    /// `data` (JSON text), not ready yet (see [`MonitorComponent::set_ready`]).
    pub async fn connect<A: ToSocketAddrs>(
        addr: A,
        name: &str,
        group: &str,
        data: &str,
        config: MonitorConfig,
    ) -> Result<Self, MonitorError> {
        let stream = tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| {
                MonitorError::Connect(format!("timed out after {:?}", config.connect_timeout))
            })?
            .map_err(|e| MonitorError::Connect(e.to_string()))?;
        // Best effort: small messages should not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let (outbound_tx, outbound_rx) = mpsc::channel(OUTBOUND_CAPACITY);
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_CAPACITY);
        let cancel = CancellationToken::new();
        let framed = Framed::new(stream, FrameCodec::new(config.max_frame_size));
        let task = tokio::spawn(connection_task(
            framed,
            config,
            outbound_rx,
            inbound_tx,
            cancel.clone(),
        ));
        let (component, actions) = Component::new(name, group, data);
        let mut this = Self {
            component,
            outbound: outbound_tx,
            inbound: inbound_rx,
            events: VecDeque::new(),
            failed: None,
            cancel,
            task: Some(task),
        };
        this.apply(actions);
        Ok(this)
    }

    /// The state machine (own entry, component list, phase).
    pub fn component(&self) -> &Component {
        &self.component
    }

    /// Declares the component ready or not.
    pub fn set_ready(&mut self, ready: bool) {
        let actions = self.component.set_ready(ready);
        self.apply(actions);
    }

    /// The owner has stopped working after [`ComponentEvent::Stop`].
    pub fn runner_stopped(&mut self) {
        let actions = self.component.runner_stopped();
        self.apply(actions);
    }

    /// The next event; an error once the connection has ended (for good). Cancel
    /// safe: a message taken from the connection is processed before any await.
    pub async fn next(&mut self) -> Result<ComponentEvent, MonitorError> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Ok(event);
            }
            if let Some(err) = &self.failed {
                return Err(err.clone());
            }
            let msg = match self.inbound.recv().await {
                Some(Ok(msg)) => msg,
                Some(Err(err)) => {
                    self.failed = Some(err.clone());
                    return Err(err);
                }
                None => {
                    let err = MonitorError::Lost("connection task ended".into());
                    self.failed = Some(err.clone());
                    return Err(err);
                }
            };
            match msg {
                ServerMsg::Close => {
                    self.failed = Some(MonitorError::CloseRequested);
                }
                ServerMsg::Server(msg) => {
                    let (changed, actions) = self.component.on_server(msg);
                    if changed {
                        self.events.push_back(ComponentEvent::StateChanged);
                    }
                    self.apply(actions);
                }
            }
        }
    }

    /// Ends the connection and waits for its task.
    pub async fn close(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    fn apply(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send(msg) => {
                    if self.outbound.try_send(msg).is_err() && self.failed.is_none() {
                        self.failed = Some(MonitorError::Lost(
                            "the monitor server does not read our messages \
                             (outbound queue full or connection ended)"
                                .into(),
                        ));
                    }
                }
                Action::Start => self.events.push_back(ComponentEvent::Start),
                Action::Stop => self.events.push_back(ComponentEvent::Stop),
            }
        }
    }
}

impl Drop for MonitorComponent {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn connection_task(
    mut framed: Framed<TcpStream, FrameCodec>,
    config: MonitorConfig,
    mut outbound: mpsc::Receiver<MsgClient>,
    inbound: mpsc::Sender<Result<ServerMsg, MonitorError>>,
    cancel: CancellationToken,
) {
    let mut next_id: i64 = 1;
    let mut id = || {
        let id = next_id;
        next_id += 1;
        id
    };
    // When nothing received: Ping due (false) or give up (true).
    let mut deadline = config
        .ping_delay
        .map(|d| (tokio::time::Instant::now() + d, false));
    let end: Option<MonitorError> = loop {
        let keepalive = async {
            match deadline {
                Some((at, _)) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = cancel.cancelled() => break None,
            msg = outbound.recv() => {
                let Some(msg) = msg else { break None };
                let frame = Msg::new(
                    MsgHeader::new_conversation(id(), true),
                    MSG_CLIENT_TYPE,
                    Bytes::from(msg.to_bytes()),
                );
                if let Err(err) = framed.send(&frame).await {
                    break Some(MonitorError::Lost(err.to_string()));
                }
            }
            frame = framed.next() => {
                let frame = match frame {
                    None => break Some(MonitorError::Lost("closed by the server".into())),
                    Some(Err(err)) => break Some(MonitorError::Lost(err.to_string())),
                    Some(Ok(frame)) => frame,
                };
                deadline = config
                    .ping_delay
                    .map(|d| (tokio::time::Instant::now() + d, false));
                if frame.is_ping() {
                    if let Err(err) = framed.send(&Msg::pong(id(), frame.id)).await {
                        break Some(MonitorError::Lost(err.to_string()));
                    }
                    continue;
                }
                if frame.is_pong() {
                    continue;
                }
                match ServerMsg::decode(&frame.data_type, &frame.data) {
                    Ok(ServerMsg::Close) => {
                        let _ = inbound.send(Ok(ServerMsg::Close)).await;
                        break None;
                    }
                    Ok(msg) => {
                        // The owner stopped listening: nothing left to do.
                        if inbound.send(Ok(msg)).await.is_err() {
                            break None;
                        }
                    }
                    Err(err) => break Some(MonitorError::Lost(err.to_string())),
                }
            }
            () = keepalive => match deadline {
                Some((_, false)) => {
                    if let Err(err) = framed.send(&Msg::ping(id())).await {
                        break Some(MonitorError::Lost(err.to_string()));
                    }
                    deadline = Some((tokio::time::Instant::now() + config.ping_timeout, true));
                }
                _ => break Some(MonitorError::Lost(format!(
                    "no message within {:?} after our ping",
                    config.ping_timeout
                ))),
            },
        }
    };
    if let Some(err) = end {
        let _ = inbound.send(Err(err)).await;
    }
    let _ = framed.close().await;
}
