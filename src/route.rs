//! Route and id parsing: method and path in, the operation out, or 404 / 405 with `Allow`.
//! Pure, so the fuzz targets call exactly what the server calls.
//!
//! [`ROUTES`] is the one list of what the API serves: the resolver walks it, `authorize` reads
//! each row's [`Access`], and the OpenAPI document, the `Allow` header and the metrics' `route`
//! label are all made from it, so none of them can name a route the server lacks, miss one it
//! has, or disagree on who may call it. `HEAD` is served for every `GET`.

mod table;

use crate::error::ApiError;
use crate::model::Scope;

pub use table::ROUTES;

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
    PreviewEndpoint(String),
    ResendMessage(String),
    Backup,
    ConsoleRedirect,
    /// A console file (`""`: the page).
    Console(String),
}

/// One route: a method, a path template (`{id}` for an id segment), the operation, who may
/// call it, and what the API reference says of it.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    /// The operation's name: its `operationId`, and the `route` label of the metrics.
    pub name: &'static str,
    /// Who may call it: every row says, so no route is left to a default.
    pub access: Access,
    /// One line for the API reference.
    pub summary: &'static str,
    /// The name of its request body's schema in the OpenAPI document, if it takes a body.
    pub body: Option<&'static str>,
    make: fn(String) -> Operation,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (probes, the documents, the console's files; `/metrics` checks its own token).
    Public,
    /// A bearer token with this scope (or `admin`).
    Bearer(Scope),
    /// As [`Access::Bearer`], or the token as a basic credential's password (Alertmanager can
    /// only send basic auth).
    BearerOrBasic(Scope),
}

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
            O::PreviewEndpoint(_) => "preview_endpoint",
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
    resolve_route(method, path).map(|(_, op)| op)
}

/// [`resolve`], with the route's row.
///
/// # Errors
/// As [`resolve`].
pub fn resolve_route(method: &str, path: &str) -> Result<(&'static Route, Operation), ApiError> {
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
                return Ok((route, (route.make)(id.unwrap_or_default())));
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
mod tests;
