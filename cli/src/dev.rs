//! `varde dev`: runs `varde_node::dev` (one validator, demo institutions, demo data) until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;

use crate::exit::Outcome;

/// Where the dev network lives when `--data-dir` is not given.
pub const DEFAULT_DATA_DIR: &str = "./varde-dev";
/// Where the dev node serves gRPC when `--grpc-addr` is not given.
pub const DEFAULT_GRPC_ADDR: &str = "127.0.0.1:50051";

#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// The dev network's directory: created with keys, genesis and demo data on first run,
    /// resumed as it is afterwards.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Where to serve gRPC, over TLS with a certificate of the directory's own CA (it names
    /// localhost, 127.0.0.1 and ::1; clients trust DIR/tls/ca.pem).
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_GRPC_ADDR)]
    grpc_addr: SocketAddr,
    /// Where to serve Prometheus metrics (off when not given).
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<SocketAddr>,
}

pub fn run(arguments: DevArgs) -> anyhow::Result<Outcome> {
    println!(
        "varde dev: data dir {} (--data-dir), gRPC {} (--grpc-addr); Ctrl-C stops",
        arguments.data_dir.display(),
        arguments.grpc_addr
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let options = varde_node::dev::DevOptions {
        data_dir: arguments.data_dir,
        grpc_addr: arguments.grpc_addr,
        metrics_addr: arguments.metrics_addr,
    };
    runtime
        .block_on(varde_node::dev::run_dev(options, shutdown_signal()))
        .context("the dev node stopped with an error")?;
    println!("varde dev: stopped cleanly");
    Ok(Outcome::Success)
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM, so that `kill` stops the node cleanly as well.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
