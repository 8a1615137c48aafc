//! Online backup and offline restore.
//!
//! redb has no backup API and holds its file locked, and copying the file while it is written
//! is unsafe. A backup is instead every table's records, streamed from one read transaction (a
//! consistent point in time; writers go on meanwhile), in the self-checking format of
//! [`crate::backup_format`].
//!
//! Sealed secrets stay sealed: the master key is not in a backup and must be kept with it,
//! separately. Restore checks the whole file (magic, format, schema version, checksum) before
//! it writes anything, loads it into a new store file beside the target, checks that store's
//! integrity and records, and only then moves it into place.

use std::fs;
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};

use redb::{
    Database, Key, ReadTransaction, ReadableDatabase, TableDefinition, Value, WriteTransaction,
};

use super::schema::tables;
use super::schema::{
    ATTEMPTS, ATTEMPT_COUNTS, DELIVERIES, DISABLED, DRAIN, ENDED, ENDPOINTS, GAVE_UP, HEADS,
    HEAD_OF, MESSAGES, MESSAGE_STATE, META, PENDING_MESSAGES, QUEUE, SCHEMA_VERSION, TOKENS,
    TOKEN_HASHES,
};
use super::{Store, StoreError};
use crate::backup_format as format;

/// Records per transaction while restoring (bounds the memory a restore needs).
const RESTORE_CHUNK: usize = 50_000;

const _: () = assert!(format::TABLES == 17, "one frame id per table");

/// What a backup or restore held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub records: u64,
    pub bytes: u64,
    pub created_at_ms: i64,
}

/// Why a restore was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0} is not a hookd backup: {1}")]
    NotABackup(String, String),
    #[error("{0} is damaged: {1}")]
    Damaged(String, String),
    #[error("{0} was made by a newer hookd (store schema {1}); restore it with that version")]
    Newer(String, u8),
    #[error("{dir} is not empty (it has {found}); restore into an empty directory, or pass --force to replace its store")]
    NotEmpty { dir: String, found: String },
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    InUse(String),
}

impl Store {
    /// Writes a consistent backup of the whole store to `out`, from one read transaction.
    /// Blocking: run it off the async runtime.
    ///
    /// # Errors
    /// A storage error, or one from `out` (a client that went away).
    pub fn backup(&self, out: impl Write) -> Result<Summary, StoreError> {
        let txn = self.read()?;
        let io = |e: io::Error| StoreError::Storage(format!("writing the backup: {e}"));
        let created_at_ms = crate::time::now_ms();
        let mut w = format::Writer::start(out, SCHEMA_VERSION, created_at_ms).map_err(io)?;
        let mut records = 0u64;
        macro_rules! dump {
            ($id:expr, $table:ident) => {
                records += dump_table(&txn, $table, $id, &mut w).map_err(|e| match e {
                    DumpError::Store(s) => s,
                    DumpError::Io(e) => io(e),
                })?;
            };
        }
        tables!(dump);
        let (bytes, _) = w.finish().map_err(io)?;
        Ok(Summary {
            records,
            bytes,
            created_at_ms,
        })
    }
}

enum DumpError {
    Store(StoreError),
    Io(io::Error),
}

fn dump_table<K: Key + 'static, V: Value + 'static, W: Write>(
    txn: &ReadTransaction,
    table: TableDefinition<K, V>,
    id: u8,
    w: &mut format::Writer<W>,
) -> Result<u64, DumpError> {
    let store = |e: StoreError| DumpError::Store(e);
    let table = txn
        .open_table(table)
        .map_err(|e| store(StoreError::from(e)))?;
    let mut n = 0;
    for entry in redb::ReadableTable::iter(&table).map_err(|e| store(e.into()))? {
        let (k, v) = entry.map_err(|e| store(e.into()))?;
        let (key, value) = (k.value(), v.value());
        let (key, value) = (K::as_bytes(&key), V::as_bytes(&value));
        w.frame(id, key.as_ref(), value.as_ref())
            .map_err(DumpError::Io)?;
        n += 1;
    }
    Ok(n)
}

/// Checks a whole backup file: its format and checksum (see [`format::verify`]), then every
/// record against its table's real types ([`format::check_record`]), so that a restore never
/// hands the store bytes it cannot read.
///
/// # Errors
/// What is wrong with the file.
pub fn verify(path: &Path, name: &str) -> Result<Summary, RestoreError> {
    let file = fs::File::open(path)?;
    let total = file.metadata()?.len();
    let (header, records) =
        format::verify(BufReader::new(file), total, SCHEMA_VERSION).map_err(|e| named(name, e))?;
    let (mut frames, _) =
        format::Reader::open(BufReader::new(fs::File::open(path)?), SCHEMA_VERSION)
            .map_err(|e| named(name, e))?;
    let mut n = 0u64;
    while let format::Frame::Record { table, key, value } =
        frames.next_frame().map_err(|e| named(name, e))?
    {
        n += 1;
        format::check_record(table, &key, &value)
            .map_err(|why| RestoreError::Damaged(name.to_owned(), format!("record {n}: {why}")))?;
    }
    Ok(Summary {
        records,
        bytes: total,
        created_at_ms: header.created_at_ms,
    })
}

/// A format error about the file called `name`.
fn named(name: &str, e: format::FormatError) -> RestoreError {
    let name = name.to_owned();
    match e {
        format::FormatError::NotABackup(why) => RestoreError::NotABackup(name, why.into()),
        format::FormatError::Damaged(why) => RestoreError::Damaged(name, why),
        format::FormatError::Newer(schema) => RestoreError::Newer(name, schema),
        format::FormatError::Older(_) => RestoreError::NotABackup(
            name,
            "an older store schema this hookd does not restore".into(),
        ),
    }
}

/// Installs the backup `from` as the store of `data_dir` (offline: no daemon may have it).
/// Refuses a data directory with anything in it, unless `force` (then only its store file is
/// replaced; the master key file, if any, stays).
///
/// # Errors
/// A file that is not a complete, intact backup of this hookd's schema; a non-empty directory;
/// a store that fails its checks after loading.
pub fn restore(from: &Path, data_dir: &Path, force: bool) -> Result<Summary, RestoreError> {
    let name = from.display().to_string();
    let summary = verify(from, &name)?;
    crate::files::private_dir(data_dir, &mut Vec::new())?;
    let found: Vec<String> = fs::read_dir(data_dir)?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if !found.is_empty() && !force {
        return Err(RestoreError::NotEmpty {
            dir: data_dir.display().to_string(),
            found: found.join(", "),
        });
    }
    let target = data_dir.join(crate::store::STORE_FILE);
    // Replacing a store a daemon holds would lose whatever it writes next.
    if target.exists() && super::offline::held(&target) {
        return Err(RestoreError::InUse(super::offline::in_use_message(&target)));
    }
    let staging = Staging(data_dir.join(format!("{}.restoring", crate::store::STORE_FILE)));
    let _ = fs::remove_file(&staging.0);
    let records = load(from, &name, &staging.0)?;
    if records != summary.records {
        return Err(RestoreError::Damaged(
            name,
            "it changed while being restored".into(),
        ));
    }
    fs::rename(&staging.0, &target)?;
    fs::File::open(data_dir)?.sync_all()?;
    Ok(summary)
}

/// The store file a restore loads into, removed on every way out (an error or a panic) unless
/// it was moved into place.
struct Staging(PathBuf);

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Loads the verified backup into a new store file at `path`, then checks it.
fn load(from: &Path, name: &str, path: &PathBuf) -> Result<u64, RestoreError> {
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
    }
    let mut db = Database::create(path).map_err(StoreError::from)?;
    let input = BufReader::new(fs::File::open(from)?);
    let (mut frames, _) =
        format::Reader::open(input, SCHEMA_VERSION).map_err(|e| named(name, e))?;
    let mut records = 0u64;
    let mut txn = db.begin_write().map_err(StoreError::from)?;
    super::schema::create_all(&txn)?;
    while let format::Frame::Record { table, key, value } =
        frames.next_frame().map_err(|e| named(name, e))?
    {
        // Checked by `verify` already; checked again, since the file may have changed since.
        format::check_record(table, &key, &value)
            .map_err(|why| RestoreError::Damaged(name.to_owned(), why))?;
        write(&txn, table, &key, Some(&value)).map_err(|e| match e {
            InsertError::Store(s) => RestoreError::Store(s),
            InsertError::Shape => RestoreError::Damaged(
                name.to_owned(),
                format!("a record of table {table} has the wrong shape"),
            ),
        })?;
        records += 1;
        if records % RESTORE_CHUNK as u64 == 0 {
            txn.commit().map_err(StoreError::from)?;
            txn = db.begin_write().map_err(StoreError::from)?;
        }
    }
    txn.commit().map_err(StoreError::from)?;
    // A backup of an older schema is brought up to date as any older store is when opened.
    super::migrate::prepare(&db)?;
    if !db.check_integrity().map_err(StoreError::from)? {
        return Err(RestoreError::Damaged(
            name.to_owned(),
            "the restored store failed redb's integrity check".into(),
        ));
    }
    check_records(&db, name)?;
    drop(db);
    Ok(records)
}

/// Why a record could not be written.
pub(super) enum InsertError {
    Store(StoreError),
    /// No table has its id, or its key or value has the wrong width for the table.
    Shape,
}

/// Writes `value` (or removes the key, if `None`) in the table whose id is `table`, from the
/// bytes redb stores: for restores, and for the commit log's replay.
pub(super) fn write(
    txn: &WriteTransaction,
    table: u8,
    key: &[u8],
    value: Option<&[u8]>,
) -> Result<(), InsertError> {
    macro_rules! load_into {
        ($id:expr, $table:ident) => {
            if table == $id {
                return write_into(txn, $table, key, value);
            }
        };
    }
    tables!(load_into);
    Err(InsertError::Shape)
}

fn write_into<K: Key + 'static, V: Value + 'static>(
    txn: &WriteTransaction,
    table: TableDefinition<K, V>,
    key: &[u8],
    value: Option<&[u8]>,
) -> Result<(), InsertError> {
    // Fixed-width types must have their width; variable ones are checked by redb's readers
    // and by the record check after loading.
    let fits = |width: Option<usize>, bytes: &[u8]| width.is_none_or(|w| w == bytes.len());
    if !fits(K::fixed_width(), key) || !value.is_none_or(|v| fits(V::fixed_width(), v)) {
        return Err(InsertError::Shape);
    }
    let mut t = txn
        .open_table(table)
        .map_err(|e| InsertError::Store(e.into()))?;
    match value {
        Some(v) => t.insert(K::from_bytes(key), V::from_bytes(v)).map(drop),
        None => t.remove(K::from_bytes(key)).map(drop),
    }
    .map_err(|e| InsertError::Store(e.into()))
}

/// Every JSON record decodes, and `meta` has the schema version.
fn check_records(db: &Database, name: &str) -> Result<(), RestoreError> {
    let damaged = |why: String| RestoreError::Damaged(name.to_owned(), why);
    let txn = db.begin_read().map_err(StoreError::from)?;
    let version = txn
        .open_table(META)
        .map_err(StoreError::from)?
        .get("schema_version")
        .map_err(StoreError::from)?
        .map(|v| v.value().to_vec());
    if version.as_deref() != Some(&[SCHEMA_VERSION]) {
        return Err(damaged("its store has no schema version".into()));
    }
    for table in [ENDPOINTS, TOKENS, MESSAGES, DELIVERIES, ATTEMPTS] {
        let t = txn.open_table(table).map_err(StoreError::from)?;
        for entry in redb::ReadableTable::iter(&t).map_err(StoreError::from)? {
            let (k, v) = entry.map_err(StoreError::from)?;
            super::decode::<serde_json::Value>(k.value(), v.value())
                .map_err(|e| damaged(e.to_string()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::format::check_record;
    use redb::Value as _;

    /// The backup format's checks read keys as redb writes them (tuple length varints
    /// included), for every tuple shape the store has.
    #[test]
    fn record_checks_agree_with_redbs_encodings() {
        let ended = <(u64, &str)>::as_bytes(&(7, "msg-1"));
        assert_eq!(check_record(7, &ended, &[]), Ok(()));
        assert_eq!(check_record(10, &ended, &[]), Ok(()));
        let long = "w".repeat(300); // a three-byte length varint
        for first in ["wh-1", long.as_str(), ""] {
            let key = <(&str, u64, &str)>::as_bytes(&(first, 9, "msg-1"));
            assert_eq!(check_record(9, &key, &[]), Ok(()), "{}", first.len());
            assert_eq!(check_record(17, &key, &[]), Ok(()));
        }
        let state = <(u32, u64)>::as_bytes(&(1, 2));
        assert_eq!(check_record(6, b"msg-1", &state), Ok(()));
        assert_eq!(check_record(11, b"wh-1", &u64::as_bytes(&3)), Ok(()));
        assert_eq!(check_record(12, b"wh-1", &u8::as_bytes(&1)), Ok(()));
    }
}
