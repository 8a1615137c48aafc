//! The Standard Webhooks envelope: `{"type": ..., "timestamp": ..., "data": ...}`, with `data`
//! the stored payload byte for byte.

use super::Event;
use crate::time::rfc3339;

/// The delivered body. `data` is JSON text already.
pub fn body(event: &Event<'_>) -> Vec<u8> {
    let event_type = serde_json::Value::from(event.event_type);
    format!(
        r#"{{"type":{event_type},"timestamp":"{}","data":{}}}"#,
        rfc3339(event.created_at_ms),
        event.data
    )
    .into_bytes()
}
