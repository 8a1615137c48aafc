//! The router's tests: every route resolves to its operation, wrong methods list the right
//! ones, hostile paths name nothing.

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
        O::PreviewEndpoint(String::new()),
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

#[test]
fn only_probes_documents_the_console_and_metrics_are_public() {
    let public: Vec<&str> = ROUTES
        .iter()
        .filter(|r| r.access == Access::Public)
        .map(|r| r.name)
        .collect();
    assert_eq!(
        public,
        [
            "openapi",
            "docs",
            "console_redirect",
            "console",
            "console_asset",
            "metrics",
            "healthz",
            "readyz"
        ]
    );
    let basic: Vec<&str> = ROUTES
        .iter()
        .filter(|r| matches!(r.access, Access::BearerOrBasic(_)))
        .map(|r| r.name)
        .collect();
    assert_eq!(basic, ["ingest_alertmanager"]);
    for r in ROUTES {
        assert!(!r.summary.is_empty(), "{}", r.name);
        // A body schema only where the method takes a body.
        assert!(
            r.body.is_none() || matches!(r.method, "POST" | "PATCH"),
            "{}",
            r.name
        );
    }
}
