//! Logging setup: `HOOKD_LOG` (RUST_LOG syntax) and `HOOKD_LOG_FORMAT` (`pretty` or `json`),
//! to stderr. Request spans carry the request id, so every line of a request names it.

use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

/// Installs the global subscriber.
///
/// # Errors
/// A filter that does not parse, named by its key.
pub fn init(config: &Config) -> Result<(), String> {
    let filter = EnvFilter::try_new(&config.log)
        .map_err(|e| format!("invalid configuration:\n  log (HOOKD_LOG): {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match config.log_format {
        LogFormat::Pretty => builder.with_target(false).try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    // A subscriber already installed (tests that start several servers) is not an error.
    drop(result);
    Ok(())
}
