//! `varde export fhir` against a real `varde dev` node with its demo data (two patients' records,
//! a category grant, a read under it, an emergency read) plus a read without a basis and a
//! patient block: the Bundles it
//! writes for the patient portal (consent authority), a grantee and an auditor's height range are
//! valid FHIR R4 under an independent implementation (clients/fhir-check/fhir_r4_check.py, the
//! `fhir.resources` R4 models from PyPI), which also refuses a tampered copy; bad selections are
//! usage errors (exit 2).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{
    CONSENT_AUTHORITY, DevNode, MUNICIPALITY, STARTUP_DEADLINE, expect_code, json, python_venv,
    repository_root, varde,
};
use serde_json::Value;

fn fhir_check_python() -> PathBuf {
    python_venv(
        "varde-fhir-check-venv",
        "clients/fhir-check/requirements.txt",
    )
}

/// Runs the independent R4 check on `bundle`; its output.
fn check_r4(python: &Path, bundle: &Path, expect_resources: Option<u64>) -> Output {
    let script = repository_root().join("clients/fhir-check/fhir_r4_check.py");
    let mut command = Command::new(python);
    command.arg(&script).arg(bundle);
    if let Some(count) = expect_resources {
        command.args(["--expect-resources", &count.to_string()]);
    }
    command.output().unwrap()
}

fn assert_valid_r4(python: &Path, bundle: &Path, expect_resources: u64) -> Value {
    let output = check_r4(python, bundle, Some(expect_resources));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}: stdout {stdout}\nstderr {}",
        bundle.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("every corrupted copy refused"), "{stdout}");
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

/// Waits until `varde dev` has committed its demo data (it writes a marker file then).
fn wait_for_demo_data(node: &DevNode) {
    let started = Instant::now();
    while !node.data_dir.join("demo-data-loaded").exists() {
        assert!(
            started.elapsed() < STARTUP_DEADLINE,
            "the demo data was not loaded in time: {}",
            node.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn exported_bundles_are_valid_r4_under_an_independent_validator() {
    let python = fhir_check_python();
    let directory = tempfile::tempdir().unwrap();
    let dir = directory.path();
    let (node, _) = DevNode::start(dir, &dir.join("dev"));
    wait_for_demo_data(&node);
    let patient = varde_ledger::hex::encode(&varde_node::demo::demo_subject(1));
    let connection = ["--endpoint", &node.endpoint, "--ca-file", &node.ca_file];
    let consent_authority = node.key("consent-authority.pem");
    let municipality = node.key("municipality.pem");
    let health_trust = node.key("health-trust.pem");

    // A read by the health trust without a basis (unauthorised, flagged), then the patient's
    // block of the health trust: the patient's view holds both.
    let read = varde(
        dir,
        &[
            &["--json", "tx", "log-access"][..],
            &connection,
            &[
                "--key",
                &health_trust,
                "--wait",
                "--accessor",
                common::HEALTH_TRUST,
                "--accessor-hpr",
                "1234567",
                "--record-custodian",
                common::HOSPITAL,
                "--record-id",
                "epikrise-2026-0001",
                "--purpose",
                "TREAT",
            ],
        ]
        .concat(),
    );
    assert_eq!(expect_code(&read, 0)["receipt"]["outcome"], "applied");
    let block = varde(
        dir,
        &[
            &["--json", "tx", "block"][..],
            &connection,
            &[
                "--key",
                &consent_authority,
                "--wait",
                "--issuer",
                CONSENT_AUTHORITY,
                "--subject",
                &patient,
                "--institution",
                common::HEALTH_TRUST,
            ],
        ]
        .concat(),
    );
    assert_eq!(expect_code(&block, 0)["receipt"]["outcome"], "applied");

    let export = |key: &str, selection: &[&str], out: &Path| -> Output {
        varde(
            dir,
            &[
                &["--json", "export", "fhir"][..],
                &connection,
                &["--key", key, "--out", out.to_str().unwrap()],
                selection,
            ]
            .concat(),
        )
    };

    // The patient portal: two records, the grant, the block, three reads.
    let portal_file = dir.join("patient.json");
    let portal = expect_code(
        &export(
            &consent_authority,
            &["--subject-pseudonym", &patient],
            &portal_file,
        ),
        0,
    );
    assert_eq!(portal["resource_count"], 7, "{portal}");
    let counts = assert_valid_r4(&python, &portal_file, 7);
    assert_eq!(counts["by_type"]["DocumentReference"], 2);
    assert_eq!(counts["by_type"]["Consent"], 2);
    assert_eq!(counts["by_type"]["AuditEvent"], 3);
    let text = std::fs::read_to_string(&portal_file).unwrap();
    assert!(text.starts_with(r#"{"resourceType":"Bundle""#));
    assert!(text.contains(&patient));
    assert!(text.contains("urn:oid:2.16.578.1.12.4.1.4.101"));
    assert!(text.contains("http://terminology.hl7.org/CodeSystem/v3-ActReason"));
    for classification in ["authorised", "emergency", "unauthorised"] {
        assert!(
            text.contains(&format!(r#""valueCode":"{classification}""#)),
            "{classification}"
        );
    }

    // The grantee (the municipality): the discharge summary its category grant covers, the
    // grant and its own read, not the laboratory record, the block or the trust's reads.
    let grantee_file = dir.join("grantee.json");
    let grantee = expect_code(
        &export(
            &municipality,
            &["--subject-pseudonym", &patient],
            &grantee_file,
        ),
        0,
    );
    assert_eq!(grantee["resource_count"], 3, "{grantee}");
    assert_valid_r4(&python, &grantee_file, 3);

    // The auditor's height range holds every patient's items; the other patient's record too.
    let audit_file = dir.join("audit.json");
    let height = grantee["height"].as_u64().unwrap();
    let audit = expect_code(
        &export(
            &node.key("auditor.pem"),
            &["--from-height", "1", "--to-height", &height.to_string()],
            &audit_file,
        ),
        0,
    );
    assert_eq!(audit["resource_count"], 8, "{audit}");
    assert_valid_r4(&python, &audit_file, 8);

    // The independent check fails on a tampered Bundle.
    let mut tampered: Value = serde_json::from_str(&text).unwrap();
    tampered["entry"][0]["resource"]["custodianName"] = Value::String("x".into());
    let tampered_file = dir.join("tampered.json");
    std::fs::write(&tampered_file, tampered.to_string()).unwrap();
    assert_eq!(
        check_r4(&python, &tampered_file, None).status.code(),
        Some(1)
    );

    // Bad selections are usage errors, and nothing is written.
    let refused = dir.join("refused.json");
    for selection in [
        &["--subject-pseudonym", "abcd"][..],
        &["--from-height", "0", "--to-height", "3"],
        &["--from-height", "4", "--to-height", "3"],
    ] {
        let output = export(&municipality, selection, &refused);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{selection:?}: {}",
            json(&output)
        );
        assert!(!refused.exists());
    }
    // The node's limit: more than 10 000 heights is refused with RESOURCE_EXHAUSTED.
    let too_many = export(
        &municipality,
        &["--from-height", "1", "--to-height", "10001"],
        &refused,
    );
    assert_eq!(too_many.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&too_many.stderr).contains("ResourceExhausted")
            || too_many
                .stdout
                .windows(17)
                .any(|window| window == b"ResourceExhausted"),
        "{}",
        String::from_utf8_lossy(&too_many.stderr)
    );
    let _ = MUNICIPALITY;
}
