//! Every format's renderer, on events as the ingest parsers accept them (native alerts and
//! Alertmanager payloads) and on arbitrary text: never panics, always JSON, always within the
//! target's limits.
#![no_main]

use hookd::format::{render, within_limits, Event, Options};
use hookd::model::Format;
use hookd::parse::{alertmanager_alert, native_alert};
use libfuzzer_sys::fuzz_target;

fn check(event_type: &str, data: &str, valid_json: bool) {
    let event = Event {
        id: "msg_1",
        event_type,
        created_at_ms: 1_764_410_400_000,
        data,
    };
    for format in Format::ALL {
        let options = Options {
            routing_key: Some("R0123456789abcdef0123456789abcdef"),
            severity: Some("warning"),
        };
        let out = render(&format, &event, &options).unwrap();
        if format == Format::StandardWebhooks {
            // The envelope carries `data` byte for byte: JSON when the data is (it always is
            // from the alert routes).
            if valid_json {
                let v: serde_json::Value = serde_json::from_slice(&out.body).unwrap();
                assert_eq!(v["type"], event_type);
            }
        } else if let Err(why) = within_limits(&format, &out.body) {
            panic!("{format:?}: {why}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(alert) = native_alert(data) {
        check(&alert.event_type, &alert.data, true);
    }
    if let Ok(alert) = alertmanager_alert(data) {
        check(&alert.event_type, &alert.data, true);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        check("alertmanager.firing", text, false);
        check("x.resolved", text, false);
    }
});
