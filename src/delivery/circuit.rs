//! The per-endpoint circuit breaker.
//!
//! After `delivery.circuit_failures` failed attempts in a row, an endpoint's circuit opens: its
//! other deliveries are held (no attempts, so 200,000 queued alerts for a dead receiver are not
//! 200,000 refused connections), and one delivery probes it after `delivery.circuit_open_secs`,
//! then after twice as long following each failed probe, up to `delivery.circuit_max_open_secs`.
//! A successful attempt closes it. State is kept in memory: after a restart a dead endpoint
//! opens its circuit again within its first few failures.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::config::DeliveryConfig;
use crate::model::CircuitView;

/// What the dispatcher may start for an endpoint now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allow {
    /// As many as its permits allow.
    All,
    /// One probe.
    Probe,
    /// Nothing: the circuit is open and the next probe is not due (or under way).
    Hold,
}

#[derive(Debug, Clone, Default)]
struct Circuit {
    /// Failed attempts in a row.
    failures: u32,
    /// While open: when the next probe may start (Unix ms).
    next_probe_ms: Option<i64>,
    /// The wait before the next probe after this one, if it fails.
    open_ms: i64,
    probing: bool,
}

/// The circuits of all endpoints that are failing (closed ones with no failures are not kept).
pub struct Circuits {
    /// (failures that open a circuit (0: never), first wait ms, longest wait ms); a reload may
    /// change them.
    settings: Mutex<(u32, i64, i64)>,
    map: Mutex<HashMap<String, Circuit>>,
}

fn settings_of(config: &DeliveryConfig) -> (u32, i64, i64) {
    let ms = |secs: u64| i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    (
        config.circuit_failures,
        ms(config.circuit_open_secs),
        ms(config.circuit_max_open_secs),
    )
}

impl Circuits {
    pub fn new(config: &DeliveryConfig) -> Self {
        Self {
            settings: Mutex::new(settings_of(config)),
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Takes reloaded settings (circuits already open keep their next probe time).
    pub fn configure(&self, config: &DeliveryConfig) {
        *self
            .settings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = settings_of(config);
    }

    fn settings(&self) -> (u32, i64, i64) {
        *self
            .settings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Circuit>) -> T) -> T {
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut map)
    }

    /// What may start for `endpoint` at `now_ms`.
    pub fn allow(&self, endpoint: &str, now_ms: i64) -> Allow {
        self.with(|map| match map.get(endpoint) {
            Some(c) => match c.next_probe_ms {
                None => Allow::All,
                Some(_) if c.probing => Allow::Hold,
                Some(at) if at <= now_ms => Allow::Probe,
                Some(_) => Allow::Hold,
            },
            None => Allow::All,
        })
    }

    /// A delivery to `endpoint` started; if the circuit is open, it is the probe.
    pub fn started(&self, endpoint: &str) {
        self.with(|map| {
            if let Some(c) = map.get_mut(endpoint) {
                if c.next_probe_ms.is_some() {
                    c.probing = true;
                }
            }
        });
    }

    /// An attempt to `endpoint` ended at `now_ms`; returns `true` when this opened the circuit.
    pub fn finished(&self, endpoint: &str, success: bool, now_ms: i64) -> bool {
        let (threshold, first_open_ms, max_open_ms) = self.settings();
        if threshold == 0 {
            return false;
        }
        self.with(|map| {
            if success {
                map.remove(endpoint);
                return false;
            }
            let c = map.entry(endpoint.to_owned()).or_default();
            c.failures = c.failures.saturating_add(1);
            match c.next_probe_ms {
                Some(_) if c.probing => {
                    c.probing = false;
                    c.open_ms = c.open_ms.saturating_mul(2).min(max_open_ms);
                    c.next_probe_ms = Some(now_ms.saturating_add(c.open_ms));
                    false
                }
                // An attempt that started before the circuit opened: it stays open.
                Some(_) => false,
                None if c.failures >= threshold => {
                    c.open_ms = first_open_ms;
                    c.next_probe_ms = Some(now_ms.saturating_add(c.open_ms));
                    true
                }
                None => false,
            }
        })
    }

    /// Forgets `endpoint` (deleted, or enabled again by a person).
    /// While the circuit of `endpoint` is open: when its next probe may start.
    #[cfg(feature = "postgres")]
    pub fn next_probe(&self, endpoint: &str) -> Option<i64> {
        self.with(|map| map.get(endpoint).and_then(|c| c.next_probe_ms))
    }

    /// Another instance opened the circuit of `endpoint` until `next_probe_ms`, or closed it
    /// (`None`): this one holds its deliveries too, or sends them again. A circuit this one
    /// opened already keeps its own times.
    #[cfg(feature = "postgres")]
    pub fn adopt(&self, endpoint: &str, next_probe_ms: Option<i64>) {
        let (threshold, first_open_ms, _) = self.settings();
        if threshold == 0 {
            return;
        }
        self.with(|map| match next_probe_ms {
            None => {
                map.remove(endpoint);
            }
            Some(at) => {
                let c = map.entry(endpoint.to_owned()).or_default();
                if c.next_probe_ms.is_none() {
                    c.failures = c.failures.max(threshold);
                    c.open_ms = first_open_ms;
                    c.next_probe_ms = Some(at);
                }
            }
        });
    }

    pub fn reset(&self, endpoint: &str) {
        self.with(|map| map.remove(endpoint));
    }

    pub fn view(&self, endpoint: &str) -> CircuitView {
        self.with(|map| match map.get(endpoint) {
            Some(c) => CircuitView {
                state: match (c.next_probe_ms, c.probing) {
                    (None, _) => "closed",
                    (Some(_), true) => "probing",
                    (Some(_), false) => "open",
                },
                consecutive_failures: c.failures,
                next_probe_at: c
                    .next_probe_ms
                    .filter(|_| !c.probing)
                    .map(crate::time::rfc3339),
            },
            None => CircuitView::CLOSED,
        })
    }

    /// How many endpoints have an open circuit.
    pub fn open_count(&self) -> usize {
        self.with(|map| map.values().filter(|c| c.next_probe_ms.is_some()).count())
    }
}

/// The `circuits_open` gauge, read at each scrape.
/// Applies the circuits other instances open and close (see [`Circuits::adopt`]) until the
/// returned guard drops; nothing when only this process delivers.
#[cfg(feature = "postgres")]
pub fn follow(delivery: &std::sync::Arc<super::Delivery>) -> Option<Following> {
    let mut news = delivery.deps.store.circuit_news()?;
    let d = delivery.clone();
    let task = tokio::spawn(async move {
        loop {
            match news.recv().await {
                Ok((endpoint, next_probe_ms)) => {
                    d.circuits.adopt(&endpoint, next_probe_ms);
                    if next_probe_ms.is_none() {
                        d.wake();
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    Some(Following(task.abort_handle()))
}

/// What [`follow`] returns: the task that follows other instances' circuits, ended when this
/// drops.
#[cfg(feature = "postgres")]
pub struct Following(tokio::task::AbortHandle);

#[cfg(feature = "postgres")]
impl Drop for Following {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[derive(Clone)]
pub struct OpenCircuits(pub(super) std::sync::Arc<Circuits>);

impl std::fmt::Debug for OpenCircuits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpenCircuits")
    }
}

impl prometheus_client::collector::Collector for OpenCircuits {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        crate::metrics::gauge(
            &mut encoder,
            "circuits_open",
            "Endpoints whose circuit is open (deliveries held, probing)",
            self.0.open_count(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn circuits(threshold: u32) -> Circuits {
        Circuits {
            settings: Mutex::new((threshold, 5_000, 12_000)),
            map: Mutex::new(HashMap::new()),
        }
    }

    #[test]
    fn opens_probes_backs_off_and_closes() {
        let c = circuits(3);
        assert!(!c.finished("e", false, 0));
        assert!(!c.finished("e", false, 0));
        assert_eq!(c.allow("e", 0), Allow::All);
        assert!(c.finished("e", false, 1_000), "the third failure opens it");
        assert_eq!(c.allow("e", 5_999), Allow::Hold);
        assert_eq!(c.view("e").state, "open");
        assert_eq!(c.allow("e", 6_000), Allow::Probe);
        c.started("e");
        assert_eq!(c.allow("e", 6_001), Allow::Hold, "one probe at a time");
        assert_eq!(c.view("e").state, "probing");
        c.finished("e", false, 7_000);
        assert_eq!(c.allow("e", 16_999), Allow::Hold, "twice as long: 10 s");
        assert_eq!(c.allow("e", 17_000), Allow::Probe);
        c.started("e");
        c.finished("e", false, 17_000);
        assert_eq!(c.allow("e", 28_999), Allow::Hold, "capped at 12 s");
        assert_eq!(c.allow("e", 29_000), Allow::Probe);
        c.started("e");
        c.finished("e", true, 29_500);
        assert_eq!(c.allow("e", 29_500), Allow::All);
        assert_eq!(c.view("e").state, "closed");
        assert_eq!(c.view("e").consecutive_failures, 0);
    }

    #[test]
    fn zero_failures_means_off() {
        let c = circuits(0);
        for _ in 0..100 {
            assert!(!c.finished("e", false, 0));
        }
        assert_eq!(c.allow("e", 0), Allow::All);
    }
}
