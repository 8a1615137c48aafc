//! The store boundary: what hookd keeps, behind one handle whichever backend keeps it.
//!
//! Handlers, delivery and the server get a cheap-to-clone [`Store`] with typed methods and never
//! see a transaction or a backend type; [`types`] is the vocabulary the methods speak. Every
//! write is durable before its method returns. The backends:
//!
//! - [`embedded`]: redb in one file of the data directory (the default, and the only module
//!   that knows redb), with a group-committing writer thread;
//! - `postgres` (cargo feature `postgres`): several instances on one PostgreSQL database,
//!   sharing the work by leased claims.
//!
//! What both apply the same way is here: [`rules`] (what a write does to a record),
//! [`routes`] (the routing table), [`retention`] (the pruner's loop) and the metrics.
//!
//! A backend is one variant of a private enum, so a call costs a `match`: no boxed future and
//! no allocation at the boundary. The reads that the API serves are `async`, for backends that
//! answer over a network; the embedded one answers at once.

pub mod embedded;
mod gauges;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod retention;
pub mod routes;
pub mod rules;
pub mod types;

pub use embedded::{backup, lone_commits_here, offline, Options, Testing, WriteState, STORE_FILE};
pub use gauges::{Gauges, StoreMetrics};
pub use types::{
    AttemptRecord, DeliveryContext, EndpointEffect, Ingest, Page, Report, Retention, Stats, Step,
    StoreError, Take,
};

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::model::{Attempt, Endpoint, EndpointPatch, Message, SealedSecret, Token};
use crate::routing::{Matchers, RouteTable};

/// A cheap-to-clone handle on the open store.
#[derive(Clone)]
pub struct Store(Backend);

#[derive(Clone)]
enum Backend {
    Embedded(embedded::Store),
    #[cfg(feature = "postgres")]
    Postgres(postgres::Store),
}

/// Runs the first body with `$e` bound to the embedded backend's handle, or the second with
/// `$p` bound to PostgreSQL's (one body: the same for both).
macro_rules! on {
    ($self:expr, $s:ident => $body:expr) => {
        on!($self, $s => $body, $s => $body)
    };
    ($self:expr, $e:ident => $eb:expr, $p:ident => $pb:expr) => {
        match &$self.0 {
            Backend::Embedded($e) => $eb,
            #[cfg(feature = "postgres")]
            Backend::Postgres($p) => $pb,
        }
    };
}

impl Store {
    /// Opens (or creates) the embedded store at `path` (see [`embedded::Store::open`]).
    ///
    /// # Errors
    /// The file cannot be opened (another process has it, permissions, corruption) or was
    /// written by a newer hookd.
    pub fn open_embedded(path: &Path, options: Options) -> Result<Self, StoreError> {
        embedded::Store::open(path, options).map(|s| Self(Backend::Embedded(s)))
    }

    /// Connects to PostgreSQL (see [`postgres::Store::connect`]).
    ///
    /// # Errors
    /// A bad URL, an unreachable database, a refused migration.
    #[cfg(feature = "postgres")]
    pub async fn connect_postgres(options: &postgres::Options) -> Result<Self, StoreError> {
        postgres::Store::connect(options)
            .await
            .map(|s| Self(Backend::Postgres(s)))
    }

    /// Which backend keeps the data: `embedded` or `postgres`.
    pub fn backend(&self) -> &'static str {
        on!(self, _s => "embedded", _s => "postgres")
    }

    /// Notified when deliveries may have become due through another instance (a backend
    /// shared by several); `None` when only this process writes.
    pub fn due_elsewhere(&self) -> Option<Arc<tokio::sync::Notify>> {
        on!(self, _s => None, s => Some(s.due()))
    }

    /// Tells the other instances of a shared backend that this one opened the circuit of
    /// `endpoint` until `next_probe_ms`, or closed it (`None`); nothing on the embedded store.
    #[cfg(feature = "postgres")]
    pub fn tell_circuit(&self, endpoint: &str, next_probe_ms: Option<i64>) {
        on!(self, _s => {}, s => s.tell_circuit(endpoint, next_probe_ms));
    }

    /// What [`Self::tell_circuit`] says on the other instances; `None` when only this process
    /// delivers.
    #[cfg(feature = "postgres")]
    pub fn circuit_news(&self) -> Option<postgres::CircuitNews> {
        on!(self, _s => None, s => Some(s.circuit_news()))
    }

    // Endpoints.

    pub async fn get_endpoint(&self, id: &str) -> Result<Option<Endpoint>, StoreError> {
        on!(self, s => s.get_endpoint(id), s => s.get_endpoint(id).await)
    }

    pub async fn list_endpoints(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Endpoint>, StoreError> {
        on!(self, s => s.list_endpoints(cursor, limit), s => s.list_endpoints(cursor, limit).await)
    }

    pub async fn create_endpoint(
        &self,
        endpoint: Endpoint,
        matchers: Arc<Matchers>,
    ) -> Result<(), StoreError> {
        on!(self, s => s.create_endpoint(endpoint, matchers).await)
    }

    pub async fn update_endpoint(
        &self,
        id: String,
        patch: EndpointPatch,
        now_ms: i64,
        matchers: Option<Arc<Matchers>>,
    ) -> Result<Endpoint, StoreError> {
        on!(self, s => s.update_endpoint(id, patch, now_ms, matchers).await)
    }

    pub async fn delete_endpoint(&self, id: String) -> Result<(), StoreError> {
        on!(self, s => s.delete_endpoint(id).await)
    }

    pub async fn rotate_secret(
        &self,
        id: String,
        secret: SealedSecret,
        now_ms: i64,
        grace_ms: i64,
    ) -> Result<Endpoint, StoreError> {
        on!(self, s => s.rotate_secret(id, secret, now_ms, grace_ms).await)
    }

    /// The routing table as of the last commit: route an alert against it, then
    /// [`Store::ingest`] it with the endpoints chosen.
    pub fn routes(&self) -> Arc<RouteTable> {
        on!(self, s => s.routes())
    }

    // Tokens and settings.

    pub async fn token_by_hash(&self, hash: &[u8]) -> Result<Option<Token>, StoreError> {
        on!(self, s => s.token_by_hash(hash), s => s.token_by_hash(hash).await)
    }

    pub async fn list_tokens(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Token>, StoreError> {
        on!(self, s => s.list_tokens(cursor, limit), s => s.list_tokens(cursor, limit).await)
    }

    pub async fn create_token(&self, token: Token) -> Result<(), StoreError> {
        on!(self, s => s.create_token(token).await)
    }

    /// Stores the bootstrap token unless an admin token exists; whether it was stored.
    pub async fn bootstrap_token(&self, token: Token) -> Result<bool, StoreError> {
        on!(self, s => s.bootstrap_token(token).await)
    }

    pub async fn revoke_token(&self, id: String, now_ms: i64) -> Result<(), StoreError> {
        on!(self, s => s.revoke_token(id, now_ms).await)
    }

    /// Replaces every token's lookup hash by `rehash` of it; how many there were.
    pub async fn migrate_token_hashes(
        &self,
        rehash: impl Fn(&[u8]) -> [u8; 32],
    ) -> Result<usize, StoreError> {
        on!(self, s => s.migrate_token_hashes(rehash).await)
    }

    /// Records when tokens were last used (id, Unix ms).
    pub async fn touch_tokens(&self, uses: Vec<(String, i64)>) -> Result<(), StoreError> {
        on!(self, s => s.touch_tokens(uses).await)
    }

    pub async fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        on!(self, s => s.meta(key), s => s.meta(key).await)
    }

    pub async fn set_meta(&self, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        on!(self, s => s.set_meta(key, value).await)
    }

    // The outbox.

    /// Stores `message` and a pending delivery, due now, for each of `targets`, in one
    /// transaction; how many deliveries.
    pub async fn ingest(
        &self,
        message: Message,
        targets: Vec<String>,
    ) -> Result<usize, StoreError> {
        on!(self, s => s.ingest(message, targets).await)
    }

    /// Which endpoint changes the routing table includes (read it before [`Self::routes`]);
    /// always 0 on the embedded store, whose table is never behind.
    #[cfg(feature = "postgres")]
    pub fn routes_version(&self) -> i64 {
        on!(self, _s => 0, s => s.routes_version())
    }

    /// [`Self::ingest`] with `targets` routed by a table of `routed_with` (see
    /// [`Self::routes_version`]): `Stale` if the database's table has changed since.
    #[cfg(feature = "postgres")]
    pub async fn ingest_routed(
        &self,
        message: Message,
        targets: Vec<String>,
        routed_with: i64,
    ) -> Result<usize, StoreError> {
        on!(self, s => s.ingest(message, targets).await, s => s.ingest_routed(message, targets, routed_with).await)
    }

    /// Makes the deliveries to `endpoint_id` that failed since `since_ms` pending again, at
    /// most `batch`; how many.
    pub async fn recover(
        &self,
        endpoint_id: String,
        since_ms: i64,
        now_ms: i64,
        batch: usize,
    ) -> Result<usize, StoreError> {
        on!(self, s => s.recover(endpoint_id, since_ms, now_ms, batch).await)
    }

    /// Offers the due deliveries to `take`, endpoint by endpoint, each endpoint at most its
    /// `share` (and `throttle` for a rate-limited one); when the next one not yet due is due.
    /// Blocking: run it off the async workers.
    pub fn scan_due(
        &self,
        now_ms: i64,
        share: impl FnMut(&str) -> usize,
        throttle: impl FnMut(&str, u32) -> usize,
        take: impl FnMut(&str, u64) -> Take,
    ) -> Result<Option<u64>, StoreError> {
        on!(self, s => s.scan_due(now_ms, share, throttle, take), s => {
            let (mut share, mut throttle, mut take) = (share, throttle, take);
            // On a blocking thread (the dispatcher's pass): the claims' round trips wait here.
            tokio::runtime::Handle::current().block_on(s.claim_due(
                now_ms,
                &mut share,
                &mut throttle,
                &mut take,
            ))
        })
    }

    pub async fn delivery(&self, key: &str) -> Result<Option<DeliveryContext>, StoreError> {
        on!(self, s => s.delivery(key), s => s.delivery(key).await)
    }

    pub async fn message(&self, id: &str) -> Result<Option<Message>, StoreError> {
        on!(self, s => s.message(id), s => s.message(id).await)
    }

    /// The dispatcher is done with the delivery `key` it took from [`Store::scan_due`],
    /// recorded or not: a shared backend gives up its claim on one it did not record, so that
    /// it is taken again at once.
    pub async fn let_go(&self, key: &str) {
        on!(self, _s => { let _ = key; }, s => s.let_go(key).await);
    }

    /// Records an attempt with its consequences; whether its delivery was still there.
    pub async fn record_attempt(&self, record: AttemptRecord) -> Result<bool, StoreError> {
        on!(self, s => s.record_attempt(record).await)
    }

    /// Makes every delivery of `message_id` pending again, due now; how many.
    pub async fn resend(&self, message_id: String, now_ms: i64) -> Result<usize, StoreError> {
        on!(self, s => s.resend(message_id, now_ms).await)
    }

    /// Marks a delivery that cannot be loaded as failed, out of the due queue.
    pub async fn quarantine(&self, due_ms: u64, key: String) -> Result<(), StoreError> {
        on!(self, s => s.quarantine(due_ms, key).await)
    }

    pub async fn list_attempts(
        &self,
        endpoint_id: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Attempt>, StoreError> {
        on!(self, s => s.list_attempts(endpoint_id, cursor, limit), s => s.list_attempts(endpoint_id, cursor, limit).await)
    }

    // Retention, state and shutdown.

    /// One retention step (the pruner runs them; tests call it directly).
    pub async fn prune(&self, step: Step) -> Result<Report, StoreError> {
        on!(self, s => s.prune(step).await)
    }

    /// The pruner, until the task is dropped.
    pub async fn run_retention(self, settings: tokio::sync::watch::Receiver<Retention>) {
        on!(self, s => s.clone().run_retention(settings).await, s => {
            // Aborted with this task: the listener, the lease renewals, the counts.
            let background = tokio::spawn(s.clone().run_background());
            let _stop = AbortOnDrop(background);
            s.clone().run_retention(settings).await;
        });
    }

    /// How many records the main tables hold. Cheap: the metrics read it at each scrape.
    pub async fn stats(&self) -> Result<Stats, StoreError> {
        on!(self, s => s.stats(), s => s.count().await)
    }

    /// Counts again what [`Store::stats_now`] answers, where that is a cached count (a shared
    /// database; the embedded store counts at once anyway).
    pub async fn refresh_counts(&self) {
        on!(self, _s => {}, s => s.refresh_stats().await);
    }

    /// [`Store::stats`] without waiting: the embedded store counts at once; PostgreSQL answers
    /// the counts its background loop took last (every few seconds).
    pub fn stats_now(&self) -> Result<Stats, StoreError> {
        on!(self, s => s.stats(), s => Ok(s.stats()))
    }

    /// The gauges a metrics registry reads from this store at each scrape.
    pub fn gauges(&self) -> Gauges {
        Gauges(self.clone())
    }

    /// `Ok` when the store serves reads and every kind of write; otherwise why not, for
    /// `/readyz`.
    ///
    /// # Errors
    /// The reason writes (some or all) are impossible now.
    pub async fn readiness(&self) -> Result<(), String> {
        on!(self, s => s.readiness(), s => s.readiness().await)
    }

    /// What the store can write now.
    pub fn write_state(&self) -> WriteState {
        on!(self, s => s.write_state(), _s => WriteState::Ok)
    }

    /// Bytes free on the data volume, when the store lives on it.
    pub fn free_bytes(&self) -> Option<u64> {
        on!(self, s => s.free_bytes(), _s => None)
    }

    /// The size of the store: its file, or the database.
    pub fn size_bytes(&self) -> Option<u64> {
        on!(self, s => s.size_bytes(), s => Some(s.size_bytes()))
    }

    /// A consistent copy of everything, written to `out` (see [`backup`]). Blocking.
    pub fn backup(&self, out: impl std::io::Write) -> Result<backup::Summary, StoreError> {
        on!(self, s => s.backup(out), _s => {
            drop(out);
            Err(StoreError::Conflict(
                "hookd backup copies the embedded store; back up PostgreSQL with pg_dump",
            ))
        })
    }

    /// Completes if the store can no longer write (its writer died): the server then stops.
    pub async fn writer_stopped(&self) {
        on!(self, s => s.writer_stopped().await, _s => std::future::pending::<()>().await);
    }

    /// Closes the store at shutdown, once the server has drained; `false` if something still
    /// held it after `limit`.
    pub async fn close(&self, limit: Duration) -> bool {
        on!(self, s => s.close(limit).await, s => s.close().await)
    }

    /// Makes the embedded store's writer thread panic, as a bug in it would: for the test of
    /// what hookd does then. Not reachable from the API.
    #[doc(hidden)]
    pub async fn simulate_writer_panic(&self) {
        on!(self, s => s.simulate_writer_panic().await, _s => {});
    }
}

/// Aborts its task when dropped.
#[cfg(feature = "postgres")]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

#[cfg(feature = "postgres")]
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
