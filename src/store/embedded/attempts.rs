//! The attempt log: `endpoint_id/attempt_id` keys (attempt ids are time-ordered, so an
//! endpoint's attempts are a contiguous range, oldest first) and a count per endpoint, so the
//! attempt cap of retention needs no counting.

use std::ops::Bound;

use redb::ReadableTable;

use super::schema::ATTEMPTS;
use super::tables::Tables;
use super::{decode, encode, Page, Store, StoreError};
use crate::model::Attempt;

impl Store {
    /// An endpoint's attempts, newest first, starting after (older than) `cursor`.
    pub fn list_attempts(
        &self,
        endpoint_id: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Attempt>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(ATTEMPTS)?;
        let low = format!("{endpoint_id}/");
        let high = match cursor {
            Some(c) => Bound::Excluded(format!("{endpoint_id}/{c}")),
            None => Bound::Excluded(range_end(endpoint_id)),
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
}

/// The first key after every `endpoint_id/...` key ('0' sorts right after '/').
pub(super) fn range_end(endpoint_id: &str) -> String {
    format!("{endpoint_id}0")
}

/// Logs an attempt and counts it.
pub(super) fn append(t: &mut Tables<'_>, a: &Attempt) -> Result<(), StoreError> {
    let key = format!("{}/{}", a.endpoint_id, a.id);
    t.attempts.insert(key.as_str(), encode(a)?.as_slice())?;
    let count = t
        .attempt_counts
        .table()?
        .get(a.endpoint_id.as_str())?
        .map_or(0, |v| v.value());
    t.attempt_counts
        .insert(a.endpoint_id.as_str(), count.saturating_add(1))?;
    Ok(())
}

/// Removes up to `budget` of `endpoint_id`'s oldest attempts that `remove` picks (given the
/// attempt id and how many the log still holds for the endpoint); stops at the first it keeps.
/// Returns how many it removed.
pub(super) fn remove_oldest(
    t: &mut Tables<'_>,
    endpoint_id: &str,
    budget: usize,
    mut remove: impl FnMut(&str, u64) -> bool,
) -> Result<usize, StoreError> {
    let mut count = t
        .attempt_counts
        .table()?
        .get(endpoint_id)?
        .map_or(0, |v| v.value());
    let low = format!("{endpoint_id}/");
    let high = range_end(endpoint_id);
    let mut doomed = Vec::new();
    for entry in t
        .attempts
        .table()?
        .range::<&str>(low.as_str()..high.as_str())?
    {
        let (k, _) = entry?;
        let id = &k.value()[low.len()..];
        if doomed.len() >= budget || !remove(id, count) {
            break;
        }
        doomed.push(k.value().to_owned());
        count = count.saturating_sub(1);
    }
    for key in &doomed {
        t.attempts.remove(key.as_str())?;
    }
    if doomed.is_empty() {
        // An endpoint without attempts (a count left stale) needs no count.
        let any = t
            .attempts
            .table()?
            .range::<&str>(low.as_str()..high.as_str())?
            .next()
            .is_some();
        if !any {
            t.attempt_counts.remove(endpoint_id)?;
        }
    } else if count == 0 {
        t.attempt_counts.remove(endpoint_id)?;
    } else {
        t.attempt_counts.insert(endpoint_id, count)?;
    }
    Ok(doomed.len())
}
