//! FHIR R4 out over a real ledger: the mapping says what the ledger says (statuses, identifier
//! systems, purposes, classification), each resource names the transactions behind it, and an
//! export never holds what the caller could not list. Every exported resource is checked against
//! a strict R4 model by an independent implementation (clients/fhir-check, over a real node, in
//! cli/tests/export_fhir.rs).

use std::collections::BTreeSet;

use ed25519_dalek::SigningKey;
use prost::Message;
use serde_json::Value;
use varde_ledger::domain::{RejectionReason, SubjectPseudonym};
use varde_ledger::fhir::{self, ExportError, ExportRequest};
use varde_ledger::identifiers::OrgNumber;
use varde_ledger::membership::{Genesis, Institution, Role};
use varde_ledger::page_token::PageTokenKey;
use varde_ledger::query::{self, PageRequest};
use varde_ledger::signing::{self, TransactionId};
use varde_ledger::visibility::{self, Viewer};
use varde_ledger::{Ledger, pseudonym};
use varde_proto::v1::{self, transaction_body::Action};
use varde_storage::MemoryStore;

const CHAIN: &str = "varde-test";
const HOSPITAL: &str = "974760673";
const MUNICIPALITY: &str = "123456785";
const CONSENT_AUTHORITY: &str = "983044778";
const STRANGER: &str = "100000008";
const AUDITOR: &str = "000000507";
const T0: i64 = 1_780_000_000_000;
const HOUR: i64 = 3_600_000;
const NATIONAL_ID: &str = "31129956715";

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn institution(org: &str, roles: Vec<Role>, seed: u8) -> Institution {
    let validator_key = roles
        .contains(&Role::Validator)
        .then(|| key(seed + 100).verifying_key().to_bytes());
    Institution {
        org_number: OrgNumber::parse(org).unwrap(),
        name: format!("Institution {org}"),
        roles,
        public_keys: vec![key(seed).verifying_key().to_bytes()],
        validator_key,
    }
}

fn patient() -> SubjectPseudonym {
    SubjectPseudonym(pseudonym::subject_pseudonym(&[0x42; 32], NATIONAL_ID))
}

fn other_patient() -> SubjectPseudonym {
    SubjectPseudonym(pseudonym::subject_pseudonym(&[0x42; 32], "30108299939"))
}

struct World {
    ledger: Ledger<MemoryStore>,
    members: Vec<Institution>,
    nonce: u16,
}

impl World {
    fn new() -> Self {
        let genesis = Genesis {
            chain_id: CHAIN.to_owned(),
            genesis_time_unix_ms: T0,
            institutions: vec![
                institution(HOSPITAL, vec![Role::Validator, Role::Submitter], 1),
                institution(MUNICIPALITY, vec![Role::Submitter], 2),
                institution(CONSENT_AUTHORITY, vec![Role::ConsentAuthority], 3),
                institution(STRANGER, vec![Role::Submitter], 4),
                institution(AUDITOR, vec![Role::Auditor], 5),
            ],
        };
        Self {
            members: genesis.institutions.clone(),
            ledger: Ledger::open(MemoryStore::new(), genesis).unwrap(),
            nonce: 0,
        }
    }

    fn member(&self, org: &str) -> Institution {
        self.members
            .iter()
            .find(|member| member.org_number.as_str() == org)
            .unwrap()
            .clone()
    }

    /// Commits one block; every transaction must apply. Returns their ids.
    fn commit(&mut self, time: i64, actions: Vec<(u8, Action)>) -> Vec<TransactionId> {
        let envelopes = actions
            .into_iter()
            .map(|(seed, action)| {
                self.nonce += 1;
                // No run of ASCII digits: a nonce is refused when it holds 11 of them.
                let mut nonce = vec![0xaa; 14];
                nonce.extend_from_slice(&self.nonce.to_be_bytes());
                let body = v1::TransactionBody {
                    chain_id: CHAIN.to_owned(),
                    expires_at_height: 1_000,
                    nonce,
                    action: Some(action),
                    ..Default::default()
                };
                let bytes = body.encode_to_vec();
                let parts = signing::sign(CHAIN, &key(seed), &bytes).unwrap();
                v1::SignedTransaction {
                    body: bytes,
                    signer_public_key: parts.signer_public_key.to_vec(),
                    signature: parts.signature.to_vec(),
                }
            })
            .collect();
        let executed = self.ledger.execute_block([9; 32], time, envelopes).unwrap();
        let ids = executed
            .receipts
            .iter()
            .map(|receipt| {
                assert_eq!(
                    receipt.rejection(),
                    None::<RejectionReason>,
                    "{:?}",
                    receipt.outcome
                );
                receipt.transaction_id
            })
            .collect();
        self.ledger.commit(executed).unwrap();
        ids
    }
}

fn reference(record_id: &str) -> v1::RecordReference {
    v1::RecordReference {
        custodian_org_number: HOSPITAL.to_owned(),
        record_id: record_id.to_owned(),
    }
}

fn anchor(record_id: &str, of: SubjectPseudonym, restricted: bool) -> Action {
    Action::AnchorRecord(v1::AnchorRecord {
        custodian_org_number: HOSPITAL.to_owned(),
        record_id: record_id.to_owned(),
        subject_pseudonym: of.0.to_vec(),
        category_code: "epikrise".to_owned(),
        location_uri: format!("https://ehr.hospital.example/r/{record_id}"),
        content_sha256: vec![7; 32],
        confidentiality: if restricted {
            v1::Confidentiality::Restricted as i32
        } else {
            v1::Confidentiality::Normal as i32
        },
        created_at_unix_ms: T0,
    })
}

fn grant(
    issuer: &str,
    scope: v1::grant_scope::Scope,
    person: &str,
    basis: v1::grant_basis::Basis,
) -> Action {
    Action::GrantAccess(v1::GrantAccess {
        issuer_org_number: issuer.to_owned(),
        subject_pseudonym: patient().0.to_vec(),
        grantee_org_number: MUNICIPALITY.to_owned(),
        grantee_hpr_number: person.to_owned(),
        scope: Some(v1::GrantScope { scope: Some(scope) }),
        purposes: vec![v1::PurposeOfUse::Treat as i32, v1::PurposeOfUse::Coc as i32],
        valid_from_unix_ms: T0,
        valid_until_unix_ms: T0 + 100 * HOUR,
        basis: Some(v1::GrantBasis { basis: Some(basis) }),
        ..Default::default()
    })
}

fn log_read(accessor: &str, record_id: &str, basis: Option<v1::log_access::Basis>) -> Action {
    Action::LogAccess(v1::LogAccess {
        accessor_org_number: accessor.to_owned(),
        accessor_hpr_number: "1234567".to_owned(),
        record: Some(reference(record_id)),
        purpose: if matches!(basis, Some(v1::log_access::Basis::Emergency(_))) {
            v1::PurposeOfUse::Etreat as i32
        } else {
            v1::PurposeOfUse::Treat as i32
        },
        accessed_at_unix_ms: T0 + HOUR,
        attestation_sha256: vec![3; 32],
        basis,
    })
}

/// The ids of the story's items, to check the mapping against.
struct Story {
    consent_grant: TransactionId,
    statutory_grant: TransactionId,
    revocation: TransactionId,
    block: TransactionId,
    unblock: TransactionId,
    emergency_read: TransactionId,
    granted_read: TransactionId,
    unauthorised_read: TransactionId,
}

/// Four blocks: two records of the patient (one restricted) and one of another patient, a grant
/// of all records with patient consent to a person at the municipality, a statutory grant of the
/// restricted record (revoked later), a patient block of a stranger (lifted later), a granted
/// read, an emergency read, a supersession, a retraction and an unauthorised read.
fn story() -> (World, Story) {
    let mut world = World::new();
    let mut statutory = grant(
        HOSPITAL,
        v1::grant_scope::Scope::Record(reference("r-secret")),
        "",
        v1::grant_basis::Basis::Statutory(v1::StatutoryBasis {
            name: "pasientjournalloven § 19".into(),
        }),
    );
    if let Action::GrantAccess(terms) = &mut statutory {
        terms.grantee_department = "akuttmottaket".into();
    }
    let first = world.commit(
        T0,
        vec![
            (1, anchor("r-1", patient(), false)),
            (1, anchor("r-secret", patient(), true)),
            (1, anchor("r-other", other_patient(), false)),
            (
                3,
                grant(
                    CONSENT_AUTHORITY,
                    v1::grant_scope::Scope::AllRecords(v1::AllRecords {}),
                    "1234567",
                    v1::grant_basis::Basis::PatientConsent(v1::PatientConsent {
                        reference: "signed form 2026-17".into(),
                    }),
                ),
            ),
            (1, statutory),
        ],
    );
    let (consent_grant, statutory_grant) = (first[3], first[4]);
    let second = world.commit(
        T0 + HOUR,
        vec![
            (
                3,
                Action::BlockAccess(v1::BlockAccess {
                    issuer_org_number: CONSENT_AUTHORITY.to_owned(),
                    subject_pseudonym: patient().0.to_vec(),
                    target: Some(v1::block_access::Target::InstitutionOrgNumber(
                        STRANGER.to_owned(),
                    )),
                }),
            ),
            (
                2,
                log_read(
                    MUNICIPALITY,
                    "r-1",
                    Some(v1::log_access::Basis::GrantId(consent_grant.0.to_vec())),
                ),
            ),
            (
                2,
                log_read(
                    MUNICIPALITY,
                    "r-secret",
                    Some(v1::log_access::Basis::Emergency(v1::EmergencyAccess {
                        justification: "unconscious at arrival".into(),
                    })),
                ),
            ),
            (
                1,
                Action::SupersedeRecord(v1::SupersedeRecord {
                    custodian_org_number: HOSPITAL.to_owned(),
                    record_id: "r-1".to_owned(),
                    category_code: "epikrise".to_owned(),
                    location_uri: "https://ehr.hospital.example/r/r-1/v2".to_owned(),
                    content_sha256: vec![8; 32],
                    confidentiality: v1::Confidentiality::Normal as i32,
                    created_at_unix_ms: T0 + HOUR,
                }),
            ),
        ],
    );
    let (block, granted_read, emergency_read) = (second[0], second[1], second[2]);
    let third = world.commit(
        T0 + 2 * HOUR,
        vec![
            (
                1,
                Action::RevokeGrant(v1::RevokeGrant {
                    issuer_org_number: HOSPITAL.to_owned(),
                    grant_id: statutory_grant.0.to_vec(),
                    reason: "no longer needed".into(),
                }),
            ),
            (
                3,
                Action::UnblockAccess(v1::UnblockAccess {
                    issuer_org_number: CONSENT_AUTHORITY.to_owned(),
                    block_id: block.0.to_vec(),
                }),
            ),
            (4, log_read(STRANGER, "r-1", None)),
        ],
    );
    let (revocation, unblock, unauthorised_read) = (third[0], third[1], third[2]);
    world.commit(
        T0 + 3 * HOUR,
        vec![(
            1,
            Action::RetractRecord(v1::RetractRecord {
                custodian_org_number: HOSPITAL.to_owned(),
                record_id: "r-secret".to_owned(),
                reason: "deleted at the source".into(),
            }),
        )],
    );
    (
        world,
        Story {
            consent_grant,
            statutory_grant,
            revocation,
            block,
            unblock,
            emergency_read,
            granted_read,
            unauthorised_read,
        },
    )
}

const NOW: i64 = T0 + 4 * HOUR;

fn export(world: &World, org: &str, request: ExportRequest) -> Result<fhir::Export, ExportError> {
    let caller = world.member(org);
    fhir::export(&world.ledger, &Viewer::new(&caller, NOW), &request, NOW)
}

fn of_subject() -> ExportRequest {
    ExportRequest {
        subject: Some(patient()),
        heights: None,
    }
}

fn of_heights(from: u64, to: u64) -> ExportRequest {
    ExportRequest {
        subject: None,
        heights: Some((from, to)),
    }
}

fn resources(bundle: &Value) -> Vec<Value> {
    bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|entry| entry["resource"].clone())
                .collect()
        })
        .unwrap_or_default()
}

fn find<'a>(resources: &'a [Value], id: &TransactionId) -> &'a Value {
    resources
        .iter()
        .find(|resource| resource["id"] == id.to_hex())
        .unwrap_or_else(|| panic!("no resource {}", id.to_hex()))
}

/// The sub-extension `name` of the complex extension `url` on `resource`.
fn sub_extension<'a>(resource: &'a Value, url: &str, name: &str) -> Option<&'a Value> {
    resource["extension"]
        .as_array()?
        .iter()
        .find(|extension| extension["url"] == url)?["extension"]
        .as_array()?
        .iter()
        .find(|part| part["url"] == name)
}

// Every resource of the auditor's export is one of the three R4 types the export writes, with an
// id and its type; the patient appears only as the pseudonym, never the national id.
#[test]
fn every_exported_resource_is_a_typed_r4_resource() {
    let (world, _) = story();
    for request in [of_subject(), of_heights(1, 4)] {
        let export = export(&world, AUDITOR, request).unwrap();
        let all = resources(&export.bundle);
        assert_eq!(export.resource_count, all.len());
        for resource in &all {
            let kind = resource["resourceType"].as_str().unwrap_or_default();
            assert!(
                ["DocumentReference", "Consent", "AuditEvent"].contains(&kind),
                "{resource:#}"
            );
            assert!(resource["id"].is_string(), "{resource:#}");
        }
        // The bytes served say the same, type first.
        let bytes = export.to_json_bytes();
        assert!(bytes.starts_with(br#"{"resourceType":"Bundle","#));
        assert_eq!(
            serde_json::from_slice::<Value>(&bytes).unwrap(),
            export.bundle
        );
        let text = export.bundle.to_string();
        assert!(!text.contains(NATIONAL_ID));
        assert!(text.contains(&varde_ledger::hex::encode(&patient().0)));
    }
    let subject_export = export(&world, AUDITOR, of_subject()).unwrap();
    let kinds: Vec<String> = resources(&subject_export.bundle)
        .iter()
        .map(|resource| resource["resourceType"].as_str().unwrap().to_owned())
        .collect();
    let count = |kind: &str| kinds.iter().filter(|found| *found == kind).count();
    // Two records of the patient (not the other patient's), two grants and a block, three reads.
    assert_eq!(count("DocumentReference"), 2);
    assert_eq!(count("Consent"), 3);
    assert_eq!(count("AuditEvent"), 3);
    // The height range holds the other patient's record too.
    let heights_export = export(&world, AUDITOR, of_heights(1, 4)).unwrap();
    assert_eq!(heights_export.resource_count, 9);
    assert_eq!(heights_export.height, 4);
}

// Statuses, identifier systems, purposes, bases and classifications say what the ledger says.
#[test]
fn the_mapping_follows_the_ledger() {
    let (world, story) = story();
    let all = resources(&export(&world, AUDITOR, of_subject()).unwrap().bundle);
    let record = |record_id: &str| {
        all.iter()
            .find(|resource| {
                resource["resourceType"] == "DocumentReference"
                    && resource["identifier"][0]["value"] == record_id
            })
            .unwrap()
    };
    let current = record("r-1");
    assert_eq!(current["status"], "current");
    assert_eq!(current["docStatus"], "amended");
    assert_eq!(current["meta"]["versionId"], "2");
    assert_eq!(
        current["identifier"][0]["system"],
        format!("urn:varde:record-id:{HOSPITAL}")
    );
    assert_eq!(
        current["custodian"]["identifier"]["system"],
        fhir::SYSTEM_ORGANISATION_NUMBER
    );
    assert_eq!(current["custodian"]["identifier"]["value"], HOSPITAL);
    assert_eq!(
        current["subject"]["identifier"]["system"],
        fhir::SYSTEM_SUBJECT_PSEUDONYM
    );
    assert_eq!(
        current["content"][0]["attachment"]["url"],
        "https://ehr.hospital.example/r/r-1/v2"
    );
    assert_eq!(
        current["content"][0]["attachment"]["extension"][0]["valueString"],
        "08".repeat(32)
    );
    assert_eq!(current["securityLabel"][0]["coding"][0]["code"], "N");
    assert_eq!(current["category"][0]["coding"][0]["code"], "epikrise");
    let retracted = record("r-secret");
    assert_eq!(retracted["status"], "entered-in-error");
    assert_eq!(retracted["securityLabel"][0]["coding"][0]["code"], "R");
    // A retraction's reason is not in the listings, so not in the export.
    assert!(!retracted.to_string().contains("deleted at the source"));
    assert_eq!(
        sub_extension(retracted, fhir::EXTENSION_LEDGER_TRANSACTION, "action").unwrap()["valueCode"],
        "retract_record"
    );

    let consent = find(&all, &story.consent_grant);
    assert_eq!(consent["status"], "active");
    assert_eq!(consent["provision"]["type"], "permit");
    assert_eq!(
        consent["provision"]["purpose"][0]["system"],
        fhir::SYSTEM_PURPOSE_OF_USE
    );
    assert_eq!(consent["provision"]["purpose"][0]["code"], "TREAT");
    assert_eq!(consent["provision"]["purpose"][1]["code"], "COC");
    assert_eq!(
        consent["provision"]["actor"][0]["reference"]["identifier"]["value"],
        MUNICIPALITY
    );
    assert_eq!(
        consent["provision"]["actor"][1]["reference"]["identifier"]["system"],
        fhir::SYSTEM_HPR_NUMBER
    );
    assert_eq!(consent["policyRule"]["coding"][0]["code"], "OPTIN");
    assert_eq!(
        consent["provision"]["period"]["start"],
        "2026-05-28T20:26:40.000Z"
    );
    // The window is half-open: FHIR's inclusive end is its last millisecond.
    assert_eq!(
        consent["provision"]["period"]["end"],
        "2026-06-02T00:26:39.999Z"
    );
    let statutory = find(&all, &story.statutory_grant);
    assert_eq!(statutory["status"], "inactive");
    assert_eq!(statutory["policyRule"]["coding"][0]["code"], "statutory");
    assert_eq!(
        statutory["provision"]["data"][0]["reference"]["identifier"]["value"],
        "r-secret"
    );
    assert!(!statutory.to_string().contains("no longer needed"));
    assert_eq!(
        statutory["provision"]["actor"][0]["reference"]["display"],
        format!("Institution {MUNICIPALITY} (department: akuttmottaket)")
    );
    assert_eq!(
        statutory["policyRule"]["text"],
        "statutory basis: pasientjournalloven § 19"
    );
    assert_eq!(
        statutory["meta"]["source"],
        format!("urn:varde:transaction:{}", story.revocation.to_hex())
    );
    let block = find(&all, &story.block);
    assert_eq!(block["status"], "inactive");
    assert_eq!(block["provision"]["type"], "deny");
    assert_eq!(
        block["provision"]["actor"][0]["reference"]["identifier"]["value"],
        STRANGER
    );
    assert_eq!(
        block["meta"]["source"],
        format!("urn:varde:transaction:{}", story.unblock.to_hex())
    );

    let classification = |id: &TransactionId| {
        sub_extension(
            find(&all, id),
            fhir::EXTENSION_ACCESS_CLASSIFICATION,
            "classification",
        )
        .unwrap()["valueCode"]
            .clone()
    };
    assert_eq!(classification(&story.granted_read), "authorised");
    assert_eq!(classification(&story.emergency_read), "emergency");
    assert_eq!(classification(&story.unauthorised_read), "unauthorised");
    let emergency = find(&all, &story.emergency_read);
    assert_eq!(
        emergency["purposeOfEvent"][0]["coding"][0]["code"],
        "ETREAT"
    );
    assert_eq!(
        sub_extension(emergency, fhir::EXTENSION_ACCESS_BASIS, "justification").unwrap()["valueString"],
        "unconscious at arrival"
    );
    let granted = find(&all, &story.granted_read);
    assert_eq!(granted["type"]["code"], "110110");
    assert_eq!(granted["agent"][0]["who"]["identifier"]["value"], "1234567");
    assert_eq!(
        granted["agent"][1]["who"]["identifier"]["value"],
        MUNICIPALITY
    );
    // The grant relied on is an entity of the event.
    assert!(
        granted["entity"].as_array().unwrap().iter().any(|entity| {
            entity["what"]["identifier"]["value"] == story.consent_grant.to_hex()
        })
    );
}

// Each resource names its transactions with their heights and block times, and each of them is
// a committed transaction at that height: what `varde proof tx` proves.
#[test]
fn every_resource_names_the_transactions_behind_it() {
    let (world, _) = story();
    let all = resources(&export(&world, AUDITOR, of_heights(1, 4)).unwrap().bundle);
    for resource in &all {
        let shapings: Vec<&Value> = resource["extension"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|extension| extension["url"] == fhir::EXTENSION_LEDGER_TRANSACTION)
            .collect();
        assert!(!shapings.is_empty(), "{resource:#}");
        let mut last = String::new();
        for shaping in shapings {
            let part = |name: &str| {
                shaping["extension"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|part| part["url"] == name)
                    .unwrap()
                    .clone()
            };
            let hex = part("transaction")["valueString"]
                .as_str()
                .unwrap()
                .to_owned();
            let id = TransactionId::from_slice(&varde_ledger::hex::decode(&hex).unwrap()).unwrap();
            let receipt = world.ledger.receipt(&id).unwrap().unwrap();
            assert!(receipt.is_applied());
            assert_eq!(part("height")["valueUnsignedInt"], receipt.height);
            last = hex;
        }
        assert_eq!(
            resource["meta"]["source"],
            format!("{}{last}", fhir::SOURCE_TRANSACTION_PREFIX)
        );
    }
}

/// The ids of every record, grant, block and event of the patient that `viewer` can list
/// (through the listings by subject, as `varde.v1.Query` serves them).
fn listable(world: &World, viewer: &Viewer<'_>) -> BTreeSet<String> {
    let store = world.ledger.store();
    let tokens = PageTokenKey::derive(b"node");
    let request = || PageRequest {
        page_size: 500,
        page_token: "",
        tokens: &tokens,
        scope: b"test",
    };
    let subject = patient();
    let viewer = viewer.clone().naming_subject(subject);
    let mut ids = BTreeSet::new();
    for record in query::records_by_subject(store, &subject, request(), |view, record| {
        visibility::may_see_record(view, &viewer, record)
    })
    .unwrap()
    .items
    {
        ids.insert(fhir::record_resource_id(&record.record));
    }
    for grant in query::grants_by_subject(store, &subject, request(), |_, grant| {
        Ok(visibility::may_see_grant(&viewer, grant))
    })
    .unwrap()
    .items
    {
        ids.insert(grant.grant_id.to_hex());
    }
    for block in query::access_blocks_by_subject(store, &subject, request(), |_, block| {
        Ok(visibility::may_see_access_block(&viewer, block))
    })
    .unwrap()
    .items
    {
        ids.insert(block.block_id.to_hex());
    }
    for event in query::access_events_by_subject(store, &subject, request(), |_, event| {
        Ok(visibility::may_see_access_event(&viewer, event))
    })
    .unwrap()
    .items
    {
        ids.insert(event.event_id.to_hex());
    }
    ids
}

fn exported_ids(world: &World, org: &str, request: ExportRequest) -> BTreeSet<String> {
    resources(&export(world, org, request).unwrap().bundle)
        .iter()
        .map(|resource| resource["id"].as_str().unwrap().to_owned())
        .collect()
}

// For every member and every selection, the export holds only what that member can list, and for
// the subject export exactly that; the grantee, the stranger and the consent authority see what
// the rule gives them.
#[test]
fn an_export_never_holds_what_the_caller_could_not_list() {
    let (world, story) = story();
    let of_patient = |request: ExportRequest| ExportRequest {
        subject: Some(patient()),
        ..request
    };
    for org in [HOSPITAL, MUNICIPALITY, CONSENT_AUTHORITY, STRANGER, AUDITOR] {
        let caller = world.member(org);
        let listable = listable(&world, &Viewer::new(&caller, NOW));
        assert_eq!(exported_ids(&world, org, of_subject()), listable, "{org}");
        for (from, to) in [(1, 4), (2, 3), (4, 4)] {
            let exported = exported_ids(&world, org, of_patient(of_heights(from, to)));
            assert!(exported.is_subset(&listable), "{org} {from}..={to}");
        }
        // Without a subject, only items of the patient and of the other patient exist; the
        // other patient's record is the hospital's and the auditor's alone.
        let other = fhir::record_resource_id(&varde_ledger::domain::RecordKey {
            custodian: OrgNumber::parse(HOSPITAL).unwrap(),
            record_id: "r-other".into(),
        });
        let mut plus_other = listable.clone();
        plus_other.insert(other.clone());
        let unnamed = exported_ids(&world, org, of_heights(1, 4));
        assert!(unnamed.is_subset(&plus_other), "{org}");
        assert_eq!(
            unnamed.contains(&other),
            org == HOSPITAL || org == AUDITOR,
            "{org}"
        );
    }
    // The grantee: r-1 through the grant of all records (not the restricted record, whose grant
    // was revoked), both grants, its own two reads, no block.
    let grantee = exported_ids(&world, MUNICIPALITY, of_subject());
    assert_eq!(grantee.len(), 5, "{grantee:?}");
    assert!(grantee.contains(&story.statutory_grant.to_hex()));
    assert!(!grantee.contains(&story.block.to_hex()));
    // The stranger: its own read only.
    assert_eq!(
        exported_ids(&world, STRANGER, of_subject()),
        BTreeSet::from([story.unauthorised_read.to_hex()])
    );
    // The consent authority without naming the patient: its grant and its block only.
    assert_eq!(
        exported_ids(&world, CONSENT_AUTHORITY, of_heights(1, 4)),
        BTreeSet::from([story.consent_grant.to_hex(), story.block.to_hex()])
    );
}

// Bad selections are refused with a reason, never cut silently; a range past the head is cut at
// the head.
#[test]
fn selections_are_bounded() {
    let (world, _) = story();
    let refused = |request: ExportRequest| export(&world, AUDITOR, request).unwrap_err();
    assert!(matches!(
        refused(ExportRequest {
            subject: None,
            heights: None
        }),
        ExportError::NothingSelected
    ));
    assert!(matches!(
        refused(of_heights(0, 3)),
        ExportError::InvalidHeightRange { .. }
    ));
    assert!(matches!(
        refused(of_heights(3, 2)),
        ExportError::InvalidHeightRange { .. }
    ));
    assert!(matches!(
        refused(of_heights(1, fhir::EXPORT_HEIGHTS_MAX + 1)),
        ExportError::TooManyHeights { .. }
    ));
    let past_head = export(&world, AUDITOR, of_heights(4, 9_000)).unwrap();
    assert_eq!(past_head.resource_count, 1);
    let empty = export(&world, AUDITOR, of_heights(5, 6)).unwrap();
    assert_eq!(empty.resource_count, 0);
    assert_eq!(empty.bundle["resourceType"], "Bundle");
    assert_eq!(empty.bundle["type"], "collection");
}

// A selection of more than EXPORT_RESOURCES_MAX resources is refused whole, for a subject and
// for a range, while a smaller range of the same ledger is exported.
#[test]
fn a_selection_beyond_the_resource_limit_is_refused() {
    let (mut world, _) = story();
    let per_block = 200;
    let extra = fhir::EXPORT_RESOURCES_MAX;
    for block in 0..extra.div_ceil(per_block) {
        let anchors = (block * per_block..((block + 1) * per_block).min(extra))
            .map(|index| (1, anchor(&format!("bulk-{index}"), patient(), false)))
            .collect();
        world.commit(T0 + 3 * HOUR + block as i64, anchors);
    }
    let head = world.ledger.head().unwrap().unwrap().height;
    for request in [of_subject(), of_heights(1, head)] {
        assert!(matches!(
            export(&world, AUDITOR, request).unwrap_err(),
            ExportError::TooManyResources { max } if max == fhir::EXPORT_RESOURCES_MAX
        ));
    }
    let last_block = export(&world, AUDITOR, of_heights(head, head)).unwrap();
    assert_eq!(last_block.resource_count, extra % per_block);
    assert!(last_block.to_json_bytes().len() < 4 * 1024 * 1024);
}
