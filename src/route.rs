//! Route and id parsing: method and path in, the operation out, or 404 / 405 with `Allow`.
//! Pure, so the fuzz targets call exactly what the server calls.
//!
//! [`ROUTES`] is the one list of what the API serves: the resolver walks it, and the OpenAPI
//! document, the `Allow` header and the metrics' `route` label are all made from it, so none of
//! them can name a route the server lacks, or miss one it has. `HEAD` is served for every `GET`.

use crate::error::ApiError;

/// Every operation the API serves.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    Healthz,
    Readyz,
    Metrics,
    OpenApi,
    Docs,
    CreateEndpoint,
    ListEndpoints,
    GetEndpoint(String),
    UpdateEndpoint(String),
    DeleteEndpoint(String),
    RotateSecret(String),
    CreateToken,
    ListTokens,
    RevokeToken(String),
    IngestAlert,
    IngestAlertmanager,
    ListAttempts(String),
    TestEndpoint(String),
    RecoverEndpoint(String),
    ResendMessage(String),
    Backup,
    ConsoleRedirect,
    /// A console file (`""`: the page).
    Console(String),
}

/// One route: a method, a path template (`{id}` for an id segment) and the operation.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    /// The operation's name: its `operationId`, and the `route` label of the metrics.
    pub name: &'static str,
    make: fn(String) -> Operation,
}

macro_rules! route {
    ($method:literal, $path:literal, $name:literal, $op:ident) => {
        Route {
            method: $method,
            path: $path,
            name: $name,
            make: |_| Operation::$op,
        }
    };
    ($method:literal, $path:literal, $name:literal, $op:ident(id)) => {
        Route {
            method: $method,
            path: $path,
            name: $name,
            make: Operation::$op,
        }
    };
}

/// Every route, in the order the API reference lists them.
pub const ROUTES: &[Route] = &[
    route!(
        "POST",
        "/api/v1/alerting/webhook-endpoints",
        "create_endpoint",
        CreateEndpoint
    ),
    route!(
        "GET",
        "/api/v1/alerting/webhook-endpoints",
        "list_endpoints",
        ListEndpoints
    ),
    route!(
        "GET",
        "/api/v1/alerting/webhook-endpoints/{id}",
        "get_endpoint",
        GetEndpoint(id)
    ),
    route!(
        "PATCH",
        "/api/v1/alerting/webhook-endpoints/{id}",
        "update_endpoint",
        UpdateEndpoint(id)
    ),
    route!(
        "DELETE",
        "/api/v1/alerting/webhook-endpoints/{id}",
        "delete_endpoint",
        DeleteEndpoint(id)
    ),
    route!(
        "POST",
        "/api/v1/alerting/webhook-endpoints/{id}/rotate-secret",
        "rotate_secret",
        RotateSecret(id)
    ),
    route!(
        "GET",
        "/api/v1/alerting/webhook-endpoints/{id}/attempts",
        "list_attempts",
        ListAttempts(id)
    ),
    route!(
        "POST",
        "/api/v1/alerting/webhook-endpoints/{id}/test",
        "test_endpoint",
        TestEndpoint(id)
    ),
    route!(
        "POST",
        "/api/v1/alerting/webhook-endpoints/{id}/recover",
        "recover_endpoint",
        RecoverEndpoint(id)
    ),
    route!(
        "POST",
        "/api/v1/alerting/alerts",
        "ingest_alert",
        IngestAlert
    ),
    route!(
        "POST",
        "/api/v1/alerting/alertmanager",
        "ingest_alertmanager",
        IngestAlertmanager
    ),
    route!(
        "POST",
        "/api/v1/alerting/messages/{id}/resend",
        "resend_message",
        ResendMessage(id)
    ),
    route!("POST", "/api/v1/tokens", "create_token", CreateToken),
    route!("GET", "/api/v1/tokens", "list_tokens", ListTokens),
    route!(
        "DELETE",
        "/api/v1/tokens/{id}",
        "revoke_token",
        RevokeToken(id)
    ),
    route!("GET", "/api/v1/admin/backup", "backup", Backup),
    route!("GET", "/api/v1/openapi.json", "openapi", OpenApi),
    route!("GET", "/docs", "docs", Docs),
    route!("GET", "/console", "console_redirect", ConsoleRedirect),
    Route {
        method: "GET",
        path: "/console/",
        name: "console",
        make: Operation::Console,
    },
    Route {
        method: "GET",
        path: "/console/{file}",
        name: "console_asset",
        make: Operation::Console,
    },
    route!("GET", "/metrics", "metrics", Metrics),
    route!("GET", "/healthz", "healthz", Healthz),
    route!("GET", "/readyz", "readyz", Readyz),
];

/// Longest id segment looked up; anything longer cannot exist.
const MAX_ID_LEN: usize = 64;

impl Operation {
    /// The name of the route this operation was resolved from (see [`Route::name`]).
    pub fn name(&self) -> &'static str {
        use Operation as O;
        match self {
            O::Healthz => "healthz",
            O::Readyz => "readyz",
            O::Metrics => "metrics",
            O::OpenApi => "openapi",
            O::Docs => "docs",
            O::CreateEndpoint => "create_endpoint",
            O::ListEndpoints => "list_endpoints",
            O::GetEndpoint(_) => "get_endpoint",
            O::UpdateEndpoint(_) => "update_endpoint",
            O::DeleteEndpoint(_) => "delete_endpoint",
            O::RotateSecret(_) => "rotate_secret",
            O::CreateToken => "create_token",
            O::ListTokens => "list_tokens",
            O::RevokeToken(_) => "revoke_token",
            O::IngestAlert => "ingest_alert",
            O::IngestAlertmanager => "ingest_alertmanager",
            O::ListAttempts(_) => "list_attempts",
            O::TestEndpoint(_) => "test_endpoint",
            O::RecoverEndpoint(_) => "recover_endpoint",
            O::ResendMessage(_) => "resend_message",
            O::Backup => "backup",
            O::ConsoleRedirect => "console_redirect",
            O::Console(file) if file.is_empty() => "console",
            O::Console(_) => "console_asset",
        }
    }
}

/// Whether `path` fits `template`; the id segment, if the template has one.
fn matches(template: &str, path: &str) -> Option<Option<String>> {
    let mut id = None;
    let mut want = template.split('/');
    let mut got = path.split('/');
    loop {
        match (want.next(), got.next()) {
            (None, None) => return Some(id),
            (Some("{id}"), Some(segment)) => id = Some(id_segment(segment)?),
            (Some("{file}"), Some(segment)) => id = Some(file_segment(segment)?),
            (Some(w), Some(g)) if w == g => {}
            _ => return None,
        }
    }
}

/// Resolves a request line to an operation. `HEAD` resolves like `GET`.
///
/// # Errors
/// [`ApiError::NotFound`] for an unknown path, [`ApiError::MethodNotAllowed`] (with the allowed
/// methods) for a known path and the wrong method.
pub fn resolve(method: &str, path: &str) -> Result<Operation, ApiError> {
    let not_found = || ApiError::NotFound(format!("no route for {}", truncate(path)));
    // Cheap refusals first: every route starts with one of these, and none ends with '/'.
    if !(path.starts_with("/api/v1/")
        || path.starts_with("/console")
        || matches!(path, "/healthz" | "/readyz" | "/metrics" | "/docs"))
        || (path.len() > 1 && path.ends_with('/') && path != "/console/")
    {
        return Err(not_found());
    }
    let wanted = if method == "HEAD" { "GET" } else { method };
    let mut allowed: Vec<&'static str> = Vec::new();
    for route in ROUTES {
        if let Some(id) = matches(route.path, path) {
            if route.method == wanted {
                return Ok((route.make)(id.unwrap_or_default()));
            }
            allowed.push(route.method);
        }
    }
    if allowed.is_empty() {
        return Err(not_found());
    }
    if allowed.contains(&"GET") {
        allowed.push("HEAD");
    }
    Err(ApiError::MethodNotAllowed {
        allow: allowed.join(", "),
    })
}

/// An id path segment: 1-64 characters of `[A-Za-z0-9_-]`. Anything else names no resource.
fn id_segment(s: &str) -> Option<String> {
    let ok = !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| s.to_owned())
}

/// A console file name: 1-64 characters of `[a-z0-9._-]`, not starting with a dot.
fn file_segment(s: &str) -> Option<String> {
    let ok = !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    ok.then(|| s.to_owned())
}

fn truncate(path: &str) -> String {
    let mut s: String = path.chars().take(100).collect();
    if s.len() < path.len() {
        s.push('…');
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn resolves_known_routes() {
        assert_eq!(
            resolve("POST", "/api/v1/alerting/webhook-endpoints").unwrap(),
            Operation::CreateEndpoint
        );
        assert_eq!(
            resolve("PATCH", "/api/v1/alerting/webhook-endpoints/wh-1").unwrap(),
            Operation::UpdateEndpoint("wh-1".into())
        );
        assert_eq!(
            resolve(
                "POST",
                "/api/v1/alerting/webhook-endpoints/wh-1/rotate-secret"
            )
            .unwrap(),
            Operation::RotateSecret("wh-1".into())
        );
        assert_eq!(
            resolve("DELETE", "/api/v1/tokens/tok-1").unwrap(),
            Operation::RevokeToken("tok-1".into())
        );
    }

    #[test]
    fn wrong_method_lists_allowed() {
        assert_eq!(
            resolve("PUT", "/api/v1/alerting/webhook-endpoints/wh-1"),
            Err(ApiError::MethodNotAllowed {
                allow: "GET, PATCH, DELETE, HEAD".into()
            })
        );
        assert_eq!(
            resolve("DELETE", "/api/v1/alerting/webhook-endpoints"),
            Err(ApiError::MethodNotAllowed {
                allow: "POST, GET, HEAD".into()
            })
        );
        assert_eq!(
            resolve("GET", "/api/v1/alerting/alerts"),
            Err(ApiError::MethodNotAllowed {
                allow: "POST".into()
            })
        );
    }

    #[test]
    fn head_is_get() {
        for route in ROUTES.iter().filter(|r| r.method == "GET") {
            let path = route
                .path
                .replace("{id}", "x-1")
                .replace("{file}", "app.js");
            assert_eq!(
                resolve("HEAD", &path).unwrap(),
                resolve("GET", &path).unwrap()
            );
        }
        assert!(resolve("HEAD", "/api/v1/alerting/alerts").is_err());
    }

    #[test]
    fn console_paths() {
        assert_eq!(
            resolve("GET", "/console/").unwrap(),
            Operation::Console(String::new())
        );
        assert_eq!(
            resolve("GET", "/console/app.js").unwrap(),
            Operation::Console("app.js".into())
        );
        assert_eq!(
            resolve("GET", "/console").unwrap(),
            Operation::ConsoleRedirect
        );
        for bad in [
            "/console/.env",
            "/console/a/b",
            "/console/App.js",
            "/console//",
            "/consolex",
            "/console/app.js/",
        ] {
            assert!(
                matches!(resolve("GET", bad), Err(ApiError::NotFound(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            resolve("POST", "/console/"),
            Err(ApiError::MethodNotAllowed { .. })
        ));
    }

    /// The table and the operations agree: each row resolves to an operation of its name, and
    /// every operation has a row (the match below must name every variant).
    #[test]
    fn every_route_resolves_and_every_operation_has_a_route() {
        use Operation as O;
        for route in ROUTES {
            let path = route
                .path
                .replace("{id}", "id-1")
                .replace("{file}", "app.js");
            let op = resolve(route.method, &path).unwrap();
            assert_eq!(op.name(), route.name, "{} {}", route.method, route.path);
        }
        let all = [
            O::Healthz,
            O::Readyz,
            O::Metrics,
            O::OpenApi,
            O::Docs,
            O::CreateEndpoint,
            O::ListEndpoints,
            O::GetEndpoint(String::new()),
            O::UpdateEndpoint(String::new()),
            O::DeleteEndpoint(String::new()),
            O::RotateSecret(String::new()),
            O::CreateToken,
            O::ListTokens,
            O::RevokeToken(String::new()),
            O::IngestAlert,
            O::IngestAlertmanager,
            O::ListAttempts(String::new()),
            O::TestEndpoint(String::new()),
            O::RecoverEndpoint(String::new()),
            O::ResendMessage(String::new()),
            O::Backup,
            O::ConsoleRedirect,
            O::Console(String::new()),
            O::Console("app.js".into()),
        ];
        for op in &all {
            assert!(
                ROUTES.iter().any(|r| r.name == op.name()),
                "{op:?} has no route"
            );
        }
        assert_eq!(all.len(), ROUTES.len());
    }

    #[test]
    fn a_trailing_slash_is_404_on_every_route() {
        for p in [
            "/healthz",
            "/readyz",
            "/api/v1/alerting/webhook-endpoints",
            "/api/v1/alerting/webhook-endpoints/wh-1",
            "/api/v1/alerting/webhook-endpoints/wh-1/rotate-secret",
            "/api/v1/alerting/webhook-endpoints/wh-1/attempts",
            "/api/v1/alerting/webhook-endpoints/wh-1/test",
            "/api/v1/tokens",
            "/api/v1/tokens/tok-1",
            "/api/v1/alerting/alerts",
            "/api/v1/alerting/alertmanager",
            "/api/v1/alerting/messages/msg_1/resend",
            "/api/v1/admin/backup",
        ] {
            assert!(
                !matches!(resolve("GET", p), Err(ApiError::NotFound(_))),
                "{p} is a route"
            );
            let slash = format!("{p}/");
            assert!(
                matches!(resolve("GET", &slash), Err(ApiError::NotFound(_))),
                "{slash}"
            );
        }
    }

    #[test]
    fn unknown_paths_are_404() {
        for p in [
            "/",
            "/api/v1/alerting/webhook-endpoints/",
            "/api/v1/alerting/webhook-endpoints/wh-1/nope",
            "/api/v1/alerting/webhook-endpoints/a%20b",
            "/api/v1/alerting/webhook-endpointsX",
            "/api/v1/tokens/a/b",
        ] {
            assert!(
                matches!(resolve("GET", p), Err(ApiError::NotFound(_))),
                "{p}"
            );
        }
    }
}
