//! Egress: the HTTP(S) client deliveries go through.
//!
//! rustls with its ring provider and the standard web roots (plus an optional CA bundle);
//! connect and total timeouts; redirects are never followed. Every address a host name resolves
//! to passes the URL policy's address rules before a connection is made (the DNS-rebinding
//! guard): a name that resolves to 127.0.0.1 is refused at send time even though it passed at
//! creation. IP-literal hosts are checked again too, against the current configuration.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use hyper::Request;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::config::DeliveryConfig;
use crate::url_policy::UrlPolicy;

/// The error kind an attempt that got no HTTP answer records.
pub type ErrorKind = &'static str;

/// The longest `Retry-After` read (an HTTP-date is 29 bytes); a longer one is ignored.
const MAX_RETRY_AFTER_LEN: usize = 64;

/// What came back from a receiver.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub retry_after: Option<String>,
    /// At most the configured number of bytes, lossily decoded.
    pub body: String,
}

/// The signed request to send.
pub struct Outgoing<'a> {
    pub url: &'a str,
    pub body: Vec<u8>,
    /// The body's content type (a format's, or what a transformer returned, validated).
    pub content_type: &'a str,
    pub msg_id: &'a str,
    pub timestamp: i64,
    /// `None` when the endpoint has signing switched off.
    pub signature: Option<String>,
    /// The endpoint's custom headers (validated when they were set).
    pub headers: Vec<(String, String)>,
    /// The client that presents the endpoint's certificate (mTLS); `None`: the shared one.
    pub client: Option<HttpClient>,
}

/// An HTTP(S) client of the egress: guarded resolver, rustls, no redirects.
pub type HttpClient = Client<HttpsConnector<HttpConnector<GuardedResolver>>, Full<Bytes>>;

/// Most endpoints whose mTLS clients are kept at once (each keeps its own connection pool).
const MAX_MTLS_CLIENTS: usize = 1024;

/// The shared delivery client.
pub struct Egress {
    client: HttpClient,
    policy: Arc<UrlPolicy>,
    timeout: Duration,
    body_limit: usize,
    /// What a client presenting a certificate is built from.
    http: HttpConnector<GuardedResolver>,
    roots: Arc<rustls::RootCertStore>,
    /// Per endpoint: the certificate fingerprint and the client that presents it.
    mtls: Mutex<HashMap<String, (String, HttpClient)>>,
}

#[derive(Debug, thiserror::Error)]
#[error("delivery client: {0}")]
pub struct ClientError(String);

impl Egress {
    /// Builds the client.
    ///
    /// # Errors
    /// An unreadable or malformed `ca_bundle`.
    pub fn new(config: &DeliveryConfig, policy: UrlPolicy) -> Result<Self, ClientError> {
        let policy = Arc::new(policy);
        let resolver = GuardedResolver {
            policy: policy.clone(),
            hosts: Arc::new(
                config
                    .hosts
                    .iter()
                    .map(|(name, ip)| (name.to_ascii_lowercase(), ip.0))
                    .collect(),
            ),
        };
        let mut http = HttpConnector::new_with_resolver(resolver);
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_millis(config.connect_timeout_ms)));

        let roots = crate::tls::web_roots_and(Some(&config.ca_bundle)).map_err(|e| {
            ClientError(format!(
                "delivery.ca_bundle {}: {e}",
                config.ca_bundle.display()
            ))
        })?;
        let roots = Arc::new(roots);
        let client = build_client(
            http.clone(),
            crate::tls::client_config(roots.clone(), None).map_err(ClientError)?,
        );
        Ok(Self {
            client,
            policy,
            timeout: Duration::from_millis(config.timeout_ms),
            body_limit: config.response_body_bytes,
            http,
            roots,
            mtls: Mutex::new(HashMap::new()),
        })
    }

    /// The client that presents `endpoint_id`'s certificate (with SHA-256 `fingerprint`),
    /// built on first use from `load`'s (chain PEM, key PEM) and kept while the certificate
    /// stays the same.
    ///
    /// # Errors
    /// `secret_unavailable` when the key cannot be unsealed, `tls` when rustls refuses them.
    pub fn mtls_client(
        &self,
        endpoint_id: &str,
        fingerprint: &str,
        load: impl FnOnce() -> Result<(String, String), String>,
    ) -> Result<HttpClient, ErrorKind> {
        let mut map = self.mtls.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((f, client)) = map.get(endpoint_id) {
            if f == fingerprint {
                return Ok(client.clone());
            }
        }
        let (chain, key) = load().map_err(|e| {
            tracing::error!(endpoint = %endpoint_id, error = %e, "cannot unseal the client certificate's key");
            "secret_unavailable"
        })?;
        let identity = crate::tls::certified_key(&chain, &key).map_err(|e| {
            tracing::error!(endpoint = %endpoint_id, error = %e, "the client certificate cannot be used");
            "tls"
        })?;
        let tls =
            crate::tls::client_config(self.roots.clone(), Some(identity)).map_err(|_| "tls")?;
        let client = build_client(self.http.clone(), tls);
        if map.len() >= MAX_MTLS_CLIENTS {
            map.clear();
        }
        map.insert(
            endpoint_id.to_owned(),
            (fingerprint.to_owned(), client.clone()),
        );
        Ok(client)
    }

    /// Sends one signed POST. Never follows a redirect.
    ///
    /// # Errors
    /// The kind of failure when there is no HTTP answer: `invalid_url`, `egress_denied`,
    /// `timeout`, `tls`, `connect`, `request`.
    pub async fn send(&self, out: Outgoing<'_>) -> Result<Response, ErrorKind> {
        let url = url::Url::parse(out.url).map_err(|_| "invalid_url")?;
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check_literal(IpAddr::V4(ip))?,
            Some(url::Host::Ipv6(ip)) => self.check_literal(IpAddr::V6(ip))?,
            _ => {}
        }
        let mut req = Request::post(out.url)
            .header(CONTENT_TYPE, out.content_type)
            .header(
                USER_AGENT,
                HeaderValue::from_static(concat!("hookd/", env!("CARGO_PKG_VERSION"))),
            )
            .header("webhook-id", out.msg_id)
            .header("webhook-timestamp", out.timestamp.to_string());
        if let Some(sig) = &out.signature {
            req = req.header("webhook-signature", sig.as_str());
        }
        for (name, value) in &out.headers {
            req = req.header(name.as_str(), value.as_str());
        }
        let req = req
            .body(Full::new(Bytes::from(out.body)))
            .map_err(|_| "invalid_url")?;
        let client = out.client.as_ref().unwrap_or(&self.client);
        let exchange = async {
            let resp = client.request(req).await.map_err(|e| kind_of(&e))?;
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get(RETRY_AFTER)
                .filter(|v| v.len() <= MAX_RETRY_AFTER_LEN)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let mut body = resp.into_body();
            let mut kept = Vec::new();
            while kept.len() < self.body_limit {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            let room = self.body_limit - kept.len();
                            kept.extend_from_slice(&data[..data.len().min(room)]);
                        }
                    }
                    Some(Err(_)) | None => break,
                }
            }
            Ok(Response {
                status,
                retry_after,
                body: String::from_utf8_lossy(&kept).into_owned(),
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| "timeout")?
    }

    fn check_literal(&self, ip: IpAddr) -> Result<(), ErrorKind> {
        self.policy.check_ip(ip).map_err(|_| "egress_denied")
    }
}

fn build_client(http: HttpConnector<GuardedResolver>, tls: rustls::ClientConfig) -> HttpClient {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(https)
}

/// Names the failure of a request that got no answer.
fn kind_of(e: &hyper_util::client::legacy::Error) -> ErrorKind {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<rustls::Error>() {
            return "tls";
        }
        if let Some(io) = s.downcast_ref::<io::Error>() {
            match io.kind() {
                io::ErrorKind::PermissionDenied => return "egress_denied",
                io::ErrorKind::TimedOut => return "timeout",
                _ => {}
            }
            // io::Error's own `source()` skips the error it wraps; descend into it.
            if let Some(inner) = io.get_ref() {
                source = Some(inner);
                continue;
            }
        }
        source = s.source();
    }
    if e.is_connect() {
        "connect"
    } else {
        "request"
    }
}

/// Resolves names (fixed `delivery.hosts` first, then the system resolver) and keeps only the
/// addresses the URL policy allows; none left is a `PermissionDenied` error.
#[derive(Clone)]
pub struct GuardedResolver {
    policy: Arc<UrlPolicy>,
    hosts: Arc<HashMap<String, IpAddr>>,
}

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, io::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
            let found: Vec<SocketAddr> = match this.hosts.get(&host) {
                Some(ip) => vec![SocketAddr::new(*ip, 0)],
                None => tokio::net::lookup_host((host.as_str(), 0)).await?.collect(),
            };
            let mut reasons = Vec::new();
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match this.policy.check_ip(a.ip()) {
                    Ok(()) => true,
                    Err(why) => {
                        reasons.push(why);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let why = reasons
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| "no address".into());
                tracing::warn!(host = %host, reason = %why, "delivery refused by the egress guard");
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("{host}: {why}"),
                ));
            }
            Ok(allowed.into_iter())
        })
    }
}
