//! The `Authorization` header value: bearer, and bearer-or-basic (the Alertmanager route).
#![no_main]

use hookd::parse::{bearer_or_basic, bearer_token};
use libfuzzer_sys::fuzz_target;

include!("check.rs");

fuzz_target!(|data: &[u8]| {
    match bearer_token(Some(data)) {
        Ok(token) => {
            assert!(!token.is_empty() && token.len() <= 512);
            assert!(token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b)));
        }
        Err(e) => assert_eq!(e.status(), 401),
    }
    match bearer_or_basic(Some(data)).map(|p| p.token) {
        Ok(token) => {
            assert!(!token.is_empty() && token.len() <= 512);
            if let Ok(plain) = bearer_token(Some(data)) {
                assert_eq!(
                    plain, token,
                    "bearer credentials read the same on both routes"
                );
            }
        }
        Err(e) => assert_eq!(e.status(), 401),
    }
});
