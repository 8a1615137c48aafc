//! The writer thread: gathers waiting writes into one durable transaction (group commit), keeps
//! headroom on the data volume, and survives a full disk. A lone write to a quiet store skips
//! it: its caller's thread commits it the same way (see [`super::commit`]).
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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::ops::{Job, Op};
use super::wal::Log;
use super::{Shared, StoreError};

/// How many queued writes the writer's channel holds before callers wait.
pub const QUEUE_DEPTH: usize = 8192;
/// How often the writer looks at the free space on the data volume while it writes.
pub(super) const SPACE_CHECK: Duration = Duration::from_millis(200);
/// After a full disk, writes resume once at least this much is free (or
/// `store.min_free_bytes`, if larger).
const RESUME_FREE: u64 = 1 << 20;
/// An I/O error with less than this free counts as a full volume, whatever error redb passed on.
pub(super) const SURELY_FULL: u64 = 16 << 20;

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
    pub(super) fn allows(&self, op: &Op) -> bool {
        match self {
            Self::Ok => true,
            Self::LowSpace { .. } => !op.adds_data(),
            Self::Full { .. } | Self::Reopening { .. } => matches!(op, Op::Panic),
        }
    }

    /// The error a refused write gets.
    pub(super) fn refusal(&self, shared: &Shared) -> StoreError {
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
    pub(super) fn set_state(&self, next: WriteState) {
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
