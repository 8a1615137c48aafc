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
        let severity = options.severity.clone();
        let format = endpoint.format.clone();
        if message.data.len() <= INLINE_RENDER_BYTES {
            return Ok(built_in(&format, message, routing_key, severity));
        }
        let message = message.clone();
        self.deps
            .heavy
            .run(move || built_in(&format, &message, routing_key, severity))
            .await
            .ok_or_else(|| RenderFailure::Failed("rendering panicked".into()))
    }
}

/// A built-in format's request.
fn built_in(
    format: &Format,
    message: &Message,
    routing_key: Option<String>,
    severity: Option<String>,
) -> Rendered {
    let event = Event {
        id: &message.id,
        event_type: &message.event_type,
        created_at_ms: message.created_at_ms,
        data: &message.data,
    };
    let options = format::Options {
        routing_key: routing_key.as_deref(),
        severity: severity.as_deref(),
    };
    // `render` hands a transformer's format to the plugin host: none comes here.
    format::render(format, &event, &options)
        .unwrap_or_else(|| Rendered::json(format::standard::body(&event)))
}
