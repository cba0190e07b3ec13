//! A client in another language: clients/python/varde_client.py, written from the proto files and
//! proto/testdata alone, recomputes the signing vectors and submits a signed anchor over TLS
//! (trusting the dev CA) to a real `varde dev` process; the CLI then finds the transaction
//! committed.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{DevNode, HOSPITAL, expect_code, python_venv, repository_root, varde};
use serde_json::Value;

fn python_environment() -> PathBuf {
    python_venv(
        "varde-python-client-venv",
        "clients/python/requirements.txt",
    )
}

// The Python client passes every transaction and query signing vector; its anchor, signed with the
// demo hospital's PEM key and sent with SubmitAndWait, is applied and read back with a signed
// query, while unsigned and replayed reads are refused; its inclusion and consistency proofs verify
// under the client's own RFC 9162 code against the block headers; `query records` then lists the
// record with the client's transaction id.
#[test]
fn python_client_signs_and_submits_an_anchor() {
    let python = python_environment();
    let directory = tempfile::tempdir().unwrap();
    let dir = directory.path();
    let (node, _) = DevNode::start(dir, &dir.join("dev"));
    let hospital_key = node.key("hospital.pem");

    let script = repository_root().join("clients/python/varde_client.py");
    let output = Command::new(&python)
        .arg(&script)
        .args([&node.endpoint, &hospital_key, "--ca-file", &node.ca_file])
        .current_dir(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    for step in [
        "signing vectors recomputed",
        "3 query signing vectors recomputed",
        "signed GetTransaction returns the committed anchor",
        "an unsigned read is refused: UNAUTHENTICATED",
        "a replayed read is refused: UNAUTHENTICATED",
        "verified (RFC 9162)",
        "consistency proof",
    ] {
        assert!(stdout.contains(step), "{step}: {stdout}");
    }
    let submitted: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let transaction_id = submitted["transaction_id"].as_str().unwrap();
    let record_id = submitted["record_id"].as_str().unwrap();

    let listed = expect_code(
        &varde(
            dir,
            &[
                "--json",
                "query",
                "records",
                "--endpoint",
                &node.endpoint,
                "--ca-file",
                &node.ca_file,
                "--key",
                &hospital_key,
                "--custodian",
                HOSPITAL,
                "--all",
            ],
        ),
        0,
    );
    let record = listed["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|record| record["record_id"] == record_id)
        .unwrap_or_else(|| panic!("record {record_id} is committed: {listed}"));
    assert_eq!(record["last_transaction_id"], transaction_id);
    assert_eq!(record["anchored_at_height"], submitted["height"]);
}
