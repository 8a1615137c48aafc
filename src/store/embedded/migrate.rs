//! Opening a store: creating the tables of a new one, or migrating an older schema, in one
//! transaction.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase as _, ReadableTable, WriteTransaction};

use super::schema::{create_all, DRAIN_DELETED, DRAIN_DISABLED, LEGACY_DUE, META, SCHEMA_VERSION};
use super::tables::Tables;
use super::{decode, StoreError};
use crate::model::{Delivery, DeliveryState};

/// The schema of a store older than this hookd's, if it is one (a new store has none).
///
/// # Errors
/// A storage error.
pub fn older_schema(db: &Database) -> Result<Option<u8>, StoreError> {
    let txn = db.begin_read()?;
    let meta = match txn.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(
        match meta
            .get("schema_version")?
            .map(|v| v.value().to_vec())
            .as_deref()
        {
            Some([v]) if *v < SCHEMA_VERSION => Some(*v),
            _ => None,
        },
    )
}

/// Before a migration: the store file as it is, copied to `<file>.schema-<v>.bak` beside it
/// (written in full and made durable before the migration starts), so that the previous hookd
/// can be put back with its store. Returns the copy's path.
///
/// # Errors
/// The copy cannot be written (a full disk: then nothing is migrated).
pub fn keep_copy(path: &Path, schema: u8) -> std::io::Result<PathBuf> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".schema-{schema}.bak"));
    let copy = path.with_file_name(name);
    let partial = copy.with_extension("partial");
    std::fs::copy(path, &partial)?;
    std::fs::File::open(&partial)?.sync_all()?;
    std::fs::rename(&partial, &copy)?;
    if let Some(dir) = path.parent() {
        crate::files::sync_dir(dir)?;
    }
    Ok(copy)
}

/// Creates the tables of a new store, or migrates an older one, in one transaction.
///
/// # Errors
/// A store written by a newer hookd, or a storage error.
pub fn prepare(db: &Database) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    create_all(&txn)?;
    let version = txn
        .open_table(META)?
        .get("schema_version")?
        .map(|v| v.value().to_vec());
    match version.as_deref() {
        None => {}
        Some([1]) => {
            migrate_from_1(&txn)?;
            migrate_from_2(&txn)?;
        }
        Some([2]) => migrate_from_2(&txn)?,
        Some([v]) if *v == SCHEMA_VERSION => {}
        Some(v) => {
            return Err(StoreError::Storage(format!(
                "the store has schema {}, written by a newer hookd than this one ({}, schema {SCHEMA_VERSION}): run that version again, or restore a backup taken with this one (README, \"Upgrading\"); the store is left as it is",
                v.first().copied().unwrap_or_default(),
                env!("CARGO_PKG_VERSION")
            )))
        }
    }
    txn.open_table(META)?
        .insert("schema_version", [SCHEMA_VERSION].as_slice())?;
    txn.commit()?;
    Ok(())
}

/// Fills the index of disabled endpoints from their records.
fn index_disabled(t: &mut Tables<'_>) -> Result<(), StoreError> {
    let mut disabled = Vec::new();
    for entry in t.endpoints.table()?.iter()? {
        let (k, v) = entry?;
        if decode::<crate::model::Endpoint>(k.value(), v.value())?.disabled {
            disabled.push(k.value().to_owned());
        }
    }
    for id in disabled {
        t.disabled.insert(id.as_str(), ())?;
    }
    Ok(())
}

/// Schema 2 -> 3: the index of deliveries that gave up, for `recover`. A delivery that gave up
/// before schema 3 counts as having given up at its last due time.
fn migrate_from_2(txn: &WriteTransaction) -> Result<(), StoreError> {
    tracing::info!("migrating the store to schema 3 (index of deliveries that gave up)");
    let mut t = Tables::open(txn);
    // Schema 2's backups left out the disabled and pending-message indexes: a store restored
    // from one gets them back here.
    index_disabled(&mut t)?;
    let mut pending = Vec::new();
    for entry in t.message_state.table()?.iter()? {
        let (k, v) = entry?;
        if v.value().0 > 0 {
            pending.push(k.value().to_owned());
        }
    }
    for msg in pending {
        t.pending_messages.insert(msg.as_str(), ())?;
    }
    let mut failed = Vec::new();
    for entry in t.deliveries.table()?.iter()? {
        let (k, v) = entry?;
        let d: Delivery = decode(k.value(), v.value())?;
        if d.state == DeliveryState::Failed && d.failed_at_ms.is_none() {
            failed.push((k.value().to_owned(), d));
        }
    }
    for (key, mut d) in failed {
        d.failed_at_ms = Some(d.next_attempt_ms);
        t.deliveries
            .insert(key.as_str(), super::encode(&d)?.as_slice())?;
        let at = u64::try_from(d.next_attempt_ms).unwrap_or(0);
        t.gave_up
            .insert((d.endpoint_id.as_str(), at, d.message_id.as_str()), ())?;
    }
    Ok(())
}

/// Schema 1 -> 2: the global due index becomes per-endpoint queues; message states and
/// attempt counts are counted once.
fn migrate_from_1(txn: &WriteTransaction) -> Result<(), StoreError> {
    tracing::info!("migrating the store to schema 2 (per-endpoint delivery queues)");
    let mut t = Tables::open(txn);
    let mut pending: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    {
        let legacy = txn.open_table(LEGACY_DUE)?;
        for entry in legacy.iter()? {
            let (k, ()) = (entry?.0, ());
            let (due, key) = k.value();
            let Some((msg, ep)) = key.split_once('/') else {
                continue;
            };
            super::outbox::queue_push(&mut t, ep, due, msg)?;
        }
    }
    index_disabled(&mut t)?;
    // Queues of endpoints already deleted or disabled are for retention to clear or fail.
    let mut queued = Vec::new();
    for entry in t.head_of.table()?.iter()? {
        queued.push(entry?.0.value().to_owned());
    }
    for ep in queued {
        let endpoint = t
            .endpoints
            .table()?
            .get(ep.as_str())?
            .map(|v| v.value().to_vec());
        match endpoint {
            None => {
                t.drain.insert(ep.as_str(), DRAIN_DELETED)?;
            }
            Some(bytes) => {
                let e: crate::model::Endpoint = decode(&ep, &bytes)?;
                if e.disabled {
                    t.drain.insert(ep.as_str(), DRAIN_DISABLED)?;
                }
            }
        }
    }
    for entry in t.deliveries.table()?.iter()? {
        let (k, v) = entry?;
        let d: Delivery = decode(k.value(), v.value())?;
        if d.state == DeliveryState::Pending {
            *pending.entry(d.message_id).or_default() += 1;
        }
    }
    let mut ended = Vec::new();
    for entry in t.messages.table()?.iter()? {
        let (k, v) = entry?;
        let m: crate::model::Message = decode(k.value(), v.value())?;
        match pending.get(&m.id) {
            Some(n) => {
                t.message_state.insert(m.id.as_str(), (*n, 0))?;
                t.pending_messages.insert(m.id.as_str(), ())?;
            }
            None => ended.push(m),
        }
    }
    let now = u64::try_from(crate::time::now_ms()).unwrap_or(0);
    for m in ended {
        t.message_state.insert(m.id.as_str(), (0, now))?;
        t.ended.insert((now, m.id.as_str()), ())?;
    }
    let mut counts: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    for entry in t.attempts.table()?.iter()? {
        let (k, _) = entry?;
        if let Some((ep, _)) = k.value().split_once('/') {
            *counts.entry(ep.to_owned()).or_default() += 1;
        }
    }
    for (ep, n) in counts {
        t.attempt_counts.insert(ep.as_str(), n)?;
        if t.endpoints.table()?.get(ep.as_str())?.is_none() {
            t.drain.insert(ep.as_str(), DRAIN_DELETED)?;
        }
    }
    drop(t);
    txn.delete_table(LEGACY_DUE)?;
    Ok(())
}
