//! Endpoint formats end to end: a Slack webhook gets Slack messages (chosen from its host,
//! signed over the body sent), Slack's final refusals are not retried, a PATCH of the format
//! applies to the next delivery, test sends are sample alerts; and every rendered Slack message
//! passes Slack's own SDK's validators.

use std::time::Duration;

use hyper::StatusCode;
use serde_json::{json, Value};

use crate::common::receiver::Receiver;
use crate::common::{alertmanager_group, TestServer, ENDPOINTS};

/// Receivers on loopback; `hooks.slack.com` pinned to it; retries after 1 s.
pub(crate) const SLACK: &str = "[url_policy]\nallow_networks = [\"127.0.0.0/8\"]\n\
    [delivery]\nretry_schedule_secs = [1, 1]\njitter_percent = 0\npoll_interval_ms = 50\n\
    [delivery.hosts]\n\"hooks.slack.com\" = \"127.0.0.1\"\n";

pub(crate) fn slack_url(rx: &Receiver) -> String {
    let local = rx.url("/services/T00/B00/xxx");
    local.replacen("127.0.0.1", "hooks.slack.com", 1)
}

async fn alertmanager(s: &TestServer, group: &Value) {
    let r = s
        .req("POST", "/api/v1/alerting/alertmanager")
        .json(group)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
}

#[tokio::test]
async fn a_slack_webhook_gets_slack_messages_and_its_refusals_are_final() {
    let rx = Receiver::start().await;
    let s = TestServer::start_with(SLACK).await;
    let body = json!({"name": "Slack Webhook", "url": slack_url(&rx), "signingEnabled": true, "signingSecret": "my-secret-key"});
    let r = s.req("POST", ENDPOINTS).json(&body).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let e = r.json()["endpoint"].clone();
    assert_eq!(e["format"], "slack", "chosen from the host");
    let id = e["id"].as_str().unwrap().to_owned();

    // A group of three: one Slack message, signed over the body sent.
    alertmanager(&s, &alertmanager_group("firing", 3, 0)).await;
    let got = rx.wait_for(1, 10).await;
    let m = got[0].json();
    assert_eq!(
        m["blocks"][0]["text"]["text"],
        "🔥 FIRING: InstanceDown (3)"
    );
    assert_eq!(m["text"], "[FIRING (3)] InstanceDown (critical)");
    assert!(m.get("data").is_none());
    assert_eq!(got[0].signatures_by(b"my-secret-key"), 1);

    // Slack's 400 (no_text, invalid_payload) is final: one attempt, no retry.
    rx.script(vec![(400, vec![])]);
    alertmanager(&s, &alertmanager_group("resolved", 1, 0)).await;
    let attempts = s.wait_attempts(&id, 2, 10).await;
    assert_eq!(attempts[0]["statusCode"], 400, "{attempts:?}");
    assert_eq!(attempts[0]["error"], "refused");
    assert_eq!(attempts[0]["outcome"], "failed");
    assert_eq!(attempts[0]["responseBody"], "answer 400");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(s.attempts(&id).await.len(), 2, "not retried");
    assert_eq!(rx.count(), 2);

    // The format is read at send time: after a PATCH the next alert is the envelope.
    let r = s
        .req("PATCH", &format!("{ENDPOINTS}/{id}"))
        .json(&json!({"format": "standard-webhooks"}))
        .send()
        .await;
    assert_eq!(r.json()["endpoint"]["format"], "standard-webhooks");
    alertmanager(&s, &alertmanager_group("firing", 2, 0)).await;
    let got = rx.wait_for(3, 10).await;
    assert_eq!(got[2].json()["type"], "alertmanager.firing");
    assert_eq!(got[2].json()["data"]["alerts"].as_array().unwrap().len(), 2);

    // A test send in the Slack format is a sample alert, as a Slack message.
    s.req("PATCH", &format!("{ENDPOINTS}/{id}"))
        .json(&json!({"format": "slack"}))
        .send()
        .await;
    let r = s
        .req("POST", &format!("{ENDPOINTS}/{id}/test"))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let got = rx.wait_for(4, 10).await;
    let m = got[3].json();
    assert_eq!(m["blocks"][0]["text"]["text"], "🔥 FIRING: HookdTest");
    s.stop().await;
}

#[tokio::test]
async fn an_explicit_format_wins_and_an_unknown_one_is_named() {
    let s = TestServer::start().await;
    let mut body = json!({"name": "n", "url": "https://hooks.slack.com/services/T/B/x", "signingEnabled": true, "signingSecret": "", "format": "standard-webhooks"});
    let r = s.req("POST", ENDPOINTS).json(&body).send().await;
    assert_eq!(r.json()["endpoint"]["format"], "standard-webhooks");
    body["url"] = "https://receiver.example/hook".into();
    body.as_object_mut().unwrap().remove("format");
    let r = s.req("POST", ENDPOINTS).json(&body).send().await;
    assert_eq!(r.json()["endpoint"]["format"], "standard-webhooks");
    for bad in [json!("teams-legacy"), json!(7), json!(null), json!("Slack")] {
        body["format"] = bad;
        let r = s.req("POST", ENDPOINTS).json(&body).send().await;
        assert_eq!(r.error_fields(), ["format"], "{}", r.text());
    }
    s.stop().await;
}

/// Hostile and large inputs for every renderer: groups of 1 and 1,000 alerts, 100 KB
/// annotations, emoji, combining marks, right-to-left text, markup characters, mentions.
pub fn hostile_events() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let nasty = "<!channel> <@U123> <https://evil.example|click> & *bold* _it_ ~s~ `code` | \u{202E}txet\u{202C} e\u{301}\u{301}\u{301} 🔥👩‍👩‍👧 مرحبا";
    for (n, description) in [
        (1, "x".repeat(100_000)),
        (1000, String::new()),
        (150, nasty.repeat(20)),
        (60, "🔥".repeat(5000)),
    ] {
        for status in ["firing", "resolved"] {
            let mut g = alertmanager_group(status, n, 0);
            for a in g["alerts"].as_array_mut().unwrap() {
                a["annotations"]["description"] = description.clone().into();
                a["annotations"]["summary"] = format!("{nasty} summary").into();
                a["labels"]["note"] = nasty.into();
            }
            g["commonLabels"]["team"] = nasty.into();
            if n == 150 {
                g["commonLabels"]["alertname"] = nasty.repeat(10).into();
            }
            out.push((format!("alertmanager.{status}"), g.to_string()));
        }
    }
    out.push(("disk.full".into(), json!({"summary": nasty, "description": "y".repeat(100_000), "severity": "critical", "labels": {"host": nasty}}).to_string()));
    out.push((
        "build.failed".into(),
        json!({"job": nasty.repeat(500)}).to_string(),
    ));
    out.push(("empty".into(), "{}".into()));
    out.push((
        "alertmanager.firing".into(),
        json!({"alerts": [], "status": "firing"}).to_string(),
    ));
    out
}

/// Every format's body for every hostile event: within the target's limits, no mention left.
#[test]
fn every_format_keeps_its_limits_on_hostile_input() {
    for (event_type, data) in hostile_events() {
        let event = hookd::format::Event {
            id: "msg_1",
            event_type: &event_type,
            created_at_ms: 1_764_410_400_000,
            data: &data,
        };
        for format in hookd::model::Format::ALL {
            let options = hookd::format::Options {
                routing_key: Some("R0123456789abcdef0123456789abcdef"),
                severity: None,
            };
            let body = hookd::format::render(&format, &event, &options)
                .unwrap()
                .body;
            let checked = hookd::format::within_limits(&format, &body);
            assert!(checked.is_ok(), "{format:?} {event_type}: {checked:?}");
        }
    }
}

#[tokio::test]
async fn a_discord_webhook_gets_embeds_and_its_429_body_is_honoured() {
    let rx = Receiver::start().await;
    let config = SLACK.replace("hooks.slack.com", "discord.com");
    let s = TestServer::start_with(&config).await;
    let url = rx
        .url("/api/webhooks/123/abc")
        .replacen("127.0.0.1", "discord.com", 1);
    let r = s
        .req("POST", ENDPOINTS)
        .json(&json!({"name": "Discord", "url": url, "signingEnabled": false, "signingSecret": ""}))
        .send()
        .await;
    assert_eq!(r.json()["endpoint"]["format"], "discord", "{}", r.text());
    let id = r.json()["endpoint"]["id"].as_str().unwrap().to_owned();
    // Rate limited, the wait in the JSON body (no Retry-After header): retried after it.
    rx.script(vec![(
        429,
        vec![(
            "x-test-body",
            r#"{"message": "You are being rate limited.", "retry_after": 2.2, "global": false}"#
                .to_owned(),
        )],
    )]);
    alertmanager(&s, &alertmanager_group("firing", 2, 0)).await;
    let attempts = s.wait_attempts(&id, 1, 10).await;
    assert_eq!(attempts[0]["error"], "retry_after=3", "{attempts:?}");
    let next = hookd::time::parse_rfc3339(attempts[0]["nextAttemptAt"].as_str().unwrap()).unwrap();
    let at = hookd::time::parse_rfc3339(attempts[0]["timestamp"].as_str().unwrap()).unwrap();
    assert!(next - at >= 2_000, "waited {} ms", next - at);
    let got = rx.wait_for(2, 15).await;
    let m = got[1].json();
    assert!(
        m["content"]
            .as_str()
            .unwrap()
            .starts_with("🔥 **FIRING**: InstanceDown (2)"),
        "{m}"
    );
    assert_eq!(m["embeds"].as_array().unwrap().len(), 2);
    assert_eq!(m["allowed_mentions"], json!({"parse": []}));
    s.stop().await;
}

#[tokio::test]
async fn pagerduty_needs_its_key_and_pairs_trigger_with_resolve() {
    let rx = Receiver::start().await;
    let config = SLACK.replace("hooks.slack.com", "events.pagerduty.com");
    let s = TestServer::start_with(&config).await;
    let url = rx
        .url("/v2/enqueue")
        .replacen("127.0.0.1", "events.pagerduty.com", 1);
    let mut body =
        json!({"name": "PagerDuty", "url": url, "signingEnabled": false, "signingSecret": ""});
    let r = s.req("POST", ENDPOINTS).json(&body).send().await;
    assert_eq!(
        r.error_fields(),
        ["formatOptions.routingKey"],
        "{}",
        r.text()
    );
    body["formatOptions"] =
        json!({"routingKey": "R0123456789abcdef0123456789abcdef", "severity": "loud"});
    let r = s.req("POST", ENDPOINTS).json(&body).send().await;
    assert_eq!(r.error_fields(), ["formatOptions.severity"], "{}", r.text());
    body["formatOptions"]["severity"] = "warning".into();
    let r = s.req("POST", ENDPOINTS).json(&body).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let e = r.json()["endpoint"].clone();
    assert_eq!(e["format"], "pagerduty");
    assert_eq!(
        e["formatOptions"],
        json!({"routingKey": "****cdef", "severity": "warning"})
    );
    assert!(!r.text().contains("R0123456789"), "the key is never shown");
    let id = e["id"].as_str().unwrap().to_owned();

    let group = alertmanager_group("firing", 2, 0);
    alertmanager(&s, &group).await;
    let mut resolved = group.clone();
    resolved["status"] = "resolved".into();
    alertmanager(&s, &resolved).await;
    let got = rx.wait_for(2, 10).await;
    let (t, r) = (got[0].json(), got[1].json());
    assert_eq!(t["routing_key"], "R0123456789abcdef0123456789abcdef");
    assert_eq!(t["event_action"], "trigger");
    assert_eq!(r["event_action"], "resolve");
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        group["groupKey"].as_str().unwrap().as_bytes(),
    );
    let alertmanagers: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(t["dedup_key"], alertmanagers.as_str());
    assert_eq!(r["dedup_key"], t["dedup_key"]);
    assert_eq!(
        t["payload"]["severity"], "critical",
        "from the severity label"
    );
    assert!(t["payload"]["summary"]
        .as_str()
        .unwrap()
        .starts_with("[FIRING:2] InstanceDown (critical): Instance node-0000"));

    // PATCHes are checked against the format the endpoint will have.
    let path = format!("{ENDPOINTS}/{id}");
    let r = s
        .req("PATCH", &path)
        .json(&json!({"format": "slack"}))
        .send()
        .await;
    assert_eq!(
        r.json()["endpoint"]["formatOptions"],
        json!({}),
        "options dropped with the format"
    );
    let r = s
        .req("PATCH", &path)
        .json(&json!({"format": "pagerduty"}))
        .send()
        .await;
    assert_eq!(
        r.error_fields(),
        ["formatOptions.routingKey"],
        "{}",
        r.text()
    );
    let r = s
        .req("PATCH", &path)
        .json(&json!({"formatOptions": {"routingKey": "k"}}))
        .send()
        .await;
    assert_eq!(r.error_fields(), ["formatOptions"], "{}", r.text());
    let r = s
        .req("PATCH", &path)
        .json(&json!({"format": "pagerduty", "formatOptions": {"routingKey": "other-key-0001"}}))
        .send()
        .await;
    assert_eq!(
        r.json()["endpoint"]["formatOptions"],
        json!({"routingKey": "****0001"}),
        "{}",
        r.text()
    );
    s.stop().await;
}

#[tokio::test]
async fn a_preview_shows_the_exact_request_with_secrets_masked() {
    let s = TestServer::start().await;
    let body = json!({"name": "Slack", "url": "https://hooks.slack.com/services/T00/B00/xxx",
        "signingEnabled": true, "signingSecret": "my-secret-key", "headers": {"X-Api-Key": "k-0123456789"}});
    let r = s.req("POST", ENDPOINTS).json(&body).send().await;
    let id = r.json()["endpoint"]["id"].as_str().unwrap().to_owned();
    let path = format!("{ENDPOINTS}/{id}/preview");
    // No body: a sample group.
    let r = s.req("POST", &path).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let req = r.json()["request"].clone();
    assert_eq!(req["url"], "https://hooks.slack.com/services/T00/B00/xxx");
    assert_eq!(req["format"], "slack");
    assert_eq!(req["headers"]["webhook-signature"], "v1,****");
    assert_eq!(req["headers"]["X-Api-Key"], "****6789");
    assert!(!r.text().contains("k-0123456789") && !r.text().contains("my-secret-key"));
    let sent: Value = serde_json::from_str(req["body"].as_str().unwrap()).unwrap();
    assert_eq!(sent["blocks"][0]["text"]["text"], "🔥 FIRING: HookdTest");
    // An Alertmanager group and a native alert, as the alert routes take them.
    let r = s
        .req("POST", &path)
        .json(&alertmanager_group("resolved", 4, 0))
        .send()
        .await;
    let sent: Value = serde_json::from_str(r.json()["request"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        sent["blocks"][0]["text"]["text"],
        "✅ RESOLVED: InstanceDown (4)"
    );
    let r = s
        .req("POST", &path)
        .json(&json!({"eventType": "disk.full", "payload": {"summary": "disk full on db1"}}))
        .send()
        .await;
    assert!(r.json()["request"]["body"]
        .as_str()
        .unwrap()
        .contains("disk full on db1"));
    // Errors: a bad alert, an unknown endpoint, the wrong scope, no preview of nothing.
    let r = s
        .req("POST", &path)
        .json(&json!({"eventType": ""}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    s.req("POST", &path)
        .body_str("{nope")
        .send()
        .await
        .problem(400);
    s.req("POST", &format!("{ENDPOINTS}/wh-nope/preview"))
        .send()
        .await
        .problem(404);
    let alerts_only = s.token("alerts", &["alerts:write"]).await;
    s.req("POST", &path)
        .token(&alerts_only)
        .send()
        .await
        .problem(403);
    let reader = s.token("reader", &["endpoints:read"]).await;
    assert_eq!(
        s.req("POST", &path).token(&reader).send().await.status,
        StatusCode::OK
    );
    // PagerDuty: the routing key in the body is masked too.
    let body = json!({"name": "PD", "url": "https://events.pagerduty.com/v2/enqueue", "signingEnabled": false,
        "signingSecret": "", "formatOptions": {"routingKey": "R0123456789abcdef"}});
    let r = s.req("POST", ENDPOINTS).json(&body).send().await;
    let pd = r.json()["endpoint"]["id"].as_str().unwrap().to_owned();
    let r = s
        .req("POST", &format!("{ENDPOINTS}/{pd}/preview"))
        .send()
        .await;
    let sent: Value = serde_json::from_str(r.json()["request"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(sent["routing_key"], "****cdef");
    assert!(
        r.json()["request"]["headers"]
            .get("webhook-signature")
            .is_none(),
        "signing is off"
    );
    s.stop().await;
}

#[test]
fn format_render_prints_the_body_offline() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alert.json");
    std::fs::write(&file, alertmanager_group("firing", 3, 0).to_string()).unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_hookd"))
            .args(args)
            .output()
            .unwrap()
    };
    let path = file.to_str().unwrap();
    let out = run(&["format", "render", "--format", "slack", "--payload", path]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        m["blocks"][0]["text"]["text"],
        "🔥 FIRING: InstanceDown (3)"
    );
    let out = run(&[
        "format",
        "render",
        "--format",
        "pagerduty",
        "--payload",
        path,
        "--options",
        r#"{"routingKey":"R0123"}"#,
    ]);
    let m: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (m["routing_key"].as_str(), m["event_action"].as_str()),
        (Some("R0123"), Some("trigger"))
    );
    for (args, says) in [
        (
            vec!["--format", "teams-legacy", "--payload", path],
            "--format: must be one of standard-webhooks, slack",
        ),
        (
            vec!["--format", "slack", "--payload", "/nonexistent/alert.json"],
            "/nonexistent/alert.json",
        ),
        (
            vec![
                "--format",
                "pagerduty",
                "--payload",
                path,
                "--options",
                r#"{"severity":"loud"}"#,
            ],
            "formatOptions.severity: must be one of",
        ),
        (
            vec!["--format", "pagerduty", "--payload", path, "--options", "{"],
            "--options",
        ),
    ] {
        let mut all = vec!["format", "render"];
        all.extend(args);
        let out = run(&all);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err}");
    }
    std::fs::write(&file, r#"{"eventType": "", "payload": {}}"#).unwrap();
    let out = run(&["format", "render", "--format", "slack", "--payload", path]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("eventType"),
        "names the field"
    );
}

/// Every event of `events` rendered in `format`, one body a line, in a file of `dir`.
fn rendered(
    dir: &std::path::Path,
    format: hookd::model::Format,
    events: &[(String, String)],
) -> std::path::PathBuf {
    let file = dir.join(format!("{}.jsonl", format.as_str()));
    let mut lines = String::new();
    for (event_type, data) in events {
        let out = hookd::format::render(
            &format,
            &hookd::format::Event {
                id: "msg_1",
                event_type,
                created_at_ms: 1_764_410_400_000,
                data,
            },
            &hookd::format::Options::default(),
        )
        .unwrap();
        lines.push_str(std::str::from_utf8(&out.body).unwrap());
        lines.push('\n');
    }
    std::fs::write(&file, lines).unwrap();
    file
}

/// Runs a Python checker of `tests/` on `args`; it must exit 0 and print `"ok": true`.
async fn python_check(script: &str, args: Vec<std::ffi::OsString>) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("tests").join(script);
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(script)
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("\"ok\": true"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
#[ignore = "needs PyPI's slack-sdk (pip install slack-sdk); CI runs it"]
async fn every_slack_message_passes_slack_sdk_validation() {
    let dir = tempfile::tempdir().unwrap();
    let file = rendered(dir.path(), hookd::model::Format::Slack, &hostile_events());
    python_check("slack_validate.py", vec![file.into()]).await;
}

#[tokio::test]
#[ignore = "needs PyPI's discord.py (pip install discord.py); CI runs it"]
async fn every_discord_message_loads_in_discord_py_within_its_limits() {
    let dir = tempfile::tempdir().unwrap();
    let file = rendered(dir.path(), hookd::model::Format::Discord, &hostile_events());
    python_check("discord_validate.py", vec![file.into()]).await;
}

#[tokio::test]
#[ignore = "needs npm's adaptivecards in target/npm (.ci/run installs it), Debian's chromium and Python's playwright"]
async fn every_teams_card_parses_validates_and_renders_with_adaptivecards() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = root.join("target/npm/node_modules/adaptivecards/dist/adaptivecards.min.js");
    assert!(
        lib.exists(),
        "npm's adaptivecards is not installed: (mkdir -p target/npm && cd target/npm && npm install adaptivecards@3)"
    );
    // A firing and a resolved group first: the screenshot shows those two.
    let mut events = vec![
        (
            "alertmanager.firing".to_owned(),
            alertmanager_group("firing", 3, 0).to_string(),
        ),
        (
            "alertmanager.resolved".to_owned(),
            alertmanager_group("resolved", 3, 0).to_string(),
        ),
    ];
    events.extend(hostile_events());
    let dir = tempfile::tempdir().unwrap();
    let file = rendered(dir.path(), hookd::model::Format::Teams, &events);
    let shot = root.join("target/teams-cards.png");
    python_check(
        "teams_validate.py",
        vec![lib.into(), file.into(), shot.into()],
    )
    .await;
}
