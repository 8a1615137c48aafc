//! What the other instances did, by `LISTEN`: `hookd_due` (an alert accepted, deliveries
//! requeued) wakes this instance's dispatcher; `hookd_endpoints` (an endpoint created,
//! changed or deleted) updates its routing table; `hookd_tokens` (a token revoked) empties the
//! token cache; `hookd_circuit` tells the dispatcher of circuits opened and closed. One
//! dedicated connection outside the pool; when it drops, it connects again and reloads the
//! whole table (notifications sent meanwhile are lost), and the token cache is not used
//! meanwhile.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_postgres::AsyncMessage;

use super::Store;
use crate::model::Endpoint;
use crate::store::routes::{self, Routes};
use crate::store::types::decode;

/// The longest wait between attempts to connect again.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

impl Store {
    /// Listens until the task is dropped, connecting again whenever the connection drops.
    pub(super) async fn listen(self) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let listened = self.listen_once().await;
            self.inner.listening.store(false, Ordering::Release);
            match listened {
                // It listened, until the connection closed: the next one may come at once.
                Ok(()) => {
                    tracing::warn!(
                        "PostgreSQL notifications: the connection closed; connecting again"
                    );
                    backoff = Duration::from_millis(100);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "PostgreSQL notifications: the connection failed; connecting again");
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One connection's life: `LISTEN`, then forward notifications until it ends (`Ok`), or
    /// why it could not get that far.
    async fn listen_once(&self) -> Result<(), String> {
        let (client, mut connection) = self
            .inner
            .config
            .connect(self.inner.tls.clone())
            .await
            .map_err(|e| e.to_string())?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            loop {
                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(n))) => {
                        if tx
                            .send((n.channel().to_owned(), n.payload().to_owned()))
                            .is_err()
                        {
                            return;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return,
                }
            }
        });
        client
            .batch_execute("LISTEN hookd_due; LISTEN hookd_endpoints; LISTEN hookd_circuit; LISTEN hookd_tokens")
            .await
            .map_err(|e| e.to_string())?;
        // Changes made while no connection listened (since the table was loaded at the start,
        // or while the connection was down) are caught up with now.
        self.reload_routes().await.map_err(|e| e.to_string())?;
        self.tokens().clear();
        self.inner.listening.store(true, Ordering::Release);
        self.inner.due.notify_one();
        while let Some((channel, payload)) = rx.recv().await {
            if channel == "hookd_due" {
                self.inner.due.notify_one();
            } else if channel == "hookd_tokens" {
                self.tokens().clear();
            } else if channel == "hookd_circuit" {
                if let Some(news) = super::shared::read_circuit(&payload) {
                    // No receiver (no dispatcher yet) is fine.
                    let _ = self.inner.circuits.send(news);
                }
            } else {
                let (id, version) = super::routing::read_change(&payload);
                let applied = {
                    let _changing = self.inner.routes_lock.lock().await;
                    let applied = self.route_changed(id).await;
                    if let (Ok(()), Some(v)) = (&applied, version) {
                        self.routed(v);
                    }
                    applied
                };
                if let Err(e) = applied {
                    tracing::warn!(endpoint = id, error = %e, "reloading a changed endpoint failed; reloading every endpoint");
                    self.reload_routes().await.map_err(|e| e.to_string())?;
                }
            }
        }
        driver.abort();
        Ok(())
    }

    /// Endpoint `id` changed somewhere: its route as the database has it now.
    async fn route_changed(&self, id: &str) -> Result<(), crate::store::StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT record FROM hookd_endpoints WHERE id = $1", &[&id])
            .await
            .map_err(super::pg_err)?;
        let mut change = Routes::begin(&self.inner.routes);
        match row.map(|r| decode::<Endpoint>(id, r.get(0))).transpose()? {
            Some(e) => change.changed(&e, Some(&routes::compile(&e))),
            None => change.removed(id),
        }
        change.publish();
        Ok(())
    }
}
