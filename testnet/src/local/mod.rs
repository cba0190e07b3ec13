//! Local multi-process networks: N validator processes on loopback, every connection between them
//! carried by a fault-injecting relay ([`crate::relay`]) so that partitions need no root.
//!
//! Each operation reads and writes the network's state file, so they can be run from separate
//! commands (`varde testnet up`, `kill 2`, `partition 0,1/2,3`, `down`, ...). Validators serve
//! gRPC over TLS with certificates of the network's own CA (`DIR/tls/ca.pem`); every client
//! here trusts that CA and nothing else.

pub mod chaos;
pub mod faults;
pub mod load;
pub mod network;
pub mod process;

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use tokio::time::Instant;
use tonic::transport::Certificate;
use varde_proto::v1;

use crate::relay::{self, Faults};
use network::{Layout, NetworkState, NodeState};

/// How a network's processes are started: `program node --config FILE` for a validator and
/// `program testnet relay --dir DIR` for the relay (the `varde` binary answers both).
#[derive(Debug, Clone)]
pub struct Launcher {
    pub program: PathBuf,
}

impl Launcher {
    /// The running executable (the `varde` binary).
    pub fn current() -> anyhow::Result<Self> {
        Ok(Self {
            program: std::env::current_exe().context("cannot locate the varde executable")?,
        })
    }
}

/// The command-line marker of validator `index`'s process: its config path.
fn node_marker(layout: &Layout, index: usize) -> String {
    layout.node_config(index).display().to_string()
}

fn relay_marker(layout: &Layout) -> String {
    format!("relay --dir {}", layout.root.display())
}

/// Options of `up`.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub validators: usize,
    pub dir: PathBuf,
    /// Validators that misbehave or have a skewed clock, for fault-tolerance tests (a fresh
    /// network only; needs the `byzantine-test` feature).
    pub testing: network::Testing,
    pub load_demo_data: bool,
    /// How long to wait for the first commits.
    pub timeout: Duration,
}

/// Makes `dir` absolute (without `.` components), so that markers and configs name one place
/// whatever the working directory.
pub fn absolute(dir: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(dir).with_context(|| format!("cannot resolve {}", dir.display()))
}

/// Creates (or resumes) a network in `options.dir`, starts the relay and every validator, waits
/// until every honest one has committed, and loads the demo data. Returns the state.
pub async fn up(launcher: &Launcher, options: &UpOptions) -> anyhow::Result<NetworkState> {
    let layout = Layout::new(&absolute(&options.dir)?);
    let mut state = if layout.state().exists() {
        let state = layout.read_state()?;
        anyhow::ensure!(
            !any_running(&layout, &state),
            "a local network is already running in {} (stop it with `varde testnet down`)",
            layout.root.display()
        );
        network::add_tls_if_missing(&layout, &state)?;
        state
    } else {
        anyhow::ensure!(
            !layout.root.exists() || std::fs::read_dir(&layout.root)?.next().is_none(),
            "{} exists and is not a local network; choose another --dir",
            layout.root.display()
        );
        std::fs::create_dir_all(&layout.root)?;
        network::create(
            &layout,
            options.validators,
            &options.testing,
            varde_node::context::now_unix_ms(),
        )?
        .state
    };
    let fresh = !layout.root.join("demo-data-loaded").exists();
    start_relay(launcher, &layout, &mut state)?;
    for index in 0..state.nodes.len() {
        start_node(launcher, &layout, &mut state, index)?;
    }
    let ca = layout.read_ca()?;
    let started = wait_for_commits(&layout, &state, &ca, 1, options.timeout).await;
    if let Err(error) = started {
        let _ = down(&layout.root);
        return Err(error);
    }
    if fresh && options.load_demo_data {
        let keys = varde_node::demo::DemoKeys::read(&layout.keys())?;
        let channel = varde_client::connect::connect_tls(state.nodes[0].grpc, &ca).await?;
        varde_node::dev::load_demo_data(channel, &keys)
            .await
            .context("loading the demo data")?;
        std::fs::write(
            layout.root.join("demo-data-loaded"),
            b"demo data committed\n",
        )?;
    }
    Ok(state)
}

fn any_running(layout: &Layout, state: &NetworkState) -> bool {
    state
        .relay_pid
        .is_some_and(|pid| process::is_running(pid, &relay_marker(layout)))
        || state.nodes.iter().any(|node| {
            node.pid
                .is_some_and(|pid| process::is_running(pid, &node_marker(layout, node.index)))
        })
}

fn start_relay(
    launcher: &Launcher,
    layout: &Layout,
    state: &mut NetworkState,
) -> anyhow::Result<()> {
    if state
        .relay_pid
        .is_some_and(|pid| process::is_running(pid, &relay_marker(layout)))
    {
        return Ok(());
    }
    let pid = process::spawn(
        &launcher.program,
        &[
            OsStr::new("testnet"),
            OsStr::new("relay"),
            OsStr::new("--dir"),
            layout.root.as_os_str(),
        ],
        &layout.relay_log(),
    )?;
    state.relay_pid = Some(pid);
    layout.write_state(state)
}

/// Starts validator `index` unless it runs.
pub fn start_node(
    launcher: &Launcher,
    layout: &Layout,
    state: &mut NetworkState,
    index: usize,
) -> anyhow::Result<()> {
    let node = node_mut(state, index)?;
    if node
        .pid
        .is_some_and(|pid| process::is_running(pid, &node_marker(layout, index)))
    {
        return Ok(());
    }
    let config = layout.node_config(index);
    let pid = process::spawn(
        &launcher.program,
        &[
            OsStr::new("node"),
            OsStr::new("--config"),
            config.as_os_str(),
        ],
        &layout.node_log(index),
    )?;
    node.pid = Some(pid);
    layout.write_state(state)
}

fn node_mut(state: &mut NetworkState, index: usize) -> anyhow::Result<&mut NodeState> {
    let count = state.nodes.len();
    state
        .nodes
        .get_mut(index)
        .with_context(|| format!("there is no validator {index}; this network has 0..{count}"))
}

/// SIGKILLs validator `index`.
pub fn kill(dir: &Path, index: usize) -> anyhow::Result<()> {
    let layout = Layout::new(&absolute(dir)?);
    let mut state = layout.read_state()?;
    let marker = node_marker(&layout, index);
    let node = node_mut(&mut state, index)?;
    if let Some(pid) = node.pid.take() {
        process::kill(pid, &marker)?;
    }
    layout.write_state(&state)
}

/// Pauses validator `index` with SIGSTOP (it keeps its connections; messages to it wait).
pub fn pause(dir: &Path, index: usize) -> anyhow::Result<()> {
    signal_node(dir, index, process::pause)
}

/// Continues a paused validator with SIGCONT.
pub fn resume(dir: &Path, index: usize) -> anyhow::Result<()> {
    signal_node(dir, index, process::resume)
}

fn signal_node(
    dir: &Path,
    index: usize,
    send: fn(u32, &str) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let layout = Layout::new(&absolute(dir)?);
    let mut state = layout.read_state()?;
    let marker = node_marker(&layout, index);
    let node = node_mut(&mut state, index)?;
    let pid = node
        .pid
        .with_context(|| format!("validator {index} is not running"))?;
    send(pid, &marker)
}

/// Sets validator `index`'s clock offset in its config and restarts it (needs the
/// `byzantine-test` feature).
pub fn skew_clock(
    launcher: &Launcher,
    dir: &Path,
    index: usize,
    clock_offset_ms: i64,
) -> anyhow::Result<()> {
    let layout = Layout::new(&absolute(dir)?);
    let mut state = layout.read_state()?;
    let node = node_mut(&mut state, index)?;
    let mut testing = node.testing.clone();
    testing.clock_offset_ms = clock_offset_ms;
    network::check_testing(
        &network::Testing::from([(index, testing.clone())]),
        index + 1,
    )?;
    let path = layout.node_config(index);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut config = varde_node::NodeConfig::from_toml_unvalidated(&text)
        .with_context(|| format!("{} is not a valid node config", path.display()))?;
    config.testing = testing.clone();
    std::fs::write(&path, config.to_toml())
        .with_context(|| format!("cannot write {}", path.display()))?;
    node.testing = testing;
    layout.write_state(&state)?;
    restart(launcher, dir, index)
}

/// Stops validator `index` if it runs (SIGTERM), and starts it again on its data.
pub fn restart(launcher: &Launcher, dir: &Path, index: usize) -> anyhow::Result<()> {
    let layout = Layout::new(&absolute(dir)?);
    let mut state = layout.read_state()?;
    let marker = node_marker(&layout, index);
    if let Some(pid) = node_mut(&mut state, index)?.pid.take() {
        process::stop(pid, &marker)?;
    }
    start_node(launcher, &layout, &mut state, index)
}

/// Starts validator `index` if it is not running.
pub fn restart_if_stopped(launcher: &Launcher, dir: &Path, index: usize) -> anyhow::Result<()> {
    let layout = Layout::new(&absolute(dir)?);
    let mut state = layout.read_state()?;
    start_node(launcher, &layout, &mut state, index)
}

/// Parses `0,1/2,3` into groups, checking every index.
pub fn parse_partition(text: &str, validators: usize) -> anyhow::Result<Vec<Vec<usize>>> {
    let mut seen = vec![false; validators];
    let mut groups = Vec::new();
    for group in text.split('/') {
        let mut members = Vec::new();
        for item in group
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let index: usize = item
                .parse()
                .with_context(|| format!("`{item}` is not a validator index"))?;
            anyhow::ensure!(
                index < validators,
                "there is no validator {index}; this network has 0..{validators}"
            );
            anyhow::ensure!(!seen[index], "validator {index} is named twice");
            seen[index] = true;
            members.push(index);
        }
        anyhow::ensure!(
            !members.is_empty(),
            "a partition group is empty in `{text}`"
        );
        groups.push(members);
    }
    anyhow::ensure!(
        groups.len() >= 2,
        "a partition needs at least two groups separated by `/`, e.g. 0,1/2,3"
    );
    Ok(groups)
}

/// Cuts every connection between the groups (validators not named are cut off from all).
pub fn partition(dir: &Path, groups: Vec<Vec<usize>>, delay_ms: u64) -> anyhow::Result<()> {
    let layout = Layout::new(&absolute(dir)?);
    layout.read_state()?;
    relay::write_faults(
        &layout.root,
        &Faults {
            partition: Some(groups),
            delay_ms,
        },
    )
}

/// Removes every partition (and delay).
pub fn heal(dir: &Path) -> anyhow::Result<()> {
    let layout = Layout::new(&absolute(dir)?);
    layout.read_state()?;
    relay::write_faults(&layout.root, &Faults::default())
}

/// Sets a one-way delay on every connection, keeping any partition.
pub fn delay(dir: &Path, delay_ms: u64) -> anyhow::Result<()> {
    let layout = Layout::new(&absolute(dir)?);
    layout.read_state()?;
    let faults_path = layout.root.join(relay::FAULTS_FILE);
    let mut faults: Faults = std::fs::read(&faults_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    faults.delay_ms = delay_ms;
    relay::write_faults(&layout.root, &faults)
}

/// Stops every process of the network (SIGTERM, then SIGKILL) and checks that none is left.
/// The directory stays, with its data and logs.
pub fn down(dir: &Path) -> anyhow::Result<usize> {
    let layout = Layout::new(&absolute(dir)?);
    let mut state = layout.read_state()?;
    let mut stopped = 0;
    for index in 0..state.nodes.len() {
        let marker = node_marker(&layout, index);
        if let Some(pid) = state.nodes[index].pid.take() {
            if process::is_running(pid, &marker) {
                process::stop(pid, &marker)?;
                stopped += 1;
            }
        }
    }
    if let Some(pid) = state.relay_pid.take() {
        if process::is_running(pid, &relay_marker(&layout)) {
            process::stop(pid, &relay_marker(&layout))?;
            stopped += 1;
        }
    }
    let _ = relay::write_faults(&layout.root, &Faults::default());
    layout.write_state(&state)?;
    Ok(stopped)
}

/// One validator's status, or why it has none.
pub struct NodeReport {
    pub node: NodeState,
    pub running: bool,
    pub status: Result<v1::StatusResponse, String>,
}

/// Asks every validator for its status (2 s each at most).
pub async fn status(dir: &Path) -> anyhow::Result<Vec<NodeReport>> {
    let layout = Layout::new(&absolute(dir)?);
    let state = layout.read_state()?;
    let ca = layout.read_ca()?;
    let mut reports = Vec::with_capacity(state.nodes.len());
    for node in state.nodes {
        let running = node
            .pid
            .is_some_and(|pid| process::is_running(pid, &node_marker(&layout, node.index)));
        let status = if running {
            node_status(node.grpc, &ca, Duration::from_secs(2)).await
        } else {
            Err("not running".to_owned())
        };
        reports.push(NodeReport {
            node,
            running,
            status,
        });
    }
    Ok(reports)
}

/// One node's `Node.Status` over TLS trusting `ca`, within `timeout`.
pub async fn node_status(
    address: SocketAddr,
    ca: &Certificate,
    timeout: Duration,
) -> Result<v1::StatusResponse, String> {
    let call = async {
        let channel = varde_client::connect::connect_tls(address, ca)
            .await
            .map_err(|error| match error {
                // `varde testnet status` shows this: the transport's error, without advice.
                varde_client::ConnectError::Unreachable {
                    endpoint, detail, ..
                } => format!("cannot reach the node at {endpoint}: {detail}"),
                error => error.to_string(),
            })?;
        varde_client::Client::from_channel(channel, varde_client::connect::https_url(address))
            .status()
            .await
            .map_err(|error| match error {
                varde_client::Error::Call(call) => call.status.message().to_owned(),
                error => error.to_string(),
            })
    };
    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {timeout:?}")))
}

/// Waits until every validator has committed `height`.
async fn wait_for_commits(
    layout: &Layout,
    state: &NetworkState,
    ca: &Certificate,
    height: u64,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    // A validator under test attacks owes the network nothing: one that floods its peers is
    // cut by them again and again and may commit late or never, and that must not count as
    // the network failing to start.
    for node in state.nodes.iter().filter(|node| !node.is_byzantine()) {
        loop {
            match node_status(node.grpc, ca, Duration::from_secs(2)).await {
                Ok(status) if status.height >= height => break,
                _ if Instant::now() >= deadline => anyhow::bail!(
                    "validator {} did not commit within {timeout:?}; see {}",
                    node.index,
                    layout.node_log(node.index).display()
                ),
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Groups parse; an unknown, repeated or missing index and a single group are refused.
    #[test]
    fn partitions_parse_and_are_checked() {
        assert_eq!(
            parse_partition("0,1/2,3", 4).unwrap(),
            vec![vec![0, 1], vec![2, 3]]
        );
        assert_eq!(
            parse_partition("0/1,2", 4).unwrap(),
            vec![vec![0], vec![1, 2]]
        );
        assert!(parse_partition("0,4/1", 4).is_err());
        assert!(parse_partition("0,1/1,2", 4).is_err());
        assert!(parse_partition("0,1,2,3", 4).is_err());
        assert!(parse_partition("0,1//2", 4).is_err());
        assert!(parse_partition("a/1", 4).is_err());
    }
}
