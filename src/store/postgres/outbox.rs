//! The outbox in PostgreSQL: messages, their deliveries, the attempt log.
//!
//! An alert and its deliveries go in with one statement (one round trip, one commit).
//! Recording an attempt ends the delivery's lease (see [`super::claims`]), in a batch (see
//! [`super::attempts`]).

use super::{pg_err, prep, Store};
use crate::model::{Attempt, Delivery, DeliveryState, Endpoint, Message};
use crate::store::types::{decode, encode};
use crate::store::{AttemptRecord, DeliveryContext, Page, StoreError};

/// A delivery's key, `message/endpoint`, as its two columns.
pub(super) fn split(key: &str) -> Result<(&str, &str), StoreError> {
    key.split_once('/')
        .ok_or_else(|| StoreError::Corrupt(key.to_owned()))
}

impl Store {
    /// Stores `message` and a pending delivery, due now, for each of `targets` that exists and
    /// is enabled at the commit, in one statement; returns how many deliveries.
    pub async fn ingest(
        &self,
        message: Message,
        targets: Vec<String>,
    ) -> Result<usize, StoreError> {
        let routed_with = self.routes_version();
        self.ingest_routed(message, targets, routed_with).await
    }

    /// [`Self::ingest`] of `targets` routed by the table of version `routed_with`: nothing is
    /// stored, and `Stale` returned, if the database's table is newer.
    pub async fn ingest_routed(
        &self,
        message: Message,
        targets: Vec<String>,
        routed_with: i64,
    ) -> Result<usize, StoreError> {
        let client = self.client().await?;
        let record = encode(&message)?;
        // Stored only if `targets` were routed with the database's routing table: with a
        // table older than an endpoint change another instance made, nothing is stored.
        let row = client
            .query_opt(
                &prep(
                    &client,
                    "WITH ok AS (SELECT 1 FROM hookd_routes WHERE version = $5),
                 d AS (
                    INSERT INTO hookd_deliveries (message_id, endpoint_id, due_ms)
                    SELECT $1, id, $3 FROM hookd_endpoints
                    WHERE id = ANY($2) AND NOT disabled AND EXISTS (SELECT 1 FROM ok)
                    RETURNING 1
                 )
                 INSERT INTO hookd_messages (id, record, created_at_ms, pending, ended_at_ms)
                 SELECT $1, $4, $3, count(*), CASE WHEN count(*) = 0 THEN $3 END FROM d
                 HAVING EXISTS (SELECT 1 FROM ok)
                 RETURNING pending, pg_notify('hookd_due', '')::text",
                )
                .await?,
                &[
                    &message.id,
                    &targets,
                    &message.created_at_ms,
                    &record,
                    &routed_with,
                ],
            )
            .await
            .map_err(super::or_conflict("a message with this id exists"))?;
        let Some(row) = row else {
            // Catch up before the caller routes again.
            self.reload_routes().await?;
            return Err(StoreError::Stale);
        };
        let pending: i32 = row.get(0);
        Ok(usize::try_from(pending).unwrap_or(0))
    }

    /// A delivery with its message and endpoint (either may be gone).
    pub async fn delivery(&self, key: &str) -> Result<Option<DeliveryContext>, StoreError> {
        let (message_id, endpoint_id) = split(key)?;
        let client = self.client().await?;
        let row = client
            .query_opt(
                &prep(
                    &client,
                    "SELECT d.attempts, d.failed, d.due_ms, d.failed_at_ms, m.record, e.record
                 FROM hookd_deliveries d
                 LEFT JOIN hookd_messages m ON m.id = d.message_id
                 LEFT JOIN hookd_endpoints e ON e.id = d.endpoint_id
                 WHERE d.message_id = $1 AND d.endpoint_id = $2",
                )
                .await?,
                &[&message_id, &endpoint_id],
            )
            .await
            .map_err(pg_err)?;
        let Some(row) = row else { return Ok(None) };
        let attempts: i32 = row.get(0);
        let failed: bool = row.get(1);
        let delivery = Delivery {
            message_id: message_id.to_owned(),
            endpoint_id: endpoint_id.to_owned(),
            attempts: u32::try_from(attempts).unwrap_or(0),
            state: if failed {
                DeliveryState::Failed
            } else {
                DeliveryState::Pending
            },
            next_attempt_ms: row.get(2),
            failed_at_ms: row.get(3),
        };
        let message = row
            .get::<_, Option<&[u8]>>(4)
            .map(|r| decode::<Message>(message_id, r))
            .transpose()?;
        let endpoint = row
            .get::<_, Option<&[u8]>>(5)
            .map(|r| decode::<Endpoint>(endpoint_id, r))
            .transpose()?;
        Ok(Some((delivery, message, endpoint)))
    }

    /// A message, if it is still kept.
    pub async fn message(&self, id: &str) -> Result<Option<Message>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &prep(&client, "SELECT record FROM hookd_messages WHERE id = $1").await?,
                &[&id],
            )
            .await
            .map_err(pg_err)?;
        row.map(|r| decode(id, r.get(0))).transpose()
    }

    /// Records an attempt and its consequences in one transaction (as the embedded store);
    /// returns whether this attempt disabled the endpoint.
    pub async fn record_attempt(&self, record: AttemptRecord) -> Result<bool, StoreError> {
        // Whatever happens now, this instance stops renewing the lease: recorded, it ends; not
        // recorded, it runs out and the delivery is claimed again.
        if let Some(key) = &record.delivery_key {
            self.inner
                .held
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(key);
        }
        // Recorded with the attempts that finish meanwhile (see [`super::attempts`]).
        let (done, answer) = tokio::sync::oneshot::channel();
        self.inner
            .attempts
            .send(super::attempts::Recording { record, done })
            .map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Requeues, due now, every delivery of `message_id` that gave up; how many.
    pub async fn resend(&self, message_id: String, now_ms: i64) -> Result<usize, StoreError> {
        let mut client = self.client().await?;
        let txn = client.transaction().await.map_err(pg_err)?;
        let found = txn
            .query_opt(
                &prep(
                    &txn,
                    "SELECT 1 FROM hookd_messages WHERE id = $1 FOR UPDATE",
                )
                .await?,
                &[&message_id],
            )
            .await
            .map_err(pg_err)?;
        if found.is_none() {
            return Err(StoreError::NotFound);
        }
        let n = txn
            .execute(
                &prep(
                    &txn,
                    "UPDATE hookd_deliveries SET failed = false, failed_at_ms = NULL, due_ms = $2
                 WHERE message_id = $1 AND failed",
                )
                .await?,
                &[&message_id, &now_ms],
            )
            .await
            .map_err(pg_err)?;
        if n > 0 {
            txn.execute(
                &prep(&txn, "UPDATE hookd_messages SET pending = pending + $2, ended_at_ms = NULL WHERE id = $1").await?,
                &[&message_id, &i32::try_from(n).unwrap_or(i32::MAX)],
            )
            .await
            .map_err(pg_err)?;
            txn.execute(&prep(&txn, "SELECT pg_notify('hookd_due', '')").await?, &[])
                .await
                .map_err(pg_err)?;
        }
        txn.commit().await.map_err(pg_err)?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// Requeues, due now, the deliveries to `endpoint_id` that gave up in
    /// `[since_ms, now_ms]`, in transactions of at most `batch`; how many.
    pub async fn recover(
        &self,
        endpoint_id: String,
        since_ms: i64,
        now_ms: i64,
        batch: usize,
    ) -> Result<usize, StoreError> {
        let batch = i64::try_from(batch.max(1)).unwrap_or(i64::MAX);
        let mut total = 0;
        loop {
            let mut client = self.client().await?;
            let txn = client.transaction().await.map_err(pg_err)?;
            let endpoint = txn
                .query_opt(
                    &prep(
                        &txn,
                        "SELECT disabled FROM hookd_endpoints WHERE id = $1 FOR SHARE",
                    )
                    .await?,
                    &[&endpoint_id],
                )
                .await
                .map_err(pg_err)?
                .ok_or(StoreError::NotFound)?;
            if endpoint.get::<_, bool>(0) {
                return Err(StoreError::Conflict(
                    "the endpoint is disabled; enable it (PATCH disabled: false) before recovering its deliveries",
                ));
            }
            let requeued: Vec<String> = txn
                .query(
                    &prep(&txn, "UPDATE hookd_deliveries SET failed = false, failed_at_ms = NULL, due_ms = $3
                     WHERE (message_id, endpoint_id) IN (
                        SELECT message_id, endpoint_id FROM hookd_deliveries
                        WHERE endpoint_id = $1 AND failed AND failed_at_ms BETWEEN $2 AND $3
                        ORDER BY failed_at_ms LIMIT $4 FOR UPDATE)
                     RETURNING message_id").await?,
                    &[&endpoint_id, &since_ms, &now_ms, &batch],
                )
                .await
                .map_err(pg_err)?
                .iter()
                .map(|r| r.get(0))
                .collect();
            txn.execute(
                &prep(&txn, "UPDATE hookd_messages SET pending = pending + 1, ended_at_ms = NULL WHERE id = ANY($1)").await?,
                &[&requeued],
            )
            .await
            .map_err(pg_err)?;
            if !requeued.is_empty() {
                txn.execute(&prep(&txn, "SELECT pg_notify('hookd_due', '')").await?, &[])
                    .await
                    .map_err(pg_err)?;
            }
            txn.commit().await.map_err(pg_err)?;
            total += requeued.len();
            if i64::try_from(requeued.len()).unwrap_or(i64::MAX) < batch {
                return Ok(total);
            }
        }
    }

    /// Marks the delivery `key`, which cannot be loaded, failed, so it is not tried again on
    /// every pass.
    pub async fn quarantine(&self, _due_ms: u64, key: String) -> Result<(), StoreError> {
        let (message_id, endpoint_id) = split(&key)?;
        let now = crate::time::now_ms();
        let mut client = self.client().await?;
        let txn = client.transaction().await.map_err(pg_err)?;
        let n = txn
            .execute(
                &prep(
                    &txn,
                    "UPDATE hookd_deliveries SET failed = true, failed_at_ms = $3,
                    lease_owner = NULL, lease_until_ms = NULL
                 WHERE message_id = $1 AND endpoint_id = $2 AND NOT failed",
                )
                .await?,
                &[&message_id, &endpoint_id, &now],
            )
            .await
            .map_err(pg_err)?;
        if n > 0 {
            delivery_ended(&txn, message_id, now).await?;
        }
        txn.commit().await.map_err(pg_err)
    }

    /// An endpoint's attempts, newest first, older than `cursor`.
    pub async fn list_attempts(
        &self,
        endpoint_id: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Attempt>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &prep(
                    &client,
                    "SELECT id, record FROM hookd_attempts
                 WHERE endpoint_id = $1 AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3",
                )
                .await?,
                &[
                    &endpoint_id,
                    &cursor.unwrap_or(""),
                    &super::endpoints::fetch(limit),
                ],
            )
            .await
            .map_err(pg_err)?;
        super::endpoints::page(&rows, limit)
    }
}

/// One of the message's pending deliveries ended; the last one ends the message, which
/// retention then removes after `retention.messages_secs`.
pub(super) async fn delivery_ended(
    txn: &deadpool_postgres::Transaction<'_>,
    message_id: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    txn.execute(
        &prep(
            txn,
            "UPDATE hookd_messages SET pending = pending - 1,
            ended_at_ms = CASE WHEN pending = 1 THEN $2::bigint END
         WHERE id = $1 AND pending > 0",
        )
        .await?,
        &[&message_id, &now_ms],
    )
    .await
    .map(drop)
    .map_err(pg_err)
}
