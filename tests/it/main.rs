//! The integration tests: the real server (in-process on 127.0.0.1:0, or the `hookd` binary as
//! a daemon) driven over HTTP the way a user would. One test binary: the server is linked once,
//! not once per file. Each module is one area; `common` is what they share.
#![allow(clippy::unwrap_used)]

mod common;

mod aarch64;
mod api;
mod backup;
mod connections;
mod console;
mod daemon;
mod delivery;
mod forgetful;
mod formats;
mod full_disk;
mod large_groups;
#[cfg(feature = "postgres")]
mod migrate;
mod observability;
mod plugins;
#[cfg(feature = "postgres")]
mod postgres;
mod powercut;
mod powercut_fs;
mod reference;
mod rekey;
mod retention;
mod routing;
mod shape;
mod store;
mod tls;
mod transformers;
