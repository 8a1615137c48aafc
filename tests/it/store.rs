//! The data directory and the store file as an operator (or an attacker with a copy) sees them:
//! permissions, token hashes at rest and their migration, and damaged records.
use crate::common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::Arc;

use crate::common::receiver::Receiver;
use crate::common::{TestServer, ADMIN_TOKEN, ENDPOINTS};
use base64::Engine as _;
use hyper::StatusCode;
use redb::{ReadableDatabase as _, ReadableTable as _, TableDefinition};
use serde_json::Value;

const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens");
const TOKEN_HASHES: TableDefinition<&[u8], &str> = TableDefinition::new("token_hashes");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const ENDPOINT_RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("endpoints");

/// Loopback receivers allowed, quick retries.
const FAST: &str = "[url_policy]\nallow_networks = [\"127.0.0.0/8\"]\n[delivery]\nretry_schedule_secs = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\njitter_percent = 0\npoll_interval_ms = 50\n";

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Opens the store file directly, once the server that had it has let go of it (its file lock
/// goes with the last handle, which can trail the stop slightly).
async fn open_raw(file: &Path) -> redb::Database {
    for _ in 0..100 {
        match redb::Database::open(file) {
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            other => return other.unwrap(),
        }
    }
    panic!("{} stays open", file.display());
}

fn sha256(s: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, s.as_bytes())
        .as_ref()
        .to_vec()
}

#[tokio::test]
async fn the_data_directory_is_private_and_fixed_if_it_is_not() {
    let top = tempfile::tempdir().unwrap();
    let dir = top.path().join("data");
    let config = common::config(&dir, "");
    let started = common::start_app(config.clone()).await.unwrap();
    let store = dir.join("hookd.redb");
    let key = dir.join("master.key");
    let cache = dir.join("plugin-cache");
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&store), 0o600);
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(&cache), 0o700);
    drop(started);

    // A store someone made readable is made private again at the next start.
    for (path, loose) in [(&dir, 0o755), (&store, 0o644), (&key, 0o640)] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(loose)).unwrap();
    }
    let started = common::start_app(config).await.unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&store), 0o600);
    assert_eq!(mode(&key), 0o600);
    drop(started);
}

/// Stores made before token hashes were keyed kept each token's bare SHA-256, which lets anyone
/// with a copy test guesses at a weak bootstrap token offline. A start migrates them.
#[tokio::test]
async fn bare_sha256_token_hashes_are_migrated_to_keyed_hashes() {
    let s = TestServer::start().await;
    let reader = s.token("reader", &["endpoints:read"]).await;
    let dir = s.dir.clone();
    s.stop().await;
    let file = dir.path().join("hookd.redb");
    let raw = std::fs::read(&file).unwrap();
    for token in [ADMIN_TOKEN, reader.as_str()] {
        assert!(
            !raw.windows(32).any(|w| w == sha256(token)),
            "a fresh store holds no bare SHA-256 of a token"
        );
    }

    // Turn the store into what an older hookd wrote: bare digests, no scheme in `meta`.
    {
        let db = open_raw(&file).await;
        let txn = db.begin_write().unwrap();
        {
            let mut tokens = txn.open_table(TOKENS).unwrap();
            let mut hashes = txn.open_table(TOKEN_HASHES).unwrap();
            let mut records = Vec::new();
            for entry in tokens.iter().unwrap() {
                let (k, v) = entry.unwrap();
                let record: Value = serde_json::from_slice(&v.value()[1..]).unwrap();
                records.push((k.value().to_owned(), record));
            }
            for (id, mut record) in records {
                let name = record["name"].as_str().unwrap();
                let plaintext = if name == "reader" {
                    &reader
                } else {
                    ADMIN_TOKEN
                };
                let old = base64::engine::general_purpose::STANDARD
                    .decode(record["hash"].as_str().unwrap())
                    .unwrap();
                hashes.remove(old.as_slice()).unwrap();
                let digest = sha256(plaintext);
                hashes.insert(digest.as_slice(), id.as_str()).unwrap();
                record["hash"] = base64::engine::general_purpose::STANDARD
                    .encode(&digest)
                    .into();
                let mut bytes = vec![1u8];
                bytes.extend(serde_json::to_vec(&record).unwrap());
                tokens.insert(id.as_str(), bytes.as_slice()).unwrap();
            }
            txn.open_table(META)
                .unwrap()
                .remove("token_hash_scheme")
                .unwrap();
        }
        txn.commit().unwrap();
    }

    let s = TestServer::start_in(dir.clone(), "").await;
    assert_eq!(s.req("GET", ENDPOINTS).send().await.status, StatusCode::OK);
    let r = s.req("GET", ENDPOINTS).token(&reader).send().await;
    assert_eq!(r.status, StatusCode::OK);
    s.stop().await;
    // No live record keeps a bare digest. (Pages the migration freed are not scrubbed: they
    // may hold the old digests until redb reuses them.)
    {
        let db = open_raw(&file).await;
        let txn = db.begin_read().unwrap();
        let hashes = txn.open_table(TOKEN_HASHES).unwrap();
        let tokens = txn.open_table(TOKENS).unwrap();
        for token in [ADMIN_TOKEN, reader.as_str()] {
            assert!(hashes.get(sha256(token).as_slice()).unwrap().is_none());
            for entry in tokens.iter().unwrap() {
                let (_, v) = entry.unwrap();
                let digest = base64::engine::general_purpose::STANDARD.encode(sha256(token));
                assert!(!String::from_utf8_lossy(v.value()).contains(&digest));
            }
        }
        let meta = txn.open_table(META).unwrap();
        assert!(meta.get("token_hash_scheme").unwrap().is_some());
    }
    // And the next start has nothing left to migrate: the tokens still work.
    let s = TestServer::start_in(Arc::clone(&dir), "").await;
    let r = s.req("GET", ENDPOINTS).token(&reader).send().await;
    assert_eq!(r.status, StatusCode::OK);
    s.stop().await;
}

/// One damaged record fails only the operations that touch it: alerts still reach every other
/// endpoint, writes batched with a failing one still commit, and the damaged endpoint's pending
/// delivery is set aside instead of failing on every dispatcher pass.
#[tokio::test]
async fn a_corrupt_record_fails_only_what_touches_it() {
    let good = Receiver::start().await;
    let bad = Receiver::start().await;
    bad.script((0..20).map(|_| (503, vec![])).collect());
    let s = TestServer::start_with(FAST).await;
    let good_id = s.endpoint_to("good", &good.url("/in")).await;
    let doomed = s.endpoint_to("doomed", &bad.url("/in")).await;
    s.alert().await;
    good.wait_for(1, 10).await;
    bad.wait_for(1, 10).await;
    let dir = s.dir.clone();
    s.stop().await;
    let file = dir.path().join("hookd.redb");
    {
        let db = open_raw(&file).await;
        let txn = db.begin_write().unwrap();
        txn.open_table(ENDPOINT_RECORDS)
            .unwrap()
            .insert(doomed.as_str(), b"\x01{not json".as_slice())
            .unwrap();
        txn.commit().unwrap();
    }

    let s = TestServer::start_in(dir.clone(), FAST).await;
    let v = s.alert().await;
    assert_eq!(
        v["deliveries"], 1,
        "delivered to the readable endpoint only"
    );
    good.wait_for(2, 10).await;
    let path = |id: &str| format!("{ENDPOINTS}/{id}");
    assert_eq!(
        s.req("GET", &path(&good_id)).send().await.status,
        StatusCode::OK
    );
    s.req("GET", &path(&doomed)).send().await.problem(500);
    // Writes that share a group commit with one that reads the damaged record still commit.
    let patch = s
        .req("PATCH", &path(&doomed))
        .json(&serde_json::json!({"name": "x"}));
    let creates: Vec<_> = (0..20)
        .map(|i| {
            let body = serde_json::json!({"name": format!("n{i}"), "url": "https://a.example/", "signingEnabled": true, "signingSecret": ""});
            tokio::spawn(s.req("POST", ENDPOINTS).json(&body).send())
        })
        .collect();
    patch.send().await.problem(500);
    for c in creates {
        assert_eq!(c.await.unwrap().status, StatusCode::OK);
    }
    // The damaged endpoint's pending delivery leaves the due index (it is marked failed), so
    // it does not fail again on every pass.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut pending = 0;
        s.app
            .store
            .scan_due(
                i64::MAX,
                |_| usize::MAX,
                |_, _| usize::MAX,
                |key, _| {
                    pending += usize::from(key.ends_with(doomed.as_str()));
                    hookd::store::Take::Skip
                },
            )
            .unwrap();
        if pending == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still due: {pending}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    s.stop().await;
}

/// If the store's writer thread dies, nothing can be written: the server stops with an error
/// (the binary then exits non-zero) instead of answering 500 to every write forever.
#[tokio::test]
async fn a_dead_writer_stops_the_server_with_an_error() {
    let s = TestServer::start().await;
    s.app.store.simulate_writer_panic().await;
    let err = s.exited(10).await.expect_err("run ends with an error");
    assert!(err.to_string().contains("writer"), "{err}");
}

/// A store written by the previous hookd (schema 1: one global due index) is migrated when it
/// is opened: its pending delivery is found in the new per-endpoint queue and delivered.
#[tokio::test]
async fn a_schema_1_store_is_migrated_and_its_pending_deliveries_go_out() {
    let rx = Receiver::start().await;
    rx.script(vec![(503, vec![])]);
    let slow = FAST.replace(
        "retry_schedule_secs = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]",
        "retry_schedule_secs = [2]",
    );
    let s = TestServer::start_with(&slow).await;
    let id = s.endpoint_to("old", &rx.url("/in")).await;
    let msg = s.alert().await["messageId"].as_str().unwrap().to_owned();
    rx.wait_for(1, 10).await;
    let dir = s.dir.clone();
    s.stop().await;

    // Rewrite the store as schema 1 had it.
    let file = dir.path().join("hookd.redb");
    {
        let db = open_raw(&file).await;
        let txn = db.begin_write().unwrap();
        let key = format!("{msg}/{id}");
        let due = {
            let deliveries: TableDefinition<&str, &[u8]> = TableDefinition::new("deliveries");
            let t = txn.open_table(deliveries).unwrap();
            let record: Value =
                serde_json::from_slice(&t.get(key.as_str()).unwrap().unwrap().value()[1..])
                    .unwrap();
            record["next_attempt_ms"].as_u64().unwrap()
        };
        for name in [
            "message_state",
            "ended_messages",
            "queue",
            "queue_heads",
            "queue_head_of",
            "drain",
            "attempt_counts",
        ] {
            let def: TableDefinition<&str, &[u8]> = TableDefinition::new(name);
            txn.delete_table(def).unwrap();
        }
        let due_table: TableDefinition<(u64, &str), ()> = TableDefinition::new("due");
        txn.open_table(due_table)
            .unwrap()
            .insert((due, key.as_str()), ())
            .unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("schema_version", [1u8].as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let s = TestServer::start_in(dir.clone(), &slow).await;
    let got = rx.wait_for(2, 10).await;
    assert_eq!(
        got[1].header("webhook-id"),
        msg,
        "the migrated delivery went out"
    );
    s.stop().await;
    assert_eq!(schema_of(&open_raw(&file).await), 3);
}

/// The schema version a store file says it has.
fn schema_of(db: &redb::Database) -> u8 {
    let txn = db.begin_read().unwrap();
    let meta = txn.open_table(META).unwrap();
    let version = meta.get("schema_version").unwrap().unwrap();
    version.value()[0]
}

/// A schema 2 store (before the index of deliveries that gave up) is migrated when it is
/// opened: a delivery that gave up before the upgrade can be recovered after it.
#[tokio::test]
async fn a_schema_2_store_is_migrated_and_what_gave_up_can_be_recovered() {
    let rx = Receiver::start().await;
    rx.script(vec![(500, vec![])]);
    let once = FAST.replace(
        "retry_schedule_secs = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]",
        "retry_schedule_secs = []",
    );
    let s = TestServer::start_with(&once).await;
    let id = s.endpoint_to("old", &rx.url("/in")).await;
    let msg = s.alert().await["messageId"].as_str().unwrap().to_owned();
    rx.wait_for(1, 10).await;
    let key = format!("{msg}/{id}");
    let deliveries: TableDefinition<&str, &[u8]> = TableDefinition::new("deliveries");
    let state = |db: &redb::Database| -> Value {
        let txn = db.begin_read().unwrap();
        let t = txn.open_table(deliveries).unwrap();
        let v = t
            .get(key.as_str())
            .unwrap()
            .map(|v| v.value()[1..].to_vec());
        v.map_or(Value::Null, |b| serde_json::from_slice(&b).unwrap())
    };
    let dir = s.dir.clone();
    let file = dir.path().join("hookd.redb");
    // Wait until the delivery has given up, then stop.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let r = s
            .req("GET", &format!("{ENDPOINTS}/{id}/attempts"))
            .send()
            .await
            .json();
        if r["attempts"][0]["outcome"] == "failed" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{r}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    s.stop().await;
    // Rewrite it as schema 2 had it: no index, no failed_at_ms.
    {
        let db = open_raw(&file).await;
        let mut record = state(&db);
        assert_eq!(record["state"], "failed");
        record.as_object_mut().unwrap().remove("failed_at_ms");
        let txn = db.begin_write().unwrap();
        let mut bytes = vec![1u8];
        bytes.extend(serde_json::to_vec(&record).unwrap());
        txn.open_table(deliveries)
            .unwrap()
            .insert(key.as_str(), bytes.as_slice())
            .unwrap();
        let gave_up: TableDefinition<(&str, u64, &str), ()> = TableDefinition::new("gave_up");
        txn.delete_table(gave_up).unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("schema_version", [2u8].as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let s = TestServer::start_in(dir.clone(), &once).await;
    // The store as it was before the migration is kept beside it: the previous hookd can be put
    // back with it.
    {
        let copy = open_raw(&dir.path().join("hookd.redb.schema-2.bak")).await;
        assert_eq!(schema_of(&copy), 2, "the kept copy is the schema 2 store");
        let record = state(&copy);
        assert_eq!(record["state"], "failed");
        assert!(record.get("failed_at_ms").is_none(), "{record}");
    }
    let r = s
        .req("POST", &format!("{ENDPOINTS}/{id}/recover"))
        .json(&serde_json::json!({"since": "2020-01-01T00:00:00Z"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert_eq!(r.json()["deliveries"], 1);
    let got = rx.wait_for(2, 10).await;
    assert_eq!(got[1].header("webhook-id"), msg);
    s.stop().await;
}

/// A store written by a newer hookd (a downgrade) is refused with what to do, and left as it is.
#[tokio::test]
async fn a_store_of_a_newer_schema_is_refused_and_left_alone() {
    let s = TestServer::start().await;
    s.create("kept", "").await;
    let dir = s.dir.clone();
    s.stop().await;
    let file = dir.path().join("hookd.redb");
    {
        let db = open_raw(&file).await;
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("schema_version", [9u8].as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let refused = crate::common::start_app(crate::common::config(dir.path(), ""))
        .await
        .err()
        .expect("a newer store is refused")
        .to_string();
    assert!(
        refused.contains("the store has schema 9, written by a newer hookd than this one")
            && refused.contains("Upgrading"),
        "{refused}"
    );
    assert_eq!(
        schema_of(&open_raw(&file).await),
        9,
        "the store is left as it was"
    );
    let copies = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".bak")
        })
        .count();
    assert_eq!(
        copies, 0,
        "no copy is made for a store that is not migrated"
    );
}

/// A new store is built beside its path and renamed into place: a start cut off while redb laid
/// it out leaves the empty file of the data directory's setup (and maybe the unfinished
/// `hookd.redb.partial`), and the next start makes it again instead of refusing it. The same
/// for the master key file.
#[tokio::test]
async fn a_store_cut_off_while_it_was_created_is_made_again() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    std::fs::write(dir.path().join("hookd.redb"), b"").unwrap();
    std::fs::write(dir.path().join("hookd.redb.partial"), [0u8; 4096]).unwrap();
    // The key is made the same way: a torn one never has the key file's name.
    std::fs::write(dir.path().join("master.key.partial"), b"AAAA").unwrap();
    let s = TestServer::start_in(dir.clone(), "").await;
    s.create("after the cut", "").await;
    s.stop().await;
    assert!(!dir.path().join("hookd.redb.partial").exists());
    assert!(!dir.path().join("master.key.partial").exists());
    let key = std::fs::read_to_string(dir.path().join("master.key")).unwrap();
    assert_eq!(key.trim().len(), 44, "a whole base64 key: {key:?}");
    let s = TestServer::start_in(dir.clone(), "").await;
    let listed = s.app.store.list_endpoints(None, 10).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    s.stop().await;
}
