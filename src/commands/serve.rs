use std::{io::Write, net::SocketAddr, path::PathBuf, sync::Arc};

use tandem_core::SystemClock;
use tandem_server::Server;

use super::{load_config, shutdown_on_signals};

/// `tandem serve` options.
#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port) [default:
    /// TANDEM_ADDR, else 127.0.0.1:8080].
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// Directory for the embedded mode's files (SQLite database, uploads,
    /// archives) [default: TANDEM_DATA_DIR, else ./data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = load_config(args.addr, args.data_dir)?;
    let mode = config.deployment()?.name();
    let server = Server::bind(config, Arc::new(SystemClock), shutdown_on_signals()).await?;
    let url = format!("http://{}", server.local_addr());
    // Printed on stdout (not the log) so scripts can wait for these lines.
    if let Some(metrics) = server.metrics_addr() {
        println!("Metrics are served at http://{metrics}/metrics");
    }
    println!("Tandem ({mode} mode) is serving {url}");
    std::io::stdout().flush()?;
    tracing::info!(%url, mode, "listening");
    server.run().await?;
    tracing::info!("stopped");
    Ok(())
}
