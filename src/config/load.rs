//! Loading: the figment layers (the embedded defaults, then an optional file, then the `HOOKD_*`
//! environment), which `HOOKD_` variables are configuration, and figment's errors turned into
//! lines that name the key and where its value came from: every key at fault, not only the
//! first one serde stops at.

use std::path::Path;
use std::sync::LazyLock;

use figment::error::Kind;
use figment::providers::{Env, Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::de::{DeserializeOwned, Deserializer, Visitor};

use super::Config;

/// The defaults, which double as the configuration's documentation.
pub const DEFAULTS: &str = include_str!("../../config/hookd.toml");

/// Top-level string keys read from the environment verbatim (figment would otherwise read
/// `HOOKD_BOOTSTRAP_TOKEN=0123...` as a number).
pub(super) const RAW_ENV_KEYS: [&str; 6] = [
    "listen",
    "data_dir",
    "log",
    "log_format",
    "bootstrap_token",
    "master_key",
];

/// Secret string keys inside tables, read from the environment verbatim too (an all-digit
/// `HOOKD_METRICS__TOKEN` is a token, not a number): (table, key).
pub(super) const RAW_NESTED_ENV_KEYS: [(&str, &str); 1] = [("metrics", "token")];

/// Keys whose values are secrets: an error about one never shows its value.
pub(super) const SECRET_KEYS: [&str; 4] = [
    "bootstrap_token",
    "master_key",
    "metrics.token",
    "store.postgres_url",
];

/// The top-level keys and tables of the configuration: an environment variable is read as
/// configuration when its name (after `HOOKD_`) starts with one of these. Read from the schema
/// itself, so a table added to [`Config`] is never missing here.
pub(super) static TOP_KEYS: LazyLock<&'static [&'static str]> = LazyLock::new(fields_of::<Config>);

/// Whether `key` (lowercase, after `HOOKD_`) is a top-level key or lies in a known table.
fn is_known_top(key: &str) -> bool {
    let top = key.split("__").next().unwrap_or(key);
    TOP_KEYS.contains(&top)
}

/// The field names a derived `Deserialize` of a struct expects: serde hands them to
/// `deserialize_struct`, where a deserializer with no data reads them and stops.
fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Fields<'a>(&'a mut &'static [&'static str]);

    impl<'de> Deserializer<'de> for Fields<'_> {
        type Error = serde::de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(serde::de::Error::custom("fields read"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    // Always an error: there is no value, only the names.
    let _ = T::deserialize(Fields(&mut fields));
    fields
}

/// Why the configuration was refused; the message names each key at fault.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n{0}")]
pub struct ConfigError(pub(super) String);

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
        let mut config: Self = figment
            .extract()
            .map_err(|first| every_fault(figment, first))?;
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
}

/// Keys at fault named at most, however many there are.
const MAX_FAULTS: usize = 64;

/// Every key at fault in `figment`, `first` the error serde stopped at. Each key found is set
/// aside (an unknown key left out, a wrong value replaced by its default) and the rest read
/// again, until it reads; then the checks of [`Config::validate`] run on what is left. Sources
/// come from `figment` itself (the file or variable each value came from).
fn every_fault(figment: &Figment, first: figment::Error) -> ConfigError {
    let mut lines = describe(first.clone(), figment, true);
    let (Ok(mut data), Ok(defaults)) = (
        figment.extract::<Value>(),
        Figment::from(Toml::string(DEFAULTS)).extract::<Value>(),
    ) else {
        return ConfigError(lines.join("\n"));
    };
    let mut err = first;
    while lines.len() < MAX_FAULTS {
        let mut moved = false;
        for e in err {
            moved |= set_aside(&mut data, &defaults, &e);
        }
        if !moved {
            break;
        }
        match Figment::from(Data(&data)).extract::<Config>() {
            Ok(rest) => {
                if let Err(ConfigError(more)) = rest.validate() {
                    lines.extend(more.lines().map(str::to_owned));
                }
                break;
            }
            Err(next) => {
                lines.extend(describe(next.clone(), figment, false));
                err = next;
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    lines.retain(|l| seen.insert(l.clone()));
    ConfigError(lines.join("\n"))
}

/// Sets aside the key `e` is about in `data`: an unknown key is left out, any other fault's
/// value becomes its default (or is left out if it has none). False if there is nothing to
/// set aside (a missing key, a path that names no value).
fn set_aside(data: &mut Value, defaults: &Value, e: &figment::Error) -> bool {
    let (table, key) = match &e.kind {
        // figment's path ends with the unknown key itself.
        Kind::UnknownField(key, _) => match e.path.split_last() {
            Some((last, table)) if last == key => (table, key.as_str()),
            _ => (&e.path[..], key.as_str()),
        },
        Kind::MissingField(_) => return false,
        _ => match e.path.split_last() {
            Some((key, table)) => (table, key.as_str()),
            None => return false,
        },
    };
    let default = match &e.kind {
        Kind::UnknownField(..) => None,
        _ => table_at(defaults, table).and_then(|d| d.get(key)).cloned(),
    };
    let Some(Value::Dict(_, dict)) = value_at_mut(data, table) else {
        return false;
    };
    match default {
        Some(v) if dict.get(key) != Some(&v) => dict.insert(key.to_owned(), v).is_some(),
        Some(_) => false,
        None => dict.remove(key).is_some(),
    }
}

/// The table at `path` in `v`.
fn table_at<'a>(v: &'a Value, path: &[String]) -> Option<&'a Dict> {
    path.iter()
        .try_fold(v, |v, k| v.as_dict()?.get(k))?
        .as_dict()
}

/// The value at `path` in `v`, to change.
fn value_at_mut<'a>(v: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, k| match v {
        Value::Dict(_, d) => d.get_mut(k),
        _ => None,
    })
}

/// Figment's errors as lines that name the key and its source (file or variable), looked up in
/// `figment`; an error of `figment`'s own reading (`first`) may carry it too, one of a re-read
/// carries none worth showing.
fn describe(err: figment::Error, figment: &Figment, first: bool) -> Vec<String> {
    err.into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let own = if first { e.metadata.as_ref() } else { None };
            let metadata = figment.find_metadata(&key).or(own);
            let source = metadata.map(|m| {
                if m.name.contains("environment") {
                    // The variable holds the whole list: name it, not one per element.
                    let var: Vec<String> = e
                        .path
                        .iter()
                        .take_while(|p| !p.bytes().all(|b| b.is_ascii_digit()))
                        .map(|p| p.to_uppercase())
                        .collect();
                    format!(" (from HOOKD_{})", var.join("__"))
                } else {
                    m.source
                        .as_ref()
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
        .collect()
}

/// Configuration data already read, handed back to figment as a layer of its own.
struct Data<'a>(&'a Value);

impl Provider for Data<'_> {
    fn metadata(&self) -> Metadata {
        Metadata::named("configuration (re-read)")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let dict = self.0.as_dict().cloned().unwrap_or_default();
        Ok(Profile::Default.collect(dict))
    }
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
