//! The store: SQLite in WAL mode with durable commits (`synchronous=FULL`).
//!
//! Writes go through one writer thread that owns the only write connection. Each change is a
//! closure run inside a SAVEPOINT of the writer's current transaction; the writer takes every
//! change that is waiting (up to `max_batch`), runs them, and commits them with one fsync:
//! **group commit**. A change that fails is rolled back to its savepoint and leaves no trace,
//! without disturbing the others in its batch; nobody hears "done" before the commit is durable.
//! Because changes run one at a time on the writer, a read-check-write inside one closure is
//! atomic: that is how concurrent decisions on one stage resolve to exactly one winner.
//!
//! Reads use a small pool of read-only connections (WAL lets them run beside the writer).
//!
//! - [`schema`]: versioned migrations.
//! - [`access_attempts`]: sign-ins and refused API calls, for anomaly detection.
//! - [`access_review`]: the facts of an access review: roles, tokens, last activity, delegations.
//! - [`directory`]: tenants, users, tokens, cost centers, settings.
//! - [`orders`]: orders, their open-stage index, budgets used, evaluations.
//! - [`audit`]: the per-tenant hash-chained log (append, export, verify).
//! - [`attachments`]: documents kept once per SHA-256, attached to orders (R9).
//! - [`extensions`]: scripts and per-tenant extension settings.
//! - [`outbox`]: notifications written in the same transaction as their change.
//! - [`deliveries`]: outbox events fanned out to channels, attempts, dead letters.
//! - [`authorizations`]: customer authorization certificates (R4).
//! - [`drift`]: when each tenant's pending orders were last checked for policy drift (R8).
//! - [`delegations`]: who lends their authority to whom, when (R6).
//! - [`decision_links`]: which e-mail decision links were used (each works once).
//! - [`plugins`]: the plugin catalog, installed versions and precompiled artifacts.
//! - [`catalog`]: the shipped catalog: scripts offered to every tenant, plugin versions on offer.
//! - [`reports`]: the summary report, computed in SQL over indexed columns (R10).
//! - [`second_factor`]: TOTP secrets, the last step used, recovery codes, session step-ups.
//! - [`sessions`]: passwords (argon2id hashes) and browser sessions (stored hashed).

pub mod access_attempts;
pub mod access_review;
pub mod attachments;
pub mod audit;
pub mod authorizations;
pub mod catalog;
pub mod decision_links;
pub mod delegations;
pub mod deliveries;
pub mod directory;
pub mod drift;
pub mod extensions;
pub mod orders;
pub mod outbox;
pub mod plugins;
pub mod reports;
pub mod schema;
pub mod second_factor;
pub mod sessions;

use rusqlite::{Connection, OpenFlags};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused an operation.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database could not be opened or migrated.
    #[error("cannot open the database at {path}: {reason}; check the path and its permissions")]
    Open {
        /// The database file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The commit failed; nothing of the change was kept.
    #[error("the change was not saved because the commit failed ({0}); retry it")]
    Commit(String),
    /// The writer thread stopped; the host is shutting down or broken.
    #[error("the store is not available (its writer stopped); restart the host")]
    Unavailable,
    /// A bug: the change panicked. It was rolled back and the writer carries on; the id is in
    /// the log beside the panic.
    #[error("an internal error happened (error id {0}); nothing was changed: report the id to the operator")]
    Internal(String),
    /// A stored value could not be decoded.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database was written by a newer version of Greenlight.
    #[error("the database has schema version {found}, newer than this host's {supported}; upgrade the host")]
    TooNew {
        /// Version in the file.
        found: i64,
        /// Newest this host knows.
        supported: i64,
    },
}

/// Tuning of the store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Most changes committed together. 1 disables group commit (one fsync per change).
    pub max_batch: usize,
    /// `FULL` (durable, default) or `NORMAL` (faster, may lose the last commits on power loss).
    pub synchronous_full: bool,
    /// Read connections kept open.
    pub readers: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { max_batch: 512, synchronous_full: true, readers: 16 }
    }
}

/// Called once the batch's commit is known: `Some(why)` if it failed.
type Completion = Box<dyn FnOnce(Option<&str>) + Send>;

trait Job: Send {
    /// Runs the change inside a savepoint; returns what to do once the batch commit is known.
    fn run(self: Box<Self>, conn: &Connection) -> Completion;
    /// The batch could not even start; tell the caller.
    fn abort(self: Box<Self>, why: &str);
}

struct WriteJob<F, T, E> {
    f: F,
    reply: tokio::sync::oneshot::Sender<Result<T, E>>,
}

impl<F, T, E> Job for WriteJob<F, T, E>
where
    F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection) -> Completion {
        let WriteJob { f, reply } = *self;
        let result = match conn.prepare_cached("SAVEPOINT change").and_then(|mut s| s.execute([])) {
            Err(e) => Err(E::from(StoreError::Sqlite(e))),
            Ok(_) => {
                let r = match catch_unwind(AssertUnwindSafe(|| f(conn))) {
                    Ok(r) => r,
                    Err(payload) => Err(E::from(StoreError::Internal(report_panic("a change", payload.as_ref())))),
                };
                if r.is_err() {
                    let _ = conn.prepare_cached("ROLLBACK TO change").and_then(|mut s| s.execute([]));
                }
                let _ = conn.prepare_cached("RELEASE change").and_then(|mut s| s.execute([]));
                r
            }
        };
        Box::new(move |commit_error: Option<&str>| {
            let out = match commit_error {
                Some(why) if result.is_ok() => Err(E::from(StoreError::Commit(why.to_string()))),
                _ => result,
            };
            let _ = reply.send(out);
        })
    }

    fn abort(self: Box<Self>, why: &str) {
        let _ = self.reply.send(Err(E::from(StoreError::Commit(why.to_string()))));
    }
}

/// Read connections: a fixed number, opened on demand and reused. A reader waits for a free
/// connection rather than opening more, because a new SQLite connection re-reads the schema
/// and costs far more than the wait.
struct ReadPool {
    idle: Vec<Connection>,
    open: usize,
}

/// What the writer has done since the store opened: how busy it is per change tells whether the
/// writer or the work before it bounds throughput (a writer busy 100% of the time is the bound).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Changes run (committed or rolled back).
    pub changes: u64,
    /// Group commits (transactions), each with its fsync.
    pub commits: u64,
    /// Time the writer spent running changes and committing, excluding waits for work.
    pub busy: Duration,
}

impl WriterStats {
    /// What the writer did since `before` (an earlier reading).
    pub fn since(&self, before: &WriterStats) -> WriterStats {
        WriterStats {
            changes: self.changes.saturating_sub(before.changes),
            commits: self.commits.saturating_sub(before.commits),
            busy: self.busy.saturating_sub(before.busy),
        }
    }
}

#[derive(Default)]
struct WriterCounters {
    changes: AtomicU64,
    commits: AtomicU64,
    busy_nanos: AtomicU64,
}

/// The handle everything else uses. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Option<mpsc::Sender<Box<dyn Job>>>>,
    /// The writer and checkpointer threads, joined by [`Store::close`].
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    readers: Mutex<ReadPool>,
    returned: Condvar,
    max_readers: usize,
    counters: Arc<WriterCounters>,
}

fn open_connection(path: &Path, read_only: bool, synchronous_full: bool) -> Result<Connection, StoreError> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| StoreError::Open { path: path.display().to_string(), reason: e.to_string() })?;
    conn.busy_timeout(Duration::from_secs(10))?;
    // Memory-mapped reads avoid a copy per page; the page cache is per connection. Temporary
    // storage in memory: every change of a group commit runs in its own SAVEPOINT, whose
    // sub-journal would otherwise be a temporary file written with a syscall per page (the
    // HTTP benchmark's profile showed them); query temp tables go there too. Durability is
    // unaffected: the WAL and its fsync carry the commit.
    conn.execute_batch(
        "PRAGMA foreign_keys = ON; PRAGMA mmap_size = 268435456; PRAGMA cache_size = -16384; PRAGMA temp_store = MEMORY;",
    )?;
    // Every statement the writer runs stays prepared (rusqlite keeps 16 by default, fewer than
    // one submit uses, so statements were re-parsed in turn).
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    if !read_only {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", if synchronous_full { "FULL" } else { "NORMAL" })?;
    }
    Ok(conn)
}

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 256;

/// How often the checkpointer copies the WAL into the database while writes keep coming.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// WAL pages after which the writer checkpoints itself: the safety net. The checkpointer has
/// copied most frames by then, so the writer's own checkpoint is short, and only a checkpoint
/// that finishes while no commit is under way lets the next transaction start the log over
/// (a checkpoint racing a steady stream of commits never catches up, and the WAL would grow).
const WRITER_CHECKPOINT_PAGES: i64 = 8_192;

/// The checkpointer: WAL frames are copied into the database on this thread and its own
/// connection (PASSIVE: it never waits for, nor blocks, the writer or readers), so the writer
/// spends its time on changes and commits instead of copying a thousand pages (and an fsync)
/// now and then. It runs after commits, at most every [`CHECKPOINT_EVERY`]; when the writer
/// stops, it copies what is left and truncates the log, so a stopped host leaves one file.
fn checkpointer(conn: Connection, commits: mpsc::Receiver<()>) {
    while commits.recv().is_ok() {
        while commits.try_recv().is_ok() {}
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "a WAL checkpoint failed; the next one retries");
        }
        std::thread::sleep(CHECKPOINT_EVERY);
    }
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "the last WAL checkpoint failed; the next start replays the log");
    }
}

impl Store {
    /// Opens (creating if needed) and migrates the database, and starts the writer thread.
    pub fn open(path: impl AsRef<Path>, options: StoreOptions) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        let mut conn = open_connection(&path, false, options.synchronous_full)?;
        schema::migrate(&mut conn)?;
        // Checkpoints are mostly the checkpointer's; the WAL stays bounded on disk after a burst.
        conn.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)?;
        conn.execute_batch("PRAGMA journal_size_limit = 67108864;")?;
        let checkpoints = open_connection(&path, false, options.synchronous_full)?;
        let (tx, rx) = mpsc::channel::<Box<dyn Job>>();
        let (committed, commits) = mpsc::sync_channel::<()>(1);
        let max_batch = options.max_batch.max(1);
        let counters = Arc::new(WriterCounters::default());
        let writer_counters = counters.clone();
        let failed = |e: std::io::Error| StoreError::Open { path: path.display().to_string(), reason: e.to_string() };
        let checkpoint_thread = std::thread::Builder::new()
            .name("greenlight-checkpoint".into())
            .spawn(move || checkpointer(checkpoints, commits))
            .map_err(failed)?;
        let writer_thread = std::thread::Builder::new()
            .name("greenlight-writer".into())
            .spawn(move || writer_loop(conn, rx, max_batch, committed, &writer_counters))
            .map_err(failed)?;
        Ok(Store {
            inner: Arc::new(Inner {
                path,
                writer: Mutex::new(Some(tx)),
                threads: Mutex::new(vec![writer_thread, checkpoint_thread]),
                readers: Mutex::new(ReadPool { idle: Vec::new(), open: 0 }),
                returned: Condvar::new(),
                max_readers: options.readers.max(1),
                counters,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// What the writer has done so far.
    pub fn writer_stats(&self) -> WriterStats {
        let c = &self.inner.counters;
        WriterStats {
            changes: c.changes.load(Ordering::Relaxed),
            commits: c.commits.load(Ordering::Relaxed),
            busy: Duration::from_nanos(c.busy_nanos.load(Ordering::Relaxed)),
        }
    }

    fn submit<F, T, E>(&self, f: F) -> tokio::sync::oneshot::Receiver<Result<T, E>>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let job: Box<dyn Job> = Box::new(WriteJob { f, reply });
        let sender = self.inner.writer.lock().ok().and_then(|g| g.clone());
        if let Some(sender) = sender {
            if let Err(mpsc::SendError(job)) = sender.send(job) {
                job.abort("the store's writer has stopped");
            }
        } else {
            job.abort("the store is closed");
        }
        rx
    }

    /// Runs one change in the writer's transaction and waits until it is durably committed.
    /// If `f` returns an error, everything it wrote is rolled back.
    pub async fn write<F, T, E>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.submit(f).await.unwrap_or_else(|_| Err(E::from(StoreError::Unavailable)))
    }

    /// [`Store::write`] for synchronous callers (CLI, tests). Must not be called from inside an
    /// async runtime's worker thread.
    pub fn write_blocking<F, T, E>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.submit(f).blocking_recv().unwrap_or_else(|_| Err(E::from(StoreError::Unavailable)))
    }

    /// Runs a read on a pooled read-only connection, on the blocking thread pool.
    pub async fn read<F, T, E>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.read_blocking(f))
            .await
            .unwrap_or_else(|_| Err(E::from(StoreError::Unavailable)))
    }

    /// [`Store::read`] for synchronous callers.
    pub fn read_blocking<F, T, E>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E>,
        E: From<StoreError>,
    {
        let conn = self.checkout().map_err(E::from)?;
        let out = f(&conn);
        if let Ok(mut pool) = self.inner.readers.lock() {
            pool.idle.push(conn);
        }
        self.inner.returned.notify_one();
        out
    }

    fn checkout(&self) -> Result<Connection, StoreError> {
        let mut pool = self.inner.readers.lock().map_err(|_| StoreError::Unavailable)?;
        loop {
            if let Some(c) = pool.idle.pop() {
                return Ok(c);
            }
            if pool.open < self.inner.max_readers {
                pool.open += 1;
                drop(pool);
                return open_connection(&self.inner.path, true, true).inspect_err(|_| {
                    if let Ok(mut p) = self.inner.readers.lock() {
                        p.open -= 1;
                    }
                });
            }
            pool = self.inner.returned.wait(pool).map_err(|_| StoreError::Unavailable)?;
        }
    }

    /// Whether a read connection answers: the health check.
    pub fn ping(&self) -> Result<(), StoreError> {
        self.read_blocking(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(StoreError::from))
    }

    /// Stops accepting writes and waits until the writer has committed what it had and the
    /// log is copied into the database and truncated.
    pub fn close(&self) {
        if let Ok(mut w) = self.inner.writer.lock() {
            w.take();
        }
        let threads = self.inner.threads.lock().map(|mut t| std::mem::take(&mut *t)).unwrap_or_default();
        for t in threads {
            let _ = t.join();
        }
    }
}

fn writer_loop(
    conn: Connection,
    rx: mpsc::Receiver<Box<dyn Job>>,
    max_batch: usize,
    committed: mpsc::SyncSender<()>,
    counters: &WriterCounters,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(max_batch);
    while let Ok(first) = rx.recv() {
        let started = Instant::now();
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.prepare_cached("BEGIN IMMEDIATE").and_then(|mut s| s.execute([])) {
            let why = format!("cannot start a transaction: {e}");
            for job in batch.drain(..) {
                job.abort(&why);
            }
            continue;
        }
        let completions: Vec<_> = batch.drain(..).map(|job| job.run(&conn)).collect();
        let commit = conn.prepare_cached("COMMIT").and_then(|mut s| s.execute([])).map_err(|e| e.to_string());
        if commit.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
            tracing::error!(error = ?commit, "group commit failed; {} changes refused", completions.len());
        }
        let err = commit.err();
        counters.changes.fetch_add(completions.len() as u64, Ordering::Relaxed);
        counters.commits.fetch_add(1, Ordering::Relaxed);
        for done in completions {
            done(err.as_deref());
        }
        let busy = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        counters.busy_nanos.fetch_add(busy, Ordering::Relaxed);
        // The checkpointer has one signal waiting at most; more commits change nothing.
        let _ = committed.try_send(());
    }
}

/// Logs a caught panic with a fresh error id and returns the id, for the answer to carry: the
/// operator finds the panic's message and place in the log by it, the client sees only the id.
pub fn report_panic(what: &str, payload: &(dyn std::any::Any + Send)) -> String {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into());
    let id = uuid::Uuid::now_v7().simple().to_string();
    tracing::error!(error_id = %id, panic = %message, "{what} panicked; it was rolled back and the host carries on");
    id
}

/// Decodes a JSON column, naming the column when it is corrupt.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// Encodes a value for a JSON column.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("cannot encode: {e}")))
}

#[cfg(test)]
mod tests;
