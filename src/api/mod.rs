//! The HTTP API: route, authenticate, read the body, call the handler, and turn every error into
//! `application/problem+json`. Handlers live one file per resource.

mod admin;
mod alerts;
pub mod body;
pub mod console;
pub mod docs;
mod endpoints;
#[cfg(test)]
pub mod openapi;
mod tokens;

use http_body_util::{BodyExt as _, Limited};
use hyper::body::{Body as HttpBody, Bytes};
use hyper::header::{
    HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE,
};
use hyper::{Request, Response, StatusCode};
use serde::Serialize;

use crate::app::App;
use crate::error::ApiError;
use crate::model::{Scope, Token};
use crate::parse;
use crate::route::{resolve_route, Access, Operation, Route};
use crate::store::StoreError;

pub use body::Body;

/// The response type of every handler.
pub type HttpResponse = Response<Body>;

/// The name of the route a response answered (the `route` of logs and metrics), as a response
/// extension; `unknown` for a path no route has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteName(pub &'static str);

/// Serves one request. Never fails: every error becomes a problem+json response.
pub async fn handle<B>(app: &App, req: Request<B>) -> HttpResponse
where
    B: HttpBody<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let (mut resp, name) = match resolve_route(req.method().as_str(), req.uri().path()) {
        Ok((route, op)) => match dispatch(app, req, route, op).await {
            Ok(resp) => (resp, route.name),
            Err(e) => (problem(&e), route.name),
        },
        Err(e) => (problem(&e), "unknown"),
    };
    resp.extensions_mut().insert(RouteName(name));
    resp
}

async fn dispatch<B>(
    app: &App,
    req: Request<B>,
    route: &Route,
    op: Operation,
) -> Result<HttpResponse, ApiError>
where
    B: HttpBody<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    use Operation as O;
    let (needed, allow_basic) = match route.access {
        Access::Public => return public(app, &req, op).await,
        Access::Bearer(scope) => (scope, false),
        // Alertmanager can only send basic auth: there the token may be the password.
        Access::BearerOrBasic(scope) => (scope, true),
    };
    authorize(app, &req, needed, allow_basic).await?;
    let query = req.uri().query().map(str::to_owned);
    let limit = BodyLimit::of(app, &op);
    match op {
        O::ListEndpoints => endpoints::list(app, query.as_deref()).await,
        O::GetEndpoint(id) => endpoints::get(app, &id).await,
        O::DeleteEndpoint(id) => endpoints::delete(app, id).await,
        O::CreateEndpoint => endpoints::create(app, &read_body(app, req, true, limit).await?).await,
        O::UpdateEndpoint(id) => {
            endpoints::update(app, id, &read_body(app, req, true, limit).await?).await
        }
        O::RotateSecret(id) => {
            endpoints::rotate(app, id, &read_body(app, req, false, limit).await?).await
        }
        O::ListTokens => tokens::list(app, query.as_deref()).await,
        O::CreateToken => tokens::create(app, &read_body(app, req, true, limit).await?).await,
        O::RevokeToken(id) => tokens::revoke(app, id).await,
        O::IngestAlert => alerts::native(app, &read_body(app, req, true, limit).await?).await,
        O::IngestAlertmanager => {
            alerts::alertmanager(app, &read_body(app, req, true, limit).await?).await
        }
        O::ResendMessage(id) => alerts::resend(app, id).await,
        O::PreviewEndpoint(id) => {
            endpoints::preview(app, &id, &read_body(app, req, false, limit).await?).await
        }
        O::Backup => admin::backup(app),
        O::ListAttempts(id) => endpoints::attempts(app, &id, query.as_deref()).await,
        O::TestEndpoint(id) => endpoints::test(app, &id).await,
        O::RecoverEndpoint(id) => {
            endpoints::recover(app, id, &read_body(app, req, true, limit).await?).await
        }
        O::Healthz
        | O::Readyz
        | O::OpenApi
        | O::Docs
        | O::Metrics
        | O::ConsoleRedirect
        | O::Console(_) => Err(ApiError::Internal),
    }
}

/// The routes anyone may call: probes, the documents, the console, `/metrics` (which checks
/// its own token).
async fn public<B>(app: &App, req: &Request<B>, op: Operation) -> Result<HttpResponse, ApiError> {
    use Operation as O;
    match op {
        O::OpenApi => Ok(bytes(
            "application/json",
            Bytes::from_static(docs::openapi()),
        )),
        O::Docs => {
            let mut resp = bytes("text/html; charset=utf-8", Bytes::from_static(docs::page()));
            if let Ok(csp) = HeaderValue::from_str(docs::csp()) {
                resp.headers_mut().insert("content-security-policy", csp);
            }
            Ok(resp)
        }
        O::Metrics => metrics(app, req).await,
        O::ConsoleRedirect | O::Console(_) if !app.config().console.enabled => Err(
            ApiError::NotFound("the console is off ([console] enabled = false)".into()),
        ),
        O::ConsoleRedirect => Ok(console::redirect()),
        O::Console(file) => {
            let tag = req
                .headers()
                .get(hyper::header::IF_NONE_MATCH)
                .map(HeaderValue::as_bytes);
            console::serve(&file, tag)
        }
        O::Healthz => Ok(json(StatusCode::OK, &serde_json::json!({"status": "ok"}))),
        O::Readyz => {
            match app.store.readiness().await {
                Ok(()) => Ok(json(
                    StatusCode::OK,
                    &serde_json::json!({"status": "ready"}),
                )),
                // Why (the data directory's path, its free bytes) only for a caller with a
                // valid token, of any scope; a probe without one learns only that it is not.
                Err(reason) => Err(ApiError::Unavailable(
                    if matches!(
                        authorize(app, req, Scope::Admin, false).await,
                        Ok(_) | Err(ApiError::Forbidden(_))
                    ) {
                        reason
                    } else {
                        "not ready: the store cannot take writes now (the log says why, and so does /readyz to a request with an API token)".into()
                    },
                )),
            }
        }
        // A token operation in a row marked public: hookd's bug, refused rather than served.
        _ => Err(ApiError::Internal),
    }
}

/// `GET /metrics`: 404 when metrics are off; the configured bearer token when one is set.
async fn metrics<B>(app: &App, req: &Request<B>) -> Result<HttpResponse, ApiError> {
    let Some(metrics) = &app.metrics else {
        return Err(ApiError::NotFound(
            "metrics are off ([metrics] enabled = false)".into(),
        ));
    };
    if let Some(want) = app
        .config()
        .metrics
        .token
        .as_ref()
        .and_then(crate::config::Redacted::expose)
    {
        let header = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .map(HeaderValue::as_bytes);
        let got = parse::bearer_token(header)?;
        // Compared as digests: the time taken says nothing about the token.
        let digest = |t: &str| ring::digest::digest(&ring::digest::SHA256, t.as_bytes());
        if digest(got).as_ref() != digest(want).as_ref() {
            return Err(ApiError::Unauthorized(
                "the bearer token is not the metrics token",
            ));
        }
    }
    // The store's gauges as of now (a shared database is counted here, not per gauge).
    app.store.refresh_counts().await;
    Ok(bytes(
        crate::metrics::CONTENT_TYPE,
        Bytes::from(metrics.encode()),
    ))
}

/// A 200 with `body` of `content_type`.
fn bytes(content_type: &'static str, body: Bytes) -> HttpResponse {
    let mut resp = Response::new(Body::full(body));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// Checks the bearer token (or, with `allow_basic`, a basic credential whose password is the
/// token) and that it carries `needed` (or `admin`).
async fn authorize<B>(
    app: &App,
    req: &Request<B>,
    needed: Scope,
    allow_basic: bool,
) -> Result<Token, ApiError> {
    let header = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    let presented = if allow_basic {
        parse::bearer_or_basic(header)?
    } else {
        parse::Presented::bearer(parse::bearer_token(header)?)
    };
    let token = app
        .store
        .token_by_hash(&app.vault.token_hash(&presented.token))
        .await
        .map_err(store_error)?
        .ok_or(ApiError::Unauthorized(presented.unknown))?;
    let now = crate::time::now_ms();
    if token.expired(now) {
        return Err(ApiError::Unauthorized("the bearer token has expired"));
    }
    app.token_use.note(&token.id, now);
    if token.grants(needed) {
        Ok(token)
    } else {
        Err(ApiError::Forbidden(needed.as_str()))
    }
}

/// The most a request's body may hold, and the key that says so.
#[derive(Debug, Clone, Copy)]
struct BodyLimit {
    bytes: usize,
    key: &'static str,
}

impl BodyLimit {
    /// The alert routes (and a preview, which takes an alert) take whole Alertmanager groups
    /// (`limits.max_alert_body_bytes`); the rest `limits.max_body_bytes`.
    fn of(app: &App, op: &Operation) -> Self {
        let limits = &app.config().limits;
        if matches!(
            op,
            Operation::IngestAlert | Operation::IngestAlertmanager | Operation::PreviewEndpoint(_)
        ) {
            Self {
                bytes: limits.max_alert_body_bytes,
                key: "limits.max_alert_body_bytes",
            }
        } else {
            Self {
                bytes: limits.max_body_bytes,
                key: "limits.max_body_bytes",
            }
        }
    }
}

/// Reads a JSON body within the configured size limit. With `required` false an empty body (and
/// no content type) is accepted.
async fn read_body<B>(
    app: &App,
    req: Request<B>,
    required: bool,
    BodyLimit { bytes: limit, key }: BodyLimit,
) -> Result<Bytes, ApiError>
where
    B: HttpBody<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::PayloadTooLarge { limit, key });
    }
    let json_type =
        parse::is_json_content_type(req.headers().get(CONTENT_TYPE).map(HeaderValue::as_bytes));
    let secs = app.config().limits.body_read_timeout_secs;
    let collect = Limited::new(req.into_body(), limit).collect();
    let body = tokio::time::timeout(std::time::Duration::from_secs(secs), collect)
        .await
        .map_err(|_| ApiError::RequestTimeout { secs })?
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                ApiError::PayloadTooLarge { limit, key }
            } else {
                ApiError::BadRequest(format!("the request body could not be read: {e}"))
            }
        })?
        .to_bytes();
    if !json_type && (required || !body.is_empty()) {
        return Err(ApiError::UnsupportedMediaType);
    }
    Ok(body)
}

/// Maps a store error: the caller's (404, 409) pass through; the rest are logged once here and
/// answered with a generic 500.
fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::NotFound("no such resource".into()),
        StoreError::Conflict(why) => ApiError::Conflict(why.into()),
        full @ (StoreError::Full { .. } | StoreError::Io { full: true, .. }) => {
            ApiError::InsufficientStorage(format!(
                "{full}; writes that add data are refused until space is freed (deletes and retention go on)"
            ))
        }
        StoreError::Unavailable(why) => ApiError::Unavailable(why),
        // A read that raced the store closing for a reopen after an I/O error.
        StoreError::Io { full: false, .. } => ApiError::Unavailable(
            "the store is reopening after an I/O error; retry shortly".into(),
        ),
        other => {
            tracing::error!(error = %other, "store error");
            ApiError::Internal
        }
    }
}

/// Runs CPU-bound `work` on [`App::heavy`]'s threads.
async fn off_runtime<T: Send + 'static>(
    app: &App,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    app.heavy.run(work).await.ok_or_else(|| {
        tracing::error!("CPU-bound work for a request failed (a panic, reported above)");
        ApiError::Internal
    })
}

/// Maps a secret-handling failure (random source, unsealing): logged, generic 500.
fn secret_error(e: crate::secrets::SecretError) -> ApiError {
    tracing::error!(error = %e, "secret handling failed");
    ApiError::Internal
}

fn json<T: Serialize>(status: StatusCode, body: &T) -> HttpResponse {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = Response::new(Body::full(bytes));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// A JSON response that carries a plaintext secret: never cached.
fn json_secret<T: Serialize>(body: &T) -> HttpResponse {
    let mut resp = json(StatusCode::OK, body);
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn accepted<T: Serialize>(body: &T) -> HttpResponse {
    json(StatusCode::ACCEPTED, body)
}

fn no_content() -> HttpResponse {
    let mut resp = Response::new(Body::full(Bytes::new()));
    *resp.status_mut() = StatusCode::NO_CONTENT;
    resp
}

/// The problem+json response for `e`, with `Allow` or `WWW-Authenticate` where they belong.
pub fn problem(e: &ApiError) -> HttpResponse {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = json(status, &e.problem());
    let headers = resp.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    match e {
        ApiError::MethodNotAllowed { allow } => {
            if let Ok(v) = HeaderValue::from_str(allow) {
                headers.insert(ALLOW, v);
            }
        }
        ApiError::Unauthorized(_) => {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        _ => {}
    }
    if let Some(secs) = e.retry_after() {
        headers.insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}
