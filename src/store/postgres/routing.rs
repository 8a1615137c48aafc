//! Which endpoint changes this instance's routing table includes: a version in the database
//! (`hookd_routes`), bumped by every endpoint create, change and delete in the same commit and
//! sent with its `NOTIFY hookd_endpoints`. An alert is stored only with the version its
//! targets were routed with; an instance that has not yet heard of another's change stores
//! nothing, reloads its table and routes again (`StoreError::Stale`), so an alert accepted
//! after an endpoint's create was acknowledged, on any instance, goes to it.
//!
//! The notification names the instance that made the change too: that instance published the
//! change itself before answering, so its own listener only counts the version (no query).

use std::sync::atomic::Ordering;

use super::Store;
use crate::store::routes::Routes;

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

    /// Publishes this instance's own change, committed with `version`.
    pub(super) async fn publish_own(&self, routes: Routes, version: i64) {
        let _changing = self.inner.routes_lock.lock().await;
        routes.publish();
        self.routed(version);
    }

    /// The table as of `version`, loaded whole.
    pub(super) fn reloaded(&self, version: i64) {
        self.inner.routes_version.store(version, Ordering::Release);
    }
}

/// A `hookd_endpoints` notification: `id [version [instance]]`.
#[derive(Debug, PartialEq)]
pub(super) struct Change<'a> {
    pub id: &'a str,
    /// The version the change made; none from a change that does not route differently, such
    /// as an endpoint disabled by its failures (alerts are never stored for a disabled
    /// endpoint, whatever the table says).
    pub version: Option<i64>,
    /// The instance that made it (its lease owner name), when it says.
    pub by: Option<&'a str>,
}

/// Reads a `hookd_endpoints` notification (ids and owner names hold no spaces).
pub(super) fn read_change(payload: &str) -> Change<'_> {
    let mut parts = payload.splitn(3, ' ');
    let id = parts.next().unwrap_or_default();
    let version = parts.next().and_then(|v| v.parse().ok());
    Change {
        id,
        version,
        by: version.and(parts.next()),
    }
}

#[cfg(test)]
mod tests {
    use super::{read_change, Change};

    #[test]
    fn changes_read_back() {
        let change = |id, version, by| Change { id, version, by };
        assert_eq!(
            read_change("wh-1 42 host-7-ab"),
            change("wh-1", Some(42), Some("host-7-ab"))
        );
        assert_eq!(read_change("wh-1 42"), change("wh-1", Some(42), None));
        assert_eq!(read_change("wh-1"), change("wh-1", None, None));
        assert_eq!(read_change("wh-1 x y"), change("wh-1", None, None));
        assert_eq!(read_change(""), change("", None, None));
    }
}
