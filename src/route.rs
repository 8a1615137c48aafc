//! Route and id parsing: method and path in, the operation out, or 404 / 405 with `Allow`.
//! Pure, so the fuzz targets call exactly what the server calls.

use crate::error::ApiError;

/// Every operation the API serves.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    Healthz,
    Readyz,
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
    ResendMessage(String),
    Backup,
}

const ENDPOINTS: &str = "/api/v1/alerting/webhook-endpoints";
const TOKENS: &str = "/api/v1/tokens";
const MESSAGES: &str = "/api/v1/alerting/messages";
/// Longest id segment looked up; anything longer cannot exist.
const MAX_ID_LEN: usize = 64;

/// Resolves a request line to an operation.
///
/// # Errors
/// [`ApiError::NotFound`] for an unknown path, [`ApiError::MethodNotAllowed`] (with the allowed
/// methods) for a known path and the wrong method.
pub fn resolve(method: &str, path: &str) -> Result<Operation, ApiError> {
    use Operation as O;
    let not_found = || ApiError::NotFound(format!("no route for {}", truncate(path)));
    let pick = |allow: &'static str, ops: &[(&str, O)]| -> Result<O, ApiError> {
        ops.iter()
            .find(|(m, _)| *m == method)
            .map(|(_, op)| op.clone())
            .ok_or(ApiError::MethodNotAllowed { allow })
    };
    // One rule for every route: the form with a trailing slash names nothing.
    if path.len() > 1 && path.ends_with('/') {
        return Err(not_found());
    }
    match path {
        "/healthz" => return pick("GET", &[("GET", O::Healthz)]),
        "/readyz" => return pick("GET", &[("GET", O::Readyz)]),
        ENDPOINTS => {
            return pick(
                "GET, POST",
                &[("GET", O::ListEndpoints), ("POST", O::CreateEndpoint)],
            )
        }
        TOKENS => {
            return pick(
                "GET, POST",
                &[("GET", O::ListTokens), ("POST", O::CreateToken)],
            )
        }
        "/api/v1/alerting/alerts" => return pick("POST", &[("POST", O::IngestAlert)]),
        "/api/v1/alerting/alertmanager" => return pick("POST", &[("POST", O::IngestAlertmanager)]),
        "/api/v1/admin/backup" => return pick("GET", &[("GET", O::Backup)]),
        _ => {}
    }
    if let Some(rest) = path
        .strip_prefix(ENDPOINTS)
        .and_then(|r| r.strip_prefix('/'))
    {
        let (id, tail) = rest.split_once('/').unwrap_or((rest, ""));
        let id = id_segment(id).ok_or_else(not_found)?;
        return match tail {
            "" => pick(
                "GET, PATCH, DELETE",
                &[
                    ("GET", O::GetEndpoint(id.clone())),
                    ("PATCH", O::UpdateEndpoint(id.clone())),
                    ("DELETE", O::DeleteEndpoint(id)),
                ],
            ),
            "rotate-secret" => pick("POST", &[("POST", O::RotateSecret(id))]),
            "attempts" => pick("GET", &[("GET", O::ListAttempts(id))]),
            "test" => pick("POST", &[("POST", O::TestEndpoint(id))]),
            _ => Err(not_found()),
        };
    }
    if let Some(rest) = path
        .strip_prefix(MESSAGES)
        .and_then(|r| r.strip_prefix('/'))
    {
        return match rest.split_once('/') {
            Some((id, "resend")) => {
                let id = id_segment(id).ok_or_else(not_found)?;
                pick("POST", &[("POST", O::ResendMessage(id))])
            }
            _ => Err(not_found()),
        };
    }
    if let Some(rest) = path.strip_prefix(TOKENS).and_then(|r| r.strip_prefix('/')) {
        let id = id_segment(rest).ok_or_else(not_found)?;
        return pick("DELETE", &[("DELETE", O::RevokeToken(id))]);
    }
    Err(not_found())
}

/// An id path segment: 1-64 characters of `[A-Za-z0-9_-]`. Anything else names no resource.
fn id_segment(s: &str) -> Option<String> {
    let ok = !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
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
                allow: "GET, PATCH, DELETE"
            })
        );
        assert_eq!(
            resolve("DELETE", "/api/v1/alerting/webhook-endpoints"),
            Err(ApiError::MethodNotAllowed { allow: "GET, POST" })
        );
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
