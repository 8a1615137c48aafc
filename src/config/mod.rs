//! Configuration: the commented defaults in `config/hookd.toml` (compiled in), then an optional
//! `--config FILE`, then `HOOKD_*` environment variables (figment). Every value is typed and
//! checked at startup; an error names the key and where the bad value came from.
//!
//! One job per submodule (all private; everything public is re-exported here):
//!
//! - `schema`: the typed configuration, one struct per table, and the serde impls of its values
//!   (secrets as [`Redacted`], [`IpValue`], [`CidrValue`]).
//! - `load`: the figment layers ([`DEFAULTS`], file, environment), which `HOOKD_*` variables
//!   are configuration (the top-level keys are read from the schema), and figment's errors as
//!   [`ConfigError`] lines that name the key and its source.
//! - `validate`: [`Config::validate`], the rules serde cannot express; each range is declared
//!   once and its message built from it.
//! - `reload`: what a reload may change: [`Config::changed_keys`], the [`RESTART_ONLY`] keys
//!   and [`Config::keep_restart_only`].
//! - `adapters`: the configuration as other modules take it (URL rules, page limits, the plugin
//!   cache directory) and as TOML text.

mod adapters;
mod load;
mod reload;
mod schema;
mod validate;

#[cfg(test)]
mod tests;

pub use load::{ConfigError, DEFAULTS};
pub use reload::{needs_restart, RESTART_ONLY};
pub use schema::{
    Api, CidrValue, Config, ConsoleConfig, DeliveryConfig, Endpoints, IpValue, Limits, LogFormat,
    MetricsConfig, OnError, PluginConfig, PluginLimits, Redacted, RetentionConfig, StoreBackend,
    StoreConfig, TlsConfig, TransformerConfig, TransformerLimits, UrlPolicyConfig, MAX_PLUGINS,
};
