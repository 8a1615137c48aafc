//! The list query string (`limit`, `cursor`).
#![no_main]

use hookd::ids::{is_well_formed, ENDPOINT_PREFIX};
use hookd::parse::{list_query, PageLimits};
use libfuzzer_sys::fuzz_target;

include!("check.rs");

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let limits = PageLimits {
        default: 50,
        max: 200,
    };
    match list_query(Some(query), ENDPOINT_PREFIX, limits) {
        Ok(page) => {
            assert!((1..=limits.max).contains(&page.limit));
            if let Some(c) = &page.cursor {
                assert!(is_well_formed(ENDPOINT_PREFIX, c));
            }
        }
        Err(e) => assert_client_error(&e),
    }
});
