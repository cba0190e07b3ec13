//! `varde`: the operator's and integrator's command line.
//!
//! Every command prints human-readable text by default and one JSON document with `--json`.
//! Exit codes are stable (see `exit.rs` and cli/README.md).

mod access_log;
mod bench;
mod client;
mod dev;
mod exit;
mod export;
mod genesis;
mod gov;
mod keys;
mod proof;
mod pseudonym;
mod query;
mod render;
mod testnet;
mod tx;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::exit::{ExitKind, Outcome};

/// Varde: a permissioned ledger of record pointers, access grants and access events.
#[derive(Debug, Parser)]
#[command(name = "varde", version, about, propagate_version = true)]
struct Cli {
    /// Print one JSON document on stdout instead of human-readable text.
    #[arg(long, global = true)]
    json: bool,
    /// The CA certificate (PEM) that a node's TLS certificate must be signed by, for `https://`
    /// endpoints (`varde dev` and `varde testnet up` print theirs).
    #[arg(long, global = true, value_name = "PATH", env = "VARDE_CA_FILE")]
    ca_file: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Make and inspect Ed25519 signing keys (PKCS#8 PEM files).
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Write a genesis file: chain id, institutions, roles, keys, validators.
    #[command(subcommand)]
    Genesis(genesis::GenesisCommand),
    /// Derive a subject pseudonym from a national identity number read from stdin.
    Pseudonym(pseudonym::PseudonymArgs),
    /// Build, sign and submit a transaction.
    #[command(subcommand)]
    Tx(tx::TxCommand),
    /// Signed queries: records, grants, access log, access checks.
    #[command(subcommand)]
    Query(query::QueryCommand),
    /// Governance of the membership: propose a change, approve one, list and show proposals.
    #[command(subcommand)]
    Gov(gov::GovCommand),
    /// Fetch a self-contained proof bundle from a node: a transaction with its receipt, or the
    /// ledger's consistency.
    #[command(subcommand)]
    Proof(proof::ProofCommand),
    /// Check a proof bundle offline, or follow a node from genesis, trusting the genesis file
    /// alone. Exit code 0 only when everything holds.
    Verify(proof::VerifyArgs),
    /// Export ledger content in a standard format: `export fhir` writes a FHIR R4 Bundle.
    #[command(subcommand)]
    Export(export::ExportCommand),
    /// Show a node's status (chain id, height, latest block).
    Status(client::NodeArgs),
    /// Run a one-validator dev network with demo institutions and data (Ctrl-C stops it).
    Dev(dev::DevArgs),
    /// A local network of validator processes: up, status, kill, restart, partition, heal, down.
    #[command(subcommand)]
    Testnet(testnet::TestnetCommand),
    /// Measure a network: committed throughput and submit→commit latency under an open-loop
    /// (--rate) or closed-loop load of signed anchors, grants and access events, then check that
    /// every acknowledged transaction is committed exactly once.
    Bench(bench::BenchArgs),
    /// Run one validator from its config file until Ctrl-C or SIGTERM (as `varde-node` does).
    Node(testnet::NodeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    client::set_ca_file(cli.ca_file);
    let result = match cli.command {
        Command::Keys(command) => keys::run(command, json),
        Command::Genesis(command) => genesis::run(command, json),
        Command::Pseudonym(arguments) => pseudonym::run(&arguments, json),
        Command::Tx(command) => block_on(tx::run(command, json)),
        Command::Query(command) => block_on(query::run(command, json)),
        Command::Gov(command) => block_on(gov::run(command, json)),
        Command::Proof(command) => block_on(proof::run(command, json)),
        Command::Verify(arguments) => block_on(proof::run_verify(arguments, json)),
        Command::Export(command) => block_on(export::run(command, json)),
        Command::Status(arguments) => block_on(client::run_status(arguments, json)),
        Command::Dev(arguments) => dev::run(arguments),
        Command::Testnet(command) => testnet::run(command, json),
        Command::Bench(arguments) => bench::run(arguments, json),
        Command::Node(arguments) => testnet::run_node(arguments),
    };
    match result {
        Ok(outcome) => ExitCode::from(ExitKind::from(outcome).code()),
        Err(error) => {
            let kind = exit::exit_kind_of(&error);
            render::print_error(&error, kind, json);
            ExitCode::from(kind.code())
        }
    }
}

/// Runs a network command on a small tokio runtime.
fn block_on(
    future: impl std::future::Future<Output = anyhow::Result<Outcome>>,
) -> anyhow::Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| anyhow::anyhow!("cannot start the async runtime: {error}"))?;
    runtime.block_on(future)
}
