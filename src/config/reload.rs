//! Reload policy: which keys differ between the running configuration and a new one, and which
//! of them a running hookd cannot change (those keep their running value until a restart).

use std::collections::BTreeMap;

use super::{Config, Redacted};

/// The keys a running hookd cannot change (a reload logs them and keeps the running value);
/// a key ending in `.` stands for its whole table.
pub const RESTART_ONLY: [&str; 19] = [
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
    "transformer_limits.",
    "delivery.max_in_flight",
    "delivery.per_endpoint",
    "delivery.max_in_flight_bytes",
    "metrics.enabled",
];

/// Whether changing `key` needs a restart.
pub fn needs_restart(key: &str) -> bool {
    RESTART_ONLY
        .iter()
        .any(|r| key == *r || (r.ends_with('.') && key.starts_with(r)))
}

impl Config {
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
        self.transformer_limits = running.transformer_limits.clone();
        self.delivery.max_in_flight = running.delivery.max_in_flight;
        self.delivery.per_endpoint = running.delivery.per_endpoint;
        self.delivery.max_in_flight_bytes = running.delivery.max_in_flight_bytes;
        self.metrics.enabled = running.metrics.enabled;
    }
}

/// The configuration as dotted key paths -> values (arrays of tables as one value each).
pub(super) fn flatten(config: &Config) -> BTreeMap<String, serde_json::Value> {
    fn walk(prefix: &str, v: serde_json::Value, out: &mut BTreeMap<String, serde_json::Value>) {
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
    let mut out = BTreeMap::new();
    walk(
        "",
        serde_json::to_value(config).unwrap_or_default(),
        &mut out,
    );
    out
}
