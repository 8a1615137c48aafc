//! The commit log's records, pure (no store, no I/O), so that the reader a start runs on
//! whatever a crash left in the log file is fuzzed like every other parser. The log itself,
//! and why it exists, is `store::embedded::wal`.
//!
//! A record is `length (u32) | sequence number (u64) | check (8 bytes) | payload`, all
//! little-endian. The
//! check is the start of a SHA-256 of the store's log id, the sequence number and the payload:
//! a torn record, one left from an earlier round of the log, or one of another store (a
//! restored backup gets a new id) fails it, and reading stops at the first record that is not
//! the next one. The payload is the batch's writes: `table id (u8) | key length (u32) | key |
//! value length (u32) | value` for an insert, `value length` `u32::MAX` and no value for a
//! removal.

use ring::digest;

/// Bytes before a record's payload.
pub const HEADER: usize = 4 + 8 + 8;
/// The value length of a removal.
const REMOVED: u32 = u32::MAX;

/// Appends one write to a payload being recorded.
pub fn record(out: &mut Vec<u8>, table: u8, key: &[u8], value: Option<&[u8]>) {
    out.push(table);
    out.extend_from_slice(&len32(key.len()).to_le_bytes());
    out.extend_from_slice(key);
    match value {
        Some(v) => {
            out.extend_from_slice(&len32(v.len()).to_le_bytes());
            out.extend_from_slice(v);
        }
        None => out.extend_from_slice(&REMOVED.to_le_bytes()),
    }
}

/// Keys and values are far below 4 GiB: request bodies are capped at a few MiB, and the store
/// logs no batch over 32 KiB.
fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(REMOVED - 1)
}

/// One write of a payload.
#[derive(Debug, PartialEq, Eq)]
pub struct Write<'a> {
    pub table: u8,
    pub key: &'a [u8],
    /// `None`: the key was removed.
    pub value: Option<&'a [u8]>,
}

/// The writes of one payload, or why it is malformed.
///
/// # Errors
/// The payload ends inside a write.
pub fn writes(mut payload: &[u8]) -> Result<Vec<Write<'_>>, String> {
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
        if bytes.len() < n {
            return Err(format!("a write is cut off ({} of {n} bytes)", bytes.len()));
        }
        let (head, rest) = bytes.split_at(n);
        *bytes = rest;
        Ok(head)
    }
    fn u32_of(bytes: &mut &[u8]) -> Result<u32, String> {
        let b = take(bytes, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    let mut out = Vec::new();
    while let Some((&table, rest)) = payload.split_first() {
        payload = rest;
        let key_len = u32_of(&mut payload)? as usize;
        let key = take(&mut payload, key_len)?;
        let value = match u32_of(&mut payload)? {
            REMOVED => None,
            n => Some(take(&mut payload, n as usize)?),
        };
        out.push(Write { table, key, value });
    }
    Ok(out)
}

/// Appends the record numbered `seq` of the store whose log id is `id` to `out`.
pub fn encode(out: &mut Vec<u8>, id: u64, seq: u64, payload: &[u8]) {
    out.extend_from_slice(&len32(payload.len()).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&check(id, seq, payload));
    out.extend_from_slice(payload);
}

/// The check of a record.
fn check(id: u64, seq: u64, payload: &[u8]) -> [u8; 8] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(&id.to_le_bytes());
    ctx.update(&seq.to_le_bytes());
    ctx.update(payload);
    let digest = ctx.finish();
    let mut out = [0; 8];
    out.copy_from_slice(&digest.as_ref()[..8]);
    out
}

/// The payloads of the records in `log` numbered `first`, `first + 1`, ... in order, up to
/// the first that is missing, torn, or from an earlier round or another store.
pub fn records(log: &[u8], id: u64, first: u64) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut at = 0usize;
    let mut seq = first;
    while let Some(header) = log.get(at..at.saturating_add(HEADER)) {
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let mut num = [0; 8];
        num.copy_from_slice(&header[4..12]);
        let start = at + HEADER;
        let Some(payload) = log.get(start..start.saturating_add(len)) else {
            break;
        };
        if u64::from_le_bytes(num) != seq || header[12..HEADER] != check(id, seq, payload) {
            break;
        }
        out.push(payload);
        at = start + len;
        seq += 1;
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn record_of(id: u64, seq: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(&mut out, id, seq, payload);
        out
    }

    #[test]
    fn writes_read_back_as_recorded() {
        let mut p = Vec::new();
        record(&mut p, 1, b"ep_1", Some(b"{...}"));
        record(&mut p, 9, b"", None);
        record(&mut p, 4, b"k", Some(b""));
        assert_eq!(
            writes(&p).unwrap(),
            vec![
                Write {
                    table: 1,
                    key: b"ep_1",
                    value: Some(b"{...}")
                },
                Write {
                    table: 9,
                    key: b"",
                    value: None
                },
                Write {
                    table: 4,
                    key: b"k",
                    value: Some(b"")
                },
            ]
        );
        for cut in 1..p.len() {
            assert!(
                writes(&p[..cut]).is_err() || [18, 27].contains(&cut),
                "cut at {cut}"
            );
        }
        assert_eq!(writes(&[]).unwrap(), vec![]);
    }

    #[test]
    fn reading_stops_at_the_first_record_that_is_not_the_next() {
        let mut log = record_of(7, 5, b"five");
        log.extend(record_of(7, 6, b"six"));
        let stale = record_of(7, 3, b"three");
        let mut with_stale = log.clone();
        with_stale.extend(&stale);
        with_stale.extend(vec![0; 64]);
        assert_eq!(records(&with_stale, 7, 5), vec![&b"five"[..], b"six"]);
        // Another store's, or numbered differently.
        assert!(records(&log, 8, 5).is_empty());
        assert!(records(&log, 7, 6).is_empty());
        assert_eq!(records(&log, 7, 5).len(), 2);
        // Torn: any byte of the second record changed, or the log cut inside it.
        let second = record_of(7, 5, b"five").len();
        for i in second..log.len() {
            let mut torn = log.clone();
            torn[i] ^= 0x40;
            assert_eq!(records(&torn, 7, 5), vec![&b"five"[..]], "byte {i}");
            assert_eq!(records(&log[..i], 7, 5), vec![&b"five"[..]], "cut at {i}");
        }
        assert!(records(&[0; 4096], 7, 1).is_empty());
        assert!(records(&[], 7, 1).is_empty());
    }
}
