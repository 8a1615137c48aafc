//! The request side of the OpenAPI document: the request bodies' schemas. The parsers read JSON
//! field by field (to report every problem at once), so there is no wire struct to derive
//! from; these mirrors are derived with utoipa where they can be, written where JSON Schema
//! states a parser's rule better, and held equal to the parsers' field lists by the tests.

use serde::Serialize;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use crate::model::Scope;

/// A create request: the seed contract's four fields, all required.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = CreateEndpointRequest)]
#[allow(dead_code)]
/// (`signingSecret`: empty to generate one, `whsec_` and base64, or 12-256 printable ASCII.)
pub struct CreateEndpointRequest {
    /// 1-200 characters; no control or invisible formatting characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$",
        example = "Slack Webhook"
    )]
    pub name: String,
    /// An absolute http or https URL to a public address (see the README's URL policy).
    #[schema(
        min_length = 1,
        max_length = 2048,
        pattern = r"^[hH][tT][tT][pP][sS]?://[^\s\\#]+$",
        example = "https://hooks.slack.com/services/T00/B00/xxx"
    )]
    pub url: String,
    #[schema(example = true)]
    pub signing_enabled: bool,
    /// Empty: hookd generates `whsec_` + 32 random bytes. `whsec_<base64>` of 24-64 bytes, or
    /// 12-256 printable ASCII characters.
    #[schema(
        max_length = 256,
        pattern = r"^(|whsec_[A-Za-z0-9+/]+={0,2}|[!-~]{12,256})$",
        example = "my-secret-key"
    )]
    pub signing_secret: String,
}

/// A PATCH: any of the fields, at least one.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = UpdateEndpointRequest)]
#[allow(dead_code)]
pub struct UpdateEndpointRequest {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 2048,
        pattern = r"^[hH][tT][tT][pP][sS]?://[^\s\\#]+$"
    )]
    pub url: Option<String>,
    pub signing_enabled: Option<bool>,
    /// `false` re-enables an endpoint delivery disabled.
    pub disabled: Option<bool>,
}

/// A rotation: no body, `{}`, or a secret to use.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = RotateSecretRequest)]
#[allow(dead_code)]
pub struct RotateSecretRequest {
    #[schema(
        max_length = 256,
        pattern = r"^(|whsec_[A-Za-z0-9+/]+={0,2}|[!-~]{12,256})$",
        example = ""
    )]
    pub signing_secret: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = CreateTokenRequest)]
#[allow(dead_code)]
pub struct CreateTokenRequest {
    #[schema(min_length = 1, max_length = 200, example = "ci")]
    pub name: String,
    #[schema(min_items = 1)]
    pub scopes: Vec<Scope>,
    /// RFC 3339, in the future: the token stops working then. Absent: never.
    #[schema(format = DateTime, example = "2027-01-01T00:00:00Z")]
    pub expires_at: Option<String>,
}

/// A native alert.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Alert)]
#[allow(dead_code)]
pub struct AlertRequest {
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[A-Za-z0-9._:-]+$",
        example = "alert.firing"
    )]
    pub event_type: String,
    /// Any JSON object; delivered as the body's `data`, byte for byte.
    pub payload: Map<String, Value>,
}

/// One field that broke a rule.
#[derive(Serialize, ToSchema)]
#[schema(as = FieldError)]
#[allow(dead_code)]
pub struct FieldErrorDoc {
    pub field: String,
    pub message: String,
}

/// `application/problem+json` (RFC 9457); `errors` on a 422.
#[derive(Serialize, ToSchema)]
#[schema(as = Problem)]
#[allow(dead_code)]
pub struct ProblemDoc {
    /// `urn:hookd:problem:<kind>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub errors: Option<Vec<FieldErrorDoc>>,
}

/// A recover request.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = RecoverRequest)]
#[allow(dead_code)]
pub struct RecoverRequest {
    /// RFC 3339, not in the future: deliveries that gave up at or after it are requeued.
    #[schema(format = DateTime, example = "2026-01-15T08:00:00Z")]
    pub since: String,
}

/// The field names each request body accepts (the parsers' lists, for the drift test).
pub const REQUEST_FIELDS: [(&str, &[&str]); 5] = [
    ("CreateEndpointRequest", &crate::parse::CREATE_FIELDS),
    ("UpdateEndpointRequest", &crate::parse::UPDATE_FIELDS),
    (
        "RotateSecretRequest",
        &["signingSecret", "signingAlgorithm"],
    ),
    ("CreateTokenRequest", &["name", "scopes", "expiresAt"]),
    ("RecoverRequest", &["since"]),
];

/// Request fields that may be `null` (a PATCH's "remove it").
#[cfg(test)]
pub(super) const NULLABLE_FIELDS: [(&str, &str); 2] = [
    ("UpdateEndpointRequest", "rateLimit"),
    ("UpdateEndpointRequest", "clientCertificate"),
];

/// The routing and shaping options' schemas, the same in a create and a PATCH (where `null`
/// removes a rate limit or a certificate). Written here rather than derived: they mirror the
/// parsers in `parse::options`, whose rules a JSON Schema can state exactly.
pub(super) fn option_properties(patch: bool) -> Map<String, Value> {
    use crate::parse::{MAX_HEADERS, MAX_PEM, MAX_RATE};
    use crate::routing::{MAX_MATCHER_LEN, MAX_RULES};
    let ws = "[ \\t\\n\\f\\r]*";
    let matcher = format!(
        "^{ws}[A-Za-z_:][A-Za-z0-9_:]*{ws}(=~|!~|!=|=){ws}(\"([^\"\\\\\\u0000-\\u0008\\u000A-\\u001F\\u007F-\\u009F]|\\\\[\"\\\\nt])*\"|[^ \\t\\n\\f\\r\"'`,{{}}\\\\=!~\\u0000-\\u001F\\u007F-\\u009F]*){ws}$"
    );
    let nullable = |schema: Value| {
        if patch {
            json!({"oneOf": [schema, {"type": "null"}]})
        } else {
            schema
        }
    };
    let mut props = Map::new();
    props.insert("filterTypes".into(), json!({
        "type": "array", "maxItems": MAX_RULES,
        "description": "Event types this endpoint takes, exact or a prefix ending in .* (alertmanager.*); empty or absent: all.",
        "items": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{0,99}[A-Za-z0-9_:-](\\.\\*)?$"},
        "example": ["alertmanager.*"]
    }));
    props.insert("labelMatchers".into(), json!({
        "type": "array", "maxItems": MAX_RULES,
        "description": "Alertmanager matchers; an alert's label set must satisfy all of them (see the README's routing section). Regexes are anchored RE2.",
        "items": {"type": "string", "maxLength": MAX_MATCHER_LEN, "pattern": matcher},
        "example": ["severity=\"critical\"", "team=~\"db|storage\""]
    }));
    props.insert("headers".into(), json!({
        "type": "object", "maxProperties": MAX_HEADERS,
        "description": "Custom request headers (not host, content-*, transfer-encoding, connection, user-agent, webhook-*); values are sealed at rest and shown masked. A PATCH replaces them all.",
        "propertyNames": {"pattern": "^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$"},
        "additionalProperties": {"type": "string", "maxLength": 4096, "pattern": "^([!-~]|[!-~][ -~\\t]*[!-~])?$"},
        "example": {"X-Api-Key": "k-123"}
    }));
    props.insert(
        "rateLimit".into(),
        nullable(json!({
            "type": "integer", "minimum": 1, "maximum": MAX_RATE,
            "description": "Deliveries per second, at most (a token bucket, burst = rate)."
        })),
    );
    props.insert("clientCertificate".into(), nullable(json!({
        "type": "object", "required": ["certificate", "privateKey"], "additionalProperties": false,
        "description": "Presented when the receiver asks for a client certificate (mTLS). The key is sealed at rest and never shown.",
        "properties": {
            "certificate": {"type": "string", "minLength": 1, "maxLength": MAX_PEM, "description": "PEM chain, leaf first"},
            "privateKey": {"type": "string", "minLength": 1, "maxLength": MAX_PEM, "description": "PEM (PKCS#8, PKCS#1 or SEC1)"}
        }
    })));
    let formats: Vec<&str> = crate::model::Format::ALL
        .iter()
        .map(|f| f.as_str())
        .collect();
    props.insert("format".into(), json!({
        "type": "string",
        "pattern": format!("^({}|plugin:[A-Za-z0-9_-]{{1,64}})$", formats.join("|")),
        "description": format!("The shape of the requests sent: the Standard Webhooks envelope, a chat or incident tool's message ({}), or plugin:<name> for a transformer plugin of the configuration's [[transformers]] (422 if it has none of that name). Absent on a create: chosen from the URL's host (hooks.slack.com: slack; anything else: standard-webhooks).", formats.join(", ")),
        "example": "slack"
    }));
    props.insert("formatOptions".into(), json!({
        "type": "object", "additionalProperties": false,
        "description": "What the format needs: for pagerduty, routingKey (required; sealed at rest, shown masked) and severity (for alerts without a severity PagerDuty knows). The other formats take none.",
        "properties": {
            "routingKey": {"type": "string", "minLength": 1, "maxLength": crate::parse::MAX_ROUTING_KEY, "pattern": "^[!-~]+$"},
            "severity": {"type": "string", "enum": crate::parse::PAGERDUTY_SEVERITIES}
        }
    }));
    props
}

fn signing_algorithm_property() -> Value {
    json!({"type": "string", "enum": ["hmac-sha256", "ed25519"], "description": "Default hmac-sha256 (or ed25519 for a whsk_ secret)."})
}

pub(super) fn schema_of<T: ToSchema>(schemas: &mut Map<String, Value>) {
    let mut nested = Vec::new();
    T::schemas(&mut nested);
    for (name, schema) in nested {
        schemas.insert(name, serde_json::to_value(schema).unwrap_or_default());
    }
    schemas.insert(
        T::name().into_owned(),
        serde_json::to_value(T::schema()).unwrap_or_default(),
    );
}

/// `{"type": ["string", "null"]}` becomes `{"type": "string"}`.
fn not_nullable(schema: &mut Value) {
    if let Some(types) = schema["type"].as_array() {
        let kept: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
        schema["type"] = match kept.as_slice() {
            [one] => one.clone(),
            _ => Value::Array(kept),
        };
    }
}

/// Adds every request body's schema (and the error body's) to `schemas`.
pub(super) fn add_schemas(schemas: &mut Map<String, Value>) {
    schema_of::<CreateEndpointRequest>(schemas);
    schema_of::<UpdateEndpointRequest>(schemas);
    schema_of::<RotateSecretRequest>(schemas);
    schema_of::<CreateTokenRequest>(schemas);
    schema_of::<AlertRequest>(schemas);
    schema_of::<ProblemDoc>(schemas);
    schema_of::<RecoverRequest>(schemas);
    // Unknown fields are refused by name: say so in every request schema.
    // And `null` is refused too: an absent field is how a request leaves something out.
    for (name, _) in REQUEST_FIELDS {
        if let Some(s) = schemas.get_mut(name) {
            s["additionalProperties"] = false.into();
            if let Some(props) = s["properties"].as_object_mut() {
                props.values_mut().for_each(not_nullable);
            }
        }
    }
    for (name, patch) in [
        ("CreateEndpointRequest", false),
        ("UpdateEndpointRequest", true),
    ] {
        if let Some(props) = schemas
            .get_mut(name)
            .and_then(|s| s["properties"].as_object_mut())
        {
            props.extend(option_properties(patch));
            if !patch {
                props.insert("signingAlgorithm".into(), signing_algorithm_property());
            }
        }
    }
    if let Some(props) = schemas
        .get_mut("RotateSecretRequest")
        .and_then(|s| s["properties"].as_object_mut())
    {
        props.insert("signingAlgorithm".into(), signing_algorithm_property());
    }
    if let Some(s) = schemas.get_mut("UpdateEndpointRequest") {
        s["minProperties"] = 1.into();
    }
    use crate::routing::{MAX_GROUP_ALERTS, MAX_LABEL_VALUE};
    // Labels routing reads: each value at most MAX_LABEL_VALUE bytes (JSON Schema counts
    // characters, so the document says the byte limit in words as well).
    let labels = json!({"type": "object", "additionalProperties": {"type": "string", "maxLength": MAX_LABEL_VALUE},
                        "description": format!("What labelMatchers read; each value at most {MAX_LABEL_VALUE} bytes")});
    if let Some(s) = schemas.get_mut("Alert") {
        s["additionalProperties"] = false.into();
        s["properties"]["payload"]["properties"] = json!({ "labels": labels });
    }
    schemas.insert(
        "PreviewRequest".into(),
        json!({
            "description": "The alert to preview: an Alertmanager payload or a native alert; empty or {} for a sample Alertmanager group",
            "anyOf": [super::reference("Alert"), super::reference("AlertmanagerPayload"), {"type": "object", "maxProperties": 0}]
        }),
    );
    schemas.insert(
        "AlertmanagerPayload".into(),
        json!({
            "type": "object",
            "description": "Alertmanager's webhook payload; fields besides these pass through unchecked",
            "required": ["version", "status", "alerts"],
            "properties": {
                "version": {"type": "string", "enum": ["4"]},
                "status": {"type": "string", "enum": ["firing", "resolved"]},
                "alerts": {"type": "array", "maxItems": MAX_GROUP_ALERTS, "items": {
                    "type": "object",
                    "properties": {
                        "labels": labels,
                        "annotations": {"type": "object", "additionalProperties": {"type": "string"}}
                    }
                }},
                "commonLabels": labels,
                "commonAnnotations": {"type": "object", "additionalProperties": {"type": "string"}},
                "groupLabels": {"type": "object", "additionalProperties": {"type": "string"}}
            }
        }),
    );
}
