//! The console: its files and headers over HTTP, `[console] enabled = false`, and the whole
//! console in a real browser (Debian's chromium, driven by Playwright for Python:
//! `tests/console_test.py`), against this hookd and a local receiver.
use crate::common;

use crate::common::plugins::transformer_toml;
use crate::common::receiver::Receiver;
use crate::common::TestServer;
use hyper::StatusCode;

#[tokio::test]
async fn the_console_is_served_with_its_security_headers_and_revalidated() {
    let s = TestServer::start().await;
    let r = s.req("GET", "/console/").no_auth().send().await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), "text/html; charset=utf-8");
    let csp = r.header("content-security-policy");
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-"));
    assert_eq!(r.header("x-content-type-options"), "nosniff");
    assert_eq!(r.header("referrer-policy"), "no-referrer");
    assert_eq!(r.header("cache-control"), "no-cache");
    let tag = r.header("etag").to_owned();
    let again = s
        .req("GET", "/console/")
        .no_auth()
        .header("if-none-match", &tag)
        .send()
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), tag);
    for (file, kind) in [
        ("app.js", "text/javascript"),
        ("dom.js", "text/javascript"),
        ("options.js", "text/javascript"),
        ("lib.js", "text/javascript"),
        ("app.css", "text/css"),
    ] {
        let r = s
            .req("GET", &format!("/console/{file}"))
            .no_auth()
            .send()
            .await;
        assert_eq!(r.status, StatusCode::OK, "{file}");
        assert!(r.header("content-type").starts_with(kind), "{file}");
        assert_eq!(r.header("x-content-type-options"), "nosniff");
    }
    let head = s.req("HEAD", "/console/app.js").no_auth().send().await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    let r = s.req("GET", "/console").no_auth().send().await;
    assert_eq!(r.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(r.header("location"), "/console/");
    for path in [
        "/console/nope.js",
        "/console/.env",
        "/console/app.js/",
        "/console/%2e%2e/Cargo.toml",
    ] {
        s.req("GET", path).no_auth().send().await.problem(404);
    }
    let r = s.req("POST", "/console/").no_auth().send().await;
    r.problem(405);
    assert_eq!(r.header("allow"), "GET, HEAD");
    s.stop().await;

    let off = TestServer::start_with("[console]\nenabled = false\n").await;
    for path in ["/console/", "/console/app.js", "/console"] {
        let r = off.req("GET", path).no_auth().send().await;
        assert!(r.problem(404)["detail"]
            .as_str()
            .unwrap()
            .contains("console"));
    }
    off.stop().await;
}

/// The console's list of formats is the server's built-in formats.
#[tokio::test]
async fn the_consoles_formats_are_the_servers() {
    let s = TestServer::start().await;
    let js = s
        .req("GET", "/console/options.js")
        .no_auth()
        .send()
        .await
        .text();
    let line = js
        .lines()
        .find(|l| l.starts_with("export const FORMATS = ["))
        .expect("options.js lists FORMATS");
    let names: Vec<String> = hookd::model::Format::ALL
        .iter()
        .map(|f| format!("\"{}\"", f.as_str()))
        .collect();
    assert_eq!(
        line,
        format!("export const FORMATS = [{}];", names.join(", "))
    );
    s.stop().await;
}

/// Everything a person does in the console, at 1280 px and 360 px, in Chromium, over HTTPS
/// (a private CA's certificate; Chromium accepts that certificate's key).
#[tokio::test]
#[ignore = "needs Debian's chromium and Python's playwright (apt-get install chromium; pip install playwright); CI runs it"]
async fn the_console_in_a_real_browser() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let plugin = root.join("plugins/host_allowlist.wasm");
    let ntfy = root.join("plugins/ntfy.wasm");
    assert!(
        plugin.exists() && ntfy.exists(),
        "the plugins are not built: run `bash plugins/build.sh`"
    );
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "needs Debian's chromium: apt-get install chromium"
    );
    let rx = Receiver::start().await;
    let config = format!(
        "[url_policy]\nallow_networks = [\"127.0.0.0/8\"]\n\
         [delivery]\nretry_schedule_secs = []\npoll_interval_ms = 50\n\
         [delivery.hosts]\n\"hooks.slack.com\" = \"127.0.0.1\"\n\
         [[plugins]]\nname = \"hosts\"\npath = \"{}\"\nsettings = \"hooks.slack.com, 127.0.0.1\"\n{}",
        plugin.display(),
        transformer_toml("ntfy", &ntfy, "topic=console")
    );
    let certs = tempfile::tempdir().unwrap();
    let pki = common::pki::Pki::new(certs.path(), "hookd");
    let server = pki.server("server");
    let tls = common::pki::tls_toml(&server, None);
    let s = TestServer::start_with(&format!("{config}{tls}")).await;
    let shots = root.join("target/console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let base = format!("https://{}", s.addr);
    let tls_files = [server.cert.clone(), pki.ca_file("hookd")];
    let receiver = rx.url("/console-receiver");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(root.join("tests/console_test.py"))
            .args([base.as_str(), common::ADMIN_TOKEN, receiver.as_str()])
            .arg(&shots)
            .args(&tls_files)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "console test failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("\"ok\": true"), "{stdout}");
    assert!(
        rx.count() >= 2,
        "a test send at each width reached the receiver"
    );
    // The endpoint with options got its headers' real values, never their masks: the first from
    // create, the second after an edit that typed it again.
    let options: Vec<_> = rx
        .received
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.path == "/console-receiver/options")
        .map(|r| r.header("x-api-key"))
        .collect();
    assert_eq!(
        options,
        ["k-0123456789ab", "k-new-0123456789"].repeat(2),
        "the test sends of the endpoint with options, at each width"
    );
    for screen in [
        "signin",
        "endpoints",
        "endpoint",
        "create-options",
        "endpoint-options",
        "endpoint-errors",
        "tokens",
    ] {
        for width in [360, 1280] {
            let file = root.join(format!("target/console-screenshots/{screen}-{width}.png"));
            assert!(
                std::fs::metadata(&file).is_ok_and(|m| m.len() > 1000),
                "{}",
                file.display()
            );
        }
    }
    s.stop().await;
}
