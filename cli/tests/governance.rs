//! Governance over the `varde` binary against a real one-validator `varde dev` process: the
//! validator operator proposes (with its consensus key) a new submitting key for the hospital,
//! `gov list` and `gov show` report it with its approvals and status, a transaction signed by the
//! key is refused before the effective height and applied after it; then the key is revoked the
//! same way and refused again. `verify --node` still follows the chain.

mod common;

use std::time::{Duration, Instant};

use common::{DevNode, HOSPITAL, expect_code, varde};
use serde_json::Value;

/// The demo validator operator (keys/validator.pem: its node's consensus key, its only key).
const VALIDATOR: &str = "994598759";
/// How long the chain may take to reach an effective height (a block a second or so).
const HEIGHT_DEADLINE: Duration = Duration::from_secs(120);

struct Network {
    node: DevNode,
}

impl Network {
    /// `varde ARGUMENTS... --endpoint E --ca-file CA` (the global `--json` goes first when given).
    fn run(&self, arguments: &[&str]) -> std::process::Output {
        let mut all = arguments.to_vec();
        all.extend([
            "--endpoint",
            &self.node.endpoint,
            "--ca-file",
            &self.node.ca_file,
        ]);
        varde(&self.node.work_dir, &all)
    }

    /// The node's height.
    fn height(&self) -> u64 {
        let status = expect_code(&self.run(&["--json", "status"]), 0);
        status["height"].as_u64().unwrap()
    }

    /// Waits until the chain has committed `height` (the condition, polled).
    fn wait_for_height(&self, height: u64) {
        let started = Instant::now();
        while self.height() < height {
            assert!(
                started.elapsed() < HEIGHT_DEADLINE,
                "the chain did not reach height {height}: {}",
                self.node.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `gov propose KIND ... --proposer VALIDATOR --key validator.pem --wait`, which must apply;
    /// returns its JSON.
    fn propose(&self, kind_and_fields: &[&str], effective_in: &str) -> Value {
        let key = self.node.key("validator.pem");
        let mut arguments = vec!["--json", "gov", "propose"];
        arguments.extend_from_slice(kind_and_fields);
        arguments.extend([
            "--proposer",
            VALIDATOR,
            "--effective-in",
            effective_in,
            "--key",
            &key,
            "--wait",
        ]);
        let proposed = expect_code(&self.run(&arguments), 0);
        assert_eq!(proposed["receipt"]["outcome"], "applied", "{proposed}");
        assert_eq!(proposed["proposal_id"], proposed["transaction_id"]);
        proposed
    }

    /// `gov show ID --json` read with the hospital's key.
    fn show(&self, proposal_id: &str) -> Value {
        let key = self.node.key("hospital.pem");
        expect_code(
            &self.run(&["--json", "gov", "show", proposal_id, "--key", &key]),
            0,
        )
    }

    /// `tx anchor --wait` of a new record of the hospital's, signed with `key_file`.
    fn anchor(&self, key_file: &str, record_id: &str) -> std::process::Output {
        let subject = "6c".repeat(32);
        self.run(&[
            "--json",
            "tx",
            "anchor",
            "--key",
            key_file,
            "--wait",
            "--custodian",
            HOSPITAL,
            "--record-id",
            record_id,
            "--subject",
            &subject,
            "--category",
            "discharge-summary",
            "--location",
            "https://ehr.example.invalid/governance",
            "--content-sha256",
            &subject,
        ])
    }
}

/// The status a proposal approved at once must have when read at `height`.
fn expected_status(height: u64, effective_height: u64) -> &'static str {
    if height >= effective_height {
        "ENACTED"
    } else {
        "APPROVED"
    }
}

// A submitting key added by governance signs from its effective height on, and stops at the
// effective height of its revocation; list and show report each proposal, its single approval
// (the proposer's, enough among one validator) and its status.
#[test]
fn a_submitting_key_is_added_and_revoked_by_governance() {
    let directory = tempfile::tempdir().unwrap();
    let dir = directory.path();
    let (node, _) = DevNode::start(dir, &dir.join("dev"));
    let network = Network { node };

    // A new key for the hospital; not registered yet, so the node refuses what it signs.
    let new_key = dir.join("hospital-2.pem");
    let new_key = new_key.to_str().unwrap();
    let made = expect_code(&varde(dir, &["--json", "keys", "new", "--out", new_key]), 0);
    let public_key = made["public_key"].as_str().unwrap().to_owned();
    let refused = network.anchor(new_key, "gov-before");
    expect_code(&refused, 3);

    // The validator operator proposes it, signing with its consensus key.
    let proposed = network.propose(
        &[
            "add-key",
            "--org-number",
            HOSPITAL,
            "--public-key-file",
            new_key,
        ],
        "4",
    );
    let proposal_id = proposed["proposal_id"].as_str().unwrap().to_owned();
    let proposed_at = proposed["receipt"]["height"].as_u64().unwrap();

    // Listed with its change, heights, approval and status.
    let hospital_key = network.node.key("hospital.pem");
    let listed = expect_code(
        &network.run(&["--json", "gov", "list", "--all", "--key", &hospital_key]),
        0,
    );
    let proposals = listed["proposals"].as_array().unwrap();
    assert_eq!(proposals.len(), 1, "{listed}");
    let proposal = &proposals[0];
    assert_eq!(proposal["id"], proposal_id.as_str());
    assert_eq!(proposal["proposer"], VALIDATOR);
    assert_eq!(proposal["change"]["kind"], "add-submitting-key");
    assert_eq!(proposal["change"]["org_number"], HOSPITAL);
    assert_eq!(proposal["change"]["public_key"], public_key.as_str());
    assert_eq!(proposal["proposed_at_height"], proposed_at);
    let effective_height = proposal["effective_height"].as_u64().unwrap();
    assert!(effective_height > proposed_at, "{proposal}");
    assert_eq!(proposal["approve_by_height"], effective_height - 1);
    assert_eq!(proposal["approvals"].as_array().unwrap().len(), 1);
    assert_eq!(proposal["approvals"][0]["org_number"], VALIDATOR);
    assert_eq!(proposal["approvals"][0]["height"], proposed_at);
    assert_eq!(proposal["validators"], 1);
    assert_eq!(proposal["approvals_needed"], 1);
    assert_eq!(proposal["approved_at_height"], proposed_at);
    let read_at = listed["height"].as_u64().unwrap();
    assert_eq!(
        proposal["status"],
        expected_status(read_at, effective_height),
        "{listed}"
    );

    // Shown in words.
    let shown = network.run(&["gov", "show", &proposal_id, "--key", &hospital_key]);
    let text = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert_eq!(shown.status.code(), Some(0), "{text}");
    for expected in [
        format!("proposal {proposal_id}"),
        format!("add submitting key {public_key} to {HOSPITAL}"),
        format!("proposed by  {VALIDATOR} at height {proposed_at}"),
        format!("effective at height {effective_height}"),
        format!("{VALIDATOR} at height {proposed_at}"),
        "1 needed (more than 2/3 of the 1 validator in force".to_owned(),
    ] {
        assert!(text.contains(&expected), "{expected:?} not in:\n{text}");
    }

    // From the effective height on, the key signs for the hospital.
    network.wait_for_height(effective_height);
    assert_eq!(network.show(&proposal_id)["proposal"]["status"], "ENACTED");
    let applied = expect_code(&network.anchor(new_key, "gov-after-add"), 0);
    assert_eq!(applied["receipt"]["outcome"], "applied", "{applied}");

    // An approval of a proposal that passed already is rejected on the ledger (exit 3).
    let validator_key = network.node.key("validator.pem");
    let late = expect_code(
        &network.run(&[
            "--json",
            "gov",
            "approve",
            &proposal_id,
            "--approver",
            VALIDATOR,
            "--key",
            &validator_key,
            "--wait",
        ]),
        3,
    );
    assert_eq!(late["receipt"]["reason"], "proposal_closed", "{late}");

    // The key is revoked the same way; from the revocation's effective height it is refused,
    // while the hospital's first key still signs.
    let revoked = network.propose(
        &[
            "revoke-key",
            "--org-number",
            HOSPITAL,
            "--public-key",
            &public_key,
        ],
        "4",
    );
    let revocation_id = revoked["proposal_id"].as_str().unwrap().to_owned();
    let revocation = network.show(&revocation_id);
    assert_eq!(
        revocation["proposal"]["change"]["kind"],
        "revoke-submitting-key"
    );
    let revoked_from = revocation["proposal"]["effective_height"].as_u64().unwrap();
    network.wait_for_height(revoked_from);
    assert_eq!(
        network.show(&revocation_id)["proposal"]["status"],
        "ENACTED"
    );
    expect_code(&network.anchor(new_key, "gov-after-revoke"), 3);
    let still = expect_code(&network.anchor(&hospital_key, "gov-first-key"), 0);
    assert_eq!(still["receipt"]["outcome"], "applied", "{still}");

    // Both proposals are listed, in the order proposed.
    let listed = expect_code(
        &network.run(&["--json", "gov", "list", "--key", &hospital_key]),
        0,
    );
    let ids: Vec<&str> = listed["proposals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|proposal| proposal["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [proposal_id.as_str(), revocation_id.as_str()]);

    // The light client follows the chain across both changes (the validator set stayed).
    let genesis = dir.join("dev").join("genesis.json");
    let followed = expect_code(
        &varde(
            dir,
            &[
                "--json",
                "--ca-file",
                &network.node.ca_file,
                "verify",
                "--genesis",
                genesis.to_str().unwrap(),
                "--node",
                &network.node.endpoint,
                "--key",
                &hospital_key,
            ],
        ),
        0,
    );
    assert_eq!(followed["verified"], true, "{followed}");
    assert_eq!(followed["set_changes_followed"], 0, "{followed}");
}
