//! The chaos run: a fresh network under steady load while validators are killed, restarted,
//! isolated and delayed (never more than f at once), then checked: every acknowledged
//! transaction is committed on every validator, and all validators hold the same chain.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use tokio::time::Instant;
use tonic::transport::Certificate;
use varde_proto::v1;

use super::network::Layout;
use super::{Launcher, UpOptions, load};

#[derive(Debug, Clone)]
pub struct ChaosOptions {
    pub dir: PathBuf,
    pub seconds: u64,
    pub validators: usize,
    pub clients: usize,
    /// Seeds the fault schedule, so that a run's faults can be repeated.
    pub seed: u64,
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

/// One validator's fault at a time is the most a network of 3f+1 = 4 tolerates; in general f.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Killed(usize),
    Isolated(usize),
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
    let state = super::up(
        launcher,
        &UpOptions {
            validators: options.validators,
            dir: dir.clone(),
            byzantine: None,
            load_demo_data: false,
            timeout: Duration::from_secs(120),
        },
    )
    .await?;
    let layout = Layout::new(&dir);
    let result = run_on(launcher, &layout, &state, options, &mut progress).await;
    let _ = super::down(&dir);
    result
}

async fn run_on(
    launcher: &Launcher,
    layout: &Layout,
    state: &super::network::NetworkState,
    options: &ChaosOptions,
    progress: &mut impl FnMut(&str),
) -> anyhow::Result<ChaosOutcome> {
    let count = state.nodes.len();
    let tolerated = (count - 1) / 3;
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

    let mut rng = StdRng::seed_from_u64(options.seed);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(options.seconds);
    let mut faults: Vec<Fault> = Vec::new();
    while Instant::now() < deadline {
        let pause = Duration::from_millis(rng.random_range(2_000..8_000));
        tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
        if Instant::now() >= deadline {
            break;
        }
        let elapsed = started.elapsed().as_secs();
        // Undo a fault half the time, or whenever no more may be added.
        if !faults.is_empty() && (faults.len() >= tolerated || rng.random_bool(0.5)) {
            let fault = faults.remove(rng.random_range(0..faults.len()));
            match fault {
                Fault::Killed(index) => {
                    super::restart(launcher, &layout.root, index)?;
                    progress(&format!("{elapsed:>5} s  restart {index}"));
                }
                Fault::Isolated(index) => {
                    super::heal(&layout.root)?;
                    progress(&format!("{elapsed:>5} s  heal (reconnect {index})"));
                }
            }
            continue;
        }
        if faults.len() >= tolerated {
            continue;
        }
        let faulty: Vec<usize> = faults
            .iter()
            .map(|fault| match fault {
                Fault::Killed(index) | Fault::Isolated(index) => *index,
            })
            .collect();
        let healthy: Vec<usize> = (0..count).filter(|index| !faulty.contains(index)).collect();
        let victim = healthy[rng.random_range(0..healthy.len())];
        let isolated_already = faults
            .iter()
            .any(|fault| matches!(fault, Fault::Isolated(_)));
        // Two kills for one isolation: crashes exercise recovery from disk and block sync.
        if isolated_already || rng.random_range(0..3) < 2 {
            super::kill(&layout.root, victim)?;
            faults.push(Fault::Killed(victim));
            progress(&format!("{elapsed:>5} s  kill {victim}"));
        } else {
            let others: Vec<usize> = (0..count).filter(|index| *index != victim).collect();
            let delay_ms = rng.random_range(0..50);
            super::partition(&layout.root, vec![others, vec![victim]], delay_ms)?;
            faults.push(Fault::Isolated(victim));
            progress(&format!(
                "{elapsed:>5} s  isolate {victim} (others {delay_ms} ms delay)"
            ));
        }
    }
    let seconds = started.elapsed().as_secs();
    stop.store(true, Ordering::Relaxed);
    let report = load.await.context("the load generator failed")?;
    progress(&format!(
        "load: {} acknowledged, {} failed submissions; healing and checking",
        report.acknowledged.len(),
        report.failures
    ));

    super::heal(&layout.root)?;
    for index in 0..count {
        super::restart_if_stopped(launcher, &layout.root, index)?;
    }
    let head = settle(&validators, &ca).await?;
    let mut clients = Vec::with_capacity(validators.len());
    for validator in &validators {
        clients.push(ledger(*validator, &ca).await?);
    }
    // The checks read as the demo auditor, who may see every block and transaction.
    let reader = keys.of(varde_node::demo::AUDITOR).clone();
    let forks = count_forks(&mut clients, &reader, head).await?;
    let mut lost = 0;
    for id in &report.acknowledged {
        for client in &mut clients {
            if !is_committed(client, &reader, id).await? {
                lost += 1;
                break;
            }
        }
    }
    Ok(ChaosOutcome {
        acknowledged: report.acknowledged.len(),
        lost,
        forks,
        seconds,
    })
}

type LedgerClient = v1::ledger_client::LedgerClient<tonic::transport::Channel>;

async fn ledger(address: std::net::SocketAddr, ca: &Certificate) -> anyhow::Result<LedgerClient> {
    let channel = varde_node::tls::connect_tls(address, ca)
        .await
        .with_context(|| format!("cannot reach the validator at {address}"))?;
    Ok(v1::ledger_client::LedgerClient::new(channel))
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

/// Heights up to `head` at which some validator's block header differs from the first's.
async fn count_forks(
    clients: &mut [LedgerClient],
    reader: &ed25519_dalek::SigningKey,
    head: u64,
) -> anyhow::Result<usize> {
    let mut forks = 0;
    for height in 1..=head {
        let mut reference: Option<v1::BlockHeader> = None;
        for client in clients.iter_mut() {
            let request = signed(reader, "/varde.v1.Ledger/GetBlock", |auth| {
                v1::GetBlockRequest { auth, height }
            })?;
            let header = client
                .get_block(request)
                .await
                .with_context(|| format!("reading block {height}"))?
                .into_inner()
                .header;
            match (&reference, header) {
                (None, Some(header)) => reference = Some(header),
                (Some(expected), Some(header)) if *expected == header => {}
                _ => {
                    forks += 1;
                    break;
                }
            }
        }
    }
    Ok(forks)
}

/// A read request signed by `reader` (varde-query-v2): `build(auth)` makes it.
pub(crate) fn signed<T: prost::Message>(
    reader: &ed25519_dalek::SigningKey,
    method: &str,
    build: impl Fn(Option<v1::RequestAuthentication>) -> T,
) -> anyhow::Result<T> {
    let auth = varde_ledger::signing::sign_query(
        varde_node::demo::CHAIN_ID,
        method,
        reader,
        varde_node::context::now_unix_ms(),
        &rand::random::<[u8; 16]>(),
        &build(None),
    )?;
    Ok(build(Some(auth)))
}

async fn is_committed(
    client: &mut LedgerClient,
    reader: &ed25519_dalek::SigningKey,
    id: &[u8],
) -> anyhow::Result<bool> {
    let request = signed(reader, "/varde.v1.Ledger/GetTransaction", |auth| {
        v1::GetTransactionRequest {
            auth,
            transaction_id: id.to_vec(),
        }
    })?;
    let response = client
        .get_transaction(request)
        .await
        .context("reading a transaction")?
        .into_inner();
    Ok(response.status == v1::TransactionStatus::Committed as i32)
}
