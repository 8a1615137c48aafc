//! A receiver's `Retry-After` header as an HTTP-date, in any of its three forms.
#![no_main]

use hookd::time::{http_date, parse_http_date};
use libfuzzer_sys::fuzz_target;

include!("check.rs");

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(secs) = parse_http_date(text) else {
        return;
    };
    // Years have four digits, so every date lies in 0000-01-01 ..= 9999-12-31 (plus a leap second).
    assert!(
        (-62_167_219_200..=253_402_300_800).contains(&secs),
        "{text:?} -> {secs}"
    );
    // The instant, written back as an IMF-fixdate, reads the same (a leap second rolls over).
    let fixdate = http_date(secs * 1000);
    assert_eq!(
        parse_http_date(&fixdate),
        Some(secs),
        "{text:?} -> {fixdate:?}"
    );
});
