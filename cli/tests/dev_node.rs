//! End to end over real processes: `varde dev` as a child on a free loopback port in a temporary
//! data directory, serving TLS with its own CA, driven by the `varde` binary (status, tx anchor
//! --wait, query records, query check, TLS mistakes), then stopped with SIGINT as Ctrl-C would.

mod common;

use common::{DevNode, HOSPITAL, MUNICIPALITY, json, varde, varde_with_env};

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
    let ca_file = node.ca_file.clone();
    assert_eq!(status["chain_id"], "varde-dev");
    assert!(endpoint.starts_with("https://"));

    let hospital_key = data_dir.join("keys").join("hospital.pem");
    let hospital_key = hospital_key.to_str().unwrap();
    let subject = "5a".repeat(32);
    let anchor = [
        "--json",
        "tx",
        "anchor",
        "--endpoint",
        &endpoint,
        "--ca-file",
        &ca_file,
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

    // The CA file from the environment instead of --ca-file.
    let listed = varde_with_env(
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
        &[("VARDE_CA_FILE", &ca_file)],
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
            "--ca-file",
            &ca_file,
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

    tls_mistakes_say_what_to_do(dir, &endpoint);

    // Ctrl-C: the node stops cleanly and exits 0.
    let exit = node.signal_and_wait("-INT");
    assert!(
        exit.success(),
        "varde dev exited with {exit}: {}",
        node.log_text()
    );
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Against the running TLS dev node: https without a CA file is a usage error naming
/// --ca-file; plaintext gets a hint to use https; a CA that did not sign the node's certificate
/// and a CA file that holds no certificate are refused with what is wrong.
fn tls_mistakes_say_what_to_do(dir: &std::path::Path, endpoint: &str) {
    let no_ca = varde(dir, &["status", "--endpoint", endpoint]);
    assert_eq!(no_ca.status.code(), Some(2), "{}", stderr(&no_ca));
    assert!(stderr(&no_ca).contains("--ca-file"), "{}", stderr(&no_ca));
    assert!(
        stderr(&no_ca).contains("VARDE_CA_FILE"),
        "{}",
        stderr(&no_ca)
    );

    let plaintext_endpoint = endpoint.replace("https://", "http://");
    let plaintext = varde(dir, &["status", "--endpoint", &plaintext_endpoint]);
    assert_eq!(plaintext.status.code(), Some(1), "{}", stderr(&plaintext));
    assert!(
        stderr(&plaintext).contains("use https:// and --ca-file"),
        "{}",
        stderr(&plaintext)
    );

    let other = varde_node::tls::ensure_single_node_pki(&dir.join("other-ca"), "other").unwrap();
    let other_ca = other.ca_certificate.display().to_string();
    let untrusted = varde(
        dir,
        &["status", "--endpoint", endpoint, "--ca-file", &other_ca],
    );
    assert_eq!(untrusted.status.code(), Some(1), "{}", stderr(&untrusted));
    assert!(
        stderr(&untrusted).contains("not signed by the CA in --ca-file"),
        "{}",
        stderr(&untrusted)
    );

    let garbage = dir.join("garbage-ca.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let garbage = garbage.display().to_string();
    let bad_file = varde(
        dir,
        &["status", "--endpoint", endpoint, "--ca-file", &garbage],
    );
    assert_eq!(bad_file.status.code(), Some(1), "{}", stderr(&bad_file));
    assert!(
        stderr(&bad_file).contains("holds no certificate"),
        "{}",
        stderr(&bad_file)
    );
}
