//! Taking a whole store in (`hookd migrate --from-redb`): all or nothing, in one transaction
//! that inserts the records in batches, counts what the tables hold and commits only when every
//! count matches what was read. Only a database that holds no endpoint, token or message yet is
//! taken: a migration never merges two stores.

use tokio::sync::mpsc;
use tokio_postgres::types::ToSql;
use tokio_postgres::Transaction;

use super::{pg_err, Store};
use crate::model::{DeliveryState, Scope};
use crate::store::types::Moved;
use crate::store::StoreError;

/// Records per `INSERT`.
const BATCH: usize = 1_000;

/// How many records of each kind: read from the source, then found in the database.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub endpoints: u64,
    pub tokens: u64,
    pub meta: u64,
    pub messages: u64,
    pub deliveries: u64,
    pub attempts: u64,
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} endpoints, {} tokens, {} messages, {} deliveries, {} attempts",
            self.endpoints, self.tokens, self.messages, self.deliveries, self.attempts
        )
    }
}

impl Store {
    /// Inserts every record `records` yields until the `None` that says the source was read to
    /// its end, then checks the counts and commits; calls `progress` after each batch. Returns
    /// what the database holds.
    ///
    /// # Errors
    /// The database already holds a store, the source ended without its `None`, a count
    /// differs (nothing is committed then), or a database error.
    pub async fn import(
        &self,
        records: &mut mpsc::Receiver<Option<Moved>>,
        progress: &mut dyn FnMut(&Counts),
    ) -> Result<Counts, StoreError> {
        let mut client = self.client().await?;
        let txn = client.transaction().await.map_err(pg_err)?;
        // No instance writes while the store moves in (one that tries waits for the commit).
        txn.batch_execute(
            "LOCK TABLE hookd_endpoints, hookd_tokens, hookd_meta, hookd_messages, hookd_deliveries, hookd_attempts IN EXCLUSIVE MODE",
        )
        .await
        .map_err(pg_err)?;
        let held = counts(&txn).await?;
        if held.endpoints + held.tokens + held.messages > 0 {
            return Err(StoreError::Storage(format!(
                "the database already holds {held}: hookd migrate moves a store only into a database no hookd has written to"
            )));
        }
        // What an instance started on the empty database left in `meta` (its master key's
        // check) describes no data: the store's entries replace it.
        txn.batch_execute("DELETE FROM hookd_meta")
            .await
            .map_err(pg_err)?;
        let mut read = Counts::default();
        let mut batch: Vec<Moved> = Vec::with_capacity(BATCH);
        let mut whole = false;
        while let Some(record) = records.recv().await {
            let Some(record) = record else {
                whole = true;
                break;
            };
            let other = batch
                .first()
                .is_some_and(|b| std::mem::discriminant(b) != std::mem::discriminant(&record));
            if other || batch.len() == BATCH {
                insert(&txn, &mut batch, &mut read).await?;
                progress(&read);
            }
            batch.push(record);
        }
        if !whole {
            return Err(StoreError::Storage(
                "the source could not be read to its end: nothing was committed".into(),
            ));
        }
        insert(&txn, &mut batch, &mut read).await?;
        progress(&read);
        // Each message counts its deliveries still pending (those of deleted endpoints stayed
        // behind); one with none has ended.
        txn.batch_execute(
            "UPDATE hookd_messages m SET pending = d.n, ended_at_ms = NULL
                FROM (SELECT message_id, count(*)::integer AS n FROM hookd_deliveries
                      WHERE NOT failed GROUP BY message_id) d
                WHERE m.id = d.message_id;
             UPDATE hookd_messages SET ended_at_ms = (extract(epoch FROM now()) * 1000)::bigint
                WHERE pending = 0 AND ended_at_ms IS NULL;
             UPDATE hookd_routes SET version = version + 1;
             SELECT pg_notify('hookd_endpoints', id) FROM hookd_endpoints;
             SELECT pg_notify('hookd_due', '')",
        )
        .await
        .map_err(pg_err)?;
        let found = counts(&txn).await?;
        if found != read {
            return Err(StoreError::Storage(format!(
                "read {read} ({} meta entries) but the database holds {found} ({}): nothing was committed",
                read.meta, found.meta
            )));
        }
        txn.commit().await.map_err(pg_err)?;
        Ok(found)
    }
}

/// What the tables hold.
async fn counts(txn: &Transaction<'_>) -> Result<Counts, StoreError> {
    let row = txn
        .query_one(
            "SELECT (SELECT count(*) FROM hookd_endpoints), (SELECT count(*) FROM hookd_tokens),
                    (SELECT count(*) FROM hookd_meta), (SELECT count(*) FROM hookd_messages),
                    (SELECT count(*) FROM hookd_deliveries), (SELECT count(*) FROM hookd_attempts)",
            &[],
        )
        .await
        .map_err(pg_err)?;
    let n = |i: usize| u64::try_from(row.get::<_, i64>(i)).unwrap_or(0);
    Ok(Counts {
        endpoints: n(0),
        tokens: n(1),
        meta: n(2),
        messages: n(3),
        deliveries: n(4),
        attempts: n(5),
    })
}

/// Inserts `batch` (records of one kind) with one statement, and counts them in `read`.
async fn insert(
    txn: &Transaction<'_>,
    batch: &mut Vec<Moved>,
    read: &mut Counts,
) -> Result<(), StoreError> {
    let Some(first) = batch.first() else {
        return Ok(());
    };
    let n = batch.len() as u64;
    let (sql, columns): (&str, Vec<Box<dyn ToSql + Sync + Send>>) = match first {
        Moved::Endpoint(..) => {
            read.endpoints += n;
            let mut c = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for m in batch.drain(..) {
                if let Moved::Endpoint(e, record) = m {
                    c.2.push(e.disabled);
                    c.3.push(super::endpoints::rate(&e));
                    c.0.push(e.id);
                    c.1.push(record);
                }
            }
            (
                "INSERT INTO hookd_endpoints (id, record, disabled, rate_limit)
                 SELECT * FROM unnest($1::text[], $2::bytea[], $3::boolean[], $4::bigint[])",
                vec![Box::new(c.0), Box::new(c.1), Box::new(c.2), Box::new(c.3)],
            )
        }
        Moved::Token(..) => {
            read.tokens += n;
            let mut c = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for m in batch.drain(..) {
                if let Moved::Token(t, record) = m {
                    c.2.push(t.scopes.contains(&Scope::Admin));
                    c.3.push(t.expires_at_ms);
                    c.0.push(t.id);
                    c.1.push(t.hash);
                    c.4.push(record);
                }
            }
            (
                "INSERT INTO hookd_tokens (id, hash, admin, expires_at_ms, record)
                 SELECT * FROM unnest($1::text[], $2::bytea[], $3::boolean[], $4::bigint[], $5::bytea[])",
                vec![Box::new(c.0), Box::new(c.1), Box::new(c.2), Box::new(c.3), Box::new(c.4)],
            )
        }
        Moved::Meta(..) => {
            read.meta += n;
            let mut c = (Vec::new(), Vec::new());
            for m in batch.drain(..) {
                if let Moved::Meta(key, value) = m {
                    c.0.push(key);
                    c.1.push(value);
                }
            }
            (
                "INSERT INTO hookd_meta (key, value) SELECT * FROM unnest($1::text[], $2::bytea[])",
                vec![Box::new(c.0), Box::new(c.1)],
            )
        }
        Moved::Message(..) => {
            read.messages += n;
            let mut c = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for m in batch.drain(..) {
                if let Moved::Message(message, record, ended) = m {
                    c.2.push(message.created_at_ms);
                    c.3.push(ended);
                    c.0.push(message.id);
                    c.1.push(record);
                }
            }
            (
                "INSERT INTO hookd_messages (id, record, created_at_ms, pending, ended_at_ms)
                 SELECT id, record, created_at_ms, 0, ended_at_ms
                 FROM unnest($1::text[], $2::bytea[], $3::bigint[], $4::bigint[])
                    AS u(id, record, created_at_ms, ended_at_ms)",
                vec![Box::new(c.0), Box::new(c.1), Box::new(c.2), Box::new(c.3)],
            )
        }
        Moved::Delivery(..) => {
            read.deliveries += n;
            let mut c = (
                Vec::new(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
            );
            for m in batch.drain(..) {
                if let Moved::Delivery(d) = m {
                    c.2.push(i32::try_from(d.attempts).unwrap_or(i32::MAX));
                    c.3.push(d.state == DeliveryState::Failed);
                    c.4.push(d.next_attempt_ms);
                    c.5.push(d.failed_at_ms);
                    c.0.push(d.message_id);
                    c.1.push(d.endpoint_id);
                }
            }
            (
                "INSERT INTO hookd_deliveries (message_id, endpoint_id, attempts, failed, due_ms, failed_at_ms)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::integer[], $4::boolean[], $5::bigint[], $6::bigint[])",
                vec![
                    Box::new(c.0),
                    Box::new(c.1),
                    Box::new(c.2),
                    Box::new(c.3),
                    Box::new(c.4),
                    Box::new(c.5),
                ],
            )
        }
        Moved::Attempt(..) => {
            read.attempts += n;
            let mut c = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for m in batch.drain(..) {
                if let Moved::Attempt(a, record) = m {
                    c.2.push(a.at_ms);
                    c.0.push(a.endpoint_id);
                    c.1.push(a.id);
                    c.3.push(record);
                }
            }
            (
                "INSERT INTO hookd_attempts (endpoint_id, id, at_ms, record)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bytea[])",
                vec![Box::new(c.0), Box::new(c.1), Box::new(c.2), Box::new(c.3)],
            )
        }
    };
    let params: Vec<&(dyn ToSql + Sync)> = columns
        .iter()
        .map(|c| c.as_ref() as &(dyn ToSql + Sync))
        .collect();
    txn.execute(sql, &params).await.map(drop).map_err(pg_err)
}
