//! Adapters: the configuration in the shapes other modules take (the URL rules, page limits,
//! the plugin cache directory) and as TOML text for `hookd config check`.

use std::path::PathBuf;

use super::{Config, PluginLimits};
use crate::parse::PageLimits;
use crate::url_policy::UrlPolicy;

impl Config {
    /// The effective configuration as TOML, every secret shown as `"***"`.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot show the configuration: {e}\n"))
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

    /// The bounds of a transformer call, with the plugins' compiled-code cache.
    pub fn transformer_plugin_limits(&self) -> PluginLimits {
        PluginLimits {
            timeout_ms: self.transformer_limits.timeout_ms,
            fuel: self.transformer_limits.fuel,
            memory_bytes: self.transformer_limits.memory_bytes,
            cache_dir: self.plugin_limits.cache_dir.clone(),
        }
    }

    pub fn page_limits(&self) -> PageLimits {
        PageLimits {
            default: self.api.default_page_size,
            max: self.api.max_page_size,
        }
    }
}
