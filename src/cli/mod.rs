//! The operator's commands besides `serve`: `backup` (against a running daemon), `restore` and
//! `compact` (offline), and the offline renderers `format render` and `plugin transform`. Each
//! returns what to print, or an error message.

pub mod args;

use std::io::{IsTerminal as _, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;

use crate::store::{backup, offline};

/// How long the backup client waits for the daemon to answer at all.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long it waits for the next chunk of a backup in progress.
const STALL_TIMEOUT: Duration = Duration::from_secs(120);

/// An error with its causes ("client error (Connect): invalid peer certificate: UnknownIssuer").
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let said = cause.to_string();
        if !text.ends_with(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        next = cause.source();
    }
    text
}

fn mb(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let mb = bytes as f64 / 1_000_000.0;
    format!("{mb:.1} MB")
}

/// How `hookd backup` meets a daemon that serves HTTPS: the web roots and `--cacert`'s CAs
/// trusted, and `--cert`/`--key` presented if given.
#[derive(Debug, Default)]
pub struct ClientTls {
    pub cacert: Option<std::path::PathBuf>,
    pub identity: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl ClientTls {
    fn config(&self) -> Result<rustls::ClientConfig, String> {
        let roots = crate::tls::web_roots_and(self.cacert.as_deref()).map_err(|e| {
            let file = self.cacert.as_deref().unwrap_or(Path::new(""));
            format!("--cacert {}: {e}", file.display())
        })?;
        let roots = std::sync::Arc::new(roots);
        let Some((cert, key)) = &self.identity else {
            return crate::tls::client_config(roots, None);
        };
        let read = |flag: &str, p: &Path| {
            std::fs::read_to_string(p).map_err(|e| format!("--{flag} {}: {e}", p.display()))
        };
        let certified = crate::tls::certified_key(&read("cert", cert)?, &read("key", key)?)
            .map_err(|e| {
                format!(
                    "--cert {} with --key {}: {e}",
                    cert.display(),
                    key.display()
                )
            })?;
        crate::tls::client_config(roots, Some(certified))
    }
}

/// `hookd backup --to FILE`: downloads a backup from the daemon at `url` with `token` (scope
/// `admin`), checks it, and moves it into place. A progress line goes to stderr on a terminal.
///
/// # Errors
/// The daemon cannot be reached or refuses; the download breaks off; the file fails its check.
pub async fn backup(
    url: &str,
    token: &str,
    to: &Path,
    client: &ClientTls,
) -> Result<String, String> {
    let base = url.trim_end_matches('/');
    let uri: hyper::Uri = format!("{base}/api/v1/admin/backup")
        .parse()
        .map_err(|e| format!("--url {url}: {e}"))?;
    let tls = client.config()?;
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, Empty<Bytes>>(https);
    let req = hyper::Request::get(uri)
        .header("authorization", format!("Bearer {token}"))
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(CONNECT_TIMEOUT, client.request(req))
        .await
        .map_err(|_| format!("{base}: no answer within {CONNECT_TIMEOUT:?}"))?
        .map_err(|e| format!("{base}: {}", causes(&e)))?;
    let status = resp.status();
    let mut body = resp.into_body();
    if !status.is_success() {
        let text = body
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        return Err(format!("{base} answered {status}: {text}"));
    }
    let mut partial = Partial::create(to.with_extension("partial"))?;
    let started = Instant::now();
    let bytes = download(&mut body, &partial).await?;
    partial.sync()?;
    let summary = backup::verify(&partial.path, &partial.path.display().to_string())
        .map_err(|e| e.to_string())?;
    partial.finish(to)?;
    let secs = started.elapsed().as_secs_f64().max(0.001);
    #[allow(clippy::cast_precision_loss)]
    let rate = bytes as f64 / 1_000_000.0 / secs;
    Ok(format!(
        "backup: {} records, {} in {secs:.1} s ({rate:.1} MB/s) -> {}\nKeep the master key (HOOKD_MASTER_KEY or <data_dir>/master.key) with it, separately: the backup holds the signing secrets sealed under it.",
        summary.records,
        mb(bytes),
        to.display()
    ))
}

/// A backup being written: created exclusively with mode 0600 (it holds endpoint URLs, often
/// credentials), and removed on every way out but [`Partial::finish`].
struct Partial {
    path: std::path::PathBuf,
    file: Option<std::fs::File>,
}

impl Partial {
    fn create(path: std::path::PathBuf) -> Result<Self, String> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    format!(
                        "{} exists (left by a backup that was stopped?); remove it and try again",
                        path.display()
                    )
                } else {
                    format!("{}: {e}", path.display())
                }
            })?;
        Ok(Self {
            path,
            file: Some(file),
        })
    }

    fn write(&self, data: &[u8]) -> Result<(), String> {
        let mut file = self.file.as_ref().ok_or("the backup file is closed")?;
        file.write_all(data)
            .map_err(|e| format!("{}: {e}", self.path.display()))
    }

    /// Flushes it to disk and closes it (before it is checked).
    fn sync(&mut self) -> Result<(), String> {
        if let Some(file) = self.file.take() {
            file.sync_all()
                .map_err(|e| format!("{}: {e}", self.path.display()))?;
        }
        Ok(())
    }

    /// Moves it into place as `to`, the new name synced in its directory: a backup reported
    /// done survives a power cut (the file system test found one that did not).
    fn finish(mut self, to: &Path) -> Result<(), String> {
        self.sync()?;
        std::fs::rename(&self.path, to).map_err(|e| format!("{}: {e}", to.display()))?;
        self.path = std::path::PathBuf::new();
        crate::files::sync_dir(to).map_err(|e| format!("{}: {e}", to.display()))
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        self.file = None;
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Streams the daemon's answer into `partial`, with a progress line on a terminal; the bytes
/// written, synced to disk.
async fn download(body: &mut hyper::body::Incoming, partial: &Partial) -> Result<u64, String> {
    let show = std::io::stderr().is_terminal();
    let (mut bytes, mut shown) = (0u64, Instant::now());
    loop {
        let frame = tokio::time::timeout(STALL_TIMEOUT, body.frame())
            .await
            .map_err(|_| format!("the backup stalled for {STALL_TIMEOUT:?}"))?;
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| format!("the backup broke off: {e}"))?;
        if let Some(data) = frame.data_ref() {
            partial.write(data)?;
            bytes += data.len() as u64;
            if show && shown.elapsed() > Duration::from_millis(200) {
                eprint!("\rbackup: {} ", mb(bytes));
                shown = Instant::now();
            }
        }
    }
    if show {
        eprintln!();
    }
    Ok(bytes)
}

/// `hookd restore --from FILE --data-dir DIR [--force]`.
///
/// # Errors
/// As [`backup::restore`].
pub fn restore(from: &Path, data_dir: &Path, force: bool) -> Result<String, String> {
    let summary = backup::restore(from, data_dir, force).map_err(|e| e.to_string())?;
    Ok(format!(
        "restored {} records from {} (taken {}) into {}\nStart hookd with the master key the backup was taken with.",
        summary.records,
        from.display(),
        crate::time::rfc3339(summary.created_at_ms),
        data_dir.join(crate::store::STORE_FILE).display()
    ))
}

/// `hookd compact --data-dir DIR`.
///
/// # Errors
/// As [`offline::compact`].
pub fn compact(data_dir: &Path) -> Result<String, String> {
    let path = data_dir.join(crate::store::STORE_FILE);
    let (before, after) = offline::compact(&path)?;
    Ok(format!(
        "{}: {} -> {} ({} freed)",
        path.display(),
        mb(before),
        mb(after),
        mb(before.saturating_sub(after))
    ))
}

/// The alert in `payload` (`-`: standard input), read by the alert routes' rules, as its event
/// type and data; an empty one is a sample Alertmanager group.
///
/// # Errors
/// The file that cannot be read, or what is wrong with the alert.
fn read_alert(payload: &Path) -> Result<(String, String), String> {
    let bytes = if payload.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)
            .map_err(|e| format!("stdin: {e}"))?;
        b
    } else {
        std::fs::read(payload).map_err(|e| format!("{}: {e}", payload.display()))?
    };
    Ok(
        match crate::parse::preview_alert(&bytes).map_err(describe)? {
            Some(alert) => (alert.event_type, alert.data),
            None => (
                "alertmanager.firing".to_owned(),
                crate::format::alert::sample_group("wh-example"),
            ),
        },
    )
}

/// An API error as one line: each field at fault and why.
fn describe(e: crate::error::ApiError) -> String {
    match e {
        crate::error::ApiError::Validation(errors) => errors
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

/// `hookd format render --format F --payload FILE [--options JSON]`: the body format `F` sends
/// for the alert.
///
/// # Errors
/// An unknown or plugin format, an unreadable or invalid alert, invalid options.
pub fn format_render(
    format: &str,
    payload: &Path,
    options: Option<&str>,
) -> Result<String, String> {
    use crate::model::Format;
    let names: Vec<&str> = Format::ALL.iter().map(Format::as_str).collect();
    let format = Format::parse(format)
        .ok_or_else(|| format!("--format: must be one of {}", names.join(", ")))?;
    if format.plugin().is_some() {
        return Err(
            "--format: a transformer's format; run `hookd plugin transform FILE.wasm --payload ...`"
                .into(),
        );
    }
    let (event_type, data) = read_alert(payload)?;
    let options = match options {
        None => crate::parse::FormatOptionsInput::default(),
        Some(text) => {
            crate::parse::format_options(text).map_err(|e| format!("--options: {}", describe(e)))?
        }
    };
    let event = crate::format::Event {
        id: "msg_example",
        event_type: &event_type,
        created_at_ms: crate::time::now_ms(),
        data: &data,
    };
    let options = crate::format::Options {
        routing_key: options.routing_key.as_deref(),
        severity: options.severity.as_deref(),
    };
    let rendered = crate::format::render(&format, &event, &options)
        .ok_or_else(|| "--format: not a built-in format".to_owned())?;
    Ok(String::from_utf8_lossy(&rendered.body).into_owned())
}

/// `hookd plugin transform PLUGIN.wasm --payload FILE [--settings S] [--name N]`: the request
/// the transformer returns for the alert, as its header lines (content type first), a blank
/// line, and the body. Prints the time taken to standard error.
///
/// # Errors
/// A transformer that does not load, an invalid alert, the transformer's error or failure.
pub fn plugin_transform(
    plugin: &Path,
    payload: &Path,
    settings: String,
    endpoint_name: &str,
    config_file: Option<&Path>,
) -> Result<(String, Vec<u8>), String> {
    let config = crate::config::Config::load(config_file).map_err(|e| e.to_string())?;
    let (event_type, data) = read_alert(payload)?;
    let started = Instant::now();
    let (name, set) =
        crate::plugins::transform::single(plugin, settings, &config.transformer_plugin_limits())
            .map_err(|e| e.to_string())?;
    let loaded = started.elapsed();
    let started = Instant::now();
    let input = crate::format::TransformInput {
        id: "msg_example".into(),
        event_type,
        created_at_ms: crate::time::now_ms(),
        data,
        endpoint_name: endpoint_name.to_owned(),
    };
    let (outcome, fuel) = set.transform_blocking(&name, input);
    eprintln!(
        "load: {loaded:.2?}  transform: {:.2?}  fuel: {fuel} (hookd runs a call on its async workers within {}, else on a thread of its own)",
        started.elapsed(),
        crate::plugins::INLINE_FUEL
    );
    if set.per_endpoint(&name) == Some(false) {
        eprintln!(
            "uses-endpoint-name: false (it gets the endpoint name \"\"; one call serves every endpoint of an event)"
        );
    }
    let rendered = outcome.map_err(|e| match e {
        crate::format::TransformError::Missing(name) => format!("no transformer '{name}'"),
        crate::format::TransformError::Failed { reason, .. } => reason,
    })?;
    let mut head = format!("content-type: {}\n", rendered.content_type);
    for (name, value) in &rendered.headers {
        head.push_str(&format!("{name}: {value}\n"));
    }
    head.push('\n');
    Ok((head, rendered.body))
}
