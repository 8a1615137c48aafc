//! The backup file parser `hookd restore` runs on a file it is given: never a panic, and what
//! it accepts reads back frame by frame; frames written by the writer always verify. Every
//! record's check against its table's types (`check_record`) is total too.
#![no_main]

use arbitrary::Arbitrary;
use hookd::backup_format::{check_record, verify, Frame, Reader, Writer, TABLES};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Input<'a> {
    /// Any bytes, as a file.
    Raw(&'a [u8]),
    /// Records to write, then read back.
    Records(Vec<(u8, &'a [u8], &'a [u8])>),
}

fuzz_target!(|input: Input<'_>| {
    match input {
        Input::Raw(bytes) => {
            if let Ok((_, records)) = verify(bytes, bytes.len() as u64, 2) {
                let (mut r, _) = Reader::open(bytes, 2).expect("verified, so it opens");
                let mut n = 0;
                while let Frame::Record { table, key, value } =
                    r.next_frame().expect("verified frames")
                {
                    assert!((1..=TABLES).contains(&table));
                    let _ = check_record(table, &key, &value);
                    n += 1;
                }
                assert_eq!(n, records);
            }
        }
        Input::Records(records) => {
            let mut w = Writer::start(Vec::new(), 2, 1_768_464_000_000).unwrap();
            let records: Vec<_> = records
                .into_iter()
                .map(|(t, k, v)| (t % TABLES + 1, k, v))
                .collect();
            for (t, k, v) in &records {
                w.frame(*t, k, v).unwrap();
                if let Err(why) = check_record(*t, k, v) {
                    assert!(!why.is_empty());
                }
            }
            let (len, bytes) = w.finish().unwrap();
            assert_eq!(len, bytes.len() as u64);
            let (_, n) = verify(bytes.as_slice(), len, 2).expect("a written backup verifies");
            assert_eq!(n, records.len() as u64);
            let (mut r, _) = Reader::open(bytes.as_slice(), 2).unwrap();
            for (t, k, v) in &records {
                assert_eq!(
                    r.next_frame().unwrap(),
                    Frame::Record {
                        table: *t,
                        key: k.to_vec(),
                        value: v.to_vec()
                    }
                );
            }
            assert_eq!(r.next_frame().unwrap(), Frame::End);
        }
    }
});
