//! Route and id parsing: method and path.
#![no_main]

use hookd::error::ApiError;
use hookd::route::{resolve, Operation};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &str)| {
    let (method, path) = input;
    match resolve(method, path) {
        Ok(op) => {
            let id = match &op {
                Operation::GetEndpoint(id)
                | Operation::UpdateEndpoint(id)
                | Operation::DeleteEndpoint(id)
                | Operation::RotateSecret(id)
                | Operation::RevokeToken(id) => Some(id),
                _ => None,
            };
            if let Some(id) = id {
                assert!(!id.is_empty() && id.len() <= 64 && path.contains(id.as_str()));
                assert!(id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            }
        }
        Err(ApiError::NotFound(detail)) => assert!(detail.chars().count() < 140),
        Err(ApiError::MethodNotAllowed { allow }) => assert!(!allow.is_empty()),
        Err(other) => panic!("unexpected {other:?}"),
    }
});
