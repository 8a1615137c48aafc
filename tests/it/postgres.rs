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
    assert!(
        hears_of(&b, &id).await,
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

/// A PostgreSQL server of the test's own (initdb and pg_ctl as the `postgres` user, which
/// they require), on a port of its own, so that it can be stopped.
struct Server {
    bin: String,
    dir: tempfile::TempDir,
    port: u16,
}

impl Server {
    fn su(&self, command: &str) -> bool {
        std::process::Command::new("su")
            .args(["postgres", "-c", command])
            .output()
            .unwrap()
            .status
            .success()
    }

    fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .unwrap()
            .map(|e| e.unwrap().path().join("bin"))
            .max()
            .unwrap()
            .display()
            .to_string();
        let dir = tempfile::tempdir().unwrap();
        std::process::Command::new("chown")
            .args(["postgres", dir.path().to_str().unwrap()])
            .status()
            .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = Self { bin, dir, port };
        let data = server.dir.path().join("data");
        assert!(server.su(&format!(
            "{}/initdb -D {} -A trust -U postgres >/dev/null",
            server.bin,
            data.display()
        )));
        server.up();
        server
    }

    fn up(&self) {
        let d = self.dir.path();
        assert!(self.su(&format!(
            "{}/pg_ctl -D {}/data -l {}/log -w -o '-c listen_addresses=127.0.0.1 -p {} -k {}' start >/dev/null",
            self.bin,
            d.display(),
            d.display(),
            self.port,
            d.display()
        )));
    }

    fn down(&self) {
        assert!(self.su(&format!(
            "{}/pg_ctl -D {}/data -m immediate -w stop >/dev/null",
            self.bin,
            self.dir.path().display()
        )));
    }

    fn url(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.su(&format!(
            "{}/pg_ctl -D {}/data -m immediate stop >/dev/null 2>&1",
            self.bin,
            self.dir.path().display()
        ));
    }
}

/// The database stopped under load: requests get `503` with `Retry-After` (never a `500`)
/// while it is down, hookd recovers by itself once it is back, and every create acknowledged
/// before, during or after is there.
#[tokio::test]
#[ignore = "needs Debian's PostgreSQL (initdb, pg_ctl) and root (to run them as postgres)"]
async fn the_database_going_away_gives_503_and_hookd_recovers() {
    let pg = Server::start();
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let mut config = crate::common::config(dir.path(), FAST);
    config.store.backend = hookd::config::StoreBackend::Postgres;
    config.store.postgres_url = hookd::config::Redacted::new(pg.url());
    let s = TestServer::start_config(dir, config).await;

    let (mut acked, mut unavailable) = (Vec::new(), 0);
    let create = |i: usize| {
        let body = json!({"name": format!("e{i}"), "url": "https://example.com/hook", "signingEnabled": true, "signingSecret": ""});
        s.req("POST", ENDPOINTS).json(&body).send()
    };
    let mut record = |r: crate::common::Resp, acked: &mut Vec<String>| match r.status {
        StatusCode::OK => acked.push(r.json()["endpoint"]["id"].as_str().unwrap().to_owned()),
        StatusCode::SERVICE_UNAVAILABLE => {
            assert!(
                !r.header("retry-after").is_empty(),
                "503 says when to retry"
            );
            unavailable += 1;
        }
        other => panic!("{other}: {}", r.text()),
    };
    for i in 0..20 {
        record(create(i).await, &mut acked);
    }
    pg.down();
    for i in 20..40 {
        record(create(i).await, &mut acked);
    }
    let r = s.req("GET", "/readyz").send().await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    pg.up();
    // Back without a restart of hookd.
    let mut recovered = false;
    for i in 40..400 {
        let r = create(i).await;
        let ok = r.status == StatusCode::OK;
        record(r, &mut acked);
        if ok {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(recovered, "hookd serves again once the database is back");
    for i in 400..420 {
        record(create(i).await, &mut acked);
    }
    assert!(unavailable >= 20, "{unavailable} answers were 503");
    let r = s.req("GET", "/readyz").send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    for id in &acked {
        let r = s.req("GET", &format!("{ENDPOINTS}/{id}")).send().await;
        assert_eq!(r.status, StatusCode::OK, "acknowledged {id} is there");
    }
    assert!(acked.len() >= 41);
    s.stop().await;
}

/// An instance killed (`kill -9`) while its deliveries are in flight: nothing acknowledged is
/// lost; another instance takes its deliveries over once their lease runs out; the receiver
/// gets each alert at least once, and the duplicates (those the killed instance had sent) are
/// counted and bounded by what was in flight.
#[tokio::test]
#[ignore = "needs a PostgreSQL server (HOOKD_TEST_POSTGRES) and the postgres feature"]
async fn a_killed_instance_deliveries_are_taken_over_after_the_lease() {
    use crate::common::{daemon, ADMIN_TOKEN};
    let server = postgres::server().expect("HOOKD_TEST_POSTGRES");
    let rx = Receiver::start().await;
    rx.slow(1_500);
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let lease_secs = 5;
    let config = || {
        let mut c = crate::common::config(dir.path(), FAST);
        c.store.postgres_lease_secs = lease_secs;
        c
    };
    // B makes the database, the master key and the endpoint, then steps aside.
    let b = TestServer::start_config(dir.clone(), config()).await;
    let body =
        json!({"name": "a", "url": rx.url("/a"), "signingEnabled": true, "signingSecret": ""});
    let r = b.req("POST", ENDPOINTS).json(&body).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    b.stop().await;

    // A, a real process on the same database and key, accepts the alerts and starts sending.
    let key = std::fs::read_to_string(dir.path().join("master.key")).unwrap();
    let mut cmd = daemon::serve(dir.path());
    cmd.env("HOOKD_MASTER_KEY", key.trim())
        .env("HOOKD_BOOTSTRAP_TOKEN", ADMIN_TOKEN)
        .env("HOOKD_STORE__BACKEND", "postgres")
        .env(
            "HOOKD_STORE__POSTGRES_URL",
            postgres::database_for(&server, dir.path()),
        )
        .env("HOOKD_STORE__POSTGRES_LEASE_SECS", lease_secs.to_string())
        .env("HOOKD_URL_POLICY__ALLOW_NETWORKS", "[\"127.0.0.0/8\"]")
        .env("HOOKD_DELIVERY__POLL_INTERVAL_MS", "50");
    let mut a = daemon::Daemon::start(cmd);
    let mut ids = Vec::new();
    for i in 0..10 {
        let body = json!({"eventType": "alert.firing", "payload": {"n": i}});
        let (status, v) = a.request("POST", "/api/v1/alerting/alerts", ADMIN_TOKEN, Some(&body));
        assert_eq!(status, 202, "{v}");
        ids.push(v["messageId"].as_str().unwrap().to_owned());
    }
    for _ in 0..100 {
        if rx.max_busy.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let in_flight = rx.max_busy.load(std::sync::atomic::Ordering::SeqCst);
    assert!(in_flight > 0, "A is sending when it is killed");
    a.child.kill().unwrap();
    let _ = a.child.wait();
    let killed = std::time::Instant::now();

    // B again: it takes A's deliveries once their leases have run out.
    let b = TestServer::start_config(dir.clone(), config()).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let seen = loop {
        let mut seen: HashMap<String, usize> = HashMap::new();
        for r in rx.received.lock().unwrap().iter() {
            *seen.entry(r.header("webhook-id")).or_default() += 1;
        }
        if ids.iter().all(|id| seen.contains_key(id)) {
            break seen;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not all delivered: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let took = killed.elapsed();
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    eprintln!(
        "taken over and delivered {} alerts {took:?} after the kill; {in_flight} were in flight, {duplicates} duplicate(s)",
        ids.len()
    );
    assert!(
        duplicates <= in_flight.max(1) * 2,
        "{duplicates} duplicates for {in_flight} in flight"
    );
    b.stop().await;
}

#[tokio::test]
#[ignore = "needs a PostgreSQL server (HOOKD_TEST_POSTGRES) and the postgres feature"]
async fn a_rate_limit_holds_for_the_endpoint_across_instances() {
    assert!(
        postgres::server().is_some(),
        "HOOKD_TEST_POSTGRES names a server"
    );
    let rx = Receiver::start().await;
    let a = TestServer::start_with(FAST).await;
    let b = TestServer::start_in(a.dir.clone(), FAST).await;
    let body = json!({"name": "limited", "url": rx.url("/r"), "signingEnabled": true, "signingSecret": "", "rateLimit": 4});
    let r = a.req("POST", ENDPOINTS).json(&body).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let id = r.json()["endpoint"]["id"].as_str().unwrap().to_owned();
    hears_of(&b, &id).await;
    // 20 alerts over both instances at once: each instance alone would send 4 a second, two
    // would send 8; the shared bucket keeps the endpoint at 4 a second (one token at the start).
    let started = std::time::Instant::now();
    for i in 0..20 {
        let s = if i % 2 == 0 { &a } else { &b };
        let r = s
            .req("POST", "/api/v1/alerting/alerts")
            .json(&json!({"eventType": "alert.firing", "payload": {"n": i}}))
            .send()
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    }
    let got = rx.wait_for(20, 30).await;
    let mut times: Vec<f64> = got
        .iter()
        .map(|r| r.at.duration_since(started).as_secs_f64())
        .collect();
    times.sort_by(f64::total_cmp);
    // Within any 1-second window, at most 4 (+1 for a window edge); all 20 take 19/4 s at least.
    for (i, t) in times.iter().enumerate() {
        let window = times[i..].iter().take_while(|u| **u < t + 1.0).count();
        assert!(
            window <= 5,
            "{window} deliveries within a second of {t:.2}s: {times:?}"
        );
    }
    let last = times.iter().copied().fold(0.0, f64::max);
    assert!(
        last >= 4.5,
        "20 deliveries at 4/s ended after {last:.2}s: {times:?}"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
#[ignore = "needs a PostgreSQL server (HOOKD_TEST_POSTGRES) and the postgres feature"]
async fn a_circuit_opens_and_closes_on_every_instance() {
    assert!(
        postgres::server().is_some(),
        "HOOKD_TEST_POSTGRES names a server"
    );
    // Nothing listens at `later` until the receiver comes back.
    let later = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    // `b` would never open it by itself (1,000 failures): when it holds, it learned from `a`.
    let a = TestServer::start_with(&format!(
        "{FAST}circuit_failures = 3\ncircuit_open_secs = 2\n"
    ))
    .await;
    let b = TestServer::start_in(
        a.dir.clone(),
        &format!("{FAST}circuit_failures = 1000\ncircuit_open_secs = 2\n"),
    )
    .await;
    let body = json!({"name": "flaky", "url": format!("http://{later}/r"), "signingEnabled": true, "signingSecret": ""});
    let r = a.req("POST", ENDPOINTS).json(&body).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let id = r.json()["endpoint"]["id"].as_str().unwrap().to_owned();
    for i in 0..6 {
        let r = a
            .req("POST", "/api/v1/alerting/alerts")
            .json(&json!({"eventType": "alert.firing", "payload": {"n": i}}))
            .send()
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    }
    // `a` opens the circuit after three failures, and `b` holds too.
    let state = |s: &TestServer| s.app.delivery.circuit(&id).state;
    let mut both = false;
    for _ in 0..200 {
        both = state(&a) != "closed" && state(&b) != "closed";
        if both {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(both, "open on both: {} and {}", state(&a), state(&b));
    // The receiver is back: a probe succeeds, and the circuit closes on both.
    let rx = Receiver::start_on(&later.to_string()).await;
    rx.wait_for(6, 30).await;
    for _ in 0..200 {
        if state(&a) == "closed" && state(&b) == "closed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!((state(&a), state(&b)), ("closed", "closed"));
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
#[ignore = "needs a PostgreSQL server (HOOKD_TEST_POSTGRES) and the postgres feature"]
async fn a_token_revoked_on_one_instance_is_refused_by_the_others() {
    assert!(
        postgres::server().is_some(),
        "HOOKD_TEST_POSTGRES names a server"
    );
    let a = TestServer::start_with(FAST).await;
    let b = TestServer::start_in(a.dir.clone(), FAST).await;
    let r = a
        .req("POST", "/api/v1/tokens")
        .json(&json!({"name": "ci", "scopes": ["endpoints:read"]}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    let (id, plain) = (
        v["token"]["id"].as_str().unwrap().to_owned(),
        v["tokenPlaintext"].as_str().unwrap().to_owned(),
    );
    // `b` authenticates it (and keeps it in its cache) ...
    for _ in 0..3 {
        let r = b.req("GET", ENDPOINTS).token(&plain).send().await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    // ... until `a` revokes it: then `b` refuses it too, as soon as it hears (NOTIFY).
    let r = a
        .req("DELETE", &format!("/api/v1/tokens/{id}"))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let mut status = StatusCode::OK;
    for _ in 0..100 {
        status = b.req("GET", ENDPOINTS).token(&plain).send().await.status;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
#[ignore = "needs a PostgreSQL server (HOOKD_TEST_POSTGRES) and the postgres feature"]
async fn concurrent_creates_commit_in_batches_and_each_is_read_on_the_other_instance_at_once() {
    assert!(
        postgres::server().is_some(),
        "HOOKD_TEST_POSTGRES names a server"
    );
    let a = std::sync::Arc::new(TestServer::start_with(FAST).await);
    let b = std::sync::Arc::new(TestServer::start_in(a.dir.clone(), FAST).await);
    // 200 creates at once, half on each instance: they share commits (batches), and every one
    // is answered 200 with its own endpoint, which the other instance reads at once.
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (on, other) = if i % 2 == 0 {
            (a.clone(), b.clone())
        } else {
            (b.clone(), a.clone())
        };
        tasks.push(tokio::spawn(async move {
            let body = json!({"name": format!("e{i}"), "url": format!("https://example.com/{i}"), "signingEnabled": true, "signingSecret": ""});
            let r = on.req("POST", ENDPOINTS).json(&body).send().await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text());
            let id = r.json()["endpoint"]["id"].as_str().unwrap().to_owned();
            let r = other.req("GET", &format!("{ENDPOINTS}/{id}")).send().await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text());
            assert_eq!(r.json()["endpoint"]["name"], format!("e{i}"));
            id
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 200);
    let r = a.req("GET", &format!("{ENDPOINTS}?limit=200")).send().await;
    assert_eq!(r.json()["endpoints"].as_array().unwrap().len(), 200);
    std::sync::Arc::try_unwrap(a).ok().unwrap().stop().await;
    std::sync::Arc::try_unwrap(b).ok().unwrap().stop().await;
}

/// The `webhook-id`s `rx` has seen, with how many times each.
fn seen_ids(rx: &Receiver) -> HashMap<String, usize> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for r in rx.received.lock().unwrap().iter() {
        *seen.entry(r.header("webhook-id")).or_default() += 1;
    }
    seen
}

/// Posts `n` alerts, 16 at a time, to `on` in turns; their message ids.
async fn post_alerts(on: &[std::sync::Arc<TestServer>], n: usize, from: usize) -> Vec<String> {
    let mut tasks = Vec::new();
    for t in 0..16 {
        let on = on.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in (t..n).step_by(16) {
                let s = &on[i % on.len()];
                let body = json!({"eventType": "alert.firing", "payload": {"n": from + i}});
                let r = s
                    .req("POST", "/api/v1/alerting/alerts")
                    .json(&body)
                    .send()
                    .await;
                assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
                ids.push(r.json()["messageId"].as_str().unwrap().to_owned());
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    ids
}

#[tokio::test]
#[ignore = "needs a PostgreSQL server (HOOKD_TEST_POSTGRES) and the postgres feature"]
async fn three_instances_deliver_10000_alerts_once_and_survive_a_kill() {
    use crate::common::daemon;
    let server = postgres::server().expect("HOOKD_TEST_POSTGRES");
    let rx = Receiver::start().await;
    let config = format!("{FAST}per_endpoint = 64\n");
    let a = std::sync::Arc::new(TestServer::start_with(&config).await);
    let b = std::sync::Arc::new(TestServer::start_in(a.dir.clone(), &config).await);
    let body =
        json!({"name": "all", "url": rx.url("/all"), "signingEnabled": true, "signingSecret": ""});
    let r = a.req("POST", ENDPOINTS).json(&body).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let id = r.json()["endpoint"]["id"].as_str().unwrap().to_owned();
    // (B routes alerts to it once it has heard of it: see the README on new endpoints.)
    hears_of(&b, &id).await;
    // C, a real process on the same database and master key, with a 5-second lease.
    let start_c = || {
        let key = std::fs::read_to_string(a.dir.path().join("master.key")).unwrap();
        let mut cmd = daemon::serve(a.dir.path());
        cmd.env("HOOKD_MASTER_KEY", key.trim())
            .env("HOOKD_STORE__BACKEND", "postgres")
            .env(
                "HOOKD_STORE__POSTGRES_URL",
                postgres::database_for(&server, a.dir.path()),
            )
            .env("HOOKD_STORE__POSTGRES_LEASE_SECS", "5")
            .env("HOOKD_URL_POLICY__ALLOW_NETWORKS", "[\"127.0.0.0/8\"]")
            .env("HOOKD_DELIVERY__PER_ENDPOINT", "64")
            .env("HOOKD_DELIVERY__POLL_INTERVAL_MS", "50");
        daemon::Daemon::start(cmd)
    };
    let mut c = start_c();
    let both = [a.clone(), b.clone()];

    // 5,000 alerts over the instances, all three sending: each is delivered exactly once.
    let first = post_alerts(&both, 5_000, 0).await;
    rx.wait_for(5_000, 120).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = seen_ids(&rx);
    assert!(first.iter().all(|id| seen.get(id) == Some(&1)), "each once");
    assert_eq!(seen.len(), 5_000);

    // 5,000 more, and C is killed (-9) while it sends: nothing acknowledged is lost, what it
    // held is sent again after its lease, and the duplicates are counted and bounded by what
    // C could hold (64 in flight, plus its claims not yet started).
    rx.slow(20);
    let second = post_alerts(&both, 5_000, 5_000).await;
    c.child.kill().unwrap();
    let _ = c.child.wait();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let seen = loop {
        let seen = seen_ids(&rx);
        if second.iter().all(|id| seen.contains_key(id)) {
            break seen;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} of 5,000 delivered",
            second.iter().filter(|id| seen.contains_key(*id)).count()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    eprintln!("10,000 alerts delivered by 3 instances, one killed: {duplicates} duplicate(s)");
    assert!(duplicates <= 256, "{duplicates} duplicates");
    drop(both);
    std::sync::Arc::try_unwrap(a).ok().unwrap().stop().await;
    std::sync::Arc::try_unwrap(b).ok().unwrap().stop().await;
}

#[tokio::test]
#[ignore = "needs a PostgreSQL server (HOOKD_TEST_POSTGRES) and the postgres feature"]
async fn an_alert_accepted_right_after_a_create_on_another_instance_goes_to_it() {
    assert!(
        postgres::server().is_some(),
        "HOOKD_TEST_POSTGRES names a server"
    );
    let a = TestServer::start_with(FAST).await;
    let b = TestServer::start_in(a.dir.clone(), FAST).await;
    // 100 times: an endpoint for a new event type created on A, and at once an alert of that
    // type posted to B, which has not heard of the endpoint yet (LISTEN takes a moment): B
    // routes it again with the table it reloads, and the alert has its delivery.
    let rx = Receiver::start().await;
    for i in 0..100 {
        let body = json!({"name": format!("e{i}"), "url": rx.url(&format!("/{i}")), "signingEnabled": true, "signingSecret": "", "filterTypes": [format!("alert.t{i}")]});
        let r = a.req("POST", ENDPOINTS).json(&body).send().await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let r = b
            .req("POST", "/api/v1/alerting/alerts")
            .json(&json!({"eventType": format!("alert.t{i}"), "payload": {}}))
            .send()
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
        assert_eq!(r.json()["deliveries"], 1, "alert {i}: {}", r.text());
    }
    rx.wait_for(100, 30).await;
    a.stop().await;
    b.stop().await;
}

/// Whether instance `s` has endpoint `id` in its routing table within 2 s (it hears of other
/// instances' creates by LISTEN/NOTIFY).
async fn hears_of(s: &TestServer, id: &str) -> bool {
    for _ in 0..100 {
        if s.app.store.routes().get(id).is_some() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}
