//! `varde proof` and `varde verify` against a real `varde dev` process: bundles fetched from the
//! node verify offline from the genesis file alone, and fail with a reason when any bit of them
//! changes or the genesis is another chain's; `verify --node` follows the node from genesis.

mod common;

use common::{DevNode, HOSPITAL, MUNICIPALITY, expect_code, json, varde};
use serde_json::Value;

/// Runs `varde --json ARGS` with the node's endpoint, CA file and the hospital's key appended
/// after the command words.
fn with_node(node: &DevNode, command: &[&str], arguments: &[&str]) -> std::process::Output {
    let key = node.key("hospital.pem");
    let mut all = vec!["--json"];
    all.extend_from_slice(command);
    all.extend_from_slice(&[
        "--endpoint",
        &node.endpoint,
        "--ca-file",
        &node.ca_file,
        "--key",
        &key,
    ]);
    all.extend_from_slice(arguments);
    varde(&node.work_dir, &all)
}

fn anchor(node: &DevNode, record_id: &str) -> Value {
    let subject = "5b".repeat(32);
    expect_code(
        &with_node(
            node,
            &["tx", "anchor"],
            &[
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
                "https://ehr.example.invalid/proof",
                "--content-sha256",
                &subject,
            ],
        ),
        0,
    )
}

fn verify_bundle(node: &DevNode, genesis: &str, bundle: &str) -> std::process::Output {
    varde(
        &node.work_dir,
        &["--json", "verify", "--genesis", genesis, "--bundle", bundle],
    )
}

#[test]
fn bundles_from_a_node_verify_offline_and_fail_when_changed() {
    let directory = tempfile::tempdir().unwrap();
    let dir = directory.path();
    let data_dir = dir.join("dev");
    let (node, _) = DevNode::start(dir, &data_dir);
    let genesis = data_dir.join("genesis.json").display().to_string();

    let anchored = anchor(&node, "proof-record-1");
    let transaction_id = anchored["transaction_id"].as_str().unwrap().to_owned();
    let bundle = dir.join("tx.bundle").display().to_string();
    let fetched = expect_code(
        &with_node(
            &node,
            &["proof", "tx", &transaction_id],
            &["--out", &bundle],
        ),
        0,
    );
    assert!(fetched["bytes"].as_u64().unwrap() > 0, "{fetched}");
    let verified = expect_code(&verify_bundle(&node, &genesis, &bundle), 0);
    assert_eq!(verified["verified"], true, "{verified}");
    assert_eq!(verified["claim"], "transaction");
    assert_eq!(verified["transaction_id"], transaction_id.as_str());
    assert_eq!(verified["receipt"]["outcome"], "applied", "{verified}");
    assert_eq!(verified["body_included"], true);
    let first_size = verified["header"]["ledger_size"].as_u64().unwrap();

    // Any one bit changed anywhere: refused with a reason, exit 1.
    let original = std::fs::read(&bundle).unwrap();
    let changed_path = dir.join("changed.bundle").display().to_string();
    let mut position: u64 = 0x9E37_79B9;
    for _ in 0..40 {
        position = position
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let bit = (position >> 33) % (original.len() as u64 * 8);
        let mut changed = original.clone();
        changed[(bit / 8) as usize] ^= 1 << (bit % 8);
        std::fs::write(&changed_path, &changed).unwrap();
        let refused = verify_bundle(&node, &genesis, &changed_path);
        assert_eq!(
            refused.status.code(),
            Some(1),
            "bit {bit} flipped still verifies"
        );
        let document = json(&refused);
        assert_eq!(document["verified"], false);
        assert!(!document["reason"].as_str().unwrap().is_empty());
    }

    // Another chain's genesis refuses the bundle by name.
    let mut other: Value = serde_json::from_slice(&std::fs::read(&genesis).unwrap()).unwrap();
    other["chain_id"] = Value::String("varde-other".to_owned());
    let other_genesis = dir.join("other-genesis.json").display().to_string();
    std::fs::write(&other_genesis, other.to_string()).unwrap();
    let foreign = verify_bundle(&node, &other_genesis, &bundle);
    assert_eq!(foreign.status.code(), Some(1));
    assert!(
        json(&foreign)["reason"]
            .as_str()
            .unwrap()
            .contains("varde-other"),
        "{}",
        String::from_utf8_lossy(&foreign.stdout)
    );

    // The ledger at the transaction's header is a prefix of the ledger after one more anchor.
    anchor(&node, "proof-record-2");
    let consistency = dir.join("consistency.bundle").display().to_string();
    let from = first_size.to_string();
    expect_code(
        &with_node(
            &node,
            &["proof", "consistency"],
            &["--from", &from, "--out", &consistency],
        ),
        0,
    );
    let verified = expect_code(&verify_bundle(&node, &genesis, &consistency), 0);
    assert_eq!(verified["claim"], "consistency");
    assert_eq!(verified["first"]["ledger_size"], first_size);
    assert!(verified["second"]["ledger_size"].as_u64().unwrap() > first_size);

    // A CheckAccess answer with its proof: the custodian's own record, allowed.
    let check = dir.join("check.bundle").display().to_string();
    let check_arguments = |accessor: &str, out: &str| {
        vec![
            "--accessor".to_owned(),
            accessor.to_owned(),
            "--record-custodian".to_owned(),
            HOSPITAL.to_owned(),
            "--record-id".to_owned(),
            "proof-record-1".to_owned(),
            "--purpose".to_owned(),
            "TREAT".to_owned(),
            "--out".to_owned(),
            out.to_owned(),
        ]
    };
    let arguments = check_arguments(HOSPITAL, &check);
    let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
    expect_code(&with_node(&node, &["proof", "check"], &arguments), 0);
    let verified = expect_code(&verify_bundle(&node, &genesis, &check), 0);
    assert_eq!(verified["claim"], "access_check", "{verified}");
    assert_eq!(verified["allowed"], true);
    assert_eq!(verified["asked_by"], HOSPITAL);
    // A denial for want of a grant has no proof, and says so.
    let arguments = check_arguments(MUNICIPALITY, &check);
    let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
    let refused = with_node(&node, &["proof", "check"], &arguments);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("without a proof"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // A state proof of the record, and of an unknown record's absence, for its custodian; a
    // flipped byte is refused.
    let state = dir.join("state.bundle").display().to_string();
    let state_arguments = |record_id: &str| {
        vec![
            "--record-custodian".to_owned(),
            HOSPITAL.to_owned(),
            "--record-id".to_owned(),
            record_id.to_owned(),
            "--out".to_owned(),
            state.clone(),
        ]
    };
    let arguments = state_arguments("proof-record-1");
    let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
    expect_code(&with_node(&node, &["proof", "state"], &arguments), 0);
    let verified = expect_code(&verify_bundle(&node, &genesis, &state), 0);
    assert_eq!(verified["claim"], "state_entry", "{verified}");
    assert_eq!(verified["present"], true);
    assert_eq!(verified["record"]["record_id"], "proof-record-1");
    let mut bent = std::fs::read(&state).unwrap();
    let last = bent.len() - 1;
    bent[last] ^= 0x01;
    let bent_path = dir.join("state-bent.bundle");
    std::fs::write(&bent_path, &bent).unwrap();
    let refused = verify_bundle(&node, &genesis, &bent_path.display().to_string());
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(json(&refused)["verified"], false);
    let arguments = state_arguments("never-anchored");
    let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
    expect_code(&with_node(&node, &["proof", "state"], &arguments), 0);
    let verified = expect_code(&verify_bundle(&node, &genesis, &state), 0);
    assert_eq!(verified["present"], false, "{verified}");
    // A member, proven from the state the genesis wrote.
    let member = ["--member", MUNICIPALITY, "--out", &state];
    expect_code(&with_node(&node, &["proof", "state"], &member), 0);
    let verified = expect_code(&verify_bundle(&node, &genesis, &state), 0);
    assert_eq!(verified["member"]["org_number"], MUNICIPALITY, "{verified}");
    // Naming no entry, or two, is a usage error (exit 2).
    let none = with_node(&node, &["proof", "state"], &["--out", &state]);
    assert_eq!(none.status.code(), Some(2));

    // Following the node from genesis checks every header up to its head.
    let key = node.key("hospital.pem");
    let followed = expect_code(
        &varde(
            dir,
            &[
                "--json",
                "--ca-file",
                &node.ca_file,
                "verify",
                "--genesis",
                &genesis,
                "--node",
                &node.endpoint,
                "--key",
                &key,
            ],
        ),
        0,
    );
    assert_eq!(followed["claim"], "followed", "{followed}");
    assert_eq!(followed["from_height"], 1);
    // The dev network's one validator decides every height: no set change to follow.
    assert_eq!(followed["set_changes_followed"], 0, "{followed}");
    assert!(followed["headers"].as_u64().unwrap() >= 2);
}
