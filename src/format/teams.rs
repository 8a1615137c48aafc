//! Microsoft Teams, through a Workflows (Power Automate) webhook: an Adaptive Card in the
//! envelope Workflows takes, `{"type": "message", "attachments": [{"contentType":
//! "application/vnd.microsoft.card.adaptive", "content": {...}}]}` (the old Office 365 connector
//! cards are retired).
//!
//! A red (firing) or green (resolved) header with the alert's name and count, what the group
//! shares, then a section per alert: its summary (opening its source), description, labels and
//! start; what did not fit is counted, and a button opens Alertmanager. Alert text only ever
//! goes into `TextRun`s of `RichTextBlock`s, which Adaptive Cards never read as Markdown: it
//! cannot style itself, forge a link or mention anyone. The whole card stays under 24 KB
//! (Teams takes about 28 KB per message).

use serde_json::{json, Value};

use super::alert::{more, read, Alert, Group};
use super::text::cut;
use super::Event;

/// The most bytes of a message (Teams' limit is about 28 KB).
pub const MAX_BYTES: usize = 24 * 1024;
/// Actions (buttons) at most.
const MAX_ACTIONS: usize = 5;

/// Plain text: a `TextRun`, never read as Markdown.
fn run(text: &str) -> Value {
    json!({"type": "TextRun", "text": text})
}

fn rich(inlines: Vec<Value>) -> Value {
    json!({"type": "RichTextBlock", "inlines": inlines})
}

/// The body sent to a Teams Workflows webhook.
pub fn body(event: &Event<'_>) -> Vec<u8> {
    message(&read(event)).to_string().into_bytes()
}

pub fn message(g: &Group) -> Value {
    let count = g.count();
    let (icon, word) = g.status();
    let style = if g.firing { "attention" } else { "good" };
    let mut title = format!("{icon} {word}: {}", cut(&g.title, 200));
    if count > 1 {
        title.push_str(&format!(" ({count})"));
    }
    let mut header = vec![rich(vec![{
        let mut r = run(&title);
        r["weight"] = "Bolder".into();
        r["size"] = "Medium".into();
        r
    }])];
    let mut shared: Vec<String> = g
        .severity
        .iter()
        .map(|s| format!("severity: {}", cut(s, 100)))
        .collect();
    shared.extend(
        g.common
            .iter()
            .take(10)
            .map(|(k, v)| format!("{}: {}", cut(k, 50), cut(v, 100))),
    );
    if !shared.is_empty() {
        let mut r = run(&shared.join(" · "));
        r["isSubtle"] = true.into();
        header.push(rich(vec![r]));
    }
    let mut body = vec![json!({
        "type": "Container", "style": style, "bleed": true, "items": header
    })];
    if let Some(details) = &g.details {
        body.push(rich(vec![run(&cut(details, 2000))]));
    }
    let mut actions: Vec<Value> = g
        .external_url
        .iter()
        .map(|u| json!({"type": "Action.OpenUrl", "title": "Open Alertmanager", "url": u}))
        .collect();
    let mut used = json!({"body": body, "actions": actions}).to_string().len() + 600;
    let mut shown = 0;
    for a in &g.alerts {
        let section = section(a, g);
        let size = section.to_string().len();
        if used + size > MAX_BYTES - 200 {
            break;
        }
        used += size;
        body.push(section);
        shown += 1;
    }
    if let Some(line) = more(count - shown).filter(|_| !g.alerts.is_empty()) {
        let mut r = run(&line);
        r["isSubtle"] = true.into();
        body.push(rich(vec![r]));
    }
    actions.truncate(MAX_ACTIONS);
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": body,
    });
    if !actions.is_empty() {
        card["actions"] = actions.into();
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

fn section(a: &Alert, g: &Group) -> Value {
    let mut title = run(&format!("{}{}", a.icon(g), cut(a.name(g), 250)));
    title["weight"] = "Bolder".into();
    if let Some(url) = &a.generator_url {
        title["selectAction"] = json!({"type": "Action.OpenUrl", "url": url});
        title["color"] = "Accent".into();
    }
    let mut items = vec![rich(vec![title])];
    if let Some(d) = a.detail() {
        items.push(rich(vec![run(&cut(d, 600))]));
    }
    let facts = a.facts();
    if !facts.is_empty() {
        let mut r = run(&facts.join(" · "));
        r["isSubtle"] = true.into();
        r["size"] = "Small".into();
        items.push(rich(vec![r]));
    }
    json!({"type": "Container", "separator": true, "items": items})
}

/// The answers of a Workflows webhook that refuse the message itself: `400` (not a card it
/// takes), `401`, `403`, `404` (the workflow is gone or off).
pub fn refuses(status: u16) -> bool {
    super::refused_by_webhook(status)
}

/// Whether `body` is a card message within Teams' limits, whose alert text is all in
/// `TextRun`s (for the fuzz target and the tests).
///
/// # Errors
/// What is wrong.
pub fn within_limits(body: &[u8]) -> Result<(), String> {
    if body.len() > MAX_BYTES {
        return Err(format!("{} bytes", body.len()));
    }
    let m: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let content = &m["attachments"][0]["content"];
    if m["type"] != "message" || content["type"] != "AdaptiveCard" {
        return Err("not a card message".into());
    }
    fn only_runs(v: &Value) -> Result<(), String> {
        match v {
            Value::Object(o) => {
                if o.get("type").and_then(Value::as_str) == Some("TextBlock") {
                    return Err("a TextBlock (Markdown) in the card".into());
                }
                o.values().try_for_each(only_runs)
            }
            Value::Array(a) => a.iter().try_for_each(only_runs),
            _ => Ok(()),
        }
    }
    only_runs(content)
}
