//! The PostgreSQL schema and its versioned migrations. Every instance runs them at start, one at
//! a time: each run holds a transaction-scoped advisory lock, so a second instance starting at
//! the same moment waits, then finds the schema current. A database written by a newer hookd is
//! refused.
//!
//! Records are the same versioned JSON as the embedded store's (`types::encode`), in `bytea`;
//! what the queries select and order by is in columns of its own.

use tokio_postgres::Client;

use super::pg_err;
use crate::store::StoreError;

/// The advisory lock key of migrations (`hookd` in ASCII).
const MIGRATION_LOCK: i64 = 0x68_6f6f_6b64;

/// Each version's statements, in order: version N is `MIGRATIONS[N - 1]`. Version 2 adds the
/// rate limits' shared buckets and the routing table's version.
const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE hookd_endpoints (
    id text PRIMARY KEY,
    record bytea NOT NULL,
    disabled boolean NOT NULL DEFAULT false,
    rate_limit bigint
);
CREATE TABLE hookd_tokens (
    id text PRIMARY KEY,
    hash bytea NOT NULL UNIQUE,
    admin boolean NOT NULL,
    expires_at_ms bigint,
    record bytea NOT NULL
);
CREATE TABLE hookd_meta (
    key text PRIMARY KEY,
    value bytea NOT NULL
);
CREATE TABLE hookd_messages (
    id text PRIMARY KEY,
    record bytea NOT NULL,
    created_at_ms bigint NOT NULL,
    pending integer NOT NULL,
    ended_at_ms bigint
);
CREATE INDEX hookd_messages_ended ON hookd_messages (ended_at_ms) WHERE pending = 0;
CREATE INDEX hookd_messages_pending ON hookd_messages (created_at_ms) WHERE pending > 0;
CREATE TABLE hookd_deliveries (
    message_id text NOT NULL,
    endpoint_id text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    failed boolean NOT NULL DEFAULT false,
    due_ms bigint NOT NULL,
    failed_at_ms bigint,
    lease_owner text,
    lease_until_ms bigint,
    PRIMARY KEY (message_id, endpoint_id)
);
CREATE INDEX hookd_deliveries_due ON hookd_deliveries (endpoint_id, due_ms) WHERE NOT failed;
CREATE INDEX hookd_deliveries_gave_up ON hookd_deliveries (endpoint_id, failed_at_ms) WHERE failed;
CREATE INDEX hookd_deliveries_lease ON hookd_deliveries (lease_owner) WHERE lease_owner IS NOT NULL;
CREATE TABLE hookd_attempts (
    endpoint_id text NOT NULL,
    id text NOT NULL,
    at_ms bigint NOT NULL,
    record bytea NOT NULL,
    PRIMARY KEY (endpoint_id, id)
);
",
    r"
CREATE TABLE hookd_rate (
    endpoint_id text PRIMARY KEY,
    level bigint NOT NULL,
    at_ms bigint NOT NULL,
    granted bigint NOT NULL DEFAULT 0
);
CREATE TABLE hookd_routes (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    version bigint NOT NULL
);
INSERT INTO hookd_routes (version) VALUES (0);
",
];

/// Brings the schema to the current version, under the migration lock.
///
/// # Errors
/// The database refuses a statement, or was written by a newer hookd.
pub async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let txn = client.transaction().await.map_err(pg_err)?;
    txn.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg_err)?;
    txn.batch_execute("CREATE TABLE IF NOT EXISTS hookd_schema (version integer NOT NULL)")
        .await
        .map_err(pg_err)?;
    let found: Option<i32> = txn
        .query_opt("SELECT max(version) FROM hookd_schema", &[])
        .await
        .map_err(pg_err)?
        .and_then(|row| row.get(0));
    let found = usize::try_from(found.unwrap_or(0)).unwrap_or(0);
    if found > MIGRATIONS.len() {
        return Err(StoreError::Storage(format!(
            "the database has schema {found}, written by a newer hookd (this one knows {}); see the README's Upgrading chapter",
            MIGRATIONS.len()
        )));
    }
    for (i, statements) in MIGRATIONS.iter().enumerate().skip(found) {
        txn.batch_execute(statements).await.map_err(pg_err)?;
        let version = i32::try_from(i + 1).unwrap_or(i32::MAX);
        txn.execute(
            "INSERT INTO hookd_schema (version) VALUES ($1)",
            &[&version],
        )
        .await
        .map_err(pg_err)?;
        tracing::info!(version, "PostgreSQL schema migrated");
    }
    txn.commit().await.map_err(pg_err)
}
