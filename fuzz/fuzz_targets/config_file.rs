//! The configuration file (TOML over the built-in defaults).
#![no_main]

use hookd::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: &str| {
    match Config::from_toml_str(s) {
        Ok(config) => {
            assert!(config.validate().is_ok());
            let limits = config.page_limits();
            assert!(limits.default <= limits.max);
            let _ = config.url_policy();
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
