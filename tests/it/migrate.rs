//! `hookd migrate --from-redb DIR --to URL`: a single node's embedded store moved into
//! PostgreSQL, all or nothing, and served from there: every endpoint, token and pending
//! delivery arrives. Needs a build with the `postgres` feature and `HOOKD_TEST_POSTGRES`.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use hyper::StatusCode;
use serde_json::{json, Value};

use crate::common::receiver::Receiver;
use crate::common::{config, postgres, TestServer, ENDPOINTS};

const FAST: &str = "[url_policy]\nallow_networks = [\"127.0.0.0/8\"]\n[delivery]\nretry_schedule_secs = [1, 1, 1, 1, 1, 1, 1, 1]\njitter_percent = 0\npoll_interval_ms = 50\n";

fn migrate(dir: &std::path::Path, url: &str) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args(["migrate", "--from-redb"])
        .arg(dir)
        .args(["--to", url])
        .env_remove("HOOKD_STORE__BACKEND")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn list(s: &TestServer) -> Value {
    let r = s.req("GET", &format!("{ENDPOINTS}?limit=100")).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // Without the circuit breaker's state, which is each instance's own.
    let mut items = r.json()["endpoints"].clone();
    for e in items.as_array_mut().unwrap() {
        e.as_object_mut().unwrap().remove("circuit");
    }
    items
}

#[tokio::test]
#[ignore = "needs a PostgreSQL server (HOOKD_TEST_POSTGRES) and the postgres feature"]
async fn a_redb_store_moves_to_postgres_whole() {
    let server = postgres::server().expect("HOOKD_TEST_POSTGRES names a server");
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut embedded = config(dir.path(), FAST);
    embedded.store.backend = hookd::config::StoreBackend::Embedded;
    let a = TestServer::start_config(dir.clone(), embedded).await;
    assert_eq!(a.app.store.backend(), "embedded");

    // A receiver that answers, and an address where nothing listens yet.
    let up = Receiver::start().await;
    let later = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut ids = Vec::new();
    for (name, url) in [
        ("up", up.url("/up")),
        ("down", format!("http://{later}/down")),
        ("gone", format!("http://{later}/gone")),
    ] {
        let body = json!({"name": name, "url": url, "signingEnabled": true, "signingSecret": "", "headers": {"x-team": "ops"}});
        let r = a.req("POST", ENDPOINTS).json(&body).send().await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        ids.push(r.json()["endpoint"]["id"].as_str().unwrap().to_owned());
    }
    let r = a
        .req("POST", "/api/v1/tokens")
        .json(&json!({"name": "reader", "scopes": ["endpoints:read"]}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let reader = r.json()["tokenPlaintext"].as_str().unwrap().to_owned();
    for i in 0..5 {
        let r = a
            .req("POST", "/api/v1/alerting/alerts")
            .json(&json!({"eventType": "alert.firing", "payload": {"n": i}}))
            .send()
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    }
    up.wait_for(5, 20).await;
    // `down` has tried each alert at least once (its attempts move too); `gone` is deleted
    // with its deliveries pending (retention clears them, or the migration leaves them).
    let attempts = |s: &TestServer, id: String| {
        let store = s.app.store.clone();
        async move {
            store
                .list_attempts(&id, None, 500)
                .await
                .unwrap()
                .items
                .len()
        }
    };
    for _ in 0..200 {
        if attempts(&a, ids[1].clone()).await >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let tried = attempts(&a, ids[1].clone()).await;
    assert!(tried >= 5, "{tried} attempts to the endpoint that is down");
    let r = a
        .req("DELETE", &format!("{ENDPOINTS}/{}", ids[2]))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let before = list(&a).await;
    assert_eq!(before.as_array().unwrap().len(), 2);

    // Not while a hookd holds the store.
    let target = postgres::database_for(&server, &dir.path().join("migrated"));
    let (ok, _, err) = migrate(dir.path(), &target);
    assert!(!ok && err.contains("stop it first"), "{err}");
    a.stop().await;

    // (The store's file lock may trail the stop a moment: see `start_app`.)
    let mut run = migrate(dir.path(), &target);
    for _ in 0..100 {
        if !run.2.contains("stop it first") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        run = migrate(dir.path(), &target);
    }
    let (ok, out, err) = run;
    assert!(ok, "migrate failed: {err}");
    assert!(
        out.contains("moved 2 endpoints, 2 tokens, 5 messages, 5 deliveries")
            && out.contains("every count matches"),
        "{out}"
    );
    // Never merged into a database that holds a store: refused, and nothing changes.
    let (ok, _, err) = migrate(dir.path(), &target);
    assert!(!ok && err.contains("already holds 2 endpoints"), "{err}");

    // Served from PostgreSQL with the data directory's master key: the same endpoints (sealed
    // secrets and headers open), the same tokens, and the pending deliveries go out.
    let mut on_pg = config(dir.path(), FAST);
    on_pg.store.backend = hookd::config::StoreBackend::Postgres;
    on_pg.store.postgres_url = hookd::config::Redacted::new(target);
    let b = TestServer::start_config(dir.clone(), on_pg).await;
    assert_eq!(b.app.store.backend(), "postgres");
    assert_eq!(list(&b).await, before);
    let r = b.req("GET", ENDPOINTS).token(&reader).send().await;
    assert_eq!(r.status, StatusCode::OK, "the migrated token: {}", r.text());
    assert!(attempts(&b, ids[1].clone()).await >= tried);
    let back = Receiver::start_on(&later.to_string()).await;
    back.wait_for(5, 30).await;
    let got = back.received.lock().unwrap().clone();
    assert!(got
        .iter()
        .all(|r| r.path == "/down" && r.header("x-team") == "ops"));
    let mut distinct: Vec<String> = got.iter().map(|r| r.header("webhook-id")).collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 5, "each pending delivery arrives");
    b.stop().await;
}
