//! The commit log: what makes a lone write durable for about half a durable redb commit's CPU.
//!
//! A durable redb commit writes the B-tree path of every table it changed, redb's own
//! allocator records and its header, and syncs them: about eight pages and 100 µs of CPU for
//! one created endpoint. A small batch is instead committed to redb without a sync (its pages
//! wait in redb's write buffer or reach the file unsynced; a crash falls back to the last
//! durable commit) and its writes, recorded as they were made ([`super::tables::Lazy`]), are
//! appended to this log in one record and synced. Only then are its callers answered, so every
//! acknowledged write is on disk, as before.
//!
//! Every [`CHECKPOINT_EVERY`] records, about once a second while records are written (the
//! writer's checkpointer), at a clean stop, for a batch too large for the log (the many writes
//! of a busy moment, where one durable commit serves the whole batch anyway) and while the
//! volume is short of [`ROOM`], the writer commits durably instead, with the number of the last record in the `commit_log`
//! table; the log then starts again at its beginning. Opening the store replays, in one durable
//! commit, the records after that number: those of the commits since the last durable one,
//! which a crash or power cut took. Every durable commit made while the log is in use records
//! that number, so the store holds at most a prefix of the records replayed; a record is the
//! final value (or absence) of every key it wrote, so replaying them all in order ends in the
//! state they ended in, whatever prefix was there.
//!
//! The file, `<store>-log`, has a fixed size, written out with zeros when made, so that an
//! append changes no metadata and its sync flushes one page or a few. Its records are
//! [`crate::commit_log`]'s.

use std::fs::File;
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase as _, TableDefinition, WriteTransaction};

use super::backup::InsertError;
use super::StoreError;
pub use crate::commit_log::record;
use crate::commit_log::{encode, records, writes, HEADER};

/// The log's state in the store: `id` (random, made with the store's first log) and `seq` (the
/// last record a durable commit includes). Not in backups: a restored store is a new one.
pub const STATE: TableDefinition<&str, u64> = TableDefinition::new("commit_log");
/// The size of the log file.
pub const LOG_BYTES: u64 = 4 << 20;
/// A batch with more to record than this is committed durably instead: at 64 connections a
/// durable commit costs each of its writes little, and the many pages of a large batch, kept
/// in redb's write buffer until the next durable commit, made it slower than one.
pub const MAX_RECORD: usize = 32 << 10;
/// Records between durable commits. Each non-durable commit keeps the pages it freed until the
/// next durable one, so this bounds how far the store file grows meanwhile, and what a start
/// replays.
pub const CHECKPOINT_EVERY: u32 = 128;
/// Batches go to the log only while the volume has this much free above `store.min_free_bytes`.
/// Replaying the log after a failed commit needs room for one more commit: a volume that filled
/// up behind a run of non-durable commits would leave the store unreadable until space is
/// freed, where durable commits leave it readable.
pub const ROOM: u64 = 64 << 20;

/// The log file beside the store file at `store`.
pub fn path_of(store: &Path) -> PathBuf {
    let mut name = store.file_name().unwrap_or_default().to_os_string();
    name.push("-log");
    store.with_file_name(name)
}

/// The open log, kept by the writer thread.
pub struct Log {
    file: File,
    id: u64,
    /// Where the next record goes.
    at: u64,
    /// The sequence number of the last record written (or replayed).
    last: u64,
    /// Records since the last durable commit.
    since: u32,
    /// Whether the volume has [`ROOM`] to spare (set before each batch).
    pub room: bool,
    buf: Vec<u8>,
}

impl Log {
    /// Opens the log beside the store at `store`, replays into `db` what its last durable
    /// commit lacks, and makes the log ready for new records. `Ok(None)` if the log file cannot
    /// be made (a full volume): every commit is then durable in redb, as without a log.
    ///
    /// # Errors
    /// The log exists but cannot be read, or a record of it cannot be replayed: starting
    /// without it would lose acknowledged writes.
    pub fn open(db: &Database, store: &Path) -> Result<Option<Self>, StoreError> {
        let path = path_of(store);
        let (id, seq) = state(db)?;
        let mut replayed = seq;
        let len = match std::fs::read(&path) {
            Ok(bytes) => {
                let payloads = id.map_or_else(Vec::new, |id| records(&bytes, id, seq + 1));
                if !payloads.is_empty() {
                    replayed = replay(db, &payloads, seq).map_err(|e| match e {
                        StoreError::Io { full, message } => StoreError::Io {
                            full,
                            message: format!("replaying the commit log {} needs room for one commit of the store (free some space on its volume): {message}", path.display()),
                        },
                        other => other,
                    })?;
                }
                bytes.len() as u64
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => {
                return Err(StoreError::Storage(format!(
                    "cannot read the commit log {}: {e}",
                    path.display()
                )))
            }
        };
        let id = match id {
            Some(id) => id,
            None => new_id(db)?,
        };
        if replayed > seq {
            tracing::info!(
                records = replayed - seq,
                "the store was not closed cleanly: replayed its commit log"
            );
        }
        match prepare(&path, len) {
            Ok(file) => Ok(Some(Self {
                file,
                id,
                at: 0,
                last: replayed,
                since: 0,
                room: true,
                buf: Vec::new(),
            })),
            Err(e) => {
                tracing::warn!(error = %e, log = %path.display(), "cannot make the commit log; every write is a durable commit of the store file until a restart");
                Ok(None)
            }
        }
    }

    /// Whether a batch whose writes take `payload` bytes goes to the log (otherwise it is
    /// committed durably, and [`Log::checkpointed`] follows).
    pub fn takes(&self, payload: usize) -> bool {
        self.room
            && self.since < CHECKPOINT_EVERY
            && payload <= MAX_RECORD
            && self.at + (HEADER + payload) as u64 <= LOG_BYTES
    }

    /// Writes what a durable commit must hold so that a later start replays only what follows
    /// it.
    ///
    /// # Errors
    /// A storage error.
    pub fn mark(&self, txn: &WriteTransaction) -> Result<(), StoreError> {
        txn.open_table(STATE)?.insert("seq", self.last)?;
        Ok(())
    }

    /// Whether records were written since the last durable commit.
    pub fn pending(&self) -> bool {
        self.since > 0
    }

    /// The durable commit that [`Log::mark`] wrote to succeeded: the log starts again.
    pub fn checkpointed(&mut self) {
        self.at = 0;
        self.since = 0;
    }

    /// Appends one record and syncs it.
    ///
    /// # Errors
    /// The write or the sync failed: the batch is not durable.
    pub fn append(&mut self, payload: &[u8]) -> std::io::Result<()> {
        let seq = self.last + 1;
        self.buf.clear();
        encode(&mut self.buf, self.id, seq, payload);
        self.file.write_all_at(&self.buf, self.at)?;
        self.file.sync_data()?;
        self.at += self.buf.len() as u64;
        self.last = seq;
        self.since += 1;
        Ok(())
    }
}

/// The store's log id and the last record its durable state includes.
fn state(db: &Database) -> Result<(Option<u64>, u64), StoreError> {
    let txn = db.begin_read()?;
    let table = match txn.open_table(STATE) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok((None, 0)),
        Err(e) => return Err(e.into()),
    };
    let get = |key| -> Result<Option<u64>, StoreError> {
        Ok(redb::ReadableTable::get(&table, key)?.map(|v| v.value()))
    };
    Ok((get("id")?, get("seq")?.unwrap_or(0)))
}

/// Gives the store its log id.
fn new_id(db: &Database) -> Result<u64, StoreError> {
    let mut bytes = [0; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| StoreError::Storage("no randomness for the commit log's id".into()))?;
    let id = u64::from_le_bytes(bytes);
    let txn = db.begin_write()?;
    txn.open_table(STATE)?.insert("id", id)?;
    txn.commit()?;
    Ok(id)
}

/// Replays the records after `seq` (their payloads, in order) in one durable commit; returns
/// the last one's number.
fn replay(db: &Database, payloads: &[&[u8]], seq: u64) -> Result<u64, StoreError> {
    let txn = db.begin_write()?;
    for (n, payload) in (seq + 1..).zip(payloads) {
        let bad = |why: String| {
            StoreError::Storage(format!(
                "record {n} of the commit log cannot be replayed ({why}); the store is left as it is"
            ))
        };
        for w in writes(payload).map_err(bad)? {
            super::backup::write(&txn, w.table, w.key, w.value).map_err(|e| match e {
                InsertError::Store(e) => bad(e.to_string()),
                InsertError::Shape => bad(format!("a write that table {} cannot hold", w.table)),
            })?;
        }
    }
    let last = seq + payloads.len() as u64;
    txn.open_table(STATE)?.insert("seq", last)?;
    txn.commit()?;
    Ok(last)
}

/// Opens the log file, made (or completed) to [`LOG_BYTES`] of zeros and synced, with its
/// directory entry, so that appends change no metadata. `len` is its length now.
fn prepare(path: &Path, len: u64) -> std::io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    if len < LOG_BYTES {
        let zeros = vec![0u8; 64 << 10];
        let mut at = len;
        while at < LOG_BYTES {
            let n = (LOG_BYTES - at).min(zeros.len() as u64);
            file.write_all_at(&zeros[..n as usize], at)?;
            at += n;
        }
        file.sync_all()?;
        crate::files::sync_dir(path)?;
    }
    Ok(file)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn endpoint_count(db: &Database) -> u64 {
        use redb::ReadableTableMetadata as _;
        let txn = db.begin_read().unwrap();
        txn.open_table(super::super::schema::ENDPOINTS)
            .map_or(0, |t| t.len().unwrap())
    }

    /// A record replays into the store that wrote it, once; a new store at the same path (a
    /// restore) ignores it.
    #[test]
    fn records_replay_into_their_own_store_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("hookd.redb");
        {
            let db = Database::create(&store).unwrap();
            let mut log = Log::open(&db, &store).unwrap().unwrap();
            let mut payload = Vec::new();
            record(&mut payload, 1, b"ep_1", Some(b"\x01{}"));
            record(&mut payload, 1, b"ep_2", Some(b"\x01{}"));
            log.append(&payload).unwrap();
            let mut payload = Vec::new();
            record(&mut payload, 1, b"ep_2", None);
            log.append(&payload).unwrap();
            // Never committed to the store: a crash before its durable commit.
        }
        let db = Database::create(&store).unwrap();
        assert_eq!(endpoint_count(&db), 0);
        let log = Log::open(&db, &store).unwrap().unwrap();
        assert_eq!((endpoint_count(&db), log.last), (1, 2));
        drop((log, db));
        let db = Database::create(&store).unwrap();
        assert_eq!(
            Log::open(&db, &store).unwrap().unwrap().last,
            2,
            "nothing again"
        );
        drop(db);
        std::fs::remove_file(&store).unwrap();
        let db = Database::create(&store).unwrap();
        let log = Log::open(&db, &store).unwrap().unwrap();
        assert_eq!(
            (endpoint_count(&db), log.last),
            (0, 0),
            "another store's records"
        );
    }

    #[test]
    fn batches_take_the_log_until_it_is_full_or_a_checkpoint_is_due() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("hookd.redb");
        let db = Database::create(&store).unwrap();
        let mut log = Log::open(&db, &store).unwrap().unwrap();
        assert_eq!(std::fs::metadata(path_of(&store)).unwrap().len(), LOG_BYTES);
        assert!(log.takes(MAX_RECORD));
        assert!(!log.takes(MAX_RECORD + 1));
        for _ in 0..CHECKPOINT_EVERY {
            assert!(log.takes(100));
            log.append(&[0; 100]).unwrap();
        }
        assert!(!log.takes(100), "a checkpoint is due");
        log.checkpointed();
        assert!(log.takes(100));
        log.at = LOG_BYTES - HEADER as u64 - 99;
        assert!(!log.takes(100), "the log is full");
        log.at = 0;
        log.room = false;
        assert!(!log.takes(100), "the volume is nearly full");
    }
}
