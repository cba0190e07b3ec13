//! End to end over real processes: `varde dev` as a child on a free loopback port in a temporary
//! data directory, driven by the `varde` binary (status, tx anchor --wait, query records, query
//! check), then stopped with SIGINT as Ctrl-C would.

mod common;

use common::{DevNode, HOSPITAL, MUNICIPALITY, json, varde};

// A record anchored with `tx anchor --wait` is applied and listed by `query records`; a second
// anchor of the same id is rejected (exit 3); the municipality's check is denied (exit 4); and
// SIGINT stops the dev node cleanly (exit 0).
#[test]
fn dev_node_anchor_and_query_through_the_cli() {
    let directory = tempfile::tempdir().unwrap();
    let dir = directory.path();
    let data_dir = dir.join("dev");
    let (mut node, status) = DevNode::start(dir, &data_dir);
    let endpoint = node.endpoint.clone();
    assert_eq!(status["chain_id"], "varde-dev");

    let hospital_key = data_dir.join("keys").join("hospital.pem");
    let hospital_key = hospital_key.to_str().unwrap();
    let subject = "5a".repeat(32);
    let anchor = [
        "--json",
        "tx",
        "anchor",
        "--endpoint",
        &endpoint,
        "--key",
        hospital_key,
        "--wait",
        "--custodian",
        HOSPITAL,
        "--record-id",
        "e2e-record-1",
        "--subject",
        &subject,
        "--category",
        "discharge-summary",
        "--location",
        "https://ehr.example.invalid/e2e-1",
        "--content-sha256",
        &subject,
    ];
    let applied = varde(dir, &anchor);
    assert_eq!(
        applied.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    assert_eq!(json(&applied)["receipt"]["outcome"], "applied");

    // The same anchor again, as a distinct transaction (another expiry): rejected, exit 3.
    let mut again = anchor.to_vec();
    again.extend(["--expires-in", "900"]);
    let rejected = varde(dir, &again);
    assert_eq!(rejected.status.code(), Some(3));
    assert_eq!(json(&rejected)["receipt"]["reason"], "record_exists");

    let listed = varde(
        dir,
        &[
            "--json",
            "query",
            "records",
            "--endpoint",
            &endpoint,
            "--key",
            hospital_key,
            "--subject",
            &subject,
            "--all",
        ],
    );
    assert_eq!(
        listed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let records = json(&listed)["records"].as_array().unwrap().clone();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["record_id"], "e2e-record-1");
    assert_eq!(records[0]["custodian"], HOSPITAL);

    let municipality_key = data_dir.join("keys").join("municipality.pem");
    let check = varde(
        dir,
        &[
            "--json",
            "query",
            "check",
            "--endpoint",
            &endpoint,
            "--key",
            municipality_key.to_str().unwrap(),
            "--accessor",
            MUNICIPALITY,
            "--record-custodian",
            HOSPITAL,
            "--record-id",
            "e2e-record-1",
            "--purpose",
            "TREAT",
        ],
    );
    assert_eq!(check.status.code(), Some(4));
    assert_eq!(json(&check)["allowed"], false);

    // Ctrl-C: the node stops cleanly and exits 0.
    let exit = node.signal_and_wait("-INT");
    assert!(
        exit.success(),
        "varde dev exited with {exit}: {}",
        node.log_text()
    );
}
