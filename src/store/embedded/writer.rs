//! The writer thread: gathers waiting writes into one durable transaction (group commit), keeps
//! headroom on the data volume, and survives a full disk. A lone write to a quiet store skips
//! it: its caller's thread commits it the same way ([`commit_alone`]), which saves waking the
//! writer and then the caller (at one connection, a fifth of a create's CPU).
//!
//! States ([`WriteState`]), each entered with one warning and left with one info line:
//! - `LowSpace`: the volume has less than `store.min_free_bytes` free. Writes that add data
//!   (alerts, creates, resends) are refused with 507 before the disk is actually full, so
//!   deliveries already accepted can still record their attempts, and deletes and retention go
//!   on, making space.
//! - `Full`: a write failed because the volume filled up. redb refuses every later operation
//!   after an I/O error until the database is reopened, so the writer reopens it at once (reads
//!   resume), and refuses writes until space is back.
//! - `Reopening`: after any I/O error, while the database is closed and opened again (reads get
//!   503 for that moment).
//!
//! A failed commit is never acknowledged, so nothing acknowledged is lost, before or after.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use redb::Database;
use tokio::sync::{mpsc, watch};

use super::ops::{Done, Job, Op};
use super::tables::Tables;
use super::wal::{self, Log};
use super::{endpoints, outbox, retention, Shared, StoreError};
use crate::store::routes::Routes;

/// How many queued writes the writer's channel holds before callers wait.
pub const QUEUE_DEPTH: usize = 8192;
/// How often the writer looks at the free space on the data volume while it writes.
const SPACE_CHECK: Duration = Duration::from_millis(200);
/// After a full disk, writes resume once at least this much is free (or
/// `store.min_free_bytes`, if larger).
const RESUME_FREE: u64 = 1 << 20;
/// An I/O error with less than this free counts as a full volume, whatever error redb passed on.
const SURELY_FULL: u64 = 16 << 20;

/// What the store can write now.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteState {
    Ok,
    /// Under `store.min_free_bytes`: writes that add data are refused; the rest go on.
    LowSpace {
        free: u64,
    },
    /// The volume filled up: every write is refused until space is back.
    Full {
        free: u64,
    },
    /// An I/O error: the database is being reopened.
    Reopening {
        error: String,
    },
}

impl WriteState {
    fn allows(&self, op: &Op) -> bool {
        match self {
            Self::Ok => true,
            Self::LowSpace { .. } => !op.adds_data(),
            Self::Full { .. } | Self::Reopening { .. } => matches!(op, Op::Panic),
        }
    }

    /// The error a refused write gets.
    fn refusal(&self, shared: &Shared) -> StoreError {
        match self {
            Self::LowSpace { free } | Self::Full { free } => StoreError::Full {
                dir: shared.data_dir().display().to_string(),
                free: *free,
                min_free: shared.options.min_free_bytes,
                low: matches!(self, Self::LowSpace { .. }),
            },
            Self::Reopening { .. } | Self::Ok => StoreError::Unavailable(
                "the store is reopening after an I/O error; retry shortly".into(),
            ),
        }
    }

    /// A sentence for `/readyz` and the log.
    pub(super) fn describe(&self, shared: &Shared) -> String {
        let dir = shared.data_dir().display();
        let min = shared.options.min_free_bytes;
        match self {
            Self::Ok => "writes are possible".into(),
            Self::LowSpace { free } => format!(
                "the data volume holding {dir} has {free} bytes free, under store.min_free_bytes ({min}): new alerts and creates are refused until space is freed"
            ),
            Self::Full { free } => format!(
                "the data volume holding {dir} is full ({free} bytes free): writes are refused until space is freed"
            ),
            Self::Reopening { error } => {
                format!("the store is reopening after an I/O error ({error})")
            }
        }
    }
}

/// Bytes available to a non-root user on the volume holding `path`.
pub fn free_bytes(path: &Path) -> Option<u64> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    let stat = rustix::fs::statvfs(dir.unwrap_or(Path::new("."))).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

impl Shared {
    pub(super) fn state(&self) -> WriteState {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Moves to `next`, logging a change of kind once.
    fn set_state(&self, next: WriteState) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let changed = std::mem::discriminant(&*state) != std::mem::discriminant(&next);
        if changed {
            if next == WriteState::Ok {
                tracing::info!("the store can write again");
            } else {
                tracing::warn!(state = %next.describe(self), "the store cannot write everything");
            }
        }
        *state = next;
    }

    /// Looks at the free space and moves between `Ok`, `LowSpace` and out of `Full`; returns
    /// the free space.
    pub(super) fn refresh_space(&self) -> Option<u64> {
        let free = free_bytes(&self.path)?;
        let min = self.options.min_free_bytes;
        let next = match self.state() {
            WriteState::Reopening { .. } => return Some(free),
            WriteState::Full { .. } if free < min.max(RESUME_FREE) => WriteState::Full { free },
            _ if min > 0 && free < min => WriteState::LowSpace { free },
            _ => WriteState::Ok,
        };
        self.set_state(next);
        Some(free)
    }
}

/// Starts the writer thread, and with a commit log the thread that asks it for a durable
/// commit once a record has waited [`CHECKPOINT_AFTER`] in the log alone.
pub fn start(
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Job>,
    stopped: watch::Sender<bool>,
    tx: mpsc::WeakSender<Job>,
) -> Result<(), StoreError> {
    let spawn_failed =
        |e: std::io::Error| StoreError::Storage(format!("cannot start the writer thread: {e}"));
    if shared.committer().log.is_some() {
        let logged = shared.logged.clone();
        std::thread::Builder::new()
            .name("hookd-checkpoint".into())
            .spawn(move || checkpointer(&logged, &tx))
            .map_err(spawn_failed)?;
    }
    std::thread::Builder::new()
        .name("hookd-store-writer".into())
        .spawn(move || {
            let mut guard = WriterGuard {
                stopped,
                clean: false,
            };
            writer_loop(&shared, rx);
            guard.clean = true;
        })
        .map(drop)
        .map_err(spawn_failed)
}

/// How often the checkpointer looks for records written since it last looked: a record waits
/// in the commit log at most about twice this before a durable commit includes it. Until then
/// the store file's dirty pages wait in redb's write buffer, where reads find them more slowly
/// than in its cache (GETs at 64 connections cost a third more), and a start would replay them.
const CHECKPOINT_AFTER: Duration = Duration::from_secs(1);

/// Asks the writer for a durable commit when records were written to the log in the last
/// [`CHECKPOINT_AFTER`]; ends with the store.
fn checkpointer(logged: &AtomicBool, tx: &mpsc::WeakSender<Job>) {
    loop {
        std::thread::sleep(CHECKPOINT_AFTER);
        let Some(tx) = tx.upgrade() else { return };
        if logged.swap(false, Ordering::AcqRel) {
            let (reply, _) = tokio::sync::oneshot::channel();
            if tx
                .blocking_send(Job {
                    op: Op::Checkpoint,
                    reply,
                })
                .is_err()
            {
                return;
            }
        }
    }
}

/// Lives on the writer thread; dropped other than after a clean end (every `Store` handle gone)
/// means the thread is dying of a panic.
struct WriterGuard {
    stopped: watch::Sender<bool>,
    clean: bool,
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        if !self.clean {
            tracing::error!(
                "the store's writer thread stopped (a panic, reported above); nothing can be written, so hookd stops"
            );
            let _ = self.stopped.send(true);
        }
    }
}

/// A store whose last this many commits were of one write each is quiet: its lone writes commit
/// on their callers' threads.
const QUIET: u32 = 8;

/// Counts a write from its start to its answer (see [`super::Store::write`]).
pub(super) struct Busy<'a> {
    count: &'a AtomicUsize,
    alone: bool,
}

impl<'a> Busy<'a> {
    pub(super) fn enter(count: &'a AtomicUsize) -> Self {
        let alone = count.fetch_add(1, Ordering::AcqRel) == 0;
        Self { count, alone }
    }

    /// No other write was under way when this one began.
    pub(super) fn alone(&self) -> bool {
        self.alone
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Commits `op` on the caller's thread, as the writer thread would a batch of one, if the store
/// is quiet (its last [`QUIET`] commits were of one write each), nothing else is committing, the store is
/// writable and open, and the runtime has other threads for other requests meanwhile;
/// otherwise leaves `op` as it is. The flag is
/// `true` after an I/O error: the writer thread must reopen the database (the caller wakes it).
pub(super) fn commit_alone(
    shared: &Shared,
    op: &mut Option<Op>,
) -> Option<(Result<Done, StoreError>, bool)> {
    // On a runtime of one thread, a write committing there would hold up every other request,
    // and none of them could join its commit: each would commit alone in turn.
    let others_run = tokio::runtime::Handle::try_current()
        .is_ok_and(|runtime| runtime.metrics().num_workers() > 1);
    if matches!(op, None | Some(Op::Panic))
        || !others_run
        || shared.lone.load(Ordering::Acquire) < QUIET
        || shared.is_closed()
        || shared.state() != WriteState::Ok
    {
        return None;
    }
    let mut committer = shared.committer.try_lock().ok()?;
    let (reply, mut answer) = tokio::sync::oneshot::channel();
    let op = op.take()?;
    let reopen = committer.run(shared, vec![Job { op, reply }]);
    if reopen {
        shared.reopen.store(true, Ordering::Release);
    }
    let result = answer.try_recv().unwrap_or(Err(StoreError::WriterGone));
    Some((result, reopen))
}

/// What commits, one batch at a time, on the writer thread or on the thread of a lone write:
/// the commit log, and when the free space was last looked at.
pub(super) struct Committer {
    pub(super) log: Option<Log>,
    space_checked: Option<Instant>,
}

impl Shared {
    pub(super) fn committer(&self) -> std::sync::MutexGuard<'_, Committer> {
        self.committer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Committer {
    pub(super) fn new(log: Option<Log>) -> Self {
        Self {
            log,
            space_checked: None,
        }
    }

    /// Commits `batch` in one transaction (what the store's state allows of it) and answers
    /// every job in it. Returns `true` after an I/O error: the database must be reopened.
    fn run(&mut self, shared: &Shared, batch: Vec<Job>) -> bool {
        if self
            .space_checked
            .is_none_or(|at| at.elapsed() >= SPACE_CHECK)
        {
            let free = shared.refresh_space();
            if let Some(log) = self.log.as_mut() {
                let min = shared.options.min_free_bytes;
                log.room = free.is_some_and(|f| f >= min.saturating_add(wal::ROOM));
            }
            self.space_checked = Some(Instant::now());
        }
        let state = shared.state();
        let (run, refused): (Vec<Job>, Vec<Job>) =
            batch.into_iter().partition(|job| state.allows(&job.op));
        for job in refused {
            let _ = job.reply.send(Err(state.refusal(shared)));
        }
        if run.is_empty() {
            return false;
        }
        // Lone writes commit on their own threads while commits are of one write each (a quiet
        // store); once one is larger, every write joins the writer's batches (a busy store), since
        // a lone write's commit would delay those that follow it, and they would commit apart.
        // (Wrapping after 2^32 lone commits only costs the next few theirs.)
        if run.len() == 1 {
            shared.lone.fetch_add(1, Ordering::AcqRel);
        } else {
            shared.lone.store(0, Ordering::Release);
        }
        let started = Instant::now();
        let no_sync = shared.options.testing.as_ref().is_some_and(|t| t.no_sync);
        let outcome = shared
            .db()
            .and_then(|db| commit_batch(&db, &run, &shared.routes, no_sync, self.log.as_mut()));
        if let (Ok(_), Some(m)) = (&outcome, &shared.options.metrics) {
            m.commit_duration.observe(started.elapsed().as_secs_f64());
            #[allow(clippy::cast_precision_loss)]
            m.commit_batch.observe(run.len() as f64);
        }
        if self.log.as_ref().is_some_and(Log::pending) {
            shared.logged.store(true, Ordering::Release);
        }
        match outcome {
            Ok(results) => {
                for (job, result) in run.into_iter().zip(results) {
                    let _ = job.reply.send(result);
                }
                false
            }
            Err(StoreError::Io { full, message }) => {
                tracing::error!(error = %message, full, jobs = run.len(), "store commit failed");
                // redb reports the first failure; a later operation of the same transaction
                // may only see "previous I/O error". Little space left means a full volume.
                let free = free_bytes(&shared.path).unwrap_or(0);
                let next = if full || free < SURELY_FULL {
                    WriteState::Full { free }
                } else {
                    WriteState::Reopening { error: message }
                };
                let refusal = next.refusal(shared);
                for job in run {
                    let _ = job.reply.send(Err(refusal.clone()));
                }
                shared.set_state(next);
                true
            }
            Err(e) => {
                tracing::error!(error = %e, jobs = run.len(), "store commit failed");
                for job in run {
                    let _ = job.reply.send(Err(e.clone()));
                }
                false
            }
        }
    }
}

/// Receives jobs and commits what waits in one transaction, then answers every job in it.
fn writer_loop(shared: &Shared, mut rx: mpsc::Receiver<Job>) {
    let max_batch = shared.options.max_batch.max(1);
    while let Some(first) = rx.blocking_recv() {
        let mut batch = Vec::with_capacity(max_batch.min(64));
        batch.push(first);
        // A lone write may be committing on its own thread: what arrives meanwhile joins.
        let mut committer = shared.committer();
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut failed = shared.reopen.swap(false, Ordering::AcqRel);
        loop {
            if failed {
                committer.log = reopen(shared, &mut rx, committer.log.is_some());
                committer.space_checked = None;
            }
            if batch.is_empty() {
                break;
            }
            failed = committer.run(shared, std::mem::take(&mut batch));
        }
    }
    // Every handle is gone (hookd stops without `Store::close`, or a test's server ends): one
    // durable commit, so that the next start, or a tool reading the file, has nothing to
    // replay.
    if let (Some(log), Ok(db)) = (shared.committer().log.as_mut(), shared.db()) {
        if log.pending() {
            let checkpoint = || -> Result<(), StoreError> {
                let txn = db.begin_write()?;
                log.mark(&txn)?;
                txn.commit()?;
                Ok(())
            };
            match checkpoint() {
                Ok(()) => log.checkpointed(),
                Err(e) => {
                    tracing::warn!(error = %e, "the last durable commit failed; the next start replays the commit log")
                }
            }
        }
    }
}

/// After an I/O error redb refuses everything until the database is closed and opened again:
/// waits for the readers to let go, closes it, and opens it again (retrying while that fails),
/// answering every write that arrives meanwhile with the current refusal. Replays the commit
/// log (if `logged`) as a start does, and returns it.
fn reopen(shared: &Shared, rx: &mut mpsc::Receiver<Job>, logged: bool) -> Option<Log> {
    let refuse_waiting = |rx: &mut mpsc::Receiver<Job>| {
        let state = shared.state();
        while let Ok(job) = rx.try_recv() {
            let refusal = if matches!(job.op, Op::Panic) {
                StoreError::Unavailable("reopening".into())
            } else {
                state.refusal(shared)
            };
            let _ = job.reply.send(Err(refusal));
        }
    };
    if let Some(db) = shared
        .take_db()
        .and_then(|db| super::sole(db, None, || refuse_waiting(rx)))
    {
        let _ = db.close();
    }
    let mut delay = Duration::from_millis(100);
    let started = Instant::now();
    let mut log = None;
    loop {
        let opened = super::open_db(&shared.path, &shared.options).and_then(|db| {
            log = if logged {
                Log::open(&db, &shared.path)?
            } else {
                None
            };
            Ok(db)
        });
        match opened {
            Ok(db) => {
                *shared.db.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(db));
                tracing::info!(
                    took_ms = started.elapsed().as_millis(),
                    "the store is open again"
                );
                break;
            }
            Err(e) => {
                tracing::warn!(error = %e, "reopening the store failed; trying again");
                refuse_waiting(rx);
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
    if matches!(shared.state(), WriteState::Reopening { .. }) {
        shared.set_state(WriteState::Ok);
    }
    shared.refresh_space();
    log
}

/// An op that fails on its own terms (not found, conflict, a corrupt record it read) writes
/// nothing and fails alone; a storage error fails the whole batch, since its transaction is not
/// committed.
///
/// Changes to endpoints are staged on a view of the routing table and published once the
/// transaction has committed, before any of its ops is answered.
///
/// With a commit log, a batch whose writes fit in one record of it is committed to redb
/// without a sync, and the record is appended and synced before anyone is answered; any other
/// batch is a durable commit, which the log then starts after (see [`super::wal`]).
fn commit_batch(
    db: &Database,
    batch: &[Job],
    routes: &crate::store::routes::Published,
    no_sync: bool,
    mut log: Option<&mut Log>,
) -> Result<Vec<Result<Done, StoreError>>, StoreError> {
    let mut txn = db.begin_write()?;
    let (results, staged, recorded) = {
        let mut t = Tables::open(&txn);
        if log.is_some() {
            t.record();
        }
        t.routes = Routes::begin(routes);
        let mut results = Vec::with_capacity(batch.len());
        for job in batch {
            results.push(match apply(&mut t, &job.op) {
                Err(StoreError::NotFound) => Err(StoreError::NotFound),
                Err(StoreError::Conflict(c)) => Err(StoreError::Conflict(c)),
                Err(StoreError::Corrupt(key)) => {
                    tracing::error!(record = %key, "a corrupt record failed one write; the rest of its batch goes on");
                    Err(StoreError::Corrupt(key))
                }
                Err(other) => return Err(other),
                Ok(done) => Ok(done),
            });
        }
        (results, std::mem::take(&mut t.routes), t.recorded())
    };
    let checkpoint = log.as_ref().is_some_and(|l| l.pending())
        && batch.iter().any(|job| matches!(job.op, Op::Checkpoint));
    let logged = match (&log, &recorded) {
        (Some(log), Some(payload)) if !checkpoint => log.takes(payload.len()).then_some(payload),
        _ => None,
    };
    if no_sync || logged.is_some() {
        let _ = txn.set_durability(redb::Durability::None);
    } else if let Some(log) = log.as_ref() {
        log.mark(&txn)?;
    }
    txn.commit()?;
    staged.publish();
    if let Some(log) = log.as_mut() {
        match logged {
            // Nothing was written (every op failed on its own terms): nothing to make durable.
            Some(payload) if payload.is_empty() => {}
            Some(payload) => log.append(payload).map_err(|e| StoreError::Io {
                full: false,
                message: format!("appending to the commit log: {e}"),
            })?,
            None => log.checkpointed(),
        }
    }
    Ok(results)
}

/// Applies one op. Ops read (and decode) everything before their first write, so a
/// `NotFound`, `Conflict` or `Corrupt` leaves the transaction untouched.
fn apply(t: &mut Tables<'_>, op: &Op) -> Result<Done, StoreError> {
    match op {
        Op::CreateEndpoint(e, matchers) => endpoints::create(t, e, matchers).map(|()| Done::Unit),
        Op::UpdateEndpoint {
            id,
            patch,
            now_ms,
            matchers,
        } => endpoints::update(t, id, patch, *now_ms, matchers.as_ref())
            .map(|e| Done::Endpoint(Box::new(e))),
        Op::DeleteEndpoint(id) => endpoints::delete(t, id).map(|()| Done::Unit),
        Op::RotateSecret {
            id,
            secret,
            now_ms,
            grace_ms,
        } => endpoints::rotate(t, id, secret, *now_ms, *grace_ms)
            .map(|e| Done::Endpoint(Box::new(e))),
        Op::CreateToken {
            token,
            only_if_none,
        } => endpoints::create_token(t, token, *only_if_none).map(Done::Flag),
        Op::RevokeToken(id, now_ms) => endpoints::revoke_token(t, id, *now_ms).map(|()| Done::Unit),
        Op::SetMeta(key, value) => {
            t.meta.insert(key.as_str(), value.as_slice())?;
            Ok(Done::Unit)
        }
        Op::RehashTokens(changes) => endpoints::rehash_tokens(t, changes).map(Done::Count),
        Op::TouchTokens(uses) => endpoints::touch_tokens(t, uses).map(|()| Done::Unit),
        Op::Ingest(ingest) => outbox::ingest(t, ingest).map(Done::Count),
        Op::Recover {
            endpoint_id,
            since_ms,
            until_ms,
            limit,
        } => outbox::recover(t, endpoint_id, *since_ms, *until_ms, *limit)
            .map(|(a, b)| Done::Counts(a, b)),
        Op::RecordAttempt(record) => outbox::record_attempt(t, record).map(Done::Flag),
        Op::Resend { message_id, now_ms } => {
            outbox::resend(t, message_id, *now_ms).map(Done::Count)
        }
        Op::Quarantine { due_ms, key } => outbox::quarantine(t, *due_ms, key).map(|()| Done::Unit),
        Op::Prune(step) => retention::prune(t, step).map(Done::Pruned),
        Op::Checkpoint => Ok(Done::Unit),
        Op::Panic => panic!("simulated panic of the store writer"),
    }
}
