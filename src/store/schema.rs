//! The tables, and bringing a store written by an older hookd up to date when it is opened.
//!
//! Schema 1 kept pending deliveries in one global due index; schema 2 keeps a due queue per
//! endpoint (so a dead endpoint's backlog costs nothing to look past), counts each message's
//! pending deliveries (so retention finds ended messages without a scan) and each endpoint's
//! attempts (so the attempt cap needs no count). Schema 3 indexes the deliveries that gave up
//! by endpoint and time (so `recover` reads only what it requeues).

use redb::{Database, ReadableTable, TableDefinition, WriteTransaction};

use super::{decode, StoreError};
use crate::model::{Delivery, DeliveryState};

pub const ENDPOINTS: TableDefinition<&str, &[u8]> = TableDefinition::new("endpoints");
pub const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens");
/// Keyed hash of a token's plaintext -> token id.
pub const TOKEN_HASHES: TableDefinition<&[u8], &str> = TableDefinition::new("token_hashes");
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Accepted alerts by message id (time-ordered).
pub const MESSAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("messages");
/// Per message: (deliveries still pending, when the last one ended (Unix ms, 0 while pending)).
pub const MESSAGE_STATE: TableDefinition<&str, (u32, u64)> = TableDefinition::new("message_state");
/// Messages with deliveries pending (ids are time-ordered: the first is the oldest).
pub const PENDING_MESSAGES: TableDefinition<&str, ()> = TableDefinition::new("pending_messages");
/// Endpoints that are disabled (so counting them costs nothing).
pub const DISABLED: TableDefinition<&str, ()> = TableDefinition::new("disabled_endpoints");
/// Messages whose deliveries have all ended: (ended at, message id). Retention reads this.
pub const ENDED: TableDefinition<(u64, &str), ()> = TableDefinition::new("ended_messages");
/// The outbox: `message_id/endpoint_id` -> [`Delivery`].
pub const DELIVERIES: TableDefinition<&str, &[u8]> = TableDefinition::new("deliveries");
/// Each endpoint's pending deliveries in due order: (endpoint id, due Unix ms, message id).
pub const QUEUE: TableDefinition<(&str, u64, &str), ()> = TableDefinition::new("queue");
/// Each endpoint with pending deliveries, by its earliest due time: (due, endpoint id).
pub const HEADS: TableDefinition<(u64, &str), ()> = TableDefinition::new("queue_heads");
/// Endpoint id -> its entry's due time in [`HEADS`].
pub const HEAD_OF: TableDefinition<&str, u64> = TableDefinition::new("queue_head_of");
/// Endpoints whose queue and attempt log retention must clear or fail: id -> [`DRAIN_DELETED`]
/// or [`DRAIN_DISABLED`].
pub const DRAIN: TableDefinition<&str, u8> = TableDefinition::new("drain");
/// The attempt log: `endpoint_id/attempt_id` -> [`crate::model::Attempt`].
pub const ATTEMPTS: TableDefinition<&str, &[u8]> = TableDefinition::new("attempts");
/// Deliveries that gave up, by endpoint and when: (endpoint id, failed at Unix ms, message id).
/// `recover` reads this.
pub const GAVE_UP: TableDefinition<(&str, u64, &str), ()> = TableDefinition::new("gave_up");
/// Endpoint id -> how many attempts the log holds for it.
pub const ATTEMPT_COUNTS: TableDefinition<&str, u64> = TableDefinition::new("attempt_counts");

/// Schema 1's global due index: (due, delivery key).
const LEGACY_DUE: TableDefinition<(u64, &str), ()> = TableDefinition::new("due");

pub const DRAIN_DELETED: u8 = 1;
pub const DRAIN_DISABLED: u8 = 2;

/// Version byte in front of every record (the backup format checks records by it too).
pub use crate::backup_format::RECORD_VERSION;
/// The store's schema version in `meta`.
pub const SCHEMA_VERSION: u8 = 3;

/// Every table, for the writer and for backups.
pub fn create_all(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(ENDPOINTS)?;
    txn.open_table(TOKENS)?;
    txn.open_table(TOKEN_HASHES)?;
    txn.open_table(META)?;
    txn.open_table(MESSAGES)?;
    txn.open_table(MESSAGE_STATE)?;
    txn.open_table(ENDED)?;
    txn.open_table(PENDING_MESSAGES)?;
    txn.open_table(DISABLED)?;
    txn.open_table(DELIVERIES)?;
    txn.open_table(QUEUE)?;
    txn.open_table(HEADS)?;
    txn.open_table(HEAD_OF)?;
    txn.open_table(DRAIN)?;
    txn.open_table(ATTEMPTS)?;
    txn.open_table(ATTEMPT_COUNTS)?;
    txn.open_table(GAVE_UP)?;
    Ok(())
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
        Some(_) => {
            return Err(StoreError::Storage(
                "the store was written by a newer hookd; upgrade hookd".into(),
            ))
        }
    }
    txn.open_table(META)?
        .insert("schema_version", [SCHEMA_VERSION].as_slice())?;
    txn.commit()?;
    Ok(())
}

/// Fills the index of disabled endpoints from their records.
fn index_disabled(t: &mut super::writer::Tables<'_>) -> Result<(), StoreError> {
    let mut disabled = Vec::new();
    for entry in t.endpoints.iter()? {
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
    let mut t = super::writer::Tables::open(txn)?;
    // Schema 2's backups left out the disabled and pending-message indexes: a store restored
    // from one gets them back here.
    index_disabled(&mut t)?;
    let mut pending = Vec::new();
    for entry in t.message_state.iter()? {
        let (k, v) = entry?;
        if v.value().0 > 0 {
            pending.push(k.value().to_owned());
        }
    }
    for msg in pending {
        t.pending_messages.insert(msg.as_str(), ())?;
    }
    let mut failed = Vec::new();
    for entry in t.deliveries.iter()? {
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
    let mut t = super::writer::Tables::open(txn)?;
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
    for entry in t.head_of.iter()? {
        queued.push(entry?.0.value().to_owned());
    }
    for ep in queued {
        let endpoint = t.endpoints.get(ep.as_str())?.map(|v| v.value().to_vec());
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
    for entry in t.deliveries.iter()? {
        let (k, v) = entry?;
        let d: Delivery = decode(k.value(), v.value())?;
        if d.state == DeliveryState::Pending {
            *pending.entry(d.message_id).or_default() += 1;
        }
    }
    let mut ended = Vec::new();
    for entry in t.messages.iter()? {
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
    for entry in t.attempts.iter()? {
        let (k, _) = entry?;
        if let Some((ep, _)) = k.value().split_once('/') {
            *counts.entry(ep.to_owned()).or_default() += 1;
        }
    }
    for (ep, n) in counts {
        t.attempt_counts.insert(ep.as_str(), n)?;
        if t.endpoints.get(ep.as_str())?.is_none() {
            t.drain.insert(ep.as_str(), DRAIN_DELETED)?;
        }
    }
    drop(t);
    txn.delete_table(LEGACY_DUE)?;
    Ok(())
}
