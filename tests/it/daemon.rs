//! The `hookd` binary as an operator runs it: first start, configuration layering, bad values,
//! logs that never carry a secret, and SIGTERM.
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::daemon::{hookd, serve, Daemon};
use crate::common::plugins as fixtures;

const ENDPOINTS: &str = "/api/v1/alerting/webhook-endpoints";

fn seed() -> Value {
    json!({"name": "Slack Webhook", "url": "https://hooks.slack.com/services/T00/B00/xxx", "signingEnabled": true, "signingSecret": "my-secret-key"})
}

#[test]
fn first_start_prints_an_admin_token_once_and_never_logs_it() {
    let dir = tempfile::tempdir().unwrap();
    // As the README runs it: the default, relative data directory (./data).
    let serve = |dir: &Path| {
        let mut cmd = serve(dir);
        cmd.env_remove("HOOKD_DATA_DIR");
        cmd
    };
    let d = Daemon::start(serve(dir.path()));
    std::thread::sleep(Duration::from_millis(100));
    let (code, stdout, stderr) = d.terminate();
    assert_eq!(code, 0);
    let token = stdout
        .iter()
        .find(|l| l.starts_with("hkd_"))
        .expect("token printed")
        .clone();
    assert!(
        stderr.iter().all(|l| !l.contains(&token)),
        "token in the log"
    );

    // Second start: the token works, and no new token is printed.
    let d = Daemon::start(serve(dir.path()));
    let (status, v) = d.request("POST", ENDPOINTS, &token, Some(&seed()));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["signingSecretPlaintext"], "my-secret-key");
    let (code, stdout, _) = d.terminate();
    assert_eq!(code, 0);
    assert!(stdout.iter().all(|l| !l.contains("hkd_")), "{stdout:?}");
    assert!(dir.path().join("data/master.key").exists());
}

#[test]
fn logs_carry_request_ids_and_never_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let token = "bootstrap-token-for-the-log-test";
    let mut cmd = serve(dir.path());
    cmd.env("HOOKD_BOOTSTRAP_TOKEN", token)
        .env("HOOKD_LOG", "trace")
        .env("HOOKD_LOG_FORMAT", "json");
    let d = Daemon::start(cmd);
    let mut secrets = vec![token.to_owned(), "my-secret-key".to_owned()];
    let (_, v) = d.request("POST", ENDPOINTS, token, Some(&seed()));
    let id = v["endpoint"]["id"].as_str().unwrap().to_owned();
    let (_, v) = d.request(
        "POST",
        &format!("{ENDPOINTS}/{id}/rotate-secret"),
        token,
        None,
    );
    secrets.push(v["signingSecretPlaintext"].as_str().unwrap().to_owned());
    let (_, v) = d.request(
        "POST",
        "/api/v1/tokens",
        token,
        Some(&json!({"name": "t", "scopes": ["admin"]})),
    );
    secrets.push(v["tokenPlaintext"].as_str().unwrap().to_owned());
    let (status, _) = d.request("GET", ENDPOINTS, "wrong-token-value-123", None);
    assert_eq!(status, 401);
    let (code, stdout, stderr) = d.terminate();
    assert_eq!(code, 0);
    // At trace, each of the four requests is logged with its status, inside its request span.
    let served: Vec<Value> = stderr
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "request served")
        .collect();
    let statuses: Vec<u64> = served
        .iter()
        .map(|v| v["fields"]["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 200, 200, 401], "{stderr:?}");
    assert!(served.iter().all(|v| v["span"]["id"].is_string()));
    let routes: Vec<&str> = served
        .iter()
        .map(|v| v["fields"]["route"].as_str().unwrap())
        .collect();
    assert_eq!(
        routes,
        [
            "create_endpoint",
            "rotate_secret",
            "create_token",
            "list_endpoints"
        ]
    );
    for line in stdout.iter().chain(&stderr) {
        for secret in &secrets {
            assert!(
                !line.contains(secret.as_str()),
                "secret in log line: {line}"
            );
        }
        assert!(
            !line.contains("wrong-token-value"),
            "presented token in log: {line}"
        );
    }
    let created = stderr
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).expect("json log lines"))
        .find(|v| v["fields"]["message"] == "webhook endpoint created")
        .expect("creation logged");
    assert!(
        created["span"]["id"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{created}"
    );
}

/// A client's path cannot change the structure of a pretty log line either: what could (a
/// quote, a brace) is logged percent-encoded (the sibling of the forged request-id finding).
#[test]
fn client_paths_are_quoted_in_pretty_logs() {
    use std::io::{Read as _, Write as _};
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = serve(dir.path());
    cmd.env("HOOKD_BOOTSTRAP_TOKEN", "bootstrap-token-for-the-log-test")
        .env("HOOKD_LOG", "debug");
    let d = Daemon::start(cmd);
    let mut s = std::net::TcpStream::connect(&d.addr).unwrap();
    s.write_all(b"GET /x\"}:status=200 HTTP/1.1\r\nhost: x\r\nx-request-id: a}b\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let (code, _, stderr) = d.terminate();
    assert_eq!(code, 0);
    // stderr is a pipe here, not a terminal: no colour codes.
    assert!(
        stderr.iter().all(|l| !l.contains('\u{1b}')),
        "ANSI codes in a redirected log: {stderr:?}"
    );
    if answer.starts_with("HTTP/1.1 404") {
        let line = stderr
            .iter()
            .find(|l| l.contains("request served"))
            .expect("the request is logged");
        assert!(line.contains("path=/x%22%7D:status%3D200 "), "{line}");
        assert!(
            !line.contains("a}b"),
            "the unsafe request id is replaced: {line}"
        );
    } else {
        // The HTTP parser refused the request line outright: nothing reached the log.
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    }
}

/// The review's log flood: at `debug`, one client could make the HTTP/2 library log every frame
/// (5 MB of PINGs gave 42 MB of log). Libraries now stay at `warn` unless the filter names them.
#[test]
fn library_logs_stay_at_warn_at_debug() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = serve(dir.path());
    cmd.env("HOOKD_BOOTSTRAP_TOKEN", "bootstrap-token-for-the-log-test")
        .env("HOOKD_LOG", "debug")
        .env("HOOKD_LOG_FORMAT", "json");
    let d = Daemon::start(cmd);
    let mut h2 = std::net::TcpStream::connect(&d.addr).unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .unwrap();
    for i in 0..200u8 {
        h2.write_all(&[0, 0, 8, 6, 0, 0, 0, 0, 0, i, i, i, i, i, i, i, i])
            .unwrap();
    }
    h2.flush().unwrap();
    let (status, _) = d.request("GET", "/healthz", "", None);
    assert_eq!(status, 200);
    std::thread::sleep(Duration::from_millis(200));
    drop(h2);
    let (code, _, stderr) = d.terminate();
    assert_eq!(code, 0);
    let lines: Vec<Value> = stderr
        .iter()
        .map(|l| serde_json::from_str(l).expect("json log lines"))
        .collect();
    assert!(
        lines
            .iter()
            .any(|v| v["fields"]["message"] == "request served"),
        "hookd's own debug lines are there: {stderr:?}"
    );
    // The path as it is, not quoted a second time.
    assert!(
        lines.iter().any(|v| v["fields"]["path"] == "/healthz"),
        "{stderr:?}"
    );
    let library: Vec<&Value> = lines
        .iter()
        .filter(|v| {
            let target = v["target"].as_str().unwrap_or("");
            !target.starts_with("hookd") && v["level"] != "WARN" && v["level"] != "ERROR"
        })
        .collect();
    assert!(library.is_empty(), "library lines below warn: {library:?}");
}

#[test]
fn config_file_then_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hookd.toml");
    std::fs::write(
        &file,
        "log_format = \"json\"\n[limits]\nmax_body_bytes = 2048\n[url_policy]\nallow_networks = [\"10.0.0.0/8\"]\n",
    )
    .unwrap();
    let token = "layering-token-0123456789";
    let mut cmd = hookd(dir.path());
    cmd.args(["serve", "--config"]).arg(&file);
    // The environment beats the file.
    cmd.env("HOOKD_LIMITS__MAX_BODY_BYTES", "4096")
        .env("HOOKD_BOOTSTRAP_TOKEN", token);
    let d = Daemon::start(cmd);
    let body = |n: usize| json!({"name": "x".repeat(n), "url": "http://10.1.2.3/hook", "signingEnabled": true, "signingSecret": ""});
    // 3000 bytes: over the file's 2048, under the environment's 4096.
    let (status, v) = d.request("POST", ENDPOINTS, token, Some(&body(2900)));
    assert_eq!(status, 422, "only the name's length rule applies: {v}");
    assert_eq!(v["errors"][0]["field"], "name");
    let (status, _) = d.request("POST", ENDPOINTS, token, Some(&body(5000)));
    assert_eq!(status, 413);
    // The file's allow-list applies.
    let (status, v) = d.request("POST", ENDPOINTS, token, Some(&body(10)));
    assert_eq!(status, 200, "{v}");
    let (code, _, stderr) = d.terminate();
    assert_eq!(code, 0);
    assert!(
        serde_json::from_str::<Value>(&stderr[0]).is_ok(),
        "the file's log_format: {}",
        stderr[0]
    );
}

#[test]
fn bad_values_stop_startup_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value, expect) in [
        ("HOOKD_LISTEN", "not-an-address", "listen"),
        ("HOOKD_LOG_FORMAT", "xml", "log_format"),
        ("HOOKD_LOG", "hookd=[[", "HOOKD_LOG"),
        (
            "HOOKD_LIMITS__MAX_BODY_BYTES",
            "lots",
            "HOOKD_LIMITS__MAX_BODY_BYTES",
        ),
        (
            "HOOKD_URL_POLICY__MAX_URL_LENGTH",
            "1",
            "url_policy.max_url_length",
        ),
        ("HOOKD_MASTER_KEY", "c2hvcnQ=", "HOOKD_MASTER_KEY"),
        ("HOOKD_BOOTSTRAP_TOKEN", "short", "HOOKD_BOOTSTRAP_TOKEN"),
        ("HOOKD_METRICS__TOKEN", "4839", "metrics.token"),
        // A typo inside a known table is still caught.
        ("HOOKD_LIMITS__MAX_CONECTIONS", "5", "max_conections"),
        ("HOOKD_RETENTION__BATCH", "0", "retention.batch"),
        // The variable that exists, not one per list element.
        (
            "HOOKD_URL_POLICY__ALLOW_NETWORKS",
            "[\"10.0.0.0/33\"]",
            "(from HOOKD_URL_POLICY__ALLOW_NETWORKS)",
        ),
    ] {
        let out = hookd(dir.path())
            .env(var, value)
            .arg("serve")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{var}={value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{var}={value}: {err}");
        if var.contains("KEY") || var.contains("TOKEN") {
            assert!(!err.contains(value), "the secret value is echoed: {err}");
        }
    }
    let out = hookd(dir.path())
        .args(["serve", "--config", "missing.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));
    // An all-digit secret is a string like any other (figment alone reads it as a number,
    // refuses it and prints it).
    let digits = "48391234567890123456789";
    let out = hookd(dir.path())
        .args(["config", "check"])
        .env("HOOKD_METRICS__TOKEN", digits)
        .env("HOOKD_BOOTSTRAP_TOKEN", "1234567890123456")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(!shown.contains(digits) && !shown.contains("1234567890123456"));
    assert!(shown.contains("token = \"***\""), "{shown}");
    // A lower connection limit alone starts: the per-address default follows it.
    let out = hookd(dir.path())
        .args(["config", "check"])
        .env("HOOKD_LIMITS__MAX_CONNECTIONS", "50")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("max_connections_per_ip = 50"));
}

/// A HOOKD_ variable that names no configuration key at all (HOOKD_TOKEN for `hookd backup`,
/// a CI's own) does not stop startup: it is named in a warning.
#[test]
fn unrelated_hookd_variables_are_warned_about_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = serve(dir.path());
    cmd.env("HOOKD_TOKEN", "hkd_something")
        .env("HOOKD_REQUIRE_BUILT_PLUGINS", "1");
    let d = Daemon::start(cmd);
    let (code, _, stderr) = d.terminate();
    assert_eq!(code, 0);
    for name in ["HOOKD_TOKEN", "HOOKD_REQUIRE_BUILT_PLUGINS"] {
        assert!(
            stderr
                .iter()
                .any(|l| l.contains("WARN") && l.contains(name) && l.contains("ignored")),
            "{name}: {stderr:?}"
        );
    }
    assert!(!stderr.iter().any(|l| l.contains("hkd_something")));
}

/// The operator's backup cycle with the binary: `hookd backup` against the running daemon,
/// `hookd compact` (refused while the daemon runs), `hookd restore` into a new directory, and
/// a daemon started on it.
#[test]
fn backup_restore_and_compact_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let token = "bootstrap-token-for-the-backup-test";
    let mut cmd = serve(dir.path());
    cmd.env("HOOKD_BOOTSTRAP_TOKEN", token);
    let d = Daemon::start(cmd);
    let (status, v) = d.request("POST", ENDPOINTS, token, Some(&seed()));
    assert_eq!(status, 200);
    let id = v["endpoint"]["id"].as_str().unwrap().to_owned();
    let file = dir.path().join("nightly.hookdbak");
    let url = format!("http://{}", d.addr);
    let run = |args: &[&str], token: Option<&str>| {
        let mut c = hookd(dir.path());
        c.args(args);
        if let Some(t) = token {
            c.env("HOOKD_TOKEN", t);
        }
        let out = c.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let file_arg = file.to_str().unwrap();
    let (code, out, err) = run(&["backup", "--to", file_arg, "--url", &url], Some(token));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("records") && out.contains("master key"),
        "{out}"
    );
    assert!(file.exists() && !dir.path().join("nightly.partial").exists());
    // It holds endpoint URLs: owner-only, however loose the umask.
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The partial file is created new, never written through one that is there already
    // (another user's, or a link).
    let partial = dir.path().join("nightly.partial");
    std::fs::write(&partial, b"planted").unwrap();
    let (code, _, err) = run(&["backup", "--to", file_arg, "--url", &url], Some(token));
    assert_eq!(code, Some(1));
    assert!(err.contains("nightly.partial exists"), "{err}");
    assert_eq!(std::fs::read(&partial).unwrap(), b"planted");
    std::fs::remove_file(&partial).unwrap();
    let (code, _, err) = run(
        &["backup", "--to", file_arg, "--url", &url],
        Some("wrong-token-1234567"),
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("401"), "{err}");
    let (code, _, err) = run(&["backup", "--to", file_arg, "--url", &url], None);
    assert_eq!(code, Some(1));
    assert!(err.contains("HOOKD_TOKEN"), "{err}");

    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap();
    let (code, _, err) = run(&["compact", "--data-dir", data_arg], None);
    assert_eq!(code, Some(1));
    assert!(err.contains("running hookd"), "{err}");
    let (code, _, _) = d.terminate();
    assert_eq!(code, 0);
    let (code, out, err) = run(&["compact", "--data-dir", data_arg], None);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(" -> ") && out.contains("MB"), "{out}");

    let restored = dir.path().join("restored");
    let restored_arg = restored.to_str().unwrap();
    let (code, out, err) = run(
        &["restore", "--from", file_arg, "--data-dir", restored_arg],
        None,
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("restored"), "{out}");
    let (code, _, err) = run(
        &["restore", "--from", file_arg, "--data-dir", restored_arg],
        None,
    );
    assert_eq!(code, Some(1));
    assert!(
        err.contains("not empty") && err.contains("--force"),
        "{err}"
    );
    std::fs::copy(data.join("master.key"), restored.join("master.key")).unwrap();
    let mut cmd = serve(dir.path());
    cmd.env("HOOKD_DATA_DIR", &restored);
    let d = Daemon::start(cmd);
    let (status, v) = d.request("GET", &format!("{ENDPOINTS}/{id}"), token, None);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["endpoint"]["name"], "Slack Webhook");
    let (code, _, _) = d.terminate();
    assert_eq!(code, 0);
}

#[test]
fn help_and_version() {
    let out = Command::new(env!("CARGO_BIN_EXE_hookd"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("hookd "));
    let out = Command::new(env!("CARGO_BIN_EXE_hookd"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("serve"));
}

#[test]
fn sighup_reloads_plugins_and_keeps_them_when_the_new_set_is_broken() {
    let dir = tempfile::tempdir().unwrap();
    let deny = fixtures::write_fixture(dir.path(), "deny");
    let wrong = fixtures::write_fixture(dir.path(), "wrong-world");
    let file = dir.path().join("hookd.toml");
    std::fs::write(&file, fixtures::plugin_toml("policy", &deny, "deny")).unwrap();
    let token = "sighup-token-0123456789";
    let mut cmd = serve(dir.path());
    cmd.arg("--config")
        .arg(&file)
        .env("HOOKD_BOOTSTRAP_TOKEN", token);
    let mut d = Daemon::start(cmd);
    let boom = json!({"name": "boom", "url": "https://a.example.com/", "signingEnabled": true, "signingSecret": ""});
    assert_eq!(d.request("POST", ENDPOINTS, token, Some(&boom)).0, 422);

    // A broken set is refused; the old one stays.
    std::fs::write(&file, fixtures::plugin_toml("bad", &wrong, "deny")).unwrap();
    d.signal("HUP");
    d.wait_log("reload refused");
    assert_eq!(d.request("POST", ENDPOINTS, token, Some(&boom)).0, 422);

    // A good set replaces it.
    std::fs::write(&file, "").unwrap();
    d.signal("HUP");
    d.wait_log("configuration reloaded");
    assert_eq!(d.request("POST", ENDPOINTS, token, Some(&boom)).0, 200);
    let (code, _, _) = d.terminate();
    assert_eq!(code, 0);
}

/// SIGHUP applies what can change while running (here the log filter and the URL allow-list)
/// and names each changed key that needs a restart (here limits.max_connections, and `[tls]` on
/// a cleartext listener: HTTPS is turned on by a restart), keeping its running value.
#[test]
fn sighup_applies_reloadable_keys_and_names_restart_only_ones() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hookd.toml");
    std::fs::write(&file, "").unwrap();
    let token = "sighup-token-0123456789";
    let mut cmd = serve(dir.path());
    cmd.arg("--config")
        .arg(&file)
        .env("HOOKD_BOOTSTRAP_TOKEN", token);
    let mut d = Daemon::start(cmd);
    let local = json!({"name": "lan", "url": "http://127.0.0.1:9/hook", "signingEnabled": true, "signingSecret": ""});
    assert_eq!(d.request("POST", ENDPOINTS, token, Some(&local)).0, 422);
    let pki = crate::common::pki::Pki::new(&dir.path().join("pki"), "hookd");
    let tls = crate::common::pki::tls_toml(&pki.server("server"), None);
    std::fs::write(
        &file,
        format!("log = \"hookd=debug,info\"\n[url_policy]\nallow_networks = [\"127.0.0.0/8\"]\n[limits]\nmax_connections = 500\n{tls}"),
    )
    .unwrap();
    d.signal("HUP");
    d.wait_log("configuration reloaded");
    for key in ["tls.cert_file", "tls.key_file"] {
        assert!(
            d.stderr_lines
                .iter()
                .any(|l| l.contains("only after a restart") && l.contains(key)),
            "{key} is named as needing a restart: {:?}",
            d.stderr_lines
        );
    }
    let restart = d
        .stderr_lines
        .iter()
        .find(|l| l.contains("only after a restart"))
        .expect("the restart-only key is named");
    assert!(restart.contains("limits.max_connections"), "{restart}");
    let reloaded = d
        .stderr_lines
        .iter()
        .find(|l| l.contains("configuration reloaded"))
        .unwrap();
    assert!(
        reloaded.contains("url_policy.allow_networks") && reloaded.contains("\"log\""),
        "{reloaded}"
    );
    // The allow-list applies at once ...
    assert_eq!(d.request("POST", ENDPOINTS, token, Some(&local)).0, 200);
    // ... and so does the log filter: requests are logged at debug now.
    let (code, _, stderr) = d.terminate();
    assert_eq!(code, 0);
    assert!(
        stderr.iter().any(|l| l.contains("request served")),
        "{stderr:?}"
    );
}

#[test]
fn config_check_prints_the_effective_configuration_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hookd.toml");
    std::fs::write(&file, "[retention]\nmessages_secs = 3600\n").unwrap();
    let out = hookd(dir.path())
        .args(["config", "check", "--config"])
        .arg(&file)
        .env(
            "HOOKD_MASTER_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .env("HOOKD_METRICS__TOKEN", "scrape-token-abcdefghij")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("messages_secs = 3600"), "{shown}");
    assert!(shown.contains("master_key = \"***\""), "{shown}");
    assert!(
        !shown.contains("AAAA") && !shown.contains("scrape-token"),
        "{shown}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "no store was opened or created"
    );
    let out = hookd(dir.path())
        .args(["config", "check"])
        .env("HOOKD_RETENTION__BATCH", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("retention.batch"));
}

/// `hookd config check` refuses what `serve` refuses, before any store: every key at fault in
/// one run (type errors, unknown keys and bad values alike), a plugin that imports something, a
/// missing plugin file, a missing CA bundle; and it loads the plugins of a good configuration.
#[test]
fn config_check_predicts_serve() {
    let dir = tempfile::tempdir().unwrap();
    let check = |toml: &str| {
        let file = dir.path().join("check.toml");
        std::fs::write(&file, toml).unwrap();
        let out = hookd(dir.path())
            .args(["config", "check", "--config"])
            .arg(&file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr,
        )
    };
    let (code, _, stderr) = check(
        "colour = \"blue\"\n[retention]\nmessages_secs = \"soon\"\n[delivery]\nbogus = 1\n\
         retry_schedule_secs = \"often\"\n[store]\nmax_batch = 0\n",
    );
    assert_eq!(code, Some(1), "{stderr}");
    for key in [
        "colour",
        "retention.messages_secs",
        "delivery.bogus: unknown field",
        "delivery.retry_schedule_secs",
        "store.max_batch",
    ] {
        assert!(stderr.contains(key), "{key} not named: {stderr}");
    }
    assert!(stderr.contains("check.toml"), "{stderr}");
    assert!(!stderr.contains(".rs"), "no source code location: {stderr}");

    let wasi = fixtures::write_fixture(dir.path(), "imports-wasi");
    let missing = dir.path().join("missing.wasm");
    for (toml, expect) in [
        (
            fixtures::plugin_toml("wasi", &wasi, "deny"),
            "imports wasi:random/random@0.2.0",
        ),
        (
            fixtures::plugin_toml("gone", &missing, "deny"),
            "cannot read",
        ),
        (
            fixtures::transformer_toml("gone", &missing, ""),
            "cannot read",
        ),
        (
            format!("[delivery]\nca_bundle = \"{}\"\n", missing.display()),
            "missing.wasm",
        ),
    ] {
        let (code, _, stderr) = check(&toml);
        assert_eq!(code, Some(1), "{toml}: {stderr}");
        assert!(stderr.contains(expect), "{toml}: {stderr}");
    }

    let deny = fixtures::write_fixture(dir.path(), "deny");
    let echo = fixtures::write_transformer(dir.path(), "echo");
    let (code, stdout, stderr) = check(&format!(
        "{}{}",
        fixtures::plugin_toml("policy", &deny, "deny"),
        fixtures::transformer_toml("echo", &echo, "")
    ));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("1 URL-policy plugin(s) and 1 transformer(s) loaded"),
        "{stdout}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "no store, no cache: {:?}",
        std::fs::read_dir(dir.path()).unwrap().collect::<Vec<_>>()
    );
}

#[test]
fn plugin_check_prints_the_verdict_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let deny = fixtures::write_fixture(dir.path(), "deny");
    // The shared, predictable cache directory it used: planted by someone else, it must be
    // neither used nor written (a compiled module there would be loaded as native code).
    let tmp = dir.path().join("tmp");
    let planted = tmp.join("hookd-plugin-cache");
    std::fs::create_dir_all(&planted).unwrap();
    let run = |name: &str| {
        hookd(dir.path())
            .args(["plugin", "check"])
            .arg(&deny)
            .args(["https://a.example.com/", "--name", name])
            .env("TMPDIR", &tmp)
            .output()
            .unwrap()
    };
    let out = run("boom");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("check: "));
    assert!(String::from_utf8_lossy(&out.stderr).contains("deny: boom is not allowed!"));
    let out = run("normal");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("allow"));
    assert_eq!(std::fs::read_dir(&planted).unwrap().count(), 0);
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        1,
        "no other cache"
    );
    let wrong = fixtures::write_fixture(dir.path(), "imports-wasi");
    let out = hookd(dir.path())
        .args(["plugin", "check"])
        .arg(&wrong)
        .arg("https://a.example.com/")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("imports wasi:random"));
}

/// Once hookd has answered 202, the alert is on disk: `kill -9` right after loses nothing, and
/// the restarted daemon delivers it.
#[test]
fn an_accepted_alert_survives_kill_9() {
    use std::io::{Read as _, Write as _};
    let dir = tempfile::tempdir().unwrap();
    // A port with nothing listening on it yet: the first attempts fail to connect.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let token = "kill-nine-token-0123456789";
    let daemon = || {
        let mut cmd = serve(dir.path());
        cmd.env("HOOKD_BOOTSTRAP_TOKEN", token)
            .env("HOOKD_URL_POLICY__ALLOW_NETWORKS", "[\"127.0.0.0/8\"]")
            .env(
                "HOOKD_DELIVERY__RETRY_SCHEDULE_SECS",
                "[1, 1, 1, 1, 1, 1, 1, 1]",
            )
            .env("HOOKD_DELIVERY__JITTER_PERCENT", "0")
            .env("HOOKD_DELIVERY__POLL_INTERVAL_MS", "50");
        Daemon::start(cmd)
    };
    let mut d = daemon();
    let endpoint = json!({"name": "later", "url": format!("http://127.0.0.1:{port}/hook"), "signingEnabled": true, "signingSecret": ""});
    assert_eq!(d.request("POST", ENDPOINTS, token, Some(&endpoint)).0, 200);
    let (status, v) = d.request(
        "POST",
        "/api/v1/alerting/alerts",
        token,
        Some(&json!({"eventType": "alert.firing", "payload": {"host": "db-1"}})),
    );
    assert_eq!(status, 202, "{v}");
    let msg_id = v["messageId"].as_str().unwrap().to_owned();
    d.child.kill().unwrap(); // SIGKILL
    let _ = d.child.wait();

    // Now a receiver listens, and hookd comes back.
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let mut buf = vec![0u8; 65536];
            let n = s.read(&mut buf).unwrap_or(0);
            let _ = s.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n");
            if tx
                .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                .is_err()
            {
                return;
            }
        }
    });
    let d = daemon();
    let request = rx
        .recv_timeout(Duration::from_secs(15))
        .expect("delivered after the restart");
    assert!(
        request
            .to_ascii_lowercase()
            .contains(&format!("webhook-id: {msg_id}")),
        "{request}"
    );
    assert!(request.contains("webhook-signature: v1,"), "{request}");
    let (code, _, _) = d.terminate();
    assert_eq!(code, 0);
}

/// The records of a backup file, by table, without the tokens table (using a token records
/// when it was last used, so it changes as the test reads).
fn backup_records(file: &Path) -> Vec<(u8, Vec<u8>, Vec<u8>)> {
    let bytes = std::fs::read(file).unwrap();
    let header = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
    let mut at = 12 + header;
    let field = |at: &mut usize| {
        let n = u32::from_le_bytes(bytes[*at..*at + 4].try_into().unwrap()) as usize;
        *at += 4 + n;
        bytes[*at - n..*at].to_vec()
    };
    let mut out = Vec::new();
    loop {
        let table = bytes[at];
        at += 1;
        if table == 0 {
            return out;
        }
        let key = field(&mut at);
        let value = field(&mut at);
        if table != 2 {
            out.push((table, key, value));
        }
    }
}

/// Between durable commits, what a lone write changed is only in the commit log (the store
/// file falls back to its last durable commit at a crash): `kill -9` after every kind of write
/// (creates, a rename, a delete, a secret rotation, a token, an alert with its deliveries and
/// attempts), and the restarted daemon replays the log and holds every record as it was, table
/// by table, as two backups show.
#[test]
fn every_kind_of_write_survives_kill_9_through_the_commit_log() {
    let dir = tempfile::tempdir().unwrap();
    let token = "commit-log-token-0123456789";
    let daemon = || {
        let mut cmd = serve(dir.path());
        cmd.env("HOOKD_BOOTSTRAP_TOKEN", token)
            .env("HOOKD_URL_POLICY__ALLOW_NETWORKS", "[\"127.0.0.0/8\"]")
            .env("HOOKD_DELIVERY__RETRY_SCHEDULE_SECS", "[3600]")
            .env("HOOKD_DELIVERY__JITTER_PERCENT", "0")
            .env("HOOKD_DELIVERY__POLL_INTERVAL_MS", "20");
        Daemon::start(cmd)
    };
    let backup = |d: &Daemon, name: &str| {
        let to = dir.path().join(name);
        let out = hookd(dir.path())
            .args(["backup", "--to"])
            .arg(&to)
            .args(["--url", &format!("http://{}", d.addr)])
            .env("HOOKD_TOKEN", token)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        backup_records(&to)
    };
    let mut d = daemon();
    // A port nothing listens on: each delivery fails once and waits an hour.
    let nowhere = "http://127.0.0.1:9/hook";
    let mut ids = Vec::new();
    for name in ["kept", "renamed", "deleted", "rotated"] {
        let body =
            json!({"name": name, "url": nowhere, "signingEnabled": true, "signingSecret": ""});
        let (status, v) = d.request("POST", ENDPOINTS, token, Some(&body));
        assert_eq!(status, 200, "{v}");
        ids.push(v["endpoint"]["id"].as_str().unwrap().to_owned());
    }
    let one = |i: usize| format!("{ENDPOINTS}/{}", ids[i]);
    let rename = json!({"name": "renamed again"});
    assert_eq!(d.request("PATCH", &one(1), token, Some(&rename)).0, 200);
    assert_eq!(d.request("DELETE", &one(2), token, None).0, 204);
    let rotate = format!("{}/rotate-secret", one(3));
    assert_eq!(d.request("POST", &rotate, token, None).0, 200);
    let scopes = json!({"name": "reader", "scopes": ["endpoints:read"]});
    let (status, created) = d.request("POST", "/api/v1/tokens", token, Some(&scopes));
    assert_eq!(status, 200, "{created}");
    let alert = json!({"eventType": "alert.firing", "payload": {"host": "db-1"}});
    let (status, v) = d.request("POST", "/api/v1/alerting/alerts", token, Some(&alert));
    assert_eq!((status, v["deliveries"].as_u64()), (202, Some(3)), "{v}");
    // Every delivery has failed once and recorded its attempt.
    let attempts = |d: &Daemon, i: usize| {
        let (_, v) = d.request("GET", &format!("{}/attempts", one(i)), token, None);
        v["attempts"].as_array().map_or(0, Vec::len)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while [0, 1, 3].iter().any(|&i| attempts(&d, i) == 0) {
        assert!(std::time::Instant::now() < deadline, "attempts recorded");
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = backup(&d, "before.hookdbak");
    assert!(before.len() > 20, "{} records", before.len());
    d.child.kill().unwrap(); // SIGKILL
    let _ = d.child.wait();
    let log = dir.path().join("data/hookd.redb-log");
    assert_eq!(std::fs::metadata(&log).unwrap().len(), 4 << 20);

    let mut d = daemon();
    assert_eq!(backup(&d, "after.hookdbak"), before);
    d.wait_log("replayed its commit log");
    let reader = created["tokenPlaintext"].as_str().unwrap();
    assert_eq!(d.request("GET", &one(0), reader, None).0, 200);
    assert_eq!(d.request("GET", &one(2), reader, None).0, 404);
    let (code, _, _) = d.terminate();
    assert_eq!(code, 0);
    // A clean stop leaves nothing to replay.
    let mut d = daemon();
    assert_eq!(backup(&d, "again.hookdbak"), before);
    assert!(!d.stderr_lines.iter().any(|l| l.contains("replayed")));
    d.wait_log("listening");
    let (_, _, stderr) = d.terminate();
    assert!(!stderr.iter().any(|l| l.contains("replayed")), "{stderr:?}");
}

/// Under systemd's `Type=notify`: READY=1 once the store is open and the listener bound (a
/// request succeeds the moment it arrives), RELOADING=1 then READY=1 around a SIGHUP, and
/// STOPPING=1 at SIGTERM, all on the datagram socket named by NOTIFY_SOCKET.
#[test]
fn tells_systemd_when_ready_reloading_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let recv = || {
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf).expect("a notification");
        String::from_utf8(buf[..n].to_vec()).unwrap()
    };
    let token = "notify-token-0123456789";
    let mut cmd = serve(dir.path());
    cmd.env("NOTIFY_SOCKET", &socket_path)
        .env("HOOKD_BOOTSTRAP_TOKEN", token);
    let d = Daemon::start(cmd);
    let ready = recv();
    assert!(ready.starts_with("READY=1\n"), "{ready:?}");
    assert!(
        ready.contains(&format!("STATUS=serving on {}", d.addr)),
        "{ready:?}"
    );
    assert_eq!(d.request("GET", ENDPOINTS, token, None).0, 200);

    d.signal("HUP");
    assert!(recv().starts_with("RELOADING=1\n"));
    assert!(recv().starts_with("READY=1\n"));

    let (code, _, stderr) = d.terminate();
    assert_eq!(code, 0, "{stderr:?}");
    assert!(recv().starts_with("STOPPING=1\n"));
}

#[test]
fn a_malformed_notify_socket_stops_startup_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["relative/notify.sock", ""] {
        let out = serve(dir.path())
            .env("NOTIFY_SOCKET", bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{bad:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("NOTIFY_SOCKET"), "{bad:?}: {stderr}");
    }
}

/// A SIGTERM closes the store cleanly, so the next start opens it at once instead of checking
/// every page of it (which takes ~1.5 ms per MB: seconds on a large store).
#[test]
fn a_stop_closes_the_store_so_the_next_start_does_not_check_it() {
    let dir = tempfile::tempdir().unwrap();
    let token = "clean-close-token-0123456789";
    let start = || {
        let mut cmd = serve(dir.path());
        cmd.env("HOOKD_BOOTSTRAP_TOKEN", token);
        Daemon::start(cmd)
    };
    let d = start();
    assert_eq!(d.request("POST", ENDPOINTS, token, Some(&seed())).0, 200);
    let (code, _, stderr) = d.terminate();
    assert_eq!(code, 0);
    assert!(
        stderr.iter().any(|l| l.contains("the store is closed")),
        "{stderr:?}"
    );
    // Refused starts, before the store is opened (a missing plugin) or after (a wrong master
    // key), leave it closed cleanly too.
    let broken = dir.path().join("broken.toml");
    let missing = dir.path().join("missing.wasm");
    std::fs::write(&broken, fixtures::plugin_toml("gone", &missing, "deny")).unwrap();
    for (extra, env, expect) in [
        (Some(&broken), None, "cannot read"),
        (
            None,
            Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            "master key: it is not the key",
        ),
    ] {
        let mut cmd = serve(dir.path());
        if let Some(file) = extra {
            cmd.arg("--config").arg(file);
        }
        if let Some(key) = env {
            cmd.env("HOOKD_MASTER_KEY", key);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expect), "{stderr}");
    }
    let d = start();
    let (status, list) = d.request("GET", ENDPOINTS, token, None);
    assert_eq!(status, 200);
    assert_eq!(list["endpoints"].as_array().unwrap().len(), 1, "{list}");
    let (code, _, stderr) = d.terminate();
    assert_eq!(code, 0);
    assert!(
        !stderr.iter().any(|l| l.contains("not closed cleanly")),
        "a start after a clean stop and two refused starts checked the store: {stderr:?}"
    );
}

/// The way back in when no admin token works (lost, revoked, expired): `hookd token create`
/// writes one into the stopped daemon's store; it refuses while the daemon runs, without the
/// master key, and for a directory with no store.
#[test]
fn token_create_is_the_offline_way_back_in() {
    let dir = tempfile::tempdir().unwrap();
    let create = |extra: &[&str]| {
        hookd(dir.path())
            .args(["token", "create", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(extra)
            .output()
            .unwrap()
    };
    let out = create(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no store here"));

    let mut cmd = serve(dir.path());
    cmd.env(
        "HOOKD_BOOTSTRAP_TOKEN",
        "bootstrap-token-for-the-offline-test",
    );
    let daemon = Daemon::start(cmd);
    let out = create(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("running hookd"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, _, _) = daemon.terminate();
    assert_eq!(code, 0);

    let out = create(&["--scopes", "admin,root"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown scope \"root\""));
    let wrong = hookd(dir.path())
        .args(["token", "create", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("HOOKD_MASTER_KEY", "A".repeat(43) + "=")
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("master key"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );

    let out = create(&["--name", "break-glass"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("hkd_"), "{token}");
    let daemon = Daemon::start(serve(dir.path()));
    let (status, body) = daemon.request("GET", "/api/v1/tokens", &token, None);
    assert_eq!(status, 200, "{body}");
    assert!(body.to_string().contains("break-glass"));
    daemon.terminate();
}

/// The README's troubleshooting table quotes messages hookd really gives: each quoted piece is
/// in the source that says it.
#[test]
fn the_troubleshooting_table_quotes_real_messages() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    let readme = read("README.md");
    let table = &readme[readme.find("### Troubleshooting").expect("the chapter")..];
    for (quoted, pieces, file) in [
        (
            "`URL-policy plugin 'NAME' failed (timeout), so the change was not made`",
            &[
                "URL-policy plugin '",
                "' failed (",
                "), so the change was not made",
            ][..],
            "src/api/endpoints.rs",
        ),
        (
            "`... has N bytes free, under store.min_free_bytes (M)`",
            &[" bytes free, under store.min_free_bytes ("][..],
            "src/store/types.rs",
        ),
        (
            "`... is full (N bytes free)`",
            &[" is full (", " bytes free)"][..],
            "src/store/types.rs",
        ),
        (
            "`the store was not closed cleanly; checking it`",
            &["the store was not closed cleanly; checking it"][..],
            "src/store/embedded/mod.rs",
        ),
        (
            "`master key: it is not the key ... was created with`",
            &["master key: {0}", "it is not the key {} was created with"][..],
            "src/app.rs",
        ),
        (
            "`transformer_missing`",
            &["\"transformer_missing\""][..],
            "src/delivery/attempt.rs",
        ),
        (
            "`transform_failed`",
            &["\"transform_failed\""][..],
            "src/delivery/attempt.rs",
        ),
        (
            "log `TLS handshake failed`",
            &["\"TLS handshake failed\""][..],
            "src/server/mod.rs",
        ),
        (
            "`tls.cert_file ...: the certificate has expired`",
            &[
                "tls.cert_file {shown}: {why}",
                "the certificate has expired",
            ][..],
            "src/tls.rs",
        ),
        (
            "``... a `hookd rekey` was interrupted, run it again to finish``",
            &["a `hookd rekey` was interrupted, run it again to finish"][..],
            "src/app.rs",
        ),
        (
            "`403` `client-certificate-required`",
            &["\"client-certificate-required\""][..],
            "src/error.rs",
        ),
    ] {
        assert!(table.contains(quoted), "the table lacks {quoted}");
        let source = read(file);
        for piece in pieces {
            assert!(source.contains(piece), "{file} does not say {piece:?}");
        }
    }
}
