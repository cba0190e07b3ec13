//! The audit trail cannot be backdated: a logged read must lie within 24 hours before and 5
//! minutes after the block time, an emergency read needs purpose ETREAT, and a read is classified
//! at its reported time (a grant revoked after the read still covers it; a patient block counts
//! if it held at that time).

use ed25519_dalek::SigningKey;
use prost::Message;
use varde_ledger::domain::{AccessClassification, Outcome, Receipt, RejectionReason};
use varde_ledger::execution::{ACCESS_TIME_AFTER_BLOCK_MAX_MS, ACCESS_TIME_BEFORE_BLOCK_MAX_MS};
use varde_ledger::identifiers::OrgNumber;
use varde_ledger::membership::{Genesis, Institution, Role};
use varde_ledger::signing;
use varde_ledger::wire::{FieldProblem, TransactionError};
use varde_ledger::{Ledger, query};
use varde_proto::v1::{self, transaction_body::Action};
use varde_storage::MemoryStore;

const CHAIN: &str = "varde-test";
const HOSPITAL: &str = "974760673";
const MUNICIPALITY: &str = "123456785";
const CONSENT_AUTHORITY: &str = "983044778";
const T0: i64 = 1_780_000_000_000;
const HOUR: i64 = 3_600_000;
const MINUTE: i64 = 60_000;
/// Key seeds.
const HOSPITAL_KEY: u8 = 1;
const MUNICIPALITY_KEY: u8 = 2;
const CONSENT_AUTHORITY_KEY: u8 = 3;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn institution(org: &str, roles: Vec<Role>, seed: u8) -> Institution {
    let validator = roles.contains(&Role::Validator);
    Institution {
        org_number: OrgNumber::parse(org).unwrap(),
        name: format!("Institusjon {seed}"),
        roles,
        public_keys: vec![key(seed).verifying_key().to_bytes()],
        validator_key: validator.then(|| key(seed + 100).verifying_key().to_bytes()),
    }
}

fn ledger() -> Ledger<MemoryStore> {
    let genesis = Genesis {
        chain_id: CHAIN.to_owned(),
        genesis_time_unix_ms: T0,
        institutions: vec![
            institution(
                HOSPITAL,
                vec![Role::Validator, Role::Submitter],
                HOSPITAL_KEY,
            ),
            institution(MUNICIPALITY, vec![Role::Submitter], MUNICIPALITY_KEY),
            institution(
                CONSENT_AUTHORITY,
                vec![Role::ConsentAuthority],
                CONSENT_AUTHORITY_KEY,
            ),
        ],
    };
    Ledger::open(MemoryStore::new(), genesis).unwrap()
}

fn envelope(seed: u8, action: Action, nonce: u8) -> v1::SignedTransaction {
    let body = v1::TransactionBody {
        chain_id: CHAIN.to_owned(),
        expires_at_height: 50,
        nonce: vec![nonce],
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
}

fn commit(
    ledger: &Ledger<MemoryStore>,
    time: i64,
    transactions: Vec<v1::SignedTransaction>,
) -> Vec<Receipt> {
    let executed = ledger.execute_block([9; 32], time, transactions).unwrap();
    let receipts = executed.receipts.clone();
    ledger.commit(executed).unwrap();
    receipts
}

fn record() -> v1::RecordReference {
    v1::RecordReference {
        custodian_org_number: HOSPITAL.to_owned(),
        record_id: "epikrise-1".to_owned(),
    }
}

fn subject() -> Vec<u8> {
    vec![0x42; 32]
}

/// A ledger with the hospital's record (at T0) and a TREAT grant to the municipality valid from
/// T0 for 48 hours (issued at T0 + 1 h); returns the grant id.
fn with_record_and_grant() -> (Ledger<MemoryStore>, Vec<u8>) {
    let ledger = ledger();
    let anchor = Action::AnchorRecord(v1::AnchorRecord {
        custodian_org_number: HOSPITAL.to_owned(),
        record_id: "epikrise-1".to_owned(),
        subject_pseudonym: subject(),
        category_code: "epikrise".to_owned(),
        location_uri: "https://ehr.hospital.example/r/epikrise-1".to_owned(),
        content_sha256: vec![7; 32],
        confidentiality: v1::Confidentiality::Normal as i32,
        created_at_unix_ms: T0,
    });
    assert!(commit(&ledger, T0, vec![envelope(HOSPITAL_KEY, anchor, 0)])[0].is_applied());
    let grant = Action::GrantAccess(v1::GrantAccess {
        issuer_org_number: CONSENT_AUTHORITY.to_owned(),
        subject_pseudonym: subject(),
        grantee_org_number: MUNICIPALITY.to_owned(),
        scope: Some(v1::GrantScope {
            scope: Some(v1::grant_scope::Scope::Record(record())),
        }),
        purposes: vec![v1::PurposeOfUse::Treat as i32],
        valid_from_unix_ms: T0,
        valid_until_unix_ms: T0 + 48 * HOUR,
        basis: Some(v1::GrantBasis {
            basis: Some(v1::grant_basis::Basis::PatientConsent(
                v1::PatientConsent::default(),
            )),
        }),
        ..Default::default()
    });
    let receipts = commit(
        &ledger,
        T0 + HOUR,
        vec![envelope(CONSENT_AUTHORITY_KEY, grant, 0)],
    );
    assert!(receipts[0].is_applied(), "{receipts:?}");
    let grant_id = receipts[0].transaction_id.0.to_vec();
    (ledger, grant_id)
}

fn read(at: i64, purpose: v1::PurposeOfUse, basis: v1::log_access::Basis) -> Action {
    Action::LogAccess(v1::LogAccess {
        accessor_org_number: MUNICIPALITY.to_owned(),
        accessor_hpr_number: "1234567".to_owned(),
        record: Some(record()),
        purpose: purpose as i32,
        accessed_at_unix_ms: at,
        attestation_sha256: Vec::new(),
        basis: Some(basis),
    })
}

fn granted_read(at: i64, grant_id: &[u8]) -> Action {
    read(
        at,
        v1::PurposeOfUse::Treat,
        v1::log_access::Basis::GrantId(grant_id.to_vec()),
    )
}

fn events_of_subject(ledger: &Ledger<MemoryStore>) -> usize {
    let subject = varde_ledger::domain::SubjectPseudonym(subject().try_into().unwrap());
    all_events(ledger, &subject, 100).unwrap().items.len()
}

fn classification(receipt: &Receipt) -> Option<AccessClassification> {
    match &receipt.outcome {
        Outcome::Applied { classification } => *classification,
        Outcome::Rejected { reason, detail } => panic!("rejected: {reason:?} {detail}"),
    }
}

fn rejected(receipt: &Receipt) -> (RejectionReason, &str) {
    match &receipt.outcome {
        Outcome::Rejected { reason, detail } => (*reason, detail),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

// The window is 24 hours before and 5 minutes after the block time.
#[test]
fn the_window_is_a_day_before_and_five_minutes_after() {
    assert_eq!(ACCESS_TIME_BEFORE_BLOCK_MAX_MS, 24 * HOUR);
    assert_eq!(ACCESS_TIME_AFTER_BLOCK_MAX_MS, 5 * MINUTE);
}

// Both ends of the window are inside it; one millisecond beyond either end is rejected with
// ACCESS_TIME_OUTSIDE_WINDOW, a detail that states the window, and no access event.
#[test]
fn each_boundary_of_the_window() {
    let (ledger, grant_id) = with_record_and_grant();
    let block_time = T0 + 30 * HOUR;
    let earliest = block_time - 24 * HOUR;
    let latest = block_time + 5 * MINUTE;
    let receipts = commit(
        &ledger,
        block_time,
        vec![
            envelope(MUNICIPALITY_KEY, granted_read(earliest, &grant_id), 1),
            envelope(MUNICIPALITY_KEY, granted_read(earliest - 1, &grant_id), 2),
            envelope(MUNICIPALITY_KEY, granted_read(latest, &grant_id), 3),
            envelope(MUNICIPALITY_KEY, granted_read(latest + 1, &grant_id), 4),
            envelope(MUNICIPALITY_KEY, granted_read(block_time, &grant_id), 5),
        ],
    );
    for inside in [0, 2, 4] {
        assert_eq!(
            classification(&receipts[inside]),
            Some(AccessClassification::Authorised),
            "receipt {inside}"
        );
    }
    for (outside, side) in [(1, "before"), (3, "after")] {
        let (reason, detail) = rejected(&receipts[outside]);
        assert_eq!(reason, RejectionReason::AccessTimeOutsideWindow);
        assert!(detail.contains(side), "{detail}");
        assert!(detail.contains("24 hours"), "{detail}");
        assert!(detail.contains("5 minutes"), "{detail}");
        assert!(
            detail.contains(&format!("[{earliest}, {latest}]")),
            "{detail}"
        );
    }
    assert_eq!(events_of_subject(&ledger), 3);
    // The rejected reports are still on the ledger, with their receipts.
    assert!(
        ledger
            .receipt(&receipts[1].transaction_id)
            .unwrap()
            .is_some()
    );
}

// Far outside (a week back, an hour ahead, the extremes of i64) is rejected too, without
// overflow, and an emergency read outside the window is no exception.
#[test]
fn far_outside_and_emergencies() {
    let (ledger, grant_id) = with_record_and_grant();
    let block_time = T0 + 2 * HOUR;
    let emergency = v1::log_access::Basis::Emergency(v1::EmergencyAccess {
        justification: "bevisstløs pasient".to_owned(),
    });
    let receipts = commit(
        &ledger,
        block_time,
        vec![
            envelope(
                MUNICIPALITY_KEY,
                granted_read(block_time - 7 * 24 * HOUR, &grant_id),
                1,
            ),
            envelope(
                MUNICIPALITY_KEY,
                granted_read(block_time + HOUR, &grant_id),
                2,
            ),
            envelope(MUNICIPALITY_KEY, granted_read(i64::MIN, &grant_id), 3),
            envelope(MUNICIPALITY_KEY, granted_read(i64::MAX, &grant_id), 4),
            envelope(
                MUNICIPALITY_KEY,
                read(
                    block_time - 25 * HOUR,
                    v1::PurposeOfUse::Etreat,
                    emergency.clone(),
                ),
                5,
            ),
            envelope(
                MUNICIPALITY_KEY,
                read(block_time - HOUR, v1::PurposeOfUse::Etreat, emergency),
                6,
            ),
        ],
    );
    for (index, receipt) in receipts[..5].iter().enumerate() {
        assert_eq!(
            rejected(receipt).0,
            RejectionReason::AccessTimeOutsideWindow,
            "receipt {index}"
        );
    }
    assert_eq!(
        classification(&receipts[5]),
        Some(AccessClassification::Emergency)
    );
    assert_eq!(events_of_subject(&ledger), 1);
}

// An emergency basis needs purpose ETREAT: any other purpose is refused at admission, naming the
// purpose field; ETREAT passes.
#[test]
fn an_emergency_read_needs_etreat() {
    let ledger = ledger();
    let emergency = v1::log_access::Basis::Emergency(v1::EmergencyAccess {
        justification: "akutt".to_owned(),
    });
    for purpose in [
        v1::PurposeOfUse::Treat,
        v1::PurposeOfUse::Coc,
        v1::PurposeOfUse::Hresch,
    ] {
        let transaction = envelope(MUNICIPALITY_KEY, read(T0, purpose, emergency.clone()), 1);
        match ledger.decode_transaction(&transaction.encode_to_vec()) {
            Err(TransactionError::Field(error)) => {
                assert_eq!(error.field, "log_access.purpose");
                assert_eq!(error.problem, FieldProblem::EmergencyNeedsEtreat);
                assert!(error.to_string().contains("ETREAT"), "{error}");
            }
            other => panic!("expected a field error for {purpose:?}, got {other:?}"),
        }
    }
    let etreat = envelope(
        MUNICIPALITY_KEY,
        read(T0, v1::PurposeOfUse::Etreat, emergency),
        1,
    );
    assert!(ledger.decode_transaction(&etreat.encode_to_vec()).is_ok());
    // ETREAT under a grant or without a basis is no emergency claim and stays admissible.
    let etreat_with_grant = envelope(
        MUNICIPALITY_KEY,
        read(
            T0,
            v1::PurposeOfUse::Etreat,
            v1::log_access::Basis::GrantId(vec![1; 32]),
        ),
        2,
    );
    assert!(
        ledger
            .decode_transaction(&etreat_with_grant.encode_to_vec())
            .is_ok()
    );
}

// A read is classified at its reported time: a grant revoked after the read but before the block
// that logs it still covers the read (it was authorised when it happened); a read at or after the
// revocation is unauthorised, however soon it is logged.
#[test]
fn a_revocation_after_the_read_does_not_unauthorise_it() {
    let (ledger, grant_id) = with_record_and_grant();
    let revoked_at = T0 + 10 * HOUR;
    let revoke = Action::RevokeGrant(v1::RevokeGrant {
        issuer_org_number: CONSENT_AUTHORITY.to_owned(),
        grant_id: grant_id.clone(),
        reason: "samtykke trukket".to_owned(),
    });
    assert!(
        commit(
            &ledger,
            revoked_at,
            vec![envelope(CONSENT_AUTHORITY_KEY, revoke, 1)]
        )[0]
        .is_applied()
    );
    let receipts = commit(
        &ledger,
        revoked_at + 2 * HOUR,
        vec![
            envelope(MUNICIPALITY_KEY, granted_read(revoked_at - 1, &grant_id), 1),
            envelope(MUNICIPALITY_KEY, granted_read(revoked_at, &grant_id), 2),
        ],
    );
    assert_eq!(
        classification(&receipts[0]),
        Some(AccessClassification::Authorised)
    );
    assert_eq!(
        classification(&receipts[1]),
        Some(AccessClassification::Unauthorised)
    );
    let subject = varde_ledger::domain::SubjectPseudonym(subject().try_into().unwrap());
    let events = all_events(&ledger, &subject, 10).unwrap().items;
    assert_eq!(events[0].grant_id.map(|id| id.0.to_vec()), Some(grant_id));
    assert_eq!(events[1].reason, "grant revoked");
    assert!(events[1].flagged);
}

fn block_municipality(ledger: &Ledger<MemoryStore>, at: i64) -> Vec<u8> {
    let block = Action::BlockAccess(v1::BlockAccess {
        issuer_org_number: CONSENT_AUTHORITY.to_owned(),
        subject_pseudonym: subject(),
        target: Some(v1::block_access::Target::InstitutionOrgNumber(
            MUNICIPALITY.to_owned(),
        )),
    });
    let receipts = commit(ledger, at, vec![envelope(CONSENT_AUTHORITY_KEY, block, 7)]);
    assert!(receipts[0].is_applied(), "{receipts:?}");
    receipts[0].transaction_id.0.to_vec()
}

// Patient blocks are judged at the reported time too, over [placed, lifted) in block times: a
// block placed after the read does not flag it; a read while the block held is unauthorised even
// when it is logged after the block was lifted; a read after the lift is judged by its grant.
#[test]
fn a_block_counts_if_it_held_when_the_read_happened() {
    let (ledger, grant_id) = with_record_and_grant();
    let placed = T0 + 5 * HOUR;
    let block_id = block_municipality(&ledger, placed);
    let lifted = T0 + 8 * HOUR;
    let unblock = Action::UnblockAccess(v1::UnblockAccess {
        issuer_org_number: CONSENT_AUTHORITY.to_owned(),
        block_id,
    });
    assert!(
        commit(
            &ledger,
            lifted,
            vec![envelope(CONSENT_AUTHORITY_KEY, unblock, 8)]
        )[0]
        .is_applied()
    );
    let receipts = commit(
        &ledger,
        lifted + HOUR,
        vec![
            envelope(MUNICIPALITY_KEY, granted_read(placed - 1, &grant_id), 1),
            envelope(MUNICIPALITY_KEY, granted_read(placed, &grant_id), 2),
            envelope(MUNICIPALITY_KEY, granted_read(lifted - 1, &grant_id), 3),
            envelope(MUNICIPALITY_KEY, granted_read(lifted, &grant_id), 4),
        ],
    );
    let classes: Vec<_> = receipts.iter().map(classification).collect();
    assert_eq!(
        classes,
        vec![
            Some(AccessClassification::Authorised),
            Some(AccessClassification::Unauthorised),
            Some(AccessClassification::Unauthorised),
            Some(AccessClassification::Authorised),
        ]
    );
    let subject = varde_ledger::domain::SubjectPseudonym(subject().try_into().unwrap());
    let events = all_events(&ledger, &subject, 10).unwrap().items;
    assert_eq!(events[1].reason, "blocked by patient");
    assert_eq!(events[2].reason, "blocked by patient");
}

/// The subject's access events as an auditor sees them (the visibility rule has its own tests).
fn all_events(
    ledger: &Ledger<MemoryStore>,
    subject: &varde_ledger::domain::SubjectPseudonym,
    page_size: usize,
) -> Result<
    varde_ledger::query::Page<varde_ledger::domain::AccessEvent>,
    varde_ledger::query::QueryError,
> {
    let tokens = varde_ledger::page_token::PageTokenKey::derive(b"test node");
    query::access_events_by_subject(
        ledger.store(),
        subject,
        query::PageRequest {
            page_size,
            page_token: "",
            tokens: &tokens,
            scope: b"access window",
        },
        |_, _| Ok(true),
    )
}
