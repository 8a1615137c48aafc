//! Delivery throughput: signed deliveries per second to a local receiver (loopback only), with 1
//! and with 100 endpoints, and the time from an alert's 202 to its arrival at the receiver.
//!
//! `cargo bench --bench delivery` (release build). hookd runs in-process with a fresh store, the
//! durable outbox and the real dispatcher and HTTP client; the receiver is a hyper server in the
//! same process, answering 204. Set DELIVERY_BENCH_ALERTS to change the number of alerts.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{connect, post, receiver, Hookd, ALERT};

/// Concurrent clients posting alerts.
const SENDERS: usize = 64;

async fn scenario(endpoints: usize, alerts: usize, per_endpoint: usize) {
    let dir = tempfile::tempdir().unwrap();
    let hookd = Hookd::start(
        dir.path(),
        &format!("max_in_flight = 256\nper_endpoint = {per_endpoint}\n"),
    )
    .await;
    let addr = hookd.addr;
    let (rx_addr, arrivals) = receiver().await;

    let mut admin = connect(addr).await;
    for i in 0..endpoints {
        common::endpoint(
            &mut admin,
            &format!("r{i}"),
            &format!("http://{rx_addr}/r{i}"),
        )
        .await;
    }

    // SENDERS concurrent clients post the alerts; the time each POST started is kept per message id
    // (deliveries often arrive before the client has read its 202).
    let accepted: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let t0 = Instant::now();
    let per_sender = alerts.div_ceil(SENDERS);
    let mut tasks = Vec::new();
    for _ in 0..SENDERS {
        let accepted = accepted.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = connect(addr).await;
            for _ in 0..per_sender {
                let sent = Instant::now();
                let v = post(&mut c, "/api/v1/alerting/alerts", ALERT.to_owned()).await;
                let id = v["messageId"].as_str().unwrap().to_owned();
                accepted.lock().unwrap().insert(id, sent);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let expected = per_sender * SENDERS * endpoints;
    let deadline = Instant::now() + Duration::from_secs(300);
    while arrivals.lock().unwrap().len() < expected {
        assert!(
            Instant::now() < deadline,
            "deliveries stalled at {}",
            arrivals.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = t0.elapsed();
    let accepted = std::mem::take(&mut *accepted.lock().unwrap());
    let mut latencies: Vec<Duration> = arrivals
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(id, at)| {
            accepted
                .get(id)
                .map(|acc| at.saturating_duration_since(*acc))
        })
        .collect();
    latencies.sort();
    println!(
        "{endpoints:>3} endpoint(s), {} alerts: {expected} signed deliveries in {:.2?} = {:.0}/s; post->delivery p50 {:.2?}, p99 {:.2?}",
        per_sender * SENDERS,
        elapsed,
        expected as f64 / elapsed.as_secs_f64(),
        common::pct(&latencies, 50),
        common::pct(&latencies, 99)
    );
    hookd.stop().await;
}

fn main() {
    // `cargo test --benches` runs bench binaries with --bench absent; do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let alerts: usize = std::env::var("DELIVERY_BENCH_ALERTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // One endpoint may use the whole in-flight budget; with 100 the per-endpoint default applies.
    rt.block_on(scenario(1, alerts, 256));
    rt.block_on(scenario(100, alerts / 100, 8));
}
