//! An endpoint's format as stored and shown: a built-in format's name, or `plugin:<name>` for a
//! transformer plugin (serialized as that one string).

use serde::{Deserialize, Serialize};

/// The shape of the requests an endpoint receives: the Standard Webhooks envelope, the message
/// format of a chat or incident tool (rendered by [`crate::format`] at send time), or what a
/// transformer plugin of the configuration returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Format {
    /// `{"type", "timestamp", "data"}`, as before formats existed.
    #[default]
    StandardWebhooks,
    /// A Slack incoming webhook: a Block Kit message.
    Slack,
    /// A Discord webhook: a content line and an embed per alert.
    Discord,
    /// A Google Chat incoming webhook: a text message.
    GoogleChat,
    /// A Mattermost incoming webhook: a Markdown text.
    Mattermost,
    /// PagerDuty's Events API v2: trigger and resolve events, deduplicated per group.
    Pagerduty,
    /// Microsoft Teams through a Workflows webhook: an Adaptive Card.
    Teams,
    /// `plugin:<name>`: a transformer plugin of the configuration's `[[transformers]]`. Holds
    /// the whole `plugin:<name>` text.
    Plugin(String),
}

/// A plugin name (URL policy or transformer): 1-64 characters of `[A-Za-z0-9_-]`.
pub fn is_plugin_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// How a transformer's format is written: `plugin:` and its name.
pub const PLUGIN_PREFIX: &str = "plugin:";

impl Format {
    /// The built-in formats.
    pub const ALL: [Self; 7] = [
        Self::StandardWebhooks,
        Self::Slack,
        Self::Discord,
        Self::GoogleChat,
        Self::Mattermost,
        Self::Pagerduty,
        Self::Teams,
    ];

    pub fn as_str(&self) -> &str {
        match self {
            Self::StandardWebhooks => "standard-webhooks",
            Self::Slack => "slack",
            Self::Discord => "discord",
            Self::GoogleChat => "google-chat",
            Self::Mattermost => "mattermost",
            Self::Pagerduty => "pagerduty",
            Self::Teams => "teams",
            Self::Plugin(s) => s,
        }
    }

    /// A built-in format by name, or `plugin:<name>` with a valid transformer name (whether
    /// the configuration has it is for the caller to check).
    pub fn parse(s: &str) -> Option<Self> {
        if let Some(name) = s.strip_prefix(PLUGIN_PREFIX) {
            return is_plugin_name(name).then(|| Self::Plugin(s.to_owned()));
        }
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// The transformer's name, for `plugin:<name>`.
    pub fn plugin(&self) -> Option<&str> {
        match self {
            Self::Plugin(s) => s.strip_prefix(PLUGIN_PREFIX),
            _ => None,
        }
    }
}

impl Serialize for Format {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Format {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown format {s:?}")))
    }
}

#[cfg(test)]
impl utoipa::PartialSchema for Format {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let names: Vec<&str> = Self::ALL.iter().map(Self::as_str).collect();
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(format!(
                "^({}|{PLUGIN_PREFIX}[A-Za-z0-9_-]{{1,64}})$",
                names.join("|")
            )))
            .description(Some(format!(
                "{}, or {PLUGIN_PREFIX}<name> for a transformer plugin of the configuration",
                names.join(", ")
            )))
            .examples(["slack"])
            .into()
    }
}

#[cfg(test)]
impl utoipa::ToSchema for Format {}
