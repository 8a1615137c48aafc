//! An event as an ntfy notification: title, message, tags, priority and links, each within
//! ntfy's limits.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::read::{Alert, Group, Pairs};
use crate::text::{compact, cut, line, push_json, text, time, web_url};

/// Longest message, in bytes: ntfy turns a message over 4,096 bytes into an attachment.
pub const MAX_MESSAGE: usize = 4000;
/// Longest title, in bytes.
pub const MAX_TITLE: usize = 250;
/// Longest line of one alert (its name, labels and times), in bytes.
const MAX_LINE: usize = 400;
/// Longest alert name within its line.
const MAX_NAME: usize = 200;
/// Longest list of labels within a line.
const MAX_LABELS: usize = 150;
/// Longest description of the only alert of a group, shown below its line.
const MAX_DESCRIPTION: usize = 2000;
/// Longest tag.
const MAX_TAG: usize = 64;
/// Room kept for the "and N more alerts" line.
const MORE_LINE: usize = 40;

/// What ntfy shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub title: String,
    pub message: String,
    /// Emoji short codes (shown as emoji) and plain tags.
    pub tags: Vec<String>,
    /// 1 (min) to 5 (max); 3 is ntfy's default.
    pub priority: u8,
    /// Opened when the notification is tapped (an http(s) URL).
    pub click: Option<String>,
    /// `view` buttons: (label, http(s) URL), at most 3 (ntfy's limit).
    pub actions: Vec<(&'static str, String)>,
}

impl Notification {
    /// The body of ntfy's JSON publish request (`POST /`) to `topic`, written straight out.
    pub fn body(&self, topic: &str) -> Vec<u8> {
        let mut out = String::with_capacity(256 + self.message.len());
        out.push_str("{\"topic\":");
        push_json(&mut out, topic);
        out.push_str(",\"title\":");
        push_json(&mut out, &self.title);
        out.push_str(",\"message\":");
        push_json(&mut out, &self.message);
        out.push_str(",\"tags\":[");
        for (i, tag) in self.tags.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json(&mut out, tag);
        }
        out.push_str("],\"priority\":");
        out.push(char::from(b'0' + self.priority.min(9)));
        if let Some(click) = &self.click {
            out.push_str(",\"click\":");
            push_json(&mut out, click);
        }
        if !self.actions.is_empty() {
            out.push_str(",\"actions\":[");
            for (i, (label, url)) in self.actions.iter().take(3).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"action\":\"view\",\"label\":");
                push_json(&mut out, label);
                out.push_str(",\"url\":");
                push_json(&mut out, url);
                out.push('}');
            }
            out.push(']');
        }
        out.push('}');
        out.into_bytes()
    }
}

/// The priority for a severity (case-insensitive); `None` for one not listed.
pub fn severity_priority(severity: &str) -> Option<u8> {
    Some(match severity.trim().to_ascii_lowercase().as_str() {
        "critical" | "crit" | "fatal" | "emergency" | "emerg" | "alert" | "page" | "disaster"
        | "p1" | "sev1" => 5,
        "error" | "err" | "high" | "major" | "p2" | "sev2" => 4,
        "warning" | "warn" | "medium" | "average" | "p3" | "sev3" => 3,
        "info" | "informational" | "notice" | "low" | "minor" | "p4" | "sev4" => 2,
        "debug" | "trace" | "none" | "p5" | "sev5" => 1,
        _ => return None,
    })
}

/// The priority of a notification: its severity's while firing (3, ntfy's default, for an
/// unknown or missing one); at most 2 once resolved.
fn priority(firing: bool, severity: Option<&str>) -> u8 {
    let p = severity.and_then(severity_priority);
    if firing {
        p.unwrap_or(3)
    } else {
        p.unwrap_or(2).min(2)
    }
}

/// 🚨 while firing, ✅ when resolved, then the severity as a tag.
fn tags(firing: bool, severity: Option<&str>) -> Vec<String> {
    let status = if firing {
        "rotating_light"
    } else {
        "white_check_mark"
    };
    let mut tags = vec![status.to_owned()];
    tags.extend(severity.map(|s| line(s, MAX_TAG)).filter(|s| !s.is_empty()));
    tags
}

/// "and 37 more alerts".
fn more(n: usize) -> String {
    format!("and {n} more alert{}", if n == 1 { "" } else { "s" })
}

/// Adds `s` to `message` as a line of its own.
fn push_line(message: &mut String, s: &str) {
    if !message.is_empty() {
        message.push('\n');
    }
    message.push_str(s);
}

/// Up to 8 labels of `labels` that `keep` keeps, as `name=value, ...` (each name and value on
/// one line and cut).
fn label_pairs(labels: Option<&Map<String, Value>>, keep: impl Fn(&str, &Value) -> bool) -> String {
    let Some(labels) = labels else {
        return String::new();
    };
    labels
        .iter()
        .filter(|(k, v)| keep(k, v))
        .filter_map(|(k, v)| Some(format!("{}={}", line(k, 40), line(&text(Some(v))?, 100))))
        .take(8)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Up to 8 of `pairs` that `keep` keeps, as `name=value, ...` (each name and value on one line
/// and cut).
fn pairs_text(pairs: &Pairs<'_>, keep: impl Fn(&str, &str) -> bool) -> String {
    let mut out = String::new();
    for (k, v) in pairs.0.iter().filter(|(k, v)| keep(k, v)).take(8) {
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(&line(k, 40));
        out.push('=');
        out.push_str(&line(v, 100));
    }
    out
}

fn object<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Map<String, Value>> {
    m.get(key).and_then(Value::as_object)
}

/// Firing unless its `status` says `resolved`.
fn alert_firing(a: &Alert<'_>) -> bool {
    a.status.as_deref() != Some("resolved")
}

/// An Alertmanager group (`alertmanager.*` events).
pub fn alertmanager(event_type: &str, group: &Group<'_>) -> Notification {
    let common = &group.common_labels;
    let alerts = &group.alerts;
    let total = alerts.len().saturating_add(group.truncated_alerts);
    let firing = match group.status.as_deref() {
        Some("resolved") => false,
        Some(_) => true,
        None => !event_type.ends_with(".resolved"),
    };

    let name = group
        .group_labels
        .get("alertname")
        .or_else(|| common.get("alertname"))
        .map(Cow::Borrowed)
        .or_else(|| {
            let values = &group.group_labels.0;
            (!values.is_empty()).then(|| {
                Cow::Owned(
                    values
                        .iter()
                        .map(|(_, v)| v.as_ref())
                        .collect::<Vec<_>>()
                        .join(" "),
                )
            })
        })
        .unwrap_or(Cow::Borrowed(event_type));
    let title = if firing {
        let n = match alerts.iter().filter(|a| alert_firing(a)).count() {
            0 => total,
            n => n,
        };
        format!("[FIRING:{n}] {}", line(&name, MAX_TITLE))
    } else {
        format!("[RESOLVED] {}", line(&name, MAX_TITLE))
    };

    // The group's severity, else the most urgent one among its (firing) alerts.
    let severity = common.get("severity").or_else(|| {
        alerts
            .iter()
            .filter(|a| !firing || alert_firing(a))
            .filter_map(|a| a.labels.get("severity"))
            .max_by_key(|s| severity_priority(s).unwrap_or(0))
    });

    let mut message = String::new();
    let shared = pairs_text(common, |k, _| k != "alertname" && k != "severity");
    if !shared.is_empty() {
        message.push_str(&line(&shared, MAX_LINE));
    }
    let mut shown = 0;
    for a in alerts {
        let entry = alert_entry(a, common, firing, alerts.len() == 1);
        let rest = total - shown - 1;
        let reserve = if rest > 0 { MORE_LINE } else { 0 };
        if message.len() + 1 + entry.len() + reserve > MAX_MESSAGE {
            break;
        }
        push_line(&mut message, &entry);
        shown += 1;
    }
    if total > shown {
        push_line(&mut message, &more(total - shown));
    } else if total == 0 {
        push_line(&mut message, "(no alerts in the notification)");
    }

    let external = group
        .external_url
        .as_deref()
        .and_then(web_url)
        .map(str::to_owned);
    let source = alerts
        .iter()
        .find_map(|a| web_url(a.generator_url.as_deref()?).map(str::to_owned));
    let mut actions = Vec::new();
    if let Some(u) = &external {
        actions.push(("Alertmanager", u.clone()));
    }
    if let Some(u) = &source {
        actions.push(("Source", u.clone()));
    }
    Notification {
        title: cut(&title, MAX_TITLE),
        // Each part is bounded so that the whole fits; the cut is only a guard.
        message: cut(&message, MAX_MESSAGE),
        tags: tags(firing, severity),
        priority: priority(firing, severity),
        click: external.or(source),
        actions,
    }
}

/// One alert's line: `• name (labels that set it apart) · since <start>`, with `· ended <end>`
/// for a resolved one, and 🔥 or ✅ in front when its status is not its group's. The only alert
/// of a group also shows its description below, when its summary names it.
fn alert_entry(a: &Alert<'_>, common: &Pairs<'_>, group_firing: bool, only: bool) -> String {
    let summary = a.annotations.get("summary");
    let description = a.annotations.get("description");
    let by_label = summary.is_none() && description.is_none();
    let name = summary
        .or(description)
        .or(a.labels.get("alertname"))
        .unwrap_or("alert");
    let firing = alert_firing(a);

    let mut s = String::from("• ");
    match (firing == group_firing, firing) {
        (true, _) => {}
        (false, true) => s.push_str("🔥 "),
        (false, false) => s.push_str("✅ "),
    }
    s.push_str(&line(name, MAX_NAME));
    let apart = pairs_text(&a.labels, |k, v| {
        !(by_label && k == "alertname") && common.get(k) != Some(v)
    });
    if !apart.is_empty() {
        s.push_str(" (");
        s.push_str(&line(&apart, MAX_LABELS));
        s.push(')');
    }
    if let Some(t) = a.starts_at.as_deref().and_then(time) {
        s.push_str(" · since ");
        s.push_str(&t);
    }
    if !firing {
        if let Some(t) = a.ends_at.as_deref().and_then(time) {
            s.push_str(" · ended ");
            s.push_str(&t);
        }
    }
    let mut entry = cut(&s, MAX_LINE);
    if let (true, Some(_), Some(d)) = (only, summary, description) {
        entry.push('\n');
        entry.push_str(&cut(d.trim(), MAX_DESCRIPTION));
    }
    entry
}

/// A native alert: any JSON, read with the fields alerting tools use (`title` or `summary`,
/// `message` or `description`, `severity`, `labels`, `status`, `url` or `generatorURL`), shown
/// as compact JSON when it has no message.
pub fn native(event_type: &str, payload: &Value) -> Notification {
    let empty = Map::new();
    let obj = payload.as_object().unwrap_or(&empty);
    let get = |key: &str| text(obj.get(key));
    let firing = match get("status").map(|s| s.to_ascii_lowercase()).as_deref() {
        Some("resolved" | "ok" | "closed") => false,
        Some(_) => true,
        None => !event_type.contains("resolved"),
    };
    let severity = get("severity");
    let title = get("title")
        .or_else(|| get("summary"))
        .unwrap_or(Cow::Borrowed(event_type));
    let message = match get("message").or_else(|| get("description")) {
        Some(text) => {
            let labels = line(&label_pairs(object(obj, "labels"), |_, _| true), MAX_LINE);
            if labels.is_empty() {
                cut(text.trim(), MAX_MESSAGE)
            } else {
                let text = cut(text.trim(), MAX_MESSAGE - labels.len() - 2);
                format!("{text}\n\n{labels}")
            }
        }
        None => match payload {
            Value::String(s) if !s.trim().is_empty() => cut(s.trim(), MAX_MESSAGE),
            other => compact(other, MAX_MESSAGE),
        },
    };
    Notification {
        title: line(&title, MAX_TITLE),
        message,
        tags: tags(firing, severity.as_deref()),
        priority: priority(firing, severity.as_deref()),
        click: get("url")
            .or_else(|| get("generatorURL"))
            .and_then(|u| web_url(&u).map(str::to_owned)),
        actions: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_map_to_priorities() {
        assert_eq!(priority(true, Some("Critical")), 5);
        assert_eq!(priority(true, Some("error")), 4);
        assert_eq!(priority(true, Some("high")), 4);
        assert_eq!(priority(true, Some("warning")), 3);
        assert_eq!(priority(true, Some("info")), 2);
        assert_eq!(priority(true, Some("debug")), 1);
        assert_eq!(priority(true, Some("whatever")), 3);
        assert_eq!(priority(true, None), 3);
        assert_eq!(priority(false, Some("critical")), 2);
        assert_eq!(priority(false, None), 2);
        assert_eq!(priority(false, Some("debug")), 1);
    }

    #[test]
    fn the_body_is_ntfy_json() {
        let n = Notification {
            title: "t".into(),
            message: "m".into(),
            tags: vec!["rotating_light".into()],
            priority: 4,
            click: None,
            actions: vec![
                ("A", "https://a.io".into()),
                ("B", "https://b.io".into()),
                ("C", "https://c.io".into()),
                ("D", "https://d.io".into()),
            ],
        };
        let v: Value = serde_json::from_slice(&n.body("alerts")).unwrap();
        assert_eq!(v["topic"], "alerts");
        assert_eq!(v["priority"], 4);
        assert_eq!(v["tags"], serde_json::json!(["rotating_light"]));
        assert!(v.get("click").is_none());
        assert_eq!(v["actions"].as_array().unwrap().len(), 3, "ntfy allows 3");
        assert_eq!(
            v["actions"][0],
            serde_json::json!({"action": "view", "label": "A", "url": "https://a.io"})
        );
    }
}
