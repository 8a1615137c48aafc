//! Routing and shaping per endpoint, over HTTP with local receivers: event-type filters,
//! Alertmanager label matchers, custom headers, rate limits, Ed25519 signatures (verified with
//! PyPI `cryptography`), client certificates (mTLS), and recover.
use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::common::receiver::Receiver;
use crate::common::{TestServer, ENDPOINTS};
use base64::Engine as _;
use hyper::StatusCode;
use serde_json::{json, Value};

/// Receivers live on loopback; no retries unless a test asks; quick polls.
const FAST: &str = "[url_policy]\nallow_networks = [\"127.0.0.0/8\"]\n[delivery]\nretry_schedule_secs = [1, 1, 1]\njitter_percent = 0\npoll_interval_ms = 50\n";

/// Creates an endpoint from `fields` added to a minimal valid body; returns the answer.
async fn create(s: &TestServer, url: &str, fields: Value) -> Value {
    let mut body = json!({"name": "r", "url": url, "signingEnabled": true, "signingSecret": ""});
    body.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    let r = s.req("POST", ENDPOINTS).json(&body).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

fn id_of(created: &Value) -> String {
    created["endpoint"]["id"].as_str().unwrap().to_owned()
}

async fn native(s: &TestServer, event: &str, payload: Value) -> Value {
    let r = s
        .req("POST", "/api/v1/alerting/alerts")
        .json(&json!({"eventType": event, "payload": payload}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    r.json()
}

/// An Alertmanager v4 webhook payload as Alertmanager sends it: each alert carries the group's
/// common labels plus its own.
fn am_payload(common: Value, alerts: &[Value]) -> Value {
    let alerts: Vec<Value> = alerts
        .iter()
        .enumerate()
        .map(|(i, own)| {
            let mut labels = common.as_object().unwrap().clone();
            labels.extend(own.as_object().unwrap().clone());
            json!({
                "status": "firing", "labels": labels,
                "annotations": {"summary": "something is wrong"},
                "startsAt": "2026-11-27T10:00:00.000Z", "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph?g0.expr=up+%3D%3D+0",
                "fingerprint": format!("{i:016x}")
            })
        })
        .collect();
    json!({
        "receiver": "hookd", "status": "firing", "alerts": alerts,
        "groupLabels": {"alertname": common["alertname"]}, "commonLabels": common,
        "commonAnnotations": {"summary": "something is wrong"},
        "externalURL": "http://alertmanager:9093", "version": "4",
        "groupKey": "{}:{alertname=\"x\"}", "truncatedAlerts": 0
    })
}

async fn alertmanager(s: &TestServer, payload: &Value) -> Value {
    let r = s
        .req("POST", "/api/v1/alerting/alertmanager")
        .json(payload)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    r.json()
}

/// What routing reads is bounded: a label value of at most 2 KiB, at most 1,000 alerts in a
/// notification (Alertmanager's `max_alerts`); over either, a 422 that says so. A PATCH of
/// costly matchers to an endpoint that does not exist is a 404 before anything is compiled.
#[tokio::test]
async fn what_routing_reads_is_bounded() {
    let s = TestServer::start().await;
    let long = "v".repeat(hookd::routing::MAX_LABEL_VALUE + 1);
    let ok = "v".repeat(hookd::routing::MAX_LABEL_VALUE);
    let r = s
        .req("POST", "/api/v1/alerting/alerts")
        .json(&json!({"eventType": "x", "payload": {"labels": {"instance": long}}}))
        .send()
        .await;
    assert_eq!(r.error_fields(), ["payload.labels"]);
    assert!(
        r.text().contains("instance") && r.text().contains("is 2049 bytes"),
        "{}",
        r.text()
    );
    native(&s, "x", json!({"labels": {"instance": ok}})).await;
    let mut am = am_payload(json!({"alertname": "A"}), &[json!({"instance": long})]);
    let r = s
        .req("POST", "/api/v1/alerting/alertmanager")
        .json(&am)
        .send()
        .await;
    assert_eq!(r.error_fields(), ["alerts[0].labels"]);
    am["alerts"][0]["labels"]["instance"] = json!("short");
    am["commonLabels"]["instance"] = json!(long);
    let r = s
        .req("POST", "/api/v1/alerting/alertmanager")
        .json(&am)
        .send()
        .await;
    assert_eq!(r.error_fields(), ["commonLabels"]);
    let group = am_payload(json!({"alertname": "A"}), &[json!({})])["alerts"][0].clone();
    let mut big = am_payload(json!({"alertname": "A"}), &[]);
    big["alerts"] = json!(vec![
        json!({"labels": {}});
        hookd::routing::MAX_GROUP_ALERTS + 1
    ]);
    let r = s
        .req("POST", "/api/v1/alerting/alertmanager")
        .json(&big)
        .send()
        .await;
    assert_eq!(r.error_fields(), ["alerts"]);
    assert!(r.text().contains("max_alerts"), "{}", r.text());
    big["alerts"] = json!(vec![group; hookd::routing::MAX_GROUP_ALERTS]);
    let r = s
        .req("POST", "/api/v1/alerting/alertmanager")
        .json(&big)
        .send()
        .await;
    // A thousand full alerts are over the 64 KiB body limit today; a thousand small ones not.
    if r.status != StatusCode::PAYLOAD_TOO_LARGE {
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    }
    big["alerts"] = json!(vec![
        json!({"labels": {}});
        hookd::routing::MAX_GROUP_ALERTS
    ]);
    alertmanager(&s, &big).await;

    let costly: Vec<String> = (0..50)
        .map(|i| format!("x{i}=~\"(a|b)*a(a|b){{12}}\""))
        .collect();
    s.req("PATCH", &format!("{ENDPOINTS}/wh-nope"))
        .json(&json!({"labelMatchers": costly}))
        .send()
        .await
        .problem(404);
    s.stop().await;
}

/// Routing reads a snapshot taken before the write: an endpoint changed, disabled or deleted
/// by a write that was answered is routed by what it is now, at once.
#[tokio::test]
async fn answered_changes_route_the_next_alert() {
    let rx = Receiver::start().await;
    let s = TestServer::start_with(FAST).await;
    let id = id_of(&create(&s, &rx.url("/a"), json!({"labelMatchers": ["team=\"db\""]})).await);
    let db = json!({"labels": {"team": "db"}});
    let web = json!({"labels": {"team": "web"}});
    assert_eq!(native(&s, "x", db.clone()).await["deliveries"], 1);
    assert_eq!(native(&s, "x", web.clone()).await["deliveries"], 0);
    let r = s
        .req("PATCH", &format!("{ENDPOINTS}/{id}"))
        .json(&json!({"labelMatchers": ["team=~\"web|ops\""]}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(native(&s, "x", db.clone()).await["deliveries"], 0);
    assert_eq!(native(&s, "x", web.clone()).await["deliveries"], 1);
    // A PATCH that leaves the matchers alone keeps them (compiled once, not again).
    let r = s
        .req("PATCH", &format!("{ENDPOINTS}/{id}"))
        .json(&json!({"filterTypes": ["y"]}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(native(&s, "x", web.clone()).await["deliveries"], 0);
    assert_eq!(native(&s, "y", web.clone()).await["deliveries"], 1);
    for (patch, want) in [
        (json!({"disabled": true}), 0),
        (json!({"disabled": false}), 1),
    ] {
        s.req("PATCH", &format!("{ENDPOINTS}/{id}"))
            .json(&patch)
            .send()
            .await;
        assert_eq!(
            native(&s, "y", web.clone()).await["deliveries"],
            want,
            "{patch}"
        );
    }
    s.req("DELETE", &format!("{ENDPOINTS}/{id}")).send().await;
    assert_eq!(native(&s, "y", web).await["deliveries"], 0);
    s.stop().await;
}

#[tokio::test]
async fn every_option_is_validated_naming_the_field() {
    let s = TestServer::start().await;
    let base = json!({"name": "n", "url": "https://hooks.example.com/", "signingEnabled": true, "signingSecret": ""});
    let with = |extra: Value| {
        let mut b = base.clone();
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    for (extra, field, says) in [
        (
            json!({"filterTypes": ["a b"]}),
            "filterTypes[0]",
            "event type",
        ),
        (
            json!({"filterTypes": "alertmanager.*"}),
            "filterTypes",
            "array",
        ),
        (
            json!({"labelMatchers": ["severity"]}),
            "labelMatchers[0]",
            "at position 8",
        ),
        (
            json!({"labelMatchers": ["team=~\"db|(\""]}),
            "labelMatchers[0]",
            "regular expression",
        ),
        (
            json!({"labelMatchers": ["team=\"open"]}),
            "labelMatchers[0]",
            "closing",
        ),
        // The review's costly matchers: a case-insensitive Unicode class intersection (317 ms
        // to compile) and a repetition whose automaton explodes (1 s per match).
        (
            json!({"labelMatchers": ["x0=~\"(?i)[\\\\p{Any}&&a]\""]}),
            "labelMatchers[0]",
            "RE2",
        ),
        (
            json!({"labelMatchers": ["x=~\"[ab]*a[ab]{3600}\""]}),
            "labelMatchers[0]",
            "repetition",
        ),
        (
            json!({"labelMatchers": ["x=~\"(?i)\\\\p{L}+\""]}),
            "labelMatchers[0]",
            "(?i)",
        ),
        // Parses, but its automaton is over the size one matcher may take.
        (
            json!({"labelMatchers": ["x=\"1\"", "x=~\"(a|b)*a(a|b){20}\""]}),
            "labelMatchers[1]",
            "too large",
        ),
        (
            json!({"labelMatchers": [format!("x=~\"{}\"", "a".repeat(520))]}),
            "labelMatchers[0]",
            "longer than 512",
        ),
        (
            json!({"headers": {"Content-Type": "text/plain"}}),
            "headers.Content-Type",
            "hookd sets",
        ),
        (
            json!({"headers": {"Webhook-Signature": "v1,forged"}}),
            "headers.Webhook-Signature",
            "hookd sets",
        ),
        (
            json!({"headers": {"Host": "evil.example"}}),
            "headers.Host",
            "hookd sets",
        ),
        (
            json!({"headers": {"X-A": "line\r\nX-Injected: 1"}}),
            "headers.X-A",
            "printable",
        ),
        (
            json!({"headers": {"X A": "v"}}),
            "headers.X A",
            "header name",
        ),
        (json!({"headers": ["X-A", "v"]}), "headers", "object"),
        (json!({"rateLimit": 0}), "rateLimit", "1-10000"),
        (json!({"rateLimit": "10"}), "rateLimit", "whole number"),
        (
            json!({"signingAlgorithm": "rsa-sha256"}),
            "signingAlgorithm",
            "ed25519",
        ),
        (
            json!({"signingAlgorithm": "ed25519", "signingSecret": "my-secret-key"}),
            "signingSecret",
            "whsk_",
        ),
        (
            json!({"signingSecret": "whsk_AAAA"}),
            "signingSecret",
            "Ed25519 seed",
        ),
        (
            json!({"clientCertificate": {"certificate": "x", "privateKey": "y"}}),
            "clientCertificate.certificate",
            "PEM",
        ),
        (
            json!({"clientCertificate": null}),
            "clientCertificate",
            "leave it out",
        ),
    ] {
        let r = s
            .req("POST", ENDPOINTS)
            .json(&with(extra.clone()))
            .send()
            .await;
        let p = r.problem(422);
        assert_eq!(r.error_fields()[0], field, "{extra}: {p}");
        assert!(p.to_string().contains(says), "{extra}: {p}");
    }
    // A certificate with someone else's key: rustls says they do not belong together.
    let key = rcgen::KeyPair::generate().unwrap();
    let other = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["client.test".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let r = s
        .req("POST", ENDPOINTS)
        .json(&with(json!({"clientCertificate": {"certificate": cert.pem(), "privateKey": other.serialize_pem()}})))
        .send()
        .await;
    assert!(r.problem(422).to_string().contains("does not belong"));
    assert_eq!(r.error_fields(), ["clientCertificate"]);
    // PATCH: the same rules; algorithm and secret change only by rotation.
    let id = id_of(&create(&s, "https://hooks.example.com/", json!({})).await);
    let path = format!("{ENDPOINTS}/{id}");
    for (body, field) in [
        (
            json!({"headers": {"Connection": "close"}}),
            "headers.Connection",
        ),
        (json!({"rateLimit": 10001}), "rateLimit"),
        (json!({"signingAlgorithm": "ed25519"}), "signingAlgorithm"),
        (json!({"labelMatchers": ["a==b"]}), "labelMatchers[0]"),
    ] {
        let r = s.req("PATCH", &path).json(&body).send().await;
        r.problem(422);
        assert_eq!(r.error_fields(), [field], "{body}");
    }
    let r = s
        .req("POST", &format!("{path}/rotate-secret"))
        .json(&json!({"signingAlgorithm": "hmac-sha256", "signingSecret": "whsk_AAAA"}))
        .send()
        .await;
    r.problem(422);
    assert_eq!(r.error_fields(), ["signingSecret"]);
    // Recover: `since` required, RFC 3339, not in the future; unknown endpoints are 404.
    for body in [
        json!({}),
        json!({"since": "yesterday"}),
        json!({"since": "2999-01-01T00:00:00Z"}),
        json!({"since": "2026-01-01T00:00:00Z", "x": 1}),
    ] {
        let r = s
            .req("POST", &format!("{path}/recover"))
            .json(&body)
            .send()
            .await;
        r.problem(422);
    }
    s.req(
        "POST",
        &format!("{ENDPOINTS}/wh-00000000000000000000000000/recover"),
    )
    .json(&json!({"since": "2026-01-01T00:00:00Z"}))
    .send()
    .await
    .problem(404);
    s.stop().await;
}

/// One receiver, one endpoint per path, each with different rules; four alerts; every
/// delivery lands exactly where the rules say (and the 202 counts exactly those).
#[tokio::test]
async fn alerts_route_by_event_type_and_alertmanager_label_matchers() {
    let rx = Receiver::start().await;
    let s = TestServer::start_with(FAST).await;
    let rules = [
        ("/all", json!({})),
        ("/am", json!({"filterTypes": ["alertmanager.*"]})),
        ("/deploy", json!({"filterTypes": ["deploy"]})),
        ("/db", json!({"labelMatchers": ["team=\"db\""]})),
        (
            "/crit",
            json!({"labelMatchers": ["severity=~\"critical|page\"", "alertname!~\"Watchdog|InfoInhibitor\""]}),
        ),
        ("/notstaging", json!({"labelMatchers": ["env!=staging"]})),
    ];
    let mut ids = BTreeMap::new();
    for (path, r) in &rules {
        let created = create(&s, &rx.url(path), r.clone()).await;
        ids.insert(*path, id_of(&created));
        if *path == "/notstaging" {
            let shown = &created["endpoint"]["labelMatchers"];
            assert_eq!(shown, &json!(["env!=\"staging\""]), "canonical form");
        } else if let Some((key, value)) = r.as_object().unwrap().iter().next() {
            assert_eq!(&created["endpoint"][key], value);
        }
    }
    let disk_full = am_payload(
        json!({"alertname": "DiskFull", "env": "prod"}),
        &[
            json!({"team": "db", "severity": "warning"}),
            json!({"team": "web", "severity": "critical"}),
        ],
    );
    let watchdog = am_payload(
        json!({"alertname": "Watchdog", "severity": "none", "env": "staging"}),
        &[json!({})],
    );
    let mut expected: Vec<(String, BTreeSet<&str>)> = Vec::new();
    for (answer, want) in [
        (
            alertmanager(&s, &disk_full).await,
            vec!["/all", "/am", "/db", "/crit", "/notstaging"],
        ),
        (alertmanager(&s, &watchdog).await, vec!["/all", "/am"]),
        (
            native(
                &s,
                "deploy",
                json!({"labels": {"team": "db", "env": "staging"}}),
            )
            .await,
            vec!["/all", "/deploy", "/db"],
        ),
        (
            native(&s, "alert.firing", json!({"summary": "no labels"})).await,
            vec!["/all", "/notstaging"],
        ),
    ] {
        assert_eq!(answer["deliveries"], want.len(), "{answer}");
        expected.push((
            answer["messageId"].as_str().unwrap().to_owned(),
            want.into_iter().collect(),
        ));
    }
    let total: usize = expected.iter().map(|(_, w)| w.len()).sum();
    let got = rx.wait_for(total, 15).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.count(), total, "nothing beyond the routed deliveries");
    for (msg, want) in &expected {
        let paths: BTreeSet<&str> = got
            .iter()
            .filter(|r| r.header("webhook-id") == *msg)
            .map(|r| r.path.as_str())
            .collect();
        assert_eq!(&paths, want, "message {msg}");
    }
    // Changing the rules takes effect at once: /db now takes everything, /deploy nothing.
    let r = s
        .req("PATCH", &format!("{ENDPOINTS}/{}", ids["/db"]))
        .json(&json!({"labelMatchers": []}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["endpoint"]["labelMatchers"], json!([]));
    let r = s
        .req("PATCH", &format!("{ENDPOINTS}/{}", ids["/deploy"]))
        .json(&json!({"filterTypes": ["nothing.*"]}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = native(&s, "deploy", json!({})).await;
    assert_eq!(v["deliveries"], 3, "/all, /db, /notstaging: {v}");
    s.stop().await;
}

#[tokio::test]
async fn custom_headers_arrive_and_are_sealed_and_masked() {
    let rx = Receiver::start().await;
    let s = TestServer::start_with(FAST).await;
    let created = create(
        &s,
        &rx.url("/h"),
        json!({"headers": {"X-Api-Key": "key-0123456789-abcd", "Authorization": "Bearer ab"}}),
    )
    .await;
    let id = id_of(&created);
    let masked = json!({"Authorization": "****", "X-Api-Key": "****abcd"});
    assert_eq!(created["endpoint"]["headers"], masked);
    let got = s
        .req("GET", &format!("{ENDPOINTS}/{id}"))
        .send()
        .await
        .json();
    assert_eq!(got["endpoint"]["headers"], masked);
    let list = s.req("GET", ENDPOINTS).send().await.text();
    assert!(
        !list.contains("0123456789") && !list.contains("Bearer"),
        "{list}"
    );
    native(&s, "alert.firing", json!({})).await;
    let r = &rx.wait_for(1, 10).await[0];
    assert_eq!(r.header("x-api-key"), "key-0123456789-abcd");
    assert_eq!(r.header("authorization"), "Bearer ab");
    assert!(r.header("webhook-signature").starts_with("v1,"));
    assert_eq!(r.header("content-type"), "application/json");
    // Sealed at rest: the store file never holds the values.
    let store = crate::common::postgres::stored(s.dir.path());
    for secret in [&b"key-0123456789-abcd"[..], b"Bearer ab"] {
        assert!(!store.windows(secret.len()).any(|w| w == secret));
    }
    // A PATCH replaces them all; `{}` removes them.
    let r = s
        .req("PATCH", &format!("{ENDPOINTS}/{id}"))
        .json(&json!({"headers": {}}))
        .send()
        .await;
    assert_eq!(r.json()["endpoint"]["headers"], json!({}));
    native(&s, "alert.firing", json!({})).await;
    let r = &rx.wait_for(2, 10).await[1];
    assert_eq!(r.header("x-api-key"), "");
    s.stop().await;
}

/// 10 per second, measured at the receiver: 9 to 11 in each of 5 seconds, nothing failed, and
/// the throttled deliveries hold no slot another endpoint needs.
#[tokio::test]
async fn a_rate_limit_paces_deliveries_without_failing_any() {
    let rx = Receiver::start().await;
    let s = TestServer::start_with(FAST).await;
    let limited = id_of(&create(&s, &rx.url("/limited"), json!({"rateLimit": 10})).await);
    let free = id_of(&create(&s, &rx.url("/free"), json!({})).await);
    assert_eq!(
        s.req("GET", &format!("{ENDPOINTS}/{limited}"))
            .send()
            .await
            .json()["endpoint"]["rateLimit"],
        10
    );
    for _ in 0..70 {
        native(&s, "alert.firing", json!({})).await;
    }
    let arrivals = |path: &str| -> Vec<std::time::Instant> {
        rx.received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .map(|r| r.at)
            .collect()
    };
    common::eventually(5, "the unlimited endpoint gets all 70 at once", || {
        arrivals("/free").len() == 70
    })
    .await;
    common::eventually(10, "51 throttled deliveries", || {
        arrivals("/limited").len() >= 51
    })
    .await;
    let at = arrivals("/limited");
    let t0 = at[0];
    let mut per_second = [0usize; 5];
    for t in &at {
        let ms = t.duration_since(t0).as_millis();
        if ms < 5000 {
            per_second[usize::try_from(ms / 1000).unwrap()] += 1;
        }
    }
    assert!(
        per_second.iter().all(|n| (9..=11).contains(n)),
        "per second: {per_second:?}"
    );
    let total: usize = per_second.iter().sum();
    assert!((45..=55).contains(&total), "in 5 s: {total}");
    let log = s.attempts(&limited).await;
    assert!(log.iter().all(|a| a["outcome"] == "succeeded"), "{log:?}");
    let free_log = s.attempts(&free).await;
    assert_eq!(free_log.len(), 70);
    assert!(free_log.iter().all(|a| a["outcome"] == "succeeded"));
    // Removing the limit lets the rest through at once.
    let r = s
        .req("PATCH", &format!("{ENDPOINTS}/{limited}"))
        .json(&json!({"rateLimit": null}))
        .send()
        .await;
    assert!(r.json()["endpoint"]["rateLimit"].is_null());
    common::eventually(3, "the rest, unthrottled", || {
        arrivals("/limited").len() == 70
    })
    .await;
    s.stop().await;
}

/// Checks `v1a,` signatures with PyPI `cryptography`, as a receiver holding only public keys
/// would: for each case, how many signatures each key verifies.
fn python_verify(cases: &[(&common::receiver::Received, Vec<String>)]) -> Vec<Vec<u64>> {
    let has_lib = std::process::Command::new("python3")
        .args(["-c", "import cryptography"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_lib,
        "needs Python's cryptography: pip install cryptography"
    );
    let input = json!({"cases": cases.iter().map(|(r, keys)| json!({
        "id": r.header("webhook-id"),
        "timestamp": r.header("webhook-timestamp"),
        "body_b64": base64::engine::general_purpose::STANDARD.encode(&r.body),
        "signature": r.header("webhook-signature"),
        "keys": keys,
    })).collect::<Vec<_>>()});
    let mut child = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/ed25519_verify.py"
        ))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
#[ignore = "needs Python's cryptography (pip install cryptography); CI runs it"]
async fn ed25519_signatures_verify_with_the_public_key_through_rotations() {
    let rx = Receiver::start().await;
    let s = TestServer::start_with(FAST).await;
    let created = create(&s, &rx.url("/ed"), json!({"signingAlgorithm": "ed25519"})).await;
    let id = id_of(&created);
    let e = &created["endpoint"];
    assert_eq!(e["signingAlgorithm"], "ed25519");
    assert!(created["signingSecretPlaintext"]
        .as_str()
        .unwrap()
        .starts_with("whsk_"));
    let pk1 = e["signingPublicKey"].as_str().unwrap().to_owned();
    assert!(pk1.starts_with("whpk_"));
    let got = s
        .req("GET", &format!("{ENDPOINTS}/{id}"))
        .send()
        .await
        .json();
    assert_eq!(got["endpoint"]["signingPublicKey"], pk1.as_str());
    native(&s, "alert.firing", json!({"n": 1})).await;
    rx.wait_for(1, 10).await;
    // Rotate to a new Ed25519 key: both sign through the grace period.
    let rotated = s
        .req("POST", &format!("{ENDPOINTS}/{id}/rotate-secret"))
        .send()
        .await
        .json();
    let pk2 = rotated["endpoint"]["signingPublicKey"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(pk1, pk2);
    native(&s, "alert.firing", json!({"n": 2})).await;
    rx.wait_for(2, 10).await;
    // Rotate to HMAC: the HMAC signature and both Ed25519 ones, side by side.
    let rotated = s
        .req("POST", &format!("{ENDPOINTS}/{id}/rotate-secret"))
        .json(&json!({"signingAlgorithm": "hmac-sha256"}))
        .send()
        .await
        .json();
    assert_eq!(rotated["endpoint"]["signingAlgorithm"], "hmac-sha256");
    assert!(rotated["endpoint"]["signingPublicKey"].is_null());
    let hmac = rotated["signingSecretPlaintext"]
        .as_str()
        .unwrap()
        .to_owned();
    native(&s, "alert.firing", json!({"n": 3})).await;
    let got = rx.wait_for(3, 10).await;
    let kinds = |r: &common::receiver::Received| -> Vec<String> {
        r.header("webhook-signature")
            .split(' ')
            .map(|p| p.split(',').next().unwrap().to_owned())
            .collect()
    };
    assert_eq!(kinds(&got[0]), ["v1a"]);
    assert_eq!(kinds(&got[1]), ["v1a", "v1a"]);
    assert_eq!(kinds(&got[2]), ["v1", "v1a", "v1a"]);
    let verified = python_verify(&[
        (&got[0], vec![pk1.clone(), pk2.clone()]),
        (&got[1], vec![pk1.clone(), pk2.clone()]),
        (&got[2], vec![pk1.clone(), pk2.clone()]),
    ]);
    assert_eq!(verified, [vec![1, 0], vec![1, 1], vec![1, 1]]);
    // The HMAC signature checks with the new secret.
    let key = hookd::secrets::SigningSecret::parse(&hmac)
        .unwrap()
        .key_bytes();
    let ts: i64 = got[2].header("webhook-timestamp").parse().unwrap();
    let want = hookd::secrets::sign(&key, &got[2].header("webhook-id"), ts, &got[2].body);
    assert!(got[2]
        .header("webhook-signature")
        .split(' ')
        .any(|p| p == want));
    // A body altered in transit verifies with no key.
    let mut tampered = got[0].clone();
    tampered.body = hyper::body::Bytes::from(
        String::from_utf8_lossy(&got[0].body).replace("\"n\":1", "\"n\":9"),
    );
    assert_eq!(python_verify(&[(&tampered, vec![pk1])]), [vec![0]]);
    s.stop().await;
}

/// A TLS receiver that requires a client certificate from the client CA: an endpoint with a
/// certificate from that CA is delivered; one without, or after its certificate is removed,
/// fails the handshake, recorded as `tls`.
#[tokio::test]
async fn client_certificates_for_receivers_that_require_them() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use std::sync::Arc;

    let ca = |name: &str| {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(rcgen::DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        (cert, key)
    };
    let (server_ca, server_ca_key) = ca("server CA");
    let (client_ca, client_ca_key) = ca("client CA");
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["receiver.test".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &server_ca, &server_ca_key)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client = CertificateParams::new(vec!["hookd.client".to_owned()])
        .unwrap()
        .signed_by(&client_key, &client_ca, &client_ca_key)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("ca.pem");
    std::fs::write(&bundle, server_ca.pem()).unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut client_roots = rustls::RootCertStore::empty();
    client_roots
        .add(CertificateDer::from(client_ca.der().to_vec()))
        .unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(client_roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from(leaf.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();
    let (port, served) = common::receiver::tls_receiver(tls).await;
    let config = format!(
        "{}ca_bundle = \"{}\"\n[delivery.hosts]\n\"receiver.test\" = \"127.0.0.1\"\n",
        FAST.replace(
            "retry_schedule_secs = [1, 1, 1]",
            "retry_schedule_secs = []"
        ),
        bundle.display()
    );
    let s = TestServer::start_with(&config).await;
    let url = format!("https://receiver.test:{port}/hook");
    let with_cert = create(
        &s,
        &url,
        json!({"clientCertificate": {"certificate": client.pem(), "privateKey": client_key.serialize_pem()}}),
    )
    .await;
    let shown = &with_cert["endpoint"]["clientCertificate"];
    assert_eq!(shown["chainLength"], 1);
    assert_eq!(shown["fingerprintSha256"].as_str().unwrap().len(), 64);
    assert!(shown["notAfter"].as_str().unwrap().ends_with('Z'));
    assert!(!with_cert.to_string().contains("PRIVATE KEY"));
    let with_cert = id_of(&with_cert);
    let without = id_of(&create(&s, &url, json!({})).await);
    native(&s, "alert.firing", json!({})).await;
    let ok = s.wait_attempts(&with_cert, 1, 10).await;
    assert_eq!(ok[0]["outcome"], "succeeded", "{ok:?}");
    assert_eq!(ok[0]["statusCode"], 204);
    let refused = s.wait_attempts(&without, 1, 10).await;
    assert_eq!(refused[0]["outcome"], "failed", "{refused:?}");
    assert_eq!(refused[0]["error"], "tls", "{refused:?}");
    assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 1);
    // The key is sealed at rest: its PEM body is not in the store file.
    let store = crate::common::postgres::stored(s.dir.path());
    let pem = client_key.serialize_pem();
    let body_line = pem.lines().nth(1).unwrap().as_bytes();
    assert!(!store.windows(body_line.len()).any(|w| w == body_line));
    // Removing the certificate: the next delivery is refused by the receiver.
    let r = s
        .req("PATCH", &format!("{ENDPOINTS}/{with_cert}"))
        .json(&json!({"clientCertificate": null}))
        .send()
        .await;
    assert!(r.json()["endpoint"]["clientCertificate"].is_null());
    native(&s, "alert.firing", json!({})).await;
    let log = s.wait_attempts(&with_cert, 2, 10).await;
    assert_eq!(log[0]["error"], "tls", "newest first: {log:?}");
    s.stop().await;
}

/// RFC 3339 with milliseconds.
fn rfc3339_ms(ms: i64) -> String {
    let whole = hookd::time::rfc3339(ms);
    format!(
        "{}.{:03}Z",
        whole.trim_end_matches('Z'),
        ms.rem_euclid(1000)
    )
}

#[tokio::test]
async fn recover_requeues_exactly_the_deliveries_that_gave_up() {
    let rx = Receiver::start().await;
    let s = TestServer::start_with(&FAST.replace("[1, 1, 1]", "[]")).await;
    let id = id_of(&create(&s, &rx.url("/r"), json!({})).await);
    let other = id_of(&create(&s, &rx.url("/other"), json!({"filterTypes": ["other"]})).await);
    let recover = |since: String| {
        let (addr, id) = (s.addr, id.clone());
        async move {
            let r = common::raw_req(addr, "POST", &format!("{ENDPOINTS}/{id}/recover"))
                .json(&json!({"since": since}))
                .send()
                .await;
            assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
            r.json()["deliveries"].as_u64().unwrap()
        }
    };
    let t0 = hookd::time::now_ms() - 1;
    rx.script(vec![(500, vec![]); 3]);
    let first = native(&s, "alert.firing", json!({"n": 1})).await["messageId"].clone();
    s.wait_attempts(&id, 1, 10).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let t1 = hookd::time::now_ms();
    for n in 2..=3 {
        native(&s, "alert.firing", json!({"n": n})).await;
    }
    let log = s.wait_attempts(&id, 3, 10).await;
    assert!(log.iter().all(|a| a["outcome"] == "failed"), "{log:?}");
    native(&s, "alert.firing", json!({"n": 4})).await; // delivered: nothing to recover
    s.wait_attempts(&id, 4, 10).await;
    assert_eq!(
        recover(rfc3339_ms(t1)).await,
        2,
        "the two that gave up after t1"
    );
    let got = rx.wait_for(6, 10).await;
    let resent: BTreeSet<u64> = got[4..]
        .iter()
        .map(|r| r.json()["data"]["n"].as_u64().unwrap())
        .collect();
    assert_eq!(resent, BTreeSet::from([2, 3]));
    assert_eq!(recover(rfc3339_ms(t0)).await, 1, "then the first");
    let got = rx.wait_for(7, 10).await;
    assert_eq!(
        got[6].header("webhook-id"),
        first.as_str().unwrap(),
        "the same message id"
    );
    assert_eq!(recover(rfc3339_ms(t0)).await, 0, "nothing left");
    s.wait_attempts(&id, 7, 10).await;
    assert!(s.attempts(&other).await.is_empty());
    // A disabled endpoint cannot be recovered into: enable it first.
    s.req("PATCH", &format!("{ENDPOINTS}/{id}"))
        .json(&json!({"disabled": true}))
        .send()
        .await;
    s.req("POST", &format!("{ENDPOINTS}/{id}/recover"))
        .json(&json!({"since": rfc3339_ms(t0)}))
        .send()
        .await
        .problem(409);
    s.stop().await;
}
