//! Tests of the configuration: loading and its errors, validation and its messages, the reload
//! policy, and that every list of key names names real keys.
#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;

use super::load::{RAW_ENV_KEYS, RAW_NESTED_ENV_KEYS, SECRET_KEYS, TOP_KEYS};
use super::reload::flatten;
use super::*;

#[test]
fn defaults_are_valid() {
    let c = Config::from_toml_str("").unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.limits.max_body_bytes, 65536);
    assert_eq!(c.log_format, LogFormat::Pretty);
    assert!(c.bootstrap_token.is_none());
}

#[test]
fn errors_name_the_key() {
    let e = Config::from_toml_str("listen = \"nope\"")
        .unwrap_err()
        .to_string();
    assert!(e.contains("listen"), "{e}");
    let e = Config::from_toml_str("[limits]\nmax_body_bytes = \"big\"")
        .unwrap_err()
        .to_string();
    assert!(e.contains("limits.max_body_bytes"), "{e}");
    let e = Config::from_toml_str("[limits]\nmax_body_bytes = 1")
        .unwrap_err()
        .to_string();
    assert!(e.contains("limits.max_body_bytes"), "{e}");
    let e = Config::from_toml_str("lissten = \"x\"")
        .unwrap_err()
        .to_string();
    assert!(e.contains("lissten"), "{e}");
    let e = Config::from_toml_str("log_format = \"xml\"")
        .unwrap_err()
        .to_string();
    assert!(e.contains("log_format"), "{e}");
    let e = Config::from_toml_str("[url_policy]\nallow_networks = [\"10.0.0.0/40\"]")
        .unwrap_err()
        .to_string();
    assert!(e.contains("url_policy.allow_networks"), "{e}");
    let e = Config::from_toml_str("bootstrap_token = \"short\"")
        .unwrap_err()
        .to_string();
    assert!(e.contains("bootstrap_token") && !e.contains("short"), "{e}");
}

#[test]
fn connection_limits_are_validated() {
    for (toml, key) in [
        (
            "max_connections_per_ip = 0",
            "limits.max_connections_per_ip",
        ),
        (
            "max_connections_per_ip = 2000",
            "limits.max_connections_per_ip",
        ),
        ("idle_timeout_secs = 0", "limits.idle_timeout_secs"),
        (
            "body_read_timeout_secs = 3601",
            "limits.body_read_timeout_secs",
        ),
        ("write_timeout_secs = 0", "limits.write_timeout_secs"),
        (
            "header_read_timeout_secs = 0",
            "limits.header_read_timeout_secs",
        ),
        (
            "per_ip_exempt_networks = [\"10.0.0.0/99\"]",
            "limits.per_ip_exempt_networks",
        ),
        (
            "per_ip_exempt_networks = \"127.0.0.1\"",
            "limits.per_ip_exempt_networks",
        ),
    ] {
        let e = Config::from_toml_str(&format!("[limits]\n{toml}\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(key), "{toml}: {e}");
    }
    let c = Config::from_toml_str("").unwrap();
    assert_eq!(c.limits.max_connections_per_ip, 128);
    assert_eq!(c.limits.per_ip_exempt_networks.len(), 2);
    // The per-address default follows a lower connection limit; a value the operator set
    // is checked as given.
    let c = Config::from_toml_str("[limits]\nmax_connections = 50").unwrap();
    assert_eq!(c.limits.max_connections_per_ip, 50);
    let e = Config::from_toml_str("[limits]\nmax_connections = 50\nmax_connections_per_ip = 128")
        .unwrap_err()
        .to_string();
    assert!(e.contains("limits.max_connections_per_ip"), "{e}");
}

#[test]
fn plugins_are_validated() {
    let ok = "[[plugins]]\nname = \"hosts\"\npath = \"x.wasm\"\non_error = \"allow\"\n";
    let c = Config::from_toml_str(ok).unwrap();
    assert_eq!(c.plugins[0].on_error, OnError::Allow);
    assert_eq!(c.plugins[0].settings, "");
    let dup = format!("{ok}{ok}");
    let e = Config::from_toml_str(&dup).unwrap_err().to_string();
    assert!(e.contains("plugins[1].name"), "{e}");
    let e = Config::from_toml_str("[[plugins]]\nname = \"a b\"\npath = \"x\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("plugins[0].name"), "{e}");
    let e = Config::from_toml_str("[[plugins]]\nname = \"a\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("path"), "{e}");
    let e =
        Config::from_toml_str("[[plugins]]\nname = \"a\"\npath = \"x\"\non_error = \"maybe\"\n")
            .unwrap_err()
            .to_string();
    assert!(e.contains("on_error"), "{e}");
    let listing = |n: usize| -> String {
        (0..n)
            .map(|i| format!("[[plugins]]\nname = \"p{i}\"\npath = \"x\"\n"))
            .collect()
    };
    let most = Config::from_toml_str(&listing(MAX_PLUGINS)).unwrap();
    assert_eq!(most.plugins.len(), MAX_PLUGINS);
    let e = Config::from_toml_str(&listing(MAX_PLUGINS + 1))
        .unwrap_err()
        .to_string();
    assert!(e.contains("at most 16 plugins"), "{e}");
}

#[test]
fn transformers_and_their_limits_are_validated() {
    let ok = "[[transformers]]\nname = \"ntfy\"\npath = \"ntfy.wasm\"\nsettings = \"topic=a\"\n";
    let c = Config::from_toml_str(ok).unwrap();
    assert_eq!(c.transformers[0].settings, "topic=a");
    assert_eq!(c.transformer_plugin_limits().timeout_ms, 1000);
    let long = "x".repeat(65_537);
    let mut toml = String::from(
        "[transformer_limits]\ntimeout_ms = 60001\nfuel = 9999\nmemory_bytes = 65535\n",
    );
    for i in 0..=MAX_PLUGINS {
        let name = if i < 2 {
            "t".to_owned()
        } else {
            format!("t{i}")
        };
        let settings = if i == 2 { long.as_str() } else { "" };
        write!(
            toml,
            "[[transformers]]\nname = \"{name}\"\npath = \"x\"\nsettings = \"{settings}\"\n"
        )
        .unwrap();
    }
    let e = Config::from_toml_str(&toml).unwrap_err().to_string();
    let expected = "invalid configuration:
  transformer_limits.timeout_ms: must be from 1 to 60000
  transformer_limits.fuel: must be at least 10000
  transformer_limits.memory_bytes: must be from 65536 to 1073741824
  transformers: may list at most 16 transformers
  transformers[1].name: must be unique
  transformers[2].settings: must be at most 65536 bytes";
    assert_eq!(e, expected);
    for (bad, key) in [
        (
            "[[transformers]]\nname = \"a b\"\npath = \"x\"\n",
            "transformers[0].name",
        ),
        ("[[transformers]]\nname = \"a\"\n", "path"),
        (
            "[[transformers]]\nname = \"a\"\npath = \"x\"\non_error = \"allow\"\n",
            "on_error",
        ),
        ("[transformer_limits]\ncache_dir = \"x\"\n", "cache_dir"),
    ] {
        let e = Config::from_toml_str(bad).unwrap_err().to_string();
        assert!(e.contains(key), "{bad}: {e}");
    }
}

/// Every restart-only key is kept by `keep_restart_only`, and no other key is.
#[test]
fn restart_only_keys_are_exactly_the_kept_ones() {
    let base = Config::from_toml_str("").unwrap();
    let changes = [
        ("listen = \"127.0.0.1:9999\"", "listen"),
        ("data_dir = \"/elsewhere\"", "data_dir"),
        ("log_format = \"json\"", "log_format"),
        (
            "bootstrap_token = \"another-token-0123456789\"",
            "bootstrap_token",
        ),
        (
            "master_key = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"",
            "master_key",
        ),
        ("[limits]\nmax_connections = 500", "limits.max_connections"),
        (
            "[limits]\nmax_connections_per_ip = 5",
            "limits.max_connections_per_ip",
        ),
        (
            "[limits]\nper_ip_exempt_networks = []",
            "limits.per_ip_exempt_networks",
        ),
        (
            "[limits]\nheader_read_timeout_secs = 3",
            "limits.header_read_timeout_secs",
        ),
        (
            "[limits]\nidle_timeout_secs = 3",
            "limits.idle_timeout_secs",
        ),
        (
            "[limits]\nwrite_timeout_secs = 3",
            "limits.write_timeout_secs",
        ),
        (
            "[limits]\nshutdown_grace_secs = 3",
            "limits.shutdown_grace_secs",
        ),
        ("[store]\ncache_mib = 3", "store.cache_mib"),
        (
            "[plugin_limits]\ntimeout_ms = 3",
            "plugin_limits.timeout_ms",
        ),
        ("[delivery]\nmax_in_flight = 100", "delivery.max_in_flight"),
        ("[delivery]\nper_endpoint = 3", "delivery.per_endpoint"),
        (
            "[delivery]\nmax_in_flight_bytes = 2097152",
            "delivery.max_in_flight_bytes",
        ),
        ("[metrics]\nenabled = false", "metrics.enabled"),
        // Reloadable ones, for contrast.
        ("log = \"debug\"", "log"),
        ("[limits]\nmax_body_bytes = 4096", "limits.max_body_bytes"),
        ("[delivery]\ntimeout_ms = 3", "delivery.timeout_ms"),
        ("[retention]\nbatch = 3", "retention.batch"),
        (
            "[url_policy]\nallow_networks = [\"10.0.0.0/8\"]",
            "url_policy.allow_networks",
        ),
        (
            "[metrics]\ntoken = \"scrape-token-0123456789\"",
            "metrics.token",
        ),
    ];
    for (toml, key) in changes {
        let mut changed = Config::from_toml_str(toml).unwrap();
        assert_eq!(base.changed_keys(&changed), [key], "{toml}");
        changed.keep_restart_only(&base);
        let left = base.changed_keys(&changed);
        if needs_restart(key) {
            assert!(
                left.is_empty(),
                "{key} is restart-only but was not kept: {left:?}"
            );
        } else {
            assert_eq!(left, [key], "{key} is reloadable but was reset");
        }
    }
}

#[test]
fn the_effective_configuration_prints_without_secrets() {
    let c = Config::from_toml_str(
        "master_key = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"\n[metrics]\ntoken = \"scrape-token-0123456789\"\n",
    )
    .unwrap();
    let shown = c.to_toml();
    assert!(
        !shown.contains("AAAA") && !shown.contains("scrape-token"),
        "{shown}"
    );
    assert!(shown.contains("master_key = \"***\""), "{shown}");
    assert!(
        shown.contains("[limits]") && shown.contains("max_connections = 1024"),
        "{shown}"
    );
    // What is printed reads back as the same configuration (secrets aside).
    let again = Config::from_toml_str(&shown.replace("\"***\"", "\"\"")).unwrap();
    let differ = c.changed_keys(&again);
    assert_eq!(differ, ["master_key", "metrics.token"], "{shown}");
}

/// Every top-level key and table is in `TOP_KEYS`, or its HOOKD_ variables would be dropped
/// with a warning that it names no key. (`TOP_KEYS` is read from the field names serde's derive
/// hands a deserializer; this checks it against what a configuration serializes to.)
#[test]
fn every_top_level_key_is_read_from_the_environment() {
    let c = Config::from_toml_str("").unwrap();
    let v = serde_json::to_value(&c).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    for k in &keys {
        assert!(TOP_KEYS.contains(k), "TOP_KEYS lacks {k}");
    }
    assert_eq!(keys.len(), TOP_KEYS.len(), "{keys:?}");
}

/// A secret of the wrong type is named, never shown (figment's message quotes the value).
#[test]
fn errors_about_secrets_do_not_show_them() {
    for toml in [
        "[metrics]\ntoken = 48391234567",
        "bootstrap_token = 48391234567",
        "master_key = 48391234567",
    ] {
        let e = Config::from_toml_str(toml).unwrap_err().to_string();
        assert!(e.contains("secret"), "{e}");
        assert!(!e.contains("48391234567"), "{e}");
    }
}

#[test]
fn secrets_do_not_debug_print() {
    let c = Config::from_toml_str("master_key = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"")
        .unwrap();
    assert!(!format!("{c:?}").contains("AAAA"));
}

/// Every rule's message, exactly and in order: one broken value per rule. (The range messages
/// are built from the ranges; this pins the text they had when they were written out.)
#[test]
fn every_rule_has_its_message() {
    let mut toml = String::from(
        "bootstrap_token = \"short\"\nmaster_key = \"nope\"\n\
         [limits]\nmax_body_bytes = 1\nmax_alert_body_bytes = 1\nmax_connections = 0\n\
         max_connections_per_ip = 0\nheader_read_timeout_secs = 0\nidle_timeout_secs = 3601\nbody_read_timeout_secs = 0\n\
         write_timeout_secs = 0\nshutdown_grace_secs = 3601\n\
         [api]\nmax_page_size = 0\ndefault_page_size = 0\n\
         [endpoints]\nrotation_grace_secs = 7776001\n\
         [url_policy]\nmax_url_length = 63\n\
         [store]\nmax_batch = 0\ncache_mib = 65537\n\
         [plugin_limits]\ntimeout_ms = 0\nfuel = 9999\nmemory_bytes = 1\n\
         [delivery]\nmax_in_flight = 0\nper_endpoint = 0\nmax_in_flight_bytes = 1048575\n\
         connect_timeout_ms = 1\n\
         timeout_ms = 600001\nretry_schedule_secs = [2592001]\njitter_percent = 101\n\
         response_body_bytes = 1048577\npoll_interval_ms = 9\ncircuit_failures = 1001\n\
         circuit_open_secs = 0\ncircuit_max_open_secs = 86401\n\
         [retention]\nmessages_secs = 0\nattempts_secs = 315360001\nattempts_per_endpoint = 0\n\
         batch = 0\ninterval_secs = 0\n\
         [metrics]\ntoken = \"short\"\n",
    );
    let long = "x".repeat(65_537);
    for i in 0..=MAX_PLUGINS {
        let name = if i < 2 {
            "a b".to_owned()
        } else {
            format!("p{i}")
        };
        let settings = if i == 2 { long.as_str() } else { "" };
        write!(
            toml,
            "[[plugins]]\nname = \"{name}\"\npath = \"x\"\nsettings = \"{settings}\"\n"
        )
        .unwrap();
    }
    let e = Config::from_toml_str(&toml).unwrap_err().to_string();
    let expected = "invalid configuration:
  limits.max_body_bytes: must be from 1024 to 16777216
  limits.max_alert_body_bytes: must be from 1024 to 67108864
  limits.max_connections: must be from 1 to 1000000
  limits.max_connections_per_ip: must be from 1 to limits.max_connections
  limits.header_read_timeout_secs: must be from 1 to 3600
  limits.idle_timeout_secs: must be from 1 to 3600
  limits.body_read_timeout_secs: must be from 1 to 3600
  limits.write_timeout_secs: must be from 1 to 3600
  limits.shutdown_grace_secs: must be at most 3600
  api.max_page_size: must be from 1 to 10000
  api.default_page_size: must be from 1 to api.max_page_size
  endpoints.rotation_grace_secs: must be at most 7776000 (90 days)
  url_policy.max_url_length: must be from 64 to 65536
  store.max_batch: must be from 1 to 65536
  store.cache_mib: must be from 1 to 65536
  plugin_limits.timeout_ms: must be from 1 to 10000
  plugin_limits.fuel: must be at least 10000
  plugin_limits.memory_bytes: must be from 65536 to 1073741824
  plugins: may list at most 16 plugins
  plugins[0].name: must be 1-64 characters of A-Z a-z 0-9 - _
  plugins[1].name: must be 1-64 characters of A-Z a-z 0-9 - _
  plugins[1].name: must be unique
  plugins[2].settings: must be at most 65536 bytes
  delivery.max_in_flight: must be from 1 to 100000
  delivery.per_endpoint: must be from 1 to delivery.max_in_flight
  delivery.max_in_flight_bytes: must be from 1048576 to 68719476736
  delivery.connect_timeout_ms / delivery.timeout_ms: must be from 1 to 600000
  delivery.retry_schedule_secs: must have at most 100 waits of at most 2592000 s each
  delivery.jitter_percent: must be from 0 to 100
  delivery.response_body_bytes: must be at most 1048576
  delivery.poll_interval_ms: must be from 10 to 60000
  delivery.circuit_failures: must be from 0 (off) to 1000
  delivery.circuit_open_secs: must be from 1 to 86400
  delivery.circuit_max_open_secs: must be from delivery.circuit_open_secs to 86400
  retention.messages_secs: must be from 1 to 315360000 (ten years)
  retention.attempts_secs: must be from 1 to 315360000 (ten years)
  retention.attempts_per_endpoint: must be from 1 to 10000000
  retention.batch: must be from 1 to 100000
  retention.interval_secs: must be from 1 to 86400
  bootstrap_token (HOOKD_BOOTSTRAP_TOKEN): must be at least 16 characters of A-Z a-z 0-9 - . _ ~ + / =
  metrics.token (HOOKD_METRICS__TOKEN): must be at least 16 characters of A-Z a-z 0-9 - . _ ~ + / =
  master_key (HOOKD_MASTER_KEY): must be 32 bytes as base64, or 64 hex digits";
    assert_eq!(e, expected);
}

/// Both ends of every range are allowed (the ranges are inclusive, as their messages say).
#[test]
fn range_ends_are_allowed() {
    let lowest =
        "[limits]\nmax_body_bytes = 1024\nmax_alert_body_bytes = 1024\nmax_connections = 1\n\
        max_connections_per_ip = 1\nheader_read_timeout_secs = 1\nidle_timeout_secs = 1\n\
        body_read_timeout_secs = 1\nwrite_timeout_secs = 1\nshutdown_grace_secs = 0\n\
        [api]\nmax_page_size = 1\ndefault_page_size = 1\n\
        [endpoints]\nrotation_grace_secs = 0\n\
        [url_policy]\nmax_url_length = 64\n\
        [store]\nmax_batch = 1\ncache_mib = 1\n\
        [plugin_limits]\ntimeout_ms = 1\nfuel = 10000\nmemory_bytes = 65536\n\
        [delivery]\nmax_in_flight = 1\nper_endpoint = 1\nmax_in_flight_bytes = 1048576\n\
        connect_timeout_ms = 1\ntimeout_ms = 1\n\
        retry_schedule_secs = []\njitter_percent = 0\nresponse_body_bytes = 0\n\
        poll_interval_ms = 10\ncircuit_failures = 0\ncircuit_open_secs = 1\n\
        circuit_max_open_secs = 1\n\
        [retention]\nmessages_secs = 1\nattempts_secs = 1\nattempts_per_endpoint = 1\nbatch = 1\n\
        interval_secs = 1\n";
    let waits = vec!["2592000"; 100].join(", ");
    let highest = format!(
        "[limits]\nmax_body_bytes = 16777216\nmax_alert_body_bytes = 67108864\n\
        max_connections = 1000000\n\
        max_connections_per_ip = 1000000\nheader_read_timeout_secs = 3600\n\
        idle_timeout_secs = 3600\nbody_read_timeout_secs = 3600\nwrite_timeout_secs = 3600\n\
        shutdown_grace_secs = 3600\n\
        [api]\nmax_page_size = 10000\ndefault_page_size = 10000\n\
        [endpoints]\nrotation_grace_secs = 7776000\n\
        [url_policy]\nmax_url_length = 65536\n\
        [store]\nmax_batch = 65536\ncache_mib = 65536\n\
        [plugin_limits]\ntimeout_ms = 10000\nmemory_bytes = 1073741824\n\
        [delivery]\nmax_in_flight = 100000\nper_endpoint = 100000\n\
        max_in_flight_bytes = 68719476736\n\
        connect_timeout_ms = 600000\ntimeout_ms = 600000\nretry_schedule_secs = [{waits}]\n\
        jitter_percent = 100\nresponse_body_bytes = 1048576\npoll_interval_ms = 60000\n\
        circuit_failures = 1000\ncircuit_open_secs = 86400\ncircuit_max_open_secs = 86400\n\
        [retention]\nmessages_secs = 315360000\nattempts_secs = 315360000\n\
        attempts_per_endpoint = 10000000\nbatch = 100000\ninterval_secs = 86400\n"
    );
    for toml in [lowest, &highest] {
        if let Err(e) = Config::from_toml_str(toml) {
            panic!("{e}\n{toml}");
        }
    }
}

/// The lists of key names (restart-only, secret, read verbatim from the environment) name
/// keys the schema has.
#[test]
fn every_listed_key_is_a_real_key() {
    let keys = flatten(&Config::from_toml_str("").unwrap());
    let real = |key: &str| {
        if key.ends_with('.') {
            keys.keys().any(|k| k.starts_with(key))
        } else {
            keys.contains_key(key)
        }
    };
    for key in RESTART_ONLY {
        assert!(real(key), "RESTART_ONLY names {key}, which is no key");
    }
    for key in SECRET_KEYS {
        assert!(real(key), "SECRET_KEYS names {key}, which is no key");
    }
    for key in RAW_ENV_KEYS {
        assert!(
            real(key) && TOP_KEYS.contains(&key),
            "RAW_ENV_KEYS names {key}, which is no top-level key"
        );
    }
    for (table, key) in RAW_NESTED_ENV_KEYS {
        let key = format!("{table}.{key}");
        assert!(
            real(&key),
            "RAW_NESTED_ENV_KEYS names {key}, which is no key"
        );
    }
}

/// `SECRET_KEYS` are exactly the keys printed as `"***"` when set: a secret added to the schema
/// is not missed by the error messages.
#[test]
fn secret_keys_are_exactly_the_redacted_ones() {
    let c = Config::from_toml_str(
        "bootstrap_token = \"another-token-0123456789\"\n\
         master_key = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"\n\
         [metrics]\ntoken = \"scrape-token-0123456789\"\n\
         [store]\npostgres_url = \"postgres://hookd:password@db/hookd\"\n",
    )
    .unwrap();
    let redacted: Vec<String> = flatten(&c)
        .into_iter()
        .filter(|(_, v)| v == "***")
        .map(|(k, _)| k)
        .collect();
    let mut secrets = SECRET_KEYS.to_vec();
    secrets.sort_unstable();
    assert_eq!(redacted, secrets);
}
