//! The transformer as hookd calls it.

use serde_json::{json, Value};

use super::*;
use crate::render::{MAX_MESSAGE, MAX_TITLE};
use crate::text::CUT;

fn event(event_type: &str, payload: &str) -> Event {
    Event {
        id: "msg_2Vw7s0bq5RkEcEbPp1PZxr9s".into(),
        event_type: event_type.into(),
        timestamp: "2026-11-30T08:00:00Z".into(),
        payload: payload.into(),
        endpoint_name: "phone".into(),
    }
}

/// The body sent for `payload`, checked to be what ntfy takes.
fn send(event_type: &str, payload: &str, settings: &str) -> Value {
    let r = Ntfy::transform(event(event_type, payload), settings.into())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.content_type, "application/json");
    assert!(r.headers.is_empty());
    let v: Value = serde_json::from_slice(&r.body).expect("the body is JSON");
    let title = v["title"].as_str().expect("a title");
    let message = v["message"].as_str().expect("a message");
    assert!(!title.is_empty() && title.len() <= MAX_TITLE, "{title}");
    assert!(
        !message.is_empty() && message.len() <= MAX_MESSAGE,
        "{}",
        message.len()
    );
    assert!((1..=5).contains(&v["priority"].as_u64().expect("a priority")));
    assert!(v["tags"].is_array());
    assert!(v.get("actions").map_or(0, |a| a.as_array().unwrap().len()) <= 3);
    v
}

fn alert(status: &str, instance: &str, summary: &str) -> Value {
    json!({
        "status": status,
        "labels": {"alertname": "InstanceDown", "job": "node", "severity": "critical", "instance": instance},
        "annotations": {"summary": summary, "description": format!("{instance} has been down for 5 minutes")},
        "startsAt": "2026-11-30T07:55:00.123Z",
        "endsAt": if status == "resolved" { "2026-11-30T08:05:00Z" } else { "0001-01-01T00:00:00Z" },
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up+%3D%3D+0",
        "fingerprint": "c4ca4238a0b92382"
    })
}

fn group(status: &str, alerts: Vec<Value>) -> String {
    json!({
        "version": "4",
        "status": status,
        "receiver": "hookd",
        "groupKey": "{}:{alertname=\"InstanceDown\"}",
        "truncatedAlerts": 0,
        "groupLabels": {"alertname": "InstanceDown"},
        "commonLabels": {"alertname": "InstanceDown", "job": "node", "severity": "critical"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": alerts
    })
    .to_string()
}

#[test]
fn a_firing_group() {
    let payload = group(
        "firing",
        vec![
            alert("firing", "a:9100", "Instance a:9100 down"),
            alert("firing", "b:9100", "Instance b:9100 down"),
            alert("firing", "c:9100", "Instance c:9100 down"),
        ],
    );
    let v = send("alertmanager.firing", &payload, "topic=alerts");
    assert_eq!(v["topic"], "alerts");
    assert_eq!(v["title"], "[FIRING:3] InstanceDown");
    assert_eq!(v["tags"], json!(["rotating_light", "critical"]));
    assert_eq!(v["priority"], 5);
    assert_eq!(v["click"], "http://alertmanager:9093");
    assert_eq!(
        v["actions"],
        json!([
            {"action": "view", "label": "Alertmanager", "url": "http://alertmanager:9093"},
            {"action": "view", "label": "Source", "url": "http://prometheus:9090/graph?g0.expr=up+%3D%3D+0"}
        ])
    );
    assert_eq!(
        v["message"],
        "job=node\n\
         • Instance a:9100 down (instance=a:9100) · since 2026-11-30 07:55:00 UTC\n\
         • Instance b:9100 down (instance=b:9100) · since 2026-11-30 07:55:00 UTC\n\
         • Instance c:9100 down (instance=c:9100) · since 2026-11-30 07:55:00 UTC"
    );
}

#[test]
fn a_resolved_group() {
    let payload = group(
        "resolved",
        vec![alert("resolved", "a:9100", "Instance a:9100 down")],
    );
    let v = send("alertmanager.resolved", &payload, "topic=alerts");
    assert_eq!(v["title"], "[RESOLVED] InstanceDown");
    assert_eq!(v["tags"], json!(["white_check_mark", "critical"]));
    assert_eq!(v["priority"], 2);
    // The only alert also shows its description.
    assert_eq!(
        v["message"],
        "job=node\n\
         • Instance a:9100 down (instance=a:9100) · since 2026-11-30 07:55:00 UTC · ended 2026-11-30 08:05:00 UTC\n\
         a:9100 has been down for 5 minutes"
    );
}

#[test]
fn a_mixed_group_marks_the_odd_ones_and_names_unannotated_alerts() {
    let mut quiet = alert("firing", "c:9100", "");
    quiet["annotations"] = json!({});
    quiet["labels"]["severity"] = json!("warning");
    let mut payload: Value = serde_json::from_str(&group(
        "firing",
        vec![alert("resolved", "a:9100", "a down"), quiet],
    ))
    .unwrap();
    payload["commonLabels"] = json!({"job": "node"});
    payload["groupLabels"] = json!({"job": "node"});
    payload["externalURL"] = json!("javascript:alert(1)");
    payload["truncatedAlerts"] = json!(5);
    let v = send(
        "alertmanager.firing",
        &payload.to_string(),
        "topic=alerts priority=low",
    );
    assert_eq!(
        v["title"], "[FIRING:1] node",
        "no alertname: the group's labels"
    );
    assert_eq!(v["priority"], 2, "the settings' priority wins");
    assert_eq!(
        v["tags"],
        json!(["rotating_light", "warning"]),
        "the firing alert's severity"
    );
    assert_eq!(
        v["click"],
        "http://prometheus:9090/graph?g0.expr=up+%3D%3D+0"
    );
    assert_eq!(
        v["actions"].as_array().unwrap().len(),
        1,
        "only http(s) links"
    );
    let message = v["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "job=node\n• ✅ a down (alertname=InstanceDown, instance=a:9100, severity=critical)"
        ),
        "{message}"
    );
    assert!(
        message.contains("\n• InstanceDown (instance=c:9100, severity=warning) · since"),
        "{message}"
    );
    assert!(message.ends_with("\nand 5 more alerts"), "{message}");
}

#[test]
fn a_thousand_alerts_with_large_annotations_stay_within_ntfy_limits() {
    let mut alerts: Vec<Value> = (0..1000)
        .map(|i| {
            let mut a = alert(
                "firing",
                &format!("host-{i}.example.com:9100"),
                &format!("Höst {i} 🔥 is down"),
            );
            a["annotations"]["description"] =
                json!(format!("{i}: {}", "Ünïcödé 🚨 text ".repeat(25)));
            a["annotations"]["runbook"] =
                json!("https://runbooks.example.com/InstanceDown".repeat(3));
            a
        })
        .collect();
    alerts[0]["annotations"]["summary"] = json!("🔥".repeat(25_000));
    alerts[1]["annotations"]["description"] = json!("é\n".repeat(50_000));
    let payload = group("firing", alerts);
    assert!(payload.len() > 600_000, "{}", payload.len());

    let v = send("alertmanager.firing", &payload, "topic=alerts");
    assert_eq!(v["title"], "[FIRING:1000] InstanceDown");
    let message = v["message"].as_str().unwrap();
    let lines: Vec<&str> = message.lines().collect();
    assert_eq!(lines[0], "job=node");
    assert!(
        lines[1].starts_with("• 🔥🔥🔥") && lines[1].contains('…'),
        "{}",
        lines[1]
    );
    assert!(lines[1].len() <= 400);
    assert!(lines[2].starts_with("• Höst 1 🔥 is down (instance=host-1.example.com:9100)"));
    let shown = lines.len() - 2;
    assert!(shown > 10, "{shown} alerts shown");
    assert_eq!(
        lines.last().unwrap(),
        &format!("and {} more alerts", 1000 - shown)
    );
    assert!(
        message.len() > MAX_MESSAGE - 400,
        "the message is filled: {}",
        message.len()
    );

    // The only alert, with a 100 KB description.
    let mut only = alert("firing", "a:9100", "a down");
    only["annotations"]["description"] = json!("Ü".repeat(50_000));
    let v = send(
        "alertmanager.firing",
        &group("firing", vec![only]),
        "topic=alerts",
    );
    let message = v["message"].as_str().unwrap();
    assert!(
        message.ends_with("ÜÜ…") && message.len() < MAX_MESSAGE,
        "{}",
        message.len()
    );
}

#[test]
fn cuts_never_split_a_character() {
    // Every offset of a 4-byte emoji and a 3-byte character against the limits.
    for pad in 0..8 {
        let name = format!("{}{}", "a".repeat(pad), "🔥é€".repeat(200));
        let mut payload: Value = serde_json::from_str(&group(
            "firing",
            vec![alert(
                "firing",
                "a:9100",
                &format!("{}{}", "b".repeat(pad), "👩‍🚒ß".repeat(300)),
            )],
        ))
        .unwrap();
        payload["groupLabels"]["alertname"] = json!(name);
        let v = send("alertmanager.firing", &payload.to_string(), "topic=alerts");
        let title = v["title"].as_str().unwrap();
        let head = title.strip_suffix(CUT).expect("cut, and says so");
        assert!(format!("[FIRING:1] {name}").starts_with(head), "{title}");

        let text = format!("{}{}", "c".repeat(pad), "🚨ü".repeat(2000));
        let v = send(
            "disk.full",
            &json!({"title": name, "message": text}).to_string(),
            "topic=alerts",
        );
        let message = v["message"].as_str().unwrap();
        assert!(text.starts_with(message.strip_suffix(CUT).unwrap()));
        assert!(message.len() > MAX_MESSAGE - 4);
        assert!(name.starts_with(v["title"].as_str().unwrap().strip_suffix(CUT).unwrap()));
    }
}

#[test]
fn native_alerts() {
    let v = send(
        "disk.full",
        r#"{"title":"Disk full on db1","message":"/var is at 98%","severity":"error",
            "labels":{"host":"db1","mount":"/var"},"url":"https://grafana.example.com/d/disk"}"#,
        "topic=alerts",
    );
    assert_eq!(v["title"], "Disk full on db1");
    assert_eq!(v["message"], "/var is at 98%\n\nhost=db1, mount=/var");
    assert_eq!(v["tags"], json!(["rotating_light", "error"]));
    assert_eq!(v["priority"], 4);
    assert_eq!(v["click"], "https://grafana.example.com/d/disk");
    assert!(v.get("actions").is_none());

    let v = send(
        "disk.resolved",
        r#"{"summary":"Disk ok","description":"back to 60%"}"#,
        "topic=a",
    );
    assert_eq!(
        (v["title"].as_str(), v["message"].as_str()),
        (Some("Disk ok"), Some("back to 60%"))
    );
    assert_eq!(v["tags"], json!(["white_check_mark"]));
    assert_eq!(v["priority"], 2);

    // Nothing known: the event type and the payload itself.
    let v = send(
        "build.failed",
        r#"{ "job": 7, "branch": "main" }"#,
        "topic=a",
    );
    assert_eq!(v["title"], "build.failed");
    assert_eq!(v["message"], r#"{"branch":"main","job":7}"#);
    assert_eq!(v["priority"], 3);
    let v = send("x", r#""just text""#, "topic=a");
    assert_eq!(v["message"], "just text");
    let v = send(
        "x",
        &json!({"data": "x".repeat(1 << 20)}).to_string(),
        "topic=a",
    );
    assert!(v["message"].as_str().unwrap().ends_with(CUT));
}

#[test]
fn bad_settings_fail_with_a_reason() {
    let payload = group("firing", vec![alert("firing", "a", "a down")]);
    for settings in [
        "",
        "alerts",
        "topic=a b=c",
        "topic=no/slash",
        "topic=a priority=9",
    ] {
        let e = Ntfy::transform(event("alertmanager.firing", &payload), settings.into())
            .expect_err(settings);
        assert!(e.starts_with("settings: "), "{settings}: {e}");
    }
    let many = (0..200)
        .map(|i| format!("key{i}=x"))
        .collect::<Vec<_>>()
        .join(",");
    let e = Ntfy::transform(event("x", "{}"), many).unwrap_err();
    assert!(e.len() <= MAX_REASON && e.ends_with(CUT), "{e}");
}

#[test]
fn a_payload_that_is_not_json_fails_with_a_reason() {
    for payload in ["", "nope", "{\"a\":", "{} x"] {
        let e = Ntfy::transform(event("alertmanager.firing", payload), "topic=a".into())
            .expect_err(payload);
        assert!(e.starts_with("payload: not JSON ("), "{e}");
    }
    let e = Ntfy::transform(event("alertmanager.firing", "[1]"), "topic=a".into()).unwrap_err();
    assert_eq!(e, "payload: an Alertmanager group must be a JSON object");
    // An empty group still says something.
    let v = send("alertmanager.firing", "{}", "topic=a");
    assert_eq!(v["title"], "[FIRING:0] alertmanager.firing");
    assert_eq!(v["message"], "(no alerts in the notification)");
}
