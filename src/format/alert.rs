//! An event read as an alert group, the one shape every format renders: an Alertmanager
//! notification (`alertmanager.*` events: the whole group), or a native alert (its event type
//! and payload, using `summary`, `title`, `message`, `description`, `severity`, `labels`,
//! `status` and `url` where present, else the payload itself).

use serde_json::{Map, Value};

use super::text::cut;
use super::Event;

/// What an on-call person needs of a notification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group {
    /// Firing (some alert is), or resolved (all are).
    pub firing: bool,
    /// The alert's name (Alertmanager's `alertname`), or a native alert's title or event type.
    pub title: String,
    pub severity: Option<String>,
    /// Labels every alert shares, besides `alertname` and `severity`.
    pub common: Vec<(String, String)>,
    pub alerts: Vec<Alert>,
    /// Alerts Alertmanager left out of the payload (`truncatedAlerts`).
    pub truncated: usize,
    /// Alertmanager's own address, to link to (an http(s) URL).
    pub external_url: Option<String>,
    /// Alertmanager's key of the group.
    pub group_key: Option<String>,
    pub event_type: String,
    /// A native payload with none of the fields above: itself, as compact JSON.
    pub details: Option<String>,
}

/// One alert of a group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Alert {
    pub firing: bool,
    pub summary: Option<String>,
    pub description: Option<String>,
    /// The labels that tell it apart from the rest of its group.
    pub labels: Vec<(String, String)>,
    pub starts_at_ms: Option<i64>,
    /// Where it comes from (Prometheus' graph), an http(s) URL.
    pub generator_url: Option<String>,
}

impl Group {
    /// 🔥 FIRING or ✅ RESOLVED: (icon, word).
    pub fn status(&self) -> (&'static str, &'static str) {
        if self.firing {
            ("🔥", "FIRING")
        } else {
            ("✅", "RESOLVED")
        }
    }

    /// Its alerts, counting those Alertmanager left out.
    pub fn count(&self) -> usize {
        self.alerts.len() + self.truncated
    }
}

impl Alert {
    /// What names it: its summary, else its description, else the group's title.
    pub fn name<'a>(&'a self, g: &'a Group) -> &'a str {
        self.summary
            .as_deref()
            .or(self.description.as_deref())
            .unwrap_or(&g.title)
    }

    /// Its description, when the summary names it (else the description is the name).
    pub fn detail(&self) -> Option<&str> {
        self.summary.as_ref().and(self.description.as_deref())
    }

    /// 🔥 or ✅ (and a space) for an alert whose status is not its group's; "" otherwise.
    pub fn icon(&self, g: &Group) -> &'static str {
        match (self.firing == g.firing, self.firing) {
            (true, _) => "",
            (false, true) => "🔥 ",
            (false, false) => "✅ ",
        }
    }

    /// The labels that tell it apart, as `name: value` (at most 8, each cut).
    pub fn label_pairs(&self) -> Vec<String> {
        self.labels
            .iter()
            .take(8)
            .map(|(k, v)| format!("{}: {}", cut(k, 40), cut(v, 100)))
            .collect()
    }

    /// [`Alert::label_pairs`], then `since <start>`.
    pub fn facts(&self) -> Vec<String> {
        let mut facts = self.label_pairs();
        if let Some(ms) = self.starts_at_ms {
            facts.push(format!("since {}", crate::time::rfc3339(ms)));
        }
        facts
    }
}

/// "and 37 more alerts" for `n` left out (`None` for none).
pub fn more(n: usize) -> Option<String> {
    (n > 0).then(|| format!("and {n} more alert{}", if n == 1 { "" } else { "s" }))
}

/// Reads `event` as a group. Never fails: what is missing or malformed is left out.
pub fn read(event: &Event<'_>) -> Group {
    let data: Value = serde_json::from_str(event.data).unwrap_or(Value::Null);
    let empty = Map::new();
    let obj = data.as_object().unwrap_or(&empty);
    if event.event_type.starts_with("alertmanager.") {
        alertmanager(event, obj)
    } else {
        native(event, obj)
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn labels(v: Option<&Value>) -> Vec<(String, String)> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| text(Some(v)).map(|v| (k.clone(), v)))
                .collect()
        })
        .unwrap_or_default()
}

/// `s` if it is an http(s) URL without spaces or control characters.
pub fn web_url(s: Option<String>) -> Option<String> {
    let s = s?;
    let lower = s.get(..8).map(str::to_ascii_lowercase).unwrap_or_default();
    let rest = if lower.starts_with("https://") {
        &s[8..]
    } else if lower.starts_with("http://") {
        &s[7..]
    } else {
        return None;
    };
    // A host must follow (receivers refuse a link to nowhere).
    let host_starts = rest
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '[');
    let clean = !s.chars().any(|c| c.is_whitespace() || c.is_control());
    (host_starts && clean && s.len() <= 2048).then_some(s)
}

fn alertmanager(event: &Event<'_>, obj: &Map<String, Value>) -> Group {
    let common = labels(obj.get("commonLabels"));
    let group_labels = labels(obj.get("groupLabels"));
    let find = |set: &[(String, String)], key: &str| {
        set.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    };
    let raw_alerts: &[Value] = obj
        .get("alerts")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let alerts: Vec<Alert> = raw_alerts
        .iter()
        .filter_map(Value::as_object)
        .map(|a| {
            let annotations = a.get("annotations");
            let get = |key: &str| text(annotations.and_then(|x| x.get(key)));
            Alert {
                firing: a.get("status").and_then(Value::as_str) != Some("resolved"),
                summary: get("summary").or_else(|| get("title")),
                description: get("description").or_else(|| get("message")),
                labels: labels(a.get("labels"))
                    .into_iter()
                    .filter(|l| !common.contains(l))
                    .collect(),
                starts_at_ms: text(a.get("startsAt"))
                    .and_then(|s| crate::time::parse_rfc3339(&s))
                    .filter(|ms| *ms > 0),
                generator_url: web_url(text(a.get("generatorURL"))),
            }
        })
        .collect();
    let status = text(obj.get("status"));
    Group {
        firing: match status.as_deref() {
            Some("resolved") => false,
            Some(_) => true,
            None => !event.event_type.ends_with(".resolved"),
        },
        title: find(&common, "alertname")
            .or_else(|| find(&group_labels, "alertname"))
            .unwrap_or_else(|| event.event_type.to_owned()),
        severity: find(&common, "severity"),
        common: common
            .iter()
            .filter(|(k, _)| k != "alertname" && k != "severity")
            .cloned()
            .collect(),
        alerts,
        truncated: obj
            .get("truncatedAlerts")
            .and_then(Value::as_u64)
            .map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX)),
        external_url: web_url(text(obj.get("externalURL"))),
        group_key: text(obj.get("groupKey")),
        event_type: event.event_type.to_owned(),
        details: None,
    }
}

fn native(event: &Event<'_>, obj: &Map<String, Value>) -> Group {
    let get = |key: &str| text(obj.get(key));
    let summary = get("summary").or_else(|| get("title"));
    let description = get("description").or_else(|| get("message"));
    let known = summary.is_some() || description.is_some();
    let status = get("status").map(|s| s.to_ascii_lowercase());
    let firing = match status.as_deref() {
        Some("resolved" | "ok" | "closed") => false,
        Some(_) => true,
        None => !event.event_type.contains("resolved"),
    };
    let alert = Alert {
        firing,
        summary: summary.clone(),
        description,
        labels: labels(obj.get("labels")),
        starts_at_ms: get("startsAt")
            .and_then(|s| crate::time::parse_rfc3339(&s))
            .or(Some(event.created_at_ms)),
        generator_url: web_url(get("url").or_else(|| get("generatorURL"))),
    };
    Group {
        firing,
        title: get("title").unwrap_or_else(|| event.event_type.to_owned()),
        severity: get("severity"),
        common: Vec::new(),
        alerts: vec![alert],
        truncated: 0,
        external_url: None,
        group_key: get("dedupKey"),
        event_type: event.event_type.to_owned(),
        details: (!known).then(|| {
            if obj.is_empty() {
                event.data.to_owned()
            } else {
                Value::Object(obj.clone()).to_string()
            }
        }),
    }
}

/// An Alertmanager notification of one firing alert, for test sends.
pub fn sample_group(endpoint_id: &str) -> String {
    serde_json::json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"HookdTest\", endpoint=\"{endpoint_id}\"}}"),
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "hookd",
        "groupLabels": {"alertname": "HookdTest"},
        "commonLabels": {"alertname": "HookdTest", "severity": "info", "endpoint": endpoint_id},
        "commonAnnotations": {"summary": "A test alert from hookd"},
        "externalURL": "",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "HookdTest", "severity": "info", "endpoint": endpoint_id, "instance": "hookd"},
            "annotations": {
                "summary": "A test alert from hookd",
                "description": "If you can read this, deliveries to this endpoint arrive in the shape it expects."
            },
            "startsAt": crate::time::rfc3339(crate::time::now_ms()),
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "",
            "fingerprint": "0000000000000000"
        }]
    })
    .to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    use crate::format::test_event_of as event;

    #[test]
    fn an_alertmanager_group_keeps_what_tells_its_alerts_apart() {
        let data = r#"{"version":"4","status":"firing","groupKey":"{}:{alertname=\"Down\"}","truncatedAlerts":2,
            "commonLabels":{"alertname":"Down","severity":"critical","job":"node"},
            "externalURL":"http://am.example:9093",
            "alerts":[{"status":"firing","labels":{"alertname":"Down","severity":"critical","job":"node","instance":"a:9100"},
                       "annotations":{"summary":"a is down","description":"gone 5m"},"startsAt":"2026-11-29T10:00:00.000Z",
                       "generatorURL":"javascript:alert(1)"},
                      {"status":"resolved","labels":{"instance":"b:9100"},"annotations":{}}]}"#;
        let g = read(&event("alertmanager.firing", data));
        assert!(g.firing);
        assert_eq!(g.title, "Down");
        assert_eq!(g.severity.as_deref(), Some("critical"));
        assert_eq!(g.common, [("job".to_owned(), "node".to_owned())]);
        assert_eq!(g.truncated, 2);
        assert_eq!(g.external_url.as_deref(), Some("http://am.example:9093"));
        assert_eq!(g.alerts.len(), 2);
        assert_eq!(
            g.alerts[0].labels,
            [("instance".to_owned(), "a:9100".to_owned())]
        );
        assert_eq!(g.alerts[0].summary.as_deref(), Some("a is down"));
        assert_eq!(g.alerts[0].generator_url, None, "only http(s) links");
        assert!(g.alerts[0].starts_at_ms.is_some());
        assert!(!g.alerts[1].firing);
    }

    #[test]
    fn native_alerts_use_known_fields_else_show_the_payload() {
        let g = read(&event(
            "disk.resolved",
            r#"{"summary":"disk full","severity":"warning","labels":{"host":"db1"}}"#,
        ));
        assert!(!g.firing);
        assert_eq!(g.title, "disk.resolved");
        assert_eq!(g.alerts[0].summary.as_deref(), Some("disk full"));
        assert_eq!(g.details, None);
        let g = read(&event("build.failed", r#"{"job":7}"#));
        assert!(g.firing);
        assert_eq!(g.details.as_deref(), Some(r#"{"job":7}"#));
        for garbage in ["", "[]", "nul", "\"x\"", "{\"alerts\":7}"] {
            let _ = read(&event("alertmanager.firing", garbage));
            let _ = read(&event("x", garbage));
        }
    }
}
