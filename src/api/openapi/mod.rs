//! The OpenAPI 3.1 document (`GET /api/v1/openapi.json`) and its reference page (`GET /docs`)
//! are generated here, by a test, and checked in (`src/api/openapi.json`, `src/api/docs.html`):
//! the binary serves those bytes and carries none of this code (nor utoipa). The test fails when
//! the checked-in files differ from what the code generates; `HOOKD_WRITE_OPENAPI=1 cargo test
//! --lib openapi` rewrites them.
//!
//! Paths come from [`ROUTES`], the table the router resolves with, so the document cannot list a
//! route the server lacks or miss one it has. Schemas are derived (utoipa) from the types the
//! handlers serialize (`EndpointView`, `TokenView`, `AttemptView`, ...) and from the request
//! shapes below, whose field lists a test holds equal to what the parsers accept.

use std::sync::OnceLock;

use serde_json::{json, Map, Value};

use crate::model::{AttemptView, EndpointView, TokenView};
use crate::route::{Access, Route, ROUTES};

mod requests;

use requests::schema_of;

pub(super) fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// What one operation answers (its summary, access and request body are its route row's):
/// success status, success schema, error statuses.
struct Doc {
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
    let d = |ok, answer, errors| Doc { ok, answer, errors };
    let json = Answer::Json;
    Some(match name {
        "create_endpoint" => d(
            200,
            json(json!({
                "type": "object",
                "required": ["endpoint", "signingSecretPlaintext"],
                "properties": {"endpoint": reference("Endpoint"), "signingSecretPlaintext": {"type": "string"}}
            })),
            WRITE,
        ),
        "list_endpoints" => d(200, json(list_of("Endpoint", "endpoints")), READ),
        "get_endpoint" => d(200, json(wrapped("endpoint", "Endpoint")), READ),
        "update_endpoint" => d(200, json(wrapped("endpoint", "Endpoint")), WRITE),
        "delete_endpoint" => d(204, Answer::Empty, WRITE),
        "rotate_secret" => d(
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
        "list_attempts" => d(200, json(list_of("Attempt", "attempts")), READ),
        "test_endpoint" => d(200, json(wrapped("attempt", "Attempt")), WRITE),
        "preview_endpoint" => d(
            200,
            json(json!({
                "type": "object",
                "required": ["request"],
                "properties": {"request": {
                    "type": "object",
                    "required": ["method", "url", "format", "headers", "body"],
                    "properties": {
                        "method": {"type": "string", "enum": ["POST"]},
                        "url": {"type": "string"},
                        "format": reference("Format"),
                        "headers": {"type": "object", "additionalProperties": {"type": "string"}, "description": "As sent; signatures and sealed header values masked"},
                        "body": {"type": "string", "description": "The body as sent (a routing key in it masked)"}
                    }
                }}
            })),
            &[400, 401, 403, 404, 408, 413, 415, 422, 500, 503],
        ),
        "ingest_alert" => d(202, json(accepted()), WRITE),
        "ingest_alertmanager" => d(202, json(accepted()), WRITE),
        "resend_message" => d(202, json(accepted()), WRITE),
        "recover_endpoint" => d(
            202,
            json(json!({
                "type": "object",
                "required": ["endpointId", "deliveries"],
                "properties": {"endpointId": {"type": "string"}, "deliveries": {"type": "integer", "minimum": 0}}
            })),
            WRITE,
        ),
        "create_token" => d(
            200,
            json(json!({
                "type": "object",
                "required": ["token", "tokenPlaintext"],
                "properties": {"token": reference("Token"), "tokenPlaintext": {"type": "string"}}
            })),
            WRITE,
        ),
        "list_tokens" => d(200, json(list_of("Token", "tokens")), READ),
        "revoke_token" => d(204, Answer::Empty, WRITE),
        "backup" => d(200, Answer::Bytes("application/octet-stream"), READ),
        "openapi" => d(200, json(json!({"type": "object"})), &[]),
        "docs" => d(200, Answer::Bytes("text/html"), &[]),
        "console_redirect" => d(308, Answer::Empty, &[404]),
        "console" => d(200, Answer::Bytes("text/html"), &[404]),
        "console_asset" => d(200, Answer::Bytes("text/javascript"), &[404]),
        "metrics" => d(200, Answer::Bytes("text/plain"), &[401, 404]),
        "healthz" => d(200, json(status_object("ok")), &[]),
        "readyz" => d(200, json(status_object("ready")), &[503]),
        _ => return None,
    })
}

fn operation(route: &Route) -> Value {
    let Some(d) = doc(route.name) else {
        return json!({"operationId": route.name});
    };
    let mut op = json!({
        "operationId": route.name,
        "summary": route.summary,
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
    let scope = match route.access {
        Access::Public => None,
        Access::Bearer(scope) => {
            op["security"] = json!([{"bearer": []}]);
            Some(scope)
        }
        Access::BearerOrBasic(scope) => {
            op["security"] = json!([{"bearer": []}, {"basic": []}]);
            Some(scope)
        }
    };
    match scope {
        Some(scope) => {
            op["description"] = format!(
                "Needs a token with the `{}` scope (or `admin`).",
                scope.as_str()
            )
            .into();
        }
        None => op["security"] = json!([]),
    }
    if let Some(body) = route.body {
        op["requestBody"] = json!({
            "required": !matches!(body, "RotateSecretRequest" | "PreviewRequest"),
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
        (
            413,
            "Body over limits.max_body_bytes (limits.max_alert_body_bytes on the alert routes)",
        ),
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
    requests::add_schemas(&mut schemas);
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

#[allow(clippy::unwrap_used)]
mod tests;
