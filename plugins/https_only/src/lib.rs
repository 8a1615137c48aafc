//! hookd URL-policy plugin: endpoints must use https and a host name, never a raw IP address.
//!
//! Settings (optional): host names exempt from the https rule, separated by commas or spaces,
//! for LAN receivers without TLS, e.g. `alerts.lan, receiver.local`. Raw IP addresses are denied
//! whatever the settings say.

// The generated ABI shim passes each of the four strings as (pointer, length).
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({ path: "../wit/url-policy.wit", world: "url-policy" });

include!("../../common/url.rs");
include!("../../common/settings.rs");
include!("../../common/alloc.rs");

struct HttpsOnly;

impl Guest for HttpsOnly {
    fn check(
        url: String,
        _name: String,
        _operation: String,
        settings: String,
    ) -> Result<(), String> {
        let (scheme, host) =
            scheme_and_host(&url).ok_or_else(|| "the URL has no host".to_string())?;
        if is_ip_literal(host) {
            return Err(format!("{host} is a raw IP address; use a host name"));
        }
        if scheme != "https" && !setting_items(&settings).any(|h| h.eq_ignore_ascii_case(host)) {
            return Err("only https URLs are allowed".into());
        }
        Ok(())
    }
}

/// `[v6]`, or four dot-separated decimal numbers (hookd has already normalized hex and
/// shorthand IPv4 forms to dotted decimal).
fn is_ip_literal(host: &str) -> bool {
    host.starts_with('[')
        || (host.split('.').count() == 4
            && host
                .split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
}

export!(HttpsOnly);

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str, settings: &str) -> Result<(), String> {
        HttpsOnly::check(url.into(), "n".into(), "create".into(), settings.into())
    }

    #[test]
    fn rules() {
        assert!(check("https://hooks.slack.com/x", "").is_ok());
        assert!(check("http://hooks.slack.com/x", "").is_err());
        assert!(check("https://93.184.216.34/x", "").is_err());
        assert!(check("https://[2606:4700::1111]/", "").is_err());
        assert!(check("http://alerts.lan:8080/hook", "alerts.lan").is_ok());
        assert!(check("http://93.184.216.34/", "93.184.216.34").is_err());
    }
}
