//! Offline maintenance of a store file no daemon holds: compaction, and the rewrite of every
//! endpoint a master-key rotation needs.

use std::path::Path;

use redb::{Database, ReadableDatabase as _, ReadableTable as _};

use crate::model::Endpoint;

use super::schema::{ENDPOINTS, META};
use super::{decode, encode, StoreError};

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

/// A store file opened by an offline command, which has it to itself.
pub struct Exclusive(pub(super) Database);

/// Opens the store for an offline command, with a clear message if a daemon holds it.
///
/// # Errors
/// The store is held by a running hookd, missing, or cannot be opened.
pub fn open_exclusive(path: &Path) -> Result<Exclusive, String> {
    open_db(path).map(Exclusive)
}

fn open_db(path: &Path) -> Result<Database, String> {
    if !path.is_file() {
        return Err(format!("{}: no store here", path.display()));
    }
    match Database::open(path) {
        // What the last run acknowledged since its last durable commit is in the commit log.
        Ok(db) => match super::wal::Log::open(&db, path) {
            Ok(_) => Ok(db),
            Err(e) => Err(format!("{}: {e}", path.display())),
        },
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
    let mut db = open_db(path)?;
    while db
        .compact()
        .map_err(|e| format!("{}: compaction failed: {e}", path.display()))?
    {}
    drop(db);
    Ok((before, size()))
}

impl Exclusive {
    /// The `meta` entry `key` of an open store.
    ///
    /// # Errors
    /// A storage error.
    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        let db = &self.0;
        let read = || -> Result<Option<Vec<u8>>, StoreError> {
            let txn = db.begin_read()?;
            let table = txn.open_table(META)?;
            Ok(table.get(key)?.map(|v| v.value().to_vec()))
        };
        read().map_err(|e| e.to_string())
    }

    /// Rewrites every endpoint with `change` and sets the `meta` entries, all in one write
    /// transaction: on return it is durable, and on any error nothing was written. Returns the
    /// number of endpoints and the sum of what `change` returned.
    ///
    /// # Errors
    /// What `change` refuses (nothing is written then), or a storage error.
    pub fn rewrite_endpoints(
        &self,
        mut change: impl FnMut(&mut Endpoint) -> Result<usize, String>,
        meta: &[(&str, Vec<u8>)],
    ) -> Result<(usize, usize), String> {
        let mut run = || -> Result<Result<(usize, usize), String>, StoreError> {
            let txn = self.0.begin_write()?;
            let (mut endpoints, mut values) = (0, 0);
            {
                let mut table = txn.open_table(ENDPOINTS)?;
                let mut records = Vec::new();
                for entry in table.iter()? {
                    let (k, v) = entry?;
                    records.push(decode::<Endpoint>(k.value(), v.value())?);
                }
                for mut endpoint in records {
                    match change(&mut endpoint) {
                        Ok(n) => values += n,
                        Err(e) => return Ok(Err(e)), // dropped uncommitted: nothing written
                    }
                    table.insert(endpoint.id.as_str(), encode(&endpoint)?.as_slice())?;
                    endpoints += 1;
                }
                let mut table = txn.open_table(META)?;
                for (key, value) in meta {
                    table.insert(*key, value.as_slice())?;
                }
            }
            txn.commit()?;
            Ok(Ok((endpoints, values)))
        };
        run().map_err(|e| e.to_string())?
    }

    /// Calls `check` with every endpoint of the store (read only).
    ///
    /// # Errors
    /// What `check` refuses, or a storage error.
    pub fn each_endpoint(
        &self,
        mut check: impl FnMut(&Endpoint) -> Result<(), String>,
    ) -> Result<(), String> {
        let txn = self
            .0
            .begin_read()
            .map_err(|e| StoreError::from(e).to_string())?;
        let table = txn
            .open_table(ENDPOINTS)
            .map_err(|e| StoreError::from(e).to_string())?;
        for entry in table.iter().map_err(|e| StoreError::from(e).to_string())? {
            let (k, v) = entry.map_err(|e| StoreError::from(e).to_string())?;
            check(&decode::<Endpoint>(k.value(), v.value()).map_err(|e| e.to_string())?)?;
        }
        Ok(())
    }
}
