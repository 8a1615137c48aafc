//! Attempts recorded in batches: the attempts that finish while one batch is being recorded
//! go in as the next, in one transaction of a few statements whatever its size (the
//! endpoints read, the deliveries locked, then the deliveries ended or requeued, the messages'
//! counts, the attempt log, sent together), where one transaction per attempt took seven round
//! trips and a commit each, and a hundred deliveries of one alert queued for its message's row
//! one commit after another. Each attempt is answered after its batch committed, as before.
//!
//! Rows are locked in one order (deliveries, endpoints and messages by id), so two instances'
//! batches wait for each other rather than deadlock; a batch that fails all the same is
//! recorded again one attempt at a time, so one bad attempt fails alone.

use std::collections::{BTreeMap, HashMap};

use tokio::sync::oneshot;

use super::{pg_err, prep, Store};
use crate::model::{AttemptOutcome, Endpoint};
use crate::store::routes::Routes;
use crate::store::rules::{self, Change};
use crate::store::types::{decode, encode};
use crate::store::{AttemptRecord, StoreError};

/// One attempt to record, and where its answer goes: whether it disabled its endpoint.
pub(super) struct Recording {
    pub record: AttemptRecord,
    pub done: oneshot::Sender<Result<bool, StoreError>>,
}

/// Records `batch` in one transaction and answers each attempt.
pub(super) async fn record(store: Store, batch: Vec<Recording>) {
    let records: Vec<&AttemptRecord> = batch.iter().map(|r| &r.record).collect();
    let answers = match store.record_all(&records).await {
        Ok(answers) => answers.into_iter().map(Ok).collect(),
        Err(e) if records.len() == 1 => vec![Err(e)],
        Err(e) => {
            tracing::warn!(attempts = records.len(), error = %e, "recording a batch of attempts failed; recording them one by one");
            let mut answers = Vec::with_capacity(records.len());
            for record in &records {
                answers.push(store.record_all(&[record]).await.map(|d| d[0]));
            }
            answers
        }
    };
    for (recording, answer) in batch.into_iter().zip(answers) {
        // A dispatcher that stopped waiting is gone: nothing to tell.
        let _ = recording.done.send(answer);
    }
}

/// What the attempts do to the deliveries and messages, as columns for the statements.
#[derive(Default)]
struct Outbox<'a> {
    /// Deliveries ended (succeeded, or their endpoint is gone): message and endpoint ids.
    deleted: (Vec<&'a str>, Vec<&'a str>),
    /// Deliveries kept, retried or given up.
    kept: Kept<'a>,
    /// One entry per delivery ended: its message, and when.
    ended: (Vec<&'a str>, Vec<i64>),
}

/// Deliveries kept, as columns.
#[derive(Default)]
struct Kept<'a> {
    messages: Vec<&'a str>,
    endpoints: Vec<&'a str>,
    attempts: Vec<i32>,
    /// When each is due again, or when it gave up.
    at: Vec<i64>,
    gave_up: Vec<bool>,
}

impl Store {
    /// [`Self::record_once`], again if the database aborted it (a deadlock).
    async fn record_all(&self, records: &[&AttemptRecord]) -> Result<Vec<bool>, StoreError> {
        let mut tries = 0;
        loop {
            match self.record_once(records).await {
                Err(e) if super::is_aborted(&e) && tries < 3 => tries += 1,
                done => return done,
            }
        }
    }

    /// Records `records` and their consequences in one transaction; for each, whether it
    /// disabled its endpoint.
    async fn record_once(&self, records: &[&AttemptRecord]) -> Result<Vec<bool>, StoreError> {
        let mut client = self.client().await?;
        let txn = client.transaction().await.map_err(pg_err)?;
        // The endpoints as they are, without a lock: most attempts leave their endpoint as it
        // is, and deliveries to one endpoint must not queue behind each other's commits.
        let mut ids: Vec<&str> = records
            .iter()
            .map(|r| r.attempt.endpoint_id.as_str())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut endpoints = HashMap::new();
        for (id, record) in super::batch::records_by_id(&txn, &ids).await? {
            let e = decode::<Endpoint>(&id, &record)?;
            endpoints.insert(id, e);
        }
        let outbox = self.outbox_rows(&txn, records, &endpoints).await?;

        // What the attempts do to each endpoint, in the order they were made; a real change
        // locks the row (in id order) and applies them again to the row as it is now.
        let mut by_endpoint: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, r) in records.iter().enumerate() {
            by_endpoint
                .entry(r.attempt.endpoint_id.as_str())
                .or_default()
                .push(i);
        }
        let mut disabled_by = vec![false; records.len()];
        let mut disabled = Vec::new();
        for (id, made) in &by_endpoint {
            let Some(read) = endpoints.get(*id) else {
                continue;
            };
            let mut probe = read.clone();
            apply(&mut probe, made, records);
            if probe == *read {
                continue;
            }
            let mut endpoint = super::endpoints::locked_endpoint(&txn, id).await?;
            let before = endpoint.clone();
            if let Some(i) = apply(&mut endpoint, made, records) {
                disabled_by[i] = true;
            }
            if endpoint == before {
                continue;
            }
            exec(
                &txn,
                "UPDATE hookd_endpoints SET record = $2, disabled = $3 WHERE id = $1",
                &[id, &encode(&endpoint)?, &endpoint.disabled],
            )
            .await?;
            if endpoint.disabled && !before.disabled {
                exec(&txn, "SELECT pg_notify('hookd_endpoints', $1)", &[id]).await?;
                disabled.push(endpoint);
            }
        }

        // The rest goes together: the statements are sent at once and run in order.
        let mut log = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for r in records
            .iter()
            .filter(|r| endpoints.contains_key(&r.attempt.endpoint_id))
        {
            // No attempt log for an endpoint that no longer exists.
            let a = &r.attempt;
            log.0.push(a.endpoint_id.as_str());
            log.1.push(a.id.as_str());
            log.2.push(a.at_ms);
            log.3.push(encode(a)?);
        }
        let Outbox { deleted, ended, .. } = &outbox;
        let (messages, at) = ended;
        let mut locked_messages = messages.clone();
        locked_messages.sort_unstable();
        locked_messages.dedup();
        let kept = &outbox.kept;
        let deleted: [Param; 2] = [&deleted.0, &deleted.1];
        let kept: [Param; 5] = [
            &kept.messages,
            &kept.endpoints,
            &kept.attempts,
            &kept.at,
            &kept.gave_up,
        ];
        let locked_messages: [Param; 1] = [&locked_messages];
        let ended: [Param; 2] = [messages, at];
        let log: [Param; 4] = [&log.0, &log.1, &log.2, &log.3];
        tokio::try_join!(
            exec(
                &txn,
                "DELETE FROM hookd_deliveries WHERE (message_id, endpoint_id) IN
                 (SELECT * FROM unnest($1::text[], $2::text[]))",
                &deleted,
            ),
            // Retried (due again at `at`) or given up (failed at `at`).
            exec(
                &txn,
                "UPDATE hookd_deliveries d SET attempts = x.a, failed = x.gave_up,
                    due_ms = CASE WHEN x.gave_up THEN d.due_ms ELSE x.at END,
                    failed_at_ms = CASE WHEN x.gave_up THEN x.at END,
                    lease_owner = NULL, lease_until_ms = NULL
                 FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[], $5::boolean[])
                    AS x(m, e, a, at, gave_up)
                 WHERE d.message_id = x.m AND d.endpoint_id = x.e",
                &kept,
            ),
            exec(
                &txn,
                "SELECT 1 FROM hookd_messages WHERE id = ANY($1) ORDER BY id FOR UPDATE",
                &locked_messages,
            ),
            // A message's deliveries that ended: the last one ends the message, which
            // retention then removes after `retention.messages_secs`.
            exec(
                &txn,
                "UPDATE hookd_messages m SET pending = greatest(m.pending - x.n, 0),
                    ended_at_ms = CASE WHEN m.pending <= x.n THEN x.at END
                 FROM (SELECT id, count(*)::int AS n, max(at) AS at
                       FROM unnest($1::text[], $2::bigint[]) AS u(id, at) GROUP BY id) x
                 WHERE m.id = x.id AND m.pending > 0",
                &ended,
            ),
            exec(
                &txn,
                "INSERT INTO hookd_attempts (endpoint_id, id, at_ms, record)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bytea[])
                 ON CONFLICT DO NOTHING",
                &log,
            ),
        )?;
        txn.commit().await.map_err(pg_err)?;
        if !disabled.is_empty() {
            let mut routes = Routes::begin(&self.inner.routes);
            for endpoint in &disabled {
                routes.changed(endpoint, None);
            }
            routes.publish();
        }
        Ok(disabled_by)
    }

    /// Locks the deliveries `records` attempted (in id order) and says what becomes of each.
    async fn outbox_rows<'a>(
        &self,
        txn: &deadpool_postgres::Transaction<'_>,
        records: &[&'a AttemptRecord],
        endpoints: &HashMap<String, Endpoint>,
    ) -> Result<Outbox<'a>, StoreError> {
        let mut keys = Vec::new();
        for (i, r) in records.iter().enumerate() {
            if let Some(key) = &r.delivery_key {
                let (message_id, endpoint_id) = super::outbox::split(key)?;
                keys.push((message_id, endpoint_id, i));
            }
        }
        keys.sort_unstable();
        let messages: Vec<&str> = keys.iter().map(|k| k.0).collect();
        let endpoint_ids: Vec<&str> = keys.iter().map(|k| k.1).collect();
        let rows = txn
            .query(
                &prep(
                    txn,
                    "SELECT message_id, endpoint_id, attempts FROM hookd_deliveries
                     WHERE (message_id, endpoint_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
                       AND NOT failed
                     ORDER BY message_id, endpoint_id FOR UPDATE",
                )
                .await?,
                &[&messages, &endpoint_ids],
            )
            .await
            .map_err(pg_err)?;
        let mut open: HashMap<(&str, &str), i32> = rows
            .iter()
            .map(|row| ((row.get(0), row.get(1)), row.get(2)))
            .collect();
        let mut outbox = Outbox::default();
        for (message_id, endpoint_id, i) in keys {
            // Gone (ended, or deleted meanwhile), or already seen in this batch.
            let Some(before) = open.remove(&(message_id, endpoint_id)) else {
                continue;
            };
            let a = &records[i].attempt;
            let attempts = before.max(i32::try_from(a.attempt).unwrap_or(i32::MAX));
            match (a.outcome, a.next_attempt_ms) {
                _ if !endpoints.contains_key(endpoint_id) => {
                    outbox.deleted.0.push(message_id);
                    outbox.deleted.1.push(endpoint_id);
                }
                (AttemptOutcome::Succeeded, _) => {
                    outbox.deleted.0.push(message_id);
                    outbox.deleted.1.push(endpoint_id);
                }
                (outcome, next) => {
                    let retry = match (outcome, next) {
                        (AttemptOutcome::Retrying, Some(next)) => Some(next),
                        _ => None,
                    };
                    let kept = &mut outbox.kept;
                    kept.messages.push(message_id);
                    kept.endpoints.push(endpoint_id);
                    kept.attempts.push(attempts);
                    kept.at.push(retry.unwrap_or(a.at_ms));
                    kept.gave_up.push(retry.is_none());
                    if retry.is_some() {
                        continue;
                    }
                }
            }
            outbox.ended.0.push(message_id);
            outbox.ended.1.push(a.at_ms);
        }
        Ok(outbox)
    }
}

/// A statement's parameter.
type Param<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);

/// Runs one statement of the batch's transaction.
async fn exec(
    txn: &deadpool_postgres::Transaction<'_>,
    sql: &str,
    params: &[Param<'_>],
) -> Result<u64, StoreError> {
    txn.execute(&prep(txn, sql).await?, params)
        .await
        .map_err(pg_err)
}

/// Applies the effects of the attempts `made` (indexes into `records`, in order) to `e`;
/// which of them disabled it, if one did.
fn apply(e: &mut Endpoint, made: &[usize], records: &[&AttemptRecord]) -> Option<usize> {
    let mut disabled_by = None;
    for &i in made {
        let r = records[i];
        let was_disabled = e.disabled;
        if rules::attempt_effect(e, r.effect) == Change::Disable {
            e.disabled = true;
        }
        if e.disabled && !was_disabled {
            e.updated_at_ms = e.updated_at_ms.max(r.attempt.at_ms);
            disabled_by = Some(i);
        }
    }
    disabled_by
}
