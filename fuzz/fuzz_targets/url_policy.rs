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
        assert_valid_url(url.as_str(), &policy);
        if let Some(url::Host::Ipv4(ip)) = url.host() {
            assert!(policy.check_ip(ip.into()).is_ok());
        }
    }
});
