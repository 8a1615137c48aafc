//! An event read as an alert group, the one shape every format renders: an Alertmanager
//! notification (`alertmanager.*` events: the whole group), or a native alert (its event type
//! and payload, using `summary`, `title`, `message`, `description`, `severity`, `labels`,
//! `status` and `url` where present, else the payload itself).

use std::borrow::Cow;

use super::lenient::{object_reader, Count, Lenient, Objects, Pairs, Text};
use super::text::cut;
use super::Event;

pub use super::lenient::Str;

/// What an on-call person needs of a notification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group<'a> {
    /// Firing (some alert is), or resolved (all are).
    pub firing: bool,
    /// The alert's name (Alertmanager's `alertname`), or a native alert's title or event type.
    pub title: Str<'a>,
    pub severity: Option<Str<'a>>,
    /// Labels every alert shares, besides `alertname` and `severity`.
    pub common: Vec<(Str<'a>, Str<'a>)>,
    pub alerts: Vec<Alert<'a>>,
    /// Alerts Alertmanager left out of the payload (`truncatedAlerts`).
    pub truncated: usize,
    /// Alertmanager's own address, to link to (an http(s) URL).
    pub external_url: Option<Str<'a>>,
    /// Alertmanager's key of the group.
    pub group_key: Option<Str<'a>>,
    pub event_type: Str<'a>,
    /// A native payload with none of the fields above: itself, as compact JSON.
    pub details: Option<Str<'a>>,
}

/// One alert of a group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Alert<'a> {
    pub firing: bool,
    pub summary: Option<Str<'a>>,
    pub description: Option<Str<'a>>,
    /// The labels that tell it apart from the rest of its group.
    pub labels: Vec<(Str<'a>, Str<'a>)>,
    pub starts_at_ms: Option<i64>,
    /// Where it comes from (Prometheus' graph), an http(s) URL.
    pub generator_url: Option<Str<'a>>,
}

impl Group<'_> {
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

impl<'a> Alert<'a> {
    /// What names it: its summary, else its description, else the group's title.
    pub fn name<'s>(&'s self, g: &'s Group<'a>) -> &'s str {
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
    pub fn icon(&self, g: &Group<'_>) -> &'static str {
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

/// Reads `event` as a group. Never fails: what is missing or malformed is left out (see
/// [`super::lenient`]).
pub fn read<'a>(event: &Event<'a>) -> Group<'a> {
    let raw: Raw<'a> = Lenient::<Raw<'a>>::parse(event.data).unwrap_or_default();
    if event.event_type.starts_with("alertmanager.") {
        alertmanager(event, raw)
    } else {
        native(event, raw)
    }
}

object_reader! {
    /// The fields of an event's payload that any format reads (Alertmanager's, and the known
    /// fields of a native alert).
    struct Raw<'a> {
        status: Text<'a> = "status",
        group_key: Text<'a> = "groupKey",
        truncated: Count = "truncatedAlerts",
        group_labels: Pairs<'a> = "groupLabels",
        common_labels: Pairs<'a> = "commonLabels",
        external_url: Text<'a> = "externalURL",
        alerts: Objects<RawAlert<'a>> = "alerts",
        // A native alert's.
        summary: Text<'a> = "summary",
        title: Text<'a> = "title",
        description: Text<'a> = "description",
        message: Text<'a> = "message",
        severity: Text<'a> = "severity",
        labels: Pairs<'a> = "labels",
        starts_at: Text<'a> = "startsAt",
        url: Text<'a> = "url",
        generator_url: Text<'a> = "generatorURL",
        dedup_key: Text<'a> = "dedupKey",
    }
}

object_reader! {
    /// One alert of an Alertmanager group, as posted.
    struct RawAlert<'a> {
        status: Text<'a> = "status",
        labels: Pairs<'a> = "labels",
        annotations: Pairs<'a> = "annotations",
        starts_at: Text<'a> = "startsAt",
        generator_url: Text<'a> = "generatorURL",
    }
}

/// `s` if it is an http(s) URL without spaces or control characters.
pub fn web_url(s: Option<Str<'_>>) -> Option<Str<'_>> {
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

/// The value of `key` among `pairs`.
fn find<'a>(pairs: &[(Str<'a>, Str<'a>)], key: &str) -> Option<Str<'a>> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

fn alertmanager<'a>(event: &Event<'a>, raw: Raw<'a>) -> Group<'a> {
    let common = raw.common_labels.0;
    let alerts: Vec<Alert<'a>> = raw
        .alerts
        .0
        .into_iter()
        .map(|a| {
            let get = |key: &str| find(&a.annotations.0, key);
            Alert {
                firing: a.status.0.as_deref() != Some("resolved"),
                summary: get("summary").or_else(|| get("title")),
                description: get("description").or_else(|| get("message")),
                labels: a
                    .labels
                    .0
                    .into_iter()
                    .filter(|l| !common.contains(l))
                    .collect(),
                starts_at_ms: a
                    .starts_at
                    .0
                    .and_then(|s| crate::time::parse_rfc3339(&s))
                    .filter(|ms| *ms > 0),
                generator_url: web_url(a.generator_url.0),
            }
        })
        .collect();
    Group {
        firing: match raw.status.0.as_deref() {
            Some("resolved") => false,
            Some(_) => true,
            None => !event.event_type.ends_with(".resolved"),
        },
        title: find(&common, "alertname")
            .or_else(|| find(&raw.group_labels.0, "alertname"))
            .unwrap_or(Cow::Borrowed(event.event_type)),
        severity: find(&common, "severity"),
        common: common
            .into_iter()
            .filter(|(k, _)| k != "alertname" && k != "severity")
            .collect(),
        alerts,
        truncated: raw.truncated.0,
        external_url: web_url(raw.external_url.0),
        group_key: raw.group_key.0,
        event_type: Cow::Borrowed(event.event_type),
        details: None,
    }
}

fn native<'a>(event: &Event<'a>, raw: Raw<'a>) -> Group<'a> {
    let summary = raw.summary.0.or_else(|| raw.title.0.clone());
    let description = raw.description.0.or(raw.message.0);
    let known = summary.is_some() || description.is_some();
    let status = raw.status.0.map(|s| s.to_ascii_lowercase());
    let firing = match status.as_deref() {
        Some("resolved" | "ok" | "closed") => false,
        Some(_) => true,
        None => !event.event_type.contains("resolved"),
    };
    let alert = Alert {
        firing,
        summary,
        description,
        labels: raw.labels.0,
        starts_at_ms: raw
            .starts_at
            .0
            .and_then(|s| crate::time::parse_rfc3339(&s))
            .or(Some(event.created_at_ms)),
        generator_url: web_url(raw.url.0.or(raw.generator_url.0)),
    };
    Group {
        firing,
        title: raw.title.0.unwrap_or(Cow::Borrowed(event.event_type)),
        severity: raw.severity.0,
        common: Vec::new(),
        alerts: vec![alert],
        truncated: 0,
        external_url: None,
        group_key: raw.dedup_key.0,
        event_type: Cow::Borrowed(event.event_type),
        details: (!known).then(|| compact(event.data)),
    }
}

/// A payload shown whole: compact JSON (as it is, if it is not a JSON object).
fn compact(data: &str) -> Str<'_> {
    match serde_json::from_str::<serde_json::Value>(data) {
        Ok(v @ serde_json::Value::Object(_)) if !v.as_object().is_some_and(|o| o.is_empty()) => {
            Cow::Owned(v.to_string())
        }
        _ => Cow::Borrowed(data),
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
        assert_eq!(g.common, [("job".into(), "node".into())]);
        assert_eq!(g.truncated, 2);
        assert_eq!(g.external_url.as_deref(), Some("http://am.example:9093"));
        assert_eq!(g.alerts.len(), 2);
        assert_eq!(g.alerts[0].labels, [("instance".into(), "a:9100".into())]);
        assert_eq!(g.alerts[0].summary.as_deref(), Some("a is down"));
        assert_eq!(g.alerts[0].generator_url, None, "only http(s) links");
        assert!(g.alerts[0].starts_at_ms.is_some());
        assert!(!g.alerts[1].firing);
    }

    #[test]
    fn fields_take_any_json_and_repeated_names_keep_the_last_value() {
        let data = r#"{"status":"firing","status":"resolved","truncatedAlerts":"7",
            "commonLabels":{"alertname":"A","n":5,"b":true,"o":{"x":[1,2]},"z":null,"s":" ","n":6},
            "groupKey":["k"],"externalURL":7,
            "alerts":[7,"x",null,{"labels":[],"annotations":{"summary":"caf\u00e9","summary":{"a":1}},
                      "status":"resolved","startsAt":1,"generatorURL":"http://x"},{}]}"#;
        let g = read(&event("alertmanager.firing", data));
        assert!(!g.firing, "the last status");
        assert_eq!(g.truncated, 0, "only a number counts");
        assert_eq!(
            g.common,
            [
                ("n".into(), "6".into()),
                ("b".into(), "true".into()),
                ("o".into(), r#"{"x":[1,2]}"#.into())
            ],
            "text of any value but null or blank, in order, a repeated name in its first place"
        );
        assert_eq!(g.group_key.as_deref(), Some(r#"["k"]"#));
        assert_eq!(g.external_url, None);
        assert_eq!(g.alerts.len(), 2, "only objects are alerts");
        assert_eq!(g.alerts[0].summary.as_deref(), Some(r#"{"a":1}"#));
        assert!(!g.alerts[0].firing);
        assert_eq!(g.alerts[0].starts_at_ms, None);
        // Text without escapes is borrowed from the event, not copied.
        let g = read(&event(
            "alertmanager.firing",
            r#"{"commonLabels":{"alertname":"Down"},"alerts":[{"annotations":{"summary":"caf\u00e9 down"}}]}"#,
        ));
        assert!(matches!(g.title, Cow::Borrowed("Down")));
        assert!(matches!(g.alerts[0].summary, Some(Cow::Owned(ref s)) if s == "café down"));
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
