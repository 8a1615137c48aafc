//! A private CA for the HTTPS tests: server certificates for `hookd.test` and 127.0.0.1 (in
//! force, expired or not yet valid), client certificates, their PEM files, and rustls client
//! configurations that trust the CA.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, Certificate, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The name the server certificates carry (tests pin it to 127.0.0.1).
pub const HOST: &str = "hookd.test";

pub struct Pki {
    ca: Certificate,
    ca_key: KeyPair,
    pub dir: PathBuf,
}

/// A certificate and its key, as PEM files in the CA's directory.
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub der: Vec<u8>,
}

impl Pki {
    /// A new CA in `dir` (its certificate in `ca.pem`).
    pub fn new(dir: &Path, name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} test CA"));
        let ca_key = KeyPair::generate().unwrap();
        let ca = params.self_signed(&ca_key).unwrap();
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(format!("{name}-ca.pem")), ca.pem()).unwrap();
        Self {
            ca,
            ca_key,
            dir: dir.to_path_buf(),
        }
    }

    pub fn ca_file(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}-ca.pem"))
    }

    /// A certificate for `names`, valid between the two years, written as `<file>.pem` and
    /// `<file>.key`.
    pub fn issue(&self, file: &str, names: &[&str], years: (i32, i32)) -> Issued {
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .unwrap();
        params.not_before = rcgen::date_time_ymd(years.0, 1, 1);
        params.not_after = rcgen::date_time_ymd(years.1, 1, 1);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, file);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        let issued = Issued {
            cert: self.dir.join(format!("{file}.pem")),
            key: self.dir.join(format!("{file}.key")),
            der: cert.der().to_vec(),
        };
        std::fs::write(&issued.cert, cert.pem()).unwrap();
        std::fs::write(&issued.key, key.serialize_pem()).unwrap();
        issued
    }

    /// A server certificate for [`HOST`] and 127.0.0.1, in force.
    pub fn server(&self, file: &str) -> Issued {
        self.issue(file, &[HOST, "127.0.0.1"], (2020, 2100))
    }

    /// A rustls client trusting this CA (HTTP/1.1 by ALPN), presenting `identity` if given.
    pub fn client(&self, identity: Option<&Issued>) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.ca.der().to_vec()))
            .unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
        let mut config = match identity {
            None => builder.with_no_client_auth(),
            Some(id) => builder
                .with_client_auth_cert(
                    vec![CertificateDer::from(id.der.clone())],
                    PrivateKeyDer::from_pem_file(&id.key).unwrap(),
                )
                .unwrap(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

/// The `[tls]` table serving `server`, requiring client certificates of `client_ca` if given.
pub fn tls_toml(server: &Issued, client_ca: Option<&Path>) -> String {
    let mut toml = format!(
        "[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
        server.cert.display(),
        server.key.display()
    );
    if let Some(ca) = client_ca {
        toml.push_str(&format!("client_ca_file = \"{}\"\n", ca.display()));
    }
    toml
}
