//! The JSON-object validator every body parser builds on: [`Fields`] reads a body as an object,
//! refuses unknown keys, and checks fields one by one (strings, names, URLs, secrets,
//! timestamps), collecting every error; with it, the rules for echoing a client-chosen name back
//! as an error's `field`.

use serde_json::{Map, Value};

use crate::error::{ApiError, FieldError};
use crate::model::SigningAlgorithm;
use crate::secrets::SigningSecret;
use crate::url_policy::UrlPolicy;

/// Longest endpoint or token name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest field name echoed back in an error, in characters.
const MAX_ECHOED_FIELD: usize = 64;

/// Unicode format characters (general category Cf: bidirectional overrides and isolates,
/// zero-width spaces and joiners, the byte-order mark, invisible operators, tags, ...) and the
/// line and paragraph separators: characters that render as nothing, or reorder what follows,
/// so a name holding them can pass for another in a list.
pub fn is_invisible_format(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x2028..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    )
}

/// A client-chosen name as an error's `field`: capped in length, and never empty (a client
/// cannot act on an empty field name).
pub(super) fn echo(name: &str) -> String {
    echo_under("", name)
}

/// [`echo`] of a client-chosen key under `parent` (`headers.X-Api-Key`), the whole still
/// within the cap.
pub(super) fn echo_under(parent: &str, name: &str) -> String {
    if name.is_empty() {
        return format!("{parent}(empty name)");
    }
    let room = MAX_ECHOED_FIELD.saturating_sub(parent.chars().count());
    format!("{parent}{}", name.chars().take(room).collect::<String>())
}

/// A JSON object being validated field by field; collects every error before failing.
pub(super) struct Fields {
    pub(super) map: Map<String, Value>,
    pub(super) errors: Vec<FieldError>,
}

impl Fields {
    pub(super) fn object(body: &[u8], allowed: &[&str]) -> Result<Self, ApiError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
        let Value::Object(map) = value else {
            return Err(ApiError::field("body", "must be a JSON object"));
        };
        let errors = map
            .keys()
            .filter(|k| !allowed.contains(&k.as_str()))
            .map(|k| FieldError::new(echo(k), "is not a known field"))
            .collect();
        Ok(Self { map, errors })
    }

    /// The value of `key`, recording "is required" or a `null` refused as needed. `null` for an
    /// optional field is refused saying what to do instead (leave it out), which also keeps
    /// schema-driven tools from reading the answer as "this field is required".
    pub(super) fn take(&mut self, key: &str, required: bool) -> Option<Value> {
        match self.map.get(key) {
            None if required => {
                self.errors.push(FieldError::new(key, "is required"));
                None
            }
            None => None,
            Some(Value::Null) if required => {
                self.errors.push(FieldError::new(key, "must not be null"));
                None
            }
            Some(Value::Null) => {
                self.errors.push(FieldError::new(
                    key,
                    "is optional: leave it out rather than null",
                ));
                None
            }
            Some(v) => Some(v.clone()),
        }
    }

    fn typed<T>(
        &mut self,
        key: &str,
        required: bool,
        kind: &str,
        f: fn(&Value) -> Option<T>,
    ) -> Option<T> {
        let v = self.take(key, required)?;
        let out = f(&v);
        if out.is_none() {
            self.errors
                .push(FieldError::new(key, format!("must be a {kind}")));
        }
        out
    }

    pub(super) fn string(&mut self, key: &str, required: bool) -> Option<String> {
        self.typed(key, required, "string", |v| v.as_str().map(str::to_owned))
    }

    pub(super) fn bool(&mut self, key: &str, required: bool) -> Option<bool> {
        self.typed(key, required, "boolean", Value::as_bool)
    }

    /// A display name: trimmed, 1-200 characters, no control or invisible format characters.
    pub(super) fn name(&mut self, key: &str, required: bool) -> Option<String> {
        let s = self.string(key, required)?;
        let s = s.trim();
        let problem = if s.is_empty() {
            Some("must not be empty".to_owned())
        } else if s.chars().count() > MAX_NAME_CHARS {
            Some(format!("must be at most {MAX_NAME_CHARS} characters"))
        } else if s.chars().any(char::is_control) {
            Some("must not contain control characters".to_owned())
        } else {
            s.chars().find(|c| is_invisible_format(*c)).map(|c| {
                format!(
                    "must not contain invisible formatting characters (found U+{:04X}), which can disguise a name",
                    u32::from(c)
                )
            })
        };
        match problem {
            Some(m) => {
                self.errors.push(FieldError::new(key, m));
                None
            }
            None => Some(s.to_owned()),
        }
    }

    pub(super) fn url(&mut self, key: &str, policy: &UrlPolicy, required: bool) -> Option<String> {
        let s = self.string(key, required)?;
        match policy.check(&s) {
            Ok(url) => Some(url.into()),
            Err(why) => {
                self.errors.push(FieldError::new(key, why));
                None
            }
        }
    }

    /// `Some(None)` for an empty string (generate), `Some(Some(_))` for a valid supplied secret
    /// (of `algorithm`, when that is given).
    pub(super) fn secret(
        &mut self,
        key: &str,
        required: bool,
        algorithm: Option<SigningAlgorithm>,
    ) -> Option<Option<SigningSecret>> {
        let s = self.string(key, required)?;
        if s.is_empty() {
            return Some(None);
        }
        let parsed = match algorithm {
            Some(a) => SigningSecret::parse_for(&s, a),
            None => SigningSecret::parse(&s),
        };
        match parsed {
            Ok(secret) => Some(Some(secret)),
            Err(e) => {
                self.errors.push(FieldError::new(key, e.to_string()));
                None
            }
        }
    }

    /// An RFC 3339 timestamp, as Unix ms.
    pub(super) fn timestamp(&mut self, key: &str, required: bool) -> Option<i64> {
        let t = self.string(key, required)?;
        let at = crate::time::parse_rfc3339(&t);
        if at.is_none() {
            self.errors.push(FieldError::new(
                key,
                "must be an RFC 3339 timestamp, like 2027-01-01T00:00:00Z",
            ));
        }
        at
    }

    pub(super) fn algorithm(&mut self, key: &str) -> Option<SigningAlgorithm> {
        let s = self.string(key, false)?;
        let found = SigningAlgorithm::parse(&s);
        if found.is_none() {
            self.errors.push(FieldError::new(
                key,
                "must be \"hmac-sha256\" or \"ed25519\"",
            ));
        }
        found
    }

    pub(super) fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }
}

/// The `field` of each error of a validation failure, in order (for the parsers' tests).
#[cfg(test)]
pub(super) fn error_fields(e: ApiError) -> Vec<String> {
    match e {
        ApiError::Validation(errors) => errors.into_iter().map(|e| e.field).collect(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::error_fields as fields;
    use super::*;
    use crate::parse::{create_endpoint, create_token, list_query, update_endpoint, PageLimits};

    #[test]
    fn names_that_could_disguise_themselves_are_refused() {
        let p = UrlPolicy::default();
        for bad in [
            "pay\u{202E}lpa",
            "a\u{200B}b",
            "\u{FEFF}x",
            "a\u{2066}b",
            "a\u{2028}b",
            "x\u{E0041}",
        ] {
            let body = serde_json::json!({"name": bad, "url": "https://a.example", "signingEnabled": true, "signingSecret": ""});
            let e = create_endpoint(body.to_string().as_bytes(), &p).unwrap_err();
            assert_eq!(fields(e.clone()), ["name"], "{bad:?}");
            let ApiError::Validation(errors) = e else {
                unreachable!()
            };
            assert!(
                errors[0].message.contains("invisible"),
                "{}",
                errors[0].message
            );
            let token = serde_json::json!({"name": bad, "scopes": ["admin"]});
            assert_eq!(
                fields(create_token(token.to_string().as_bytes(), 0).unwrap_err()),
                ["name"]
            );
        }
        // Visible non-ASCII is fine.
        for good in ["Équipe DB", "監視", "alerts 🚨", "שלום"] {
            let body = serde_json::json!({"name": good, "url": "https://a.example", "signingEnabled": true, "signingSecret": ""});
            assert!(
                create_endpoint(body.to_string().as_bytes(), &p).is_ok(),
                "{good}"
            );
        }
    }

    /// Found by the create_body, list_query and body fuzz targets: an empty key was echoed as
    /// an empty field name.
    #[test]
    fn empty_names_are_named() {
        let p = UrlPolicy::default();
        assert_eq!(
            fields(update_endpoint(br#"{"":1}"#, &p).unwrap_err()),
            ["(empty name)"]
        );
        let l = PageLimits {
            default: 50,
            max: 200,
        };
        assert_eq!(
            fields(list_query(Some("=1"), "wh-", l).unwrap_err()),
            ["(empty name)"]
        );
    }
}
