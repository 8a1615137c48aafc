//! The arm64 build, run on this x86-64 machine under qemu-user: the seed example, a signed
//! delivery to a local receiver (the signature checked here), a URL-policy plugin compiled by
//! wasmtime into aarch64 code and run, and a clean SIGTERM exit.
//!
//! Needs `bash config/debian/build.sh arm64` (the cross build), Debian's `qemu-user` and the
//! plugins (`bash plugins/build.sh`); `.ci/run` provides all three.
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::common::daemon::{http, prepare, Daemon};
use crate::common::receiver::Receiver;
use crate::common::{ADMIN_TOKEN, ENDPOINTS, SEED_BODY};

/// Where `config/debian/build.sh arm64` leaves the binary.
const BINARY: &str = "target/aarch64-unknown-linux-gnu/release/hookd";
/// Debian's arm64 loader and C library, installed with the cross toolchain.
const SYSROOT: &str = "/usr/aarch64-linux-gnu";
/// ELF's e_machine for AArch64.
const EM_AARCH64: u16 = 183;

fn arm64_binary() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(BINARY);
    let elf = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; build it with: bash config/debian/build.sh arm64",
            path.display()
        )
    });
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(
        u16::from_le_bytes([elf[18], elf[19]]),
        EM_AARCH64,
        "not an arm64 binary"
    );
    path
}

fn under_qemu(binary: &Path, dir: &Path) -> Command {
    let mut cmd = Command::new("qemu-aarch64");
    cmd.arg("-L").arg(SYSROOT).arg(binary);
    prepare(cmd, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the arm64 build (bash config/debian/build.sh arm64), qemu-user and the built plugins"]
async fn the_arm64_build_under_qemu() {
    let binary = arm64_binary();
    let plugin = Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/host_allowlist.wasm");
    assert!(plugin.exists(), "build the plugins: bash plugins/build.sh");
    let dir = tempfile::tempdir().unwrap();

    let version = under_qemu(&binary, dir.path())
        .arg("--version")
        .output()
        .unwrap();
    assert!(version.status.success(), "{version:?}");
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("hookd {}", env!("CARGO_PKG_VERSION"))
    );

    let rx = Receiver::start().await;
    let receiver_host = rx.addr.unwrap().ip().to_string();
    let config = dir.path().join("hookd.toml");
    std::fs::write(
        &config,
        format!(
            "[url_policy]\nallow_networks = [\"127.0.0.0/8\"]\n\
             [delivery]\nretry_schedule_secs = [1, 1]\njitter_percent = 0\npoll_interval_ms = 50\n\
             [[plugins]]\nname = \"hosts\"\npath = \"{}\"\nsettings = \"hooks.slack.com, {receiver_host}\"\n",
            plugin.display()
        ),
    )
    .unwrap();
    let mut cmd = under_qemu(&binary, dir.path());
    cmd.args(["serve", "--config"])
        .arg(&config)
        .env("HOOKD_BOOTSTRAP_TOKEN", ADMIN_TOKEN);
    let d = tokio::task::spawn_blocking(move || Daemon::start(cmd))
        .await
        .unwrap();
    let addr = d.addr.clone();
    let call = move |method: &'static str, path: String, body: Option<String>| {
        let addr = addr.clone();
        tokio::task::spawn_blocking(move || {
            http(&addr, method, &path, ADMIN_TOKEN, body.as_deref())
        })
    };

    // The seed example, through the plugin (hooks.slack.com is on its list).
    let (status, seed) = call("POST", ENDPOINTS.into(), Some(SEED_BODY.into()))
        .await
        .unwrap();
    assert_eq!(status, 200, "{seed}");
    assert_eq!(seed["signingSecretPlaintext"], "my-secret-key");
    assert_eq!(
        seed["endpoint"]["url"],
        "https://hooks.slack.com/services/T00/B00/xxx"
    );
    let seed_id = seed["endpoint"]["id"].as_str().unwrap().to_owned();
    let (status, got) = call("GET", format!("{ENDPOINTS}/{seed_id}"), None)
        .await
        .unwrap();
    assert_eq!(
        (status, &got["endpoint"]["name"]),
        (200, &json!("Slack Webhook")),
        "{got}"
    );
    // Nothing may leave the machine: the seed endpoint goes before any alert is sent.
    let (status, _) = call("DELETE", format!("{ENDPOINTS}/{seed_id}"), None)
        .await
        .unwrap();
    assert_eq!(status, 204);

    // The plugin denies a host off its list: wasmtime compiled it to aarch64 code and ran it.
    let elsewhere = json!({"name": "x", "url": "https://example.com/hook", "signingEnabled": true, "signingSecret": ""});
    let (status, denied) = call("POST", ENDPOINTS.into(), Some(elsewhere.to_string()))
        .await
        .unwrap();
    assert_eq!(status, 422, "{denied}");
    assert!(
        denied["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("is denied by plugin 'hosts': host example.com is not on the allow-list"),
        "{denied}"
    );

    // A signed delivery to the local receiver, checked against the secret.
    let secret = "arm64-receiver-secret";
    let endpoint = json!({"name": "receiver", "url": rx.url("/hook"), "signingEnabled": true, "signingSecret": secret});
    let (status, v) = call("POST", ENDPOINTS.into(), Some(endpoint.to_string()))
        .await
        .unwrap();
    assert_eq!(status, 200, "{v}");
    let alert =
        json!({"eventType": "alert.firing", "payload": {"host": "arm-1", "summary": "disk full"}});
    let (status, v) = call(
        "POST",
        "/api/v1/alerting/alerts".into(),
        Some(alert.to_string()),
    )
    .await
    .unwrap();
    assert_eq!(status, 202, "{v}");
    let got = rx.wait_for(1, 30).await;
    let delivered = &got[0];
    assert_eq!(
        delivered.header("webhook-id"),
        v["messageId"].as_str().unwrap()
    );
    let timestamp: i64 = delivered.header("webhook-timestamp").parse().unwrap();
    let expected = hookd::secrets::sign(
        secret.as_bytes(),
        &delivered.header("webhook-id"),
        timestamp,
        &delivered.body,
    );
    assert_eq!(delivered.header("webhook-signature"), expected);
    let body = delivered.json();
    assert_eq!(
        (&body["type"], &body["data"]["host"]),
        (&json!("alert.firing"), &json!("arm-1"))
    );

    // SIGTERM: a clean exit.
    let (code, _, stderr) = tokio::task::spawn_blocking(move || d.terminate())
        .await
        .unwrap();
    assert_eq!(code, 0, "{stderr:?}");
    assert!(
        stderr.iter().any(|l| l.contains("hookd stopped")),
        "{stderr:?}"
    );
}
