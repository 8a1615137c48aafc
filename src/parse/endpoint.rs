//! Endpoint bodies: the create, PATCH, rotate-secret and recover requests of an alert webhook
//! endpoint, read into typed requests (the options they share are in [`super::options`]).

use serde_json::{Map, Value};

use super::fields::Fields;
use super::options::{EndpointOptions, OPTION_FIELDS};
use crate::error::{ApiError, FieldError};
use crate::model::SigningAlgorithm;
use crate::secrets::SigningSecret;
use crate::url_policy::UrlPolicy;

/// A validated CreateAlertWebhookEndpoint request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateEndpoint {
    pub name: String,
    /// Normalized by the URL rules; this is what is stored and requested.
    pub url: String,
    pub signing_enabled: bool,
    /// `None` when the client sent an empty `signingSecret`: hookd generates one.
    pub signing_secret: Option<SigningSecret>,
    /// `signingAlgorithm`, or the supplied secret's (`whsk_`: Ed25519), or HMAC-SHA256.
    pub signing_algorithm: SigningAlgorithm,
    pub options: EndpointOptions,
}

impl CreateEndpoint {
    /// The request as JSON again (with the secret's plaintext), for round-trip checks.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("name".into(), self.name.clone().into());
        out.insert("url".into(), self.url.clone().into());
        out.insert("signingEnabled".into(), self.signing_enabled.into());
        let secret = self
            .signing_secret
            .as_ref()
            .map_or("", SigningSecret::expose);
        out.insert("signingSecret".into(), secret.into());
        out.insert(
            "signingAlgorithm".into(),
            self.signing_algorithm.as_str().into(),
        );
        self.options.to_json(&mut out);
        Value::Object(out)
    }
}

/// A validated PATCH: any of the fields, at least one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateEndpoint {
    pub name: Option<String>,
    pub url: Option<String>,
    pub signing_enabled: Option<bool>,
    /// `Some(false)` re-enables an endpoint that delivery disabled.
    pub disabled: Option<bool>,
    pub options: EndpointOptions,
}

/// A validated rotate-secret request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rotation {
    /// `None`: generate one.
    pub secret: Option<SigningSecret>,
    /// `None`: the supplied secret's, or the endpoint's current algorithm.
    pub algorithm: Option<SigningAlgorithm>,
}

/// The fields a create body may have: the seed contract's four (all required; an empty
/// `signingSecret` asks hookd to generate one), `signingAlgorithm`, and the options.
pub const CREATE_FIELDS: [&str; 12] = [
    "name",
    "url",
    "signingEnabled",
    "signingSecret",
    "signingAlgorithm",
    OPTION_FIELDS[0],
    OPTION_FIELDS[1],
    OPTION_FIELDS[2],
    OPTION_FIELDS[3],
    OPTION_FIELDS[4],
    OPTION_FIELDS[5],
    OPTION_FIELDS[6],
];

/// The fields a PATCH body may have (at least one).
pub const UPDATE_FIELDS: [&str; 11] = [
    "name",
    "url",
    "signingEnabled",
    "disabled",
    OPTION_FIELDS[0],
    OPTION_FIELDS[1],
    OPTION_FIELDS[2],
    OPTION_FIELDS[3],
    OPTION_FIELDS[4],
    OPTION_FIELDS[5],
    OPTION_FIELDS[6],
];

/// Parses a create body: `name`, `url`, `signingEnabled` and `signingSecret` are all required,
/// as in the seed contract; an empty `signingSecret` asks hookd to generate one. The routing and
/// shaping options and `signingAlgorithm` are optional.
///
/// # Errors
/// 400 for malformed JSON, 422 listing every field that breaks a rule.
pub fn create_endpoint(body: &[u8], policy: &UrlPolicy) -> Result<CreateEndpoint, ApiError> {
    let mut f = Fields::object(body, &CREATE_FIELDS)?;
    let name = f.name("name", true);
    let url = f.url("url", policy, true);
    let signing_enabled = f.bool("signingEnabled", true);
    let algorithm = f.algorithm("signingAlgorithm");
    let signing_secret = f.secret("signingSecret", true, algorithm);
    let mut options = f.options(false);
    if let Some(url) = &url {
        // Absent, the format follows the URL's host (a Slack webhook gets Slack messages).
        let format = options
            .format
            .get_or_insert_with(|| crate::format::detect(url))
            .clone();
        let judged = f.errors.iter().any(|e| e.field.starts_with("format"));
        if let (false, Some(e)) = (
            judged,
            super::check_format_options(&format, options.format_options.as_ref()),
        ) {
            f.errors.push(e);
        }
    }
    f.finish()?;
    match (name, url, signing_enabled, signing_secret) {
        (Some(name), Some(url), Some(signing_enabled), Some(signing_secret)) => {
            let signing_algorithm = algorithm
                .or(signing_secret.as_ref().map(SigningSecret::algorithm))
                .unwrap_or_default();
            Ok(CreateEndpoint {
                name,
                url,
                signing_enabled,
                signing_secret,
                signing_algorithm,
                options,
            })
        }
        _ => Err(ApiError::Internal),
    }
}

/// Parses a PATCH body: any of `name`, `url`, `signingEnabled`, `disabled` and the options, at
/// least one. `rateLimit` and `clientCertificate` may be `null` (remove); an empty
/// `filterTypes`, `labelMatchers` or `headers` removes those.
///
/// # Errors
/// As [`create_endpoint`]; an empty object is a 422 on `body`.
pub fn update_endpoint(body: &[u8], policy: &UrlPolicy) -> Result<UpdateEndpoint, ApiError> {
    let mut allowed = UPDATE_FIELDS.to_vec();
    allowed.extend(["signingAlgorithm", "signingSecret"]);
    let mut f = Fields::object(body, &allowed)?;
    for key in ["signingAlgorithm", "signingSecret"] {
        if f.map.contains_key(key) {
            f.errors.push(FieldError::new(
                key,
                "is changed by rotating the secret: POST /api/v1/alerting/webhook-endpoints/{id}/rotate-secret",
            ));
        }
    }
    let patch = UpdateEndpoint {
        name: f.name("name", false),
        url: f.url("url", policy, false),
        signing_enabled: f.bool("signingEnabled", false),
        disabled: f.bool("disabled", false),
        options: f.options(true),
    };
    if f.map.is_empty() && f.errors.is_empty() {
        f.errors.push(FieldError::new(
            "body",
            format!("must set at least one of {}", UPDATE_FIELDS.join(", ")),
        ));
    }
    f.finish()?;
    Ok(patch)
}

/// Parses a rotate-secret body: empty, `{}`, or `{"signingSecret": "...", "signingAlgorithm":
/// "..."}`; an empty or absent secret means "generate one".
///
/// # Errors
/// As [`create_endpoint`].
pub fn rotate_secret(body: &[u8]) -> Result<Rotation, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Rotation::default());
    }
    let mut f = Fields::object(body, &["signingSecret", "signingAlgorithm"])?;
    let algorithm = f.algorithm("signingAlgorithm");
    let secret = f.secret("signingSecret", false, algorithm);
    f.finish()?;
    Ok(Rotation {
        secret: secret.flatten(),
        algorithm,
    })
}

/// Parses a recover body: `{"since": "<RFC 3339>"}`, not in the future. Returns it as Unix ms.
///
/// # Errors
/// As [`create_endpoint`].
pub fn recover(body: &[u8], now_ms: i64) -> Result<i64, ApiError> {
    let mut f = Fields::object(body, &["since"])?;
    let since = f.timestamp("since", true).filter(|at| {
        if *at > now_ms {
            f.errors
                .push(FieldError::new("since", "must not be in the future"));
        }
        *at <= now_ms
    });
    f.finish()?;
    since.ok_or(ApiError::Internal)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::parse::fields::error_fields as fields;

    const SEED: &str = r#"{"name":"Slack Webhook","url":"https://hooks.slack.com/services/T00/B00/xxx","signingEnabled":true,"signingSecret":"my-secret-key"}"#;

    #[test]
    fn seed_example_parses_and_round_trips() {
        let p = UrlPolicy::default();
        let req = create_endpoint(SEED.as_bytes(), &p).unwrap();
        assert_eq!(req.name, "Slack Webhook");
        assert_eq!(req.url, "https://hooks.slack.com/services/T00/B00/xxx");
        assert!(req.signing_enabled);
        assert_eq!(
            req.signing_secret.as_ref().unwrap().expose(),
            "my-secret-key"
        );
        let again = create_endpoint(req.to_json().to_string().as_bytes(), &p).unwrap();
        assert_eq!(again, req);
    }

    #[test]
    fn create_reports_every_bad_field() {
        let p = UrlPolicy::default();
        let body = br#"{"name":"","url":"ftp://x","signingEnabled":"yes","extra":1}"#;
        let got = fields(create_endpoint(body, &p).unwrap_err());
        assert_eq!(
            got,
            ["extra", "name", "url", "signingEnabled", "signingSecret"]
        );
        assert!(matches!(
            create_endpoint(b"{not json", &p),
            Err(ApiError::MalformedJson(_))
        ));
        assert_eq!(fields(create_endpoint(b"[1]", &p).unwrap_err()), ["body"]);
        assert_eq!(
            fields(create_endpoint(br#"{"name":null,"url":"https://a.example","signingEnabled":true,"signingSecret":""}"#, &p).unwrap_err()),
            ["name"]
        );
    }

    #[test]
    fn empty_secret_means_generate() {
        let body =
            br#"{"name":"n","url":"https://a.example","signingEnabled":false,"signingSecret":""}"#;
        let req = create_endpoint(body, &UrlPolicy::default()).unwrap();
        assert!(req.signing_secret.is_none());
    }

    #[test]
    fn update_and_rotate() {
        let p = UrlPolicy::default();
        let patch = update_endpoint(br#"{"signingEnabled":false}"#, &p).unwrap();
        assert_eq!(patch.signing_enabled, Some(false));
        assert_eq!(fields(update_endpoint(b"{}", &p).unwrap_err()), ["body"]);
        assert_eq!(
            fields(update_endpoint(br#"{"url":"http://10.0.0.1/"}"#, &p).unwrap_err()),
            ["url"]
        );
        let none = Rotation::default();
        assert_eq!(rotate_secret(b"").unwrap(), none);
        assert_eq!(rotate_secret(b"{}").unwrap(), none);
        assert_eq!(rotate_secret(br#"{"signingSecret":""}"#).unwrap(), none);
        assert!(rotate_secret(br#"{"signingSecret":"another-secret"}"#)
            .unwrap()
            .secret
            .is_some());
        assert_eq!(
            fields(rotate_secret(br#"{"signingSecret":"x"}"#).unwrap_err()),
            ["signingSecret"]
        );
        let r = rotate_secret(br#"{"signingAlgorithm":"ed25519"}"#).unwrap();
        assert_eq!(r.algorithm, Some(SigningAlgorithm::Ed25519));
        assert_eq!(
            fields(
                rotate_secret(br#"{"signingAlgorithm":"ed25519","signingSecret":"hmac-secret-1"}"#)
                    .unwrap_err()
            ),
            ["signingSecret"]
        );
        assert_eq!(
            fields(rotate_secret(br#"{"signingAlgorithm":"rsa"}"#).unwrap_err()),
            ["signingAlgorithm"]
        );
        // The algorithm and secret change only by rotation, and say so.
        let e = update_endpoint(br#"{"signingAlgorithm":"ed25519"}"#, &p).unwrap_err();
        assert!(e.problem().to_string().contains("rotate-secret"));
    }

    #[test]
    fn recover_since() {
        let now = 1_768_464_000_000;
        assert_eq!(
            recover(br#"{"since":"2026-01-15T07:00:00Z"}"#, now).unwrap(),
            now - 3_600_000
        );
        for bad in [
            r#"{"since":"2026-01-15T09:00:00Z"}"#,
            r#"{"since":"yesterday"}"#,
            "{}",
        ] {
            assert_eq!(
                fields(recover(bad.as_bytes(), now).unwrap_err()),
                ["since"],
                "{bad}"
            );
        }
    }
}
