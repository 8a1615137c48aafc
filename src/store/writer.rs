//! The writer thread: gathers waiting writes into one durable transaction (group commit), keeps
//! headroom on the data volume, and survives a full disk.
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
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use redb::{Database, Table, WriteTransaction};
use tokio::sync::{mpsc, oneshot, watch};

use super::routes::Routes;
use super::schema::{
    ATTEMPTS, ATTEMPT_COUNTS, DELIVERIES, DISABLED, DRAIN, ENDED, ENDPOINTS, GAVE_UP, HEADS,
    HEAD_OF, MESSAGES, MESSAGE_STATE, META, PENDING_MESSAGES, QUEUE, TOKENS, TOKEN_HASHES,
};
use super::{endpoints, outbox, retention, Shared, StoreError};
use crate::model::{Endpoint, EndpointPatch, SealedSecret, Token};
use crate::routing::Matchers;

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

    /// Looks at the free space and moves between `Ok`, `LowSpace` and out of `Full`.
    pub(super) fn refresh_space(&self) {
        let Some(free) = free_bytes(&self.path) else {
            return;
        };
        let min = self.options.min_free_bytes;
        let next = match self.state() {
            WriteState::Reopening { .. } => return,
            WriteState::Full { .. } if free < min.max(RESUME_FREE) => WriteState::Full { free },
            _ if min > 0 && free < min => WriteState::LowSpace { free },
            _ => WriteState::Ok,
        };
        self.set_state(next);
    }
}

/// The tables of one write transaction, opened once per batch.
pub struct Tables<'t> {
    pub endpoints: Table<'t, &'static str, &'static [u8]>,
    pub tokens: Table<'t, &'static str, &'static [u8]>,
    pub token_hashes: Table<'t, &'static [u8], &'static str>,
    pub meta: Table<'t, &'static str, &'static [u8]>,
    pub messages: Table<'t, &'static str, &'static [u8]>,
    pub message_state: Table<'t, &'static str, (u32, u64)>,
    pub ended: Table<'t, (u64, &'static str), ()>,
    pub pending_messages: Table<'t, &'static str, ()>,
    pub disabled: Table<'t, &'static str, ()>,
    pub deliveries: Table<'t, &'static str, &'static [u8]>,
    pub queue: Table<'t, (&'static str, u64, &'static str), ()>,
    pub heads: Table<'t, (u64, &'static str), ()>,
    pub head_of: Table<'t, &'static str, u64>,
    pub drain: Table<'t, &'static str, u8>,
    pub attempts: Table<'t, &'static str, &'static [u8]>,
    pub attempt_counts: Table<'t, &'static str, u64>,
    pub gave_up: Table<'t, (&'static str, u64, &'static str), ()>,
    /// The routing table as this transaction sees it (see [`Routes`]).
    pub routes: Routes,
}

impl<'t> Tables<'t> {
    pub fn open(txn: &'t WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            endpoints: txn.open_table(ENDPOINTS)?,
            tokens: txn.open_table(TOKENS)?,
            token_hashes: txn.open_table(TOKEN_HASHES)?,
            meta: txn.open_table(META)?,
            messages: txn.open_table(MESSAGES)?,
            message_state: txn.open_table(MESSAGE_STATE)?,
            ended: txn.open_table(ENDED)?,
            pending_messages: txn.open_table(PENDING_MESSAGES)?,
            disabled: txn.open_table(DISABLED)?,
            deliveries: txn.open_table(DELIVERIES)?,
            queue: txn.open_table(QUEUE)?,
            heads: txn.open_table(HEADS)?,
            head_of: txn.open_table(HEAD_OF)?,
            drain: txn.open_table(DRAIN)?,
            attempts: txn.open_table(ATTEMPTS)?,
            attempt_counts: txn.open_table(ATTEMPT_COUNTS)?,
            gave_up: txn.open_table(GAVE_UP)?,
            routes: Routes::default(),
        })
    }
}

pub enum Op {
    /// An endpoint and its label matchers, compiled.
    CreateEndpoint(Box<Endpoint>, Arc<Matchers>),
    UpdateEndpoint {
        id: String,
        patch: EndpointPatch,
        now_ms: i64,
        /// The patch's label matchers compiled, when it sets them.
        matchers: Option<Arc<Matchers>>,
    },
    DeleteEndpoint(String),
    RotateSecret {
        id: String,
        secret: SealedSecret,
        now_ms: i64,
        grace_ms: i64,
    },
    CreateToken {
        token: Token,
        only_if_none: bool,
    },
    /// (token id, now: what has expired by then does not count as an admin).
    RevokeToken(String, i64),
    SetMeta(String, Vec<u8>),
    /// (token id, stored hash, new hash) for every token, and the scheme recorded.
    RehashTokens(Vec<(String, Vec<u8>, Vec<u8>)>),
    /// (token id, last used at) for tokens used since the last flush.
    TouchTokens(Vec<(String, i64)>),
    Ingest(Box<outbox::Ingest>),
    /// Requeues up to `limit` deliveries to `endpoint_id` that gave up in `[since_ms, until_ms]`.
    Recover {
        endpoint_id: String,
        since_ms: i64,
        until_ms: i64,
        limit: usize,
    },
    RecordAttempt(Box<outbox::AttemptRecord>),
    Resend {
        message_id: String,
        now_ms: i64,
    },
    /// Takes a delivery that cannot be loaded out of its endpoint's queue.
    Quarantine {
        due_ms: u64,
        key: String,
    },
    Prune(Box<retention::Step>),
    Panic,
}

impl Op {
    /// Writes refused under `store.min_free_bytes`: those that add data, rather than record
    /// what happened to data already accepted or remove data.
    fn adds_data(&self) -> bool {
        match self {
            Self::CreateEndpoint(..)
            | Self::Ingest(_)
            | Self::Resend { .. }
            | Self::Recover { .. } => true,
            Self::CreateToken { only_if_none, .. } => !only_if_none,
            _ => false,
        }
    }
}

pub enum Done {
    Unit,
    Endpoint(Box<Endpoint>),
    /// A yes/no answer: token created; endpoint now disabled.
    Flag(bool),
    Count(usize),
    Counts(usize, usize),
    Pruned(retention::Report),
}

impl Done {
    pub fn endpoint(self) -> Result<Endpoint, StoreError> {
        match self {
            Self::Endpoint(e) => Ok(*e),
            _ => Err(wrong_kind()),
        }
    }

    pub fn count(self) -> Result<usize, StoreError> {
        match self {
            Self::Count(n) => Ok(n),
            _ => Err(wrong_kind()),
        }
    }

    pub fn counts(self) -> Result<(usize, usize), StoreError> {
        match self {
            Self::Counts(a, b) => Ok((a, b)),
            _ => Err(wrong_kind()),
        }
    }

    pub fn flag(self) -> Result<bool, StoreError> {
        match self {
            Self::Flag(b) => Ok(b),
            _ => Err(wrong_kind()),
        }
    }
}

fn wrong_kind() -> StoreError {
    StoreError::Storage("writer answered the wrong kind".into())
}

pub struct Job {
    pub op: Op,
    pub reply: oneshot::Sender<Result<Done, StoreError>>,
}

/// Starts the writer thread.
pub fn start(
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Job>,
    stopped: watch::Sender<bool>,
) -> Result<(), StoreError> {
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
        .map_err(|e| StoreError::Storage(format!("cannot start the writer thread: {e}")))
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

/// Receives jobs, commits each batch in one durable transaction, then answers every job in it.
fn writer_loop(shared: &Shared, mut rx: mpsc::Receiver<Job>) {
    let max_batch = shared.options.max_batch.max(1);
    let mut batch = Vec::with_capacity(max_batch);
    let mut space_checked = Instant::now();
    let routes = shared.routes.clone();
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if space_checked.elapsed() >= SPACE_CHECK {
            shared.refresh_space();
            space_checked = Instant::now();
        }
        let state = shared.state();
        let (run, refused): (Vec<Job>, Vec<Job>) =
            batch.drain(..).partition(|job| state.allows(&job.op));
        for job in refused {
            let _ = job.reply.send(Err(state.refusal(shared)));
        }
        if run.is_empty() {
            continue;
        }
        let started = Instant::now();
        let outcome = shared.db().and_then(|db| commit_batch(&db, &run, &routes));
        if let (Ok(_), Some(m)) = (&outcome, &shared.options.metrics) {
            m.commit_duration.observe(started.elapsed().as_secs_f64());
            #[allow(clippy::cast_precision_loss)]
            m.commit_batch.observe(run.len() as f64);
        }
        match outcome {
            Ok(results) => {
                for (job, result) in run.into_iter().zip(results) {
                    let _ = job.reply.send(result);
                }
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
                reopen(shared, &mut rx);
            }
            Err(e) => {
                tracing::error!(error = %e, jobs = run.len(), "store commit failed");
                for job in run {
                    let _ = job.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// After an I/O error redb refuses everything until the database is closed and opened again:
/// waits for the readers to let go, closes it, and opens it again (retrying while that fails),
/// answering every write that arrives meanwhile with the current refusal.
fn reopen(shared: &Shared, rx: &mut mpsc::Receiver<Job>) {
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
    loop {
        match super::open_db(&shared.path, shared.options.cache_bytes) {
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
}

/// An op that fails on its own terms (not found, conflict, a corrupt record it read) writes
/// nothing and fails alone; a storage error fails the whole batch, since its transaction is not
/// committed.
///
/// Changes to endpoints are staged on a view of the routing table and published once the
/// transaction has committed, before any of its ops is answered.
fn commit_batch(
    db: &Database,
    batch: &[Job],
    routes: &super::routes::Published,
) -> Result<Vec<Result<Done, StoreError>>, StoreError> {
    let txn = db.begin_write()?;
    let (results, staged) = {
        let mut t = Tables::open(&txn)?;
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
        (results, std::mem::take(&mut t.routes))
    };
    txn.commit()?;
    staged.publish();
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
        Op::Panic => panic!("simulated panic of the store writer"),
    }
}
