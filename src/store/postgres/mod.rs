//! The PostgreSQL backend (cargo feature `postgres`): several hookd instances on one database.
//!
//! Every method is a short transaction on a pooled connection; none is held open across an
//! HTTP delivery. Records are the embedded store's versioned JSON in `bytea` columns, beside the
//! columns the queries select and order by. The files:
//!
//! - [`schema`]: versioned migrations, one instance at a time (an advisory lock);
//! - [`endpoints`]: endpoints, API tokens and `meta`; [`batch`]: creates and reads in batches;
//! - [`outbox`]: messages, deliveries, attempts; [`attempts`]: attempts recorded in batches;
//!   [`claims`]: due deliveries claimed with leases;
//! - [`tls`]: rustls (ring) for `sslmode=require`;
//! - [`import`]: a whole store taken in, all or nothing (`hookd migrate`);
//! - [`shared`]: the rate limits' buckets and the circuits, shared by every instance;
//! - [`routing`]: the routing table's version, checked by every alert stored.
//!
//! A database that goes away makes every call `Unavailable` (503 with `Retry-After` at the
//! API); the pool connects again by itself when it is back.

mod attempts;
mod batch;
mod claims;
mod endpoints;
mod import;
mod listen;
mod outbox;
mod retention;
mod routing;
mod schema;
mod shared;
mod tls;

use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::Notify;

pub use import::Counts;
pub use shared::CircuitNews;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};

use super::routes;
use super::types::decode;
use super::{Stats, StoreError};
use crate::model::Endpoint;

/// How the backend connects.
#[derive(Debug, Clone)]
pub struct Options {
    /// `postgres://user:password@host:port/db?sslmode=...` (or the key=value form).
    pub url: String,
    /// Connections kept at most.
    pub pool_size: usize,
    /// How long a claimed delivery stays this instance's without renewal.
    pub lease: Duration,
    /// Roots that verify the server's certificate when TLS is used.
    pub tls: Arc<rustls::ClientConfig>,
}

/// A cheap-to-clone handle on the database.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// How to open the listening connection (outside the pool).
    config: tokio_postgres::Config,
    tls: tls::MakeRustls,
    /// Every endpoint's compiled rules, as this instance last saw them.
    routes: routes::Published,
    /// This instance's name on the deliveries it leases: unique per process.
    owner: String,
    lease_ms: i64,
    /// Wakes the dispatcher: an instance accepted an alert or requeued deliveries.
    due: Arc<Notify>,
    /// Wakes the pruner: an endpoint was deleted or disabled.
    prune_wake: Notify,
    /// Endpoint creates waiting for the next batch (see [`batch`]).
    creates: batch::Creates,
    /// Endpoint reads by id waiting for the next batch.
    reads: batch::Reads,
    /// Attempts waiting to be recorded with the next batch (see [`attempts`]).
    attempts: batch::Queue<attempts::Recording>,
    /// The version of the routing table `routes` includes (see [`routing`]).
    routes_version: std::sync::atomic::AtomicI64,
    /// Held while the table and its version change together (a reload, or one change and its
    /// version), so that a reload cannot replace a change applied meanwhile while the version
    /// says it is there.
    routes_lock: tokio::sync::Mutex<()>,
    /// Whether the listener is connected (`LISTEN` done): only then is `tokens` used.
    listening: std::sync::atomic::AtomicBool,
    /// The tokens this instance has authenticated, by hash (see `token_by_hash`).
    tokens: Mutex<std::collections::HashMap<Vec<u8>, crate::model::Token>>,
    /// Circuits opened and closed by any instance (`NOTIFY hookd_circuit`).
    circuits: tokio::sync::broadcast::Sender<(String, Option<i64>)>,
    /// The deliveries this instance claimed and is sending (`message/endpoint`): the leases it
    /// renews. One whose attempt could not be recorded is dropped here, so its lease runs out
    /// and it is claimed again.
    held: Mutex<std::collections::HashSet<String>>,
    /// The counts of the last [`Store::refresh_stats`].
    stats: Mutex<Stats>,
    /// The database's size in bytes, as of the last refresh.
    size: std::sync::atomic::AtomicU64,
}

/// A name for this process's leases: host, process id and a random part (a restarted process
/// with the same pid must not renew a dead one's leases).
fn owner_name() -> String {
    let mut random = [0u8; 6];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{hex}", host.trim(), std::process::id())
}

/// A database error as the store's: a refused statement is the database's word, anything else
/// (a closed connection, a timeout) means the database is unreachable for now.
pub(super) fn pg_err(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        // Connection trouble (08), the server shutting down or restarting (57), out of
        // resources (53): states that pass, like a closed connection.
        Some(db) if ["08", "53", "57"].contains(&&db.code().code()[..2]) => {
            StoreError::Unavailable(format!("the database is unavailable: {}", db.message()))
        }
        // A deadlock or serialization failure aborted the transaction: it may be run again.
        Some(db) if db.code().code().starts_with("40") => {
            StoreError::Unavailable(format!("{ABORTED}: {}", db.message()))
        }
        Some(db) => StoreError::Storage(format!("PostgreSQL: {}", db.message())),
        None => StoreError::Unavailable(format!("the database is unreachable: {e}")),
    }
}

/// `sql` prepared once per connection (deadpool keeps the statement): one round trip per
/// use instead of two (parse and describe, then bind and execute).
async fn prep(
    client: &impl deadpool_postgres::GenericClient,
    sql: &str,
) -> Result<tokio_postgres::Statement, StoreError> {
    client.prepare_cached(sql).await.map_err(pg_err)
}

/// A connection of `pool`, or `Unavailable` when none can be had.
async fn pooled(pool: &Pool) -> Result<deadpool_postgres::Object, StoreError> {
    pool.get()
        .await
        .map_err(|e| StoreError::Unavailable(format!("the database is unreachable: {e}")))
}

/// Tokens kept in an instance's cache at most (it starts over when full).
const TOKENS_CACHED: usize = 4_096;

/// How [`pg_err`] says that the database aborted a transaction that may be run again.
const ABORTED: &str = "the database aborted the transaction";

/// Whether `e` is a transaction the database aborted (a deadlock), which may be run again.
fn is_aborted(e: &StoreError) -> bool {
    matches!(e, StoreError::Unavailable(m) if m.starts_with(ABORTED))
}

/// [`pg_err`], except that a unique-key violation (a row with this key exists) is the
/// `Conflict` `what`.
fn or_conflict(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
    move |e| {
        if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
            StoreError::Conflict(what)
        } else {
            pg_err(e)
        }
    }
}

impl Store {
    /// Connects, brings the schema up to date and loads the routing table.
    ///
    /// # Errors
    /// A bad URL, an unreachable database, a refused migration.
    pub async fn connect(options: &Options) -> Result<Self, StoreError> {
        let mut config: tokio_postgres::Config = options
            .url
            .parse()
            .map_err(|e| StoreError::Storage(format!("store.postgres_url: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(30));
        let tls = tls::MakeRustls::new(options.tls.clone());
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .wait_timeout(Some(Duration::from_secs(5)))
            .create_timeout(Some(Duration::from_secs(5)))
            .recycle_timeout(Some(Duration::from_secs(2)))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Storage(format!("the connection pool: {e}")))?;
        let (creates, created) = batch::queue();
        let (reads, read) = batch::queue();
        let (attempts, attempted) = batch::queue();
        let store = Self {
            inner: Arc::new(Inner {
                pool,
                config,
                tls,
                routes: Arc::new(RwLock::new(Arc::default())),
                owner: owner_name(),
                lease_ms: i64::try_from(options.lease.as_millis()).unwrap_or(i64::MAX / 4),
                due: Arc::new(Notify::new()),
                prune_wake: Notify::new(),
                creates,
                reads,
                attempts,
                routes_version: std::sync::atomic::AtomicI64::new(-1),
                routes_lock: tokio::sync::Mutex::new(()),
                listening: std::sync::atomic::AtomicBool::new(false),
                tokens: Mutex::default(),
                circuits: tokio::sync::broadcast::channel(shared::CIRCUIT_NEWS).0,
                held: Mutex::default(),
                stats: Mutex::default(),
                size: std::sync::atomic::AtomicU64::new(0),
            }),
        };
        batch::start(Arc::downgrade(&store.inner), created, batch::write);
        batch::start(Arc::downgrade(&store.inner), read, batch::read);
        batch::start(Arc::downgrade(&store.inner), attempted, attempts::record);
        let mut client = store.client().await?;
        schema::migrate(&mut client).await?;
        drop(client);
        store.reload_routes().await?;
        store.refresh_stats().await;
        Ok(store)
    }

    /// The cache of authenticated tokens.
    fn tokens(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<Vec<u8>, crate::model::Token>> {
        self.inner
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn owner(&self) -> &str {
        &self.inner.owner
    }

    fn lease_ms(&self) -> i64 {
        self.inner.lease_ms
    }

    /// Notified when deliveries may have become due on any instance.
    pub fn due(&self) -> Arc<Notify> {
        self.inner.due.clone()
    }

    /// The counts as of the last refresh (the background loop refreshes them).
    pub fn stats(&self) -> Stats {
        *self
            .inner
            .stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) async fn refresh_stats(&self) {
        match self.count().await {
            Ok(stats) => {
                *self
                    .inner
                    .stats
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = stats
            }
            Err(e) => tracing::debug!(error = %e, "counting the records failed"),
        }
        if let Ok(client) = self.client().await {
            if let Ok(row) = client
                .query_one("SELECT pg_database_size(current_database())", &[])
                .await
            {
                let size = u64::try_from(row.get::<_, i64>(0)).unwrap_or(0);
                self.inner
                    .size
                    .store(size, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// The database's size, as of the last count.
    pub fn size_bytes(&self) -> u64 {
        self.inner.size.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The instance's background work, until the task is dropped: listening for other
    /// instances' changes, renewing this instance's leases, counting the records.
    pub async fn run_background(self) {
        let listen = tokio::spawn(self.clone().listen());
        let mut every = tokio::time::interval(Duration::from_millis(
            u64::try_from(self.lease_ms() / 3).unwrap_or(1_000).max(100),
        ));
        let mut counted = tokio::time::Instant::now();
        loop {
            every.tick().await;
            if let Err(e) = self.renew_leases(crate::time::now_ms()).await {
                tracing::warn!(error = %e, "renewing the delivery leases failed");
            }
            if counted.elapsed() >= Duration::from_secs(5) {
                self.refresh_stats().await;
                counted = tokio::time::Instant::now();
            }
            if listen.is_finished() {
                return;
            }
        }
    }

    /// Gives up this instance's leases (at shutdown, after the deliveries in flight ended), so
    /// the other instances take them at once instead of after the lease.
    pub async fn close(&self) -> bool {
        let Ok(client) = self.client().await else {
            return false;
        };
        let released = client
            .execute(
                "UPDATE hookd_deliveries SET lease_owner = NULL, lease_until_ms = NULL WHERE lease_owner = $1",
                &[&self.owner()],
            )
            .await
            .is_ok();
        self.inner.pool.close();
        released
    }

    /// A pooled connection, or `Unavailable` when none can be had.
    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        pooled(&self.inner.pool).await
    }

    /// Rebuilds the routing table from every endpoint in the database.
    pub(super) async fn reload_routes(&self) -> Result<(), StoreError> {
        let _changing = self.inner.routes_lock.lock().await;
        let client = self.client().await?;
        // The version first: the endpoints read after it include at least its changes.
        let version: i64 = client
            .query_one("SELECT version FROM hookd_routes", &[])
            .await
            .map_err(pg_err)?
            .get(0);
        let rows = client
            .query(
                &prep(&client, "SELECT id, record FROM hookd_endpoints").await?,
                &[],
            )
            .await
            .map_err(pg_err)?;
        let endpoints = rows.iter().map(|row| {
            let id: &str = row.get(0);
            (id.to_owned(), decode::<Endpoint>(id, row.get(1)))
        });
        let table = routes::table_of(endpoints);
        *self
            .inner
            .routes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(table);
        self.reloaded(version);
        Ok(())
    }

    /// The routing table as of the last change this instance knows of.
    pub fn routes(&self) -> Arc<crate::routing::RouteTable> {
        routes::snapshot(&self.inner.routes)
    }

    /// `Ok` when the database answers.
    ///
    /// # Errors
    /// Why it does not.
    pub async fn readiness(&self) -> Result<(), String> {
        let client = self.client().await.map_err(|e| e.to_string())?;
        client
            .simple_query("SELECT 1")
            .await
            .map(drop)
            .map_err(|e| pg_err(e).to_string())
    }
}
