//! The routing table: every endpoint's compiled rules, as of the last commit (both backends
//! keep one; this is how they build, change and publish it).
//!
//! Routing never runs inside the writer. Request handlers route an alert against a snapshot
//! ([`Store::routes`](super::Store::routes)) before they send it to the writer, which then only
//! writes (dropping targets deleted or disabled meanwhile). Matchers are compiled once, by the
//! handler that sets them, and handed to the writer with the write.
//!
//! In the embedded store only the writer changes endpoints, so only the writer changes the table: each write stages
//! its change, and the writer publishes the staged changes after the transaction commits and
//! before it answers, so a client that got its `200` routes its next alert by the new rules. A
//! transaction that fails drops its staged changes.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use super::StoreError;
use crate::model::Endpoint;
use crate::routing::{Matchers, Route, RouteTable, Rules};

/// The published table, shared by the store's handles and the writer.
pub type Published = Arc<RwLock<Arc<RouteTable>>>;

/// One transaction's view: the published table as the transaction began (only the writer
/// publishes, so it stays current until this transaction's own publish) and the changes staged
/// since.
#[derive(Default)]
pub struct Routes {
    published: Published,
    base: Arc<RouteTable>,
    /// Endpoint id -> its route after this transaction (`None`: deleted).
    staged: HashMap<String, Option<Route>>,
}

/// Compiles an endpoint's stored matchers (when the store opens); matchers that no longer
/// compile (a damaged record) take nothing, and say so.
pub fn compile(e: &Endpoint) -> Arc<Matchers> {
    Matchers::compile(&e.label_matchers)
        .unwrap_or_else(|(i, err)| {
            tracing::error!(endpoint = %e.id, matcher = i, error = %err, "a stored label matcher does not compile; the endpoint takes no alerts until it is updated");
            Matchers::nothing()
        })
        .shared()
}

/// The table of `endpoints` (id, record as read): a record that does not read is left out
/// (one damaged endpoint must not stop alerts to every other), and says so.
pub fn table_of(
    endpoints: impl IntoIterator<Item = (String, Result<Endpoint, StoreError>)>,
) -> RouteTable {
    let mut table = RouteTable::default();
    for (id, record) in endpoints {
        match record {
            Ok(e) => {
                let rules = Rules {
                    filter_types: e.filter_types.as_slice().into(),
                    matchers: compile(&e),
                };
                table.set(
                    &e.id,
                    Some(Route {
                        rules,
                        enabled: !e.disabled,
                    }),
                );
            }
            Err(e) => {
                tracing::error!(endpoint = %id, error = %e, "endpoint record is corrupt; alerts are not delivered to it");
            }
        }
    }
    table
}

/// The current snapshot.
pub fn snapshot(published: &Published) -> Arc<RouteTable> {
    published
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

impl Routes {
    /// A view for one transaction, with nothing staged.
    pub fn begin(published: &Published) -> Self {
        Self {
            published: published.clone(),
            base: snapshot(published),
            staged: HashMap::new(),
        }
    }

    /// Endpoint `id` as this transaction sees it.
    fn current(&self, id: &str) -> Option<Route> {
        match self.staged.get(id) {
            Some(staged) => staged.clone(),
            None => self.base.get(id).cloned(),
        }
    }

    /// Whether endpoint `id` exists and is enabled, as this transaction sees it.
    pub fn enabled(&self, id: &str) -> bool {
        match self.staged.get(id) {
            Some(staged) => staged.as_ref().is_some_and(|r| r.enabled),
            None => self.base.get(id).is_some_and(|r| r.enabled),
        }
    }

    /// Records that `e` was written as it is now, with `matchers` compiled from its
    /// `label_matchers` if they changed (`None`: they did not).
    pub fn changed(&mut self, e: &Endpoint, matchers: Option<&Arc<Matchers>>) {
        let matchers = match (matchers, self.current(&e.id)) {
            (Some(m), _) => m.clone(),
            (None, Some(route)) => route.rules.matchers,
            // Not in the table: only if the table and the store disagree. Bounded work, but
            // on the writer, so say so.
            (None, None) => {
                tracing::warn!(endpoint = %e.id, "an endpoint missing from the routing table; compiling its matchers on the writer");
                compile(e)
            }
        };
        let route = Route {
            rules: Rules {
                filter_types: e.filter_types.as_slice().into(),
                matchers,
            },
            enabled: !e.disabled,
        };
        self.staged.insert(e.id.clone(), Some(route));
    }

    /// Records that endpoint `id` was deleted.
    pub fn removed(&mut self, id: &str) {
        self.staged.insert(id.to_owned(), None);
    }

    /// Publishes the staged changes (after their transaction committed).
    pub fn publish(self) {
        let Self {
            published,
            base,
            staged,
        } = self;
        if staged.is_empty() {
            return;
        }
        // Let go of this transaction's view first, so the update below can happen in place.
        drop(base);
        let mut guard = published.write().unwrap_or_else(PoisonError::into_inner);
        // In place when no reader holds the old snapshot; else a copy (of ids and `Arc`s).
        let table = Arc::make_mut(&mut guard);
        for (id, route) in staged {
            table.set(&id, route);
        }
    }
}
