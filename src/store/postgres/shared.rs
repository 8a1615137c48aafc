//! What the instances share about an endpoint beyond its records, so that its `rateLimit` and
//! its circuit breaker hold for the endpoint as a whole and not once per instance.
//!
//! **Circuits.** An instance whose circuit for an endpoint opens says so (`NOTIFY
//! hookd_circuit`, "endpoint next-probe-ms"), and so does one whose probe closes it ("endpoint
//! closed"); every instance's listener hands that to its dispatcher, which holds or resumes
//! the endpoint's deliveries too.
//!
//! **Rate limits.**
//! The bucket is a row of `hookd_rate` in thousandths of a token, like each instance's own
//! (`delivery::rate`): at most `rate` tokens, refilled at `rate` per second, one token at the
//! start. A claim takes its tokens in the same statement that refills the bucket (one round
//! trip, atomic under concurrent claims), and gives back what it did not use.

use deadpool_postgres::Client;

use super::{pg_err, prep};
use crate::store::StoreError;

/// The circuits other instances opened (`Some(next probe, Unix ms)`) or closed (`None`).
pub type CircuitNews = tokio::sync::broadcast::Receiver<(String, Option<i64>)>;

/// How many circuit changes a slow dispatcher may fall behind before it misses some.
pub(super) const CIRCUIT_NEWS: usize = 256;

/// The notification that says `endpoint`'s circuit opened until `next_probe_ms` or closed.
fn circuit_payload(endpoint: &str, next_probe_ms: Option<i64>) -> String {
    match next_probe_ms {
        Some(at) => format!("{endpoint} {at}"),
        None => format!("{endpoint} closed"),
    }
}

/// Reads a `hookd_circuit` notification; `None` if it is not one.
pub(super) fn read_circuit(payload: &str) -> Option<(String, Option<i64>)> {
    let (endpoint, what) = payload.rsplit_once(' ')?;
    let next = match what {
        "closed" => None,
        at => Some(at.parse().ok()?),
    };
    Some((endpoint.to_owned(), next))
}

impl super::Store {
    /// Says to every instance (this one too) that `endpoint`'s circuit opened or closed; in the
    /// background: if the database cannot be told, each instance keeps its own circuit.
    pub fn tell_circuit(&self, endpoint: &str, next_probe_ms: Option<i64>) {
        let payload = circuit_payload(endpoint, next_probe_ms);
        let this = self.clone();
        tokio::spawn(async move {
            if let Ok(client) = this.client().await {
                let _ = client
                    .execute("SELECT pg_notify('hookd_circuit', $1)", &[&payload])
                    .await;
            }
        });
    }

    /// What other instances say of their circuits.
    pub fn circuit_news(&self) -> CircuitNews {
        self.inner.circuits.subscribe()
    }

    /// Takes up to `wanted` tokens of `endpoint`'s shared bucket (limited to `rate` per
    /// second) at `now_ms`; returns how many it got.
    pub(super) async fn take_tokens(
        client: &Client,
        endpoint: &str,
        rate: u32,
        wanted: usize,
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        let rate = i64::from(rate.max(1));
        let wanted = i64::try_from(wanted).unwrap_or(i64::MAX);
        let row = client
            .query_one(
                &prep(client, "INSERT INTO hookd_rate AS r (endpoint_id, level, at_ms, granted)
                 VALUES ($1, 1000 - 1000 * least($3::bigint, 1), $4, least($3::bigint, 1))
                 ON CONFLICT (endpoint_id) DO UPDATE SET
                    level = least($2::bigint * 1000, r.level + greatest($4::bigint - r.at_ms, 0) * $2::bigint)
                        - 1000 * least($3::bigint, least($2::bigint * 1000, r.level + greatest($4::bigint - r.at_ms, 0) * $2::bigint) / 1000),
                    granted = least($3::bigint, least($2::bigint * 1000, r.level + greatest($4::bigint - r.at_ms, 0) * $2::bigint) / 1000),
                    at_ms = greatest(r.at_ms, $4::bigint)
                 RETURNING granted").await?,
                &[&endpoint, &rate, &wanted, &now_ms],
            )
            .await
            .map_err(pg_err)?;
        Ok(usize::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }

    /// Gives `unused` tokens back to `endpoint`'s bucket (a claim found fewer deliveries due
    /// than it took tokens for, or the dispatcher did not take them all).
    pub(super) async fn give_back_tokens(
        client: &Client,
        endpoint: &str,
        unused: usize,
    ) -> Result<(), StoreError> {
        if unused == 0 {
            return Ok(());
        }
        let unused = i64::try_from(unused).unwrap_or(i64::MAX / 1000);
        client
            .execute(
                &prep(client, "UPDATE hookd_rate SET level = level + 1000 * $2::bigint WHERE endpoint_id = $1").await?,
                &[&endpoint, &unused],
            )
            .await
            .map(drop)
            .map_err(pg_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn circuit_notifications_read_back() {
        for next in [Some(1_764_000_000_123), None] {
            let payload = circuit_payload("ep_01", next);
            assert_eq!(read_circuit(&payload), Some(("ep_01".into(), next)));
        }
        for bad in ["", "ep", "ep soon", "ep 12x"] {
            assert_eq!(read_circuit(bad), None, "{bad}");
        }
    }
}
