//! Retention and counts in PostgreSQL: the same steps as the embedded store's pruner, each a
//! short transaction of at most `retention.batch` rows, and the counts the metrics read (kept
//! by the pruner's loop, since a scrape must not wait for the database).

use super::outbox::delivery_ended;
use super::{pg_err, prep, Store};
use crate::store::{Report, Stats, Step, StoreError};

impl Store {
    /// One retention step (any instance may run one; they do not conflict).
    ///
    /// # Errors
    /// The database refused or is unreachable.
    pub async fn prune(&self, step: Step) -> Result<Report, StoreError> {
        let batch = i64::try_from(step.settings.batch.max(1)).unwrap_or(i64::MAX);
        let now = step.now_ms;
        let mut report = Report::default();
        let mut client = self.client().await?;
        let txn = client.transaction().await.map_err(pg_err)?;
        // 1. What deleted endpoints left; the pending deliveries of disabled ones fail.
        let gone: Vec<(String, bool)> = txn
            .query(
                &prep(
                    &txn,
                    "DELETE FROM hookd_deliveries WHERE (message_id, endpoint_id) IN (
                    SELECT d.message_id, d.endpoint_id FROM hookd_deliveries d
                    WHERE NOT EXISTS (SELECT 1 FROM hookd_endpoints e WHERE e.id = d.endpoint_id)
                    LIMIT $1 FOR UPDATE SKIP LOCKED)
                 RETURNING message_id, failed",
                )
                .await?,
                &[&batch],
            )
            .await
            .map_err(pg_err)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        for (message, failed) in &gone {
            if !failed {
                delivery_ended(&txn, message, now).await?;
            }
        }
        report.deliveries += gone.len();
        let failed: Vec<String> = txn
            .query(
                &prep(
                    &txn,
                    "UPDATE hookd_deliveries SET failed = true, failed_at_ms = $2,
                    lease_owner = NULL, lease_until_ms = NULL
                 WHERE (message_id, endpoint_id) IN (
                    SELECT d.message_id, d.endpoint_id FROM hookd_deliveries d
                    JOIN hookd_endpoints e ON e.id = d.endpoint_id
                    WHERE e.disabled AND NOT d.failed LIMIT $1 FOR UPDATE OF d SKIP LOCKED)
                 RETURNING message_id",
                )
                .await?,
                &[&batch, &now],
            )
            .await
            .map_err(pg_err)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for message in &failed {
            delivery_ended(&txn, message, now).await?;
        }
        let orphans = txn
            .execute(
                &prep(
                    &txn,
                    "DELETE FROM hookd_attempts WHERE (endpoint_id, id) IN (
                    SELECT a.endpoint_id, a.id FROM hookd_attempts a
                    WHERE NOT EXISTS (SELECT 1 FROM hookd_endpoints e WHERE e.id = a.endpoint_id)
                    LIMIT $1)",
                )
                .await?,
                &[&batch],
            )
            .await
            .map_err(pg_err)?;
        report.attempts += usize::try_from(orphans).unwrap_or(0);
        // 2. Messages whose deliveries all ended long enough ago, with their deliveries.
        let ended: Vec<String> = txn
            .query(
                &prep(
                    &txn,
                    "DELETE FROM hookd_messages WHERE id IN (
                    SELECT id FROM hookd_messages WHERE pending = 0 AND ended_at_ms < $2
                    LIMIT $1 FOR UPDATE SKIP LOCKED)
                 RETURNING id",
                )
                .await?,
                &[&batch, &now.saturating_sub(step.settings.messages_ms)],
            )
            .await
            .map_err(pg_err)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        report.messages += ended.len();
        let deliveries = txn
            .execute(
                &prep(
                    &txn,
                    "DELETE FROM hookd_deliveries WHERE message_id = ANY($1)",
                )
                .await?,
                &[&ended],
            )
            .await
            .map_err(pg_err)?;
        report.deliveries += usize::try_from(deliveries).unwrap_or(0);
        // 3. The attempt log: by age, then by count per endpoint.
        let old = txn
            .execute(
                &prep(
                    &txn,
                    "DELETE FROM hookd_attempts WHERE (endpoint_id, id) IN (
                    SELECT endpoint_id, id FROM hookd_attempts WHERE at_ms < $2 LIMIT $1)",
                )
                .await?,
                &[&batch, &now.saturating_sub(step.settings.attempts_ms)],
            )
            .await
            .map_err(pg_err)?;
        let keep = i64::try_from(step.settings.attempts_per_endpoint).unwrap_or(i64::MAX);
        let over = txn
            .execute(
                &prep(
                    &txn,
                    "DELETE FROM hookd_attempts WHERE (endpoint_id, id) IN (
                    SELECT endpoint_id, id FROM (
                        SELECT endpoint_id, id, row_number() OVER (
                            PARTITION BY endpoint_id ORDER BY id DESC) AS n
                        FROM hookd_attempts) ranked
                    WHERE n > $2 LIMIT $1)",
                )
                .await?,
                &[&batch, &keep],
            )
            .await
            .map_err(pg_err)?;
        report.attempts += usize::try_from(old + over).unwrap_or(0);
        txn.commit().await.map_err(pg_err)?;
        let full = |n: usize| i64::try_from(n).unwrap_or(i64::MAX) >= batch;
        report.more = full(gone.len())
            || full(failed.len())
            || full(ended.len())
            || full(usize::try_from(old.max(over)).unwrap_or(0));
        Ok(report)
    }

    /// Runs retention until the task is dropped (see [`crate::store::retention::run`]).
    pub async fn run_retention(
        self,
        settings: tokio::sync::watch::Receiver<crate::store::Retention>,
    ) {
        let wake = self.inner.clone();
        crate::store::retention::run(settings, &wake.prune_wake, |step| self.prune(step)).await;
    }

    /// Counts the records (several scans: run by the pruner's loop, not per scrape).
    pub(crate) async fn count(&self) -> Result<Stats, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                &prep(
                    &client,
                    "SELECT
                    (SELECT count(*) FROM hookd_endpoints),
                    (SELECT count(*) FROM hookd_endpoints WHERE disabled),
                    (SELECT count(*) FROM hookd_messages),
                    (SELECT count(*) FROM hookd_messages WHERE pending = 0),
                    (SELECT min(created_at_ms) FROM hookd_messages WHERE pending > 0),
                    (SELECT count(*) FROM hookd_deliveries),
                    (SELECT count(*) FROM hookd_deliveries WHERE NOT failed),
                    (SELECT count(*) FROM hookd_attempts),
                    pg_total_relation_size('hookd_messages'),
                    pg_total_relation_size('hookd_deliveries')",
                )
                .await?,
                &[],
            )
            .await
            .map_err(pg_err)?;
        let n = |i: usize| u64::try_from(row.get::<_, i64>(i)).unwrap_or(0);
        Ok(Stats {
            endpoints: n(0),
            disabled_endpoints: n(1),
            messages: n(2),
            ended_messages: n(3),
            oldest_pending_ms: row.get(4),
            deliveries: n(5),
            pending_deliveries: n(6),
            attempts: n(7),
            message_bytes: n(8),
            delivery_bytes: n(9),
        })
    }
}
