//! Logging setup: `HOOKD_LOG` (RUST_LOG syntax) and `HOOKD_LOG_FORMAT` (`pretty` or `json`),
//! to stderr. Request spans carry the request id, so every line of a request names it.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

/// The libraries hookd's own lines are about. They stay at `warn` unless the filter names them:
/// at `debug`, a client could otherwise make the HTTP/2 library log every frame it sends.
const LIBRARIES: [&str; 11] = [
    "h2",
    "hyper",
    "hyper_util",
    "rustls",
    "tokio",
    "tower",
    "wasmtime",
    "cranelift",
    "redb",
    "figment",
    "want",
];

/// The filter as given, plus `LIBRARY=warn` for every library it does not name.
pub fn effective_filter(filter: &str) -> String {
    let named = |lib: &str| {
        filter.split(',').any(|directive| {
            let target = directive.split(['=', '[']).next().unwrap_or("").trim();
            target == lib || target.starts_with(&format!("{lib}::"))
        })
    };
    let mut out = filter.trim().to_owned();
    for lib in LIBRARIES.iter().filter(|lib| !named(lib)) {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(lib);
        out.push_str("=warn");
    }
    out
}

/// Installs the global subscriber.
///
/// # Errors
/// A filter that does not parse, named by its key.
pub fn init(config: &Config) -> Result<(), String> {
    let filter = EnvFilter::try_new(effective_filter(&config.log))
        .map_err(|e| format!("invalid configuration:\n  log (HOOKD_LOG): {e}"))?;
    // Colour only for a person at a terminal: a file or the journal gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libraries_stay_at_warn_unless_named() {
        let f = effective_filter("debug");
        assert!(f.starts_with("debug,h2=warn,hyper=warn,"), "{f}");
        assert!(f.contains("wasmtime=warn"));
        let f = effective_filter("hookd=debug,h2=trace,hyper::proto=debug");
        assert!(f.contains("h2=trace") && !f.contains("h2=warn"), "{f}");
        assert!(!f.contains("hyper=warn"), "{f}");
        assert!(f.contains("hyper_util=warn"), "{f}");
        assert!(EnvFilter::try_new(effective_filter("info")).is_ok());
        assert!(EnvFilter::try_new(effective_filter("")).is_ok());
    }
}
