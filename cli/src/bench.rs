//! `varde bench`: measure a network's committed throughput and submit→commit latency under an
//! open-loop (`--rate`) or closed-loop load (`varde_benches::load`), against running nodes
//! (`--nodes`) or a fresh local network.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use varde_benches::load::{self, Options, drive::Mode};
use varde_testnet::local::{self, Launcher, UpOptions, network};

use crate::exit::{Outcome, usage};
use crate::render;

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("load").required(true).args(["rate", "closed_loop"])))]
pub struct BenchArgs {
    /// Nodes of a running network, comma-separated: `https://HOST:PORT` (or `HOST:PORT`, taken
    /// as https) or `http://HOST:PORT`. Without it, a fresh local network is started in --dir
    /// and stopped after the run.
    #[arg(long, value_delimiter = ',', value_name = "ADDR,...")]
    nodes: Vec<String>,
    /// The directory of the running network (`varde testnet up` writes ./varde-testnet): its
    /// genesis.json, keys/*.pem and tls/ca.pem are the defaults of --genesis, --keys and
    /// --ca-file.
    #[arg(long, value_name = "DIR", default_value = "./varde-testnet")]
    network_dir: PathBuf,
    /// The network's genesis file.
    #[arg(long, value_name = "PATH")]
    genesis: Option<PathBuf>,
    /// A directory of member institutions' signing keys (PKCS#8 PEM); the submitting keys of
    /// institutions with the submitter role sign the load.
    #[arg(long, value_name = "DIR")]
    keys: Option<PathBuf>,
    /// Open loop: offer this many transactions a second, whatever the answers; latency counts
    /// from each transaction's due time.
    #[arg(long, value_name = "TX/S")]
    rate: Option<f64>,
    /// Closed loop: keep --in-flight calls going, a new one as soon as one is answered.
    #[arg(long)]
    closed_loop: bool,
    /// Closed loop: calls in flight at once.
    #[arg(long, default_value_t = 2_048)]
    in_flight: usize,
    /// The measured window, after the warm-up.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Seconds of load before the window, not counted.
    #[arg(long, default_value_t = 10)]
    warmup: u64,
    /// HTTP/2 connections per node (each carries many calls at once).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Open loop: the most calls in flight; beyond it, due transactions are counted as not
    /// sent (bounds the generator's memory when the network falls far behind).
    #[arg(long, default_value_t = 200_000)]
    max_in_flight: usize,
    /// Closed loop: transactions are signed before the run for at most this rate.
    #[arg(long, value_name = "TX/S", default_value_t = 10_000.0)]
    rate_cap: f64,
    /// Without --nodes: the fresh network's directory (must not exist).
    #[arg(long, value_name = "DIR", default_value = "./varde-bench")]
    dir: PathBuf,
    /// Without --nodes: validators of the fresh network.
    #[arg(short = 'n', long = "validators", default_value_t = 4)]
    validators: usize,
    /// Without --nodes: keep the fresh network's data and logs.
    #[arg(long)]
    keep: bool,
}

pub fn run(arguments: BenchArgs, json_output: bool) -> anyhow::Result<Outcome> {
    if let Some(rate) = arguments.rate {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(usage(format!("--rate must be above 0, got {rate}")));
        }
    }
    if arguments.seconds == 0 || arguments.seconds > 3_600 || arguments.warmup > 600 {
        return Err(usage(
            "--seconds must be 1 to 3600 and --warmup at most 600 (access events must be logged \
             within hours of the read)",
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(async {
        if arguments.nodes.is_empty() {
            run_on_fresh_network(&arguments, json_output).await
        } else {
            run_against(&arguments, json_output).await
        }
    })?;
    let holds = report
        .exactly_once
        .as_ref()
        .is_some_and(|check| check.holds());
    render::emit(
        json_output,
        &serde_json::to_value(&report).expect("a report serialises"),
        || report.render(),
    );
    Ok(if holds && report.committed > 0 {
        Outcome::Success
    } else {
        Outcome::CheckFailed
    })
}

async fn run_against(
    arguments: &BenchArgs,
    json_output: bool,
) -> anyhow::Result<load::report::Report> {
    let nodes: Vec<String> = arguments.nodes.iter().map(|node| endpoint(node)).collect();
    let dir = &arguments.network_dir;
    let genesis_path = arguments
        .genesis
        .clone()
        .unwrap_or_else(|| dir.join("genesis.json"));
    let keys_dir = arguments.keys.clone().unwrap_or_else(|| dir.join("keys"));
    let ca = if nodes.iter().any(|node| node.starts_with("https://")) {
        let path = crate::client::ca_file()
            .cloned()
            .unwrap_or_else(|| dir.join("tls").join("ca.pem"));
        Some(
            varde_client::connect::read_ca_certificate(&path).map_err(|error| {
                usage(format!(
                    "the nodes are served over TLS: cannot read the CA certificate {} ({error}); \
                     give --ca-file PATH or --network-dir DIR",
                    path.display()
                ))
            })?,
        )
    } else {
        None
    };
    let options = options(arguments, nodes, ca, &genesis_path, &keys_dir, json_output)?;
    load::run(options, |line| eprintln!("{line}")).await
}

async fn run_on_fresh_network(
    arguments: &BenchArgs,
    json_output: bool,
) -> anyhow::Result<load::report::Report> {
    let dir = local::absolute(&arguments.dir)?;
    anyhow::ensure!(
        !dir.exists(),
        "{} exists; a benchmark without --nodes runs on a fresh network (choose another --dir)",
        dir.display()
    );
    eprintln!(
        "starting {} validators in {}",
        arguments.validators,
        dir.display()
    );
    let state = local::up(
        &Launcher::current()?,
        &UpOptions {
            validators: arguments.validators,
            dir: dir.clone(),
            testing: network::Testing::new(),
            load_demo_data: false,
            timeout: Duration::from_secs(120),
        },
    )
    .await?;
    let layout = network::Layout::new(&dir);
    let nodes = state
        .nodes
        .iter()
        .map(|node| format!("https://{}", node.grpc))
        .collect();
    let result = async {
        let options = options(
            arguments,
            nodes,
            Some(layout.read_ca()?),
            &layout.genesis(),
            &layout.keys(),
            json_output,
        )?;
        load::run(options, |line| eprintln!("{line}")).await
    }
    .await;
    local::down(&dir)?;
    if !arguments.keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn options(
    arguments: &BenchArgs,
    nodes: Vec<String>,
    ca: Option<tonic::transport::Certificate>,
    genesis_path: &Path,
    keys_dir: &Path,
    json_output: bool,
) -> anyhow::Result<Options> {
    let genesis = varde_node::node::read_genesis(genesis_path)
        .map_err(|error| usage(format!("--genesis: {error:#}")))?;
    let keys = read_keys(keys_dir)?;
    let mode = match arguments.rate {
        Some(rate) => Mode::Open { rate },
        None => Mode::Closed {
            in_flight: arguments.in_flight.max(1),
        },
    };
    Ok(Options {
        nodes,
        ca,
        genesis,
        keys,
        mode,
        warmup: Duration::from_secs(arguments.warmup),
        seconds: Duration::from_secs(arguments.seconds),
        connections_per_node: arguments.connections.max(1),
        max_in_flight: arguments.max_in_flight.max(1),
        closed_loop_rate_cap: arguments.rate_cap.max(1.0),
        progress: !json_output,
    })
}

/// `HOST:PORT` as `https://HOST:PORT`; a URL as it is.
fn endpoint(node: &str) -> String {
    let node = node.trim();
    if node.contains("://") {
        node.to_owned()
    } else {
        format!("https://{node}")
    }
}

/// Every `*.pem` signing key in `dir` (other files are skipped).
fn read_keys(dir: &Path) -> anyhow::Result<Vec<ed25519_dalek::SigningKey>> {
    let entries = std::fs::read_dir(dir).map_err(|error| {
        usage(format!(
            "--keys: cannot read the key directory {} ({error}); give --keys DIR or \
             --network-dir DIR",
            dir.display()
        ))
    })?;
    let mut keys = Vec::new();
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|extension| extension == "pem"))
        .collect();
    paths.sort();
    for path in paths {
        if let Ok(key) = varde_ledger::keyfile::read_signing_key(&path) {
            keys.push(key);
        }
    }
    if keys.is_empty() {
        return Err(usage(format!(
            "--keys: no signing key (*.pem) in {}",
            dir.display()
        )));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_are_taken_as_https() {
        assert_eq!(endpoint("127.0.0.1:50051"), "https://127.0.0.1:50051");
        assert_eq!(endpoint("http://127.0.0.1:1"), "http://127.0.0.1:1");
    }
}
