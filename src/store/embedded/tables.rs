//! The tables of one write transaction, each opened the first time an op of the batch uses it,
//! with the routing table as that transaction sees it.
//!
//! Opening a table and closing it again at commit costs a lookup in redb's table of tables
//! each way; a batch of creates uses one table of the seventeen, and opening all of them cost a
//! lone create about 20 µs of the writer's CPU.

use redb::{Key, Table, TableDefinition, Value, WriteTransaction};

use super::schema::{
    ATTEMPTS, ATTEMPT_COUNTS, DELIVERIES, DISABLED, DRAIN, ENDED, ENDPOINTS, GAVE_UP, HEADS,
    HEAD_OF, MESSAGES, MESSAGE_STATE, META, PENDING_MESSAGES, QUEUE, TOKENS, TOKEN_HASHES,
};
use super::StoreError;
use crate::store::routes::Routes;

/// One table of the transaction, opened when first used and then kept open until the batch
/// ends.
pub struct Lazy<'t, K: Key + 'static, V: Value + 'static> {
    txn: &'t WriteTransaction,
    definition: TableDefinition<'static, K, V>,
    table: Option<Table<'t, K, V>>,
}

impl<'t, K: Key + 'static, V: Value + 'static> Lazy<'t, K, V> {
    fn new(txn: &'t WriteTransaction, definition: TableDefinition<'static, K, V>) -> Self {
        Self {
            txn,
            definition,
            table: None,
        }
    }

    /// The open table.
    pub fn table(&mut self) -> Result<&mut Table<'t, K, V>, StoreError> {
        match self.table {
            Some(ref mut table) => Ok(table),
            None => Ok(self.table.insert(self.txn.open_table(self.definition)?)),
        }
    }
}

/// The tables of one write transaction.
pub struct Tables<'t> {
    pub endpoints: Lazy<'t, &'static str, &'static [u8]>,
    pub tokens: Lazy<'t, &'static str, &'static [u8]>,
    pub token_hashes: Lazy<'t, &'static [u8], &'static str>,
    pub meta: Lazy<'t, &'static str, &'static [u8]>,
    pub messages: Lazy<'t, &'static str, &'static [u8]>,
    pub message_state: Lazy<'t, &'static str, (u32, u64)>,
    pub ended: Lazy<'t, (u64, &'static str), ()>,
    pub pending_messages: Lazy<'t, &'static str, ()>,
    pub disabled: Lazy<'t, &'static str, ()>,
    pub deliveries: Lazy<'t, &'static str, &'static [u8]>,
    pub queue: Lazy<'t, (&'static str, u64, &'static str), ()>,
    pub heads: Lazy<'t, (u64, &'static str), ()>,
    pub head_of: Lazy<'t, &'static str, u64>,
    pub drain: Lazy<'t, &'static str, u8>,
    pub attempts: Lazy<'t, &'static str, &'static [u8]>,
    pub attempt_counts: Lazy<'t, &'static str, u64>,
    pub gave_up: Lazy<'t, (&'static str, u64, &'static str), ()>,
    /// The routing table as this transaction sees it (see [`Routes`]).
    pub routes: Routes,
}

impl<'t> Tables<'t> {
    /// The transaction's tables, none of them opened yet.
    pub fn open(txn: &'t WriteTransaction) -> Self {
        Self {
            endpoints: Lazy::new(txn, ENDPOINTS),
            tokens: Lazy::new(txn, TOKENS),
            token_hashes: Lazy::new(txn, TOKEN_HASHES),
            meta: Lazy::new(txn, META),
            messages: Lazy::new(txn, MESSAGES),
            message_state: Lazy::new(txn, MESSAGE_STATE),
            ended: Lazy::new(txn, ENDED),
            pending_messages: Lazy::new(txn, PENDING_MESSAGES),
            disabled: Lazy::new(txn, DISABLED),
            deliveries: Lazy::new(txn, DELIVERIES),
            queue: Lazy::new(txn, QUEUE),
            heads: Lazy::new(txn, HEADS),
            head_of: Lazy::new(txn, HEAD_OF),
            drain: Lazy::new(txn, DRAIN),
            attempts: Lazy::new(txn, ATTEMPTS),
            attempt_counts: Lazy::new(txn, ATTEMPT_COUNTS),
            gave_up: Lazy::new(txn, GAVE_UP),
            routes: Routes::default(),
        }
    }
}
