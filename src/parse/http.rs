//! HTTP edges: what a request carries outside its body: the list query string
//! (`?limit=N&cursor=C`), the `Authorization` header (Bearer, or Basic carrying a token) and the
//! `Content-Type`.

use super::fields::echo;
use crate::error::{ApiError, FieldError};

/// Page size bounds from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimits {
    pub default: usize,
    pub max: usize,
}

/// A validated list query: `?limit=N&cursor=C`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub limit: usize,
    /// The id after which the page starts.
    pub cursor: Option<String>,
}

/// Parses a list query string (without the `?`). `cursor` must look like an id with
/// `id_prefix`.
///
/// # Errors
/// 422 naming `limit`, `cursor`, or an unknown parameter.
pub fn list_query(
    query: Option<&str>,
    id_prefix: &str,
    limits: PageLimits,
) -> Result<Page, ApiError> {
    let mut page = Page {
        limit: limits.default,
        cursor: None,
    };
    let mut errors = Vec::new();
    let mut seen = Vec::new();
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if seen.contains(&key) {
            errors.push(FieldError::new(echo(&key), "is given more than once"));
            continue;
        }
        seen.push(key.clone());
        match &*key {
            "limit" => match value.parse::<usize>() {
                Ok(n) if (1..=limits.max).contains(&n) => page.limit = n,
                _ => errors.push(FieldError::new(
                    "limit",
                    format!("must be a whole number from 1 to {}", limits.max),
                )),
            },
            "cursor" if crate::ids::is_well_formed(id_prefix, &value) => {
                page.cursor = Some(value.into_owned());
            }
            "cursor" => errors.push(FieldError::new(
                "cursor",
                "is not a cursor this server returned",
            )),
            other => errors.push(FieldError::new(echo(other), "is not a known parameter")),
        }
    }
    if errors.is_empty() {
        Ok(page)
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// Extracts the token from an `Authorization: Bearer <token>` header value.
///
/// # Errors
/// 401 when the header is missing, not Bearer, or not a token68 value.
pub fn bearer_token(header: Option<&[u8]>) -> Result<&str, ApiError> {
    let header = header.ok_or(ApiError::Unauthorized(
        "send 'Authorization: Bearer <token>'",
    ))?;
    let value = std::str::from_utf8(header)
        .map_err(|_| ApiError::Unauthorized("the Authorization header is not valid text"))?;
    let (scheme, token) = value.split_once(' ').ok_or(ApiError::Unauthorized(
        "the Authorization header must be 'Bearer <token>'",
    ))?;
    let token = token.trim_matches(' ');
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::Unauthorized(
            "the Authorization scheme must be Bearer",
        ));
    }
    let token68 = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b);
    if token.is_empty() || token.len() > 512 || !token.bytes().all(token68) {
        return Err(ApiError::Unauthorized("the bearer token is malformed"));
    }
    Ok(token)
}

/// A token as presented, with what to answer when it is no token hookd has: the scheme that
/// carried it is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented {
    pub token: String,
    pub unknown: &'static str,
}

impl Presented {
    /// A token from `Authorization: Bearer <token>`.
    pub fn bearer(token: &str) -> Self {
        Self {
            token: token.to_owned(),
            unknown: "the bearer token is not valid",
        }
    }
}

/// The token from `Authorization: Bearer <token>` or, for senders that can only do basic auth
/// (Alertmanager's `basic_auth`), `Authorization: Basic base64(user:token)`; the user is ignored.
///
/// # Errors
/// 401 as [`bearer_token`], or for a malformed basic credential.
pub fn bearer_or_basic(header: Option<&[u8]>) -> Result<Presented, ApiError> {
    use base64::Engine as _;
    let basic = header.and_then(|h| {
        let (scheme, rest) = h.split_at_checked(6)?;
        scheme.eq_ignore_ascii_case(b"basic ").then_some(rest)
    });
    let Some(encoded) = basic else {
        return bearer_token(header).map(Presented::bearer);
    };
    let bad = || ApiError::Unauthorized("the basic credential is malformed");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim_ascii())
        .map_err(|_| bad())?;
    let text = String::from_utf8(decoded).map_err(|_| bad())?;
    let (_, password) = text.split_once(':').ok_or_else(bad)?;
    bearer_token(Some(format!("Bearer {password}").as_bytes()))
        .map(|token| Presented {
            token: token.to_owned(),
            unknown: "the password of the basic credential is not a valid API token",
        })
        .map_err(|_| bad())
}

/// Whether a `Content-Type` value is JSON (`application/json` or `application/*+json`, any
/// parameters).
pub fn is_json_content_type(value: Option<&[u8]>) -> bool {
    let Some(v) = value.and_then(|v| std::str::from_utf8(v).ok()) else {
        return false;
    };
    let essence = v
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::parse::fields::error_fields as fields;

    #[test]
    fn list_queries() {
        let l = PageLimits {
            default: 50,
            max: 200,
        };
        assert_eq!(
            list_query(None, "wh-", l).unwrap(),
            Page {
                limit: 50,
                cursor: None
            }
        );
        assert_eq!(list_query(Some("limit=5"), "wh-", l).unwrap().limit, 5);
        assert_eq!(
            fields(list_query(Some("limit=0"), "wh-", l).unwrap_err()),
            ["limit"]
        );
        assert_eq!(
            fields(list_query(Some("limit=201"), "wh-", l).unwrap_err()),
            ["limit"]
        );
        assert_eq!(
            fields(list_query(Some("cursor=zzz"), "wh-", l).unwrap_err()),
            ["cursor"]
        );
        assert_eq!(
            fields(list_query(Some("foo=1&limit=1&limit=2"), "wh-", l).unwrap_err()),
            ["foo", "limit"]
        );
    }

    #[test]
    fn bearer_header() {
        assert_eq!(
            bearer_token(Some(b"Bearer abc.DEF-1")).unwrap(),
            "abc.DEF-1"
        );
        assert_eq!(bearer_token(Some(b"bearer  abc")).unwrap(), "abc");
        for bad in [
            &b"Basic abc"[..],
            b"Bearer",
            b"Bearer ",
            b"Bearer a b",
            b"\xff\xfe",
        ] {
            assert!(
                matches!(bearer_token(Some(bad)), Err(ApiError::Unauthorized(_))),
                "{bad:?}"
            );
        }
        assert!(bearer_token(None).is_err());
    }

    #[test]
    fn basic_auth_carries_the_token() {
        // base64("alertmanager:hkd_abc")
        assert_eq!(
            bearer_or_basic(Some(b"Basic YWxlcnRtYW5hZ2VyOmhrZF9hYmM=")).unwrap(),
            Presented {
                token: "hkd_abc".into(),
                unknown: "the password of the basic credential is not a valid API token",
            }
        );
        assert_eq!(
            bearer_or_basic(Some(b"Bearer hkd_abc")).unwrap(),
            Presented::bearer("hkd_abc")
        );
        assert!(bearer_or_basic(Some(b"Basic !!!")).is_err());
        assert!(bearer_or_basic(Some(b"Basic bm9jb2xvbg==")).is_err());
    }

    #[test]
    fn content_types() {
        assert!(is_json_content_type(Some(b"application/json")));
        assert!(is_json_content_type(Some(
            b"Application/JSON; charset=utf-8"
        )));
        assert!(is_json_content_type(Some(b"application/merge-patch+json")));
        assert!(!is_json_content_type(Some(b"text/plain")));
        assert!(!is_json_content_type(None));
    }
}
