//! Google Chat incoming webhooks: a text message (`{"text": ...}`) in Chat's formatting: the
//! headline in bold, a paragraph per alert with its summary linked to its source, its
//! description, labels and start, and what was left out; at most 4,000 characters (Chat takes
//! 32,000 bytes per message; 4,000 characters stay readable and within it whatever they are).
//!
//! Chat reads `<users/all>` as a mention of everyone and `<url|text>` as a link, with no way to
//! escape them: `<` and `>` in alert text become `‹` and `›`, so alert text can do neither.

use super::lines::Markup;
use super::Event;

/// Longest text, in characters.
pub const MAX_TEXT: usize = 4000;
/// Chat's limit on a whole message, in bytes.
pub const MAX_BYTES: usize = 32_000;

const MARKUP: Markup = Markup {
    escape: |c| match c {
        '<' => Some("‹"),
        '>' => Some("›"),
        _ => None,
    },
    bold: |s| format!("*{s}*"),
    link: |url, text| format!("<{}|{text}>", url.replace('|', "%7C").replace('>', "%3E")),
};

/// The body sent to a Google Chat webhook.
pub fn body(event: &Event<'_>) -> Vec<u8> {
    super::lines::body(event, &MARKUP, MAX_TEXT)
}

/// Google Chat's answers that refuse the message itself: `400` (a malformed message), `401`,
/// `403` (the webhook's key), `404` (no such space or webhook).
pub fn refuses(status: u16) -> bool {
    super::refused_by_webhook(status)
}

/// Whether `body` is a message within Chat's limits (for the fuzz target and the tests).
///
/// # Errors
/// What is wrong.
pub fn within_limits(body: &[u8]) -> Result<(), String> {
    if body.len() > MAX_BYTES {
        return Err(format!("{} bytes", body.len()));
    }
    super::lines::check(body, MAX_TEXT, &["<users/"])
}
