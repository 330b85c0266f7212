//! Subcommands of the `tandem` binary.

mod admin;
mod archive;
mod migrate;
mod serve;
mod worker;

use std::{net::SocketAddr, path::PathBuf};

use clap::{Parser, Subcommand};
use tandem_core::Shutdown;
use tandem_server::Config;

/// Tandem: the server side of a study-partner platform.
///
/// With no configuration everything runs on this machine (SQLite, in-process
/// sessions and limits). Set REDIS_URL and a postgres:// DATABASE_URL to run
/// many stateless instances. All settings are environment variables (or a
/// .env file); see .env.example.
#[derive(Parser)]
#[command(name = "tandem", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server: API, web app, and (embedded mode) background work.
    Serve(serve::Args),
    /// Apply pending database migrations and exit.
    Migrate(CommonArgs),
    /// Run background workers without HTTP (job queues, upkeep, the archive schedule).
    Worker(CommonArgs),
    /// Grant, revoke or list the operators' admin pages.
    Admin {
        #[command(flatten)]
        common: CommonArgs,
        #[command(subcommand)]
        command: admin::Command,
    },
    /// Archive old analytics to cold storage, list archives, restore one.
    Archive {
        #[command(flatten)]
        common: CommonArgs,
        #[command(subcommand)]
        command: archive::Command,
    },
}

/// Options every command understands.
#[derive(clap::Args)]
struct CommonArgs {
    /// Directory for the embedded mode's files (SQLite database, uploads,
    /// archives) [default: TANDEM_DATA_DIR, else ./data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

impl Cli {
    /// Runs the chosen command to completion.
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Migrate(args) => migrate::run(load_config(None, args.data_dir)?).await,
            Command::Worker(args) => worker::run(load_config(None, args.data_dir)?).await,
            Command::Admin { common, command } => {
                admin::run(load_config(None, common.data_dir)?, command).await
            }
            Command::Archive { common, command } => {
                archive::run(load_config(None, common.data_dir)?, command).await
            }
        }
    }
}

/// Reads the environment, with command-line overrides.
fn load_config(addr: Option<SocketAddr>, data_dir: Option<PathBuf>) -> anyhow::Result<Config> {
    let mut config = Config::from_env()?;
    if let Some(addr) = addr {
        config.http.addr = addr;
    }
    if let Some(dir) = data_dir {
        config.data_dir = dir;
    }
    tandem_server::telemetry::init_logging(config.telemetry.log_json);
    Ok(config)
}

/// A shutdown signal fired by SIGINT (Ctrl-C) or SIGTERM.
fn shutdown_on_signals() -> Shutdown {
    let shutdown = Shutdown::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
                }
                Err(_) => {
                    let _ = ctrl_c.await;
                }
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown requested; finishing in-flight work");
        trigger.trigger();
    });
    shutdown
}
