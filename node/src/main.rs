//! `varde-node --config FILE`: runs one Varde validator until Ctrl-C or SIGTERM.

use std::path::PathBuf;

use clap::Parser;

/// Runs a Varde validator node.
#[derive(Parser)]
#[command(name = "varde-node", version)]
struct Arguments {
    /// The node's TOML configuration file.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments = Arguments::parse();
    varde_node::service::run_config_file(&arguments.config).await
}
