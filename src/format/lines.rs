//! A group as lines of marked-up text, for the formats whose message is one text (Google Chat,
//! Mattermost): a headline, what the group shares, a short paragraph per alert, and what was
//! left out, within a length in characters. Each format gives its markup.

use super::alert::{more, Group};
use super::text::{chars, cut, escape_within};

/// Longest link that is kept (a longer one is left out, never cut).
pub const MAX_LINK: usize = 500;

/// How one target writes text.
pub struct Markup {
    /// Escapes a character of alert text (or `None`: as it is).
    pub escape: fn(char) -> Option<&'static str>,
    /// `text` (escaped already) in bold.
    pub bold: fn(&str) -> String,
    /// A link to `url` (an http(s) URL) reading `text` (escaped already).
    pub link: fn(url: &str, text: &str) -> String,
}

/// The message for `g` in at most `max` characters.
pub fn message(g: &Group<'_>, m: &Markup, max: usize) -> String {
    let esc = |s: &str, n: usize| escape_within(s, n, m.escape);
    let count = g.count();
    let (icon, word) = g.status();
    let mut head = format!("{icon} {}: {}", (m.bold)(word), esc(&g.title, 200));
    if count > 1 {
        head.push_str(&format!(" ({count})"));
    }
    if let Some(s) = &g.severity {
        head.push_str(&format!(" · severity {}", esc(s, 100)));
    }
    let mut out = vec![head];
    let shared: Vec<String> = g
        .common
        .iter()
        .take(8)
        .map(|(k, v)| format!("{}: {}", esc(k, 50), esc(v, 100)))
        .collect();
    if !shared.is_empty() {
        out.push(shared.join(" · "));
    }
    if let Some(details) = &g.details {
        out.push(esc(details, 1000));
    }
    let mut tail = Vec::new();
    if let Some(url) = g.external_url.as_deref().filter(|u| u.len() <= MAX_LINK) {
        tail.push((m.link)(url, "Open Alertmanager"));
    }
    let reserve = 80 + tail.iter().map(|t| chars(t)).sum::<usize>();
    let mut used: usize = out.iter().map(|l| chars(l) + 1).sum();
    let mut shown = 0;
    for a in &g.alerts {
        let icon = a.icon(g);
        let name = (m.bold)(&esc(a.name(g), 250));
        let mut para = vec![
            match a.generator_url.as_deref().filter(|u| u.len() <= MAX_LINK) {
                Some(url) => format!("• {icon}{}", (m.link)(url, &name)),
                None => format!("• {icon}{name}"),
            },
        ];
        if let Some(d) = a.detail() {
            para.push(format!("  {}", esc(d, 500)));
        }
        let facts = a.facts();
        if !facts.is_empty() {
            para.push(format!("  {}", esc(&facts.join(" · "), 400)));
        }
        let para = para.join("\n");
        if used + chars(&para) + 1 + reserve > max {
            break;
        }
        used += chars(&para) + 1;
        out.push(para);
        shown += 1;
    }
    if let Some(line) = more(count - shown).filter(|_| !g.alerts.is_empty()) {
        tail.insert(0, line);
    }
    if !tail.is_empty() {
        out.push(tail.join(" · "));
    }
    let text = out.join("\n");
    // Each part is bounded so that the whole fits any `max` of 4,000 and more (at most about
    // 2,600 before the alerts and the last line); the cut is only a guard for smaller ones.
    cut(&text, max)
}

/// The body of a one-text format: `{"text": ...}`.
pub fn body(event: &super::Event<'_>, m: &Markup, max: usize) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Text {
        text: String,
    }
    super::to_json(&Text {
        text: message(&super::alert::read(event), m, max),
    })
}

/// Whether `body` is `{"text": ...}` with a text of 1 to `max` characters holding none of
/// `forbidden` (the target's mentions).
///
/// # Errors
/// What is wrong.
pub fn check(body: &[u8], max: usize, forbidden: &[&str]) -> Result<(), String> {
    let m: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let text = m["text"].as_str().ok_or("no text")?;
    if text.is_empty() || chars(text) > max {
        return Err(format!("{} characters", chars(text)));
    }
    match forbidden.iter().find(|f| text.contains(*f)) {
        Some(f) => Err(format!("{f} in {text}")),
        None => Ok(()),
    }
}
