//! hookd URL-policy plugin: allow only endpoints whose host is on an allow-list.
//!
//! Settings: host patterns separated by commas or spaces.
//! - `hooks.slack.com`: exactly this host;
//! - `.pagerduty.com` or `*.pagerduty.com`: any host under pagerduty.com (and pagerduty.com).
//!
//! With empty settings every URL is denied, so a missing setting fails safe.

// The generated ABI shim passes each of the four strings as (pointer, length).
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({ path: "../wit/url-policy.wit", world: "url-policy" });

include!("../../common/url.rs");
include!("../../common/settings.rs");
include!("../../common/alloc.rs");

struct HostAllowlist;

impl Guest for HostAllowlist {
    fn check(
        url: String,
        _name: String,
        _operation: String,
        settings: String,
    ) -> Result<(), String> {
        let (_, host) = scheme_and_host(&url).ok_or_else(|| "the URL has no host".to_string())?;
        let host = host.trim_end_matches('.');
        let mut patterns = setting_items(&settings).peekable();
        if patterns.peek().is_none() {
            return Err("no hosts are allowed: the plugin's settings list none".into());
        }
        if patterns.any(|p| matches(p, host)) {
            Ok(())
        } else {
            Err(format!("host {host} is not on the allow-list"))
        }
    }
}

fn matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    match pattern
        .strip_prefix("*.")
        .or_else(|| pattern.strip_prefix('.'))
    {
        Some(domain) => {
            host == domain
                || host
                    .strip_suffix(domain)
                    .is_some_and(|sub| sub.ends_with('.'))
        }
        None => host == pattern,
    }
}

export!(HostAllowlist);

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str, settings: &str) -> Result<(), String> {
        HostAllowlist::check(url.into(), "n".into(), "create".into(), settings.into())
    }

    #[test]
    fn patterns() {
        let s = "hooks.slack.com, .pagerduty.com *.opsgenie.com";
        assert!(check("https://hooks.slack.com/services/x", s).is_ok());
        assert!(check("https://events.pagerduty.com/v2", s).is_ok());
        assert!(check("https://pagerduty.com/", s).is_ok());
        assert!(check("https://api.eu.opsgenie.com:8443/", s).is_ok());
        assert!(check("https://evilpagerduty.com/", s).is_err());
        assert!(check("https://hooks.slack.com.evil.io/", s).is_err());
        assert!(check("https://example.com/", "").is_err());
    }
}
