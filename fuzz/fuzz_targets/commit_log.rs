//! The commit log's reader, which a start runs on whatever a crash or a power cut left in the
//! log file: never a panic on any bytes, and records written by the writer read back exactly,
//! up to the first one damaged.
#![no_main]

use arbitrary::Arbitrary;
use hookd::commit_log::{encode, record, records, writes, Write};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Input<'a> {
    /// Any bytes, as a log file, read for a store id and a first record number.
    Raw(&'a [u8], u64, u64),
    /// Records of writes, written and read back, with one byte changed if `flip` says where.
    Records {
        id: u64,
        first: u32,
        batches: Vec<Vec<(u8, &'a [u8], Option<&'a [u8]>)>>,
        flip: Option<(u16, u8)>,
    },
}

fuzz_target!(|input: Input<'_>| match input {
    Input::Raw(bytes, id, first) => {
        for payload in records(bytes, id, first) {
            let _ = writes(payload);
        }
    }
    Input::Records {
        id,
        first,
        batches,
        flip,
    } => {
        let first = u64::from(first);
        let mut log = Vec::new();
        let mut ends = Vec::new();
        let mut payloads = Vec::new();
        for (seq, batch) in (first..).zip(&batches) {
            let mut payload = Vec::new();
            for (table, key, value) in batch {
                record(&mut payload, *table, key, *value);
            }
            encode(&mut log, id, seq, &payload);
            ends.push(log.len());
            payloads.push(payload);
        }
        let read = records(&log, id, first);
        assert_eq!(read, payloads.iter().map(Vec::as_slice).collect::<Vec<_>>());
        for (payload, batch) in read.iter().zip(&batches) {
            let want: Vec<Write<'_>> = batch
                .iter()
                .map(|(table, key, value)| Write {
                    table: *table,
                    key,
                    value: *value,
                })
                .collect();
            assert_eq!(writes(payload).unwrap(), want);
        }
        if let Some((at, bit)) = flip {
            if !log.is_empty() {
                let at = usize::from(at) % log.len();
                let mut torn = log.clone();
                torn[at] ^= 1 << (bit % 8);
                // Records before the damaged one still read; it and what follows do not.
                let damaged = ends.iter().position(|&end| at < end).unwrap();
                assert_eq!(records(&torn, id, first), read[..damaged].to_vec());
            }
        }
    }
});
