//! The rotate-secret body.
#![no_main]

use hookd::parse::rotate_secret;
use hookd::secrets::SigningSecret;
use libfuzzer_sys::fuzz_target;

include!("check.rs");

fuzz_target!(|data: &[u8]| {
    match rotate_secret(data) {
        Ok(rotation) => {
            if let Some(secret) = rotation.secret {
                assert_eq!(SigningSecret::parse(secret.expose()).as_ref(), Ok(&secret));
                if let Some(a) = rotation.algorithm {
                    assert_eq!(secret.algorithm(), a, "a secret of the other algorithm");
                }
            }
        }
        Err(e) => assert_client_error(&e),
    }
});
