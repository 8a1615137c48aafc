//! The one error type that becomes an HTTP response: RFC 9457 `application/problem+json`.
//!
//! Client errors say what was wrong and, for validation, which field; internal errors are logged
//! once where they happen and reach the client as a generic 500 body.

use serde::Serialize;
use serde_json::{json, Value};

/// One field that broke a rule. `field` is the JSON name a client sent (or `body`, `cursor`,
/// `limit`, `Authorization`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Every error a request can end in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    #[error("missing scope {0}")]
    Forbidden(&'static str),
    /// `tls.client_ca_file` is set and the connection presented no client certificate.
    #[error("no client certificate")]
    NoClientCertificate,
    #[error("not found: {0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed { allow: String },
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("payload too large")]
    /// Over `limit` bytes, the value of the configuration key `key`.
    PayloadTooLarge { limit: usize, key: &'static str },
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("request timeout")]
    RequestTimeout { secs: u64 },
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// The data volume is full (or under its headroom).
    #[error("insufficient storage: {0}")]
    InsufficientStorage(String),
    #[error("internal error")]
    Internal,
}

impl ApiError {
    /// A 422 for a single field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// Seconds a client should wait before trying again, for the errors that pass.
    pub fn retry_after(&self) -> Option<u32> {
        match self {
            Self::Unavailable(_) => Some(5),
            Self::InsufficientStorage(_) => Some(60),
            _ => None,
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::MalformedJson(_) | Self::BadRequest(_) => 400,
            Self::Unauthorized(_) => 401,
            Self::Forbidden(_) | Self::NoClientCertificate => 403,
            Self::NotFound(_) => 404,
            Self::MethodNotAllowed { .. } => 405,
            Self::RequestTimeout { .. } => 408,
            Self::Conflict(_) => 409,
            Self::PayloadTooLarge { .. } => 413,
            Self::UnsupportedMediaType => 415,
            Self::Validation(_) => 422,
            Self::Unavailable(_) => 503,
            Self::InsufficientStorage(_) => 507,
            Self::Internal => 500,
        }
    }

    fn kind(&self) -> (&'static str, &'static str) {
        match self {
            Self::MalformedJson(_) => ("malformed-json", "Malformed JSON"),
            Self::BadRequest(_) => ("bad-request", "Bad request"),
            Self::Validation(_) => ("validation", "Validation failed"),
            Self::Unauthorized(_) => ("unauthorized", "Unauthorized"),
            Self::Forbidden(_) => ("forbidden", "Forbidden"),
            Self::NoClientCertificate => {
                ("client-certificate-required", "Client certificate required")
            }
            Self::NotFound(_) => ("not-found", "Not found"),
            Self::MethodNotAllowed { .. } => ("method-not-allowed", "Method not allowed"),
            Self::RequestTimeout { .. } => ("request-timeout", "Request timeout"),
            Self::Conflict(_) => ("conflict", "Conflict"),
            Self::PayloadTooLarge { .. } => ("payload-too-large", "Payload too large"),
            Self::UnsupportedMediaType => ("unsupported-media-type", "Unsupported media type"),
            Self::Unavailable(_) => ("unavailable", "Service unavailable"),
            Self::InsufficientStorage(_) => ("insufficient-storage", "Insufficient storage"),
            Self::Internal => ("internal", "Internal server error"),
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::MalformedJson(m) => format!("the request body is not valid JSON: {m}"),
            Self::Validation(errors) => match errors.as_slice() {
                [one] => format!("{} {}", one.field, one.message),
                _ => format!("{} fields are invalid", errors.len()),
            },
            Self::Unauthorized(m) => (*m).to_owned(),
            Self::BadRequest(m)
            | Self::NotFound(m)
            | Self::Conflict(m)
            | Self::Unavailable(m)
            | Self::InsufficientStorage(m) => m.clone(),
            Self::Forbidden(scope) => format!("this token lacks the '{scope}' scope"),
            Self::NoClientCertificate => "this listener requires a client certificate signed by a CA of tls.client_ca_file; only /healthz and /readyz answer without one".into(),
            Self::MethodNotAllowed { allow } => format!("allowed methods: {allow}"),
            Self::PayloadTooLarge { limit, key } => {
                format!("the request body exceeds the limit of {limit} bytes ({key})")
            }
            Self::UnsupportedMediaType => "the request body must be application/json".into(),
            Self::RequestTimeout { secs } => {
                format!("the request body did not arrive in full within {secs} s")
            }
            Self::Internal => {
                "the server could not complete the request; it has been logged".into()
            }
        }
    }

    /// The problem+json body.
    pub fn problem(&self) -> Value {
        let (kind, title) = self.kind();
        let mut body = json!({
            "type": format!("urn:hookd:problem:{kind}"),
            "title": title,
            "status": self.status(),
            "detail": self.detail(),
        });
        if let Self::Validation(errors) = self {
            body["errors"] = json!(errors);
        }
        body
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn validation_problem_names_the_field() {
        let p = ApiError::field("url", "must use http or https").problem();
        assert_eq!(p["status"], 422);
        assert_eq!(p["type"], "urn:hookd:problem:validation");
        assert_eq!(p["detail"], "url must use http or https");
        assert_eq!(p["errors"][0]["field"], "url");
    }

    #[test]
    fn internal_hides_details() {
        let p = ApiError::Internal.problem();
        assert_eq!(p["status"], 500);
        assert!(p.get("errors").is_none());
    }
}
