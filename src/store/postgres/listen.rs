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

use super::batch::records_by_id;
use super::routing::{read_change, Change};
use super::Store;
use crate::model::Endpoint;
use crate::store::routes::{self, Routes};
use crate::store::types::decode;
use crate::store::StoreError;

/// The longest wait between attempts to connect again.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Notifications handled together at most.
const NEWS_AT_ONCE: usize = 1024;

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
        // Notifications that queued meanwhile are handled together: one query for all the
        // endpoints other instances changed.
        let mut news = Vec::new();
        while rx.recv_many(&mut news, NEWS_AT_ONCE).await > 0 {
            let mut changes = Vec::new();
            for (channel, payload) in news.drain(..) {
                match channel.as_str() {
                    "hookd_due" => self.inner.due.notify_one(),
                    "hookd_tokens" => self.tokens().clear(),
                    "hookd_circuit" => {
                        if let Some(news) = super::shared::read_circuit(&payload) {
                            // No receiver (no dispatcher yet) is fine.
                            let _ = self.inner.circuits.send(news);
                        }
                    }
                    _ => changes.push(payload),
                }
            }
            if changes.is_empty() {
                continue;
            }
            if let Err(e) = self.routes_changed(&changes).await {
                tracing::warn!(error = %e, "reloading changed endpoints failed; reloading every endpoint");
                self.reload_routes().await.map_err(|e| e.to_string())?;
            }
        }
        driver.abort();
        Ok(())
    }

    /// Endpoints changed (`hookd_endpoints` payloads, in commit order): the other instances'
    /// changes as the database has them now, then the versions they made.
    async fn routes_changed(&self, payloads: &[String]) -> Result<(), StoreError> {
        let changes: Vec<Change> = payloads.iter().map(|p| read_change(p)).collect();
        let theirs: Vec<&str> = changes
            .iter()
            .filter(|c| c.by != Some(self.owner()))
            .map(|c| c.id)
            .collect();
        let _changing = self.inner.routes_lock.lock().await;
        if !theirs.is_empty() {
            let records = records_by_id(&self.client().await?, &theirs).await?;
            let mut routes = Routes::begin(&self.inner.routes);
            for id in theirs {
                match records.get(id) {
                    Some(record) => {
                        let e = decode::<Endpoint>(id, record)?;
                        routes.changed(&e, Some(&routes::compile(&e)));
                    }
                    None => routes.removed(id),
                }
            }
            routes.publish();
        }
        for version in changes.iter().filter_map(|c| c.version) {
            self.routed(version);
        }
        Ok(())
    }
}
