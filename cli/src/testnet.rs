//! `varde testnet`: a local network of validator processes on loopback, and its faults
//! (`varde_testnet::local`). `varde node` runs one validator from a config file.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::json;
use varde_node::config::{Attack, TestingConfig};
use varde_testnet::local::{self, Launcher, UpOptions};

use crate::exit::Outcome;
use crate::render;

/// Where the local network lives when `--dir` is not given.
pub const DEFAULT_DIR: &str = "./varde-testnet";

#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    /// The node's TOML configuration file.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
}

/// Runs one validator from its config until Ctrl-C or SIGTERM.
pub fn run_node(arguments: NodeArgs) -> anyhow::Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(varde_node::service::run_config_file(&arguments.config))?;
    Ok(Outcome::Success)
}

#[derive(Debug, clap::Args)]
pub struct DirArgs {
    /// The network's directory.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DIR)]
    dir: PathBuf,
}

#[derive(Debug, clap::Subcommand)]
pub enum TestnetCommand {
    /// Create and start N validators with demo data (or resume a stopped network in DIR).
    Up {
        /// How many validators.
        #[arg(short = 'n', long = "validators", default_value_t = 4)]
        validators: usize,
        #[command(flatten)]
        dir: DirArgs,
        /// Start validator I in a Byzantine test mode (a fresh network only; needs a varde
        /// built with the test-only feature `byzantine-test`).
        #[arg(long, value_name = "I")]
        byzantine: Option<usize>,
        /// What the Byzantine validator does (repeat for several).
        #[arg(long = "attack", value_enum, value_name = "KIND", default_values_t = [AttackArg::Equivocate], requires = "byzantine")]
        attacks: Vec<AttackArg>,
        /// Do not load the demo institutions' records, grant and access event.
        #[arg(long)]
        no_demo_data: bool,
    },
    /// Every validator's status: height, round, peers, mempool, latency, catch-up.
    Status(DirArgs),
    /// Kill validator I with SIGKILL.
    Kill {
        index: usize,
        #[command(flatten)]
        dir: DirArgs,
    },
    /// Pause validator I with SIGSTOP (messages to and from it wait until `resume`).
    Pause {
        index: usize,
        #[command(flatten)]
        dir: DirArgs,
    },
    /// Continue a paused validator I with SIGCONT.
    Resume {
        index: usize,
        #[command(flatten)]
        dir: DirArgs,
    },
    /// Restart validator I on its data (stopping it first if it runs).
    Restart {
        index: usize,
        #[command(flatten)]
        dir: DirArgs,
    },
    /// Cut the network into groups, e.g. `0,1/2,3`; validators not named are isolated.
    Partition {
        groups: String,
        #[command(flatten)]
        dir: DirArgs,
    },
    /// Add a one-way delay (milliseconds) to every connection; 0 removes it.
    Delay {
        milliseconds: u64,
        #[command(flatten)]
        dir: DirArgs,
    },
    /// Remove every partition and delay.
    Heal(DirArgs),
    /// Stop every process of the network; data and logs stay in DIR.
    Down(DirArgs),
    /// Run a fresh network under steady load for S seconds while killing, pausing (SIGSTOP,
    /// then SIGCONT), isolating and delaying validators and setting one's clock 60 s ahead,
    /// with honest clocks skewed by up to 10 s and, from 7 validators on, one Byzantine
    /// validator throughout (never more than f faulty at once); then check that every
    /// acknowledged transaction is committed on every validator and that all hold the same
    /// chain. Clock skew and the Byzantine validator need a varde built with the test-only
    /// feature `byzantine-test`; without it they are left out (and the run says so). The last
    /// line is `acknowledged: A, lost: L, forks: F, seconds: T`.
    Chaos {
        /// How long the faults and the load go on.
        #[arg(long)]
        seconds: u64,
        /// The network's directory (must not exist).
        #[arg(long, value_name = "DIR", default_value = "./varde-chaos")]
        dir: PathBuf,
        #[arg(short = 'n', long = "validators", default_value_t = 4)]
        validators: usize,
        /// Closed-loop clients submitting signed transactions.
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// Seeds the fault schedule, the clock skews and the Byzantine validator's attacks
        /// (random when not given; printed either way).
        #[arg(long)]
        seed: Option<u64>,
        /// Keep the network's data and logs after the run.
        #[arg(long)]
        keep: bool,
        /// No Byzantine validator, even with 7 or more (all of f goes to the other faults).
        #[arg(long)]
        no_byzantine: bool,
    },
    /// Run the relay that carries the network's connections (started by `up`).
    #[command(hide = true)]
    Relay(DirArgs),
}

/// `--attack` of `testnet up`: the config's [`Attack`], spelled for the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AttackArg {
    /// Every proposal and vote is followed by a conflicting one.
    Equivocate,
    /// Half of the peers get conflicting proposals and votes.
    SplitViews,
    /// Sync requests get a block dated a day ahead under a one-signature certificate.
    FutureSync,
    /// Votes with invalid signatures, as fast as the connections take them.
    VoteFlood,
}

impl AttackArg {
    fn attack(self) -> Attack {
        match self {
            AttackArg::Equivocate => Attack::Equivocate,
            AttackArg::SplitViews => Attack::SplitViews,
            AttackArg::FutureSync => Attack::FutureSync,
            AttackArg::VoteFlood => Attack::VoteFlood,
        }
    }
}

pub fn run(command: TestnetCommand, json_output: bool) -> anyhow::Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match command {
        TestnetCommand::Up {
            validators,
            dir,
            byzantine,
            attacks,
            no_demo_data,
        } => {
            let testing = byzantine
                .map(|index| {
                    let config = TestingConfig {
                        attacks: attacks.iter().map(|attack| attack.attack()).collect(),
                        clock_offset_ms: 0,
                    };
                    (index, config)
                })
                .into_iter()
                .collect();
            let options = UpOptions {
                validators,
                dir: dir.dir,
                testing,
                load_demo_data: !no_demo_data,
                timeout: Duration::from_secs(60),
            };
            let state = runtime.block_on(local::up(&Launcher::current()?, &options))?;
            let directory = local::absolute(&options.dir)?;
            let demo_data = directory.join("demo-data-loaded").exists();
            let ca_file = local::network::Layout::new(&directory).ca_certificate();
            let nodes: Vec<_> = state
                .nodes
                .iter()
                .map(|node| {
                    json!({
                        "index": node.index,
                        "operator": node.operator,
                        "grpc": format!("https://{}", node.grpc),
                        "metrics": format!("http://{}/metrics", node.metrics),
                        "peer": node.peer.to_string(),
                        "pid": node.pid,
                        "byzantine": node.is_byzantine(),
                        "attacks": node.testing.attacks,
                    })
                })
                .collect();
            render::emit(
                json_output,
                &json!({"dir": directory.display().to_string(), "chain_id": state.chain_id, "demo_data": demo_data, "ca_file": ca_file.display().to_string(), "nodes": nodes}),
                || {
                    let mut text = format!(
                        "Varde local network (chain {}): {} validators committing{}\n",
                        state.chain_id,
                        state.nodes.len(),
                        if demo_data { ", demo data loaded" } else { "" }
                    );
                    for node in &state.nodes {
                        text.push_str(&format!(
                            "  {}  {:<22} gRPC https://{}  metrics http://{}/metrics{}\n",
                            node.index,
                            node.operator,
                            node.grpc,
                            node.metrics,
                            if node.is_byzantine() {
                                "  (Byzantine)"
                            } else {
                                ""
                            }
                        ));
                    }
                    text.push_str(&format!(
                        "  gRPC is TLS; clients trust the network's CA: {}\n  data and logs: {}\n  next: varde status --endpoint https://{} --ca-file {} | varde testnet status | varde testnet down",
                        ca_file.display(),
                        directory.display(),
                        state.nodes[0].grpc,
                        ca_file.display()
                    ));
                    text
                },
            );
            Ok(Outcome::Success)
        }
        TestnetCommand::Status(dir) => {
            let reports = runtime.block_on(local::status(&dir.dir))?;
            render::emit(
                json_output,
                &json!(
                    reports
                        .iter()
                        .map(|report| {
                            let status = match &report.status {
                                Ok(status) => render::status_json(
                                    &format!("https://{}", report.node.grpc),
                                    status,
                                ),
                                Err(error) => json!({"error": error}),
                            };
                            json!({"index": report.node.index, "running": report.running, "status": status})
                        })
                        .collect::<Vec<_>>()
                ),
                || render::testnet_status_text(&reports),
            );
            Ok(Outcome::Success)
        }
        TestnetCommand::Kill { index, dir } => {
            local::kill(&dir.dir, index)?;
            render::emit(json_output, &json!({"killed": index}), || {
                format!("validator {index} killed (SIGKILL)")
            });
            Ok(Outcome::Success)
        }
        TestnetCommand::Pause { index, dir } => {
            local::pause(&dir.dir, index)?;
            render::emit(json_output, &json!({"paused": index}), || {
                format!("validator {index} paused (SIGSTOP)")
            });
            Ok(Outcome::Success)
        }
        TestnetCommand::Resume { index, dir } => {
            local::resume(&dir.dir, index)?;
            render::emit(json_output, &json!({"resumed": index}), || {
                format!("validator {index} resumed (SIGCONT)")
            });
            Ok(Outcome::Success)
        }
        TestnetCommand::Restart { index, dir } => {
            local::restart(&Launcher::current()?, &dir.dir, index)?;
            render::emit(json_output, &json!({"restarted": index}), || {
                format!("validator {index} restarted")
            });
            Ok(Outcome::Success)
        }
        TestnetCommand::Partition { groups, dir } => {
            let state = local::network::Layout::new(&local::absolute(&dir.dir)?).read_state()?;
            let parsed = local::parse_partition(&groups, state.nodes.len())?;
            local::partition(&dir.dir, parsed.clone(), 0)?;
            render::emit(json_output, &json!({"partition": parsed}), || {
                format!("partitioned: {groups}")
            });
            Ok(Outcome::Success)
        }
        TestnetCommand::Delay { milliseconds, dir } => {
            local::delay(&dir.dir, milliseconds)?;
            render::emit(json_output, &json!({"delay_ms": milliseconds}), || {
                format!("one-way delay {milliseconds} ms on every connection")
            });
            Ok(Outcome::Success)
        }
        TestnetCommand::Heal(dir) => {
            local::heal(&dir.dir)?;
            render::emit(json_output, &json!({"healed": true}), || {
                "healed: every connection allowed, no delay".to_owned()
            });
            Ok(Outcome::Success)
        }
        TestnetCommand::Down(dir) => {
            let stopped = local::down(&dir.dir)?;
            render::emit(json_output, &json!({"stopped": stopped}), || {
                format!(
                    "stopped {stopped} processes; data and logs remain in {}",
                    dir.dir.display()
                )
            });
            Ok(Outcome::Success)
        }
        TestnetCommand::Chaos {
            seconds,
            dir,
            validators,
            clients,
            seed,
            keep,
            no_byzantine,
        } => {
            let options = local::chaos::ChaosOptions {
                dir: dir.clone(),
                seconds,
                validators,
                clients,
                seed: seed.unwrap_or_else(rand::random),
                byzantine: !no_byzantine,
            };
            let outcome =
                runtime.block_on(local::chaos::run(&Launcher::current()?, &options, |line| {
                    println!("{line}")
                }))?;
            if !keep {
                let _ = std::fs::remove_dir_all(&dir);
            }
            println!("{outcome}");
            Ok(if outcome.lost == 0 && outcome.forks == 0 {
                Outcome::Success
            } else {
                Outcome::CheckFailed
            })
        }
        TestnetCommand::Relay(dir) => {
            let root = local::absolute(&dir.dir)?;
            runtime.block_on(varde_testnet::relay::run_relay_from_dir(
                &root,
                varde_node::service::shutdown_signal(),
            ))?;
            Ok(Outcome::Success)
        }
    }
}
