//! What the in-process benchmarks share: hookd on 127.0.0.1:0 with a fresh or given store, a
//! counting receiver, and keep-alive clients.
#![allow(dead_code, clippy::unwrap_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

pub const TOKEN: &str = "bench-admin-token-0123456789";

/// Arrivals at a receiver: (webhook-id, when).
pub type Arrivals = Arc<Mutex<Vec<(String, Instant)>>>;

/// A receiver on loopback that answers 204 and notes each arrival.
pub async fn receiver() -> (SocketAddr, Arrivals) {
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

/// A running in-process hookd.
pub struct Hookd {
    pub addr: SocketAddr,
    pub app: Arc<hookd::app::App>,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Hookd {
    /// Starts hookd on `dir` with the bench token, loopback receivers allowed, and `extra` TOML
    /// (tables `[url_policy]` and `[delivery]` are open: `extra` continues `[delivery]`).
    pub async fn start(dir: &Path, extra: &str) -> Self {
        let config = hookd::config::Config::from_toml_str(&format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\nbootstrap_token = \"{TOKEN}\"\nlog = \"warn\"\n\
             [url_policy]\nallow_networks = [\"127.0.0.0/8\"]\n[delivery]\n{extra}",
            dir.display()
        ))
        .unwrap();
        let started = loop {
            match hookd::app::start(config.clone()).await {
                Err(e) if e.to_string().contains("already open") => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                other => break other.unwrap(),
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Arc::new(started.app);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(hookd::server::run(listener, app.clone(), async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            app,
            stop,
            server,
        }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
    }
}

pub type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// A keep-alive HTTP/1.1 client connection to hookd.
pub async fn connect(addr: SocketAddr) -> Sender {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// A request with the bench token; returns the status and the JSON answer (Null if none).
pub async fn call(
    sender: &mut Sender,
    method: &str,
    path: &str,
    body: Option<String>,
) -> (u16, serde_json::Value) {
    sender.ready().await.unwrap();
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "hookd")
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or_default())
}

/// A successful POST; the JSON answer.
pub async fn post(sender: &mut Sender, path: &str, body: String) -> serde_json::Value {
    let (status, v) = call(sender, "POST", path, Some(body)).await;
    assert!((200..300).contains(&status), "{status}: {v}");
    v
}

/// Creates an endpoint for `url`; its id.
pub async fn endpoint(sender: &mut Sender, name: &str, url: &str) -> String {
    let body =
        serde_json::json!({"name": name, "url": url, "signingEnabled": true, "signingSecret": ""});
    let v = post(
        sender,
        "/api/v1/alerting/webhook-endpoints",
        body.to_string(),
    )
    .await;
    v["endpoint"]["id"].as_str().unwrap().to_owned()
}

/// A one-alert Alertmanager group, as Alertmanager posts it (1.1 KB).
pub const GROUP: &str = r#"{"version":"4","groupKey":"{}:{alertname=\"InstanceDown\"}","truncatedAlerts":0,"status":"firing","receiver":"hookd","groupLabels":{"alertname":"InstanceDown"},"commonLabels":{"alertname":"InstanceDown","instance":"db-1:9100","job":"node","severity":"critical"},"commonAnnotations":{"summary":"Instance db-1:9100 down","description":"db-1:9100 of job node has been down for more than 5 minutes."},"externalURL":"http://alertmanager.example.internal:9093","alerts":[{"status":"firing","labels":{"alertname":"InstanceDown","instance":"db-1:9100","job":"node","severity":"critical"},"annotations":{"summary":"Instance db-1:9100 down","description":"db-1:9100 of job node has been down for more than 5 minutes."},"startsAt":"2026-11-29T10:00:00.000Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prometheus.example.internal:9090/graph?g0.expr=up+%3D%3D+0","fingerprint":"5eed000000000001"}]}"#;

pub const ALERT: &str = r#"{"eventType":"alert.firing","payload":{"severity":"critical","summary":"disk full on db-1"}}"#;

/// The p-th percentile of sorted `xs`.
pub fn pct(xs: &[Duration], p: usize) -> Duration {
    if xs.is_empty() {
        return Duration::ZERO;
    }
    xs[(xs.len() * p / 100).min(xs.len() - 1)]
}

/// Milliseconds, for tables.
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}
