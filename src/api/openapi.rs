//! The OpenAPI 3.1 document (`GET /api/v1/openapi.json`) and its reference page (`GET /docs`).
//!
//! Paths come from [`ROUTES`], the table the router resolves with, so the document cannot list a
//! route the server lacks or miss one it has. Schemas are derived (utoipa) from the types the
//! handlers serialize (`EndpointView`, `TokenView`, `AttemptView`, ...) and from the request
//! shapes below, whose field lists a test holds equal to what the parsers accept.

use std::sync::OnceLock;

use serde::Serialize;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use crate::model::{AttemptView, EndpointView, Scope, TokenView};
use crate::route::{Route, ROUTES};

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
const NULLABLE_FIELDS: [(&str, &str); 2] = [
    ("UpdateEndpointRequest", "rateLimit"),
    ("UpdateEndpointRequest", "clientCertificate"),
];

/// The routing and shaping options' schemas, the same in a create and a PATCH (where `null`
/// removes a rate limit or a certificate). Written here rather than derived: they mirror the
/// parsers in `parse::options`, whose rules a JSON Schema can state exactly.
fn option_properties(patch: bool) -> Map<String, Value> {
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
    props
}

fn signing_algorithm_property() -> Value {
    json!({"type": "string", "enum": ["hmac-sha256", "ed25519"], "description": "Default hmac-sha256 (or ed25519 for a whsk_ secret)."})
}

fn schema_of<T: ToSchema>(schemas: &mut Map<String, Value>) {
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

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// What one operation takes and answers: (summary, scope, request body schema, success status,
/// success schema, error statuses).
struct Doc {
    summary: &'static str,
    scope: Option<&'static str>,
    body: Option<&'static str>,
    ok: u16,
    answer: Answer,
    errors: &'static [u16],
}

enum Answer {
    Json(Value),
    Empty,
    Bytes(&'static str),
}

const READ: &[u16] = &[400, 401, 403, 404, 408, 422, 500, 503];
const WRITE: &[u16] = &[400, 401, 403, 404, 408, 409, 413, 415, 422, 500, 503, 507];

fn list_of(item: &str, key: &str) -> Value {
    json!({
        "type": "object",
        "required": [key, "nextCursor"],
        "properties": {
            key: {"type": "array", "items": reference(item)},
            "nextCursor": {"type": ["string", "null"], "description": "Pass back as `cursor` for the next page; null on the last."}
        }
    })
}

fn wrapped(key: &str, item: &str) -> Value {
    json!({"type": "object", "required": [key], "properties": {key: reference(item)}})
}

fn status_object(status: &str) -> Value {
    json!({"type": "object", "required": ["status"], "properties": {"status": {"type": "string", "enum": [status]}}})
}

fn accepted() -> Value {
    json!({
        "type": "object",
        "required": ["messageId", "deliveries"],
        "properties": {
            "messageId": {"type": "string"},
            "deliveries": {"type": "integer", "minimum": 0}
        }
    })
}

/// The documentation of the route called `name`.
fn doc(name: &str) -> Option<Doc> {
    let d = |summary, scope, body, ok, answer, errors| Doc {
        summary,
        scope,
        body,
        ok,
        answer,
        errors,
    };
    let json = Answer::Json;
    Some(match name {
        "create_endpoint" => d(
            "Create a webhook endpoint (the seed contract); the secret's plaintext is shown this once",
            Some("endpoints:write"),
            Some("CreateEndpointRequest"),
            200,
            json(json!({
                "type": "object",
                "required": ["endpoint", "signingSecretPlaintext"],
                "properties": {"endpoint": reference("Endpoint"), "signingSecretPlaintext": {"type": "string"}}
            })),
            WRITE,
        ),
        "list_endpoints" => d("List endpoints, oldest first", Some("endpoints:read"), None, 200, json(list_of("Endpoint", "endpoints")), READ),
        "get_endpoint" => d("Read one endpoint", Some("endpoints:read"), None, 200, json(wrapped("endpoint", "Endpoint")), READ),
        "update_endpoint" => d("Change name, url, signingEnabled, disabled, or the routing and shaping options", Some("endpoints:write"), Some("UpdateEndpointRequest"), 200, json(wrapped("endpoint", "Endpoint")), WRITE),
        "delete_endpoint" => d("Delete an endpoint (its queue and attempt log go in the background)", Some("endpoints:write"), None, 204, Answer::Empty, WRITE),
        "rotate_secret" => d(
            "Rotate the signing secret; the previous one signs too for endpoints.rotation_grace_secs",
            Some("endpoints:write"),
            Some("RotateSecretRequest"),
            200,
            json(json!({
                "type": "object",
                "required": ["endpoint", "signingSecretPlaintext", "previousSecretValidUntil"],
                "properties": {
                    "endpoint": reference("Endpoint"),
                    "signingSecretPlaintext": {"type": "string"},
                    "previousSecretValidUntil": {"type": ["string", "null"], "format": "date-time", "description": "Until when the replaced secret also signs; null without a grace period"}
                }
            })),
            WRITE,
        ),
        "list_attempts" => d("An endpoint's delivery attempts, newest first", Some("endpoints:read"), None, 200, json(list_of("Attempt", "attempts")), READ),
        "test_endpoint" => d("Send a signed hookd.test event now; answers with the attempt", Some("endpoints:write"), None, 200, json(wrapped("attempt", "Attempt")), WRITE),
        "ingest_alert" => d("Accept an alert: one durable message, a delivery per enabled endpoint", Some("alerts:write"), Some("Alert"), 202, json(accepted()), WRITE),
        "ingest_alertmanager" => d(
            "Accept an Alertmanager webhook payload (version 4); bearer or basic auth",
            Some("alerts:write"),
            Some("AlertmanagerPayload"),
            202,
            json(accepted()),
            WRITE,
        ),
        "resend_message" => d("Requeue a message's deliveries that gave up", Some("alerts:write"), None, 202, json(accepted()), WRITE),
        "recover_endpoint" => d(
            "Requeue every delivery to this endpoint that gave up since a time (409 while it is disabled)",
            Some("endpoints:write"),
            Some("RecoverRequest"),
            202,
            json(json!({
                "type": "object",
                "required": ["endpointId", "deliveries"],
                "properties": {"endpointId": {"type": "string"}, "deliveries": {"type": "integer", "minimum": 0}}
            })),
            WRITE,
        ),
        "create_token" => d(
            "Create an API token; the plaintext is shown this once",
            Some("admin"),
            Some("CreateTokenRequest"),
            200,
            json(json!({
                "type": "object",
                "required": ["token", "tokenPlaintext"],
                "properties": {"token": reference("Token"), "tokenPlaintext": {"type": "string"}}
            })),
            WRITE,
        ),
        "list_tokens" => d("List API tokens", Some("admin"), None, 200, json(list_of("Token", "tokens")), READ),
        "revoke_token" => d("Revoke an API token (not the last admin token: 409)", Some("admin"), None, 204, Answer::Empty, WRITE),
        "backup" => d("A consistent backup of the whole store, streamed", Some("admin"), None, 200, Answer::Bytes("application/octet-stream"), READ),
        "openapi" => d("This document", None, None, 200, json(json!({"type": "object"})), &[]),
        "docs" => d("A readable reference of this document", None, None, 200, Answer::Bytes("text/html"), &[]),
        "console_redirect" => d("To the console, /console/", None, None, 308, Answer::Empty, &[404]),
        "console" => d("The web console: a page over this API, signed in with a token (404 when [console] enabled = false)", None, None, 200, Answer::Bytes("text/html"), &[404]),
        "console_asset" => d("A file of the console (its scripts and style); 304 when If-None-Match names its ETag", None, None, 200, Answer::Bytes("text/javascript"), &[404]),
        "metrics" => d("Prometheus metrics (text format); a bearer token if metrics.token is set", None, None, 200, Answer::Bytes("text/plain"), &[401, 404]),
        "healthz" => d("Liveness: 200 while serving", None, None, 200, json(status_object("ok")), &[]),
        "readyz" => d("Readiness: 200 when the store can be read and written", None, None, 200, json(status_object("ready")), &[503]),
        _ => return None,
    })
}

fn operation(route: &Route) -> Value {
    let Some(d) = doc(route.name) else {
        return json!({"operationId": route.name});
    };
    let mut op = json!({
        "operationId": route.name,
        "summary": d.summary,
        "tags": [tag(route.path)],
    });
    let mut params = Vec::new();
    if route.path.contains("{id}") {
        params.push(json!({
            "name": "id", "in": "path", "required": true,
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}
        }));
    }
    if route.path.contains("{file}") {
        params.push(json!({
            "name": "file", "in": "path", "required": true,
            "schema": {"type": "string", "pattern": "^[a-z0-9_-][a-z0-9._-]{0,63}$"},
            "example": "app.js"
        }));
    }
    if route.name.starts_with("list_") {
        let prefix = match route.name {
            "list_tokens" => crate::ids::TOKEN_PREFIX,
            "list_attempts" => crate::ids::ATTEMPT_PREFIX,
            _ => crate::ids::ENDPOINT_PREFIX,
        };
        params.push(json!({"name": "limit", "in": "query", "required": false,
            "schema": {"type": "integer", "minimum": 1, "maximum": 200}}));
        params.push(json!({"name": "cursor", "in": "query", "required": false,
            "schema": {"type": "string", "pattern": format!("^{prefix}[0-9a-hjkmnp-tv-z]{{26}}$")},
            "description": "The nextCursor of the previous page"}));
    }
    if !params.is_empty() {
        op["parameters"] = Value::Array(params);
    }
    match d.scope {
        Some(scope) => {
            op["security"] = if route.name == "ingest_alertmanager" {
                json!([{"bearer": []}, {"basic": []}])
            } else {
                json!([{"bearer": []}])
            };
            op["description"] =
                format!("Needs a token with the `{scope}` scope (or `admin`).").into();
        }
        None => op["security"] = json!([]),
    }
    if let Some(body) = d.body {
        op["requestBody"] = json!({
            "required": body != "RotateSecretRequest",
            "content": {"application/json": {"schema": reference(body)}}
        });
    }
    let mut responses = Map::new();
    let ok = match d.answer {
        Answer::Json(schema) => {
            json!({"description": "Done", "content": {"application/json": {"schema": schema}}})
        }
        Answer::Empty => json!({"description": "Done"}),
        Answer::Bytes(kind) => {
            json!({"description": "Done", "content": {kind: {"schema": {"type": "string"}}}})
        }
    };
    responses.insert(d.ok.to_string(), ok);
    if route.name == "create_endpoint"
        || route.name == "create_token"
        || route.name == "ingest_alert"
    {
        responses[&d.ok.to_string()]["links"] = links(route.name);
    }
    for status in d.errors.iter().chain([405u16].iter()) {
        responses.insert(
            status.to_string(),
            json!({"$ref": format!("#/components/responses/E{status}")}),
        );
    }
    op["responses"] = Value::Object(responses);
    op
}

/// Links from a created resource to the operations on it (for stateful clients and tests).
fn links(name: &str) -> Value {
    let on = |ops: &[&str], id: &str| -> Value {
        ops.iter()
            .map(|op| {
                (
                    (*op).to_owned(),
                    json!({"operationId": op, "parameters": {"id": id}}),
                )
            })
            .collect::<Map<String, Value>>()
            .into()
    };
    match name {
        "create_endpoint" => on(
            &[
                "get_endpoint",
                "update_endpoint",
                "delete_endpoint",
                "rotate_secret",
                "list_attempts",
                "test_endpoint",
            ],
            "$response.body#/endpoint/id",
        ),
        "create_token" => on(&["revoke_token"], "$response.body#/token/id"),
        _ => on(&["resend_message"], "$response.body#/messageId"),
    }
}

fn tag(path: &str) -> &'static str {
    if path.contains("webhook-endpoints") {
        "endpoints"
    } else if path.contains("/alerting/") {
        "alerts"
    } else if path.contains("/tokens") {
        "tokens"
    } else if path.contains("/admin/") {
        "admin"
    } else if path.starts_with("/console") {
        "console"
    } else {
        "operations"
    }
}

fn error_responses() -> Value {
    let why = [
        (400, "Malformed JSON, or a bad request line (Host)"),
        (401, "No or unknown bearer token"),
        (403, "The token lacks the scope"),
        (404, "No such route or resource"),
        (405, "Wrong method; Allow lists the right ones"),
        (408, "The body did not arrive in time"),
        (409, "Conflict (the last admin token; nothing to resend)"),
        (413, "Body over limits.max_body_bytes"),
        (415, "Body not application/json"),
        (422, "A field breaks a rule; errors names each"),
        (500, "hookd's own fault (a damaged record); logged"),
        (
            503,
            "Busy, a plugin failed, or the store is reopening; Retry-After",
        ),
        (
            507,
            "The data volume is full or under store.min_free_bytes; Retry-After",
        ),
    ];
    let mut out = Map::new();
    for (status, description) in why {
        out.insert(
            format!("E{status}"),
            json!({
                "description": description,
                "content": {"application/problem+json": {"schema": reference("Problem")}}
            }),
        );
    }
    Value::Object(out)
}

fn build() -> Value {
    let mut schemas = Map::new();
    schema_of::<EndpointView<'static>>(&mut schemas);
    schema_of::<TokenView<'static>>(&mut schemas);
    schema_of::<AttemptView<'static>>(&mut schemas);
    schema_of::<CreateEndpointRequest>(&mut schemas);
    schema_of::<UpdateEndpointRequest>(&mut schemas);
    schema_of::<RotateSecretRequest>(&mut schemas);
    schema_of::<CreateTokenRequest>(&mut schemas);
    schema_of::<AlertRequest>(&mut schemas);
    schema_of::<ProblemDoc>(&mut schemas);
    schema_of::<RecoverRequest>(&mut schemas);
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
    let mut paths = Map::new();
    for route in ROUTES {
        let item = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        item[route.method.to_ascii_lowercase()] = operation(route);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "hookd",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Self-hosted webhook endpoints with signed delivery. Every error is application/problem+json.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": error_responses(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic", "description": "Alertmanager: the token as the password"}
            }
        }
    })
}

/// The document, built once.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(build)
}

/// The document as JSON bytes, built once.
pub fn document_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| serde_json::to_vec_pretty(document()).unwrap_or_default())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The drift test: every route the router serves is in the document, with its method, and
    /// the document has nothing else; every route has its own documentation.
    #[test]
    fn the_document_lists_exactly_the_routes() {
        let doc = document();
        let mut listed = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                listed.push((method.to_ascii_uppercase(), path.clone()));
                assert!(op["summary"].is_string(), "{method} {path} is undocumented");
                let resolved = crate::route::resolve(
                    &method.to_ascii_uppercase(),
                    &path.replace("{id}", "x-1").replace("{file}", "app.js"),
                )
                .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
                assert_eq!(resolved.name(), op["operationId"], "{method} {path}");
            }
        }
        let mut served: Vec<(String, String)> = ROUTES
            .iter()
            .map(|r| (r.method.to_owned(), r.path.to_owned()))
            .collect();
        listed.sort();
        served.sort();
        assert_eq!(listed, served);
    }

    #[test]
    fn request_schemas_accept_exactly_the_parsers_fields() {
        let schemas = &document()["components"]["schemas"];
        for (name, fields) in REQUEST_FIELDS {
            let mut got: Vec<&str> = schemas[name]["properties"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            let mut want = fields.to_vec();
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(got, want, "{name}");
        }
        // And the parsers refuse anything else, by name.
        let p = crate::url_policy::UrlPolicy::default();
        let e = crate::parse::create_endpoint(br#"{"extra":1}"#, &p).unwrap_err();
        assert!(e.problem()["errors"].to_string().contains("extra"));
    }

    /// The parsers refuse `null` and treat an absent field as "leave it": the document must
    /// say so, or a generated client sends `null` and schema-driven tests expect a field the
    /// parsers never required.
    #[test]
    fn optional_request_fields_are_neither_required_nor_nullable() {
        let schemas = &document()["components"]["schemas"];
        for (name, fields) in REQUEST_FIELDS {
            let schema = &schemas[name];
            let required: Vec<&str> = schema["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            for field in fields.iter() {
                let text = schema["properties"][field].to_string();
                let nullable = NULLABLE_FIELDS.contains(&(name, field));
                assert_eq!(text.contains("null"), nullable, "{name}.{field}: {text}");
            }
            let optional: &[&str] = match name {
                "CreateEndpointRequest" => &crate::parse::CREATE_FIELDS[4..],
                "RecoverRequest" => &[],
                "CreateTokenRequest" => &["expiresAt"],
                _ => fields,
            };
            for field in optional {
                assert!(!required.contains(field), "{name}.{field} is required");
            }
        }
    }

    /// The option schemas' patterns accept exactly what the parsers accept (semantic rules
    /// aside: a regex that does not compile, a reserved header name).
    #[test]
    fn option_patterns_agree_with_the_parsers() {
        let props = option_properties(false);
        // The schema's patterns anchor themselves; hookd's own engine checks them.
        let pattern = |v: &Value| {
            let p = crate::routing::re2::pattern(v.as_str().unwrap()).unwrap();
            crate::routing::re2::compile(&p, usize::MAX).unwrap()
        };
        let matcher = pattern(&props["labelMatchers"]["items"]["pattern"]);
        for m in [
            r#"a="b""#,
            "a=b",
            " a = b ",
            "a=",
            r#"a!~"x|y""#,
            "a:b_c=~.+",
            r#"a="q\"uote""#,
            r#"a="t\tab""#,
            "a=é",
            "a=\u{85}",
            "a==b",
            "a=!b",
            "a=~~",
            "9=x",
            "a",
            "a=b c",
            r#"a="open"#,
            r#"a="bad\q""#,
            "a=x,y",
            "a=\u{7f}",
            "a=\"ctl\u{1}\"",
            "a\u{a0}=b",
            "\u{b}a=b",
        ] {
            assert_eq!(
                matcher.is_match(m),
                crate::routing::Matcher::parse(m).is_ok(),
                "{m:?}"
            );
        }
        let filter = pattern(&props["filterTypes"]["items"]["pattern"]);
        for f in [
            "a",
            "a.*",
            ".a",
            "a.",
            "a.**",
            "*",
            "",
            "a b",
            "x.y:z-w_v",
            &"x".repeat(100),
            &"x".repeat(101),
        ] {
            assert_eq!(
                filter.is_match(f),
                crate::routing::is_filter_type(f),
                "{f:?}"
            );
        }
        let name = pattern(&props["headers"]["propertyNames"]["pattern"]);
        for n in [
            "X-Api-Key",
            "a b",
            "a:b",
            "",
            "!#$%&'*+.^_`|~-",
            &"x".repeat(101),
        ] {
            assert_eq!(
                name.is_match(n),
                crate::parse::header_name_problem(n).is_none(),
                "{n:?}"
            );
        }
        let value = pattern(&props["headers"]["additionalProperties"]["pattern"]);
        for v in ["", "a", "a b", " a", "a ", "a\tb", "a\nb", "é", "~"] {
            assert_eq!(
                value.is_match(v),
                crate::parse::header_value_problem(v).is_none(),
                "{v:?}"
            );
        }
    }

    #[test]
    fn every_reference_resolves() {
        let doc = document();
        let text = doc.to_string();
        for piece in text.split("\"$ref\":\"#/components/").skip(1) {
            let target = &piece[..piece.find('"').unwrap()];
            let mut node = &doc["components"];
            for part in target.split('/') {
                node = &node[part];
            }
            assert!(!node.is_null(), "dangling $ref {target}");
        }
    }
}
