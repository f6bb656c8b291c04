//! The embedded server's persistent store: every event in a redb file
//! (`event_server.embedded.db_path`), written by one writer thread with group commit.
//!
//! The in-memory [`EventStore`](super::EventStore) stays the query index (the same
//! semantics with or without a file); the file is what survives a restart or a crash:
//!
//! * `events`: `(session, instance)` -> the event (type, timestamps, payload);
//! * `latest`: the type -> the id of its latest event (kept past retention);
//! * `meta`: the server id, the last session given out, the retention floor.
//!
//! A register request is given its ids under the server's lock and queued to the
//! writer in id order; the writer takes every request queued meanwhile into one write
//! transaction, commits it with `fsync` (one for many requests), and only then are
//! the events put into the index, notified and the requests answered. A failed commit
//! answers its requests with failure and the process goes on. Retention: the index
//! forgets events past the limits at once; the writer deletes them from the file in
//! chunks, in the same transactions as new events or on its idle tick.

use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use gateway_model::{Event, EventId, Payload, Timestamp};
use redb::{Database, Durability, ReadableTable, TableDefinition};

use super::store::EventStore;

const EVENTS: TableDefinition<(i64, i64), &[u8]> = TableDefinition::new("events");
const LATEST: TableDefinition<&[u8], (i64, i64)> = TableDefinition::new("latest");
const META: TableDefinition<&str, i64> = TableDefinition::new("meta");

/// File format version of the tables above (`meta.format`).
const FORMAT: i64 = 1;

/// Pages redb caches in memory, in bytes (redb's own default is 1 GiB).
pub const DB_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Events the writer puts in one transaction at most (more wait for the next one).
pub const MAX_GROUP_EVENTS: usize = 65_536;

/// Events deleted from the file by retention in one transaction at most.
pub const RETENTION_CHUNK: usize = 16_384;

/// redb's quick repair on every commit (saves the allocator state each time, so an
/// open after a crash reads no more than the last commit). Off: it made every commit
/// 2.3x slower (the durable burst of `gateway-bench --only store`: 30,138 -> 68,870
/// events/s), while an open after a crash, which then walks the whole file, took 8.5
/// instead of 5.5 s for a 135 MB file of 722,558 events (the index load is most of
/// it). Durability is the same either way (every commit is fsynced).
pub const QUICK_REPAIR: bool = false;

/// How often an idle writer applies the age limit and deletes what retention forgot.
pub const RETENTION_PERIOD: Duration = Duration::from_secs(1);

/// Why the file cannot be opened. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Another process holds the file's lock.
    #[error("event store {path}: locked by another process{holder} (is another gateway-host using this db_path?)")]
    Locked {
        /// The file.
        path: PathBuf,
        /// `" (pid N: command)"` when `/proc/locks` names it, else empty.
        holder: String,
    },
    /// The file is not a readable event store.
    #[error("event store {path}: corrupt or not an event store file: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file or its directory cannot be created, opened or written.
    #[error("event store {path}: {reason}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The system's reason.
        reason: String,
    },
}

/// One register request on its way to the file.
pub(crate) struct Job {
    /// The events with their ids.
    pub(crate) events: Vec<Event>,
    /// Its new types, counted against `max_event_types` until the commit is done.
    pub(crate) reserved: Vec<gateway_model::EventType>,
    /// Told the outcome once the commit is done (under the server's lock, in order).
    pub(crate) reply: super::Reply,
}

/// What the writer asks of the embedded server.
pub(crate) trait Host: Send + Sync + 'static {
    /// A commit is done: `ok` for every job of it, in order.
    fn committed(&self, jobs: Vec<Job>, ok: bool);
    /// Applies the age limit to the index and returns its oldest retained id (the
    /// file's retention floor), `None` when the history is empty.
    fn retention_floor(&self) -> Option<EventId>;
}

/// The writer thread's handle; dropping it lets the thread finish its queue, close
/// the file (releasing the lock) and end, and waits for that.
pub(crate) struct Writer {
    queue: Option<std_mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    path: PathBuf,
    #[cfg(test)]
    pub(crate) fail_commits: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("path", &self.path).finish()
    }
}

impl Writer {
    /// Queues a job (called under the server's lock, which fixes the order). False:
    /// the writer is gone.
    pub(crate) fn submit(&self, job: Job) -> Result<(), Job> {
        match &self.queue {
            Some(queue) => queue.send(job).map_err(|e| e.0),
            None => Err(job),
        }
    }

    /// The file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.queue = None;
        if let Some(thread) = self.thread.take() {
            // The thread only ends its loop and drops the file; a panic there was
            // already reported by the panic hook.
            let _ = thread.join();
        }
    }
}

/// An open file, read back into `store` (the history from the retention floor, the
/// latest event of every type, the session counter).
pub(crate) struct Opened {
    db: Database,
    path: PathBuf,
    floor: EventId,
    last_session: i64,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened").field("path", &self.path).finish()
    }
}

/// Opens (creating it and its directory if needed) the event store file at `path`
/// and loads it into `store`.
pub(crate) fn open(path: &Path, store: &mut EventStore) -> Result<Opened, OpenError> {
    let io = |reason: String| OpenError::Io {
        path: path.to_owned(),
        reason,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            io(format!(
                "cannot create the directory {}: {e}",
                dir.display()
            ))
        })?;
    }
    if path.is_dir() {
        return Err(io("is a directory".to_owned()));
    }
    let db = Database::builder()
        .set_cache_size(DB_CACHE_BYTES)
        .create(path)
        .map_err(|err| open_error(path, err))?;
    let floor = load(&db, store).map_err(|reason| OpenError::Corrupt {
        path: path.to_owned(),
        reason,
    })?;
    // A first write checks the file is writable now, not at the first register.
    write_meta(&db, store.session(), floor).map_err(|err| io(format!("cannot write: {err}")))?;
    Ok(Opened {
        db,
        path: path.to_owned(),
        floor,
        last_session: store.session(),
    })
}

fn open_error(path: &Path, err: redb::DatabaseError) -> OpenError {
    match err {
        redb::DatabaseError::DatabaseAlreadyOpen => OpenError::Locked {
            path: path.to_owned(),
            holder: lock_holder(path)
                .map(|(pid, command)| format!(" (pid {pid}: {command})"))
                .unwrap_or_default(),
        },
        redb::DatabaseError::Storage(redb::StorageError::Io(err))
            if err.kind() != std::io::ErrorKind::InvalidData
                && err.kind() != std::io::ErrorKind::UnexpectedEof =>
        {
            OpenError::Io {
                path: path.to_owned(),
                reason: err.to_string(),
            }
        }
        other => OpenError::Corrupt {
            path: path.to_owned(),
            reason: other.to_string(),
        },
    }
}

/// The process holding a `flock` on `path`, from `/proc/locks` (Linux).
fn lock_holder(path: &Path) -> Option<(u32, String)> {
    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata(path).ok()?.ino();
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let pid = locks.lines().find_map(|line| {
        // `1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF`
        let fields: Vec<&str> = line.split_whitespace().collect();
        let place = fields.get(5)?;
        let lock_inode: u64 = place.rsplit(':').next()?.parse().ok()?;
        (fields.get(1) == Some(&"FLOCK") && lock_inode == inode)
            .then(|| fields.get(4)?.parse::<u32>().ok())
            .flatten()
    })?;
    let command = std::fs::read(format!("/proc/{pid}/cmdline"))
        .ok()
        .map(|raw| {
            raw.split(|b| *b == 0)
                .filter(|part| !part.is_empty())
                .map(|part| String::from_utf8_lossy(part).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    Some((pid, command))
}

fn load(db: &Database, store: &mut EventStore) -> Result<EventId, String> {
    let txn = db.begin_read().map_err(|e| e.to_string())?;
    let meta = match txn.open_table(META) {
        Ok(table) => Some(table),
        Err(redb::TableError::TableDoesNotExist(_)) => None,
        Err(err) => return Err(err.to_string()),
    };
    let get = |key: &str| -> Result<Option<i64>, String> {
        match &meta {
            Some(table) => Ok(table
                .get(key)
                .map_err(|e| e.to_string())?
                .map(|v| v.value())),
            None => Ok(None),
        }
    };
    if let Some(format) = get("format")? {
        if format != FORMAT {
            return Err(format!("format {format}, this gateway-host reads {FORMAT}"));
        }
    }
    let floor = EventId {
        server: 0,
        session: get("floor_session")?.unwrap_or(0),
        instance: get("floor_instance")?.unwrap_or(0),
    };
    store.continue_after(get("last_session")?.unwrap_or(0));
    let events = match txn.open_table(EVENTS) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(floor),
        Err(err) => return Err(err.to_string()),
    };
    let server = get("server_id")?.unwrap_or(0);
    // The latest events older than the history first, oldest first: latest queries
    // answer in the order types first appear ([`EventStore`]'s rule), and these
    // types appeared before the history began.
    let mut old_latest = Vec::new();
    if let Ok(latest) = txn.open_table(LATEST) {
        for entry in latest.iter().map_err(|e| e.to_string())? {
            let (_, id) = entry.map_err(|e| e.to_string())?;
            let (session, instance) = id.value();
            if (session, instance) < (floor.session, floor.instance) {
                old_latest.push((session, instance));
            }
        }
    }
    old_latest.sort_unstable();
    for (session, instance) in old_latest {
        let value = events
            .get((session, instance))
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("latest event {session}/{instance} is missing"))?;
        store.restore_latest(decode(server, session, instance, value.value())?);
    }
    let mut batch = Vec::new();
    for entry in events
        .range((floor.session, floor.instance)..)
        .map_err(|e| e.to_string())?
    {
        let (key, value) = entry.map_err(|e| e.to_string())?;
        let (session, instance) = key.value();
        batch.push(decode(server, session, instance, value.value())?);
        if batch.len() >= 4096 {
            store.insert(&batch);
            batch.clear();
        }
    }
    store.insert(&batch);
    Ok(floor)
}

// redb's error is large; it is built once per failed commit at most.
#[allow(clippy::result_large_err)]
fn write_meta(db: &Database, session: i64, floor: EventId) -> Result<(), redb::Error> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate);
    {
        let mut meta = txn.open_table(META)?;
        meta.insert("format", FORMAT)?;
        meta.insert("last_session", session)?;
        meta.insert("floor_session", floor.session)?;
        meta.insert("floor_instance", floor.instance)?;
        // Make sure every table exists for the readers.
        txn.open_table(EVENTS)?;
        txn.open_table(LATEST)?;
    }
    txn.commit()?;
    Ok(())
}

/// Starts the writer thread on an opened file.
pub(crate) fn start<H: Host>(opened: Opened, server_id: i64, host: std::sync::Arc<H>) -> Writer {
    let (queue, jobs) = std_mpsc::channel();
    let path = opened.path.clone();
    #[cfg(test)]
    let fail_commits = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut state = WriterState {
        db: opened.db,
        path: opened.path,
        floor: (opened.floor.session, opened.floor.instance),
        server_id,
        deleted_below: (0, 0),
        written_below: (opened.last_session + 1, 0),
        quick_repair: QUICK_REPAIR,
        #[cfg(test)]
        fail_commits: fail_commits.clone(),
    };
    let thread = std::thread::Builder::new()
        .name("event-store".to_owned())
        .spawn(move || state.run(&jobs, host.as_ref()));
    let thread = match thread {
        Ok(thread) => Some(thread),
        Err(err) => {
            // Without a thread no register can be committed: each is answered failure.
            tracing::error!(error = %err, "event store: cannot start the writer thread");
            None
        }
    };
    Writer {
        queue: thread.as_ref().map(|_| queue),
        thread,
        path,
        #[cfg(test)]
        fail_commits,
    }
}

struct WriterState {
    db: Database,
    path: PathBuf,
    /// Events below it are history no more (only latest events stay in the file).
    floor: (i64, i64),
    server_id: i64,
    /// Retention has deleted every history event below this key already.
    deleted_below: (i64, i64),
    /// Every event written so far is below this key.
    written_below: (i64, i64),
    /// redb's quick repair (allocator state saved at each commit: instant recovery
    /// after a crash, slower commits).
    quick_repair: bool,
    #[cfg(test)]
    fail_commits: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl WriterState {
    fn run<H: Host>(&mut self, jobs: &std_mpsc::Receiver<Job>, host: &H) {
        loop {
            let first = match jobs.recv_timeout(RETENTION_PERIOD) {
                Ok(job) => job,
                Err(std_mpsc::RecvTimeoutError::Timeout) => {
                    let floor = host.retention_floor();
                    self.commit(&[], floor);
                    continue;
                }
                Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
            };
            let mut group = vec![first];
            let mut count = group[0].events.len();
            while count < MAX_GROUP_EVENTS {
                match jobs.try_recv() {
                    Ok(job) => {
                        count += job.events.len();
                        group.push(job);
                    }
                    Err(_) => break,
                }
            }
            let floor = host.retention_floor();
            let ok = self.commit(&group, floor);
            host.committed(group, ok);
        }
    }

    /// Writes `group` and a chunk of retention deletions in one durable transaction.
    /// `floor`: the index's oldest retained event (`None`: its history is empty).
    fn commit(&mut self, group: &[Job], floor: Option<EventId>) -> bool {
        // An empty history: everything written before this group is below the floor.
        let floor = floor
            .map(|id| (id.session, id.instance))
            .unwrap_or((self.written_below.0, self.written_below.1))
            .max(self.floor);
        if group.is_empty() && self.deleted_below >= floor && self.floor == floor {
            return true;
        }
        match self.write(group, floor) {
            Ok(()) => true,
            Err(err) => {
                tracing::error!(
                    file = %self.path.display(),
                    error = %err,
                    requests = group.len(),
                    "event store: commit failed; its register requests are answered failure"
                );
                false
            }
        }
    }

    #[allow(clippy::result_large_err)] // As write_meta.
    fn write(&mut self, group: &[Job], floor: (i64, i64)) -> Result<(), redb::Error> {
        #[cfg(test)]
        if self.fail_commits.load(std::sync::atomic::Ordering::SeqCst) && !group.is_empty() {
            return Err(redb::Error::Io(std::io::Error::other("injected failure")));
        }
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate);
        txn.set_quick_repair(self.quick_repair);
        let mut written_below = self.written_below;
        let deleted_below;
        {
            let mut events = txn.open_table(EVENTS)?;
            let mut latest = txn.open_table(LATEST)?;
            let mut key = Vec::new();
            for event in group.iter().flat_map(|job| &job.events) {
                let id = (event.id.session, event.id.instance);
                events.insert(id, encode(event).as_slice())?;
                key.clear();
                encode_type(&event.event_type, &mut key);
                latest.insert(key.as_slice(), id)?;
                written_below = written_below.max((id.0, id.1 + 1));
            }
            // Retention: events below the floor go, except the latest of each type.
            let mut doomed = Vec::new();
            let mut reached = floor;
            for (scanned, entry) in events.range(self.deleted_below..floor)?.enumerate() {
                let (k, v) = entry?;
                let id = k.value();
                if scanned >= RETENTION_CHUNK {
                    reached = id;
                    break;
                }
                key.clear();
                let keep = match type_key(v.value(), &mut key) {
                    Some(()) => latest.get(key.as_slice())?.is_some_and(|l| l.value() == id),
                    // Undecodable: keep it (the next open reports it).
                    None => true,
                };
                if !keep {
                    doomed.push(id);
                }
            }
            for id in doomed {
                events.remove(id)?;
            }
            deleted_below = reached;
            let mut meta = txn.open_table(META)?;
            meta.insert("server_id", self.server_id)?;
            let last = meta.get("last_session")?.map_or(0, |v| v.value());
            if written_below.0 > last {
                meta.insert("last_session", written_below.0)?;
            }
            meta.insert("floor_session", floor.0)?;
            meta.insert("floor_instance", floor.1)?;
        }
        txn.commit()?;
        self.deleted_below = deleted_below;
        self.written_below = written_below;
        self.floor = floor;
        Ok(())
    }
}

// The value encoding: varint lengths, zigzag varint integers.

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_int(out: &mut Vec<u8>, value: i64) {
    put_varint(out, ((value << 1) ^ (value >> 63)) as u64);
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn encode_type(event_type: &[String], out: &mut Vec<u8>) {
    put_varint(out, event_type.len() as u64);
    for segment in event_type {
        put_bytes(out, segment.as_bytes());
    }
}

fn put_timestamp(out: &mut Vec<u8>, t: Timestamp) {
    put_int(out, t.s);
    put_int(out, t.us);
}

/// An event's value in the `events` table (its id is the key).
pub(crate) fn encode(event: &Event) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    encode_type(&event.event_type, &mut out);
    put_timestamp(&mut out, event.timestamp);
    match event.source_timestamp {
        None => out.push(0),
        Some(t) => {
            out.push(1);
            put_timestamp(&mut out, t);
        }
    }
    match &event.payload {
        None => out.push(0),
        Some(Payload::Json(text)) => {
            out.push(1);
            put_bytes(&mut out, text.as_str().as_bytes());
        }
        Some(Payload::Binary { type_name, data }) => {
            out.push(2);
            put_bytes(&mut out, type_name.as_bytes());
            put_bytes(&mut out, data);
        }
    }
    out
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.0.split_first()?;
            self.0 = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn int(&mut self) -> Option<i64> {
        let raw = self.varint()?;
        Some(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.varint()?).ok()?;
        if len > self.0.len() {
            return None;
        }
        let (bytes, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(bytes)
    }

    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }

    fn byte(&mut self) -> Option<u8> {
        let (&byte, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(byte)
    }

    fn timestamp(&mut self) -> Option<Timestamp> {
        Some(Timestamp::new(self.int()?, self.int()?))
    }

    fn event_type(&mut self) -> Option<Vec<String>> {
        let count = usize::try_from(self.varint()?).ok()?;
        if count > self.0.len() {
            return None;
        }
        (0..count).map(|_| self.string()).collect()
    }
}

/// The `latest` key of an encoded event (its type's encoding, a prefix of the value).
fn type_key(value: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let mut reader = Reader(value);
    reader.event_type()?;
    out.extend_from_slice(&value[..value.len() - reader.0.len()]);
    Some(())
}

fn decode(server: i64, session: i64, instance: i64, value: &[u8]) -> Result<Event, String> {
    let bad = || format!("event {session}/{instance} cannot be decoded");
    let mut r = Reader(value);
    let event_type = r.event_type().ok_or_else(bad)?;
    let timestamp = r.timestamp().ok_or_else(bad)?;
    let source_timestamp = match r.byte().ok_or_else(bad)? {
        0 => None,
        1 => Some(r.timestamp().ok_or_else(bad)?),
        _ => return Err(bad()),
    };
    let payload = match r.byte().ok_or_else(bad)? {
        0 => None,
        1 => Some(Payload::Json(gateway_model::JsonText::new_unchecked(
            r.string().ok_or_else(bad)?,
        ))),
        2 => Some(Payload::Binary {
            type_name: r.string().ok_or_else(bad)?,
            data: r.bytes().ok_or_else(bad)?.to_vec(),
        }),
        _ => return Err(bad()),
    };
    Ok(Event {
        id: EventId {
            server,
            session,
            instance,
        },
        event_type,
        timestamp,
        source_timestamp,
        payload,
    })
}
