//! What an endpoint's requests look like: the Standard Webhooks envelope, or the message format
//! of a chat or incident tool, rendered from the stored event at send time (so a changed format
//! applies to pending deliveries, and the signature covers the body actually sent).
//!
//! Pure: event in, request body out, every limit of the target kept whatever the input; fuzzed.
//! One module per format; [`alert`] reads an event (an Alertmanager group or a native alert) into
//! the one shape they all render (with [`lenient`]'s readers), and [`text`] truncates and
//! escapes.

pub mod alert;
pub mod discord;
pub mod google_chat;
mod lenient;
mod lines;
pub mod mattermost;
pub mod pagerduty;
pub mod slack;
pub mod standard;
pub mod teams;
pub mod text;

use std::borrow::Cow;

use crate::model::Format;

/// The event a delivery carries, as stored.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub id: &'a str,
    pub event_type: &'a str,
    pub created_at_ms: i64,
    /// The payload, JSON text (an Alertmanager payload for `alertmanager.*` events).
    pub data: &'a str,
}

/// A request's body, its content type, and the headers a transformer plugin adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub body: Vec<u8>,
    pub content_type: Cow<'static, str>,
    /// Checked by [`crate::parse::transform_answer`]: never a header hookd sets itself.
    pub headers: Vec<(String, String)>,
}

impl Rendered {
    /// A JSON body.
    pub fn json(body: Vec<u8>) -> Self {
        Self {
            body,
            content_type: Cow::Borrowed("application/json"),
            headers: Vec::new(),
        }
    }
}

/// Why a transformer plugin gave no request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransformError {
    /// The configuration has no transformer of that name (any more): the delivery waits for
    /// one, as for a secret it cannot open.
    Missing(String),
    /// The transformer failed (an error it returned, a trap, its time, fuel or memory ran out,
    /// or a malformed answer). Deterministic: the same input fails again.
    Failed { kind: &'static str, reason: String },
}

/// What a transformer plugin is given: the stored event, owned (a call that needs more than
/// the inline budget moves to another thread), and the endpoint's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransformInput {
    pub id: String,
    pub event_type: String,
    pub created_at_ms: i64,
    /// The payload, JSON text.
    pub data: String,
    pub endpoint_name: String,
}

/// A transformer call under way.
pub type Transforming<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Rendered, TransformError>> + Send + 'a>,
>;

/// Runs transformer plugins: the plugin host implements it, and the composition root hands it
/// to delivery. A call never holds an async worker longer than a small inline budget: one that
/// needs more finishes on a thread of its own.
pub trait Transformers: Send + Sync {
    /// Runs the transformer called `name` on `input`.
    fn transform(&self, name: &str, input: TransformInput) -> Transforming<'_>;
}

/// What a format needs besides the event: the endpoint's format options, opened.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options<'a> {
    /// PagerDuty's integration key.
    pub routing_key: Option<&'a str>,
    /// PagerDuty's severity when an alert has none it knows.
    pub severity: Option<&'a str>,
}

/// The request a built-in `format` sends for `event`; `None` for a transformer plugin's format
/// (the plugin host renders those, see [`Transformers`]).
pub fn render(format: &Format, event: &Event<'_>, options: &Options<'_>) -> Option<Rendered> {
    let body = match format {
        Format::StandardWebhooks => standard::body(event),
        Format::Slack => slack::body(event),
        Format::Discord => discord::body(event),
        Format::GoogleChat => google_chat::body(event),
        Format::Mattermost => mattermost::body(event),
        Format::Pagerduty => pagerduty::body(event, options),
        Format::Teams => teams::body(event),
        Format::Plugin(_) => return None,
    };
    Some(Rendered::json(body))
}

/// `message` as compact JSON, written straight from its fields.
fn to_json<T: serde::Serialize>(message: &T) -> Vec<u8> {
    let mut body = Vec::with_capacity(1024);
    // Writing a message of strings, numbers and sequences to memory cannot fail.
    serde_json::to_writer(&mut body, message).unwrap_or_default();
    body
}

/// The length of `message` as compact JSON, counted without writing it.
fn json_len<T: serde::Serialize>(message: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut n = Count(0);
    serde_json::to_writer(&mut n, message).unwrap_or_default();
    n.0
}

/// Whether `body` keeps every limit of `format`'s target (checked by the tests and the fuzz
/// target): a Standard Webhooks body is JSON; a transformer's limits are its own.
///
/// # Errors
/// The first limit broken.
pub fn within_limits(format: &Format, body: &[u8]) -> Result<(), String> {
    match format {
        Format::StandardWebhooks => serde_json::from_slice::<serde::de::IgnoredAny>(body)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Format::Slack => slack::within_limits(body),
        Format::Discord => discord::within_limits(body),
        Format::GoogleChat => google_chat::within_limits(body),
        Format::Mattermost => mattermost::within_limits(body),
        Format::Pagerduty => pagerduty::within_limits(body),
        Format::Teams => teams::within_limits(body),
        Format::Plugin(_) => Ok(()),
    }
}

/// Hosts whose URLs get a format of their own when a create leaves `format` out: (host, or
/// `.suffix` for any host under it; path prefix; format). The first row that fits wins; the
/// README's table is this one.
pub const DETECTED: [(&str, &str, Format); 8] = [
    ("hooks.slack.com", "/", Format::Slack),
    ("discord.com", "/api/webhooks/", Format::Discord),
    ("discordapp.com", "/api/webhooks/", Format::Discord),
    ("chat.googleapis.com", "/", Format::GoogleChat),
    ("events.pagerduty.com", "/", Format::Pagerduty),
    ("events.eu.pagerduty.com", "/", Format::Pagerduty),
    (".logic.azure.com", "/workflows/", Format::Teams),
    (".environment.api.powerplatform.com", "/", Format::Teams),
];

/// The format a create without `format` gets, from the URL's host (and path).
pub fn detect(url: &str) -> Format {
    let Some((host, path)) = host_and_path(url) else {
        return Format::StandardWebhooks;
    };
    DETECTED
        .iter()
        .find(|(want, prefix, _)| {
            let host_fits = match want.strip_prefix('.') {
                Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(want),
                None => host == *want,
            };
            host_fits && path.starts_with(prefix)
        })
        .map_or(Format::StandardWebhooks, |(_, _, f)| f.clone())
}

/// The lowercase host and the path of an `http(s)://` URL (no user-info: the URL policy
/// refuses it).
fn host_and_path(url: &str) -> Option<(String, &str)> {
    let rest = url
        .get(..8)
        .filter(|s| s.eq_ignore_ascii_case("https://"))
        .map(|_| &url[8..])
        .or_else(|| {
            url.get(..7)
                .filter(|s| s.eq_ignore_ascii_case("http://"))
                .map(|_| &url[7..])
        })?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    };
    let path = &rest[end..];
    let path = if path.starts_with('/') { path } else { "/" };
    Some((host.trim_end_matches('.').to_ascii_lowercase(), path))
}

/// Whether an answer is the target's deterministic refusal of the message itself (a malformed
/// payload, a webhook that is gone or forbidden): trying the same body again cannot succeed,
/// so the delivery gives up instead of retrying. (410 Gone disables the endpoint, whatever its
/// format.)
pub fn refuses(format: &Format, status: u16) -> bool {
    match format {
        Format::StandardWebhooks | Format::Plugin(_) => false,
        Format::Slack => slack::refuses(status),
        Format::Discord => discord::refuses(status),
        Format::GoogleChat => google_chat::refuses(status),
        Format::Mattermost => mattermost::refuses(status),
        Format::Pagerduty => pagerduty::refuses(status),
        Format::Teams => teams::refuses(status),
    }
}

/// What the chat webhooks (Discord, Google Chat, Mattermost, Teams) answer when the request
/// itself is refused: `400` (a malformed message), `401` and `403` (the webhook's key), `404`
/// (no such webhook).
pub(crate) fn refused_by_webhook(status: u16) -> bool {
    matches!(status, 400 | 401 | 403 | 404)
}

/// The wait a `429` asks for in its body, for formats whose target says it there (Discord's
/// `{"retry_after": 1.5}`); the `Retry-After` header, when sent, counts first.
pub fn retry_after_in_body(format: &Format, body: &str) -> Option<u64> {
    match format {
        Format::Discord => discord::retry_after(body),
        _ => None,
    }
}

/// The event a test send delivers in `format`: for Standard Webhooks today's `hookd.test`
/// event, for the chat and incident formats a realistic Alertmanager group of one firing alert,
/// so "Send test" puts a real message in the channel.
pub fn test_event(format: &Format, endpoint_id: &str) -> (&'static str, String) {
    match format {
        Format::StandardWebhooks => (
            "hookd.test",
            serde_json::json!({"endpointId": endpoint_id, "message": "a test event from hookd"})
                .to_string(),
        ),
        // A transformer gets the sample group too: most exist to turn alerts into messages.
        Format::Slack
        | Format::Plugin(_)
        | Format::Discord
        | Format::GoogleChat
        | Format::Mattermost
        | Format::Pagerduty
        | Format::Teams => ("alertmanager.firing", alert::sample_group(endpoint_id)),
    }
}

/// An event at a fixed time, for the renderers' tests.
#[cfg(test)]
pub(crate) fn test_event_of<'a>(event_type: &'a str, data: &'a str) -> Event<'a> {
    Event {
        id: "msg_1",
        event_type,
        created_at_ms: 1_764_410_400_000,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_lists_every_format_and_every_detected_host() {
        let readme = include_str!("../../README.md");
        for f in Format::ALL {
            assert!(readme.contains(&format!("| `{}` |", f.as_str())), "{f:?}");
        }
        for (host, path, format) in DETECTED {
            let host = if host.starts_with('.') {
                format!("*{host}")
            } else {
                host.to_owned()
            };
            let row = if path == "/" {
                format!("| host `{host}` | `{}` |", format.as_str())
            } else {
                format!(
                    "| host `{host}`, path `{path}...` | `{}` |",
                    format.as_str()
                )
            };
            assert!(readme.contains(&row), "README.md lacks {row}");
        }
    }

    #[test]
    fn formats_are_chosen_from_the_host() {
        for (url, want) in [
            (
                "https://hooks.slack.com/services/T00/B00/xxx",
                Format::Slack,
            ),
            (
                "HTTPS://Hooks.Slack.COM/services/T00/B00/xxx",
                Format::Slack,
            ),
            ("https://hooks.slack.com:443/services/x", Format::Slack),
            ("https://hooks.slack.com./services/x", Format::Slack),
            (
                "https://hooks.slack.com.evil.example/x",
                Format::StandardWebhooks,
            ),
            ("https://evilhooks.slack.com/x", Format::StandardWebhooks),
            ("https://slack.com/x", Format::StandardWebhooks),
            (
                "https://receiver.example/hooks.slack.com",
                Format::StandardWebhooks,
            ),
            (
                "https://a.example/?u=https://hooks.slack.com/",
                Format::StandardWebhooks,
            ),
            ("https://discord.com/api/webhooks/123/abc", Format::Discord),
            (
                "https://discordapp.com/api/webhooks/123/abc",
                Format::Discord,
            ),
            ("https://discord.com/channels/1/2", Format::StandardWebhooks),
            (
                "https://chat.googleapis.com/v1/spaces/AAA/messages?key=k&token=t",
                Format::GoogleChat,
            ),
            (
                "https://prod-12.westus.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01",
                Format::Teams,
            ),
            ("https://logic.azure.com/workflows/abc", Format::StandardWebhooks),
            ("https://prod-12.westus.logic.azure.com/other", Format::StandardWebhooks),
            (
                "https://default1234.56.environment.api.powerplatform.com:443/powerautomate/automations/direct/workflows/abc",
                Format::Teams,
            ),
            ("not a url", Format::StandardWebhooks),
        ] {
            assert_eq!(detect(url), want, "{url}");
        }
    }
}
