//! Alert ingest (`POST /api/v1/alerting/alerts`, `POST /api/v1/alerting/alertmanager`) and
//! resend. An accepted alert is committed to the outbox, one delivery per enabled endpoint, in
//! the same transaction, before the 202: after that answer nothing is lost, crash or not.

use serde_json::json;

use super::{accepted, off_runtime, store_error, HttpResponse};
use crate::app::App;
use crate::error::ApiError;
use crate::ids::{new_id, MESSAGE_PREFIX};
use crate::model::Message;
use crate::parse::{self, Alert};
use crate::store::StoreError;
use crate::time::now_ms;

pub(super) async fn native(app: &App, body: &[u8]) -> Result<HttpResponse, ApiError> {
    accept(app, parse::native_alert(body)?).await
}

pub(super) async fn alertmanager(app: &App, body: &[u8]) -> Result<HttpResponse, ApiError> {
    accept(app, parse::alertmanager_alert(body)?).await
}

/// Work a routing pass may do on an async worker, in label bytes read (see
/// [`crate::routing::RouteTable::cost`]): about 50 µs. A pass that may cost more runs on
/// [`crate::heavy`]'s threads.
const INLINE_ROUTING: usize = 32 * 1024;

/// The endpoints that take `alert`, by the routing table as of the last commit (`alert` is
/// left as it was).
async fn route(app: &App, alert: &mut Alert) -> Result<Vec<String>, ApiError> {
    let table = app.store.routes();
    if table.cost(&alert.label_sets) <= INLINE_ROUTING {
        return Ok(table.targets(&alert.event_type, &alert.label_sets));
    }
    let event_type = alert.event_type.clone();
    let label_sets = std::mem::take(&mut alert.label_sets);
    let (targets, label_sets) = off_runtime(app, move || {
        let targets = table.targets(&event_type, &label_sets);
        (targets, label_sets)
    })
    .await?;
    alert.label_sets = label_sets;
    Ok(targets)
}

async fn accept(app: &App, mut alert: Alert) -> Result<HttpResponse, ApiError> {
    // On a shared backend another instance may have changed an endpoint since this one's
    // routing table: the store then stores nothing, catches up, and the alert is routed again.
    // (Read before the table: the table includes at least this version's changes.)
    #[cfg(feature = "postgres")]
    let mut routed_with = app.store.routes_version();
    let targets = route(app, &mut alert).await?;
    let now = now_ms();
    let message = Message {
        id: new_id(MESSAGE_PREFIX, now, &app.rng),
        event_type: alert.event_type,
        data: alert.data,
        created_at_ms: now,
    };
    let id = message.id.clone();
    #[cfg(feature = "postgres")]
    let deliveries = {
        let mut targets = targets;
        // Kept for routing again (rare): moved, not copied.
        let mut label_sets = alert.label_sets;
        let mut tries = 0;
        loop {
            match app
                .store
                .ingest_routed(message.clone(), targets, routed_with)
                .await
            {
                Err(StoreError::Stale) if tries < 3 => {
                    tries += 1;
                    routed_with = app.store.routes_version();
                    let mut alert = Alert {
                        event_type: message.event_type.clone(),
                        data: String::new(),
                        label_sets,
                    };
                    targets = route(app, &mut alert).await?;
                    label_sets = alert.label_sets;
                }
                Err(StoreError::Stale) => {
                    break Err(StoreError::Unavailable(
                        "endpoints are changing faster than this instance hears of them".into(),
                    ))
                }
                other => break other,
            }
        }
    }
    .map_err(store_error)?;
    #[cfg(not(feature = "postgres"))]
    let deliveries = app
        .store
        .ingest(message, targets)
        .await
        .map_err(store_error)?;
    // An alert no endpoint takes gives the dispatcher nothing to do.
    if deliveries > 0 {
        app.delivery.wake();
    }
    tracing::debug!(message = %id, deliveries, "alert accepted");
    Ok(accepted(
        &json!({"messageId": id, "deliveries": deliveries}),
    ))
}

pub(super) async fn resend(app: &App, id: String) -> Result<HttpResponse, ApiError> {
    let requeued = app
        .store
        .resend(id.clone(), now_ms())
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::NotFound(format!("no message with id '{id}'")),
            other => store_error(other),
        })?;
    if requeued == 0 {
        return Err(ApiError::Conflict(format!(
            "message '{id}' has no delivery that gave up; nothing to resend"
        )));
    }
    app.delivery.wake();
    tracing::info!(message = %id, requeued, "message requeued");
    Ok(accepted(&json!({"messageId": id, "deliveries": requeued})))
}
