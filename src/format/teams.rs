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

use serde::Serialize;
use serde_json::Value;

use super::alert::{more, read, Alert, Group, Str};
use super::text::cut;
use super::Event;

/// The most bytes of a message (Teams' limit is about 28 KB).
pub const MAX_BYTES: usize = 24 * 1024;
/// Actions (buttons) at most.
const MAX_ACTIONS: usize = 5;

/// A card message in the Workflows envelope: written straight to its JSON (no tree of values
/// in between).
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename = "message")]
pub struct Message<'a> {
    attachments: [Attachment<'a>; 1],
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Attachment<'a> {
    content_type: &'static str,
    /// Always `null`: the card is inline.
    content_url: Option<()>,
    content: Card<'a>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename = "AdaptiveCard")]
struct Card<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    msteams: Width,
    body: Vec<Element<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    actions: Vec<OpenUrl<'a>>,
}

#[derive(Debug, Serialize)]
struct Width {
    width: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type")]
enum Element<'a> {
    Container {
        #[serde(skip_serializing_if = "Option::is_none")]
        style: Option<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        bleed: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        separator: Option<bool>,
        items: Vec<Element<'a>>,
    },
    RichTextBlock {
        inlines: [TextRun<'a>; 1],
    },
}

/// Plain text: a `TextRun`, never read as Markdown.
#[derive(Debug, Default, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
struct TextRun<'a> {
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    weight: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_subtle: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    select_action: Option<OpenUrl<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    color: Option<&'static str>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename = "Action.OpenUrl")]
struct OpenUrl<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'static str>,
    url: Str<'a>,
}

fn run(text: String) -> TextRun<'static> {
    TextRun {
        text,
        ..TextRun::default()
    }
}

/// A subtle (grey) run.
fn subtle(text: String) -> TextRun<'static> {
    TextRun {
        is_subtle: Some(true),
        ..run(text)
    }
}

fn rich(run: TextRun<'_>) -> Element<'_> {
    Element::RichTextBlock { inlines: [run] }
}

/// The body sent to a Teams Workflows webhook.
pub fn body(event: &Event<'_>) -> Vec<u8> {
    super::to_json(&message(&read(event)))
}

pub fn message<'a>(g: &Group<'a>) -> Message<'a> {
    let count = g.count();
    let (icon, word) = g.status();
    let style = if g.firing { "attention" } else { "good" };
    let mut title = format!("{icon} {word}: {}", cut(&g.title, 200));
    if count > 1 {
        title.push_str(&format!(" ({count})"));
    }
    let mut header = vec![rich(TextRun {
        weight: Some("Bolder"),
        size: Some("Medium"),
        ..run(title)
    })];
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
        header.push(rich(subtle(shared.join(" · "))));
    }
    let mut body = vec![Element::Container {
        style: Some(style),
        bleed: Some(true),
        separator: None,
        items: header,
    }];
    if let Some(details) = &g.details {
        body.push(rich(run(cut(details, 2000))));
    }
    let mut actions: Vec<OpenUrl<'a>> = g
        .external_url
        .iter()
        .map(|u| OpenUrl {
            title: Some("Open Alertmanager"),
            url: u.clone(),
        })
        .collect();
    let mut used = super::json_len(&body) + super::json_len(&actions) + 600;
    let mut shown = 0;
    for a in &g.alerts {
        let section = section(a, g);
        let size = super::json_len(&section);
        if used + size > MAX_BYTES - 200 {
            break;
        }
        used += size;
        body.push(section);
        shown += 1;
    }
    if let Some(line) = more(count - shown).filter(|_| !g.alerts.is_empty()) {
        body.push(rich(subtle(line)));
    }
    actions.truncate(MAX_ACTIONS);
    Message {
        attachments: [Attachment {
            content_type: "application/vnd.microsoft.card.adaptive",
            content_url: None,
            content: Card {
                schema: "http://adaptivecards.io/schemas/adaptive-card.json",
                version: "1.4",
                msteams: Width { width: "Full" },
                body,
                actions,
            },
        }],
    }
}

fn section<'a>(a: &Alert<'a>, g: &Group<'a>) -> Element<'a> {
    let mut title = TextRun {
        weight: Some("Bolder"),
        ..run(format!("{}{}", a.icon(g), cut(a.name(g), 250)))
    };
    if let Some(url) = &a.generator_url {
        title.select_action = Some(OpenUrl {
            title: None,
            url: url.clone(),
        });
        title.color = Some("Accent");
    }
    let mut items = vec![rich(title)];
    if let Some(d) = a.detail() {
        items.push(rich(run(cut(d, 600))));
    }
    let facts = a.facts();
    if !facts.is_empty() {
        items.push(rich(TextRun {
            size: Some("Small"),
            ..subtle(facts.join(" · "))
        }));
    }
    Element::Container {
        style: None,
        bleed: None,
        separator: Some(true),
        items,
    }
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
