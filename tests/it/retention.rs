//! Keeping the store bounded and delivery fast when a receiver is dead: retention of ended
//! messages and old attempts (never a pending delivery), the attempt cap, what a deleted
//! endpoint leaves, and the circuit breaker.
use std::time::Duration;

use crate::common::receiver::Receiver;
use crate::common::{eventually, eventually_async, TestServer, ENDPOINTS};
use hyper::StatusCode;
use redb::{ReadableDatabase as _, ReadableTable as _};

/// Loopback receivers, retries an hour apart (a failed delivery stays pending for the test),
/// and retention measured in seconds.
const SHORT: &str = "[url_policy]\nallow_networks = [\"127.0.0.0/8\"]\n[delivery]\nretry_schedule_secs = [3600]\njitter_percent = 0\npoll_interval_ms = 50\n[retention]\nmessages_secs = 1\nattempts_secs = 2\ninterval_secs = 1\n";

async fn alert(s: &TestServer) -> String {
    s.alert().await["messageId"].as_str().unwrap().to_owned()
}

/// How many due-queue entries the store holds for `endpoint`.
fn queued(s: &TestServer, endpoint: &str) -> usize {
    // On PostgreSQL a pass claims what it offers: count the pending rows instead.
    if let Some(server) = crate::common::postgres::server() {
        let url = crate::common::postgres::database_for(&server, s.dir.path());
        let out = std::process::Command::new("psql")
            .args([&url, "-Atc"])
            .arg(format!(
                "SELECT count(*) FROM hookd_deliveries WHERE endpoint_id = '{endpoint}' AND NOT failed"
            ))
            .output()
            .unwrap();
        return String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    }
    let mut n = 0;
    s.app
        .store
        .scan_due(
            i64::MAX,
            |_| usize::MAX,
            |_, _| usize::MAX,
            |key, _| {
                n += usize::from(key.ends_with(endpoint));
                hookd::store::Take::Skip
            },
        )
        .unwrap();
    n
}

/// A closed port on loopback: connecting is refused at once.
async fn dead_url() -> (String, std::net::SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    (format!("http://{addr}/dead"), addr)
}

#[tokio::test]
async fn retention_removes_ended_messages_and_old_attempts_never_pending_ones() {
    let ok = Receiver::start().await;
    let failing = Receiver::start().await;
    failing.script((0..10).map(|_| (503, vec![])).collect());
    let s = TestServer::start_with(SHORT).await;
    let a = s.endpoint_to("n", &ok.url("/a")).await;
    let ended = alert(&s).await; // only A exists: delivered, ended
    ok.wait_for(1, 10).await;
    let b = s.endpoint_to("n", &failing.url("/b")).await;
    let pending = alert(&s).await; // B fails and retries in an hour: pending
    failing.wait_for(1, 10).await;
    ok.wait_for(2, 10).await;

    let (store, ended) = (&s.app.store, &ended);
    eventually_async(10, "the ended message is removed", move || async move {
        store.message(ended).await.unwrap().is_none()
    })
    .await;
    let mut gone = false;
    for _ in 0..100 {
        if s.attempts(&a).await.is_empty() && s.attempts(&b).await.is_empty() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "attempts older than 2 s are removed");
    // The message still pending for B, and its delivery, are kept.
    assert!(s.app.store.message(&pending).await.unwrap().is_some());
    let key = hookd::model::Delivery::key(&pending, &b);
    let (d, _, _) = s.app.store.delivery(&key).await.unwrap().unwrap();
    assert_eq!(d.state, hookd::model::DeliveryState::Pending);
    assert_eq!(queued(&s, &b), 1);
    s.stop().await;
}

#[tokio::test]
async fn the_attempt_log_keeps_the_newest_up_to_the_cap() {
    let ok = Receiver::start().await;
    let s = TestServer::start_with(
        &format!("{SHORT}attempts_per_endpoint = 3\n")
            .replace("attempts_secs = 2", "attempts_secs = 3600"),
    )
    .await;
    let id = s.endpoint_to("n", &ok.url("/a")).await;
    let mut sent = Vec::new();
    for _ in 0..7 {
        let r = s
            .req("POST", &format!("{ENDPOINTS}/{id}/test"))
            .send()
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        sent.push(r.json()["attempt"]["id"].as_str().unwrap().to_owned());
    }
    let mut kept = Vec::new();
    for _ in 0..100 {
        kept = s.attempts(&id).await;
        if kept.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ids: Vec<&str> = kept.iter().map(|a| a["id"].as_str().unwrap()).collect();
    let newest: Vec<&str> = sent.iter().rev().take(3).map(String::as_str).collect();
    assert_eq!(ids, newest, "the three newest, newest first");
    s.stop().await;
}

/// Deleting an endpoint leaves nothing behind: its queued deliveries, their messages (once
/// ended), its attempt log and its bookkeeping all go, in the background.
#[tokio::test]
async fn deleting_an_endpoint_leaves_no_orphans() {
    let failing = Receiver::start().await;
    failing.script((0..50).map(|_| (503, vec![])).collect());
    // Every delivery attempted once (no circuit holding them back), so each leaves an attempt.
    let s = TestServer::start_with(&SHORT.replace(
        "poll_interval_ms = 50\n",
        "poll_interval_ms = 50\ncircuit_failures = 0\n",
    ))
    .await;
    let id = s.endpoint_to("n", &failing.url("/b")).await;
    let mut messages = Vec::new();
    for _ in 0..20 {
        messages.push(alert(&s).await);
    }
    failing.wait_for(20, 10).await;
    let (store, id_ref) = (&s.app.store, &id);
    eventually_async(10, "the attempts are logged", move || async move {
        store
            .list_attempts(id_ref, None, 100)
            .await
            .is_ok_and(|p| p.items.len() == 20)
    })
    .await;
    assert_eq!(queued(&s, &id), 20);
    let r = s.req("DELETE", &format!("{ENDPOINTS}/{id}")).send().await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    eventually(10, "the queue is cleared", || queued(&s, &id) == 0).await;
    let messages = &messages;
    eventually_async(10, "the messages end and are removed", move || async move {
        for m in messages {
            if store.message(m).await.unwrap().is_some() {
                return false;
            }
        }
        true
    })
    .await;
    eventually_async(10, "the attempt log is removed", move || async move {
        store
            .list_attempts(id_ref, None, 100)
            .await
            .is_ok_and(|p| p.items.is_empty())
    })
    .await;
    let dir = s.dir.clone();
    s.stop().await;
    // No table holds anything that names the endpoint or its messages.
    if let Some(server) = crate::common::postgres::server() {
        let dump = String::from_utf8_lossy(&crate::common::postgres::dump(&server, dir.path()))
            .into_owned();
        let left: Vec<&str> = dump
            .lines()
            .filter(|l| l.contains(id.as_str()) || messages.iter().any(|m| l.contains(m.as_str())))
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
        return;
    }
    let db = loop {
        match redb::Database::open(dir.path().join("hookd.redb")) {
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => break other.unwrap(),
        }
    };
    let txn = db.begin_read().unwrap();
    let mut keys: Vec<String> = Vec::new();
    macro_rules! collect {
        ($name:expr, $k:ty, $v:ty, |$key:ident| $show:expr) => {{
            let def: redb::TableDefinition<$k, $v> = redb::TableDefinition::new($name);
            let table = txn.open_table(def).unwrap();
            for entry in table.iter().unwrap() {
                let (k, _) = entry.unwrap();
                let $key = k.value();
                keys.push(format!("{}: {}", $name, $show));
            }
        }};
    }
    collect!("deliveries", &str, &[u8], |k| k.to_owned());
    collect!("messages", &str, &[u8], |k| k.to_owned());
    collect!("message_state", &str, (u32, u64), |k| k.to_owned());
    collect!("ended_messages", (u64, &str), (), |k| k.1.to_owned());
    collect!("queue", (&str, u64, &str), (), |k| format!(
        "{}/{}",
        k.2, k.0
    ));
    collect!("queue_heads", (u64, &str), (), |k| k.1.to_owned());
    collect!("queue_head_of", &str, u64, |k| k.to_owned());
    collect!("drain", &str, u8, |k| k.to_owned());
    collect!("attempts", &str, &[u8], |k| k.to_owned());
    collect!("attempt_counts", &str, u64, |k| k.to_owned());
    let orphans: Vec<&String> = keys
        .iter()
        .filter(|k| k.contains(id.as_str()) || messages.iter().any(|m| k.contains(m.as_str())))
        .collect();
    assert!(orphans.is_empty(), "left behind: {orphans:?}");
}

/// A dead receiver's deliveries are held behind an open circuit (a few refused connections,
/// not one per alert), a healthy endpoint is served meanwhile, and once the receiver is back a
/// probe closes the circuit and everything held is delivered.
#[tokio::test]
async fn a_dead_endpoint_opens_its_circuit_and_recovers() {
    let ok = Receiver::start().await;
    let (dead, addr) = dead_url().await;
    let extra = format!(
        "{}circuit_failures = 3\ncircuit_open_secs = 1\ncircuit_max_open_secs = 1\n",
        SHORT
            .replace(
                "retry_schedule_secs = [3600]",
                "retry_schedule_secs = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"
            )
            .replace(
                "[retention]\nmessages_secs = 1\nattempts_secs = 2\ninterval_secs = 1\n",
                ""
            )
    );
    let s = TestServer::start_with(&extra).await;
    let healthy = s.endpoint_to("n", &ok.url("/ok")).await;
    let down = s.endpoint_to("n", &dead).await;
    for _ in 0..50 {
        alert(&s).await;
    }
    ok.wait_for(50, 10).await;
    eventually(10, "the circuit opens", || {
        s.app.delivery.circuit(&down).state != "closed"
    })
    .await;
    let r = s.req("GET", &format!("{ENDPOINTS}/{down}")).send().await;
    let circuit = r.json()["endpoint"]["circuit"].clone();
    assert!(
        circuit["consecutiveFailures"].as_u64().unwrap() >= 3,
        "{circuit}"
    );
    // Held: far fewer attempts than alerts.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let made = s
        .app
        .store
        .list_attempts(&down, None, 200)
        .await
        .unwrap()
        .items
        .len();
    assert!(made < 10, "{made} attempts for 50 held deliveries");
    assert_eq!(queued(&s, &down), 50);
    assert_eq!(
        s.app
            .store
            .list_attempts(&healthy, None, 200)
            .await
            .unwrap()
            .items
            .len(),
        50
    );

    // The receiver comes back on the same address: a probe succeeds, the circuit closes and
    // every held delivery goes out.
    let back = Receiver::start_on(&addr.to_string()).await;
    back.wait_for(50, 20).await;
    eventually(10, "the circuit closes", || {
        s.app.delivery.circuit(&down).state == "closed"
    })
    .await;
    eventually(10, "the queue empties", || queued(&s, &down) == 0).await;
    s.stop().await;
}
