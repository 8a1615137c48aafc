//! What crosses the plugin boundary: the answer a plugin returns, and the plugin settings and
//! names from the configuration.
#![no_main]

use hookd::parse::{is_plugin_name, plugin_answer, PluginVerdict, MAX_DENY_REASON};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (Result<(), String>, &str)| {
    let (answer, name) = input;
    match plugin_answer(answer.clone()) {
        Ok(PluginVerdict::Allow) => assert!(answer.is_ok()),
        Ok(PluginVerdict::Deny(reason)) => {
            assert!(!reason.is_empty() && reason.len() <= MAX_DENY_REASON);
            assert_eq!(reason.trim(), reason);
            assert!(!reason.chars().any(char::is_control));
        }
        Err(why) => {
            assert!(answer.is_err() && !why.is_empty());
        }
    }
    if is_plugin_name(name) {
        let toml = format!(
            "[[plugins]]\nname = \"{name}\"\npath = \"p.wasm\"\nsettings = {:?}\n",
            name
        );
        let config = hookd::config::Config::from_toml_str(&toml).expect("a valid plugin entry");
        assert_eq!(config.plugins[0].name, name);
    }
});
