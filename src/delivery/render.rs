//! The request a delivery sends, rendered at send time from the stored event (so a changed
//! format applies to pending deliveries, and the signature covers the body actually sent): by
//! the endpoint's built-in format, or by its transformer plugin. Neither holds an async worker
//! for long: a large event renders on the heavy threads, and a transformer moves there when it
//! needs more than the inline budget.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use super::Delivery;
use crate::format::{self, Event, Rendered, TransformError, TransformInput};
use crate::model::{Endpoint, Format, Message};

/// Events with a larger payload render on the heavy threads: a 100-alert group (about 55 KB)
/// takes about a millisecond in Slack's or Teams' format, too long for an async worker.
pub(super) const INLINE_RENDER_BYTES: usize = 16 * 1024;

/// Bodies kept by [`Cache`]: a few messages' worth of fan-out.
const CACHED: usize = 32;
/// Bytes of bodies [`Cache`] keeps at most.
const CACHED_BYTES: usize = 4 << 20;

/// What a built-in format's body depends on: the message, the format and its options (a
/// transformer's depends on the endpoint's name too, so it is not cached).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    message_id: String,
    format: Format,
    routing_key: Option<String>,
    severity: Option<String>,
}

/// The bodies rendered last: a message that goes to many endpoints of one format (an
/// Alertmanager group fanned out to a hundred Slack channels) renders once, not once per
/// endpoint; deliveries of it that start together wait for that one rendering. Standard
/// Webhooks' envelope is cheaper to build than to look up, and is not kept.
#[derive(Default)]
pub(super) struct Cache(Mutex<VecDeque<(Key, Slot)>>);

/// One body, rendered by the first delivery that asks for it.
type Slot = Arc<tokio::sync::OnceCell<Rendered>>;

impl Cache {
    /// The slot of `key`, new (and the oldest dropped beyond the bounds) if there is none.
    fn slot(&self, key: &Key) -> Slot {
        let mut entries = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, slot)) = entries.iter().rev().find(|(k, _)| k == key) {
            return slot.clone();
        }
        let slot = Slot::default();
        entries.push_back((key.clone(), slot.clone()));
        let size = |s: &Slot| s.get().map_or(0, |r| r.body.len());
        let mut bytes: usize = entries.iter().map(|(_, s)| size(s)).sum();
        while entries.len() > CACHED || (bytes > CACHED_BYTES && entries.len() > 1) {
            if let Some((_, s)) = entries.pop_front() {
                bytes -= size(&s);
            }
        }
        slot
    }
}

/// Why there is no request to send.
#[derive(Debug)]
pub(super) enum RenderFailure {
    /// A sealed format option (PagerDuty's routing key) did not open: retried later.
    Unsealed(String),
    /// The transformer is not (or no longer) configured: retried later.
    Missing(String),
    /// The transformer failed: deterministic, the delivery gives up.
    Failed(String),
}

/// Where the routing key comes from: opened for a send, masked for a preview.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keys {
    Open,
    Masked,
}

impl Delivery {
    /// The request `endpoint` gets for `message`.
    pub(super) async fn render(
        &self,
        endpoint: &Endpoint,
        message: &Message,
        keys: Keys,
    ) -> Result<Rendered, RenderFailure> {
        if let Some(name) = endpoint.format.plugin() {
            let input = TransformInput {
                id: message.id.clone(),
                event_type: message.event_type.clone(),
                created_at_ms: message.created_at_ms,
                data: message.data.clone(),
                endpoint_name: endpoint.name.clone(),
            };
            return self
                .deps
                .transformers
                .transform(name, input)
                .await
                .map_err(|e| match e {
                    TransformError::Missing(name) => RenderFailure::Missing(name),
                    TransformError::Failed { reason, .. } => RenderFailure::Failed(reason),
                });
        }
        let options = &endpoint.format_options;
        let routing_key = match (&options.routing_key, keys) {
            (None, _) => None,
            (Some(sealed), Keys::Masked) => Some(sealed.mask.clone()),
            (Some(sealed), Keys::Open) => Some(
                self.deps
                    .vault
                    .open_option(&endpoint.id, "routingKey", sealed)
                    .map_err(|e| RenderFailure::Unsealed(e.to_string()))?,
            ),
        };
        let key = Key {
            message_id: message.id.clone(),
            format: endpoint.format.clone(),
            routing_key,
            severity: options.severity.clone(),
        };
        if key.format == Format::StandardWebhooks {
            return self.built_in(key, message).await;
        }
        self.renders
            .slot(&key)
            .get_or_try_init(|| self.built_in(key.clone(), message))
            .await
            .cloned()
    }

    /// A built-in format's request: inline for a small event, else on the heavy threads.
    async fn built_in(&self, key: Key, message: &Message) -> Result<Rendered, RenderFailure> {
        if message.data.len() <= INLINE_RENDER_BYTES {
            return Ok(built_in(&key, message));
        }
        let message = message.clone();
        self.deps
            .heavy
            .run(move || built_in(&key, &message))
            .await
            .ok_or_else(|| RenderFailure::Failed("rendering panicked".into()))
    }
}

/// A built-in format's request.
fn built_in(key: &Key, message: &Message) -> Rendered {
    let event = Event {
        id: &message.id,
        event_type: &message.event_type,
        created_at_ms: message.created_at_ms,
        data: &message.data,
    };
    let options = format::Options {
        routing_key: key.routing_key.as_deref(),
        severity: key.severity.as_deref(),
    };
    // `render` hands a transformer's format to the plugin host: none comes here.
    format::render(&key.format, &event, &options)
        .unwrap_or_else(|| Rendered::json(format::standard::body(&event)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(id: &str, format: Format) -> Key {
        Key {
            message_id: id.into(),
            format,
            routing_key: None,
            severity: None,
        }
    }

    #[test]
    fn the_cache_keeps_the_last_bodies_within_its_bounds() {
        let cache = Cache::default();
        let body = |n: usize| Rendered::json(vec![b'x'; n]);
        let put = |id: &str, n: usize| {
            let _ = cache.slot(&key(id, Format::Slack)).set(body(n));
        };
        let get = |k: &Key| cache.slot(k).get().cloned();
        put("m1", 10);
        assert_eq!(get(&key("m1", Format::Slack)), Some(body(10)));
        // Another format or other options are another body.
        assert_eq!(get(&key("m1", Format::Teams)), None);
        let mut with_key = key("m1", Format::Slack);
        with_key.routing_key = Some("R1".into());
        assert_eq!(get(&with_key), None);
        // At most CACHED entries: the oldest goes first.
        for i in 0..CACHED {
            put(&format!("n{i}"), 10);
        }
        assert_eq!(get(&key("m1", Format::Slack)), None);
        assert!(get(&key("n31", Format::Slack)).is_some());
        // At most CACHED_BYTES, though one body larger than that is kept alone.
        // (Counted when a slot is added.)
        put("big", CACHED_BYTES);
        put("big2", CACHED_BYTES / 2);
        put("small", 1);
        assert_eq!(cache.0.lock().unwrap().len(), 2);
        assert!(get(&key("big2", Format::Slack)).is_some());
    }
}
