//! Running unattended: speed under failure, retention and backups, in-process on loopback.
//!
//! `cargo bench --bench outbox` runs every scenario; `OUTBOX_BENCH=dead,prune` picks some.
//! - `dead`: delivery latency to a healthy endpoint on an empty store, then with
//!   `OUTBOX_BENCH_PENDING` (default 1,000,000) deliveries pending for a dead one (connection
//!   refused). Goal: p99 within 2x.
//! - `prune`: create latency with and without retention removing `OUTBOX_BENCH_PRUNE` (default
//!   300,000) ended messages, and backup MB/s of that store.
//! - `soak`: `OUTBOX_BENCH_SOAK` (default 2,000,000) deliveries to 10 local receivers at a
//!   steady `OUTBOX_BENCH_SOAK_RATE` alerts/s (default 1,200) with retention of seconds; the
//!   store size over time (it must level off) and deliveries/s.
#![allow(clippy::unwrap_used, clippy::cast_precision_loss)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{connect, endpoint, ms, pct, post, receiver, Arrivals, Hookd, ALERT};
use http_body_util::BodyExt as _;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Posts `total` alerts from `clients` concurrent connections as fast as hookd takes them.
async fn flood(addr: std::net::SocketAddr, total: usize, clients: usize) -> Duration {
    let started = Instant::now();
    let per = total.div_ceil(clients);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        tasks.push(tokio::spawn(async move {
            let mut c = connect(addr).await;
            for _ in 0..per {
                post(&mut c, "/api/v1/alerting/alerts", ALERT.to_owned()).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    started.elapsed()
}

/// Posts `total` alerts at `rate` per second from 16 clients.
async fn paced(addr: std::net::SocketAddr, total: usize, rate: usize) {
    let clients = 16;
    let per = total.div_ceil(clients);
    let every = Duration::from_secs_f64(clients as f64 / rate as f64);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        tasks.push(tokio::spawn(async move {
            let mut c = connect(addr).await;
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            for _ in 0..per {
                tick.tick().await;
                post(&mut c, "/api/v1/alerting/alerts", ALERT.to_owned()).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// 1,000 alerts from 4 clients, 5 ms apart each; the time from each POST to its arrival at
/// the healthy receiver.
async fn probe(addr: std::net::SocketAddr, arrivals: &Arrivals) -> (Duration, Duration) {
    arrivals.lock().unwrap().clear();
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let sent = sent.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = connect(addr).await;
            for _ in 0..250 {
                let at = Instant::now();
                let v = post(&mut c, "/api/v1/alerting/alerts", ALERT.to_owned()).await;
                sent.lock()
                    .unwrap()
                    .insert(v["messageId"].as_str().unwrap().to_owned(), at);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while arrivals.lock().unwrap().len() < 1000 {
        assert!(Instant::now() < deadline, "probes did not arrive");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let sent = sent.lock().unwrap();
    let mut lat: Vec<Duration> = arrivals
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(id, at)| sent.get(id).map(|s| at.saturating_duration_since(*s)))
        .collect();
    lat.sort();
    (pct(&lat, 50), pct(&lat, 99))
}

async fn dead() {
    let pending = env("OUTBOX_BENCH_PENDING", 1_000_000);
    let (rx, arrivals) = receiver().await;
    let closed = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };

    let dir = tempfile::tempdir().unwrap();
    let h = Hookd::start(dir.path(), "").await;
    let mut admin = connect(h.addr).await;
    endpoint(&mut admin, "healthy", &format!("http://{rx}/ok")).await;
    let (p50_empty, p99_empty) = probe(h.addr, &arrivals).await;
    h.stop().await;

    let dir = tempfile::tempdir().unwrap();
    let h = Hookd::start(dir.path(), "").await;
    let mut admin = connect(h.addr).await;
    let down = endpoint(&mut admin, "dead", &format!("http://{closed}/down")).await;
    let took = flood(h.addr, pending, 64).await;
    println!(
        "queued {pending} deliveries for a dead endpoint in {:.1} s ({:.0} alerts/s); store {:.0} MB",
        took.as_secs_f64(),
        pending as f64 / took.as_secs_f64(),
        h.app.store.size_bytes().unwrap_or(0) as f64 / 1e6
    );
    // A new connection: the first one sat idle through the flood and was closed.
    let mut admin = connect(h.addr).await;
    endpoint(&mut admin, "healthy", &format!("http://{rx}/ok")).await;
    let (p50_dead, p99_dead) = probe(h.addr, &arrivals).await;
    let circuit = h.app.delivery.circuit(&down);
    let attempts = h
        .app
        .store
        .list_attempts(&down, None, 10_000)
        .await
        .unwrap()
        .items
        .len();
    println!("| healthy endpoint | p50 | p99 |\n|---|---|---|");
    println!("| empty store | {} | {} |", ms(p50_empty), ms(p99_empty));
    println!(
        "| {pending} pending for a dead endpoint (circuit {}, {attempts} attempts made) | {} | {} |",
        circuit.state,
        ms(p50_dead),
        ms(p99_dead)
    );
    println!(
        "p99 ratio: {:.2}x (goal: within 2x)",
        p99_dead.as_secs_f64() / p99_empty.as_secs_f64()
    );
    h.stop().await;
}

/// 16 clients create endpoints for `secs`; latencies sorted.
async fn creates(addr: std::net::SocketAddr, secs: u64) -> Vec<Duration> {
    let until = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for i in 0..16 {
        tasks.push(tokio::spawn(async move {
            let mut c = connect(addr).await;
            let mut lat = Vec::new();
            while Instant::now() < until {
                let at = Instant::now();
                endpoint(&mut c, &format!("c{i}"), "https://hooks.example.com/in").await;
                lat.push(at.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    all
}

async fn prune() {
    let messages = env("OUTBOX_BENCH_PRUNE", 300_000);
    let dir = tempfile::tempdir().unwrap();
    // Alerts with no endpoint end at once; kept a day here, so nothing is pruned yet.
    let keep = "[retention]\nmessages_secs = 86400\ninterval_secs = 1\n";
    let h = Hookd::start(dir.path(), keep).await;
    let took = flood(h.addr, messages, 64).await;
    println!(
        "stored {messages} ended messages in {:.1} s; store {:.0} MB",
        took.as_secs_f64(),
        h.app.store.size_bytes().unwrap_or(0) as f64 / 1e6
    );
    let base = creates(h.addr, 10).await;

    // Backup MB/s of this store, through the API.
    let mut c = connect(h.addr).await;
    c.ready().await.unwrap();
    let started = Instant::now();
    let req = hyper::Request::get("/api/v1/admin/backup")
        .header("host", "hookd")
        .header("authorization", format!("Bearer {}", common::TOKEN))
        .body(http_body_util::Full::new(hyper::body::Bytes::new()))
        .unwrap();
    let mut body = c.send_request(req).await.unwrap().into_body();
    let mut bytes = 0usize;
    while let Some(frame) = body.frame().await {
        bytes += frame.unwrap().data_ref().map_or(0, hyper::body::Bytes::len);
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "backup: {:.1} MB in {secs:.2} s = {:.0} MB/s",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / secs
    );
    h.stop().await;

    // The same store with a retention of one second: everything goes, in the background.
    let h = Hookd::start(
        dir.path(),
        "[retention]\nmessages_secs = 1\ninterval_secs = 1\n",
    )
    .await;
    let before = h.app.store.stats().await.unwrap().messages;
    let started = Instant::now();
    let during = creates(h.addr, 10).await;
    let after = h.app.store.stats().await.unwrap().messages;
    println!(
        "retention removed {} of {before} messages while the creates ran ({:.0}/s)",
        before.saturating_sub(after),
        before.saturating_sub(after) as f64 / started.elapsed().as_secs_f64()
    );
    println!("| creates, 16 clients | per s | p50 | p99 |\n|---|---|---|---|");
    for (name, lat) in [
        ("no prune running", &base),
        ("while retention prunes", &during),
    ] {
        println!(
            "| {name} | {:.0} | {} | {} |",
            lat.len() as f64 / 10.0,
            ms(pct(lat, 50)),
            ms(pct(lat, 99))
        );
    }
    h.stop().await;
}

async fn soak() {
    let target = env("OUTBOX_BENCH_SOAK", 2_000_000);
    let dir = tempfile::tempdir().unwrap();
    let h = Hookd::start(
        dir.path(),
        "max_in_flight = 256\n[retention]\nmessages_secs = 5\nattempts_secs = 5\nattempts_per_endpoint = 1000\ninterval_secs = 1\n",
    )
    .await;
    let (rx, arrivals) = receiver().await;
    let mut admin = connect(h.addr).await;
    for i in 0..10 {
        endpoint(&mut admin, &format!("r{i}"), &format!("http://{rx}/r{i}")).await;
    }
    // A steady load below what delivery can do: the store must level off under it.
    let rate = env("OUTBOX_BENCH_SOAK_RATE", 1200);
    println!(
        "{rate} alerts/s to 10 endpoints ({} deliveries/s)",
        rate * 10
    );
    let started = Instant::now();
    let flooding = tokio::spawn(paced(h.addr, target / 10, rate));
    println!("| time | deliveries | per s (last 10 s) | store file | messages | attempts kept |\n|---|---|---|---|---|---|");
    let mut last = (0usize, Instant::now());
    loop {
        tokio::time::sleep(Duration::from_secs(10)).await;
        // Only the count matters here: take the arrivals, so memory stays flat.
        let n = std::mem::take(&mut *arrivals.lock().unwrap()).len();
        let total = last.0 + n;
        let stats = h.app.store.stats().await.unwrap();
        println!(
            "| {:.0} s | {total} | {:.0} | {:.1} MB | {} | {} |",
            started.elapsed().as_secs_f64(),
            n as f64 / last.1.elapsed().as_secs_f64(),
            h.app.store.size_bytes().unwrap_or(0) as f64 / 1e6,
            stats.messages,
            stats.attempts
        );
        last = (total, Instant::now());
        if total >= target {
            break;
        }
    }
    flooding.await.unwrap();
    println!(
        "{} deliveries in {:.0} s = {:.0}/s",
        last.0,
        started.elapsed().as_secs_f64(),
        last.0 as f64 / started.elapsed().as_secs_f64()
    );
    h.stop().await;
    // How much of the file is live data: what `hookd compact` leaves.
    let store = dir.path().join("hookd.redb");
    let (before, after) = loop {
        match hookd::store::offline::compact(&store) {
            Err(e) if e.contains("running hookd") => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => break other.unwrap(),
        }
    };
    println!(
        "after the soak: store file {:.1} MB, {:.1} MB once compacted",
        before as f64 / 1e6,
        after as f64 / 1e6
    );
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let pick = std::env::var("OUTBOX_BENCH").unwrap_or_else(|_| "dead,prune,soak".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for name in pick.split(',') {
        println!("== {name}");
        match name.trim() {
            "dead" => rt.block_on(dead()),
            "prune" => rt.block_on(prune()),
            "soak" => rt.block_on(soak()),
            other => println!("no scenario {other}"),
        }
    }
}
