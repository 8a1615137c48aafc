//! Pure request parsing and validation: request bytes in, a typed request or an [`ApiError`]
//! naming the field at fault out. No I/O and no panics; the server and the fuzz targets call these
//! same functions.
//!
//! JSON bodies are read as a `serde_json::Value` first and then checked field by field, so every
//! problem (unknown field, wrong type, missing, rule broken) is reported together, each with the
//! field's JSON name.

mod options;

use serde_json::{Map, Value};

pub use self::options::{
    header_name_problem, header_value_problem, not_after, ClientCertificateInput, EndpointOptions,
    MAX_HEADERS, MAX_PEM, MAX_RATE, OPTION_FIELDS, RESERVED_HEADERS,
};
use crate::error::{ApiError, FieldError};
use crate::model::{Scope, SigningAlgorithm};
use crate::routing::{Labels, MAX_GROUP_ALERTS, MAX_LABEL_VALUE};
use crate::secrets::SigningSecret;
use crate::url_policy::UrlPolicy;

/// Longest endpoint or token name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest field name echoed back in an error, in characters.
const MAX_ECHOED_FIELD: usize = 64;

/// Longest deny reason a plugin may give, in bytes.
pub const MAX_DENY_REASON: usize = 512;
/// Longest `settings` string handed to a plugin, in bytes.
pub const MAX_PLUGIN_SETTINGS: usize = 65_536;

/// A plugin's well-formed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginVerdict {
    Allow,
    Deny(String),
}

/// Validates what a plugin's `check` returned: `ok` allows; `err` denies with a reason that must
/// be 1-512 bytes of text without control characters.
///
/// # Errors
/// What is wrong with the answer (the plugin then counts as failed, not as denying).
pub fn plugin_answer(answer: Result<(), String>) -> Result<PluginVerdict, String> {
    match answer {
        Ok(()) => Ok(PluginVerdict::Allow),
        Err(reason) => {
            let trimmed = reason.trim();
            if trimmed.is_empty() {
                Err("the deny reason is empty".into())
            } else if reason.len() > MAX_DENY_REASON {
                Err(format!(
                    "the deny reason is {} bytes, over the limit of {MAX_DENY_REASON}",
                    reason.len()
                ))
            } else if trimmed.chars().any(char::is_control) {
                Err("the deny reason contains control characters".into())
            } else {
                Ok(PluginVerdict::Deny(trimmed.to_owned()))
            }
        }
    }
}

/// A plugin name: 1-64 characters of `[A-Za-z0-9_-]`.
pub fn is_plugin_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

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

/// A validated token creation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateToken {
    pub name: String,
    pub scopes: Vec<Scope>,
    /// When the token stops working (Unix ms), if it was given an `expiresAt`.
    pub expires_at_ms: Option<i64>,
}

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

/// The fields a create body may have: the seed contract's four (all required; an empty
/// `signingSecret` asks hookd to generate one), `signingAlgorithm`, and the options.
pub const CREATE_FIELDS: [&str; 10] = [
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
];

/// The fields a PATCH body may have (at least one).
pub const UPDATE_FIELDS: [&str; 9] = [
    "name",
    "url",
    "signingEnabled",
    "disabled",
    OPTION_FIELDS[0],
    OPTION_FIELDS[1],
    OPTION_FIELDS[2],
    OPTION_FIELDS[3],
    OPTION_FIELDS[4],
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
    let options = f.options(false);
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

/// Parses a token creation body: `name` and a non-empty `scopes` list.
///
/// # Errors
/// As [`create_endpoint`]; unknown scopes are named.
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

/// An accepted alert, from either ingest route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub event_type: String,
    /// The payload as JSON text, exactly as the client sent it.
    pub data: String,
    /// The label sets routing reads (`labelMatchers`): for a native alert the payload's
    /// `labels` (none: one empty set); for an Alertmanager payload its `commonLabels` and then
    /// each alert's `labels`. An endpoint takes the alert when any one set satisfies all its
    /// matchers.
    pub label_sets: Vec<Labels>,
}

/// A JSON object of strings as labels (anything else reads as no labels: the parsers have
/// refused it already).
fn labels_of(v: Option<&Value>) -> Labels {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// Longest event type, in bytes.
pub const MAX_EVENT_TYPE: usize = 100;

/// Parses a native alert: `{"eventType": "alert.firing", "payload": {...}}`. The event type is
/// 1-100 characters of `A-Z a-z 0-9 . _ : -`; the payload any JSON object, whose `labels`, if it
/// has them, must be an object of strings (routing reads them).
///
/// # Errors
/// 400 for malformed JSON, 422 naming each field at fault.
pub fn native_alert(body: &[u8]) -> Result<Alert, ApiError> {
    let mut f = Fields::object(body, &["eventType", "payload"])?;
    let event_type = f.string("eventType", true).and_then(|t| {
        let ok = (1..=MAX_EVENT_TYPE).contains(&t.len())
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
        if !ok {
            f.errors.push(FieldError::new(
                "eventType",
                "must be 1-100 characters of A-Z a-z 0-9 . _ : -",
            ));
        }
        ok.then_some(t)
    });
    let mut labels = Labels::new();
    if let Some(v) = f.take("payload", true) {
        if !v.is_object() {
            f.errors
                .push(FieldError::new("payload", "must be a JSON object"));
        }
        match v.get("labels").map(|l| (l, labels_problem(l))) {
            Some((_, Some(why))) => f.errors.push(FieldError::new("payload.labels", why)),
            l => labels = labels_of(l.map(|(l, _)| l)),
        }
    }
    f.finish()?;
    // The payload is delivered exactly as sent (no number is re-rounded, no key reordered).
    #[derive(serde::Deserialize)]
    struct Raw<'a> {
        #[serde(borrow)]
        payload: &'a serde_json::value::RawValue,
    }
    let raw: Raw<'_> = serde_json::from_slice(body)
        .map_err(|_| ApiError::field("payload", "must be given exactly once"))?;
    match event_type {
        Some(event_type) => Ok(Alert {
            event_type,
            data: raw.payload.get().to_owned(),
            label_sets: vec![labels],
        }),
        None => Err(ApiError::Internal),
    }
}

/// Parses an Alertmanager webhook payload (version "4", as Alertmanager sends it). The whole
/// payload becomes the message data; the event type is `alertmanager.firing` or
/// `alertmanager.resolved`. Fields other than `version`, `status` and `alerts` are passed
/// through unchecked, so newer Alertmanagers keep working.
///
/// # Errors
/// 400 for malformed JSON, 422 for a wrong version, status or alerts list.
pub fn alertmanager_alert(body: &[u8]) -> Result<Alert, ApiError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    let Value::Object(map) = &value else {
        return Err(ApiError::field("body", "must be a JSON object"));
    };
    let mut errors = Vec::new();
    if map.get("version").and_then(Value::as_str) != Some("4") {
        errors.push(FieldError::new(
            "version",
            "must be \"4\" (Alertmanager webhook format)",
        ));
    }
    let status = map.get("status").and_then(Value::as_str);
    if !matches!(status, Some("firing" | "resolved")) {
        errors.push(FieldError::new(
            "status",
            "must be \"firing\" or \"resolved\"",
        ));
    }
    match map.get("alerts") {
        Some(Value::Array(alerts)) if alerts.len() > MAX_GROUP_ALERTS => {
            errors.push(FieldError::new(
                "alerts",
                format!("has {} alerts; at most {MAX_GROUP_ALERTS} in one notification (routing reads each alert's labels): set max_alerts: {MAX_GROUP_ALERTS} in Alertmanager's webhook_config", alerts.len()),
            ));
        }
        Some(Value::Array(alerts)) => {
            for (i, alert) in alerts.iter().enumerate() {
                check_am_alert(alert, i, &mut errors);
            }
        }
        _ => errors.push(FieldError::new("alerts", "must be an array")),
    }
    if let Some(why) = map.get("commonLabels").and_then(labels_problem) {
        errors.push(FieldError::new("commonLabels", why));
    }
    for key in ["commonAnnotations", "groupLabels"] {
        if let Some(v) = map.get(key) {
            if !is_string_map(v) {
                errors.push(FieldError::new(key, "must be an object of strings"));
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let mut label_sets = vec![labels_of(map.get("commonLabels"))];
    if let Some(Value::Array(alerts)) = map.get("alerts") {
        label_sets.extend(alerts.iter().map(|a| labels_of(a.get("labels"))));
    }
    // The whole payload, exactly as Alertmanager sent it (valid UTF-8: it parsed as JSON).
    Ok(Alert {
        event_type: format!("alertmanager.{}", status.unwrap_or("firing")),
        data: String::from_utf8_lossy(body.trim_ascii()).into_owned(),
        label_sets,
    })
}

/// Most alerts one Alertmanager payload may carry whose errors are each reported.
const MAX_REPORTED: usize = 20;

/// One alert of an Alertmanager payload: an object, whose `labels` and `annotations` (when
/// present) are objects of strings, as Alertmanager sends them (routing reads the labels).
fn check_am_alert(alert: &Value, i: usize, errors: &mut Vec<FieldError>) {
    if errors.len() >= MAX_REPORTED {
        return;
    }
    let Value::Object(alert) = alert else {
        errors.push(FieldError::new(format!("alerts[{i}]"), "must be an object"));
        return;
    };
    if let Some(why) = alert.get("labels").and_then(labels_problem) {
        errors.push(FieldError::new(format!("alerts[{i}].labels"), why));
    }
    if let Some(v) = alert.get("annotations") {
        if !is_string_map(v) {
            errors.push(FieldError::new(
                format!("alerts[{i}].annotations"),
                "must be an object of strings",
            ));
        }
    }
}

/// What is wrong with labels that routing reads: not an object of strings, or a value longer
/// than [`MAX_LABEL_VALUE`] bytes.
fn labels_problem(v: &Value) -> Option<String> {
    let Some(map) = v.as_object().filter(|_| is_string_map(v)) else {
        return Some("must be an object of strings (routing reads them)".into());
    };
    map.iter().find_map(|(name, value)| {
        let len = value.as_str().map_or(0, str::len);
        (len > MAX_LABEL_VALUE).then(|| {
            let shown: String = name.chars().take(64).collect();
            format!("the value of label {shown:?} is {len} bytes; routing reads label values of at most {MAX_LABEL_VALUE} bytes")
        })
    })
}

fn is_string_map(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|m| m.values().all(Value::is_string))
}

/// The token from `Authorization: Bearer <token>` or, for senders that can only do basic auth
/// (Alertmanager's `basic_auth`), `Authorization: Basic base64(user:token)`; the user is ignored.
///
/// # Errors
/// 401 as [`bearer_token`], or for a malformed basic credential.
pub fn bearer_or_basic(header: Option<&[u8]>) -> Result<String, ApiError> {
    use base64::Engine as _;
    let basic = header.and_then(|h| {
        let (scheme, rest) = h.split_at_checked(6)?;
        scheme.eq_ignore_ascii_case(b"basic ").then_some(rest)
    });
    let Some(encoded) = basic else {
        return bearer_token(header).map(str::to_owned);
    };
    let bad = || ApiError::Unauthorized("the basic credential is malformed");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim_ascii())
        .map_err(|_| bad())?;
    let text = String::from_utf8(decoded).map_err(|_| bad())?;
    let (_, password) = text.split_once(':').ok_or_else(bad)?;
    bearer_token(Some(format!("Bearer {password}").as_bytes()))
        .map(str::to_owned)
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
fn echo(name: &str) -> String {
    echo_under("", name)
}

/// [`echo`] of a client-chosen key under `parent` (`headers.X-Api-Key`), the whole still
/// within the cap.
fn echo_under(parent: &str, name: &str) -> String {
    if name.is_empty() {
        return format!("{parent}(empty name)");
    }
    let room = MAX_ECHOED_FIELD.saturating_sub(parent.chars().count());
    format!("{parent}{}", name.chars().take(room).collect::<String>())
}

/// A JSON object being validated field by field; collects every error before failing.
struct Fields {
    map: Map<String, Value>,
    errors: Vec<FieldError>,
}

impl Fields {
    fn object(body: &[u8], allowed: &[&str]) -> Result<Self, ApiError> {
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
    fn take(&mut self, key: &str, required: bool) -> Option<Value> {
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

    fn string(&mut self, key: &str, required: bool) -> Option<String> {
        self.typed(key, required, "string", |v| v.as_str().map(str::to_owned))
    }

    fn bool(&mut self, key: &str, required: bool) -> Option<bool> {
        self.typed(key, required, "boolean", Value::as_bool)
    }

    /// A display name: trimmed, 1-200 characters, no control or invisible format characters.
    fn name(&mut self, key: &str, required: bool) -> Option<String> {
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

    fn url(&mut self, key: &str, policy: &UrlPolicy, required: bool) -> Option<String> {
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
    fn secret(
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
    fn timestamp(&mut self, key: &str, required: bool) -> Option<i64> {
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

    fn algorithm(&mut self, key: &str) -> Option<SigningAlgorithm> {
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

    fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SEED: &str = r#"{"name":"Slack Webhook","url":"https://hooks.slack.com/services/T00/B00/xxx","signingEnabled":true,"signingSecret":"my-secret-key"}"#;

    fn fields(e: ApiError) -> Vec<String> {
        match e {
            ApiError::Validation(errors) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

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

    const BASE: &str =
        r#""name":"n","url":"https://a.example","signingEnabled":true,"signingSecret":"""#;

    fn create_with(extra: &str) -> Result<CreateEndpoint, ApiError> {
        create_endpoint(
            format!("{{{BASE},{extra}}}").as_bytes(),
            &UrlPolicy::default(),
        )
    }

    #[test]
    fn routing_options_parse_to_canonical_forms() {
        let req = create_with(
            r#""filterTypes":["alertmanager.*","deploy","deploy"],"labelMatchers":["severity = critical","team=~\"db|storage\""],"headers":{"X-Api-Key":"k-123","Authorization":"Bearer abc"},"rateLimit":5,"signingAlgorithm":"ed25519""#,
        )
        .unwrap();
        let o = &req.options;
        assert_eq!(
            o.filter_types.as_deref().unwrap(),
            ["alertmanager.*", "deploy"]
        );
        assert_eq!(
            o.label_matchers.as_deref().unwrap(),
            [r#"severity="critical""#, r#"team=~"db|storage""#]
        );
        assert_eq!(o.headers.as_ref().unwrap().len(), 2);
        assert_eq!(o.rate_limit, Some(Some(5)));
        assert_eq!(req.signing_algorithm, SigningAlgorithm::Ed25519);
        // Round trip through JSON.
        let again =
            create_endpoint(req.to_json().to_string().as_bytes(), &UrlPolicy::default()).unwrap();
        assert_eq!(again, req);
        // A supplied whsk_ key makes the endpoint Ed25519 without saying so.
        let rng = ring::rand::SystemRandom::new();
        let key = SigningSecret::generate(&rng, SigningAlgorithm::Ed25519).unwrap();
        let with_key = format!(
            r#"{{"name":"n","url":"https://a.example","signingEnabled":true,"signingSecret":"{}"}}"#,
            key.expose()
        );
        let req = create_endpoint(with_key.as_bytes(), &UrlPolicy::default()).unwrap();
        assert_eq!(req.signing_algorithm, SigningAlgorithm::Ed25519);
    }

    #[test]
    fn bad_routing_options_name_the_field() {
        for (extra, field, word) in [
            (r#""filterTypes":"a""#, "filterTypes", "array"),
            (r#""filterTypes":["a b"]"#, "filterTypes[0]", "event type"),
            (r#""filterTypes":[1]"#, "filterTypes[0]", "string"),
            (
                r#""labelMatchers":["sev"]"#,
                "labelMatchers[0]",
                "position 3",
            ),
            (
                r#""labelMatchers":["a=~\"(\""]"#,
                "labelMatchers[0]",
                "regular expression",
            ),
            (r#""headers":[]"#, "headers", "object"),
            (r#""headers":{"Host":"x"}"#, "headers.Host", "hookd sets"),
            (
                r#""headers":{"webhook-id":"x"}"#,
                "headers.webhook-id",
                "hookd sets",
            ),
            (r#""headers":{"X-A":"a\r\nb"}"#, "headers.X-A", "printable"),
            (r#""headers":{"X-A":"1","x-a":"2"}"#, "headers.x-a", "twice"),
            (r#""headers":{"X-A":1}"#, "headers.X-A", "string"),
            (
                r#""headers":{"bad name":"v"}"#,
                "headers.bad name",
                "header name",
            ),
            (r#""rateLimit":0"#, "rateLimit", "1-10000"),
            (r#""rateLimit":1.5"#, "rateLimit", "whole"),
            (r#""rateLimit":10001"#, "rateLimit", "1-10000"),
            (r#""rateLimit":null"#, "rateLimit", "leave it out"),
            (r#""signingAlgorithm":"rsa""#, "signingAlgorithm", "ed25519"),
            (
                r#""clientCertificate":"pem""#,
                "clientCertificate",
                "object",
            ),
            (
                r#""clientCertificate":{"certificate":"x"}"#,
                "clientCertificate.privateKey",
                "required",
            ),
            (
                r#""clientCertificate":{"certificate":"not pem","privateKey":"not pem","x":1}"#,
                "clientCertificate.x",
                "known",
            ),
        ] {
            let e = create_with(extra).unwrap_err();
            let text = e.problem()["errors"].to_string();
            assert!(fields(e).contains(&field.to_owned()), "{extra}: {text}");
            assert!(text.contains(word), "{extra}: {text}");
        }
        // Found by fuzzing: a long key under `headers.` must not make an unbounded field name.
        let long = "x".repeat(200);
        let e = create_with(&format!(r#""headers":{{"{long} ":"v"}}"#)).unwrap_err();
        assert_eq!(fields(e)[0].chars().count(), 64);
        let many: Vec<String> = (0..21).map(|i| format!(r#""X-H{i}":"v""#)).collect();
        let e = create_with(&format!(r#""headers":{{{}}}"#, many.join(","))).unwrap_err();
        assert_eq!(fields(e), ["headers"]);
        let many: Vec<String> = (0..51).map(|i| format!(r#""t{i}""#)).collect();
        let e = create_with(&format!(r#""filterTypes":[{}]"#, many.join(","))).unwrap_err();
        assert_eq!(fields(e), ["filterTypes"]);
    }

    #[test]
    fn patch_null_removes_and_empty_lists_clear() {
        let p = UrlPolicy::default();
        let u = update_endpoint(br#"{"rateLimit":null,"clientCertificate":null}"#, &p).unwrap();
        assert_eq!(u.options.rate_limit, Some(None));
        assert_eq!(u.options.client_certificate, Some(None));
        let u =
            update_endpoint(br#"{"headers":{},"filterTypes":[],"labelMatchers":[]}"#, &p).unwrap();
        assert_eq!(u.options.headers, Some(vec![]));
        assert_eq!(u.options.filter_types, Some(vec![]));
        assert_eq!(u.options.label_matchers, Some(vec![]));
    }

    #[test]
    fn client_certificates_are_read_and_checked_for_form() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["client.test".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let body = serde_json::json!({
            "name": "n", "url": "https://a.example", "signingEnabled": true, "signingSecret": "",
            "clientCertificate": {"certificate": cert.pem(), "privateKey": key.serialize_pem()},
        });
        let req = create_endpoint(body.to_string().as_bytes(), &UrlPolicy::default()).unwrap();
        let c = req.options.client_certificate.unwrap().unwrap();
        assert_eq!(c.chain_der.len(), 1);
        assert_eq!(c.fingerprint.len(), 64);
        assert!(c.not_after_ms.is_some_and(|t| t > crate::time::now_ms()));
        assert!(!format!("{c:?}").contains("PRIVATE"));
        // A key where the certificate goes, and the other way around, are refused.
        let swapped = serde_json::json!({
            "name": "n", "url": "https://a.example", "signingEnabled": true, "signingSecret": "",
            "clientCertificate": {"certificate": key.serialize_pem(), "privateKey": cert.pem()},
        });
        let e = create_endpoint(swapped.to_string().as_bytes(), &UrlPolicy::default()).unwrap_err();
        assert_eq!(
            fields(e),
            [
                "clientCertificate.certificate",
                "clientCertificate.privateKey"
            ]
        );
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

    #[test]
    fn alert_label_sets() {
        let a = native_alert(br#"{"eventType":"x","payload":{"labels":{"team":"db"}}}"#).unwrap();
        assert_eq!(a.label_sets.len(), 1);
        assert_eq!(a.label_sets[0]["team"], "db");
        let a = native_alert(br#"{"eventType":"x","payload":{}}"#).unwrap();
        assert_eq!(a.label_sets, [Labels::new()]);
        let e = native_alert(br#"{"eventType":"x","payload":{"labels":{"n":1}}}"#).unwrap_err();
        assert_eq!(fields(e), ["payload.labels"]);
        let am = br#"{"version":"4","status":"firing","commonLabels":{"env":"prod"},"alerts":[{"labels":{"team":"db"}},{"labels":{"team":"web"}}]}"#;
        let a = alertmanager_alert(am).unwrap();
        assert_eq!(a.label_sets.len(), 3);
        assert_eq!(a.label_sets[0]["env"], "prod");
        assert_eq!(a.label_sets[2]["team"], "web");
    }

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

    #[test]
    fn alerts() {
        let a = native_alert(br#"{"eventType":"alert.firing","payload":{"x":1}}"#).unwrap();
        assert_eq!(
            (a.event_type.as_str(), a.data.as_str()),
            ("alert.firing", r#"{"x":1}"#)
        );
        assert_eq!(
            fields(native_alert(br#"{"eventType":"a b","payload":[]}"#).unwrap_err()),
            ["eventType", "payload"]
        );
        let am =
            br#"{"version":"4","status":"resolved","receiver":"r","alerts":[],"groupKey":"{}:{}"}"#;
        assert_eq!(
            alertmanager_alert(am).unwrap().event_type,
            "alertmanager.resolved"
        );
        assert_eq!(
            fields(alertmanager_alert(br#"{"version":"3","status":"x"}"#).unwrap_err()),
            ["version", "status", "alerts"]
        );
        // Found by schemathesis: alerts that were not objects were accepted.
        assert_eq!(
            fields(
                alertmanager_alert(
                    br#"{"version":"4","status":"firing","alerts":[[null,null],{"labels":{"a":1}},{"annotations":"x"},{"labels":{"ok":"yes"}}],"commonLabels":[]}"#
                )
                .unwrap_err()
            ),
            ["alerts[0]", "alerts[1].labels", "alerts[2].annotations", "commonLabels"]
        );
    }

    /// Found by the alert_body fuzz target: numbers were re-rounded on the way through
    /// (`2222...2.22` came out as a different float). Payloads now pass through verbatim.
    #[test]
    fn payloads_pass_through_verbatim() {
        let body = br#"{"eventType":"e","payload":{"f":222222222222222222222222222222222222222222222222222222222222222222222222222.22,"big":12345678901234567890123, "z":1,"a":2}}"#;
        let a = native_alert(body).unwrap();
        assert_eq!(
            a.data,
            r#"{"f":222222222222222222222222222222222222222222222222222222222222222222222222222.22,"big":12345678901234567890123, "z":1,"a":2}"#
        );
        assert_eq!(
            fields(native_alert(br#"{"eventType":"e","payload":{},"payload":{}}"#).unwrap_err()),
            ["payload"]
        );
        let am = b" {\"version\":\"4\",\"status\":\"firing\",\"alerts\":[],\"x\":1.000} \n";
        assert_eq!(
            alertmanager_alert(am).unwrap().data,
            r#"{"version":"4","status":"firing","alerts":[],"x":1.000}"#
        );
    }

    #[test]
    fn basic_auth_carries_the_token() {
        // base64("alertmanager:hkd_abc")
        assert_eq!(
            bearer_or_basic(Some(b"Basic YWxlcnRtYW5hZ2VyOmhrZF9hYmM=")).unwrap(),
            "hkd_abc"
        );
        assert_eq!(bearer_or_basic(Some(b"Bearer hkd_abc")).unwrap(), "hkd_abc");
        assert!(bearer_or_basic(Some(b"Basic !!!")).is_err());
        assert!(bearer_or_basic(Some(b"Basic bm9jb2xvbg==")).is_err());
    }

    #[test]
    fn plugin_answers() {
        assert_eq!(plugin_answer(Ok(())), Ok(PluginVerdict::Allow));
        assert_eq!(
            plugin_answer(Err(" not our host ".into())),
            Ok(PluginVerdict::Deny("not our host".into()))
        );
        assert!(plugin_answer(Err(String::new())).is_err());
        assert!(plugin_answer(Err("x".repeat(513))).is_err());
        assert!(plugin_answer(Err("a\u{0}b".into())).is_err());
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
