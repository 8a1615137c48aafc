//! The delivery outbox and the attempt log, inside the store's write transactions.
//!
//! An accepted alert is a [`Message`] plus one [`Delivery`] per enabled endpoint, each with an
//! entry in the `due` index keyed by its next attempt time; all written in the transaction that
//! accepts the alert. An attempt is recorded, with its consequences, in one transaction too, so a
//! crash at any point leaves either the old state (the attempt is made again: at-least-once) or
//! the new one.

use std::ops::Bound;

use redb::ReadableTable;

use super::{decode, encode, get, Page, StoreError, Tables};
use crate::model::{Attempt, AttemptOutcome, Delivery, DeliveryState, Endpoint, Message};

/// What an attempt means for its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointEffect {
    /// A 2xx: the endpoint is healthy again.
    Success,
    /// A failure at `now_ms`; the endpoint is disabled once it has been failing without a break
    /// for `disable_after_ms`.
    Failure { now_ms: i64, disable_after_ms: i64 },
    /// 410 Gone: disable the endpoint now.
    Gone,
    /// No effect (the endpoint was already disabled or deleted).
    None,
}

/// An attempt and what follows from it.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// The outbox entry it belongs to; `None` for a test send, which has none.
    pub delivery_key: Option<String>,
    pub attempt: Attempt,
    pub effect: EndpointEffect,
}

fn due_ms(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0)
}

pub(super) fn ingest(t: &mut Tables<'_>, message: &Message) -> Result<usize, StoreError> {
    if t.messages.get(message.id.as_str())?.is_some() {
        return Err(StoreError::Conflict("a message with this id exists"));
    }
    let mut targets = Vec::new();
    for entry in t.endpoints.iter()? {
        let (k, v) = entry?;
        match decode::<Endpoint>(k.value(), v.value()) {
            Ok(endpoint) if !endpoint.disabled => targets.push(endpoint.id),
            Ok(_) => {}
            // One damaged endpoint must not stop alerts to every other.
            Err(e) => {
                tracing::error!(endpoint = %k.value(), error = %e, "endpoint record is corrupt; the alert is not delivered to it")
            }
        }
    }
    t.messages
        .insert(message.id.as_str(), encode(message)?.as_slice())?;
    for endpoint_id in &targets {
        let delivery = Delivery {
            message_id: message.id.clone(),
            endpoint_id: endpoint_id.clone(),
            attempts: 0,
            state: DeliveryState::Pending,
            next_attempt_ms: message.created_at_ms,
        };
        let key = Delivery::key(&message.id, endpoint_id);
        t.deliveries
            .insert(key.as_str(), encode(&delivery)?.as_slice())?;
        t.due
            .insert((due_ms(delivery.next_attempt_ms), key.as_str()), ())?;
    }
    Ok(targets.len())
}

pub(super) fn record_attempt(
    t: &mut Tables<'_>,
    record: &AttemptRecord,
) -> Result<bool, StoreError> {
    let a = &record.attempt;
    let endpoint: Option<Endpoint> = match get(&t.endpoints, &a.endpoint_id) {
        Ok(e) => Some(e),
        Err(StoreError::NotFound) => None,
        Err(e) => return Err(e),
    };
    let endpoint_gone = endpoint.is_none();
    if let Some(key) = &record.delivery_key {
        let existing = t
            .deliveries
            .get(key.as_str())?
            .map(|v| decode::<Delivery>(key, v.value()))
            .transpose()?;
        if let Some(mut d) = existing {
            t.due.remove((due_ms(d.next_attempt_ms), key.as_str()))?;
            d.attempts = d.attempts.max(a.attempt);
            match (a.outcome, a.next_attempt_ms) {
                // A delivery done, or one whose endpoint was deleted, leaves the outbox.
                _ if endpoint_gone => {
                    t.deliveries.remove(key.as_str())?;
                }
                (AttemptOutcome::Succeeded, _) => {
                    t.deliveries.remove(key.as_str())?;
                }
                (AttemptOutcome::Retrying, Some(next)) => {
                    d.next_attempt_ms = next;
                    t.due.insert((due_ms(next), key.as_str()), ())?;
                    t.deliveries.insert(key.as_str(), encode(&d)?.as_slice())?;
                }
                _ => {
                    d.state = DeliveryState::Failed;
                    t.deliveries.insert(key.as_str(), encode(&d)?.as_slice())?;
                }
            }
        }
    }
    let Some(mut endpoint) = endpoint else {
        return Ok(false); // no attempt log for an endpoint that no longer exists
    };
    let attempt_key = format!("{}/{}", a.endpoint_id, a.id);
    t.attempts
        .insert(attempt_key.as_str(), encode(a)?.as_slice())?;

    let was_disabled = endpoint.disabled;
    match record.effect {
        // The common case, a healthy endpoint staying healthy, writes nothing.
        EndpointEffect::Success if endpoint.failing_since_ms.is_none() => {
            return Ok(endpoint.disabled)
        }
        EndpointEffect::Success => endpoint.failing_since_ms = None,
        EndpointEffect::Failure {
            now_ms,
            disable_after_ms,
        } => {
            let since = *endpoint.failing_since_ms.get_or_insert(now_ms);
            if now_ms.saturating_sub(since) >= disable_after_ms {
                endpoint.disabled = true;
            }
        }
        EndpointEffect::Gone => endpoint.disabled = true,
        EndpointEffect::None => return Ok(endpoint.disabled),
    }
    if endpoint.disabled && !was_disabled {
        endpoint.updated_at_ms = endpoint.updated_at_ms.max(a.at_ms);
    }
    t.endpoints
        .insert(endpoint.id.as_str(), encode(&endpoint)?.as_slice())?;
    Ok(endpoint.disabled)
}

pub(super) fn resend(
    t: &mut Tables<'_>,
    message_id: &str,
    now_ms: i64,
) -> Result<usize, StoreError> {
    if t.messages.get(message_id)?.is_none() {
        return Err(StoreError::NotFound);
    }
    let prefix = format!("{message_id}/");
    let mut failed = Vec::new();
    for entry in t.deliveries.range::<&str>(prefix.as_str()..)? {
        let (k, v) = entry?;
        if !k.value().starts_with(&prefix) {
            break;
        }
        let d: Delivery = decode(k.value(), v.value())?;
        if d.state == DeliveryState::Failed {
            failed.push((k.value().to_owned(), d));
        }
    }
    for (key, mut d) in failed.iter().cloned() {
        d.state = DeliveryState::Pending;
        d.next_attempt_ms = now_ms;
        t.deliveries.insert(key.as_str(), encode(&d)?.as_slice())?;
        t.due.insert((due_ms(now_ms), key.as_str()), ())?;
    }
    Ok(failed.len())
}

pub(super) fn scan_due<T: ReadableTable<(u64, &'static str), ()>>(
    table: &T,
    now_ms: i64,
    max: usize,
    mut visit: impl FnMut(u64, &str) -> bool,
) -> Result<(), StoreError> {
    let end = (due_ms(now_ms).saturating_add(1), "");
    for entry in table.range::<(u64, &str)>(..end)?.take(max) {
        let (key, ()) = (entry?.0, ());
        let (due, delivery) = key.value();
        if !visit(due, delivery) {
            break;
        }
    }
    Ok(())
}

pub(super) fn quarantine(t: &mut Tables<'_>, due: u64, key: &str) -> Result<(), StoreError> {
    t.due.remove((due, key))?;
    let record = t
        .deliveries
        .get(key)?
        .map(|v| decode::<Delivery>(key, v.value()));
    if let Some(Ok(mut d)) = record {
        d.state = DeliveryState::Failed;
        t.deliveries.insert(key, encode(&d)?.as_slice())?;
    }
    Ok(())
}

pub(super) fn list_attempts<T: ReadableTable<&'static str, &'static [u8]>>(
    table: &T,
    endpoint_id: &str,
    cursor: Option<&str>,
    limit: usize,
) -> Result<Page<Attempt>, StoreError> {
    let low = format!("{endpoint_id}/");
    let high = match cursor {
        Some(c) => Bound::Excluded(format!("{endpoint_id}/{c}")),
        None => Bound::Excluded(format!("{endpoint_id}0")), // '0' sorts right after '/'
    };
    let mut items = Vec::with_capacity(limit.min(256));
    let mut more = false;
    let range = table.range::<&str>((
        Bound::Included(low.as_str()),
        high.as_ref().map(String::as_str),
    ))?;
    for entry in range.rev() {
        let (k, v) = entry?;
        if items.len() == limit {
            more = true;
            break;
        }
        items.push(decode::<Attempt>(k.value(), v.value())?);
    }
    let next = if more {
        items.last().map(|a: &Attempt| a.id.clone())
    } else {
        None
    };
    Ok(Page { items, next })
}
