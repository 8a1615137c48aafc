//! What routing costs: alert accept + fan-out (the 202 after the alert and one queued delivery
//! per matching endpoint are durable) with 1,000 endpoints, in one run:
//!
//! - `none`: no rules; every alert goes to all 1,000.
//! - `matchers`: each endpoint has 3 Alertmanager matchers (an `=`, an `=~` and a `!=`) that the
//!   alert satisfies, so the fan-out is the same 1,000 and the difference is the matching.
//! - `selective`: 3 matchers each, of which the alert satisfies one endpoint in ten (100).
//!
//! `cargo bench --bench routing`. Rounds alternate between the scenarios (each its own hookd
//! and store) so machine drift hits them alike; `ROUTING_BENCH_ALERTS` alerts per round
//! (default 200) from 8 keep-alive clients. Delivery runs one request at a time to a local
//! receiver, so the measurement is the accept path, not the receivers.
#![allow(clippy::unwrap_used, clippy::cast_precision_loss)]

mod common;

use std::time::{Duration, Instant};

use common::{connect, ms, pct, post, receiver, Hookd};
use serde_json::json;

const ENDPOINTS: usize = 1000;
const CLIENTS: usize = 8;
const ROUNDS: usize = 3;

const ALERT: &str = r#"{"eventType":"alertmanager.firing","payload":{"labels":{"severity":"critical","team":"t3","env":"prod","alertname":"DiskFull"},"summary":"disk full on db-1"}}"#;

fn rules(scenario: &str, i: usize) -> serde_json::Value {
    match scenario {
        "none" => json!({}),
        "matchers" => json!({"labelMatchers": [
            "severity=\"critical\"", "team=~\"t[0-9]+|db|storage\"", "env!=\"staging\""
        ]}),
        _ => json!({"labelMatchers": [
            format!("team=\"t{}\"", i % 10), "severity=~\"critical|page\"", "env!=\"staging\""
        ]}),
    }
}

async fn setup(scenario: &str, dir: &std::path::Path, rx: std::net::SocketAddr) -> Hookd {
    let hookd = Hookd::start(dir, "max_in_flight = 1\nper_endpoint = 1\n").await;
    let mut c = connect(hookd.addr).await;
    for i in 0..ENDPOINTS {
        let mut body = json!({"name": format!("r{i}"), "url": format!("http://{rx}/r{i}"), "signingEnabled": true, "signingSecret": ""});
        body.as_object_mut()
            .unwrap()
            .extend(rules(scenario, i).as_object().unwrap().clone());
        post(
            &mut c,
            "/api/v1/alerting/webhook-endpoints",
            body.to_string(),
        )
        .await;
    }
    // A first alert, to show the fan-out (the routing table is built when the store opens).
    let v = post(&mut c, "/api/v1/alerting/alerts", ALERT.to_owned()).await;
    println!("{scenario:>10}: {} deliveries per alert", v["deliveries"]);
    hookd
}

/// Posts `total` alerts from CLIENTS connections; (elapsed, each POST's latency).
async fn round(addr: std::net::SocketAddr, total: usize) -> (Duration, Vec<Duration>) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        tasks.push(tokio::spawn(async move {
            let mut c = connect(addr).await;
            let mut lat = Vec::new();
            for _ in 0..total.div_ceil(CLIENTS) {
                let t = Instant::now();
                post(&mut c, "/api/v1/alerting/alerts", ALERT.to_owned()).await;
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    (started.elapsed(), all)
}

async fn run() {
    let per_round = std::env::var("ROUTING_BENCH_ALERTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let (rx, _) = receiver().await;
    let scenarios = ["none", "matchers", "selective"];
    let dirs: Vec<_> = scenarios
        .iter()
        .map(|_| tempfile::tempdir().unwrap())
        .collect();
    let mut running = Vec::new();
    for (s, d) in scenarios.iter().zip(&dirs) {
        running.push(setup(s, d.path(), rx).await);
    }
    let mut results: Vec<(Duration, Vec<Duration>, usize)> =
        vec![(Duration::ZERO, Vec::new(), 0); scenarios.len()];
    for _ in 0..ROUNDS {
        for (i, h) in running.iter().enumerate() {
            let (elapsed, lat) = round(h.addr, per_round).await;
            results[i].0 += elapsed;
            results[i].2 += lat.len();
            results[i].1.extend(lat);
        }
    }
    println!(
        "{:>10} | {:>9} | {:>9} | {:>9}",
        "scenario", "alerts/s", "p50", "p99"
    );
    let base = results[0].2 as f64 / results[0].0.as_secs_f64();
    for (name, (elapsed, mut lat, n)) in scenarios.iter().zip(results) {
        lat.sort();
        let rate = n as f64 / elapsed.as_secs_f64();
        println!(
            "{name:>10} | {rate:>9.0} | {:>9} | {:>9}   ({:.0}% of none)",
            ms(pct(&lat, 50)),
            ms(pct(&lat, 99)),
            rate / base * 100.0
        );
    }
    for h in running {
        h.stop().await;
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run());
}
