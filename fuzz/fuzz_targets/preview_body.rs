//! What a preview (`POST .../{id}/preview`, `hookd format render`) parses: its alert body
//! (Alertmanager, native, or empty for a sample), and a `formatOptions` object: never a panic;
//! an alert it accepts renders in every format within the target's limits, and options it
//! accepts pass the format's own check or name the field at fault.
#![no_main]

use hookd::format::{render, within_limits, Event, Options};
use hookd::model::Format;
use hookd::parse::{check_format_options, format_options, preview_alert};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&[u8], &str)| {
    let (body, options) = input;
    if let Ok(Some(alert)) = preview_alert(body) {
        let event = Event {
            id: "msg_1",
            event_type: &alert.event_type,
            created_at_ms: 1_764_410_400_000,
            data: &alert.data,
        };
        for format in Format::ALL {
            let out = render(&format, &event, &Options::default()).unwrap();
            if let Err(why) = within_limits(&format, &out.body) {
                panic!("{format:?}: {why}");
            }
        }
    }
    if let Ok(o) = format_options(options) {
        if let Some(key) = &o.routing_key {
            assert!(!key.is_empty() && key.len() <= hookd::parse::MAX_ROUTING_KEY);
        }
        if let Some(s) = &o.severity {
            assert!(hookd::parse::PAGERDUTY_SEVERITIES.contains(&s.as_str()));
        }
        if let Some(e) = check_format_options(&Format::Pagerduty, Some(&o)) {
            assert!(e.field.starts_with("formatOptions"));
            assert!(o.routing_key.is_none());
        }
    }
});
