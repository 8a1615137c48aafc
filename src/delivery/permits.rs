//! The concurrency limits of outgoing requests (`delivery.max_in_flight` overall,
//! `delivery.per_endpoint` each), shared by the dispatcher and test sends, and the memory the
//! deliveries in flight may hold (`delivery.max_in_flight_bytes`): without it, 256 deliveries of
//! a 4 MiB alert would hold 2 GiB.

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
    /// KiB of alert payloads held by deliveries in flight, counted twice (see [`Self::share`]).
    bytes: Arc<Semaphore>,
    bytes_total: u32,
}

/// Leave to send one request: a global slot and one of its endpoint's.
pub(super) type Permit = (OwnedSemaphorePermit, OwnedSemaphorePermit);

impl Permits {
    pub fn new(config: &DeliveryConfig) -> Self {
        // At most 64 GiB (the key's range): 2^26 KiB.
        let bytes_total = u32::try_from(config.max_in_flight_bytes / 1024)
            .unwrap_or(u32::MAX)
            .max(1);
        Self {
            global: Arc::new(Semaphore::new(config.max_in_flight)),
            per_endpoint: Mutex::new(HashMap::new()),
            per_endpoint_limit: config.per_endpoint,
            bytes: Arc::new(Semaphore::new(bytes_total as usize)),
            bytes_total,
        }
    }

    /// The KiB of the byte budget a delivery of a `len`-byte payload holds: twice the payload
    /// (the payload read from the store, and the body built from it), and at most the whole
    /// budget, so that a payload larger than it goes out alone.
    pub(super) fn share(&self, len: usize) -> u32 {
        let kib = (len as u64).saturating_mul(2).div_ceil(1024);
        u32::try_from(kib).unwrap_or(u32::MAX).min(self.bytes_total)
    }

    /// `kib` of the byte budget now, if free.
    pub(super) fn try_bytes(&self, kib: u32) -> Option<OwnedSemaphorePermit> {
        self.bytes.clone().try_acquire_many_owned(kib).ok()
    }

    /// `kib` of the byte budget, once free (first come, first served).
    pub(super) async fn bytes(&self, kib: u32) -> Option<OwnedSemaphorePermit> {
        self.bytes.clone().acquire_many_owned(kib).await.ok()
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn permits(bytes: u64) -> Permits {
        let mut config = crate::config::Config::from_toml_str("").unwrap().delivery;
        config.max_in_flight_bytes = bytes;
        Permits::new(&config)
    }

    #[test]
    fn a_payload_holds_twice_its_size_within_the_budget() {
        let p = permits(1 << 20);
        assert_eq!(p.share(0), 0);
        assert_eq!(p.share(1), 1);
        assert_eq!(p.share(512), 1);
        assert_eq!(p.share(513), 2);
        assert_eq!(p.share(300 << 10), 600);
        // Larger than the budget: all of it, so it goes out alone rather than never.
        assert_eq!(p.share(4 << 20), 1024);
        assert_eq!(p.share(usize::MAX), 1024);
    }

    #[test]
    fn the_budget_is_shared_until_spent() {
        let p = permits(1 << 20);
        let first = p.try_bytes(p.share(300 << 10)).unwrap();
        assert!(
            p.try_bytes(p.share(300 << 10)).is_none(),
            "600 + 600 KiB > 1 MiB"
        );
        let small = p.try_bytes(p.share(100 << 10)).unwrap();
        drop(first);
        let all = p.try_bytes(p.share(400 << 10));
        assert!(all.is_some(), "freed when the first let go");
        drop((small, all));
        assert!(p.try_bytes(1024).is_some());
    }
}
