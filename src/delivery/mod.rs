//! Signed delivery: the dispatcher that drains the durable outbox.
//!
//! It wakes when an alert is accepted (and every `delivery.poll_interval_ms` for scheduled
//! retries), takes due deliveries within the global and per-endpoint concurrency limits, sends
//! each signed (Standard Webhooks v1, one signature per live secret), and records the attempt
//! with its consequences in one store transaction: done, retry at the next scheduled time, or
//! give up; endpoints that answer 410 or keep failing are disabled. On restart it resumes from
//! the outbox: at-least-once, and `webhook-id` lets receivers drop duplicates.

pub mod circuit;
pub mod client;
pub mod rate;
pub mod schedule;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use crate::config::DeliveryConfig;
use std::time::{Duration, Instant};

use ring::rand::SecureRandom as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::app::App;
use crate::ids::new_id;
use crate::model::{Attempt, AttemptOutcome, Endpoint, Message};
use crate::secrets::SigningSecret;
use crate::store::{AttemptRecord, EndpointEffect, Take};
use crate::time::now_ms;
use client::Outgoing;
use schedule::{
    classify, message_body, next_delay_ms, parse_retry_after, signature_header, Verdict,
};

/// Every `error` an attempt can record (besides `retry_after=<seconds>`), each explained in the
/// README's table.
pub const ATTEMPT_ERRORS: [&str; 10] = [
    "timeout",
    "connect",
    "tls",
    "egress_denied",
    "request",
    "invalid_url",
    "secret_unavailable",
    "redirect",
    "gone",
    "endpoint_disabled",
];

/// Runs the dispatcher until the task is dropped (the server aborts it at shutdown; deliveries
/// in flight then are made again after the restart).
pub async fn run(app: Arc<App>) {
    let dispatcher = Arc::new(Dispatcher {
        in_flight: Mutex::new(HashSet::new()),
        app: app.clone(),
    });
    loop {
        let poll = Duration::from_millis(app.delivery.config().poll_interval_ms);
        // A pass reads the store: off the async workers.
        let this = dispatcher.clone();
        let next_due = match tokio::task::spawn_blocking(move || this.launch_due()).await {
            Ok(Ok(next)) => next,
            // The store says why (once); the next pass tries again.
            Ok(Err(crate::store::StoreError::Unavailable(_))) => None,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "delivery: reading the outbox failed");
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "delivery: the dispatcher pass failed");
                None
            }
        };
        // Sleep until the next retry is due, or the poll interval, or a wake-up.
        let wait = next_due
            .and_then(|due| i64::try_from(due).ok())
            .map(|due| Duration::from_millis(u64::try_from(due - now_ms()).unwrap_or(0)))
            .map_or(poll, |until| until.min(poll));
        tokio::select! {
            () = app.delivery.wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// The delivery machinery shared by the API (wake-ups, test sends) and the dispatcher.
pub struct Delivery {
    /// The `[delivery]` settings now in force (a reload swaps them).
    settings: RwLock<Arc<DeliveryConfig>>,
    /// The client deliveries go through (a reload builds a new one; requests in flight finish on
    /// the one they started with).
    egress: RwLock<Arc<client::Egress>>,
    /// Notified when deliveries may have become due (an alert accepted, a resend).
    pub wake: tokio::sync::Notify,
    /// `delivery.max_in_flight` and `delivery.per_endpoint`, for every request hookd sends
    /// (fixed until a restart).
    pub permits: Permits,
    /// Endpoints that keep failing, whose deliveries are held.
    pub circuits: Arc<circuit::Circuits>,
    /// Token buckets of the endpoints with a `rateLimit`.
    pub rates: rate::RateLimits,
}

impl Delivery {
    pub fn new(config: &DeliveryConfig, egress: client::Egress) -> Self {
        Self {
            circuits: Arc::new(circuit::Circuits::new(config)),
            rates: rate::RateLimits::default(),
            permits: Permits {
                global: Arc::new(Semaphore::new(config.max_in_flight)),
                per_endpoint: Mutex::new(HashMap::new()),
                per_endpoint_limit: config.per_endpoint,
            },
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
}

/// The concurrency limits of outgoing requests, shared by the dispatcher and test sends.
pub struct Permits {
    global: Arc<Semaphore>,
    per_endpoint: Mutex<HashMap<String, Arc<Semaphore>>>,
    per_endpoint_limit: usize,
}

/// Leave to send one request: a global slot and one of its endpoint's.
pub type Permit = (OwnedSemaphorePermit, OwnedSemaphorePermit);

impl Permits {
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
    fn try_acquire(&self, endpoint_id: &str) -> Result<Permit, Busy> {
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

    fn any_free(&self) -> bool {
        self.global.available_permits() > 0
    }

    /// How many more requests to `endpoint_id` may start now.
    fn available(&self, endpoint_id: &str) -> usize {
        self.endpoint(endpoint_id)
            .map_or(0, |s| s.available_permits())
            .min(self.global.available_permits())
    }
}

/// Which limit a delivery ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Busy {
    Endpoint,
    Global,
}

struct Dispatcher {
    app: Arc<App>,
    in_flight: Mutex<HashSet<String>>,
}

impl Dispatcher {
    /// Starts every due delivery that the concurrency limits and circuits allow, endpoint by
    /// endpoint, so a slow or dead receiver's backlog does not hold up the others. Returns when
    /// the next delivery not yet due is due. Blocking (reads the store).
    fn launch_due(self: &Arc<Self>) -> Result<Option<u64>, crate::store::StoreError> {
        let delivery = &self.app.delivery;
        let permits = &delivery.permits;
        if !permits.any_free() {
            return Ok(None); // a finishing delivery wakes the dispatcher
        }
        let now = now_ms();
        // When the first throttled endpoint gets its next token.
        let next_token = std::cell::Cell::new(None::<i64>);
        let share = |endpoint_id: &str| match delivery.circuits.allow(endpoint_id, now) {
            circuit::Allow::All => permits.available(endpoint_id),
            circuit::Allow::Probe => permits.available(endpoint_id).min(1),
            circuit::Allow::Hold => 0,
        };
        let throttle = |endpoint_id: &str, rate: u32| {
            let (tokens, next) = delivery.rates.available(endpoint_id, rate, now);
            if let Some(at) = next {
                next_token.set(Some(next_token.get().map_or(at, |t| t.min(at))));
            }
            tokens
        };
        let take = |key: &str, due: u64| {
            let Some((_, endpoint_id)) = key.split_once('/') else {
                return Take::Skip;
            };
            if self.in_flight.lock().is_ok_and(|s| s.contains(key)) {
                return Take::Skip;
            }
            let permit = match permits.try_acquire(endpoint_id) {
                Ok(permit) => permit,
                Err(Busy::Endpoint) => return Take::NextEndpoint,
                Err(Busy::Global) => return Take::Stop,
            };
            delivery.circuits.started(endpoint_id);
            delivery.rates.take(endpoint_id);
            let key = key.to_owned();
            if let Ok(mut set) = self.in_flight.lock() {
                set.insert(key.clone());
            }
            let this = self.clone();
            tokio::spawn(async move {
                this.deliver(due, &key).await;
                if let Ok(mut set) = this.in_flight.lock() {
                    set.remove(&key);
                }
                drop(permit);
                this.app.delivery.wake.notify_one();
            });
            Take::Taken
        };
        let next_due = self.app.store.scan_due(now, share, throttle, take)?;
        let next_token = next_token.get().and_then(|t| u64::try_from(t).ok());
        Ok(match (next_due, next_token) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    async fn deliver(&self, due: u64, key: &str) {
        let app = &self.app;
        let loaded = match app.store.delivery(key) {
            Ok(Some(found)) => found,
            Ok(None) => return, // finished or requeued meanwhile
            Err(e @ crate::store::StoreError::Corrupt(_)) => {
                // It would fail the same way on every pass: take it out of the due index.
                tracing::error!(delivery = key, error = %e, "delivery: cannot load; it is marked failed");
                if let Err(e) = app.store.quarantine(due, key.to_owned()).await {
                    tracing::error!(delivery = key, error = %e, "delivery: cannot mark it failed");
                }
                return;
            }
            Err(e) => {
                tracing::error!(delivery = key, error = %e, "delivery: cannot load");
                return;
            }
        };
        let (delivery, message, endpoint) = loaded;
        if delivery.state != crate::model::DeliveryState::Pending
            || delivery.next_attempt_ms > now_ms()
        {
            return;
        }
        let attempt_no = delivery.attempts + 1;
        let message_created_ms = message.as_ref().map(|m| m.created_at_ms);
        let (attempt, effect) = match (message, endpoint) {
            (Some(message), Some(endpoint)) if !endpoint.disabled => {
                let (mut attempt, verdict) = attempt(app, &endpoint, &message, attempt_no).await;
                let success = verdict == Some(Verdict::Success);
                if app
                    .delivery
                    .circuits
                    .finished(&endpoint.id, success, now_ms())
                {
                    tracing::warn!(
                        endpoint = %endpoint.id,
                        failures = app.delivery.config().circuit_failures,
                        "delivery: the endpoint keeps failing; its circuit is open and its deliveries wait for a probe"
                    );
                }
                let effect = match verdict {
                    Some(Verdict::Success) => EndpointEffect::Success,
                    Some(Verdict::Gone) => EndpointEffect::Gone,
                    _ => EndpointEffect::Failure {
                        now_ms: attempt.at_ms,
                        disable_after_ms: secs_to_ms(app.delivery.config().disable_after_secs),
                    },
                };
                if matches!(verdict, Some(Verdict::Retry) | None) {
                    let c = app.delivery.config();
                    let retry_after = attempt_retry_after(&attempt);
                    match next_delay_ms(
                        attempt_no,
                        &c.retry_schedule_secs,
                        c.jitter_percent,
                        retry_after,
                        c.max_retry_after_secs,
                        random_u32(app),
                    ) {
                        Some(delay) => {
                            attempt.outcome = AttemptOutcome::Retrying;
                            attempt.next_attempt_ms =
                                Some(attempt.at_ms + i64::try_from(delay).unwrap_or(i64::MAX / 2));
                        }
                        None => attempt.outcome = AttemptOutcome::Failed,
                    }
                }
                (attempt, effect)
            }
            (_, endpoint) => {
                let why = if endpoint.is_some() {
                    "endpoint_disabled"
                } else {
                    "endpoint_deleted"
                };
                let ids = (delivery.endpoint_id.as_str(), delivery.message_id.as_str());
                let a = failed_attempt(app, ids, attempt_no, now_ms(), why);
                (a, EndpointEffect::None)
            }
        };
        if let Some(m) = &app.metrics {
            record_metrics(m, &attempt, message_created_ms);
        }
        let outcome = attempt.outcome;
        let record = AttemptRecord {
            delivery_key: Some(key.to_owned()),
            attempt,
            effect,
        };
        match app.store.record_attempt(record).await {
            Ok(disabled)
                if disabled
                    && matches!(
                        effect,
                        EndpointEffect::Gone | EndpointEffect::Failure { .. }
                    ) =>
            {
                tracing::warn!(delivery = key, "delivery: endpoint disabled");
            }
            Ok(_) => tracing::debug!(delivery = key, ?outcome, "delivery attempt recorded"),
            Err(e) => {
                tracing::error!(delivery = key, error = %e, "delivery: cannot record the attempt")
            }
        }
    }
}

/// Counts an attempt: made (when it reached the network), failed by reason, given up, and for a
/// success the time since the alert was accepted.
fn record_metrics(m: &crate::metrics::Metrics, a: &Attempt, created_ms: Option<i64>) {
    let reached = a.status_code.is_some()
        || a.duration_ms > 0
        || a.error.as_deref().is_some_and(|e| {
            !matches!(
                e,
                "endpoint_disabled" | "endpoint_deleted" | "secret_unavailable"
            )
        });
    if reached {
        m.notifications.inc();
        #[allow(clippy::cast_precision_loss)]
        m.attempt_duration.observe(a.duration_ms as f64 / 1000.0);
    }
    match a.outcome {
        AttemptOutcome::Succeeded => {
            if let Some(created) = created_ms {
                #[allow(clippy::cast_precision_loss)]
                m.notification_latency
                    .observe((now_ms() - created).max(0) as f64 / 1000.0);
            }
        }
        AttemptOutcome::Retrying | AttemptOutcome::Failed => {
            let reason = crate::metrics::failure_reason(a.status_code, a.error.as_deref());
            m.notifications_failed
                .get_or_create(&crate::metrics::ReasonLabel { reason })
                .inc();
            if a.outcome == AttemptOutcome::Failed {
                m.given_up.inc();
            }
        }
    }
}

/// The `Retry-After` a failed attempt carried, stashed in its error field by [`attempt`].
fn attempt_retry_after(a: &Attempt) -> Option<u64> {
    a.error
        .as_deref()
        .and_then(|e| e.strip_prefix("retry_after="))
        .and_then(|v| parse_retry_after(v, a.at_ms))
}

fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

fn random_u32(app: &App) -> u32 {
    let mut b = [0u8; 4];
    let _ = app.rng.fill(&mut b);
    u32::from_le_bytes(b)
}

/// The secrets that sign for `endpoint` now: the current secret, then previous ones still in
/// their grace period.
fn signing_keys(app: &App, endpoint: &Endpoint) -> Result<Vec<SigningSecret>, String> {
    let now = now_ms();
    std::iter::once(&endpoint.secret)
        .chain(
            endpoint
                .previous_secrets
                .iter()
                .filter(|s| s.expires_at_ms.is_some_and(|x| x > now)),
        )
        .map(|sealed| {
            let plain = app
                .master_key
                .open(&endpoint.id, &sealed.sealed)
                .map_err(|e| e.to_string())?;
            SigningSecret::from_stored(plain, sealed.algorithm).map_err(|e| e.to_string())
        })
        .collect()
}

/// The endpoint's custom headers, unsealed.
fn custom_headers(app: &App, endpoint: &Endpoint) -> Result<Vec<(String, String)>, String> {
    endpoint
        .headers
        .iter()
        .map(|h| {
            let aad = crate::model::SealedHeader::aad(&endpoint.id, &h.name);
            let plain = app
                .master_key
                .open(&aad, &h.sealed)
                .map_err(|e| format!("header {}: {e}", h.name))?;
            let value =
                String::from_utf8(plain).map_err(|_| format!("header {}: not text", h.name))?;
            Ok((h.name.clone(), value))
        })
        .collect()
}

/// The client presenting the endpoint's certificate, if it has one.
fn mtls_client(
    app: &App,
    egress: &client::Egress,
    endpoint: &Endpoint,
) -> Result<Option<client::HttpClient>, client::ErrorKind> {
    let Some(cert) = &endpoint.client_certificate else {
        return Ok(None);
    };
    egress
        .mtls_client(&endpoint.id, &cert.fingerprint, || {
            let aad = crate::model::ClientCertificate::aad(&endpoint.id);
            let key = app
                .master_key
                .open(&aad, &cert.sealed_key)
                .map_err(|e| e.to_string())?;
            let key = String::from_utf8(key).map_err(|_| "the key is not text".to_owned())?;
            Ok((cert.chain_pem.clone(), key))
        })
        .map(Some)
}

/// Makes one attempt of `message` to `endpoint`; returns the attempt (outcome still to be
/// decided by the caller for failures) and the verdict on the answer, `None` for no answer.
pub async fn attempt(
    app: &App,
    endpoint: &Endpoint,
    message: &Message,
    attempt_no: u32,
) -> (Attempt, Option<Verdict>) {
    let at_ms = now_ms();
    let started = Instant::now();
    let body = message_body(&message.event_type, message.created_at_ms, &message.data);
    let timestamp = at_ms / 1000;
    let signature = if endpoint.signing_enabled {
        match signing_keys(app, endpoint) {
            Ok(keys) => Some(signature_header(&keys, &message.id, timestamp, &body)),
            Err(e) => {
                tracing::error!(endpoint = %endpoint.id, error = %e, "cannot unseal the signing secret");
                let ids = (endpoint.id.as_str(), message.id.as_str());
                let failed = failed_attempt(app, ids, attempt_no, at_ms, "secret_unavailable");
                return (failed, None);
            }
        }
    } else {
        None
    };
    let ids = (endpoint.id.as_str(), message.id.as_str());
    let headers = match custom_headers(app, endpoint) {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(endpoint = %endpoint.id, error = %e, "cannot unseal a custom header");
            return (
                failed_attempt(app, ids, attempt_no, at_ms, "secret_unavailable"),
                None,
            );
        }
    };
    let egress = app.delivery.egress();
    let client = match mtls_client(app, &egress, endpoint) {
        Ok(c) => c,
        Err(kind) => return (failed_attempt(app, ids, attempt_no, at_ms, kind), None),
    };
    let result = egress
        .send(Outgoing {
            url: &endpoint.url,
            body,
            msg_id: &message.id,
            timestamp,
            signature,
            headers,
            client,
        })
        .await;
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut a = failed_attempt(app, (&endpoint.id, &message.id), attempt_no, at_ms, "");
    a.duration_ms = duration_ms;
    match result {
        Ok(resp) => {
            let verdict = classify(resp.status);
            a.status_code = Some(resp.status);
            a.response_body = resp.body;
            a.error = match verdict {
                Verdict::Success => {
                    a.outcome = AttemptOutcome::Succeeded;
                    None
                }
                Verdict::Gone => Some("gone".into()),
                Verdict::Retry if (300..400).contains(&resp.status) => Some("redirect".into()),
                // Stored as the seconds it asked for (a number), never as the receiver's text.
                Verdict::Retry => resp
                    .retry_after
                    .and_then(|r| parse_retry_after(&r, at_ms))
                    .map(|secs| format!("retry_after={secs}")),
            };
            (a, Some(verdict))
        }
        Err(kind) => {
            a.error = Some(kind.into());
            (a, None)
        }
    }
}

/// An attempt that failed with `error` ("" for none yet), for `(endpoint_id, message_id)`.
fn failed_attempt(
    app: &App,
    (endpoint_id, message_id): (&str, &str),
    attempt_no: u32,
    at_ms: i64,
    error: &str,
) -> Attempt {
    Attempt {
        id: new_id(crate::ids::ATTEMPT_PREFIX, at_ms, &app.rng),
        endpoint_id: endpoint_id.to_owned(),
        message_id: message_id.to_owned(),
        attempt: attempt_no,
        at_ms,
        duration_ms: 0,
        status_code: None,
        error: (!error.is_empty()).then(|| error.to_owned()),
        response_body: String::new(),
        outcome: AttemptOutcome::Failed,
        next_attempt_ms: None,
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
