//! A closed-loop load of signed transactions: each client signs a fresh record anchor, submits it
//! with SubmitAndWait to a validator, and waits for the commit before sending the next. A client
//! whose validator fails moves on to the next validator. `varde testnet chaos` drives it while it
//! injects faults; throughput and latency are measured with `varde bench` (varde-benches).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use tokio::time::Instant;
use tonic::transport::Certificate;
use varde_client::Client;
use varde_client::tx::{Anchor, Expiry, SignedEnvelope, Transaction};
use varde_node::demo;

/// How long a load transaction stays valid.
const EXPIRY: Duration = Duration::from_secs(3_600);

/// What the clients saw.
#[derive(Debug, Default, Clone)]
pub struct LoadReport {
    /// Transactions whose commit a validator acknowledged, by id.
    pub acknowledged: Vec<Vec<u8>>,
    /// Submissions that failed (validator down, timeout, refused).
    pub failures: u64,
    pub elapsed: Duration,
}

/// Runs `clients` closed-loop clients against `validators` (over TLS, trusting `ca`) until
/// `stop` is set.
pub async fn run(
    validators: Vec<SocketAddr>,
    ca: Certificate,
    signer: SigningKey,
    clients: usize,
    stop: Arc<AtomicBool>,
) -> LoadReport {
    let started = Instant::now();
    let signer = Arc::new(signer);
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let validators = validators.clone();
        let ca = ca.clone();
        let signer = signer.clone();
        let stop = stop.clone();
        tasks.spawn(async move { run_client(client, validators, &ca, &signer, &stop).await });
    }
    let mut report = LoadReport::default();
    while let Some(result) = tasks.join_next().await {
        if let Ok(client) = result {
            report.acknowledged.extend(client.acknowledged);
            report.failures += client.failures;
        }
    }
    report.elapsed = started.elapsed();
    report
}

async fn run_client(
    client: usize,
    validators: Vec<SocketAddr>,
    ca: &Certificate,
    signer: &SigningKey,
    stop: &AtomicBool,
) -> LoadReport {
    let mut report = LoadReport::default();
    let mut target = client % validators.len();
    let mut connection: Option<Client> = None;
    let mut sequence = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if connection.is_none() {
            let address = validators[target];
            match varde_client::connect::connect_tls(address, ca).await {
                Ok(channel) => {
                    let endpoint = varde_client::connect::https_url(address);
                    connection = Some(Client::from_channel(channel, endpoint));
                }
                Err(_) => {
                    report.failures += 1;
                    target = (target + 1) % validators.len();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
        }
        let Some(ledger) = connection.as_mut() else {
            continue;
        };
        sequence += 1;
        let Some(transaction) = anchor(signer, client, sequence) else {
            report.failures += 1;
            continue;
        };
        let call = ledger.submit_and_wait(transaction, Duration::from_secs(20));
        match tokio::time::timeout(Duration::from_secs(25), call).await {
            Ok(Ok(response)) => {
                if response.receipt.is_some() {
                    report.acknowledged.push(response.transaction_id);
                }
            }
            _ => {
                report.failures += 1;
                connection = None;
                target = (target + 1) % validators.len();
            }
        }
    }
    report
}

/// A record anchor that no other client or sequence number repeats (`None` if the ledger's
/// rules would refuse it).
fn anchor(signer: &SigningKey, client: usize, sequence: u64) -> Option<SignedEnvelope> {
    let now = varde_node::context::now_unix_ms();
    let anchor = Anchor::new(
        demo::HOSPITAL.org_number,
        format!("load-{client}-{sequence}-{now}"),
        demo::demo_pseudonym((sequence % 200) as u8),
        "laboratory",
        format!("https://ehr.example.invalid/load/{client}/{sequence}"),
        [0x5a; 32],
        now,
    );
    Transaction::new(anchor)
        .expiry(Expiry::After(EXPIRY))
        .sign_at(demo::CHAIN_ID, signer, now)
        .ok()
}
