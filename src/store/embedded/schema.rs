//! The tables, and bringing a store written by an older hookd up to date when it is opened.
//!
//! Schema 1 kept pending deliveries in one global due index; schema 2 keeps a due queue per
//! endpoint (so a dead endpoint's backlog costs nothing to look past), counts each message's
//! pending deliveries (so retention finds ended messages without a scan) and each endpoint's
//! attempts (so the attempt cap needs no count). Schema 3 indexes the deliveries that gave up
//! by endpoint and time (so `recover` reads only what it requeues).

use redb::{TableDefinition, WriteTransaction};

use super::StoreError;

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

/// Calls `$f!(id, TABLE)` for every table, in the order of their ids: the
/// frame ids of backups and the table ids of the commit log. Never renumber one.
macro_rules! tables {
    ($f:ident) => {
        $f!(1, ENDPOINTS);
        $f!(2, TOKENS);
        $f!(3, TOKEN_HASHES);
        $f!(4, META);
        $f!(5, MESSAGES);
        $f!(6, MESSAGE_STATE);
        $f!(7, ENDED);
        $f!(8, DELIVERIES);
        $f!(9, QUEUE);
        $f!(10, HEADS);
        $f!(11, HEAD_OF);
        $f!(12, DRAIN);
        $f!(13, ATTEMPTS);
        $f!(14, ATTEMPT_COUNTS);
        $f!(15, DISABLED);
        $f!(16, PENDING_MESSAGES);
        $f!(17, GAVE_UP);
    };
}
pub(crate) use tables;

/// Schema 1's global due index: (due, delivery key).
pub const LEGACY_DUE: TableDefinition<(u64, &str), ()> = TableDefinition::new("due");

pub const DRAIN_DELETED: u8 = 1;
pub const DRAIN_DISABLED: u8 = 2;

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
