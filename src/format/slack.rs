//! Slack incoming webhooks: a Block Kit message, with a `text` fallback for notifications.
//!
//! A header (🔥 firing or ✅ resolved, the alert name and count), the labels the group shares,
//! then one section per alert: its summary linked to its source, its description, the labels
//! that tell it apart, when it started (in the reader's time zone). Within Slack's limits
//! whatever the input: at most 50 blocks, 150 characters of header, 3,000 per section, and
//! about 10,000 characters in all; what does not fit is counted in a last line ("and 37 more
//! alerts") beside a link to Alertmanager.
//!
//! Text from alerts is escaped as Slack asks (`&`, `<`, `>`), so it can neither mention
//! (`<!channel>`, `<@U123>`) nor forge a link; `*`, `_`, `~` and `` ` `` stay, and can only
//! style text within their own field.

use serde::Serialize;
use serde_json::Value;

use super::alert::{more, read, Alert, Group};
use super::text::{chars, cut, escape_within};
use super::Event;

/// Most blocks in a message.
pub const MAX_BLOCKS: usize = 50;
/// Longest header text, in characters.
pub const MAX_HEADER: usize = 150;
/// Longest text of a section or a context element, in characters.
pub const MAX_SECTION: usize = 3000;
/// The most characters of text a message carries in all (Slack's hard cap on a message is
/// larger, but long messages are cut by clients).
pub const BUDGET: usize = 10_000;
/// Longest link that is kept (longer ones are left out, not cut).
const MAX_URL: usize = 1000;

fn mrkdwn_escape(c: char) -> Option<&'static str> {
    match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        _ => None,
    }
}

/// `s` escaped for mrkdwn, in at most `max` characters.
fn esc(s: &str, max: usize) -> String {
    escape_within(s, max, mrkdwn_escape)
}

/// A link target: no characters that end Slack's `<url|text>` markup.
fn link_target(url: &str) -> Option<String> {
    (url.len() <= MAX_URL).then(|| {
        url.replace('|', "%7C")
            .replace('<', "%3C")
            .replace('>', "%3E")
    })
}

/// A Block Kit message: written straight to its JSON (no tree of values in between).
#[derive(Debug, Serialize)]
pub struct Message {
    text: String,
    blocks: Vec<Block>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Header { text: PlainText },
    Context { elements: [Mrkdwn; 1] },
    Section { text: Mrkdwn },
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename = "plain_text")]
struct PlainText {
    text: String,
    emoji: bool,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename = "mrkdwn")]
struct Mrkdwn {
    text: String,
}

fn mrkdwn(text: String) -> Mrkdwn {
    Mrkdwn { text }
}

/// The body sent to a Slack incoming webhook.
pub fn body(event: &Event<'_>) -> Vec<u8> {
    super::to_json(&message(&read(event)))
}

/// The message for `g`.
pub fn message(g: &Group<'_>) -> Message {
    let count = g.count();
    let (icon, word) = g.status();
    let counted = if count > 1 {
        format!(" ({count})")
    } else {
        String::new()
    };
    let header = cut(&format!("{icon} {word}: {}{counted}", g.title), MAX_HEADER);
    let severity = g
        .severity
        .as_deref()
        .map(|s| format!(" ({s})"))
        .unwrap_or_default();
    let fallback = esc(&format!("[{word}{counted}] {}{severity}", g.title), 300);
    let mut used = chars(&header) + chars(&fallback);
    let mut blocks = vec![Block::Header {
        text: PlainText {
            text: header,
            emoji: true,
        },
    }];
    let mut shared: Vec<String> = g
        .severity
        .iter()
        .map(|s| format!("*Severity:* {}", esc(s, 100)))
        .collect();
    shared.extend(
        g.common
            .iter()
            .take(10)
            .map(|(k, v)| format!("{}: {}", esc(k, 50), esc(v, 100))),
    );
    if !shared.is_empty() {
        let line = shared.join("  ·  ");
        used += chars(&line);
        blocks.push(Block::Context {
            elements: [mrkdwn(line)],
        });
    }
    if let Some(details) = &g.details {
        let text = format!("```{}```", esc(details, 2500));
        used += chars(&text);
        blocks.push(Block::Section { text: mrkdwn(text) });
    }
    let mut shown = 0;
    for a in &g.alerts {
        let text = section(a, g);
        // Room for the last line, whatever happens.
        if blocks.len() + 2 > MAX_BLOCKS || used + chars(&text) > BUDGET - 400 {
            break;
        }
        used += chars(&text);
        blocks.push(Block::Section { text: mrkdwn(text) });
        shown += 1;
    }
    let mut last: Vec<String> = more(count - shown)
        .filter(|_| !g.alerts.is_empty())
        .into_iter()
        .collect();
    if let Some(url) = g.external_url.as_deref().and_then(link_target) {
        last.push(format!("<{url}|Open Alertmanager>"));
    }
    if !last.is_empty() {
        blocks.push(Block::Context {
            elements: [mrkdwn(last.join("  ·  "))],
        });
    }
    Message {
        text: fallback,
        blocks,
    }
}

/// One alert's section text: at most about 2,600 characters, so within [`MAX_SECTION`].
fn section(a: &Alert<'_>, g: &Group<'_>) -> String {
    let mut lines = Vec::new();
    let icon = a.icon(g);
    let name = esc(a.name(g), 250);
    lines.push(match a.generator_url.as_deref().and_then(link_target) {
        Some(url) => format!("{icon}*<{url}|{name}>*"),
        None => format!("{icon}*{name}*"),
    });
    if let Some(d) = a.detail() {
        lines.push(esc(d, 600));
    }
    let labels = a.label_pairs();
    if !labels.is_empty() {
        lines.push(esc(&labels.join("  ·  "), 600));
    }
    if let Some(ms) = a.starts_at_ms {
        let secs = ms.div_euclid(1000);
        let shown = crate::time::rfc3339(ms);
        lines.push(format!(
            "Started <!date^{secs}^{{date_short_pretty}} {{time}}|{shown}>"
        ));
    }
    lines.join("\n")
}

/// Whether `body` is a message within the limits above: JSON with a non-empty `text`, at most
/// [`MAX_BLOCKS`] header, section and context blocks, each text within its limit, and at most
/// [`BUDGET`] characters of text in all. (The fuzz target and the tests hold [`body`] to it.)
///
/// # Errors
/// What is wrong.
pub fn within_limits(body: &[u8]) -> Result<(), String> {
    let m: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let text = m["text"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or("no text")?;
    let blocks = m["blocks"].as_array().ok_or("no blocks")?;
    if blocks.is_empty() || blocks.len() > MAX_BLOCKS {
        return Err(format!("{} blocks", blocks.len()));
    }
    let mut total = chars(text);
    for b in blocks {
        let (inner, max) = match b["type"].as_str() {
            Some("header") => (&b["text"]["text"], MAX_HEADER),
            Some("section") => (&b["text"]["text"], MAX_SECTION),
            Some("context") => (&b["elements"][0]["text"], MAX_SECTION),
            other => return Err(format!("block type {other:?}")),
        };
        let inner = inner.as_str().ok_or("a block without text")?;
        if chars(inner) > max {
            return Err(format!(
                "{} characters in a {:?} block",
                chars(inner),
                b["type"]
            ));
        }
        total += chars(inner);
    }
    if total > BUDGET {
        return Err(format!("{total} characters in all"));
    }
    Ok(())
}

/// Slack's answers that refuse the message itself: `400 invalid_payload` / `no_text` (and the
/// other 400s), `403 action_prohibited` / `invalid_token`, `404 channel_not_found` /
/// `no_service`. (`410 channel_is_archived` disables the endpoint, as every 410 does.)
pub fn refuses(status: u16) -> bool {
    matches!(status, 400 | 403 | 404)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn message(g: &Group<'_>) -> Value {
        serde_json::to_value(super::message(g)).unwrap()
    }

    fn group(n: usize, description: &str) -> Group<'static> {
        Group {
            firing: true,
            title: "InstanceDown".into(),
            severity: Some("critical".into()),
            common: vec![("job".into(), "node".into())],
            alerts: (0..n)
                .map(|i| Alert {
                    firing: true,
                    summary: Some(format!("Instance node-{i} down").into()),
                    description: Some(description.to_owned().into()),
                    labels: vec![("instance".into(), format!("node-{i}:9100").into())],
                    starts_at_ms: Some(1_764_410_400_000),
                    generator_url: Some("http://prom.example:9090/graph?g0.expr=up".into()),
                })
                .collect(),
            external_url: Some("http://am.example:9093".into()),
            event_type: "alertmanager.firing".into(),
            ..Group::default()
        }
    }

    fn check_limits(m: &Value) {
        within_limits(m.to_string().as_bytes()).unwrap();
    }

    #[test]
    fn a_group_shows_each_alert_and_its_source() {
        let m = message(&group(3, "gone for 5 minutes"));
        check_limits(&m);
        assert_eq!(
            m["blocks"][0]["text"]["text"],
            "🔥 FIRING: InstanceDown (3)"
        );
        assert_eq!(m["text"], "[FIRING (3)] InstanceDown (critical)");
        let first = m["blocks"][2]["text"]["text"].as_str().unwrap();
        assert!(first.starts_with("*<http://prom.example:9090/graph?g0.expr=up|Instance node-0 down>*\ngone for 5 minutes\ninstance: node-0:9100\nStarted <!date^1764410400^"), "{first}");
        let last = m["blocks"].as_array().unwrap().last().unwrap();
        assert_eq!(
            last["elements"][0]["text"],
            "<http://am.example:9093|Open Alertmanager>"
        );
    }

    #[test]
    fn large_groups_stay_within_the_limits_and_say_what_is_left_out() {
        for (n, description) in [
            (1, "x".repeat(100_000)),
            (60, String::new()),
            (1000, "y".repeat(3000)),
        ] {
            let m = message(&group(n, &description));
            check_limits(&m);
            let blocks = m["blocks"].as_array().unwrap();
            let last = blocks.last().unwrap()["elements"][0]["text"]
                .as_str()
                .unwrap();
            let sections = blocks.iter().filter(|b| b["type"] == "section").count();
            if sections < n {
                assert!(
                    last.starts_with(&format!("and {} more alerts", n - sections)),
                    "{last}"
                );
            }
        }
    }

    #[test]
    fn alert_text_cannot_mention_or_forge_links() {
        let mut g = group(
            1,
            "<!channel> look at <https://evil.example|this> & <@U123>",
        );
        g.alerts[0].summary = Some("*bold* <!here>".into());
        g.alerts[0].generator_url = Some("http://a.example/x|y>z".into());
        let m = message(&g);
        let text = m["blocks"][2]["text"]["text"].as_str().unwrap();
        assert!(
            !text.contains("<!channel>") && !text.contains("<!here>") && !text.contains("<@U"),
            "{text}"
        );
        assert!(
            text.contains("&lt;!channel&gt;") && text.contains("&amp;"),
            "{text}"
        );
        assert!(
            text.starts_with("*<http://a.example/x%7Cy%3Ez|*bold* &lt;!here&gt;>*"),
            "{text}"
        );
    }
}
