//! An endpoint's routing and shaping options, in a create and in a PATCH body, built from
//! structured input so most cases reach the option rules: whatever is accepted obeys them, and
//! a create round-trips through its JSON form.
#![no_main]

use arbitrary::Arbitrary;
use hookd::parse::{
    create_endpoint, header_name_problem, header_value_problem, update_endpoint, MAX_HEADERS,
    MAX_RATE,
};
use hookd::routing::{is_filter_type, Matcher, MAX_RULES};
use hookd::url_policy::UrlPolicy;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};

include!("check.rs");

#[derive(Debug, Arbitrary)]
enum Item {
    Str(String),
    Num(i64),
    Null,
}

#[derive(Debug, Arbitrary)]
struct Input {
    filter_types: Option<Vec<Item>>,
    label_matchers: Option<Vec<Item>>,
    headers: Option<Vec<(String, Item)>>,
    rate_limit: Option<Item>,
    algorithm: Option<String>,
    certificate: Option<(String, String)>,
    patch: bool,
}

fn item(i: &Item) -> Value {
    match i {
        Item::Str(s) => Value::from(s.as_str()),
        Item::Num(n) => Value::from(*n),
        Item::Null => Value::Null,
    }
}

fn list(items: &[Item]) -> Value {
    Value::Array(items.iter().map(item).collect())
}

fuzz_target!(|input: Input| {
    let mut body = Map::new();
    if !input.patch {
        body.insert("name".into(), "n".into());
        body.insert("url".into(), "https://hooks.example.com/".into());
        body.insert("signingEnabled".into(), true.into());
        body.insert("signingSecret".into(), "".into());
        if let Some(a) = &input.algorithm {
            body.insert("signingAlgorithm".into(), a.as_str().into());
        }
    }
    if let Some(f) = &input.filter_types {
        body.insert("filterTypes".into(), list(f));
    }
    if let Some(m) = &input.label_matchers {
        body.insert("labelMatchers".into(), list(m));
    }
    if let Some(h) = &input.headers {
        let map: Map<String, Value> = h.iter().map(|(k, v)| (k.clone(), item(v))).collect();
        body.insert("headers".into(), map.into());
    }
    if let Some(r) = &input.rate_limit {
        body.insert("rateLimit".into(), item(r));
    }
    if let Some((c, k)) = &input.certificate {
        body.insert(
            "clientCertificate".into(),
            json!({"certificate": c, "privateKey": k}),
        );
    }
    let text = Value::Object(body).to_string();
    let policy = UrlPolicy::default();
    let options = if input.patch {
        match update_endpoint(text.as_bytes(), &policy) {
            Ok(u) => u.options,
            Err(e) => return assert_client_error(&e),
        }
    } else {
        match create_endpoint(text.as_bytes(), &policy) {
            Ok(req) => {
                let again = create_endpoint(req.to_json().to_string().as_bytes(), &policy)
                    .unwrap_or_else(|e| panic!("round trip of {text}: {e:?}"));
                assert_eq!(again, req);
                req.options
            }
            Err(e) => return assert_client_error(&e),
        }
    };
    for f in options.filter_types.iter().flatten() {
        assert!(is_filter_type(f), "{f:?}");
    }
    let matchers = options.label_matchers.unwrap_or_default();
    assert!(matchers.len() <= MAX_RULES);
    for m in &matchers {
        assert_eq!(Matcher::parse(m).map(|m| m.to_string()).as_ref(), Ok(m));
    }
    let headers = options.headers.unwrap_or_default();
    assert!(headers.len() <= MAX_HEADERS);
    for (name, value) in &headers {
        assert_eq!(header_name_problem(name), None, "{name:?}");
        assert_eq!(header_value_problem(value), None, "{value:?}");
    }
    if let Some(Some(rate)) = options.rate_limit {
        assert!((1..=MAX_RATE).contains(&rate));
    }
    if let Some(Some(cert)) = options.client_certificate {
        assert!(!cert.chain_der.is_empty());
        assert_eq!(cert.fingerprint.len(), 64);
    }
});
