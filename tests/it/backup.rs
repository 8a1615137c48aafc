//! Online backup over HTTP while writes go on, and offline restore: what a restored store
//! serves, and what restore refuses.
use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::common::receiver::Receiver;
use crate::common::{TestServer, ENDPOINTS};
use hookd::store::backup::{restore, RestoreError};
use hyper::StatusCode;
use serde_json::json;

const PENDING: &str = "[url_policy]\nallow_networks = [\"127.0.0.0/8\"]\n[delivery]\nretry_schedule_secs = [3600]\npoll_interval_ms = 50\n";

async fn take_backup(s: &TestServer, dir: &std::path::Path) -> std::path::PathBuf {
    let r = s.req("GET", "/api/v1/admin/backup").send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("content-type"), "application/octet-stream");
    assert!(
        r.header("content-disposition")
            .starts_with("attachment; filename=\"hookd-backup-"),
        "{}",
        r.header("content-disposition")
    );
    assert!(r.body.starts_with(b"HOOKDBK1"));
    let path = dir.join("store.hookdbak");
    std::fs::write(&path, &r.body).unwrap();
    path
}

/// A backup taken while creates go on restores into a store that holds every endpoint
/// acknowledged before the backup began, the tokens, and the pending deliveries; with the
/// same master key it starts, with another it refuses.
#[tokio::test]
async fn a_backup_under_load_restores_everything_acknowledged_before_it() {
    let failing = Receiver::start().await;
    failing.script((0..10).map(|_| (503, vec![])).collect());
    let s = TestServer::start_with(PENDING).await;
    let reader = s.token("reader", &["endpoints:read"]).await;
    let body = json!({"name": "pending", "url": failing.url("/p"), "signingEnabled": true, "signingSecret": ""});
    let r = s.req("POST", ENDPOINTS).json(&body).send().await;
    let pending_ep = r.json()["endpoint"]["id"].as_str().unwrap().to_owned();
    let r = s
        .req("POST", "/api/v1/alerting/alerts")
        .json(&json!({"eventType": "a", "payload": {}}))
        .send()
        .await;
    let message = r.json()["messageId"].as_str().unwrap().to_owned();
    failing.wait_for(1, 10).await;
    let r = s.req("POST", ENDPOINTS).json(&body).send().await;
    let off = r.json()["endpoint"]["id"].as_str().unwrap().to_owned();
    s.req("PATCH", &format!("{ENDPOINTS}/{off}"))
        .json(&json!({"disabled": true}))
        .send()
        .await;
    let stats = s.app.store.stats().await.unwrap();
    assert_eq!(stats.disabled_endpoints, 1);
    assert!(stats.oldest_pending_ms.is_some());

    // Creates keep coming while the backup is taken.
    let acked: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (acked, stop, addr) = (acked.clone(), stop.clone(), s.addr);
        writers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let body = json!({"name": format!("w{w}-{i}"), "url": "https://a.example/", "signingEnabled": true, "signingSecret": ""});
                let r = common::raw_req(addr, "POST", ENDPOINTS).json(&body).send().await;
                assert_eq!(r.status, StatusCode::OK);
                let id = r.json()["endpoint"]["id"].as_str().unwrap().to_owned();
                acked.lock().unwrap().push((id, Instant::now()));
                i += 1;
            }
        }));
    }
    common::eventually(10, "creates under way", || acked.lock().unwrap().len() > 50).await;
    let top = tempfile::tempdir().unwrap();
    let began = Instant::now();
    let file = take_backup(&s, top.path()).await;
    common::eventually(10, "creates after the backup", || {
        acked.lock().unwrap().iter().any(|(_, at)| *at > began)
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let old_dir = s.dir.clone();
    let key_file = old_dir.path().join("master.key");
    s.stop().await;

    let restored = Arc::new(tempfile::tempdir().unwrap());
    let summary = restore(&file, restored.path(), false).unwrap();
    assert!(summary.records > 50, "{summary:?}");
    std::fs::copy(&key_file, restored.path().join("master.key")).unwrap();
    let s = TestServer::start_in(restored.clone(), PENDING).await;
    let before: Vec<String> = acked
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, at)| *at < began)
        .map(|(id, _)| id.clone())
        .collect();
    assert!(before.len() > 50);
    for id in &before {
        let r = s
            .req("GET", &format!("{ENDPOINTS}/{id}"))
            .token(&reader)
            .send()
            .await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{id} was acknowledged before the backup"
        );
    }
    // The indexes came along too (a disabled endpoint, the oldest pending message).
    let restored_stats = s.app.store.stats().await.unwrap();
    assert_eq!(restored_stats.disabled_endpoints, 1);
    assert_eq!(restored_stats.oldest_pending_ms, stats.oldest_pending_ms);
    // The pending delivery came along, and is delivered by the restored store.
    let key = hookd::model::Delivery::key(&message, &pending_ep);
    let (d, _, _) = s.app.store.delivery(&key).await.unwrap().unwrap();
    assert_eq!(d.state, hookd::model::DeliveryState::Pending);
    s.stop().await;

    // Another master key: the restored store refuses to start, as any store does.
    let other = common::config(
        restored.path(),
        "master_key = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"\n",
    );
    let err = common::start_app(other).await.err().expect("refused");
    assert!(err.to_string().contains("master key"), "{err}");
}

#[tokio::test]
async fn the_backup_needs_the_admin_scope() {
    let s = TestServer::start().await;
    let writer = s
        .token("w", &["endpoints:write", "endpoints:read", "alerts:write"])
        .await;
    let r = s
        .req("GET", "/api/v1/admin/backup")
        .token(&writer)
        .send()
        .await;
    assert_eq!(
        r.problem(403)["detail"],
        "this token lacks the 'admin' scope"
    );
    s.req("GET", "/api/v1/admin/backup")
        .no_auth()
        .send()
        .await
        .problem(401);
    let r = s.req("POST", "/api/v1/admin/backup").send().await;
    r.problem(405);
    assert_eq!(r.header("allow"), "GET, HEAD");
    s.stop().await;
}

#[tokio::test]
async fn restore_refuses_damaged_files_and_occupied_directories() {
    let s = TestServer::start().await;
    s.create("one", "").await;
    let top = tempfile::tempdir().unwrap();
    let file = take_backup(&s, top.path()).await;
    s.stop().await;
    let good = std::fs::read(&file).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = top.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let empty = tempfile::tempdir().unwrap();
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    for (name, bytes, expect) in [
        ("flipped", flipped, "checksum"),
        ("cut", good[..good.len() - 40].to_vec(), "damaged"),
        (
            "nonsense",
            b"this is not a backup at all, not even close".to_vec(),
            "not a hookd backup",
        ),
        ("empty", Vec::new(), "not a hookd backup"),
    ] {
        let err = restore(&write(name, &bytes), empty.path(), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains(expect), "{name}: {err}");
        assert_eq!(
            std::fs::read_dir(empty.path()).unwrap().count(),
            0,
            "{name}: nothing is written"
        );
    }
    // Hostile files: a valid format and checksum (the checksum is unkeyed, so anyone can make
    // one) around records the store cannot read. Each used to panic inside redb, leaving
    // hookd.redb.restoring behind, or (JSON that is no endpoint) to restore with success.
    let hostile = |table: u8, key: &[u8], value: &[u8]| {
        let mut w = hookd::backup_format::Writer::start(Vec::new(), 3, 0).unwrap();
        w.frame(4, b"schema_version", &[3]).unwrap();
        w.frame(table, key, value).unwrap();
        w.finish().unwrap().1
    };
    for (name, bytes, expect) in [
        (
            "non-utf8-key",
            hostile(1, b"\xff\xfewh", b"\x01{}"),
            "not UTF-8",
        ),
        ("empty-tuple-key", hostile(9, b"", b""), "cut-off length"),
        ("short-tuple-key", hostile(17, &[9, b'w'], b""), "shorter"),
        (
            "not-an-endpoint",
            hostile(1, b"wh-1", b"\x01{\"surprise\":true}"),
            "not a valid Endpoint",
        ),
        ("bad-count", hostile(14, b"wh-1", b"\x01\x02"), "not 8"),
    ] {
        let err = restore(&write(name, &bytes), empty.path(), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is damaged"), "{name}: {err}");
        assert!(err.contains(expect), "{name}: {err}");
        assert_eq!(
            std::fs::read_dir(empty.path()).unwrap().count(),
            0,
            "{name}: nothing is left behind"
        );
    }
    // And the directory takes a good backup after them, without --force.
    restore(&file, empty.path(), false).unwrap();
    // A directory with anything in it is refused, unless --force.
    let occupied = tempfile::tempdir().unwrap();
    std::fs::write(occupied.path().join("master.key"), "x").unwrap();
    let err = restore(&file, occupied.path(), false).unwrap_err();
    assert!(matches!(err, RestoreError::NotEmpty { .. }), "{err}");
    assert!(err.to_string().contains("master.key"), "{err}");
    restore(&file, occupied.path(), true).unwrap();
    assert!(occupied.path().join("hookd.redb").exists());
    assert_eq!(
        std::fs::read_to_string(occupied.path().join("master.key")).unwrap(),
        "x",
        "the master key file stays"
    );
}

/// A backup made before schema 3 (no index of given-up deliveries; no disabled or pending
/// indexes, which schema 2's backups left out) restores, and is migrated as it loads: its
/// disabled endpoint counts, and what gave up before the backup can be recovered.
#[tokio::test]
async fn a_schema_2_backup_restores_and_is_migrated() {
    use hookd::backup_format::{Frame, Reader, Writer};
    let rx = Receiver::start().await;
    rx.script(vec![(500, vec![])]);
    let once = PENDING.replace("[3600]", "[]");
    let s = TestServer::start_with(&once).await;
    let body =
        json!({"name": "e", "url": rx.url("/e"), "signingEnabled": true, "signingSecret": ""});
    let r = s.req("POST", ENDPOINTS).json(&body).send().await;
    let id = r.json()["endpoint"]["id"].as_str().unwrap().to_owned();
    let r = s.req("POST", ENDPOINTS).json(&body).send().await;
    let off = r.json()["endpoint"]["id"].as_str().unwrap().to_owned();
    s.req("PATCH", &format!("{ENDPOINTS}/{off}"))
        .json(&json!({"disabled": true}))
        .send()
        .await;
    s.req("POST", "/api/v1/alerting/alerts")
        .json(&json!({"eventType": "a", "payload": {}}))
        .send()
        .await;
    let store = &s.app.store;
    common::eventually_async(10, "the delivery gave up", move || async move {
        store.stats().await.unwrap().ended_messages == 1
    })
    .await;
    let top = tempfile::tempdir().unwrap();
    let file = take_backup(&s, top.path()).await;
    let key_file = s.dir.path().join("master.key");
    let key = std::fs::read(&key_file).unwrap();
    s.stop().await;

    // Rewrite it as schema 2 wrote backups.
    let bytes = std::fs::read(&file).unwrap();
    let (mut frames, header) = Reader::open(bytes.as_slice(), 3).unwrap();
    let mut w = Writer::start(Vec::new(), 2, header.created_at_ms).unwrap();
    while let Frame::Record {
        table,
        key,
        mut value,
    } = frames.next_frame().unwrap()
    {
        match table {
            15..=17 => continue,
            4 if key == b"schema_version" => value = vec![2],
            8 => {
                let mut record: serde_json::Value = serde_json::from_slice(&value[1..]).unwrap();
                record.as_object_mut().unwrap().remove("failed_at_ms");
                value = [vec![1u8], serde_json::to_vec(&record).unwrap()].concat();
            }
            _ => {}
        }
        w.frame(table, &key, &value).unwrap();
    }
    let old = top.path().join("schema2.hookdbak");
    std::fs::write(&old, w.finish().unwrap().1).unwrap();

    let restored = Arc::new(tempfile::tempdir().unwrap());
    restore(&old, restored.path(), false).unwrap();
    std::fs::write(restored.path().join("master.key"), key).unwrap();
    let s = TestServer::start_in(restored.clone(), &once).await;
    assert_eq!(s.app.store.stats().await.unwrap().disabled_endpoints, 1);
    let r = s
        .req("POST", &format!("{ENDPOINTS}/{id}/recover"))
        .json(&json!({"since": "2020-01-01T00:00:00Z"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert_eq!(r.json()["deliveries"], 1);
    rx.wait_for(2, 10).await;
    s.stop().await;
}
