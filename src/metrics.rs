//! Prometheus metrics (`GET /metrics`, the Prometheus text format) from the Prometheus project's
//! client crate.
//!
//! Names follow Alertmanager's (`..._notifications_total`, `..._notifications_failed_total`,
//! `..._notification_latency_seconds`), so alerting rules written for it carry over. No label
//! takes a value a client chooses: routes are operation names, methods a fixed set, failure
//! reasons a fixed set, plugins the configured names. Counters are recorded as things happen;
//! gauges (outbox, endpoints, store, circuits, process) are read at each scrape.
//!
//! A leaf: it knows no other part of hookd. The store's and delivery's instruments and gauges
//! live beside them and are registered here by the composition root ([`crate::app`]).

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Metric, Registry};

/// Content type of the exposition.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub route: &'static str,
    pub method: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabels {
    pub plugin: String,
    pub verdict: &'static str,
}

/// The reasons a failed delivery attempt is counted under (`hookd_notifications_failed_total`).
pub const FAILURE_REASONS: [&str; 11] = [
    "timeout",
    "connect",
    "tls",
    "client_error",
    "server_error",
    "egress_denied",
    "redirect",
    "gone",
    "rate_limited",
    "transform_failed",
    "internal",
];

/// The failure reason of an attempt: from its status code when it got an answer, else from its
/// error.
pub fn failure_reason(status: Option<u16>, error: Option<&str>) -> &'static str {
    match (status, error) {
        (Some(429), _) => "rate_limited",
        (Some(410), _) => "gone",
        (Some(300..=399), _) => "redirect",
        (Some(400..=499), _) => "client_error",
        (Some(_), _) => "server_error",
        (None, Some("timeout")) => "timeout",
        (None, Some("tls")) => "tls",
        (None, Some("egress_denied")) => "egress_denied",
        (None, Some("connect" | "request")) => "connect",
        (None, Some("transform_failed")) => "transform_failed",
        (None, _) => "internal",
    }
}

/// A method as a label: one of a fixed set.
pub fn method_label(method: &hyper::Method) -> &'static str {
    match *method {
        hyper::Method::GET => "GET",
        hyper::Method::HEAD => "HEAD",
        hyper::Method::POST => "POST",
        hyper::Method::PATCH => "PATCH",
        hyper::Method::PUT => "PUT",
        hyper::Method::DELETE => "DELETE",
        hyper::Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Every instrument, and the registry that exposes them.
pub struct Metrics {
    /// Behind a lock so the parts can register theirs once the whole is shared.
    registry: Mutex<Registry>,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: Family<RouteLabel, Histogram>,
    pub notifications: Counter,
    pub notifications_failed: Family<ReasonLabel, Counter>,
    pub notification_latency: Histogram,
    pub attempt_duration: Histogram,
    pub given_up: Counter,
    pub plugin_checks: Family<PluginLabels, Counter>,
    pub plugin_duration: Histogram,
}

fn seconds_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.000_5, 2.0, 16))
}

impl Metrics {
    /// The registry with hookd's own instruments and the process metrics; the other parts
    /// add theirs with [`Metrics::register`] and [`Metrics::register_collector`].
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        // The process metrics are named as every exporter names them; hookd's own get `hookd_`.
        let mut root = Registry::default();
        root.register_collector(Box::new(Process));
        let registry = root.sub_registry_with_prefix("hookd");
        let m = Self {
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(seconds_buckets),
            notifications: Counter::default(),
            notifications_failed: Family::default(),
            notification_latency: Histogram::new(exponential_buckets(0.001, 2.0, 20)),
            attempt_duration: seconds_buckets(),
            given_up: Counter::default(),
            plugin_checks: Family::default(),
            plugin_duration: Histogram::new(exponential_buckets(0.000_002, 2.0, 16)),
            registry: Mutex::new(Registry::default()),
        };
        registry.register(
            "http_requests",
            "HTTP requests served, by route (the operation), method and status",
            m.http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to serve a request, by route",
            m.http_duration.clone(),
        );
        registry.register(
            "notifications",
            "Delivery attempts made (signed POSTs to receivers)",
            m.notifications.clone(),
        );
        // Every reason shows, at 0, from the first scrape: rules on rates need the series.
        for reason in FAILURE_REASONS {
            let _ = m
                .notifications_failed
                .get_or_create(&ReasonLabel { reason });
        }
        registry.register(
            "notifications_failed",
            "Delivery attempts that failed, by reason",
            m.notifications_failed.clone(),
        );
        registry.register(
            "notification_latency_seconds",
            "Time from an alert's acceptance to its delivery (successful deliveries)",
            m.notification_latency.clone(),
        );
        registry.register(
            "notification_attempt_duration_seconds",
            "Duration of one delivery attempt",
            m.attempt_duration.clone(),
        );
        registry.register(
            "notifications_given_up",
            "Deliveries that gave up (retry schedule exhausted, 410, or endpoint disabled)",
            m.given_up.clone(),
        );
        registry.register(
            "plugin_checks",
            "URL-policy plugin calls, by plugin and verdict (allow, deny, fail)",
            m.plugin_checks.clone(),
        );
        registry.register(
            "plugin_check_duration_seconds",
            "Time of one URL-policy check (every plugin of the chain)",
            m.plugin_duration.clone(),
        );
        registry.register_collector(Box::new(BuildInfo));
        Self {
            registry: Mutex::new(root),
            ..m
        }
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `metric` as `hookd_<name>`.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.registry()
            .sub_registry_with_prefix("hookd")
            .register(name, help, metric);
    }

    /// Adds gauges read at each scrape, named `hookd_<name>`.
    pub fn register_collector(&self, collector: Box<dyn Collector>) {
        self.registry()
            .sub_registry_with_prefix("hookd")
            .register_collector(collector);
    }

    /// The exposition, in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry()).is_err()
        {
            out.clear();
        }
        out
    }

    /// One HTTP request served.
    pub fn http(&self, route: &'static str, method: &'static str, status: u16, took: Duration) {
        self.http_requests
            .get_or_create(&HttpLabels {
                route,
                method,
                status,
            })
            .inc();
        self.http_duration
            .get_or_create(&RouteLabel { route })
            .observe(took.as_secs_f64());
    }
}

/// A gauge read at a scrape, for the collectors of the parts.
///
/// # Errors
/// Only those of the encoder.
pub fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: impl prometheus_client::encoding::EncodeGaugeValue + Copy,
) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(value);
    g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)
}

/// `hookd_build_info{version="..."} 1`.
#[derive(Debug)]
struct BuildInfo;

impl Collector for BuildInfo {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let info = ConstGauge::new(1i64);
        let mut family =
            encoder.encode_descriptor("build_info", "hookd's version", None, info.metric_type())?;
        info.encode(family.encode_family(&[("version", env!("CARGO_PKG_VERSION"))])?)?;
        Ok(())
    }
}

/// The standard process metrics, from /proc (Linux).
#[derive(Debug)]
struct Process;

/// (resident bytes, virtual bytes, CPU seconds, start time in seconds since the epoch).
fn proc_stat() -> Option<(u64, u64, f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces), numbered from 3.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    let start_ticks: f64 = f.get(19)?.parse().ok()?;
    let vsize: u64 = f.get(20)?.parse().ok()?;
    let rss_pages: u64 = f.get(21)?.parse().ok()?;
    let page = rustix::param::page_size() as u64;
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse::<f64>()
        .ok()?;
    Some((
        rss_pages * page,
        vsize,
        (utime + stime) / ticks,
        boot + start_ticks / ticks,
    ))
}

impl Collector for Process {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some((rss, vsize, cpu, start)) = proc_stat() {
            gauge(
                &mut encoder,
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                rss,
            )?;
            gauge(
                &mut encoder,
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                vsize,
            )?;
            let c = ConstCounter::new(cpu);
            c.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                c.metric_type(),
            )?)?;
            gauge(
                &mut encoder,
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch in seconds",
                start,
            )?;
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            gauge(
                &mut encoder,
                "process_open_fds",
                "Number of open file descriptors",
                fds.count(),
            )?;
        }
        if let Some(max) = rustix::process::getrlimit(rustix::process::Resource::Nofile).current {
            gauge(
                &mut encoder,
                "process_max_fds",
                "Maximum number of open file descriptors",
                max,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_reasons_are_a_fixed_set() {
        for (status, error, reason) in [
            (Some(429), None, "rate_limited"),
            (Some(410), None, "gone"),
            (Some(302), Some("redirect"), "redirect"),
            (Some(404), None, "client_error"),
            (Some(503), Some("retry_after=5"), "server_error"),
            (None, Some("timeout"), "timeout"),
            (None, Some("tls"), "tls"),
            (None, Some("connect"), "connect"),
            (None, Some("request"), "connect"),
            (None, Some("egress_denied"), "egress_denied"),
            (None, Some("secret_unavailable"), "internal"),
            (None, Some("anything else"), "internal"),
        ] {
            let got = failure_reason(status, error);
            assert_eq!(got, reason, "{status:?} {error:?}");
            assert!(FAILURE_REASONS.contains(&got));
        }
        assert_eq!(method_label(&hyper::Method::GET), "GET");
        let brew = hyper::Method::from_bytes(b"BREW").expect("an extension method");
        assert_eq!(method_label(&brew), "other");
    }
}
