//! `varde-node --config FILE`: runs one Varde validator until Ctrl-C or SIGTERM.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use tracing_subscriber::EnvFilter;
use varde_node::config::{LogFormat, NodeConfig};

/// Runs a Varde validator node.
#[derive(Parser)]
#[command(name = "varde-node", version)]
struct Arguments {
    /// The node's TOML configuration file.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
}

fn install_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    match format {
        LogFormat::Human => tracing_subscriber::fmt().with_env_filter(filter).init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init(),
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments = Arguments::parse();
    let config = NodeConfig::load(&arguments.config)?;
    install_logging(config.log_format);
    let genesis = varde_node::node::read_genesis(&config.genesis_path)?;
    let store = varde_node::node::open_store(&config, &genesis)?;
    let node = varde_node::start(&config, genesis, store, shutdown_signal())
        .await
        .context("the node did not start")?;
    node.wait().await
}
