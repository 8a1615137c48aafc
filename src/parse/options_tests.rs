//! Tests of the endpoint options: the header rules, and the options as create and PATCH bodies
//! give them (canonical forms, the field named for each broken rule, `null` and empty lists in a
//! PATCH, client certificates).

use super::*;
use crate::error::ApiError;
use crate::model::SigningAlgorithm;
use crate::parse::fields::error_fields as fields;
use crate::parse::{create_endpoint, update_endpoint, CreateEndpoint};
use crate::secrets::SigningSecret;
use crate::url_policy::UrlPolicy;

#[test]
fn header_rules() {
    for ok in ["X-Api-Key", "Authorization", "x_custom!#"] {
        assert_eq!(header_name_problem(ok), None, "{ok}");
    }
    for bad in [
        "",
        "Host",
        "content-TYPE",
        "Content-Encoding",
        "content-language",
        "Webhook-Id",
        "webhook-anything",
        "User-Agent",
        "Transfer-Encoding",
        "Connection",
        "a b",
        "a:b",
        "é",
        "x\r\ny",
    ] {
        assert!(header_name_problem(bad).is_some(), "{bad:?}");
    }
    assert!(header_name_problem(&"x".repeat(101)).is_some());
    assert_eq!(header_value_problem("Bearer abc"), None);
    assert_eq!(header_value_problem(""), None);
    for bad in ["a\r\nb", "a\nb", " lead", "trail ", "nul\0", "é"] {
        assert!(header_value_problem(bad).is_some(), "{bad:?}");
    }
    assert!(header_value_problem(&"v".repeat(4097)).is_some());
}

#[test]
fn the_readme_lists_every_reserved_header() {
    let readme = include_str!("../../README.md");
    for name in RESERVED_HEADERS {
        assert!(
            readme.contains(&format!("`{name}`")),
            "README.md lacks {name}"
        );
    }
}

const BASE: &str =
    r#""name":"n","url":"https://a.example","signingEnabled":true,"signingSecret":"""#;

fn create_with(extra: &str) -> Result<CreateEndpoint, ApiError> {
    create_endpoint(
        format!("{{{BASE},{extra}}}").as_bytes(),
        &UrlPolicy::default(),
    )
}

#[test]
fn routing_options_parse_to_canonical_forms() {
    let req = create_with(
        r#""filterTypes":["alertmanager.*","deploy","deploy"],"labelMatchers":["severity = critical","team=~\"db|storage\""],"headers":{"X-Api-Key":"k-123","Authorization":"Bearer abc"},"rateLimit":5,"signingAlgorithm":"ed25519""#,
    )
    .unwrap();
    let o = &req.options;
    assert_eq!(
        o.filter_types.as_deref().unwrap(),
        ["alertmanager.*", "deploy"]
    );
    assert_eq!(
        o.label_matchers.as_deref().unwrap(),
        [r#"severity="critical""#, r#"team=~"db|storage""#]
    );
    assert_eq!(o.headers.as_ref().unwrap().len(), 2);
    assert_eq!(o.rate_limit, Some(Some(5)));
    assert_eq!(req.signing_algorithm, SigningAlgorithm::Ed25519);
    // Round trip through JSON.
    let again =
        create_endpoint(req.to_json().to_string().as_bytes(), &UrlPolicy::default()).unwrap();
    assert_eq!(again, req);
    // A supplied whsk_ key makes the endpoint Ed25519 without saying so.
    let rng = ring::rand::SystemRandom::new();
    let key = SigningSecret::generate(&rng, SigningAlgorithm::Ed25519).unwrap();
    let with_key = format!(
        r#"{{"name":"n","url":"https://a.example","signingEnabled":true,"signingSecret":"{}"}}"#,
        key.expose()
    );
    let req = create_endpoint(with_key.as_bytes(), &UrlPolicy::default()).unwrap();
    assert_eq!(req.signing_algorithm, SigningAlgorithm::Ed25519);
}

#[test]
fn bad_routing_options_name_the_field() {
    for (extra, field, word) in [
        (r#""filterTypes":"a""#, "filterTypes", "array"),
        (r#""filterTypes":["a b"]"#, "filterTypes[0]", "event type"),
        (r#""filterTypes":[1]"#, "filterTypes[0]", "string"),
        (
            r#""labelMatchers":["sev"]"#,
            "labelMatchers[0]",
            "position 3",
        ),
        (
            r#""labelMatchers":["a=~\"(\""]"#,
            "labelMatchers[0]",
            "regular expression",
        ),
        (r#""headers":[]"#, "headers", "object"),
        (r#""headers":{"Host":"x"}"#, "headers.Host", "hookd sets"),
        (
            r#""headers":{"webhook-id":"x"}"#,
            "headers.webhook-id",
            "hookd sets",
        ),
        (r#""headers":{"X-A":"a\r\nb"}"#, "headers.X-A", "printable"),
        (r#""headers":{"X-A":"1","x-a":"2"}"#, "headers.x-a", "twice"),
        (r#""headers":{"X-A":1}"#, "headers.X-A", "string"),
        (
            r#""headers":{"bad name":"v"}"#,
            "headers.bad name",
            "header name",
        ),
        (r#""rateLimit":0"#, "rateLimit", "1-10000"),
        (r#""rateLimit":1.5"#, "rateLimit", "whole"),
        (r#""rateLimit":10001"#, "rateLimit", "1-10000"),
        (r#""rateLimit":null"#, "rateLimit", "leave it out"),
        (r#""signingAlgorithm":"rsa""#, "signingAlgorithm", "ed25519"),
        (
            r#""clientCertificate":"pem""#,
            "clientCertificate",
            "object",
        ),
        (
            r#""clientCertificate":{"certificate":"x"}"#,
            "clientCertificate.privateKey",
            "required",
        ),
        (
            r#""clientCertificate":{"certificate":"not pem","privateKey":"not pem","x":1}"#,
            "clientCertificate.x",
            "known",
        ),
    ] {
        let e = create_with(extra).unwrap_err();
        let text = e.problem()["errors"].to_string();
        assert!(fields(e).contains(&field.to_owned()), "{extra}: {text}");
        assert!(text.contains(word), "{extra}: {text}");
    }
    // Found by fuzzing: a long key under `headers.` must not make an unbounded field name.
    let long = "x".repeat(200);
    let e = create_with(&format!(r#""headers":{{"{long} ":"v"}}"#)).unwrap_err();
    assert_eq!(fields(e)[0].chars().count(), 64);
    let many: Vec<String> = (0..21).map(|i| format!(r#""X-H{i}":"v""#)).collect();
    let e = create_with(&format!(r#""headers":{{{}}}"#, many.join(","))).unwrap_err();
    assert_eq!(fields(e), ["headers"]);
    let many: Vec<String> = (0..51).map(|i| format!(r#""t{i}""#)).collect();
    let e = create_with(&format!(r#""filterTypes":[{}]"#, many.join(","))).unwrap_err();
    assert_eq!(fields(e), ["filterTypes"]);
}

#[test]
fn patch_null_removes_and_empty_lists_clear() {
    let p = UrlPolicy::default();
    let u = update_endpoint(br#"{"rateLimit":null,"clientCertificate":null}"#, &p).unwrap();
    assert_eq!(u.options.rate_limit, Some(None));
    assert_eq!(u.options.client_certificate, Some(None));
    let u = update_endpoint(br#"{"headers":{},"filterTypes":[],"labelMatchers":[]}"#, &p).unwrap();
    assert_eq!(u.options.headers, Some(vec![]));
    assert_eq!(u.options.filter_types, Some(vec![]));
    assert_eq!(u.options.label_matchers, Some(vec![]));
}

#[test]
fn client_certificates_are_read_and_checked_for_form() {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["client.test".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let body = serde_json::json!({
        "name": "n", "url": "https://a.example", "signingEnabled": true, "signingSecret": "",
        "clientCertificate": {"certificate": cert.pem(), "privateKey": key.serialize_pem()},
    });
    let req = create_endpoint(body.to_string().as_bytes(), &UrlPolicy::default()).unwrap();
    let c = req.options.client_certificate.unwrap().unwrap();
    assert_eq!(c.chain_der.len(), 1);
    assert_eq!(c.fingerprint.len(), 64);
    assert!(c.not_after_ms.is_some_and(|t| t > crate::time::now_ms()));
    assert!(!format!("{c:?}").contains("PRIVATE"));
    // A key where the certificate goes, and the other way around, are refused.
    let swapped = serde_json::json!({
        "name": "n", "url": "https://a.example", "signingEnabled": true, "signingSecret": "",
        "clientCertificate": {"certificate": key.serialize_pem(), "privateKey": cert.pem()},
    });
    let e = create_endpoint(swapped.to_string().as_bytes(), &UrlPolicy::default()).unwrap_err();
    assert_eq!(
        fields(e),
        [
            "clientCertificate.certificate",
            "clientCertificate.privateKey"
        ]
    );
}

#[test]
fn format_options_are_checked_for_form_and_against_the_format() {
    use crate::model::Format;
    let policy = UrlPolicy::default();
    let create = |extra: &str| {
        let body = format!(
            r#"{{"name":"n","url":"https://events.pagerduty.com/v2/enqueue","signingEnabled":true,"signingSecret":""{extra}}}"#
        );
        crate::parse::create_endpoint(body.as_bytes(), &policy)
    };
    assert_eq!(
        fields(create("").unwrap_err()),
        ["formatOptions.routingKey"]
    );
    for (bad, field) in [
        (r#","formatOptions":7"#, "formatOptions"),
        (
            r#","formatOptions":{"routingKey":"has space"}"#,
            "formatOptions.routingKey",
        ),
        (
            r#","formatOptions":{"routingKey":""}"#,
            "formatOptions.routingKey",
        ),
        (
            r#","formatOptions":{"routingKey":"k","other":1}"#,
            "formatOptions.other",
        ),
        (
            r#","formatOptions":{"routingKey":"k","severity":"Critical"}"#,
            "formatOptions.severity",
        ),
        (
            r#","format":"slack","formatOptions":{"routingKey":"k"}"#,
            "formatOptions",
        ),
    ] {
        assert_eq!(fields(create(bad).unwrap_err()), [field], "{bad}");
    }
    let ok = create(r#","formatOptions":{"routingKey":"k","severity":"info"}"#).unwrap();
    assert_eq!(ok.options.format, Some(Format::Pagerduty));
    let o = ok.options.format_options.unwrap();
    assert_eq!(
        (o.routing_key.as_deref(), o.severity.as_deref()),
        (Some("k"), Some("info"))
    );
    assert!(
        !format!("{o:?}").contains("\"k\""),
        "the key does not print"
    );
}

#[test]
fn pem_errors_show_the_line_at_fault_as_text() {
    let cut_short = "-----BEGIN CERTIFICATE-----\nMIIB\n";
    let why = pem_chain(cut_short).unwrap_err();
    assert_eq!(
        why,
        "is not valid PEM: a section has no end line `-----END CERTIFICATE-----`"
    );
    let why =
        pem_key("-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n").unwrap_err();
    assert!(
        why.starts_with("is not valid PEM: a section is not valid base64"),
        "{why}"
    );
    assert!(!why.contains("[45,"), "{why}");
}
