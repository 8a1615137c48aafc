//! The connection table: every open connection holds a slot, at most `limits.max_connections` in
//! all and `limits.max_connections_per_ip` from one address (networks in
//! `limits.per_ip_exempt_networks`, loopback by default, have no per-address cap: a reverse proxy
//! in front of hookd connects from one address).
//!
//! A connection with no request in flight is idle. When the table is full, a newcomer takes the
//! slot of the connection that has been idle longest (it is told to close) instead of being
//! refused, so sockets that are opened and left silent cannot lock real clients out; only when
//! every slot is busy with a request is the newcomer refused with 503.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::url_policy::Cidr;

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Every slot holds a connection with a request in flight.
    Full,
    /// This address holds its share of slots, each with a request in flight.
    PerAddress,
}

/// The table's limits.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max: usize,
    pub per_ip: usize,
    pub exempt: Vec<Cidr>,
}

pub struct Conns {
    limits: Limits,
    epoch: Instant,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    open: HashMap<u64, Arc<ConnState>>,
    /// Connections told to close that have not closed yet (they still hold their slot).
    closing: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// What the table and the connection's task share about one connection.
pub struct ConnState {
    id: u64,
    ip: IpAddr,
    epoch: Instant,
    /// Requests in flight on this connection.
    active: AtomicUsize,
    /// Whether a request has started (before that the connection is bound by the header
    /// timeout, after it by the idle timeout).
    served: AtomicBool,
    /// Milliseconds after `epoch` at which the connection last became idle.
    idle_since: AtomicU64,
    /// Set when the table evicts the connection; the task then closes it.
    evicted: AtomicBool,
    pub close: Notify,
}

impl ConnState {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A request has started; the connection is busy until [`ConnState::request_done`].
    pub fn request_started(&self) {
        self.served.store(true, Ordering::Relaxed);
        self.active.fetch_add(1, Ordering::AcqRel);
    }

    pub fn request_done(&self) {
        self.idle_since.store(self.now(), Ordering::Relaxed);
        self.active.fetch_sub(1, Ordering::AcqRel);
    }

    /// Whether any request has started on this connection.
    pub fn has_served(&self) -> bool {
        self.served.load(Ordering::Relaxed)
    }

    pub fn is_evicted(&self) -> bool {
        self.evicted.load(Ordering::Acquire)
    }

    /// How long until the connection has been idle for its limit (`first` before any request,
    /// `idle` after one): `Some(ZERO)` means now; `None` while a request is in flight.
    pub fn idle_deadline(&self, first: Duration, idle: Duration) -> Option<Duration> {
        if self.active.load(Ordering::Acquire) > 0 {
            return None;
        }
        let limit = if self.served.load(Ordering::Relaxed) {
            idle
        } else {
            first
        };
        let idle_for = Duration::from_millis(
            self.now()
                .saturating_sub(self.idle_since.load(Ordering::Relaxed)),
        );
        Some(limit.saturating_sub(idle_for))
    }
}

/// A connection's slot; dropping it frees the slot.
pub struct Slot {
    conns: Arc<Conns>,
    pub state: Arc<ConnState>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut inner = self.conns.lock();
        if inner.open.remove(&self.state.id).is_some() {
            if self.state.is_evicted() {
                inner.closing -= 1;
            }
            if let Some(n) = inner.by_ip.get_mut(&self.state.ip) {
                *n -= 1;
                if *n == 0 {
                    inner.by_ip.remove(&self.state.ip);
                }
            }
        }
    }
}

impl Conns {
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            epoch: Instant::now(),
            inner: Mutex::new(Inner::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Open connections (including those told to close that have not closed yet).
    pub fn open(&self) -> usize {
        self.lock().open.len()
    }

    /// Gives a new connection from `ip` a slot, evicting the longest-idle connection (of the
    /// same address, when the per-address cap is what is reached) if there is no free one.
    ///
    /// # Errors
    /// [`Refused`] when every slot that could be freed has a request in flight.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refused> {
        let mut inner = self.lock();
        let capped = !self.limits.exempt.iter().any(|n| n.contains(ip));
        let from_ip = inner.by_ip.get(&ip).copied().unwrap_or(0);
        let mut made_room = false;
        if capped && from_ip >= self.limits.per_ip {
            // What this address holds, less what is already closing.
            let closing = inner
                .open
                .values()
                .filter(|c| c.ip == ip && c.is_evicted())
                .count();
            if from_ip - closing >= self.limits.per_ip {
                if !evict_idle(&mut inner, Some(ip)) {
                    return Err(Refused::PerAddress);
                }
                made_room = true;
            }
        }
        if !made_room
            && inner.open.len() - inner.closing >= self.limits.max
            && !evict_idle(&mut inner, None)
        {
            return Err(Refused::Full);
        }
        inner.next_id += 1;
        let state = Arc::new(ConnState {
            id: inner.next_id,
            ip,
            epoch: self.epoch,
            active: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            idle_since: AtomicU64::new(
                u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX),
            ),
            evicted: AtomicBool::new(false),
            close: Notify::new(),
        });
        inner.open.insert(state.id, state.clone());
        *inner.by_ip.entry(ip).or_insert(0) += 1;
        Ok(Slot {
            conns: self.clone(),
            state,
        })
    }
}

/// Tells the connection idle longest (from `ip`, if given) to close. Returns whether there was
/// one.
fn evict_idle(inner: &mut Inner, ip: Option<IpAddr>) -> bool {
    let victim = inner
        .open
        .values()
        .filter(|c| ip.is_none_or(|ip| c.ip == ip))
        .filter(|c| !c.is_evicted() && c.active.load(Ordering::Acquire) == 0)
        .min_by_key(|c| c.idle_since.load(Ordering::Relaxed))
        .cloned();
    let Some(victim) = victim else {
        return false;
    };
    victim.evicted.store(true, Ordering::Release);
    victim.close.notify_one();
    inner.closing += 1;
    true
}

/// Marks its connection busy with a request until dropped.
pub struct Busy(pub Arc<ConnState>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.request_done();
    }
}

/// A response body that keeps its request counted as in flight until the body is done (hyper
/// drops it once sent, or when the connection goes).
pub struct Tracked<B> {
    pub body: B,
    pub _busy: Busy,
}

impl<B: hyper::body::Body + Unpin> hyper::body::Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<B::Data>, B::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn table(max: usize, per_ip: usize, exempt: &[&str]) -> Arc<Conns> {
        Conns::new(Limits {
            max,
            per_ip,
            exempt: exempt.iter().map(|c| c.parse().unwrap()).collect(),
        })
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn a_full_table_evicts_the_longest_idle_connection() {
        let t = table(2, 10, &[]);
        let first = t.admit(A).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let second = t.admit(B).unwrap();
        second.state.request_started();
        let third = t.admit(B).unwrap();
        assert!(first.state.is_evicted(), "the idle one makes room");
        assert!(!second.state.is_evicted());
        assert_eq!(
            t.open(),
            3,
            "the evicted one holds its slot until it closes"
        );
        // Everyone left is busy, or already closing: refused.
        third.state.request_started();
        assert_eq!(t.admit(A).err(), Some(Refused::Full));
        drop(first);
        assert_eq!(t.admit(A).err(), Some(Refused::Full));
        second.state.request_done();
        let fourth = t.admit(A).unwrap();
        assert!(second.state.is_evicted());
        drop((second, third, fourth));
        assert_eq!(t.open(), 0);
        assert!(t.lock().by_ip.is_empty());
        assert_eq!(t.lock().closing, 0);
    }

    #[test]
    fn the_per_address_cap_evicts_only_that_address() {
        let t = table(100, 2, &["127.0.0.0/8"]);
        let a1 = t.admit(A).unwrap();
        let a2 = t.admit(A).unwrap();
        let b1 = t.admit(B).unwrap();
        a1.state.request_started();
        let a3 = t.admit(A).unwrap();
        assert!(a2.state.is_evicted() && !b1.state.is_evicted());
        a3.state.request_started();
        assert_eq!(t.admit(A).err(), Some(Refused::PerAddress));
        // Exempt networks have no per-address cap.
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let many: Vec<_> = (0..10).map(|_| t.admit(lo).unwrap()).collect();
        assert_eq!(many.len(), 10);
    }

    #[test]
    fn idle_deadlines() {
        let t = table(10, 10, &[]);
        let c = t.admit(A).unwrap();
        let (first, idle) = (Duration::from_secs(1), Duration::from_secs(60));
        let d = c.state.idle_deadline(first, idle).unwrap();
        assert!(d <= first && d > Duration::from_millis(900), "{d:?}");
        c.state.request_started();
        assert_eq!(c.state.idle_deadline(first, idle), None);
        c.state.request_done();
        let d = c.state.idle_deadline(first, idle).unwrap();
        assert!(d > first, "after a request the idle limit applies: {d:?}");
    }
}
