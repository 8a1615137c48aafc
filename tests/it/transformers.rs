//! Transformer plugins over HTTP: an endpoint with `format = "plugin:<name>"` gets what the
//! transformer returns (body, content type, headers, signed); a transformer that fails, loops,
//! bombs its memory or answers a forged header makes an attempt that gives up with
//! `transform_failed` while the server carries on; a transformer removed by a reload holds its
//! endpoint's deliveries until it is back; `hookd plugin transform` prints what one returns.

use std::time::{Duration, Instant};

use hyper::StatusCode;
use serde_json::{json, Value};

use crate::common::plugins::{transformer_toml, write_transformer};
use crate::common::receiver::Receiver;
use crate::common::{alertmanager_group, TestServer, ENDPOINTS};

/// Receivers on loopback; retries after 1 s.
const LOOPBACK: &str = "[url_policy]\nallow_networks = [\"127.0.0.0/8\"]\n\
    [delivery]\nretry_schedule_secs = [1, 1]\njitter_percent = 0\npoll_interval_ms = 50\n";

async fn endpoint(s: &TestServer, name: &str, url: &str, format: &str) -> String {
    let body = json!({"name": name, "url": url, "signingEnabled": true, "signingSecret": "my-secret-key", "format": format});
    let r = s.req("POST", ENDPOINTS).json(&body).send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["endpoint"]["format"], format);
    r.json()["endpoint"]["id"].as_str().unwrap().to_owned()
}

async fn alert(s: &TestServer, body: &Value) {
    let r = s
        .req("POST", "/api/v1/alerting/alerts")
        .json(body)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
}

/// The value of one series, 0 when it is not exposed (yet).
fn sample(metrics: &str, series: &str) -> f64 {
    crate::observability::sample(metrics, series).unwrap_or(0.0)
}

#[tokio::test]
async fn a_transformer_shapes_what_its_endpoints_get() {
    let dir = tempfile::tempdir().unwrap();
    let echo = write_transformer(dir.path(), "echo");
    let rx = Receiver::start().await;
    let s = TestServer::start_with(&format!(
        "{LOOPBACK}{}",
        transformer_toml("echo", &echo, "topic=alerts")
    ))
    .await;
    let id = endpoint(&s, "Echo", &rx.url("/in"), "plugin:echo").await;

    // Only a transformer of the configuration, by a valid name.
    for (format, why) in [
        (
            "plugin:nope",
            "names no transformer of the configuration's [[transformers]] (it has echo)",
        ),
        ("plugin:", "must be one of"),
        ("plugin:a b", "must be one of"),
    ] {
        let body = json!({"name": "x", "url": rx.url("/in"), "signingEnabled": true, "signingSecret": "", "format": format});
        let r = s.req("POST", ENDPOINTS).json(&body).send().await;
        assert_eq!(r.error_fields(), ["format"], "{format}");
        let msg = r.json()["errors"][0]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(msg.contains(why), "{format}: {msg}");
        let r = s
            .req("PATCH", &format!("{ENDPOINTS}/{id}"))
            .json(&json!({ "format": format }))
            .send()
            .await;
        assert_eq!(r.error_fields(), ["format"], "PATCH {format}");
    }

    // The request is the transformer's: its body, content type and header, signed over it.
    alert(
        &s,
        &json!({"eventType": "disk.full", "payload": {"host": "db1"}}),
    )
    .await;
    let got = rx.wait_for(1, 10).await;
    assert_eq!(got[0].body.as_ref(), br#"{"host":"db1"}"#);
    assert_eq!(got[0].header("content-type"), "text/plain");
    assert_eq!(got[0].header("x-settings"), "topic=alerts");
    assert_eq!(got[0].signatures_by(b"my-secret-key"), 1);

    // The preview runs it too.
    let r = s
        .req("POST", &format!("{ENDPOINTS}/{id}/preview"))
        .json(&json!({"eventType": "disk.full", "payload": {"a": 1}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let req = &r.json()["request"];
    assert_eq!(req["format"], "plugin:echo");
    assert_eq!(req["body"], r#"{"a":1}"#);
    assert_eq!(req["headers"]["content-type"], "text/plain");
    assert_eq!(req["headers"]["X-Settings"], "topic=alerts");
    assert_eq!(req["headers"]["webhook-signature"], "v1,****");

    // A test send gets the sample group.
    let r = s
        .req("POST", &format!("{ENDPOINTS}/{id}/test"))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["attempt"]["outcome"], "succeeded");
    let got = rx.wait_for(2, 10).await;
    assert_eq!(got[1].json()["groupLabels"]["alertname"], "HookdTest");

    let m = s.req("GET", "/metrics").no_auth().send().await.text();
    assert_eq!(
        sample(
            &m,
            "hookd_transforms_total{transformer=\"echo\",outcome=\"ok\"}"
        ),
        3.0,
        "{m}"
    );
    s.stop().await;
}

/// A transformer that says it leaves the endpoint's name unused (`uses-endpoint-name` is
/// false) is called once per event, with the name "", and every endpoint gets that request; one
/// that does not say so, or says it uses the name, is called once per endpoint with its name.
#[tokio::test]
async fn a_transformer_that_leaves_the_endpoint_name_unused_is_called_once_per_event() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start().await;
    let mut config = LOOPBACK.to_owned();
    for name in ["echo-shared", "echo-named", "echo"] {
        let path = write_transformer(dir.path(), name);
        config.push_str(&transformer_toml(name, &path, "s"));
    }
    let s = TestServer::start_with(&config).await;
    // The fixtures trap for an endpoint named "hostile": the shared one never sees the name.
    let mut shared = Vec::new();
    for (i, name) in ["hostile", "two", "three"].into_iter().enumerate() {
        shared.push(endpoint(&s, name, &rx.url(&format!("/s{i}")), "plugin:echo-shared").await);
    }
    for name in ["echo-named", "echo"] {
        for i in 0..3 {
            endpoint(
                &s,
                &format!("e{i}"),
                &rx.url("/n"),
                &format!("plugin:{name}"),
            )
            .await;
        }
    }
    for n in 0..2 {
        alert(&s, &json!({"eventType": "disk.full", "payload": {"n": n}})).await;
        let got = rx.wait_for(9 * (n + 1), 10).await;
        let bodies: Vec<&[u8]> = got[9 * n..].iter().map(|r| r.body.as_ref()).collect();
        let want = format!("{{\"n\":{n}}}");
        assert!(bodies.iter().all(|b| *b == want.as_bytes()), "{bodies:?}");
        // Each signed with the endpoint's own secret and id.
        assert!(got[9 * n..]
            .iter()
            .all(|r| r.signatures_by(b"my-secret-key") == 1));
    }
    // The hostile-named endpoint's preview, too, is made without its name (one call more).
    let r = s
        .req("POST", &format!("{ENDPOINTS}/{}/preview", shared[0]))
        .json(&json!({"eventType": "disk.full", "payload": {"p": 1}}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["request"]["body"], r#"{"p":1}"#);
    let m = s.req("GET", "/metrics").no_auth().send().await.text();
    for (name, calls) in [("echo-shared", 3.0), ("echo-named", 6.0), ("echo", 6.0)] {
        let series = format!("hookd_transforms_total{{transformer=\"{name}\",outcome=\"ok\"}}");
        assert_eq!(sample(&m, &series), calls, "{name}: {m}");
    }
    // A declaration of the wrong type is refused at start, naming it.
    let bad = write_transformer(dir.path(), "bad-declaration");
    let data = tempfile::tempdir().unwrap();
    let config = crate::common::config(data.path(), &transformer_toml("bad", &bad, ""));
    let err = hookd::app::start(config)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("uses-endpoint-name must be func() -> bool"),
        "{err}"
    );
    s.stop().await;
}

#[tokio::test]
async fn hostile_transformers_give_up_with_transform_failed_and_the_server_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start().await;
    for (limits, cases) in [
        (
            "timeout_ms = 300\nfuel = 1000000000000\nmemory_bytes = 8388608",
            vec![
                ("loop", "failed (timeout)"),
                ("memory-bomb", "failed (out of memory)"),
                (
                    "trap",
                    "failed (trap): wasm trap: wasm `unreachable` instruction executed",
                ),
                ("error", "transformer 'error': no topic is set"),
                ("bad-content-type", "the content type must be"),
                ("reserved-header", "header \"webhook-signature\""),
                ("oversized", "the body is 5000000 bytes"),
            ],
        ),
        (
            "timeout_ms = 5000\nfuel = 1000000",
            vec![("loop", "failed (out of fuel)")],
        ),
    ] {
        let mut config = format!("{LOOPBACK}[transformer_limits]\n{limits}\n");
        for (fixture, _) in &cases {
            let path = write_transformer(dir.path(), fixture);
            config.push_str(&transformer_toml(fixture, &path, ""));
        }
        let s = TestServer::start_with(&config).await;
        let mut ids = Vec::new();
        for (fixture, _) in &cases {
            let format = format!("plugin:{fixture}");
            ids.push(endpoint(&s, "hostile", &rx.url("/hostile"), &format).await);
        }
        // The same transformer, another endpoint: it is called afresh, and answers.
        let fine = endpoint(&s, "fine", &rx.url("/fine"), "plugin:loop").await;
        let received = rx.count();
        let started = Instant::now();
        alert(
            &s,
            &json!({"eventType": "disk.full", "payload": {"host": "db1"}}),
        )
        .await;
        // Never stalled while the transformers loop, bomb and trap.
        for _ in 0..5 {
            let t = Instant::now();
            assert_eq!(s.req("GET", "/healthz").send().await.status, StatusCode::OK);
            assert!(
                t.elapsed() < Duration::from_millis(500),
                "{:?}",
                t.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for ((fixture, why), id) in cases.iter().zip(&ids) {
            let a = s.wait_attempts(id, 1, 15).await;
            assert_eq!(a[0]["error"], "transform_failed", "{fixture}: {a:?}");
            assert_eq!(a[0]["outcome"], "failed", "{fixture}: {a:?}");
            assert_eq!(a[0]["statusCode"], Value::Null, "{fixture}");
            let reason = a[0]["responseBody"].as_str().unwrap();
            assert!(reason.contains(why), "{fixture}: {reason}");
        }
        let a = s.wait_attempts(&fine, 1, 15).await;
        assert_eq!(a[0]["outcome"], "succeeded", "{a:?}");
        assert!(started.elapsed() < Duration::from_secs(10));
        // Not retried: the retry would have come after 1 s.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        for ((fixture, _), id) in cases.iter().zip(&ids) {
            assert_eq!(s.attempts(id).await.len(), 1, "{fixture} was retried");
        }
        assert_eq!(
            rx.count(),
            received + 1,
            "only the fine endpoint got a request"
        );
        let m = s.req("GET", "/metrics").no_auth().send().await.text();
        assert_eq!(
            sample(
                &m,
                "hookd_transforms_total{transformer=\"trap\",outcome=\"trap\"}"
            ) + sample(
                &m,
                "hookd_transforms_total{transformer=\"loop\",outcome=\"out_of_fuel\"}"
            ),
            1.0,
            "{m}"
        );
        assert!(
            sample(
                &m,
                "hookd_notifications_failed_total{reason=\"transform_failed\"}"
            ) >= 1.0
        );
        s.stop().await;
    }
}

#[tokio::test]
async fn a_transformer_removed_by_a_reload_holds_its_deliveries_until_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let echo = write_transformer(dir.path(), "echo");
    let rx = Receiver::start().await;
    let with = transformer_toml("echo", &echo, "");
    let s = TestServer::start_with(&format!("{LOOPBACK}{with}")).await;
    let id = endpoint(&s, "Echo", &rx.url("/in"), "plugin:echo").await;
    let reload = |extra: &str| {
        let file = s.dir.path().join("reload.toml");
        let base = format!("data_dir = \"{}\"\n{LOOPBACK}", s.dir.path().display());
        std::fs::write(&file, format!("{base}{extra}")).unwrap();
        s.app.reload(Some(&file)).unwrap();
    };
    reload("");
    alert(&s, &json!({"eventType": "disk.full", "payload": {"n": 1}})).await;
    let a = s.wait_attempts(&id, 1, 10).await;
    assert_eq!(a[0]["error"], "transformer_missing", "{a:?}");
    assert_eq!(a[0]["outcome"], "retrying", "{a:?}");
    // A broken transformer is refused by the reload, and the running set stays.
    let broken = dir.path().join("broken.wasm");
    std::fs::write(&broken, b"not wasm").unwrap();
    let file = s.dir.path().join("broken.toml");
    std::fs::write(
        &file,
        format!(
            "data_dir = \"{}\"\n{}",
            s.dir.path().display(),
            transformer_toml("echo", &broken, "")
        ),
    )
    .unwrap();
    let e = s.app.reload(Some(&file)).unwrap_err();
    assert!(e.contains("transformer") || e.contains("echo"), "{e}");
    reload(&with);
    let got = rx.wait_for(1, 10).await;
    assert_eq!(got[0].body.as_ref(), br#"{"n":1}"#);
    s.stop().await;
}

#[test]
fn plugin_transform_prints_the_request() {
    let dir = tempfile::tempdir().unwrap();
    let echo = write_transformer(dir.path(), "echo");
    let error = write_transformer(dir.path(), "error");
    let payload = dir.path().join("alert.json");
    std::fs::write(
        &payload,
        r#"{"eventType": "disk.full", "payload": {"host":"db1"}}"#,
    )
    .unwrap();
    let run = |plugin: &std::path::Path, name: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_hookd"))
            .args(["plugin", "transform"])
            .arg(plugin)
            .arg("--payload")
            .arg(&payload)
            .args(["--settings", "topic=x", "--name", name])
            .output()
            .unwrap()
    };
    let out = run(&echo, "test");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "content-type: text/plain\nX-Settings: topic=x\n\n{\"host\":\"db1\"}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("transform:"));
    let out = run(&error, "hostile");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("transformer 'error': no topic is set"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Not a transformer: named.
    let out = run(&payload, "test");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid WebAssembly component"));
}

/// The ntfy transformer shipped in `plugins/`, once built by `bash plugins/build.sh` (CI builds
/// it and runs the ignored tests): a group becomes one ntfy message, within ntfy's limits,
/// however large the group.
#[tokio::test]
#[ignore = "needs the built plugins (bash plugins/build.sh); CI runs it"]
async fn the_shipped_ntfy_transformer_publishes_groups_to_ntfy() {
    let wasm = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/ntfy.wasm");
    assert!(wasm.exists(), "not built: run `bash plugins/build.sh`");
    let rx = Receiver::start().await;
    let config = format!(
        "{LOOPBACK}[delivery.hosts]\n\"ntfy.sh\" = \"127.0.0.1\"\n{}",
        transformer_toml("ntfy", &wasm, "topic=alerts")
    );
    let s = TestServer::start_with(&config).await;
    let url = rx.url("/").replacen("127.0.0.1", "ntfy.sh", 1);
    endpoint(&s, "ntfy", &url, "plugin:ntfy").await;
    for (i, n) in [3usize, 1000].into_iter().enumerate() {
        let r = s
            .req("POST", "/api/v1/alerting/alertmanager")
            .json(&alertmanager_group(
                "firing",
                n,
                if n > 3 { 2000 } else { 0 },
            ))
            .send()
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
        let got = rx.wait_for(i + 1, 20).await;
        let m = got[i].json();
        assert_eq!(got[i].header("content-type"), "application/json");
        assert_eq!(m["topic"], "alerts");
        assert!(m["title"].as_str().unwrap().contains("InstanceDown"), "{m}");
        assert!(m["tags"].to_string().contains("rotating_light"), "{m}");
        let message = m["message"].as_str().unwrap();
        assert!(message.len() <= 4096, "{n}: {} bytes", message.len());
        if n > 3 {
            assert!(message.contains("more"), "{message}");
        }
    }
    s.stop().await;
}
