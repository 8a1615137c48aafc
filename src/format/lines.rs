//! A group as lines of marked-up text, for the formats whose message is one text (Google Chat,
//! Mattermost): a headline, what the group shares, a short paragraph per alert, and what was
//! left out, within a length in characters. Each format gives its markup.

use super::alert::Group;
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
pub fn message(g: &Group, m: &Markup, max: usize) -> String {
    let esc = |s: &str, n: usize| escape_within(s, n, m.escape);
    let count = g.alerts.len() + g.truncated;
    let (icon, word) = if g.firing {
        ("🔥", "FIRING")
    } else {
        ("✅", "RESOLVED")
    };
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
        let mixed = a.firing != g.firing;
        let icon = match (mixed, a.firing) {
            (false, _) => "",
            (true, true) => "🔥 ",
            (true, false) => "✅ ",
        };
        let name = a
            .summary
            .as_deref()
            .or(a.description.as_deref().filter(|_| a.summary.is_none()))
            .unwrap_or(&g.title);
        let name = (m.bold)(&esc(name, 250));
        let mut para = vec![
            match a.generator_url.as_deref().filter(|u| u.len() <= MAX_LINK) {
                Some(url) => format!("• {icon}{}", (m.link)(url, &name)),
                None => format!("• {icon}{name}"),
            },
        ];
        if let (Some(d), true) = (&a.description, a.summary.is_some()) {
            para.push(format!("  {}", esc(d, 500)));
        }
        let mut facts: Vec<String> = a
            .labels
            .iter()
            .take(8)
            .map(|(k, v)| format!("{}: {}", cut(k, 40), cut(v, 100)))
            .collect();
        if let Some(ms) = a.starts_at_ms {
            facts.push(format!("since {}", crate::time::rfc3339(ms)));
        }
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
    let more = count - shown;
    if more > 0 && !g.alerts.is_empty() {
        tail.insert(
            0,
            format!("and {more} more alert{}", if more == 1 { "" } else { "s" }),
        );
    }
    if !tail.is_empty() {
        out.push(tail.join(" · "));
    }
    let text = out.join("\n");
    // Each part is bounded so that the whole fits any `max` of 4,000 and more (at most about
    // 2,600 before the alerts and the last line); the cut is only a guard for smaller ones.
    cut(&text, max)
}
