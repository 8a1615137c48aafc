//! Retention: the background pruner that keeps the store bounded.
//!
//! Each step is one write transaction of at most `retention.batch` removed records, sent through
//! the writer like any write (so it shares group commits and never holds the store for long);
//! steps follow each other with a short pause while there is work, then the pruner sleeps for
//! `retention.interval_secs` or until an endpoint is deleted or disabled. A step:
//! 1. clears the queue and attempt log of deleted endpoints, and fails the queued deliveries of
//!    disabled ones (they would otherwise wait forever);
//! 2. removes messages whose deliveries all ended more than `retention.messages_secs` ago,
//!    with their deliveries (pending deliveries are never removed);
//! 3. trims each endpoint's attempt log to `retention.attempts_per_endpoint` and to
//!    `retention.attempts_secs`, a bounded number of endpoints per step (a rotating cursor).

use redb::ReadableTable;

use super::attempts;
use super::ops::{Op, Report, Retention, Step};
use super::outbox::{delivery_ended, mark_failed, queue_remove, unindex_failed};
use super::schema::DRAIN_DELETED;
use super::tables::Tables;
use super::{decode, Store, StoreError};
use crate::model::{Delivery, DeliveryState, Endpoint};

/// Endpoints whose attempt logs one step looks at.
const ATTEMPT_ENDPOINTS_PER_STEP: usize = 64;

impl Report {
    fn removed(&self) -> usize {
        self.messages + self.deliveries + self.attempts
    }
}

impl Store {
    /// Runs one retention step.
    ///
    /// # Errors
    /// A storage error, or a store that cannot write now.
    pub async fn prune(&self, step: Step) -> Result<Report, StoreError> {
        match self.write(Op::Prune(Box::new(step))).await? {
            super::ops::Done::Pruned(report) => Ok(report),
            _ => Err(StoreError::Storage("writer answered the wrong kind".into())),
        }
    }

    /// Runs retention until the task is dropped (see [`crate::store::retention::run`]).
    pub async fn run_retention(self, settings: tokio::sync::watch::Receiver<Retention>) {
        let wake = self.shared.clone();
        crate::store::retention::run(settings, &wake.prune_wake, |step| self.prune(step)).await;
    }
}

pub(super) fn prune(t: &mut Tables<'_>, step: &Step) -> Result<Report, StoreError> {
    let mut report = Report::default();
    let budget = step.settings.batch.max(1);
    drain_endpoints(t, step, budget, &mut report)?;
    if report.removed() < budget {
        remove_ended_messages(t, step, budget - report.removed(), &mut report)?;
    }
    if report.removed() < budget {
        trim_attempts(t, step, budget - report.removed(), &mut report)?;
    } else {
        report.cursor.clone_from(&step.cursor);
    }
    report.more = report.more || report.removed() >= budget;
    Ok(report)
}

/// Clears what deleted endpoints left, and fails the queues of disabled ones.
fn drain_endpoints(
    t: &mut Tables<'_>,
    step: &Step,
    budget: usize,
    report: &mut Report,
) -> Result<(), StoreError> {
    let mut draining = Vec::new();
    for entry in t.drain.table()?.iter()? {
        let (k, v) = entry?;
        draining.push((k.value().to_owned(), v.value()));
    }
    let now = u64::try_from(step.now_ms).unwrap_or(0);
    for (ep, kind) in draining {
        let left = budget.saturating_sub(report.removed());
        if left == 0 {
            report.more = true;
            return Ok(());
        }
        let endpoint = t
            .endpoints
            .table()?
            .get(ep.as_str())?
            .map(|v| decode::<Endpoint>(&ep, v.value()))
            .transpose()?;
        let deleted = kind == DRAIN_DELETED || endpoint.is_none();
        if !deleted && !endpoint.as_ref().is_some_and(|e| e.disabled) {
            t.drain.remove(ep.as_str())?; // enabled again
            continue;
        }
        let mut queued = Vec::new();
        for entry in t
            .queue
            .table()?
            .range::<(&str, u64, &str)>((ep.as_str(), 0, "")..(ep.as_str(), u64::MAX, ""))?
            .take(left)
        {
            let (k, ()) = (entry?.0, ());
            let (_, due, msg) = k.value();
            queued.push((due, msg.to_owned()));
        }
        for (due, msg) in &queued {
            queue_remove(t, &ep, *due, msg)?;
            let key = Delivery::key(msg, &ep);
            let record = t
                .deliveries
                .table()?
                .get(key.as_str())?
                .map(|v| decode::<Delivery>(&key, v.value()));
            match record {
                Some(Ok(mut d)) if !deleted => {
                    mark_failed(t, &key, &mut d, step.now_ms)?;
                }
                Some(_) => {
                    t.deliveries.remove(key.as_str())?;
                }
                None => {}
            }
            delivery_ended(t, msg, now)?;
            report.deliveries += 1;
        }
        if deleted {
            let left = budget.saturating_sub(report.removed());
            report.attempts += attempts::remove_oldest(t, &ep, left, |_, _| true)?;
        }
        let queue_left = t.head_of.table()?.get(ep.as_str())?.is_some();
        let log_left = deleted && t.attempt_counts.table()?.get(ep.as_str())?.is_some();
        if !queue_left && !log_left {
            t.drain.remove(ep.as_str())?;
        }
    }
    Ok(())
}

/// Removes messages whose deliveries all ended before the cutoff, with their deliveries.
fn remove_ended_messages(
    t: &mut Tables<'_>,
    step: &Step,
    budget: usize,
    report: &mut Report,
) -> Result<(), StoreError> {
    let cutoff = u64::try_from(step.now_ms.saturating_sub(step.settings.messages_ms)).unwrap_or(0);
    let mut ended = Vec::new();
    for entry in t.ended.table()?.range::<(u64, &str)>(..(cutoff, ""))? {
        let (k, ()) = (entry?.0, ());
        let (at, msg) = k.value();
        ended.push((at, msg.to_owned()));
        if ended.len() >= budget {
            report.more = true;
            break;
        }
    }
    for (at, msg) in ended {
        let prefix = format!("{msg}/");
        let mut deliveries = Vec::new();
        let mut pending = 0u32;
        for entry in t.deliveries.table()?.range::<&str>(prefix.as_str()..)? {
            let (k, v) = entry?;
            if !k.value().starts_with(&prefix) {
                break;
            }
            let d = decode::<Delivery>(k.value(), v.value()).ok();
            pending += u32::from(
                d.as_ref()
                    .is_some_and(|d| d.state == DeliveryState::Pending),
            );
            deliveries.push((k.value().to_owned(), d));
        }
        t.ended.remove((at, msg.as_str()))?;
        if pending > 0 {
            // Not ended after all (never expected): count it pending again, keep everything.
            tracing::warn!(message = %msg, pending, "retention found pending deliveries of an ended message; kept");
            t.message_state.insert(msg.as_str(), (pending, 0))?;
            t.pending_messages.insert(msg.as_str(), ())?;
            continue;
        }
        for (key, d) in &deliveries {
            if let Some(d) = d {
                unindex_failed(t, d)?;
            }
            t.deliveries.remove(key.as_str())?;
        }
        t.messages.remove(msg.as_str())?;
        t.message_state.remove(msg.as_str())?;
        report.messages += 1;
        report.deliveries += deliveries.len();
    }
    Ok(())
}

/// Trims attempt logs to the cap and the age limit, for a bounded run of endpoints.
fn trim_attempts(
    t: &mut Tables<'_>,
    step: &Step,
    mut budget: usize,
    report: &mut Report,
) -> Result<(), StoreError> {
    let cutoff = step.now_ms.saturating_sub(step.settings.attempts_ms);
    let cap = step.settings.attempts_per_endpoint;
    let start = step.cursor.clone().unwrap_or_default();
    let mut endpoints = Vec::new();
    for entry in t.attempt_counts.table()?.range::<&str>(start.as_str()..)? {
        let (k, v) = entry?;
        if !start.is_empty() && k.value() == start {
            continue;
        }
        endpoints.push((k.value().to_owned(), v.value()));
        if endpoints.len() >= ATTEMPT_ENDPOINTS_PER_STEP {
            break;
        }
    }
    let went_round = endpoints.len() < ATTEMPT_ENDPOINTS_PER_STEP;
    // The last endpoint trimmed all the way; a step that runs out of budget resumes after it.
    let mut done = step.cursor.clone();
    for (ep, _) in &endpoints {
        let removed = attempts::remove_oldest(t, ep, budget, |id, count| {
            count > cap
                || crate::ids::timestamp_ms(crate::ids::ATTEMPT_PREFIX, id)
                    .is_some_and(|at| at < cutoff)
        })?;
        budget -= removed;
        report.attempts += removed;
        if budget == 0 {
            report.more = true;
            report.cursor = done;
            return Ok(());
        }
        done = Some(ep.clone());
    }
    if went_round {
        report.cursor = None;
    } else {
        report.cursor = done;
        report.more = true;
    }
    Ok(())
}
