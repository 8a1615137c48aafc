//! Discord webhooks: a `content` line (🔥 firing or ✅ resolved, the alert name and count) and
//! an embed per alert (red or green, its summary linked to its source, its description and
//! distinguishing labels, when it started), within Discord's limits whatever the input:
//! `content` 2,000 characters, at most 10 embeds, a title 256, a description 4,096, and 6,000
//! characters over all embeds; what does not fit is counted ("and 37 more alerts").
//!
//! Nobody is pinged: `allowed_mentions` is empty, and `@` in alert text is followed by a
//! zero-width space so `@everyone`, `@here` and `<@123>` do not even read as mentions. Markdown
//! characters in alert text are escaped with `\`, so text cannot forge a link or a heading.

use serde::Serialize;
use serde_json::{json, Value};

use super::alert::more;
use super::alert::{read, Alert, Group};
use super::text::{chars, escape_within, inline_markdown_escape, markdown_escape};
use super::Event;

pub const MAX_CONTENT: usize = 2000;
pub const MAX_EMBEDS: usize = 10;
pub const MAX_TITLE: usize = 256;
pub const MAX_DESCRIPTION: usize = 4096;
/// Characters over all embeds (titles, descriptions, footers, ...).
pub const MAX_EMBED_TOTAL: usize = 6000;

const RED: u32 = 0x00E0_1E5A;
const GREEN: u32 = 0x002E_B67D;

fn esc(s: &str, max: usize) -> String {
    escape_within(s, max, markdown_escape)
}

/// A webhook message: written straight to its JSON (no tree of values in between).
#[derive(Debug, Serialize)]
pub struct Message<'a> {
    content: String,
    allowed_mentions: Mentions,
    embeds: Vec<Embed<'a>>,
}

/// Whom the message may ping: nobody.
#[derive(Debug, Serialize)]
struct Mentions {
    parse: [(); 0],
}

#[derive(Debug, Serialize)]
struct Embed<'a> {
    title: String,
    color: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<String>,
}

/// The body sent to a Discord webhook.
pub fn body(event: &Event<'_>) -> Vec<u8> {
    super::to_json(&message(&read(event)))
}

pub fn message<'a>(g: &'a Group<'_>) -> Message<'a> {
    let count = g.count();
    let (icon, word) = g.status();
    // Each part bounded, so the line stays within MAX_CONTENT whole (about 1,400 characters,
    // then at most 600 of what was left out and the link).
    let mut head = format!("{icon} **{word}**: {}", esc(&g.title, 150));
    if count > 1 {
        head.push_str(&format!(" ({count})"));
    }
    if let Some(s) = &g.severity {
        head.push_str(&format!(" · severity {}", esc(s, 50)));
    }
    let shared: Vec<String> = g
        .common
        .iter()
        .take(6)
        .map(|(k, v)| format!("{}: {}", esc(k, 30), esc(v, 60)))
        .collect();
    if !shared.is_empty() {
        head.push('\n');
        head.push_str(&shared.join(" · "));
    }
    if let Some(details) = &g.details {
        head.push('\n');
        head.push_str(&esc(details, 600));
    }
    let mut embeds = Vec::new();
    let mut used = 0;
    for a in &g.alerts {
        if embeds.len() == MAX_EMBEDS {
            break;
        }
        let embed = embed(a, g);
        let size = embed_chars(&embed);
        if used + size > MAX_EMBED_TOTAL {
            break;
        }
        used += size;
        embeds.push(embed);
    }
    let mut tail: Vec<String> = more(count - embeds.len())
        .filter(|_| !g.alerts.is_empty())
        .into_iter()
        .collect();
    if let Some(url) = g
        .external_url
        .as_deref()
        .filter(|u| u.len() <= super::lines::MAX_LINK)
    {
        tail.push(format!(
            "[Open Alertmanager](<{}>)",
            url.replace('>', "%3E").replace(')', "%29")
        ));
    }
    let tail = tail.join(" · ");
    // The content line keeps its end (what was left out, the link) whole.
    let room = MAX_CONTENT.saturating_sub(chars(&tail) + 1);
    let mut content = super::text::cut(&head, room.min(MAX_CONTENT));
    if !tail.is_empty() {
        content.push('\n');
        content.push_str(&tail);
    }
    Message {
        content,
        allowed_mentions: Mentions { parse: [] },
        embeds,
    }
}

fn embed<'a>(a: &'a Alert<'_>, g: &Group<'_>) -> Embed<'a> {
    let mut description = Vec::new();
    if let Some(d) = a.detail() {
        description.push(esc(d, 400));
    }
    let labels = a.label_pairs();
    if !labels.is_empty() {
        description.push(esc(&labels.join(" · "), 300));
    }
    Embed {
        title: escape_within(a.name(g), 200, inline_markdown_escape),
        color: if a.firing { RED } else { GREEN },
        description: (!description.is_empty()).then(|| description.join("\n")),
        url: a.generator_url.as_deref().filter(|u| u.len() <= 2000),
        timestamp: a.starts_at_ms.map(crate::time::rfc3339),
    }
}

/// The characters of an embed that count toward [`MAX_EMBED_TOTAL`].
fn embed_chars(e: &Embed<'_>) -> usize {
    chars(&e.title) + e.description.as_deref().map_or(0, chars)
}

/// Discord's answers that refuse the message itself: `400` (a malformed body), `401`, `403`,
/// `404` (`Unknown Webhook`).
pub fn refuses(status: u16) -> bool {
    super::refused_by_webhook(status)
}

/// The wait a `429` asks for in its JSON body (`{"retry_after": 1.5}`, seconds), rounded up.
pub fn retry_after(body: &str) -> Option<u64> {
    let v: Value = serde_json::from_str(body).ok()?;
    let secs = v.get("retry_after")?.as_f64()?;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (0.0..1e9).contains(&secs).then(|| secs.ceil() as u64)
}

/// Whether `body` is a message within Discord's limits (for the fuzz target and the tests).
///
/// # Errors
/// What is wrong.
pub fn within_limits(body: &[u8]) -> Result<(), String> {
    let m: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let content = m["content"].as_str().ok_or("no content")?;
    if content.is_empty() || chars(content) > MAX_CONTENT {
        return Err(format!("content of {} characters", chars(content)));
    }
    if m["allowed_mentions"] != json!({"parse": []}) {
        return Err("mentions allowed".into());
    }
    let embeds = m["embeds"].as_array().ok_or("no embeds")?;
    if embeds.len() > MAX_EMBEDS {
        return Err(format!("{} embeds", embeds.len()));
    }
    let mut total = 0;
    for e in embeds {
        let title = e["title"].as_str().map_or(0, chars);
        let description = e["description"].as_str().map_or(0, chars);
        if title > MAX_TITLE || description > MAX_DESCRIPTION {
            return Err(format!("an embed of {title} / {description} characters"));
        }
        total += title + description;
    }
    if total > MAX_EMBED_TOTAL {
        return Err(format!("{total} characters over all embeds"));
    }
    for text in
        std::iter::once(content).chain(embeds.iter().filter_map(|e| e["description"].as_str()))
    {
        if text.contains("@everyone") || text.contains("@here") {
            return Err(format!("a mention in {text}"));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn message(g: &Group<'_>) -> Value {
        serde_json::to_value(super::message(g)).unwrap()
    }

    fn group(n: usize, text: &str) -> Group<'static> {
        Group {
            firing: true,
            title: "InstanceDown".into(),
            severity: Some("critical".into()),
            alerts: (0..n)
                .map(|i| Alert {
                    firing: i % 2 == 0,
                    summary: Some(format!("node-{i} down {text}").into()),
                    description: Some(text.to_owned().into()),
                    labels: vec![("instance".into(), format!("node-{i}").into())],
                    starts_at_ms: Some(1_764_410_400_000),
                    generator_url: Some("http://prom.example/graph".into()),
                })
                .collect(),
            external_url: Some("http://am.example:9093".into()),
            ..Group::default()
        }
    }

    #[test]
    fn limits_hold_and_nobody_is_pinged() {
        for (n, text) in [
            (1, "x".repeat(100_000)),
            (3, "@everyone @here <@123> **b** [x](http://e)".into()),
            (1000, "é".repeat(3000)),
        ] {
            let m = message(&group(n, &text));
            within_limits(m.to_string().as_bytes()).unwrap();
            if n == 1000 {
                assert!(
                    m["content"].as_str().unwrap().contains("more alerts"),
                    "{m}"
                );
            }
        }
        let m = message(&group(1, "@everyone [link](http://evil)"));
        let d = m["embeds"][0]["description"].as_str().unwrap();
        assert_eq!(
            d,
            "@\u{200B}everyone \\[link\\]\\(http://evil\\)\ninstance: node\\-0"
        );
        assert_eq!(m["embeds"][0]["color"], RED);
        assert_eq!(m["embeds"][0]["url"], "http://prom.example/graph");
    }

    #[test]
    fn a_429_body_says_how_long() {
        assert_eq!(
            retry_after(
                r#"{"message": "You are being rate limited.", "retry_after": 1.5, "global": false}"#
            ),
            Some(2)
        );
        assert_eq!(retry_after("{}"), None);
        assert_eq!(retry_after(r#"{"retry_after": -1}"#), None);
        assert_eq!(retry_after("nope"), None);
    }
}
