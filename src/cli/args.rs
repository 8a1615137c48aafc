//! The command line's definition: every command, flag and default of `hookd`. The binary parses
//! it; the man page and the shell completions are generated from it at build time
//! (`examples/man.rs`), so they never drift from what the binary takes.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "hookd",
    version,
    about = "Self-hosted webhook endpoints with signed delivery"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Check a configuration as `serve` would before it opens the store: print the effective
    /// one (secrets shown as "***") and exit 0, or name every key, plugin or file at fault and
    /// exit 1. Opens no store.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Endpoint formats: see what an alert becomes, offline.
    Format {
        #[command(subcommand)]
        command: FormatCommand,
    },
    /// Tools for plugin authors: URL-policy plugins and transformers.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Run the HTTP API (defaults: 127.0.0.1:8080, data in ./data).
    Serve {
        /// A TOML file overriding the built-in defaults (see config/hookd.toml).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Download a consistent backup from a running hookd (token from HOOKD_TOKEN, scope admin).
    Backup {
        /// Where to write the backup.
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
        /// The daemon's base URL (https:// when it serves [tls]).
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Trust the CA certificates in this PEM file too (a daemon with a private CA's certificate).
        #[arg(long, value_name = "FILE")]
        cacert: Option<PathBuf>,
        /// Present this client certificate (PEM chain; for a daemon with tls.client_ca_file).
        #[arg(long, value_name = "FILE", requires = "key")]
        cert: Option<PathBuf>,
        /// The client certificate's private key (PEM).
        #[arg(long, value_name = "FILE", requires = "cert")]
        key: Option<PathBuf>,
    },
    /// Install a backup into an empty data directory (offline: no hookd may hold it).
    Restore {
        /// The backup file.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// The data directory to restore into.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        /// Replace the store of a data directory that is not empty (the master key stays).
        #[arg(long)]
        force: bool,
    },
    /// Shrink the store file to what it holds (offline: stop hookd first).
    Compact {
        /// The data directory.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
    },
    /// Rotate the master key of the store of DIR (offline: stop hookd first). Everything sealed
    /// is re-sealed under a new key in one transaction and verified; then DIR/master.key is
    /// replaced (the old key kept as master.key.old-<seconds>). With HOOKD_MASTER_KEY, the new
    /// key is left in DIR/master.key.new for you to put there. Run again after an interruption.
    Rekey {
        /// The data directory.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        /// A config file (for its master_key and the like).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Move the embedded store of DIR into PostgreSQL (offline: stop hookd first), all or
    /// nothing: one transaction, committed only when the database holds as many endpoints,
    /// tokens, messages, deliveries and attempts as were read. The database must hold no store
    /// yet. Records move sealed: start the PostgreSQL instances with DIR's master key.
    #[cfg(feature = "postgres")]
    Migrate {
        /// The data directory of the embedded store.
        #[arg(long, value_name = "DIR")]
        from_redb: PathBuf,
        /// The database (postgres://... or key=value); else store.postgres_url of the config
        /// (HOOKD_STORE__POSTGRES_URL), which keeps the password off the command line.
        #[arg(long, value_name = "URL")]
        to: Option<String>,
        /// A config file (for store.postgres_url and store.postgres_ca_file).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// API tokens, offline (no daemon may hold the store).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token in the store of DIR and print it once: the way back in when no admin
    /// token works any more. Needs the store's master key (HOOKD_MASTER_KEY or DIR/master.key).
    Create {
        /// The data directory.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        /// Comma-separated: admin, endpoints:read, endpoints:write, alerts:write.
        #[arg(long, default_value = "admin")]
        scopes: String,
        /// The token's name.
        #[arg(long, default_value = "offline admin")]
        name: String,
        /// A config file (for HOOKD_MASTER_KEY's file form and the like).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum FormatCommand {
    /// Print the body FORMAT sends for the alert in FILE (an Alertmanager payload or a native
    /// alert, as the alert routes take them; "-" reads standard input).
    Render {
        /// standard-webhooks, slack, discord, google-chat, mattermost, pagerduty or teams.
        #[arg(long)]
        format: String,
        /// The alert.
        #[arg(long, value_name = "FILE")]
        payload: PathBuf,
        /// The format's options, as in the API: '{"routingKey": "...", "severity": "..."}'.
        #[arg(long, value_name = "JSON")]
        options: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Validate the built-in defaults, FILE and the HOOKD_* environment, load the plugins and
    /// transformers and read the CA bundle as `serve` would, and print the result.
    Check {
        /// A TOML file overriding the built-in defaults.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Load PLUGIN.wasm, run it on URL, and print the verdict and the time taken.
    /// Exit status: 0 allowed, 1 denied, failed or not loadable.
    Check {
        /// The plugin component (.wasm).
        plugin: PathBuf,
        /// The candidate endpoint URL.
        url: String,
        /// The endpoint name handed to the plugin.
        #[arg(long, default_value = "test")]
        name: String,
        /// The settings string handed to the plugin.
        #[arg(long, default_value = "")]
        settings: String,
        /// "create" or "update".
        #[arg(long, default_value = "create")]
        operation: String,
        /// A config file whose [plugin_limits] apply.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Load the transformer PLUGIN.wasm, run it on the alert in FILE, and print the request it
    /// returns: its content type and headers, a blank line, then the body. The time taken goes
    /// to standard error. Exit status: 0 a request, 1 an error, a failure or not loadable.
    Transform {
        /// The transformer component (.wasm).
        plugin: PathBuf,
        /// The alert: an Alertmanager payload or a native alert, as the alert routes take them
        /// ("-" reads standard input; an empty file gives a sample group).
        #[arg(long, value_name = "FILE")]
        payload: PathBuf,
        /// The settings string handed to the transformer.
        #[arg(long, default_value = "")]
        settings: String,
        /// The endpoint name handed to the transformer.
        #[arg(long, default_value = "test")]
        name: String,
        /// A config file whose [transformer_limits] apply.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}
