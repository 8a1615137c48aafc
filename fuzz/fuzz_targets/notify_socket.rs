//! `NOTIFY_SOCKET` (systemd's readiness socket): the parser never panics, takes only absolute
//! paths and `@abstract` names that fit a socket address, and names the variable when it
//! refuses.
#![no_main]

use hookd::notify::{parse_address, MAX_ADDRESS, SOCKET_VAR};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|value: &str| {
    match parse_address(value) {
        Ok(_) => {
            assert!(value.len() < MAX_ADDRESS, "{value:?}");
            assert!(!value.contains('\0'), "{value:?}");
            assert!(
                value.starts_with('/') || value.starts_with('@'),
                "{value:?}"
            );
        }
        Err(e) => assert!(e.contains(SOCKET_VAR), "{e}"),
    }
});
