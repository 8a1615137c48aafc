//! The create body, built from structured input so most cases get past JSON syntax and reach the
//! field rules: each field present or not, of the right type or not, plus unknown fields.
#![no_main]

use arbitrary::Arbitrary;
use hookd::parse::create_endpoint;
use hookd::url_policy::UrlPolicy;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

include!("check.rs");

#[derive(Debug, Arbitrary)]
enum Field {
    Missing,
    Null,
    Str(String),
    Bool(bool),
    Num(i64),
    Url {
        https: bool,
        host: String,
        port: Option<u16>,
        path: String,
    },
    Whsec(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
struct Input {
    name: Field,
    url: Field,
    signing_enabled: Field,
    signing_secret: Field,
    extra: Option<(String, bool)>,
}

fn value(f: &Field) -> Option<Value> {
    use base64::Engine as _;
    Some(match f {
        Field::Missing => return None,
        Field::Null => Value::Null,
        Field::Str(s) => Value::from(s.as_str()),
        Field::Bool(b) => Value::from(*b),
        Field::Num(n) => Value::from(*n),
        Field::Url {
            https,
            host,
            port,
            path,
        } => {
            let scheme = if *https { "https" } else { "http" };
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            Value::from(format!("{scheme}://{host}{port}/{path}"))
        }
        Field::Whsec(bytes) => Value::from(format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )),
    })
}

fuzz_target!(|input: Input| {
    let mut map = Map::new();
    for (key, field) in [
        ("name", &input.name),
        ("url", &input.url),
        ("signingEnabled", &input.signing_enabled),
        ("signingSecret", &input.signing_secret),
    ] {
        if let Some(v) = value(field) {
            map.insert(key.to_owned(), v);
        }
    }
    if let Some((key, b)) = &input.extra {
        map.insert(key.clone(), Value::from(*b));
    }
    let body = Value::Object(map).to_string();
    let policy = UrlPolicy::default();
    match create_endpoint(body.as_bytes(), &policy) {
        Ok(req) => {
            assert_valid_name(&req.name);
            assert_valid_url(&req.url, &policy);
            if let Some(secret) = &req.signing_secret {
                assert!(!secret.key_bytes().is_empty());
            }
            let again = create_endpoint(req.to_json().to_string().as_bytes(), &policy).unwrap();
            assert_eq!(again, req);
        }
        Err(e) => assert_client_error(&e),
    }
});
