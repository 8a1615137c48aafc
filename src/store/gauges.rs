//! The store's metrics: the commit histograms its writer records, and the gauges read from it
//! at each scrape (outbox, endpoints, messages, attempts, file size, free space, write state).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

use super::{Store, WriteState};
use crate::metrics::{gauge, Metrics};

/// The store's own instruments (commit duration and batch size), handed to its writer when
/// metrics are on.
#[derive(Clone, Debug)]
pub struct StoreMetrics {
    pub commit_duration: Histogram,
    pub commit_batch: Histogram,
}

impl StoreMetrics {
    pub fn new() -> Self {
        Self {
            commit_duration: Histogram::new(exponential_buckets(0.000_25, 2.0, 14)),
            commit_batch: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
        }
    }

    /// Adds the histograms to `metrics`.
    pub fn register(&self, metrics: &Metrics) {
        metrics.register(
            "store_commit_duration_seconds",
            "Time of one durable commit of the store's writer (a batch of writes)",
            self.commit_duration.clone(),
        );
        metrics.register(
            "store_commit_batch_size",
            "Writes committed together in one durable transaction",
            self.commit_batch.clone(),
        );
    }
}

impl Default for StoreMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The gauges read from the store at each scrape.
pub struct Gauges(pub(super) Store);

impl std::fmt::Debug for Gauges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("store::Gauges")
    }
}

impl Collector for Gauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let now = crate::time::now_ms();
        if let Ok(stats) = self.0.stats_now() {
            gauge(
                &mut encoder,
                "outbox_pending",
                "Deliveries waiting in the outbox (due or scheduled for a retry)",
                stats.pending_deliveries,
            )?;
            #[allow(clippy::cast_precision_loss)]
            let age = stats
                .oldest_pending_ms
                .map_or(0.0, |at| (now - at).max(0) as f64 / 1000.0);
            gauge(
                &mut encoder,
                "outbox_oldest_pending_age_seconds",
                "Age of the oldest alert with a delivery still pending (0: none)",
                age,
            )?;
            let g = ConstGauge::new(0i64);
            let mut family = encoder.encode_descriptor(
                "endpoints",
                "Webhook endpoints, by state",
                None,
                g.metric_type(),
            )?;
            let disabled = stats.disabled_endpoints;
            for (state, n) in [
                ("enabled", stats.endpoints.saturating_sub(disabled)),
                ("disabled", disabled),
            ] {
                ConstGauge::new(n).encode(family.encode_family(&[("state", state)])?)?;
            }
            gauge(
                &mut encoder,
                "messages",
                "Accepted alerts the store keeps (until retention removes ended ones)",
                stats.messages,
            )?;
            gauge(
                &mut encoder,
                "attempts",
                "Attempts the attempt log keeps",
                stats.attempts,
            )?;
        }
        if let Some(size) = self.0.size_bytes() {
            gauge(
                &mut encoder,
                "store_size_bytes",
                "Size of the store file",
                size,
            )?;
        }
        if let Some(free) = self.0.free_bytes() {
            gauge(
                &mut encoder,
                "store_free_bytes",
                "Bytes free on the data volume",
                free,
            )?;
        }
        let state = self.0.write_state();
        let g = ConstGauge::new(0i64);
        let mut family = encoder.encode_descriptor(
            "store_state",
            "What the store can write: 1 for the current state",
            None,
            g.metric_type(),
        )?;
        for (name, on) in [
            ("ok", state == WriteState::Ok),
            ("low_space", matches!(state, WriteState::LowSpace { .. })),
            ("full", matches!(state, WriteState::Full { .. })),
            ("reopening", matches!(state, WriteState::Reopening { .. })),
        ] {
            ConstGauge::new(i64::from(on)).encode(family.encode_family(&[("state", name)])?)?;
        }
        Ok(())
    }
}
