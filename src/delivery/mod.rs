//! Signed delivery: the dispatcher that drains the durable outbox.
//!
//! It wakes when an alert is accepted (and every `delivery.poll_interval_ms` for scheduled
//! retries), takes due deliveries within the global and per-endpoint concurrency limits, sends
//! each signed (Standard Webhooks v1, one signature per live secret), and records the attempt
//! with its consequences in one store transaction: done, retry at the next scheduled time, or
//! give up; endpoints that answer 410 or keep failing are disabled. On restart it resumes from
//! the outbox: at-least-once, and `webhook-id` lets receivers drop duplicates.
//!
//! This file is [`Delivery`], what the rest of hookd sees: built by the composition root from
//! what it uses (the store, the vault, the metrics), offering wake-ups, circuit views and test
//! sends. The parts: [`dispatch`] (the dispatcher loop), [`attempt`] (one signed request and its
//! record), [`permits`] (concurrency limits), [`circuit`], [`rate`], [`schedule`] (pure retry
//! and signing rules) and [`client`] (the egress-guarded HTTP client).

mod attempt;
pub mod circuit;
pub mod client;
mod dispatch;
mod permits;
pub mod rate;
mod render;
pub mod schedule;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use ring::rand::SystemRandom;

use crate::config::DeliveryConfig;
use crate::ids::new_id;
use crate::metrics::Metrics;
use crate::model::{Attempt, CircuitView, Endpoint, Message};
use crate::store::{AttemptRecord, EndpointEffect, Store, StoreError};
use crate::time::now_ms;
use crate::vault::Vault;

pub use dispatch::{run, Phase};
use permits::Permits;

/// Every `error` an attempt can record (besides `retry_after=<seconds>`), each explained in the
/// README's table.
pub const ATTEMPT_ERRORS: [&str; 13] = [
    "timeout",
    "connect",
    "tls",
    "egress_denied",
    "request",
    "invalid_url",
    "secret_unavailable",
    "redirect",
    "gone",
    "refused",
    "transform_failed",
    "transformer_missing",
    "endpoint_disabled",
];

/// What delivery uses of the rest of hookd, handed over by the composition root.
pub struct Deps {
    pub store: Store,
    /// Opens the endpoints' signing secrets, header values and client keys.
    pub vault: Arc<Vault>,
    /// `None` when metrics are off.
    pub metrics: Option<Arc<Metrics>>,
    /// Runs the endpoints' transformer plugins (`format = "plugin:<name>"`).
    pub transformers: Arc<dyn crate::format::Transformers>,
    /// Threads for rendering large events off the async workers.
    pub heavy: Arc<crate::heavy::Heavy>,
}

/// The delivery machinery shared by the API (wake-ups, test sends, circuit views) and the
/// dispatcher.
pub struct Delivery {
    deps: Deps,
    rng: SystemRandom,
    /// The `[delivery]` settings now in force (a reload swaps them).
    settings: RwLock<Arc<DeliveryConfig>>,
    /// The client deliveries go through (a reload builds a new one; requests in flight finish on
    /// the one they started with).
    egress: RwLock<Arc<client::Egress>>,
    /// Notified when deliveries may have become due (an alert accepted, a resend).
    wake: tokio::sync::Notify,
    /// `delivery.max_in_flight` and `delivery.per_endpoint`, for every request hookd sends
    /// (fixed until a restart).
    permits: Permits,
    /// Endpoints that keep failing, whose deliveries are held.
    circuits: Arc<circuit::Circuits>,
    /// Token buckets of the endpoints with a `rateLimit`.
    rates: rate::RateLimits,
    /// Bodies rendered last, for a message fanned out to many endpoints of one format.
    renders: render::Cache,
}

/// Why a test send was not made.
#[derive(Debug, thiserror::Error)]
pub enum TestSendError {
    /// The endpoint (or hookd) has as many requests in flight as its limits allow.
    #[error("as many deliveries in flight as the limits allow")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Delivery {
    pub fn new(config: &DeliveryConfig, egress: client::Egress, deps: Deps) -> Self {
        Self {
            deps,
            rng: SystemRandom::new(),
            circuits: Arc::new(circuit::Circuits::new(config)),
            rates: rate::RateLimits::default(),
            renders: render::Cache::default(),
            permits: Permits::new(config),
            settings: RwLock::new(Arc::new(config.clone())),
            egress: RwLock::new(Arc::new(egress)),
            wake: tokio::sync::Notify::new(),
        }
    }

    /// The settings now in force.
    pub fn config(&self) -> Arc<DeliveryConfig> {
        self.settings
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The delivery client now in force.
    pub fn egress(&self) -> Arc<client::Egress> {
        self.egress
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Applies reloaded settings and the client built from them.
    pub fn reconfigure(&self, config: &DeliveryConfig, egress: client::Egress) {
        self.circuits.configure(config);
        *self
            .settings
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(config.clone());
        *self
            .egress
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(egress);
        self.wake.notify_one();
    }

    /// Deliveries may have become due (an alert accepted, deliveries requeued): the dispatcher
    /// looks now instead of at its next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// A person says the endpoint's receiver is back (enabled it): its circuit closes and its
    /// deliveries go at once, without waiting for a probe.
    pub fn resume(&self, endpoint_id: &str) {
        self.circuits.reset(endpoint_id);
        self.wake.notify_one();
    }

    /// The endpoint is deleted: its circuit and rate bucket go.
    pub fn forget(&self, endpoint_id: &str) {
        self.circuits.reset(endpoint_id);
        self.rates.forget(endpoint_id);
    }

    /// The endpoint's delivery circuit, as the API shows it.
    pub fn circuit(&self, endpoint_id: &str) -> CircuitView {
        self.circuits.view(endpoint_id)
    }

    /// The scrape-time gauge of open circuits, for the metrics registry.
    pub fn circuit_gauge(&self) -> circuit::OpenCircuits {
        circuit::OpenCircuits(self.circuits.clone())
    }

    /// The request a delivery of `(event_type, data)` to `endpoint` would make now, as JSON:
    /// method, URL, headers, body. Nothing secret shows: signatures and sealed header values
    /// are masked, and so is a routing key in the body.
    ///
    /// # Errors
    /// Why no request would be made: the transformer is missing, or fails (with its reason).
    pub async fn preview(
        &self,
        endpoint: &Endpoint,
        event_type: &str,
        data: String,
    ) -> Result<serde_json::Value, String> {
        use crate::model::SigningAlgorithm;
        let now = now_ms();
        let message = Message {
            id: new_id(crate::ids::MESSAGE_PREFIX, now, &self.rng),
            event_type: event_type.to_owned(),
            data,
            created_at_ms: now,
        };
        let rendered = match self.render(endpoint, &message, render::Keys::Masked).await {
            Ok(r) => r,
            Err(render::RenderFailure::Missing(name)) => {
                return Err(format!("the configuration has no transformer '{name}'"))
            }
            Err(render::RenderFailure::Failed(why) | render::RenderFailure::Unsealed(why)) => {
                return Err(why)
            }
        };
        let mut headers = serde_json::Map::new();
        headers.insert("content-type".into(), rendered.content_type.into());
        headers.insert(
            "user-agent".into(),
            concat!("hookd/", env!("CARGO_PKG_VERSION")).into(),
        );
        headers.insert("webhook-id".into(), message.id.into());
        headers.insert("webhook-timestamp".into(), (now / 1000).to_string().into());
        if endpoint.signing_enabled {
            let live = std::iter::once(&endpoint.secret).chain(
                endpoint
                    .previous_secrets
                    .iter()
                    .filter(|s| s.expires_at_ms.is_some_and(|x| x > now)),
            );
            let masked: Vec<&str> = live
                .map(|s| match s.algorithm {
                    SigningAlgorithm::HmacSha256 => "v1,****",
                    SigningAlgorithm::Ed25519 => "v1a,****",
                })
                .collect();
            headers.insert("webhook-signature".into(), masked.join(" ").into());
        }
        for h in &endpoint.headers {
            headers.insert(h.name.clone(), h.mask.clone().into());
        }
        for (name, value) in rendered.headers {
            headers.insert(name, value.into());
        }
        Ok(serde_json::json!({
            "method": "POST",
            "url": endpoint.url,
            "format": endpoint.format,
            "headers": headers,
            "body": String::from_utf8_lossy(&rendered.body),
        }))
    }

    /// Sends a signed test event to `endpoint` now (see [`crate::format::test_event`]) and
    /// records the attempt. A test send
    /// is one attempt: logged, not retried, and it does not count toward disabling the endpoint.
    /// It waits (at most `delivery.timeout_ms`) for the same permits as any delivery, so it
    /// cannot exceed `delivery.per_endpoint` or `delivery.max_in_flight`.
    ///
    /// # Errors
    /// [`TestSendError::Busy`] when no permit came in time; a store error recording it.
    pub async fn test_send(&self, endpoint: &Endpoint) -> Result<Attempt, TestSendError> {
        let wait = Duration::from_millis(self.config().timeout_ms);
        let Some(_permit) = self.permits.acquire(&endpoint.id, wait).await else {
            return Err(TestSendError::Busy);
        };
        let now = now_ms();
        // In the endpoint's format: a chat or incident tool gets a realistic sample alert.
        let (event_type, data) = crate::format::test_event(&endpoint.format, &endpoint.id);
        let message = Message {
            id: new_id(crate::ids::MESSAGE_PREFIX, now, &self.rng),
            event_type: event_type.into(),
            data,
            created_at_ms: now,
        };
        let (attempt, _) = self.attempt(endpoint, &message, 1).await;
        self.deps
            .store
            .record_attempt(AttemptRecord {
                delivery_key: None,
                attempt: attempt.clone(),
                effect: EndpointEffect::None,
            })
            .await?;
        Ok(attempt)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_readme_explains_every_attempt_error() {
        let readme = include_str!("../../README.md");
        for kind in super::ATTEMPT_ERRORS {
            assert!(
                readme.contains(&format!("| `{kind}` |")),
                "README.md lacks {kind}"
            );
        }
    }
}
