//! HTTPS for the API (`[tls]`), against the `hookd` binary with a private CA: curl over HTTP/2
//! and HTTP/1.1, client certificates, certificates refused at start (by `config check` too), and
//! a renewal picked up on SIGHUP while requests keep coming. (Alertmanager relaying to hookd over
//! HTTPS is `reference.rs`; the console in chromium over HTTPS is `console.rs`.)

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::common::daemon::{self, Daemon};
use crate::common::pki::{Issued, Pki, HOST};
use crate::common::{ADMIN_TOKEN, ENDPOINTS, SEED_BODY};

/// `hookd serve` on `dir` serving `server`, asking for certificates of `client_ca` if given.
fn https_daemon(dir: &Path, server: &Issued, client_ca: Option<&Path>) -> Daemon {
    let mut cmd = daemon::serve(dir);
    cmd.env("HOOKD_TLS__CERT_FILE", &server.cert)
        .env("HOOKD_TLS__KEY_FILE", &server.key)
        .env("HOOKD_BOOTSTRAP_TOKEN", ADMIN_TOKEN);
    if let Some(ca) = client_ca {
        cmd.env("HOOKD_TLS__CLIENT_CA_FILE", ca);
    }
    Daemon::start(cmd)
}

/// curl to `https://hookd.test:<port><path>` (pinned to the daemon), trusting `ca` if given:
/// (exit code, stdout, stderr).
fn curl(d: &Daemon, ca: Option<&Path>, args: &[&str], path: &str) -> (i32, String, String) {
    let port = d.addr.rsplit(':').next().unwrap();
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "10", "--resolve"])
        .arg(format!("{HOST}:{port}:127.0.0.1"));
    if let Some(ca) = ca {
        cmd.arg("--cacert").arg(ca);
    }
    let out = cmd
        .args(args)
        .arg(format!("https://{HOST}:{port}{path}"))
        .output()
        .expect("curl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const STATUS: [&str; 4] = ["-o", "/dev/null", "-w", "%{http_code} %{http_version}"];

#[test]
#[ignore = "needs curl (apt-get install curl); CI runs it"]
fn the_api_over_https_with_curl() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"), "hookd");
    let mut d = https_daemon(dir.path(), &pki.server("server"), None);
    assert!(
        d.stderr_lines.iter().any(|l| l.contains("https")),
        "the listening line says https: {:?}",
        d.stderr_lines
    );
    let ca = pki.ca_file("hookd");
    // HTTP/2 through ALPN, and HTTP/1.1.
    let (code, out, err) = curl(&d, Some(&ca), &STATUS, "/readyz");
    assert_eq!((code, out.as_str()), (0, "200 2"), "{err}");
    let mut http1 = STATUS.to_vec();
    http1.push("--http1.1");
    let (_, out, err) = curl(&d, Some(&ca), &http1, "/readyz");
    assert_eq!(out, "200 1.1", "{err}");
    // The README's create, over HTTPS.
    let auth = format!("Authorization: Bearer {ADMIN_TOKEN}");
    let (code, out, err) = curl(
        &d,
        Some(&ca),
        &[
            "-H",
            &auth,
            "-H",
            "Content-Type: application/json",
            "-d",
            SEED_BODY,
        ],
        ENDPOINTS,
    );
    assert_eq!(code, 0, "{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(created["endpoint"]["format"], "slack", "{out}");
    // Without the CA the certificate is not trusted (curl's 60).
    let (code, _, err) = curl(&d, None, &STATUS, "/readyz");
    assert_eq!(code, 60, "{err}");
    // TLS 1.1 and older: no handshake.
    let (code, out, _) = curl(
        &d,
        Some(&ca),
        &["--tls-max", "1.1", "-w", "%{http_code}"],
        "/readyz",
    );
    assert_ne!(code, 0, "TLS 1.1 was served: {out}");
    // Cleartext HTTP to the HTTPS port gets no HTTP answer, and the log says why.
    let mut plain = std::net::TcpStream::connect(&d.addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: hookd\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(!answer.starts_with(b"HTTP/"), "{answer:?}");
    d.wait_log("TLS handshake failed");
    let (code, _, _) = d.terminate();
    assert_eq!(code, 0);
}

#[test]
#[ignore = "needs curl (apt-get install curl); CI runs it"]
fn client_certificates_are_required_when_a_client_ca_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"), "hookd");
    let clients = Pki::new(&dir.path().join("pki"), "clients");
    let strangers = Pki::new(&dir.path().join("pki"), "strangers");
    let alice = clients.issue("alice", &["alice"], (2020, 2100));
    let mallory = strangers.issue("mallory", &["mallory"], (2020, 2100));
    let d = https_daemon(
        dir.path(),
        &pki.server("server"),
        Some(&clients.ca_file("clients")),
    );
    let ca = pki.ca_file("hookd");
    let auth = format!("Authorization: Bearer {ADMIN_TOKEN}");
    // The probes answer anyone.
    for probe in ["/healthz", "/readyz"] {
        let (_, out, err) = curl(&d, Some(&ca), &STATUS, probe);
        assert!(out.starts_with("200 "), "{probe}: {out} {err}");
    }
    // Everything else wants the certificate, token or not.
    for path in [ENDPOINTS, "/metrics", "/console/"] {
        let (code, out, err) = curl(&d, Some(&ca), &["-H", &auth], path);
        assert_eq!(code, 0, "{err}");
        let problem: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(problem["status"], 403, "{path}: {out}");
        assert_eq!(
            problem["type"], "urn:hookd:problem:client-certificate-required",
            "{path}: {out}"
        );
    }
    let (alice_cert, alice_key) = (
        alice.cert.to_str().unwrap().to_owned(),
        alice.key.to_str().unwrap().to_owned(),
    );
    let mut with_alice = STATUS.to_vec();
    with_alice.extend(["-H", &auth, "--cert", &alice_cert, "--key", &alice_key]);
    let (_, out, err) = curl(&d, Some(&ca), &with_alice, ENDPOINTS);
    assert!(out.starts_with("200 "), "{out} {err}");
    // A certificate of another CA ends the handshake.
    let (mallory_cert, mallory_key) = (
        mallory.cert.to_str().unwrap().to_owned(),
        mallory.key.to_str().unwrap().to_owned(),
    );
    let mut with_mallory = STATUS.to_vec();
    with_mallory.extend(["--cert", &mallory_cert, "--key", &mallory_key]);
    let (code, out, _) = curl(&d, Some(&ca), &with_mallory, "/healthz");
    assert_ne!(code, 0, "a stranger's certificate was accepted: {out}");
    // `hookd backup` over HTTPS: --cacert for the private CA, --cert and --key for the listener.
    let url = format!("https://{}", d.addr);
    let to = dir.path().join("hookd.hookdbak");
    let backup = |extra: &[&Path]| {
        let mut cmd = daemon::hookd(dir.path());
        cmd.args(["backup", "--url", &url, "--to"])
            .arg(&to)
            .env("HOOKD_TOKEN", ADMIN_TOKEN);
        for (flag, file) in ["--cacert", "--cert", "--key"].iter().zip(extra) {
            cmd.arg(flag).arg(file);
        }
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, said) = backup(&[]);
    assert!(!ok && said.contains("UnknownIssuer"), "no --cacert: {said}");
    let (ok, said) = backup(&[&ca]);
    assert!(
        !ok && said.contains("client-certificate-required"),
        "no --cert: {said}"
    );
    let (ok, said) = backup(&[&ca, &alice.cert, &alice.key]);
    assert!(ok && to.exists(), "{said}");
    let (code, _, _) = d.terminate();
    assert_eq!(code, 0);
}

/// A certificate hookd cannot serve stops `serve` before the store is opened, and `config
/// check` says the same.
#[test]
fn a_certificate_that_cannot_be_served_is_refused_at_start() {
    let top = tempfile::tempdir().unwrap();
    let pki = Pki::new(&top.path().join("pki"), "hookd");
    let good = pki.server("server");
    let other = pki.server("other");
    let expired = pki.issue("expired", &[HOST], (2000, 2001));
    let early = pki.issue("early", &[HOST], (2090, 2100));
    let garbage = top.path().join("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    let missing = top.path().join("missing.pem");
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    // (case, the HOOKD_TLS__<KEY>_FILE variables set, what both commands must say)
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "expired",
            vec![("CERT", path(&expired.cert)), ("KEY", path(&expired.key))],
            "the certificate has expired (valid from 2000-01-01T00:00:00",
        ),
        (
            "not yet valid",
            vec![("CERT", path(&early.cert)), ("KEY", path(&early.key))],
            "the certificate is not valid yet",
        ),
        (
            "another certificate's key",
            vec![("CERT", path(&good.cert)), ("KEY", path(&other.key))],
            "the private key does not belong to the (first, leaf) certificate",
        ),
        (
            "missing file",
            vec![("CERT", path(&missing)), ("KEY", path(&good.key))],
            "tls.cert_file",
        ),
        (
            "no key file",
            vec![("CERT", path(&good.cert))],
            "tls.key_file: must be set with tls.cert_file and tls.key_file both",
        ),
        (
            "bad client CA",
            vec![
                ("CERT", path(&good.cert)),
                ("KEY", path(&good.key)),
                ("CLIENT_CA", path(&garbage)),
            ],
            "tls.client_ca_file",
        ),
    ];
    for (case, vars, expect) in cases {
        let dir = tempfile::tempdir().unwrap();
        let set = |mut cmd: Command| {
            for (key, value) in &vars {
                cmd.env(format!("HOOKD_TLS__{key}_FILE"), value);
            }
            cmd.stdout(Stdio::null()).stderr(Stdio::piped());
            cmd
        };
        let mut check = daemon::hookd(dir.path());
        check.args(["config", "check"]);
        let out = set(check).output().unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{case}: config check passed");
        assert!(said.contains(expect), "{case}: config check said {said}");
        let mut child = set(daemon::serve(dir.path())).spawn().unwrap();
        let code = daemon::wait_exit(&mut child, Duration::from_secs(20));
        let mut said = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut said)
            .unwrap();
        assert_ne!(code, 0, "{case}: serve started");
        assert!(said.contains(expect), "{case}: serve said {said}");
        assert!(
            !dir.path().join("data/hookd.redb").exists(),
            "{case}: the store was created before the certificate was checked"
        );
    }
}

/// One HTTPS request on a new connection: the status and the certificate the server showed.
fn get(
    addr: &str,
    client: &Arc<rustls::ClientConfig>,
    path: &str,
) -> Result<(u16, Vec<u8>), String> {
    let mut socket = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from(HOST).unwrap();
    let mut conn =
        rustls::ClientConnection::new(client.clone(), name).map_err(|e| e.to_string())?;
    let mut tls = rustls::Stream::new(&mut conn, &mut socket);
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nhost: {HOST}\r\nconnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    if let Err(e) = tls.read_to_end(&mut answer) {
        if answer.is_empty() {
            return Err(e.to_string());
        }
    }
    let status = std::str::from_utf8(answer.get(9..12).unwrap_or_default())
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not HTTP: {:?}", String::from_utf8_lossy(&answer)))?;
    let leaf = conn.peer_certificates().unwrap()[0].to_vec();
    Ok((status, leaf))
}

/// Certificates renewed in place are served to new connections after `kill -HUP`, with no
/// request failing meanwhile; a broken renewal leaves the running certificate in place.
#[test]
fn a_renewed_certificate_applies_on_sighup_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"), "hookd");
    let (first, second) = (pki.server("first"), pki.server("second"));
    let live = Issued {
        cert: dir.path().join("live.pem"),
        key: dir.path().join("live.key"),
        der: Vec::new(),
    };
    // As certbot does: new files written beside, then renamed into place.
    let install = |from: &Issued| {
        for (src, dst) in [(&from.key, &live.key), (&from.cert, &live.cert)] {
            let tmp = dst.with_extension("new");
            std::fs::copy(src, &tmp).unwrap();
            std::fs::rename(&tmp, dst).unwrap();
        }
    };
    install(&first);
    let mut d = https_daemon(dir.path(), &live, None);
    let client = pki.client(None);
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::<(bool, Result<u16, String>)>::new()));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (addr, client, stop, seen) =
                (d.addr.clone(), client.clone(), stop.clone(), seen.clone());
            let second = second.der.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let got = get(&addr, &client, "/healthz");
                    let renewed = got.as_ref().is_ok_and(|(_, leaf)| *leaf == second);
                    seen.lock().unwrap().push((renewed, got.map(|(s, _)| s)));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    install(&second);
    d.signal("HUP");
    d.wait_log("TLS certificate was read again");
    std::thread::sleep(Duration::from_millis(300));
    let after = seen.lock().unwrap().len();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    let seen = seen.lock().unwrap();
    let failed: Vec<_> = seen.iter().filter(|(_, r)| *r != Ok(200)).collect();
    assert!(
        failed.is_empty(),
        "requests failed during the renewal: {failed:?}"
    );
    assert!(
        seen.iter().any(|(renewed, _)| !renewed),
        "the first certificate was served"
    );
    assert!(
        seen[after..].iter().all(|(renewed, _)| *renewed),
        "connections after the reload got the renewed certificate"
    );
    eprintln!(
        "renewal under load: {} requests, {} after the reload, none failed",
        seen.len(),
        seen.len() - after
    );
    // A renewal that is broken: refused, said why, the renewed certificate stays.
    std::fs::write(&live.cert, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    d.signal("HUP");
    d.wait_log("reload refused");
    let refusal = d
        .stderr_lines
        .iter()
        .find(|l| l.contains("reload refused"))
        .unwrap();
    assert!(refusal.contains("tls.cert_file"), "{refusal}");
    let (status, leaf) = get(&d.addr, &client, "/healthz").unwrap();
    assert_eq!((status, leaf == second.der), (200, true));
    let (code, _, _) = d.terminate();
    assert_eq!(code, 0);
}
