//! Which endpoint changes this instance's routing table includes: a version in the database
//! (`hookd_routes`), bumped by every endpoint create, change and delete in the same commit and
//! sent with its `NOTIFY hookd_endpoints`. An alert is stored only with the version its
//! targets were routed with; an instance that has not yet heard of another's change stores
//! nothing, reloads its table and routes again (`StoreError::Stale`), so an alert accepted
//! after an endpoint's create was acknowledged, on any instance, goes to it.

use std::sync::atomic::Ordering;

use super::Store;

impl Store {
    /// The version the routing table includes (-1 before it is loaded).
    pub fn routes_version(&self) -> i64 {
        self.inner.routes_version.load(Ordering::Acquire)
    }

    /// The change that made `version` is in the table now: it includes `version` if it
    /// included the one before (else a change is missing, and the next alert reloads).
    pub(super) fn routed(&self, version: i64) {
        let _ = self.inner.routes_version.compare_exchange(
            version - 1,
            version,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// The table as of `version`, loaded whole.
    pub(super) fn reloaded(&self, version: i64) {
        self.inner.routes_version.store(version, Ordering::Release);
    }
}

/// Reads a `hookd_endpoints` notification: the endpoint, and the version its change made
/// (none from a change that does not route differently, such as an endpoint disabled by its
/// failures: alerts are never stored for a disabled endpoint whatever the table says).
pub(super) fn read_change(payload: &str) -> (&str, Option<i64>) {
    match payload.rsplit_once(' ') {
        Some((id, v)) => match v.parse() {
            Ok(v) => (id, Some(v)),
            Err(_) => (payload, None),
        },
        None => (payload, None),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn changes_read_back() {
        assert_eq!(super::read_change("ep_1 42"), ("ep_1", Some(42)));
        assert_eq!(super::read_change("ep_1"), ("ep_1", None));
        assert_eq!(super::read_change("ep_1 x"), ("ep_1 x", None));
    }
}
