//! A webhook receiver for the delivery tests: a real HTTP server on 127.0.0.1:0 that records
//! every request and answers from a script (then 200).
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{HeaderMap, Request, Response};
use hyper_util::rt::TokioIo;

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When the request arrived.
    pub at: std::time::Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// How many of its `webhook-signature` entries are the HMAC of the body it carries under
    /// `key` (the receiver's check).
    pub fn signatures_by(&self, key: &[u8]) -> usize {
        let ts: i64 = self.header("webhook-timestamp").parse().unwrap();
        let expected = hookd::secrets::sign(key, &self.header("webhook-id"), ts, &self.body);
        self.header("webhook-signature")
            .split(' ')
            .filter(|sig| *sig == expected)
            .count()
    }
}

/// One scripted answer: status and extra headers.
pub type Answer = (u16, Vec<(&'static str, String)>);

#[derive(Clone, Default)]
pub struct Receiver {
    pub addr: Option<SocketAddr>,
    pub received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
    /// Milliseconds to wait before answering (a slow receiver).
    delay_ms: Arc<std::sync::atomic::AtomicU64>,
    /// Requests being answered right now, and the most seen at once.
    busy: Arc<std::sync::atomic::AtomicUsize>,
    pub max_busy: Arc<std::sync::atomic::AtomicUsize>,
}

impl Receiver {
    /// Starts on 127.0.0.1:0 (or the given address).
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0").await
    }

    pub async fn start_on(addr: &str) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let r = Self {
            addr: Some(listener.local_addr().unwrap()),
            ..Self::default()
        };
        let this = r.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let this = this.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let this = this.clone();
                        async move {
                            use std::sync::atomic::Ordering::SeqCst;
                            let now = this.busy.fetch_add(1, SeqCst) + 1;
                            this.max_busy.fetch_max(now, SeqCst);
                            let delay = this.delay_ms.load(SeqCst);
                            tokio::time::sleep(Duration::from_millis(delay)).await;
                            this.busy.fetch_sub(1, SeqCst);
                            let (received, script) = (&this.received, &this.script);
                            let at = std::time::Instant::now();
                            let path = req.uri().path().to_owned();
                            let headers = req.headers().clone();
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            received.lock().unwrap().push(Received {
                                path,
                                headers,
                                body,
                                at,
                            });
                            let (status, extra) =
                                script.lock().unwrap().pop_front().unwrap_or((200, vec![]));
                            let mut resp = Response::builder().status(status);
                            // The pseudo-header `x-test-body` is the answer's body instead.
                            let mut body = format!("answer {status}");
                            for (k, v) in extra {
                                if k == "x-test-body" {
                                    body = v;
                                } else {
                                    resp = resp.header(k, v);
                                }
                            }
                            Ok::<_, Infallible>(resp.body(Full::new(Bytes::from(body))).unwrap())
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        r
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr.unwrap())
    }

    /// Makes every answer wait `ms` milliseconds.
    pub fn slow(&self, ms: u64) {
        self.delay_ms.store(ms, std::sync::atomic::Ordering::SeqCst);
    }

    /// Queues answers for the next requests.
    pub fn script(&self, answers: Vec<Answer>) {
        self.script.lock().unwrap().extend(answers);
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    /// Waits until at least `n` requests have arrived (at most `secs` seconds).
    pub async fn wait_for(&self, n: usize, secs: u64) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        while self.count() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {n} deliveries within {secs} s, got {}",
                self.count()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.received.lock().unwrap().clone()
    }
}

/// A TLS receiver on 127.0.0.1 with `config` (rustls, HTTP/1.1): answers 204 to every request
/// that gets through the handshake. Returns its port and how many requests it answered.
pub async fn tls_receiver(
    config: rustls::ServerConfig,
) -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = served.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, count) = (acceptor.clone(), count.clone());
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = service_fn(move |_req: Request<hyper::body::Incoming>| {
                    count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    async {
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
    (port, served)
}
