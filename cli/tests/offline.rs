//! Runs the built `varde` binary for the flows that need no node: keys, genesis, pseudonym, and
//! transactions in dry-run mode. Each test works in its own temporary directory.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const HOSPITAL: &str = "974760673";
const MUNICIPALITY: &str = "983974899";
/// A synthetic fødselsnummer with valid check digits.
const SYNTHETIC_ID: &str = "31129956715";

fn varde(directory: &Path, arguments: &[&str]) -> Output {
    varde_with_stdin(directory, arguments, "")
}

fn varde_with_stdin(directory: &Path, arguments: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_varde"))
        .args(arguments)
        .current_dir(directory)
        .env_remove("VARDE_CA_FILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the varde binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited, not killed")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "stdout is not one JSON document ({error}): {}",
            stdout(output)
        )
    })
}

// keys new writes a PEM file whose public key keys show prints; a second new refuses to overwrite.
#[test]
fn keys_new_show_and_no_overwrite() {
    let directory = tempfile::tempdir().unwrap();
    let created = varde(
        directory.path(),
        &["--json", "keys", "new", "--out", "a.pem"],
    );
    assert_eq!(code(&created), 0, "{}", stderr(&created));
    let public_key = json(&created)["public_key"].as_str().unwrap().to_owned();
    assert_eq!(public_key.len(), 64);
    let pem = std::fs::read_to_string(directory.path().join("a.pem")).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));

    let shown = varde(directory.path(), &["keys", "show", "a.pem"]);
    assert_eq!(code(&shown), 0);
    assert!(stdout(&shown).contains(&public_key));
    assert!(!stdout(&shown).contains("PRIVATE"));

    let again = varde(directory.path(), &["keys", "new", "--out", "a.pem"]);
    assert_eq!(code(&again), 1);
    assert!(stderr(&again).contains("refusing to overwrite"));
    assert_eq!(
        std::fs::read_to_string(directory.path().join("a.pem")).unwrap(),
        pem
    );
}

// keys show of a file that is not a key fails with exit 1 and says how to make one.
#[test]
fn keys_show_refuses_garbage() {
    let directory = tempfile::tempdir().unwrap();
    std::fs::write(directory.path().join("bad.pem"), "hello").unwrap();
    let shown = varde(directory.path(), &["keys", "show", "bad.pem"]);
    assert_eq!(code(&shown), 1);
    assert!(stderr(&shown).contains("varde keys new"));
}

// A genesis built with new, add-institution and add-validator holds the institutions, roles and
// keys, reads back as varde_ledger's Genesis with a valid membership, and refuses bad input.
#[test]
fn genesis_flow() {
    let directory = tempfile::tempdir().unwrap();
    let dir = directory.path();
    for name in ["hospital.pem", "municipality.pem", "validator.pem"] {
        assert_eq!(code(&varde(dir, &["keys", "new", "--out", name])), 0);
    }
    let new = varde(
        dir,
        &[
            "genesis",
            "new",
            "--chain-id",
            "varde-test",
            "--out",
            "genesis.json",
        ],
    );
    assert_eq!(code(&new), 0, "{}", stderr(&new));
    let overwrite = varde(
        dir,
        &["genesis", "new", "--chain-id", "x", "--out", "genesis.json"],
    );
    assert_eq!(code(&overwrite), 1);

    let hospital = varde(
        dir,
        &[
            "genesis",
            "add-institution",
            "--genesis",
            "genesis.json",
            "--org-number",
            HOSPITAL,
            "--name",
            "Oslo universitetssykehus",
            "--role",
            "submitter",
            "--key",
            "hospital.pem",
        ],
    );
    assert_eq!(code(&hospital), 0, "{}", stderr(&hospital));

    let bad_check_digit = varde(
        dir,
        &[
            "genesis",
            "add-institution",
            "--genesis",
            "genesis.json",
            "--org-number",
            "983974898",
            "--name",
            "Kommune",
            "--role",
            "submitter",
            "--key",
            "municipality.pem",
        ],
    );
    assert_eq!(code(&bad_check_digit), 2);
    assert!(stderr(&bad_check_digit).contains("check digit"));

    let duplicate_key = varde(
        dir,
        &[
            "genesis",
            "add-institution",
            "--genesis",
            "genesis.json",
            "--org-number",
            MUNICIPALITY,
            "--name",
            "Kommune",
            "--role",
            "submitter",
            "--key",
            "hospital.pem",
        ],
    );
    assert_eq!(code(&duplicate_key), 2);
    assert!(stderr(&duplicate_key).contains("registered already"));

    let show = varde(dir, &["--json", "keys", "show", "municipality.pem"]);
    let municipality_key = json(&show)["public_key"].as_str().unwrap().to_owned();
    let municipality = varde(
        dir,
        &[
            "genesis",
            "add-institution",
            "--genesis",
            "genesis.json",
            "--org-number",
            MUNICIPALITY,
            "--name",
            "Kommune",
            "--role",
            "submitter",
            "--role",
            "consent-authority",
            "--public-key",
            &municipality_key,
        ],
    );
    assert_eq!(code(&municipality), 0, "{}", stderr(&municipality));

    let validator = varde(
        dir,
        &[
            "--json",
            "genesis",
            "add-validator",
            "--genesis",
            "genesis.json",
            "--org-number",
            HOSPITAL,
            "--key",
            "validator.pem",
        ],
    );
    assert_eq!(code(&validator), 0, "{}", stderr(&validator));
    let document = json(&validator);
    // The node's key is the hospital's consensus key, not a second submitting key.
    assert_eq!(
        document["institutions"][0]["public_keys"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let show = varde(dir, &["--json", "keys", "show", "validator.pem"]);
    let validator_key = json(&show)["public_key"].as_str().unwrap().to_owned();
    assert_eq!(document["institutions"][0]["validator_key"], validator_key);
    assert_eq!(
        document["institutions"][1]["validator_key"],
        serde_json::Value::Null
    );

    // A submitting key is refused as a consensus key, and the validator role needs add-validator.
    let submitting_as_validator = varde(
        dir,
        &[
            "genesis",
            "add-validator",
            "--genesis",
            "genesis.json",
            "--org-number",
            MUNICIPALITY,
            "--key",
            "hospital.pem",
        ],
    );
    assert_eq!(code(&submitting_as_validator), 2);
    assert!(stderr(&submitting_as_validator).contains("registered already"));
    let validator_role = varde(
        dir,
        &[
            "genesis",
            "add-institution",
            "--genesis",
            "genesis.json",
            "--org-number",
            "993467049",
            "--name",
            "Sykehus",
            "--role",
            "validator",
            "--key",
            "municipality.pem",
        ],
    );
    assert_eq!(code(&validator_role), 2);
    assert!(stderr(&validator_role).contains("add-validator"));

    let text = std::fs::read_to_string(dir.join("genesis.json")).unwrap();
    let genesis: varde_ledger::membership::Genesis = serde_json::from_str(&text).unwrap();
    assert_eq!(genesis.chain_id, "varde-test");
    assert_eq!(genesis.institutions.len(), 2);
    let membership = varde_ledger::membership::Membership::from_genesis(&genesis).unwrap();
    // One validator: the hospital's submitting key is no validator.
    assert_eq!(membership.validator_keys().len(), 1);
    assert_eq!(
        varde_ledger::hex::encode(&membership.validator_keys()[0]),
        validator_key
    );
}

// pseudonym reads the id from piped stdin, prints only the 64-hex pseudonym, and never echoes
// the id, neither on success nor in the error for a mistyped one.
#[test]
fn pseudonym_from_stdin_is_never_echoed() {
    let directory = tempfile::tempdir().unwrap();
    let dir = directory.path();
    std::fs::write(dir.join("network.key"), "42".repeat(32)).unwrap();
    let output = varde_with_stdin(
        dir,
        &["pseudonym", "--network-key-file", "network.key"],
        &format!("{SYNTHETIC_ID}\n"),
    );
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(
        stdout(&output).trim(),
        "1c04055f21192f5d31b580766ca4e1126703c4af73043d5ccf8c915f7b119c49"
    );
    assert!(!stderr(&output).contains(SYNTHETIC_ID));

    let mistyped = "31129956716";
    let refused = varde_with_stdin(
        dir,
        &["--json", "pseudonym", "--network-key-file", "network.key"],
        mistyped,
    );
    assert_eq!(code(&refused), 2);
    assert!(!stdout(&refused).contains(mistyped));
    assert!(!stderr(&refused).contains(mistyped));
    assert_eq!(json(&refused)["error"]["kind"], "usage");
}

// pseudonym takes no national id on the command line (argv is public in `ps`), and a short
// network key file is refused.
#[test]
fn pseudonym_refuses_argv_and_short_keys() {
    let directory = tempfile::tempdir().unwrap();
    let dir = directory.path();
    std::fs::write(dir.join("short.key"), "abcd").unwrap();
    let in_argv = varde(
        dir,
        &["pseudonym", "--network-key-file", "short.key", SYNTHETIC_ID],
    );
    assert_eq!(code(&in_argv), 2);
    let short = varde_with_stdin(
        dir,
        &["pseudonym", "--network-key-file", "short.key"],
        SYNTHETIC_ID,
    );
    assert_eq!(code(&short), 1);
    assert!(stderr(&short).contains("at least 32"));
}

// tx --dry-run with --chain-id needs no node: it prints the body and the transaction id, and the
// same fields from a JSON file give the same transaction.
#[test]
fn tx_dry_run_from_flags_and_file() {
    let directory = tempfile::tempdir().unwrap();
    let dir = directory.path();
    assert_eq!(code(&varde(dir, &["keys", "new", "--out", "k.pem"])), 0);
    let subject = "ab".repeat(32);
    let flags = varde(
        dir,
        &[
            "--json",
            "tx",
            "revoke",
            "--key",
            "k.pem",
            "--chain-id",
            "varde-test",
            "--dry-run",
            "--expires-in",
            "600",
            "--issuer",
            HOSPITAL,
            "--grant-id",
            &subject,
        ],
    );
    assert_eq!(code(&flags), 0, "{}", stderr(&flags));
    let document = json(&flags);
    assert_eq!(document["submitted"], false);
    assert_eq!(document["body"]["action"], "revoke");
    assert_eq!(document["body"]["fields"]["grant_id"], subject);
    assert_eq!(document["transaction_id"].as_str().unwrap().len(), 64);

    std::fs::write(
        dir.join("anchor.json"),
        format!(
            r#"{{"custodian":"{HOSPITAL}","record_id":"R-1","subject":"{subject}","category":"note",
               "location":"https://ehr.example/r/1","content_sha256":"{subject}"}}"#
        ),
    )
    .unwrap();
    let file = varde(
        dir,
        &[
            "--json",
            "tx",
            "anchor",
            "--key",
            "k.pem",
            "--chain-id",
            "varde-test",
            "--dry-run",
            "--file",
            "anchor.json",
        ],
    );
    assert_eq!(code(&file), 0, "{}", stderr(&file));
    assert_eq!(json(&file)["body"]["fields"]["record_id"], "R-1");

    let missing = varde(
        dir,
        &[
            "tx",
            "anchor",
            "--key",
            "k.pem",
            "--chain-id",
            "varde-test",
            "--dry-run",
        ],
    );
    assert_eq!(code(&missing), 2);
    assert!(stderr(&missing).contains("missing --custodian"));
}

// Without a node, a command that needs one exits 1 and says to start `varde dev`.
#[test]
fn unreachable_node_says_what_to_do() {
    let directory = tempfile::tempdir().unwrap();
    // Port 9 (discard) on loopback: nothing listens there in a test environment.
    let output = varde(
        directory.path(),
        &["status", "--endpoint", "http://127.0.0.1:9"],
    );
    assert_eq!(code(&output), 1);
    assert!(stderr(&output).contains("is `varde dev` running"));
}

// An https endpoint without a CA file, and an endpoint without a scheme, are usage errors
// (exit 2) that say what to give; a CA file that is not there is an operational error (exit 1).
#[test]
fn tls_endpoint_mistakes_say_what_to_do() {
    let directory = tempfile::tempdir().unwrap();
    let no_ca = varde(
        directory.path(),
        &["status", "--endpoint", "https://127.0.0.1:9"],
    );
    assert_eq!(code(&no_ca), 2);
    assert!(stderr(&no_ca).contains("--ca-file"), "{}", stderr(&no_ca));
    assert!(
        stderr(&no_ca).contains("varde-dev/tls/ca.pem"),
        "{}",
        stderr(&no_ca)
    );
    let no_scheme = varde(directory.path(), &["status", "--endpoint", "127.0.0.1:9"]);
    assert_eq!(code(&no_scheme), 2);
    assert!(
        stderr(&no_scheme).contains("https://"),
        "{}",
        stderr(&no_scheme)
    );
    let absent = varde(
        directory.path(),
        &[
            "status",
            "--endpoint",
            "https://127.0.0.1:9",
            "--ca-file",
            "absent-ca.pem",
        ],
    );
    assert_eq!(code(&absent), 1);
    assert!(
        stderr(&absent).contains("absent-ca.pem"),
        "{}",
        stderr(&absent)
    );
}

// Usage errors from clap itself exit 2.
#[test]
fn clap_usage_errors_exit_2() {
    let directory = tempfile::tempdir().unwrap();
    assert_eq!(code(&varde(directory.path(), &["tx", "anchor"])), 2);
    assert_eq!(code(&varde(directory.path(), &["no-such-command"])), 2);
}
