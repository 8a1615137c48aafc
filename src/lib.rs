//! hookd: a self-hosted webhook endpoint service in one binary.
//!
//! ## Who may depend on whom
//!
//! The modules in layers, from the wire inward. A module uses only modules of the layers below
//! its own: never one above, never a neighbour on its line. So there is no import circle, and
//! [`app`] is the one composition root: it builds every part and hands each only what it uses
//! (nothing below it knows `App`). The integration test `tests/it/shape.rs` reads every file's
//! `crate::` paths against this list, and fails on an arrow that points up or sideways, on a
//! module missing from the list, and on a source file over 600 lines.
//!
//! 1. `server` `cli`
//! 2. `api`
//! 3. `app`
//! 4. `delivery` `plugins` `logging`
//! 5. `store` `config` `tls`
//! 6. `parse` `backup_format` `commit_log` `vault` `metrics` `files` `heavy` `bodies` `notify`
//! 7. `format` `secrets` `routing` `route` `url_policy` `ids`
//! 8. `model` `error`
//! 9. `time`
//!
//! What each does:
//!
//! - [`server`]: accept loop, serving threads (one per core, a connection on one), connection
//!   limits and timeouts, request ids, graceful shutdown.
//! - [`cli`]: the operator's commands: `backup`, `restore`, `compact`.
//! - [`api`]: one handler per operation; bodies, auth and responses; the OpenAPI document.
//! - [`app`]: the composition root: data directory, master key, store, delivery, plugins,
//!   metrics, the bootstrap admin token, reloads.
//! - [`delivery`]: the dispatcher: signed sends, retries, circuits, rate limits, egress guard,
//!   attempt recording; given the store, the vault and the metrics by [`app`].
//! - [`plugins`]: the wasmtime host for URL-policy and transformer plugins.
//! - [`logging`]: the tracing subscriber, its reloadable filter, rate-limited warnings.
//! - [`store`]: the store boundary (typed methods, whichever backend keeps the data) and its
//!   backends: `store::postgres` (feature `postgres`: several instances on one database) and
//!   `store::embedded`, the default and the only module that knows redb: one group-committing
//!   writer, the delivery outbox and its per-endpoint queues, the attempt log, retention,
//!   backups, and surviving a full disk; its own metrics.
//! - [`tls`]: certificates and keys from PEM; the API listener's rustls configuration, re-read
//!   on a reload.
//! - [`config`]: figment layering of defaults, file and `HOOKD_*` environment; validation;
//!   what a reload may change.
//! - [`parse`]: pure request parsing and validation (bodies, query strings, `Authorization`).
//! - [`format`]: pure: the body an endpoint's format sends (Standard Webhooks, Slack, ...) for
//!   an event, within the target's limits.
//! - [`backup_format`]: the backup file format, pure and fuzzed (the store fills it).
//! - [`commit_log`]: the records of the store's commit log, pure and fuzzed (the store writes
//!   and replays them).
//! - [`vault`]: the master key and everything sealed with it (AES-256-GCM, associated data),
//!   and the tokens' keyed hash.
//! - [`metrics`]: the Prometheus registry (`/metrics`), a leaf the parts register into.
//! - [`files`]: private directories and files (0700, 0600), made durable when created.
//! - [`heavy`]: threads at a lower priority for the CPU work a request may cause.
//! - [`bodies`]: the request bodies rendered last, shared by the deliveries of one message.
//! - [`notify`]: systemd's readiness protocol (`READY=1` once serving, `STOPPING=1`); its
//!   `NOTIFY_SOCKET` parser is pure and fuzzed.
//! - [`secrets`]: ring: signing secrets, API tokens, webhook signatures.
//! - [`routing`]: pure: which alerts an endpoint takes (event-type filters, Alertmanager
//!   label matchers).
//! - [`route`]: pure method + path -> operation (404 / 405 with `Allow`); the table of routes
//!   with who may call each.
//! - [`url_policy`]: the built-in URL rules (scheme, user-info, length, denied address ranges).
//! - [`model`], [`ids`], [`time`]: domain types, time-ordered ids, RFC 3339 timestamps.
//! - [`error`]: the one error type, rendered as `application/problem+json`.
//!
//! Everything that does I/O sits behind the `server` feature (on by default); without it the
//! crate is the pure parsing and validation core that the fuzz targets build in under a minute.

pub mod backup_format;
pub mod commit_log;
pub mod config;
pub mod error;
pub mod format;
pub mod ids;
pub mod model;
pub mod notify;
pub mod parse;
pub mod route;
pub mod routing;
pub mod secrets;
pub mod time;
pub mod url_policy;
pub mod vault;

#[cfg(feature = "server")]
pub mod api;
#[cfg(feature = "server")]
pub mod app;
#[cfg(feature = "server")]
pub mod bodies;
#[cfg(feature = "server")]
pub mod cli;
#[cfg(feature = "server")]
pub mod delivery;
#[cfg(feature = "server")]
pub mod files;
#[cfg(feature = "server")]
pub mod heavy;
#[cfg(feature = "server")]
pub mod logging;
#[cfg(feature = "server")]
pub mod metrics;
#[cfg(feature = "server")]
pub mod plugins;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod store;
#[cfg(feature = "server")]
pub mod tls;
