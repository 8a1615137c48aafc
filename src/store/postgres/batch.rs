//! Batches for PostgreSQL, of the two requests the API serves most:
//!
//! - **creates** (group commit): the endpoint creates that arrive while one batch is being
//!   written wait together and go in as the next batch, one `INSERT` of many rows (one round
//!   trip, one commit, one WAL flush), the way the embedded store's writer gathers its
//!   requests. Each create is answered only after its batch committed, so a `200` is as
//!   durable as one create per transaction.
//! - **reads by id**: the `GET`s of endpoints that arrive while one batch is being read go as
//!   the next `SELECT ... WHERE id = ANY(...)`. Each query starts after its requests arrived,
//!   so a read sees every create acknowledged before it, on any instance.
//!
//! A lone request is a batch of one and waits for nothing.

use deadpool_postgres::Pool;
use tokio::sync::{mpsc, oneshot};

use super::{or_conflict, pg_err};
use crate::store::StoreError;

/// Creates in one batch at most.
const MAX_BATCH: usize = 256;

/// One create: the row's columns, and where its answer goes.
pub(super) struct Create {
    pub id: String,
    pub record: Vec<u8>,
    pub disabled: bool,
    pub rate_limit: Option<i64>,
    /// The routing table's version after the batch, or why it failed.
    pub done: oneshot::Sender<Result<i64, StoreError>>,
}

/// Where creates queue for the writer task (which ends when this is dropped).
pub(super) type Creates = mpsc::UnboundedSender<Create>;

/// Starts the writer task on `pool`; creates sent to the returned queue are written in batches.
pub(super) fn start(pool: Pool) -> Creates {
    let (tx, mut rx) = mpsc::unbounded_channel::<Create>();
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
            write(&pool, &mut batch).await;
        }
    });
    tx
}

/// Inserts `batch` with one statement and answers each create.
async fn write(pool: &Pool, batch: &mut Vec<Create>) {
    let ids: Vec<&str> = batch.iter().map(|c| c.id.as_str()).collect();
    let records: Vec<&[u8]> = batch.iter().map(|c| c.record.as_slice()).collect();
    let disabled: Vec<bool> = batch.iter().map(|c| c.disabled).collect();
    let rates: Vec<Option<i64>> = batch.iter().map(|c| c.rate_limit).collect();
    let inserted = async {
        let client = super::pooled(pool).await?;
        // A row whose id exists already is left out (and answered Conflict); the others go in
        // and the other instances are told of each.
        let statement = client
            .prepare_cached(
                "WITH e AS (
                    INSERT INTO hookd_endpoints (id, record, disabled, rate_limit)
                    SELECT * FROM unnest($1::text[], $2::bytea[], $3::boolean[], $4::bigint[])
                    ON CONFLICT (id) DO NOTHING RETURNING id
                 ), v AS (UPDATE hookd_routes SET version = version + 1 RETURNING version)
                 SELECT e.id, v.version, pg_notify('hookd_endpoints', e.id || ' ' || v.version)::text
                 FROM e, v",
            )
            .await
            .map_err(pg_err)?;
        let rows = client
            .query(&statement, &[&ids, &records, &disabled, &rates])
            .await
            .map_err(or_conflict("an endpoint with this id exists"))?;
        let version = rows.first().map_or(0, |r| r.get::<_, i64>(1));
        Ok::<_, StoreError>((
            rows.iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<std::collections::HashSet<String>>(),
            version,
        ))
    }
    .await;
    for create in batch.drain(..) {
        let answer = match &inserted {
            Ok((ids, version)) if ids.contains(&create.id) => Ok(*version),
            Ok(_) => Err(StoreError::Conflict("an endpoint with this id exists")),
            Err(e) => Err(e.clone()),
        };
        // A request that gave up waiting is gone: nothing to tell.
        let _ = create.done.send(answer);
    }
}

/// One read of an endpoint by id, and where its record goes.
pub(super) struct Read {
    pub id: String,
    pub done: oneshot::Sender<Result<Option<Vec<u8>>, StoreError>>,
}

/// Where reads queue for the reader task (which ends when this is dropped).
pub(super) type Reads = mpsc::UnboundedSender<Read>;

/// Starts the reader task on `pool`; reads sent to the returned queue are made in batches.
pub(super) fn start_reads(pool: Pool) -> Reads {
    let (tx, mut rx) = mpsc::unbounded_channel::<Read>();
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
            read(&pool, &mut batch).await;
        }
    });
    tx
}

/// Reads the records of `batch` with one query and answers each read.
async fn read(pool: &Pool, batch: &mut Vec<Read>) {
    let ids: Vec<&str> = batch.iter().map(|r| r.id.as_str()).collect();
    let found = async {
        let client = super::pooled(pool).await?;
        let statement = client
            .prepare_cached("SELECT id, record FROM hookd_endpoints WHERE id = ANY($1)")
            .await
            .map_err(pg_err)?;
        let rows = client.query(&statement, &[&ids]).await.map_err(pg_err)?;
        Ok::<_, StoreError>(
            rows.iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, Vec<u8>>(1)))
                .collect::<std::collections::HashMap<String, Vec<u8>>>(),
        )
    }
    .await;
    for read in batch.drain(..) {
        let answer = match &found {
            Ok(records) => Ok(records.get(&read.id).cloned()),
            Err(e) => Err(e.clone()),
        };
        let _ = read.done.send(answer);
    }
}
