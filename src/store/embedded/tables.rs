//! The tables of one write transaction, each opened the first time an op of the batch uses it,
//! with the routing table as that transaction sees it.
//!
//! Opening a table and closing it again at commit costs a lookup in redb's table of tables
//! each way; a batch of creates uses one table of the seventeen, and opening all of them cost a
//! lone create about 20 µs of the writer's CPU.
//!
//! Every write goes through [`Lazy::insert`] and [`Lazy::remove`] (reads get the table itself),
//! so that the writer can have a batch's writes recorded for the commit log ([`super::wal`]).

use redb::{AccessGuard, Key, Table, TableDefinition, Value, WriteTransaction};

use super::schema::{
    ATTEMPTS, ATTEMPT_COUNTS, DELIVERIES, DISABLED, DRAIN, ENDED, ENDPOINTS, GAVE_UP, HEADS,
    HEAD_OF, MESSAGES, MESSAGE_STATE, META, PENDING_MESSAGES, QUEUE, TOKENS, TOKEN_HASHES,
};
use super::{wal, StoreError};
use crate::store::routes::Routes;

/// One table of the transaction, opened when first used and then kept open until the batch
/// ends.
pub struct Lazy<'t, K: Key + 'static, V: Value + 'static> {
    txn: &'t WriteTransaction,
    /// The table's id in backups and in the commit log.
    id: u8,
    definition: TableDefinition<'static, K, V>,
    table: Option<Table<'t, K, V>>,
    /// The writes so far, in the commit log's encoding, while recording.
    recorded: Option<Vec<u8>>,
    /// More was written than one record of the log takes: recording stopped.
    over: bool,
}

impl<'t, K: Key + 'static, V: Value + 'static> Lazy<'t, K, V> {
    fn new(txn: &'t WriteTransaction, id: u8, definition: TableDefinition<'static, K, V>) -> Self {
        Self {
            txn,
            id,
            definition,
            table: None,
            recorded: None,
            over: false,
        }
    }

    fn open(&mut self) -> Result<&mut Table<'t, K, V>, StoreError> {
        match self.table {
            Some(ref mut table) => Ok(table),
            None => Ok(self.table.insert(self.txn.open_table(self.definition)?)),
        }
    }

    /// The open table, to read.
    pub fn table(&mut self) -> Result<&Table<'t, K, V>, StoreError> {
        self.open().map(|t| &*t)
    }

    /// Inserts or replaces `key`'s value.
    pub fn insert(
        &mut self,
        key: K::SelfType<'_>,
        value: V::SelfType<'_>,
    ) -> Result<(), StoreError> {
        if let Some(ops) = self.recorded.as_mut() {
            let (k, v) = (K::as_bytes(&key), V::as_bytes(&value));
            wal::record(ops, self.id, k.as_ref(), Some(v.as_ref()));
            self.check_size();
        }
        self.open()?.insert(key, value)?;
        Ok(())
    }

    /// Removes `key`, returning its value if it had one.
    pub fn remove(
        &mut self,
        key: K::SelfType<'_>,
    ) -> Result<Option<AccessGuard<'_, V>>, StoreError> {
        if let Some(ops) = self.recorded.as_mut() {
            wal::record(ops, self.id, K::as_bytes(&key).as_ref(), None);
            self.check_size();
        }
        Ok(self.open()?.remove(key)?)
    }

    /// Stops recording once more is recorded than the log takes.
    fn check_size(&mut self) {
        if self
            .recorded
            .as_ref()
            .is_some_and(|r| r.len() > wal::MAX_RECORD)
        {
            self.recorded = None;
            self.over = true;
        }
    }

    /// Appends the writes recorded to `out`; `false` if there were too many to record.
    fn recorded_into(&mut self, out: &mut Vec<u8>) -> bool {
        if let Some(ops) = self.recorded.as_mut() {
            out.append(ops);
        }
        !self.over
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
            endpoints: Lazy::new(txn, 1, ENDPOINTS),
            tokens: Lazy::new(txn, 2, TOKENS),
            token_hashes: Lazy::new(txn, 3, TOKEN_HASHES),
            meta: Lazy::new(txn, 4, META),
            messages: Lazy::new(txn, 5, MESSAGES),
            message_state: Lazy::new(txn, 6, MESSAGE_STATE),
            ended: Lazy::new(txn, 7, ENDED),
            pending_messages: Lazy::new(txn, 16, PENDING_MESSAGES),
            disabled: Lazy::new(txn, 15, DISABLED),
            deliveries: Lazy::new(txn, 8, DELIVERIES),
            queue: Lazy::new(txn, 9, QUEUE),
            heads: Lazy::new(txn, 10, HEADS),
            head_of: Lazy::new(txn, 11, HEAD_OF),
            drain: Lazy::new(txn, 12, DRAIN),
            attempts: Lazy::new(txn, 13, ATTEMPTS),
            attempt_counts: Lazy::new(txn, 14, ATTEMPT_COUNTS),
            gave_up: Lazy::new(txn, 17, GAVE_UP),
            routes: Routes::default(),
        }
    }

    /// From now on, records every write of the batch for the commit log.
    pub fn record(&mut self) {
        macro_rules! start {
            ($($field:ident),*) => {$( self.$field.recorded = Some(Vec::new()); )*};
        }
        each_table!(start);
    }

    /// Every write recorded, in one payload of the commit log (empty if not recording);
    /// `None` if there were more than one record takes.
    pub fn recorded(&mut self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let mut whole = true;
        macro_rules! gather {
            ($($field:ident),*) => {$( whole &= self.$field.recorded_into(&mut out); )*};
        }
        each_table!(gather);
        whole.then_some(out)
    }
}

/// Calls `$f!(field, ...)` with every table of [`Tables`].
macro_rules! each_table {
    ($f:ident) => {
        $f!(
            endpoints,
            tokens,
            token_hashes,
            meta,
            messages,
            message_state,
            ended,
            pending_messages,
            disabled,
            deliveries,
            queue,
            heads,
            head_of,
            drain,
            attempts,
            attempt_counts,
            gave_up
        )
    };
}
use each_table;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The ids given here are the ones backups and the commit log use for the same tables.
    #[test]
    fn every_table_has_its_id_of_the_backups() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let db = redb::Database::create(file.path()).unwrap();
        let txn = db.begin_write().unwrap();
        let t = Tables::open(&txn);
        let mut ours = Vec::new();
        macro_rules! list {
            ($($field:ident),*) => {$( ours.push((t.$field.id, redb::TableHandle::name(&t.$field.definition).to_owned())); )*};
        }
        each_table!(list);
        ours.sort();
        let mut theirs = Vec::new();
        macro_rules! listed {
            ($id:expr, $table:ident) => {
                theirs.push((
                    $id,
                    redb::TableHandle::name(&super::super::schema::$table).to_owned(),
                ));
            };
        }
        super::super::schema::tables!(listed);
        assert_eq!(ours, theirs);
    }
}
