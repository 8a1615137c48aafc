//! The domain types the API, the store and delivery share, and their JSON views.
//!
//! Stored forms derive serde with snake_case names (the store prefixes a schema version); the API
//! views are separate camelCase structs so the wire contract never drifts with storage.

use serde::{Deserialize, Serialize};

use crate::time::rfc3339;

mod format;

pub use format::{is_plugin_name, Format, PLUGIN_PREFIX};

/// What a token may do. `admin` implies every other scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(test, derive(utoipa::ToSchema))]
#[non_exhaustive]
pub enum Scope {
    #[serde(rename = "endpoints:read")]
    EndpointsRead,
    #[serde(rename = "endpoints:write")]
    EndpointsWrite,
    #[serde(rename = "alerts:write")]
    AlertsWrite,
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Scope::EndpointsRead,
        Scope::EndpointsWrite,
        Scope::AlertsWrite,
        Scope::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::EndpointsRead => "endpoints:read",
            Self::EndpointsWrite => "endpoints:write",
            Self::AlertsWrite => "alerts:write",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// How an endpoint's deliveries are signed (Standard Webhooks v1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(utoipa::ToSchema))]
pub enum SigningAlgorithm {
    /// `v1,` + HMAC-SHA256 with a shared secret.
    #[default]
    #[serde(rename = "hmac-sha256")]
    HmacSha256,
    /// `v1a,` + Ed25519: receivers verify with the public key (`whpk_`), and cannot sign.
    #[serde(rename = "ed25519")]
    Ed25519,
}

impl SigningAlgorithm {
    pub const ALL: [Self; 2] = [Self::HmacSha256, Self::Ed25519];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::HmacSha256 => "hmac-sha256",
            Self::Ed25519 => "ed25519",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// Serde helper: bytes as standard base64 text in stored JSON.
mod b64 {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <&str>::deserialize(d)?;
        STANDARD.decode(s).map_err(serde::de::Error::custom)
    }
}

/// A signing secret as stored: sealed under the master key with the endpoint id as associated
/// data, plus its mask (`****` + last four characters) so reads need no decryption.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    #[serde(with = "b64")]
    pub sealed: Vec<u8>,
    pub mask: String,
    /// For a previous secret: when it stops being used to sign (Unix ms). `None` for the current.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<i64>,
    /// What it signs with (stores before Ed25519 hold only HMAC secrets).
    #[serde(default, skip_serializing_if = "is_default")]
    pub algorithm: SigningAlgorithm,
    /// For an Ed25519 key: its public key, `whpk_` + base64, shown to receivers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// What a format needs besides the event (only PagerDuty needs anything yet).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormatOptions {
    /// PagerDuty's integration key (Events API v2), sealed like a header value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key: Option<SealedValue>,
    /// The severity of events whose alerts carry none PagerDuty knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
}

impl FormatOptions {
    pub fn is_empty(&self) -> bool {
        self.routing_key.is_none() && self.severity.is_none()
    }
}

/// A secret value of an endpoint's options, sealed, with its mask for reads.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedValue {
    #[serde(with = "b64")]
    pub sealed: Vec<u8>,
    pub mask: String,
}

impl std::fmt::Debug for SealedValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedValue({})", self.mask)
    }
}

/// An endpoint's format options as the API shows them: secrets masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct FormatOptionsView<'a> {
    /// PagerDuty's integration key, masked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_key: Option<&'a str>,
    /// The severity of events whose alerts carry none PagerDuty knows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<&'a str>,
}

/// A custom request header of an endpoint: the value sealed like a secret (it often carries an
/// API key), bound to the endpoint id and the header's name.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedHeader {
    /// As the client wrote it (receivers see this spelling).
    pub name: String,
    #[serde(with = "b64")]
    pub sealed: Vec<u8>,
    pub mask: String,
}

impl std::fmt::Debug for SealedHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedHeader({}: {})", self.name, self.mask)
    }
}

/// The client certificate an endpoint presents to receivers that ask for one (mTLS).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCertificate {
    /// The certificate chain as PEM, leaf first.
    pub chain_pem: String,
    /// The private key's PEM, sealed.
    #[serde(with = "b64")]
    pub sealed_key: Vec<u8>,
    /// SHA-256 of the leaf certificate (DER), lowercase hex.
    pub fingerprint: String,
    /// The leaf's `notAfter` (Unix ms), if it could be read.
    pub not_after_ms: Option<i64>,
    pub chain_length: usize,
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientCertificate({})", self.fingerprint)
    }
}

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedSecret({})", self.mask)
    }
}

/// A webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: String,
    pub name: String,
    pub url: String,
    pub signing_enabled: bool,
    pub secret: SealedSecret,
    /// Secrets replaced by a rotation, still signing until their `expires_at_ms`.
    #[serde(default)]
    pub previous_secrets: Vec<SealedSecret>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// Set by delivery (410 Gone, or failing for `delivery.disable_after_secs`) or by PATCH;
    /// a disabled endpoint gets no new messages.
    #[serde(default)]
    pub disabled: bool,
    /// Start of the current run of failed deliveries; cleared by a success.
    #[serde(default)]
    pub failing_since_ms: Option<i64>,
    /// Event types this endpoint takes (exact, or a prefix ending in `.*`); empty: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filter_types: Vec<String>,
    /// Alertmanager matchers, in canonical form, that an alert's labels must satisfy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub label_matchers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<SealedHeader>,
    /// Deliveries per second, at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<ClientCertificate>,
    /// What its requests look like (absent in records from before formats: Standard Webhooks).
    #[serde(default, skip_serializing_if = "is_default")]
    pub format: Format,
    #[serde(default, skip_serializing_if = "FormatOptions::is_empty")]
    pub format_options: FormatOptions,
}

/// The API view of an endpoint: the seed's seven fields, then `disabled` and `circuit`.
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(utoipa::ToSchema), schema(as = Endpoint))]
#[serde(rename_all = "camelCase")]
pub struct EndpointView<'a> {
    /// `wh-` and 26 characters, time-ordered.
    pub id: &'a str,
    pub name: &'a str,
    /// The normalized URL deliveries go to.
    pub url: &'a str,
    pub signing_enabled: bool,
    /// `****` and the secret's last four characters.
    pub signing_secret_masked: &'a str,
    /// RFC 3339, UTC, whole seconds.
    pub created_at: String,
    pub updated_at: String,
    /// Set by delivery (410, or failing for `delivery.disable_after_secs`) or by a PATCH.
    pub disabled: bool,
    pub circuit: CircuitView,
    /// Event types delivered (exact, or ending in `.*`); empty: every type.
    pub filter_types: &'a [String],
    /// Alertmanager matchers (canonical form) an alert's labels must satisfy; empty: all.
    pub label_matchers: &'a [String],
    /// Custom request headers, values masked.
    pub headers: std::collections::BTreeMap<&'a str, &'a str>,
    /// Deliveries per second, at most; null: no limit.
    pub rate_limit: Option<u32>,
    pub signing_algorithm: SigningAlgorithm,
    /// For `ed25519`: the public key receivers verify with (`whpk_` + base64).
    pub signing_public_key: Option<&'a str>,
    pub client_certificate: Option<ClientCertificateView>,
    /// The shape of its requests (chosen from the URL's host when a create leaves it out).
    pub format: Format,
    /// What its format needs (PagerDuty's `routingKey`, masked); `{}` for most.
    pub format_options: FormatOptionsView<'a>,
}

/// The certificate an endpoint presents for mTLS (its key is never shown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(utoipa::ToSchema), schema(as = ClientCertificateInfo))]
#[serde(rename_all = "camelCase")]
pub struct ClientCertificateView {
    /// SHA-256 of the leaf certificate, lowercase hex.
    pub fingerprint_sha256: String,
    /// When the leaf certificate expires (RFC 3339).
    pub not_after: Option<String>,
    /// Certificates in the chain, leaf first.
    pub chain_length: usize,
}

/// An endpoint's delivery circuit (see `delivery.circuit_failures`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(utoipa::ToSchema), schema(as = Circuit))]
#[serde(rename_all = "camelCase")]
pub struct CircuitView {
    /// `closed`, `open` (deliveries held) or `probing` (one delivery under way).
    #[cfg_attr(test, schema(pattern = "^(closed|open|probing)$"))]
    pub state: &'static str,
    pub consecutive_failures: u32,
    /// When the next probe may start (RFC 3339), while the circuit is open.
    pub next_probe_at: Option<String>,
}

impl CircuitView {
    pub const CLOSED: Self = Self {
        state: "closed",
        consecutive_failures: 0,
        next_probe_at: None,
    };
}

impl Endpoint {
    pub fn view(&self, circuit: CircuitView) -> EndpointView<'_> {
        EndpointView {
            id: &self.id,
            name: &self.name,
            url: &self.url,
            signing_enabled: self.signing_enabled,
            signing_secret_masked: &self.secret.mask,
            created_at: rfc3339(self.created_at_ms),
            updated_at: rfc3339(self.updated_at_ms),
            disabled: self.disabled,
            circuit,
            filter_types: &self.filter_types,
            label_matchers: &self.label_matchers,
            headers: self
                .headers
                .iter()
                .map(|h| (h.name.as_str(), h.mask.as_str()))
                .collect(),
            rate_limit: self.rate_limit,
            signing_algorithm: self.secret.algorithm,
            signing_public_key: self.secret.public_key.as_deref(),
            client_certificate: self
                .client_certificate
                .as_ref()
                .map(|c| ClientCertificateView {
                    fingerprint_sha256: c.fingerprint.clone(),
                    not_after: c.not_after_ms.map(rfc3339),
                    chain_length: c.chain_length,
                }),
            format: self.format.clone(),
            format_options: FormatOptionsView {
                routing_key: self
                    .format_options
                    .routing_key
                    .as_ref()
                    .map(|k| k.mask.as_str()),
                severity: self.format_options.severity.as_deref(),
            },
        }
    }
}

/// The changes a PATCH asks for; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointPatch {
    pub name: Option<String>,
    pub url: Option<String>,
    pub signing_enabled: Option<bool>,
    /// `Some(false)` re-enables an endpoint that delivery disabled.
    pub disabled: Option<bool>,
    pub filter_types: Option<Vec<String>>,
    pub label_matchers: Option<Vec<String>>,
    /// Replaces every custom header (`Some(vec![])` removes them all).
    pub headers: Option<Vec<SealedHeader>>,
    /// `Some(None)` removes the limit.
    pub rate_limit: Option<Option<u32>>,
    /// `Some(None)` removes the certificate.
    pub client_certificate: Option<Option<ClientCertificate>>,
    pub format: Option<Format>,
    /// Replaces the format's options.
    pub format_options: Option<FormatOptions>,
}

/// An API token. Only its keyed hash (`vault::MasterKey::token_hash`) is ever stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    pub id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    #[serde(with = "b64")]
    pub hash: Vec<u8>,
    pub created_at_ms: i64,
    /// After this (Unix ms) the token no longer authenticates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<i64>,
    /// When it last authenticated a request (written back in batches, not per request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at_ms: Option<i64>,
}

impl Token {
    /// Whether this token may act with `needed`.
    pub fn grants(&self, needed: Scope) -> bool {
        self.scopes.contains(&Scope::Admin) || self.scopes.contains(&needed)
    }

    /// Whether the token has expired at `now_ms`.
    pub fn expired(&self, now_ms: i64) -> bool {
        self.expires_at_ms.is_some_and(|at| at <= now_ms)
    }
}

/// The API view of a token (never its plaintext or hash).
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(utoipa::ToSchema), schema(as = Token))]
#[serde(rename_all = "camelCase")]
pub struct TokenView<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub scopes: &'a [Scope],
    pub created_at: String,
    /// When the token stops working; null: never.
    pub expires_at: Option<String>,
    /// When it last authenticated a request (to within a minute); null: never.
    pub last_used_at: Option<String>,
}

impl Token {
    /// The API view; `last_used_ms` is a use newer than the stored one, not yet written back.
    pub fn view(&self, last_used_ms: Option<i64>) -> TokenView<'_> {
        TokenView {
            id: &self.id,
            name: &self.name,
            scopes: &self.scopes,
            created_at: rfc3339(self.created_at_ms),
            expires_at: self.expires_at_ms.map(rfc3339),
            last_used_at: self.last_used_at_ms.max(last_used_ms).map(rfc3339),
        }
    }
}

/// An accepted alert: one message, delivered to every endpoint enabled when it was accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `msg_` + a time-ordered id; sent as `webhook-id`.
    pub id: String,
    pub event_type: String,
    /// The alert's payload as JSON text; delivered as the body's `data`.
    pub data: String,
    pub created_at_ms: i64,
}

/// Where one message stands with one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its next attempt at `next_attempt_ms`.
    Pending,
    /// Gave up after the retry schedule (or the endpoint was disabled); can be resent.
    Failed,
}

/// One message on its way to one endpoint: the durable outbox entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub message_id: String,
    pub endpoint_id: String,
    /// Attempts made so far.
    pub attempts: u32,
    pub state: DeliveryState,
    pub next_attempt_ms: i64,
    /// When it gave up (Unix ms), while `Failed`: its key in the endpoint's given-up index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_at_ms: Option<i64>,
}

impl Delivery {
    /// The outbox key: message id, then endpoint id.
    pub fn key(message_id: &str, endpoint_id: &str) -> String {
        format!("{message_id}/{endpoint_id}")
    }
}

/// What became of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    Succeeded,
    /// Failed; another attempt is scheduled.
    Retrying,
    /// Failed; no more attempts (schedule exhausted, 410, or endpoint disabled).
    Failed,
}

/// One delivery attempt, as the attempt log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub id: String,
    pub endpoint_id: String,
    pub message_id: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub at_ms: i64,
    pub duration_ms: u64,
    pub status_code: Option<u16>,
    /// Why there is no status code, or what was wrong with it: `timeout`, `connect`,
    /// `egress_denied`, `tls`, `redirect`, ...
    pub error: Option<String>,
    /// The start of the response body (at most `delivery.response_body_bytes`).
    pub response_body: String,
    pub outcome: AttemptOutcome,
    pub next_attempt_ms: Option<i64>,
}

/// The API view of an attempt.
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(utoipa::ToSchema), schema(as = Attempt))]
#[serde(rename_all = "camelCase")]
pub struct AttemptView<'a> {
    pub id: &'a str,
    pub message_id: &'a str,
    pub attempt: u32,
    pub timestamp: String,
    pub status_code: Option<u16>,
    pub error: Option<&'a str>,
    pub duration_ms: u64,
    pub response_body: &'a str,
    pub outcome: AttemptOutcome,
    pub next_attempt_at: Option<String>,
}

impl Attempt {
    pub fn view(&self) -> AttemptView<'_> {
        AttemptView {
            id: &self.id,
            message_id: &self.message_id,
            attempt: self.attempt,
            timestamp: rfc3339(self.at_ms),
            status_code: self.status_code,
            error: self.error.as_deref(),
            duration_ms: self.duration_ms,
            response_body: &self.response_body,
            outcome: self.outcome,
            next_attempt_at: self.next_attempt_ms.map(rfc3339),
        }
    }
}
