//! TLS identities from PEM: a certificate chain with its private key (the API's HTTPS listener,
//! an endpoint's mTLS client certificate), and the API listener's rustls configuration (ring
//! provider, TLS 1.2 and 1.3, ALPN `h2` and `http/1.1`, optional client certificates), re-read
//! on a reload: a bad new certificate leaves the running one in place.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;

/// A certificate chain (leaf first) and its private key, checked to belong together.
///
/// # Errors
/// Why rustls cannot use them: unparsable PEM, an unsupported key type, or a key that is not
/// the leaf certificate's.
pub fn certified_key(chain_pem: &str, key_pem: &str) -> Result<Arc<CertifiedKey>, String> {
    let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            format!(
                "the certificate is not valid PEM: {}",
                crate::parse::pem_error(&e)
            )
        })?;
    if chain.is_empty() {
        return Err(
            "the certificate file holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        );
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| {
        format!(
            "the private key is not valid PEM: {}",
            crate::parse::pem_error(&e)
        )
    })?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("the private key cannot sign TLS handshakes ({e})"))?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(Arc::new(certified))
        }
        Err(rustls::Error::InconsistentKeys(_)) => {
            Err("the private key does not belong to the (first, leaf) certificate".into())
        }
        Err(e) => Err(format!("the certificate cannot be used: {e}")),
    }
}

/// Where the API listener's certificate, key and (optional) client CA are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Client certificates signed by these CAs are required (`None`: none asked for).
    pub client_ca: Option<PathBuf>,
}

fn read(key: &str, path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("tls.{key} {}: {e}", path.display()))
}

/// The leaf of `certified` is valid at `now_ms`; otherwise why not, with its validity period.
fn in_validity(certified: &CertifiedKey, now_ms: i64) -> Result<(), String> {
    let leaf = certified
        .cert
        .first()
        .map(|c| c.as_ref())
        .unwrap_or_default();
    let Some((from, until)) = crate::parse::der_validity(leaf) else {
        return Err("the (first, leaf) certificate is not an X.509 certificate".into());
    };
    let why = match (from, until) {
        (Some(from), _) if now_ms < from => "the certificate is not valid yet",
        (_, Some(until)) if now_ms > until => "the certificate has expired",
        _ => return Ok(()),
    };
    let at = |ms: Option<i64>| ms.map(crate::time::rfc3339).unwrap_or_default();
    Err(format!(
        "{why} (valid from {} until {})",
        at(from),
        at(until)
    ))
}

/// The web roots, plus the PEM CA certificates in `extra` (a configured file) if any.
///
/// # Errors
/// `extra` is unreadable or holds something other than certificates.
pub fn web_roots_and(extra: Option<&Path>) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(file) = extra.filter(|f| !f.as_os_str().is_empty()) {
        add_pem_roots(&mut roots, file)?;
    }
    Ok(roots)
}

/// A TLS client's settings (ring; TLS 1.2 and 1.3) trusting `roots`, presenting `identity` to
/// servers that ask for a certificate.
///
/// # Errors
/// The provider refuses the protocol versions (not with ring).
pub fn client_config(
    roots: Arc<rustls::RootCertStore>,
    identity: Option<Arc<CertifiedKey>>,
) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    Ok(match identity {
        Some(key) => {
            builder.with_client_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(key)))
        }
        None => builder.with_no_client_auth(),
    })
}

/// Adds the certificates of the PEM file `path` to `roots` (a CA bundle).
///
/// # Errors
/// Why not, without the file's name: unreadable, bad PEM, a certificate rustls cannot trust.
pub fn add_pem_roots(roots: &mut rustls::RootCertStore, path: &Path) -> Result<(), String> {
    let pem = |e: rustls::pki_types::pem::Error| crate::parse::pem_error(&e);
    for cert in CertificateDer::pem_file_iter(path).map_err(pem)? {
        roots.add(cert.map_err(pem)?).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The listener's rustls configuration from `files`, checked at `now_ms`.
///
/// # Errors
/// An unreadable file, bad PEM, a key that is not the certificate's, a certificate outside its
/// validity, an unusable client CA: each message names the key and the file.
pub fn server_config(files: &Files, now_ms: i64) -> Result<Arc<rustls::ServerConfig>, String> {
    let shown = files.cert.display();
    let certified = certified_key(
        &read("cert_file", &files.cert)?,
        &read("key_file", &files.key)?,
    )
    .map_err(|e| {
        format!(
            "tls.cert_file {shown} with tls.key_file {}: {e}",
            files.key.display()
        )
    })?;
    in_validity(&certified, now_ms).map_err(|why| format!("tls.cert_file {shown}: {why}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("tls: {e}"))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let at = |e: String| format!("tls.client_ca_file {}: {e}", path.display());
            let mut roots = rustls::RootCertStore::empty();
            add_pem_roots(&mut roots, path).map_err(at)?;
            if roots.is_empty() {
                return Err(at("holds no PEM certificate".into()));
            }
            // Unauthenticated clients get through the handshake (for the health probes); every
            // other route then refuses them. A certificate that is presented must verify.
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| at(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config =
        builder.with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The API listener's TLS: the configuration new connections get, swapped by a reload.
pub struct ServerTls {
    current: RwLock<(Files, Arc<rustls::ServerConfig>)>,
}

impl ServerTls {
    /// # Errors
    /// What [`server_config`] refuses.
    pub fn load(files: Files, now_ms: i64) -> Result<Self, String> {
        let config = server_config(&files, now_ms)?;
        Ok(Self {
            current: RwLock::new((files, config)),
        })
    }

    /// The configuration for the next handshake.
    pub fn config(&self) -> Arc<rustls::ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .1
            .clone()
    }

    /// Whether the API routes require a client certificate.
    pub fn requires_client_certificates(&self) -> bool {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0
            .client_ca
            .is_some()
    }

    /// Puts `config` (built by [`server_config`] from `files`) in place for new connections.
    pub fn replace(&self, files: Files, config: Arc<rustls::ServerConfig>) {
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = (files, config);
    }
}
