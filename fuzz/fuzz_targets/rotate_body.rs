//! The rotate-secret body.
#![no_main]

use hookd::parse::rotate_secret;
use hookd::secrets::SigningSecret;
use libfuzzer_sys::fuzz_target;

include!("check.rs");

fuzz_target!(|data: &[u8]| {
    match rotate_secret(data) {
        Ok(Some(secret)) => {
            assert_eq!(SigningSecret::parse(secret.expose()).as_ref(), Ok(&secret));
        }
        Ok(None) => {}
        Err(e) => assert_client_error(&e),
    }
});
