//! Signed delivery end to end: alerts in over HTTP, signed requests out to real local receivers
//! (loopback only), retries, the attempt log, disabling, resend, the egress guard, restarts.
use crate::common;

use std::time::Duration;

use crate::common::receiver::Receiver;
use crate::common::{TestServer, ENDPOINTS};
use base64::Engine as _;
use hyper::StatusCode;
use serde_json::{json, Value};

/// Receivers live on loopback, so tests allow it; retries come after 1 s, without jitter.
const FAST: &str = "[url_policy]\nallow_networks = [\"127.0.0.0/8\"]\n[delivery]\nretry_schedule_secs = [1, 1, 1]\njitter_percent = 0\npoll_interval_ms = 50\n";

async fn endpoint(s: &TestServer, url: &str, secret: &str, signing: bool) -> String {
    let body =
        json!({"name": "receiver", "url": url, "signingEnabled": signing, "signingSecret": secret});
    let r = s.req("POST", ENDPOINTS).json(&body).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["endpoint"]["id"].as_str().unwrap().to_owned()
}

async fn alert(s: &TestServer, event: &str) -> Value {
    let r = s
        .req("POST", "/api/v1/alerting/alerts")
        .json(&json!({"eventType": event, "payload": {"severity": "critical", "summary": "disk full"}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    r.json()
}

#[tokio::test]
async fn alerts_are_delivered_signed_with_every_live_secret() {
    let rx = Receiver::start().await;
    let s = TestServer::start_with(FAST).await;
    let id = endpoint(&s, &rx.url("/hook"), "my-secret-key", true).await;
    let v = alert(&s, "alert.firing").await;
    assert_eq!(v["deliveries"], 1);
    let msg_id = v["messageId"].as_str().unwrap().to_owned();
    assert!(msg_id.starts_with("msg_"));

    let got = rx.wait_for(1, 10).await;
    let first = &got[0];
    assert_eq!(first.path, "/hook");
    assert_eq!(first.header("webhook-id"), msg_id);
    assert_eq!(first.header("content-type"), "application/json");
    // The user agent the README shows.
    let agent = concat!("hookd/", env!("CARGO_PKG_VERSION"));
    assert_eq!(first.header("user-agent"), agent);
    assert!(include_str!("../../README.md").contains(&format!("user-agent: {agent}")));
    assert_eq!(first.signatures_by(b"my-secret-key"), 1);
    let body = first.json();
    assert_eq!(body["type"], "alert.firing");
    assert_eq!(body["data"]["summary"], "disk full");
    let ts: i64 = first.header("webhook-timestamp").parse().unwrap();
    assert!((hookd::time::now_ms() / 1000 - ts).abs() < 60);

    // During the rotation grace period both secrets sign.
    let r = s
        .req("POST", &format!("{ENDPOINTS}/{id}/rotate-secret"))
        .json(&json!({"signingSecret": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK);
    alert(&s, "alert.resolved").await;
    let got = rx.wait_for(2, 10).await;
    let second = &got[1];
    let new_key = base64::engine::general_purpose::STANDARD
        .decode("C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
        .unwrap();
    assert_eq!(second.header("webhook-signature").split(' ').count(), 2);
    assert_eq!(second.signatures_by(&new_key), 1);
    assert_eq!(second.signatures_by(b"my-secret-key"), 1);

    let log = s.wait_attempts(&id, 2, 5).await;
    assert_eq!(log[0]["outcome"], "succeeded");
    assert_eq!(log[0]["statusCode"], 200);
    assert_eq!(log[0]["responseBody"], "answer 200");
    assert_eq!(log[0]["attempt"], 1);
    s.stop().await;
}

#[tokio::test]
async fn a_slow_receiver_does_not_starve_the_others() {
    let slow = Receiver::start().await;
    // Far longer than the test: the fast deliveries must finish while these still hang.
    slow.slow(60_000);
    let fast = Receiver::start().await;
    let extra = FAST.replace(
        "poll_interval_ms = 50",
        "poll_interval_ms = 50\nmax_in_flight = 4\nper_endpoint = 2",
    );
    // The hanging deliveries are cut off at shutdown after the grace.
    let s = TestServer::start_with(&format!("{extra}[limits]\nshutdown_grace_secs = 1\n")).await;
    let slow_id = endpoint(&s, &slow.url("/slow"), "", true).await;
    endpoint(&s, &fast.url("/fast"), "", true).await;
    for _ in 0..10 {
        alert(&s, "alert.firing").await;
    }
    // Ten deliveries to the fast receiver while the slow one holds its two slots.
    fast.wait_for(10, 10).await;
    assert_eq!(
        slow.count(),
        0,
        "the slow receiver has answered nothing yet"
    );
    assert!(s.attempts(&slow_id).await.is_empty());
    assert_eq!(
        slow.max_busy.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "per-endpoint limit"
    );
    let stopping = std::time::Instant::now();
    s.stop().await;
    let took = stopping.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "waited out the grace for the deliveries in flight, then cut them off: {took:?}"
    );
}

/// `delivery.max_in_flight_bytes` bounds the payloads deliveries in flight hold: each holds
/// twice its payload, so with 1 MiB two deliveries of a 300 KB alert do not fit at once and go
/// out one after the other, while small alerts still go out together.
#[tokio::test]
async fn deliveries_in_flight_hold_payloads_within_their_byte_budget() {
    use std::sync::atomic::Ordering::SeqCst;
    let rx = Receiver::start().await;
    rx.slow(300);
    let s = TestServer::start_with(&format!("{FAST}max_in_flight_bytes = 1048576\n")).await;
    for i in 0..3 {
        endpoint(&s, &rx.url(&format!("/{i}")), "", true).await;
    }
    let large = "x".repeat(300_000);
    let r = s
        .req("POST", "/api/v1/alerting/alerts")
        .json(&json!({"eventType": "alert.firing", "payload": {"summary": large}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let got = rx.wait_for(3, 20).await;
    assert!(got.iter().all(|g| g.body.len() > 300_000));
    assert_eq!(rx.max_busy.load(SeqCst), 1, "one 300 KB delivery at a time");

    // Three small ones fit together.
    rx.max_busy.store(0, SeqCst);
    alert(&s, "alert.firing").await;
    rx.wait_for(6, 20).await;
    assert!(
        rx.max_busy.load(SeqCst) >= 2,
        "small deliveries go out together"
    );
    s.stop().await;
}

/// A delivery in flight when hookd is told to stop is let finish (within
/// `limits.shutdown_grace_secs`) and its attempt is recorded, so the receiver does not get it
/// again after the restart.
#[tokio::test]
async fn shutdown_lets_deliveries_in_flight_finish() {
    let rx = Receiver::start().await;
    rx.slow(1_500);
    let mut s = TestServer::start_with(FAST).await;
    let id = endpoint(&s, &rx.url("/a"), "", true).await;
    alert(&s, "alert.firing").await;
    for _ in 0..100 {
        if rx.max_busy.load(std::sync::atomic::Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let task = s.begin_stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!task.is_finished(), "waits for the delivery in flight");
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(rx.count(), 1);
    let dir = s.dir.clone();
    drop(s);
    let s = TestServer::start_in(dir, FAST).await;
    let attempts = s.attempts(&id).await;
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(attempts[0]["outcome"], "succeeded", "{attempts:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.count(), 1, "not sent again after the restart");
    s.stop().await;
}

#[tokio::test]
async fn a_receiver_slower_than_the_timeout_is_a_timeout() {
    let rx = Receiver::start().await;
    rx.slow(3_000);
    let extra = FAST.replace(
        "retry_schedule_secs = [1, 1, 1]",
        "retry_schedule_secs = []\ntimeout_ms = 300",
    );
    let s = TestServer::start_with(&extra).await;
    let id = endpoint(&s, &rx.url("/sleepy"), "", true).await;
    alert(&s, "alert.firing").await;
    let log = s.wait_attempts(&id, 1, 5).await;
    assert_eq!(log[0]["error"], "timeout");
    assert!(log[0]["statusCode"].is_null());
    let took = log[0]["durationMs"].as_u64().unwrap();
    assert!((300..2_000).contains(&took), "{took} ms");
    s.stop().await;
}

#[tokio::test]
async fn signing_off_sends_no_signature() {
    let rx = Receiver::start().await;
    let s = TestServer::start_with(FAST).await;
    endpoint(&s, &rx.url("/plain"), "", false).await;
    alert(&s, "alert.firing").await;
    let got = rx.wait_for(1, 10).await;
    assert!(got[0].headers.get("webhook-signature").is_none());
    assert!(!got[0].header("webhook-id").is_empty());
    s.stop().await;
}

#[tokio::test]
async fn failures_retry_on_schedule_honouring_retry_after_then_succeed() {
    let rx = Receiver::start().await;
    rx.script(vec![
        (500, vec![]),
        (429, vec![("retry-after", "2".into())]),
        (404, vec![]),
    ]);
    let s = TestServer::start_with(FAST).await;
    let id = endpoint(&s, &rx.url("/flaky"), "", true).await;
    let started = std::time::Instant::now();
    alert(&s, "alert.firing").await;
    let got = rx.wait_for(4, 20).await;
    // 1 s after the 500, then the receiver's 2 s, then 1 s after the 404.
    assert!(
        started.elapsed() >= Duration::from_millis(3900),
        "{:?}",
        started.elapsed()
    );
    assert!(got
        .iter()
        .all(|r| r.header("webhook-id") == got[0].header("webhook-id")));

    let log = s.wait_attempts(&id, 4, 5).await;
    let outcomes: Vec<&str> = log.iter().map(|a| a["outcome"].as_str().unwrap()).collect();
    assert_eq!(
        outcomes,
        ["succeeded", "retrying", "retrying", "retrying"],
        "newest first"
    );
    let numbers: Vec<u64> = log.iter().map(|a| a["attempt"].as_u64().unwrap()).collect();
    assert_eq!(numbers, [4, 3, 2, 1]);
    assert_eq!(log[2]["statusCode"], 429);
    assert_eq!(log[2]["error"], "retry_after=2");
    assert!(log[3]["nextAttemptAt"].is_string());
    assert!(log[0]["nextAttemptAt"].is_null());
    // Paging the log.
    let page = s
        .req("GET", &format!("{ENDPOINTS}/{id}/attempts?limit=3"))
        .send()
        .await
        .json();
    assert_eq!(page["attempts"].as_array().unwrap().len(), 3);
    let cursor = page["nextCursor"].as_str().unwrap();
    let rest = s
        .req(
            "GET",
            &format!("{ENDPOINTS}/{id}/attempts?limit=3&cursor={cursor}"),
        )
        .send()
        .await
        .json();
    assert_eq!(rest["attempts"][0]["attempt"], 1);
    assert!(rest["nextCursor"].is_null());
    s.req("GET", &format!("{ENDPOINTS}/wh-nope/attempts"))
        .send()
        .await
        .problem(404);
    s.stop().await;
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_honoured() {
    let rx = Receiver::start().await;
    // 4 s from now in whole seconds: a wait of 3-4 s, well beyond the 1 s schedule.
    let at = hookd::time::http_date(hookd::time::now_ms() + 4000);
    rx.script(vec![(503, vec![("retry-after", at.clone())])]);
    let s = TestServer::start_with(FAST).await;
    let id = endpoint(&s, &rx.url("/busy"), "", true).await;
    let started = std::time::Instant::now();
    alert(&s, "alert.firing").await;
    rx.wait_for(2, 20).await;
    assert!(
        started.elapsed() >= Duration::from_millis(2900),
        "{:?}",
        started.elapsed()
    );
    let log = s.wait_attempts(&id, 2, 5).await;
    // Stored as the seconds it asked for, counted from the attempt.
    let error = log[1]["error"].as_str().unwrap();
    assert!(
        ["retry_after=3", "retry_after=4"].contains(&error),
        "{error}"
    );
    assert_eq!(log[0]["outcome"], "succeeded");
    s.stop().await;
}

/// A receiver's `Retry-After` is stored as a number, never as its text: a 100,000-character
/// one (which would have filled the attempt log) and a malformed one are not stored at all.
#[tokio::test]
async fn a_receiver_s_retry_after_is_stored_as_seconds_never_as_its_text() {
    let rx = Receiver::start().await;
    rx.script(vec![
        (503, vec![("retry-after", "1".repeat(100_000))]),
        (503, vec![("retry-after", "soon, please".into())]),
    ]);
    let s = TestServer::start_with(FAST).await;
    let id = endpoint(&s, &rx.url("/long"), "", true).await;
    alert(&s, "alert.firing").await;
    let log = s.wait_attempts(&id, 3, 20).await;
    for a in &log[1..] {
        assert_eq!(a["statusCode"], 503);
        assert!(a["error"].is_null(), "{a}");
        assert!(a.to_string().len() < 2000, "{} bytes", a.to_string().len());
    }
    assert_eq!(log[0]["outcome"], "succeeded");
    s.stop().await;
}

#[tokio::test]
async fn gone_disables_the_endpoint_until_patched() {
    let rx = Receiver::start().await;
    rx.script(vec![(410, vec![])]);
    let s = TestServer::start_with(FAST).await;
    let id = endpoint(&s, &rx.url("/gone"), "", true).await;
    alert(&s, "alert.firing").await;
    let log = s.wait_attempts(&id, 1, 10).await;
    assert_eq!(log[0]["outcome"], "failed");
    assert_eq!(log[0]["error"], "gone");
    let e = s
        .req("GET", &format!("{ENDPOINTS}/{id}"))
        .send()
        .await
        .json();
    assert_eq!(e["endpoint"]["disabled"], true);
    assert_eq!(
        alert(&s, "alert.firing").await["deliveries"],
        0,
        "disabled endpoints get nothing"
    );

    let r = s
        .req("PATCH", &format!("{ENDPOINTS}/{id}"))
        .json(&json!({"disabled": false}))
        .send()
        .await;
    assert_eq!(r.json()["endpoint"]["disabled"], false);
    assert_eq!(alert(&s, "alert.firing").await["deliveries"], 1);
    rx.wait_for(2, 10).await;
    s.stop().await;
}

#[tokio::test]
async fn continuous_failure_disables_the_endpoint() {
    let rx = Receiver::start().await;
    rx.script(vec![(500, vec![]), (500, vec![])]);
    let extra = FAST.replace(
        "poll_interval_ms = 50",
        "poll_interval_ms = 50\ndisable_after_secs = 1",
    );
    let s = TestServer::start_with(&extra).await;
    let id = endpoint(&s, &rx.url("/down"), "", true).await;
    alert(&s, "alert.firing").await;
    s.wait_attempts(&id, 2, 10).await;
    let e = s
        .req("GET", &format!("{ENDPOINTS}/{id}"))
        .send()
        .await
        .json();
    assert_eq!(e["endpoint"]["disabled"], true, "failing for over 1 s");
    s.stop().await;
}

#[tokio::test]
async fn a_message_that_gave_up_can_be_resent() {
    let rx = Receiver::start().await;
    rx.script(vec![(503, vec![]), (503, vec![])]);
    let extra = FAST.replace(
        "retry_schedule_secs = [1, 1, 1]",
        "retry_schedule_secs = [1]",
    );
    let s = TestServer::start_with(&extra).await;
    let id = endpoint(&s, &rx.url("/late"), "", true).await;
    let msg = alert(&s, "alert.firing").await["messageId"]
        .as_str()
        .unwrap()
        .to_owned();
    let log = s.wait_attempts(&id, 2, 10).await;
    assert_eq!(log[0]["outcome"], "failed", "the schedule is exhausted");

    let resend = format!("/api/v1/alerting/messages/{msg}/resend");
    let r = s.req("POST", &resend).send().await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert_eq!(r.json()["deliveries"], 1);
    let log = s.wait_attempts(&id, 3, 10).await;
    assert_eq!(log[0]["outcome"], "succeeded");
    assert_eq!(log[0]["attempt"], 3);
    s.req("POST", &resend).send().await.problem(409);
    s.req("POST", "/api/v1/alerting/messages/msg_nope/resend")
        .send()
        .await
        .problem(404);
    s.stop().await;
}

#[tokio::test]
async fn the_egress_guard_refuses_names_that_resolve_to_private_addresses() {
    let rx = Receiver::start().await;
    let port = rx.addr.unwrap().port();
    // `rebind.example` passes the URL rules at creation (it is a name), but resolves to
    // 127.0.0.1 at send time, which is not allow-listed here.
    // The guard uses the URL rules' table: an address that carries 127.0.0.1 (6to4) is
    // refused too, before any connection is tried.
    let extra = "[delivery]\nretry_schedule_secs = []\npoll_interval_ms = 50\n[delivery.hosts]\n\"rebind.example\" = \"127.0.0.1\"\n\"rebind6.example\" = \"2002:7f00:1::1\"\n";
    let s = TestServer::start_with(extra).await;
    let id = endpoint(&s, &format!("http://rebind.example:{port}/x"), "", true).await;
    let id6 = endpoint(&s, &format!("http://rebind6.example:{port}/x"), "", true).await;
    alert(&s, "alert.firing").await;
    for id in [id, id6] {
        let log = s.wait_attempts(&id, 1, 10).await;
        assert_eq!(log[0]["error"], "egress_denied");
        assert_eq!(log[0]["outcome"], "failed");
    }
    assert_eq!(rx.count(), 0, "nothing reached the receiver");
    s.stop().await;
}

#[tokio::test]
async fn redirects_are_failures_and_not_followed() {
    let rx = Receiver::start().await;
    rx.script(vec![(302, vec![("location", "/elsewhere".into())])]);
    let extra = FAST.replace(
        "retry_schedule_secs = [1, 1, 1]",
        "retry_schedule_secs = []",
    );
    let s = TestServer::start_with(&extra).await;
    let id = endpoint(&s, &rx.url("/moved"), "", true).await;
    alert(&s, "alert.firing").await;
    let log = s.wait_attempts(&id, 1, 10).await;
    assert_eq!(log[0]["statusCode"], 302);
    assert_eq!(log[0]["error"], "redirect");
    // A followed redirect would have been requested before the attempt was recorded.
    assert_eq!(rx.count(), 1);
    s.stop().await;
}

#[tokio::test]
async fn alertmanager_webhooks_with_basic_auth() {
    let rx = Receiver::start().await;
    let s = TestServer::start_with(FAST).await;
    endpoint(&s, &rx.url("/am"), "", true).await;
    let token = s.token("alertmanager", &["alerts:write"]).await;
    let payload = json!({
        "version": "4", "groupKey": "{}:{alertname=\"DiskFull\"}", "truncatedAlerts": 0,
        "status": "firing", "receiver": "hookd", "groupLabels": {"alertname": "DiskFull"},
        "commonLabels": {"alertname": "DiskFull"}, "commonAnnotations": {}, "externalURL": "http://am:9093",
        "alerts": [{"status": "firing", "labels": {"alertname": "DiskFull"}, "annotations": {},
                    "startsAt": "2026-01-15T08:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prom/graph", "fingerprint": "abc"}]
    });
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("alertmanager:{token}"));
    let r = s
        .req("POST", "/api/v1/alerting/alertmanager")
        .header("authorization", &format!("Basic {basic}"))
        .json(&payload)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let got = rx.wait_for(1, 10).await;
    let body = got[0].json();
    assert_eq!(body["type"], "alertmanager.firing");
    assert_eq!(body["data"], payload);
    // A bearer token works too; a token without alerts:write does not.
    let r = s
        .req("POST", "/api/v1/alerting/alertmanager")
        .token(&token)
        .json(&payload)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let bad = base64::engine::general_purpose::STANDARD.encode("alertmanager:wrong-token-123");
    let p = s
        .req("POST", "/api/v1/alerting/alertmanager")
        .header("authorization", &format!("Basic {bad}"))
        .json(&payload)
        .send()
        .await
        .problem(401);
    // It names what was presented: a basic credential, not a bearer token.
    assert_eq!(
        p["detail"],
        "the password of the basic credential is not a valid API token"
    );
    let r = s
        .req("POST", "/api/v1/alerting/alertmanager")
        .json(&json!({"version": "3"}))
        .send()
        .await;
    assert_eq!(r.error_fields(), ["version", "status", "alerts"]);
    // Found by schemathesis: alerts that are not objects (or labels that are not strings).
    let r = s
        .req("POST", "/api/v1/alerting/alertmanager")
        .json(&json!({"version": "4", "status": "firing", "alerts": [[null, null], {"labels": {"severity": 3}}]}))
        .send()
        .await;
    assert_eq!(r.error_fields(), ["alerts[0]", "alerts[1].labels"]);
    let r = s
        .req("POST", "/api/v1/alerting/alerts")
        .json(&json!({"eventType": "x y"}))
        .send()
        .await;
    assert_eq!(r.error_fields(), ["eventType", "payload"]);
    s.stop().await;
}

/// A test send is a request to the receiver like any delivery: it waits for the endpoint's
/// permit (`delivery.per_endpoint`) instead of adding a request the receiver was promised it
/// would not get.
#[tokio::test]
async fn a_test_send_takes_the_same_permits_as_deliveries() {
    let rx = Receiver::start().await;
    rx.slow(800);
    let s = TestServer::start_with(&format!("{FAST}per_endpoint = 1\n")).await;
    let id = endpoint(&s, &rx.url("/t"), "", true).await;
    alert(&s, "alert.firing").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while rx.max_busy.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(std::time::Instant::now() < deadline, "the delivery started");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let r = s
        .req("POST", &format!("{ENDPOINTS}/{id}/test"))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(rx.count(), 2, "the delivery, then the test send");
    assert_eq!(
        rx.max_busy.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "never two requests at once to this endpoint"
    );
    s.stop().await;
}

#[tokio::test]
async fn test_send_answers_with_the_attempt() {
    let rx = Receiver::start().await;
    rx.script(vec![(200, vec![]), (500, vec![])]);
    let s = TestServer::start_with(FAST).await;
    let id = endpoint(&s, &rx.url("/t"), "my-secret-key", true).await;
    let r = s
        .req("POST", &format!("{ENDPOINTS}/{id}/test"))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let a = r.json()["attempt"].clone();
    assert_eq!(
        (a["statusCode"].as_u64(), a["outcome"].as_str()),
        (Some(200), Some("succeeded"))
    );
    let got = rx.wait_for(1, 5).await;
    assert_eq!(got[0].json()["type"], "hookd.test");
    assert_eq!(got[0].signatures_by(b"my-secret-key"), 1);
    let a = s
        .req("POST", &format!("{ENDPOINTS}/{id}/test"))
        .send()
        .await
        .json()["attempt"]
        .clone();
    assert_eq!(
        (a["statusCode"].as_u64(), a["outcome"].as_str()),
        (Some(500), Some("failed"))
    );
    assert_eq!(s.attempts(&id).await.len(), 2);
    let e = s
        .req("GET", &format!("{ENDPOINTS}/{id}"))
        .send()
        .await
        .json();
    assert_eq!(e["endpoint"]["disabled"], false);
    s.req("POST", &format!("{ENDPOINTS}/wh-nope/test"))
        .send()
        .await
        .problem(404);
    s.stop().await;
}

#[tokio::test]
async fn pending_deliveries_survive_a_restart() {
    let rx = Receiver::start().await;
    rx.script(vec![(503, vec![])]);
    let extra = FAST.replace(
        "retry_schedule_secs = [1, 1, 1]",
        "retry_schedule_secs = [2]",
    );
    let s = TestServer::start_with(&extra).await;
    let id = endpoint(&s, &rx.url("/r"), "", true).await;
    alert(&s, "alert.firing").await;
    s.wait_attempts(&id, 1, 10).await;
    let dir = s.dir.clone();
    s.stop().await;
    let s = TestServer::start_in(dir, &extra).await;
    let got = rx.wait_for(2, 10).await;
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    let log = s.wait_attempts(&id, 2, 5).await;
    assert_eq!(log[0]["outcome"], "succeeded");
    s.stop().await;
}

/// The official Standard Webhooks library verifies what hookd sends (CI installs it; locally the
/// test says how to run it if it is missing).
#[tokio::test]
#[ignore = "needs Python's standardwebhooks (pip install standardwebhooks); CI runs it"]
async fn the_standard_webhooks_library_verifies_deliveries() {
    let has_lib = std::process::Command::new("python3")
        .args(["-c", "import standardwebhooks"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_lib,
        "needs Python's standardwebhooks: pip install standardwebhooks"
    );
    let s = TestServer::start_with(FAST).await;
    // A supplied whsec_ secret, a raw secret, and a generated one.
    for secret in [
        "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        "my-secret-key",
        "",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("verified.jsonl");
        // Create first (the verifier needs the plaintext, generated or not), then point the
        // endpoint at the verifier.
        let r = s
            .req("POST", ENDPOINTS)
            .json(&json!({"name": "py", "url": "https://placeholder.example/", "signingEnabled": true, "signingSecret": secret}))
            .send()
            .await
            .json();
        let plain = r["signingSecretPlaintext"].as_str().unwrap();
        let id = r["endpoint"]["id"].as_str().unwrap().to_owned();
        let py_secret = if plain.starts_with("whsec_") {
            plain.to_owned()
        } else {
            format!("raw:{plain}")
        };
        let mut child = spawn_verifier(&py_secret, &out);
        let url = format!("http://127.0.0.1:{}/", read_port(&mut child));
        let r = s
            .req("PATCH", &format!("{ENDPOINTS}/{id}"))
            .json(&json!({"url": url}))
            .send()
            .await;
        assert_eq!(r.status, StatusCode::OK);
        let r = s
            .req("POST", &format!("{ENDPOINTS}/{id}/test"))
            .send()
            .await
            .json();
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(r["attempt"]["statusCode"], 204, "{secret:?}: {r}");
        let line = std::fs::read_to_string(&out).unwrap();
        let v: Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
        assert_eq!(v["verified"], true, "{secret:?}: {v}");
        assert_eq!(v["type"], "hookd.test");
        s.req("DELETE", &format!("{ENDPOINTS}/{id}")).send().await;
    }
    s.stop().await;
}

fn spawn_verifier(secret: &str, out: &std::path::Path) -> std::process::Child {
    std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/standard_webhooks_receiver.py"
        ))
        .arg(secret)
        .arg(out)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn read_port(child: &mut std::process::Child) -> u16 {
    use std::io::BufRead as _;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim().parse().unwrap()
}

/// HTTPS to a LAN receiver whose certificate comes from a private CA: delivered when the CA is in
/// `delivery.ca_bundle`, refused as `tls` when it is not.
#[tokio::test]
async fn https_receivers_with_a_private_ca() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["receiver.test".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("ca.pem");
    std::fs::write(&bundle, ca.pem()).unwrap();

    // The TLS receiver: rustls server, hyper HTTP/1.1, answers 204 and counts requests.
    let tls = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(leaf.der().to_vec())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    )
    .unwrap();
    let (port, served) = common::receiver::tls_receiver(tls).await;

    let url = format!("https://receiver.test:{port}/hook");
    let base = format!(
        "{}[delivery.hosts]\n\"receiver.test\" = \"127.0.0.1\"\n",
        FAST.replace(
            "retry_schedule_secs = [1, 1, 1]",
            "retry_schedule_secs = []"
        )
    );
    for (trust, expect) in [(true, "succeeded"), (false, "failed")] {
        let extra = if trust {
            base.replace(
                "jitter_percent = 0",
                &format!("jitter_percent = 0\nca_bundle = \"{}\"", bundle.display()),
            )
        } else {
            base.clone()
        };
        let s = TestServer::start_with(&extra).await;
        let id = endpoint(&s, &url, "", true).await;
        alert(&s, "alert.firing").await;
        let log = s.wait_attempts(&id, 1, 10).await;
        assert_eq!(
            log[0]["outcome"], expect,
            "trusting the CA: {trust}: {:?}",
            log[0]
        );
        if !trust {
            assert_eq!(log[0]["error"], "tls");
        }
        s.stop().await;
    }
    assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn deleting_an_endpoint_drops_its_pending_deliveries() {
    let rx = Receiver::start().await;
    rx.script(vec![(503, vec![])]);
    let s = TestServer::start_with(FAST).await;
    let id = endpoint(&s, &rx.url("/bye"), "", true).await;
    let msg = alert(&s, "alert.firing").await["messageId"]
        .as_str()
        .unwrap()
        .to_owned();
    s.wait_attempts(&id, 1, 10).await;
    let key = hookd::model::Delivery::key(&msg, &id);
    assert!(
        s.app.store.delivery(&key).await.unwrap().is_some(),
        "a retry is pending"
    );
    let r = s.req("DELETE", &format!("{ENDPOINTS}/{id}")).send().await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    // The retry comes due after 1 s and finds the endpoint gone.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while s.app.store.delivery(&key).await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the delivery was not dropped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(rx.count(), 1, "nothing more was sent");
    s.stop().await;
}

/// A group of 1,000 alerts with long descriptions (about 3 MB) is taken whole, stored once for
/// both endpoints, and delivered to each byte for byte.
#[tokio::test]
async fn a_group_of_1000_alerts_is_stored_once_and_delivered_whole() {
    let rx = Receiver::start().await;
    let s = TestServer::start_with(FAST).await;
    let a = endpoint(&s, &rx.url("/a"), "my-secret-key", true).await;
    let b = endpoint(&s, &rx.url("/b"), "", false).await;
    let group = common::alertmanager_group("firing", 1000, 2500);
    let text = group.to_string();
    assert!(text.len() > 2_500_000, "{}", text.len());
    let r = s
        .req("POST", "/api/v1/alerting/alertmanager")
        .body_str(&text)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert_eq!(r.json()["deliveries"], 2);
    let stats = s.app.store.stats().await.unwrap();
    assert_eq!(
        stats.messages, 1,
        "one message, whatever the number of endpoints"
    );
    assert_eq!(stats.pending_deliveries + stats.attempts, 2);
    let got = rx.wait_for(2, 30).await;
    let mut paths: Vec<&str> = got.iter().map(|g| g.path.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(paths, ["/a", "/b"]);
    for g in &got {
        let body = g.json();
        assert_eq!(body["type"], "alertmanager.firing");
        assert_eq!(body["data"], group, "{} got the group whole", g.path);
    }
    for id in [a, b] {
        let attempts = s.wait_attempts(&id, 1, 10).await;
        assert_eq!(attempts[0]["outcome"], "succeeded");
    }
    s.stop().await;
}
