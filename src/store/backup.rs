//! Online backup and offline restore.
//!
//! redb has no backup API and holds its file locked, and copying the file while it is written
//! is unsafe. A backup is instead every table's records, streamed from one read transaction (a
//! consistent point in time; writers go on meanwhile), in a small self-checking format:
//!
//! ```text
//! "HOOKDBK1"  u32 LE header length, header JSON {format, schema, createdAt, hookd}
//! frames      u8 table (1..), u32 LE key length, key, u32 LE value length, value
//! end         u8 0, then SHA-256 of everything before it
//! ```
//!
//! Sealed secrets stay sealed: the master key is not in a backup and must be kept with it,
//! separately. Restore checks the whole file (magic, format, schema version, checksum) before
//! it writes anything, loads it into a new store file beside the target, checks that store's
//! integrity and records, and only then moves it into place.

use std::fs;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use redb::{
    Database, Key, ReadTransaction, ReadableDatabase, TableDefinition, Value, WriteTransaction,
};
use ring::digest;

use super::schema::{
    ATTEMPTS, ATTEMPT_COUNTS, DELIVERIES, DRAIN, ENDED, ENDPOINTS, HEADS, HEAD_OF, MESSAGES,
    MESSAGE_STATE, META, QUEUE, SCHEMA_VERSION, TOKENS, TOKEN_HASHES,
};
use super::{Store, StoreError};

const MAGIC: &[u8; 8] = b"HOOKDBK1";
const FORMAT: u32 = 1;
/// Records per transaction while restoring (bounds the memory a restore needs).
const RESTORE_CHUNK: usize = 50_000;
/// Largest key or value a frame may declare (redb's own limit is 3 GiB; hookd's records are
/// far smaller).
const MAX_FIELD: u32 = 64 << 20;

/// Calls `$f!(id, TABLE)` for every table, in the order of their frame ids.
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
    };
}
const TABLES: u8 = 14;

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

/// Everything written goes through the hash, then to the sink.
struct Hashing<W> {
    out: W,
    hash: digest::Context,
    bytes: u64,
}

impl<W: Write> Hashing<W> {
    fn put(&mut self, data: &[u8]) -> io::Result<()> {
        self.hash.update(data);
        self.bytes += data.len() as u64;
        self.out.write_all(data)
    }

    fn frame(&mut self, table: u8, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.put(&[table])?;
        for part in [key, value] {
            let len = u32::try_from(part.len())
                .map_err(|_| io::Error::other("a record is larger than 4 GiB"))?;
            self.put(&len.to_le_bytes())?;
            self.put(part)?;
        }
        Ok(())
    }
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
        let mut w = Hashing {
            out,
            hash: digest::Context::new(&digest::SHA256),
            bytes: 0,
        };
        let header = serde_json::json!({
            "format": FORMAT,
            "schema": SCHEMA_VERSION,
            "createdAt": crate::time::rfc3339(created_at_ms),
            "createdAtMs": created_at_ms,
            "hookd": env!("CARGO_PKG_VERSION"),
        })
        .to_string();
        w.put(MAGIC).map_err(io)?;
        let len = u32::try_from(header.len()).unwrap_or(u32::MAX);
        w.put(&len.to_le_bytes()).map_err(io)?;
        w.put(header.as_bytes()).map_err(io)?;
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
        w.put(&[0]).map_err(io)?;
        let digest = w.hash.clone().finish();
        w.out.write_all(digest.as_ref()).map_err(io)?;
        w.out.flush().map_err(io)?;
        Ok(Summary {
            records,
            bytes: w.bytes + 32,
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
    w: &mut Hashing<W>,
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

/// Reads frames from a backup body (after the header), counting what it reads.
struct Frames<R> {
    input: R,
    name: String,
}

/// One frame, or the end marker.
enum Frame {
    Record {
        table: u8,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    End,
}

impl<R: Read> Frames<R> {
    fn damaged(&self, why: impl Into<String>) -> RestoreError {
        RestoreError::Damaged(self.name.clone(), why.into())
    }

    fn next(&mut self) -> Result<Frame, RestoreError> {
        let mut table = [0u8; 1];
        self.input
            .read_exact(&mut table)
            .map_err(|_| self.damaged("it ends before its end marker"))?;
        if table[0] == 0 {
            return Ok(Frame::End);
        }
        if table[0] > TABLES {
            return Err(self.damaged(format!("unknown table {}", table[0])));
        }
        let key = self.field()?;
        let value = self.field()?;
        Ok(Frame::Record {
            table: table[0],
            key,
            value,
        })
    }

    fn field(&mut self) -> Result<Vec<u8>, RestoreError> {
        let mut len = [0u8; 4];
        self.input
            .read_exact(&mut len)
            .map_err(|_| self.damaged("a record is cut off"))?;
        let len = u32::from_le_bytes(len);
        if len > MAX_FIELD {
            return Err(self.damaged(format!("a record claims {len} bytes")));
        }
        let mut out = vec![0u8; len as usize];
        self.input
            .read_exact(&mut out)
            .map_err(|_| self.damaged("a record is cut off"))?;
        Ok(out)
    }
}

/// Reads and checks the header; returns the schema version and creation time.
fn read_header(input: &mut impl Read, name: &str) -> Result<(u8, i64), RestoreError> {
    let not = |why: &str| RestoreError::NotABackup(name.to_owned(), why.to_owned());
    let mut magic = [0u8; 8];
    input
        .read_exact(&mut magic)
        .map_err(|_| not("it is too short"))?;
    if &magic != MAGIC {
        return Err(not("it does not start with HOOKDBK1"));
    }
    let mut len = [0u8; 4];
    input.read_exact(&mut len).map_err(|_| not("no header"))?;
    let len = u32::from_le_bytes(len);
    if len > 4096 {
        return Err(not("its header is too long"));
    }
    let mut header = vec![0u8; len as usize];
    input
        .read_exact(&mut header)
        .map_err(|_| not("no header"))?;
    let header: serde_json::Value =
        serde_json::from_slice(&header).map_err(|_| not("its header is not JSON"))?;
    if header["format"] != FORMAT {
        return Err(not("an unknown backup format"));
    }
    let schema = header["schema"]
        .as_u64()
        .and_then(|s| u8::try_from(s).ok())
        .ok_or_else(|| not("no store schema version"))?;
    if schema > SCHEMA_VERSION {
        return Err(RestoreError::Newer(name.to_owned(), schema));
    }
    if schema < SCHEMA_VERSION {
        return Err(not("an older store schema this hookd does not restore"));
    }
    Ok((schema, header["createdAtMs"].as_i64().unwrap_or(0)))
}

/// Checks the whole file: header, every frame's shape, the end marker, and the checksum.
///
/// # Errors
/// What is wrong with the file.
pub fn verify(path: &Path, name: &str) -> Result<Summary, RestoreError> {
    let file = fs::File::open(path)?;
    let total = file.metadata()?.len();
    if total < 32 {
        return Err(RestoreError::NotABackup(
            name.to_owned(),
            "it is too short".into(),
        ));
    }
    let mut hash = digest::Context::new(&digest::SHA256);
    let mut body = HashReader {
        inner: BufReader::new(file).take(total - 32),
        hash: &mut hash,
    };
    let (_, created_at_ms) = read_header(&mut body, name)?;
    let mut frames = Frames {
        input: body,
        name: name.to_owned(),
    };
    let mut records = 0u64;
    while let Frame::Record { .. } = frames.next()? {
        records += 1;
    }
    let mut rest = Vec::new();
    frames.input.read_to_end(&mut rest)?;
    if !rest.is_empty() {
        return Err(RestoreError::Damaged(
            name.to_owned(),
            "data after its end marker".into(),
        ));
    }
    let mut file = frames.input.inner.into_inner().into_inner();
    let mut trailer = [0u8; 32];
    io::Seek::seek(&mut file, io::SeekFrom::Start(total - 32))?;
    file.read_exact(&mut trailer)?;
    if hash.finish().as_ref() != trailer {
        return Err(RestoreError::Damaged(
            name.to_owned(),
            "its checksum does not match (the file was cut short or altered)".into(),
        ));
    }
    Ok(Summary {
        records,
        bytes: total,
        created_at_ms,
    })
}

struct HashReader<'h, R> {
    inner: R,
    hash: &'h mut digest::Context,
}

impl<R: Read> Read for HashReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
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
    crate::app::private_dir(data_dir, &mut Vec::new())?;
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
    let target = data_dir.join(crate::app::STORE_FILE);
    // Replacing a store a daemon holds would lose whatever it writes next.
    if target.exists() && super::offline::held(&target) {
        return Err(RestoreError::InUse(super::offline::in_use_message(&target)));
    }
    let staging = data_dir.join(format!("{}.restoring", crate::app::STORE_FILE));
    let _ = fs::remove_file(&staging);
    let loaded = load(from, &name, &staging).and_then(|records| {
        if records == summary.records {
            Ok(())
        } else {
            Err(RestoreError::Damaged(
                name.clone(),
                "it changed while being restored".into(),
            ))
        }
    });
    if let Err(e) = loaded {
        let _ = fs::remove_file(&staging);
        return Err(e);
    }
    fs::rename(&staging, &target)?;
    fs::File::open(data_dir)?.sync_all()?;
    Ok(summary)
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
    let mut input = BufReader::new(fs::File::open(from)?);
    read_header(&mut input, name)?;
    let mut frames = Frames {
        input,
        name: name.to_owned(),
    };
    let mut records = 0u64;
    let mut txn = db.begin_write().map_err(StoreError::from)?;
    super::schema::create_all(&txn)?;
    while let Frame::Record { table, key, value } = frames.next()? {
        insert(&txn, table, &key, &value).map_err(|e| match e {
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

enum InsertError {
    Store(StoreError),
    Shape,
}

fn insert(txn: &WriteTransaction, table: u8, key: &[u8], value: &[u8]) -> Result<(), InsertError> {
    macro_rules! load_into {
        ($id:expr, $table:ident) => {
            if table == $id {
                return insert_into(txn, $table, key, value);
            }
        };
    }
    tables!(load_into);
    Err(InsertError::Shape)
}

fn insert_into<K: Key + 'static, V: Value + 'static>(
    txn: &WriteTransaction,
    table: TableDefinition<K, V>,
    key: &[u8],
    value: &[u8],
) -> Result<(), InsertError> {
    // Fixed-width types must have their width; variable ones are checked by redb's readers
    // and by the record check after loading.
    let fits = |width: Option<usize>, bytes: &[u8]| width.is_none_or(|w| w == bytes.len());
    if !fits(K::fixed_width(), key) || !fits(V::fixed_width(), value) {
        return Err(InsertError::Shape);
    }
    let mut t = txn
        .open_table(table)
        .map_err(|e| InsertError::Store(e.into()))?;
    t.insert(K::from_bytes(key), V::from_bytes(value))
        .map_err(|e| InsertError::Store(e.into()))?;
    Ok(())
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
