//! `hookd migrate --from-redb DIR --to URL`: moves the embedded store of a data directory no
//! daemon holds into a PostgreSQL database no hookd has written to, all or nothing. The records
//! move as stored (sealed values stay sealed), so the instances on PostgreSQL need the same
//! master key.

use std::path::Path;

use super::backends::postgres_options;
use super::STORE_FILE;
use crate::config::Config;
use crate::store::offline;
use crate::store::postgres::{Counts, Store};

/// Records in flight between the reading thread and the database.
const QUEUE: usize = 4_096;

/// Moves the store of `from` into the database at `to` (else `store.postgres_url`), calling
/// `progress` as batches go in; returns what to print.
///
/// # Errors
/// The store is missing, held by a running hookd, of an older schema or corrupt; the database
/// is unreachable or already holds a store; a count differs. Nothing is committed then.
pub async fn migrate_from_redb(
    config: &Config,
    from: &Path,
    to: Option<&str>,
    progress: &mut dyn FnMut(&Counts),
) -> Result<String, String> {
    let path = from.join(STORE_FILE);
    let db = offline::open_exclusive(&path)?;
    let options =
        postgres_options(config, to).map_err(|e| format!("store.postgres_ca_file: {e}"))?;
    if options.url.is_empty() {
        return Err("--to: no database named (nor store.postgres_url)".into());
    }
    let store = Store::connect(&options)
        .await
        .map_err(|e| format!("PostgreSQL: {e}"))?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(QUEUE);
    let reader = tokio::task::spawn_blocking(move || {
        let left = db.export(&mut |record| tx.blocking_send(Some(record)).is_ok())?;
        // The end of the store: only now may the database commit.
        let _ = tx.blocking_send(None);
        Ok::<u64, String>(left)
    });
    let imported = store.import(&mut rx, progress).await;
    drop(rx);
    let read = reader
        .await
        .map_err(|e| format!("reading {} failed: {e}", path.display()))?;
    let left = read.map_err(|e| format!("{}: {e}; nothing was committed", path.display()))?;
    let counts = imported.map_err(|e| format!("PostgreSQL: {e}"))?;
    let mut said = format!(
        "moved {counts} from {} to PostgreSQL in one transaction; every count matches",
        path.display()
    );
    if left > 0 {
        said.push_str(&format!(
            " ({left} deliveries and attempts of deleted endpoints were left behind)"
        ));
    }
    said.push_str(
        "\nstart hookd with store.backend = \"postgres\" and the same master key as this data directory",
    );
    Ok(said)
}
