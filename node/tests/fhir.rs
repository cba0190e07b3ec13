//! `Query.ExportFhir` over a real node: a signed request gets a FHIR R4 Bundle whose every
//! resource is a typed R4 resource (checked against a strict R4 model in cli/tests/export_fhir.rs);
//! each institution gets only what it could
//! list (the patient's view through the consent authority, the grantee's, a stranger's nothing);
//! unsigned requests and unbounded selections are refused with the standard codes.

mod common;

use common::*;
use serde_json::Value;
use tonic::Code;
use v1::transaction_body::Action;
use varde_node::demo::{self, DemoKeys};
use varde_proto::v1;

const METHOD: &str = "/varde.v1.Query/ExportFhir";

fn patient() -> Vec<u8> {
    demo::demo_subject(7)
}

/// Anchors a record of the patient and one of another patient, grants the health trust all of
/// the patient's records, logs a read under the grant and an emergency read; returns the ids.
async fn story(node: &TestNode, keys: &DemoKeys) -> Vec<Vec<u8>> {
    let mut client = node.ledger().await;
    let now = now_unix_ms();
    let hospital = demo::HOSPITAL.org_number;
    let trust = demo::HEALTH_TRUST.org_number;
    let anchored = commit(
        &mut client,
        signed(
            keys.of(demo::HOSPITAL),
            demo::anchor_action(hospital, "journal-7", patient(), "psychiatry", now),
        ),
    )
    .await;
    let other = commit(
        &mut client,
        signed(
            keys.of(demo::HOSPITAL),
            demo::anchor_action(hospital, "journal-8", demo::demo_subject(8), "lab", now),
        ),
    )
    .await;
    let granted = commit(
        &mut client,
        signed(
            keys.of(demo::CONSENT_AUTHORITY),
            Action::GrantAccess(v1::GrantAccess {
                issuer_org_number: demo::CONSENT_AUTHORITY.org_number.to_owned(),
                subject_pseudonym: patient(),
                grantee_org_number: trust.to_owned(),
                scope: Some(v1::GrantScope {
                    scope: Some(v1::grant_scope::Scope::AllRecords(v1::AllRecords {})),
                }),
                purposes: vec![v1::PurposeOfUse::Treat as i32],
                valid_from_unix_ms: now - 1_000,
                valid_until_unix_ms: now + 3_600_000,
                basis: Some(v1::GrantBasis {
                    basis: Some(v1::grant_basis::Basis::PatientConsent(v1::PatientConsent {
                        reference: "samtykke-7".to_owned(),
                    })),
                }),
                ..Default::default()
            }),
        ),
    )
    .await;
    let read = |basis: v1::log_access::Basis, purpose: v1::PurposeOfUse| {
        signed(
            keys.of(demo::HEALTH_TRUST),
            Action::LogAccess(v1::LogAccess {
                accessor_org_number: trust.to_owned(),
                accessor_hpr_number: "1234567".to_owned(),
                record: Some(record(hospital, "journal-7")),
                purpose: purpose as i32,
                accessed_at_unix_ms: now_unix_ms() - 1_000,
                basis: Some(basis),
                ..Default::default()
            }),
        )
    };
    let under_grant = commit(
        &mut client,
        read(
            v1::log_access::Basis::GrantId(granted.transaction_id.clone()),
            v1::PurposeOfUse::Treat,
        ),
    )
    .await;
    let emergency = commit(
        &mut client,
        read(
            v1::log_access::Basis::Emergency(v1::EmergencyAccess {
                justification: "bevisstløs i akuttmottaket".to_owned(),
            }),
            v1::PurposeOfUse::Etreat,
        ),
    )
    .await;
    let responses = [&anchored, &other, &granted, &under_grant, &emergency];
    for response in responses {
        assert!(is_applied(&response.receipt), "{response:?}");
    }
    responses
        .iter()
        .map(|response| response.transaction_id.clone())
        .collect()
}

fn request(subject: Vec<u8>, from_height: u64, to_height: u64) -> v1::ExportFhirRequest {
    v1::ExportFhirRequest {
        auth: None,
        subject_pseudonym: subject,
        from_height,
        to_height,
    }
}

async fn export(
    node: &TestNode,
    caller: &ed25519_dalek::SigningKey,
    unsigned: v1::ExportFhirRequest,
) -> Result<(Value, v1::ExportFhirResponse), tonic::Status> {
    let response = node
        .query()
        .await
        .export_fhir(sign!(caller, METHOD, unsigned))
        .await?
        .into_inner();
    let bundle: Value = serde_json::from_slice(&response.bundle_json).unwrap();
    Ok((bundle, response))
}

/// The ids of the resources of `bundle`, each of an R4 type the export writes.
fn resource_ids(bundle: &Value) -> Vec<String> {
    assert_eq!(bundle["resourceType"], "Bundle");
    let entries = bundle["entry"].as_array().cloned().unwrap_or_default();
    entries
        .iter()
        .map(|entry| {
            let resource = &entry["resource"];
            let kind = resource["resourceType"].as_str().unwrap_or_default();
            assert!(
                ["DocumentReference", "Consent", "AuditEvent"].contains(&kind),
                "{resource:#}"
            );
            resource["id"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    varde_ledger::hex::encode(bytes)
}

// The patient's export through the consent authority holds the record, the grant and both
// reads, strict R4, with the pseudonym and the Norwegian identifier systems; the grantee gets the
// same (it may see the record, its grant and its reads); a stranger gets an empty Bundle; the
// auditor's height range holds the other patient's record too.
#[tokio::test]
async fn exports_are_strict_r4_and_follow_the_listings() {
    let dir = tempfile::tempdir().unwrap();
    let keys = DemoKeys::from_seed(31);
    let node = start_node(dir.path(), &keys).await;
    let ids = story(&node, &keys).await;
    let (anchor, other, grant, under_grant, emergency) =
        (&ids[0], &ids[1], &ids[2], &ids[3], &ids[4]);

    let (bundle, response) = export(
        &node,
        keys.of(demo::CONSENT_AUTHORITY),
        request(patient(), 0, 0),
    )
    .await
    .unwrap();
    let exported = resource_ids(&bundle);
    assert_eq!(response.resource_count, 4);
    assert!(response.height >= 5);
    assert!(exported.contains(&hex(grant)));
    assert!(exported.contains(&hex(under_grant)));
    assert!(exported.contains(&hex(emergency)));
    let text = bundle.to_string();
    assert!(text.contains(&format!("urn:varde:transaction:{}", hex(anchor))));
    assert!(text.contains(&hex(&patient())));
    assert!(text.contains("urn:oid:2.16.578.1.12.4.1.4.101"));
    assert!(text.contains("urn:oid:2.16.578.1.12.4.1.4.4"));
    assert!(text.contains(r#""code":"ETREAT""#));
    assert!(!text.contains(&hex(&demo::demo_subject(8))));

    let (trust_bundle, _) = export(&node, keys.of(demo::HEALTH_TRUST), request(patient(), 0, 0))
        .await
        .unwrap();
    assert_eq!(resource_ids(&trust_bundle).len(), 4);

    let (stranger_bundle, stranger) =
        export(&node, keys.of(demo::MUNICIPALITY), request(patient(), 0, 0))
            .await
            .unwrap();
    assert_eq!(stranger.resource_count, 0);
    assert!(resource_ids(&stranger_bundle).is_empty());

    let (audit, _) = export(&node, keys.of(demo::AUDITOR), request(Vec::new(), 1, 1_000))
        .await
        .unwrap();
    let audited = resource_ids(&audit);
    assert_eq!(audited.len(), 5);
    assert!(audit.to_string().contains(&hex(&demo::demo_subject(8))));
    // The other patient's record is the hospital's: the consent authority, naming no subject,
    // sees only its grant.
    let (unnamed, _) = export(
        &node,
        keys.of(demo::CONSENT_AUTHORITY),
        request(Vec::new(), 1, 1_000),
    )
    .await
    .unwrap();
    assert_eq!(resource_ids(&unnamed), vec![hex(grant)]);
    let _ = other;
    node.stop().await;
}

// Unsigned, forged and unbounded requests are refused with the standard codes, and the messages
// name no pseudonym.
#[tokio::test]
async fn bad_export_requests_get_clear_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let keys = DemoKeys::from_seed(32);
    let node = start_node(dir.path(), &keys).await;
    story(&node, &keys).await;
    let mut query = node.query().await;
    let unsigned = query
        .export_fhir(request(patient(), 0, 0))
        .await
        .unwrap_err();
    assert_eq!(unsigned.code(), Code::Unauthenticated);
    let mut forged = sign!(keys.of(demo::AUDITOR), METHOD, request(patient(), 0, 0));
    forged.subject_pseudonym = demo::demo_subject(8);
    assert_eq!(
        query.export_fhir(forged).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let auditor = keys.of(demo::AUDITOR);
    let cases = [
        (request(Vec::new(), 0, 0), Code::InvalidArgument),
        (request(vec![1; 31], 0, 0), Code::InvalidArgument),
        (request(Vec::new(), 0, 5), Code::InvalidArgument),
        (request(Vec::new(), 5, 4), Code::InvalidArgument),
        (request(Vec::new(), 1, 10_001), Code::ResourceExhausted),
        (request(patient(), 1, u64::MAX), Code::ResourceExhausted),
    ];
    for (unsigned, code) in cases {
        let status = export(&node, auditor, unsigned.clone()).await.unwrap_err();
        assert_eq!(status.code(), code, "{unsigned:?}: {}", status.message());
        assert!(!status.message().contains(&hex(&patient())));
    }
    node.stop().await;
}
