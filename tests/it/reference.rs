//! hookd beside Alertmanager itself (Debian's `prometheus-alertmanager`, on loopback): one
//! Alertmanager sends a group of three alerts to its own Slack, PagerDuty and Discord
//! integrations and, by its webhook, to hookd, whose Slack, PagerDuty and Discord endpoints
//! render the very same group; everything lands on one local receiver. Alertmanager reaches
//! hookd over HTTPS (`tls_config.ca_file`: a private CA), as the README's example does. PagerDuty's `dedup_key`
//! and `event_action` must be Alertmanager's, and hookd's chat messages must say at least what
//! Alertmanager's default templates say. Both sides' bodies are written to `target/reference/`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyper::StatusCode;
use serde_json::{json, Value};

use crate::common::receiver::{Received, Receiver};
use crate::common::{raw_req, TestServer, ADMIN_TOKEN, ENDPOINTS};
use crate::formats::{slack_url, SLACK};

const ROUTING_KEY: &str = "R0123456789abcdef0123456789abcdef";
const ALERTNAME: &str = "ReferenceDown";
const JOB: &str = "node-exporter";
const INSTANCES: [&str; 3] = ["web-1:9100", "web-2:9100", "db-1:9100"];
/// Each integration: its name, where Alertmanager's own sends land, where hookd's land.
const PATHS: [(&str, &str, &str); 3] = [
    ("slack", "/am/slack", "/services/T00/B00/xxx"),
    ("pagerduty", "/am/pagerduty", "/v2/enqueue"),
    ("discord", "/am/discord", "/api/webhooks/123/abc"),
];
/// Alertmanager's webhook to the receiver: the notification hookd gets, as Alertmanager sent it.
const AM_WEBHOOK: &str = "/am/webhook";

fn summary(instance: &str) -> String {
    format!("Instance {instance} is down")
}

fn description(instance: &str) -> String {
    format!("{instance} of job {JOB} has answered no scrape for 1 minute.")
}

fn generator_url(instance: &str) -> String {
    let host = instance.split(':').next().unwrap();
    format!("http://prometheus.test:9090/graph?g0.expr=up%7Binstance%3D%22{host}%22%7D+%3D%3D+0&g0.tab=1")
}

/// The three alerts as Alertmanager's API v2 takes them: no `startsAt` (Alertmanager's clock
/// sets it, so `group_wait` holds the first notification until all three are in); resolved by
/// an `endsAt` of `ends_ms` (to the millisecond) when given.
fn alerts(ends_ms: Option<i64>) -> Value {
    INSTANCES
        .iter()
        .map(|i| {
            let mut a = json!({
                "labels": {"alertname": ALERTNAME, "instance": i, "job": JOB, "severity": "critical"},
                "annotations": {"summary": summary(i), "description": description(i)},
                "generatorURL": generator_url(i),
            });
            if let Some(ms) = ends_ms {
                let secs = hookd::time::rfc3339(ms);
                a["endsAt"] = format!("{}.{:03}Z", &secs[..19], ms.rem_euclid(1000)).into();
            }
            a
        })
        .collect()
}

/// Alertmanager's process, killed when the test ends; its log is printed if the test failed.
struct Alertmanager {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("--- Alertmanager's log ---\n{log}");
        }
    }
}

impl Alertmanager {
    /// Starts it on a free loopback port, with no clustering, routing every alert to one
    /// receiver with the three integrations aimed at `rx` and webhooks to hookd (HTTPS, trusting
    /// `ca_file`) and to `rx`.
    async fn start(rx: &Receiver, hookd: &TestServer, ca_file: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // JSON is YAML: the config is written as JSON.
        let config = json!({
            "global": {"resolve_timeout": "1m"},
            "route": {"receiver": "all", "group_by": ["alertname"], "group_wait": "1s",
                      "group_interval": "1s", "repeat_interval": "1h"},
            "receivers": [{
                "name": "all",
                "slack_configs": [{"api_url": rx.url("/am/slack"), "send_resolved": true}],
                "pagerduty_configs": [{"routing_key": ROUTING_KEY, "url": rx.url("/am/pagerduty"),
                                       "send_resolved": true}],
                "discord_configs": [{"webhook_url": rx.url("/am/discord"), "send_resolved": true}],
                "webhook_configs": [
                    {"url": format!("https://{}/api/v1/alerting/alertmanager", hookd.addr),
                     "send_resolved": true,
                     "http_config": {"authorization": {"credentials": ADMIN_TOKEN},
                                     "tls_config": {"ca_file": ca_file}}},
                    {"url": rx.url(AM_WEBHOOK), "send_resolved": true},
                ],
            }],
        });
        let file = dir.path().join("alertmanager.yml");
        std::fs::write(&file, serde_json::to_string_pretty(&config).unwrap()).unwrap();
        let log = dir.path().join("alertmanager.log");
        let child = Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--web.external-url=http://127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("prometheus-alertmanager (Debian's package prometheus-alertmanager)");
        let am = Self {
            child,
            addr: ([127, 0, 0, 1], port).into(),
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if tokio::net::TcpStream::connect(am.addr).await.is_ok()
                && raw_req(am.addr, "GET", "/-/ready")
                    .no_auth()
                    .send()
                    .await
                    .status
                    == StatusCode::OK
            {
                return am;
            }
            assert!(Instant::now() < deadline, "Alertmanager ready within 10 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn external_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn post(&self, alerts: &Value) {
        let r = raw_req(self.addr, "POST", "/api/v2/alerts")
            .no_auth()
            .json(alerts)
            .send()
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
}

/// Waits until each of `paths` has a request on `rx` past the first `from`; returns the first
/// of each, in the order of `paths`.
async fn wait_paths(rx: &Receiver, from: usize, paths: &[&str], secs: u64) -> Vec<Received> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let got = rx.received.lock().unwrap()[from..].to_vec();
        let first: Vec<Option<&Received>> = paths
            .iter()
            .map(|p| got.iter().find(|r| r.path == *p))
            .collect();
        if first.iter().all(Option::is_some) {
            return first.into_iter().flatten().cloned().collect();
        }
        let missing: Vec<&&str> = paths
            .iter()
            .zip(&first)
            .filter(|(_, f)| f.is_none())
            .map(|(p, _)| p)
            .collect();
        assert!(
            Instant::now() < deadline,
            "within {secs} s nothing came to {missing:?}; came: {:?}",
            got.iter().map(|r| &r.path).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every string in `v`, a line each, as a person reads it: Markdown's backslash escapes, the
/// zero-width spaces after `@` and Slack's `&amp;` `&lt;` `&gt;` taken out.
fn text_of(v: &Value) -> String {
    fn collect(v: &Value, out: &mut String) {
        match v {
            Value::String(s) => {
                out.push_str(s);
                out.push('\n');
            }
            Value::Array(a) => a.iter().for_each(|x| collect(x, out)),
            Value::Object(m) => m.values().for_each(|x| collect(x, out)),
            _ => {}
        }
    }
    let mut raw = String::new();
    collect(v, &mut raw);
    let mut out = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek().is_some_and(char::is_ascii_punctuation) => {
                out.push(chars.next().unwrap());
            }
            '\u{200B}' => {}
            c => out.push(c),
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The key paths of `v` (`a.b`, arrays as `[]`), for the side-by-side summary.
fn key_paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(p.clone());
                key_paths(x, &p, out);
            }
        }
        Value::Array(a) => a
            .iter()
            .for_each(|x| key_paths(x, &format!("{prefix}[]"), out)),
        _ => {}
    }
}

/// What a reader needs of the group, as `(text, required)`: required ones hookd must always carry.
fn facts(status: &str, external_url: &str) -> Vec<(String, bool)> {
    let mut out = vec![
        (ALERTNAME.to_owned(), true),
        (status.to_uppercase(), true),
        (external_url.to_owned(), true),
        (JOB.to_owned(), false),
        ("critical".to_owned(), false),
    ];
    for i in INSTANCES {
        out.push((summary(i), true));
        out.push((generator_url(i), true));
        out.push((description(i), false));
        out.push((i.to_owned(), false));
    }
    out
}

/// The facts Alertmanager's body states and hookd's does not; with `required`, also the
/// required facts hookd's does not state, whether Alertmanager's does or not.
fn hookd_lacks(am: &Value, hookd: &Value, facts: &[(String, bool)], required: bool) -> Vec<String> {
    let (am, hookd) = (text_of(am), text_of(hookd));
    facts
        .iter()
        .filter(|(f, must)| {
            (am.contains(f.as_str()) || (required && *must)) && !hookd.contains(f.as_str())
        })
        .map(|(f, _)| f.clone())
        .collect()
}

/// Writes both sides' bodies of one integration to `dir` and prints what differs.
fn record(dir: &Path, integration: &str, status: &str, am: &Received, hookd: &Received) {
    let (a, h) = (am.json(), hookd.json());
    for (side, v) in [("alertmanager", &a), ("hookd", &h)] {
        let file = dir.join(format!("{integration}-{status}-{side}.json"));
        std::fs::write(file, serde_json::to_string_pretty(v).unwrap()).unwrap();
    }
    let (mut ka, mut kh) = (BTreeSet::new(), BTreeSet::new());
    key_paths(&a, "", &mut ka);
    key_paths(&h, "", &mut kh);
    // The fields only one side has, each named once (not with everything under it).
    let only = |x: &BTreeSet<String>, y: &BTreeSet<String>| -> Vec<String> {
        let diff: BTreeSet<&String> = x.difference(y).collect();
        diff.iter()
            .filter(|p| {
                !diff.iter().any(|q| {
                    p.len() > q.len()
                        && p.starts_with(q.as_str())
                        && matches!(p.as_bytes()[q.len()], b'.' | b'[')
                })
            })
            .map(|p| (*p).clone())
            .collect()
    };
    let (only_am, only_hookd) = (only(&ka, &kh), only(&kh, &ka));
    eprintln!(
        "{integration:>9} {status:<8} alertmanager {:>5} B | hookd {:>5} B | only alertmanager: {only_am:?} | only hookd: {only_hookd:?}",
        am.body.len(),
        hookd.body.len()
    );
}

/// The PagerDuty events of one status: the same key and action as Alertmanager's.
fn check_pagerduty(am: &Value, hookd: &Value, action: &str, group_key: &str) {
    let digest = ring::digest::digest(&ring::digest::SHA256, group_key.as_bytes());
    let expected: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        am["dedup_key"],
        expected.as_str(),
        "Alertmanager's key: sha256 of {group_key}"
    );
    assert_eq!(
        hookd["dedup_key"], am["dedup_key"],
        "hookd's dedup_key is Alertmanager's ({action})"
    );
    assert_eq!(am["event_action"], action);
    assert_eq!(hookd["event_action"], action);
    assert_eq!(am["routing_key"], ROUTING_KEY);
    assert_eq!(hookd["routing_key"], am["routing_key"]);
    hookd::format::pagerduty::within_limits(hookd.to_string().as_bytes()).unwrap();
    if action == "trigger" {
        let p = &hookd["payload"];
        let summary = p["summary"].as_str().unwrap();
        assert!(
            summary.chars().count() <= 1024 && summary.contains(ALERTNAME),
            "{summary}"
        );
        assert!(
            matches!(
                p["severity"].as_str(),
                Some("critical" | "error" | "warning" | "info")
            ),
            "{p}"
        );
    }
}

#[tokio::test]
#[ignore = "needs Debian's prometheus-alertmanager; CI installs it"]
async fn hookd_renders_what_alertmanager_itself_sends() {
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(30), compare())
        .await
        .expect("the comparison ends within 30 s");
    eprintln!(
        "reference comparison: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

async fn compare() {
    // hookd, its three endpoints on the receiver under their real host names.
    let rx = Receiver::start().await;
    let config = format!(
        "{SLACK}\"events.pagerduty.com\" = \"127.0.0.1\"\n\"discord.com\" = \"127.0.0.1\"\n"
    );
    let certs = tempfile::tempdir().unwrap();
    let pki = crate::common::pki::Pki::new(certs.path(), "hookd");
    let tls = crate::common::pki::tls_toml(&pki.server("server"), None);
    let mut s = TestServer::start_with(&format!("{config}{tls}")).await;
    s.client_tls = Some(pki.client(None));
    let pinned = |host: &str, path: &str| rx.url(path).replacen("127.0.0.1", host, 1);
    for (format, url, options) in [
        ("slack", slack_url(&rx), None),
        (
            "pagerduty",
            pinned("events.pagerduty.com", PATHS[1].2),
            Some(json!({"routingKey": ROUTING_KEY})),
        ),
        ("discord", pinned("discord.com", PATHS[2].2), None),
    ] {
        let mut body =
            json!({"name": format, "url": url, "signingEnabled": false, "signingSecret": ""});
        if let Some(o) = options {
            body["formatOptions"] = o;
        }
        let r = s.req("POST", ENDPOINTS).json(&body).send().await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(
            r.json()["endpoint"]["format"],
            format,
            "chosen from the host"
        );
    }
    let am = Alertmanager::start(&rx, &s, &pki.ca_file("hookd")).await;
    let external = am.external_url();
    let mut paths: Vec<&str> = PATHS.iter().flat_map(|(_, a, h)| [*a, *h]).collect();
    paths.push(AM_WEBHOOK);

    // Firing: three alerts in one group; then the same three resolved.
    am.post(&alerts(None)).await;
    let firing = wait_paths(&rx, 0, &paths, 10).await;
    let from = rx.count();
    am.post(&alerts(Some(hookd::time::now_ms()))).await;
    let resolved = wait_paths(&rx, from, &paths, 10).await;

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/reference");
    std::fs::create_dir_all(&dir).unwrap();
    eprintln!(
        "Alertmanager 0.25 (default templates) and hookd, the same group of {} alerts:",
        INSTANCES.len()
    );
    for (status, got) in [("firing", &firing), ("resolved", &resolved)] {
        let webhook = got.last().unwrap().json();
        std::fs::write(
            dir.join(format!("webhook-{status}-alertmanager.json")),
            serde_json::to_string_pretty(&webhook).unwrap(),
        )
        .unwrap();
        assert_eq!(webhook["status"], status);
        assert_eq!(webhook["alerts"].as_array().unwrap().len(), INSTANCES.len());
        let group_key = webhook["groupKey"].as_str().unwrap();
        let facts = facts(status, &external);
        for (n, (integration, _, _)) in PATHS.iter().enumerate() {
            let (a, h) = (&got[2 * n], &got[2 * n + 1]);
            record(&dir, integration, status, a, h);
            let (a, h) = (a.json(), h.json());
            match *integration {
                "pagerduty" => {
                    let action = if status == "firing" {
                        "trigger"
                    } else {
                        "resolve"
                    };
                    check_pagerduty(&a, &h, action, group_key);
                    // A resolve's payload is optional for PagerDuty (hookd sends none).
                    if status == "firing" {
                        let lacks = hookd_lacks(&a, &h, &facts, false);
                        assert!(
                            lacks.is_empty(),
                            "hookd's trigger lacks {lacks:?}:\n{h:#}\nAlertmanager's:\n{a:#}"
                        );
                    }
                }
                _ => {
                    let lacks = hookd_lacks(&a, &h, &facts, true);
                    assert!(lacks.is_empty(), "hookd's {integration} message lacks {lacks:?}:\n{h:#}\nAlertmanager's:\n{a:#}");
                }
            }
            if *integration == "discord" {
                // Alertmanager's own start times (nanoseconds), read: to the second.
                for (e, alert) in h["embeds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .zip(webhook["alerts"].as_array().unwrap())
                {
                    let starts = alert["startsAt"].as_str().unwrap();
                    assert_eq!(
                        e["timestamp"].as_str(),
                        Some(format!("{}Z", &starts[..19]).as_str()),
                        "{starts}"
                    );
                }
            }
        }
    }
    // Alertmanager's own sends, where a reader sees them: the status and name in a title.
    let title = |v: &Value, k: &str| v[k][0]["title"].as_str().unwrap_or_default().to_owned();
    assert!(title(&firing[0].json(), "attachments").starts_with(&format!("[FIRING:3] {ALERTNAME}")));
    assert!(title(&resolved[4].json(), "embeds").starts_with(&format!("[RESOLVED] {ALERTNAME}")));
    eprintln!("bodies in {}", dir.display());
    drop(am);
    s.stop().await;
}
