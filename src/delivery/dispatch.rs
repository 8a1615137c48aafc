//! The dispatcher: a loop that starts every due delivery the limits allow, endpoint by
//! endpoint, and for each one makes the attempt and records it with its consequences.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{watch, OwnedSemaphorePermit};
use tokio::task::JoinSet;

use super::attempt::{attempt_retry_after, secs_to_ms};
use super::permits::Busy;
use super::schedule::{next_delay_ms, Verdict};
use super::{circuit, Delivery};
use crate::model::{Attempt, AttemptOutcome};
use crate::store::{AttemptRecord, DeliveryContext, EndpointEffect, Take};
use crate::time::now_ms;

/// What the server tells the dispatcher at shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Running,
    /// Start no delivery; let those in flight finish.
    Drain,
    /// Cut off those still in flight (they are made again after the restart) and return.
    Stop,
}

/// Runs the dispatcher until `phase` leaves [`Phase::Running`]; then waits for the deliveries in
/// flight until they finish or `phase` says [`Phase::Stop`]. When it returns, none of its tasks
/// is left holding the store.
pub async fn run(delivery: Arc<Delivery>, mut phase: watch::Receiver<Phase>) {
    let dispatcher = Arc::new(Dispatcher {
        in_flight: Mutex::new(HashSet::new()),
        tasks: Mutex::new(JoinSet::new()),
        delivery: delivery.clone(),
    });
    // Another instance accepted an alert (a shared backend): this one may take deliveries too.
    let elsewhere = delivery.deps.store.due_elsewhere();
    let due_elsewhere = || async {
        match &elsewhere {
            Some(due) => due.notified().await,
            None => std::future::pending().await,
        }
    };
    // Circuits other instances opened or closed (a shared backend) are this one's too.
    #[cfg(feature = "postgres")]
    let _news = circuit::follow(&delivery);
    while *phase.borrow() == Phase::Running {
        let poll = Duration::from_millis(delivery.config().poll_interval_ms);
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
            () = delivery.wake.notified() => {}
            () = due_elsewhere() => {}
            () = tokio::time::sleep(wait) => {}
            _ = phase.changed() => {}
        }
        dispatcher.reap();
    }
    let mut tasks = std::mem::take(
        &mut *dispatcher
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
    );
    let stop = phase.wait_for(|p| *p == Phase::Stop);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            next = tasks.join_next() => if next.is_none() { return },
            _ = &mut stop => break,
        }
    }
    tasks.shutdown().await;
}

struct Dispatcher {
    delivery: Arc<Delivery>,
    in_flight: Mutex<HashSet<String>>,
    /// The deliveries started, so that shutdown can wait for them.
    tasks: Mutex<JoinSet<()>>,
}

impl Dispatcher {
    /// Forgets the deliveries that have finished.
    fn reap(&self) {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        while tasks.try_join_next().is_some() {}
    }

    /// Starts every due delivery that the concurrency limits and circuits allow, endpoint by
    /// endpoint, so a slow or dead receiver's backlog does not hold up the others. Returns when
    /// the next delivery not yet due is due. Blocking (reads the store).
    fn launch_due(self: &Arc<Self>) -> Result<Option<u64>, crate::store::StoreError> {
        let delivery = &*self.delivery;
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
            let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
            tasks.spawn(async move {
                this.deliver(due, &key).await;
                this.delivery.deps.store.let_go(&key).await;
                if let Ok(mut set) = this.in_flight.lock() {
                    set.remove(&key);
                }
                drop(permit);
                this.delivery.wake.notify_one();
            });
            Take::Taken
        };
        let next_due = self
            .delivery
            .deps
            .store
            .scan_due(now, share, throttle, take)?;
        let next_token = next_token.get().and_then(|t| u64::try_from(t).ok());
        Ok(match (next_due, next_token) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// Reads the delivery `key`; `None` when there is nothing to send (finished or requeued
    /// meanwhile, or unreadable: logged here, and a corrupt one taken out of the due index).
    async fn read(&self, due: u64, key: &str) -> Option<DeliveryContext> {
        let store = &self.delivery.deps.store;
        match store.delivery(key).await {
            Ok(found) => found,
            Err(e @ crate::store::StoreError::Corrupt(_)) => {
                // It would fail the same way on every pass: take it out of the due index.
                tracing::error!(delivery = key, error = %e, "delivery: cannot load; it is marked failed");
                if let Err(e) = store.quarantine(due, key.to_owned()).await {
                    tracing::error!(delivery = key, error = %e, "delivery: cannot mark it failed");
                }
                None
            }
            Err(e) => {
                tracing::error!(delivery = key, error = %e, "delivery: cannot load");
                None
            }
        }
    }

    /// Reads the delivery `key` with its share of `delivery.max_in_flight_bytes` held. One that
    /// does not fit lets go of what it read while it waits for its share, then reads the
    /// delivery again (it may have been answered or requeued meanwhile).
    async fn load(&self, due: u64, key: &str) -> Option<(DeliveryContext, OwnedSemaphorePermit)> {
        let permits = &self.delivery.permits;
        let mut waited: Option<OwnedSemaphorePermit> = None;
        loop {
            let loaded = self.read(due, key).await?;
            let share = permits.share(loaded.1.as_ref().map_or(0, |m| m.data.len()));
            // (A message does not change, so what was waited for fits it.)
            if let Some(held) = waited.take().filter(|h| h.num_permits() >= share as usize) {
                return Some((loaded, held));
            }
            if let Some(held) = permits.try_bytes(share) {
                return Some((loaded, held));
            }
            drop(loaded);
            tracing::debug!(
                delivery = key,
                kib = share,
                "delivery: waits for its share of delivery.max_in_flight_bytes"
            );
            waited = Some(permits.bytes(share).await?);
        }
    }

    async fn deliver(&self, due: u64, key: &str) {
        let d = &*self.delivery;
        let store = &d.deps.store;
        let Some(((delivery, message, endpoint), _bytes)) = self.load(due, key).await else {
            return;
        };
        if delivery.state != crate::model::DeliveryState::Pending
            || delivery.next_attempt_ms > now_ms()
        {
            return;
        }
        let attempt_no = delivery.attempts + 1;
        let message_created_ms = message.as_ref().map(|m| m.created_at_ms);
        let (attempt, effect) = match (message, endpoint) {
            (Some(message), Some(endpoint)) if !endpoint.disabled => {
                let (mut attempt, verdict) = d.attempt(&endpoint, &message, attempt_no).await;
                let success = verdict == Some(Verdict::Success);
                #[cfg(feature = "postgres")]
                let was_open = d.circuits.next_probe(&endpoint.id).is_some();
                if d.circuits.finished(&endpoint.id, success, now_ms()) {
                    tracing::warn!(
                        endpoint = %endpoint.id,
                        failures = d.config().circuit_failures,
                        "delivery: the endpoint keeps failing; its circuit is open and its deliveries wait for a probe"
                    );
                    #[cfg(feature = "postgres")]
                    d.deps
                        .store
                        .tell_circuit(&endpoint.id, d.circuits.next_probe(&endpoint.id));
                }
                #[cfg(feature = "postgres")]
                if success && was_open {
                    d.deps.store.tell_circuit(&endpoint.id, None);
                }
                let effect = match verdict {
                    Some(Verdict::Success) => EndpointEffect::Success,
                    Some(Verdict::Gone) => EndpointEffect::Gone,
                    _ => EndpointEffect::Failure {
                        now_ms: attempt.at_ms,
                        disable_after_ms: secs_to_ms(d.config().disable_after_secs),
                    },
                };
                if matches!(verdict, Some(Verdict::Retry) | None) {
                    let c = d.config();
                    let retry_after = attempt_retry_after(&attempt);
                    match next_delay_ms(
                        attempt_no,
                        &c.retry_schedule_secs,
                        c.jitter_percent,
                        retry_after,
                        c.max_retry_after_secs,
                        d.random_u32(),
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
                let a = d.failed_attempt(ids, attempt_no, now_ms(), why);
                (a, EndpointEffect::None)
            }
        };
        if let Some(m) = &d.deps.metrics {
            record_metrics(m, &attempt, message_created_ms);
        }
        let outcome = attempt.outcome;
        let record = AttemptRecord {
            delivery_key: Some(key.to_owned()),
            attempt,
            effect,
        };
        match store.record_attempt(record).await {
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
