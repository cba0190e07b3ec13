//! Running a node as a process: from a config file until Ctrl-C or SIGTERM. Shared by the
//! `varde-node` binary and `varde node`, which local testnets start.

use std::path::Path;

use anyhow::Context as _;
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, NodeConfig};

fn install_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // A subscriber may already be installed by an embedding program; keep that one.
    // Colours only on a terminal: a local network's nodes write to log files.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let _ = match format {
        LogFormat::Human => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(ansi)
            .try_init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .try_init(),
    };
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

/// Loads `config_path`, opens the database and runs the node until a signal stops it.
pub async fn run_config_file(config_path: &Path) -> anyhow::Result<()> {
    let config = NodeConfig::load(config_path)?;
    install_logging(config.log_format);
    let genesis = crate::node::read_genesis(&config.genesis_path)?;
    let store = crate::node::open_store(&config, &genesis)?;
    let node = crate::node::start(&config, genesis, store, shutdown_signal())
        .await
        .context("the node did not start")?;
    node.wait().await
}
