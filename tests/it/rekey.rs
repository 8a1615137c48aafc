//! `hookd rekey`: the master key rotated offline. Every sealed value (current and previous
//! signing secrets, header values, PagerDuty's routing key) is re-sealed, tokens keep working
//! (their lookup key moves with the store), the old key no longer opens the store, and an
//! interrupted rotation is finished by running the command again.

use std::path::Path;

use base64::Engine as _;
use hyper::StatusCode;
use serde_json::json;

use crate::common::receiver::Receiver;
use crate::common::{daemon, TestServer, ENDPOINTS};

const FAST: &str = "[url_policy]\nallow_networks = [\"127.0.0.0/8\"]\n[delivery]\nretry_schedule_secs = [1, 1, 1]\njitter_percent = 0\npoll_interval_ms = 50\n";
const NEW_SECRET: &str = "C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// `hookd rekey --data-dir DIR` on a store no hookd runs on: (success, stdout, stderr). The
/// store's file lock goes with the stopped server's last handle, which can trail the stop
/// slightly: a refusal for that is retried for up to two seconds.
fn rekey(dir: &Path) -> (bool, String, String) {
    for _ in 0..100 {
        let run = rekey_once(dir);
        if run.0 || !run.2.contains("stop it first") {
            return run;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    rekey_once(dir)
}

fn rekey_once(dir: &Path) -> (bool, String, String) {
    let out = daemon::hookd(dir)
        .arg("rekey")
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn key_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("master.key"))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn rekey_reseals_everything_and_tokens_keep_working() {
    let rx = Receiver::start().await;
    let s = TestServer::start_with(FAST).await;
    let body = json!({"name": "a", "url": rx.url("/a"), "signingEnabled": true,
                      "signingSecret": "my-secret-key", "headers": {"X-Api-Key": "k-0123456789ab"}});
    let r = s.req("POST", ENDPOINTS).json(&body).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let a = r.json()["endpoint"]["id"].as_str().unwrap().to_owned();
    let r = s
        .req("POST", &format!("{ENDPOINTS}/{a}/rotate-secret"))
        .json(&json!({"signingSecret": format!("whsec_{NEW_SECRET}")}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let body = json!({"name": "pd", "url": rx.url("/pd"), "signingEnabled": true, "signingSecret": "",
                      "format": "pagerduty",
                      "formatOptions": {"routingKey": "R0123456789abcdef0123456789abcdef"}});
    let r = s.req("POST", ENDPOINTS).json(&body).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let reader = s.token("reader", &["endpoints:read"]).await;
    let dir = s.dir.clone();
    let old_key = std::fs::read_to_string(dir.path().join("master.key")).unwrap();

    // Refused while hookd holds the store.
    let (ok, _, said) = rekey_once(dir.path());
    assert!(!ok && said.contains("stop it first"), "{said}");
    s.stop().await;

    let (ok, out, said) = rekey(dir.path());
    assert!(ok, "{said}");
    // a: the secret, the previous one and a header value; pd: its secret and routing key.
    assert!(
        out.contains("2 endpoint(s), 5 sealed value(s) re-sealed under the new key and verified"),
        "{out}"
    );
    let files = key_files(dir.path());
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files[1].starts_with("master.key.old-"), "{files:?}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join(&files[1])).unwrap(),
        old_key
    );
    assert_ne!(
        std::fs::read_to_string(dir.path().join("master.key")).unwrap(),
        old_key
    );
    assert!(said.contains("backups taken before now need it"), "{said}");

    // The old key no longer opens the store.
    let with_old = format!("master_key = \"{}\"\n{FAST}", old_key.trim());
    let refused = crate::common::start_app(crate::common::config(dir.path(), &with_old))
        .await
        .err()
        .expect("the old key is refused")
        .to_string();
    assert!(refused.contains("is not the key"), "{refused}");

    // With the new key: the tokens authenticate, and every secret still opens.
    let s = TestServer::start_in(dir.clone(), FAST).await;
    let r = s.req("GET", ENDPOINTS).token(&reader).send().await;
    assert_eq!(r.status, StatusCode::OK, "the token made before the rekey");
    s.alert().await;
    let got = rx.wait_for(2, 10).await;
    let sent = got.iter().find(|r| r.path == "/a").unwrap();
    assert_eq!(sent.header("x-api-key"), "k-0123456789ab");
    let new_key = base64::engine::general_purpose::STANDARD
        .decode(NEW_SECRET)
        .unwrap();
    assert_eq!(sent.signatures_by(&new_key), 1);
    assert_eq!(
        sent.signatures_by(b"my-secret-key"),
        1,
        "the previous secret"
    );
    let pd = got.iter().find(|r| r.path == "/pd").unwrap().json();
    assert_eq!(pd["routing_key"], "R0123456789abcdef0123456789abcdef");
    s.stop().await;

    // Interrupted after the re-sealing committed, before the key file was replaced: the store
    // opens only with master.key.new. hookd says so, and a second rekey finishes.
    let (ok, _, said) = rekey(dir.path());
    assert!(ok, "{said}");
    let current = std::fs::read_to_string(dir.path().join("master.key")).unwrap();
    let newest_old = key_files(dir.path()).pop().unwrap();
    std::fs::write(dir.path().join("master.key.new"), &current).unwrap();
    std::fs::copy(dir.path().join(&newest_old), dir.path().join("master.key")).unwrap();
    let refused = crate::common::start_app(crate::common::config(dir.path(), FAST))
        .await
        .err()
        .expect("the store is under master.key.new")
        .to_string();
    assert!(
        refused.contains("a `hookd rekey` was interrupted, run it again to finish"),
        "{refused}"
    );
    let (ok, out, said) = rekey(dir.path());
    assert!(
        ok && out.contains("(an interrupted rekey, finished)"),
        "{out} {said}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("master.key")).unwrap(),
        current
    );
    assert!(!dir.path().join("master.key.new").exists());
    let s = TestServer::start_in(dir.clone(), FAST).await;
    let r = s.req("GET", ENDPOINTS).token(&reader).send().await;
    assert_eq!(r.status, StatusCode::OK);
    s.stop().await;
}
