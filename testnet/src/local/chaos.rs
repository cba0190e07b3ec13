//! The chaos run: a fresh network under steady load while validators are killed, paused
//! (SIGSTOP, so that what they and their peers sent arrives late), isolated, delayed and set
//! to a clock beyond the drift the others accept, with one Byzantine validator among seven or
//! more, and every honest clock skewed within the drift allowed; never more than f validators
//! faulty at once. Then it is checked: every acknowledged transaction is committed on every
//! validator, and all validators hold the same chain.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use tokio::time::Instant;
use tonic::transport::Certificate;
use varde_client::{Client, Credentials};
use varde_node::config::{Attack, TESTING_SUPPORTED, TestingConfig};
use varde_proto::v1;

use super::faults::{ActiveFaults, Fault};
use super::network::{Layout, Testing};
use super::{Launcher, UpOptions, load};

/// Honest validators' clocks are skewed by up to this much either way: two of them differ by
/// at most 20 s, within the 30 s a block may be dated ahead.
pub const HONEST_SKEW_MAX_MS: i64 = 10_000;

#[derive(Debug, Clone)]
pub struct ChaosOptions {
    pub dir: PathBuf,
    pub seconds: u64,
    pub validators: usize,
    pub clients: usize,
    /// Seeds the fault schedule, the clock skews and the Byzantine validator's attacks, so
    /// that a run's faults can be repeated.
    pub seed: u64,
    /// One validator Byzantine for the whole run when f ≥ 2 (and the build allows it).
    pub byzantine: bool,
}

/// The outcome, printed as `acknowledged: A, lost: L, forks: F, seconds: T`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChaosOutcome {
    pub acknowledged: usize,
    pub lost: usize,
    pub forks: usize,
    pub seconds: u64,
}

impl std::fmt::Display for ChaosOutcome {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "acknowledged: {}, lost: {}, forks: {}, seconds: {}",
            self.acknowledged, self.lost, self.forks, self.seconds
        )
    }
}

/// The Byzantine validator's attacks: a forged sync answer always, with one of the message
/// attacks.
const BYZANTINE_ATTACKS: [[Attack; 2]; 3] = [
    [Attack::SplitViews, Attack::FutureSync],
    [Attack::Equivocate, Attack::FutureSync],
    [Attack::VoteFlood, Attack::FutureSync],
];

/// Who misbehaves from the start: every validator's clock skew, and the Byzantine one (the
/// last validator, when there is one).
fn plan_testing(options: &ChaosOptions, rng: &mut StdRng) -> Testing {
    if !TESTING_SUPPORTED {
        return Testing::new();
    }
    let count = options.validators;
    let byzantine = options.byzantine && count.saturating_sub(1) / 3 >= 2;
    let mut testing = Testing::new();
    for index in 0..count {
        let mut config = TestingConfig {
            attacks: Vec::new(),
            clock_offset_ms: rng.random_range(-HONEST_SKEW_MAX_MS..=HONEST_SKEW_MAX_MS),
        };
        if byzantine && index == count - 1 {
            config.attacks =
                BYZANTINE_ATTACKS[rng.random_range(0..BYZANTINE_ATTACKS.len())].to_vec();
        }
        testing.insert(index, config);
    }
    testing
}

/// Runs the chaos; `progress` receives one line per event.
pub async fn run(
    launcher: &Launcher,
    options: &ChaosOptions,
    mut progress: impl FnMut(&str),
) -> anyhow::Result<ChaosOutcome> {
    let dir = super::absolute(&options.dir)?;
    anyhow::ensure!(
        !dir.exists(),
        "{} exists; chaos runs on a fresh network (choose another --dir or remove it)",
        dir.display()
    );
    let mut rng = StdRng::seed_from_u64(options.seed);
    let testing = plan_testing(options, &mut rng);
    let state = super::up(
        launcher,
        &UpOptions {
            validators: options.validators,
            dir: dir.clone(),
            testing,
            load_demo_data: false,
            timeout: Duration::from_secs(120),
        },
    )
    .await?;
    let layout = Layout::new(&dir);
    let result = run_on(launcher, &layout, &state, options, &mut rng, &mut progress).await;
    let _ = super::down(&dir);
    result
}

async fn run_on(
    launcher: &Launcher,
    layout: &Layout,
    state: &super::network::NetworkState,
    options: &ChaosOptions,
    rng: &mut StdRng,
    progress: &mut impl FnMut(&str),
) -> anyhow::Result<ChaosOutcome> {
    let count = state.nodes.len();
    let tolerated = (count - 1) / 3;
    let byzantine: Vec<usize> = state
        .nodes
        .iter()
        .filter(|node| node.is_byzantine())
        .map(|node| node.index)
        .collect();
    // The Byzantine validators are faulty throughout; the rest of f is for the faults below.
    let slots = tolerated.saturating_sub(byzantine.len());
    let validators: Vec<_> = state.nodes.iter().map(|node| node.grpc).collect();
    let keys = varde_node::demo::DemoKeys::read(&layout.keys())?;
    let signer = keys.of(varde_node::demo::HOSPITAL).clone();
    let ca = layout.read_ca()?;
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(load::run(
        validators.clone(),
        ca.clone(),
        signer,
        options.clients,
        stop.clone(),
    ));
    progress(&format!(
        "chaos: {count} validators (f = {tolerated}), {} clients, {} s, seed {}",
        options.clients, options.seconds, options.seed
    ));
    for node in &state.nodes {
        if node.is_byzantine() {
            progress(&format!(
                "validator {} is Byzantine throughout: {:?}, clock {} ms",
                node.index, node.testing.attacks, node.testing.clock_offset_ms
            ));
        }
    }
    if TESTING_SUPPORTED {
        let offsets: Vec<i64> = state
            .nodes
            .iter()
            .map(|node| node.testing.clock_offset_ms)
            .collect();
        progress(&format!("clock offsets (ms): {offsets:?}"));
    } else {
        progress(
            "this build lacks the feature `byzantine-test`: no Byzantine validator, no clock skew",
        );
    }

    let clock_offsets: BTreeMap<usize, i64> = state
        .nodes
        .iter()
        .map(|node| (node.index, node.testing.clock_offset_ms))
        .collect();
    let mut faults = ActiveFaults::new(launcher, &layout.root, count, clock_offsets);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(options.seconds);
    while Instant::now() < deadline {
        let pause = Duration::from_millis(rng.random_range(2_000..8_000));
        tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
        if Instant::now() >= deadline {
            break;
        }
        let elapsed = started.elapsed().as_secs();
        // Undo a fault half the time, or whenever no more may be added.
        if !faults.is_empty() && (faults.len() >= slots || rng.random_bool(0.5)) {
            let line = faults.undo(rng.random_range(0..faults.len()))?;
            progress(&format!("{elapsed:>5} s  {line}"));
            continue;
        }
        if faults.len() >= slots {
            continue;
        }
        let healthy: Vec<usize> = (0..count)
            .filter(|index| !faults.touches(*index) && !byzantine.contains(index))
            .collect();
        let victim = healthy[rng.random_range(0..healthy.len())];
        // Crashes most often: they exercise recovery from disk and block sync.
        let fault = match rng.random_range(0..9) {
            0..=2 => Fault::Killed(victim),
            3..=5 => Fault::Paused(victim),
            6 | 7 => Fault::Isolated(victim),
            _ if TESTING_SUPPORTED => Fault::ClockAhead(victim),
            _ => Fault::Killed(victim),
        };
        let line = faults.inject(fault, rng.random_range(0..50))?;
        progress(&format!("{elapsed:>5} s  {line}"));
    }
    let seconds = started.elapsed().as_secs();
    stop.store(true, Ordering::Relaxed);
    let report = load.await.context("the load generator failed")?;
    progress(&format!(
        "load: {} acknowledged, {} failed submissions; healing and checking",
        report.acknowledged.len(),
        report.failures
    ));

    faults.undo_all()?;
    super::heal(&layout.root)?;
    for index in 0..count {
        super::restart_if_stopped(launcher, &layout.root, index)?;
    }
    let head = settle(&validators, &ca).await?;
    // The checks read as the demo auditor, who may see every block and transaction. Each
    // validator is read by its own task: a long run has many transactions to look up.
    let reader = Credentials::new(
        varde_node::demo::CHAIN_ID,
        keys.of(varde_node::demo::AUDITOR).clone(),
    );
    let acknowledged = Arc::new(report.acknowledged.clone());
    let mut reads = Vec::with_capacity(validators.len());
    for validator in &validators {
        let client = ledger(*validator, &ca)
            .await?
            .with_credentials(reader.clone());
        reads.push(tokio::spawn(read_validator(
            client,
            head,
            acknowledged.clone(),
        )));
    }
    let mut views = Vec::with_capacity(reads.len());
    for read in reads {
        views.push(read.await.context("a check task failed")??);
    }
    let forks = count_forks(&views);
    let mut missing = vec![false; acknowledged.len()];
    for view in &views {
        for index in &view.missing {
            missing[*index] = true;
        }
    }
    let lost = missing.iter().filter(|missing| **missing).count();
    Ok(ChaosOutcome {
        acknowledged: report.acknowledged.len(),
        lost,
        forks,
        seconds,
    })
}

async fn ledger(address: std::net::SocketAddr, ca: &Certificate) -> anyhow::Result<Client> {
    let channel = varde_client::connect::connect_tls(address, ca)
        .await
        .with_context(|| format!("cannot reach the validator at {address}"))?;
    Ok(Client::from_channel(
        channel,
        varde_client::connect::https_url(address),
    ))
}

/// Waits until every validator has reached the highest height any of them had when the faults
/// stopped; returns that height.
async fn settle(validators: &[std::net::SocketAddr], ca: &Certificate) -> anyhow::Result<u64> {
    let mut target = 0;
    for validator in validators {
        if let Ok(status) = super::node_status(*validator, ca, Duration::from_secs(3)).await {
            target = target.max(status.height);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(180);
    for validator in validators {
        loop {
            let height = super::node_status(*validator, ca, Duration::from_secs(3))
                .await
                .map_or(0, |status| status.height);
            if height >= target {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the validator at {validator} is stuck at height {height} below {target}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(target)
}

/// What one validator holds: its headers from height 1 on, and which acknowledged
/// transactions (by index) it lacks.
struct View {
    headers: Vec<Option<v1::BlockHeader>>,
    missing: Vec<usize>,
}

async fn read_validator(
    client: Client,
    head: u64,
    acknowledged: Arc<Vec<Vec<u8>>>,
) -> anyhow::Result<View> {
    let mut headers = Vec::with_capacity(head as usize);
    for height in 1..=head {
        let request = v1::GetBlockRequest { auth: None, height };
        let header = client
            .get_block(request)
            .await
            .with_context(|| format!("reading block {height}"))?
            .header;
        headers.push(header);
    }
    let mut missing = Vec::new();
    for (index, id) in acknowledged.iter().enumerate() {
        if !is_committed(&client, id).await? {
            missing.push(index);
        }
    }
    Ok(View { headers, missing })
}

/// Heights at which some validator's block header differs from the first's, or is missing.
fn count_forks(views: &[View]) -> usize {
    let Some((first, others)) = views.split_first() else {
        return 0;
    };
    first
        .headers
        .iter()
        .enumerate()
        .filter(|(height, header)| {
            header.is_none()
                || others
                    .iter()
                    .any(|view| view.headers.get(*height) != Some(*header))
        })
        .count()
}

async fn is_committed(client: &Client, id: &[u8]) -> anyhow::Result<bool> {
    let request = v1::GetTransactionRequest {
        auth: None,
        transaction_id: id.to_vec(),
    };
    let response = client
        .get_transaction(request)
        .await
        .context("reading a transaction")?;
    Ok(response.status == v1::TransactionStatus::Committed as i32)
}
