//! The call log: bursts, alerts, emergencies, logins, in SQLite, written off the hot path.
//!
//! A dedicated writer thread owns the connection (rusqlite is synchronous). Callers hand
//! records to it through a bounded queue: [`CallLog::record`] never blocks and drops (and
//! counts) when the queue is full; [`CallLog::record_durable`] waits for room and resolves
//! only once the record is committed. The writer drains everything queued and commits it in
//! one transaction, so the cost of an fsync is shared by a whole batch.
//!
//! Durability: WAL journal with `synchronous=FULL`, so a commit is fsynced before the
//! writer acknowledges it; a record whose durable future resolved survives `kill -9` and
//! power loss. A batch holding burst rows that name a recording is committed only after
//! the [commit barrier](CallLog::set_commit_barrier) returned (the recorder synced those
//! bursts' ends), so a burst row on disk has its audio on disk too.

//!
//! This crate owns the schema and its migrations, the writer thread and the readers the ops
//! API uses. It knows the directory's id types but nothing of sessions, groups or the
//! network: the relay hands it finished records. For recordings' crash recovery it
//! answers [`ptt_recording::BurstLog`] ([`RecordingRows`]): which row a recording left by
//! a crash belongs to, and which rows lost their audio.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

mod read;
mod record;
mod recordings;
mod schema;

pub use read::recordings::BurstRecording;
pub use read::{
    AlertRow, BurstRow, CallLogReader, Counts, EmergencyRow, PrivateCallRow, RegroupRow, Row,
    StatusRow, last_alert_id,
};
pub use record::{
    ADMIN_TERMINAL, AckKind, AdminAction, AdminActionRecord, AlertAckRecord, AlertSentRecord,
    AuthFailureRecord, BurstKind, BurstOutcome, BurstRecord, EmergencyClearedRecord,
    EmergencyRecord, Origin, PrivateCallOutcome, PrivateCallRecord, Record, RegroupReason,
    RegroupRecord, SessionEvent, SessionRecord, StatusRecord, StatusTarget, UnixMs, now_ms,
};
pub use recordings::RecordingRows;

/// Most messages written in one transaction; bounds how long one commit holds the writer.
const MAX_BATCH: usize = 4096;

/// Why the call log failed.
#[derive(Debug, thiserror::Error)]
pub enum CallLogError {
    /// The database could not be opened or created: check the data dir and its permissions.
    #[error("cannot open call log {}: {source}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The data dir could not be created.
    #[error("cannot create {}: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A statement failed (disk full, corrupt file, schema mismatch).
    #[error("call log: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database was written by a newer pttd: upgrade, or point at another data dir.
    #[error("call log schema version {found} is newer than this build's {known}")]
    TooNew {
        /// Version in the file.
        found: usize,
        /// Newest version this build knows.
        known: usize,
    },
    /// The batch holding this record failed to commit; the record is not stored.
    #[error("call log write failed: {0}")]
    Write(String),
    /// The call log was closed (or its writer died) before the request was answered.
    #[error("call log is closed")]
    Closed,
    /// A stored value could not be read back (unknown enum text, out-of-range number).
    #[error("call log holds an unreadable value: {0}")]
    Corrupt(String),
}

/// [`CallLog::record`] dropped the record: the queue was full or the log closed. Counted in
/// [`Stats::dropped`]; the caller carries on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("call log queue full or closed: record dropped")]
pub struct Dropped;

/// Counters since open, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Records accepted into the queue.
    pub queued: u64,
    /// Records committed.
    pub written: u64,
    /// Records dropped because the queue was full or closed.
    pub dropped: u64,
    /// Records lost because their batch failed to commit.
    pub failed: u64,
    /// Transactions committed.
    pub batches: u64,
}

#[derive(Debug, Default)]
struct Counters {
    queued: AtomicU64,
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    batches: AtomicU64,
}

type Ack<T> = oneshot::Sender<Result<T, CallLogError>>;

/// What the writer calls before committing burst rows that name a recording; set once.
#[derive(Default)]
struct CommitBarrier(OnceLock<Box<dyn Fn() + Send + Sync>>);

impl std::fmt::Debug for CommitBarrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = self.0.get().is_some();
        f.debug_struct("CommitBarrier").field("set", &set).finish()
    }
}

type Barrier = Arc<CommitBarrier>;

enum Msg {
    Record(Record, Option<Ack<i64>>),
    Replica(Record, Origin, Ack<bool>),
    Flush(Ack<()>),
    Close(oneshot::Sender<()>),
}

/// Handle to the call log; cheap to clone, usable from any task or thread.
#[derive(Debug, Clone)]
pub struct CallLog {
    tx: mpsc::Sender<Msg>,
    counters: Arc<Counters>,
    barrier: Barrier,
    writer: Arc<Mutex<Option<JoinHandle<()>>>>,
    path: PathBuf,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msg")
    }
}

impl CallLog {
    /// Opens (creating and migrating) the database at `path`, usually
    /// `<data-dir>/pttd.sqlite`, and starts the writer thread with a queue of `capacity`
    /// records (at least 1). Blocking: call before serving or from `spawn_blocking`.
    pub fn open(path: &Path, capacity: usize) -> Result<CallLog, CallLogError> {
        let conn = open_writer(path)?;
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let counters = Arc::new(Counters::default());
        let barrier = Barrier::default();
        let writer = {
            let counters = counters.clone();
            let barrier = barrier.clone();
            std::thread::Builder::new()
                .name("pttd-calllog".to_owned())
                .spawn(move || {
                    Writer {
                        conn,
                        rx,
                        counters,
                        barrier,
                    }
                    .run()
                })
                .map_err(|e| CallLogError::Write(format!("cannot start writer thread: {e}")))?
        };
        Ok(CallLog {
            tx,
            counters,
            barrier,
            writer: Arc::new(Mutex::new(Some(writer))),
            path: path.to_path_buf(),
        })
    }

    /// Sets what the writer calls, on its own thread, before it commits a batch holding
    /// burst rows that name a recording: the recorder's wait until those bursts' ends are
    /// synced (`Recorder::wait_for_burst_ends`, bounded), so that a release acknowledged
    /// once its row is durable has its audio on disk as well. The relay tells the recorder
    /// of a burst's end before it logs the burst. Set once; later calls are ignored.
    pub fn set_commit_barrier(&self, barrier: impl Fn() + Send + Sync + 'static) {
        let _ = self.barrier.0.set(Box::new(barrier));
    }

    /// The database file, for opening a [`CallLogReader`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues a record without ever blocking; if the queue is full the record is dropped
    /// and counted. For high-rate, loss-tolerant records (bursts, sessions).
    pub fn record(&self, record: impl Into<Record>) -> Result<(), Dropped> {
        match self.tx.try_send(Msg::Record(record.into(), None)) {
            Ok(()) => {
                self.counters.queued.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(_) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                Err(Dropped)
            }
        }
    }

    /// Queues a record (waiting for room, never dropping it) and resolves with its row id
    /// once the batch holding it is committed and fsynced. For alerts and emergencies.
    pub fn record_durable(
        &self,
        record: impl Into<Record>,
    ) -> impl Future<Output = Result<i64, CallLogError>> + Send + 'static {
        let tx = self.tx.clone();
        let counters = self.counters.clone();
        let record = record.into();
        async move {
            let (ack, done) = oneshot::channel();
            tx.send(Msg::Record(record, Some(ack)))
                .await
                .map_err(|_| CallLogError::Closed)?;
            counters.queued.fetch_add(1, Ordering::Relaxed);
            done.await.map_err(|_| CallLogError::Closed)?
        }
    }

    /// Stores a record another relay of the cluster wrote (waiting for room, never
    /// dropping it), unless a record of the same origin is stored already; resolves once
    /// committed, with whether it was new. The record's own table answers for it like
    /// for this relay's records; `replicas` says which relay it came from.
    pub fn record_replica(
        &self,
        record: Record,
        origin: Origin,
    ) -> impl Future<Output = Result<bool, CallLogError>> + Send + 'static {
        let tx = self.tx.clone();
        let counters = self.counters.clone();
        async move {
            let (ack, done) = oneshot::channel();
            tx.send(Msg::Replica(record, origin, ack))
                .await
                .map_err(|_| CallLogError::Closed)?;
            counters.queued.fetch_add(1, Ordering::Relaxed);
            done.await.map_err(|_| CallLogError::Closed)?
        }
    }

    /// Resolves when everything queued before this call is committed (or failed).
    pub fn flush(&self) -> impl Future<Output = Result<(), CallLogError>> + Send + 'static {
        let tx = self.tx.clone();
        async move {
            let (ack, done) = oneshot::channel();
            tx.send(Msg::Flush(ack))
                .await
                .map_err(|_| CallLogError::Closed)?;
            done.await.map_err(|_| CallLogError::Closed)?
        }
    }

    /// Writes everything queued, stops the writer and joins its thread. Other clones'
    /// records after this are dropped (`record`) or fail with `Closed` (`record_durable`).
    pub async fn close(self) -> Result<(), CallLogError> {
        let (ack, done) = oneshot::channel();
        let sent = self.tx.send(Msg::Close(ack)).await.is_ok();
        if sent {
            // The writer answers as its last act, so the join below is immediate.
            let _ = done.await;
        }
        let handle = self.writer.lock().ok().and_then(|mut h| h.take());
        if let Some(handle) = handle {
            handle
                .join()
                .map_err(|_| CallLogError::Write("writer thread panicked".to_owned()))?;
        }
        Ok(())
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            queued: c.queued.load(Ordering::Relaxed),
            written: c.written.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
        }
    }
}

fn open_writer(path: &Path) -> Result<Connection, CallLogError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| CallLogError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let open_err = |source| CallLogError::Open {
        path: path.to_path_buf(),
        source,
    };
    let mut conn = Connection::open(path).map_err(open_err)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(open_err)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(open_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(CallLogError::Write(format!(
            "journal_mode is {mode}, WAL unavailable"
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(open_err)?;
    schema::migrate(&mut conn)?;
    Ok(conn)
}

struct Writer {
    conn: Connection,
    rx: mpsc::Receiver<Msg>,
    counters: Arc<Counters>,
    barrier: Barrier,
}

impl Writer {
    fn run(mut self) {
        let mut batch = Vec::new();
        let mut closing = None;
        while closing.is_none() {
            let Some(first) = self.rx.blocking_recv() else {
                break; // every handle dropped: nothing more can arrive
            };
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(msg) => batch.push(msg),
                    Err(_) => break,
                }
            }
            if let Some(i) = batch.iter().position(|m| matches!(m, Msg::Close(_))) {
                // Refuse new messages, then take what is already queued into this batch.
                self.rx.close();
                while let Ok(msg) = self.rx.try_recv() {
                    batch.push(msg);
                }
                if let Msg::Close(ack) = batch.remove(i) {
                    closing = Some(ack);
                }
            }
            self.write(&mut batch);
        }
        if let Err(e) = self.conn.pragma_update(None, "wal_checkpoint", "TRUNCATE") {
            tracing::debug!(error = %e, "call log checkpoint at close failed");
        }
        if let Some(ack) = closing {
            let _ = ack.send(());
        }
    }

    /// Commits one batch and answers its waiters.
    fn write(&mut self, batch: &mut Vec<Msg>) {
        let records = batch
            .iter()
            .filter(|m| matches!(m, Msg::Record(..) | Msg::Replica(..)))
            .count() as u64;
        let recorded = batch.iter().any(
            |m| matches!(m, Msg::Record(Record::Burst(burst), _) if burst.recording.is_some()),
        );
        if recorded && let Some(barrier) = self.barrier.0.get() {
            barrier();
        }
        let result = (|| -> rusqlite::Result<Vec<Written>> {
            let tx = self.conn.transaction()?;
            let mut written = Vec::with_capacity(batch.len());
            for msg in batch.iter() {
                match msg {
                    Msg::Record(r, _) => written.push(Written::Row(schema::insert(&tx, r)?)),
                    Msg::Replica(r, origin, _) => {
                        written.push(Written::Replica(schema::insert_replica(&tx, r, origin)?));
                    }
                    Msg::Flush(_) | Msg::Close(_) => {}
                }
            }
            tx.commit()?;
            Ok(written)
        })();
        match result {
            Ok(written) => {
                if records > 0 {
                    self.counters.written.fetch_add(records, Ordering::Relaxed);
                    self.counters.batches.fetch_add(1, Ordering::Relaxed);
                }
                let mut written = written.into_iter();
                for msg in batch.drain(..) {
                    match msg {
                        Msg::Record(_, ack) => {
                            let id = match written.next() {
                                Some(Written::Row(id)) => id,
                                _ => 0,
                            };
                            if let Some(ack) = ack {
                                let _ = ack.send(Ok(id));
                            }
                        }
                        Msg::Replica(_, _, ack) => {
                            let new = matches!(written.next(), Some(Written::Replica(true)));
                            let _ = ack.send(Ok(new));
                        }
                        Msg::Flush(ack) => {
                            let _ = ack.send(Ok(()));
                        }
                        Msg::Close(_) => {}
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, records, "call log batch failed; records lost");
                self.counters.failed.fetch_add(records, Ordering::Relaxed);
                let reason = e.to_string();
                for msg in batch.drain(..) {
                    match msg {
                        Msg::Record(_, Some(ack)) => {
                            let _ = ack.send(Err(CallLogError::Write(reason.clone())));
                        }
                        Msg::Replica(_, _, ack) => {
                            let _ = ack.send(Err(CallLogError::Write(reason.clone())));
                        }
                        Msg::Flush(ack) => {
                            let _ = ack.send(Err(CallLogError::Write(reason.clone())));
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

/// What one message of a committed batch wrote.
enum Written {
    /// This relay's record, at this row id.
    Row(i64),
    /// Another relay's record: whether it was new here.
    Replica(bool),
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_recordings;
#[cfg(test)]
mod tests_replicas;
