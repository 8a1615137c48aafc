//! Power cuts, in process (issue 22's first tier). The real server runs, over loopback, on a
//! store whose disk is a redb `StorageBackend` that records every `write`, `set_len` and
//! `sync_data`. Clients create, rename and delete endpoints and post alerts (which the
//! dispatcher tries to deliver, writing attempts) and create API tokens at the same time, and note for every `2xx` how
//! far the disk's record had got when it arrived. Afterwards the record is cut at thousands of
//! seeded points: what had been synced survives, and of what was written since, all is lost, or
//! a prefix survives, or any subset of its 4 KiB blocks (a disk that reorders writes), or any
//! subset of 512-byte sectors of writes torn after any byte (redb assumes no more: single bytes
//! atomic, durable after `fsync`, nothing outside a write's range changed). Each surviving image must open (repaired by redb where needed), pass redb's
//! integrity check and hookd's own open, and hold every write acknowledged before the cut: an
//! endpoint as created or renamed, a delete still deleted, a token, an accepted alert with
//! exactly its deliveries. The control runs the same load with commits that are not made durable and must
//! report lost writes, or the harness would prove nothing.
//!
//! What it found: a cut while redb laid out a new store (before its first sync) left a file that
//! was not yet a database, which every later start refused; a new store is now built beside its
//! path and renamed into place (`a_store_cut_off_while_it_was_created_is_made_again`).
//!
//! Replay a failure with `HOOKD_POWERCUT_SEED=<seed> cargo test --test it powercut`.

use std::fmt;
use std::sync::{Arc, Mutex};

use hyper::StatusCode;
use redb::{ReadableDatabase as _, TableDefinition};
use serde_json::{json, Value};

use crate::common::{TestServer, ENDPOINTS};

const ENDPOINT_RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("endpoints");
const MESSAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("messages");
const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens");
const DELIVERIES: TableDefinition<&str, &[u8]> = TableDefinition::new("deliveries");

/// Retries far apart, so every delivery stays in the store once it has failed; loopback allowed.
const CONFIG: &str = "[url_policy]\nallow_networks = [\"127.0.0.0/8\"]\n[delivery]\nretry_schedule_secs = [3600]\njitter_percent = 0\npoll_interval_ms = 20\n[store]\nmax_batch = 8\n";
/// A loopback port nothing listens on: deliveries fail at once, and are recorded.
const NOWHERE: &str = "http://127.0.0.1:9/hook";

/// One thing the store did to its disk.
#[derive(Clone)]
enum Op {
    Write(u64, Vec<u8>),
    SetLen(u64),
    Sync,
}

/// The disk the server runs on: what reads see now, and the record of every operation.
#[derive(Default)]
struct Disk {
    live: Vec<u8>,
    record: Vec<Op>,
}

#[derive(Clone, Default)]
struct Recorded(Arc<Mutex<Disk>>);

impl Recorded {
    fn ops(&self) -> usize {
        self.0.lock().unwrap().record.len()
    }
}

impl fmt::Debug for Recorded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Recorded({} ops)", self.ops())
    }
}

fn out_of_range() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, "out of range")
}

/// Reads and writes on an image, as redb's file backend does on a file.
fn read_at(image: &[u8], offset: u64, out: &mut [u8]) -> std::io::Result<()> {
    let at = usize::try_from(offset).map_err(|_| out_of_range())?;
    let src = image.get(at..at + out.len()).ok_or_else(out_of_range)?;
    out.copy_from_slice(src);
    Ok(())
}

fn write_at(image: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let at = usize::try_from(offset).unwrap();
    if image.len() < at + data.len() {
        image.resize(at + data.len(), 0);
    }
    image[at..at + data.len()].copy_from_slice(data);
}

fn apply(image: &mut Vec<u8>, op: &Op) {
    match op {
        Op::Write(offset, data) => write_at(image, *offset, data),
        Op::SetLen(len) => image.resize(usize::try_from(*len).unwrap(), 0),
        Op::Sync => {}
    }
}

impl redb::StorageBackend for Recorded {
    fn len(&self) -> std::io::Result<u64> {
        Ok(self.0.lock().unwrap().live.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        read_at(&self.0.lock().unwrap().live, offset, out)
    }

    fn set_len(&self, len: u64) -> std::io::Result<()> {
        let mut disk = self.0.lock().unwrap();
        let op = Op::SetLen(len);
        apply(&mut disk.live, &op);
        disk.record.push(op);
        Ok(())
    }

    fn sync_data(&self) -> std::io::Result<()> {
        self.0.lock().unwrap().record.push(Op::Sync);
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        let mut disk = self.0.lock().unwrap();
        let op = Op::Write(offset, data.to_vec());
        apply(&mut disk.live, &op);
        disk.record.push(op);
        Ok(())
    }
}

/// A surviving image, opened again.
#[derive(Clone)]
struct Image(Arc<Mutex<Vec<u8>>>);

impl fmt::Debug for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Image({} bytes)", self.0.lock().unwrap().len())
    }
}

impl redb::StorageBackend for Image {
    fn len(&self) -> std::io::Result<u64> {
        Ok(self.0.lock().unwrap().len() as u64)
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        read_at(&self.0.lock().unwrap(), offset, out)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        apply(&mut self.0.lock().unwrap(), &Op::SetLen(len));
        Ok(())
    }
    fn sync_data(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        write_at(&mut self.0.lock().unwrap(), offset, data);
        Ok(())
    }
}

/// A request the server answered `2xx`: what it did, when it was sent and when answered (the
/// length of the disk's record at each moment).
#[derive(Clone, Debug)]
struct Acked {
    sent: usize,
    at: usize,
    what: Did,
}

#[derive(Clone, Debug)]
enum Did {
    /// Endpoint `id` now has `name` (`None`: deleted).
    Endpoint {
        id: String,
        name: Option<String>,
    },
    Alert {
        message: String,
        deliveries: u64,
    },
    Token {
        id: String,
    },
}

/// splitmix64: seeded, reproducible choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap()
    }
}

/// Runs the load on a recorded disk; returns the record, how much of it made the new store,
/// and what was acknowledged.
async fn load(no_sync: bool, rounds: usize) -> (Vec<Op>, usize, Vec<Acked>) {
    let disk = Recorded::default();
    // As `Store::open` makes a new store: laid out and closed by redb (in `hookd.redb.partial`),
    // then renamed into place. Before that rename there is no store, only an empty file.
    drop(
        redb::Builder::new()
            .create_with_backend(disk.clone())
            .unwrap(),
    );
    let created = disk.ops();
    let on = disk.clone();
    let testing = hookd::store::Testing {
        open: Some(Arc::new(move |builder: &redb::Builder| {
            builder.create_with_backend(on.clone())
        })),
        no_sync,
    };
    let s = Arc::new(TestServer::start_on(CONFIG, testing).await);
    // Two endpoints take every alert and are never deleted: an alert's deliveries stay countable.
    for n in 0..2 {
        let body = json!({"name": format!("target-{n}"), "url": NOWHERE, "signingEnabled": true,
                          "signingSecret": "", "filterTypes": ["load.*"]});
        let r = s.req("POST", ENDPOINTS).json(&body).send().await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut clients = Vec::new();
    for client in 0..3 {
        let (s, disk, acked) = (s.clone(), disk.clone(), acked.clone());
        clients.push(tokio::spawn(async move {
            let note = |sent: usize, what: Did| {
                acked.lock().unwrap().push(Acked {
                    sent,
                    at: disk.ops(),
                    what,
                });
            };
            for n in 0..rounds {
                let name = format!("c{client}-{n}");
                let body = json!({"name": name, "url": NOWHERE, "signingEnabled": true,
                                  "signingSecret": "", "filterTypes": ["never.*"]});
                let sent = disk.ops();
                let r = s.req("POST", ENDPOINTS).json(&body).send().await;
                assert_eq!(r.status, StatusCode::OK, "{}", r.text());
                let id = r.json()["endpoint"]["id"].as_str().unwrap().to_owned();
                note(
                    sent,
                    Did::Endpoint {
                        id: id.clone(),
                        name: Some(name.clone()),
                    },
                );
                let renamed = format!("{name}-renamed");
                let sent = disk.ops();
                let r = s
                    .req("PATCH", &format!("{ENDPOINTS}/{id}"))
                    .json(&json!({"name": renamed}))
                    .send()
                    .await;
                assert_eq!(r.status, StatusCode::OK, "{}", r.text());
                note(
                    sent,
                    Did::Endpoint {
                        id: id.clone(),
                        name: Some(renamed),
                    },
                );
                if n % 2 == 0 {
                    let sent = disk.ops();
                    let r = s.req("DELETE", &format!("{ENDPOINTS}/{id}")).send().await;
                    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
                    note(sent, Did::Endpoint { id, name: None });
                }
                if n % 3 == 0 {
                    let sent = disk.ops();
                    let r = s
                        .req("POST", "/api/v1/tokens")
                        .json(&json!({"name": format!("t{client}-{n}"), "scopes": ["endpoints:read"]}))
                        .send()
                        .await;
                    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
                    let id = r.json()["token"]["id"].as_str().unwrap().to_owned();
                    note(sent, Did::Token { id });
                }
                let sent = disk.ops();
                let r = s
                    .req("POST", "/api/v1/alerting/alerts")
                    .json(&json!({"eventType": "load.test", "payload": {"n": n, "client": client}}))
                    .send()
                    .await;
                assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
                let answer = r.json();
                note(
                    sent,
                    Did::Alert {
                        message: answer["messageId"].as_str().unwrap().to_owned(),
                        deliveries: answer["deliveries"].as_u64().unwrap(),
                    },
                );
            }
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
    let s = Arc::into_inner(s).unwrap();
    s.stop().await;
    let record = disk.0.lock().unwrap().record.clone();
    let acked = acked.lock().unwrap().clone();
    (record, created, acked)
}

/// How a cut treats what was written since the last sync.
#[derive(Clone, Copy, Debug)]
enum Loss {
    All,
    Prefix(usize),
    /// Any subset of the 4 KiB-aligned pieces of every write (a disk that reorders).
    Blocks,
    /// Any subset of 512-byte sectors, and each write torn after a random byte: what redb's
    /// assumptions still allow (single bytes atomic, nothing outside a write's range touched).
    Torn,
}

/// The image a cut after `k` operations leaves: `durable` (as of the last sync) with `pending`
/// (written since) treated as `loss` says.
fn survivor(durable: &[u8], pending: &[&Op], loss: Loss, rng: &mut Rng) -> Vec<u8> {
    let mut image = durable.to_vec();
    match loss {
        Loss::All => {}
        Loss::Prefix(n) => pending.iter().take(n).for_each(|op| apply(&mut image, op)),
        Loss::Blocks | Loss::Torn => {
            let piece = if matches!(loss, Loss::Blocks) {
                4096
            } else {
                512
            };
            for op in pending {
                match op {
                    Op::Write(offset, data) => {
                        // A torn write: only its first `keep` bytes were ever written.
                        let keep = match loss {
                            Loss::Torn => rng.below(data.len() + 1),
                            _ => data.len(),
                        };
                        let mut at = *offset;
                        let end = offset + keep as u64;
                        while at < end {
                            let next = ((at / piece) + 1) * piece;
                            let upto = next.min(end);
                            if rng.next() % 2 == 0 {
                                let from = usize::try_from(at - offset).unwrap();
                                let to = usize::try_from(upto - offset).unwrap();
                                write_at(&mut image, at, &data[from..to]);
                            }
                            at = upto;
                        }
                    }
                    other => apply(&mut image, other),
                }
            }
        }
    }
    image
}

/// What a surviving image holds against what was acknowledged before the cut at `k`; each
/// breach, described.
fn check(image: Vec<u8>, k: usize, acked: &[Acked]) -> Vec<String> {
    let mut db = match redb::Builder::new()
        .create_with_backend(Image(Arc::new(Mutex::new(image.clone()))))
    {
        Ok(db) => db,
        Err(e) => return vec![format!("the store does not open: {e}")],
    };
    match db.check_integrity() {
        Ok(true) => {}
        other => return vec![format!("redb's integrity check: {other:?}")],
    }
    let mut breaches = Vec::new();
    let txn = db.begin_read().unwrap();
    // A cut before the store's first commit leaves no tables: then nothing may have been
    // acknowledged.
    let Ok(endpoints) = txn.open_table(ENDPOINT_RECORDS) else {
        return match acked.iter().find(|a| a.at <= k) {
            Some(a) => vec![format!("no tables, but {a:?} was acknowledged")],
            None => Vec::new(),
        };
    };
    let name_of = |id: &str| -> Option<String> {
        endpoints.get(id).unwrap().map(|v| {
            let record: Value = serde_json::from_slice(&v.value()[1..]).unwrap();
            record["name"].as_str().unwrap().to_owned()
        })
    };
    // Per endpoint: the last state acknowledged before the cut, or the one after it if that
    // request was sent before the cut (committed, not yet answered).
    let mut by_endpoint: std::collections::BTreeMap<&str, Vec<&Acked>> = Default::default();
    for a in acked {
        if let Did::Endpoint { id, .. } = &a.what {
            by_endpoint.entry(id).or_default().push(a);
        }
    }
    for (id, steps) in by_endpoint {
        let Some(last) = steps.iter().rposition(|a| a.at <= k) else {
            continue;
        };
        let allowed: Vec<&Option<String>> = steps[last..]
            .iter()
            .take(2)
            .filter(|a| a.sent <= k)
            .map(|a| match &a.what {
                Did::Endpoint { name, .. } => name,
                _ => unreachable!(),
            })
            .collect();
        let found = name_of(id);
        if !allowed.iter().any(|name| **name == found) {
            breaches.push(format!(
                "endpoint {id}: {found:?}, acknowledged as {:?}",
                allowed[0]
            ));
        }
    }
    let tokens = txn.open_table(TOKENS).unwrap();
    for a in acked.iter().filter(|a| a.at <= k) {
        if let Did::Token { id } = &a.what {
            if tokens.get(id.as_str()).unwrap().is_none() {
                breaches.push(format!("token {id} is gone"));
            }
        }
    }
    let messages = txn.open_table(MESSAGES).unwrap();
    let deliveries = txn.open_table(DELIVERIES).unwrap();
    for a in acked.iter().filter(|a| a.at <= k) {
        if let Did::Alert {
            message,
            deliveries: n,
        } = &a.what
        {
            if messages.get(message.as_str()).unwrap().is_none() {
                breaches.push(format!("accepted alert {message} is gone"));
                continue;
            }
            let from = format!("{message}/");
            let to = format!("{message}0"); // '0' follows '/'
            let count = deliveries
                .range(from.as_str()..to.as_str())
                .unwrap()
                .count() as u64;
            if count != *n {
                breaches.push(format!(
                    "alert {message}: {count} deliveries, accepted with {n}"
                ));
            }
        }
    }
    drop((endpoints, tokens, messages, deliveries, txn, db));
    // And hookd itself opens it (schema, routing table, writer).
    let dir = tempfile::tempdir().unwrap();
    let on = Image(Arc::new(Mutex::new(image)));
    let options = hookd::store::Options {
        max_batch: 8,
        cache_bytes: 1 << 20,
        min_free_bytes: 0,
        metrics: None,
        testing: Some(hookd::store::Testing {
            open: Some(Arc::new(move |b: &redb::Builder| {
                b.create_with_backend(on.clone())
            })),
            no_sync: false,
        }),
    };
    if let Err(e) = hookd::store::Store::open_embedded(&dir.path().join("hookd.redb"), options) {
        breaches.push(format!("hookd does not open it: {e}"));
    }
    breaches
}

/// Cuts the record at `cuts` seeded points (each with one of the three kinds of loss); returns
/// every breach with the cut that showed it.
fn replay(record: &[Op], created: usize, acked: &[Acked], cuts: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng(seed);
    let mut points: Vec<usize> = (0..cuts).map(|_| 1 + rng.below(record.len())).collect();
    points.sort_unstable();
    let mut durable = Vec::new();
    let mut pending: Vec<&Op> = Vec::new();
    // hookd lays out a new store in `hookd.redb.partial` and renames it into place once redb
    // has made it (`Store::open`): a cut before then leaves the empty file the data directory's
    // setup made, whatever was written.
    let mut breaches = Vec::new();
    let mut next = points.iter().peekable();
    for (i, op) in record.iter().enumerate() {
        while next.peek().is_some_and(|&&k| k == i) {
            let k = *next.next().unwrap();
            let loss = match rng.below(4) {
                0 => Loss::All,
                1 => Loss::Prefix(rng.below(pending.len() + 1)),
                2 => Loss::Blocks,
                _ => Loss::Torn,
            };
            let image = if k >= created {
                survivor(&durable, &pending, loss, &mut rng)
            } else {
                Vec::new()
            };
            for b in check(image, k, acked) {
                breaches.push(format!("cut after op {k} ({loss:?}): {b}"));
            }
        }
        match op {
            Op::Sync => pending.drain(..).for_each(|p| apply(&mut durable, p)),
            other => pending.push(other),
        }
    }
    breaches
}

fn seed() -> u64 {
    std::env::var("HOOKD_POWERCUT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| hookd::time::now_ms().unsigned_abs())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_power_cuts() {
    let started = std::time::Instant::now();
    let (record, created, acked) = load(false, 12).await;
    let loaded = started.elapsed();
    let seed = seed();
    let cuts = 1500;
    let breaches = tokio::task::spawn_blocking({
        let (record, acked) = (record.clone(), acked.clone());
        move || replay(&record, created, &acked, cuts, seed)
    })
    .await
    .unwrap();
    eprintln!(
        "power cuts: {} disk operations ({} syncs), {} acknowledged requests, {cuts} cuts (seed {seed}): load {:.1} s, cuts {:.1} s",
        record.len(),
        record.iter().filter(|op| matches!(op, Op::Sync)).count(),
        acked.len(),
        loaded.as_secs_f64(),
        (started.elapsed() - loaded).as_secs_f64()
    );
    assert!(
        breaches.is_empty(),
        "HOOKD_POWERCUT_SEED={seed}: {} breaches, the first: {:#?}",
        breaches.len(),
        &breaches[..breaches.len().min(10)]
    );
}

/// The control: commits that are not made durable must be caught losing acknowledged writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_harness_catches_commits_that_are_not_durable() {
    let (record, created, acked) = load(true, 4).await;
    let seed = seed();
    let breaches = tokio::task::spawn_blocking(move || replay(&record, created, &acked, 50, seed))
        .await
        .unwrap();
    assert!(
        breaches
            .iter()
            .any(|b| b.contains("is gone") || b.contains("acknowledged as")),
        "HOOKD_POWERCUT_SEED={seed}: the control lost nothing: {breaches:?}"
    );
}
