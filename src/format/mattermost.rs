//! Mattermost incoming webhooks: a Markdown `text` (Mattermost also takes Slack's attachments,
//! but its own Markdown reads better): the headline in bold, a paragraph per alert with its
//! summary linked to its source, its description, labels and start, and what was left out; at
//! most 4,000 characters, so it stays one post.
//!
//! Markdown characters in alert text are escaped with `\` (no forged links, headings or code),
//! and `@` is followed by a zero-width space, so `@channel`, `@all` and `@here` notify nobody.

use super::lines::Markup;
use super::text::markdown_escape;
use super::Event;

/// Longest text, in characters (Mattermost splits a webhook's text into posts of 4,000).
pub const MAX_TEXT: usize = 4000;

const MARKUP: Markup = Markup {
    escape: markdown_escape,
    bold: |s| format!("**{s}**"),
    link: |url, text| format!("[{text}]({})", url.replace(')', "%29").replace(' ', "%20")),
};

/// The body sent to a Mattermost webhook.
pub fn body(event: &Event<'_>) -> Vec<u8> {
    super::lines::body(event, &MARKUP, MAX_TEXT)
}

/// Mattermost's answers that refuse the message itself: `400` (invalid or empty text), `401`,
/// `403`, `404` (no such webhook: `web.incoming_webhook.invalid.app_error`).
pub fn refuses(status: u16) -> bool {
    super::refused_by_webhook(status)
}

/// Whether `body` is a message within Mattermost's limits (for the fuzz target and the tests).
///
/// # Errors
/// What is wrong.
pub fn within_limits(body: &[u8]) -> Result<(), String> {
    super::lines::check(body, MAX_TEXT, &["@channel", "@all", "@here"])
}
