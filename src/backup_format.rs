//! The backup file format, pure (no store, no I/O beyond the reader and writer given), so the
//! parser a restore runs on an untrusted file is fuzzed like every other parser.
//!
//! ```text
//! "HOOKDBK1"  u32 LE header length (at most 4096), header JSON {format, schema, createdAtMs, ...}
//! frames      u8 table (1..=TABLES), u32 LE key length, key, u32 LE value length, value
//! end         u8 0, then SHA-256 of everything before it
//! ```

use std::io::{self, Read, Write};

use ring::digest;

pub const MAGIC: &[u8; 8] = b"HOOKDBK1";
pub const FORMAT: u32 = 1;
/// Tables a frame may name (1..=TABLES).
pub const TABLES: u8 = 17;
/// The oldest store schema whose backups a restore takes (backups began with schema 2); an
/// older one is migrated as it is loaded.
pub const OLDEST_SCHEMA: u8 = 2;
/// Largest key or value a frame may declare.
pub const MAX_FIELD: u32 = 64 << 20;
const MAX_HEADER: u32 = 4096;

/// What is wrong with a backup file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    #[error("not a hookd backup: {0}")]
    NotABackup(&'static str),
    #[error("damaged: {0}")]
    Damaged(String),
    #[error("made by a newer hookd (store schema {0})")]
    Newer(u8),
    #[error("an older store schema ({0}) this hookd does not restore")]
    Older(u8),
}

/// The header's facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub schema: u8,
    pub created_at_ms: i64,
}

/// One frame, or the end marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Record {
        table: u8,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    End,
}

/// Writes a backup: header, frames, end marker and checksum; everything goes through the hash.
pub struct Writer<W> {
    out: W,
    hash: digest::Context,
    bytes: u64,
}

impl<W: Write> Writer<W> {
    /// Starts a backup of a store with schema `schema`, taken at `created_at_ms`.
    ///
    /// # Errors
    /// From `out`.
    pub fn start(out: W, schema: u8, created_at_ms: i64) -> io::Result<Self> {
        let mut w = Self {
            out,
            hash: digest::Context::new(&digest::SHA256),
            bytes: 0,
        };
        let header = serde_json::json!({
            "format": FORMAT,
            "schema": schema,
            "createdAt": crate::time::rfc3339(created_at_ms),
            "createdAtMs": created_at_ms,
            "hookd": env!("CARGO_PKG_VERSION"),
        })
        .to_string();
        w.put(MAGIC)?;
        w.put(
            &u32::try_from(header.len())
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        )?;
        w.put(header.as_bytes())?;
        Ok(w)
    }

    fn put(&mut self, data: &[u8]) -> io::Result<()> {
        self.hash.update(data);
        self.bytes += data.len() as u64;
        self.out.write_all(data)
    }

    /// One record of `table`.
    ///
    /// # Errors
    /// From `out`, or a key or value over [`MAX_FIELD`].
    pub fn frame(&mut self, table: u8, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.put(&[table])?;
        for part in [key, value] {
            let len = u32::try_from(part.len())
                .ok()
                .filter(|n| *n <= MAX_FIELD)
                .ok_or_else(|| io::Error::other("a record is larger than a backup frame allows"))?;
            self.put(&len.to_le_bytes())?;
            self.put(part)?;
        }
        Ok(())
    }

    /// The end marker and checksum; returns the bytes written and the sink.
    ///
    /// # Errors
    /// From `out`.
    pub fn finish(mut self) -> io::Result<(u64, W)> {
        self.put(&[0])?;
        let digest = self.hash.clone().finish();
        self.out.write_all(digest.as_ref())?;
        self.out.flush()?;
        Ok((self.bytes + 32, self.out))
    }
}

/// Reads a backup's header and frames (not the checksum: see [`verify`]).
pub struct Reader<R> {
    input: R,
}

impl<R: Read> Reader<R> {
    /// Reads and checks the header; the reader is then at the first frame.
    ///
    /// # Errors
    /// Not a backup, an unknown format, or a schema newer than `schema` or older than
    /// [`OLDEST_SCHEMA`].
    pub fn open(mut input: R, schema: u8) -> Result<(Self, Header), FormatError> {
        let mut magic = [0u8; 8];
        input
            .read_exact(&mut magic)
            .map_err(|_| FormatError::NotABackup("it is too short"))?;
        if &magic != MAGIC {
            return Err(FormatError::NotABackup("it does not start with HOOKDBK1"));
        }
        let mut len = [0u8; 4];
        input
            .read_exact(&mut len)
            .map_err(|_| FormatError::NotABackup("it has no header"))?;
        let len = u32::from_le_bytes(len);
        if len > MAX_HEADER {
            return Err(FormatError::NotABackup("its header is too long"));
        }
        let mut header = vec![0u8; len as usize];
        input
            .read_exact(&mut header)
            .map_err(|_| FormatError::NotABackup("it has no header"))?;
        let header: serde_json::Value = serde_json::from_slice(&header)
            .map_err(|_| FormatError::NotABackup("its header is not JSON"))?;
        if header["format"] != FORMAT {
            return Err(FormatError::NotABackup("an unknown backup format"));
        }
        let found = header["schema"]
            .as_u64()
            .and_then(|s| u8::try_from(s).ok())
            .ok_or(FormatError::NotABackup("no store schema version"))?;
        if found > schema {
            return Err(FormatError::Newer(found));
        }
        if found < OLDEST_SCHEMA.min(schema) {
            return Err(FormatError::Older(found));
        }
        let header = Header {
            schema: found,
            created_at_ms: header["createdAtMs"].as_i64().unwrap_or(0),
        };
        Ok((Self { input }, header))
    }

    /// The next frame.
    ///
    /// # Errors
    /// A frame that is cut off, names no table, or declares an oversized field.
    pub fn next_frame(&mut self) -> Result<Frame, FormatError> {
        let mut table = [0u8; 1];
        self.input
            .read_exact(&mut table)
            .map_err(|_| damaged("it ends before its end marker"))?;
        if table[0] == 0 {
            return Ok(Frame::End);
        }
        if table[0] > TABLES {
            return Err(damaged(format!("unknown table {}", table[0])));
        }
        let key = self.field()?;
        let value = self.field()?;
        Ok(Frame::Record {
            table: table[0],
            key,
            value,
        })
    }

    fn field(&mut self) -> Result<Vec<u8>, FormatError> {
        let mut len = [0u8; 4];
        self.input
            .read_exact(&mut len)
            .map_err(|_| damaged("a record is cut off"))?;
        let len = u32::from_le_bytes(len);
        if len > MAX_FIELD {
            return Err(damaged(format!("a record claims {len} bytes")));
        }
        let mut out = Vec::new();
        (&mut self.input)
            .take(u64::from(len))
            .read_to_end(&mut out)
            .map_err(|_| damaged("a record is cut off"))?;
        if out.len() != len as usize {
            return Err(damaged("a record is cut off"));
        }
        Ok(out)
    }

    pub fn into_inner(self) -> R {
        self.input
    }
}

fn damaged(why: impl Into<String>) -> FormatError {
    FormatError::Damaged(why.into())
}

/// Reads everything it is given while hashing it.
struct Hashing<'h, R> {
    inner: R,
    hash: &'h mut digest::Context,
}

impl<R: Read> Read for Hashing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// Checks a whole backup of `total` bytes read from `input`: header, every frame, the end
/// marker right before the 32-byte checksum, and the checksum. Returns the header and the
/// number of records.
///
/// # Errors
/// What is wrong with it.
pub fn verify(input: impl Read, total: u64, schema: u8) -> Result<(Header, u64), FormatError> {
    if total < 32 {
        return Err(FormatError::NotABackup("it is too short"));
    }
    let mut hash = digest::Context::new(&digest::SHA256);
    let mut input = input;
    let body = Hashing {
        inner: (&mut input).take(total - 32),
        hash: &mut hash,
    };
    let (mut reader, header) = Reader::open(body, schema)?;
    let mut records = 0u64;
    while let Frame::Record { .. } = reader.next_frame()? {
        records += 1;
    }
    let mut rest = Vec::new();
    reader
        .into_inner()
        .read_to_end(&mut rest)
        .map_err(|_| damaged("it could not be read to its end"))?;
    if !rest.is_empty() {
        return Err(damaged("data after its end marker"));
    }
    let mut trailer = [0u8; 32];
    input
        .read_exact(&mut trailer)
        .map_err(|_| damaged("its checksum is missing"))?;
    if hash.finish().as_ref() != trailer {
        return Err(damaged(
            "its checksum does not match (the file was cut short or altered)",
        ));
    }
    Ok((header, records))
}

/// How the store lays out one part of a key or value (redb's encodings).
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// UTF-8 text (`&str`).
    Str,
    /// Any bytes (`&[u8]`).
    Bytes,
    /// A fixed number of bytes (integers, tuples of them, `()`).
    Fixed(usize),
    /// A tuple: a length varint for every variable-width element but the last, then the
    /// elements one after the other.
    Tuple(&'static [Shape]),
    /// A record: [`RECORD_VERSION`], then the JSON of a model type.
    Record(Record),
}

#[derive(Clone, Copy, Debug)]
enum Record {
    Endpoint,
    Token,
    Message,
    Delivery,
    Attempt,
}

/// The version byte in front of every JSON record in the store.
pub const RECORD_VERSION: u8 = 1;

const U64: Shape = Shape::Fixed(8);
const UNIT: Shape = Shape::Fixed(0);

/// The key and value shapes of table `id` (1..=[`TABLES`]), in the frame ids' order.
fn shapes(id: u8) -> Option<(Shape, Shape)> {
    use Shape::{Bytes, Str, Tuple};
    Some(match id {
        1 => (Str, Shape::Record(Record::Endpoint)),
        2 => (Str, Shape::Record(Record::Token)),
        3 => (Bytes, Str),
        4 => (Str, Bytes),
        5 => (Str, Shape::Record(Record::Message)),
        6 => (Str, Shape::Fixed(12)),
        7 | 10 => (Tuple(&[U64, Str]), UNIT),
        8 => (Str, Shape::Record(Record::Delivery)),
        9 | 17 => (Tuple(&[Str, U64, Str]), UNIT),
        11 | 14 => (Str, U64),
        12 => (Str, Shape::Fixed(1)),
        13 => (Str, Shape::Record(Record::Attempt)),
        15 | 16 => (Str, UNIT),
        _ => return None,
    })
}

/// Checks one record of a backup against its table's real types before a restore loads it:
/// text is UTF-8, fixed widths are exact, tuple keys are well-formed, and every JSON record
/// decodes as its model type. (The store's encodings panic on malformed bytes; a backup's
/// checksum is unkeyed, so a crafted file passes it.)
///
/// # Errors
/// What is wrong, naming the key or the value.
pub fn check_record(table: u8, key: &[u8], value: &[u8]) -> Result<(), String> {
    let (k, v) = shapes(table).ok_or_else(|| format!("unknown table {table}"))?;
    check(k, key).map_err(|why| format!("a key of table {table} {why}"))?;
    check(v, value).map_err(|why| format!("a value of table {table} {why}"))
}

fn check(shape: Shape, bytes: &[u8]) -> Result<(), String> {
    match shape {
        Shape::Str => std::str::from_utf8(bytes)
            .map(drop)
            .map_err(|_| "is not UTF-8 text".to_owned()),
        Shape::Bytes => Ok(()),
        Shape::Fixed(width) if bytes.len() == width => Ok(()),
        Shape::Fixed(width) => Err(format!("has {} bytes, not {width}", bytes.len())),
        Shape::Tuple(parts) => tuple(parts, bytes),
        Shape::Record(kind) => record(kind, bytes),
    }
}

fn tuple(parts: &[Shape], bytes: &[u8]) -> Result<(), String> {
    let width = |p: &Shape| match p {
        Shape::Fixed(w) => Some(*w),
        _ => None,
    };
    let mut at = 0;
    let mut lens = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        lens.push(match width(part) {
            Some(w) => w,
            None if i + 1 == parts.len() => usize::MAX, // the rest
            None => {
                let (len, used) = varint(&bytes[at..]).ok_or("has a cut-off length")?;
                at += used;
                len
            }
        });
    }
    for (part, len) in parts.iter().zip(lens) {
        let rest = &bytes[at..];
        let len = if len == usize::MAX { rest.len() } else { len };
        let element = rest.get(..len).ok_or("is shorter than its lengths say")?;
        check(*part, element)?;
        at += len;
    }
    if at == bytes.len() {
        Ok(())
    } else {
        Err("is longer than its lengths say".into())
    }
}

/// redb's length varint: one byte up to 253, else 254 + u16 LE or 255 + u32 LE.
fn varint(bytes: &[u8]) -> Option<(usize, usize)> {
    match *bytes.first()? {
        n @ 0..=253 => Some((usize::from(n), 1)),
        254 => Some((
            usize::from(u16::from_le_bytes(bytes.get(1..3)?.try_into().ok()?)),
            3,
        )),
        255 => Some((
            usize::try_from(u32::from_le_bytes(bytes.get(1..5)?.try_into().ok()?)).ok()?,
            5,
        )),
    }
}

fn record(kind: Record, bytes: &[u8]) -> Result<(), String> {
    use crate::model::{Attempt, Delivery, Endpoint, Message, Token};
    let Some((&RECORD_VERSION, json)) = bytes.split_first() else {
        return Err("is not a record of a known version".into());
    };
    let decoded = match kind {
        Record::Endpoint => serde_json::from_slice::<Endpoint>(json).map(drop),
        Record::Token => serde_json::from_slice::<Token>(json).map(drop),
        Record::Message => serde_json::from_slice::<Message>(json).map(drop),
        Record::Delivery => serde_json::from_slice::<Delivery>(json).map(drop),
        Record::Attempt => serde_json::from_slice::<Attempt>(json).map(drop),
    };
    decoded.map_err(|e| format!("is not a valid {kind:?} record ({e})"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn records_are_checked_against_their_tables_types() {
        // Tuple keys as redb writes them: (u64, &str) and (&str, u64, &str).
        let mut ended = 7u64.to_le_bytes().to_vec();
        ended.extend_from_slice(b"msg-1");
        assert_eq!(check_record(7, &ended, b""), Ok(()));
        let mut queue = vec![4];
        queue.extend_from_slice(b"wh-1");
        queue.extend_from_slice(&9u64.to_le_bytes());
        queue.extend_from_slice(b"msg-1");
        assert_eq!(check_record(9, &queue, b""), Ok(()));
        assert_eq!(check_record(14, b"wh-1", &5u64.to_le_bytes()), Ok(()));
        for (table, key, value, says) in [
            (
                9u8,
                &b""[..],
                &b""[..],
                "key of table 9 has a cut-off length",
            ),
            (9, &queue[..3], b"", "shorter"),
            (17, &[200, b'a'][..], b"", "shorter"),
            (7, &ended[..5], b"", "shorter"),
            (7, &ended, b"x", "value of table 7 has 1 bytes, not 0"),
            (1, b"\xff\xfe", b"\x01{}", "not UTF-8"),
            (
                1,
                b"wh-1",
                b"\x01{\"not\":\"an endpoint\"}",
                "not a valid Endpoint",
            ),
            (1, b"wh-1", b"\x02{}", "known version"),
            (1, b"wh-1", b"", "known version"),
            (3, b"hash", b"\xc3", "not UTF-8"),
            (6, b"m", &[0; 11][..], "not 12"),
            (18, b"k", b"v", "unknown table"),
        ] {
            let e = check_record(table, key, value).unwrap_err();
            assert!(e.contains(says), "{table} {key:?}: {e}");
        }
        let mut long = queue.clone();
        long[0] = 254; // a three-byte length that runs past the end
        assert!(check_record(9, &long, b"").is_err());
        assert_eq!(varint(&[254, 1, 1]), Some((257, 3)));
        assert_eq!(varint(&[255, 0, 0, 1, 0]), Some((65_536, 5)));
        assert_eq!(varint(&[255, 0, 0]), None);
    }

    fn sample() -> Vec<u8> {
        let mut w = Writer::start(Vec::new(), 2, 1_768_464_000_000).unwrap();
        w.frame(1, b"wh-1", b"\x01{}").unwrap();
        w.frame(14, b"wh-1", &5u64.to_le_bytes()).unwrap();
        w.finish().unwrap().1
    }

    #[test]
    fn round_trip() {
        let bytes = sample();
        let (header, records) = verify(bytes.as_slice(), bytes.len() as u64, 2).unwrap();
        assert_eq!(
            (header.schema, header.created_at_ms, records),
            (2, 1_768_464_000_000, 2)
        );
        let (mut r, _) = Reader::open(bytes.as_slice(), 2).unwrap();
        assert_eq!(
            r.next_frame().unwrap(),
            Frame::Record {
                table: 1,
                key: b"wh-1".to_vec(),
                value: b"\x01{}".to_vec()
            }
        );
    }

    #[test]
    fn damage_is_found() {
        let good = sample();
        let check = |b: &[u8]| verify(b, b.len() as u64, 2);
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 1;
            assert!(check(&bad).is_err(), "a flipped bit at {i} went unnoticed");
        }
        for n in 0..good.len() {
            assert!(check(&good[..n]).is_err(), "cut at {n}");
        }
        // An older schema is read (the restore migrates it); one before backups existed is not.
        assert!(verify(good.as_slice(), good.len() as u64, 3).is_ok());
        let mut w = Writer::start(Vec::new(), 1, 0).unwrap();
        w.frame(1, b"wh-1", b"\x01{}").unwrap();
        let ancient = w.finish().unwrap().1;
        assert_eq!(
            verify(ancient.as_slice(), ancient.len() as u64, 3).unwrap_err(),
            FormatError::Older(1)
        );
        assert_eq!(
            verify(good.as_slice(), good.len() as u64, 1).unwrap_err(),
            FormatError::Newer(2)
        );
    }
}
