//! Batches for PostgreSQL, of the two requests the API serves most:
//!
//! - **creates** (group commit): the endpoint creates that arrive while one batch is being
//!   written wait together and go in as the next batch, one `INSERT` of many rows (one round
//!   trip, one commit, one WAL flush), the way the embedded store's writer gathers its
//!   requests. The batch's routes are published together, once it committed and before any of
//!   its creates is answered, so a `200` is as durable as one create per transaction and the
//!   next alert routes by it.
//! - **reads by id**: the `GET`s of endpoints that arrive while one batch is being read go as
//!   the next `SELECT ... WHERE id = ANY(...)`. Each query starts after its requests arrived,
//!   so a read sees every create acknowledged before it, on any instance.
//!
//! A lone request is a batch of one and waits for nothing.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Weak};

use tokio::sync::{mpsc, oneshot};

use super::{or_conflict, pg_err, prep, Inner, Store};
use crate::model::Endpoint;
use crate::routing::Matchers;
use crate::store::routes::Routes;
use crate::store::types::encode;
use crate::store::StoreError;

/// Requests in one batch at most.
const MAX_BATCH: usize = 256;

/// One create: the endpoint, its compiled matchers, and where its answer goes.
pub(super) struct Create {
    pub endpoint: Endpoint,
    pub matchers: Arc<Matchers>,
    pub done: oneshot::Sender<Result<(), StoreError>>,
}

/// One read of an endpoint by id, and where its record goes.
pub(super) struct Read {
    pub id: String,
    pub done: oneshot::Sender<Result<Option<Vec<u8>>, StoreError>>,
}

/// Where requests of one kind queue for their task (which ends when the store is dropped).
pub(super) type Queue<T> = mpsc::UnboundedSender<T>;
pub(super) type Creates = Queue<Create>;
pub(super) type Reads = Queue<Read>;

/// A queue for requests of one kind, and its receiving end for [`start`].
pub(super) fn queue<T>() -> (Queue<T>, mpsc::UnboundedReceiver<T>) {
    mpsc::unbounded_channel()
}

/// Serves the requests of `rx` in batches with `each`, until the store is dropped.
pub(super) fn start<T, F, Fut>(store: Weak<Inner>, mut rx: mpsc::UnboundedReceiver<T>, each: F)
where
    T: Send + 'static,
    F: Fn(Store, Vec<T>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
            let Some(inner) = store.upgrade() else { return };
            each(Store { inner }, std::mem::take(&mut batch)).await;
        }
    });
}

/// Inserts `batch` with one statement, publishes its routes and answers each create.
pub(super) async fn write(store: Store, batch: Vec<Create>) {
    let inserted = async {
        let mut records = Vec::with_capacity(batch.len());
        for c in &batch {
            records.push(encode(&c.endpoint)?);
        }
        let ids: Vec<&str> = batch.iter().map(|c| c.endpoint.id.as_str()).collect();
        let disabled: Vec<bool> = batch.iter().map(|c| c.endpoint.disabled).collect();
        let rates: Vec<Option<i64>> = batch.iter().map(|c| super::endpoints::rate(&c.endpoint)).collect();
        let client = store.client().await?;
        // A row whose id exists already is left out (and answered Conflict); the others go in
        // and the other instances are told of each.
        let statement = prep(
            &client,
            "WITH e AS (
                INSERT INTO hookd_endpoints (id, record, disabled, rate_limit)
                SELECT * FROM unnest($1::text[], $2::bytea[], $3::boolean[], $4::bigint[])
                ON CONFLICT (id) DO NOTHING RETURNING id
             ), v AS (UPDATE hookd_routes SET version = version + 1 RETURNING version)
             SELECT e.id, v.version, pg_notify('hookd_endpoints', e.id || ' ' || v.version || ' ' || $5)::text
             FROM e, v",
        )
        .await?;
        let rows = client
            .query(&statement, &[&ids, &records, &disabled, &rates, &store.owner()])
            .await
            .map_err(or_conflict("an endpoint with this id exists"))?;
        let version = rows.first().map_or(0, |r| r.get::<_, i64>(1));
        Ok::<_, StoreError>((
            rows.iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<HashSet<String>>(),
            version,
        ))
    }
    .await;
    if let Ok((ids, version)) = &inserted {
        let mut routes = Routes::begin(&store.inner.routes);
        for c in batch.iter().filter(|c| ids.contains(&c.endpoint.id)) {
            routes.changed(&c.endpoint, Some(&c.matchers));
        }
        store.publish_own(routes, *version).await;
    }
    for create in batch {
        let answer = match &inserted {
            Ok((ids, _)) if ids.contains(&create.endpoint.id) => Ok(()),
            Ok(_) => Err(StoreError::Conflict("an endpoint with this id exists")),
            Err(e) => Err(e.clone()),
        };
        // A request that gave up waiting is gone: nothing to tell.
        let _ = create.done.send(answer);
    }
}

/// Reads the records of `batch` with one query and answers each read.
pub(super) async fn read(store: Store, batch: Vec<Read>) {
    let ids: Vec<&str> = batch.iter().map(|r| r.id.as_str()).collect();
    let found = async { records_by_id(&store.client().await?, &ids).await }.await;
    for read in batch {
        let answer = match &found {
            Ok(records) => Ok(records.get(&read.id).cloned()),
            Err(e) => Err(e.clone()),
        };
        let _ = read.done.send(answer);
    }
}

/// The records of the endpoints `ids` that exist, by id.
pub(super) async fn records_by_id(
    client: &impl deadpool_postgres::GenericClient,
    ids: &[&str],
) -> Result<HashMap<String, Vec<u8>>, StoreError> {
    let statement = prep(
        client,
        "SELECT id, record FROM hookd_endpoints WHERE id = ANY($1)",
    )
    .await?;
    let rows = client.query(&statement, &[&ids]).await.map_err(pg_err)?;
    Ok(rows
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, Vec<u8>>(1)))
        .collect())
}
