//! Opening the store `store.backend` names: the embedded one in the data directory, or
//! PostgreSQL (with the `postgres` feature), with its TLS roots.

use std::path::Path;
#[cfg(feature = "postgres")]
use std::sync::Arc;

use super::StartupError;
use crate::config::Config;
use crate::store::{Store, StoreError};

/// The store `config.store.backend` names: the embedded one at `path`, or PostgreSQL.
pub(super) async fn open_store(
    config: &Config,
    path: &Path,
    options: crate::store::Options,
) -> Result<Store, StartupError> {
    match config.store.backend {
        crate::config::StoreBackend::Embedded => {
            Store::open_embedded(path, options).map_err(|source| StartupError::Store {
                path: path.display().to_string(),
                source,
            })
        }
        #[cfg(feature = "postgres")]
        crate::config::StoreBackend::Postgres => {
            let options = postgres_options(config, None).map_err(|e| StartupError::Store {
                path: "store.postgres_ca_file".into(),
                source: StoreError::Storage(e),
            })?;
            Store::connect_postgres(&options)
                .await
                .map_err(|source| StartupError::Store {
                    path: "PostgreSQL (store.postgres_url)".into(),
                    source,
                })
        }
        #[cfg(not(feature = "postgres"))]
        crate::config::StoreBackend::Postgres => Err(StartupError::Store {
            path: "store.backend".into(),
            source: StoreError::Storage(
                "\"postgres\" needs a hookd built with the postgres feature".into(),
            ),
        }),
    }
}

/// How to reach the database `[store]` names (or `url` instead of `store.postgres_url`).
///
/// # Errors
/// `store.postgres_ca_file` cannot be read.
#[cfg(feature = "postgres")]
pub(super) fn postgres_options(
    config: &Config,
    url: Option<&str>,
) -> Result<crate::store::postgres::Options, String> {
    let s = &config.store;
    let tls = crate::tls::web_roots_and(Some(&s.postgres_ca_file))
        .and_then(|roots| crate::tls::client_config(Arc::new(roots), None))?;
    Ok(crate::store::postgres::Options {
        url: url
            .or_else(|| s.postgres_url.expose())
            .unwrap_or_default()
            .to_owned(),
        pool_size: s.postgres_pool_size,
        lease: std::time::Duration::from_secs(s.postgres_lease_secs),
        tls: Arc::new(tls),
    })
}
