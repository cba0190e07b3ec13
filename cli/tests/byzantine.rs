//! Multi-process Byzantine tests: four real `varde node` processes on loopback (started with
//! `varde_testnet::local`, every connection through the relay), validator 3 in a Byzantine
//! test mode (`[testing] attacks`, built in because this test build enables the feature
//! `byzantine-test`). The three honest validators are loaded by the same closed-loop clients
//! for the same time as a fault-free network of four and as a network with validator 3
//! crashed; they must keep committing, without a fork, at no less than [`RATE_FRACTION`] of
//! the fault-free rate and [`CRASH_FRACTION`] of the crashed one. Each test prints the rates
//! (past the harness's capture, so that a passing run shows them too).
//!
//! A faulty proposer, crashed or Byzantine, costs each of its heights the propose timeout
//! (1 s in a local network), so a quarter of the heights take twenty times longer: that, not
//! the attacks' traffic, sets the rate. Split views cost more when the conflicting halves lock
//! on different blocks and later rounds (with longer timeouts) must resolve it. Measured on the
//! 2-core development machine (debug build, 8 clients, 20 s windows), in committed
//! transactions a second: fault-free 74.3–86.6; validator 3 crashed 10.5–11.1; future-dated
//! sync answers (with validator 2 killed, then restarted facing the Byzantine one alone)
//! 34.2–49.5; an invalid-vote flood 9.5–10.7 (each honest validator cut the flooder 330–780
//! times in 20 s); split views 4.8–11.9. The crashed rate is itself only 12–14 % of the
//! fault-free one, and the slowest split-views run would be 5.5 % of today's fault-free rate,
//! so the floors are 4 % of the fault-free rate and 25 % of the crashed rate (the lowest share
//! of the crashed rate measured is 46 %, split views).
//!
//! A Byzantine validator owes the network nothing, so the network counts as started once the
//! honest validators commit: the flooder, cut by every peer, may commit late or never.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::OnceCell;
use tokio::time::Instant;
use tonic::transport::Certificate;
use varde_node::config::{Attack, TestingConfig};
use varde_node::demo::{self, DemoKeys};
use varde_proto::v1;
use varde_testnet::local::network::{Layout, NetworkState, Testing};
use varde_testnet::local::{self, Launcher, UpOptions, load};
use varde_testnet::relay::{self, Faults};

/// The honest validators' commit rate under attack must be at least this fraction of the
/// fault-free rate.
const RATE_FRACTION: f64 = 0.04;
/// ... and at least this fraction of their rate with validator 3 crashed instead.
const CRASH_FRACTION: f64 = 0.25;
/// How long each network is measured under load.
const WINDOW: Duration = Duration::from_secs(20);
/// Closed-loop clients, on the honest validators only.
const CLIENTS: usize = 8;
const HONEST: [usize; 3] = [0, 1, 2];
const BYZANTINE: usize = 3;

/// Prints a measured figure to the process's standard error directly, past the test harness's
/// capture, so that every run (CI's included) shows the rates under each attack.
macro_rules! report {
    ($($argument:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($argument)*);
    }};
}

/// One network at a time (an async mutex: each test has its own runtime).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
/// The fault-free rate, measured once by the first test that needs it.
static FAULT_FREE: OnceCell<Rate> = OnceCell::const_new();
/// The rate with validator 3 crashed, measured once likewise.
static CRASHED: OnceCell<Rate> = OnceCell::const_new();

#[derive(Debug, Clone, Copy)]
struct Rate {
    transactions_per_second: f64,
    blocks_per_second: f64,
}

impl std::fmt::Display for Rate {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "{:.1} tx/s, {:.2} blocks/s",
            self.transactions_per_second, self.blocks_per_second
        )
    }
}

/// A running network; stopped on drop, so a failed test leaves no process behind.
struct Network {
    _dir: tempfile::TempDir,
    root: PathBuf,
    state: NetworkState,
    ca: Certificate,
    keys: DemoKeys,
    launcher: Launcher,
}

impl Drop for Network {
    fn drop(&mut self) {
        let _ = local::down(&self.root);
    }
}

impl Network {
    async fn up(attacks: &[Attack]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("net");
        let launcher = Launcher {
            program: PathBuf::from(env!("CARGO_BIN_EXE_varde")),
        };
        let mut testing = Testing::new();
        if !attacks.is_empty() {
            let config = TestingConfig {
                attacks: attacks.to_vec(),
                clock_offset_ms: 0,
            };
            testing.insert(BYZANTINE, config);
        }
        let options = UpOptions {
            validators: 4,
            dir: root.clone(),
            testing,
            load_demo_data: false,
            timeout: Duration::from_secs(120),
        };
        let state = match local::up(&launcher, &options).await {
            Ok(state) => state,
            Err(error) => {
                dump_logs(&root);
                panic!("the network did not start: {error:#}");
            }
        };
        let layout = Layout::new(&root);
        Self {
            ca: layout.read_ca().unwrap(),
            keys: DemoKeys::read(&layout.keys()).unwrap(),
            _dir: dir,
            root,
            state,
            launcher,
        }
    }

    fn grpc(&self, node: usize) -> SocketAddr {
        self.state.nodes[node].grpc
    }

    async fn height(&self, node: usize) -> u64 {
        local::node_status(self.grpc(node), &self.ca, Duration::from_secs(3))
            .await
            .map_or(0, |status| status.height)
    }

    /// Runs the clients on the honest validators for [`WINDOW`], with `during` running
    /// alongside; returns the honest validators' commit rate.
    async fn measure(&self, during: impl std::future::Future<Output = ()>) -> Rate {
        let start_height = self.height(0).await;
        let stop = Arc::new(AtomicBool::new(false));
        let load = tokio::spawn(load::run(
            HONEST.iter().map(|node| self.grpc(*node)).collect(),
            self.ca.clone(),
            self.keys.of(demo::HOSPITAL).clone(),
            CLIENTS,
            stop.clone(),
        ));
        let started = Instant::now();
        tokio::join!(during, tokio::time::sleep(WINDOW));
        stop.store(true, Ordering::Relaxed);
        let elapsed = started.elapsed().as_secs_f64();
        let report = load.await.unwrap();
        let blocks = self.height(0).await.saturating_sub(start_height);
        Rate {
            transactions_per_second: report.acknowledged.len() as f64 / elapsed,
            blocks_per_second: blocks as f64 / elapsed,
        }
    }

    /// The honest validators hold the same headers up to the lowest height among them, and
    /// each reached at least `height`.
    async fn assert_honest_agree(&self, height: u64) {
        let mut lowest = u64::MAX;
        for node in HONEST {
            let deadline = Instant::now() + Duration::from_secs(90);
            while self.height(node).await < height {
                if Instant::now() > deadline {
                    dump_logs(&self.root);
                    panic!("honest validator {node} did not reach height {height}");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            lowest = lowest.min(self.height(node).await);
        }
        let mut reference = Vec::new();
        for node in HONEST {
            let headers = self.headers(node, lowest).await;
            if reference.is_empty() {
                reference = headers;
            } else {
                assert_eq!(
                    headers, reference,
                    "validator {node} forked from validator 0"
                );
            }
        }
    }

    async fn headers(&self, node: usize, height: u64) -> Vec<v1::BlockHeader> {
        let channel = varde_client::connect::connect_tls(self.grpc(node), &self.ca)
            .await
            .unwrap();
        let mut client = v1::ledger_client::LedgerClient::new(channel);
        let mut headers = Vec::new();
        for at in 1..=height {
            let request = self.signed(v1::GetBlockRequest {
                auth: None,
                height: at,
            });
            let block = client.get_block(request).await.unwrap().into_inner();
            headers.push(block.header.unwrap());
        }
        headers
    }

    /// `request` signed by the demo auditor (`varde_client`, varde-query-v2).
    fn signed<T: varde_client::Signed>(&self, request: T) -> T {
        varde_client::Credentials::new(demo::CHAIN_ID, self.keys.of(demo::AUDITOR).clone())
            .sign(request)
            .unwrap()
    }

    /// `varde_invalid_peer_messages_total{protocol}` of `node`, from its metrics endpoint.
    async fn invalid_peer_messages(&self, node: usize, protocol: &str) -> u64 {
        let text = scrape(self.state.nodes[node].metrics).await;
        let prefix = format!("varde_invalid_peer_messages_total{{protocol=\"{protocol}\"}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .map_or(0, |value| value.trim().parse::<f64>().unwrap_or(0.0) as u64)
    }
}

/// GET /metrics over plain HTTP.
/// GET /metrics over plain HTTP; empty while the node does not answer.
async fn scrape(address: SocketAddr) -> String {
    let mut response = String::new();
    if let Ok(mut stream) = tokio::net::TcpStream::connect(address).await {
        let request = b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n";
        if stream.write_all(request).await.is_ok() {
            let _ = stream.read_to_string(&mut response).await;
        }
    }
    response
}

fn dump_logs(root: &std::path::Path) {
    for entry in std::fs::read_dir(root.join("logs"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        eprintln!("--- {} (last lines)", entry.path().display());
        for line in tail.iter().rev() {
            eprintln!("{line}");
        }
    }
}

/// The fault-free rate of four honest validators under the same load.
async fn fault_free() -> Rate {
    *FAULT_FREE
        .get_or_init(|| async {
            let network = Network::up(&[]).await;
            let rate = network.measure(async {}).await;
            report!("fault-free: {rate}");
            rate
        })
        .await
}

/// The rate of the three honest validators with validator 3 crashed: what any faulty
/// proposer costs (its heights wait for the propose timeout).
async fn crashed() -> Rate {
    *CRASHED
        .get_or_init(|| async {
            let network = Network::up(&[]).await;
            local::kill(&network.root, BYZANTINE).unwrap();
            let rate = network.measure(async {}).await;
            report!("validator 3 crashed: {rate}");
            rate
        })
        .await
}

/// Measures `attacks` by validator 3 against the fault-free rate, with `during` run alongside
/// the load; checks the rate floor and that the honest validators agree.
async fn survive(name: &str, attacks: &[Attack], during: impl AsyncFnOnce(&Network)) -> Network {
    let baseline = fault_free().await;
    let crash = crashed().await;
    let network = Network::up(attacks).await;
    let before = network.height(0).await;
    let rate = network.measure(during(&network)).await;
    let share = |of: Rate| 100.0 * rate.transactions_per_second / of.transactions_per_second;
    report!(
        "{name}: honest validators {rate}; fault-free {baseline} ({:.0} %); \
         validator 3 crashed {crash} ({:.0} %)",
        share(baseline),
        share(crash)
    );
    network.assert_honest_agree(before + 1).await;
    assert!(
        rate.transactions_per_second >= RATE_FRACTION * baseline.transactions_per_second,
        "{name}: {rate} is below {RATE_FRACTION} of the fault-free {baseline}"
    );
    assert!(
        rate.transactions_per_second >= CRASH_FRACTION * crash.transactions_per_second,
        "{name}: {rate} is below {CRASH_FRACTION} of the rate with validator 3 crashed, {crash}"
    );
    network
}

// A validator that answers block sync with a block dated a day ahead under a certificate only
// it signed: an honest validator killed, then restarted while it can reach the Byzantine one
// alone, refuses every forged answer (counted) and commits nothing from them; once it reaches
// the others it catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn future_dated_sync_answers_are_survived() {
    let _serial = SERIAL.lock().await;
    let network = survive(
        "future-dated sync",
        &[Attack::FutureSync],
        async |network: &Network| {
            local::kill(&network.root, 2).unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            let behind = network.height(0).await;
            // Validator 2 reaches only the Byzantine validator; the others reach each other.
            let only_byzantine = Faults {
                partition: Some(vec![vec![0, 1, BYZANTINE], vec![2, BYZANTINE]]),
                delay_ms: 0,
            };
            relay::write_faults(&network.root, &only_byzantine).unwrap();
            local::restart(&network.launcher, &network.root, 2).unwrap();
            let deadline = Instant::now() + Duration::from_secs(60);
            while network.invalid_peer_messages(2, "sync").await == 0 {
                assert!(
                    Instant::now() < deadline,
                    "validator 2 was never answered by the Byzantine validator"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            assert!(
                network.height(2).await < behind,
                "validator 2 committed from forged answers alone"
            );
            local::heal(&network.root).unwrap();
        },
    )
    .await;
    let refused = network.invalid_peer_messages(2, "sync").await;
    report!("forged sync answers refused by validator 2: {refused}");
    let head = network.height(0).await;
    network.assert_honest_agree(head).await;
}

// A validator that floods invalid votes as fast as its connections take them is cut by every
// honest validator (counted in varde_invalid_peer_messages_total{protocol="consensus"}), and
// the others keep their rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_vote_flood_is_cut_and_counted() {
    let _serial = SERIAL.lock().await;
    let network = survive("invalid-vote flood", &[Attack::VoteFlood], async |_| {}).await;
    for node in HONEST {
        let cut = network.invalid_peer_messages(node, "consensus").await;
        report!("validator {node} cut the flooding peer {cut} times");
        assert!(cut > 0, "validator {node} never cut the flooding peer");
    }
}

// A validator that shows split views (half of its peers get its proposals and votes, the other
// half conflicting ones, each validly signed, a conflicting proposal with a valid block) does
// not fork the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_views_do_not_fork() {
    let _serial = SERIAL.lock().await;
    survive("split views", &[Attack::SplitViews], async |_| {}).await;
}
