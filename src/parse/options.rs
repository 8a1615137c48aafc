//! An endpoint's routing and shaping options, as a create or a PATCH gives them: `filterTypes`,
//! `labelMatchers`, `headers`, `rateLimit` and `clientCertificate`. Pure, like the rest of
//! [`crate::parse`]: the API seals what must be sealed before the store sees it.

use std::fmt;

use serde_json::{Map, Value};

use super::fields::{echo_under, Fields};
use super::x509::{der_validity, not_after, pem_error};
use crate::error::{ApiError, FieldError};
use crate::model::Format;
use crate::routing::{is_filter_type, Matcher, MAX_RULES};

/// The JSON names of the options, accepted by create and PATCH alike.
pub const OPTION_FIELDS: [&str; 7] = [
    "filterTypes",
    "labelMatchers",
    "headers",
    "rateLimit",
    "clientCertificate",
    "format",
    "formatOptions",
];

/// PagerDuty's event severities.
pub const PAGERDUTY_SEVERITIES: [&str; 4] = ["critical", "error", "warning", "info"];
/// Longest `formatOptions.routingKey`.
pub const MAX_ROUTING_KEY: usize = 128;

/// Most custom headers one endpoint may have.
pub const MAX_HEADERS: usize = 20;
/// Longest custom header name and value, in bytes.
pub const MAX_HEADER_NAME: usize = 100;
pub const MAX_HEADER_VALUE: usize = 4096;
/// Highest `rateLimit`, deliveries per second.
pub const MAX_RATE: u32 = 10_000;
/// Longest PEM text of a client certificate chain, and of its key, in bytes (the whole request
/// body stays within `api.max_body_bytes` as well).
pub const MAX_PEM: usize = 32_768;
/// Most certificates in a client certificate chain.
pub const MAX_CHAIN: usize = 10;

/// Header names hookd sets itself, or that describe the connection rather than the request;
/// an endpoint cannot set them. (`webhook-*` is refused as a prefix.)
pub const RESERVED_HEADERS: [&str; 14] = [
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "user-agent",
    "http2-settings",
];

/// The options a request set; `None` leaves one as it is (on create: its default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointOptions {
    pub filter_types: Option<Vec<String>>,
    /// Each in canonical form (as [`Matcher`] displays it).
    pub label_matchers: Option<Vec<String>>,
    /// (name as written, value); `Some(vec![])` removes every header.
    pub headers: Option<Vec<(String, String)>>,
    /// `Some(None)`: remove the limit (a PATCH's `null`).
    pub rate_limit: Option<Option<u32>>,
    /// `Some(None)`: remove the certificate (a PATCH's `null`).
    pub client_certificate: Option<Option<ClientCertificateInput>>,
    /// On a create, always set: as given, or chosen from the URL's host.
    pub format: Option<Format>,
    pub format_options: Option<FormatOptionsInput>,
}

/// A format's options as supplied (checked for form; against the format by
/// [`check_format_options`]).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct FormatOptionsInput {
    pub routing_key: Option<String>,
    pub severity: Option<String>,
}

impl fmt::Debug for FormatOptionsInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FormatOptionsInput(routing_key: {}, severity: {:?})",
            if self.routing_key.is_some() {
                "***"
            } else {
                "none"
            },
            self.severity
        )
    }
}

/// Parses a `formatOptions` object on its own (`hookd format render --options`), by the
/// rules of the API's.
///
/// # Errors
/// 400 for malformed JSON, 422 naming the option at fault.
pub fn format_options(json: &str) -> Result<FormatOptionsInput, ApiError> {
    let value: Value =
        serde_json::from_str(json).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    let body = serde_json::json!({ "formatOptions": value }).to_string();
    let mut f = Fields::object(body.as_bytes(), &["formatOptions"])?;
    let options = f.format_options();
    f.finish()?;
    Ok(options.unwrap_or_default())
}

/// What is wrong with `options` for `format`: PagerDuty needs a `routingKey`; the other formats
/// take no options. `options` are the ones the endpoint will have.
pub fn check_format_options(
    format: &Format,
    options: Option<&FormatOptionsInput>,
) -> Option<FieldError> {
    let given = options.is_some_and(|o| o.routing_key.is_some() || o.severity.is_some());
    match format {
        Format::Pagerduty if options.and_then(|o| o.routing_key.as_ref()).is_none() => Some(
            FieldError::new(
                "formatOptions.routingKey",
                "is required for the pagerduty format (the integration key of a PagerDuty service's Events API v2 integration)",
            ),
        ),
        Format::Pagerduty => None,
        other if given => Some(FieldError::new(
            "formatOptions",
            format!("the {} format takes no options", other.as_str()),
        )),
        _ => None,
    }
}

impl EndpointOptions {
    /// The options as JSON fields again, for round-trip checks.
    pub fn to_json(&self, out: &mut Map<String, Value>) {
        if let Some(f) = &self.filter_types {
            out.insert("filterTypes".into(), f.clone().into());
        }
        if let Some(m) = &self.label_matchers {
            out.insert("labelMatchers".into(), m.clone().into());
        }
        if let Some(h) = &self.headers {
            let map: Map<String, Value> = h
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect();
            out.insert("headers".into(), map.into());
        }
        if let Some(r) = &self.rate_limit {
            out.insert("rateLimit".into(), (*r).into());
        }
        if let Some(c) = &self.client_certificate {
            let v = c.as_ref().map_or(
                Value::Null,
                |c| serde_json::json!({"certificate": c.chain_pem, "privateKey": c.key_pem}),
            );
            out.insert("clientCertificate".into(), v);
        }
        if let Some(f) = &self.format {
            out.insert("format".into(), f.as_str().into());
        }
        if let Some(o) = &self.format_options {
            let mut m = Map::new();
            if let Some(k) = &o.routing_key {
                m.insert("routingKey".into(), k.clone().into());
            }
            if let Some(s) = &o.severity {
                m.insert("severity".into(), s.clone().into());
            }
            out.insert("formatOptions".into(), m.into());
        }
    }
}

/// A client certificate as supplied: PEM chain and key, checked for form (the API checks that
/// the key belongs to the certificate, with rustls, before accepting it).
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCertificateInput {
    pub chain_pem: String,
    pub key_pem: String,
    /// The chain's certificates (DER), leaf first.
    pub chain_der: Vec<Vec<u8>>,
    /// SHA-256 of the leaf (DER), lowercase hex.
    pub fingerprint: String,
    /// The leaf's `notAfter`, Unix ms.
    pub not_after_ms: Option<i64>,
}

impl fmt::Debug for ClientCertificateInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientCertificateInput({})", self.fingerprint)
    }
}

impl Fields {
    /// Reads the options; `patch` lets `rateLimit` and `clientCertificate` be `null` (remove).
    pub(super) fn options(&mut self, patch: bool) -> EndpointOptions {
        let nullable = |f: &Self, key: &str| patch && f.map.get(key) == Some(&Value::Null);
        let rate_limit = if nullable(self, "rateLimit") {
            Some(None)
        } else {
            self.rate_limit().map(Some)
        };
        let client_certificate = if nullable(self, "clientCertificate") {
            Some(None)
        } else {
            self.client_certificate().map(Some)
        };
        EndpointOptions {
            filter_types: self.filter_types(),
            label_matchers: self.label_matchers(),
            headers: self.headers(),
            rate_limit,
            client_certificate,
            format: self.format(),
            format_options: self.format_options(),
        }
    }

    fn format_options(&mut self) -> Option<FormatOptionsInput> {
        let v = self.take("formatOptions", false)?;
        let Value::Object(map) = v else {
            self.errors.push(FieldError::new(
                "formatOptions",
                "must be an object (routingKey, severity)",
            ));
            return None;
        };
        let mut out = FormatOptionsInput::default();
        let mut ok = true;
        for (key, value) in &map {
            let field = echo_under("formatOptions.", key);
            match (key.as_str(), value) {
                ("routingKey", Value::String(k))
                    if (1..=MAX_ROUTING_KEY).contains(&k.len())
                        && k.bytes().all(|b| b.is_ascii_graphic()) =>
                {
                    out.routing_key = Some(k.clone());
                }
                ("routingKey", _) => {
                    ok = false;
                    self.errors.push(FieldError::new(
                        field,
                        format!(
                            "must be 1-{MAX_ROUTING_KEY} printable ASCII characters without spaces"
                        ),
                    ));
                }
                ("severity", Value::String(s)) if PAGERDUTY_SEVERITIES.contains(&s.as_str()) => {
                    out.severity = Some(s.clone());
                }
                ("severity", _) => {
                    ok = false;
                    self.errors.push(FieldError::new(
                        field,
                        format!("must be one of {}", PAGERDUTY_SEVERITIES.join(", ")),
                    ));
                }
                _ => {
                    ok = false;
                    self.errors.push(FieldError::new(
                        field,
                        "is not a format option (routingKey, severity)",
                    ));
                }
            }
        }
        ok.then_some(out)
    }

    fn format(&mut self) -> Option<Format> {
        let s = self.string("format", false)?;
        let found = Format::parse(&s);
        if found.is_none() {
            let names: Vec<&str> = Format::ALL.iter().map(|f| f.as_str()).collect();
            self.errors.push(FieldError::new(
                "format",
                format!("must be one of {}", names.join(", ")),
            ));
        }
        found
    }

    /// An array of strings of at most [`MAX_RULES`] items, each checked by `check` (which
    /// returns the canonical form or why not); duplicates are dropped.
    fn rule_list(
        &mut self,
        key: &str,
        check: impl Fn(&str) -> Result<String, String>,
    ) -> Option<Vec<String>> {
        let v = self.take(key, false)?;
        let Value::Array(items) = v else {
            self.errors
                .push(FieldError::new(key, "must be an array of strings"));
            return None;
        };
        if items.len() > MAX_RULES {
            self.errors.push(FieldError::new(
                key,
                format!("must have at most {MAX_RULES} items"),
            ));
            return None;
        }
        let mut out: Vec<String> = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let field = format!("{key}[{i}]");
            match item.as_str().map(&check) {
                None => {
                    self.errors.push(FieldError::new(field, "must be a string"));
                    ok = false;
                }
                Some(Err(why)) => {
                    self.errors.push(FieldError::new(field, why));
                    ok = false;
                }
                Some(Ok(canonical)) if !out.contains(&canonical) => out.push(canonical),
                Some(Ok(_)) => {}
            }
        }
        ok.then_some(out)
    }

    fn filter_types(&mut self) -> Option<Vec<String>> {
        self.rule_list("filterTypes", |s| {
            if is_filter_type(s) {
                Ok(s.to_owned())
            } else {
                Err("must be an event type (1-100 characters of A-Z a-z 0-9 . _ : -), optionally ending in .* to take every type under it".into())
            }
        })
    }

    fn label_matchers(&mut self) -> Option<Vec<String>> {
        self.rule_list("labelMatchers", |s| match Matcher::parse(s) {
            Ok(m) => Ok(m.to_string()),
            Err(e) => Err(format!(
                "is not an Alertmanager matcher (like severity=\"critical\" or team=~\"db|storage\"): {e}"
            )),
        })
    }

    fn headers(&mut self) -> Option<Vec<(String, String)>> {
        let v = self.take("headers", false)?;
        let Value::Object(map) = v else {
            self.errors.push(FieldError::new(
                "headers",
                "must be an object of header names to string values",
            ));
            return None;
        };
        if map.len() > MAX_HEADERS {
            self.errors.push(FieldError::new(
                "headers",
                format!("must have at most {MAX_HEADERS} headers"),
            ));
            return None;
        }
        let mut out: Vec<(String, String)> = Vec::with_capacity(map.len());
        let mut ok = true;
        for (name, value) in &map {
            let field = echo_under("headers.", name);
            let problem = header_name_problem(name)
                .or_else(|| {
                    out.iter()
                        .any(|(n, _)| n.eq_ignore_ascii_case(name))
                        .then(|| "is given twice (header names ignore case)".to_owned())
                })
                .or_else(|| match value.as_str() {
                    Some(v) => header_value_problem(v),
                    None => Some("must be a string".into()),
                });
            match problem {
                Some(why) => {
                    self.errors.push(FieldError::new(field, why));
                    ok = false;
                }
                None => out.push((name.clone(), value.as_str().unwrap_or_default().to_owned())),
            }
        }
        ok.then_some(out)
    }

    fn rate_limit(&mut self) -> Option<u32> {
        let v = self.take("rateLimit", false)?;
        match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) if (1..=MAX_RATE).contains(&n) => Some(n),
            _ => {
                self.errors.push(FieldError::new(
                    "rateLimit",
                    format!("must be a whole number of deliveries per second, 1-{MAX_RATE}"),
                ));
                None
            }
        }
    }

    fn client_certificate(&mut self) -> Option<ClientCertificateInput> {
        let v = self.take("clientCertificate", false)?;
        let Value::Object(map) = v else {
            self.errors.push(FieldError::new(
                "clientCertificate",
                "must be an object with certificate and privateKey (PEM)",
            ));
            return None;
        };
        let mut ok = true;
        for key in map.keys() {
            if key != "certificate" && key != "privateKey" {
                self.errors.push(FieldError::new(
                    echo_under("clientCertificate.", key),
                    "is not a known field",
                ));
                ok = false;
            }
        }
        let mut text = |key: &str| -> Option<String> {
            let field = format!("clientCertificate.{key}");
            match map.get(key).and_then(Value::as_str) {
                Some(s) if !s.trim().is_empty() && s.len() <= MAX_PEM => Some(s.trim().to_owned()),
                Some(s) if s.len() > MAX_PEM => {
                    self.errors.push(FieldError::new(
                        field,
                        format!("must be at most {MAX_PEM} bytes"),
                    ));
                    None
                }
                _ => {
                    self.errors
                        .push(FieldError::new(field, "is required: a PEM string"));
                    None
                }
            }
        };
        let chain_pem = text("certificate");
        let key_pem = text("privateKey");
        let (Some(chain_pem), Some(key_pem)) = (chain_pem, key_pem) else {
            return None;
        };
        let chain = match pem_chain(&chain_pem) {
            Ok(chain) => Some(chain),
            Err(why) => {
                self.errors
                    .push(FieldError::new("clientCertificate.certificate", why));
                None
            }
        };
        if let Err(why) = pem_key(&key_pem) {
            self.errors
                .push(FieldError::new("clientCertificate.privateKey", why));
            ok = false;
        }
        let chain = chain.filter(|_| ok)?;
        let leaf = chain.first()?;
        Some(ClientCertificateInput {
            fingerprint: hex(ring::digest::digest(&ring::digest::SHA256, leaf).as_ref()),
            not_after_ms: not_after(leaf),
            chain_der: chain,
            chain_pem,
            key_pem,
        })
    }
}

/// Why `name` cannot be a custom header's name, if it cannot.
pub fn header_name_problem(name: &str) -> Option<String> {
    const TCHAR: &[u8] = b"!#$%&'*+-.^_`|~";
    if name.is_empty() || name.len() > MAX_HEADER_NAME {
        return Some(format!("must be 1-{MAX_HEADER_NAME} characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || TCHAR.contains(&b))
    {
        return Some(
            "is not a valid HTTP header name (letters, digits and ! # $ % & ' * + - . ^ _ ` | ~)"
                .into(),
        );
    }
    let lower = name.to_ascii_lowercase();
    // `content-*` describe the body hookd sends (an endpoint's Content-Encoding would tell the
    // receiver to decompress a body that is not compressed).
    if RESERVED_HEADERS.contains(&lower.as_str())
        || lower.starts_with("webhook-")
        || lower.starts_with("content-")
    {
        return Some(
            "is a header hookd sets itself (host, content-*, webhook-*, user-agent) or a connection header; it cannot be set per endpoint"
                .into(),
        );
    }
    None
}

/// Why `value` cannot be a custom header's value, if it cannot.
pub fn header_value_problem(value: &str) -> Option<String> {
    if value.len() > MAX_HEADER_VALUE {
        return Some(format!("must be at most {MAX_HEADER_VALUE} bytes"));
    }
    if value.trim_matches([' ', '\t']) != value {
        return Some("must not start or end with white space".into());
    }
    if !value
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
    {
        return Some("must be printable ASCII (no control characters, no line breaks)".into());
    }
    None
}

/// The certificates of a PEM chain (DER), leaf first.
fn pem_chain(pem: &str) -> Result<Vec<Vec<u8>>, String> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::CertificateDer;
    let mut chain = Vec::new();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|e| format!("is not valid PEM: {}", pem_error(&e)))?;
        if chain.len() == MAX_CHAIN {
            return Err(format!("must hold at most {MAX_CHAIN} certificates"));
        }
        chain.push(cert.as_ref().to_vec());
    }
    if chain.is_empty() {
        return Err("must hold at least one PEM certificate (-----BEGIN CERTIFICATE-----)".into());
    }
    if let Some(i) = chain.iter().position(|c| der_validity(c).is_none()) {
        return Err(format!(
            "certificate {} of the chain is not an X.509 certificate",
            i + 1
        ));
    }
    Ok(chain)
}

/// Checks that `pem` holds one private key (PKCS#8, PKCS#1 RSA or SEC1 EC).
fn pem_key(pem: &str) -> Result<(), String> {
    use rustls_pki_types::pem::{PemObject as _, SectionKind};
    let mut keys = 0;
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem.as_bytes()) {
        let (kind, _) = section.map_err(|e| format!("is not valid PEM: {}", pem_error(&e)))?;
        match kind {
            SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey => {
                keys += 1;
            }
            _ => return Err("must hold only the private key (PEM), nothing else".into()),
        }
    }
    match keys {
        1 => Ok(()),
        0 => Err("must hold a PEM private key (-----BEGIN PRIVATE KEY-----)".into()),
        _ => Err("must hold exactly one private key".into()),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "options_tests.rs"]
mod tests;
