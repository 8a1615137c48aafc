//! Validation: the rules serde cannot express (ranges, uniqueness, the shape of tokens and
//! keys), checked all at once so that one error lists every key at fault. Each range is
//! declared once, as a range: its message is built from it.

use std::fmt::{self, Display};
use std::ops::RangeInclusive;

use super::{
    Api, Config, ConfigError, DeliveryConfig, Limits, PluginConfig, PluginLimits, Redacted,
    RetentionConfig, TransformerConfig, TransformerLimits, MAX_PLUGINS,
};
use crate::parse::MAX_PLUGIN_SETTINGS;

const DAY: u64 = 86_400;

impl Config {
    /// Range checks serde cannot express.
    ///
    /// # Errors
    /// Every rule broken, each naming its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut p = Problems::default();
        limits(&mut p, &self.limits);
        api(&mut p, &self.api);
        p.at_most(
            "endpoints.rotation_grace_secs",
            self.endpoints.rotation_grace_secs,
            End::Noted(90 * DAY, "90 days"),
        );
        p.in_range(
            "url_policy.max_url_length",
            self.url_policy.max_url_length,
            64..=65_536,
        );
        p.in_range("store.max_batch", self.store.max_batch, 1..=65_536);
        p.in_range("store.cache_mib", self.store.cache_mib, 1..=65_536);
        store(&mut p, &self.store);
        plugin_limits(&mut p, &self.plugin_limits);
        plugins(&mut p, &self.plugins);
        transformers(&mut p, &self.transformer_limits, &self.transformers);
        delivery(&mut p, &self.delivery);
        retention(&mut p, &self.retention);
        secrets(&mut p, self);
        tls(&mut p, &self.tls);
        p.into_result()
    }
}

fn limits(p: &mut Problems, l: &Limits) {
    p.in_range("limits.max_body_bytes", l.max_body_bytes, 1024..=16 << 20);
    p.in_range(
        "limits.max_alert_body_bytes",
        l.max_alert_body_bytes,
        1024..=64 << 20,
    );
    p.in_range("limits.max_connections", l.max_connections, 1..=1_000_000);
    p.between(
        "limits.max_connections_per_ip",
        l.max_connections_per_ip,
        1,
        End::Key(l.max_connections, "limits.max_connections"),
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
        p.in_range(key, value, 1..=3600);
    }
    p.at_most("limits.shutdown_grace_secs", l.shutdown_grace_secs, 3600);
}

fn api(p: &mut Problems, a: &Api) {
    p.in_range("api.max_page_size", a.max_page_size, 1..=10_000);
    p.between(
        "api.default_page_size",
        a.default_page_size,
        1,
        End::Key(a.max_page_size, "api.max_page_size"),
    );
}

fn plugin_limits(p: &mut Problems, l: &PluginLimits) {
    call_limits(
        p,
        "plugin_limits",
        (l.timeout_ms, l.fuel, l.memory_bytes),
        10_000,
    );
}

/// The bounds of one plugin call in `table`: (timeout_ms, fuel, memory_bytes), the deadline at
/// most `max_timeout_ms`.
fn call_limits(p: &mut Problems, table: &str, l: (u64, u64, usize), max_timeout_ms: u64) {
    let (timeout_ms, fuel, memory_bytes) = l;
    p.in_range(
        &format!("{table}.timeout_ms"),
        timeout_ms,
        1..=max_timeout_ms,
    );
    p.at_least(&format!("{table}.fuel"), fuel, 10_000);
    p.in_range(
        &format!("{table}.memory_bytes"),
        memory_bytes,
        65_536..=1 << 30,
    );
}

fn plugins(p: &mut Problems, plugins: &[PluginConfig]) {
    let named: Vec<(&str, &str)> = plugins
        .iter()
        .map(|c| (c.name.as_str(), c.settings.as_str()))
        .collect();
    named_plugins(p, "plugins", &named);
}

fn transformers(p: &mut Problems, l: &TransformerLimits, transformers: &[TransformerConfig]) {
    let limits = (l.timeout_ms, l.fuel, l.memory_bytes);
    call_limits(p, "transformer_limits", limits, 60_000);
    let named: Vec<(&str, &str)> = transformers
        .iter()
        .map(|c| (c.name.as_str(), c.settings.as_str()))
        .collect();
    named_plugins(p, "transformers", &named);
}

/// The rules of a list of plugins (`key` is its table): how many, their (name, settings).
fn named_plugins(p: &mut Problems, key: &str, plugins: &[(&str, &str)]) {
    p.check(
        plugins.len() <= MAX_PLUGINS,
        key,
        format_args!("may list at most {MAX_PLUGINS} {key}"),
    );
    for (i, (name, settings)) in plugins.iter().enumerate() {
        let at = format!("{key}[{i}]");
        p.check(
            crate::parse::is_plugin_name(name),
            &format!("{at}.name"),
            "must be 1-64 characters of A-Z a-z 0-9 - _",
        );
        p.check(
            plugins[..i].iter().all(|(other, _)| other != name),
            &format!("{at}.name"),
            "must be unique",
        );
        p.check(
            settings.len() <= MAX_PLUGIN_SETTINGS,
            &format!("{at}.settings"),
            format_args!("must be at most {MAX_PLUGIN_SETTINGS} bytes"),
        );
    }
}

fn delivery(p: &mut Problems, d: &DeliveryConfig) {
    // The most waits a retry schedule lists, and the longest of them.
    const MAX_WAITS: usize = 100;
    const MAX_WAIT_SECS: u64 = 30 * DAY;
    p.in_range("delivery.max_in_flight", d.max_in_flight, 1..=100_000);
    p.between(
        "delivery.per_endpoint",
        d.per_endpoint,
        1,
        End::Key(d.max_in_flight, "delivery.max_in_flight"),
    );
    p.in_range(
        "delivery.max_in_flight_bytes",
        d.max_in_flight_bytes,
        1 << 20..=1 << 36,
    );
    p.all_in_range(
        "delivery.connect_timeout_ms / delivery.timeout_ms",
        &[d.connect_timeout_ms, d.timeout_ms],
        1..=600_000,
    );
    p.check(
        d.retry_schedule_secs.len() <= MAX_WAITS
            && d.retry_schedule_secs.iter().all(|s| *s <= MAX_WAIT_SECS),
        "delivery.retry_schedule_secs",
        format_args!("must have at most {MAX_WAITS} waits of at most {MAX_WAIT_SECS} s each"),
    );
    p.in_range("delivery.jitter_percent", d.jitter_percent, 0..=100);
    p.at_most(
        "delivery.response_body_bytes",
        d.response_body_bytes,
        1 << 20,
    );
    p.in_range("delivery.poll_interval_ms", d.poll_interval_ms, 10..=60_000);
    p.between(
        "delivery.circuit_failures",
        d.circuit_failures,
        End::Noted(0, "off"),
        1000,
    );
    p.in_range("delivery.circuit_open_secs", d.circuit_open_secs, 1..=DAY);
    p.between(
        "delivery.circuit_max_open_secs",
        d.circuit_max_open_secs,
        End::Key(d.circuit_open_secs, "delivery.circuit_open_secs"),
        DAY,
    );
}

fn retention(p: &mut Problems, r: &RetentionConfig) {
    for (value, key) in [
        (r.messages_secs, "retention.messages_secs"),
        (r.attempts_secs, "retention.attempts_secs"),
    ] {
        p.between(key, value, 1, End::Noted(10 * 365 * DAY, "ten years"));
    }
    p.in_range(
        "retention.attempts_per_endpoint",
        r.attempts_per_endpoint,
        1..=10_000_000,
    );
    p.in_range("retention.batch", r.batch, 1..=100_000);
    p.in_range("retention.interval_secs", r.interval_secs, 1..=DAY);
}

/// The shapes of the secrets, when set (a message never shows the value).
fn store(p: &mut Problems, s: &super::StoreConfig) {
    if s.backend != super::StoreBackend::Postgres {
        return;
    }
    p.check(
        cfg!(feature = "postgres"),
        "store.backend",
        "\"postgres\" needs a hookd built with the postgres feature (cargo build --release --features postgres)",
    );
    p.check(
        s.postgres_url.expose().is_some(),
        "store.postgres_url",
        "must be set with store.backend = \"postgres\" (postgres://user:password@host/db)",
    );
    p.in_range("store.postgres_pool_size", s.postgres_pool_size, 1..=1_000);
    p.in_range(
        "store.postgres_lease_secs",
        s.postgres_lease_secs,
        5..=3_600,
    );
}

fn tls(p: &mut Problems, t: &super::TlsConfig) {
    let set = |path: &std::path::Path| !path.as_os_str().is_empty();
    p.check(
        set(&t.cert_file) == set(&t.key_file),
        if set(&t.cert_file) {
            "tls.key_file"
        } else {
            "tls.cert_file"
        },
        "must be set with tls.cert_file and tls.key_file both (HTTPS), or neither (cleartext)",
    );
    p.check(
        !set(&t.client_ca_file) || set(&t.cert_file),
        "tls.client_ca_file",
        "needs tls.cert_file and tls.key_file (client certificates are asked for over HTTPS only)",
    );
}

fn secrets(p: &mut Problems, c: &Config) {
    const BEARER_RULE: &str = "must be at least 16 characters of A-Z a-z 0-9 - . _ ~ + / =";
    let bearer = |token: &str| {
        crate::parse::bearer_token(Some(format!("Bearer {token}").as_bytes())).is_ok()
            && token.len() >= 16
    };
    if let Some(token) = c.bootstrap_token.as_ref().and_then(Redacted::expose) {
        p.check(
            bearer(token),
            "bootstrap_token (HOOKD_BOOTSTRAP_TOKEN)",
            BEARER_RULE,
        );
    }
    if let Some(token) = c.metrics.token.as_ref().and_then(Redacted::expose) {
        p.check(
            bearer(token),
            "metrics.token (HOOKD_METRICS__TOKEN)",
            BEARER_RULE,
        );
    }
    if let Some(key) = c.master_key.as_ref().and_then(Redacted::expose) {
        p.check(
            crate::vault::MasterKey::parse(key).is_ok(),
            "master_key (HOOKD_MASTER_KEY)",
            "must be 32 bytes as base64, or 64 hex digits",
        );
    }
}

/// The rules broken so far, one line each: `  key: rule`, in the order checked.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn check(&mut self, ok: bool, key: &str, rule: impl Display) {
        if !ok {
            self.0.push(format!("  {key}: {rule}"));
        }
    }

    /// `value` is in `range`, else "must be from {start} to {end}", both read from the range.
    fn in_range<T: PartialOrd + Display + Copy>(
        &mut self,
        key: &str,
        value: T,
        range: RangeInclusive<T>,
    ) {
        self.all_in_range(key, &[value], range);
    }

    /// Every one of `values` is in `range`, with one message for them all.
    fn all_in_range<T: PartialOrd + Display + Copy>(
        &mut self,
        key: &str,
        values: &[T],
        range: RangeInclusive<T>,
    ) {
        let (start, end) = range.into_inner();
        self.within(key, values, &End::Value(start), &End::Value(end));
    }

    /// As [`Problems::in_range`], with ends that may carry a note or be another key's value.
    fn between<T: PartialOrd + Display + Copy>(
        &mut self,
        key: &str,
        value: T,
        start: impl Into<End<T>>,
        end: impl Into<End<T>>,
    ) {
        self.within(key, &[value], &start.into(), &end.into());
    }

    fn within<T: PartialOrd + Display + Copy>(
        &mut self,
        key: &str,
        values: &[T],
        start: &End<T>,
        end: &End<T>,
    ) {
        let ok = values
            .iter()
            .all(|v| start.value() <= v && v <= end.value());
        self.check(ok, key, format_args!("must be from {start} to {end}"));
    }

    /// `value` is at most `max`, else "must be at most {max}".
    fn at_most<T: PartialOrd + Display + Copy>(
        &mut self,
        key: &str,
        value: T,
        max: impl Into<End<T>>,
    ) {
        let max = max.into();
        let ok = value <= *max.value();
        self.check(ok, key, format_args!("must be at most {max}"));
    }

    /// `value` is at least `min`, else "must be at least {min}".
    fn at_least<T: PartialOrd + Display + Copy>(&mut self, key: &str, value: T, min: T) {
        self.check(value >= min, key, format_args!("must be at least {min}"));
    }

    fn into_result(self) -> Result<(), ConfigError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(self.0.join("\n")))
        }
    }
}

/// One end of a range, as its message shows it.
enum End<T> {
    /// A number: `3600`.
    Value(T),
    /// A number and what it means: `315360000 (ten years)`.
    Noted(T, &'static str),
    /// Another key's value, shown as the key: `limits.max_connections`.
    Key(T, &'static str),
}

impl<T> End<T> {
    fn value(&self) -> &T {
        match self {
            Self::Value(v) | Self::Noted(v, _) | Self::Key(v, _) => v,
        }
    }
}

impl<T> From<T> for End<T> {
    fn from(value: T) -> Self {
        Self::Value(value)
    }
}

impl<T: Display> Display for End<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Value(v) => write!(f, "{v}"),
            Self::Noted(v, note) => write!(f, "{v} ({note})"),
            Self::Key(_, key) => f.write_str(key),
        }
    }
}
