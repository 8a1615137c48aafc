//! `/api/v1/alerting/webhook-endpoints`: create (the seed contract), list, get, update, delete,
//! rotate-secret, test, recover.

use hyper::StatusCode;
use serde_json::json;

use std::sync::Arc;

use super::{json, json_secret, no_content, off_runtime, secret_error, store_error, HttpResponse};
use crate::app::App;
use crate::delivery::TestSendError;
use crate::error::ApiError;
use crate::ids::{new_id, ENDPOINT_PREFIX};
use crate::model::{
    ClientCertificate, Endpoint, Format, FormatOptions, SealedHeader, SigningAlgorithm,
};
use crate::parse::{self, ClientCertificateInput, EndpointOptions};
use crate::plugins::{Inline, Rejection};
use crate::routing::Matchers;
use crate::secrets::SigningSecret;
use crate::store::StoreError;
use crate::time::now_ms;

/// Runs the URL-policy plugins: inline within a budget of well under a millisecond (a fast
/// check costs microseconds, less than a thread hand-off), and on the blocking pool from the
/// first plugin that needs more, so a slow or looping plugin never holds an async worker.
async fn check_plugins(
    app: &App,
    url: &str,
    name: &str,
    operation: &'static str,
) -> Result<(), ApiError> {
    let set = app.plugins.current();
    if set.is_empty() {
        return Ok(());
    }
    let slot = app.plugins.slots(&set).await;
    let started = std::time::Instant::now();
    let outcome = match set.check_inline(url, name, operation) {
        Inline::Done(outcome) => outcome,
        Inline::Offload(from) => {
            let (url, name, set) = (url.to_owned(), name.to_owned(), set.clone());
            tokio::task::spawn_blocking(move || {
                let outcome = set.check_from(from, &url, &name, operation);
                drop(slot);
                outcome
            })
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "plugin task failed");
                ApiError::Internal
            })?
        }
    };
    if let Some(m) = &app.metrics {
        m.plugin_duration.observe(started.elapsed().as_secs_f64());
        // The chain stops at the plugin that denied or failed; those before it allowed.
        let stopped_at = match &outcome {
            Ok(()) => None,
            Err(Rejection::Denied { plugin, .. }) => Some((plugin.as_str(), "deny")),
            Err(Rejection::Failed { plugin, .. }) => Some((plugin.as_str(), "fail")),
        };
        for plugin in set.names() {
            let verdict = match stopped_at {
                Some((p, verdict)) if p == plugin => verdict,
                _ => "allow",
            };
            m.plugin_checks
                .get_or_create(&crate::metrics::PluginLabels {
                    plugin: plugin.to_owned(),
                    verdict,
                })
                .inc();
            if stopped_at.is_some_and(|(p, _)| p == plugin) {
                break;
            }
        }
    }
    match outcome {
        Ok(()) => Ok(()),
        Err(Rejection::Denied { plugin, reason }) => Err(ApiError::field(
            "url",
            format!("is denied by plugin '{plugin}': {reason}"),
        )),
        Err(Rejection::Failed { plugin, kind, .. }) => Err(ApiError::Unavailable(format!(
            "URL-policy plugin '{plugin}' failed ({}), so the change was not made",
            kind.as_str()
        ))),
    }
}

/// Compiles label matchers (already parsed) once, for the store's routing table: on the
/// blocking pool, a bounded number at a time, when any is a regular expression.
async fn compile_matchers(app: &App, matchers: Vec<String>) -> Result<Arc<Matchers>, ApiError> {
    let compiled = if Matchers::needs_compiling(&matchers) {
        off_runtime(app, move || Matchers::compile(&matchers)).await?
    } else {
        Matchers::compile(&matchers)
    };
    compiled.map(Matchers::shared).map_err(|(i, why)| {
        ApiError::field(
            format!("labelMatchers[{i}]"),
            format!("cannot be compiled: {why}"),
        )
    })
}

/// 404 naming the endpoint id.
fn not_found(id: &str) -> impl Fn(StoreError) -> ApiError + '_ {
    move |e| match e {
        StoreError::NotFound => ApiError::NotFound(format!("no webhook endpoint with id '{id}'")),
        other => store_error(other),
    }
}

/// The supplied secret, or a freshly generated one for `algorithm`.
fn secret_or_generate(
    app: &App,
    supplied: Option<SigningSecret>,
    algorithm: SigningAlgorithm,
) -> Result<SigningSecret, ApiError> {
    match supplied {
        Some(s) => Ok(s),
        None => SigningSecret::generate(&app.rng, algorithm).map_err(secret_error),
    }
}

/// The options' headers and client certificate as stored: values and key sealed for endpoint
/// `id`, the certificate and key checked by rustls to belong together (422 if not).
struct Sealed {
    headers: Option<Vec<SealedHeader>>,
    client_certificate: Option<Option<ClientCertificate>>,
}

fn seal_options(app: &App, id: &str, options: &EndpointOptions) -> Result<Sealed, ApiError> {
    let headers = options
        .headers
        .as_ref()
        .map(|hs| {
            hs.iter()
                .map(|(name, value)| app.vault.seal_header(id, name, value))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()
        .map_err(secret_error)?;
    let client_certificate = match &options.client_certificate {
        None => None,
        Some(None) => Some(None),
        Some(Some(c)) => Some(Some(seal_certificate(app, id, c)?)),
    };
    Ok(Sealed {
        headers,
        client_certificate,
    })
}

/// The format options as stored: the routing key sealed for endpoint `id`.
fn seal_format_options(
    app: &App,
    id: &str,
    input: Option<&parse::FormatOptionsInput>,
) -> Result<FormatOptions, ApiError> {
    let Some(input) = input else {
        return Ok(FormatOptions::default());
    };
    Ok(FormatOptions {
        routing_key: input
            .routing_key
            .as_deref()
            .map(|k| app.vault.seal_option(id, "routingKey", k))
            .transpose()
            .map_err(secret_error)?,
        severity: input.severity.clone(),
    })
}

/// The format options a PATCH leaves `stored` with (`None`: unchanged), checked against the
/// format it will have: a PATCH's own options, or the stored ones when the format stays or
/// becomes PagerDuty (which needs its key), or none when another format takes their place.
///
/// # Errors
/// 422 on `formatOptions` or `formatOptions.routingKey`.
fn format_options_after(
    app: &App,
    stored: &Endpoint,
    patch: &EndpointOptions,
) -> Result<Option<FormatOptions>, ApiError> {
    let format = patch.format.as_ref().unwrap_or(&stored.format);
    if let Some(input) = &patch.format_options {
        if let Some(e) = parse::check_format_options(format, Some(input)) {
            return Err(ApiError::Validation(vec![e]));
        }
        return seal_format_options(app, &stored.id, Some(input)).map(Some);
    }
    if *format != Format::Pagerduty {
        return Ok((!stored.format_options.is_empty()).then(FormatOptions::default));
    }
    let kept = parse::FormatOptionsInput {
        routing_key: stored
            .format_options
            .routing_key
            .as_ref()
            .map(|k| k.mask.clone()),
        severity: stored.format_options.severity.clone(),
    };
    match parse::check_format_options(format, Some(&kept)) {
        Some(e) => Err(ApiError::Validation(vec![e])),
        None => Ok(None),
    }
}

fn seal_certificate(
    app: &App,
    id: &str,
    c: &ClientCertificateInput,
) -> Result<ClientCertificate, ApiError> {
    crate::tls::certified_key(&c.chain_pem, &c.key_pem)
        .map_err(|why| ApiError::field("clientCertificate", why))?;
    Ok(ClientCertificate {
        chain_pem: c.chain_pem.clone(),
        sealed_key: app
            .vault
            .seal_client_key(id, &c.key_pem)
            .map_err(secret_error)?,
        fingerprint: c.fingerprint.clone(),
        not_after_ms: c.not_after_ms,
        chain_length: c.chain_der.len(),
    })
}

/// An endpoint as the API shows it: its stored fields, then its delivery circuit.
fn view<'e>(app: &App, endpoint: &'e Endpoint) -> crate::model::EndpointView<'e> {
    endpoint.view(app.delivery.circuit(&endpoint.id))
}

/// An endpoint's answer, `{"endpoint": ...}`, with the secret's plaintext after a create.
/// Written straight out (a `json!` value built first took a create 4 % of its CPU).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct EndpointAnswer<'a> {
    endpoint: crate::model::EndpointView<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signing_secret_plaintext: Option<&'a str>,
}

fn answer<'a>(app: &App, endpoint: &'a Endpoint) -> EndpointAnswer<'a> {
    EndpointAnswer {
        endpoint: view(app, endpoint),
        signing_secret_plaintext: None,
    }
}

/// The create answer: the endpoint and, this once, the secret's plaintext.
fn with_plaintext(app: &App, endpoint: &Endpoint, secret: &SigningSecret) -> HttpResponse {
    json_secret(&EndpointAnswer {
        signing_secret_plaintext: Some(secret.expose()),
        ..answer(app, endpoint)
    })
}

/// A `plugin:<name>` format must name a transformer of the configuration.
///
/// # Errors
/// 422 on `format`, listing the transformers there are.
fn check_transformer(app: &App, format: Option<&Format>) -> Result<(), ApiError> {
    let Some(name) = format.and_then(Format::plugin) else {
        return Ok(());
    };
    let set = app.transformers.current();
    if set.has(name) {
        return Ok(());
    }
    let names = set.names();
    let there = if names.is_empty() {
        "it has none".to_owned()
    } else {
        format!("it has {}", names.join(", "))
    };
    Err(ApiError::field(
        "format",
        format!("names no transformer of the configuration's [[transformers]] ({there})"),
    ))
}

pub(super) async fn create(app: &App, body: &[u8]) -> Result<HttpResponse, ApiError> {
    let req = parse::create_endpoint(body, &app.policy())?;
    check_transformer(app, req.options.format.as_ref())?;
    check_plugins(app, &req.url, &req.name, "create").await?;
    let matchers =
        compile_matchers(app, req.options.label_matchers.clone().unwrap_or_default()).await?;
    let now = now_ms();
    let id = new_id(ENDPOINT_PREFIX, now, &app.rng);
    let secret = secret_or_generate(app, req.signing_secret, req.signing_algorithm)?;
    let sealed = seal_options(app, &id, &req.options)?;
    let format_options = seal_format_options(app, &id, req.options.format_options.as_ref())?;
    let options = req.options;
    // The parser chose it from the URL's host when the body left it out.
    let format = options.format.unwrap_or_default();
    let endpoint = Endpoint {
        secret: app.vault.seal_secret(&id, &secret).map_err(secret_error)?,
        id,
        name: req.name,
        url: req.url,
        signing_enabled: req.signing_enabled,
        previous_secrets: Vec::new(),
        created_at_ms: now,
        updated_at_ms: now,
        disabled: false,
        failing_since_ms: None,
        filter_types: options.filter_types.unwrap_or_default(),
        label_matchers: options.label_matchers.unwrap_or_default(),
        headers: sealed.headers.unwrap_or_default(),
        rate_limit: options.rate_limit.flatten(),
        client_certificate: sealed.client_certificate.flatten(),
        format,
        format_options,
    };
    app.store
        .create_endpoint(endpoint.clone(), matchers)
        .await
        .map_err(store_error)?;
    tracing::info!(endpoint = %endpoint.id, "webhook endpoint created");
    Ok(with_plaintext(app, &endpoint, &secret))
}

pub(super) async fn list(app: &App, query: Option<&str>) -> Result<HttpResponse, ApiError> {
    let page = parse::list_query(query, ENDPOINT_PREFIX, app.page_limits())?;
    let found = app
        .store
        .list_endpoints(page.cursor.as_deref(), page.limit)
        .await
        .map_err(store_error)?;
    let views: Vec<_> = found.items.iter().map(|e| view(app, e)).collect();
    Ok(json(
        StatusCode::OK,
        &json!({"endpoints": views, "nextCursor": found.next}),
    ))
}

pub(super) async fn get(app: &App, id: &str) -> Result<HttpResponse, ApiError> {
    let endpoint = app
        .store
        .get_endpoint(id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| not_found(id)(StoreError::NotFound))?;
    Ok(json(StatusCode::OK, &answer(app, &endpoint)))
}

pub(super) async fn update(app: &App, id: String, body: &[u8]) -> Result<HttpResponse, ApiError> {
    let req = parse::update_endpoint(body, &app.policy())?;
    check_transformer(app, req.options.format.as_ref())?;
    // A change that costs work before the write (URL plugins, compiling matchers) reads the
    // endpoint first, so a PATCH to an id that does not exist costs nothing.
    let touches_format = req.options.format.is_some() || req.options.format_options.is_some();
    let stored = if req.url.is_some() || req.options.label_matchers.is_some() || touches_format {
        Some(
            app.store
                .get_endpoint(&id)
                .await
                .map_err(store_error)?
                .ok_or_else(|| not_found(&id)(StoreError::NotFound))?,
        )
    } else {
        None
    };
    let sealed = seal_options(app, &id, &req.options)?;
    let format_options = match (&stored, touches_format) {
        (Some(stored), true) => format_options_after(app, stored, &req.options)?,
        _ => None,
    };
    let patch = crate::model::EndpointPatch {
        name: req.name,
        url: req.url,
        signing_enabled: req.signing_enabled,
        disabled: req.disabled,
        filter_types: req.options.filter_types,
        label_matchers: req.options.label_matchers,
        headers: sealed.headers,
        rate_limit: req.options.rate_limit,
        client_certificate: sealed.client_certificate,
        format: req.options.format,
        format_options,
    };
    // Only a URL that changes: a client that sends the whole object back sends the stored one.
    if let (Some(url), Some(stored)) = (&patch.url, &stored) {
        if *url != stored.url {
            let name = patch.name.as_ref().unwrap_or(&stored.name);
            check_plugins(app, url, name, "update").await?;
        }
    }
    let matchers = match &patch.label_matchers {
        Some(m) => Some(compile_matchers(app, m.clone()).await?),
        None => None,
    };
    let enables = patch.disabled == Some(false);
    let endpoint = app
        .store
        .update_endpoint(id.clone(), patch, now_ms(), matchers)
        .await
        .map_err(not_found(&id))?;
    if enables {
        // A person says the receiver is back: deliver at once, no waiting for a probe.
        app.delivery.resume(&id);
    }
    tracing::info!(endpoint = %id, "webhook endpoint updated");
    Ok(json(StatusCode::OK, &answer(app, &endpoint)))
}

pub(super) async fn delete(app: &App, id: String) -> Result<HttpResponse, ApiError> {
    app.store
        .delete_endpoint(id.clone())
        .await
        .map_err(not_found(&id))?;
    app.delivery.forget(&id);
    tracing::info!(endpoint = %id, "webhook endpoint deleted");
    Ok(no_content())
}

pub(super) async fn attempts(
    app: &App,
    id: &str,
    query: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    if app
        .store
        .get_endpoint(id)
        .await
        .map_err(store_error)?
        .is_none()
    {
        return Err(not_found(id)(StoreError::NotFound));
    }
    let page = parse::list_query(query, crate::ids::ATTEMPT_PREFIX, app.page_limits())?;
    let found = app
        .store
        .list_attempts(id, page.cursor.as_deref(), page.limit)
        .await
        .map_err(store_error)?;
    let views: Vec<_> = found
        .items
        .iter()
        .map(crate::model::Attempt::view)
        .collect();
    Ok(json(
        StatusCode::OK,
        &json!({"attempts": views, "nextCursor": found.next}),
    ))
}

/// Sends a signed `hookd.test` event now and answers with the attempt (see
/// [`crate::delivery::Delivery::test_send`]).
pub(super) async fn test(app: &App, id: &str) -> Result<HttpResponse, ApiError> {
    let endpoint = app
        .store
        .get_endpoint(id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| not_found(id)(StoreError::NotFound))?;
    match app.delivery.test_send(&endpoint).await {
        Ok(attempt) => Ok(json(StatusCode::OK, &json!({"attempt": attempt.view()}))),
        Err(TestSendError::Busy) => Err(ApiError::Unavailable(format!(
            "endpoint '{id}' has as many deliveries in flight as delivery.per_endpoint allows (or hookd has delivery.max_in_flight); retry shortly"
        ))),
        Err(TestSendError::Store(e)) => Err(store_error(e)),
    }
}

pub(super) async fn rotate(app: &App, id: String, body: &[u8]) -> Result<HttpResponse, ApiError> {
    let rotation = parse::rotate_secret(body)?;
    let algorithm = match (rotation.algorithm, &rotation.secret) {
        (Some(a), _) => a,
        (None, Some(s)) => s.algorithm(),
        (None, None) => {
            app.store
                .get_endpoint(&id)
                .await
                .map_err(store_error)?
                .ok_or_else(|| not_found(&id)(StoreError::NotFound))?
                .secret
                .algorithm
        }
    };
    let secret = secret_or_generate(app, rotation.secret, algorithm)?;
    let sealed = app.vault.seal_secret(&id, &secret).map_err(secret_error)?;
    let grace_ms = i64::try_from(app.config().endpoints.rotation_grace_secs)
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000);
    let endpoint = app
        .store
        .rotate_secret(id.clone(), sealed, now_ms(), grace_ms)
        .await
        .map_err(not_found(&id))?;
    tracing::info!(endpoint = %id, "signing secret rotated");
    // Until when the replaced secret still signs (none without a grace period).
    let previous_until = endpoint
        .previous_secrets
        .first()
        .and_then(|s| s.expires_at_ms)
        .map(crate::time::rfc3339);
    Ok(json_secret(&json!({
        "endpoint": view(app, &endpoint),
        "signingSecretPlaintext": secret.expose(),
        "previousSecretValidUntil": previous_until,
    })))
}

/// The request a delivery of the body's alert (a sample one when it is empty) would send now.
pub(super) async fn preview(app: &App, id: &str, body: &[u8]) -> Result<HttpResponse, ApiError> {
    let endpoint = app
        .store
        .get_endpoint(id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| not_found(id)(StoreError::NotFound))?;
    let (event_type, data) = match parse::preview_alert(body)? {
        Some(alert) => (alert.event_type, alert.data),
        None => (
            "alertmanager.firing".to_owned(),
            crate::format::alert::sample_group(id),
        ),
    };
    let request = app
        .delivery
        .preview(&endpoint, &event_type, data)
        .await
        .map_err(|why| ApiError::field("format", why))?;
    Ok(json(StatusCode::OK, &json!({ "request": request })))
}

/// Requeues every delivery to the endpoint that gave up since `since` (Svix's recover).
pub(super) async fn recover(app: &App, id: String, body: &[u8]) -> Result<HttpResponse, ApiError> {
    let now = now_ms();
    let since = parse::recover(body, now)?;
    let requeued = app
        .store
        .recover(id.clone(), since, now, RECOVER_BATCH)
        .await
        .map_err(not_found(&id))?;
    if requeued > 0 {
        app.delivery.wake();
    }
    tracing::info!(endpoint = %id, requeued, "deliveries recovered");
    Ok(super::accepted(
        &json!({"endpointId": id, "deliveries": requeued}),
    ))
}

/// Deliveries requeued per store transaction by a recover.
const RECOVER_BATCH: usize = 1000;
