//! The create body (CreateAlertWebhookEndpoint), as raw bytes.
#![no_main]

use hookd::parse::create_endpoint;
use hookd::url_policy::UrlPolicy;
use libfuzzer_sys::fuzz_target;

include!("check.rs");

fuzz_target!(|data: &[u8]| {
    let policy = UrlPolicy::default();
    match create_endpoint(data, &policy) {
        Ok(req) => {
            assert_valid_name(&req.name);
            assert_valid_url(&req.url, &policy);
            // What parses serializes back to the same value.
            let again = create_endpoint(req.to_json().to_string().as_bytes(), &policy)
                .expect("a serialized valid request parses");
            assert_eq!(again, req);
        }
        Err(e) => assert_client_error(&e),
    }
});
