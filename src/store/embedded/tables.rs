//! The tables of one write transaction, opened once per batch, with the routing table as that
//! transaction sees it.

use redb::{Table, WriteTransaction};

use super::schema::{
    ATTEMPTS, ATTEMPT_COUNTS, DELIVERIES, DISABLED, DRAIN, ENDED, ENDPOINTS, GAVE_UP, HEADS,
    HEAD_OF, MESSAGES, MESSAGE_STATE, META, PENDING_MESSAGES, QUEUE, TOKENS, TOKEN_HASHES,
};
use super::StoreError;
use crate::store::routes::Routes;

/// The tables of one write transaction, opened once per batch.
pub struct Tables<'t> {
    pub endpoints: Table<'t, &'static str, &'static [u8]>,
    pub tokens: Table<'t, &'static str, &'static [u8]>,
    pub token_hashes: Table<'t, &'static [u8], &'static str>,
    pub meta: Table<'t, &'static str, &'static [u8]>,
    pub messages: Table<'t, &'static str, &'static [u8]>,
    pub message_state: Table<'t, &'static str, (u32, u64)>,
    pub ended: Table<'t, (u64, &'static str), ()>,
    pub pending_messages: Table<'t, &'static str, ()>,
    pub disabled: Table<'t, &'static str, ()>,
    pub deliveries: Table<'t, &'static str, &'static [u8]>,
    pub queue: Table<'t, (&'static str, u64, &'static str), ()>,
    pub heads: Table<'t, (u64, &'static str), ()>,
    pub head_of: Table<'t, &'static str, u64>,
    pub drain: Table<'t, &'static str, u8>,
    pub attempts: Table<'t, &'static str, &'static [u8]>,
    pub attempt_counts: Table<'t, &'static str, u64>,
    pub gave_up: Table<'t, (&'static str, u64, &'static str), ()>,
    /// The routing table as this transaction sees it (see [`Routes`]).
    pub routes: Routes,
}

impl<'t> Tables<'t> {
    pub fn open(txn: &'t WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            endpoints: txn.open_table(ENDPOINTS)?,
            tokens: txn.open_table(TOKENS)?,
            token_hashes: txn.open_table(TOKEN_HASHES)?,
            meta: txn.open_table(META)?,
            messages: txn.open_table(MESSAGES)?,
            message_state: txn.open_table(MESSAGE_STATE)?,
            ended: txn.open_table(ENDED)?,
            pending_messages: txn.open_table(PENDING_MESSAGES)?,
            disabled: txn.open_table(DISABLED)?,
            deliveries: txn.open_table(DELIVERIES)?,
            queue: txn.open_table(QUEUE)?,
            heads: txn.open_table(HEADS)?,
            head_of: txn.open_table(HEAD_OF)?,
            drain: txn.open_table(DRAIN)?,
            attempts: txn.open_table(ATTEMPTS)?,
            attempt_counts: txn.open_table(ATTEMPT_COUNTS)?,
            gave_up: txn.open_table(GAVE_UP)?,
            routes: Routes::default(),
        })
    }
}
