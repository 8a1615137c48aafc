//! The `hookd` binary: parse the command line, load the configuration, start logging, and run the
//! server until SIGTERM or SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use hookd::config::Config;
use hookd::{app, logging, server};

#[derive(Parser)]
#[command(
    name = "hookd",
    version,
    about = "Self-hosted webhook endpoints with signed delivery"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API (defaults: 127.0.0.1:8080, data in ./data).
    Serve {
        /// A TOML file overriding the built-in defaults (see config/hookd.toml).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config } => serve(config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("hookd: {message}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config_file: Option<PathBuf>) -> Result<(), String> {
    let config = Config::load(config_file.as_deref()).map_err(|e| e.to_string())?;
    logging::init(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
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
        tracing::info!(address = %local, version = env!("CARGO_PKG_VERSION"), "hookd listening");
        server::run(listener, Arc::new(started.app), shutdown_signal())
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!("hookd stopped");
        Ok(())
    })
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}
