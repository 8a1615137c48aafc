//! Shared test support: start the real server on 127.0.0.1:0 in-process, and a small HTTP/1.1
//! client that sends requests the way curl would.

pub mod daemon;
pub mod pki;
pub mod plugins;
pub mod postgres;
pub mod receiver;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::{HeaderMap, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use hookd::app::{self, App};
use hookd::config::Config;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
pub const ENDPOINTS: &str = "/api/v1/alerting/webhook-endpoints";
pub const SEED_BODY: &str = r#"{"name":"Slack Webhook","url":"https://hooks.slack.com/services/T00/B00/xxx","signingEnabled":true,"signingSecret":"my-secret-key"}"#;

pub struct TestServer {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    pub dir: Arc<tempfile::TempDir>,
    /// Set for a server started with `[tls]`: what [`Self::req`] connects with.
    pub client_tls: Option<Arc<rustls::ClientConfig>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

/// The config every test server uses, plus `extra` TOML (tables may not repeat).
pub fn config(dir: &std::path::Path, extra: &str) -> Config {
    let toml = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\nbootstrap_token = \"{ADMIN_TOKEN}\"\n{extra}",
        dir.display()
    );
    let mut config = Config::from_toml_str(&toml).unwrap();
    postgres::use_for(&mut config, dir);
    config
}

/// `app::start`, waiting out the moment in which a just-stopped server still holds the store:
/// its file lock is released when the last handle drops, which can trail the stop slightly.
pub async fn start_app(config: Config) -> Result<app::Started, app::StartupError> {
    let mut attempts = 0;
    loop {
        match app::start(config.clone()).await {
            Err(e) if attempts < 100 && e.to_string().contains("already open") => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => return other,
        }
    }
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with("").await
    }

    pub async fn start_with(extra: &str) -> Self {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        Self::start_in(dir, extra).await
    }

    /// Starts a server on an existing data directory (restarts).
    pub async fn start_in(dir: Arc<tempfile::TempDir>, extra: &str) -> Self {
        let started = start_app(config(dir.path(), extra))
            .await
            .unwrap_or_else(|e| panic!("start: {e}"));
        Self::serve(dir, started).await
    }

    /// Starts a server with `config` on `dir` (its `data_dir`).
    #[cfg(feature = "postgres")]
    pub async fn start_config(dir: Arc<tempfile::TempDir>, config: Config) -> Self {
        let started = start_app(config)
            .await
            .unwrap_or_else(|e| panic!("start: {e}"));
        Self::serve(dir, started).await
    }

    /// Starts a server whose store is opened as `testing` says (the power-cut tests' disk).
    pub async fn start_on(extra: &str, testing: hookd::store::Testing) -> Self {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let started = app::start_on(config(dir.path(), extra), Some(testing))
            .await
            .unwrap_or_else(|e| panic!("start: {e}"));
        Self::serve(dir, started).await
    }

    async fn serve(dir: Arc<tempfile::TempDir>, started: app::Started) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Arc::new(started.app);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(hookd::server::run(listener, app.clone(), async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            app,
            dir,
            client_tls: None,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Signals shutdown and waits for `run` to return.
    pub async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        let task = self.task.take().unwrap();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("server stops within 10 s")
            .unwrap()
            .unwrap();
    }

    /// Waits for `run` to return on its own (no shutdown signal), at most `secs` seconds.
    pub async fn exited(mut self, secs: u64) -> std::io::Result<()> {
        let task = self.task.take().unwrap();
        tokio::time::timeout(Duration::from_secs(secs), task)
            .await
            .expect("server exits in time")
            .unwrap()
    }

    /// Begins shutdown without waiting.
    pub fn begin_stop(&mut self) -> JoinHandle<std::io::Result<()>> {
        self.stop.take().unwrap().send(()).unwrap();
        self.task.take().unwrap()
    }

    pub fn req(&self, method: &str, path: &str) -> Req {
        let mut req = raw_req(self.addr, method, path);
        req.tls.clone_from(&self.client_tls);
        req
    }

    /// Creates an API token with `scopes`; returns its plaintext.
    pub async fn token(&self, name: &str, scopes: &[&str]) -> String {
        let r = self
            .req("POST", "/api/v1/tokens")
            .json(&serde_json::json!({"name": name, "scopes": scopes}))
            .send()
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.json()["tokenPlaintext"].as_str().unwrap().to_owned()
    }

    /// Creates an endpoint from the seed body with `name` and `url` replaced; returns the response JSON.
    pub async fn create(&self, name: &str, secret: &str) -> Value {
        let body = serde_json::json!({
            "name": name,
            "url": "https://hooks.example.com/in",
            "signingEnabled": true,
            "signingSecret": secret,
        });
        let r = self.req("POST", ENDPOINTS).json(&body).send().await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.json()
    }
}

impl TestServer {
    /// Creates a signed endpoint (generated secret) named `name` delivering to `url`; returns
    /// its id.
    pub async fn endpoint_to(&self, name: &str, url: &str) -> String {
        let body = serde_json::json!({"name": name, "url": url, "signingEnabled": true, "signingSecret": ""});
        let r = self.req("POST", ENDPOINTS).json(&body).send().await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.json()["endpoint"]["id"].as_str().unwrap().to_owned()
    }

    /// Posts an `alert.firing` alert and expects it accepted; returns the answer (`messageId`,
    /// `deliveries`).
    pub async fn alert(&self) -> Value {
        let r = self
            .req("POST", "/api/v1/alerting/alerts")
            .json(&serde_json::json!({"eventType": "alert.firing", "payload": {"x": 1}}))
            .send()
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
        r.json()
    }

    /// The first page (up to 200) of an endpoint's attempt log, newest first.
    pub async fn attempts(&self, id: &str) -> Vec<Value> {
        let r = self
            .req("GET", &format!("{ENDPOINTS}/{id}/attempts?limit=200"))
            .send()
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.json()["attempts"].as_array().unwrap().clone()
    }

    /// Polls the attempt log until `n` attempts are there (at most `secs` seconds).
    pub async fn wait_attempts(&self, id: &str, n: usize, secs: u64) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let a = self.attempts(id).await;
            if a.len() >= n {
                return a;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} of {n} attempts: {a:?}",
                a.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Polls `check` every 20 ms until it is true; fails naming `what` after `secs` seconds.
/// [`eventually`], for a check that awaits (the store's reads).
pub async fn eventually_async<F: std::future::Future<Output = bool>>(
    secs: u64,
    what: &str,
    mut check: impl FnMut() -> F,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {secs} s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {secs} s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A request to the server at `addr`, with the admin token (for tasks that outlive a borrow).
pub fn raw_req(addr: SocketAddr, method: &str, path: &str) -> Req {
    Req {
        addr,
        method: method.into(),
        path: path.into(),
        headers: vec![("authorization".into(), format!("Bearer {ADMIN_TOKEN}"))],
        body: Vec::new(),
        tls: None,
    }
}

/// A request under construction.
pub struct Req {
    addr: SocketAddr,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// HTTPS with this client (the server's name is [`pki::HOST`]).
    tls: Option<Arc<rustls::ClientConfig>>,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }

    /// Asserts a problem+json error with this status; returns the problem.
    pub fn problem(&self, status: u16) -> Value {
        assert_eq!(self.status.as_u16(), status, "{}", self.text());
        assert_eq!(self.header("content-type"), "application/problem+json");
        let p = self.json();
        assert_eq!(p["status"], status);
        assert!(p["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:hookd:problem:"));
        assert!(p["title"].is_string() && p["detail"].is_string());
        p
    }

    /// The fields named by a 422's `errors`.
    pub fn error_fields(&self) -> Vec<String> {
        let p = self.problem(422);
        p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap().to_owned())
            .collect()
    }
}

impl Req {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(n, _)| n != name);
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn no_auth(mut self) -> Self {
        self.headers.retain(|(n, _)| n != "authorization");
        self
    }

    pub fn token(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub fn json(self, body: &Value) -> Self {
        self.raw("application/json", body.to_string().as_bytes())
    }

    pub fn body_str(self, body: &str) -> Self {
        self.raw("application/json", body.as_bytes())
    }

    pub fn raw(mut self, content_type: &str, body: &[u8]) -> Self {
        self.body = body.to_vec();
        self.header("content-type", content_type)
    }

    pub async fn send(self) -> Resp {
        let stream = TcpStream::connect(self.addr).await.unwrap();
        match self.tls.clone() {
            None => self.exchange(stream).await,
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from(pki::HOST).unwrap();
                let stream = tokio_rustls::TlsConnector::from(config)
                    .connect(name, stream)
                    .await
                    .unwrap();
                self.exchange(stream).await
            }
        }
    }

    async fn exchange<S>(self, stream: S) -> Resp
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let mut builder = Request::builder()
            .method(self.method.as_str())
            .uri(self.path.as_str())
            .header("host", self.addr.to_string());
        for (n, v) in &self.headers {
            builder = builder.header(n.as_str(), v.as_str());
        }
        let req = builder.body(Full::new(Bytes::from(self.body))).unwrap();
        let resp = tokio::time::timeout(Duration::from_secs(10), sender.send_request(req))
            .await
            .expect("response within 10 s")
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Resp {
            status,
            headers,
            body,
        }
    }
}

/// An Alertmanager notification (webhook version 4) of `n` `InstanceDown` alerts as Alertmanager
/// sends them, each with a `description` of about `description_bytes`. 150 alerts with a short
/// description are about 82 KB.
pub fn alertmanager_group(status: &str, n: usize, description_bytes: usize) -> Value {
    let alerts: Vec<Value> = (0..n)
        .map(|i| {
            let instance = format!("node-{i:04}.example.internal:9100");
            let mut description =
                format!("{instance} of job node has been down for more than 5 minutes.");
            while description.len() < description_bytes {
                description.push_str(" It answers no scrape; check the host, its network and the node exporter.");
            }
            serde_json::json!({
                "status": status,
                "labels": {"alertname": "InstanceDown", "instance": instance, "job": "node", "severity": "critical", "team": "infra"},
                "annotations": {"summary": format!("Instance {instance} down"), "description": description},
                "startsAt": "2026-11-29T10:00:00.000Z",
                "endsAt": if status == "resolved" { "2026-11-29T10:30:00.000Z" } else { "0001-01-01T00:00:00Z" },
                "generatorURL": "http://prometheus.example.internal:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1",
                "fingerprint": format!("{:016x}", 0x5eed_0000_u64 + i as u64)
            })
        })
        .collect();
    serde_json::json!({
        "version": "4",
        "groupKey": "{}/{severity=\"critical\"}:{alertname=\"InstanceDown\"}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "hookd",
        "groupLabels": {"alertname": "InstanceDown"},
        "commonLabels": {"alertname": "InstanceDown", "job": "node", "severity": "critical", "team": "infra"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.internal:9093",
        "alerts": alerts
    })
}
