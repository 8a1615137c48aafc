//! Endpoints, API tokens and `meta`: the store's typed methods and what they do inside a write
//! transaction.

use redb::{ReadableTable, ReadableTableMetadata};

use super::ops::Op;
use super::schema::{DRAIN_DELETED, DRAIN_DISABLED, ENDPOINTS, META, TOKENS, TOKEN_HASHES};
use super::tables::Tables;
use super::{decode, encode, list, Page, Store, StoreError};
use std::sync::Arc;

use crate::model::{Endpoint, EndpointPatch, Scope, SealedSecret, Token};
use crate::routing::Matchers;
use crate::store::rules;

/// `meta` key naming how token hashes are made; absent in stores that kept bare SHA-256.
const TOKEN_HASH_SCHEME: &str = "token_hash_scheme";
/// HMAC-SHA256 under a key derived from the master key (`MasterKey::token_hash`).
const TOKEN_HASH_HMAC: &[u8] = b"hmac-sha256-v2";

impl Store {
    pub fn get_endpoint(&self, id: &str) -> Result<Option<Endpoint>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(ENDPOINTS)?;
        let value = table.get(id)?;
        value.map(|v| decode(id, v.value())).transpose()
    }

    /// Endpoints in id (creation) order, starting after `cursor`.
    pub fn list_endpoints(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Endpoint>, StoreError> {
        let txn = self.read()?;
        list(&txn.open_table(ENDPOINTS)?, cursor, limit)
    }

    /// Inserts a new endpoint, with its label matchers compiled; its id must be new.
    pub async fn create_endpoint(
        &self,
        endpoint: Endpoint,
        matchers: Arc<Matchers>,
    ) -> Result<(), StoreError> {
        self.write(Op::CreateEndpoint(Box::new(endpoint), matchers))
            .await
            .map(drop)
    }

    /// Applies `patch` and sets `updated_at_ms`; returns the endpoint as stored. `matchers`
    /// are the patch's label matchers compiled, when it sets them.
    pub async fn update_endpoint(
        &self,
        id: String,
        patch: EndpointPatch,
        now_ms: i64,
        matchers: Option<Arc<Matchers>>,
    ) -> Result<Endpoint, StoreError> {
        let disables = patch.disabled == Some(true);
        let endpoint = self
            .write(Op::UpdateEndpoint {
                id,
                patch: Box::new(patch),
                now_ms,
                matchers,
            })
            .await?
            .endpoint()?;
        if disables {
            self.shared.prune_wake.notify_one();
        }
        Ok(endpoint)
    }

    /// Deletes the endpoint; its pending deliveries and attempt log are removed in the
    /// background, in small batches (see [`super::retention`]).
    pub async fn delete_endpoint(&self, id: String) -> Result<(), StoreError> {
        self.write(Op::DeleteEndpoint(id)).await?;
        self.shared.prune_wake.notify_one();
        Ok(())
    }

    /// Makes `secret` current; the old current secret keeps signing until
    /// `now_ms + grace_ms`. Expired previous secrets are dropped.
    pub async fn rotate_secret(
        &self,
        id: String,
        secret: SealedSecret,
        now_ms: i64,
        grace_ms: i64,
    ) -> Result<Endpoint, StoreError> {
        self.write(Op::RotateSecret {
            id,
            secret,
            now_ms,
            grace_ms,
        })
        .await?
        .endpoint()
    }

    pub fn token_by_hash(&self, hash: &[u8]) -> Result<Option<Token>, StoreError> {
        let txn = self.read()?;
        let Some(id) = txn
            .open_table(TOKEN_HASHES)?
            .get(hash)?
            .map(|v| v.value().to_owned())
        else {
            return Ok(None);
        };
        let table = txn.open_table(TOKENS)?;
        let value = table.get(id.as_str())?;
        value.map(|v| decode(&id, v.value())).transpose()
    }

    pub fn list_tokens(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Token>, StoreError> {
        let txn = self.read()?;
        list(&txn.open_table(TOKENS)?, cursor, limit)
    }

    pub async fn create_token(&self, token: Token) -> Result<(), StoreError> {
        self.write(Op::CreateToken {
            token,
            only_if_none: false,
        })
        .await
        .map(drop)
    }

    /// Creates `token` only if the store has no tokens at all; returns whether it did.
    pub async fn bootstrap_token(&self, token: Token) -> Result<bool, StoreError> {
        self.write(Op::CreateToken {
            token,
            only_if_none: true,
        })
        .await?
        .flag()
    }

    /// Deletes a token. Refuses (409) to delete the last admin token that has not expired at
    /// `now_ms`, which would lock everyone out (`hookd token create` is the way back offline).
    pub async fn revoke_token(&self, id: String, now_ms: i64) -> Result<(), StoreError> {
        self.write(Op::RevokeToken(id, now_ms)).await.map(drop)
    }

    /// Brings every token's stored hash to the current scheme: `rehash` maps a stored SHA-256
    /// digest (scheme 1) to its scheme-2 hash. Runs once per store (the scheme is recorded in
    /// `meta`, in the same transaction); returns how many tokens it rehashed.
    pub async fn migrate_token_hashes(
        &self,
        rehash: impl Fn(&[u8]) -> [u8; 32],
    ) -> Result<usize, StoreError> {
        if self.meta(TOKEN_HASH_SCHEME)?.as_deref() == Some(TOKEN_HASH_HMAC) {
            return Ok(0);
        }
        let changes = {
            let txn = self.read()?;
            let tokens = txn.open_table(TOKENS)?;
            let mut changes = Vec::new();
            for entry in tokens.iter()? {
                let (k, v) = entry?;
                let token: Token = decode(k.value(), v.value())?;
                let new = rehash(&token.hash).to_vec();
                changes.push((token.id, token.hash, new));
            }
            changes
        };
        self.write(Op::RehashTokens(changes)).await?.count()
    }

    /// Records when tokens were last used (`(token id, Unix ms)`); tokens gone are skipped.
    pub async fn touch_tokens(&self, uses: Vec<(String, i64)>) -> Result<(), StoreError> {
        self.write(Op::TouchTokens(uses)).await.map(drop)
    }

    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.read()?;
        let value = txn.open_table(META)?.get(key)?.map(|v| v.value().to_vec());
        Ok(value)
    }

    pub async fn set_meta(&self, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        self.write(Op::SetMeta(key.to_owned(), value))
            .await
            .map(drop)
    }
}

pub(super) fn get<T: serde::de::DeserializeOwned>(
    table: &redb::Table<'_, &'static str, &'static [u8]>,
    id: &str,
) -> Result<T, StoreError> {
    let value = table.get(id)?.ok_or(StoreError::NotFound)?;
    decode(id, value.value())
}

pub(super) fn create(
    t: &mut Tables<'_>,
    e: &Endpoint,
    matchers: &Arc<Matchers>,
) -> Result<(), StoreError> {
    if t.endpoints.table()?.get(e.id.as_str())?.is_some() {
        return Err(StoreError::Conflict("an endpoint with this id exists"));
    }
    t.endpoints.insert(e.id.as_str(), encode(e)?.as_slice())?;
    t.routes.changed(e, Some(matchers));
    Ok(())
}

pub(super) fn update(
    t: &mut Tables<'_>,
    id: &str,
    patch: &EndpointPatch,
    now_ms: i64,
    matchers: Option<&Arc<Matchers>>,
) -> Result<Endpoint, StoreError> {
    let mut e: Endpoint = get(t.endpoints.table()?, id)?;
    rules::apply_fields(&mut e, patch);
    if let Some(disabled) = patch.disabled {
        set_disabled(t, &mut e, disabled)?;
        if !disabled {
            rules::set_enabled_again(&mut e);
        }
    }
    e.updated_at_ms = now_ms.max(e.updated_at_ms);
    t.endpoints.insert(id, encode(&e)?.as_slice())?;
    match (&patch.label_matchers, matchers) {
        // Set by the API, which compiles them; a caller that did not compile them gets them
        // compiled here (bounded, but on the writer).
        (Some(_), None) => t
            .routes
            .changed(&e, Some(&crate::store::routes::compile(&e))),
        (_, matchers) => t.routes.changed(&e, matchers),
    }
    Ok(e)
}

/// Disables or enables `e` (not yet written back). A disabled endpoint's pending deliveries
/// are failed by retention; enabling it again stops that.
pub(super) fn set_disabled(
    t: &mut Tables<'_>,
    e: &mut Endpoint,
    disabled: bool,
) -> Result<(), StoreError> {
    if disabled && !e.disabled && t.head_of.table()?.get(e.id.as_str())?.is_some() {
        t.drain.insert(e.id.as_str(), DRAIN_DISABLED)?;
    }
    if !disabled && e.disabled {
        let draining = t.drain.table()?.get(e.id.as_str())?.map(|v| v.value());
        if draining == Some(DRAIN_DISABLED) {
            t.drain.remove(e.id.as_str())?;
        }
    }
    if disabled {
        t.disabled.insert(e.id.as_str(), ())?;
    } else {
        t.disabled.remove(e.id.as_str())?;
    }
    e.disabled = disabled;
    Ok(())
}

pub(super) fn delete(t: &mut Tables<'_>, id: &str) -> Result<(), StoreError> {
    if t.endpoints.remove(id)?.is_none() {
        return Err(StoreError::NotFound);
    }
    t.disabled.remove(id)?;
    if t.head_of.table()?.get(id)?.is_some() || t.attempt_counts.table()?.get(id)?.is_some() {
        t.drain.insert(id, DRAIN_DELETED)?;
    }
    t.routes.removed(id);
    Ok(())
}

pub(super) fn rotate(
    t: &mut Tables<'_>,
    id: &str,
    secret: &SealedSecret,
    now_ms: i64,
    grace_ms: i64,
) -> Result<Endpoint, StoreError> {
    let mut e: Endpoint = get(t.endpoints.table()?, id)?;
    rules::rotate(&mut e, secret, now_ms, grace_ms);
    t.endpoints.insert(id, encode(&e)?.as_slice())?;
    Ok(e)
}

pub(super) fn create_token(
    t: &mut Tables<'_>,
    token: &Token,
    only_if_none: bool,
) -> Result<bool, StoreError> {
    if only_if_none && !t.tokens.table()?.is_empty()? {
        return Ok(false);
    }
    if t.token_hashes
        .table()?
        .get(token.hash.as_slice())?
        .is_some()
    {
        return Err(StoreError::Conflict("a token with this value exists"));
    }
    t.tokens
        .insert(token.id.as_str(), encode(token)?.as_slice())?;
    t.token_hashes
        .insert(token.hash.as_slice(), token.id.as_str())?;
    Ok(true)
}

pub(super) fn revoke_token(t: &mut Tables<'_>, id: &str, now_ms: i64) -> Result<(), StoreError> {
    let token: Token = get(t.tokens.table()?, id)?;
    // Revoking a live admin token needs another live one: an expired admin token signs
    // nothing in, so it does not count.
    if token.grants(Scope::Admin) && !token.expired(now_ms) {
        let mut others = 0;
        for entry in t.tokens.table()?.iter()? {
            let (k, v) = entry?;
            let other: Token = decode(k.value(), v.value())?;
            others += usize::from(
                other.id != token.id
                    && other.scopes.contains(&Scope::Admin)
                    && !other.expired(now_ms),
            );
        }
        if others == 0 {
            return Err(StoreError::Conflict(
                "this is the last admin token that has not expired; create another admin token first",
            ));
        }
    }
    t.tokens.remove(id)?;
    t.token_hashes.remove(token.hash.as_slice())?;
    Ok(())
}

pub(super) fn touch_tokens(t: &mut Tables<'_>, uses: &[(String, i64)]) -> Result<(), StoreError> {
    let mut touched = Vec::new();
    for (id, at) in uses {
        match get::<Token>(t.tokens.table()?, id) {
            Ok(mut token) if token.last_used_at_ms < Some(*at) => {
                token.last_used_at_ms = Some(*at);
                touched.push(token);
            }
            Ok(_) | Err(StoreError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    for token in touched {
        t.tokens
            .insert(token.id.as_str(), encode(&token)?.as_slice())?;
    }
    Ok(())
}

pub(super) fn rehash_tokens(
    t: &mut Tables<'_>,
    changes: &[(String, Vec<u8>, Vec<u8>)],
) -> Result<usize, StoreError> {
    let mut tokens = Vec::with_capacity(changes.len());
    for (id, old, new) in changes {
        let token: Token = get(t.tokens.table()?, id)?;
        // Skip one changed since it was read (nothing changes tokens during startup).
        if token.hash == *old {
            tokens.push((token, old, new));
        }
    }
    for (mut token, old, new) in tokens.iter().cloned() {
        token.hash.clone_from(new);
        t.tokens
            .insert(token.id.as_str(), encode(&token)?.as_slice())?;
        t.token_hashes.remove(old.as_slice())?;
        t.token_hashes.insert(new.as_slice(), token.id.as_str())?;
    }
    t.meta.insert(TOKEN_HASH_SCHEME, TOKEN_HASH_HMAC)?;
    Ok(tokens.len())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::Options;

    pub fn endpoint(id: &str) -> Endpoint {
        Endpoint {
            id: id.into(),
            name: "n".into(),
            url: "https://example.com/".into(),
            signing_enabled: true,
            secret: SealedSecret {
                sealed: vec![1, 2, 3],
                mask: "****abcd".into(),
                expires_at_ms: None,
                algorithm: crate::model::SigningAlgorithm::HmacSha256,
                public_key: None,
            },
            previous_secrets: vec![],
            created_at_ms: 1,
            updated_at_ms: 1,
            disabled: false,
            failing_since_ms: None,
            filter_types: vec![],
            label_matchers: vec![],
            headers: vec![],
            rate_limit: None,
            client_certificate: None,
            format: crate::model::Format::StandardWebhooks,
            format_options: crate::model::FormatOptions::default(),
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    #[test]
    fn crud_paging_and_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let options = Options {
            max_batch: 64,
            cache_bytes: 1 << 20,
            min_free_bytes: 0,
            metrics: None,
            testing: None,
        };
        let store = Store::open(&dir.path().join("t.redb"), options).unwrap();
        rt().block_on(async {
            for i in 0..5 {
                store
                    .create_endpoint(endpoint(&format!("wh-{i}")), Default::default())
                    .await
                    .unwrap();
            }
            assert!(matches!(
                store
                    .create_endpoint(endpoint("wh-0"), Default::default())
                    .await,
                Err(StoreError::Conflict(_))
            ));
            let p = store.list_endpoints(None, 2).unwrap();
            assert_eq!(p.items.len(), 2);
            assert_eq!(p.next.as_deref(), Some("wh-1"));
            let p = store.list_endpoints(Some("wh-3"), 2).unwrap();
            assert_eq!(p.items.len(), 1);
            assert!(p.next.is_none());

            let patch = EndpointPatch {
                name: Some("renamed".into()),
                ..EndpointPatch::default()
            };
            let e = store
                .update_endpoint("wh-1".into(), patch.clone(), 50, None)
                .await
                .unwrap();
            assert_eq!((e.name.as_str(), e.updated_at_ms), ("renamed", 50));
            assert!(matches!(
                store.update_endpoint("wh-x".into(), patch, 50, None).await,
                Err(StoreError::NotFound)
            ));

            let new = SealedSecret {
                sealed: vec![9],
                mask: "****wxyz".into(),
                expires_at_ms: None,
                algorithm: crate::model::SigningAlgorithm::HmacSha256,
                public_key: None,
            };
            let e = store
                .rotate_secret("wh-1".into(), new.clone(), 100, 1000)
                .await
                .unwrap();
            assert_eq!(e.secret, new);
            assert_eq!(e.previous_secrets[0].expires_at_ms, Some(1100));
            let e = store
                .rotate_secret("wh-1".into(), new, 5000, 1000)
                .await
                .unwrap();
            assert_eq!(
                e.previous_secrets.len(),
                1,
                "expired previous secret is dropped"
            );

            store.delete_endpoint("wh-1".into()).await.unwrap();
            assert!(store.get_endpoint("wh-1").unwrap().is_none());
            assert!(matches!(
                store.delete_endpoint("wh-1".into()).await,
                Err(StoreError::NotFound)
            ));
        });
    }
}
