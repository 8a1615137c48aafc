//! What commits a batch of writes, one at a time: the writer thread for what waits in its
//! queue, or the caller's own thread for a lone write to a quiet store ([`commit_alone`]), which
//! saves waking the writer and then the caller (at one connection, a fifth of a create's CPU).
//! Both go through [`Committer::run`]: the store's state decides what may be written, one
//! transaction commits the rest, and every write is answered only once durable.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::PoisonError;
use std::time::Instant;

use redb::Database;

use super::ops::{Done, Job, Op};
use super::tables::Tables;
use super::wal::{self, Log};
use super::writer::{free_bytes, WriteState, SPACE_CHECK, SURELY_FULL};
use super::{endpoints, outbox, retention, Shared, StoreError};
use crate::store::routes::Routes;

/// A store whose last this many commits were of one write each is quiet: its lone writes commit
/// on their callers' threads.
const QUIET: u32 = 8;

thread_local! {
    /// Set on a thread where a write committing (an `fdatasync`) holds up no other request.
    static MAY_BLOCK: Cell<bool> = const { Cell::new(false) };
}

/// Tells the store whether a write that commits on this thread would hold up no other request
/// (a serving thread with one HTTP/1 connection: see `server::lanes`). Elsewhere, lone writes
/// commit on their callers' threads only on a runtime of several worker threads.
pub fn lone_commits_here(allowed: bool) {
    let _ = MAY_BLOCK.try_with(|here| here.set(allowed));
}

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
/// is quiet (its last [`QUIET`] commits were of one write each), nothing else is committing, the
/// store is writable and open, and no other request waits for this thread (see
/// [`lone_commits_here`]); otherwise leaves `op` as it is. The flag is
/// `true` after an I/O error: the writer thread must reopen the database (the caller wakes it).
pub(super) fn commit_alone(
    shared: &Shared,
    op: &mut Option<Op>,
) -> Option<(Result<Done, StoreError>, bool)> {
    // A busy store, the common case under load, is told apart by one atomic load, first.
    if matches!(op, None | Some(Op::Panic)) || shared.lone.load(Ordering::Acquire) < QUIET {
        return None;
    }
    // On a runtime of one thread serving several requests, a write committing there would hold
    // up every other one, and none of them could join its commit: each would commit alone in
    // turn.
    let others_run = MAY_BLOCK.try_with(Cell::get).unwrap_or(false)
        || tokio::runtime::Handle::try_current()
            .is_ok_and(|runtime| runtime.metrics().num_workers() > 1);
    if !others_run || shared.is_closed() || shared.state() != WriteState::Ok {
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
    pub(super) space_checked: Option<Instant>,
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
    pub(super) fn run(&mut self, shared: &Shared, batch: Vec<Job>) -> bool {
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
