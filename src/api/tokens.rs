//! `/api/v1/tokens` (scope `admin`): create (the plaintext is shown once), list, revoke.

use hyper::StatusCode;
use serde_json::json;

use super::{json, json_secret, no_content, secret_error, store_error, HttpResponse};
use crate::app::App;
use crate::error::ApiError;
use crate::ids::{new_id, TOKEN_PREFIX};
use crate::model::Token;
use crate::parse;
use crate::secrets::generate_token;
use crate::store::StoreError;
use crate::time::now_ms;

pub(super) async fn create(app: &App, body: &[u8]) -> Result<HttpResponse, ApiError> {
    let now = now_ms();
    let req = parse::create_token(body, now)?;
    let plaintext = generate_token(&app.rng).map_err(secret_error)?;
    let token = Token {
        id: new_id(TOKEN_PREFIX, now, &app.rng),
        name: req.name,
        scopes: req.scopes,
        hash: app.vault.token_hash(&plaintext).to_vec(),
        created_at_ms: now,
        expires_at_ms: req.expires_at_ms,
        last_used_at_ms: None,
    };
    app.store
        .create_token(token.clone())
        .await
        .map_err(store_error)?;
    tracing::info!(token = %token.id, "API token created");
    Ok(json_secret(&json!({
        "token": token.view(None),
        "tokenPlaintext": plaintext,
    })))
}

pub(super) async fn list(app: &App, query: Option<&str>) -> Result<HttpResponse, ApiError> {
    let page = parse::list_query(query, TOKEN_PREFIX, app.page_limits())?;
    let found = app
        .store
        .list_tokens(page.cursor.as_deref(), page.limit)
        .await
        .map_err(store_error)?;
    let views: Vec<_> = found
        .items
        .iter()
        .map(|t| t.view(app.token_use.last(&t.id)))
        .collect();
    Ok(json(
        StatusCode::OK,
        &json!({"tokens": views, "nextCursor": found.next}),
    ))
}

pub(super) async fn revoke(app: &App, id: String) -> Result<HttpResponse, ApiError> {
    app.store
        .revoke_token(id.clone(), crate::time::now_ms())
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::NotFound(format!("no token with id '{id}'")),
            other => store_error(other),
        })?;
    tracing::info!(token = %id, "API token revoked");
    Ok(no_content())
}
