//! The writer's routing table: every enabled endpoint's compiled rules, so accepting an alert
//! decodes no endpoint record and compiles no regular expression.
//!
//! Only the writer changes endpoints, so only the writer keeps this table: each write that
//! creates, changes, disables or deletes an endpoint updates it in the same step, and an alert
//! accepted later in the same transaction sees the change. A transaction that fails to commit
//! drops the table; the next alert rebuilds it from the store.

use std::collections::HashMap;
use std::sync::Arc;

use redb::ReadableTable;

use super::writer::Tables;
use super::{decode, StoreError};
use crate::model::Endpoint;
use crate::routing::{Labels, Rules};

#[derive(Default)]
pub struct Routes {
    /// Enabled endpoints' rules; `None` until first needed (and after a failed commit).
    map: Option<HashMap<String, Arc<Rules>>>,
}

/// An endpoint's rules compiled; a stored matcher that no longer parses (a damaged record)
/// takes nothing, and says so.
fn compile(e: &Endpoint) -> Arc<Rules> {
    Arc::new(
        Rules::compile(&e.filter_types, &e.label_matchers).unwrap_or_else(|err| {
            tracing::error!(endpoint = %e.id, error = %err, "a stored label matcher does not parse; the endpoint takes no alerts until it is updated");
            Rules::nothing()
        }),
    )
}

impl Routes {
    /// Records that `e` was written as it is now.
    pub fn changed(&mut self, e: &Endpoint) {
        if let Some(map) = &mut self.map {
            if e.disabled {
                map.remove(&e.id);
            } else {
                map.insert(e.id.clone(), compile(e));
            }
        }
    }

    /// Records that endpoint `id` was deleted.
    pub fn removed(&mut self, id: &str) {
        if let Some(map) = &mut self.map {
            map.remove(id);
        }
    }

    /// The enabled endpoints that take an alert of `event_type` with `label_sets`.
    pub fn targets(
        t: &mut Tables<'_>,
        event_type: &str,
        label_sets: &[Labels],
    ) -> Result<Vec<String>, StoreError> {
        if t.routes.map.is_none() {
            t.routes.map = Some(build(t)?);
        }
        let map = t.routes.map.as_ref().map_or_else(Default::default, |m| {
            m.iter()
                .filter(|(_, rules)| rules.takes(event_type, label_sets))
                .map(|(id, _)| id.clone())
                .collect()
        });
        Ok(map)
    }
}

fn build(t: &Tables<'_>) -> Result<HashMap<String, Arc<Rules>>, StoreError> {
    let mut map = HashMap::new();
    for entry in t.endpoints.iter()? {
        let (k, v) = entry?;
        match decode::<Endpoint>(k.value(), v.value()) {
            Ok(e) if !e.disabled => {
                map.insert(e.id.clone(), compile(&e));
            }
            Ok(_) => {}
            // One damaged endpoint must not stop alerts to every other.
            Err(e) => {
                tracing::error!(endpoint = %k.value(), error = %e, "endpoint record is corrupt; alerts are not delivered to it");
            }
        }
    }
    Ok(map)
}
