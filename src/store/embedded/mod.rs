//! The embedded store, the default backend: one redb file in the data directory, and the only
//! module that knows redb.
//!
//! Its cheap-to-clone [`Store`] handle does what the boundary's asks of it. Reads
//! open a read transaction each (MVCC, never blocked by the writer). Writes are sent to one writer
//! thread that gathers whatever requests are waiting into one durable transaction (group commit),
//! so throughput grows with concurrency while every acknowledged write is on disk. A lone write
//! to a quiet store is committed on its caller's thread instead (no thread to wake either way).
//!
//! Records are JSON behind a one-byte schema version, so later versions can migrate them. The
//! files, by table family:
//!
//! - [`endpoints`]: endpoints, API tokens, `meta`;
//! - [`outbox`]: messages, deliveries, the per-endpoint due queues the dispatcher reads;
//! - [`attempts`]: the attempt log and its per-endpoint counts;
//! - [`retention`]: background pruning in small batches (ended messages, old attempts, what a
//!   deleted or disabled endpoint leaves);
//! - [`backup`]: a consistent dump of every table from one read transaction, and restore;
//! - [`writer`]: the group-committing writer thread, the free-space headroom, and reopening the
//!   database after an I/O error (a full disk) without a restart;
//! - [`commit`]: what commits a batch, on the writer thread or a lone write's own;
//! - [`wal`]: the commit log, which makes a small batch durable without a durable redb commit,
//!   and its replay at a start;
//! - [`schema`]: table definitions and migrations of older stores;
//! - [`offline`]: compaction, for a store no daemon holds;
//! - `export` (feature `postgres`): the whole store read out, for `hookd migrate`.

mod attempts;
pub mod backup;
mod commit;
mod endpoints;
#[cfg(feature = "postgres")]
mod export;
mod migrate;
pub mod offline;
mod ops;
mod outbox;
pub mod retention;
mod schema;
mod tables;
mod wal;
mod writer;

pub use crate::store::gauges::StoreMetrics;
pub use commit::lone_commits_here;
pub use ops::{AttemptRecord, EndpointEffect, Ingest, Retention};
pub use outbox::Take;
pub use writer::WriteState;

use super::types::{decode, encode};
pub use super::types::{DeliveryContext, Page, Stats, StoreError};

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable};
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot, watch, Notify};

use crate::store::routes;
use ops::{Done, Job, Op};

impl StoreError {
    fn from_storage(e: redb::StorageError) -> Self {
        match e {
            redb::StorageError::Io(io) => Self::Io {
                full: matches!(
                    io.kind(),
                    std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
                ),
                message: io.to_string(),
            },
            redb::StorageError::PreviousIo | redb::StorageError::DatabaseClosed => Self::Io {
                full: false,
                message: e.to_string(),
            },
            other => Self::Storage(other.to_string()),
        }
    }
}

impl From<redb::StorageError> for StoreError {
    fn from(e: redb::StorageError) -> Self {
        Self::from_storage(e)
    }
}

macro_rules! storage_from {
    ($($t:ident),*) => {$(
        impl From<redb::$t> for StoreError {
            fn from(e: redb::$t) -> Self {
                match e {
                    redb::$t::Storage(s) => Self::from_storage(s),
                    other => Self::Storage(other.to_string()),
                }
            }
        }
    )*};
}
storage_from!(DatabaseError, TransactionError, TableError, CommitError);

impl From<redb::Error> for StoreError {
    fn from(e: redb::Error) -> Self {
        match e {
            redb::Error::Io(io) => Self::from_storage(redb::StorageError::Io(io)),
            redb::Error::PreviousIo => Self::from_storage(redb::StorageError::PreviousIo),
            other => Self::Storage(other.to_string()),
        }
    }
}

/// Name of the store file inside the data directory.
pub const STORE_FILE: &str = "hookd.redb";

/// How the store is opened.
#[derive(Debug, Clone)]
pub struct Options {
    pub max_batch: usize,
    pub cache_bytes: usize,
    /// New alerts and creates are refused (507) while the data volume has less free.
    pub min_free_bytes: u64,
    /// Commit duration and batch size, when metrics are on.
    pub metrics: Option<StoreMetrics>,
    /// For tests of durability only: opens the database on another storage backend than the
    /// file at the store's path (the power-cut harness's disk), and optionally commits without
    /// making anything durable (its control, which must lose acknowledged writes).
    #[doc(hidden)]
    pub testing: Option<Testing>,
}

/// Opens the database with the builder the store configured, on a backend of the caller's.
#[doc(hidden)]
pub type OpenOn = dyn Fn(&redb::Builder) -> Result<Database, redb::DatabaseError> + Send + Sync;

/// See [`Options::testing`].
#[doc(hidden)]
#[derive(Clone)]
pub struct Testing {
    /// `None`: the store's own file.
    pub open: Option<Arc<OpenOn>>,
    pub no_sync: bool,
}

impl std::fmt::Debug for Testing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Testing {{ no_sync: {} }}", self.no_sync)
    }
}

/// A cheap-to-clone handle on the open store.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
    writer: mpsc::Sender<Job>,
}

/// What the handles, the writer thread and the pruner share.
struct Shared {
    /// `None` while the writer reopens the database after an I/O error.
    db: RwLock<Option<Arc<Database>>>,
    path: PathBuf,
    options: Options,
    state: Mutex<WriteState>,
    /// Becomes `true` if the writer thread dies (a panic): every later write would fail.
    writer_stopped: watch::Receiver<bool>,
    /// Wakes the pruner: an endpoint was deleted or disabled.
    pub prune_wake: Notify,
    /// Set by [`Store::close`]: the database is gone for good (hookd is stopping).
    closed: std::sync::atomic::AtomicBool,
    /// Every endpoint's compiled rules as of the last commit (see [`routes`]).
    routes: routes::Published,
    /// What commits, and the commit log: held by whoever commits (see [`commit::Committer`]).
    committer: Mutex<commit::Committer>,
    /// Writes begun and not yet answered (see [`Store::write`]).
    busy: std::sync::atomic::AtomicUsize,
    /// How many commits in a row were of one write each (see [`commit::commit_alone`]).
    lone: std::sync::atomic::AtomicU32,
    /// Records went to the commit log since the checkpointer last looked.
    logged: Arc<std::sync::atomic::AtomicBool>,
    /// A request's own commit failed with an I/O error: the writer reopens the database.
    reopen: std::sync::atomic::AtomicBool,
}

/// A new store is built beside its path (`<file>.partial`, mode 0600), synced, and renamed into
/// place with its directory entry synced: a power cut while redb lays out a new file (before its
/// first sync) would otherwise leave a file that is not yet a database, and every later start
/// would refuse it. An absent or empty file (the data directory's setup makes it empty) counts
/// as new; anything else is opened as it is.
fn create_whole(path: &Path, cache_bytes: usize) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let io = |e: std::io::Error| StoreError::Storage(format!("creating the store: {e}"));
    match std::fs::metadata(path) {
        Ok(m) if m.len() > 0 => return Ok(()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    let partial = path.with_file_name(name);
    let _ = std::fs::remove_file(&partial);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .map_err(io)?;
    drop(
        Database::builder()
            .set_cache_size(cache_bytes)
            .create(&partial)?,
    );
    std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .map_err(io)?;
    std::fs::rename(&partial, path).map_err(io)?;
    crate::files::sync_dir(path).map_err(io)
}

/// Opens the database file, creating it if it is new.
fn open_db(path: &Path, options: &Options) -> Result<Database, StoreError> {
    let mut builder = Database::builder();
    builder
        .set_cache_size(options.cache_bytes)
        .set_repair_callback(|session| {
            tracing::warn!(
                progress = session.progress(),
                "the store was not closed cleanly; checking it"
            );
        });
    Ok(
        match options.testing.as_ref().and_then(|t| t.open.as_ref()) {
            Some(open) => open(&builder)?,
            None => builder.create(path)?,
        },
    )
}

/// The routing table of every endpoint in the store, built as the records are read (not from a
/// copy of them all: that doubled the memory a start took).
fn build_routes(db: &Database) -> Result<crate::routing::RouteTable, StoreError> {
    let txn = db.begin_read()?;
    let endpoints = txn.open_table(schema::ENDPOINTS)?;
    let mut failed = None;
    let records = endpoints.iter()?.map_while(|entry| match entry {
        Ok((k, v)) => Some((k.value().to_owned(), decode(k.value(), v.value()))),
        Err(e) => {
            failed = Some(e);
            None
        }
    });
    let table = routes::table_of(records);
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(table),
    }
}

impl Store {
    /// Opens (or creates) the store file, brings an older store's tables up to date, and starts
    /// the writer thread.
    ///
    /// # Errors
    /// The file cannot be opened (another process has it, permissions, corruption) or was written
    /// by a newer hookd.
    pub fn open(path: &Path, options: Options) -> Result<Self, StoreError> {
        if options
            .testing
            .as_ref()
            .and_then(|t| t.open.as_ref())
            .is_none()
        {
            create_whole(path, options.cache_bytes)?;
        }
        let mut db = open_db(path, &options)?;
        // The power-cut harness's disk holds the store file only, and its control must lose
        // what it was not told to sync: both commit to redb alone.
        let log = match options.testing {
            Some(Testing { ref open, no_sync }) if open.is_some() || no_sync => None,
            _ => wal::Log::open(&db, path)?,
        };
        if let Some(schema) = migrate::older_schema(&db)? {
            // Closed for the copy, so that it is the file as redb left it.
            drop(db);
            let copy = migrate::keep_copy(path, schema).map_err(|e| {
                StoreError::Storage(format!(
                    "cannot keep a copy of the store before migrating it from schema {schema}: {e}; nothing was changed"
                ))
            })?;
            tracing::info!(copy = %copy.display(), from = schema, to = schema::SCHEMA_VERSION, "the store has an older schema: a copy of it is kept before it is migrated");
            db = open_db(path, &options)?;
        }
        migrate::prepare(&db)?;
        let table = build_routes(&db)?;
        let (tx, rx) = mpsc::channel(writer::QUEUE_DEPTH);
        let (stopped_tx, writer_stopped) = watch::channel(false);
        let shared = Arc::new(Shared {
            db: RwLock::new(Some(Arc::new(db))),
            path: path.to_owned(),
            options,
            state: Mutex::new(WriteState::Ok),
            writer_stopped,
            prune_wake: Notify::new(),
            closed: std::sync::atomic::AtomicBool::new(false),
            routes: Arc::new(RwLock::new(Arc::new(table))),
            committer: Mutex::new(commit::Committer::new(log)),
            busy: 0.into(),
            lone: 0.into(),
            logged: Arc::default(),
            reopen: false.into(),
        });
        shared.refresh_space();
        writer::start(shared.clone(), rx, stopped_tx, tx.downgrade())?;
        Ok(Self { shared, writer: tx })
    }

    /// The routing table as of the last commit: route an alert against it, then
    /// [`Store::ingest`] it with the endpoints chosen.
    pub fn routes(&self) -> Arc<crate::routing::RouteTable> {
        routes::snapshot(&self.shared.routes)
    }

    /// The open database, or `Unavailable` while it is being reopened.
    fn db(&self) -> Result<Arc<Database>, StoreError> {
        self.shared.db()
    }

    /// Closes the database at shutdown, once the server has drained: later operations get
    /// `Unavailable`, transactions in progress (a delivery recording its attempt, a prune
    /// batch) finish, and then redb marks the file as closed cleanly. Without this the next
    /// start finds a store "not closed cleanly" and checks every page of it (about 1.5 ms per
    /// MB here). Gives up after `limit` and returns `false` if something still holds the
    /// database (the next start then checks it: nothing is lost either way). The commit log is
    /// emptied first, by one durable commit.
    pub async fn close(&self, limit: Duration) -> bool {
        // Everything the commit log holds goes into one durable commit first, so that the next
        // start has nothing to replay (a failure here only leaves that to the next start).
        let _ = tokio::time::timeout(limit, self.write(Op::Checkpoint)).await;
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            shared
                .closed
                .store(true, std::sync::atomic::Ordering::SeqCst);
            let deadline = std::time::Instant::now() + limit;
            shared
                .take_db()
                .and_then(|db| sole(db, Some(deadline), || ()))
                .is_some_and(|db| db.close().is_ok())
        })
        .await
        .unwrap_or(false)
    }

    fn read(&self) -> Result<ReadTransaction, StoreError> {
        Ok(self.db()?.begin_read()?)
    }

    /// `Ok` when the store serves reads and every kind of write; otherwise why not, for
    /// `/readyz`.
    ///
    /// # Errors
    /// The reason writes (some or all) are impossible now.
    pub fn readiness(&self) -> Result<(), String> {
        if self.writer.is_closed() || *self.shared.writer_stopped.borrow() {
            return Err("the store's writer has stopped".into());
        }
        self.shared.refresh_space();
        match self.write_state() {
            WriteState::Ok => self
                .read()
                .map(drop)
                .map_err(|e| format!("the store cannot be read: {e}")),
            state => Err(state.describe(&self.shared)),
        }
    }

    /// What the store can write now.
    pub fn write_state(&self) -> WriteState {
        self.shared.state()
    }

    /// Bytes free on the data volume (for a non-root user).
    pub fn free_bytes(&self) -> Option<u64> {
        writer::free_bytes(&self.shared.path)
    }

    /// The size of the store file.
    pub fn size_bytes(&self) -> Option<u64> {
        std::fs::metadata(&self.shared.path).ok().map(|m| m.len())
    }

    /// How many records the main tables hold (cheap: redb keeps each table's length).
    ///
    /// # Errors
    /// A storage error.
    pub fn stats(&self) -> Result<Stats, StoreError> {
        use redb::{ReadableTable as _, ReadableTableMetadata as _};
        let txn = self.read()?;
        let messages = txn.open_table(schema::MESSAGES)?;
        let deliveries = txn.open_table(schema::DELIVERIES)?;
        Ok(Stats {
            endpoints: txn.open_table(schema::ENDPOINTS)?.len()?,
            messages: messages.len()?,
            message_bytes: messages.stats()?.stored_bytes(),
            delivery_bytes: deliveries.stats()?.stored_bytes(),
            ended_messages: txn.open_table(schema::ENDED)?.len()?,
            pending_deliveries: txn.open_table(schema::QUEUE)?.len()?,
            deliveries: deliveries.len()?,
            attempts: txn.open_table(schema::ATTEMPTS)?.len()?,
            disabled_endpoints: txn.open_table(schema::DISABLED)?.len()?,
            oldest_pending_ms: txn
                .open_table(schema::PENDING_MESSAGES)?
                .first()?
                .and_then(|(k, _)| crate::ids::timestamp_ms(crate::ids::MESSAGE_PREFIX, k.value())),
        })
    }

    /// Completes if the writer thread dies. hookd cannot write after that, so the server stops
    /// and exits non-zero, for a supervisor to restart it.
    pub async fn writer_stopped(&self) {
        let mut rx = self.shared.writer_stopped.clone();
        let _ = rx.wait_for(|stopped| *stopped).await;
    }

    /// Makes the writer thread panic, as a bug in it would: for the test of what hookd does
    /// then. Not reachable from the API.
    #[doc(hidden)]
    pub async fn simulate_writer_panic(&self) {
        let _ = self.write(Op::Panic).await;
    }

    /// A write. When no other is under way (a lone request, the usual case on an appliance),
    /// the caller's own thread commits it: handing it to the writer thread and the answer back
    /// cost more CPU than the commit (two threads woken per write). Otherwise, and whenever the
    /// caller cannot commit it now, it goes to the writer thread, which gathers what waits into
    /// one commit. Either way it is answered only once durable.
    async fn write(&self, op: Op) -> Result<Done, StoreError> {
        let busy = commit::Busy::enter(&self.shared.busy);
        let mut op = Some(op);
        if busy.alone() {
            if let Some((result, reopen)) = commit::commit_alone(&self.shared, &mut op) {
                if reopen {
                    // The writer thread reopens the database; this wakes it.
                    let (reply, _) = oneshot::channel();
                    let _ = self.writer.try_send(Job {
                        op: Op::Checkpoint,
                        reply,
                    });
                }
                return result;
            }
        }
        let Some(op) = op else {
            return Err(StoreError::WriterGone);
        };
        let (reply, rx) = oneshot::channel();
        self.writer
            .send(Job { op, reply })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }
}

impl Shared {
    fn db(&self) -> Result<Arc<Database>, StoreError> {
        self.db
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| {
                StoreError::Unavailable(if self.is_closed() {
                    "hookd is stopping".into()
                } else {
                    "the store is reopening after an I/O error; retry shortly".into()
                })
            })
    }

    /// Takes the database out: from now on `db()` answers `Unavailable`.
    fn take_db(&self) -> Option<Arc<Database>> {
        self.db
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn data_dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }
}

/// Waits until `db`, taken out of [`Shared`], has no other holder (the transactions in
/// progress end), running `meanwhile` between looks; `None` if `deadline` passes first.
fn sole(
    mut db: Arc<Database>,
    deadline: Option<std::time::Instant>,
    mut meanwhile: impl FnMut(),
) -> Option<Database> {
    loop {
        match Arc::try_unwrap(db) {
            Ok(db) => return Some(db),
            Err(_) if deadline.is_some_and(|d| std::time::Instant::now() >= d) => return None,
            Err(still_shared) => {
                db = still_shared;
                meanwhile();
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

fn list<T: DeserializeOwned, Tb: ReadableTable<&'static str, &'static [u8]>>(
    table: &Tb,
    cursor: Option<&str>,
    limit: usize,
) -> Result<Page<T>, StoreError> {
    let start = cursor.map_or(Bound::Unbounded, Bound::Excluded);
    let mut items = Vec::with_capacity(limit.min(256));
    let mut last = None;
    let mut more = false;
    for entry in table.range::<&str>((start, Bound::Unbounded))? {
        let (k, v) = entry?;
        if items.len() == limit {
            more = true;
            break;
        }
        items.push(decode(k.value(), v.value())?);
        last = Some(k.value().to_owned());
    }
    Ok(Page {
        items,
        next: if more { last } else { None },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::Endpoint;

    #[test]
    fn corrupt_records_are_errors_not_panics() {
        assert!(matches!(
            decode::<Endpoint>("k", b""),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            decode::<Endpoint>("k", b"\x09{}"),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            decode::<Endpoint>("k", b"\x01{"),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn full_volumes_are_told_apart_from_other_io_errors() {
        let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
        assert!(matches!(
            StoreError::from(redb::StorageError::Io(full)),
            StoreError::Io { full: true, .. }
        ));
        let other = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(matches!(
            StoreError::from(redb::CommitError::Storage(redb::StorageError::Io(other))),
            StoreError::Io { full: false, .. }
        ));
        assert!(matches!(
            StoreError::from(redb::StorageError::PreviousIo),
            StoreError::Io { .. }
        ));
    }
}
