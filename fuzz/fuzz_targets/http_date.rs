//! Dates from outside: a receiver's `Retry-After` as an HTTP-date (any of its three forms), and
//! RFC 3339 timestamps in request bodies (a token's `expiresAt`, `recover`'s `since`).
#![no_main]

use hookd::time::{http_date, parse_http_date, parse_rfc3339, rfc3339};
use libfuzzer_sys::fuzz_target;

include!("check.rs");

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(ms) = parse_rfc3339(text) {
        // Four-digit years and offsets under a day keep every instant in range.
        assert!(
            (-62_167_305_600_000..=253_402_387_200_000).contains(&ms),
            "{text:?} -> {ms}"
        );
        // Written back (whole seconds, UTC) it reads the same, to the second.
        let again = parse_rfc3339(&rfc3339(ms)).expect("our own format parses");
        assert_eq!(again, ms.div_euclid(1000) * 1000, "{text:?}");
    }
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
