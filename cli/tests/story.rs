//! The end-to-end story of issue 3, over the `varde` binary against a real `varde dev` process:
//! anchor, deny, grant, allow, authorised read, block, deny even for ETREAT, emergency read,
//! revoke, and the patient's access log with the basis of every event.

mod common;

use common::{
    AUDITOR, CONSENT_AUTHORITY, DevNode, HEALTH_TRUST, HOSPITAL, MUNICIPALITY, expect_code,
    now_unix_ms, varde, varde_with_stdin,
};
use serde_json::Value;

/// A synthetic fødselsnummer (valid check digits, not a real person).
const SYNTHETIC_ID: &str = "31129956715";
const RECORD_ID: &str = "story-epikrise-1";
/// HPR numbers of the people who read.
const MUNICIPALITY_NURSE_HPR: &str = "9144900";
const HOSPITAL_DOCTOR_HPR: &str = "1234567";
const TRUST_DOCTOR_HPR: &str = "7654321";

struct Story {
    node: DevNode,
    subject: String,
}

impl Story {
    /// Runs `varde --json GROUP ACTION --endpoint E --ca-file CA --key KEY ARGS...` and returns
    /// the output.
    fn run(
        &self,
        group: &str,
        action: &str,
        key: &str,
        arguments: &[&str],
    ) -> std::process::Output {
        let key = self.node.key(key);
        let mut all = vec![
            "--json",
            group,
            action,
            "--endpoint",
            &self.node.endpoint,
            "--ca-file",
            &self.node.ca_file,
            "--key",
            &key,
        ];
        all.extend_from_slice(arguments);
        varde(&self.node.work_dir, &all)
    }

    /// A transaction with `--wait` that must be applied; returns its JSON.
    fn applied(&self, action: &str, key: &str, arguments: &[&str]) -> Value {
        let mut with_wait = arguments.to_vec();
        with_wait.push("--wait");
        let document = expect_code(&self.run("tx", action, key, &with_wait), 0);
        assert_eq!(document["receipt"]["outcome"], "applied", "{document}");
        document
    }

    /// The municipality's `query check` for the story's record and `purpose`.
    fn municipality_check(&self, purpose: &str, expected_code: i32) -> Value {
        let output = self.run(
            "query",
            "check",
            "municipality.pem",
            &[
                "--accessor",
                MUNICIPALITY,
                "--accessor-hpr",
                MUNICIPALITY_NURSE_HPR,
                "--record-custodian",
                HOSPITAL,
                "--record-id",
                RECORD_ID,
                "--purpose",
                purpose,
            ],
        );
        expect_code(&output, expected_code)
    }
}

// The whole story of issue 3 in order, asserting on the JSON fields of every step, ending with the
// auditor's view of the patient's access log: one event per read, each with its basis.
#[test]
fn end_to_end_story_over_the_cli() {
    let directory = tempfile::tempdir().unwrap();
    let dir = directory.path();
    let (node, status) = DevNode::start(dir, &dir.join("dev"));
    assert_eq!(status["chain_id"], common::CHAIN_ID);

    // The patient's pseudonym, from a national id on stdin and the network key.
    std::fs::write(dir.join("network.key"), "42".repeat(32)).unwrap();
    let pseudonym = expect_code(
        &varde_with_stdin(
            dir,
            &["--json", "pseudonym", "--network-key-file", "network.key"],
            &format!("{SYNTHETIC_ID}\n"),
        ),
        0,
    );
    let subject = pseudonym["pseudonym"].as_str().unwrap().to_owned();
    assert_eq!(subject.len(), 64);
    let story = Story { node, subject };
    let subject = story.subject.as_str();

    // 1. The hospital anchors a record for the patient.
    let content_sha256 = "c0".repeat(32);
    let anchored = story.applied(
        "anchor",
        "hospital.pem",
        &[
            "--custodian",
            HOSPITAL,
            "--record-id",
            RECORD_ID,
            "--subject",
            subject,
            "--category",
            "discharge-summary",
            "--location",
            "https://ehr.example.invalid/story-1",
            "--content-sha256",
            &content_sha256,
        ],
    );
    assert!(anchored["receipt"]["height"].as_u64().unwrap() > 0);

    // 2. The municipality has no basis: denied, exit 4.
    let denied = story.municipality_check("TREAT", 4);
    assert_eq!(denied["allowed"], false);
    assert_eq!(denied["grant_id"], Value::Null);

    // 3. The consent authority grants the municipality TREAT access until a time.
    let valid_until = (now_unix_ms() + 3_600_000).to_string();
    let granted = story.applied(
        "grant",
        "consent-authority.pem",
        &[
            "--issuer",
            CONSENT_AUTHORITY,
            "--subject",
            subject,
            "--grantee",
            MUNICIPALITY,
            "--all-records",
            "--purpose",
            "TREAT",
            "--valid-until-unix-ms",
            &valid_until,
            "--consent-reference",
            "samtykke-story-1",
        ],
    );
    let grant_id = granted["transaction_id"].as_str().unwrap().to_owned();

    // 4. Now allowed, naming the grant; before any block, ETREAT would open as an emergency.
    let allowed = story.municipality_check("TREAT", 0);
    assert_eq!(allowed["allowed"], true);
    assert_eq!(allowed["emergency"], false);
    assert_eq!(allowed["grant_id"], grant_id.as_str());
    let emergency_before_block = story.municipality_check("ETREAT", 0);
    assert_eq!(emergency_before_block["allowed"], true);

    // 5. The municipality logs its read with the grant: authorised.
    let authorised_read = story.applied(
        "log-access",
        "municipality.pem",
        &[
            "--accessor",
            MUNICIPALITY,
            "--accessor-hpr",
            MUNICIPALITY_NURSE_HPR,
            "--record-custodian",
            HOSPITAL,
            "--record-id",
            RECORD_ID,
            "--purpose",
            "TREAT",
            "--grant-id",
            &grant_id,
        ],
    );
    assert_eq!(authorised_read["receipt"]["classification"], "authorised");
    let authorised_event = authorised_read["transaction_id"].as_str().unwrap();

    // 6. The consent authority blocks the municipality on the patient's behalf.
    story.applied(
        "block",
        "consent-authority.pem",
        &[
            "--issuer",
            CONSENT_AUTHORITY,
            "--subject",
            subject,
            "--institution",
            MUNICIPALITY,
        ],
    );

    // 7. The block holds over the grant, and even for ETREAT.
    let blocked = story.municipality_check("TREAT", 4);
    assert_eq!(blocked["allowed"], false);
    assert_eq!(blocked["grant_id"], Value::Null);
    let blocked_emergency = story.municipality_check("ETREAT", 4);
    assert_eq!(blocked_emergency["allowed"], false);
    assert_eq!(blocked_emergency["emergency"], false);

    // 8. A read by the blocked municipality, even claimed as an emergency, is still recorded:
    // unauthorised.
    let blocked_read = story.applied(
        "log-access",
        "municipality.pem",
        &[
            "--accessor",
            MUNICIPALITY,
            "--accessor-hpr",
            MUNICIPALITY_NURSE_HPR,
            "--record-custodian",
            HOSPITAL,
            "--record-id",
            RECORD_ID,
            "--purpose",
            "ETREAT",
            "--emergency",
            "patient found unconscious at home",
        ],
    );
    assert_eq!(blocked_read["receipt"]["classification"], "unauthorised");
    let unauthorised_event = blocked_read["transaction_id"].as_str().unwrap();

    // 9. A third institution's emergency read (Helse Bergen HF, neither custodian nor grantee):
    // recorded as emergency and flagged. The auditor may look, but may not log reads (exit 3).
    let auditor_read = story.run(
        "tx",
        "log-access",
        "auditor.pem",
        &[
            "--accessor",
            AUDITOR,
            "--accessor-hpr",
            HOSPITAL_DOCTOR_HPR,
            "--record-custodian",
            HOSPITAL,
            "--record-id",
            RECORD_ID,
            "--purpose",
            "ETREAT",
            "--emergency",
            "audit",
            "--wait",
        ],
    );
    let auditor_refused = expect_code(&auditor_read, 3);
    assert_eq!(auditor_refused["receipt"]["reason"], "missing_role");
    let emergency_read = story.applied(
        "log-access",
        "health-trust.pem",
        &[
            "--accessor",
            HEALTH_TRUST,
            "--accessor-hpr",
            TRUST_DOCTOR_HPR,
            "--record-custodian",
            HOSPITAL,
            "--record-id",
            RECORD_ID,
            "--purpose",
            "ETREAT",
            "--emergency",
            "unconscious patient in the emergency department",
        ],
    );
    assert_eq!(emergency_read["receipt"]["classification"], "emergency");
    let emergency_event = emergency_read["transaction_id"].as_str().unwrap();

    // 10. The grant is revoked.
    story.applied(
        "revoke",
        "consent-authority.pem",
        &[
            "--issuer",
            CONSENT_AUTHORITY,
            "--grant-id",
            &grant_id,
            "--reason",
            "consent withdrawn",
        ],
    );
    let grants = expect_code(
        &story.run(
            "query",
            "grants",
            "auditor.pem",
            &["--subject", subject, "--all"],
        ),
        0,
    );
    let grant = grants["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|grant| grant["grant_id"] == grant_id.as_str())
        .unwrap_or_else(|| panic!("the grant is listed: {grants}"));
    assert_eq!(grant["revoked"], true);

    // 11. The auditor reads the patient's access log: every event, with its basis.
    let log = expect_code(
        &story.run(
            "query",
            "access-log",
            "auditor.pem",
            &["--subject", subject, "--all"],
        ),
        0,
    );
    let events = log["events"].as_array().unwrap();
    assert_eq!(events.len(), 3, "{log}");
    let event = |id: &str| -> &Value {
        events
            .iter()
            .find(|event| event["event_id"] == id)
            .unwrap_or_else(|| panic!("event {id} is in the log: {log}"))
    };
    for listed in events {
        assert_eq!(listed["subject"], subject);
        assert_eq!(listed["report"]["record"]["record_id"], RECORD_ID);
    }

    let authorised = event(authorised_event);
    assert_eq!(authorised["classification"], "authorised");
    assert_eq!(authorised["flagged"], false);
    assert_eq!(authorised["grant_id"], grant_id.as_str());
    assert_eq!(authorised["report"]["accessor"], MUNICIPALITY);
    assert_eq!(authorised["report"]["basis"]["grant_id"], grant_id.as_str());

    let unauthorised = event(unauthorised_event);
    assert_eq!(unauthorised["classification"], "unauthorised");
    assert_eq!(unauthorised["flagged"], true);
    assert_eq!(unauthorised["grant_id"], Value::Null);
    assert_eq!(unauthorised["report"]["accessor"], MUNICIPALITY);

    let emergency = event(emergency_event);
    assert_eq!(emergency["classification"], "emergency");
    assert_eq!(emergency["flagged"], true);
    assert_eq!(emergency["grant_id"], Value::Null);
    assert_eq!(emergency["report"]["accessor"], HEALTH_TRUST);
    assert_eq!(
        emergency["report"]["basis"]["emergency"]["justification"],
        "unconscious patient in the emergency department"
    );
}
