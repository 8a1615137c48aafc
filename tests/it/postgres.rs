//! Several hookd instances on one PostgreSQL (`store.backend = "postgres"`), in a build with
//! the `postgres` feature and `HOOKD_TEST_POSTGRES` naming a server (`.ci/run` starts one):
//! what one instance writes the others read at once, and an alert fanned out over them is
//! delivered once per endpoint.

use std::collections::HashMap;
use std::time::Duration;

use hyper::StatusCode;
use serde_json::json;

use crate::common::receiver::Receiver;
use crate::common::{postgres, TestServer, ENDPOINTS};

const FAST: &str = "[url_policy]\nallow_networks = [\"127.0.0.0/8\"]\n[delivery]\nretry_schedule_secs = [1, 1, 1]\njitter_percent = 0\npoll_interval_ms = 50\n";

#[tokio::test]
#[ignore = "needs a PostgreSQL server (HOOKD_TEST_POSTGRES) and the postgres feature"]
async fn instances_share_one_database_and_deliver_each_alert_once() {
    assert!(
        postgres::server().is_some(),
        "run with --features postgres and HOOKD_TEST_POSTGRES set"
    );
    let rx = Receiver::start().await;
    let a = TestServer::start_with(FAST).await;
    // The same data directory: the same master key, and the same database.
    let b = TestServer::start_in(a.dir.clone(), FAST).await;
    assert_eq!(a.app.store.backend(), "postgres");

    // A create on one instance is read on the other at once, and routes alerts there.
    let body =
        json!({"name": "a", "url": rx.url("/a"), "signingEnabled": true, "signingSecret": ""});
    let r = a.req("POST", ENDPOINTS).json(&body).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let id = r.json()["endpoint"]["id"].as_str().unwrap().to_owned();
    let r = b.req("GET", &format!("{ENDPOINTS}/{id}")).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let mut routed = false;
    for _ in 0..100 {
        routed = b.app.store.routes().get(&id).is_some();
        if routed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        routed,
        "the other instance learns of the endpoint (LISTEN/NOTIFY)"
    );

    // Alerts posted to both instances: each is delivered once.
    let mut ids = Vec::new();
    for i in 0..40 {
        let s = if i % 2 == 0 { &a } else { &b };
        let r = s
            .req("POST", "/api/v1/alerting/alerts")
            .json(&json!({"eventType": "alert.firing", "payload": {"n": i}}))
            .send()
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
        assert_eq!(r.json()["deliveries"], 1);
        ids.push(r.json()["messageId"].as_str().unwrap().to_owned());
    }
    let got = rx.wait_for(40, 20).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for r in rx.received.lock().unwrap().iter() {
        *seen.entry(r.header("webhook-id")).or_default() += 1;
    }
    assert_eq!(got.len(), 40);
    for id in &ids {
        assert_eq!(seen.get(id), Some(&1), "{id} delivered once: {seen:?}");
    }
    let attempts = a.wait_attempts(&id, 40, 10).await;
    assert_eq!(attempts.len(), 40);
    a.stop().await;
    b.stop().await;
}
