//! hookd transformer plugin: alerts as [ntfy](https://ntfy.sh) push notifications.
//!
//! The request is ntfy's JSON publish (`POST` to the server's root URL, e.g.
//! `https://ntfy.sh/`): `{"topic", "title", "message", "tags", "priority", "click", "actions"}`,
//! `Content-Type: application/json`, no extra headers.
//!
//! Settings: `key=value` items separated by commas or white space.
//! - `topic=<name>` (required): the ntfy topic, 1-64 of `A-Z a-z 0-9 _ -`.
//! - `priority=<1-5>` (optional): every message's priority, instead of the derived one; ntfy's
//!   names `min`, `low`, `default`, `high`, `max` (or `urgent`) work too.
//!
//! Unknown keys, a missing or invalid topic and a payload that is not JSON fail the attempt with
//! the reason.
//!
//! What is sent:
//! - An Alertmanager group (`alertmanager.*`): title `[FIRING:3] InstanceDown` (the count of
//!   firing alerts) or `[RESOLVED] InstanceDown`, after the `alertname` of `groupLabels` or
//!   `commonLabels`. The message: the labels every alert shares, then one line per alert (its
//!   `summary` or `description` annotation, else its `alertname`; the labels that set it apart;
//!   `since` its start, and `ended` for a resolved one), as many as fit, then `and N more
//!   alerts`. The only alert of a group also shows its description. Links: `click` opens
//!   `externalURL`, else the first `generatorURL`; `view` buttons "Alertmanager" and "Source"
//!   open them (only http and https URLs are used).
//! - A native alert: title from `title` or `summary`, else the event type; message from
//!   `message` or `description` with the `labels` below, else the payload as compact JSON;
//!   `click` from `url` or `generatorURL`. `status` `resolved`, `ok` or `closed` (or an event
//!   type containing `resolved`) reads as resolved.
//! - Tags: `rotating_light` (🚨) while firing, `white_check_mark` (✅) when resolved, then the
//!   severity (`commonLabels.severity`, else the most urgent of the alerts'; a native alert's
//!   `severity`).
//! - Priority, from the severity (case-insensitive): `critical`, `crit`, `fatal`, `emergency`,
//!   `alert`, `page`, `disaster`, `p1` → 5 (max); `error`, `err`, `high`, `major`, `p2` → 4;
//!   `warning`, `warn`, `medium`, `average`, `p3` → 3; `info`, `informational`, `notice`,
//!   `low`, `minor`, `p4` → 2; `debug`, `trace`, `none`, `p5` → 1; another or none → 3 (ntfy's
//!   default). Resolved: at most 2, so an all-clear never rings like an alarm.
//!
//! Limits: the message stays within 4,000 bytes (ntfy turns one over 4,096 into an attachment)
//! and the title within 250; whatever is cut is cut on a character boundary and ends with `…`.

// The generated ABI shim passes each string as (pointer, length).
#![allow(clippy::too_many_arguments)]

// `shared-transformer`: the request never depends on the endpoint's name, so hookd makes one
// call per event however many endpoints use this transformer.
wit_bindgen::generate!({ path: "../wit/transformer.wit", world: "shared-transformer" });

include!("../../common/settings.rs");
include!("../../common/alloc.rs");

mod read;
mod render;
mod settings;
mod text;

use serde_json::Value;

use settings::Settings;

/// Longest error reason hookd takes.
const MAX_REASON: usize = 512;

struct Ntfy;

impl Guest for Ntfy {
    fn transform(event: Event, settings: String) -> Result<Request, String> {
        request(&event, &settings).map_err(|e| text::cut(&e, MAX_REASON))
    }

    fn uses_endpoint_name() -> bool {
        false
    }
}

fn request(event: &Event, settings: &str) -> Result<Request, String> {
    let settings = Settings::parse(settings)?;
    let mut n = if event.event_type.starts_with("alertmanager.") {
        render::alertmanager(&event.event_type, &read::group(&event.payload)?)
    } else {
        let payload: Value =
            serde_json::from_str(&event.payload).map_err(|e| format!("payload: not JSON ({e})"))?;
        render::native(&event.event_type, &payload)
    };
    if let Some(p) = settings.priority {
        n.priority = p;
    }
    Ok(Request {
        body: n.body(&settings.topic),
        content_type: "application/json".into(),
        headers: Vec::new(),
    })
}

export!(Ntfy);

#[cfg(test)]
mod tests;
