//! The request bodies rendered last, shared by the deliveries of one message: a message that
//! goes to many endpoints with the same body (an Alertmanager group fanned out to a hundred
//! Slack channels, or to a hundred endpoints of a transformer that does not use the endpoint's
//! name) is rendered once, not once per endpoint. Deliveries of it that start together wait for
//! that one rendering.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use crate::format::Rendered;

/// Bodies kept: a few messages' worth of fan-out.
const KEPT: usize = 32;
/// Bytes of bodies kept at most.
const KEPT_BYTES: usize = 4 << 20;

/// One body, rendered by the first delivery that asks for it.
pub type Slot = Arc<tokio::sync::OnceCell<Rendered>>;

/// The last bodies by what they depend on, `K`, within [`KEPT`] entries and [`KEPT_BYTES`].
pub struct Bodies<K>(Mutex<VecDeque<(K, Slot)>>);

impl<K> Default for Bodies<K> {
    fn default() -> Self {
        Self(Mutex::default())
    }
}

impl<K: PartialEq + Clone> Bodies<K> {
    /// The slot of `key`, new (and the oldest dropped beyond the bounds) if there is none.
    pub fn slot(&self, key: &K) -> Slot {
        let mut entries = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, slot)) = entries.iter().rev().find(|(k, _)| k == key) {
            return slot.clone();
        }
        let slot = Slot::default();
        entries.push_back((key.clone(), slot.clone()));
        let size = |s: &Slot| s.get().map_or(0, |r| r.body.len());
        let mut bytes: usize = entries.iter().map(|(_, s)| size(s)).sum();
        while entries.len() > KEPT || (bytes > KEPT_BYTES && entries.len() > 1) {
            if let Some((_, s)) = entries.pop_front() {
                bytes -= size(&s);
            }
        }
        slot
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_last_bodies_are_kept_within_the_bounds() {
        let bodies: Bodies<(&str, u8)> = Bodies::default();
        let body = |n: usize| Rendered::json(vec![b'x'; n]);
        let put = |id: &'static str, n: usize| {
            let _ = bodies.slot(&(id, 0)).set(body(n));
        };
        let get = |id: &'static str, variant: u8| bodies.slot(&(id, variant)).get().cloned();
        put("m1", 10);
        assert_eq!(get("m1", 0), Some(body(10)));
        // Another key (another format, options or transformer) is another body.
        assert_eq!(get("m1", 1), None);
        // At most KEPT entries: the oldest goes first.
        for i in 0..KEPT {
            put(Box::leak(format!("n{i}").into_boxed_str()), 10);
        }
        assert_eq!(get("m1", 0), None);
        assert!(get("n31", 0).is_some());
        // At most KEPT_BYTES, though one body larger than that is kept alone.
        // (Counted when a slot is added.)
        put("big", KEPT_BYTES);
        put("big2", KEPT_BYTES / 2);
        put("small", 1);
        assert_eq!(bodies.0.lock().unwrap().len(), 2);
        assert!(get("big2", 0).is_some());
    }
}
