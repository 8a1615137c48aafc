//! hookd: a self-hosted webhook endpoint service in one binary.
//!
//! The modules, from the wire inward:
//!
//! - [`server`]: accept loop, connection limit, header timeout, request ids, graceful shutdown.
//! - [`api`]: routing to one handler per operation; bodies, auth and responses.
//! - [`route`]: pure method + path -> operation (404 / 405 with `Allow`).
//! - [`parse`]: pure request parsing and validation (bodies, query strings, `Authorization`).
//! - [`routing`]: pure: which alerts an endpoint takes (event-type filters, Alertmanager
//!   label matchers).
//! - [`url_policy`]: the built-in URL rules (scheme, user-info, length, denied address ranges).
//! - [`secrets`]: ring: signing secrets, API tokens, webhook signatures.
//! - [`vault`]: the master key and everything sealed with it (AES-256-GCM), and the tokens'
//!   keyed hash.
//! - [`store`]: the only module that knows redb: typed methods, one group-committing writer,
//!   the delivery outbox and its per-endpoint queues, the attempt log, retention, backups, and
//!   surviving a full disk.
//! - [`delivery`]: the dispatcher: signed sends, retries, egress guard, attempt recording.
//! - [`plugins`]: the wasmtime host for URL-policy plugins.
//! - [`metrics`]: Prometheus metrics (`/metrics`), recorded as things happen and read at scrapes.
//! - [`app`]: startup: data directory, master key, store, the bootstrap admin token.
//! - [`files`]: private directories and files (0700, 0600), made durable when created.
//! - [`notify`]: systemd's readiness protocol (`READY=1` once serving, `STOPPING=1`); its
//!   `NOTIFY_SOCKET` parser is pure and fuzzed.
//! - [`cli`]: the operator's commands: `backup`, `restore`, `compact`.
//! - [`config`]: figment layering of defaults, file and `HOOKD_*` environment.
//! - [`error`]: the one error type, rendered as `application/problem+json`.
//! - [`model`], [`ids`], [`time`]: domain types, time-ordered ids, RFC 3339 timestamps.
//! - [`backup_format`]: the backup file format, pure and fuzzed (the store fills it).
//!
//! Everything that does I/O sits behind the `server` feature (on by default); without it the
//! crate is the pure parsing and validation core that the fuzz targets build in under a minute.

pub mod backup_format;
pub mod config;
pub mod error;
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
