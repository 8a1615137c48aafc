//! The concurrency limits of outgoing requests (`delivery.max_in_flight` overall,
//! `delivery.per_endpoint` each), shared by the dispatcher and test sends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::DeliveryConfig;

/// Semaphores: one global, one per endpoint (made on first use).
pub(super) struct Permits {
    global: Arc<Semaphore>,
    per_endpoint: Mutex<HashMap<String, Arc<Semaphore>>>,
    per_endpoint_limit: usize,
}

/// Leave to send one request: a global slot and one of its endpoint's.
pub(super) type Permit = (OwnedSemaphorePermit, OwnedSemaphorePermit);

impl Permits {
    pub fn new(config: &DeliveryConfig) -> Self {
        Self {
            global: Arc::new(Semaphore::new(config.max_in_flight)),
            per_endpoint: Mutex::new(HashMap::new()),
            per_endpoint_limit: config.per_endpoint,
        }
    }

    fn endpoint(&self, endpoint_id: &str) -> Option<Arc<Semaphore>> {
        let limit = self.per_endpoint_limit;
        let mut map = self.per_endpoint.lock().ok()?;
        if map.len() > 10_000 {
            map.retain(|_, s| s.available_permits() < limit);
        }
        Some(
            map.entry(endpoint_id.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(limit)))
                .clone(),
        )
    }

    /// Both permits now, if free.
    pub(super) fn try_acquire(&self, endpoint_id: &str) -> Result<Permit, Busy> {
        let endpoint = self
            .endpoint(endpoint_id)
            .and_then(|s| s.try_acquire_owned().ok())
            .ok_or(Busy::Endpoint)?;
        let global = self
            .global
            .clone()
            .try_acquire_owned()
            .map_err(|_| Busy::Global)?;
        Ok((endpoint, global))
    }

    /// Both permits, waiting at most `within`.
    pub async fn acquire(&self, endpoint_id: &str, within: Duration) -> Option<Permit> {
        let endpoint = self.endpoint(endpoint_id)?;
        tokio::time::timeout(within, async {
            let endpoint = endpoint.acquire_owned().await.ok()?;
            let global = self.global.clone().acquire_owned().await.ok()?;
            Some((endpoint, global))
        })
        .await
        .ok()
        .flatten()
    }

    pub(super) fn any_free(&self) -> bool {
        self.global.available_permits() > 0
    }

    /// How many more requests to `endpoint_id` may start now.
    pub(super) fn available(&self, endpoint_id: &str) -> usize {
        self.endpoint(endpoint_id)
            .map_or(0, |s| s.available_permits())
            .min(self.global.available_permits())
    }
}

/// Which limit a delivery ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Busy {
    Endpoint,
    Global,
}
