//! URL-policy plugins over HTTP: deny, every way a hostile plugin can fail, load-time refusals,
//! and reloads.
use crate::common;

use std::time::{Duration, Instant};

use crate::common::plugins::{plugin_toml, write_fixture};
use crate::common::{TestServer, ENDPOINTS};
use hyper::StatusCode;
use serde_json::json;

fn body(name: &str) -> serde_json::Value {
    json!({"name": name, "url": "https://hooks.example.com/in", "signingEnabled": true, "signingSecret": ""})
}

/// Writes a configuration file for the server with `plugins` in it and reloads it, as SIGHUP does.
fn reload(s: &TestServer, plugins: &str) -> Result<Vec<String>, String> {
    let file = s.dir.path().join("reload.toml");
    let base = format!("data_dir = \"{}\"\n", s.dir.path().display());
    std::fs::write(&file, format!("{base}{plugins}")).unwrap();
    s.app.reload(Some(&file)).map(|r| r.plugins)
}

#[tokio::test]
async fn first_deny_wins_and_names_the_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let allow = write_fixture(dir.path(), "allow");
    let deny = write_fixture(dir.path(), "deny");
    let extra = format!(
        "{}{}",
        plugin_toml("first", &allow, "deny"),
        plugin_toml("policy", &deny, "deny")
    );
    let s = TestServer::start_with(&extra).await;

    let r = s.req("POST", ENDPOINTS).json(&body("boom")).send().await;
    assert_eq!(r.error_fields(), ["url"]);
    let msg = r.json()["errors"][0]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(msg, "is denied by plugin 'policy': boom is not allowed!");

    let r = s.req("POST", ENDPOINTS).json(&body("normal")).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let id = r.json()["endpoint"]["id"].as_str().unwrap().to_owned();
    let url = r.json()["endpoint"]["url"].as_str().unwrap().to_owned();

    // Updates run the plugins only when they change the URL (with the endpoint's name).
    let path = format!("{ENDPOINTS}/{id}");
    let r = s
        .req("PATCH", &path)
        .json(&json!({"name": "boom"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // The stored URL sent back unchanged (a client that sends the whole object) changes
    // nothing: no plugin runs.
    let r = s
        .req("PATCH", &path)
        .json(&json!({"url": url, "name": "boom"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = s
        .req("PATCH", &path)
        .json(&json!({"url": "https://elsewhere.example.com/"}))
        .send()
        .await;
    assert_eq!(r.error_fields(), ["url"]);
    let r = s
        .req("PATCH", &path)
        .json(&json!({"url": "https://elsewhere.example.com/", "name": "accepted"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // Built-in rules still come first.
    let r = s
        .req("PATCH", &path)
        .json(&json!({"url": "http://127.0.0.1/"}))
        .send()
        .await;
    assert!(r.json()["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("loopback"));
    s.stop().await;
}

#[tokio::test]
async fn hostile_plugins_fail_closed_and_the_server_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    for (fixture, limits, kind) in [
        ("loop", "timeout_ms = 50\nfuel = 1000000000000", "timeout"),
        ("loop", "timeout_ms = 5000\nfuel = 100000", "out of fuel"),
        ("memory-bomb", "memory_bytes = 4194304", "out of memory"),
        ("trap", "", "trap"),
        ("oversized", "memory_bytes = 4194304", "malformed answer"),
        ("out-of-bounds", "", "malformed answer"),
    ] {
        let path = write_fixture(dir.path(), fixture);
        let extra = format!(
            "[plugin_limits]\n{limits}\n{}",
            plugin_toml("hostile", &path, "deny")
        );
        let s = TestServer::start_with(&extra).await;
        let started = Instant::now();
        let r = s.req("POST", ENDPOINTS).json(&body("boom")).send().await;
        let took = started.elapsed();
        let p = r.problem(503);
        let detail = p["detail"].as_str().unwrap();
        assert!(
            detail.contains("'hostile'") && detail.contains(kind),
            "{fixture}: {detail}"
        );
        assert!(took < Duration::from_secs(3), "{fixture} took {took:?}");
        // The same plugin, the next request: fine.
        let r = s.req("POST", ENDPOINTS).json(&body("normal")).send().await;
        assert_eq!(r.status, StatusCode::OK, "{fixture}: {}", r.text());
        assert_eq!(s.req("GET", "/healthz").send().await.status, StatusCode::OK);
        s.stop().await;
    }
}

#[tokio::test]
async fn on_error_allow_skips_a_failing_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_fixture(dir.path(), "trap");
    let s = TestServer::start_with(&plugin_toml("lenient", &path, "allow")).await;
    let r = s.req("POST", ENDPOINTS).json(&body("boom")).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    s.stop().await;
}

#[tokio::test]
async fn each_plugin_in_a_chain_gets_its_own_budget() {
    // The plugins of one check share a store: a fail-open plugin that burns all its fuel, its
    // whole deadline or its memory must leave the next plugin a full budget of each.
    let dir = tempfile::tempdir().unwrap();
    let deny = write_fixture(dir.path(), "deny");
    for (fixture, limits) in [
        ("loop", "timeout_ms = 5000\nfuel = 100000"),
        ("loop", "timeout_ms = 50\nfuel = 1000000000000"),
        ("memory-bomb", "memory_bytes = 4194304"),
    ] {
        let spender = write_fixture(dir.path(), fixture);
        let extra = format!(
            "[plugin_limits]\n{limits}\n{}{}",
            plugin_toml("spender", &spender, "allow"),
            plugin_toml("policy", &deny, "deny")
        );
        let s = TestServer::start_with(&extra).await;
        for _ in 0..2 {
            let r = s.req("POST", ENDPOINTS).json(&body("boom")).send().await;
            let msg = r.json()["errors"][0]["message"].clone();
            assert_eq!(
                msg,
                "is denied by plugin 'policy': boom is not allowed!",
                "{fixture} ({limits}): {}",
                r.text()
            );
        }
        s.stop().await;
    }
}

#[tokio::test]
async fn broken_plugins_are_refused_at_load_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"not wasm at all").unwrap();
    for (path, expect) in [
        (
            write_fixture(dir.path(), "wrong-world"),
            "does not implement the world hookd:plugin/url-policy@0.1.0",
        ),
        (
            write_fixture(dir.path(), "imports-wasi"),
            "imports wasi:random/random@0.2.0",
        ),
        (junk, "not a valid WebAssembly component"),
        (dir.path().join("missing.wasm"), "cannot read"),
    ] {
        let data = tempfile::tempdir().unwrap();
        let config = common::config(data.path(), &plugin_toml("broken", &path, "deny"));
        let err = hookd::app::start(config)
            .await
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("plugin 'broken'"), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains(expect), "{err}");
    }
}

#[tokio::test]
async fn reload_swaps_the_set_or_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let deny = write_fixture(dir.path(), "deny");
    let wrong = write_fixture(dir.path(), "wrong-world");
    let s = TestServer::start().await;
    assert_eq!(
        s.req("POST", ENDPOINTS)
            .json(&body("boom"))
            .send()
            .await
            .status,
        StatusCode::OK
    );

    assert_eq!(
        reload(&s, &plugin_toml("policy", &deny, "deny")).unwrap(),
        ["policy"]
    );
    let denied_by_policy = |r: common::Resp| {
        assert_eq!(r.error_fields(), ["url"]);
        assert_eq!(
            r.json()["errors"][0]["message"],
            "is denied by plugin 'policy': boom is not allowed!"
        );
    };
    denied_by_policy(s.req("POST", ENDPOINTS).json(&body("boom")).send().await);

    let err = reload(&s, &plugin_toml("bad", &wrong, "deny")).unwrap_err();
    assert!(err.contains("plugin 'bad'"), "{err}");
    // The refused reload left the old set in place.
    denied_by_policy(s.req("POST", ENDPOINTS).json(&body("boom")).send().await);

    assert!(reload(&s, "").unwrap().is_empty());
    assert_eq!(
        s.req("POST", ENDPOINTS)
            .json(&body("boom"))
            .send()
            .await
            .status,
        StatusCode::OK
    );
    s.stop().await;
}

/// The review's stall: plugin checks ran inline on the async workers for up to their deadline,
/// so a few requests for URLs a plugin loops on stalled `/healthz` and every other request.
/// Here 8 clients keep a looping plugin busy for its whole deadline (1 s) on a 2-worker
/// runtime; `/healthz` and creates the plugin allows fast must stay far below that second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_plugin_does_not_stall_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let looping = write_fixture(dir.path(), "loop");
    let extra = format!(
        "[plugin_limits]\ntimeout_ms = 1000\nfuel = 1000000000000\n{}",
        plugin_toml("looping", &looping, "deny")
    );
    let s = std::sync::Arc::new(TestServer::start_with(&extra).await);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut loopers = Vec::new();
    for _ in 0..8 {
        let (s, stop) = (s.clone(), stop.clone());
        loopers.push(tokio::spawn(async move {
            let mut timeouts = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = s.req("POST", ENDPOINTS).json(&body("boom")).send().await;
                assert!(r.problem(503)["detail"]
                    .as_str()
                    .unwrap()
                    .contains("timeout"));
                timeouts += 1;
            }
            timeouts
        }));
    }
    // Let the loopers occupy the plugin for a while first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (mut health, mut creates) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..10 {
        let started = Instant::now();
        assert_eq!(s.req("GET", "/healthz").send().await.status, StatusCode::OK);
        health = health.max(started.elapsed());
        let started = Instant::now();
        let r = s.req("POST", ENDPOINTS).json(&body("normal")).send().await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        creates = creates.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut timeouts = 0;
    for l in loopers {
        timeouts += l.await.unwrap();
    }
    assert!(timeouts >= 8, "the loopers ran: {timeouts}");
    eprintln!("8 loopers: slowest /healthz {health:?}, slowest unrelated create {creates:?}");
    // A stalled runtime shows the plugin's 1 s deadline here; a free one, milliseconds.
    let bound = Duration::from_millis(250);
    assert!(health < bound, "slowest /healthz: {health:?}");
    assert!(creates < bound, "slowest unrelated create: {creates:?}");
    std::sync::Arc::try_unwrap(s).ok().unwrap().stop().await;
}

#[tokio::test]
async fn plugins_loaded_by_a_reload_are_bounded_in_time() {
    // Without plugins the epoch thread idles; a reload must wake it, or a plugin's deadline
    // would stretch from 50 ms to many seconds.
    let dir = tempfile::tempdir().unwrap();
    let looping = write_fixture(dir.path(), "loop");
    let limits = "[plugin_limits]\ntimeout_ms = 50\nfuel = 1000000000000\n";
    let s = TestServer::start_with(limits).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        reload(&s, &plugin_toml("looping", &looping, "deny")).unwrap(),
        ["looping"]
    );
    for _ in 0..2 {
        let started = Instant::now();
        let r = s.req("POST", ENDPOINTS).json(&body("boom")).send().await;
        let took = started.elapsed();
        assert!(r.problem(503)["detail"]
            .as_str()
            .unwrap()
            .contains("timeout"));
        assert!(took < Duration::from_secs(2), "took {took:?}");
    }
    s.stop().await;
}

#[tokio::test]
async fn compiled_plugins_are_cached_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let deny = write_fixture(dir.path(), "deny");
    let s = TestServer::start_with(&plugin_toml("policy", &deny, "deny")).await;
    let cache = s.dir.path().join("plugin-cache");
    let count = |p: &std::path::Path| walk(p);
    assert!(
        count(&cache) > 0,
        "the compiled plugin is in {}",
        cache.display()
    );
    s.stop().await;
}

/// wasmtime loads a cached plugin as native code: a cache directory that another user owns
/// (one they planted in a shared place), or a link, is refused at start, not taken over.
#[tokio::test]
#[ignore = "needs root (chown to another user); CI runs as root"]
async fn a_plugin_cache_directory_another_user_owns_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let theirs = dir.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&theirs, &link).unwrap();
    for (cache, says) in [(&theirs, "owned by uid 65534"), (&link, "a link")] {
        let data = tempfile::tempdir().unwrap();
        let config = common::config(
            data.path(),
            &format!("[plugin_limits]\ncache_dir = \"{}\"\n", cache.display()),
        );
        let err = hookd::app::start(config)
            .await
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains(&cache.display().to_string()), "{err}");
        assert!(err.contains(says), "{err}");
        assert!(err.contains("not a directory of hookd's user"), "{err}");
    }
    assert_eq!(walk(&theirs), 0, "nothing was written into it");
}

fn walk(p: &std::path::Path) -> usize {
    std::fs::read_dir(p).map_or(0, |entries| {
        entries
            .map(|e| {
                let path = e.unwrap().path();
                if path.is_dir() {
                    walk(&path)
                } else {
                    1
                }
            })
            .sum()
    })
}

/// The plugins shipped in `plugins/`, once built by `bash plugins/build.sh` (CI builds them and
/// runs the ignored tests).
#[tokio::test]
#[ignore = "needs the built plugins (bash plugins/build.sh); CI runs it"]
async fn the_shipped_plugins_enforce_their_policies() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins");
    let (hosts, https) = (
        root.join("host_allowlist.wasm"),
        root.join("https_only.wasm"),
    );
    assert!(
        hosts.exists() && https.exists(),
        "the plugins are not built: run `bash plugins/build.sh`"
    );
    let extra = format!(
        "[[plugins]]\nname = \"hosts\"\npath = \"{}\"\nsettings = \"hooks.slack.com, .pagerduty.com, alerts.example.net\"\n\
         [[plugins]]\nname = \"https\"\npath = \"{}\"\n",
        hosts.display(),
        https.display()
    );
    let s = TestServer::start_with(&extra).await;
    let create = |url: &str| {
        let mut body =
            json!({"name": "n", "url": url, "signingEnabled": true, "signingSecret": ""});
        if url.contains("pagerduty") {
            // Its format (chosen from the host) needs its integration key.
            body["formatOptions"] = json!({"routingKey": "R0123456789abcdef"});
        }
        s.req("POST", ENDPOINTS).json(&body)
    };
    for url in [
        "https://hooks.slack.com/services/T00/B00/xxx",
        "https://events.pagerduty.com/v2/enqueue",
    ] {
        let r = create(url).send().await;
        assert_eq!(r.status, StatusCode::OK, "{url}: {}", r.text());
    }
    for (url, plugin, why) in [
        (
            "https://evil.example.com/",
            "hosts",
            "not on the allow-list",
        ),
        (
            "https://hooks.slack.com.evil.io/",
            "hosts",
            "not on the allow-list",
        ),
        ("http://alerts.example.net/hook", "https", "only https"),
    ] {
        let r = create(url).send().await;
        assert_eq!(r.error_fields(), ["url"], "{url}");
        let msg = r.json()["errors"][0]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            msg.contains(&format!("plugin '{plugin}'")) && msg.contains(why),
            "{url}: {msg}"
        );
    }
    s.stop().await;
}
