//! The request a delivery sends, rendered at send time from the stored event (so a changed
//! format applies to pending deliveries, and the signature covers the body actually sent): by
//! the endpoint's built-in format, or by its transformer plugin. Neither holds an async worker
//! for long: a large event renders on the heavy threads, and a transformer moves there when it
//! needs more than the inline budget.

use super::Delivery;
use crate::format::{self, Event, Rendered, TransformError, TransformInput};
use crate::model::{Endpoint, Format, Message};

/// Events with a larger payload render on the heavy threads: a 100-alert group (about 55 KB)
/// takes about a millisecond in Slack's or Teams' format, too long for an async worker.
pub(super) const INLINE_RENDER_BYTES: usize = 16 * 1024;

/// What a built-in format's body depends on: the message, the format and its options (the
/// plugin host shares a transformer's bodies itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Key {
    message_id: String,
    format: Format,
    routing_key: Option<String>,
    severity: Option<String>,
}

/// The built-in formats' last bodies. Standard Webhooks' envelope is cheaper to build than to
/// look up, and is not kept.
pub(super) type Cache = crate::bodies::Bodies<Key>;

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
