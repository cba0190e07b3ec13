//! A client in another language: clients/python/varde_client.py, written from the proto files and
//! proto/testdata alone, recomputes the signing vectors and submits a signed anchor over TLS
//! (trusting the dev CA) to a real `varde dev` process; the CLI then finds the transaction
//! committed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{DevNode, HOSPITAL, expect_code, varde};
use serde_json::Value;

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// A venv under the cargo target's temp dir with clients/python/requirements.txt installed;
/// reused while its recorded requirements equal the current file.
fn python_environment() -> PathBuf {
    let requirements = repository_root().join("clients/python/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).unwrap();
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("varde-python-client-venv");
    let python = venv.join("bin/python");
    let installed_marker = venv.join("varde-requirements.txt");
    if python.exists() && std::fs::read_to_string(&installed_marker).ok() == Some(wanted.clone()) {
        return python;
    }
    let created = Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(&venv)
        .output();
    match created {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!(
            "`python3 -m venv` failed; install python3-venv (e.g. apt-get install python3-venv): {}",
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(error) => panic!(
            "cannot run python3 ({error}); install python3 and python3-venv (e.g. apt-get install python3-venv)"
        ),
    }
    let installed = Command::new(venv.join("bin/pip"))
        .args(["install", "-q", "-r"])
        .arg(&requirements)
        .output()
        .unwrap();
    assert!(
        installed.status.success(),
        "pip install -r {} failed: {}",
        requirements.display(),
        String::from_utf8_lossy(&installed.stderr)
    );
    std::fs::write(&installed_marker, wanted).unwrap();
    python
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
