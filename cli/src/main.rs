//! `varde`: the operator's and integrator's command line.

use clap::Parser;

/// Varde: a permissioned ledger of record pointers, access grants and access events.
#[derive(Debug, Parser)]
#[command(name = "varde", version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    println!(
        "varde {}: no commands yet; the consensus simulator is `varde-sim`",
        env!("CARGO_PKG_VERSION")
    );
}
