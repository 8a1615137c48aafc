//! The token creation body.
#![no_main]

use hookd::parse::create_token;
use libfuzzer_sys::fuzz_target;

include!("check.rs");

fuzz_target!(|data: &[u8]| {
    let now = 1_768_464_000_000;
    match create_token(data, now) {
        Ok(t) => {
            assert!(
                t.expires_at_ms.is_none_or(|at| at > now),
                "an expiry in the past"
            );
            assert_valid_name(&t.name);
            assert!(!t.scopes.is_empty());
            assert!(
                t.scopes.windows(2).all(|w| w[0] < w[1]),
                "scopes sorted and unique"
            );
        }
        Err(e) => assert_client_error(&e),
    }
});
