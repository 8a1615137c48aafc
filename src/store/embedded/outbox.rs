//! The delivery outbox: messages, their deliveries, and the per-endpoint due queues.
//!
//! An accepted alert is a [`Message`] plus one [`Delivery`] per enabled endpoint, each queued in
//! its endpoint's due queue; all written in the transaction that accepts it. An attempt is
//! recorded, with its consequences, in one transaction too, so a crash at any point leaves
//! either the old state (the attempt is made again: at-least-once) or the new one.
//!
//! The dispatcher reads [`HEADS`](super::schema::HEADS): one row per endpoint with pending
//! deliveries, keyed by its earliest due time, then the first few entries of that endpoint's
//! queue. What a pass reads grows with the endpoints that have work due, never with a
//! backlog: a million deliveries queued for a dead endpoint are one row to step past.

use redb::ReadableTable;

use super::endpoints::{get, set_disabled};
use super::ops::{AttemptRecord, Ingest, Op};
use super::schema::{DELIVERIES, ENDPOINTS, HEADS, MESSAGES, QUEUE};
use super::tables::Tables;
use super::{attempts, decode, encode, DeliveryContext, Store, StoreError};
use crate::model::{AttemptOutcome, Delivery, DeliveryState, Endpoint, Message};
use crate::store::rules;

pub use crate::store::types::Take;

fn due_ms(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0)
}

impl Store {
    /// Stores `message` and one pending delivery, due now, for each of `targets` (chosen by
    /// [`Store::routes`]) that still exists and is enabled, in one durable transaction. Returns
    /// how many deliveries it queued.
    pub async fn ingest(
        &self,
        message: Message,
        targets: Vec<String>,
    ) -> Result<usize, StoreError> {
        self.write(Op::Ingest(Box::new(Ingest { message, targets })))
            .await?
            .count()
    }

    /// Requeues, due now, every delivery to `endpoint_id` that gave up at or after `since_ms`
    /// (and before now). Works through them in transactions of at most `batch`; returns how
    /// many it requeued.
    ///
    /// # Errors
    /// `NotFound` for an unknown endpoint, `Conflict` for a disabled one.
    pub async fn recover(
        &self,
        endpoint_id: String,
        since_ms: i64,
        now_ms: i64,
        batch: usize,
    ) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            let (requeued, read) = self
                .write(Op::Recover {
                    endpoint_id: endpoint_id.clone(),
                    since_ms,
                    until_ms: now_ms,
                    limit: batch.max(1),
                })
                .await?
                .counts()?;
            total += requeued;
            if read < batch.max(1) {
                return Ok(total);
            }
        }
    }

    /// One pass over the due work at `now_ms`: for each endpoint with a delivery due (earliest
    /// first) that is enabled and for which `share` grants any (and `throttle`, given its
    /// `rateLimit`, if it has one), offers up to that many of its due deliveries (key, due
    /// time) to `take`. Returns the due time of the next delivery not yet due, if any.
    ///
    /// # Errors
    /// Storage errors.
    pub fn scan_due(
        &self,
        now_ms: i64,
        mut share: impl FnMut(&str) -> usize,
        mut throttle: impl FnMut(&str, u32) -> usize,
        mut take: impl FnMut(&str, u64) -> Take,
    ) -> Result<Option<u64>, StoreError> {
        let txn = self.read()?;
        let heads = txn.open_table(HEADS)?;
        let queue = txn.open_table(QUEUE)?;
        let endpoints = txn.open_table(ENDPOINTS)?;
        let now = due_ms(now_ms);
        let mut key = String::new();
        'endpoints: for head in heads.range::<(u64, &str)>(..(now.saturating_add(1), ""))? {
            let (head, ()) = (head?.0, ());
            let (_, ep) = head.value();
            let mut wanted = share(ep);
            if wanted == 0 {
                continue;
            }
            // Deleted or disabled endpoints' queues are retention's to clear or fail. A corrupt
            // endpoint's deliveries are offered: loading them fails, and the dispatcher sets
            // them aside.
            let rate = match endpoints
                .get(ep)?
                .map(|v| decode::<Endpoint>(ep, v.value()))
            {
                Some(Ok(e)) if !e.disabled => e.rate_limit,
                Some(Err(_)) => None,
                _ => continue,
            };
            if let Some(rate) = rate {
                wanted = wanted.min(throttle(ep, rate));
                if wanted == 0 {
                    continue;
                }
            }
            let mut taken = 0;
            let range = (ep, 0, "")..(ep, now.saturating_add(1), "");
            for entry in queue.range::<(&str, u64, &str)>(range)? {
                let (entry, ()) = (entry?.0, ());
                let (_, due, msg) = entry.value();
                key.clear();
                key.push_str(msg);
                key.push('/');
                key.push_str(ep);
                match take(&key, due) {
                    Take::Taken => {
                        taken += 1;
                        if taken >= wanted {
                            break;
                        }
                    }
                    Take::Skip => {}
                    Take::NextEndpoint => break,
                    Take::Stop => break 'endpoints,
                }
            }
        }
        let next = heads
            .range::<(u64, &str)>((now.saturating_add(1), "")..)?
            .next()
            .transpose()?
            .map(|(k, _)| k.value().0);
        Ok(next)
    }

    /// A delivery with its message and endpoint (either may be gone).
    pub fn delivery(&self, key: &str) -> Result<Option<DeliveryContext>, StoreError> {
        let txn = self.read()?;
        let deliveries = txn.open_table(DELIVERIES)?;
        let Some(d) = deliveries
            .get(key)?
            .map(|v| decode::<Delivery>(key, v.value()))
            .transpose()?
        else {
            return Ok(None);
        };
        let messages = txn.open_table(MESSAGES)?;
        let message = messages
            .get(d.message_id.as_str())?
            .map(|v| decode(&d.message_id, v.value()))
            .transpose()?;
        let endpoints = txn.open_table(ENDPOINTS)?;
        let endpoint = endpoints
            .get(d.endpoint_id.as_str())?
            .map(|v| decode(&d.endpoint_id, v.value()))
            .transpose()?;
        Ok(Some((d, message, endpoint)))
    }

    /// A message, if it is still kept.
    pub fn message(&self, id: &str) -> Result<Option<Message>, StoreError> {
        let txn = self.read()?;
        let messages = txn.open_table(MESSAGES)?;
        let value = messages.get(id)?;
        value.map(|v| decode(id, v.value())).transpose()
    }

    /// Records an attempt and its consequences (delivery rescheduled, finished or failed;
    /// endpoint failure tracking) in one transaction. Returns whether this attempt disabled the
    /// endpoint.
    pub async fn record_attempt(&self, record: AttemptRecord) -> Result<bool, StoreError> {
        let disabled = self
            .write(Op::RecordAttempt(Box::new(record)))
            .await?
            .flag()?;
        if disabled {
            self.shared.prune_wake.notify_one();
        }
        Ok(disabled)
    }

    /// Requeues, due now, every delivery of `message_id` that gave up. Returns how many.
    pub async fn resend(&self, message_id: String, now_ms: i64) -> Result<usize, StoreError> {
        self.write(Op::Resend { message_id, now_ms }).await?.count()
    }

    /// Takes the delivery `key`, due at `due_ms`, which cannot be loaded (its record, its
    /// message's or its endpoint's is corrupt), out of its endpoint's queue, and marks it
    /// failed if its own record still reads; so it is not tried again on every pass.
    pub async fn quarantine(&self, due_ms: u64, key: String) -> Result<(), StoreError> {
        self.write(Op::Quarantine { due_ms, key }).await.map(drop)
    }
}

/// Queues the delivery of `msg` to `ep` at `due`, keeping the endpoint's head row current.
pub(super) fn queue_push(
    t: &mut Tables<'_>,
    ep: &str,
    due: u64,
    msg: &str,
) -> Result<(), StoreError> {
    t.queue.insert((ep, due, msg), ())?;
    let head = t.head_of.table()?.get(ep)?.map(|v| v.value());
    match head {
        Some(h) if h <= due => {}
        Some(h) => {
            t.heads.remove((h, ep))?;
            t.heads.insert((due, ep), ())?;
            t.head_of.insert(ep, due)?;
        }
        None => {
            t.heads.insert((due, ep), ())?;
            t.head_of.insert(ep, due)?;
        }
    }
    Ok(())
}

/// Removes one queue entry, moving the endpoint's head row to its next entry (or removing it).
pub(super) fn queue_remove(
    t: &mut Tables<'_>,
    ep: &str,
    due: u64,
    msg: &str,
) -> Result<(), StoreError> {
    if t.queue.remove((ep, due, msg))?.is_none() {
        return Ok(());
    }
    let head = t.head_of.table()?.get(ep)?.map(|v| v.value());
    if head != Some(due) {
        return Ok(());
    }
    let next = t
        .queue
        .table()?
        .range::<(&str, u64, &str)>((ep, 0, "")..(ep, u64::MAX, ""))?
        .next()
        .transpose()?
        .map(|(k, _)| k.value().1);
    match next {
        Some(n) if n == due => {}
        Some(n) => {
            t.heads.remove((due, ep))?;
            t.heads.insert((n, ep), ())?;
            t.head_of.insert(ep, n)?;
        }
        None => {
            t.heads.remove((due, ep))?;
            t.head_of.remove(ep)?;
        }
    }
    Ok(())
}

/// One of `msg`'s pending deliveries ended (delivered, gave up, or dropped with its endpoint);
/// the last one ends the message, which retention then removes after `retention.messages_secs`.
pub(super) fn delivery_ended(t: &mut Tables<'_>, msg: &str, now: u64) -> Result<(), StoreError> {
    let state = t.message_state.table()?.get(msg)?.map(|v| v.value());
    let Some((pending, _)) = state else {
        return Ok(()); // the message is gone already
    };
    let pending = pending.saturating_sub(1);
    if pending == 0 {
        t.message_state.insert(msg, (0, now))?;
        t.ended.insert((now, msg), ())?;
        t.pending_messages.remove(msg)?;
    } else {
        t.message_state.insert(msg, (pending, 0))?;
    }
    Ok(())
}

pub(super) fn ingest(t: &mut Tables<'_>, ingest: &Ingest) -> Result<usize, StoreError> {
    let message = &ingest.message;
    if t.messages.table()?.get(message.id.as_str())?.is_some() {
        return Err(StoreError::Conflict("a message with this id exists"));
    }
    // Routed before the write; an endpoint deleted or disabled since is left out.
    let targets: Vec<&String> = ingest
        .targets
        .iter()
        .filter(|id| t.routes.enabled(id))
        .collect();
    let now = due_ms(message.created_at_ms);
    t.messages
        .insert(message.id.as_str(), encode(message)?.as_slice())?;
    let count = u32::try_from(targets.len()).unwrap_or(u32::MAX);
    if count == 0 {
        t.message_state.insert(message.id.as_str(), (0, now))?;
        t.ended.insert((now, message.id.as_str()), ())?;
    } else {
        t.message_state.insert(message.id.as_str(), (count, 0))?;
        t.pending_messages.insert(message.id.as_str(), ())?;
    }
    for &endpoint_id in &targets {
        let delivery = Delivery {
            message_id: message.id.clone(),
            endpoint_id: endpoint_id.clone(),
            attempts: 0,
            state: DeliveryState::Pending,
            next_attempt_ms: message.created_at_ms,
            failed_at_ms: None,
        };
        let key = Delivery::key(&message.id, endpoint_id);
        t.deliveries
            .insert(key.as_str(), encode(&delivery)?.as_slice())?;
        queue_push(t, endpoint_id, now, &message.id)?;
    }
    Ok(targets.len())
}

pub(super) fn record_attempt(
    t: &mut Tables<'_>,
    record: &AttemptRecord,
) -> Result<bool, StoreError> {
    let a = &record.attempt;
    let endpoint: Option<Endpoint> = match get(t.endpoints.table()?, &a.endpoint_id) {
        Ok(e) => Some(e),
        Err(StoreError::NotFound) => None,
        Err(e) => return Err(e),
    };
    let existing = match &record.delivery_key {
        Some(key) => t
            .deliveries
            .table()?
            .get(key.as_str())?
            .map(|v| decode::<Delivery>(key, v.value()))
            .transpose()?
            .map(|d| (key, d)),
        None => None,
    };
    let now = due_ms(a.at_ms);
    if let Some((key, mut d)) = existing.filter(|(_, d)| d.state == DeliveryState::Pending) {
        queue_remove(t, &d.endpoint_id, due_ms(d.next_attempt_ms), &d.message_id)?;
        d.attempts = d.attempts.max(a.attempt);
        match (a.outcome, a.next_attempt_ms) {
            // A delivery done, or one whose endpoint was deleted, leaves the outbox.
            _ if endpoint.is_none() => {
                t.deliveries.remove(key.as_str())?;
                delivery_ended(t, &d.message_id, now)?;
            }
            (AttemptOutcome::Succeeded, _) => {
                t.deliveries.remove(key.as_str())?;
                delivery_ended(t, &d.message_id, now)?;
            }
            (AttemptOutcome::Retrying, Some(next)) => {
                d.next_attempt_ms = next;
                queue_push(t, &d.endpoint_id, due_ms(next), &d.message_id)?;
                t.deliveries.insert(key.as_str(), encode(&d)?.as_slice())?;
            }
            _ => {
                mark_failed(t, key, &mut d, a.at_ms)?;
                delivery_ended(t, &d.message_id, now)?;
            }
        }
    }
    let Some(mut endpoint) = endpoint else {
        return Ok(false); // no attempt log for an endpoint that no longer exists
    };
    attempts::append(t, a)?;

    let was_disabled = endpoint.disabled;
    match rules::attempt_effect(&mut endpoint, record.effect) {
        rules::Change::None => return Ok(false),
        rules::Change::Write => {}
        rules::Change::Disable => set_disabled(t, &mut endpoint, true)?,
    }
    t.routes.changed(&endpoint, None);
    if endpoint.disabled && !was_disabled {
        endpoint.updated_at_ms = endpoint.updated_at_ms.max(a.at_ms);
    }
    t.endpoints
        .insert(endpoint.id.as_str(), encode(&endpoint)?.as_slice())?;
    Ok(endpoint.disabled && !was_disabled)
}

pub(super) fn resend(
    t: &mut Tables<'_>,
    message_id: &str,
    now_ms: i64,
) -> Result<usize, StoreError> {
    if t.messages.table()?.get(message_id)?.is_none() {
        return Err(StoreError::NotFound);
    }
    let prefix = format!("{message_id}/");
    let mut failed = Vec::new();
    for entry in t.deliveries.table()?.range::<&str>(prefix.as_str()..)? {
        let (k, v) = entry?;
        if !k.value().starts_with(&prefix) {
            break;
        }
        let d: Delivery = decode(k.value(), v.value())?;
        if d.state == DeliveryState::Failed {
            failed.push((k.value().to_owned(), d));
        }
    }
    let count = failed.len();
    for (key, d) in failed {
        requeue(t, &key, d, now_ms)?;
    }
    Ok(count)
}

/// Marks `d` (stored under `key`) as given up at `at_ms`, indexed for `recover`.
pub(super) fn mark_failed(
    t: &mut Tables<'_>,
    key: &str,
    d: &mut Delivery,
    at_ms: i64,
) -> Result<(), StoreError> {
    d.state = DeliveryState::Failed;
    d.failed_at_ms = Some(at_ms);
    t.deliveries.insert(key, encode(d)?.as_slice())?;
    t.gave_up.insert(
        (d.endpoint_id.as_str(), due_ms(at_ms), d.message_id.as_str()),
        (),
    )?;
    Ok(())
}

/// Takes a delivery that is leaving the given-up state (requeued or removed) out of the index.
pub(super) fn unindex_failed(t: &mut Tables<'_>, d: &Delivery) -> Result<(), StoreError> {
    if let (DeliveryState::Failed, Some(at)) = (d.state, d.failed_at_ms) {
        t.gave_up
            .remove((d.endpoint_id.as_str(), due_ms(at), d.message_id.as_str()))?;
    }
    Ok(())
}

/// Puts a delivery that gave up back in its endpoint's queue, due at `now_ms`, and counts its
/// message pending again.
fn requeue(t: &mut Tables<'_>, key: &str, mut d: Delivery, now_ms: i64) -> Result<(), StoreError> {
    unindex_failed(t, &d)?;
    d.state = DeliveryState::Pending;
    d.failed_at_ms = None;
    d.next_attempt_ms = now_ms;
    t.deliveries.insert(key, encode(&d)?.as_slice())?;
    queue_push(t, &d.endpoint_id, due_ms(now_ms), &d.message_id)?;
    let msg = d.message_id.as_str();
    let (pending, ended_at) = t
        .message_state
        .table()?
        .get(msg)?
        .map_or((0, 0), |v| v.value());
    if pending == 0 && ended_at > 0 {
        t.ended.remove((ended_at, msg))?;
    }
    t.message_state
        .insert(msg, (pending.saturating_add(1), 0))?;
    t.pending_messages.insert(msg, ())?;
    Ok(())
}

/// Requeues up to `limit` deliveries to `endpoint_id` that gave up in `[since_ms, until_ms]`.
/// Returns (requeued, index entries read): fewer read than `limit` means none are left.
pub(super) fn recover(
    t: &mut Tables<'_>,
    endpoint_id: &str,
    since_ms: i64,
    until_ms: i64,
    limit: usize,
) -> Result<(usize, usize), StoreError> {
    let endpoint: Endpoint = get(t.endpoints.table()?, endpoint_id)?;
    if endpoint.disabled {
        return Err(StoreError::Conflict(
            "the endpoint is disabled; enable it (PATCH disabled: false) before recovering its deliveries",
        ));
    }
    let (from, to) = (due_ms(since_ms), due_ms(until_ms).saturating_add(1));
    let mut found = Vec::new();
    for entry in t
        .gave_up
        .table()?
        .range::<(&str, u64, &str)>((endpoint_id, from, "")..(endpoint_id, to, ""))?
        .take(limit)
    {
        let (k, ()) = (entry?.0, ());
        let (_, at, msg) = k.value();
        found.push((at, msg.to_owned()));
    }
    let mut loaded = Vec::with_capacity(found.len());
    for (_, msg) in &found {
        let key = Delivery::key(msg, endpoint_id);
        let d = t
            .deliveries
            .table()?
            .get(key.as_str())?
            .map(|v| decode::<Delivery>(&key, v.value()))
            .transpose()?;
        loaded.push((key, d));
    }
    let mut requeued = 0;
    for ((key, d), (at, msg)) in loaded.into_iter().zip(&found) {
        match d {
            Some(d) if d.state == DeliveryState::Failed => {
                requeue(t, &key, d, until_ms)?;
                requeued += 1;
            }
            // A stale entry (its delivery is gone, or pending again): drop it.
            _ => {
                t.gave_up.remove((endpoint_id, *at, msg.as_str()))?;
            }
        }
    }
    Ok((requeued, found.len()))
}

pub(super) fn quarantine(t: &mut Tables<'_>, due: u64, key: &str) -> Result<(), StoreError> {
    let Some((msg, ep)) = key.split_once('/') else {
        return Ok(());
    };
    queue_remove(t, ep, due, msg)?;
    let record = t
        .deliveries
        .table()?
        .get(key)?
        .map(|v| decode::<Delivery>(key, v.value()));
    if let Some(Ok(mut d)) = record {
        if d.state == DeliveryState::Pending {
            let now = crate::time::now_ms();
            mark_failed(t, key, &mut d, now)?;
            delivery_ended(t, msg, due_ms(now))?;
        }
    }
    Ok(())
}
