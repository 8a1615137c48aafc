//! The pruner's loop, for either backend: retention steps one after the other while there is
//! work (with a short pause), then a sleep of `retention.interval_secs` or until woken (an
//! endpoint deleted or disabled) or the settings change. What a step removes is the backend's.

use std::future::Future;
use std::time::Duration;

use tokio::sync::Notify;

use super::{Report, Retention, Step, StoreError};

/// The pause between steps while there is work left.
const STEP_PAUSE: Duration = Duration::from_millis(10);

/// Runs retention until the task is dropped, with the settings `settings` holds (a reload
/// changes them); `prune` runs one step.
pub async fn run<F: Future<Output = Result<Report, StoreError>>>(
    mut settings: tokio::sync::watch::Receiver<Retention>,
    wake: &Notify,
    mut prune: impl FnMut(Step) -> F,
) {
    let mut cursor = None;
    let mut total = Report::default();
    loop {
        let current = settings.borrow_and_update().clone();
        let step = Step {
            now_ms: crate::time::now_ms(),
            settings: current.clone(),
            cursor: cursor.take(),
        };
        match prune(step).await {
            Ok(report) => {
                total.messages += report.messages;
                total.deliveries += report.deliveries;
                total.attempts += report.attempts;
                cursor.clone_from(&report.cursor);
                if report.more {
                    tokio::time::sleep(STEP_PAUSE).await;
                    continue;
                }
                if total.messages + total.deliveries + total.attempts > 0 {
                    tracing::info!(
                        messages = total.messages,
                        deliveries = total.deliveries,
                        attempts = total.attempts,
                        "retention removed old records"
                    );
                    total = Report::default();
                }
            }
            // The store says why it cannot write (and logs it once); try again later.
            Err(StoreError::Full { .. } | StoreError::Unavailable(_)) => {}
            Err(e) => tracing::error!(error = %e, "retention step failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(current.interval) => {}
            () = wake.notified() => {}
            _ = settings.changed() => {}
        }
    }
}
