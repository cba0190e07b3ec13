//! Governance on a running network of `varde node` processes (ARCHITECTURE.md, "Governance"):
//! the validator set grows to five and shrinks back to four under load; a validator's consensus
//! key rotates while another validator is down; a removed validator that keeps sending is cut and
//! refused. In each, no validator forks, every acknowledged transaction is committed, and commits
//! go on.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::testnet::{OutsideNode, PATIENCE, Testnet, dump_logs, serial};
use ed25519_dalek::SigningKey;
use serde_json::Value;
use tokio::time::Instant;
use tonic::transport::Endpoint;
use v1::membership_change::Change;
use varde_ledger::membership::Genesis;
use varde_node::demo;
use varde_proto::v1;

/// The institution that joins in the growth scenario (a valid organisation number no local
/// network of four uses).
const NEWCOMER: &str = "883658752";

fn genesis(net: &Testnet) -> Genesis {
    serde_json::from_str(&std::fs::read_to_string(net.root.join("genesis.json")).unwrap()).unwrap()
}

fn consensus_key(net: &Testnet, node: usize) -> SigningKey {
    varde_ledger::keyfile::read_signing_key(
        &net.root.join(format!("node-{node}")).join("validator.pem"),
    )
    .unwrap()
}

/// The organisation number of the institution that runs `node`.
fn operator(net: &Testnet, node: usize) -> String {
    let key = consensus_key(net, node).verifying_key().to_bytes();
    genesis(net)
        .institutions
        .iter()
        .find(|institution| institution.validator_key == Some(key))
        .unwrap()
        .org_number
        .to_string()
}

/// A governance transaction signed with `node`'s consensus key, for its institution.
fn signed(key: &SigningKey, action: v1::transaction_body::Action) -> v1::SignedTransaction {
    let now = varde_node::context::now_unix_ms();
    demo::sign(
        demo::CHAIN_ID,
        key,
        &demo::body(demo::CHAIN_ID, now, action),
    )
}

fn propose(
    net: &Testnet,
    node: usize,
    change: Change,
    effective_height: u64,
) -> v1::SignedTransaction {
    signed(
        &consensus_key(net, node),
        v1::transaction_body::Action::ProposeChange(v1::ProposeChange {
            proposer_org_number: operator(net, node),
            change: Some(v1::MembershipChange {
                change: Some(change),
            }),
            effective_height,
            approve_by_height: 0,
        }),
    )
}

fn approve(net: &Testnet, node: usize, proposal_id: &[u8]) -> v1::SignedTransaction {
    signed(
        &consensus_key(net, node),
        v1::transaction_body::Action::ApproveChange(v1::ApproveChange {
            approver_org_number: operator(net, node),
            proposal_id: proposal_id.to_vec(),
        }),
    )
}

/// Submits `transaction` to `node`, waits for its commit and requires it applied.
async fn commit_applied(net: &Testnet, node: usize, transaction: v1::SignedTransaction) -> Vec<u8> {
    let response = net
        .ledger(node)
        .await
        .submit_and_wait(v1::SubmitAndWaitRequest {
            transaction: Some(transaction),
            timeout_ms: 60_000,
        })
        .await
        .unwrap_or_else(|status| panic!("submit to validator {node}: {status}"))
        .into_inner();
    let receipt = response
        .receipt
        .expect("a committed transaction has a receipt");
    assert!(
        matches!(receipt.outcome, Some(v1::receipt::Outcome::Applied(_))),
        "the governance transaction was refused: {receipt:?}"
    );
    response.transaction_id
}

/// Proposes `change` from `proposer` and approves it by `approvers`; returns its effective height.
/// Under load a block takes a fraction of a second: the approvals get forty heights.
async fn pass(net: &Testnet, proposer: usize, approvers: &[usize], change: Change) -> u64 {
    let effective = net.height(proposer).await + 40;
    let id = commit_applied(net, proposer, propose(net, proposer, change, effective)).await;
    for &approver in approvers {
        commit_applied(net, approver, approve(net, approver, &id)).await;
    }
    let proposal = net
        .ledger(proposer)
        .await
        .get_proposal(net.signed(v1::GetProposalRequest {
            auth: None,
            proposal_id: id,
        }))
        .await
        .unwrap()
        .into_inner()
        .proposal
        .unwrap();
    assert_eq!(
        proposal.status,
        v1::ProposalStatus::Approved as i32,
        "{proposal:?}"
    );
    effective
}

/// The validator-set history `node` serves.
async fn validator_sets(net: &Testnet, node: usize) -> Vec<v1::ValidatorSetEntry> {
    net.ledger(node)
        .await
        .get_validator_sets(net.signed(v1::GetValidatorSetsRequest { auth: None }))
        .await
        .unwrap()
        .into_inner()
        .sets
}

/// Anchors submitted one after the other to the given validators, round-robin, until stopped;
/// a validator that does not answer is skipped. Every acknowledged id is kept.
struct Load {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<Vec<u8>>>,
}

impl Load {
    fn start(net: &Testnet, nodes: &[usize]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let endpoints: Vec<Endpoint> = nodes
            .iter()
            .map(|node| {
                Endpoint::from_shared(net.grpc[*node].clone())
                    .unwrap()
                    .tls_config(varde_client::connect::client_tls_config(&net.ca))
                    .unwrap()
                    .timeout(Duration::from_secs(20))
            })
            .collect();
        let key = net.keys.of(demo::HOSPITAL).clone();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let mut sequence = 0u64;
            while !stopped.load(Ordering::Relaxed) {
                let endpoint = &endpoints[sequence as usize % endpoints.len()];
                sequence += 1;
                let now = varde_node::context::now_unix_ms();
                let transaction = demo::sign(
                    demo::CHAIN_ID,
                    &key,
                    &demo::body(
                        demo::CHAIN_ID,
                        now,
                        demo::anchor_action(
                            demo::HOSPITAL.org_number,
                            &format!("load-{sequence}-{now}"),
                            demo::demo_subject(9),
                            "laboratory",
                            now,
                        ),
                    ),
                );
                let Ok(channel) = endpoint.connect().await else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let answer = v1::ledger_client::LedgerClient::new(channel)
                    .submit_and_wait(v1::SubmitAndWaitRequest {
                        transaction: Some(transaction),
                        timeout_ms: 15_000,
                    })
                    .await;
                if let Ok(response) = answer {
                    acknowledged.push(response.into_inner().transaction_id);
                }
            }
            acknowledged
        });
        Self { stop, task }
    }

    async fn finish(self) -> Vec<Vec<u8>> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

/// Waits until `check` holds, or fails the test after [`PATIENCE`] with the network's logs.
async fn eventually<F, Fut>(net: &Testnet, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        if Instant::now() > deadline {
            dump_logs(&net.root);
            panic!("timed out waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn assert_committed_everywhere(net: &Testnet, nodes: &[usize], acknowledged: &[Vec<u8>]) {
    assert!(!acknowledged.is_empty(), "the load committed nothing");
    for &node in nodes {
        for id in acknowledged {
            net.assert_committed(node, id).await;
        }
    }
}

/// The validator indexes that signed the commit certificate of `height` on `node`.
async fn signers(net: &Testnet, node: usize, height: u64) -> Vec<u32> {
    net.ledger(node)
        .await
        .get_block(net.signed(v1::GetBlockRequest { auth: None, height }))
        .await
        .unwrap()
        .into_inner()
        .certificate
        .expect("a committed block has its certificate")
        .signatures
        .iter()
        .map(|signature| signature.validator)
        .collect()
}

fn index_of(entry: &v1::ValidatorSetEntry, key: &[u8; 32]) -> u32 {
    keys_of(entry).iter().position(|held| held == key).unwrap() as u32
}

fn keys_of(entry: &v1::ValidatorSetEntry) -> Vec<[u8; 32]> {
    entry
        .validators
        .iter()
        .map(|key| <[u8; 32]>::try_from(key.as_slice()).unwrap())
        .collect()
}

// A fifth institution's validator joins under load: it syncs, then decides with the others; it
// leaves again, and the four go on. No fork, nothing acknowledged lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_set_grows_to_five_and_shrinks_to_four_under_load() {
    let _serial = serial().await;
    let net = Testnet::up(&["--no-demo-data"]);
    let load = Load::start(&net, &[0, 1, 2, 3]);
    let newcomer_key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let newcomer_public = newcomer_key.verifying_key().to_bytes();
    let extra = OutsideNode::start(&net, "node-extra", &newcomer_key, &[0, 1, 2, 3]);

    let joins = pass(
        &net,
        0,
        &[1, 2],
        Change::AddInstitution(v1::Member {
            org_number: NEWCOMER.to_owned(),
            name: "Helse Nord RHF".to_owned(),
            roles: vec![v1::InstitutionRole::Validator as i32],
            public_keys: Vec::new(),
            validator_key: newcomer_public.to_vec(),
        }),
    )
    .await;
    // The newcomer is refused until the set takes it in, then syncs and follows the head.
    eventually(&net, "the fifth validator is past the change", || async {
        extra.height().await >= joins + 4
    })
    .await;
    let sets = validator_sets(&net, 0).await;
    assert_eq!(sets.len(), 2, "{sets:?}");
    assert_eq!(sets[1].from_height, joins);
    assert_eq!(keys_of(&sets[1]).len(), 5);
    assert!(keys_of(&sets[1]).contains(&newcomer_public));
    let with_five = net.height(0).await;
    let ours = net.headers(0, with_five).await;
    let theirs = extra.headers(&net, with_five).await;
    assert_eq!(ours, theirs, "the fifth validator forked");
    assert!(
        ours[(joins - 1) as usize..]
            .iter()
            .all(|header| header.validator_set_hash == sets[1].set_hash)
    );

    // Four of five approve the newcomer's departure.
    let leaves = pass(
        &net,
        0,
        &[1, 2, 3],
        Change::RemoveInstitution(NEWCOMER.to_owned()),
    )
    .await;
    eventually(&net, "the four commit past the departure", || async {
        net.height(0).await >= leaves + 4
    })
    .await;
    let sets = validator_sets(&net, 0).await;
    assert_eq!(sets.len(), 3, "{sets:?}");
    assert_eq!(sets[2].from_height, leaves);
    assert_eq!(sets[2].validators, sets[0].validators);
    // Cut and refused, the departed validator falls behind while the four go on.
    let departed_at = extra.height().await;
    let four_at = net.height(0).await;
    eventually(&net, "the four commit five more blocks", || async {
        net.height(0).await >= four_at + 5
    })
    .await;
    assert!(
        extra.height().await <= departed_at.max(leaves),
        "the departed validator still gets blocks"
    );
    let acknowledged = load.finish().await;
    let head = net.height(0).await;
    net.wait_for_height(&[0, 1, 2, 3], head).await;
    net.assert_agreement(&[0, 1, 2, 3]).await;
    assert_committed_everywhere(&net, &[0, 1, 2, 3], &acknowledged).await;
    assert_verifies_offline_from_genesis(&net, acknowledged.last().unwrap(), 2, leaves);
}

/// `varde proof tx` of a transaction committed at `after_height` or later, after `changes` set
/// changes, then `varde verify` of the bundle against the original genesis file alone: verified,
/// the changes followed.
fn assert_verifies_offline_from_genesis(
    net: &Testnet,
    transaction_id: &[u8],
    changes: usize,
    after_height: u64,
) {
    let id = varde_ledger::hex::encode(transaction_id);
    let bundle = net.root.join("after-changes.bundle").display().to_string();
    let genesis = net.root.join("genesis.json").display().to_string();
    let key = net
        .root
        .join("keys")
        .join("auditor.pem")
        .display()
        .to_string();
    let fetched = common::testnet::varde(&[
        "--json",
        "proof",
        "tx",
        &id,
        "--endpoint",
        &net.grpc[0],
        "--ca-file",
        &net.ca_file,
        "--key",
        &key,
        "--out",
        &bundle,
    ]);
    assert!(
        fetched.status.success(),
        "{}",
        String::from_utf8_lossy(&fetched.stderr)
    );
    let bytes = std::fs::read(&bundle).unwrap();
    let decoded = <v1::ProofBundle as prost::Message>::decode(bytes.as_slice()).unwrap();
    assert_eq!(decoded.set_changes.len(), changes);
    let verified = common::testnet::varde(&[
        "--json",
        "verify",
        "--genesis",
        &genesis,
        "--bundle",
        &bundle,
    ]);
    let document: Value = serde_json::from_slice(&verified.stdout).unwrap_or_default();
    assert!(
        verified.status.success() && document["verified"] == true,
        "{document} {}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert_eq!(document["transaction_id"], id.as_str());
    let committed_at = document["receipt"]["height"].as_u64().unwrap();
    assert!(committed_at >= after_height, "{document}");
}

// Validator 1's consensus key rotates while validator 3 is down: 0, 1 (under its new key) and 2
// are a quorum of four and keep committing; the old key no longer counts. Validator 3 restarts,
// syncs across the rotation and agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotates_while_another_validator_is_down() {
    let _serial = serial().await;
    let net = Testnet::up(&["--no-demo-data"]);
    let old_key = consensus_key(&net, 1).verifying_key().to_bytes();
    let new_key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let node_dir = net.root.join("node-1");
    varde_ledger::keyfile::write_signing_key(&node_dir.join("next-validator.pem"), &new_key)
        .unwrap();
    let config_path = node_dir.join("node.toml");
    let mut config = varde_ledger::node_config::NodeConfig::from_toml_unvalidated(
        &std::fs::read_to_string(&config_path).unwrap(),
    )
    .unwrap();
    config.next_validator_key_path = Some(Path::new("next-validator.pem").to_path_buf());
    std::fs::write(&config_path, config.to_toml()).unwrap();
    net.run(&["restart", "1"]);
    let restarted_at = net.height(0).await;
    net.wait_for_height(&[1], restarted_at).await;

    net.run(&["kill", "3"]);
    let load = Load::start(&net, &[0, 1, 2]);
    let rotates = pass(
        &net,
        0,
        &[1, 2],
        Change::RotateValidatorKey(v1::InstitutionKey {
            org_number: operator(&net, 1),
            public_key: new_key.verifying_key().to_bytes().to_vec(),
        }),
    )
    .await;
    eventually(
        &net,
        "three validators commit past the rotation",
        || async { net.height(0).await >= rotates + 5 },
    )
    .await;
    let sets = validator_sets(&net, 0).await;
    assert_eq!(sets.len(), 2, "{sets:?}");
    assert_eq!(sets[1].from_height, rotates);
    let keys = keys_of(&sets[1]);
    assert!(keys.contains(&new_key.verifying_key().to_bytes()));
    assert!(!keys.contains(&old_key), "the old key still counts");
    assert_eq!(
        net.status(1).await.unwrap().node_public_key,
        new_key.verifying_key().to_bytes().to_vec(),
        "validator 1's status names the key it signs with"
    );
    // Three of four are up, so every certificate since the rotation holds the new key's vote.
    let rotated_index = index_of(&sets[1], &new_key.verifying_key().to_bytes());
    for height in rotates..=rotates + 4 {
        let signed_by = signers(&net, 0, height).await;
        assert!(
            signed_by.contains(&rotated_index),
            "height {height} is certified without the rotated key: {signed_by:?}"
        );
        assert_eq!(signed_by.len(), 3);
    }
    let acknowledged = load.finish().await;

    net.run(&["restart", "3"]);
    let head = net.height(0).await;
    net.wait_for_height(&[0, 1, 2, 3], head).await;
    net.assert_agreement(&[0, 1, 2, 3]).await;
    assert_committed_everywhere(&net, &[0, 1, 2, 3], &acknowledged).await;
}

// Validator 3 floods its peers with votes throughout; the others remove it from the set. From
// then on its connections are refused at the handshake, and the three commit on their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_validator_that_keeps_sending_is_refused() {
    let _serial = serial().await;
    let net = Testnet::up(&[
        "--no-demo-data",
        "--byzantine",
        "3",
        "--attack",
        "vote-flood",
    ]);
    let load = Load::start(&net, &[0, 1, 2]);
    let removed_key = consensus_key(&net, 3).verifying_key().to_bytes();
    let leaves = pass(
        &net,
        0,
        &[1, 2],
        Change::RemoveInstitution(operator(&net, 3)),
    )
    .await;
    eventually(&net, "the three commit past the removal", || async {
        net.height(0).await >= leaves + 3
    })
    .await;
    let sets = validator_sets(&net, 0).await;
    assert_eq!(sets.len(), 2, "{sets:?}");
    assert_eq!(keys_of(&sets[1]).len(), 3);
    assert!(!keys_of(&sets[1]).contains(&removed_key));
    // It keeps dialling and sending; the gate refuses it, and commits go on.
    let refused_before = net.status(0).await.unwrap().connections_refused;
    let height_before = net.height(0).await;
    eventually(&net, "the removed validator is refused again", || async {
        net.status(0)
            .await
            .is_some_and(|status| status.connections_refused > refused_before)
    })
    .await;
    eventually(&net, "the three commit five more blocks", || async {
        net.height(0).await >= height_before + 5
    })
    .await;
    for node in 0..3 {
        assert_eq!(
            net.status(node).await.unwrap().peers,
            2,
            "validator {node} is connected to the removed validator"
        );
    }
    let acknowledged = load.finish().await;
    let head = net.height(0).await;
    net.wait_for_height(&[0, 1, 2], head).await;
    net.assert_agreement(&[0, 1, 2]).await;
    assert_committed_everywhere(&net, &[0, 1, 2], &acknowledged).await;
}
