//! Endpoints, API tokens and `meta` in PostgreSQL: each write one short transaction that reads
//! the record `FOR UPDATE`, applies the same rules as the embedded store ([`rules`]) and writes
//! it back; the routing table is republished after the commit, and other instances are told by
//! `NOTIFY hookd_endpoints`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{or_conflict, pg_err, prep, Store};
use crate::model::{Endpoint, EndpointPatch, Scope, SealedSecret, Token};
use crate::routing::Matchers;
use crate::store::routes::Routes;
use crate::store::rules;
use crate::store::types::{decode, encode};
use crate::store::{Page, StoreError};

/// `meta` key naming how token hashes are made, as in the embedded store.
const TOKEN_HASH_SCHEME: &str = "token_hash_scheme";
const TOKEN_HASH_HMAC: &[u8] = b"hmac-sha256-v2";
/// Advisory lock keys serializing the writes that check all tokens first.
const TOKENS_LOCK: i64 = 0x686f_6f6b_6474;

/// Rows of `(id, record)` as a page of `limit`, after the query fetched one more.
pub(super) fn page<T: serde::de::DeserializeOwned>(
    rows: &[tokio_postgres::Row],
    limit: usize,
) -> Result<Page<T>, StoreError> {
    let more = rows.len() > limit;
    let mut items = Vec::with_capacity(rows.len().min(limit));
    let mut last = None;
    for row in rows.iter().take(limit) {
        let id: &str = row.get(0);
        items.push(decode(id, row.get(1))?);
        last = Some(id.to_owned());
    }
    Ok(Page {
        items,
        next: if more { last } else { None },
    })
}

/// The endpoint's `rateLimit` as its column.
pub(super) fn rate(e: &Endpoint) -> Option<i64> {
    e.rate_limit.map(i64::from)
}

/// `limit + 1` as a query parameter.
pub(super) fn fetch(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1
}

impl Store {
    /// The endpoint `id`, read with the reads that arrive meanwhile (see [`batch`]).
    pub async fn get_endpoint(&self, id: &str) -> Result<Option<Endpoint>, StoreError> {
        let (done, answer) = tokio::sync::oneshot::channel();
        let read = super::batch::Read {
            id: id.to_owned(),
            done,
        };
        self.inner
            .reads
            .send(read)
            .map_err(|_| StoreError::WriterGone)?;
        let record = answer.await.map_err(|_| StoreError::WriterGone)??;
        record.map(|r| decode(id, &r)).transpose()
    }

    /// Endpoints in id (creation) order, starting after `cursor`.
    pub async fn list_endpoints(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Endpoint>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &prep(
                    &client,
                    "SELECT id, record FROM hookd_endpoints WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .await?,
                &[&cursor.unwrap_or(""), &fetch(limit)],
            )
            .await
            .map_err(pg_err)?;
        page(&rows, limit)
    }

    pub async fn create_endpoint(
        &self,
        endpoint: Endpoint,
        matchers: Arc<Matchers>,
    ) -> Result<(), StoreError> {
        // Written with the creates that arrive meanwhile, in one statement, and routed before
        // the answer comes (see [`batch`]).
        let (done, answer) = tokio::sync::oneshot::channel();
        let create = super::batch::Create {
            endpoint,
            matchers,
            done,
        };
        self.inner
            .creates
            .send(create)
            .map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Applies `patch` and sets `updated_at_ms`; returns the endpoint as stored.
    pub async fn update_endpoint(
        &self,
        id: String,
        patch: EndpointPatch,
        now_ms: i64,
        matchers: Option<Arc<Matchers>>,
    ) -> Result<Endpoint, StoreError> {
        let mut client = self.client().await?;
        let txn = client.transaction().await.map_err(pg_err)?;
        let mut e = locked_endpoint(&txn, &id).await?;
        rules::apply_fields(&mut e, &patch);
        if let Some(disabled) = patch.disabled {
            e.disabled = disabled;
            if !disabled {
                rules::set_enabled_again(&mut e);
            }
        }
        e.updated_at_ms = now_ms.max(e.updated_at_ms);
        txn.execute(
            &prep(&txn, "UPDATE hookd_endpoints SET record = $2, disabled = $3, rate_limit = $4 WHERE id = $1").await?,
            &[&id, &encode(&e)?, &e.disabled, &rate(&e)],
        )
        .await
        .map_err(pg_err)?;
        let version = notify_endpoint(&txn, &id, self.owner()).await?;
        txn.commit().await.map_err(pg_err)?;
        let matchers = match (&patch.label_matchers, matchers) {
            (Some(_), None) => Some(crate::store::routes::compile(&e)),
            (_, matchers) => matchers,
        };
        let mut routes = Routes::begin(&self.inner.routes);
        routes.changed(&e, matchers.as_ref());
        self.publish_own(routes, version).await;
        if e.disabled {
            self.inner.prune_wake.notify_one();
        }
        Ok(e)
    }

    /// Deletes the endpoint; its deliveries and attempt log are removed by retention.
    pub async fn delete_endpoint(&self, id: String) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let txn = client.transaction().await.map_err(pg_err)?;
        let deleted = txn
            .execute(
                &prep(&txn, "DELETE FROM hookd_endpoints WHERE id = $1").await?,
                &[&id],
            )
            .await
            .map_err(pg_err)?;
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        let version = notify_endpoint(&txn, &id, self.owner()).await?;
        txn.commit().await.map_err(pg_err)?;
        let mut routes = Routes::begin(&self.inner.routes);
        routes.removed(&id);
        self.publish_own(routes, version).await;
        self.inner.prune_wake.notify_one();
        Ok(())
    }

    pub async fn rotate_secret(
        &self,
        id: String,
        secret: SealedSecret,
        now_ms: i64,
        grace_ms: i64,
    ) -> Result<Endpoint, StoreError> {
        let mut client = self.client().await?;
        let txn = client.transaction().await.map_err(pg_err)?;
        let mut e = locked_endpoint(&txn, &id).await?;
        rules::rotate(&mut e, &secret, now_ms, grace_ms);
        txn.execute(
            &prep(&txn, "UPDATE hookd_endpoints SET record = $2 WHERE id = $1").await?,
            &[&id, &encode(&e)?],
        )
        .await
        .map_err(pg_err)?;
        txn.commit().await.map_err(pg_err)?;
        Ok(e)
    }

    /// The token with `hash`: from this instance's cache of the tokens it has seen, else from
    /// the database. A revocation on any instance empties every instance's cache (`NOTIFY
    /// hookd_tokens`); while the listener is not connected (it would miss one) the cache is
    /// not used, and it starts empty when the listener connects again.
    pub async fn token_by_hash(&self, hash: &[u8]) -> Result<Option<Token>, StoreError> {
        let listening = self.inner.listening.load(Ordering::Acquire);
        if let Some(token) = self.tokens().get(hash).filter(|_| listening) {
            return Ok(Some(token.clone()));
        }
        let found = self.token_by_hash_uncached(hash).await?;
        if let (Some(token), true) = (&found, listening) {
            let mut cache = self.tokens();
            if cache.len() >= super::TOKENS_CACHED {
                cache.clear();
            }
            cache.insert(hash.to_vec(), token.clone());
        }
        Ok(found)
    }

    async fn token_by_hash_uncached(&self, hash: &[u8]) -> Result<Option<Token>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &prep(
                    &client,
                    "SELECT id, record FROM hookd_tokens WHERE hash = $1",
                )
                .await?,
                &[&hash],
            )
            .await
            .map_err(pg_err)?;
        row.map(|r| decode(r.get(0), r.get(1))).transpose()
    }

    pub async fn list_tokens(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Token>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &prep(
                    &client,
                    "SELECT id, record FROM hookd_tokens WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .await?,
                &[&cursor.unwrap_or(""), &fetch(limit)],
            )
            .await
            .map_err(pg_err)?;
        page(&rows, limit)
    }

    pub async fn create_token(&self, token: Token) -> Result<(), StoreError> {
        self.insert_token(token, false).await.map(drop)
    }

    /// Creates `token` only if there are no tokens at all; returns whether it did.
    pub async fn bootstrap_token(&self, token: Token) -> Result<bool, StoreError> {
        self.insert_token(token, true).await
    }

    async fn insert_token(&self, token: Token, only_if_none: bool) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let txn = client.transaction().await.map_err(pg_err)?;
        if only_if_none {
            txn.execute(
                &prep(&txn, "SELECT pg_advisory_xact_lock($1)").await?,
                &[&TOKENS_LOCK],
            )
            .await
            .map_err(pg_err)?;
            let any = txn
                .query_opt(
                    &prep(&txn, "SELECT 1 FROM hookd_tokens LIMIT 1").await?,
                    &[],
                )
                .await
                .map_err(pg_err)?;
            if any.is_some() {
                return Ok(false);
            }
        }
        txn.execute(
            &prep(&txn, "INSERT INTO hookd_tokens (id, hash, admin, expires_at_ms, record) VALUES ($1, $2, $3, $4, $5)").await?,
            &[
                &token.id,
                &token.hash,
                &token.scopes.contains(&Scope::Admin),
                &token.expires_at_ms,
                &encode(&token)?,
            ],
        )
        .await
        .map_err(or_conflict("a token with this value exists"))?;
        txn.commit().await.map_err(pg_err)?;
        Ok(true)
    }

    /// Deletes a token; refuses to delete the last admin token that has not expired at
    /// `now_ms`. Revocations are serialized, so two at once cannot remove the last two.
    pub async fn revoke_token(&self, id: String, now_ms: i64) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let txn = client.transaction().await.map_err(pg_err)?;
        txn.execute(
            &prep(&txn, "SELECT pg_advisory_xact_lock($1)").await?,
            &[&TOKENS_LOCK],
        )
        .await
        .map_err(pg_err)?;
        let row = txn
            .query_opt(
                &prep(&txn, "SELECT record FROM hookd_tokens WHERE id = $1").await?,
                &[&id],
            )
            .await
            .map_err(pg_err)?
            .ok_or(StoreError::NotFound)?;
        let token: Token = decode(&id, row.get(0))?;
        if token.grants(Scope::Admin) && !token.expired(now_ms) {
            let others: i64 = txn
                .query_one(
                    &prep(&txn, "SELECT count(*) FROM hookd_tokens WHERE id <> $1 AND admin AND (expires_at_ms IS NULL OR expires_at_ms > $2)").await?,
                    &[&id, &now_ms],
                )
                .await
                .map_err(pg_err)?
                .get(0);
            if others == 0 {
                return Err(StoreError::Conflict(
                    "this is the last admin token that has not expired; create another admin token first",
                ));
            }
        }
        txn.execute(
            &prep(&txn, "DELETE FROM hookd_tokens WHERE id = $1").await?,
            &[&id],
        )
        .await
        .map_err(pg_err)?;
        txn.execute("SELECT pg_notify('hookd_tokens', '')", &[])
            .await
            .map_err(pg_err)?;
        txn.commit().await.map_err(pg_err)?;
        self.tokens().clear();
        Ok(())
    }

    /// Brings every token's stored hash to the current scheme (once per database).
    pub async fn migrate_token_hashes(
        &self,
        rehash: impl Fn(&[u8]) -> [u8; 32],
    ) -> Result<usize, StoreError> {
        let mut client = self.client().await?;
        let txn = client.transaction().await.map_err(pg_err)?;
        txn.execute(
            &prep(&txn, "SELECT pg_advisory_xact_lock($1)").await?,
            &[&TOKENS_LOCK],
        )
        .await
        .map_err(pg_err)?;
        let scheme = txn
            .query_opt(
                &prep(&txn, "SELECT value FROM hookd_meta WHERE key = $1").await?,
                &[&TOKEN_HASH_SCHEME],
            )
            .await
            .map_err(pg_err)?;
        if scheme.is_some_and(|r| r.get::<_, &[u8]>(0) == TOKEN_HASH_HMAC) {
            return Ok(0);
        }
        let rows = txn
            .query(
                &prep(&txn, "SELECT id, record FROM hookd_tokens").await?,
                &[],
            )
            .await
            .map_err(pg_err)?;
        for row in &rows {
            let mut token: Token = decode(row.get(0), row.get(1))?;
            token.hash = rehash(&token.hash).to_vec();
            txn.execute(
                &prep(
                    &txn,
                    "UPDATE hookd_tokens SET hash = $2, record = $3 WHERE id = $1",
                )
                .await?,
                &[&token.id, &token.hash, &encode(&token)?],
            )
            .await
            .map_err(pg_err)?;
        }
        set_meta(&txn, TOKEN_HASH_SCHEME, TOKEN_HASH_HMAC).await?;
        txn.commit().await.map_err(pg_err)?;
        self.tokens().clear();
        Ok(rows.len())
    }

    /// Records when tokens were last used; tokens gone are skipped.
    pub async fn touch_tokens(&self, uses: Vec<(String, i64)>) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let txn = client.transaction().await.map_err(pg_err)?;
        for (id, at) in uses {
            let row = txn
                .query_opt(
                    &prep(
                        &txn,
                        "SELECT record FROM hookd_tokens WHERE id = $1 FOR UPDATE",
                    )
                    .await?,
                    &[&id],
                )
                .await
                .map_err(pg_err)?;
            let Some(row) = row else { continue };
            let mut token: Token = decode(&id, row.get(0))?;
            if token.last_used_at_ms < Some(at) {
                token.last_used_at_ms = Some(at);
                txn.execute(
                    &prep(&txn, "UPDATE hookd_tokens SET record = $2 WHERE id = $1").await?,
                    &[&id, &encode(&token)?],
                )
                .await
                .map_err(pg_err)?;
            }
        }
        txn.commit().await.map_err(pg_err)
    }

    pub async fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &prep(&client, "SELECT value FROM hookd_meta WHERE key = $1").await?,
                &[&key],
            )
            .await
            .map_err(pg_err)?;
        Ok(row.map(|r| r.get(0)))
    }

    pub async fn set_meta(&self, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        let client = self.client().await?;
        set_meta(&client, key, &value).await
    }
}

/// The endpoint `id`, locked until the transaction ends.
pub(super) async fn locked_endpoint(
    txn: &deadpool_postgres::Transaction<'_>,
    id: &str,
) -> Result<Endpoint, StoreError> {
    let row = txn
        .query_opt(
            &prep(
                txn,
                "SELECT record FROM hookd_endpoints WHERE id = $1 FOR UPDATE",
            )
            .await?,
            &[&id],
        )
        .await
        .map_err(pg_err)?
        .ok_or(StoreError::NotFound)?;
    decode(id, row.get(0))
}

/// Tells the other instances (at commit) that endpoint `id` changed, with the routing table's
/// new version and the instance that changed it (see [`super::routing`]); returns that
/// version.
async fn notify_endpoint(
    txn: &deadpool_postgres::Transaction<'_>,
    id: &str,
    owner: &str,
) -> Result<i64, StoreError> {
    let row = txn
        .query_one(
            &prep(
                txn,
                "WITH v AS (UPDATE hookd_routes SET version = version + 1 RETURNING version)
                 SELECT version, pg_notify('hookd_endpoints', $1 || ' ' || version || ' ' || $2)::text FROM v",
            )
            .await?,
            &[&id, &owner],
        )
        .await
        .map_err(pg_err)?;
    Ok(row.get(0))
}

async fn set_meta(
    client: &impl deadpool_postgres::GenericClient,
    key: &str,
    value: &[u8],
) -> Result<(), StoreError> {
    client
        .execute(
            &prep(client, "INSERT INTO hookd_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value").await?,
            &[&key, &value],
        )
        .await
        .map(drop)
        .map_err(pg_err)
}
