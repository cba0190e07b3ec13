//! Multi-process tests of the validator network: real `varde node` processes on loopback, started
//! and faulted with `varde testnet` (ARCHITECTURE.md, "What is tested"). Every client here talks
//! gRPC over TLS, trusting only the CA that `varde testnet up` made (`ca_file` in its output).
//! They run one at a time: each starts four validators, and two cores do not carry several
//! networks at once.

mod common;

use std::time::Duration;

use common::testnet::{OutsideNode, PATIENCE, Testnet, dump_logs, serial, varde};
use serde_json::Value;
use tokio::time::Instant;
use tonic::transport::Endpoint;
use varde_proto::v1;

impl Testnet {
    /// On every validator, a client with no credentials (over TLS, trusting the network's CA)
    /// gets UNAUTHENTICATED from the Ledger reads that return content, and the same read signed
    /// by a member is answered.
    async fn assert_unsigned_reads_refused(&self, id: &[u8]) {
        for node in 0..4 {
            let mut client = self.ledger(node).await;
            let refusals = [
                client
                    .get_block(v1::GetBlockRequest {
                        auth: None,
                        height: 1,
                    })
                    .await
                    .map(|_| ()),
                client
                    .get_transaction(v1::GetTransactionRequest {
                        auth: None,
                        transaction_id: id.to_vec(),
                    })
                    .await
                    .map(|_| ()),
                client
                    .list_misbehaviour(v1::ListMisbehaviourRequest::default())
                    .await
                    .map(|_| ()),
                client
                    .stream_events(v1::StreamEventsRequest::default())
                    .await
                    .map(|_| ()),
            ];
            for refusal in refusals {
                assert_eq!(
                    refusal.unwrap_err().code(),
                    tonic::Code::Unauthenticated,
                    "validator {node}"
                );
            }
            let request = self.signed(v1::GetBlockRequest {
                auth: None,
                height: 1,
            });
            assert!(client.get_block(request).await.is_ok(), "validator {node}");
        }
    }
}

// Four validators commit transactions submitted to any of them, and all report the same block
// hashes and state roots at every height.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_commit_and_agree() {
    let _serial = serial().await;
    let network = Testnet::up(&[]);
    let mut ids = Vec::new();
    for round in 0..3 {
        for node in 0..4 {
            ids.push(
                network
                    .commit(node, network.anchor(&format!("{round}-{node}")))
                    .await,
            );
        }
    }
    let head = network.height(0).await;
    network.wait_for_height(&[0, 1, 2, 3], head).await;
    network.assert_agreement(&[0, 1, 2, 3]).await;
    for node in 0..4 {
        for id in &ids {
            network.assert_committed(node, id).await;
        }
    }
    network.assert_tls_only().await;
    network.assert_unsigned_reads_refused(&ids[0]).await;
    network.assert_resume_reuses_certificates().await;
}

impl Testnet {
    /// The validators' TLS keys are private; the CLI reaches a validator with --ca-file and
    /// `testnet status` reaches all; a plaintext client is refused.
    async fn assert_tls_only(&self) {
        #[cfg(unix)]
        for index in 0..self.grpc.len() {
            use std::os::unix::fs::PermissionsExt as _;
            let key = self.root.join("tls").join(format!("node-{index}-key.pem"));
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{} is private", key.display());
        }
        let status = varde(&[
            "--json",
            "status",
            "--endpoint",
            &self.grpc[0],
            "--ca-file",
            &self.ca_file,
        ]);
        assert!(
            status.status.success(),
            "{}",
            String::from_utf8_lossy(&status.stderr)
        );
        let root = self.root.display().to_string();
        let statuses = varde(&["--json", "testnet", "status", "--dir", &root]);
        let statuses: Value = serde_json::from_slice(&statuses.stdout).unwrap();
        for report in statuses.as_array().unwrap() {
            assert!(report["status"]["height"].as_u64().unwrap() > 0, "{report}");
        }
        let plaintext = self.grpc[0].replace("https://", "http://");
        let refused = async {
            let channel = Endpoint::from_shared(plaintext)
                .unwrap()
                .connect()
                .await
                .ok()?;
            v1::node_client::NodeClient::new(channel)
                .status(v1::StatusRequest {})
                .await
                .ok()
        };
        let answer = tokio::time::timeout(Duration::from_secs(10), refused)
            .await
            .ok()
            .flatten();
        assert!(answer.is_none(), "a plaintext client got an answer");
    }

    /// `down`, then `up` on the same directory: the CA and certificates are the same files and
    /// the validators serve TLS with them again.
    async fn assert_resume_reuses_certificates(&self) {
        let tls = self.root.join("tls");
        let before = [
            std::fs::read(tls.join("ca.pem")).unwrap(),
            std::fs::read(tls.join("node-0.pem")).unwrap(),
        ];
        self.run(&["down"]);
        let root = self.root.display().to_string();
        let output = varde(&["--json", "testnet", "up", "--dir", &root]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let after = [
            std::fs::read(tls.join("ca.pem")).unwrap(),
            std::fs::read(tls.join("node-0.pem")).unwrap(),
        ];
        assert_eq!(
            before, after,
            "up on an existing network reuses its certificates"
        );
        assert!(
            self.status(0).await.is_some(),
            "the old CA still verifies validator 0"
        );
    }
}

// One validator killed with SIGKILL: the others keep committing; restarted, it catches up. Two
// of four killed: nothing commits and nothing forks; restarted, commits resume and every
// acknowledged transaction is on every validator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validators_survive_one_crash_and_halt_safely_with_two() {
    let _serial = serial().await;
    let network = Testnet::up(&["--no-demo-data"]);
    let mut acknowledged = Vec::new();

    network.run(&["kill", "3"]);
    for index in 0..6 {
        acknowledged.push(
            network
                .commit(index % 3, network.anchor(&format!("one-down-{index}")))
                .await,
        );
    }
    network.run(&["restart", "3"]);
    let head = network.height(0).await;
    network.wait_for_height(&[3], head).await;
    network.assert_agreement(&[0, 1, 2, 3]).await;

    network.run(&["kill", "2"]);
    network.run(&["kill", "3"]);
    // Whatever was in flight settles; then the two survivors must not commit on their own.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let halted_at = [network.height(0).await, network.height(1).await];
    let pending = network.anchor("while-halted");
    let mut client = network.ledger(0).await;
    let pending_id = client
        .submit(v1::SubmitRequest {
            transaction: Some(pending),
        })
        .await
        .unwrap()
        .into_inner()
        .transaction_id;
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(
        [network.height(0).await, network.height(1).await],
        halted_at,
        "two of four validators cannot commit"
    );
    network.assert_agreement(&[0, 1]).await;

    network.run(&["restart", "2"]);
    network.run(&["restart", "3"]);
    let resumed = halted_at[0].max(halted_at[1]) + 2;
    network.wait_for_height(&[0, 1, 2, 3], resumed).await;
    acknowledged.push(network.commit(2, network.anchor("after-recovery")).await);
    network.assert_agreement(&[0, 1, 2, 3]).await;
    for node in 0..4 {
        for id in &acknowledged {
            network.assert_committed(node, id).await;
        }
    }
    // The transaction submitted during the halt was kept and committed after it.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let status = client
            .get_transaction(network.signed(v1::GetTransactionRequest {
                auth: None,
                transaction_id: pending_id.clone(),
            }))
            .await
            .unwrap()
            .into_inner()
            .status;
        if status == v1::TransactionStatus::Committed as i32 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the pending transaction never committed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

// A 2|2 partition stops commits without a fork; healed, the network commits again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_two_two_halts_without_fork_and_heals() {
    let _serial = serial().await;
    let network = Testnet::up(&["--no-demo-data"]);
    network.wait_for_height(&[0, 1, 2, 3], 2).await;
    network.run(&["partition", "0,1/2,3"]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut before = Vec::new();
    for node in 0..4 {
        before.push(network.height(node).await);
    }
    tokio::time::sleep(Duration::from_secs(8)).await;
    for (node, height) in before.iter().enumerate() {
        assert_eq!(
            network.height(node).await,
            *height,
            "validator {node} committed in a 2|2 partition"
        );
    }
    network.run(&["heal"]);
    let highest = *before.iter().max().unwrap();
    network.wait_for_height(&[0, 1, 2, 3], highest + 3).await;
    network.commit(1, network.anchor("after-heal")).await;
    network.assert_agreement(&[0, 1, 2, 3]).await;
}

// A validator that equivocates does not break safety, and the others put the evidence of its
// misbehaviour on the ledger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equivocation_is_survived_and_recorded() {
    let _serial = serial().await;
    let network = Testnet::up(&["--no-demo-data", "--byzantine", "3"]);
    for index in 0..4 {
        network
            .commit(index % 3, network.anchor(&format!("byzantine-{index}")))
            .await;
    }
    let offender = std::fs::read_to_string(network.root.join("testnet.json")).unwrap();
    let state: Value = serde_json::from_str(&offender).unwrap();
    let offender_key = state["nodes"][3]["public_key"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + PATIENCE;
    let records = loop {
        let records = network
            .ledger(0)
            .await
            .list_misbehaviour(network.signed(v1::ListMisbehaviourRequest {
                auth: None,
                page_size: 100,
                page_token: String::new(),
            }))
            .await
            .unwrap()
            .into_inner()
            .records;
        if !records.is_empty() {
            break records;
        }
        assert!(Instant::now() < deadline, "no misbehaviour was recorded");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for record in &records {
        let key = varde_ledger::hex::encode(&record.offender_public_key);
        assert_eq!(
            key, offender_key,
            "only the Byzantine validator is reported"
        );
    }
    network.assert_agreement(&[0, 1, 2, 3]).await;
}

// A libp2p peer whose key is outside the validator set is refused at the handshake: a fifth
// node with a fresh key, pointed straight at validator 0, gets no blocks and is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outsider_cannot_connect() {
    let _serial = serial().await;
    let network = Testnet::up(&["--no-demo-data"]);
    let key = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
    let outsider = OutsideNode::start(&network, "outsider", &key, &[0]);
    let deadline = Instant::now() + PATIENCE;
    let refused = loop {
        let refused = network
            .status(0)
            .await
            .map_or(0, |status| status.connections_refused);
        if refused > 0 || Instant::now() > deadline {
            break refused;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let outsider_status = outsider.status().await;
    drop(outsider);
    assert!(refused > 0, "validator 0 did not refuse the outsider");
    let outsider_status = outsider_status.expect("the outsider node serves its status");
    assert_eq!(outsider_status.height, 0, "the outsider got blocks");
    assert_eq!(network.status(0).await.unwrap().peers, 3);
}

// `varde bench` against a running network: open loop with `--json`, then closed loop with its
// table, each checking afterwards that every acknowledged transaction is in exactly one block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_measures_and_checks_exactly_once() {
    let _serial = serial().await;
    let net = Testnet::up(&[]);
    let nodes = net.grpc.join(",");
    let root = net.root.display().to_string();
    let common = ["--nodes", &nodes, "--network-dir", &root, "--warmup", "1"];

    let mut open = vec!["--json", "bench", "--rate", "40", "--seconds", "4"];
    open.extend_from_slice(&common);
    let output = varde(&open);
    if !output.status.success() {
        dump_logs(&net.root);
    }
    assert!(
        output.status.success(),
        "varde bench --rate: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let check = &report["exactly_once"];
    assert!(report["committed"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["rejected_by_rules"], 0, "{report}");
    for field in ["missing", "duplicated", "wrong_height"] {
        assert_eq!(check[field], 0, "{field}: {report}");
    }
    assert!(check["acknowledged"].as_u64().unwrap() >= report["committed"].as_u64().unwrap());

    let mut closed = vec![
        "bench",
        "--closed-loop",
        "--in-flight",
        "16",
        "--rate-cap",
        "100",
        "--seconds",
        "3",
    ];
    closed.extend_from_slice(&common);
    let output = varde(&closed);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("exactly once                 holds"),
        "{stdout}"
    );
    let last = stdout.trim_end().lines().last().unwrap();
    let figures: Vec<f64> = last
        .split(", ")
        .zip(["throughput_tps: ", "p50_ms: ", "p99_ms: "])
        .map(|(part, name)| {
            part.strip_prefix(name)
                .unwrap_or_else(|| panic!("{last:?}"))
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(figures.len(), 3, "{last:?}");
    assert!(
        figures[0] > 0.0 && figures[1] > 0.0 && figures[2] >= figures[1],
        "{last:?}"
    );
}

// A node outside the validator set, named as an observer by validator 0, gets no consensus
// messages: it asks for blocks every second and follows the chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_follows_the_chain() {
    let _serial = serial().await;
    let network = Testnet::up(&["--no-demo-data"]);
    let key = ed25519_dalek::SigningKey::from_bytes(&[43; 32]);
    let config_path = network.root.join("node-0").join("node.toml");
    let mut config = varde_ledger::node_config::NodeConfig::from_toml_unvalidated(
        &std::fs::read_to_string(&config_path).unwrap(),
    )
    .unwrap();
    config
        .network
        .as_mut()
        .unwrap()
        .observers
        .push(varde_ledger::hex::encode(&key.verifying_key().to_bytes()));
    std::fs::write(&config_path, config.to_toml()).unwrap();
    let before = network.height(1).await;
    network.run(&["restart", "0"]);
    network.wait_for_height(&[0], before).await;
    let observer = OutsideNode::start(&network, "observer", &key, &[0]);
    for index in 0..3 {
        network
            .commit(index, network.anchor(&format!("observed-{index}")))
            .await;
    }
    let target = network.height(0).await;
    let deadline = Instant::now() + PATIENCE;
    let mut reached = 0;
    while reached < target && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        reached = observer.height().await;
    }
    assert!(
        reached >= target,
        "the observer reached height {reached} of {target}"
    );
}
