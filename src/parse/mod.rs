//! Pure request parsing and validation: request bytes in, a typed request or an
//! [`ApiError`](crate::error::ApiError) naming the field at fault out. No I/O and no panics; the
//! server and the fuzz targets call these same functions.
//!
//! JSON bodies are read as a `serde_json::Value` first and then checked field by field, so every
//! problem (unknown field, wrong type, missing, rule broken) is reported together, each with the
//! field's JSON name.
//!
//! One submodule per job; everything public is re-exported here, so callers write
//! `parse::create_endpoint`, never the submodule:
//!
//! - `fields`: the `Fields` JSON-object validator every body parser builds on (unknown keys,
//!   types, names, URLs, secrets, timestamps) and the echoing of client-chosen names as error
//!   fields.
//! - `endpoint`: endpoint bodies: create, PATCH, rotate-secret, recover.
//! - `options`: an endpoint's routing and shaping options (filters, label matchers, headers,
//!   rate limit, client certificate), shared by create and PATCH.
//! - `x509`: the X.509 DER walker that reads a client certificate's validity.
//! - `token`: token bodies and the `--scopes` list.
//! - `alert`: alert ingest: native alerts and Alertmanager payloads.
//! - `http`: HTTP edges: list query strings, `Authorization`, `Content-Type`.
//! - `plugin`: URL-policy plugins' answers, names and settings limits.

mod alert;
mod endpoint;
mod fields;
mod http;
mod options;
mod plugin;
mod token;
mod x509;

pub use self::alert::{alertmanager_alert, native_alert, preview_alert, Alert, MAX_EVENT_TYPE};
pub use self::endpoint::{
    create_endpoint, recover, rotate_secret, update_endpoint, CreateEndpoint, Rotation,
    UpdateEndpoint, CREATE_FIELDS, UPDATE_FIELDS,
};
pub use self::fields::{is_invisible_format, MAX_NAME_CHARS};
pub use self::http::{
    bearer_or_basic, bearer_token, is_json_content_type, list_query, Page, PageLimits, Presented,
};
pub use self::options::{
    check_format_options, format_options, header_name_problem, header_value_problem,
    ClientCertificateInput, EndpointOptions, FormatOptionsInput, MAX_HEADERS, MAX_PEM, MAX_RATE,
    MAX_ROUTING_KEY, OPTION_FIELDS, PAGERDUTY_SEVERITIES, RESERVED_HEADERS,
};
pub use self::plugin::{
    is_plugin_name, plugin_answer, transform_answer, PluginVerdict, TransformAnswer,
    MAX_DENY_REASON, MAX_PLUGIN_SETTINGS, MAX_TRANSFORM_BODY,
};
pub use self::token::{create_token, scopes_list, CreateToken};
pub use self::x509::{der_validity, not_after, pem_error};
