//! The accept loop: HTTP/1.1 and HTTP/2 on the same port (cleartext with prior knowledge, or
//! HTTPS with `[tls]`: ALPN), a request
//! id on every request's log lines and response, and graceful shutdown that drains in-flight
//! requests up to a deadline.
//!
//! Every phase of a connection is bounded in time:
//! - the TLS handshake: `limits.header_read_timeout_secs`;
//! - from then to a complete first request head (protocol detection, the HTTP/2 preface and
//!   SETTINGS included): `limits.header_read_timeout_secs`;
//! - idle between requests (HTTP/1.1 keep-alive, HTTP/2 with no open stream):
//!   `limits.idle_timeout_secs` (HTTP/1.1 also waits at most the header timeout for a head);
//! - reading a request body: `limits.body_read_timeout_secs` (408, in the API);
//! - a response write that makes no progress: `limits.write_timeout_secs` ([`io`]);
//! - HTTP/2 peers are pinged while streams are open and dropped if they stop answering.
//!
//! Slots are counted by [`conns`]: a total and a per-address cap, and idle connections give up
//! their slot to newcomers.
//!
//! Each connection is served start to end by one serving thread ([`lanes`]), the least busy
//! one when it was accepted.

mod conns;
mod io;
mod lanes;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, HOST};
use hyper::service::service_fn;
use hyper::{Request, Version};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use ring::rand::SecureRandom as _;
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tracing::Instrument as _;

use crate::api::{self, HttpResponse};
use crate::app::App;
use crate::error::ApiError;
use conns::Refused;
use conns::{Conns, Slot};
use lanes::{Lanes, Seat};

const REQUEST_ID: &str = "x-request-id";
/// "request failed" warnings: at most one a second.
static FAILED_LINES: crate::logging::RateLimit = crate::logging::RateLimit::new(1000);
/// "TLS handshake failed" lines: at most one every ten seconds.
static HANDSHAKE_LINES: crate::logging::RateLimit = crate::logging::RateLimit::new(10_000);

/// How long a connection told to close (idle, evicted) may take to finish a response it is
/// writing (a request that slipped in as it was chosen).
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// The most an HTTP/1 connection buffers of what it reads: a request head must fit.
const READ_BUFFER: usize = 64 * 1024;
/// At most one "connection refused" warning per this many milliseconds.
const REFUSAL_LOG_EVERY_MS: u64 = 10_000;

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting, lets in-flight
/// requests finish for up to `limits.shutdown_grace_secs`, and returns.
///
/// # Errors
/// The store's writer thread died: nothing can be written, so the server stops (and the
/// binary exits non-zero, for a supervisor to restart it).
pub async fn run<F>(listener: TcpListener, app: Arc<App>, shutdown: F) -> std::io::Result<()>
where
    F: Future<Output = ()>,
{
    let limits = app.config().limits.clone();
    let conns = Conns::new(conns::Limits {
        max: limits.max_connections,
        per_ip: limits.max_connections_per_ip,
        exempt: limits.per_ip_exempt_networks.iter().map(|c| c.0).collect(),
    });
    let ids = Arc::new(RequestIds::new(&app));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_read_timeout_secs))
        // A connection's read buffer: a request head must fit (431 otherwise). hyper's default
        // lets each connection's buffer grow to about 400 KiB under a fast upload.
        .max_buf_size(READ_BUFFER);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(
            limits.idle_timeout_secs.div_ceil(2),
        )))
        .keep_alive_timeout(Duration::from_secs(limits.header_read_timeout_secs));
    let builder = Arc::new(builder);
    let timeouts = Timeouts {
        first: Duration::from_secs(limits.header_read_timeout_secs),
        idle: Duration::from_secs(limits.idle_timeout_secs),
        write: Duration::from_secs(limits.write_timeout_secs),
    };
    // Connection tasks watch `stopping`; each holds a clone of `open`, so `closed.recv()`
    // returns once all of them have ended.
    let (stopping_tx, stopping) = watch::channel(false);
    let (open, mut closed) = mpsc::channel::<()>(1);
    let refusals = RefusalLog::default();
    let lanes = Lanes::start(Lanes::for_this_machine())?;
    let (phase, dispatching) = watch::channel(crate::delivery::Phase::Running);
    let mut dispatcher = tokio::spawn(crate::delivery::run(app.delivery.clone(), dispatching));
    let retention = tokio::spawn(app.store.clone().run_retention(app.retention.subscribe()));
    let token_uses = {
        let app = app.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(crate::app::TokenUse::FLUSH_EVERY);
            every.tick().await;
            loop {
                every.tick().await;
                app.token_use.flush(&app.store).await;
            }
        })
    };
    tokio::pin!(shutdown);

    let mut fatal = None;
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            () = app.store.writer_stopped() => {
                fatal = Some("the store's writer thread stopped; hookd cannot write");
                break;
            }
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
        let slot = match conns.admit(canonical_ip(peer)) {
            Ok(slot) => slot,
            Err(why) => {
                let _ = refusals.note(why, conns.open());
                // A TLS client would read a cleartext 503 as a broken handshake: it is closed.
                if app.tls.is_none() {
                    tokio::spawn(reject_busy(stream, why, ids.next()));
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let conn = Connection {
            app: app.clone(),
            ids: ids.clone(),
            builder: builder.clone(),
            timeouts,
            stopping: stopping.clone(),
            _open: open.clone(),
        };
        lanes.serve(stream, move |stream, seat| conn.serve(stream, slot, seat));
    }

    drop(listener);
    tracing::info!("shutting down: draining in-flight requests and deliveries");
    retention.abort();
    token_uses.abort();
    let _ = stopping_tx.send(true);
    let _ = phase.send(crate::delivery::Phase::Drain);
    drop(open);
    let mut dispatched = false;
    let drained = async {
        let _ = closed.recv().await;
        let _ = (&mut dispatcher).await;
        dispatched = true;
    };
    let grace = Duration::from_secs(limits.shutdown_grace_secs);
    match tokio::time::timeout(grace, drained).await {
        Ok(()) => tracing::info!("all connections closed, no delivery in flight"),
        Err(_) => tracing::warn!(
            "shutdown deadline passed with connections or deliveries still open; the deliveries cut off are made again after a restart"
        ),
    }
    // Nothing started here holds the store once `run` returns.
    lanes.stop().await;
    let _ = phase.send(crate::delivery::Phase::Stop);
    if !dispatched {
        let _ = dispatcher.await;
    }
    let _ = retention.await;
    let _ = token_uses.await;
    app.token_use.flush(&app.store).await;
    match fatal {
        Some(why) => Err(std::io::Error::other(why)),
        None => Ok(()),
    }
}

/// IPv4-mapped IPv6 peers (a dual-stack listener) count as their IPv4 address.
fn canonical_ip(peer: SocketAddr) -> std::net::IpAddr {
    peer.ip().to_canonical()
}

#[derive(Debug, Clone, Copy)]
struct Timeouts {
    first: Duration,
    idle: Duration,
    write: Duration,
}

/// One accepted connection and what it needs to serve and bound itself.
struct Connection {
    app: Arc<App>,
    ids: Arc<RequestIds>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    timeouts: Timeouts,
    stopping: watch::Receiver<bool>,
    _open: mpsc::Sender<()>,
}

impl Connection {
    /// The connection's stream: the socket, or (with `[tls]`) the TLS session over it once its
    /// handshake is done, within `limits.header_read_timeout_secs`; with whether the peer
    /// presented a client certificate that verified. `None`: the handshake failed.
    async fn transport(&self, stream: TcpStream) -> Option<(io::Transport, bool)> {
        let socket = io::WriteTimeout::new(stream, self.timeouts.write);
        let Some(tls) = &self.app.tls else {
            return Some((io::Transport::Plain(socket), false));
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.config());
        let why = match tokio::time::timeout(self.timeouts.first, acceptor.accept(socket)).await {
            Ok(Ok(session)) => {
                let certified = session.get_ref().1.peer_certificates().is_some();
                return Some((io::Transport::Tls(Box::new(session)), certified));
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no handshake within limits.header_read_timeout_secs".to_owned(),
        };
        // Port scanners and plain-HTTP clients cause these: one line every ten seconds at most.
        if let Some(suppressed) = HANDSHAKE_LINES.admit() {
            tracing::info!(error = %why, suppressed, "TLS handshake failed");
        }
        None
    }

    /// Serves the connection until the client closes it, it idles out, it is evicted, or the
    /// server stops (then in-flight requests finish first).
    async fn serve(mut self, stream: TcpStream, slot: Slot, seat: Arc<Seat>) {
        let state = slot.state.clone();
        let Some((io, certified)) = self.transport(stream).await else {
            return;
        };
        let service = {
            let (app, ids, state) = (self.app.clone(), self.ids.clone(), state.clone());
            service_fn(move |req: Request<Incoming>| {
                if req.version() == Version::HTTP_2 {
                    seat.http2();
                }
                let (app, ids, state) = (app.clone(), ids.clone(), state.clone());
                async move {
                    state.request_started();
                    // The request stays in flight until its body has been sent (a backup
                    // streams for a while): the guard in the body ends it.
                    let busy = conns::Busy(state);
                    let resp = serve(&app, &ids, req, certified).await;
                    Ok::<_, Infallible>(resp.map(|body| conns::Tracked { body, _busy: busy }))
                }
            })
        };
        let conn = self.builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(conn);
        // Once set, the connection has been asked to close and must be gone by this time.
        let mut closing: Option<tokio::time::Instant> = None;
        loop {
            let idle = if closing.is_none() {
                state.idle_deadline(self.timeouts.first, self.timeouts.idle)
            } else {
                None
            };
            // While a request is in flight, look again after the idle limit.
            let wake = closing.unwrap_or_else(|| {
                tokio::time::Instant::now() + idle.unwrap_or(self.timeouts.idle)
            });
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    break;
                }
                () = state.close.notified(), if closing.is_none() => {
                    tracing::debug!("idle connection evicted to make room");
                    if !state.has_served() {
                        break; // nothing to say goodbye to
                    }
                    conn.as_mut().graceful_shutdown();
                    closing = Some(tokio::time::Instant::now() + CLOSE_GRACE);
                }
                changed = self.stopping.changed(), if closing.is_none() => {
                    if changed.is_err() || *self.stopping.borrow() {
                        conn.as_mut().graceful_shutdown();
                        let grace = self.app.config().limits.shutdown_grace_secs;
                        closing = Some(tokio::time::Instant::now() + Duration::from_secs(grace));
                    }
                }
                () = tokio::time::sleep_until(wake) => {
                    if closing.is_some() {
                        break; // did not finish in time: drop it
                    }
                    if state.idle_deadline(self.timeouts.first, self.timeouts.idle)
                        == Some(Duration::ZERO)
                    {
                        tracing::debug!("idle connection closed");
                        if !state.has_served() {
                            break; // never sent a request: no goodbye owed
                        }
                        conn.as_mut().graceful_shutdown();
                        closing = Some(tokio::time::Instant::now() + CLOSE_GRACE);
                    }
                }
            }
        }
        drop(slot);
    }
}

/// One request: pick or make its id, check the request line and `Host` (and, when the listener
/// asks for client certificates, that one was presented), serve it inside a span carrying the
/// id, log the outcome.
async fn serve(
    app: &App,
    ids: &RequestIds,
    req: Request<Incoming>,
    certified: bool,
) -> HttpResponse {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| valid_request_id(v))
        .map_or_else(|| ids.next(), str::to_owned);
    let span = tracing::info_span!("request", id = %id);
    let method = req.method().clone();
    let path = LoggedPath(req.uri().path().to_owned());
    let version = req.version();
    let started = Instant::now();
    let uncertified = !certified
        && app
            .tls
            .as_ref()
            .is_some_and(crate::tls::ServerTls::requires_client_certificates)
        && !matches!(req.uri().path(), "/healthz" | "/readyz");
    let mut resp = match host_problem(&req) {
        Some(e) => api::problem(&e),
        None if uncertified => api::problem(&ApiError::NoClientCertificate),
        None => api::handle(app, req).instrument(span.clone()).await,
    };
    // Every answer is what its Content-Type says (JSON, the docs page, the console): browsers
    // must not guess otherwise.
    resp.headers_mut().insert(
        hyper::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let status = resp.status().as_u16();
    let took = started.elapsed();
    let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
    let route = resp
        .extensions()
        .get::<api::RouteName>()
        .map_or("unknown", |r| r.0);
    if let Some(metrics) = &app.metrics {
        metrics.http(route, crate::metrics::method_label(&method), status, took);
    }
    span.in_scope(|| {
        if status >= 500 {
            // Anyone can cause these (a /readyz poll while the disk is low): one line a second
            // at most, counting the ones left out.
            match FAILED_LINES.admit() {
                Some(suppressed) => tracing::warn!(route, %method, %path, status, micros, suppressed, "request failed"),
                None => tracing::debug!(route, %method, %path, status, micros, "request failed"),
            }
        } else {
            tracing::debug!(route, %method, %path, status, micros, "request served");
        }
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    // A request whose body never arrived in full leaves the connection in an unknown state.
    if status == 408 && version <= Version::HTTP_11 {
        resp.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// RFC 9112 §3.2: an HTTP/1.1 request carries exactly one `Host`; no request carries two.
fn host_problem<B>(req: &Request<B>) -> Option<ApiError> {
    let hosts = req.headers().get_all(HOST).iter().count();
    if hosts > 1 {
        return Some(ApiError::BadRequest(
            "the request has more than one Host header".into(),
        ));
    }
    if hosts == 0 && req.version() == Version::HTTP_11 {
        return Some(ApiError::BadRequest(
            "an HTTP/1.1 request must have a Host header".into(),
        ));
    }
    None
}

/// A client-sent id is kept if it is 1-128 characters of `A-Z a-z 0-9 - _ . :`, which cannot
/// change the structure of a log line in either format; any other is replaced by a generated one.
fn valid_request_id(v: &str) -> bool {
    (1..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
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

/// Refused connections are logged at most once per [`REFUSAL_LOG_EVERY_MS`], with a count, so
/// a flood cannot flood the log.
struct RefusalLog(crate::logging::RateLimit);

impl Default for RefusalLog {
    fn default() -> Self {
        Self(crate::logging::RateLimit::new(REFUSAL_LOG_EVERY_MS))
    }
}

impl RefusalLog {
    /// Counts a refusal; logs (and returns `true`) at most once per [`REFUSAL_LOG_EVERY_MS`].
    fn note(&self, why: Refused, open: usize) -> bool {
        let Some(refused) = self.0.admit() else {
            return false;
        };
        let reason = match why {
            Refused::Full => "limits.max_connections",
            Refused::PerAddress => "limits.max_connections_per_ip",
        };
        tracing::warn!(
            refused,
            open,
            limit = reason,
            "connections refused: every slot is busy with a request"
        );
        true
    }
}

/// Over a connection limit: answer 503 once and close, rather than leave the client hanging.
async fn reject_busy(mut stream: TcpStream, why: Refused, request_id: String) {
    let detail = match why {
        Refused::Full => "too many connections; retry shortly",
        Refused::PerAddress => "too many connections from your address; retry shortly",
    };
    let body = ApiError::Unavailable(detail.into()).problem().to_string();
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nretry-after: 1\r\n{REQUEST_ID}: {request_id}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let write = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

/// A request's path as logged: characters that could change the structure of a log line (a
/// quote, a brace, a backslash, `=`, anything outside printable ASCII) percent-encoded, so it
/// needs no quotes of its own, in text lines or in JSON ones.
struct LoggedPath(String);

impl std::fmt::Display for LoggedPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~/:@!$&'()*+,;%?".contains(&b) {
                write!(f, "{}", char::from(b))?;
            } else {
                write!(f, "%{b:02X}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_cannot_forge_log_structure() {
        for ok in ["abc", "a-b_c.d:e", "0123456789abcdef", &"x".repeat(128)] {
            assert!(valid_request_id(ok), "{ok}");
        }
        for bad in [
            "",
            "a}:x=1\"status=200",
            "a b",
            "a\"b",
            "a=b",
            "a{b",
            "é",
            &"x".repeat(129),
        ] {
            assert!(!valid_request_id(bad), "{bad}");
        }
    }

    #[test]
    fn refusals_are_logged_once_per_interval() {
        let log = RefusalLog::default();
        let logged = (0..10_000)
            .filter(|_| log.note(Refused::Full, 1024))
            .count();
        assert_eq!(logged, 1, "a flood of refusals makes one line");
    }

    #[test]
    fn host_rules() {
        let req = |version, hosts: &[&str]| {
            let mut b = Request::builder().version(version).uri("/healthz");
            for h in hosts {
                b = b.header(HOST, *h);
            }
            b.body(()).unwrap()
        };
        assert!(host_problem(&req(Version::HTTP_11, &["a"])).is_none());
        assert!(host_problem(&req(Version::HTTP_11, &[])).is_some());
        assert!(host_problem(&req(Version::HTTP_11, &["a", "b"])).is_some());
        assert!(host_problem(&req(Version::HTTP_10, &[])).is_none());
        assert!(host_problem(&req(Version::HTTP_2, &[])).is_none());
        assert!(host_problem(&req(Version::HTTP_2, &["a", "a"])).is_some());
    }
}
