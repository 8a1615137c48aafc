//! Delivery throughput: signed deliveries per second to a local receiver (loopback only), with 1
//! and with 100 endpoints, and the time from an alert's 202 to its arrival at the receiver.
//!
//! `cargo bench --bench delivery` (release build). hookd runs in-process with a fresh store, the
//! durable outbox and the real dispatcher and HTTP client; the receiver is a hyper server in the
//! same process, answering 204. Set DELIVERY_BENCH_ALERTS to change the number of alerts.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

const TOKEN: &str = "bench-admin-token-0123456789";
/// Concurrent clients posting alerts.
const SENDERS: usize = 64;

type Arrivals = Arc<Mutex<Vec<(String, Instant)>>>;

async fn receiver() -> (std::net::SocketAddr, Arrivals) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let arrivals: Arrivals = Arc::default();
    let log = arrivals.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let _ = stream.set_nodelay(true);
            let log = log.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let log = log.clone();
                    async move {
                        let id = req.headers()["webhook-id"].to_str().unwrap().to_owned();
                        assert!(req.headers().contains_key("webhook-signature"));
                        let _ = req.into_body().collect().await;
                        log.lock().unwrap().push((id, Instant::now()));
                        Ok::<_, Infallible>(
                            Response::builder()
                                .status(204)
                                .body(Full::new(Bytes::new()))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, arrivals)
}

/// A keep-alive HTTP/1.1 client connection to hookd.
async fn connect(
    addr: std::net::SocketAddr,
) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

async fn post(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    path: &str,
    body: String,
) -> serde_json::Value {
    sender.ready().await.unwrap();
    let req = Request::post(path)
        .header("host", "hookd")
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap()
}

async fn scenario(endpoints: usize, alerts: usize, per_endpoint: usize) {
    let dir = tempfile::tempdir().unwrap();
    let config = hookd::config::Config::from_toml_str(&format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\nbootstrap_token = \"{TOKEN}\"\nlog = \"warn\"\n\
         [url_policy]\nallow_networks = [\"127.0.0.0/8\"]\n[delivery]\nmax_in_flight = 256\nper_endpoint = {per_endpoint}\n",
        dir.path().display()
    ))
    .unwrap();
    let started = hookd::app::start(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Arc::new(started.app);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(hookd::server::run(listener, app, async {
        let _ = stopped.await;
    }));
    let (rx_addr, arrivals) = receiver().await;

    let mut admin = connect(addr).await;
    for i in 0..endpoints {
        let body = serde_json::json!({"name": format!("r{i}"), "url": format!("http://{rx_addr}/r{i}"), "signingEnabled": true, "signingSecret": ""});
        post(
            &mut admin,
            "/api/v1/alerting/webhook-endpoints",
            body.to_string(),
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
                let body = r#"{"eventType":"alert.firing","payload":{"severity":"critical","summary":"disk full on db-1"}}"#;
                let v = post(&mut c, "/api/v1/alerting/alerts", body.to_owned()).await;
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
    let pct = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    println!(
        "{endpoints:>3} endpoint(s), {} alerts: {expected} signed deliveries in {:.2?} = {:.0}/s; post->delivery p50 {:.2?}, p99 {:.2?}",
        per_sender * SENDERS,
        elapsed,
        expected as f64 / elapsed.as_secs_f64(),
        pct(50),
        pct(99)
    );
    stop.send(()).unwrap();
    let _ = server.await;
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
