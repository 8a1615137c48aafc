//! The accept loop: a connection limit, HTTP/1.1 and cleartext HTTP/2 (prior knowledge) on the
//! same port, a header-read timeout, a request id on every request's log lines and response, and
//! graceful shutdown that drains in-flight requests up to a deadline.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use ring::rand::SecureRandom as _;
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::Instrument as _;

use crate::api::{self, HttpResponse};
use crate::app::App;

const REQUEST_ID: &str = "x-request-id";

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting, lets in-flight
/// requests finish for up to `limits.shutdown_grace_secs`, and returns.
///
/// # Errors
/// None today; the signature leaves room for fatal listener errors.
pub async fn run<F>(listener: TcpListener, app: Arc<App>, shutdown: F) -> std::io::Result<()>
where
    F: Future<Output = ()>,
{
    let limits = app.config.limits.clone();
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let ids = Arc::new(RequestIds::new(&app));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_read_timeout_secs));
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    let dispatcher = tokio::spawn(crate::delivery::run(app.clone()));
    tokio::pin!(shutdown);

    loop {
        let (stream, _peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tokio::spawn(reject_busy(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let ids = ids.clone();
        let service = service_fn(move |req| {
            let app = app.clone();
            let ids = ids.clone();
            async move { Ok::<_, Infallible>(serve(&app, &ids, req).await) }
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }

    drop(listener);
    tracing::info!("shutting down: draining in-flight requests");
    // Deliveries cut off here stay in the outbox and are made again after a restart.
    dispatcher.abort();
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(Duration::from_secs(limits.shutdown_grace_secs)) => {
            tracing::warn!("shutdown deadline passed with connections still open");
        }
    }
    Ok(())
}

/// One request: pick or make its id, serve it inside a span carrying the id, log the outcome.
async fn serve(app: &App, ids: &RequestIds, req: Request<Incoming>) -> HttpResponse {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| valid_request_id(v))
        .map_or_else(|| ids.next(), str::to_owned);
    let span = tracing::info_span!("request", id = %id);
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let started = Instant::now();
    let mut resp = api::handle(app, req).instrument(span.clone()).await;
    let status = resp.status().as_u16();
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    span.in_scope(|| {
        if status >= 500 {
            tracing::warn!(%method, %path, status, micros, "request failed");
        } else {
            tracing::debug!(%method, %path, status, micros, "request served");
        }
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    resp
}

/// A client-sent id is kept if it is 1-128 visible ASCII characters.
fn valid_request_id(v: &str) -> bool {
    (1..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic())
}

/// Request ids: a random per-process prefix and a counter; unique and cheap.
struct RequestIds {
    prefix: u32,
    next: AtomicU64,
}

impl RequestIds {
    fn new(app: &App) -> Self {
        let mut bytes = [0u8; 4];
        let _ = app.rng.fill(&mut bytes);
        Self {
            prefix: u32::from_be_bytes(bytes),
            next: AtomicU64::new(1),
        }
    }

    fn next(&self) -> String {
        format!(
            "{:08x}-{:08x}",
            self.prefix,
            self.next.fetch_add(1, Ordering::Relaxed)
        )
    }
}

/// Over the connection limit: answer 503 once and close, rather than leave the client hanging.
async fn reject_busy(mut stream: TcpStream) {
    let body = br#"{"type":"urn:hookd:problem:unavailable","title":"Service unavailable","status":503,"detail":"too many connections; retry shortly"}"#;
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let write = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
    tracing::warn!("connection refused: connection limit reached");
}
