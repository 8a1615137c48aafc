//! Logging setup: `HOOKD_LOG` (RUST_LOG syntax) and `HOOKD_LOG_FORMAT` (`pretty` or `json`),
//! to stderr. Request spans carry the request id, so every line of a request names it.

use std::io::IsTerminal as _;
use std::sync::OnceLock;

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

/// Swaps the filter of the installed subscriber (its type depends on the format chosen).
type Reload = Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>;
static RELOAD: OnceLock<Reload> = OnceLock::new();

/// The filter `log` makes, or why it does not parse (naming the key).
///
/// # Errors
/// A filter that does not parse.
pub fn check_filter(log: &str) -> Result<EnvFilter, String> {
    EnvFilter::try_new(effective_filter(log))
        .map_err(|e| format!("invalid configuration:\n  log (HOOKD_LOG): {e}"))
}

/// Installs the global subscriber.
///
/// # Errors
/// A filter that does not parse, named by its key.
pub fn init(config: &Config) -> Result<(), String> {
    let filter = check_filter(&config.log)?;
    // Colour only for a person at a terminal: a file or the journal gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // A subscriber already installed (tests that start several servers) is not an error.
    match config.log_format {
        LogFormat::Pretty => {
            let builder = builder.with_target(false).with_filter_reloading();
            let handle = builder.reload_handle();
            if builder.try_init().is_ok() {
                let _ = RELOAD.set(Box::new(move |f| {
                    handle.reload(f).map_err(|e| e.to_string())
                }));
            }
        }
        LogFormat::Json => {
            let builder = builder
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .with_filter_reloading();
            let handle = builder.reload_handle();
            if builder.try_init().is_ok() {
                let _ = RELOAD.set(Box::new(move |f| {
                    handle.reload(f).map_err(|e| e.to_string())
                }));
            }
        }
    }
    Ok(())
}

/// Applies a new `log` filter to the running subscriber (a reload).
///
/// # Errors
/// A filter that does not parse.
pub fn set_filter(log: &str) -> Result<(), String> {
    let filter = check_filter(log)?;
    match RELOAD.get() {
        Some(reload) => reload(filter),
        None => Ok(()), // no subscriber of ours (in-process tests)
    }
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

/// At most one log line per period for events anyone can cause (refused connections, failed
/// requests), counting what it leaves out.
pub struct RateLimit {
    every_ms: u64,
    last_ms: std::sync::atomic::AtomicU64,
    since_last: std::sync::atomic::AtomicU64,
}

impl RateLimit {
    pub const fn new(every_ms: u64) -> Self {
        Self {
            every_ms,
            last_ms: std::sync::atomic::AtomicU64::new(0),
            since_last: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Counts an event; `Some(events since the last line, this one included)` when this one
    /// may be logged, `None` when it is to be left out.
    pub fn admit(&self) -> Option<u64> {
        use std::sync::atomic::Ordering::Relaxed;
        let count = self.since_last.fetch_add(1, Relaxed) + 1;
        let now = u64::try_from(crate::time::now_ms()).unwrap_or(0);
        let last = self.last_ms.load(Relaxed);
        if now.saturating_sub(last) < self.every_ms
            || self
                .last_ms
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_err()
        {
            return None;
        }
        self.since_last.fetch_sub(count, Relaxed);
        Some(count)
    }
}

#[cfg(test)]
mod rate_tests {
    use super::RateLimit;

    #[test]
    fn one_line_per_period_with_a_count() {
        let r = RateLimit::new(60_000);
        assert_eq!(r.admit(), Some(1));
        for _ in 0..5 {
            assert_eq!(r.admit(), None);
        }
        let r = RateLimit::new(0);
        assert_eq!(r.admit(), Some(1));
    }
}
