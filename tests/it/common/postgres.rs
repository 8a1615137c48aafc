//! The API tests on PostgreSQL: with `HOOKD_TEST_POSTGRES` set to a server's libpq parameters
//! (`host=127.0.0.1 port=5433 user=postgres`), in a build with the `postgres` feature, every
//! test server keeps its data in a database of its own (named after its data directory, so a
//! restart finds it) instead of the embedded store. `.ci/run` starts the server and runs the
//! API tests this way too.

use std::path::Path;
use std::process::Command;

use hookd::config::Config;

/// The server's libpq parameters, when the tests run on PostgreSQL.
pub fn server() -> Option<String> {
    if !cfg!(feature = "postgres") {
        return None;
    }
    std::env::var("HOOKD_TEST_POSTGRES")
        .ok()
        .filter(|s| !s.is_empty())
}

/// The database of the test server on `dir`, created if new.
pub fn database_for(server: &str, dir: &Path) -> String {
    use std::hash::{Hash as _, Hasher as _};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    dir.hash(&mut h);
    let name = format!("hookd_test_{:016x}", h.finish());
    psql(server, &format!("CREATE DATABASE {name}"));
    format!("{server} dbname={name}")
}

/// Runs `sql` on the server's `postgres` database; "already exists" is fine.
pub fn psql(server: &str, sql: &str) {
    let out = Command::new("psql")
        .arg(format!("{server} dbname=postgres"))
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .expect("psql runs");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() || said.contains("already exists"),
        "psql {sql}: {said}"
    );
}

/// Makes `config` keep its data on PostgreSQL when the tests run there.
pub fn use_for(config: &mut Config, dir: &Path) {
    if let Some(server) = server() {
        config.store.backend = hookd::config::StoreBackend::Postgres;
        config.store.postgres_url = hookd::config::Redacted::new(database_for(&server, dir));
    }
}

/// Everything the database of the test server on `dir` holds, as text to search: the tables
/// (`pg_dump`) and the records decoded (they are `bytea`, which a dump shows as hex).
pub fn dump(server: &str, dir: &Path) -> Vec<u8> {
    let url = database_for(server, dir);
    let tables = Command::new("pg_dump")
        .args(["--data-only", "--inserts", &url])
        .output()
        .expect("pg_dump runs");
    assert!(tables.status.success(), "pg_dump failed");
    let records = Command::new("psql")
        .args([&url, "-Atc"])
        .arg(
            "SELECT convert_from(record, 'UTF8') FROM hookd_endpoints UNION ALL \
             SELECT convert_from(record, 'UTF8') FROM hookd_tokens UNION ALL \
             SELECT convert_from(record, 'UTF8') FROM hookd_messages UNION ALL \
             SELECT convert_from(record, 'UTF8') FROM hookd_attempts UNION ALL \
             SELECT encode(value, 'escape') FROM hookd_meta",
        )
        .output()
        .expect("psql runs");
    assert!(records.status.success() && !records.stdout.is_empty());
    [tables.stdout, records.stdout].concat()
}

/// What the test server on `dir` keeps, as bytes to search: its store file, or its database.
pub fn stored(dir: &Path) -> Vec<u8> {
    match server() {
        Some(server) => dump(&server, dir),
        None => std::fs::read(dir.join("hookd.redb")).expect("the store file"),
    }
}
