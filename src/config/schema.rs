//! The schema: every table of the configuration as a typed struct, and the serde impls of the
//! values that are more than a number or a string (secrets, IP addresses, networks). The names
//! of the fields are the names of the keys; `deny_unknown_fields` makes a misspelt key an error.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize, Serializer};

use crate::url_policy::Cidr;

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
    pub transformer_limits: TransformerLimits,
    pub transformers: Vec<TransformerConfig>,
    pub delivery: DeliveryConfig,
    pub retention: RetentionConfig,
    pub metrics: MetricsConfig,
    pub console: ConsoleConfig,
    pub tls: TlsConfig,
}

/// HTTPS for the API: on when `cert_file` is set. Empty paths stand for "not set".
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_ca_file: PathBuf,
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
    /// Bytes of alert payloads the deliveries in flight may hold at once (see
    /// `delivery::permits`).
    pub max_in_flight_bytes: u64,
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
    pub hosts: BTreeMap<String, IpValue>,
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
    /// The alert routes' own body limit: an Alertmanager group arrives whole.
    pub max_alert_body_bytes: usize,
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
    /// Which backend keeps the data.
    pub backend: StoreBackend,
    pub max_batch: usize,
    pub cache_mib: usize,
    pub min_free_bytes: u64,
    /// `backend = "postgres"`: the database's URL (it may hold a password: a secret).
    pub postgres_url: Redacted,
    /// `backend = "postgres"`: connections kept at most.
    pub postgres_pool_size: usize,
    /// `backend = "postgres"`: how long a claimed delivery stays this instance's without
    /// renewal (a killed instance's deliveries are taken over after it).
    pub postgres_lease_secs: u64,
    /// `backend = "postgres"`: PEM CA certificates that verify the server's certificate
    /// (besides the web roots), for `sslmode=require`.
    pub postgres_ca_file: PathBuf,
}

/// `store.backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// redb in the data directory (the default).
    Embedded,
    /// PostgreSQL, shared by several instances (builds with the `postgres` feature).
    Postgres,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PluginLimits {
    pub timeout_ms: u64,
    pub fuel: u64,
    pub memory_bytes: usize,
    pub cache_dir: PathBuf,
}

/// `[transformer_limits]`: the bounds of one transformer call (the compiled-code cache is
/// `plugin_limits.cache_dir`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TransformerLimits {
    pub timeout_ms: u64,
    pub fuel: u64,
    pub memory_bytes: usize,
}

/// One `[[transformers]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TransformerConfig {
    pub name: String,
    pub path: PathBuf,
    #[serde(default)]
    pub settings: String,
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

/// An IP address read from configuration.
#[derive(Debug, Clone, Copy)]
pub struct IpValue(pub IpAddr);

impl<'de> Deserialize<'de> for IpValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map(IpValue)
            .map_err(|_| serde::de::Error::custom(format!("'{s}' is not an IP address")))
    }
}

impl Serialize for IpValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
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

impl Serialize for CidrValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:?}", self.0))
    }
}

/// A secret configuration string: never printed by `Debug`; empty means unset.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Redacted(String);

impl Redacted {
    pub fn new(secret: String) -> Self {
        Self(secret)
    }

    pub fn expose(&self) -> Option<&str> {
        Some(self.0.as_str()).filter(|s| !s.is_empty())
    }
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "***" })
    }
}

/// Shown as `"***"` when set: printing a configuration never prints a secret.
impl Serialize for Redacted {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.0.is_empty() { "" } else { "***" })
    }
}
