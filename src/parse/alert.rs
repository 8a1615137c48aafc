//! Alert ingest: a native alert body or an Alertmanager webhook payload, read into an [`Alert`]
//! with the label sets that routing reads.

use serde_json::Value;

use super::fields::Fields;
use crate::error::{ApiError, FieldError};
use crate::routing::{Labels, MAX_GROUP_ALERTS, MAX_LABEL_VALUE};

/// An accepted alert, from either ingest route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub event_type: String,
    /// The payload as JSON text, exactly as the client sent it.
    pub data: String,
    /// The label sets routing reads (`labelMatchers`): for a native alert the payload's
    /// `labels` (none: one empty set); for an Alertmanager payload its `commonLabels` and then
    /// each alert's `labels`. An endpoint takes the alert when any one set satisfies all its
    /// matchers.
    pub label_sets: Vec<Labels>,
}

/// A JSON object of strings as labels (anything else reads as no labels: the parsers have
/// refused it already).
fn labels_of(v: Option<&Value>) -> Labels {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// Longest event type, in bytes.
pub const MAX_EVENT_TYPE: usize = 100;

/// Parses a native alert: `{"eventType": "alert.firing", "payload": {...}}`. The event type is
/// 1-100 characters of `A-Z a-z 0-9 . _ : -`; the payload any JSON object, whose `labels`, if it
/// has them, must be an object of strings (routing reads them).
///
/// # Errors
/// 400 for malformed JSON, 422 naming each field at fault.
pub fn native_alert(body: &[u8]) -> Result<Alert, ApiError> {
    let mut f = Fields::object(body, &["eventType", "payload"])?;
    let event_type = f.string("eventType", true).and_then(|t| {
        let ok = (1..=MAX_EVENT_TYPE).contains(&t.len())
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
        if !ok {
            f.errors.push(FieldError::new(
                "eventType",
                "must be 1-100 characters of A-Z a-z 0-9 . _ : -",
            ));
        }
        ok.then_some(t)
    });
    let mut labels = Labels::new();
    if let Some(v) = f.take("payload", true) {
        if !v.is_object() {
            f.errors
                .push(FieldError::new("payload", "must be a JSON object"));
        }
        match v.get("labels").map(|l| (l, labels_problem(l))) {
            Some((_, Some(why))) => f.errors.push(FieldError::new("payload.labels", why)),
            l => labels = labels_of(l.map(|(l, _)| l)),
        }
    }
    f.finish()?;
    // The payload is delivered exactly as sent (no number is re-rounded, no key reordered).
    #[derive(serde::Deserialize)]
    struct Raw<'a> {
        #[serde(borrow)]
        payload: &'a serde_json::value::RawValue,
    }
    let raw: Raw<'_> = serde_json::from_slice(body)
        .map_err(|_| ApiError::field("payload", "must be given exactly once"))?;
    match event_type {
        Some(event_type) => Ok(Alert {
            event_type,
            data: raw.payload.get().to_owned(),
            label_sets: vec![labels],
        }),
        None => Err(ApiError::Internal),
    }
}

/// Parses an Alertmanager webhook payload (version "4", as Alertmanager sends it). The whole
/// payload becomes the message data; the event type is `alertmanager.firing` or
/// `alertmanager.resolved`. Fields other than `version`, `status` and `alerts` are passed
/// through unchecked, so newer Alertmanagers keep working.
///
/// # Errors
/// 400 for malformed JSON, 422 for a wrong version, status or alerts list.
pub fn alertmanager_alert(body: &[u8]) -> Result<Alert, ApiError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    let Value::Object(map) = &value else {
        return Err(ApiError::field("body", "must be a JSON object"));
    };
    let mut errors = Vec::new();
    if map.get("version").and_then(Value::as_str) != Some("4") {
        errors.push(FieldError::new(
            "version",
            "must be \"4\" (Alertmanager webhook format)",
        ));
    }
    let status = map.get("status").and_then(Value::as_str);
    if !matches!(status, Some("firing" | "resolved")) {
        errors.push(FieldError::new(
            "status",
            "must be \"firing\" or \"resolved\"",
        ));
    }
    match map.get("alerts") {
        Some(Value::Array(alerts)) if alerts.len() > MAX_GROUP_ALERTS => {
            errors.push(FieldError::new(
                "alerts",
                format!("has {} alerts; at most {MAX_GROUP_ALERTS} in one notification (routing reads each alert's labels): set max_alerts: {MAX_GROUP_ALERTS} in Alertmanager's webhook_config", alerts.len()),
            ));
        }
        Some(Value::Array(alerts)) => {
            for (i, alert) in alerts.iter().enumerate() {
                check_am_alert(alert, i, &mut errors);
            }
        }
        _ => errors.push(FieldError::new("alerts", "must be an array")),
    }
    if let Some(why) = map.get("commonLabels").and_then(labels_problem) {
        errors.push(FieldError::new("commonLabels", why));
    }
    for key in ["commonAnnotations", "groupLabels"] {
        if let Some(v) = map.get(key) {
            if !is_string_map(v) {
                errors.push(FieldError::new(key, "must be an object of strings"));
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let mut label_sets = vec![labels_of(map.get("commonLabels"))];
    if let Some(Value::Array(alerts)) = map.get("alerts") {
        label_sets.extend(alerts.iter().map(|a| labels_of(a.get("labels"))));
    }
    // The whole payload, exactly as Alertmanager sent it (valid UTF-8: it parsed as JSON).
    Ok(Alert {
        event_type: format!("alertmanager.{}", status.unwrap_or("firing")),
        data: String::from_utf8_lossy(body.trim_ascii()).into_owned(),
        label_sets,
    })
}

/// Parses the alert a preview renders: an Alertmanager payload (an object with `version`), a
/// native alert, or nothing (empty or `{}`: the caller uses a sample).
///
/// # Errors
/// As [`alertmanager_alert`] and [`native_alert`].
pub fn preview_alert(body: &[u8]) -> Result<Option<Alert>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    match &value {
        Value::Object(m) if m.is_empty() => Ok(None),
        Value::Object(m) if m.contains_key("version") => alertmanager_alert(body).map(Some),
        _ => native_alert(body).map(Some),
    }
}

/// Most alerts one Alertmanager payload may carry whose errors are each reported.
const MAX_REPORTED: usize = 20;

/// One alert of an Alertmanager payload: an object, whose `labels` and `annotations` (when
/// present) are objects of strings, as Alertmanager sends them (routing reads the labels).
fn check_am_alert(alert: &Value, i: usize, errors: &mut Vec<FieldError>) {
    if errors.len() >= MAX_REPORTED {
        return;
    }
    let Value::Object(alert) = alert else {
        errors.push(FieldError::new(format!("alerts[{i}]"), "must be an object"));
        return;
    };
    if let Some(why) = alert.get("labels").and_then(labels_problem) {
        errors.push(FieldError::new(format!("alerts[{i}].labels"), why));
    }
    if let Some(v) = alert.get("annotations") {
        if !is_string_map(v) {
            errors.push(FieldError::new(
                format!("alerts[{i}].annotations"),
                "must be an object of strings",
            ));
        }
    }
}

/// What is wrong with labels that routing reads: not an object of strings, or a value longer
/// than [`MAX_LABEL_VALUE`] bytes.
fn labels_problem(v: &Value) -> Option<String> {
    let Some(map) = v.as_object().filter(|_| is_string_map(v)) else {
        return Some("must be an object of strings (routing reads them)".into());
    };
    map.iter().find_map(|(name, value)| {
        let len = value.as_str().map_or(0, str::len);
        (len > MAX_LABEL_VALUE).then(|| {
            let shown: String = name.chars().take(64).collect();
            format!("the value of label {shown:?} is {len} bytes; routing reads label values of at most {MAX_LABEL_VALUE} bytes")
        })
    })
}

fn is_string_map(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|m| m.values().all(Value::is_string))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::parse::fields::error_fields as fields;

    #[test]
    fn alert_label_sets() {
        let a = native_alert(br#"{"eventType":"x","payload":{"labels":{"team":"db"}}}"#).unwrap();
        assert_eq!(a.label_sets.len(), 1);
        assert_eq!(a.label_sets[0]["team"], "db");
        let a = native_alert(br#"{"eventType":"x","payload":{}}"#).unwrap();
        assert_eq!(a.label_sets, [Labels::new()]);
        let e = native_alert(br#"{"eventType":"x","payload":{"labels":{"n":1}}}"#).unwrap_err();
        assert_eq!(fields(e), ["payload.labels"]);
        let am = br#"{"version":"4","status":"firing","commonLabels":{"env":"prod"},"alerts":[{"labels":{"team":"db"}},{"labels":{"team":"web"}}]}"#;
        let a = alertmanager_alert(am).unwrap();
        assert_eq!(a.label_sets.len(), 3);
        assert_eq!(a.label_sets[0]["env"], "prod");
        assert_eq!(a.label_sets[2]["team"], "web");
    }

    #[test]
    fn alerts() {
        let a = native_alert(br#"{"eventType":"alert.firing","payload":{"x":1}}"#).unwrap();
        assert_eq!(
            (a.event_type.as_str(), a.data.as_str()),
            ("alert.firing", r#"{"x":1}"#)
        );
        assert_eq!(
            fields(native_alert(br#"{"eventType":"a b","payload":[]}"#).unwrap_err()),
            ["eventType", "payload"]
        );
        let am =
            br#"{"version":"4","status":"resolved","receiver":"r","alerts":[],"groupKey":"{}:{}"}"#;
        assert_eq!(
            alertmanager_alert(am).unwrap().event_type,
            "alertmanager.resolved"
        );
        assert_eq!(
            fields(alertmanager_alert(br#"{"version":"3","status":"x"}"#).unwrap_err()),
            ["version", "status", "alerts"]
        );
        // Found by schemathesis: alerts that were not objects were accepted.
        assert_eq!(
            fields(
                alertmanager_alert(
                    br#"{"version":"4","status":"firing","alerts":[[null,null],{"labels":{"a":1}},{"annotations":"x"},{"labels":{"ok":"yes"}}],"commonLabels":[]}"#
                )
                .unwrap_err()
            ),
            ["alerts[0]", "alerts[1].labels", "alerts[2].annotations", "commonLabels"]
        );
    }

    /// Found by the alert_body fuzz target: numbers were re-rounded on the way through
    /// (`2222...2.22` came out as a different float). Payloads now pass through verbatim.
    #[test]
    fn payloads_pass_through_verbatim() {
        let body = br#"{"eventType":"e","payload":{"f":222222222222222222222222222222222222222222222222222222222222222222222222222.22,"big":12345678901234567890123, "z":1,"a":2}}"#;
        let a = native_alert(body).unwrap();
        assert_eq!(
            a.data,
            r#"{"f":222222222222222222222222222222222222222222222222222222222222222222222222222.22,"big":12345678901234567890123, "z":1,"a":2}"#
        );
        assert_eq!(
            fields(native_alert(br#"{"eventType":"e","payload":{},"payload":{}}"#).unwrap_err()),
            ["payload"]
        );
        let am = b" {\"version\":\"4\",\"status\":\"firing\",\"alerts\":[],\"x\":1.000} \n";
        assert_eq!(
            alertmanager_alert(am).unwrap().data,
            r#"{"version":"4","status":"firing","alerts":[],"x":1.000}"#
        );
    }
}
