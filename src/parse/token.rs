//! Token bodies: a token creation request, and the comma-separated scope list of
//! `hookd token create --scopes`.

use serde_json::Value;

use super::fields::Fields;
use crate::error::{ApiError, FieldError};
use crate::model::Scope;

/// A validated token creation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateToken {
    pub name: String,
    pub scopes: Vec<Scope>,
    /// When the token stops working (Unix ms), if it was given an `expiresAt`.
    pub expires_at_ms: Option<i64>,
}

/// Parses a token creation body: `name` and a non-empty `scopes` list.
///
/// # Errors
/// As [`create_endpoint`](super::create_endpoint); unknown scopes are named.
pub fn create_token(body: &[u8], now_ms: i64) -> Result<CreateToken, ApiError> {
    let mut f = Fields::object(body, &["name", "scopes", "expiresAt"])?;
    let name = f.name("name", true);
    let expires_at_ms = f.timestamp("expiresAt", false).filter(|at| {
        if *at <= now_ms {
            f.errors
                .push(FieldError::new("expiresAt", "must be in the future"));
        }
        *at > now_ms
    });
    let scopes = f.take("scopes", true).and_then(|v| {
        let Value::Array(items) = v else {
            f.errors
                .push(FieldError::new("scopes", "must be an array of strings"));
            return None;
        };
        let mut scopes = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item.as_str().and_then(Scope::parse) {
                Some(s) if !scopes.contains(&s) => scopes.push(s),
                Some(_) => {}
                None => f.errors.push(FieldError::new(
                    format!("scopes[{i}]"),
                    format!("must be one of {}", scope_list()),
                )),
            }
        }
        if items.is_empty() {
            f.errors
                .push(FieldError::new("scopes", "must not be empty"));
        }
        scopes.sort();
        Some(scopes)
    });
    f.finish()?;
    match (name, scopes) {
        (Some(name), Some(scopes)) => Ok(CreateToken {
            name,
            scopes,
            expires_at_ms,
        }),
        _ => Err(ApiError::Internal),
    }
}

/// A comma-separated list of scopes (`hookd token create --scopes`), each once.
///
/// # Errors
/// An unknown scope, or none at all.
pub fn scopes_list(text: &str) -> Result<Vec<Scope>, String> {
    let mut out = Vec::new();
    for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let scope = Scope::parse(word)
            .ok_or_else(|| format!("unknown scope {word:?} (one of {})", scope_list()))?;
        if !out.contains(&scope) {
            out.push(scope);
        }
    }
    if out.is_empty() {
        return Err(format!("name at least one scope ({})", scope_list()));
    }
    Ok(out)
}

fn scope_list() -> String {
    Scope::ALL.map(Scope::as_str).join(", ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::parse::fields::error_fields as fields;

    #[test]
    fn tokens() {
        let t = create_token(
            br#"{"name":"ci","scopes":["endpoints:write","admin","admin"]}"#,
            0,
        )
        .unwrap();
        assert_eq!(t.scopes, [Scope::EndpointsWrite, Scope::Admin]);
        assert_eq!(
            fields(create_token(br#"{"name":"ci","scopes":["root"]}"#, 0).unwrap_err()),
            ["scopes[0]"]
        );
        assert_eq!(
            fields(create_token(br#"{"name":"ci","scopes":[]}"#, 0).unwrap_err()),
            ["scopes"]
        );
        let now = 1_768_464_000_000;
        let t = create_token(
            br#"{"name":"ci","scopes":["admin"],"expiresAt":"2026-01-15T09:00:00Z"}"#,
            now,
        )
        .unwrap();
        assert_eq!(t.expires_at_ms, Some(now + 3_600_000));
        for bad in [r#""2026-01-15T07:00:00Z""#, r#""tomorrow""#, "1", "null"] {
            let body = format!(r#"{{"name":"ci","scopes":["admin"],"expiresAt":{bad}}}"#);
            assert_eq!(
                fields(create_token(body.as_bytes(), now).unwrap_err()),
                ["expiresAt"],
                "{bad}"
            );
        }
        let e = create_token(br#"{"name":null,"scopes":["admin"],"expiresAt":null}"#, now);
        let text = e.unwrap_err().problem()["errors"].to_string();
        assert!(text.contains("must not be null"), "{text}");
        assert!(text.contains("leave it out rather than null"), "{text}");
    }
}
