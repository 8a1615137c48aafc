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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
