//! The HTTP API as a user drives it: every route and status, against the real server on
//! 127.0.0.1:0.
use crate::common;

use std::time::Duration;

use crate::common::{Req, TestServer, ADMIN_TOKEN, ENDPOINTS, SEED_BODY};
use base64::Engine as _;
use hyper::StatusCode;
use serde_json::{json, Value};

fn is_rfc3339_seconds(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 20
        && b[4] == b'-'
        && b[10] == b'T'
        && b[19] == b'Z'
        && s.bytes().filter(u8::is_ascii_digit).count() == 14
}

#[tokio::test]
async fn seed_example_verbatim() {
    let s = TestServer::start().await;
    let r = s.req("POST", ENDPOINTS).body_str(SEED_BODY).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(r.header("cache-control"), "no-store");
    let v = r.json();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["endpoint", "signingSecretPlaintext"]);
    assert_eq!(v["signingSecretPlaintext"], "my-secret-key");
    let e = &v["endpoint"];
    let keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
    // The seed's seven fields, in its order, then `disabled` (added by signed delivery), the
    // delivery circuit, and the routing and shaping options at their defaults.
    assert_eq!(
        keys,
        [
            "id",
            "name",
            "url",
            "signingEnabled",
            "signingSecretMasked",
            "createdAt",
            "updatedAt",
            "disabled",
            "circuit",
            "filterTypes",
            "labelMatchers",
            "headers",
            "rateLimit",
            "signingAlgorithm",
            "signingPublicKey",
            "clientCertificate",
            "format",
            "formatOptions"
        ]
    );
    // A Slack webhook gets Slack messages: the format follows the URL's host.
    assert_eq!(e["format"], "slack");
    assert_eq!(
        (&e["filterTypes"], &e["labelMatchers"], &e["headers"]),
        (
            &serde_json::json!([]),
            &serde_json::json!([]),
            &serde_json::json!({})
        )
    );
    assert_eq!(e["signingAlgorithm"], "hmac-sha256");
    for absent in ["rateLimit", "signingPublicKey", "clientCertificate"] {
        assert!(e[absent].is_null(), "{absent}");
    }
    assert_eq!(e["disabled"], false);
    assert_eq!(
        e["circuit"],
        serde_json::json!({"state": "closed", "consecutiveFailures": 0, "nextProbeAt": null})
    );
    assert!(e["id"].as_str().unwrap().starts_with("wh-"));
    assert_eq!(e["name"], "Slack Webhook");
    assert_eq!(e["url"], "https://hooks.slack.com/services/T00/B00/xxx");
    assert_eq!(e["signingEnabled"], true);
    assert_eq!(e["signingSecretMasked"], "****-key");
    assert!(is_rfc3339_seconds(e["createdAt"].as_str().unwrap()), "{e}");
    assert_eq!(e["createdAt"], e["updatedAt"]);
    s.stop().await;
}

#[tokio::test]
async fn empty_secret_is_generated_standard_webhooks_style() {
    let s = TestServer::start().await;
    let v = s.create("gen", "").await;
    let plain = v["signingSecretPlaintext"].as_str().unwrap();
    let key = base64::engine::general_purpose::STANDARD
        .decode(plain.strip_prefix("whsec_").unwrap())
        .unwrap();
    assert_eq!(key.len(), 32);
    assert_eq!(
        v["endpoint"]["signingSecretMasked"],
        format!("****{}", &plain[plain.len() - 4..])
    );
    // A supplied whsec_ secret is accepted as is.
    let v = s
        .create("whsec", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
        .await;
    assert_eq!(
        v["signingSecretPlaintext"],
        "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
    );
    s.stop().await;
}

#[tokio::test]
async fn get_and_list_with_stable_paging() {
    let s = TestServer::start().await;
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(
            s.create(&format!("ep{i}"), "").await["endpoint"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let r = s
        .req("GET", &format!("{ENDPOINTS}/{}", ids[3]))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let e = &r.json()["endpoint"];
    assert_eq!(e["name"], "ep3");
    assert!(e.get("signingSecretPlaintext").is_none());
    assert!(
        !r.text().contains("whsec_"),
        "a read never shows the plaintext"
    );

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("{ENDPOINTS}?limit=3&cursor={c}"),
            None => format!("{ENDPOINTS}?limit=3"),
        };
        let v = s.req("GET", &path).send().await.json();
        let page = v["endpoints"].as_array().unwrap();
        assert!(page.len() <= 3);
        seen.extend(page.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
        match &v["nextCursor"] {
            Value::Null => break,
            Value::String(c) => cursor = Some(c.clone()),
            other => panic!("nextCursor {other}"),
        }
    }
    assert_eq!(seen, ids, "every endpoint once, in creation order");

    let all = s.req("GET", ENDPOINTS).send().await.json();
    assert_eq!(all["endpoints"].as_array().unwrap().len(), 7);
    assert_eq!(all["nextCursor"], Value::Null);

    for (q, field) in [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=x", "limit"),
        ("cursor=bogus", "cursor"),
        ("sort=name", "sort"),
    ] {
        let r = s.req("GET", &format!("{ENDPOINTS}?{q}")).send().await;
        assert_eq!(r.error_fields(), [field], "{q}");
    }
    let r = s.req("GET", &format!("{ENDPOINTS}/wh-nope")).send().await;
    assert!(r.problem(404)["detail"]
        .as_str()
        .unwrap()
        .contains("wh-nope"));
    s.stop().await;
}

#[tokio::test]
async fn patch_updates_fields_and_bumps_updated_at() {
    let s = TestServer::start().await;
    let created = s.create("before", "my-secret-key").await;
    let id = created["endpoint"]["id"].as_str().unwrap().to_owned();
    let path = format!("{ENDPOINTS}/{id}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = s
        .req("PATCH", &path)
        .json(&json!({"name": "after", "url": "https://other.example.com/x", "signingEnabled": false}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let e = r.json()["endpoint"].clone();
    assert_eq!(e["name"], "after");
    assert_eq!(e["url"], "https://other.example.com/x");
    assert_eq!(e["signingEnabled"], false);
    assert_eq!(e["signingSecretMasked"], "****-key");
    assert_eq!(e["createdAt"], created["endpoint"]["createdAt"]);
    assert!(
        e["updatedAt"].as_str().unwrap() > e["createdAt"].as_str().unwrap(),
        "{e}"
    );
    assert_eq!(s.req("GET", &path).send().await.json()["endpoint"], e);

    let r = s
        .req("PATCH", &path)
        .json(&json!({"url": "http://169.254.169.254/latest"}))
        .send()
        .await;
    assert_eq!(r.error_fields(), ["url"]);
    let r = s
        .req("PATCH", &path)
        .json(&json!({"signingSecret": "x"}))
        .send()
        .await;
    assert_eq!(r.error_fields(), ["signingSecret"]);
    let r = s.req("PATCH", &path).json(&json!({})).send().await;
    assert_eq!(r.error_fields(), ["body"]);
    let r = s.req("PATCH", &path).json(&json!({"name": 5})).send().await;
    assert_eq!(r.error_fields(), ["name"]);
    let r = s
        .req("PATCH", &format!("{ENDPOINTS}/wh-gone"))
        .json(&json!({"name": "x"}))
        .send()
        .await;
    r.problem(404);
    s.stop().await;
}

#[tokio::test]
async fn delete_then_gone() {
    let s = TestServer::start().await;
    let id = s.create("doomed", "").await["endpoint"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("{ENDPOINTS}/{id}");
    let r = s.req("DELETE", &path).send().await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.body.is_empty());
    s.req("GET", &path).send().await.problem(404);
    s.req("DELETE", &path).send().await.problem(404);
    s.stop().await;
}

#[tokio::test]
async fn rotate_secret_keeps_previous_for_grace_period() {
    let s = TestServer::start_with("[endpoints]\nrotation_grace_secs = 3600\n").await;
    let id = s.create("rot", "my-secret-key").await["endpoint"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("{ENDPOINTS}/{id}/rotate-secret");

    // No body at all: a generated secret.
    let r = s.req("POST", &path).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("cache-control"), "no-store");
    let v = r.json();
    let plain = v["signingSecretPlaintext"].as_str().unwrap().to_owned();
    assert!(plain.starts_with("whsec_"));
    assert_eq!(
        v["endpoint"]["signingSecretMasked"],
        format!("****{}", &plain[plain.len() - 4..])
    );
    // Until when the replaced secret signs too: an hour from now.
    let until =
        hookd::time::parse_rfc3339(v["previousSecretValidUntil"].as_str().unwrap()).unwrap();
    let hour = until - hookd::time::now_ms();
    assert!((3_590_000..=3_600_000).contains(&hour), "{hour}");

    // A supplied secret.
    let v = s
        .req("POST", &path)
        .json(&json!({"signingSecret": "next-secret-value"}))
        .send()
        .await
        .json();
    assert_eq!(v["signingSecretPlaintext"], "next-secret-value");
    assert_eq!(v["endpoint"]["signingSecretMasked"], "****alue");
    let v = s
        .req("POST", &path)
        .json(&json!({"signingSecret": ""}))
        .send()
        .await
        .json();
    assert!(v["signingSecretPlaintext"]
        .as_str()
        .unwrap()
        .starts_with("whsec_"));

    // The store keeps earlier secrets, each with an expiry one grace period out, newest first.
    let stored = s.app.store.get_endpoint(&id).await.unwrap().unwrap();
    assert_eq!(stored.previous_secrets.len(), 3);
    let expiry = stored.previous_secrets[0].expires_at_ms.unwrap();
    let in_an_hour = hookd::time::now_ms() + 3_600_000;
    assert!(
        (in_an_hour - 5_000..=in_an_hour).contains(&expiry),
        "{expiry}"
    );
    assert_eq!(stored.previous_secrets[0].mask, "****alue");
    let opened = s
        .app
        .vault
        .open_secret(&id, &stored.previous_secrets[2])
        .unwrap();
    assert_eq!(opened.expose(), "my-secret-key");

    let r = s
        .req("POST", &path)
        .json(&json!({"signingSecret": "short"}))
        .send()
        .await;
    assert_eq!(r.error_fields(), ["signingSecret"]);
    assert!(r.json()["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("12-256 characters"));
    s.req("POST", &path)
        .body_str("{oops")
        .send()
        .await
        .problem(400);
    let r = s
        .req("POST", &path)
        .json(&json!({"secret": "x"}))
        .send()
        .await;
    assert_eq!(r.error_fields(), ["secret"]);
    assert_eq!(r.json()["errors"][0]["message"], "is not a known field");
    s.req("POST", &format!("{ENDPOINTS}/wh-nope/rotate-secret"))
        .send()
        .await
        .problem(404);
    s.stop().await;
}

#[tokio::test]
async fn bearer_auth_and_scopes() {
    let s = TestServer::start().await;
    let r = s.req("GET", ENDPOINTS).no_auth().send().await;
    r.problem(401);
    assert_eq!(r.header("www-authenticate"), "Bearer");
    s.req("GET", ENDPOINTS)
        .token("hkd_not-a-real-token")
        .send()
        .await
        .problem(401);
    s.req("GET", ENDPOINTS)
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .problem(401);
    s.req("POST", ENDPOINTS)
        .no_auth()
        .body_str(SEED_BODY)
        .send()
        .await
        .problem(401);

    let reader = s.token("reader", &["endpoints:read"]).await;
    assert_eq!(
        s.req("GET", ENDPOINTS).token(&reader).send().await.status,
        StatusCode::OK
    );
    let p = s
        .req("POST", ENDPOINTS)
        .token(&reader)
        .body_str(SEED_BODY)
        .send()
        .await
        .problem(403);
    assert!(p["detail"].as_str().unwrap().contains("endpoints:write"));
    s.req("GET", "/api/v1/tokens")
        .token(&reader)
        .send()
        .await
        .problem(403);

    let writer = s.token("writer", &["endpoints:write"]).await;
    let r = s
        .req("POST", ENDPOINTS)
        .token(&writer)
        .body_str(SEED_BODY)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK);
    s.req("GET", ENDPOINTS)
        .token(&writer)
        .send()
        .await
        .problem(403);
    s.stop().await;
}

#[tokio::test]
async fn token_lifecycle() {
    let s = TestServer::start().await;
    let r = s
        .req("POST", "/api/v1/tokens")
        .json(&json!({"name": "ci", "scopes": ["endpoints:read", "endpoints:write"]}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("cache-control"), "no-store");
    let v = r.json();
    let plain = v["tokenPlaintext"].as_str().unwrap().to_owned();
    let id = v["token"]["id"].as_str().unwrap().to_owned();
    assert!(plain.starts_with("hkd_") && id.starts_with("tok-"));
    assert_eq!(
        v["token"]["scopes"],
        json!(["endpoints:read", "endpoints:write"])
    );

    let list = s.req("GET", "/api/v1/tokens").send().await;
    assert!(!list.text().contains(&plain));
    let tokens = list.json()["tokens"].as_array().unwrap().clone();
    assert_eq!(tokens.len(), 2, "bootstrap admin and ci");
    assert!(tokens
        .iter()
        .all(|t| t.get("hash").is_none() && t.get("tokenPlaintext").is_none()));

    assert_eq!(
        s.req("GET", ENDPOINTS).token(&plain).send().await.status,
        StatusCode::OK
    );
    let r = s
        .req("DELETE", &format!("/api/v1/tokens/{id}"))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    s.req("GET", ENDPOINTS)
        .token(&plain)
        .send()
        .await
        .problem(401);
    s.req("DELETE", &format!("/api/v1/tokens/{id}"))
        .send()
        .await
        .problem(404);

    // The last admin token cannot be revoked: that would lock everyone out.
    let admin_id = tokens
        .iter()
        .find(|t| t["name"] == "bootstrap admin")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let p = s
        .req("DELETE", &format!("/api/v1/tokens/{admin_id}"))
        .send()
        .await
        .problem(409);
    assert!(p["detail"].as_str().unwrap().contains("last admin"));

    let r = s
        .req("POST", "/api/v1/tokens")
        .json(&json!({"name": "x", "scopes": ["root"]}))
        .send()
        .await;
    assert_eq!(r.error_fields(), ["scopes[0]"]);
    let r = s
        .req("POST", "/api/v1/tokens")
        .json(&json!({"scopes": "admin"}))
        .send()
        .await;
    assert_eq!(r.error_fields(), ["name", "scopes"]);
    s.stop().await;
}

/// An expired admin token signs nobody in, so it does not count toward "the last admin":
/// with one expired and one live admin token, the live one cannot be revoked (which used to
/// lock everyone out), and the expired one can.
#[tokio::test]
async fn expired_admin_tokens_do_not_count_as_the_last_admin() {
    let s = TestServer::start().await;
    let soon = hookd::time::rfc3339(hookd::time::now_ms() + 1500);
    let v = s
        .req("POST", "/api/v1/tokens")
        .json(&json!({"name": "short", "scopes": ["admin"], "expiresAt": soon}))
        .send()
        .await
        .json();
    let short = v["token"]["id"].as_str().unwrap().to_owned();
    let plain = v["tokenPlaintext"].as_str().unwrap().to_owned();
    let bootstrap = listed_token(&s, |t| t["name"] == "bootstrap admin").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Wait until the short token no longer works.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while s.req("GET", ENDPOINTS).token(&plain).send().await.status != StatusCode::UNAUTHORIZED {
        assert!(
            std::time::Instant::now() < deadline,
            "the token did not expire"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let p = s
        .req("DELETE", &format!("/api/v1/tokens/{bootstrap}"))
        .send()
        .await
        .problem(409);
    assert!(
        p["detail"].as_str().unwrap().contains("has not expired"),
        "{p}"
    );
    assert_eq!(
        s.req("DELETE", &format!("/api/v1/tokens/{short}"))
            .send()
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.req("GET", ENDPOINTS).send().await.status,
        StatusCode::OK,
        "the live admin still works"
    );
    s.stop().await;
}

/// Every answer carries `X-Content-Type-Options: nosniff`: JSON, problems, the docs page, the
/// OpenAPI document, health, and a 404.
#[tokio::test]
async fn every_answer_says_nosniff() {
    let s = TestServer::start().await;
    for (method, path, status) in [
        ("GET", ENDPOINTS, StatusCode::OK),
        ("GET", "/docs", StatusCode::OK),
        ("GET", "/api/v1/openapi.json", StatusCode::OK),
        ("GET", "/healthz", StatusCode::OK),
        ("GET", "/nowhere", StatusCode::NOT_FOUND),
        ("DELETE", "/healthz", StatusCode::METHOD_NOT_ALLOWED),
    ] {
        let r = s.req(method, path).send().await;
        assert_eq!(r.status, status, "{method} {path}");
        assert_eq!(
            r.header("x-content-type-options"),
            "nosniff",
            "{method} {path}"
        );
    }
    let r = s.req("GET", ENDPOINTS).no_auth().send().await;
    assert_eq!(r.header("x-content-type-options"), "nosniff");
    s.stop().await;
}

#[tokio::test]
async fn client_errors_are_problem_json() {
    let s = TestServer::start().await;
    // Malformed JSON: 400.
    s.req("POST", ENDPOINTS)
        .body_str("{\"name\":")
        .send()
        .await
        .problem(400);
    // Every broken rule at once, each named: 422.
    let r = s
        .req("POST", ENDPOINTS)
        .json(&json!({"name": "", "url": "ftp://x", "signingEnabled": "yes", "signingSecret": "x", "color": "red"}))
        .send()
        .await;
    assert_eq!(
        r.error_fields(),
        ["color", "name", "url", "signingEnabled", "signingSecret"]
    );
    let r = s
        .req("POST", ENDPOINTS)
        .json(&json!({"name": "n"}))
        .send()
        .await;
    assert_eq!(r.error_fields(), ["url", "signingEnabled", "signingSecret"]);
    let r = s.req("POST", ENDPOINTS).json(&json!([1, 2])).send().await;
    assert_eq!(r.error_fields(), ["body"]);
    // Wrong or missing content type: 415.
    s.req("POST", ENDPOINTS)
        .raw("text/plain", SEED_BODY.as_bytes())
        .send()
        .await
        .problem(415);
    let mut no_type = s.req("POST", ENDPOINTS).body_str(SEED_BODY);
    no_type = no_type.header("content-type", "");
    no_type.send().await.problem(415);
    // Over the body limit: 413, by Content-Length and without one.
    let big = format!(r#"{{"name":"{}"}}"#, "a".repeat(70_000));
    s.req("POST", ENDPOINTS)
        .body_str(&big)
        .send()
        .await
        .problem(413);
    // Wrong method: 405 with Allow.
    let r = s.req("PUT", &format!("{ENDPOINTS}/wh-1")).send().await;
    r.problem(405);
    assert_eq!(r.header("allow"), "GET, PATCH, DELETE, HEAD");
    let r = s.req("DELETE", ENDPOINTS).send().await;
    r.problem(405);
    assert_eq!(r.header("allow"), "POST, GET, HEAD");
    // Unknown route: 404; a trailing slash names no route either, for every route.
    s.req("GET", "/api/v1/nothing").send().await.problem(404);
    let id = s.create("slash", "").await["endpoint"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        s.req("GET", &format!("{ENDPOINTS}/{id}"))
            .send()
            .await
            .status,
        StatusCode::OK
    );
    for path in [
        format!("{ENDPOINTS}/{id}/"),
        format!("{ENDPOINTS}/"),
        "/healthz/".into(),
        "/api/v1/tokens/".into(),
    ] {
        s.req("GET", &path).send().await.problem(404);
    }
    // A name that could disguise itself in a list (a right-to-left override): 422 on `name`.
    let r = s
        .req("POST", ENDPOINTS)
        .json(&json!({"name": "invoice\u{202E}fdp.exe", "url": "https://a.example/", "signingEnabled": true, "signingSecret": ""}))
        .send()
        .await;
    assert_eq!(r.error_fields(), ["name"]);
    assert!(r.json()["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("U+202E"));
    s.req("GET", &format!("{ENDPOINTS}/wh-1/extra"))
        .send()
        .await
        .problem(404);
    s.stop().await;
}

/// Alertmanager posts a whole group at once: the alert routes take up to
/// `limits.max_alert_body_bytes`, every other route keeps `limits.max_body_bytes`.
#[tokio::test]
async fn alert_routes_take_whole_alertmanager_groups() {
    let s = TestServer::start().await;
    let group = common::alertmanager_group("firing", 150, 0).to_string();
    assert!((65_536..100_000).contains(&group.len()), "{}", group.len());
    let r = s
        .req("POST", "/api/v1/alerting/alertmanager")
        .body_str(&group)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    // The same size elsewhere is over the API's limit, and the answer names the key.
    let big = format!(r#"{{"name":"{}"}}"#, "a".repeat(group.len()));
    let p = s
        .req("POST", ENDPOINTS)
        .body_str(&big)
        .send()
        .await
        .problem(413);
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("limits.max_body_bytes"),
        "{p}"
    );
    s.stop().await;

    // Over the alert routes' own limit: 413 naming it, by Content-Length and chunked.
    let s = TestServer::start_with("[limits]\nmax_alert_body_bytes = 100000\n").await;
    let group = common::alertmanager_group("firing", 1000, 0).to_string();
    let p = s
        .req("POST", "/api/v1/alerting/alertmanager")
        .body_str(&group)
        .send()
        .await
        .problem(413);
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("100000 bytes (limits.max_alert_body_bytes)"),
        "{p}"
    );
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/alerting/alerts HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {ADMIN_TOKEN}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = "a".repeat(60_000);
    for _ in 0..2 {
        let framed = format!("{:x}\r\n{chunk}\r\n", chunk.len());
        if stream.write_all(framed.as_bytes()).await.is_err() {
            break; // refused before the rest was sent
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut out = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut out)).await;
    assert!(out.starts_with("HTTP/1.1 413"), "{out}");
    assert!(out.contains("limits.max_alert_body_bytes"), "{out}");
    s.stop().await;
}

#[tokio::test]
async fn chunked_body_over_limit_is_413() {
    let s = TestServer::start_with("[limits]\nmax_body_bytes = 2048\n").await;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let chunk = "a".repeat(1500);
    let req = format!(
        "POST {ENDPOINTS} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {ADMIN_TOKEN}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{chunk}\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len(),
        chunk.len()
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut out)).await;
    assert!(out.starts_with("HTTP/1.1 413"), "{out}");
    s.stop().await;
}

#[tokio::test]
async fn url_policy_denies_internal_targets_unless_allow_listed() {
    let s = TestServer::start_with("[url_policy]\nallow_networks = [\"192.168.10.0/24\"]\n").await;
    for (url, why) in [
        ("http://127.0.0.1:9000/hook", "loopback"),
        ("http://localhost/hook", "local"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://10.0.0.5/", "private"),
        ("http://100.64.1.1/", "CGNAT"),
        ("http://[::1]/", "loopback"),
        ("http://[fe80::1]/", "link-local"),
        ("http://224.0.0.1/", "multicast"),
        ("https://user:pw@example.com/", "user info"),
        ("file:///etc/passwd", "http or https"),
        ("not a url", "absolute"),
    ] {
        let body = json!({"name": "n", "url": url, "signingEnabled": true, "signingSecret": ""});
        let r = s.req("POST", ENDPOINTS).json(&body).send().await;
        assert_eq!(r.error_fields(), ["url"], "{url}");
        let msg = r.json()["errors"][0]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(msg.contains(why), "{url}: {msg}");
    }
    let ok = json!({"name": "lan", "url": "http://192.168.10.20:8080/hook", "signingEnabled": true, "signingSecret": ""});
    assert_eq!(
        s.req("POST", ENDPOINTS).json(&ok).send().await.status,
        StatusCode::OK
    );
    let long = json!({"name": "n", "url": format!("https://example.com/{}", "a".repeat(2100)), "signingEnabled": true, "signingSecret": ""});
    assert_eq!(
        s.req("POST", ENDPOINTS)
            .json(&long)
            .send()
            .await
            .error_fields(),
        ["url"]
    );
    s.stop().await;
}

#[tokio::test]
async fn health_readiness_and_request_ids() {
    let s = TestServer::start().await;
    let r = s.req("GET", "/healthz").no_auth().send().await;
    assert_eq!(r.status, StatusCode::OK);
    let generated = r.header("x-request-id").to_owned();
    assert!(!generated.is_empty());
    let r = s.req("GET", "/readyz").no_auth().send().await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["status"], "ready");
    assert_ne!(r.header("x-request-id"), generated);
    let r = s
        .req("GET", "/healthz")
        .header("x-request-id", "trace-abc-123")
        .send()
        .await;
    assert_eq!(r.header("x-request-id"), "trace-abc-123");
    let r = s.req("POST", "/healthz").send().await;
    r.problem(405);
    assert_eq!(r.header("allow"), "GET, HEAD");
    s.stop().await;
}

#[tokio::test]
async fn http2_cleartext_prior_knowledge() {
    use http_body_util::{BodyExt as _, Full};
    use hyper::body::Bytes;
    let s = TestServer::start().await;
    let stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::post(format!("http://{}{ENDPOINTS}", s.addr))
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(SEED_BODY.as_bytes())))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.version(), hyper::Version::HTTP_2);
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["signingSecretPlaintext"], "my-secret-key");
    s.stop().await;
}

#[tokio::test]
async fn data_survives_a_restart() {
    let s = TestServer::start().await;
    let v = s.create("durable", "my-secret-key").await;
    let id = v["endpoint"]["id"].as_str().unwrap().to_owned();
    let token = s.token("keep", &["endpoints:read"]).await;
    let dir = s.dir.clone();
    s.stop().await;

    let s = TestServer::start_in(dir.clone(), "").await;
    let r = s
        .req("GET", &format!("{ENDPOINTS}/{id}"))
        .token(&token)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["endpoint"], v["endpoint"]);
    let stored = s.app.store.get_endpoint(&id).await.unwrap().unwrap();
    assert_eq!(
        s.app
            .vault
            .open_secret(&id, &stored.secret)
            .unwrap()
            .expose(),
        "my-secret-key"
    );
    s.stop().await;

    // Another master key cannot open this store: startup refuses instead of serving garbage.
    let other = common::config(
        dir.path(),
        "master_key = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"\n",
    );
    let err = common::start_app(other)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("master key"), "{err}");
}

#[tokio::test]
async fn no_plaintext_secret_or_token_in_the_data_directory() {
    let s = TestServer::start().await;
    let mut secrets = vec![
        ADMIN_TOKEN.to_owned(),
        "supplied-secret-value-42".to_owned(),
    ];
    s.create("a", "supplied-secret-value-42").await;
    let v = s.create("b", "").await;
    secrets.push(v["signingSecretPlaintext"].as_str().unwrap().to_owned());
    let id = v["endpoint"]["id"].as_str().unwrap();
    let rotated = s
        .req("POST", &format!("{ENDPOINTS}/{id}/rotate-secret"))
        .send()
        .await
        .json();
    secrets.push(
        rotated["signingSecretPlaintext"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    let t = s
        .req("POST", "/api/v1/tokens")
        .json(&json!({"name": "t", "scopes": ["admin"]}))
        .send()
        .await
        .json();
    secrets.push(t["tokenPlaintext"].as_str().unwrap().to_owned());
    let dir = s.dir.clone();
    s.stop().await;
    // On PostgreSQL the data is in the database: every table, records as text, is looked at
    // as one more file.
    if let Some(server) = crate::common::postgres::server() {
        let dump = crate::common::postgres::dump(&server, dir.path());
        std::fs::write(dir.path().join("database.txt"), dump).unwrap();
    }

    let mut files = 0;
    let mut dirs = vec![dir.path().to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            files += 1;
            for secret in &secrets {
                let needle = secret.as_bytes();
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle),
                    "a plaintext secret is in {}",
                    path.display()
                );
            }
        }
    }
    assert!(files >= 2, "store and key file were checked");
}

#[tokio::test]
async fn concurrent_creates_are_all_committed() {
    let s = TestServer::start().await;
    let mut tasks = Vec::new();
    for i in 0..64 {
        let req: Req = s.req("POST", ENDPOINTS).json(&json!({
            "name": format!("c{i}"), "url": "https://example.com/", "signingEnabled": true, "signingSecret": ""
        }));
        tasks.push(tokio::spawn(req.send()));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().status, StatusCode::OK);
    }
    let v = s
        .req("GET", &format!("{ENDPOINTS}?limit=200"))
        .send()
        .await
        .json();
    assert_eq!(v["endpoints"].as_array().unwrap().len(), 64);
    s.stop().await;
}

#[tokio::test]
async fn hostile_inputs_never_cause_a_server_error() {
    let s = TestServer::start().await;
    // Each body with the status it gets on every write route: 400 when it is not JSON at all,
    // 422 naming the field when it is JSON that breaks a rule.
    let bodies: Vec<(Vec<u8>, u16)> = vec![
        (b"".to_vec(), 400),
        (b"null".to_vec(), 422),
        (b"\"str\"".to_vec(), 422),
        (vec![0xff, 0xfe, 0x00], 400),
        ("[".repeat(5000).into_bytes(), 400),
        (br#"{"name":"\u0000","url":"https://a.example","signingEnabled":true,"signingSecret":""}"#.to_vec(), 422),
        (br#"{"name":"n","url":"https://a.example","signingEnabled":true,"signingSecret":"whsec_"}"#.to_vec(), 422),
        (br#"{"name":"n","url":"https://[::ffff:169.254.169.254]/","signingEnabled":true,"signingSecret":""}"#.to_vec(), 422),
        (br#"{"name":"n","url":"https://xn--/","signingEnabled":true,"signingSecret":""}"#.to_vec(), 422),
        (br#"{"name":"n","name":"m","url":"https://a.example","signingEnabled":1e999,"signingSecret":""}"#.to_vec(), 400),
    ];
    for (body, status) in bodies {
        for (method, path) in [
            ("POST", ENDPOINTS.to_owned()),
            ("PATCH", format!("{ENDPOINTS}/wh-x")),
            ("POST", "/api/v1/tokens".to_owned()),
        ] {
            let r = s
                .req(method, &path)
                .raw("application/json", &body)
                .send()
                .await;
            assert_eq!(
                r.status.as_u16(),
                status,
                "{method} {path} {:?}: {}",
                String::from_utf8_lossy(&body),
                r.text()
            );
            let p = r.problem(status);
            if status == 422 {
                assert!(!r.error_fields().is_empty(), "{p}");
            }
        }
    }
    for path in [
        "/%ff",
        "/api/v1/alerting/webhook-endpoints/%00",
        "/api/v1/alerting/webhook-endpoints/..%2f",
        "/api/v1/tokens/",
    ] {
        let p = s.req("GET", path).send().await.problem(404);
        assert!(
            p["detail"].as_str().unwrap().starts_with("no route for"),
            "{p}"
        );
    }
    s.stop().await;
}

/// Token `id` as `GET /api/v1/tokens` lists it.
async fn listed_token(s: &TestServer, pick: impl Fn(&Value) -> bool) -> Value {
    let listed = s.req("GET", "/api/v1/tokens").send().await.json();
    listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| pick(t))
        .unwrap()
        .clone()
}

/// A token may expire; every token shows when it was last used (written back in batches, so it
/// survives a restart).
#[tokio::test]
async fn tokens_expire_and_show_their_last_use() {
    let s = TestServer::start().await;
    let soon = hookd::time::rfc3339(hookd::time::now_ms() + 2_000);
    let r = s
        .req("POST", "/api/v1/tokens")
        .json(&json!({"name": "brief", "scopes": ["endpoints:read"], "expiresAt": soon}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(v["token"]["expiresAt"], soon);
    assert!(v["token"]["lastUsedAt"].is_null());
    let brief = v["tokenPlaintext"].as_str().unwrap().to_owned();
    let id = v["token"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        s.req("GET", ENDPOINTS).token(&brief).send().await.status,
        StatusCode::OK
    );
    let mine = listed_token(&s, |t| t["id"] == id).await;
    assert!(mine["lastUsedAt"].is_string(), "{mine}");
    // Past its time it is refused, saying why.
    let mut refused = None;
    for _ in 0..60 {
        let r = s.req("GET", ENDPOINTS).token(&brief).send().await;
        if r.status == StatusCode::UNAUTHORIZED {
            refused = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let p = refused.expect("the token expires").problem(401);
    assert_eq!(p["detail"], "the bearer token has expired");
    // An expiry in the past, or not a timestamp, is a 422 on expiresAt.
    for bad in [json!("2001-01-01T00:00:00Z"), json!("next week")] {
        let r = s
            .req("POST", "/api/v1/tokens")
            .json(&json!({"name": "x", "scopes": ["admin"], "expiresAt": bad}))
            .send()
            .await;
        assert_eq!(r.error_fields(), ["expiresAt"]);
    }
    // The last use is written at shutdown and read back after a restart.
    let dir = s.dir.clone();
    s.stop().await;
    let s = TestServer::start_in(dir, "").await;
    let mine = listed_token(&s, |t| t["id"] == id).await;
    assert!(mine["lastUsedAt"].is_string(), "{mine}");
    s.stop().await;
}
