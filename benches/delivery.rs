//! Delivery throughput: signed deliveries per second to a local receiver (loopback only), with 1
//! and with 100 endpoints, and the time from an alert's 202 to its arrival at the receiver.
//!
//! Then the same per endpoint format: a one-alert Alertmanager group delivered as Standard
//! Webhooks, Slack, Teams, PagerDuty, and through the shipped ntfy transformer (when
//! `bash plugins/build.sh` has built it), to 1 and to 100 endpoints, the formats interleaved in
//! rounds so that a machine that speeds up or slows down treats them alike.
//!
//! `cargo bench --bench delivery` (release build). hookd runs in-process with a fresh store, the
//! durable outbox and the real dispatcher and HTTP client; the receiver is a hyper server in the
//! same process, answering 204. Set DELIVERY_BENCH_ALERTS to change the number of alerts,
//! DELIVERY_BENCH_ROUNDS the rounds of the format comparison (11: fewer cannot tell
//! a 5 % difference on a noisy machine), DELIVERY_BENCH_FORMATS and
//! DELIVERY_BENCH_ENDPOINTS to run some of it only. With DELIVERY_BENCH_POSTGRES (libpq
//! parameters of a PostgreSQL server, and `--features postgres`) it compares the embedded
//! store with one and two instances on PostgreSQL instead.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{connect, post, receiver, Hookd, ALERT, GROUP};

/// Concurrent clients posting alerts.
const SENDERS: usize = 64;

/// What one run measured.
#[derive(Clone)]
struct Run {
    /// Deliveries per second.
    rate: f64,
    /// The process's CPU time (hookd, the posting clients and the receiver) per delivery.
    cpu: Duration,
    /// Post -> delivery latencies, sorted.
    latencies: Vec<Duration>,
}

/// The CPU time this process has used (user and system), from `/proc/self/stat`.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // The fields after the command name (which may hold spaces, and ends at the last ')').
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // Linux reports them in USER_HZ, 100 per second on every architecture it runs on.
    Duration::from_millis(ticks * 10)
}

/// Where the store is: the embedded one, or `instances` hookd instances on one fresh database
/// of the PostgreSQL server `DELIVERY_BENCH_POSTGRES` names (libpq parameters; a build with
/// `--features postgres`).
#[derive(Clone, Copy)]
enum Store {
    Embedded,
    Postgres { instances: usize },
}

/// A fresh database on the `DELIVERY_BENCH_POSTGRES` server; its libpq parameters.
fn fresh_database() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let server = std::env::var("DELIVERY_BENCH_POSTGRES").unwrap();
    let name = format!(
        "hookd_bench_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let ok = std::process::Command::new("psql")
        .arg(format!("{server} dbname=postgres"))
        .args(["-qc", &format!("CREATE DATABASE {name}")])
        .status()
        .unwrap()
        .success();
    assert!(ok, "CREATE DATABASE {name} failed");
    format!("{server} dbname={name}")
}

/// One run: `alerts` alerts (`body` to `route`) to `endpoints` endpoints of `format`.
async fn scenario(
    endpoints: usize,
    alerts: usize,
    per_endpoint: usize,
    format: Option<&str>,
    (route, body): (&'static str, &'static str),
) -> Run {
    on(
        Store::Embedded,
        endpoints,
        alerts,
        per_endpoint,
        format,
        (route, body),
    )
    .await
}

/// [`scenario`] on `store`; with several instances the posting clients take turns.
async fn on(
    store: Store,
    endpoints: usize,
    alerts: usize,
    per_endpoint: usize,
    format: Option<&str>,
    (route, body): (&'static str, &'static str),
) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut extra = format!("max_in_flight = 256\nper_endpoint = {per_endpoint}\n");
    if let Some(plugin) = ntfy() {
        extra.push_str(&format!(
            "[[transformers]]\nname = \"ntfy\"\npath = \"{}\"\nsettings = \"topic=alerts\"\n",
            plugin.display()
        ));
    }
    let instances = match store {
        Store::Embedded => 1,
        Store::Postgres { instances } => {
            extra.push_str(&format!(
                "[store]\nbackend = \"postgres\"\npostgres_url = \"{}\"\n",
                fresh_database()
            ));
            instances
        }
    };
    let mut all = Vec::new();
    for _ in 0..instances {
        all.push(Hookd::start(dir.path(), &extra).await);
    }
    let addrs: Vec<std::net::SocketAddr> = all.iter().map(|h| h.addr).collect();
    let addr = addrs[0];
    let (rx_addr, arrivals) = receiver().await;

    let mut admin = connect(addr).await;
    for i in 0..endpoints {
        let mut body = serde_json::json!({"name": format!("r{i}"), "url": format!("http://{rx_addr}/r{i}"), "signingEnabled": true, "signingSecret": ""});
        if let Some(f) = format {
            body["format"] = f.into();
            if f == "pagerduty" {
                body["formatOptions"] =
                    serde_json::json!({"routingKey": "R0123456789abcdef0123456789abcdef"});
            }
        }
        post(
            &mut admin,
            "/api/v1/alerting/webhook-endpoints",
            body.to_string(),
        )
        .await;
    }
    // Every instance routes to every endpoint before the alerts come (an instance learns of
    // an endpoint another one created by LISTEN, a moment later).
    for h in &all {
        while h.app.store.routes().len() < endpoints {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    // SENDERS concurrent clients post the alerts; the time each POST started is kept per message id
    // (deliveries often arrive before the client has read its 202).
    let accepted: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let t0 = Instant::now();
    let cpu0 = cpu_time();
    let per_sender = alerts.div_ceil(SENDERS);
    let mut tasks = Vec::new();
    for sender in 0..SENDERS {
        let accepted = accepted.clone();
        let addr = addrs[sender % addrs.len()];
        tasks.push(tokio::spawn(async move {
            let mut c = connect(addr).await;
            for _ in 0..per_sender {
                let sent = Instant::now();
                let v = post(&mut c, route, body.to_owned()).await;
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
    let cpu = cpu_time() - cpu0;
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
    for hookd in all {
        hookd.stop().await;
    }
    Run {
        rate: expected as f64 / elapsed.as_secs_f64(),
        cpu: cpu / expected as u32,
        latencies,
    }
}

/// The shipped ntfy transformer, if built.
fn ntfy() -> Option<std::path::PathBuf> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/ntfy.wasm");
    p.exists().then_some(p)
}

/// Deliveries/s per format, the formats interleaved in `rounds`; the median round of each.
fn formats(rt: &tokio::runtime::Runtime, alerts: usize, rounds: usize) {
    // DELIVERY_BENCH_FORMATS=standard-webhooks,slack runs only those (the first is the base).
    let formats: Vec<String> = match std::env::var("DELIVERY_BENCH_FORMATS") {
        Ok(only) => only.split(',').map(str::to_owned).collect(),
        Err(_) => {
            let mut all = vec!["standard-webhooks", "slack", "teams", "pagerduty"];
            if ntfy().is_some() {
                all.push("plugin:ntfy");
            } else {
                println!(
                    "(plugins/ntfy.wasm is not built: run `bash plugins/build.sh` to include it)"
                );
            }
            all.into_iter().map(str::to_owned).collect()
        }
    };
    let base = &formats[0];
    println!("\n| format | endpoints | deliveries/s (median of {rounds}) | vs `{base}` | CPU per delivery (median) | vs `{base}` | post -> delivery p50 | p99 |");
    println!("|---|---|---|---|---|---|---|---|");
    // DELIVERY_BENCH_ENDPOINTS=1 (or 100) runs only that case, e.g. under a profiler.
    let only: Option<usize> = std::env::var("DELIVERY_BENCH_ENDPOINTS")
        .ok()
        .and_then(|v| v.parse().ok());
    for (endpoints, per_endpoint) in [(1, 256), (100, 8)] {
        if only.is_some_and(|n| n != endpoints) {
            continue;
        }
        let mut runs: Vec<Vec<Run>> = vec![Vec::new(); formats.len()];
        for round in 0..rounds {
            // Each round starts with another format, so that none always runs first (on a
            // freshly idle machine) or last.
            for k in 0..formats.len() {
                let i = (round + k) % formats.len();
                let f = &formats[i];
                let run = rt.block_on(scenario(
                    endpoints,
                    alerts / endpoints,
                    per_endpoint,
                    Some(f.as_str()),
                    ("/api/v1/alerting/alertmanager", GROUP),
                ));
                runs[i].push(run);
            }
        }
        // The median run by rate (its latencies), and the median CPU time per delivery.
        let median = |r: &mut Vec<Run>| {
            r.sort_by_key(|a| a.cpu);
            let cpu = r[r.len() / 2].cpu;
            r.sort_by(|a, b| a.rate.total_cmp(&b.rate));
            (r[r.len() / 2].clone(), cpu)
        };
        let (base, base_cpu) = median(&mut runs[0]);
        for (i, f) in formats.iter().enumerate() {
            let (run, cpu) = median(&mut runs[i]);
            println!(
                "| `{f}` | {endpoints} | {:.0} | {:.1} % | {:.0} µs | {:.1} % | {} | {} |",
                run.rate,
                run.rate / base.rate * 100.0,
                cpu.as_secs_f64() * 1e6,
                cpu.as_secs_f64() / base_cpu.as_secs_f64() * 100.0,
                common::ms(common::pct(&run.latencies, 50)),
                common::ms(common::pct(&run.latencies, 99))
            );
        }
    }
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
    // (Left out when DELIVERY_BENCH_FORMATS asks for some formats only.)
    let plain: &[(usize, usize)] = if std::env::var("DELIVERY_BENCH_FORMATS").is_ok() {
        &[]
    } else {
        &[(1, 256), (100, 8)]
    };
    for &(endpoints, per_endpoint) in plain {
        let count = alerts / endpoints;
        let run = rt.block_on(scenario(
            endpoints,
            count,
            per_endpoint,
            None,
            ("/api/v1/alerting/alerts", ALERT),
        ));
        println!(
            "{endpoints:>3} endpoint(s), {} alerts: {:.0} signed deliveries/s; post->delivery p50 {:.2?}, p99 {:.2?}",
            count.div_ceil(SENDERS) * SENDERS,
            run.rate,
            common::pct(&run.latencies, 50),
            common::pct(&run.latencies, 99)
        );
    }
    // DELIVERY_BENCH_POSTGRES: the same alerts on the embedded store, on one instance and on
    // two instances on PostgreSQL, in turns (3 rounds, medians).
    if std::env::var("DELIVERY_BENCH_POSTGRES").is_ok() {
        let stores = [
            ("embedded (redb)", Store::Embedded),
            ("PostgreSQL, 1 instance", Store::Postgres { instances: 1 }),
            ("PostgreSQL, 2 instances", Store::Postgres { instances: 2 }),
        ];
        println!("\n| store | endpoints | deliveries/s (median of 3) | CPU per delivery (median) | post -> delivery p50 | p99 |");
        println!("|---|---|---|---|---|---|");
        for (endpoints, per_endpoint) in [(1, 256), (100, 8)] {
            let mut runs: Vec<Vec<Run>> = vec![Vec::new(); stores.len()];
            for round in 0..3 {
                for k in 0..stores.len() {
                    let i = (round + k) % stores.len();
                    let run = rt.block_on(on(
                        stores[i].1,
                        endpoints,
                        alerts / endpoints,
                        per_endpoint,
                        None,
                        ("/api/v1/alerting/alerts", ALERT),
                    ));
                    runs[i].push(run);
                }
            }
            for (i, (name, _)) in stores.iter().enumerate() {
                let r = &mut runs[i];
                r.sort_by_key(|a| a.cpu);
                let cpu = r[1].cpu;
                r.sort_by(|a, b| a.rate.total_cmp(&b.rate));
                println!(
                    "| {name} | {endpoints} | {:.0} | {:.0} µs | {} | {} |",
                    r[1].rate,
                    cpu.as_secs_f64() * 1e6,
                    common::ms(common::pct(&r[1].latencies, 50)),
                    common::ms(common::pct(&r[1].latencies, 99))
                );
            }
        }
        return;
    }
    let rounds = std::env::var("DELIVERY_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(11);
    formats(&rt, alerts, rounds);
}
