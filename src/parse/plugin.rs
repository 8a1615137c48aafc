//! Plugin answers: what a URL-policy plugin's `check` returned, validated into a verdict, and
//! the rules for plugin names and settings that the configuration checks.

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
        Err(reason) => {
            let trimmed = reason.trim();
            if trimmed.is_empty() {
                Err("the deny reason is empty".into())
            } else if reason.len() > MAX_DENY_REASON {
                Err(format!(
                    "the deny reason is {} bytes, over the limit of {MAX_DENY_REASON}",
                    reason.len()
                ))
            } else if trimmed.chars().any(char::is_control) {
                Err("the deny reason contains control characters".into())
            } else {
                Ok(PluginVerdict::Deny(trimmed.to_owned()))
            }
        }
    }
}

/// A plugin name: 1-64 characters of `[A-Za-z0-9_-]`.
pub fn is_plugin_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
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
}
