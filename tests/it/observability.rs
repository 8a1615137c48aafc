//! What an operator watches: /metrics (scraped by a real Prometheus in one test), the OpenAPI
//! document and its reference page, HEAD.
use crate::common;

use std::time::Duration;

use crate::common::receiver::Receiver;
use crate::common::{TestServer, ENDPOINTS};
use hyper::StatusCode;
use serde_json::Value;

const FAST: &str = "[url_policy]\nallow_networks = [\"127.0.0.0/8\"]\n[delivery]\nretry_schedule_secs = [3600]\njitter_percent = 0\npoll_interval_ms = 50\ncircuit_failures = 0\n";

/// The value of one sample line of `metrics` (name with labels, exactly as exposed).
pub(crate) fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}

/// The store's commits so far and the writes they held, from a scrape.
fn commits(m: &str) -> (f64, f64) {
    let v = |series: &str| sample(m, series).unwrap_or_else(|| panic!("no {series} in\n{m}"));
    (
        v("hookd_store_commit_batch_size_count"),
        v("hookd_store_commit_batch_size_sum"),
    )
}

async fn scrape(s: &TestServer) -> String {
    let r = s.req("GET", "/metrics").no_auth().send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    r.text()
}

#[tokio::test]
async fn metrics_count_what_happened_with_fixed_labels() {
    let ok = Receiver::start().await;
    let failing = Receiver::start().await;
    failing.script((0..10).map(|_| (503, vec![])).collect());
    let s = TestServer::start_with(FAST).await;
    let good = s.endpoint_to("n", &ok.url("/ok")).await;
    let bad = s.endpoint_to("n", &failing.url("/bad")).await;
    for _ in 0..3 {
        s.alert().await;
    }
    ok.wait_for(3, 10).await;
    failing.wait_for(3, 10).await;
    let store = &s.app.store;
    common::eventually_async(10, "attempts recorded", move || async move {
        store.stats().await.unwrap().attempts == 6
    })
    .await;
    let m = scrape(&s).await;
    let v = |series: &str| sample(&m, series).unwrap_or_else(|| panic!("no {series} in\n{m}"));
    assert_eq!(
        v(r#"hookd_http_requests_total{route="create_endpoint",method="POST",status="200"}"#),
        2.0
    );
    assert_eq!(
        v(r#"hookd_http_requests_total{route="ingest_alert",method="POST",status="202"}"#),
        3.0
    );
    assert_eq!(v("hookd_notifications_total"), 6.0);
    assert_eq!(
        v(r#"hookd_notifications_failed_total{reason="server_error"}"#),
        3.0
    );
    assert_eq!(
        v(r#"hookd_notifications_failed_total{reason="timeout"}"#),
        0.0
    );
    assert_eq!(v("hookd_notification_latency_seconds_count"), 3.0);
    assert_eq!(v("hookd_notification_attempt_duration_seconds_count"), 6.0);
    assert_eq!(
        v("hookd_outbox_pending"),
        3.0,
        "the failed ones wait an hour"
    );
    assert!(v("hookd_outbox_oldest_pending_age_seconds") >= 0.0);
    assert_eq!(v(r#"hookd_endpoints{state="enabled"}"#), 2.0);
    assert_eq!(v(r#"hookd_endpoints{state="disabled"}"#), 0.0);
    assert_eq!(v(r#"hookd_build_info{version="0.1.0"}"#), 1.0);
    assert_eq!(v(r#"hookd_store_state{state="ok"}"#), 1.0);
    assert!(v("hookd_store_size_bytes") > 0.0);
    // The data volume's free space is the embedded store's (PostgreSQL's disk is not hookd's).
    if common::postgres::server().is_none() {
        assert!(v("hookd_store_free_bytes") > 0.0);
        // The group-commit histograms are the embedded store's writer's.
        assert!(v("hookd_store_commit_duration_seconds_count") > 0.0);
    }
    assert!(v("process_resident_memory_bytes") > 1e6);
    assert!(v("process_open_fds") > 0.0 && v("process_cpu_seconds_total") > 0.0);
    // Cardinality is fixed: no id, URL or client text in any series.
    for id in [&good, &bad] {
        assert!(!m.contains(id.as_str()));
    }
    assert!(!m.contains("127.0.0.1"));
    let r = s.req("GET", "/nothing/here").send().await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = s.req("BREW", "/healthz").send().await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    let m = scrape(&s).await;
    assert_eq!(
        sample(
            &m,
            r#"hookd_http_requests_total{route="unknown",method="GET",status="404"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            r#"hookd_http_requests_total{route="unknown",method="other",status="405"}"#
        ),
        Some(1.0)
    );
    assert!(!m.contains("BREW") && !m.contains("/nothing"));
    s.stop().await;
}

#[tokio::test]
async fn metrics_can_be_turned_off_or_need_a_token() {
    let s = TestServer::start_with("[metrics]\nenabled = false\n").await;
    let p = s.req("GET", "/metrics").no_auth().send().await.problem(404);
    assert!(p["detail"].as_str().unwrap().contains("enabled = false"));
    s.stop().await;
    let s =
        TestServer::start_with("[metrics]\nenabled = true\ntoken = \"scrape-token-0123456789\"\n")
            .await;
    s.req("GET", "/metrics").no_auth().send().await.problem(401);
    s.req("GET", "/metrics")
        .token("the-wrong-token-0123456")
        .send()
        .await
        .problem(401);
    let r = s
        .req("GET", "/metrics")
        .token("scrape-token-0123456789")
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("hookd_build_info"));
    s.stop().await;
}

#[tokio::test]
async fn head_answers_like_get_without_a_body() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let s = TestServer::start().await;
    let id = s.create("head", "").await["endpoint"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for path in [
        "/healthz".to_owned(),
        "/api/v1/openapi.json".to_owned(),
        format!("{ENDPOINTS}/{id}"),
        ENDPOINTS.to_owned(),
    ] {
        let get = s.req("GET", &path).send().await;
        assert_eq!(get.status, StatusCode::OK);
        let mut stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
        let head = format!(
            "HEAD {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\nconnection: close\r\n\r\n",
            common::ADMIN_TOKEN
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut answer))
            .await
            .unwrap()
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{path}: {answer}");
        let (headers, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(body.is_empty(), "{path}: HEAD sent a body");
        assert!(
            headers.contains(&format!("content-length: {}", get.body.len())),
            "{path}: {headers}"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn the_openapi_document_and_its_reference_page_are_served_without_auth() {
    let s = TestServer::start().await;
    let r = s.req("GET", "/api/v1/openapi.json").no_auth().send().await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), "application/json");
    let doc: Value = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(
        doc["paths"]["/api/v1/alerting/webhook-endpoints"]["post"]["responses"]["200"].is_object()
    );
    let r = s.req("GET", "/docs").no_auth().send().await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), "text/html; charset=utf-8");
    let csp = r.header("content-security-policy");
    assert!(
        csp.starts_with("default-src 'none'") && !csp.contains("unsafe"),
        "{csp}"
    );
    let page = r.text();
    assert!(
        page.contains("id=\"create_endpoint\"") && page.contains("href=\"/api/v1/openapi.json\"")
    );
    // Nothing on the page loads anything (the CSP would refuse it too): no script, no
    // stylesheet or image from anywhere.
    for load in ["<script", "<link", "<img", "src=", "@import", "url("] {
        assert!(!page.contains(load), "the page loads something: {load}");
    }
    s.stop().await;
}

/// A real Prometheus (Debian's package) scrapes hookd every second; after known traffic, what
/// it has stored equals what was sent, and `promtool check metrics` finds nothing to fix.
#[tokio::test]
#[ignore = "needs Debian's prometheus (apt-get install prometheus); CI runs it"]
async fn a_real_prometheus_scrapes_what_was_sent() {
    let ok = Receiver::start().await;
    let failing = Receiver::start().await;
    failing.script((0..10).map(|_| (500, vec![])).collect());
    let s = TestServer::start_with(FAST).await;
    s.endpoint_to("n", &ok.url("/ok")).await;
    s.endpoint_to("n", &failing.url("/bad")).await;
    for _ in 0..5 {
        s.alert().await;
    }
    ok.wait_for(5, 10).await;
    failing.wait_for(5, 10).await;
    let store = &s.app.store;
    common::eventually_async(10, "attempts recorded", move || async move {
        store.stats().await.unwrap().attempts == 10
    })
    .await;

    // promtool on the exposition.
    let exposition = scrape(&s).await;
    let mut check = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package)");
    {
        use std::io::Write as _;
        check
            .stdin
            .take()
            .unwrap()
            .write_all(exposition.as_bytes())
            .unwrap();
    }
    let out = check.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {said}"
    );

    // Prometheus itself, on loopback.
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: hookd\n    static_configs:\n      - targets: ['{}']\n",
            s.addr
        ),
    )
    .unwrap();
    let mut prometheus = Prometheus(
        std::process::Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("prometheus (Debian's package)"),
    );
    // Prometheus's query API, over a plain HTTP/1.0 GET.
    let query = |q: &str| {
        use std::io::{Read as _, Write as _};
        let q = url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>();
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            stream,
            "GET /api/v1/query?query={q} HTTP/1.0\r\nHost: x\r\n\r\n"
        )
        .ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        let (_, body) = answer.split_once("\r\n\r\n")?;
        let v: Value = serde_json::from_str(body).ok()?;
        v["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|n| n.parse::<f64>().ok())
    };
    let mut seen = None;
    for _ in 0..300 {
        if query(r#"up{job="hookd"}"#) == Some(1.0)
            && query("hookd_notifications_total") == Some(10.0)
        {
            seen = Some(());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        seen.is_some(),
        "Prometheus scraped hookd (target up, the counters arrived)"
    );
    assert_eq!(
        query(r#"hookd_notifications_failed_total{reason="server_error"}"#),
        Some(5.0)
    );
    assert_eq!(query("hookd_notification_latency_seconds_count"), Some(5.0));
    assert_eq!(
        query(r#"hookd_http_requests_total{route="ingest_alert",status="202"}"#),
        Some(5.0)
    );
    assert_eq!(query(r#"hookd_endpoints{state="enabled"}"#), Some(2.0));
    assert_eq!(query("hookd_outbox_pending"), Some(5.0));
    let _ = prometheus.0.kill();
    s.stop().await;
}

/// The alerting rules the README gives are valid Prometheus rules.
#[test]
#[ignore = "needs Debian's prometheus (promtool); CI runs it"]
fn the_readme_alerting_rules_pass_promtool() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("# hookd.rules.yml")
        .expect("the rules are in the README");
    let rules = &readme[start..start + readme[start..].find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hookd.rules.yml");
    std::fs::write(&file, rules).unwrap();
    let out = std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("promtool");
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("SUCCESS: 3 rules found"), "{said}");
}

/// Kills Prometheus when the test ends, passed or not.
struct Prometheus(std::process::Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A lone write is a commit of its own (made on its caller's thread while the store is quiet);
/// writes that arrive together share commits (the writer's group commit): the commit-size
/// histogram shows both.
/// Two runtime threads, as on the smallest machine hookd serves from (on one, every write goes to
/// the writer thread).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lone_writes_commit_alone_and_writes_together_share_commits() {
    if common::postgres::server().is_some() {
        return; // the histograms are the embedded store's
    }
    let s = TestServer::start().await;
    let create = |name: String| {
        s.req("POST", ENDPOINTS).json(&serde_json::json!({
            "name": name, "url": "https://example.com/", "signingEnabled": true, "signingSecret": ""
        }))
    };
    let (c0, w0) = commits(&scrape(&s).await);
    for i in 0..10 {
        assert_eq!(
            create(format!("lone{i}")).send().await.status,
            StatusCode::OK
        );
    }
    let (c1, w1) = commits(&scrape(&s).await);
    // Background writes (a checkpoint, tokens' last use) are lone ones too.
    assert!(w1 - w0 >= 10.0, "{w0} -> {w1}");
    // A background write may queue beside a create now and then and share its commit.
    assert!(
        c1 - c0 >= w1 - w0 - 2.0,
        "{c0} -> {c1} commits of {w0} -> {w1} writes"
    );
    let tasks: Vec<_> = (0..64)
        .map(|i| tokio::spawn(create(format!("together{i}")).send()))
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().status, StatusCode::OK);
    }
    let (c2, w2) = commits(&scrape(&s).await);
    assert!(w2 - w1 >= 64.0, "{w1} -> {w2}");
    assert!(
        c2 - c1 < w2 - w1,
        "64 writes at once took {} commits",
        c2 - c1
    );
    let v = s
        .req("GET", &format!("{ENDPOINTS}?limit=200"))
        .send()
        .await
        .json();
    assert_eq!(v["endpoints"].as_array().unwrap().len(), 74);
    s.stop().await;
}

/// The streams of one HTTP/2 connection are concurrent requests: though one serving thread
/// serves them all, their writes are not committed on it one after another but share commits.
#[tokio::test]
async fn writes_on_one_http2_connection_share_commits() {
    use http_body_util::{BodyExt as _, Full};
    use hyper::body::Bytes;
    if common::postgres::server().is_some() {
        return; // the histograms are the embedded store's
    }
    let s = TestServer::start().await;
    let stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let create = |i: usize| {
        let mut sender = sender.clone();
        let req = hyper::Request::post(format!("http://{}{ENDPOINTS}", s.addr))
            .header("authorization", format!("Bearer {}", common::ADMIN_TOKEN))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(format!(
                r#"{{"name":"h2-{i}","url":"https://example.com/","signingEnabled":true,"signingSecret":""}}"#
            ))))
            .unwrap();
        async move {
            let resp = sender.send_request(req).await.unwrap();
            assert_eq!(resp.version(), hyper::Version::HTTP_2);
            let status = resp.status();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(status, StatusCode::OK, "{body:?}");
        }
    };
    // Quiet first: lone writes on this connection.
    for i in 0..10 {
        create(i).await;
    }
    let (c1, w1) = commits(&scrape(&s).await);
    let tasks: Vec<_> = (10..74).map(|i| tokio::spawn(create(i))).collect();
    for t in tasks {
        t.await.unwrap();
    }
    let (c2, w2) = commits(&scrape(&s).await);
    assert!(w2 - w1 >= 64.0, "{w1} -> {w2}");
    assert!(
        c2 - c1 < w2 - w1,
        "64 writes at once on one HTTP/2 connection took {} commits",
        c2 - c1
    );
    s.stop().await;
}
