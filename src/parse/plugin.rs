//! Plugin answers: what a URL-policy plugin's `check` returned, validated into a verdict; what
//! a transformer's `transform` returned, validated into a request; and the rules for plugin
//! names and settings that the configuration checks.

use std::borrow::Cow;

use crate::format::Rendered;

/// Longest deny reason a plugin may give, in bytes.
pub const MAX_DENY_REASON: usize = 512;
/// Longest `settings` string handed to a plugin, in bytes.
pub const MAX_PLUGIN_SETTINGS: usize = 65_536;

/// A plugin's well-formed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginVerdict {
    Allow,
    Deny(String),
}

/// Validates what a plugin's `check` returned: `ok` allows; `err` denies with a reason that must
/// be 1-512 bytes of text without control characters.
///
/// # Errors
/// What is wrong with the answer (the plugin then counts as failed, not as denying).
pub fn plugin_answer(answer: Result<(), String>) -> Result<PluginVerdict, String> {
    match answer {
        Ok(()) => Ok(PluginVerdict::Allow),
        Err(reason) => reason_text(&reason, "deny reason").map(PluginVerdict::Deny),
    }
}

/// A plugin's reason (`what`: "deny reason", "error"), trimmed: 1-512 bytes, no control
/// characters.
fn reason_text(reason: &str, what: &str) -> Result<String, String> {
    let trimmed = reason.trim();
    if trimmed.is_empty() {
        Err(format!("the {what} is empty"))
    } else if reason.len() > MAX_DENY_REASON {
        Err(format!(
            "the {what} is {} bytes, over the limit of {MAX_DENY_REASON}",
            reason.len()
        ))
    } else if trimmed.chars().any(char::is_control) {
        Err(format!("the {what} contains control characters"))
    } else {
        Ok(trimmed.to_owned())
    }
}

pub use crate::model::is_plugin_name;

/// Largest body a transformer may return: as large as the largest alert hookd accepts by
/// default, so a transformer that passes a group through is never refused.
pub const MAX_TRANSFORM_BODY: usize = 4 << 20;
/// Most extra headers a transformer may return.
pub const MAX_TRANSFORM_HEADERS: usize = 16;
/// Longest content type a transformer may return.
pub const MAX_CONTENT_TYPE: usize = 255;

/// What a transformer's `transform` returned: the request (body, content type, extra headers),
/// or its own error.
pub type TransformAnswer = Result<(Vec<u8>, String, Vec<(String, String)>), String>;

/// Validates what a transformer returned: a request within the limits (body at most 4 MiB, a
/// content type of 1-255 visible ASCII characters, at most 16 headers by the rules of an
/// endpoint's custom headers), or an error reason of 1-512 bytes of text.
///
/// # Errors
/// `Ok(Err(reason))` is the transformer's own, well-formed error; `Err(why)` says what is wrong
/// with a malformed answer.
pub fn transform_answer(answer: TransformAnswer) -> Result<Result<Rendered, String>, String> {
    let (body, content_type, headers) = match answer {
        Ok(request) => request,
        Err(reason) => return reason_text(&reason, "error").map(Err),
    };
    if body.len() > MAX_TRANSFORM_BODY {
        return Err(format!(
            "the body is {} bytes, over the limit of {MAX_TRANSFORM_BODY}",
            body.len()
        ));
    }
    if content_type.is_empty()
        || content_type.len() > MAX_CONTENT_TYPE
        || !content_type.bytes().all(|b| (b' '..=b'~').contains(&b))
        || content_type.trim() != content_type
    {
        return Err(format!(
            "the content type must be 1-{MAX_CONTENT_TYPE} printable ASCII characters"
        ));
    }
    if headers.len() > MAX_TRANSFORM_HEADERS {
        return Err(format!(
            "{} headers, over the limit of {MAX_TRANSFORM_HEADERS}",
            headers.len()
        ));
    }
    for (i, (name, value)) in headers.iter().enumerate() {
        let shown: String = name.chars().take(100).collect();
        if let Some(why) = super::header_name_problem(name) {
            return Err(format!("header {shown:?}: the name {why}"));
        }
        if let Some(why) = super::header_value_problem(value) {
            return Err(format!("header {shown:?}: the value {why}"));
        }
        if headers[..i]
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            return Err(format!("header {shown:?} is given twice"));
        }
    }
    Ok(Ok(Rendered {
        body,
        content_type: Cow::Owned(content_type),
        headers,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn plugin_answers() {
        assert_eq!(plugin_answer(Ok(())), Ok(PluginVerdict::Allow));
        assert_eq!(
            plugin_answer(Err(" not our host ".into())),
            Ok(PluginVerdict::Deny("not our host".into()))
        );
        assert!(plugin_answer(Err(String::new())).is_err());
        assert!(plugin_answer(Err("x".repeat(513))).is_err());
        assert!(plugin_answer(Err("a\u{0}b".into())).is_err());
    }

    fn request(ct: &str, headers: &[(&str, &str)]) -> TransformAnswer {
        let headers = headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        Ok((b"{}".to_vec(), ct.to_owned(), headers))
    }

    #[test]
    fn transform_answers() {
        let ok = transform_answer(request("application/json", &[("X-Title", "Disk full")]));
        let ok = ok.unwrap().unwrap();
        assert_eq!(ok.content_type, "application/json");
        assert_eq!(ok.headers, [("X-Title".to_owned(), "Disk full".to_owned())]);
        assert_eq!(
            transform_answer(Err(" no topic ".into())),
            Ok(Err("no topic".into()))
        );
        for bad in [
            transform_answer(Err(String::new())),
            transform_answer(Err("x".repeat(513))),
            transform_answer(request("", &[])),
            transform_answer(request("text/plain\r\nX-Evil: 1", &[])),
            transform_answer(request(&"a".repeat(256), &[])),
            transform_answer(request("text/plain", &[("webhook-signature", "v1,forged")])),
            transform_answer(request("text/plain", &[("Content-Length", "1")])),
            transform_answer(request("text/plain", &[("Host", "elsewhere")])),
            transform_answer(request("text/plain", &[("X-A", "a\nb")])),
            transform_answer(request("text/plain", &[("bad name", "a")])),
            transform_answer(request("text/plain", &[("X-A", "1"), ("x-a", "2")])),
            transform_answer(request("text/plain", &[("X-A", "1"); 17])),
            transform_answer(Ok((vec![0; MAX_TRANSFORM_BODY + 1], "a/b".into(), vec![]))),
        ] {
            assert!(bad.is_err(), "{bad:?}");
        }
    }
}
