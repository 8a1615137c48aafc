//! A full data volume, for real: the data directory is a small tmpfs (so these tests need root,
//! as CI has). The whole cycle: 507 with `Retry-After` before the disk is full (headroom) and
//! when it is full (an I/O error), `/readyz` 503 while writes are impossible, space freed, writes
//! again without a restart, and every acknowledged record still there after a restart.
use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use crate::common::{eventually_async, TestServer, ENDPOINTS};
use hyper::StatusCode;
use serde_json::json;

/// Mounts a tmpfs of `mib` MiB on `dir` for the guard's life.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, mib: u32) -> Self {
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mib}m,mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mounting a tmpfs needs root (CI runs as root)");
        Self(dir.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily: a store file a failed test left open must not keep the mount.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the volume with a ballast file until `leave` bytes are free.
fn ballast(s: &TestServer, leave: u64) -> PathBuf {
    let free = s.app.store.free_bytes().unwrap();
    let path = s.dir.path().join("ballast");
    let size = free.saturating_sub(leave);
    std::fs::write(&path, vec![0u8; usize::try_from(size).unwrap()]).unwrap();
    path
}

/// An alert of about 60 KB.
fn big_alert() -> serde_json::Value {
    json!({"eventType": "alert.firing", "payload": {"blob": "x".repeat(60_000)}})
}

/// Posts a big alert; a 503 while the store reopens after an I/O error (a moment in which
/// even the token lookup cannot read) is retried, as a client honouring Retry-After would.
async fn post_alert(s: &TestServer) -> common::Resp {
    for _ in 0..200 {
        let r = s
            .req("POST", "/api/v1/alerting/alerts")
            .json(&big_alert())
            .send()
            .await;
        if r.status != StatusCode::SERVICE_UNAVAILABLE {
            return r;
        }
        assert!(r.text().contains("reopening"), "{}", r.text());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the store stays unavailable");
}

/// Posts big alerts until one is refused; returns the acknowledged message ids and the refusal.
async fn fill(s: &TestServer) -> (Vec<String>, common::Resp) {
    let mut acked = Vec::new();
    for _ in 0..2000 {
        let r = post_alert(s).await;
        if r.status != StatusCode::ACCEPTED {
            return (acked, r);
        }
        acked.push(r.json()["messageId"].as_str().unwrap().to_owned());
    }
    panic!("the volume never filled");
}

fn assert_507(r: &common::Resp, dir: &Path) {
    let p = r.problem(507);
    assert_eq!(p["type"], "urn:hookd:problem:insufficient-storage");
    assert!(!r.header("retry-after").is_empty(), "Retry-After");
    let detail = p["detail"].as_str().unwrap();
    assert!(detail.contains(&dir.display().to_string()), "{detail}");
}

/// `/readyz` as a caller with a token sees it (the reason, with the data directory and its
/// free bytes); a probe without one gets the same status and no detail.
async fn readyz(s: &TestServer) -> (StatusCode, String) {
    let anonymous = s.req("GET", "/readyz").no_auth().send().await;
    let r = s.req("GET", "/readyz").send().await;
    assert_eq!(anonymous.status, r.status);
    if r.status != StatusCode::OK {
        let shown = anonymous.text();
        assert!(
            !shown.contains(&s.dir.path().display().to_string()) && !shown.contains("bytes"),
            "{shown}"
        );
        assert!(shown.contains("not ready"), "{shown}");
    }
    (r.status, r.text())
}

#[tokio::test]
#[ignore = "needs root: mounts a tmpfs for the data directory (CI runs it)"]
async fn headroom_refuses_new_work_before_the_disk_is_full() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let _tmpfs = Tmpfs::mount(dir.path(), 48);
    let s = TestServer::start_in(dir.clone(), "[store]\nmin_free_bytes = 8388608\n").await;
    let spare = s.create("spare", "").await["endpoint"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ballast = ballast(&s, 14 << 20);
    let (acked, refused) = fill(&s).await;
    assert!(!acked.is_empty());
    assert_507(&refused, dir.path());
    // It says which of the two it is: under the headroom, not full.
    assert!(
        refused.text().contains("under store.min_free_bytes")
            && !refused.text().contains("is full"),
        "{}",
        refused.text()
    );
    let (status, body) = readyz(&s).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("min_free_bytes"), "{body}");
    // Creates are refused too; reads and deletes go on.
    let r = s
        .req("POST", ENDPOINTS)
        .json(&json!({"name": "n", "url": "https://a.example/", "signingEnabled": true, "signingSecret": ""}))
        .send()
        .await;
    assert_507(&r, dir.path());
    assert_eq!(s.req("GET", ENDPOINTS).send().await.status, StatusCode::OK);
    let r = s
        .req("DELETE", &format!("{ENDPOINTS}/{spare}"))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);

    std::fs::remove_file(ballast).unwrap();
    let mut ready = false;
    for _ in 0..100 {
        if readyz(&s).await.0 == StatusCode::OK {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ready, "ready again once space is back");
    let r = s
        .req("POST", "/api/v1/alerting/alerts")
        .json(&big_alert())
        .send()
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: mounts a tmpfs for the data directory (CI runs it)"]
async fn a_full_disk_recovers_without_a_restart_and_loses_nothing() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let _tmpfs = Tmpfs::mount(dir.path(), 48);
    // No headroom: the volume really fills, and redb's writes fail.
    let s = TestServer::start_in(dir.clone(), "[store]\nmin_free_bytes = 0\n").await;
    let ballast = ballast(&s, 6 << 20);
    let (mut acked, refused) = fill(&s).await;
    assert!(!acked.is_empty());
    assert_507(&refused, dir.path());
    // Reopening the store may give back what the failed write had claimed; take the rest of
    // the volume too, so it stays full.
    let top_up = dir.path().join("top-up");
    {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&top_up).unwrap();
        while f.write_all(&[0u8; 1 << 16]).is_ok() {}
    }
    let r = post_alert(&s).await;
    assert_507(&r, dir.path());
    let (status, body) = readyz(&s).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("is full"), "{body}");
    // Reads are served (the store reopened by itself), while writes wait for space.
    let (store, first) = (&s.app.store, &acked[0]);
    eventually_async(10, "reads served while full", move || async move {
        store.message(first).await.is_ok()
    })
    .await;
    assert_eq!(s.req("GET", ENDPOINTS).send().await.status, StatusCode::OK);

    std::fs::remove_file(top_up).unwrap();
    std::fs::remove_file(ballast).unwrap();
    let mut resumed = false;
    for _ in 0..200 {
        let r = post_alert(&s).await;
        if r.status == StatusCode::ACCEPTED {
            acked.push(r.json()["messageId"].as_str().unwrap().to_owned());
            resumed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        resumed,
        "writes resume once space is back, without a restart"
    );
    assert_eq!(readyz(&s).await.0, StatusCode::OK);
    s.stop().await;

    // Every acknowledged alert is still there after a restart.
    let s = TestServer::start_in(dir.clone(), "[store]\nmin_free_bytes = 0\n").await;
    for id in &acked {
        assert!(
            s.app.store.message(id).await.unwrap().is_some(),
            "acknowledged message {id} is lost"
        );
    }
    s.stop().await;
}
