//! PagerDuty's Events API v2: a firing group triggers an event, a resolved one resolves it, with
//! the same `dedup_key`: the one Alertmanager's own PagerDuty integration uses (the SHA-256 hex
//! of the group key), so moving from it to hookd keeps incidents deduplicated. A native alert's
//! key is its payload's `dedupKey`, else its message id.
//!
//! A trigger carries the payload PagerDuty shows: a summary (at most 1,024 characters) naming
//! the alert, the count and the first alert's summary; a severity PagerDuty knows (from the
//! `severity` label: critical, error, warning, info, or a near word; else `formatOptions.severity`,
//! else `error`, as Alertmanager); the source; the first alert's start; the alerts as custom
//! details (within about 64 KB, far below PagerDuty's 512 KB); links to each source and to
//! Alertmanager; `num_firing` and `num_resolved` in the custom details as Alertmanager names
//! them (strings, as it sends them), so event rules written on them carry over. A resolve
//! carries no payload (PagerDuty reads none; Alertmanager sends its trigger's again).

use serde::Serialize;
use serde_json::Value;

use super::alert::{read, Group, Str};
use super::text::cut;
use super::{Event, Options};

pub const MAX_SUMMARY: usize = 1024;
pub const MAX_DEDUP_KEY: usize = 255;
/// PagerDuty's limit on an event.
pub const MAX_BODY: usize = 512 * 1024;
/// Characters of custom details (the alerts) an event carries at most.
const DETAILS_BUDGET: usize = 64 * 1024;
/// Links at most.
const MAX_LINKS: usize = 10;

/// PagerDuty's severity for a label's value, if it reads as one.
fn severity_of(label: &str) -> Option<&'static str> {
    Some(match label.to_ascii_lowercase().as_str() {
        "critical" | "crit" | "fatal" | "page" | "p1" => "critical",
        "error" | "err" | "high" | "p2" => "error",
        "warning" | "warn" | "medium" | "p3" => "warning",
        "info" | "informational" | "low" | "none" | "p4" | "p5" => "info",
        _ => return None,
    })
}

/// The key that ties a trigger to its resolve.
pub fn dedup_key(g: &Group, event: &Event<'_>) -> String {
    if event.event_type.starts_with("alertmanager.") {
        let key = g.group_key.as_deref().unwrap_or(event.id);
        let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
        let mut hex = String::with_capacity(64);
        for b in digest.as_ref() {
            hex.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            hex.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        hex
    } else {
        cut(g.group_key.as_deref().unwrap_or(event.id), MAX_DEDUP_KEY)
    }
}

/// An event: written straight to its JSON (no tree of values in between).
#[derive(Debug, Serialize)]
struct Message<'a> {
    routing_key: &'a str,
    event_action: &'static str,
    dedup_key: String,
    client: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<Payload>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    links: Vec<Link<'a>>,
}

#[derive(Debug, Serialize)]
struct Link<'a> {
    href: &'a str,
    text: String,
}

#[derive(Debug, Serialize)]
struct Payload {
    summary: String,
    source: String,
    severity: &'static str,
    class: String,
    custom_details: Details,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<String>,
}

/// The alerts, named as Alertmanager names them.
#[derive(Debug, Serialize)]
struct Details {
    num_firing: String,
    num_resolved: String,
    #[serde(skip_serializing_if = "Object::is_empty")]
    labels: Object,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<String>,
    alerts: Vec<AlertDetails>,
    #[serde(skip_serializing_if = "Option::is_none")]
    more_alerts: Option<usize>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AlertDetails {
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Object::is_empty")]
    labels: Object,
    #[serde(skip_serializing_if = "Option::is_none")]
    starts_at: Option<String>,
}

/// Names and values, written as a JSON object (a name that repeats after cutting keeps its
/// first place and its last value, as an object reads).
#[derive(Debug, Default)]
struct Object(Vec<(String, String)>);

impl Object {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first `most` of `pairs`, names cut to 100 characters and values to `value_max`.
    fn cut(pairs: &[(Str<'_>, Str<'_>)], most: usize, value_max: usize) -> Self {
        let mut object = Self::default();
        for (k, v) in pairs.iter().take(most) {
            object.insert(cut(k, 100), cut(v, value_max));
        }
        object
    }

    fn insert(&mut self, name: String, value: String) {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some(pair) => pair.1 = value,
            None => self.0.push((name, value)),
        }
    }
}

impl Serialize for Object {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// The body sent to the Events API v2.
pub fn body(event: &Event<'_>, options: &Options<'_>) -> Vec<u8> {
    let g = read(event);
    let links: Vec<Link<'_>> = if g.firing {
        g.alerts
            .iter()
            .filter_map(|a| {
                let href = a.generator_url.as_deref()?;
                let text = cut(a.summary.as_deref().unwrap_or(&g.title), 200);
                Some(Link { href, text })
            })
            .chain(g.external_url.iter().map(|u| Link {
                href: u,
                text: "Alertmanager".to_owned(),
            }))
            .take(MAX_LINKS)
            .collect()
    } else {
        Vec::new()
    };
    super::to_json(&Message {
        routing_key: options.routing_key.unwrap_or_default(),
        event_action: if g.firing { "trigger" } else { "resolve" },
        dedup_key: dedup_key(&g, event),
        client: "hookd",
        client_url: g.external_url.as_deref(),
        payload: g.firing.then(|| payload(&g, event, options)),
        links,
    })
}

fn payload(g: &Group<'_>, event: &Event<'_>, options: &Options<'_>) -> Payload {
    let count = g.count();
    let first = g.alerts.first();
    let mut summary = format!("[FIRING:{count}] {}", g.title);
    if let Some(s) = &g.severity {
        summary.push_str(&format!(" ({s})"));
    }
    if let Some(s) = first.and_then(|a| a.summary.as_deref().or(a.description.as_deref())) {
        summary.push_str(": ");
        summary.push_str(s);
    } else if let Some(d) = &g.details {
        summary.push_str(": ");
        summary.push_str(d);
    }
    let severity = g
        .severity
        .as_deref()
        .and_then(severity_of)
        .or_else(|| options.severity.and_then(severity_of))
        .unwrap_or("error");
    let source = g.external_url.as_deref().unwrap_or("hookd");
    let firing = g.alerts.iter().filter(|a| a.firing).count();
    let mut details = Details {
        num_firing: firing.to_string(),
        num_resolved: (g.alerts.len() - firing).to_string(),
        labels: Object::cut(&g.common, usize::MAX, 1000),
        payload: g.details.as_deref().map(|d| cut(d, 16 * 1024)),
        alerts: Vec::new(),
        more_alerts: None,
    };
    let mut used = 0;
    for a in &g.alerts {
        let one = AlertDetails {
            summary: a.summary.as_deref().map(|s| cut(s, 1000)),
            description: a.description.as_deref().map(|d| cut(d, 2000)),
            labels: Object::cut(&a.labels, 20, 500),
            starts_at: a.starts_at_ms.map(crate::time::rfc3339),
        };
        let size = super::json_len(&one);
        if used + size > DETAILS_BUDGET {
            break;
        }
        used += size;
        details.alerts.push(one);
    }
    let more = count - details.alerts.len();
    details.more_alerts = (more > 0).then_some(more);
    Payload {
        summary: cut(&summary, MAX_SUMMARY),
        source: cut(source, 255),
        severity,
        class: cut(&g.title, 255),
        custom_details: details,
        timestamp: first
            .and_then(|a| a.starts_at_ms)
            .or(Some(event.created_at_ms))
            .map(crate::time::rfc3339),
    }
}

/// PagerDuty's answer that refuses the event itself: `400` (invalid event, or an unknown
/// routing key).
pub fn refuses(status: u16) -> bool {
    status == 400
}

/// Whether `body` is an event within the Events API v2's rules (for the fuzz target and the
/// tests).
///
/// # Errors
/// What is wrong.
pub fn within_limits(body: &[u8]) -> Result<(), String> {
    if body.len() > MAX_BODY {
        return Err(format!("{} bytes", body.len()));
    }
    let m: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let key = m["dedup_key"].as_str().ok_or("no dedup_key")?;
    if key.is_empty() || key.chars().count() > MAX_DEDUP_KEY {
        return Err(format!("dedup_key of {} characters", key.chars().count()));
    }
    match m["event_action"].as_str() {
        Some("trigger") => {
            let p = &m["payload"];
            let summary = p["summary"].as_str().ok_or("no summary")?;
            if summary.is_empty() || summary.chars().count() > MAX_SUMMARY {
                return Err(format!("summary of {} characters", summary.chars().count()));
            }
            if !matches!(
                p["severity"].as_str(),
                Some("critical" | "error" | "warning" | "info")
            ) {
                return Err(format!("severity {}", p["severity"]));
            }
            if p["source"].as_str().is_none_or(str::is_empty) {
                return Err("no source".into());
            }
            Ok(())
        }
        Some("resolve") if m.get("payload").is_none() => Ok(()),
        other => Err(format!("event_action {other:?}")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    use crate::format::test_event_of as event;

    #[test]
    fn trigger_and_resolve_share_alertmanagers_dedup_key() {
        let options = Options {
            routing_key: Some("R0123456789abcdef0123456789abcdef"),
            severity: None,
        };
        let firing = r#"{"version":"4","status":"firing","groupKey":"{}:{alertname=\"InstanceDown\"}",
            "commonLabels":{"alertname":"InstanceDown","severity":"warn"},"externalURL":"http://am.example:9093",
            "alerts":[{"status":"firing","labels":{"instance":"a"},"annotations":{"summary":"a is down"},
                       "startsAt":"2026-11-29T10:00:00Z","generatorURL":"http://prom.example/graph"}]}"#;
        let t: Value =
            serde_json::from_slice(&body(&event("alertmanager.firing", firing), &options)).unwrap();
        within_limits(t.to_string().as_bytes()).unwrap();
        // Alertmanager's own key for this group: sha256 of the group key, hex.
        assert_eq!(
            t["dedup_key"],
            "6deb6322f8f3d0527aa4eb1bc3139fdeea97e69c8a998b5c88b7e6f2756de185"
        );
        assert_eq!(t["event_action"], "trigger");
        assert_eq!(t["routing_key"], "R0123456789abcdef0123456789abcdef");
        assert_eq!(
            t["payload"]["summary"],
            "[FIRING:1] InstanceDown (warn): a is down"
        );
        assert_eq!(t["payload"]["severity"], "warning");
        assert_eq!(t["payload"]["timestamp"], "2026-11-29T10:00:00Z");
        assert_eq!(t["links"][0]["href"], "http://prom.example/graph");
        let resolved = firing.replace("\"status\":\"firing\"", "\"status\":\"resolved\"");
        let r: Value =
            serde_json::from_slice(&body(&event("alertmanager.resolved", &resolved), &options))
                .unwrap();
        within_limits(r.to_string().as_bytes()).unwrap();
        assert_eq!(r["event_action"], "resolve");
        assert_eq!(r["dedup_key"], t["dedup_key"]);
        assert!(r.get("payload").is_none());
    }

    #[test]
    fn severities_and_native_keys() {
        let options = Options {
            routing_key: Some("k"),
            severity: Some("critical"),
        };
        let t: Value = serde_json::from_slice(&body(
            &event(
                "disk.full",
                r#"{"summary":"disk","severity":"unheard-of","dedupKey":"db1-disk"}"#,
            ),
            &options,
        ))
        .unwrap();
        assert_eq!(
            t["payload"]["severity"], "critical",
            "the option when the label is no severity"
        );
        assert_eq!(t["dedup_key"], "db1-disk");
        let t: Value =
            serde_json::from_slice(&body(&event("x", "{}"), &Options::default())).unwrap();
        assert_eq!(t["payload"]["severity"], "error");
        assert_eq!(t["dedup_key"], "msg_1");
        let long = format!(
            r#"{{"summary":"{}","dedupKey":"{}"}}"#,
            "s".repeat(5000),
            "k".repeat(500)
        );
        let b = body(&event("x", &long), &options);
        within_limits(&b).unwrap();
    }
}
