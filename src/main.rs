//! The `hookd` binary: parse the command line, load the configuration, start logging, and run the
//! server until SIGTERM or SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser as _;

use hookd::cli::args::{Cli, Command, ConfigCommand, FormatCommand, PluginCommand, TokenCommand};

use hookd::config::Config;
use hookd::{app, logging, server};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config } => serve(config),
        Command::Config {
            command: ConfigCommand::Check { config },
        } => config_check(config.as_deref()),
        Command::Backup {
            to,
            url,
            cacert,
            cert,
            key,
        } => backup(
            &url,
            &to,
            &hookd::cli::ClientTls {
                cacert,
                identity: cert.zip(key),
            },
        ),
        Command::Restore {
            from,
            data_dir,
            force,
        } => hookd::cli::restore(&from, &data_dir, force).map(|line| println!("{line}")),
        Command::Compact { data_dir } => {
            hookd::cli::compact(&data_dir).map(|line| println!("{line}"))
        }
        Command::Token {
            command:
                TokenCommand::Create {
                    data_dir,
                    scopes,
                    name,
                    config,
                },
        } => token_create(data_dir, &scopes, &name, config.as_deref()),
        Command::Rekey { data_dir, config } => rekey(data_dir, config.as_deref()),
        #[cfg(feature = "postgres")]
        Command::Migrate {
            from_redb,
            to,
            config,
        } => migrate(&from_redb, to.as_deref(), config.as_deref()),
        Command::Format {
            command:
                FormatCommand::Render {
                    format,
                    payload,
                    options,
                },
        } => hookd::cli::format_render(&format, &payload, options.as_deref()).map(|body| {
            println!("{body}");
        }),
        Command::Plugin {
            command:
                PluginCommand::Check {
                    plugin,
                    url,
                    name,
                    settings,
                    operation,
                    config,
                },
        } => plugin_check(plugin, &url, &name, settings, &operation, config),
        Command::Plugin {
            command:
                PluginCommand::Transform {
                    plugin,
                    payload,
                    settings,
                    name,
                    config,
                },
        } => hookd::cli::plugin_transform(&plugin, &payload, settings, &name, config.as_deref())
            .and_then(|(headers, body)| {
                let mut out = std::io::stdout().lock();
                std::io::Write::write_all(&mut out, headers.as_bytes())
                    .and_then(|()| std::io::Write::write_all(&mut out, &body))
                    .map_err(|e| format!("stdout: {e}"))
            }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("hookd: {message}");
            ExitCode::FAILURE
        }
    }
}

/// How long shutdown waits for the store's last transactions before leaving it to be checked
/// at the next start.
const STORE_CLOSE_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

fn serve(config_file: Option<PathBuf>) -> Result<(), String> {
    let config = Config::load(config_file.as_deref()).map_err(|e| e.to_string())?;
    let notifier = Arc::new(hookd::notify::Notifier::from_env()?);
    logging::init(&config)?;
    for name in Config::unrelated_env() {
        tracing::warn!(variable = %name, "an environment variable starts with HOOKD_ but names no configuration key; it is ignored");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        // Signal handlers first: a SIGTERM or SIGHUP that arrives while hookd starts must not
        // find the default action (which ends the process) in place.
        use tokio::signal::unix::{signal, SignalKind};
        let cannot = |e: std::io::Error| format!("cannot handle signals: {e}");
        let term = signal(SignalKind::terminate()).map_err(cannot)?;
        let int = signal(SignalKind::interrupt()).map_err(cannot)?;
        let hup = signal(SignalKind::hangup()).map_err(cannot)?;
        let listen = config.listen;
        let started = app::start(config).await.map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("listen {listen} (HOOKD_LISTEN): {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        if let Some(token) = &started.generated_admin_token {
            // Printed once, to stdout and never to the log: it exists nowhere else.
            println!("hookd: created the admin API token (shown only this once; store it now):");
            println!("{token}");
        }
        let scheme = if started.app.tls.is_some() { "https" } else { "http" };
        tracing::info!(address = %local, scheme, version = env!("CARGO_PKG_VERSION"), "hookd listening");
        // The store is open and the listener bound: connections queue from here on.
        notifier.tell(&format!("READY=1\nSTATUS=serving on {local}"));
        let app = Arc::new(started.app);
        tokio::spawn(reload_on_sighup(
            hup,
            app.clone(),
            config_file,
            notifier.clone(),
        ));
        let stopping = notifier.clone();
        let shutdown = async move {
            shutdown_signal(term, int).await;
            stopping.tell("STOPPING=1\nSTATUS=finishing the requests in flight");
        };
        let served = server::run(listener, app.clone(), shutdown).await;
        // Whatever ended the server, close the store so that redb marks it closed cleanly:
        // the next start then opens it at once instead of checking every page.
        if app.store.close(STORE_CLOSE_LIMIT).await {
            tracing::info!("the store is closed");
        } else {
            tracing::warn!(
                "the store was still in use and is left to be checked at the next start"
            );
        }
        served.map_err(|e| e.to_string())?;
        tracing::info!("hookd stopped");
        Ok(())
    })
}

/// `hookd config check`: the configuration as `serve` would run it, after every check `serve`
/// makes before it opens the store (every key at fault named; plugins and transformers loaded,
/// compiled afresh; the CA bundle read).
fn config_check(file: Option<&std::path::Path>) -> Result<(), String> {
    let config = Config::load(file).map_err(|e| e.to_string())?;
    for name in Config::unrelated_env() {
        eprintln!("hookd: warning: {name} starts with HOOKD_ but names no configuration key; it is ignored");
    }
    app::prepare(&config, None).map_err(|e| e.to_string())?;
    print!("{}", config.to_toml());
    println!(
        "# the configuration is valid ({} URL-policy plugin(s) and {} transformer(s) loaded)",
        config.plugins.len(),
        config.transformers.len()
    );
    Ok(())
}

/// `hookd migrate --from-redb DIR [--to URL]`, with a progress line on a terminal.
#[cfg(feature = "postgres")]
fn migrate(
    from: &std::path::Path,
    to: Option<&str>,
    config_file: Option<&std::path::Path>,
) -> Result<(), String> {
    use std::io::IsTerminal as _;
    let config = Config::load(config_file).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let terminal = std::io::stderr().is_terminal();
    let mut progress = |counts: &hookd::store::postgres::Counts| {
        if terminal {
            eprint!("\r\x1b[Kmoving: {counts}");
        }
    };
    let said = runtime.block_on(app::migrate_from_redb(&config, from, to, &mut progress));
    if terminal {
        eprintln!();
    }
    println!("{}", said?);
    Ok(())
}

fn token_create(
    data_dir: PathBuf,
    scopes: &str,
    name: &str,
    config_file: Option<&std::path::Path>,
) -> Result<(), String> {
    let mut config = Config::load(config_file).map_err(|e| e.to_string())?;
    config.data_dir = data_dir;
    let scopes = hookd::parse::scopes_list(scopes).map_err(|e| format!("--scopes: {e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let (id, plaintext) = runtime.block_on(app::create_token_offline(&config, name, scopes))?;
    println!("{plaintext}");
    eprintln!("hookd: created token {id} ({name}); it is shown this once");
    Ok(())
}

/// `hookd rekey`: what it did, on stdout; what the operator must do next, on stderr.
fn rekey(data_dir: PathBuf, config_file: Option<&std::path::Path>) -> Result<(), String> {
    let mut config = Config::load(config_file).map_err(|e| e.to_string())?;
    config.data_dir = data_dir;
    let done = app::rekey(&config)?;
    println!(
        "rekey: {} endpoint(s), {} sealed value(s) re-sealed under the new key and verified{}",
        done.endpoints,
        done.values,
        if done.resumed {
            " (an interrupted rekey, finished)"
        } else {
            ""
        }
    );
    match &done.old_key_file {
        Some(old) => eprintln!(
            "hookd: the new key is in {}; the old one is kept as {}: backups taken before now need it, delete it when none does",
            done.key_file.display(),
            old.display()
        ),
        None => eprintln!(
            "hookd: the new key is in {}: set HOOKD_MASTER_KEY to its contents and delete the file before starting hookd; backups taken before now need the old key",
            done.key_file.display()
        ),
    }
    Ok(())
}

fn backup(url: &str, to: &std::path::Path, tls: &hookd::cli::ClientTls) -> Result<(), String> {
    let token = std::env::var("HOOKD_TOKEN")
        .map_err(|_| "set HOOKD_TOKEN to an API token with the admin scope".to_owned())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let line = runtime.block_on(hookd::cli::backup(url, token.trim(), to, tls))?;
    println!("{line}");
    Ok(())
}

/// `kill -HUP`: re-read the configuration and apply every key that can change while running;
/// each changed key that needs a restart is logged by name. A broken configuration is refused
/// and the running one stays.
async fn reload_on_sighup(
    mut hup: tokio::signal::unix::Signal,
    app: Arc<app::App>,
    config_file: Option<PathBuf>,
    notifier: Arc<hookd::notify::Notifier>,
) {
    while hup.recv().await.is_some() {
        notifier.tell("RELOADING=1\nSTATUS=reloading the configuration");
        let (app, file) = (app.clone(), config_file.clone());
        let result = tokio::task::spawn_blocking(move || app.reload(file.as_deref())).await;
        notifier.tell("READY=1\nSTATUS=serving");
        match result {
            Ok(Ok(done)) => {
                for key in &done.need_restart {
                    tracing::warn!(key = %key, "SIGHUP: this key changed but takes effect only after a restart; the running value stays");
                }
                tracing::info!(applied = ?done.applied, plugins = ?done.plugins, "SIGHUP: configuration reloaded");
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "SIGHUP: reload refused; the running configuration stays")
            }
            Err(e) => tracing::error!(error = %e, "SIGHUP: reload task failed"),
        }
    }
}

/// `hookd format render`: what the alert in `payload` becomes in `format`, on stdout.
fn plugin_check(
    plugin: PathBuf,
    url: &str,
    name: &str,
    settings: String,
    operation: &str,
    config_file: Option<PathBuf>,
) -> Result<(), String> {
    use std::time::Instant;
    let config = Config::load(config_file.as_deref()).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let host = hookd::plugins::single(plugin, settings, &config.plugin_limits)
        .map_err(|e| e.to_string())?;
    let loaded = started.elapsed();
    let set = host.current();
    let started = Instant::now();
    let outcome = set.check(url, name, operation);
    let took = started.elapsed();
    println!("load: {loaded:.2?}  check: {took:.2?}");
    match outcome {
        Ok(()) => {
            println!("allow");
            Ok(())
        }
        Err(hookd::plugins::Rejection::Denied { reason, .. }) => Err(format!("deny: {reason}")),
        Err(hookd::plugins::Rejection::Failed { kind, detail, .. }) => {
            Err(format!("plugin failed ({}): {detail}", kind.as_str()))
        }
    }
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal(
    mut term: tokio::signal::unix::Signal,
    mut int: tokio::signal::unix::Signal,
) {
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}
