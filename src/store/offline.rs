//! Offline maintenance of a store file no daemon holds: compaction.

use std::path::Path;

use redb::Database;

use super::StoreError;

/// Why an offline command cannot run on the store.
pub fn in_use_message(path: &Path) -> String {
    format!(
        "{} is open in a running hookd; stop it first (this command needs the store to itself)",
        path.display()
    )
}

/// Whether a running hookd (or any redb user) holds the store file open.
pub fn held(path: &Path) -> bool {
    matches!(
        Database::open(path),
        Err(redb::DatabaseError::DatabaseAlreadyOpen)
    )
}

/// Opens the store for an offline command, with a clear message if a daemon holds it.
///
/// # Errors
/// The store is held by a running hookd, missing, or cannot be opened.
pub fn open_exclusive(path: &Path) -> Result<Database, String> {
    if !path.is_file() {
        return Err(format!("{}: no store here", path.display()));
    }
    match Database::open(path) {
        Ok(db) => Ok(db),
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => Err(in_use_message(path)),
        Err(e) => Err(format!("{}: {}", path.display(), StoreError::from(e))),
    }
}

/// Shrinks the store file to what it holds; returns its size before and after.
///
/// # Errors
/// As [`open_exclusive`], or a failed compaction.
pub fn compact(path: &Path) -> Result<(u64, u64), String> {
    let size = || std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let before = size();
    let mut db = open_exclusive(path)?;
    while db
        .compact()
        .map_err(|e| format!("{}: compaction failed: {e}", path.display()))?
    {}
    drop(db);
    Ok((before, size()))
}
