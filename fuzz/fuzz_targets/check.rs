// Properties shared by the targets (included with `include!`, so each target stays one file).

use hookd::error::ApiError;

/// Every error a parser returns is a client error (400, 401 or 422), and a 422 names at least
/// one field, each with a message.
#[allow(dead_code)]
fn assert_client_error(e: &ApiError) {
    let status = e.status();
    assert!(matches!(status, 400 | 401 | 422), "status {status} for {e:?}");
    if let ApiError::Validation(errors) = e {
        assert!(!errors.is_empty(), "a 422 without fields");
        for f in errors {
            assert!(!f.field.is_empty() && !f.message.is_empty(), "{f:?}");
            assert!(f.field.chars().count() <= 64, "an unbounded field name is echoed");
        }
    }
    let problem = e.problem();
    assert_eq!(problem["status"], status);
}

/// A name the parser accepted obeys every name rule.
#[allow(dead_code)]
fn assert_valid_name(name: &str) {
    assert!(!name.is_empty() && name.chars().count() <= hookd::parse::MAX_NAME_CHARS);
    assert_eq!(name.trim(), name);
    assert!(!name.chars().any(char::is_control));
    assert!(!name.chars().any(hookd::parse::is_invisible_format));
}

/// A URL the parser accepted passes the URL rules again, unchanged (normalization is stable).
#[allow(dead_code)]
fn assert_valid_url(url: &str, policy: &hookd::url_policy::UrlPolicy) {
    assert!(url.len() <= policy.max_len);
    let again = policy.check(url).unwrap_or_else(|e| panic!("accepted {url:?} fails on re-check: {e}"));
    assert_eq!(again.as_str(), url, "normalization is not idempotent");
}
