//! Supplied signing secrets (`whsec_` decoding, `whsk_` Ed25519 keys, and raw secrets).
#![no_main]

use hookd::model::SigningAlgorithm;
use hookd::secrets::{SigningSecret, RAW_SECRET_LEN, WHSEC_KEY_LEN, WHSEC_PREFIX, WHSK_PREFIX};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: &str| {
    if let Ok(secret) = SigningSecret::parse(s) {
        assert_eq!(secret.expose(), s);
        let key = secret.key_bytes();
        if s.starts_with(WHSEC_PREFIX) {
            assert!((WHSEC_KEY_LEN.0..=WHSEC_KEY_LEN.1).contains(&key.len()));
        } else if s.starts_with(WHSK_PREFIX) {
            assert_eq!(secret.algorithm(), SigningAlgorithm::Ed25519);
            assert_eq!(key.len(), 32);
            assert!(secret.public_key().is_some());
            assert!(secret.sign("msg_1", 1, b"{}").starts_with("v1a,"));
        } else {
            assert!((RAW_SECRET_LEN.0..=RAW_SECRET_LEN.1).contains(&key.len()));
        }
        let masked = secret.masked();
        assert!(masked.starts_with("****") && s.ends_with(&masked[4..]));
        // Debug shows the mask and nothing else of the secret.
        assert_eq!(format!("{secret:?}"), format!("SigningSecret({masked})"));
        // The signature is defined for every accepted secret.
        let sig = hookd::secrets::sign(&key, "msg_1", 1, b"{}");
        assert!(sig.starts_with("v1,"));
    }
});
