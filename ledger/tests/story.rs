//! The end-to-end domain story over a MemoryStore, and bad input of every kind.

use ed25519_dalek::SigningKey;
use prost::Message;
use varde_ledger::access::AccessRequest;
use varde_ledger::domain::{
    AccessClassification, Purpose, RecordKey, RejectionReason, SubjectPseudonym,
};
use varde_ledger::identifiers::{HprNumber, OrgNumber};
use varde_ledger::membership::{Genesis, Institution, Role};
use varde_ledger::signing::{self, TransactionId};
use varde_ledger::wire::{FieldProblem, TransactionError};
use varde_ledger::{Ledger, pseudonym, query};
use varde_proto::v1::{self, transaction_body::Action};
use varde_storage::MemoryStore;

const CHAIN: &str = "varde-test";
const HOSPITAL: &str = "974760673";
const MUNICIPALITY: &str = "123456785";
const CONSENT_AUTHORITY: &str = "983044778";
const EMERGENCY_CLINIC: &str = "100000008";
const T0: i64 = 1_780_000_000_000;
const HOUR: i64 = 3_600_000;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn institution(org: &str, name: &str, roles: Vec<Role>, seed: u8) -> Institution {
    let roles_validator = roles.contains(&Role::Validator);
    Institution {
        org_number: OrgNumber::parse(org).unwrap(),
        name: name.to_owned(),
        roles,
        public_keys: vec![key(seed).verifying_key().to_bytes()],
        // The validator's consensus key is its own (seed + 100), never a submitting key.
        validator_key: roles_validator.then(|| key(seed + 100).verifying_key().to_bytes()),
    }
}

fn ledger() -> Ledger<MemoryStore> {
    let genesis = Genesis {
        chain_id: CHAIN.to_owned(),
        genesis_time_unix_ms: T0,
        institutions: vec![
            institution(
                HOSPITAL,
                "Universitetssykehuset",
                vec![Role::Validator, Role::Submitter],
                1,
            ),
            institution(MUNICIPALITY, "Kommunen", vec![Role::Submitter], 2),
            institution(
                CONSENT_AUTHORITY,
                "Samtykkeforvalter",
                vec![Role::ConsentAuthority, Role::Submitter],
                3,
            ),
            institution(EMERGENCY_CLINIC, "Legevakten", vec![Role::Submitter], 4),
        ],
    };
    Ledger::open(MemoryStore::new(), genesis).unwrap()
}

fn envelope(chain: &str, seed: u8, body: &v1::TransactionBody) -> v1::SignedTransaction {
    let bytes = body.encode_to_vec();
    let parts = signing::sign(chain, &key(seed), &bytes).unwrap();
    v1::SignedTransaction {
        body: bytes,
        signer_public_key: parts.signer_public_key.to_vec(),
        signature: parts.signature.to_vec(),
    }
}

fn body(action: Action) -> v1::TransactionBody {
    v1::TransactionBody {
        chain_id: CHAIN.to_owned(),
        expires_at_height: 50,
        action: Some(action),
        ..Default::default()
    }
}

/// Commits one block with the given (signer seed, action) transactions at `time`.
fn commit(
    ledger: &Ledger<MemoryStore>,
    time: i64,
    transactions: Vec<v1::SignedTransaction>,
) -> Vec<varde_ledger::domain::Receipt> {
    let executed = ledger.execute_block([9; 32], time, transactions).unwrap();
    let receipts = executed.receipts.clone();
    ledger.commit(executed).unwrap();
    receipts
}

fn subject() -> SubjectPseudonym {
    SubjectPseudonym(pseudonym::subject_pseudonym(&[0x42; 32], "31129956715"))
}

fn record_reference() -> v1::RecordReference {
    v1::RecordReference {
        custodian_org_number: HOSPITAL.to_owned(),
        record_id: "epikrise-1".to_owned(),
    }
}

fn anchor() -> Action {
    Action::AnchorRecord(v1::AnchorRecord {
        custodian_org_number: HOSPITAL.to_owned(),
        record_id: "epikrise-1".to_owned(),
        subject_pseudonym: subject().0.to_vec(),
        category_code: "epikrise".to_owned(),
        location_uri: "https://ehr.hospital.example/r/epikrise-1".to_owned(),
        content_sha256: vec![7; 32],
        confidentiality: v1::Confidentiality::Normal as i32,
        created_at_unix_ms: T0,
    })
}

fn request(accessor: &str, person: Option<&str>, purpose: Purpose) -> AccessRequest {
    AccessRequest {
        accessor: OrgNumber::parse(accessor).unwrap(),
        person: person.map(|hpr| HprNumber::parse(hpr).unwrap()),
        record: RecordKey {
            custodian: OrgNumber::parse(HOSPITAL).unwrap(),
            record_id: "epikrise-1".to_owned(),
        },
        purpose,
        at_unix_ms: 0,
    }
}

fn log_access(
    accessor: &str,
    hpr: &str,
    purpose: Purpose,
    at: i64,
    basis: v1::log_access::Basis,
) -> Action {
    Action::LogAccess(v1::LogAccess {
        accessor_org_number: accessor.to_owned(),
        accessor_hpr_number: hpr.to_owned(),
        record: Some(record_reference()),
        purpose: varde_ledger::wire::purpose_to_wire(purpose) as i32,
        accessed_at_unix_ms: at,
        attestation_sha256: vec![],
        basis: Some(basis),
    })
}

// The domain's story (ARCHITECTURE.md, "The domain"): anchor, deny, grant, allow, log, block, deny in emergency, emergency
// read elsewhere, revoke, and the patient's access log with every event and its basis.
#[test]
fn domain_story() {
    let ledger = ledger();
    // A hospital anchors a record for a pseudonymous patient.
    let receipts = commit(&ledger, T0, vec![envelope(CHAIN, 1, &body(anchor()))]);
    assert!(receipts[0].is_applied(), "{receipts:?}");

    // The municipality's CheckAccess is denied.
    let decision = ledger
        .check_access(request(MUNICIPALITY, Some("1234567"), Purpose::Treat), None)
        .unwrap();
    assert!(!decision.allowed);
    assert_eq!(decision.reason, "no valid grant in scope");
    assert_eq!(decision.height, 1);

    // The consent authority grants it TREAT access until a time.
    let grant = Action::GrantAccess(v1::GrantAccess {
        issuer_org_number: CONSENT_AUTHORITY.to_owned(),
        subject_pseudonym: subject().0.to_vec(),
        grantee_org_number: MUNICIPALITY.to_owned(),
        scope: Some(v1::GrantScope {
            scope: Some(v1::grant_scope::Scope::Record(record_reference())),
        }),
        purposes: vec![v1::PurposeOfUse::Treat as i32],
        valid_from_unix_ms: T0,
        valid_until_unix_ms: T0 + 24 * HOUR,
        basis: Some(v1::GrantBasis {
            basis: Some(v1::grant_basis::Basis::PatientConsent(
                v1::PatientConsent::default(),
            )),
        }),
        ..Default::default()
    });
    let grant_envelope = envelope(CHAIN, 3, &body(grant));
    let receipts = commit(&ledger, T0 + HOUR, vec![grant_envelope]);
    assert!(receipts[0].is_applied(), "{receipts:?}");
    let grant_id = receipts[0].transaction_id;

    // CheckAccess allows and names the grant; after the validity window it is denied.
    let decision = ledger
        .check_access(request(MUNICIPALITY, Some("1234567"), Purpose::Treat), None)
        .unwrap();
    assert!(decision.allowed);
    assert_eq!(decision.grant_used, Some(grant_id));
    let later = ledger
        .check_access(
            request(MUNICIPALITY, Some("1234567"), Purpose::Treat),
            Some(T0 + 25 * HOUR),
        )
        .unwrap();
    assert!(!later.allowed);

    // The municipality logs its read (authorised).
    let read = log_access(
        MUNICIPALITY,
        "1234567",
        Purpose::Treat,
        T0 + HOUR,
        v1::log_access::Basis::GrantId(grant_id.0.to_vec()),
    );
    let receipts = commit(
        &ledger,
        T0 + 2 * HOUR,
        vec![envelope(CHAIN, 2, &body(read))],
    );
    assert_eq!(
        receipts[0].outcome,
        varde_ledger::domain::Outcome::Applied {
            classification: Some(AccessClassification::Authorised)
        }
    );

    // The patient blocks the municipality (through the consent authority).
    let block = Action::BlockAccess(v1::BlockAccess {
        issuer_org_number: CONSENT_AUTHORITY.to_owned(),
        subject_pseudonym: subject().0.to_vec(),
        target: Some(v1::block_access::Target::InstitutionOrgNumber(
            MUNICIPALITY.to_owned(),
        )),
    });
    assert!(
        commit(
            &ledger,
            T0 + 3 * HOUR,
            vec![envelope(CHAIN, 3, &body(block))]
        )[0]
        .is_applied()
    );

    // CheckAccess is denied, even for ETREAT.
    for purpose in [Purpose::Treat, Purpose::Etreat] {
        let decision = ledger
            .check_access(request(MUNICIPALITY, Some("1234567"), purpose), None)
            .unwrap();
        assert!(!decision.allowed);
        assert_eq!(decision.reason, "blocked by patient");
    }

    // A third institution's emergency read is recorded as emergency and flagged.
    let decision = ledger
        .check_access(
            request(EMERGENCY_CLINIC, Some("7654321"), Purpose::Etreat),
            None,
        )
        .unwrap();
    assert!(decision.allowed && decision.emergency);
    let emergency = log_access(
        EMERGENCY_CLINIC,
        "7654321",
        Purpose::Etreat,
        T0 + 3 * HOUR,
        v1::log_access::Basis::Emergency(v1::EmergencyAccess {
            justification: "bevisstløs pasient".to_owned(),
        }),
    );
    // The blocked municipality reads anyway, claiming an emergency: recorded, unauthorised.
    let blocked_read = log_access(
        MUNICIPALITY,
        "1234567",
        Purpose::Etreat,
        T0 + 3 * HOUR,
        v1::log_access::Basis::Emergency(v1::EmergencyAccess {
            justification: "akutt".to_owned(),
        }),
    );
    let receipts = commit(
        &ledger,
        T0 + 4 * HOUR,
        vec![
            envelope(CHAIN, 4, &body(emergency)),
            envelope(CHAIN, 2, &body(blocked_read)),
        ],
    );
    assert_eq!(
        receipts[0].outcome,
        varde_ledger::domain::Outcome::Applied {
            classification: Some(AccessClassification::Emergency)
        }
    );
    assert_eq!(
        receipts[1].outcome,
        varde_ledger::domain::Outcome::Applied {
            classification: Some(AccessClassification::Unauthorised)
        }
    );

    // The grant is revoked; revoking twice is rejected.
    let revoke = Action::RevokeGrant(v1::RevokeGrant {
        issuer_org_number: CONSENT_AUTHORITY.to_owned(),
        grant_id: grant_id.0.to_vec(),
        reason: "samtykke trukket".to_owned(),
    });
    let mut again = body(revoke.clone());
    again.nonce = vec![1];
    let receipts = commit(
        &ledger,
        T0 + 5 * HOUR,
        vec![
            envelope(CHAIN, 3, &body(revoke)),
            envelope(CHAIN, 3, &again),
        ],
    );
    assert!(receipts[0].is_applied());
    assert_eq!(
        receipts[1].rejection(),
        Some(RejectionReason::GrantAlreadyRevoked)
    );

    // The patient's access log lists every event with its basis, in order, across pages.
    let tokens = varde_ledger::page_token::PageTokenKey::derive(b"test node");
    let page = |page_size: usize, page_token: &'static str| -> query::PageRequest<'_> {
        query::PageRequest {
            page_size,
            page_token,
            tokens: &tokens,
            scope: b"story",
        }
    };
    let first =
        query::access_events_by_subject(ledger.store(), &subject(), page(2, ""), everything)
            .unwrap();
    assert_eq!(first.items.len(), 2);
    assert!(!first.next_page_token.is_empty());
    let second = query::access_events_by_subject(
        ledger.store(),
        &subject(),
        query::PageRequest {
            page_token: &first.next_page_token,
            ..page(2, "")
        },
        everything,
    )
    .unwrap();
    assert!(second.next_page_token.is_empty());
    let events: Vec<_> = first.items.into_iter().chain(second.items).collect();
    let summary: Vec<(AccessClassification, bool, Option<TransactionId>, &str)> = events
        .iter()
        .map(|event| {
            (
                event.classification,
                event.flagged,
                event.grant_id,
                event.reason.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                AccessClassification::Authorised,
                false,
                Some(grant_id),
                "grant valid"
            ),
            (
                AccessClassification::Emergency,
                true,
                None,
                "emergency access"
            ),
            (
                AccessClassification::Unauthorised,
                true,
                None,
                "blocked by patient"
            ),
        ]
    );
    // Records and grants are listed by subject; the grant shows its revocation.
    assert_eq!(
        query::records_by_subject(ledger.store(), &subject(), page(0, ""), everything)
            .unwrap()
            .items
            .len(),
        1
    );
    let grants = query::grants_by_subject(ledger.store(), &subject(), page(0, ""), everything)
        .unwrap()
        .items;
    assert!(grants[0].revoked.is_some());
    assert_eq!(
        query::access_events_by_accessor(
            ledger.store(),
            &OrgNumber::parse(MUNICIPALITY).unwrap(),
            page(0, ""),
            everything
        )
        .unwrap()
        .items
        .len(),
        2
    );
    // The head carries real roots; the receipt is found by id.
    let head = ledger.head().unwrap().unwrap();
    assert_eq!(head.height, 6);
    assert_ne!(head.state_root, [0; 32]);
    assert!(ledger.receipt(&grant_id).unwrap().unwrap().is_applied());
}

// Malformed bytes, bad signatures, wrong chain and national-id-shaped values are typed errors
// at admission; none panics.
#[test]
fn bad_input_is_refused_at_admission() {
    let ledger = ledger();
    assert!(matches!(
        ledger.decode_transaction(b"\xff\xff\xff"),
        Err(TransactionError::MalformedEnvelope(_))
    ));
    let mut bad_body = envelope(CHAIN, 1, &body(anchor()));
    bad_body.body = vec![0xff, 0xff];
    assert!(matches!(
        ledger.decode_transaction(&bad_body.encode_to_vec()),
        Err(TransactionError::MalformedBody(_))
    ));
    let mut bad_signature = envelope(CHAIN, 1, &body(anchor()));
    bad_signature.signature[0] ^= 1;
    assert!(matches!(
        ledger.decode_transaction(&bad_signature.encode_to_vec()),
        Err(TransactionError::Signature(
            signing::SigningError::SignatureInvalid
        ))
    ));
    // Signed for another chain without naming it: a signature error.
    let mut unnamed = body(anchor());
    unnamed.chain_id = String::new();
    assert!(matches!(
        ledger.decode_transaction(&envelope("varde-other", 1, &unnamed).encode_to_vec()),
        Err(TransactionError::Signature(_))
    ));
    // Naming another chain: a wrong-chain error.
    let mut named = body(anchor());
    named.chain_id = "varde-other".to_owned();
    assert!(matches!(
        ledger.decode_transaction(&envelope("varde-other", 1, &named).encode_to_vec()),
        Err(TransactionError::WrongChain { .. })
    ));
    // A national id in a free-text field: refused, and the error does not echo it.
    let mut leaky = anchor();
    if let Action::AnchorRecord(anchor) = &mut leaky {
        anchor.record_id = "pas-311299 56715".to_owned();
    }
    let error = ledger
        .decode_transaction(&envelope(CHAIN, 1, &body(leaky)).encode_to_vec())
        .unwrap_err();
    match &error {
        TransactionError::Field(field) => {
            assert_eq!(field.field, "anchor_record.record_id");
            assert_eq!(field.problem, FieldProblem::NationalIdLike);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(!error.to_string().contains("56715"));
    // No expiry, oversized and an invalid organisation number.
    let mut no_expiry = body(anchor());
    no_expiry.expires_at_height = 0;
    assert!(matches!(
        ledger.decode_transaction(&envelope(CHAIN, 1, &no_expiry).encode_to_vec()),
        Err(TransactionError::Field(field)) if field.problem == FieldProblem::NoExpiry
    ));
    assert!(matches!(
        ledger.decode_transaction(&vec![0u8; 70_000]),
        Err(TransactionError::TooLarge { .. })
    ));
    let mut bad_org = anchor();
    if let Action::AnchorRecord(anchor) = &mut bad_org {
        anchor.custodian_org_number = "974760674".to_owned();
    }
    assert!(matches!(
        ledger.decode_transaction(&envelope(CHAIN, 1, &body(bad_org)).encode_to_vec()),
        Err(TransactionError::Field(field)) if field.field == "anchor_record.custodian_org_number"
    ));
    // A block containing an invalid transaction is refused as a whole.
    assert!(
        ledger
            .execute_block([9; 32], T0, vec![bad_signature])
            .is_err()
    );
}

// Unknown signer, wrong custodian, expired, duplicate and unknown record become rejected
// receipts with their reason codes.
#[test]
fn rule_violations_become_rejected_receipts() {
    let ledger = ledger();
    let unknown_signer = envelope(CHAIN, 99, &body(anchor()));
    let not_custodian = envelope(CHAIN, 2, &body(anchor()));
    let mut expired_body = body(anchor());
    expired_body.expires_at_height = 0;
    expired_body.expires_at_unix_ms = T0 - 1;
    let expired = envelope(CHAIN, 1, &expired_body);
    let applied = envelope(CHAIN, 1, &body(anchor()));
    let duplicate = applied.clone();
    let mut same_record = body(anchor());
    same_record.nonce = vec![9];
    let record_exists = envelope(CHAIN, 1, &same_record);
    let unknown_record = envelope(
        CHAIN,
        2,
        &body(
            log_access(
                MUNICIPALITY,
                "1234567",
                Purpose::Treat,
                T0,
                v1::log_access::Basis::GrantId(vec![1; 32]),
            )
            .clone(),
        ),
    );
    let mut unknown_record_body = body(log_access(
        MUNICIPALITY,
        "1234567",
        Purpose::Treat,
        T0,
        v1::log_access::Basis::GrantId(vec![1; 32]),
    ));
    if let Some(Action::LogAccess(log)) = &mut unknown_record_body.action {
        log.record.as_mut().unwrap().record_id = "missing".to_owned();
    }
    let unknown_record_log = envelope(CHAIN, 2, &unknown_record_body);
    let receipts = commit(
        &ledger,
        T0,
        vec![
            unknown_signer,
            not_custodian,
            expired,
            applied,
            duplicate,
            record_exists,
            unknown_record_log,
            unknown_record,
        ],
    );
    let reasons: Vec<Option<RejectionReason>> =
        receipts.iter().map(|receipt| receipt.rejection()).collect();
    assert_eq!(
        reasons,
        vec![
            Some(RejectionReason::UnknownSigner),
            Some(RejectionReason::NotCustodian),
            Some(RejectionReason::Expired),
            None,
            Some(RejectionReason::Duplicate),
            Some(RejectionReason::RecordExists),
            Some(RejectionReason::UnknownRecord),
            None,
        ]
    );
    // The last read named an unknown grant: recorded, classified unauthorised.
    assert_eq!(
        receipts[7].outcome,
        varde_ledger::domain::Outcome::Applied {
            classification: Some(AccessClassification::Unauthorised)
        }
    );
    // The receipt index keeps the applied occurrence, not the duplicate.
    assert!(
        ledger
            .receipt(&receipts[3].transaction_id)
            .unwrap()
            .unwrap()
            .is_applied()
    );
}

// Two ledgers executing the same blocks reach the same roots and block hashes (determinism).
#[test]
fn execution_is_deterministic() {
    let (first, second) = (ledger(), ledger());
    for ledger in [&first, &second] {
        commit(ledger, T0, vec![envelope(CHAIN, 1, &body(anchor()))]);
    }
    assert_eq!(first.head().unwrap(), second.head().unwrap());
}

/// The visibility predicate of a caller who sees everything (the rules are tested in
/// tests/visibility.rs).
fn everything<T>(
    _: &varde_ledger::state::StateView<'_, MemoryStore>,
    _: &T,
) -> Result<bool, varde_ledger::state::StateError> {
    Ok(true)
}

// A transaction refused for an expiry beyond the horizon is not remembered, but its id has a
// receipt: included again once the expiry is within reach, it is refused as a duplicate and
// changes nothing, so the receipt GetTransaction shows never changes.
#[test]
fn a_receipt_never_changes() {
    let ledger = ledger().with_replay_limits(varde_ledger::replay::ReplayLimits {
        height_horizon: 5,
        time_horizon_ms: HOUR,
    });
    let mut far_body = body(anchor());
    far_body.expires_at_height = 8;
    let far = envelope(CHAIN, 1, &far_body);
    let first = commit(&ledger, T0, vec![far.clone()]);
    assert_eq!(first[0].rejection(), Some(RejectionReason::ExpiryTooFar));
    for height in 2..=4 {
        commit(&ledger, T0 + i64::from(height), Vec::new());
    }
    let again = commit(&ledger, T0 + 10, vec![far]);
    assert_eq!(again[0].rejection(), Some(RejectionReason::Duplicate));
    let shown = ledger.receipt(&first[0].transaction_id).unwrap().unwrap();
    assert_eq!(shown, first[0], "the first receipt stands");
    let mut same_record = body(anchor());
    same_record.nonce = vec![9];
    same_record.expires_at_height = 10;
    let anchored = commit(&ledger, T0 + 11, vec![envelope(CHAIN, 1, &same_record)]);
    assert_eq!(
        anchored[0].rejection(),
        None,
        "the refused anchor was never applied, so its record is free"
    );
}
