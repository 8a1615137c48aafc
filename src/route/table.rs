//! [`ROUTES`]: every route the API serves, each with who may call it, what it does and what it
//! takes. The router resolves with it, `authorize` reads its access, and the OpenAPI document
//! is made from it.

use super::{Access, Operation, Route};
use crate::model::Scope::{Admin, AlertsWrite, EndpointsRead, EndpointsWrite};

use Access::{Bearer, BearerOrBasic, Public};

/// `route!(METHOD, PATH, NAME, Operation[(id)], ACCESS, SUMMARY[, BODY SCHEMA])`.
macro_rules! route {
    ($method:literal, $path:literal, $name:literal, $op:ident, $($rest:tt)*) => {
        route!(@row $method, $path, $name, |_| Operation::$op, $($rest)*)
    };
    ($method:literal, $path:literal, $name:literal, $op:ident(id), $($rest:tt)*) => {
        route!(@row $method, $path, $name, Operation::$op, $($rest)*)
    };
    (@row $method:literal, $path:literal, $name:literal, $make:expr, $access:expr, $summary:literal $(, $body:literal)?) => {
        Route {
            method: $method,
            path: $path,
            name: $name,
            access: $access,
            summary: $summary,
            body: route!(@body $($body)?),
            make: $make,
        }
    };
    (@body) => { None };
    (@body $body:literal) => { Some($body) };
}

/// Every route, in the order the API reference lists them.
pub const ROUTES: &[Route] = &[
    route!("POST", "/api/v1/alerting/webhook-endpoints", "create_endpoint", CreateEndpoint,
        Bearer(EndpointsWrite),
        "Create a webhook endpoint (the seed contract); the secret's plaintext is shown this once",
        "CreateEndpointRequest"),
    route!("GET", "/api/v1/alerting/webhook-endpoints", "list_endpoints", ListEndpoints,
        Bearer(EndpointsRead), "List endpoints, oldest first"),
    route!("GET", "/api/v1/alerting/webhook-endpoints/{id}", "get_endpoint", GetEndpoint(id),
        Bearer(EndpointsRead), "Read one endpoint"),
    route!("PATCH", "/api/v1/alerting/webhook-endpoints/{id}", "update_endpoint", UpdateEndpoint(id),
        Bearer(EndpointsWrite),
        "Change name, url, signingEnabled, disabled, or the routing and shaping options",
        "UpdateEndpointRequest"),
    route!("DELETE", "/api/v1/alerting/webhook-endpoints/{id}", "delete_endpoint", DeleteEndpoint(id),
        Bearer(EndpointsWrite),
        "Delete an endpoint (its queue and attempt log go in the background)"),
    route!("POST", "/api/v1/alerting/webhook-endpoints/{id}/rotate-secret", "rotate_secret", RotateSecret(id),
        Bearer(EndpointsWrite),
        "Rotate the signing secret; the previous one signs too for endpoints.rotation_grace_secs",
        "RotateSecretRequest"),
    route!("GET", "/api/v1/alerting/webhook-endpoints/{id}/attempts", "list_attempts", ListAttempts(id),
        Bearer(EndpointsRead), "An endpoint's delivery attempts, newest first"),
    route!("POST", "/api/v1/alerting/webhook-endpoints/{id}/test", "test_endpoint", TestEndpoint(id),
        Bearer(EndpointsWrite), "Send a signed hookd.test event now; answers with the attempt"),
    route!("POST", "/api/v1/alerting/webhook-endpoints/{id}/recover", "recover_endpoint", RecoverEndpoint(id),
        Bearer(EndpointsWrite),
        "Requeue every delivery to this endpoint that gave up since a time (409 while it is disabled)",
        "RecoverRequest"),
    route!("POST", "/api/v1/alerting/webhook-endpoints/{id}/preview", "preview_endpoint", PreviewEndpoint(id),
        Bearer(EndpointsRead),
        "The exact request a delivery of this alert (a sample when the body is empty) would send now, in the endpoint's format; secrets masked",
        "PreviewRequest"),
    route!("POST", "/api/v1/alerting/alerts", "ingest_alert", IngestAlert,
        Bearer(AlertsWrite),
        "Accept an alert: one durable message, a delivery per enabled endpoint",
        "Alert"),
    route!("POST", "/api/v1/alerting/alertmanager", "ingest_alertmanager", IngestAlertmanager,
        BearerOrBasic(AlertsWrite),
        "Accept an Alertmanager webhook payload (version 4); bearer or basic auth",
        "AlertmanagerPayload"),
    route!("POST", "/api/v1/alerting/messages/{id}/resend", "resend_message", ResendMessage(id),
        Bearer(AlertsWrite), "Requeue a message's deliveries that gave up"),
    route!("POST", "/api/v1/tokens", "create_token", CreateToken,
        Bearer(Admin), "Create an API token; the plaintext is shown this once",
        "CreateTokenRequest"),
    route!("GET", "/api/v1/tokens", "list_tokens", ListTokens,
        Bearer(Admin), "List API tokens"),
    route!("DELETE", "/api/v1/tokens/{id}", "revoke_token", RevokeToken(id),
        Bearer(Admin), "Revoke an API token (not the last admin token: 409)"),
    route!("GET", "/api/v1/admin/backup", "backup", Backup,
        Bearer(Admin), "A consistent backup of the whole store, streamed"),
    route!("GET", "/api/v1/openapi.json", "openapi", OpenApi,
        Public, "This document"),
    route!("GET", "/docs", "docs", Docs,
        Public, "A readable reference of this document"),
    route!("GET", "/console", "console_redirect", ConsoleRedirect,
        Public, "To the console, /console/"),
    Route {
        method: "GET",
        path: "/console/",
        name: "console",
        access: Public,
        summary: "The web console: a page over this API, signed in with a token (404 when [console] enabled = false)",
        body: None,
        make: Operation::Console,
    },
    Route {
        method: "GET",
        path: "/console/{file}",
        name: "console_asset",
        access: Public,
        summary: "A file of the console (its scripts and style); 304 when If-None-Match names its ETag",
        body: None,
        make: Operation::Console,
    },
    route!("GET", "/metrics", "metrics", Metrics,
        Public, "Prometheus metrics (text format); a bearer token if metrics.token is set"),
    route!("GET", "/healthz", "healthz", Healthz,
        Public, "Liveness: 200 while serving"),
    route!("GET", "/readyz", "readyz", Readyz,
        Public, "Readiness: 200 when the store can be read and written"),
];
