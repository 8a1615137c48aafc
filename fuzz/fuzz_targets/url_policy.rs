//! The built-in URL rules, with and without an allow-list.
#![no_main]

use hookd::url_policy::UrlPolicy;
use libfuzzer_sys::fuzz_target;

include!("check.rs");

fuzz_target!(|input: (&str, bool)| {
    let (raw, lan) = input;
    let policy = UrlPolicy {
        allow_networks: if lan {
            vec![
                "192.168.0.0/16".parse().unwrap(),
                "fd00::/8".parse().unwrap(),
            ]
        } else {
            Vec::new()
        },
        ..UrlPolicy::default()
    };
    if let Ok(url) = policy.check(raw) {
        assert!(matches!(url.scheme(), "http" | "https"));
        assert!(url.username().is_empty() && url.password().is_none());
        assert!(url.host().is_some() && url.fragment().is_none());
        assert!(!raw.contains('\\'), "a backslash was accepted");
        assert_valid_url(url.as_str(), &policy);
        // An accepted literal passes the send-time guard too (one table serves both).
        match url.host() {
            Some(url::Host::Ipv4(ip)) => assert!(policy.check_ip(ip.into()).is_ok()),
            Some(url::Host::Ipv6(ip)) => assert!(policy.check_ip(ip.into()).is_ok()),
            _ => {}
        }
    }
});
