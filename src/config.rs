//! Configuration: the commented defaults in `config/hookd.toml` (compiled in), then an optional
//! `--config FILE`, then `HOOKD_*` environment variables (figment). Every value is typed and
//! checked at startup; an error names the key and where the bad value came from.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Serialize, Serializer};

use crate::parse::PageLimits;
use crate::url_policy::{Cidr, UrlPolicy};

/// The defaults, which double as the configuration's documentation.
pub const DEFAULTS: &str = include_str!("../config/hookd.toml");

/// Top-level string keys read from the environment verbatim (figment would otherwise read
/// `HOOKD_BOOTSTRAP_TOKEN=0123...` as a number).
const RAW_ENV_KEYS: [&str; 6] = [
    "listen",
    "data_dir",
    "log",
    "log_format",
    "bootstrap_token",
    "master_key",
];

/// Secret string keys inside tables, read from the environment verbatim too (an all-digit
/// `HOOKD_METRICS__TOKEN` is a token, not a number): (table, key).
const RAW_NESTED_ENV_KEYS: [(&str, &str); 1] = [("metrics", "token")];

/// Keys whose values are secrets: an error about one never shows its value.
const SECRET_KEYS: [&str; 3] = ["bootstrap_token", "master_key", "metrics.token"];

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub log: String,
    pub log_format: LogFormat,
    #[serde(default)]
    pub bootstrap_token: Option<Redacted>,
    #[serde(default)]
    pub master_key: Option<Redacted>,
    pub limits: Limits,
    pub api: Api,
    pub endpoints: Endpoints,
    pub url_policy: UrlPolicyConfig,
    pub store: StoreConfig,
    pub plugin_limits: PluginLimits,
    pub plugins: Vec<PluginConfig>,
    pub delivery: DeliveryConfig,
    pub retention: RetentionConfig,
    pub metrics: MetricsConfig,
    pub console: ConsoleConfig,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    pub enabled: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    pub enabled: bool,
    #[serde(default)]
    pub token: Option<Redacted>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    pub messages_secs: u64,
    pub attempts_secs: u64,
    pub attempts_per_endpoint: u64,
    pub batch: usize,
    pub interval_secs: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    pub max_in_flight: usize,
    pub per_endpoint: usize,
    pub connect_timeout_ms: u64,
    pub timeout_ms: u64,
    pub retry_schedule_secs: Vec<u64>,
    pub jitter_percent: u32,
    pub max_retry_after_secs: u64,
    pub disable_after_secs: u64,
    pub response_body_bytes: usize,
    pub poll_interval_ms: u64,
    pub circuit_failures: u32,
    pub circuit_open_secs: u64,
    pub circuit_max_open_secs: u64,
    pub ca_bundle: PathBuf,
    pub hosts: std::collections::BTreeMap<String, IpValue>,
}

/// An IP address read from configuration.
#[derive(Debug, Clone, Copy)]
pub struct IpValue(pub std::net::IpAddr);

impl<'de> Deserialize<'de> for IpValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map(IpValue)
            .map_err(|_| serde::de::Error::custom(format!("'{s}' is not an IP address")))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub per_ip_exempt_networks: Vec<CidrValue>,
    pub header_read_timeout_secs: u64,
    pub idle_timeout_secs: u64,
    pub body_read_timeout_secs: u64,
    pub write_timeout_secs: u64,
    pub shutdown_grace_secs: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Api {
    pub default_page_size: usize,
    pub max_page_size: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoints {
    pub rotation_grace_secs: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UrlPolicyConfig {
    pub max_url_length: usize,
    pub allow_networks: Vec<CidrValue>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    pub max_batch: usize,
    pub cache_mib: usize,
    pub min_free_bytes: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PluginLimits {
    pub timeout_ms: u64,
    pub fuel: u64,
    pub memory_bytes: usize,
    pub cache_dir: PathBuf,
}

/// How many `[[plugins]]` a configuration may list (every check instantiates each of them).
pub const MAX_PLUGINS: usize = 16;

/// One `[[plugins]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    pub name: String,
    pub path: PathBuf,
    #[serde(default)]
    pub settings: String,
    #[serde(default)]
    pub on_error: OnError,
}

/// What a plugin failure (trap, timeout, fuel, memory, malformed answer) does to the request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Fail closed: 503.
    #[default]
    Deny,
    /// Log it and go on as if the plugin had allowed.
    Allow,
}

impl Serialize for IpValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl Serialize for CidrValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:?}", self.0))
    }
}

/// Shown as `"***"` when set: printing a configuration never prints a secret.
impl Serialize for Redacted {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.0.is_empty() { "" } else { "***" })
    }
}

/// A CIDR read from configuration.
#[derive(Debug, Clone, Copy)]
pub struct CidrValue(pub Cidr);

impl<'de> Deserialize<'de> for CidrValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map(CidrValue).map_err(serde::de::Error::custom)
    }
}

/// A secret configuration string: never printed by `Debug`; empty means unset.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Redacted(String);

impl Redacted {
    pub fn expose(&self) -> Option<&str> {
        Some(self.0.as_str()).filter(|s| !s.is_empty())
    }
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "***" })
    }
}

/// The top-level keys and tables of the configuration: an environment variable is read as
/// configuration when its name (after `HOOKD_`) starts with one of these.
const TOP_KEYS: [&str; 17] = [
    "listen",
    "data_dir",
    "log",
    "log_format",
    "bootstrap_token",
    "master_key",
    "limits",
    "api",
    "endpoints",
    "url_policy",
    "store",
    "plugin_limits",
    "plugins",
    "delivery",
    "retention",
    "metrics",
    "console",
];

/// Whether `key` (lowercase, after `HOOKD_`) is a top-level key or lies in a known table.
fn is_known_top(key: &str) -> bool {
    let top = key.split("__").next().unwrap_or(key);
    TOP_KEYS.contains(&top)
}

/// Why the configuration was refused; the message names each key at fault.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n{0}")]
pub struct ConfigError(String);

impl Config {
    /// Defaults, then `file`, then the `HOOKD_*` environment.
    ///
    /// # Errors
    /// A missing or unparsable file, a value of the wrong type, an unknown key, or a value that
    /// breaks a rule of [`Config::validate`].
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError(format!(
                    "  --config {}: no such file",
                    path.display()
                )));
            }
        }
        // Variables for a table or key hookd has are configuration (a typo inside a known table
        // still stops startup, naming it); other HOOKD_ variables (HOOKD_TOKEN for `hookd
        // backup`, a CI's own) are not, and only get a warning from `unrelated_env`.
        let nested: Vec<String> = RAW_NESTED_ENV_KEYS
            .iter()
            .map(|(table, key)| format!("{table}__{key}"))
            .collect();
        let ignored: Vec<&str> = RAW_ENV_KEYS
            .iter()
            .copied()
            .chain(nested.iter().map(String::as_str))
            .collect();
        // What the operator gives (the file, then the environment), over the defaults or alone.
        let operator = |base: Figment| {
            let base = match file {
                Some(path) => base.merge(Toml::file(path)),
                None => base,
            };
            let env = Env::prefixed("HOOKD_")
                .ignore(&ignored)
                .filter(|key| is_known_top(&key.as_str().to_ascii_lowercase()))
                .split("__");
            base.merge(env).merge(RawEnv)
        };
        Self::extract(
            &operator(Figment::from(Toml::string(DEFAULTS))),
            &operator(Figment::new()),
        )
    }

    /// The `HOOKD_` variables in the environment that name no configuration key, to warn about.
    pub fn unrelated_env() -> Vec<String> {
        std::env::vars_os()
            .filter_map(|(k, _)| k.into_string().ok())
            .filter(|k| {
                k.strip_prefix("HOOKD_")
                    .is_some_and(|rest| !is_known_top(&rest.to_ascii_lowercase()))
            })
            .collect()
    }

    /// Defaults overlaid with a TOML document; no file system or environment. The config fuzz
    /// target calls this.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn from_toml_str(toml: &str) -> Result<Self, ConfigError> {
        Self::extract(
            &Figment::from(Toml::string(DEFAULTS)).merge(Toml::string(toml)),
            &Figment::from(Toml::string(toml)),
        )
    }

    /// `figment` is everything; `operator` only what the operator gave, so that a default that
    /// depends on another key can follow it instead of contradicting it.
    fn extract(figment: &Figment, operator: &Figment) -> Result<Self, ConfigError> {
        let mut config: Self = figment.extract().map_err(describe)?;
        // The per-address cap is at most the connection limit unless the operator set it
        // (`HOOKD_LIMITS__MAX_CONNECTIONS=50` alone must not be refused for a key not set).
        if operator
            .find_value("limits.max_connections_per_ip")
            .is_err()
        {
            let l = &mut config.limits;
            l.max_connections_per_ip = l.max_connections_per_ip.min(l.max_connections);
        }
        config.validate()?;
        Ok(config)
    }

    /// Range checks serde cannot express.
    ///
    /// # Errors
    /// Every rule broken, each naming its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, key: &str, rule: &str| {
            if !ok {
                problems.push(format!("  {key}: {rule}"));
            }
        };
        let l = &self.limits;
        check(
            (1024..=16 << 20).contains(&l.max_body_bytes),
            "limits.max_body_bytes",
            "must be from 1024 to 16777216",
        );
        check(
            (1..=1_000_000).contains(&l.max_connections),
            "limits.max_connections",
            "must be from 1 to 1000000",
        );
        check(
            (1..=l.max_connections).contains(&l.max_connections_per_ip),
            "limits.max_connections_per_ip",
            "must be from 1 to limits.max_connections",
        );
        for (value, key) in [
            (
                l.header_read_timeout_secs,
                "limits.header_read_timeout_secs",
            ),
            (l.idle_timeout_secs, "limits.idle_timeout_secs"),
            (l.body_read_timeout_secs, "limits.body_read_timeout_secs"),
            (l.write_timeout_secs, "limits.write_timeout_secs"),
        ] {
            check((1..=3600).contains(&value), key, "must be from 1 to 3600");
        }
        check(
            l.shutdown_grace_secs <= 3600,
            "limits.shutdown_grace_secs",
            "must be at most 3600",
        );
        check(
            (1..=10_000).contains(&self.api.max_page_size),
            "api.max_page_size",
            "must be from 1 to 10000",
        );
        check(
            (1..=self.api.max_page_size).contains(&self.api.default_page_size),
            "api.default_page_size",
            "must be from 1 to api.max_page_size",
        );
        check(
            self.endpoints.rotation_grace_secs <= 90 * 86_400,
            "endpoints.rotation_grace_secs",
            "must be at most 7776000 (90 days)",
        );
        check(
            (64..=65_536).contains(&self.url_policy.max_url_length),
            "url_policy.max_url_length",
            "must be from 64 to 65536",
        );
        check(
            (1..=65_536).contains(&self.store.max_batch),
            "store.max_batch",
            "must be from 1 to 65536",
        );
        check(
            (1..=65_536).contains(&self.store.cache_mib),
            "store.cache_mib",
            "must be from 1 to 65536",
        );
        let p = &self.plugin_limits;
        check(
            (1..=10_000).contains(&p.timeout_ms),
            "plugin_limits.timeout_ms",
            "must be from 1 to 10000",
        );
        check(
            p.fuel >= 10_000,
            "plugin_limits.fuel",
            "must be at least 10000",
        );
        check(
            (65_536..=1 << 30).contains(&p.memory_bytes),
            "plugin_limits.memory_bytes",
            "must be from 65536 to 1073741824",
        );
        check(
            self.plugins.len() <= MAX_PLUGINS,
            "plugins",
            "may list at most 16 plugins",
        );
        for (i, plugin) in self.plugins.iter().enumerate() {
            let key = format!("plugins[{i}]");
            check(
                crate::parse::is_plugin_name(&plugin.name),
                &format!("{key}.name"),
                "must be 1-64 characters of A-Z a-z 0-9 - _",
            );
            check(
                self.plugins[..i].iter().all(|p| p.name != plugin.name),
                &format!("{key}.name"),
                "must be unique",
            );
            check(
                plugin.settings.len() <= crate::parse::MAX_PLUGIN_SETTINGS,
                &format!("{key}.settings"),
                "must be at most 65536 bytes",
            );
        }
        let d = &self.delivery;
        check(
            (1..=100_000).contains(&d.max_in_flight),
            "delivery.max_in_flight",
            "must be from 1 to 100000",
        );
        check(
            (1..=d.max_in_flight).contains(&d.per_endpoint),
            "delivery.per_endpoint",
            "must be from 1 to delivery.max_in_flight",
        );
        check(
            (1..=600_000).contains(&d.connect_timeout_ms) && (1..=600_000).contains(&d.timeout_ms),
            "delivery.connect_timeout_ms / delivery.timeout_ms",
            "must be from 1 to 600000",
        );
        check(
            d.retry_schedule_secs.len() <= 100
                && d.retry_schedule_secs.iter().all(|s| *s <= 30 * 86_400),
            "delivery.retry_schedule_secs",
            "must have at most 100 waits of at most 2592000 s each",
        );
        check(
            d.jitter_percent <= 100,
            "delivery.jitter_percent",
            "must be from 0 to 100",
        );
        check(
            d.response_body_bytes <= 1 << 20,
            "delivery.response_body_bytes",
            "must be at most 1048576",
        );
        check(
            (10..=60_000).contains(&d.poll_interval_ms),
            "delivery.poll_interval_ms",
            "must be from 10 to 60000",
        );
        check(
            d.circuit_failures <= 1000,
            "delivery.circuit_failures",
            "must be from 0 (off) to 1000",
        );
        check(
            (1..=86_400).contains(&d.circuit_open_secs),
            "delivery.circuit_open_secs",
            "must be from 1 to 86400",
        );
        check(
            (d.circuit_open_secs..=86_400).contains(&d.circuit_max_open_secs),
            "delivery.circuit_max_open_secs",
            "must be from delivery.circuit_open_secs to 86400",
        );
        let r = &self.retention;
        for (value, key) in [
            (r.messages_secs, "retention.messages_secs"),
            (r.attempts_secs, "retention.attempts_secs"),
        ] {
            check(
                (1..=10 * 365 * 86_400).contains(&value),
                key,
                "must be from 1 to 315360000 (ten years)",
            );
        }
        check(
            (1..=10_000_000).contains(&r.attempts_per_endpoint),
            "retention.attempts_per_endpoint",
            "must be from 1 to 10000000",
        );
        check(
            (1..=100_000).contains(&r.batch),
            "retention.batch",
            "must be from 1 to 100000",
        );
        check(
            (1..=86_400).contains(&r.interval_secs),
            "retention.interval_secs",
            "must be from 1 to 86400",
        );
        if let Some(token) = self.bootstrap_token.as_ref().and_then(Redacted::expose) {
            check(
                crate::parse::bearer_token(Some(format!("Bearer {token}").as_bytes())).is_ok()
                    && token.len() >= 16,
                "bootstrap_token (HOOKD_BOOTSTRAP_TOKEN)",
                "must be at least 16 characters of A-Z a-z 0-9 - . _ ~ + / =",
            );
        }
        if let Some(token) = self.metrics.token.as_ref().and_then(Redacted::expose) {
            check(
                crate::parse::bearer_token(Some(format!("Bearer {token}").as_bytes())).is_ok()
                    && token.len() >= 16,
                "metrics.token (HOOKD_METRICS__TOKEN)",
                "must be at least 16 characters of A-Z a-z 0-9 - . _ ~ + / =",
            );
        }
        if let Some(key) = self.master_key.as_ref().and_then(Redacted::expose) {
            check(
                crate::vault::MasterKey::parse(key).is_ok(),
                "master_key (HOOKD_MASTER_KEY)",
                "must be 32 bytes as base64, or 64 hex digits",
            );
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(problems.join("\n")))
        }
    }

    /// The effective configuration as TOML, every secret shown as `"***"`.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot show the configuration: {e}\n"))
    }

    /// The keys (dotted paths) whose values differ between `self` and `other`; secrets are
    /// compared by value, never shown.
    pub fn changed_keys(&self, other: &Self) -> Vec<String> {
        let (a, b) = (flatten(self), flatten(other));
        let mut keys: Vec<String> = a
            .keys()
            .chain(b.keys())
            .filter(|k| a.get(*k) != b.get(*k))
            .cloned()
            .collect();
        let secret =
            |x: &Option<Redacted>| x.as_ref().and_then(Redacted::expose).map(str::to_owned);
        for (key, mine, theirs) in [
            (
                "bootstrap_token",
                &self.bootstrap_token,
                &other.bootstrap_token,
            ),
            ("master_key", &self.master_key, &other.master_key),
            ("metrics.token", &self.metrics.token, &other.metrics.token),
        ] {
            if secret(mine) != secret(theirs) {
                keys.push(key.to_owned());
            }
        }
        keys.sort();
        keys.dedup();
        keys
    }

    /// Takes every key that a running hookd cannot change ([`RESTART_ONLY`]) from `running`, so
    /// what is applied on a reload is exactly what takes effect.
    pub fn keep_restart_only(&mut self, running: &Self) {
        self.listen = running.listen;
        self.data_dir.clone_from(&running.data_dir);
        self.log_format = running.log_format;
        self.bootstrap_token.clone_from(&running.bootstrap_token);
        self.master_key.clone_from(&running.master_key);
        let (l, r) = (&mut self.limits, &running.limits);
        l.max_connections = r.max_connections;
        l.max_connections_per_ip = r.max_connections_per_ip;
        l.per_ip_exempt_networks
            .clone_from(&r.per_ip_exempt_networks);
        l.header_read_timeout_secs = r.header_read_timeout_secs;
        l.idle_timeout_secs = r.idle_timeout_secs;
        l.write_timeout_secs = r.write_timeout_secs;
        l.shutdown_grace_secs = r.shutdown_grace_secs;
        self.store = running.store.clone();
        self.plugin_limits = running.plugin_limits.clone();
        self.delivery.max_in_flight = running.delivery.max_in_flight;
        self.delivery.per_endpoint = running.delivery.per_endpoint;
        self.metrics.enabled = running.metrics.enabled;
    }

    /// The built-in URL rules as configured.
    pub fn url_policy(&self) -> UrlPolicy {
        UrlPolicy {
            max_len: self.url_policy.max_url_length,
            allow_networks: self.url_policy.allow_networks.iter().map(|c| c.0).collect(),
        }
    }

    /// Where compiled plugins are cached.
    pub fn plugin_cache_dir(&self) -> PathBuf {
        if self.plugin_limits.cache_dir.as_os_str().is_empty() {
            self.data_dir.join("plugin-cache")
        } else {
            self.plugin_limits.cache_dir.clone()
        }
    }

    pub fn page_limits(&self) -> PageLimits {
        PageLimits {
            default: self.api.default_page_size,
            max: self.api.max_page_size,
        }
    }
}

/// The keys a running hookd cannot change (a reload logs them and keeps the running value);
/// a key ending in `.` stands for its whole table.
pub const RESTART_ONLY: [&str; 17] = [
    "listen",
    "data_dir",
    "log_format",
    "bootstrap_token",
    "master_key",
    "limits.max_connections",
    "limits.max_connections_per_ip",
    "limits.per_ip_exempt_networks",
    "limits.header_read_timeout_secs",
    "limits.idle_timeout_secs",
    "limits.write_timeout_secs",
    "limits.shutdown_grace_secs",
    "store.",
    "plugin_limits.",
    "delivery.max_in_flight",
    "delivery.per_endpoint",
    "metrics.enabled",
];

/// Whether changing `key` needs a restart.
pub fn needs_restart(key: &str) -> bool {
    RESTART_ONLY
        .iter()
        .any(|r| key == *r || (r.ends_with('.') && key.starts_with(r)))
}

/// The configuration as dotted key paths -> values (arrays of tables as one value each).
fn flatten(config: &Config) -> std::collections::BTreeMap<String, serde_json::Value> {
    fn walk(
        prefix: &str,
        v: serde_json::Value,
        out: &mut std::collections::BTreeMap<String, serde_json::Value>,
    ) {
        match v {
            serde_json::Value::Object(map) if prefix.is_empty() || !map.is_empty() => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            other => {
                out.insert(prefix.to_owned(), other);
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(
        "",
        serde_json::to_value(config).unwrap_or_default(),
        &mut out,
    );
    out
}

/// Turns figment's errors into lines that name the key and its source (file or variable).
fn describe(err: figment::Error) -> ConfigError {
    let lines: Vec<String> = err
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let source = e.metadata.as_ref().map(|m| {
                if m.name.contains("environment") {
                    format!(" (from HOOKD_{})", key.to_uppercase().replace('.', "__"))
                } else {
                    e.metadata
                        .as_ref()
                        .and_then(|m| m.source.as_ref())
                        .map(|s| format!(" (from {s})"))
                        .unwrap_or_default()
                }
            });
            let key = if key.is_empty() {
                "(top level)".into()
            } else {
                key
            };
            // figment's message quotes the value it found: never for a secret.
            let what = if SECRET_KEYS.contains(&key.as_str()) {
                "must be a string (the value is a secret: not shown)".to_owned()
            } else {
                e.kind.to_string()
            };
            format!("  {key}: {what}{}", source.unwrap_or_default())
        })
        .collect();
    ConfigError(lines.join("\n"))
}

/// `HOOKD_LISTEN`, `HOOKD_DATA_DIR`, ..., `HOOKD_METRICS__TOKEN`: the string keys figment
/// would otherwise read as numbers or booleans, taken verbatim.
struct RawEnv;

impl Provider for RawEnv {
    fn metadata(&self) -> Metadata {
        Metadata::named("HOOKD_ environment variable")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for key in RAW_ENV_KEYS {
            if let Ok(v) = std::env::var(format!("HOOKD_{}", key.to_uppercase())) {
                dict.insert(key.to_owned(), Value::from(v));
            }
        }
        for (table, key) in RAW_NESTED_ENV_KEYS {
            let name = format!("HOOKD_{}__{}", table.to_uppercase(), key.to_uppercase());
            if let Ok(v) = std::env::var(name) {
                let mut inner = Dict::new();
                inner.insert(key.to_owned(), Value::from(v));
                dict.insert(table.to_owned(), Value::from(inner));
            }
        }
        Ok(Profile::Default.collect(dict))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
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
        let e =
            Config::from_toml_str("[limits]\nmax_connections = 50\nmax_connections_per_ip = 128")
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
        let e = Config::from_toml_str(
            "[[plugins]]\nname = \"a\"\npath = \"x\"\non_error = \"maybe\"\n",
        )
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

    /// Every top-level key and table is in TOP_KEYS, or its HOOKD_ variables would be dropped
    /// with a warning that it names no key.
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
        let c =
            Config::from_toml_str("master_key = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"")
                .unwrap();
        assert!(!format!("{c:?}").contains("AAAA"));
    }
}
