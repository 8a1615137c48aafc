//! The store: the only module that knows redb.
//!
//! Handlers get a cheap-to-clone [`Store`] with typed methods and never see a transaction. Reads
//! open a read transaction each (MVCC, never blocked by the writer). Writes are sent to one writer
//! thread that gathers whatever requests are waiting into one durable transaction (group commit),
//! so throughput grows with concurrency while every acknowledged write is on disk.
//!
//! Records are JSON behind a one-byte schema version, so later versions can migrate them.
//! The delivery outbox and attempt log are in [`outbox`].

mod outbox;

pub use outbox::{AttemptRecord, EndpointEffect};

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, Table, TableDefinition,
    WriteTransaction,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};

use crate::model::{Attempt, Delivery, Endpoint, EndpointPatch, Message, SealedSecret, Token};

const ENDPOINTS: TableDefinition<&str, &[u8]> = TableDefinition::new("endpoints");
const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens");
/// SHA-256 of a token's plaintext -> token id.
const TOKEN_HASHES: TableDefinition<&[u8], &str> = TableDefinition::new("token_hashes");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Accepted alerts by message id.
const MESSAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("messages");
/// The outbox: `message_id/endpoint_id` -> [`Delivery`].
const DELIVERIES: TableDefinition<&str, &[u8]> = TableDefinition::new("deliveries");
/// Pending deliveries by due time: (due Unix ms, delivery key) -> ().
const DUE: TableDefinition<(u64, &str), ()> = TableDefinition::new("due");
/// The attempt log: `endpoint_id/attempt_id` -> [`Attempt`].
const ATTEMPTS: TableDefinition<&str, &[u8]> = TableDefinition::new("attempts");

/// `meta` key naming how token hashes are made; absent in stores that kept bare SHA-256.
const TOKEN_HASH_SCHEME: &str = "token_hash_scheme";
/// HMAC-SHA256 under a key derived from the master key (`MasterKey::token_hash`).
const TOKEN_HASH_HMAC: &[u8] = b"hmac-sha256-v2";

/// Version byte in front of every record, and the store's schema version in `meta`.
const SCHEMA_VERSION: u8 = 1;
/// How many queued writes the writer's channel holds before callers wait.
const QUEUE_DEPTH: usize = 8192;
/// At most this many previous secrets are kept through rapid rotations.
const MAX_PREVIOUS_SECRETS: usize = 8;

/// Store failures. `NotFound` and `Conflict` are the caller's; the rest are logged and become 500.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("storage: {0}")]
    Storage(String),
    #[error("record {0} is corrupt or of an unknown schema version")]
    Corrupt(String),
    #[error("the store's writer has stopped")]
    WriterGone,
}

impl From<redb::Error> for StoreError {
    fn from(e: redb::Error) -> Self {
        Self::Storage(e.to_string())
    }
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                Self::Storage(e.to_string())
            }
        }
    )*};
}
storage_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// A cheap-to-clone handle on the open store.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    writer: mpsc::Sender<Job>,
    /// Becomes `true` if the writer thread dies (a panic): every later write would fail.
    writer_stopped: watch::Receiver<bool>,
}

/// A delivery with its message and endpoint, either of which may have been deleted.
pub type DeliveryContext = (Delivery, Option<Message>, Option<Endpoint>);

/// One page of a list.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The id to pass as the next cursor, when there are more items.
    pub next: Option<String>,
}

impl Store {
    /// Opens (or creates) the store file and starts its writer thread.
    ///
    /// # Errors
    /// The file cannot be opened (another process has it, permissions, corruption) or was written
    /// by a newer hookd.
    pub fn open(path: &Path, max_batch: usize, cache_bytes: usize) -> Result<Self, StoreError> {
        let db = Arc::new(
            Database::builder()
                .set_cache_size(cache_bytes)
                .create(path)?,
        );
        let txn = db.begin_write()?;
        {
            txn.open_table(ENDPOINTS)?;
            txn.open_table(TOKENS)?;
            txn.open_table(TOKEN_HASHES)?;
            txn.open_table(MESSAGES)?;
            txn.open_table(DELIVERIES)?;
            txn.open_table(DUE)?;
            txn.open_table(ATTEMPTS)?;
            let mut meta = txn.open_table(META)?;
            let version = meta.get("schema_version")?.map(|v| v.value().to_vec());
            match version.as_deref() {
                None => {
                    meta.insert("schema_version", [SCHEMA_VERSION].as_slice())?;
                }
                Some([v]) if *v <= SCHEMA_VERSION => {}
                Some(_) => {
                    return Err(StoreError::Storage(
                        "the store was written by a newer hookd; upgrade hookd".into(),
                    ))
                }
            }
        }
        txn.commit()?;
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let (stopped_tx, writer_stopped) = watch::channel(false);
        let writer_db = db.clone();
        std::thread::Builder::new()
            .name("hookd-store-writer".into())
            .spawn(move || {
                let mut guard = WriterGuard {
                    stopped: stopped_tx,
                    clean: false,
                };
                writer_loop(&writer_db, rx, max_batch.max(1));
                guard.clean = true;
            })
            .map_err(|e| StoreError::Storage(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            db,
            writer: tx,
            writer_stopped,
        })
    }

    /// Completes if the writer thread dies. hookd cannot write after that, so the server stops
    /// and exits non-zero, for a supervisor to restart it.
    pub async fn writer_stopped(&self) {
        let mut rx = self.writer_stopped.clone();
        let _ = rx.wait_for(|stopped| *stopped).await;
    }

    /// Makes the writer thread panic, as a bug in it would: for the test of what hookd does
    /// then. Not reachable from the API.
    #[doc(hidden)]
    pub async fn simulate_writer_panic(&self) {
        let _ = self.write(Op::Panic).await;
    }

    /// Whether the store answers reads and its writer is running.
    pub fn is_ready(&self) -> bool {
        !self.writer.is_closed()
            && !*self.writer_stopped.borrow()
            && self
                .db
                .begin_read()
                .map(|t| t.open_table(META).is_ok())
                .unwrap_or(false)
    }

    // ---- endpoints -------------------------------------------------------------------------

    pub fn get_endpoint(&self, id: &str) -> Result<Option<Endpoint>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ENDPOINTS)?;
        let value = table.get(id)?;
        value.map(|v| decode(id, v.value())).transpose()
    }

    /// Endpoints in id (creation) order, starting after `cursor`.
    pub fn list_endpoints(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Endpoint>, StoreError> {
        let txn = self.db.begin_read()?;
        list(&txn.open_table(ENDPOINTS)?, cursor, limit)
    }

    /// Inserts a new endpoint; its id must be new.
    pub async fn create_endpoint(&self, endpoint: Endpoint) -> Result<(), StoreError> {
        self.write(Op::CreateEndpoint(endpoint)).await.map(drop)
    }

    /// Applies `patch` and sets `updated_at_ms`; returns the endpoint as stored.
    pub async fn update_endpoint(
        &self,
        id: String,
        patch: EndpointPatch,
        now_ms: i64,
    ) -> Result<Endpoint, StoreError> {
        self.write(Op::UpdateEndpoint { id, patch, now_ms })
            .await?
            .endpoint()
    }

    pub async fn delete_endpoint(&self, id: String) -> Result<(), StoreError> {
        self.write(Op::DeleteEndpoint(id)).await.map(drop)
    }

    /// Makes `secret` current; the old current secret keeps signing until
    /// `now_ms + grace_ms`. Expired previous secrets are dropped.
    pub async fn rotate_secret(
        &self,
        id: String,
        secret: SealedSecret,
        now_ms: i64,
        grace_ms: i64,
    ) -> Result<Endpoint, StoreError> {
        self.write(Op::RotateSecret {
            id,
            secret,
            now_ms,
            grace_ms,
        })
        .await?
        .endpoint()
    }

    // ---- tokens ----------------------------------------------------------------------------

    pub fn token_by_hash(&self, hash: &[u8]) -> Result<Option<Token>, StoreError> {
        let txn = self.db.begin_read()?;
        let Some(id) = txn
            .open_table(TOKEN_HASHES)?
            .get(hash)?
            .map(|v| v.value().to_owned())
        else {
            return Ok(None);
        };
        let table = txn.open_table(TOKENS)?;
        let value = table.get(id.as_str())?;
        value.map(|v| decode(&id, v.value())).transpose()
    }

    pub fn list_tokens(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Token>, StoreError> {
        let txn = self.db.begin_read()?;
        list(&txn.open_table(TOKENS)?, cursor, limit)
    }

    pub async fn create_token(&self, token: Token) -> Result<(), StoreError> {
        self.write(Op::CreateToken {
            token,
            only_if_none: false,
        })
        .await
        .map(drop)
    }

    /// Creates `token` only if the store has no tokens at all; returns whether it did.
    pub async fn bootstrap_token(&self, token: Token) -> Result<bool, StoreError> {
        match self
            .write(Op::CreateToken {
                token,
                only_if_none: true,
            })
            .await?
        {
            Done::Flag(created) => Ok(created),
            Done::Unit | Done::Endpoint(_) | Done::Count(_) => Ok(true),
        }
    }

    /// Deletes a token. Refuses (409) to delete the last token with the `admin` scope, which
    /// would lock everyone out.
    pub async fn revoke_token(&self, id: String) -> Result<(), StoreError> {
        self.write(Op::RevokeToken(id)).await.map(drop)
    }

    // ---- outbox ----------------------------------------------------------------------------

    /// Stores `message` and one pending delivery, due now, for every endpoint not disabled, in
    /// one durable transaction. Returns how many deliveries it queued.
    pub async fn ingest(&self, message: Message) -> Result<usize, StoreError> {
        match self.write(Op::Ingest(message)).await? {
            Done::Count(n) => Ok(n),
            _ => Err(StoreError::Storage("writer answered the wrong kind".into())),
        }
    }

    /// Calls `visit` with the due time and key of each pending delivery due at or before
    /// `now_ms`, earliest first, until it returns `false` or `max` keys have been seen.
    pub fn scan_due(
        &self,
        now_ms: i64,
        max: usize,
        visit: impl FnMut(u64, &str) -> bool,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_read()?;
        outbox::scan_due(&txn.open_table(DUE)?, now_ms, max, visit)
    }

    /// A delivery with its message and endpoint (either may be gone).
    pub fn delivery(&self, key: &str) -> Result<Option<DeliveryContext>, StoreError> {
        let txn = self.db.begin_read()?;
        let deliveries = txn.open_table(DELIVERIES)?;
        let Some(d) = deliveries
            .get(key)?
            .map(|v| decode::<Delivery>(key, v.value()))
            .transpose()?
        else {
            return Ok(None);
        };
        let messages = txn.open_table(MESSAGES)?;
        let message = messages
            .get(d.message_id.as_str())?
            .map(|v| decode(&d.message_id, v.value()))
            .transpose()?;
        let endpoints = txn.open_table(ENDPOINTS)?;
        let endpoint = endpoints
            .get(d.endpoint_id.as_str())?
            .map(|v| decode(&d.endpoint_id, v.value()))
            .transpose()?;
        Ok(Some((d, message, endpoint)))
    }

    /// Takes the delivery `key`, due at `due_ms`, which cannot be loaded (its record, its
    /// message's or its endpoint's is corrupt), out of the due index, and marks it failed if
    /// its own record still reads; so it is not tried again on every pass.
    pub async fn quarantine(&self, due_ms: u64, key: String) -> Result<(), StoreError> {
        self.write(Op::Quarantine { due_ms, key }).await.map(drop)
    }

    /// Records an attempt and its consequences (delivery rescheduled, finished or failed;
    /// endpoint failure tracking) in one transaction. Returns whether the endpoint is now
    /// disabled.
    pub async fn record_attempt(&self, record: AttemptRecord) -> Result<bool, StoreError> {
        match self.write(Op::RecordAttempt(Box::new(record))).await? {
            Done::Flag(disabled) => Ok(disabled),
            _ => Err(StoreError::Storage("writer answered the wrong kind".into())),
        }
    }

    /// Requeues, due now, every delivery of `message_id` that gave up. Returns how many.
    pub async fn resend(&self, message_id: String, now_ms: i64) -> Result<usize, StoreError> {
        match self.write(Op::Resend { message_id, now_ms }).await? {
            Done::Count(n) => Ok(n),
            _ => Err(StoreError::Storage("writer answered the wrong kind".into())),
        }
    }

    /// An endpoint's attempts, newest first, starting after (older than) `cursor`.
    pub fn list_attempts(
        &self,
        endpoint_id: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Attempt>, StoreError> {
        let txn = self.db.begin_read()?;
        outbox::list_attempts(&txn.open_table(ATTEMPTS)?, endpoint_id, cursor, limit)
    }

    /// Brings every token's stored hash to the current scheme: `rehash` maps a stored SHA-256
    /// digest (scheme 1) to its scheme-2 hash. Runs once per store (the scheme is recorded in
    /// `meta`, in the same transaction); returns how many tokens it rehashed.
    pub async fn migrate_token_hashes(
        &self,
        rehash: impl Fn(&[u8]) -> [u8; 32],
    ) -> Result<usize, StoreError> {
        if self.meta(TOKEN_HASH_SCHEME)?.as_deref() == Some(TOKEN_HASH_HMAC) {
            return Ok(0);
        }
        let txn = self.db.begin_read()?;
        let tokens = txn.open_table(TOKENS)?;
        let mut changes = Vec::new();
        for entry in tokens.iter()? {
            let (k, v) = entry?;
            let token: Token = decode(k.value(), v.value())?;
            let new = rehash(&token.hash).to_vec();
            changes.push((token.id, token.hash, new));
        }
        drop((tokens, txn));
        match self.write(Op::RehashTokens(changes)).await? {
            Done::Count(n) => Ok(n),
            _ => Err(StoreError::Storage("writer answered the wrong kind".into())),
        }
    }

    // ---- meta ------------------------------------------------------------------------------

    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read()?;
        let value = txn.open_table(META)?.get(key)?.map(|v| v.value().to_vec());
        Ok(value)
    }

    pub async fn set_meta(&self, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        self.write(Op::SetMeta(key.to_owned(), value))
            .await
            .map(drop)
    }

    async fn write(&self, op: Op) -> Result<Done, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.writer
            .send(Job { op, reply })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }
}

fn list<T: DeserializeOwned, Tb: ReadableTable<&'static str, &'static [u8]>>(
    table: &Tb,
    cursor: Option<&str>,
    limit: usize,
) -> Result<Page<T>, StoreError> {
    let start = cursor.map_or(Bound::Unbounded, Bound::Excluded);
    let mut items = Vec::with_capacity(limit.min(256));
    let mut last = None;
    let mut more = false;
    for entry in table.range::<&str>((start, Bound::Unbounded))? {
        let (k, v) = entry?;
        if items.len() == limit {
            more = true;
            break;
        }
        items.push(decode(k.value(), v.value())?);
        last = Some(k.value().to_owned());
    }
    Ok(Page {
        items,
        next: if more { last } else { None },
    })
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![SCHEMA_VERSION];
    serde_json::to_writer(&mut out, value).map_err(|e| StoreError::Storage(e.to_string()))?;
    Ok(out)
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&SCHEMA_VERSION, json)) => {
            serde_json::from_slice(json).map_err(|_| StoreError::Corrupt(key.to_owned()))
        }
        _ => Err(StoreError::Corrupt(key.to_owned())),
    }
}

// ---- the writer ----------------------------------------------------------------------------

enum Op {
    CreateEndpoint(Endpoint),
    UpdateEndpoint {
        id: String,
        patch: EndpointPatch,
        now_ms: i64,
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
    RevokeToken(String),
    SetMeta(String, Vec<u8>),
    Ingest(Message),
    RecordAttempt(Box<AttemptRecord>),
    Resend {
        message_id: String,
        now_ms: i64,
    },
    /// (token id, stored hash, new hash) for every token, and the scheme recorded.
    RehashTokens(Vec<(String, Vec<u8>, Vec<u8>)>),
    /// Takes a delivery that cannot be loaded out of the due index.
    Quarantine {
        due_ms: u64,
        key: String,
    },
    Panic,
}

enum Done {
    Unit,
    Endpoint(Box<Endpoint>),
    /// A yes/no answer: token created; endpoint now disabled.
    Flag(bool),
    Count(usize),
}

impl Done {
    fn endpoint(self) -> Result<Endpoint, StoreError> {
        match self {
            Self::Endpoint(e) => Ok(*e),
            _ => Err(StoreError::Storage("writer answered the wrong kind".into())),
        }
    }
}

struct Job {
    op: Op,
    reply: oneshot::Sender<Result<Done, StoreError>>,
}

/// The tables of one write transaction, opened once per batch.
struct Tables<'t> {
    endpoints: Table<'t, &'static str, &'static [u8]>,
    tokens: Table<'t, &'static str, &'static [u8]>,
    token_hashes: Table<'t, &'static [u8], &'static str>,
    meta: Table<'t, &'static str, &'static [u8]>,
    messages: Table<'t, &'static str, &'static [u8]>,
    deliveries: Table<'t, &'static str, &'static [u8]>,
    due: Table<'t, (u64, &'static str), ()>,
    attempts: Table<'t, &'static str, &'static [u8]>,
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
/// An op that fails on its own terms (not found, conflict, a corrupt record it read) writes
/// nothing and fails alone; a storage error fails the whole batch, since its transaction is not
/// committed.
fn writer_loop(db: &Database, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
    let mut batch = Vec::with_capacity(max_batch);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        match commit_batch(db, &batch) {
            Ok(results) => {
                for (job, result) in batch.drain(..).zip(results) {
                    let _ = job.reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, jobs = batch.len(), "store commit failed");
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(StoreError::Storage(e.to_string())));
                }
            }
        }
    }
}

fn commit_batch(db: &Database, batch: &[Job]) -> Result<Vec<Result<Done, StoreError>>, StoreError> {
    let txn = db.begin_write()?;
    let results = {
        let mut t = open_tables(&txn)?;
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
        results
    };
    txn.commit()?;
    Ok(results)
}

fn open_tables(txn: &WriteTransaction) -> Result<Tables<'_>, StoreError> {
    Ok(Tables {
        endpoints: txn.open_table(ENDPOINTS)?,
        tokens: txn.open_table(TOKENS)?,
        token_hashes: txn.open_table(TOKEN_HASHES)?,
        meta: txn.open_table(META)?,
        messages: txn.open_table(MESSAGES)?,
        deliveries: txn.open_table(DELIVERIES)?,
        due: txn.open_table(DUE)?,
        attempts: txn.open_table(ATTEMPTS)?,
    })
}

/// Applies one op. Ops read (and decode) everything before their first write, so a
/// `NotFound`, `Conflict` or `Corrupt` leaves the transaction untouched.
fn apply(t: &mut Tables<'_>, op: &Op) -> Result<Done, StoreError> {
    match op {
        Op::CreateEndpoint(e) => {
            if t.endpoints.get(e.id.as_str())?.is_some() {
                return Err(StoreError::Conflict("an endpoint with this id exists"));
            }
            t.endpoints.insert(e.id.as_str(), encode(e)?.as_slice())?;
            Ok(Done::Unit)
        }
        Op::UpdateEndpoint { id, patch, now_ms } => {
            let mut e: Endpoint = get(&t.endpoints, id)?;
            if let Some(name) = &patch.name {
                e.name.clone_from(name);
            }
            if let Some(url) = &patch.url {
                e.url.clone_from(url);
            }
            if let Some(enabled) = patch.signing_enabled {
                e.signing_enabled = enabled;
            }
            if let Some(disabled) = patch.disabled {
                e.disabled = disabled;
                if !disabled {
                    e.failing_since_ms = None;
                }
            }
            e.updated_at_ms = (*now_ms).max(e.updated_at_ms);
            t.endpoints.insert(id.as_str(), encode(&e)?.as_slice())?;
            Ok(Done::Endpoint(Box::new(e)))
        }
        Op::DeleteEndpoint(id) => match t.endpoints.remove(id.as_str())? {
            Some(_) => Ok(Done::Unit),
            None => Err(StoreError::NotFound),
        },
        Op::RotateSecret {
            id,
            secret,
            now_ms,
            grace_ms,
        } => {
            let mut e: Endpoint = get(&t.endpoints, id)?;
            let mut old = std::mem::replace(&mut e.secret, secret.clone());
            old.expires_at_ms = Some(now_ms.saturating_add(*grace_ms));
            e.previous_secrets
                .retain(|s| s.expires_at_ms.is_some_and(|x| x > *now_ms));
            if *grace_ms > 0 {
                e.previous_secrets.insert(0, old);
            }
            e.previous_secrets.truncate(MAX_PREVIOUS_SECRETS);
            e.updated_at_ms = (*now_ms).max(e.updated_at_ms);
            t.endpoints.insert(id.as_str(), encode(&e)?.as_slice())?;
            Ok(Done::Endpoint(Box::new(e)))
        }
        Op::CreateToken {
            token,
            only_if_none,
        } => {
            if *only_if_none && !t.tokens.is_empty()? {
                return Ok(Done::Flag(false));
            }
            if t.token_hashes.get(token.hash.as_slice())?.is_some() {
                return Err(StoreError::Conflict("a token with this value exists"));
            }
            t.tokens
                .insert(token.id.as_str(), encode(token)?.as_slice())?;
            t.token_hashes
                .insert(token.hash.as_slice(), token.id.as_str())?;
            Ok(Done::Flag(true))
        }
        Op::RevokeToken(id) => {
            let token: Token = get(&t.tokens, id)?;
            if token.grants(crate::model::Scope::Admin) {
                let mut admins = 0;
                for entry in t.tokens.iter()? {
                    let (k, v) = entry?;
                    let other: Token = decode(k.value(), v.value())?;
                    admins += usize::from(other.scopes.contains(&crate::model::Scope::Admin));
                }
                if admins <= 1 {
                    return Err(StoreError::Conflict(
                        "this is the last admin token; create another admin token first",
                    ));
                }
            }
            t.tokens.remove(id.as_str())?;
            t.token_hashes.remove(token.hash.as_slice())?;
            Ok(Done::Unit)
        }
        Op::SetMeta(key, value) => {
            t.meta.insert(key.as_str(), value.as_slice())?;
            Ok(Done::Unit)
        }
        Op::RehashTokens(changes) => {
            let mut tokens = Vec::with_capacity(changes.len());
            for (id, old, new) in changes {
                let token: Token = get(&t.tokens, id)?;
                // Skip one changed since it was read (nothing changes tokens during startup).
                if token.hash == *old {
                    tokens.push((token, old, new));
                }
            }
            for (mut token, old, new) in tokens.iter().cloned() {
                token.hash = new.clone();
                t.tokens
                    .insert(token.id.as_str(), encode(&token)?.as_slice())?;
                t.token_hashes.remove(old.as_slice())?;
                t.token_hashes.insert(new.as_slice(), token.id.as_str())?;
            }
            t.meta.insert(TOKEN_HASH_SCHEME, TOKEN_HASH_HMAC)?;
            Ok(Done::Count(tokens.len()))
        }
        Op::Quarantine { due_ms, key } => {
            outbox::quarantine(t, *due_ms, key)?;
            Ok(Done::Unit)
        }
        Op::Panic => panic!("simulated panic of the store writer"),
        Op::Ingest(message) => outbox::ingest(t, message).map(Done::Count),
        Op::RecordAttempt(record) => outbox::record_attempt(t, record).map(Done::Flag),
        Op::Resend { message_id, now_ms } => {
            outbox::resend(t, message_id, *now_ms).map(Done::Count)
        }
    }
}

fn get<T: DeserializeOwned>(
    table: &Table<'_, &'static str, &'static [u8]>,
    id: &str,
) -> Result<T, StoreError> {
    let value = table.get(id)?.ok_or(StoreError::NotFound)?;
    decode(id, value.value())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn endpoint(id: &str) -> Endpoint {
        Endpoint {
            id: id.into(),
            name: "n".into(),
            url: "https://example.com/".into(),
            signing_enabled: true,
            secret: SealedSecret {
                sealed: vec![1, 2, 3],
                mask: "****abcd".into(),
                expires_at_ms: None,
            },
            previous_secrets: vec![],
            created_at_ms: 1,
            updated_at_ms: 1,
            disabled: false,
            failing_since_ms: None,
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    #[test]
    fn crud_paging_and_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb"), 64, 1 << 20).unwrap();
        rt().block_on(async {
            for i in 0..5 {
                store
                    .create_endpoint(endpoint(&format!("wh-{i}")))
                    .await
                    .unwrap();
            }
            assert!(matches!(
                store.create_endpoint(endpoint("wh-0")).await,
                Err(StoreError::Conflict(_))
            ));
            let p = store.list_endpoints(None, 2).unwrap();
            assert_eq!(p.items.len(), 2);
            assert_eq!(p.next.as_deref(), Some("wh-1"));
            let p = store.list_endpoints(Some("wh-3"), 2).unwrap();
            assert_eq!(p.items.len(), 1);
            assert!(p.next.is_none());

            let patch = EndpointPatch {
                name: Some("renamed".into()),
                ..EndpointPatch::default()
            };
            let e = store
                .update_endpoint("wh-1".into(), patch.clone(), 50)
                .await
                .unwrap();
            assert_eq!((e.name.as_str(), e.updated_at_ms), ("renamed", 50));
            assert!(matches!(
                store.update_endpoint("wh-x".into(), patch, 50).await,
                Err(StoreError::NotFound)
            ));

            let new = SealedSecret {
                sealed: vec![9],
                mask: "****wxyz".into(),
                expires_at_ms: None,
            };
            let e = store
                .rotate_secret("wh-1".into(), new.clone(), 100, 1000)
                .await
                .unwrap();
            assert_eq!(e.secret, new);
            assert_eq!(e.previous_secrets[0].expires_at_ms, Some(1100));
            let e = store
                .rotate_secret("wh-1".into(), new, 5000, 1000)
                .await
                .unwrap();
            assert_eq!(
                e.previous_secrets.len(),
                1,
                "expired previous secret is dropped"
            );

            store.delete_endpoint("wh-1".into()).await.unwrap();
            assert!(store.get_endpoint("wh-1").unwrap().is_none());
            assert!(matches!(
                store.delete_endpoint("wh-1".into()).await,
                Err(StoreError::NotFound)
            ));
        });
    }

    #[test]
    fn corrupt_records_are_errors_not_panics() {
        assert!(matches!(
            decode::<Endpoint>("k", b""),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            decode::<Endpoint>("k", b"\x09{}"),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            decode::<Endpoint>("k", b"\x01{"),
            Err(StoreError::Corrupt(_))
        ));
    }
}
