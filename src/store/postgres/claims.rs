//! Claiming due deliveries across instances: per endpoint, earliest first, with `FOR UPDATE
//! SKIP LOCKED` and a lease (owner, expiry) in one short statement, so no transaction stays
//! open while a delivery is sent and other instances skip what is leased; the leases of the
//! deliveries being sent are renewed, and what a killed instance held is claimed again once its
//! lease expires. A rate-limited endpoint's tokens come from the bucket all instances share
//! ([`super::shared`]).

use super::outbox::split;
use super::{pg_err, prep, Store};
use crate::store::{StoreError, Take};

/// Endpoints with due work one pass looks at, earliest first.
const ENDPOINTS_PER_PASS: i64 = 1_000;

impl Store {
    /// One pass over the due work at `now_ms` (see the boundary's `scan_due`): for each enabled
    /// endpoint with unleased due deliveries, earliest first, claims up to what `share` (and
    /// `throttle`) grant and offers them to `take`; claims `take` does not take are released.
    pub(crate) async fn claim_due(
        &self,
        now_ms: i64,
        share: &mut dyn FnMut(&str) -> usize,
        throttle: &mut dyn FnMut(&str, u32) -> usize,
        take: &mut dyn FnMut(&str, u64) -> Take,
    ) -> Result<Option<u64>, StoreError> {
        let client = self.client().await?;
        let heads = client
            .query(
                &prep(
                    &client,
                    "SELECT d.endpoint_id, min(d.due_ms) AS head, e.rate_limit
                 FROM hookd_deliveries d JOIN hookd_endpoints e ON e.id = d.endpoint_id
                 WHERE NOT d.failed AND NOT e.disabled AND d.due_ms <= $1
                   AND (d.lease_until_ms IS NULL OR d.lease_until_ms < $1)
                 GROUP BY d.endpoint_id, e.rate_limit ORDER BY head LIMIT $2",
                )
                .await?,
                &[&now_ms, &ENDPOINTS_PER_PASS],
            )
            .await
            .map_err(pg_err)?;
        let lease_until = now_ms.saturating_add(self.lease_ms());
        let mut key = String::new();
        let mut next_token: Option<i64> = None;
        'endpoints: for head in &heads {
            let endpoint: &str = head.get(0);
            let mut wanted = share(endpoint);
            let rate = head
                .get::<_, Option<i64>>(2)
                .and_then(|r| u32::try_from(r).ok());
            if let Some(rate) = rate {
                wanted = wanted.min(throttle(endpoint, rate));
            }
            // A rate limit holds for the endpoint as a whole: its tokens come from the bucket
            // every instance shares (and the next one is due in 1/rate s).
            if let (Some(rate), true) = (rate, wanted > 0) {
                let granted = Self::take_tokens(&client, endpoint, rate, wanted, now_ms).await?;
                if granted < wanted {
                    let due = now_ms + i64::from((1000 / rate.max(1)).max(1));
                    next_token = Some(next_token.map_or(due, |t: i64| t.min(due)));
                }
                wanted = granted;
            }
            if wanted == 0 {
                continue;
            }
            let claimed = client
                .query(
                    &prep(
                        &client,
                        "UPDATE hookd_deliveries SET lease_owner = $3, lease_until_ms = $4
                     WHERE (message_id, endpoint_id) IN (
                        SELECT message_id, endpoint_id FROM hookd_deliveries
                        WHERE endpoint_id = $1 AND NOT failed AND due_ms <= $2
                          AND (lease_until_ms IS NULL OR lease_until_ms < $2)
                        ORDER BY due_ms LIMIT $5 FOR UPDATE SKIP LOCKED)
                     RETURNING message_id, due_ms",
                    )
                    .await?,
                    &[
                        &endpoint,
                        &now_ms,
                        &self.owner(),
                        &lease_until,
                        &i64::try_from(wanted).unwrap_or(i64::MAX),
                    ],
                )
                .await
                .map_err(pg_err)?;
            let mut claimed: Vec<(String, i64)> =
                claimed.iter().map(|r| (r.get(0), r.get(1))).collect();
            claimed.sort_by_key(|(_, due)| *due);
            let mut unused = Vec::new();
            let mut stop = false;
            let mut tokens_left = if rate.is_some() { wanted } else { 0 };
            for (message, due) in claimed {
                if stop {
                    unused.push(message);
                    continue;
                }
                key.clear();
                key.push_str(&message);
                key.push('/');
                key.push_str(endpoint);
                match take(&key, u64::try_from(due).unwrap_or(0)) {
                    Take::Taken => {
                        tokens_left = tokens_left.saturating_sub(1);
                        self.inner
                            .held
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .insert(key.clone());
                    }
                    Take::Skip => {}
                    Take::NextEndpoint => {
                        stop = true;
                        unused.push(message);
                    }
                    Take::Stop => {
                        unused.push(message);
                        self.release(&client, endpoint, &unused).await?;
                        Self::give_back_tokens(&client, endpoint, tokens_left).await?;
                        break 'endpoints;
                    }
                }
            }
            self.release(&client, endpoint, &unused).await?;
            Self::give_back_tokens(&client, endpoint, tokens_left).await?;
        }
        let next: Option<i64> = client
            .query_one(
                &prep(
                    &client,
                    "SELECT min(due_ms) FROM hookd_deliveries WHERE NOT failed AND due_ms > $1",
                )
                .await?,
                &[&now_ms],
            )
            .await
            .map_err(pg_err)?
            .get(0);
        let next = match (next, next_token) {
            (Some(n), Some(t)) => Some(n.min(t)),
            (n, t) => n.or(t),
        };
        Ok(next.and_then(|n| u64::try_from(n).ok()))
    }

    /// Gives up this instance's claims on `messages` to `endpoint`.
    async fn release(
        &self,
        client: &deadpool_postgres::Client,
        endpoint: &str,
        messages: &[String],
    ) -> Result<(), StoreError> {
        if messages.is_empty() {
            return Ok(());
        }
        client
            .execute(
                &prep(
                    client,
                    "UPDATE hookd_deliveries SET lease_owner = NULL, lease_until_ms = NULL
                 WHERE endpoint_id = $1 AND message_id = ANY($2) AND lease_owner = $3",
                )
                .await?,
                &[&endpoint, &messages, &self.owner()],
            )
            .await
            .map(drop)
            .map_err(pg_err)
    }

    /// See the boundary's `let_go`: a claim still held (its attempt was not recorded) is given
    /// up; the common case (recorded) costs nothing.
    pub async fn let_go(&self, key: &str) {
        let held = self
            .inner
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
        let Ok((message_id, endpoint_id)) = split(key) else {
            return;
        };
        if held {
            if let Ok(client) = self.client().await {
                // Best effort: if this fails, the lease runs out instead.
                let _ = self
                    .release(&client, endpoint_id, &[message_id.to_owned()])
                    .await;
            }
        }
    }

    /// Extends the leases this instance holds (its deliveries being sent).
    pub(super) async fn renew_leases(&self, now_ms: i64) -> Result<u64, StoreError> {
        let (messages, endpoints): (Vec<String>, Vec<String>) = self
            .inner
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter_map(|k| k.split_once('/'))
            .map(|(m, e)| (m.to_owned(), e.to_owned()))
            .unzip();
        if messages.is_empty() {
            return Ok(0);
        }
        let client = self.client().await?;
        client
            .execute(
                &prep(
                    &client,
                    "UPDATE hookd_deliveries d SET lease_until_ms = $2
                 FROM unnest($3::text[], $4::text[]) AS h(message_id, endpoint_id)
                 WHERE d.message_id = h.message_id AND d.endpoint_id = h.endpoint_id
                   AND d.lease_owner = $1 AND NOT d.failed",
                )
                .await?,
                &[
                    &self.owner(),
                    &now_ms.saturating_add(self.lease_ms()),
                    &messages,
                    &endpoints,
                ],
            )
            .await
            .map_err(pg_err)
    }
}
