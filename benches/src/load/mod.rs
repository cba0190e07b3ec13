//! The load generator behind `varde bench`.
//!
//! 1. Connects to every node (`connections_per_node` HTTP/2 connections each, over TLS for
//!    `https://` endpoints, trusting the CA given).
//! 2. Setup, not measured: each submitting institution whose key it holds anchors
//!    [`workload::SETUP_RECORDS_PER_SUBMITTER`] records and grants each to the next institution.
//! 3. Signs every transaction of the run before it starts ([`workload::Workload::prepare`]), so
//!    that signing does not compete with the validators during the window.
//! 4. Sends them ([`drive`]): warm-up, then the steady window that the figures cover.
//! 5. Waits for every call to end and checks that every acknowledged transaction is on the
//!    ledger exactly once ([`check`]).

pub mod check;
pub mod drive;
pub mod report;
pub mod workload;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use ed25519_dalek::SigningKey;
use tonic::transport::{Certificate, Channel};
use varde_client::Client;
use varde_client::connect::Target;
use varde_ledger::membership::Genesis;

use drive::{Answer, Connections, Mode, Progress};
use report::{Report, Window};
use workload::Workload;

/// What to run.
#[derive(Clone)]
pub struct Options {
    /// Node endpoints (`https://host:port` or `http://host:port`).
    pub nodes: Vec<String>,
    /// The CA that signed the nodes' TLS certificates (needed for `https://`).
    pub ca: Option<Certificate>,
    pub genesis: Genesis,
    /// Keys of member institutions (submitting keys; others are ignored).
    pub keys: Vec<SigningKey>,
    pub mode: Mode,
    pub warmup: Duration,
    pub seconds: Duration,
    pub connections_per_node: usize,
    /// Open loop: the most calls in flight before the generator stops sending (and counts what
    /// it did not send). Bounds the generator's memory under overload.
    pub max_in_flight: usize,
    /// Closed loop: transactions prepared per second of the run (the most it can commit).
    pub closed_loop_rate_cap: f64,
    /// Prints progress on stderr.
    pub progress: bool,
}

/// Runs the load and returns its report (with the exactly-once check).
pub async fn run(options: Options, say: impl Fn(&str)) -> anyhow::Result<Report> {
    anyhow::ensure!(!options.nodes.is_empty(), "no node to send to");
    let channels = connect_all(&options).await?;
    let connections = Connections::new(channels.clone());
    let expiry = options.warmup + options.seconds + Duration::from_secs(15 * 60);
    let mut workload = Workload::new(&options.genesis, &options.keys, expiry)?;
    let reader = Client::from_channel(channels[0].clone(), options.nodes[0].clone())
        .with_key(workload.reader.clone())
        .await
        .context("Node.Status of the first node")?;
    anyhow::ensure!(
        reader
            .credentials()
            .is_some_and(|credentials| credentials.chain_id() == workload.chain_id),
        "the nodes serve another chain than the genesis given ({})",
        workload.chain_id
    );

    say(&format!(
        "setup: {} submitting institutions anchor {} records and grant each to another",
        workload.submitters.len(),
        workload.records.len()
    ));
    setup(&connections, &mut workload).await?;

    let total = options.warmup + options.seconds;
    let count = match options.mode {
        Mode::Open { rate } => (rate * total.as_secs_f64()).ceil() as usize,
        Mode::Closed { .. } => (options.closed_loop_rate_cap * total.as_secs_f64()).ceil() as usize,
    };
    say(&format!("signing {count} transactions"));
    let transactions = Arc::new(workload.prepare(count, varde_client::now_unix_ms()));

    let first_height = reader.status().await?.height + 1;
    let progress = Arc::new(Progress::default());
    let display = options
        .progress
        .then(|| show_progress(progress.clone(), total, options.warmup));
    let samples = drive::drive(
        connections,
        transactions.clone(),
        options.mode,
        total,
        options.max_in_flight,
        progress,
    )
    .await;
    if let Some(display) = display {
        display.abort();
        eprintln!();
    }
    let window = Window {
        warmup: options.warmup,
        steady: options.seconds,
    };
    let mut report = report::summarise(
        &samples,
        window,
        options.mode,
        options.nodes.len(),
        channels.len(),
    );
    if matches!(options.mode, Mode::Closed { .. }) && samples.len() >= transactions.len() {
        say(&format!(
            "every prepared transaction was sent before the end: raise the closed-loop rate cap ({} tx/s)",
            options.closed_loop_rate_cap
        ));
    }
    let acknowledged: Vec<([u8; 32], u64)> = samples
        .iter()
        .filter_map(|sample| match sample.answer {
            Answer::Committed { height, .. } => Some((transactions[sample.index].id, height)),
            _ => None,
        })
        .collect();
    say(&format!(
        "checking that {} acknowledged transactions are committed exactly once",
        acknowledged.len()
    ));
    report.exactly_once = Some(check::exactly_once(&reader, first_height, &acknowledged).await?);
    Ok(report)
}

async fn connect_all(options: &Options) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::new();
    for endpoint in &options.nodes {
        let target = Target::parse(endpoint)?;
        for _ in 0..options.connections_per_node.max(1) {
            channels.push(
                target
                    .connect(options.ca.as_ref())
                    .await
                    .with_context(|| format!("connecting to {endpoint}"))?,
            );
        }
    }
    Ok(channels)
}

/// Commits the setup anchors, then the grants, and notes the grants' ids.
async fn setup(connections: &Connections, workload: &mut Workload) -> anyhow::Result<()> {
    let now = varde_client::now_unix_ms();
    commit_all(connections, workload.setup_anchors(now), "setup anchor").await?;
    let grants = workload.setup_grants(now);
    let ids: Vec<[u8; 32]> = grants.iter().map(|grant| grant.id).collect();
    commit_all(connections, grants, "setup grant").await?;
    for (record, id) in workload.records.iter_mut().zip(ids) {
        record.grant_id = Some(id);
    }
    Ok(())
}

async fn commit_all(
    connections: &Connections,
    transactions: Vec<workload::Prepared>,
    what: &str,
) -> anyhow::Result<()> {
    let mut calls = tokio::task::JoinSet::new();
    for transaction in transactions {
        let client = connections.clone();
        calls
            .spawn(async move { drive::submit(client.next_client(), &transaction.envelope).await });
    }
    while let Some(answer) = calls.join_next().await {
        match answer? {
            Answer::Committed {
                rejected: false, ..
            } => {}
            Answer::Committed { rejected: true, .. } => {
                anyhow::bail!("a {what} was refused by the ledger's rules (see the node's log)")
            }
            other => anyhow::bail!("a {what} did not commit: {other:?}"),
        }
    }
    Ok(())
}

/// A progress line on stderr once a second: elapsed, phase, commits a second, in flight.
fn show_progress(
    progress: Arc<Progress>,
    total: Duration,
    warmup: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let bar = indicatif::ProgressBar::new(total.as_secs());
        bar.set_style(
            indicatif::ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} s  {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        let started = tokio::time::Instant::now();
        let mut last_committed = 0;
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let elapsed = started.elapsed();
            let committed = progress.committed.load(Ordering::Relaxed);
            bar.set_position(elapsed.as_secs().min(total.as_secs()));
            bar.set_message(format!(
                "{}  {} tx/s  {} in flight  {} failed",
                if elapsed < warmup {
                    "warm-up"
                } else {
                    "measuring"
                },
                committed - last_committed,
                progress.in_flight.load(Ordering::Relaxed),
                progress.failed.load(Ordering::Relaxed),
            ));
            last_committed = committed;
        }
    })
}
