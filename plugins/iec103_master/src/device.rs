//! The IEC 103 master device (hat-gateway's `Iec103MasterDevice`): the link loop on the
//! serial port, a connection loop per enabled remote device, the receive loop
//! registering data, commands and general interrogations waiting for their answers,
//! and clock synchronisation. Independent of the plugin SDK: it registers through
//! [`EventClient`] and takes events through [`MasterDevice::process_event`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use futures::FutureExt as _;
use gateway_model::{Event, EventClient, EventType, RegisterEvent, Timestamp};
use iec60870::iec103::{
    self, Asdu, AsduType, Cause, DoubleValue, Iec103Error, Io, IoAddress, IoElement, KnownCause,
    BROADCAST_ASDU_ADDRESS, GENERAL_INTERROGATION_OR_TIME_SYNCHRONIZATION, GLOBAL_FUNCTION_TYPE,
};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::{secs, ConfigError, MasterConfig, RemoteDeviceConfig};
use crate::events::{
    enabled_from_query, parse_request, received, status_event, EventTypes, Received, SystemRequest,
};
use crate::link::{Conn, Link, LinkError, LinkOpener};

/// Why a device could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateError {
    /// The configuration was rejected.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// A 103 session on one remote device's link connection (hat's
/// `iec103.MasterConnection`): the answers commands and interrogations wait for.
struct Session {
    conn: Arc<dyn Conn>,
    /// Return identifiers and scan numbers, one counter (hat's `_next_req_ids`).
    next_id: AtomicU8,
    command_lock: tokio::sync::Mutex<()>,
    interrogate_lock: tokio::sync::Mutex<()>,
    pending_command: Mutex<Option<(u8, oneshot::Sender<bool>)>>,
    pending_interrogation: Mutex<Option<(u8, oneshot::Sender<()>)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means a panic elsewhere while holding it; the value is
    // still valid.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why a command or an interrogation got no answer.
#[derive(Debug, thiserror::Error)]
enum RequestFailure {
    #[error("connection closed")]
    Closed,
    #[error("{0}")]
    Encode(#[from] Iec103Error),
    #[error("{0}")]
    Link(#[from] LinkError),
}

impl Session {
    fn new(conn: Arc<dyn Conn>) -> Session {
        Session {
            conn,
            next_id: AtomicU8::new(0),
            command_lock: tokio::sync::Mutex::new(()),
            interrogate_lock: tokio::sync::Mutex::new(()),
            pending_command: Mutex::new(None),
            pending_interrogation: Mutex::new(None),
        }
    }

    fn next_id(&self) -> u8 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    async fn send(&self, asdu: &Asdu) -> Result<(), RequestFailure> {
        let bytes = iec103::encode(asdu)?;
        self.conn.send(bytes).await?;
        Ok(())
    }

    /// hat's `send_command`: true on a positive answer, false on a negative one.
    async fn command(
        &self,
        asdu_address: u8,
        io: IoAddress,
        value: DoubleValue,
    ) -> Result<bool, RequestFailure> {
        let _one_at_a_time = self.command_lock.lock().await;
        let return_identifier = self.next_id();
        let (tx, rx) = oneshot::channel();
        *lock(&self.pending_command) = Some((return_identifier, tx));
        let asdu = Asdu {
            asdu_type: AsduType::GeneralCommand,
            cause: Cause::Known(KnownCause::GeneralCommand),
            address: asdu_address,
            ios: vec![Io {
                address: io,
                elements: vec![IoElement::GeneralCommand {
                    value,
                    return_identifier,
                }],
            }],
        };
        let result = match self.send(&asdu).await {
            Ok(()) => rx.await.map_err(|_| RequestFailure::Closed),
            Err(err) => Err(err),
        };
        lock(&self.pending_command).take();
        result
    }

    /// hat's `interrogate`: resolves at the termination with the scan number sent.
    async fn interrogate(&self, asdu_address: u8) -> Result<(), RequestFailure> {
        let _one_at_a_time = self.interrogate_lock.lock().await;
        let scan_number = self.next_id();
        let (tx, rx) = oneshot::channel();
        *lock(&self.pending_interrogation) = Some((scan_number, tx));
        let asdu = Asdu {
            asdu_type: AsduType::GeneralInterrogation,
            cause: Cause::Known(KnownCause::GeneralInterrogation),
            address: asdu_address,
            ios: vec![Io {
                address: IoAddress {
                    function_type: GLOBAL_FUNCTION_TYPE,
                    information_number: GENERAL_INTERROGATION_OR_TIME_SYNCHRONIZATION,
                },
                elements: vec![IoElement::GeneralInterrogation(scan_number)],
            }],
        };
        let result = match self.send(&asdu).await {
            Ok(()) => rx.await.map_err(|_| RequestFailure::Closed),
            Err(err) => Err(err),
        };
        lock(&self.pending_interrogation).take();
        result
    }

    /// hat's `time_sync`: the current time to the broadcast ASDU address.
    async fn time_sync(&self) -> Result<(), RequestFailure> {
        let asdu = Asdu {
            asdu_type: AsduType::TimeSynchronization,
            cause: Cause::Known(KnownCause::TimeSynchronization),
            address: BROADCAST_ASDU_ADDRESS,
            ios: vec![Io {
                address: IoAddress {
                    function_type: GLOBAL_FUNCTION_TYPE,
                    information_number: GENERAL_INTERROGATION_OR_TIME_SYNCHRONIZATION,
                },
                elements: vec![IoElement::TimeSynchronization(iec_common::time::time_now())],
            }],
        };
        self.send(&asdu).await
    }

    fn command_reply(&self, return_identifier: u8, success: bool) {
        let mut pending = lock(&self.pending_command);
        if pending
            .as_ref()
            .is_some_and(|(id, _)| *id == return_identifier)
        {
            if let Some((_, tx)) = pending.take() {
                let _ = tx.send(success);
            }
        }
    }

    fn interrogation_end(&self, scan_number: u8) {
        let mut pending = lock(&self.pending_interrogation);
        if pending.as_ref().is_some_and(|(id, _)| *id == scan_number) {
            if let Some((_, tx)) = pending.take() {
                let _ = tx.send(());
            }
        }
    }

    /// Drops what waits for answers (their callers see the connection closed).
    fn fail_pending(&self) {
        lock(&self.pending_command).take();
        lock(&self.pending_interrogation).take();
    }
}

/// One enabled remote device's running loop.
struct Remote {
    cancel: CancellationToken,
    /// Cancelled once the loop has ended and registered `DISCONNECTED`.
    done: CancellationToken,
    session: Option<Arc<Session>>,
}

struct State {
    link: Option<Arc<dyn Link>>,
    enabled: HashMap<u16, bool>,
    remotes: HashMap<u16, Remote>,
}

struct Shared {
    config: MasterConfig,
    types: EventTypes,
    client: Arc<dyn EventClient>,
    opener: Arc<dyn LinkOpener>,
    state: Mutex<State>,
    /// Cancelled when the device closes; every task is a child of it.
    cancel: CancellationToken,
    tasks: Tracker,
}

/// The device's tasks: each holds a sender clone; closing drops the original and
/// waiting ends once every task has dropped its clone.
struct Tracker {
    sender: Mutex<Option<tokio::sync::mpsc::Sender<()>>>,
    receiver: tokio::sync::Mutex<tokio::sync::mpsc::Receiver<()>>,
}

impl Tracker {
    fn new() -> Tracker {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        Tracker {
            sender: Mutex::new(Some(tx)),
            receiver: tokio::sync::Mutex::new(rx),
        }
    }

    /// Spawns `task` unless the tracker is closed.
    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let Some(token) = lock(&self.sender).clone() else {
            return;
        };
        tokio::spawn(async move {
            let _token = token;
            task.await;
        });
    }

    fn close(&self) {
        lock(&self.sender).take();
    }

    async fn wait(&self) {
        let mut rx = self.receiver.lock().await;
        while rx.recv().await.is_some() {}
    }
}

impl Shared {
    async fn register(&self, events: Vec<RegisterEvent>) {
        if events.is_empty() {
            return;
        }
        if let Err(err) = self.client.register(events).await {
            tracing::warn!(error = %err, "registering events failed");
        }
    }

    fn remote_config(&self, address: u16) -> Option<&RemoteDeviceConfig> {
        self.config
            .remote_devices
            .iter()
            .find(|r| r.address == address)
    }
}

/// A running IEC 103 master device.
pub struct MasterDevice {
    shared: Arc<Shared>,
    finished: CancellationToken,
}

impl std::fmt::Debug for MasterDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The shared state holds the event client and the link opener (trait objects).
        f.debug_struct("MasterDevice")
            .field("config", &self.shared.config)
            .field("finished", &self.finished.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl MasterDevice {
    /// Validates `conf` (the whole device entry), queries the latest enable events of
    /// the remote devices (hat's start-up query) and starts the device; must be called
    /// inside a tokio runtime.
    pub async fn create(
        conf: &Value,
        prefix: EventType,
        client: Arc<dyn EventClient>,
        opener: Arc<dyn LinkOpener>,
    ) -> Result<Self, CreateError> {
        let config = MasterConfig::from_json(conf)?;
        let types = EventTypes::new(prefix);
        let enabled: HashMap<u16, bool> = config
            .remote_devices
            .iter()
            .map(|r| (r.address, false))
            .collect();
        let query = types.enable_queries(config.remote_devices.iter().map(|r| r.address));
        let initial = match iec_common::client::query_latest(client.as_ref(), query).await {
            Ok(events) => enabled_from_query(&types, &events),
            Err(err) => {
                tracing::warn!(error = %err, "enable query failed; remote devices start disabled");
                Vec::new()
            }
        };
        let span = tracing::info_span!("iec103_master", device = %config.name);
        let shared = Arc::new(Shared {
            config,
            types,
            client,
            opener,
            state: Mutex::new(State {
                link: None,
                enabled,
                remotes: HashMap::new(),
            }),
            cancel: CancellationToken::new(),
            tasks: Tracker::new(),
        });
        for (address, enable) in initial {
            set_enabled(&shared, address, enable);
        }
        let finished = CancellationToken::new();
        let guard = finished.clone().drop_guard();
        let task_shared = shared.clone();
        tokio::spawn(
            async move {
                // Marks the device finished however the task ends (also on panic).
                let _guard = guard;
                link_loop(&task_shared).await;
                task_shared.tasks.close();
                task_shared.tasks.wait().await;
                task_shared
                    .register(vec![status_event(
                        task_shared.types.status(),
                        "DISCONNECTED",
                    )])
                    .await;
            }
            .instrument(span),
        );
        Ok(MasterDevice { shared, finished })
    }

    /// Acts on a `system/...` event. One with a bad type or payload, for an unknown
    /// remote device, or a command or interrogation while that device is not connected,
    /// is logged and ignored (hat's behaviour).
    pub async fn process_event(&self, event: Event) {
        let request = match parse_request(&self.shared.types, &event) {
            Ok(request) => request,
            Err(err) => {
                tracing::warn!(event_type = ?event.event_type, error = %err, "error processing event");
                return;
            }
        };
        match request {
            SystemRequest::Enable { address, enable } => {
                if !set_enabled(&self.shared, address, enable) {
                    tracing::warn!(
                        address,
                        "error processing event: invalid remote device address"
                    );
                }
            }
            SystemRequest::Command {
                address,
                asdu,
                io,
                value,
                session_id,
            } => {
                let Some((session, cancel)) = session_of(&self.shared, address) else {
                    tracing::warn!(address, "error processing event: connection closed");
                    return;
                };
                let shared = self.shared.clone();
                self.shared.tasks.spawn(async move {
                    tokio::select! {
                        _ = cancel.cancelled() => {}
                        () = command(&shared, &session, address, asdu, io, value, session_id) => {}
                    }
                });
            }
            SystemRequest::Interrogation { address, asdu } => {
                let Some((session, cancel)) = session_of(&self.shared, address) else {
                    tracing::warn!(address, "interrogation ignored: connection closed");
                    return;
                };
                let shared = self.shared.clone();
                self.shared.tasks.spawn(async move {
                    tokio::select! {
                        _ = cancel.cancelled() => {}
                        () = interrogate(&shared, &session, address, asdu) => {}
                    }
                });
            }
        }
    }

    /// Closes the device and waits until it is closed (port closed, every status
    /// `DISCONNECTED` registered). Idempotent.
    pub async fn close(&self) {
        self.shared.cancel.cancel();
        self.finished.cancelled().await;
    }

    /// Resolves when the device has ended.
    pub async fn closed(&self) {
        self.finished.cancelled().await;
    }
}

impl Drop for MasterDevice {
    /// A device dropped without [`MasterDevice::close`] still stops its tasks (and
    /// closes the port); only the waiting is skipped.
    fn drop(&mut self) {
        self.shared.cancel.cancel();
    }
}

fn session_of(shared: &Shared, address: u16) -> Option<(Arc<Session>, CancellationToken)> {
    let state = lock(&shared.state);
    let remote = state.remotes.get(&address)?;
    Some((remote.session.clone()?, remote.cancel.clone()))
}

async fn command(
    shared: &Shared,
    session: &Session,
    address: u16,
    asdu: u8,
    io: IoAddress,
    value: DoubleValue,
    session_id: Value,
) {
    let timeout = shared.config.command_timeout();
    match tokio::time::timeout(timeout, session.command(asdu, io, value)).await {
        Ok(Ok(success)) => {
            let event = RegisterEvent::json(
                shared.types.command(address, asdu, io),
                json!({"success": success, "session_id": session_id}),
            );
            shared.register(vec![event]).await;
        }
        Ok(Err(err)) => {
            tracing::warn!(address, asdu, ?io, ?value, error = %err, "command failed");
        }
        Err(_) => tracing::warn!(address, asdu, ?io, ?value, "command timeout"),
    }
}

async fn interrogate(shared: &Shared, session: &Session, address: u16, asdu: u8) {
    let timeout = shared.config.interrogate_timeout();
    match tokio::time::timeout(timeout, session.interrogate(asdu)).await {
        Ok(Ok(())) => {
            // hat registers `EventPayloadJson(None)`: a JSON null payload.
            let event = RegisterEvent::json(shared.types.interrogation(address, asdu), Value::Null);
            shared.register(vec![event]).await;
        }
        Ok(Err(err)) => tracing::warn!(address, asdu, error = %err, "interrogation failed"),
        Err(_) => tracing::warn!(address, asdu, "interrogation timeout"),
    }
}

/// Records the enable state and, while the link is open, starts or stops the remote
/// device's loop. False for an address not configured.
fn set_enabled(shared: &Arc<Shared>, address: u16, enable: bool) -> bool {
    let mut state = lock(&shared.state);
    let Some(slot) = state.enabled.get_mut(&address) else {
        return false;
    };
    *slot = enable;
    if state.link.is_none() {
        return true;
    }
    if enable {
        start_remote(shared, &mut state, address);
    } else if let Some(remote) = state.remotes.remove(&address) {
        remote.cancel.cancel();
    }
    true
}

fn start_remote(shared: &Arc<Shared>, state: &mut State, address: u16) {
    if state.remotes.contains_key(&address) {
        return;
    }
    let Some(link) = state.link.clone() else {
        return;
    };
    let cancel = shared.cancel.child_token();
    let done = CancellationToken::new();
    state.remotes.insert(
        address,
        Remote {
            cancel: cancel.clone(),
            done: done.clone(),
            session: None,
        },
    );
    let shared_task = shared.clone();
    let span = tracing::info_span!("remote_device", address);
    shared.tasks.spawn(
        async move {
            let _done = done.drop_guard();
            connection_loop(&shared_task, &link, address, &cancel).await;
            shared_task
                .register(vec![status_event(
                    shared_task.types.remote_status(address),
                    "DISCONNECTED",
                )])
                .await;
        }
        .instrument(span),
    );
}

/// hat's `_create_link_master_loop`: opens the port, runs the enabled remote devices
/// while it is open, reopens it after `reconnect_delay` when it fails.
async fn link_loop(shared: &Arc<Shared>) {
    let status = |s: &'static str| status_event(shared.types.status(), s);
    loop {
        shared.register(vec![status("CONNECTING")]).await;
        let opened = tokio::select! {
            _ = shared.cancel.cancelled() => return,
            opened = shared.opener.open(&shared.config) => opened,
        };
        let link = match opened {
            Ok(link) => link,
            Err(err) => {
                tracing::warn!(error = %err, "link master failed to open");
                shared.register(vec![status("DISCONNECTED")]).await;
                tokio::select! {
                    _ = shared.cancel.cancelled() => return,
                    () = tokio::time::sleep(secs(shared.config.reconnect_delay)) => continue,
                }
            }
        };
        {
            let mut state = lock(&shared.state);
            state.link = Some(link.clone());
        }
        shared.register(vec![status("CONNECTED")]).await;
        {
            let mut state = lock(&shared.state);
            let enabled: Vec<u16> = state
                .enabled
                .iter()
                .filter(|(_, e)| **e)
                .map(|(a, _)| *a)
                .collect();
            for address in enabled {
                start_remote(shared, &mut state, address);
            }
        }
        let cancelled = tokio::select! {
            _ = shared.cancel.cancelled() => true,
            () = link.closed() => false,
        };
        // The remote devices end with the link (each registers DISCONNECTED); enabled
        // ones start again when it is open again.
        let ended: Vec<CancellationToken> = {
            let mut state = lock(&shared.state);
            state.link = None;
            state
                .remotes
                .drain()
                .map(|(_, remote)| {
                    remote.cancel.cancel();
                    remote.done
                })
                .collect()
        };
        link.close();
        for done in ended {
            done.cancelled().await;
        }
        if cancelled {
            return;
        }
        tracing::warn!("link closed");
        shared.register(vec![status("DISCONNECTED")]).await;
        tokio::select! {
            _ = shared.cancel.cancelled() => return,
            () = tokio::time::sleep(secs(shared.config.reconnect_delay)) => {}
        }
    }
}

/// hat's `_connection_loop`: opens the connection to one remote device, runs it until
/// it closes, opens it again (after `reconnect_delay` when opening failed).
async fn connection_loop(
    shared: &Arc<Shared>,
    link: &Arc<dyn Link>,
    address: u16,
    cancel: &CancellationToken,
) {
    let Some(remote) = shared.remote_config(address).cloned() else {
        return;
    };
    let status = |s: &'static str| status_event(shared.types.remote_status(address), s);
    loop {
        shared.register(vec![status("CONNECTING")]).await;
        let opened = tokio::select! {
            _ = cancel.cancelled() => return,
            opened = link.open_connection(&remote, &shared.config) => opened,
        };
        let conn = match opened {
            Ok(conn) => conn,
            // The link loop ends this loop (and registers DISCONNECTED) once the link
            // has closed.
            Err(_) if link_closed(link) => return,
            Err(err) => {
                tracing::error!(error = %err, "connection error");
                shared.register(vec![status("DISCONNECTED")]).await;
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    () = tokio::time::sleep(secs(remote.reconnect_delay)) => continue,
                }
            }
        };
        let session = Arc::new(Session::new(conn.clone()));
        // Before CONNECTED is registered, so a command reacting to it finds the session.
        if let Some(r) = lock(&shared.state).remotes.get_mut(&address) {
            r.session = Some(session.clone());
        }
        shared.register(vec![status("CONNECTED")]).await;
        let cancelled = tokio::select! {
            _ = cancel.cancelled() => true,
            () = receive_loop(shared, address, &session) => false,
            () = time_sync_loop(&session, remote.time_sync_delay) => false,
        };
        if let Some(r) = lock(&shared.state).remotes.get_mut(&address) {
            r.session = None;
        }
        session.fail_pending();
        conn.close();
        if cancelled || link_closed(link) {
            return;
        }
        shared.register(vec![status("DISCONNECTED")]).await;
    }
}

fn link_closed(link: &Arc<dyn Link>) -> bool {
    link.closed().now_or_never().is_some()
}

/// Registers what the remote device sends and hands answers to the waiting requests,
/// until the connection closes or an ASDU is malformed (an unknown type is skipped,
/// as hat does).
async fn receive_loop(shared: &Shared, address: u16, session: &Session) {
    while let Some(bytes) = session.conn.receive().await {
        let asdu = match iec103::decode_with_rest(&bytes) {
            Ok((asdu, rest)) => {
                if !rest.is_empty() {
                    // hat's master ignores them too.
                    tracing::warn!(count = rest.len(), "octets after the last object ignored");
                }
                asdu
            }
            Err(err @ Iec103Error::UnknownType { .. }) => {
                tracing::warn!(error = %err, "asdu type error");
                continue;
            }
            Err(err) => {
                tracing::error!(error = %err, "malformed ASDU; closing the connection");
                return;
            }
        };
        let items = match received(&shared.types, address, &asdu, Timestamp::now()) {
            Ok(items) => items,
            Err(err) => {
                tracing::error!(error = %err, "receive loop error; closing the connection");
                return;
            }
        };
        let mut events = Vec::new();
        for item in items {
            match item {
                Received::Event(event) => events.push(event),
                Received::CommandReply {
                    return_identifier,
                    success,
                } => session.command_reply(return_identifier, success),
                Received::InterrogationEnd { scan_number } => {
                    session.interrogation_end(scan_number)
                }
                Received::Skipped(reason) => {
                    tracing::warn!(?asdu, reason, "data ignored");
                }
            }
        }
        shared.register(events).await;
    }
    tracing::debug!("connection closed");
}

/// Sends a clock synchronisation every `delay` (never returns without a delay);
/// returns when sending fails.
async fn time_sync_loop(session: &Session, delay: Option<f64>) {
    let Some(delay) = delay else {
        return std::future::pending().await;
    };
    loop {
        if let Err(err) = session.time_sync().await {
            tracing::debug!(error = %err, "time sync loop ends");
            return;
        }
        tracing::debug!("time sync");
        tokio::time::sleep(secs(delay)).await;
    }
}
