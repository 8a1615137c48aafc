//! The PATCH body.
#![no_main]

use hookd::parse::update_endpoint;
use hookd::url_policy::UrlPolicy;
use libfuzzer_sys::fuzz_target;

include!("check.rs");

fuzz_target!(|data: &[u8]| {
    let policy = UrlPolicy::default();
    match update_endpoint(data, &policy) {
        Ok(patch) => {
            let o = &patch.options;
            assert!(
                patch.name.is_some()
                    || patch.url.is_some()
                    || patch.signing_enabled.is_some()
                    || patch.disabled.is_some()
                    || o.filter_types.is_some()
                    || o.label_matchers.is_some()
                    || o.headers.is_some()
                    || o.rate_limit.is_some()
                    || o.client_certificate.is_some()
            );
            if let Some(name) = &patch.name {
                assert_valid_name(name);
            }
            if let Some(url) = &patch.url {
                assert_valid_url(url, &policy);
            }
        }
        Err(e) => assert_client_error(&e),
    }
});
