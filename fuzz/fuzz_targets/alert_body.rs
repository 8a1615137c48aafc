//! The alert ingest bodies: a native alert and an Alertmanager webhook payload.
#![no_main]

use hookd::parse::{alertmanager_alert, native_alert, MAX_EVENT_TYPE};
use libfuzzer_sys::fuzz_target;

include!("check.rs");

fuzz_target!(|data: &[u8]| {
    match native_alert(data) {
        Ok(alert) => {
            assert!(!alert.event_type.is_empty() && alert.event_type.len() <= MAX_EVENT_TYPE);
            let payload: serde_json::Value = serde_json::from_str(&alert.data).unwrap();
            assert!(payload.is_object());
            // The payload is delivered exactly as sent.
            let text = std::str::from_utf8(data).unwrap();
            assert!(text.contains(&alert.data));
            // And an alert built from it parses to the same alert.
            let again = format!(
                r#"{{"eventType":{},"payload":{}}}"#,
                serde_json::Value::from(alert.event_type.as_str()),
                alert.data
            );
            assert_eq!(native_alert(again.as_bytes()).unwrap(), alert);
        }
        Err(e) => assert_client_error(&e),
    }
    match alertmanager_alert(data) {
        Ok(alert) => {
            assert!(matches!(
                alert.event_type.as_str(),
                "alertmanager.firing" | "alertmanager.resolved"
            ));
            let payload: serde_json::Value = serde_json::from_str(&alert.data).unwrap();
            assert_eq!(payload["version"], "4");
            assert!(std::str::from_utf8(data).unwrap().contains(&alert.data));
            assert!(payload["alerts"].is_array());
        }
        Err(e) => assert_client_error(&e),
    }
});
