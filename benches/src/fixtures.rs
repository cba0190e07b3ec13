//! A test network shared by `proof-sizes` and the criterion benchmarks: a genesis of four
//! validators (the second also a consent authority, the first also a submitter that reads by
//! grant) and a hospital, their keys, signed transactions of every action kind, commit
//! certificates, and a helper that commits a block of transactions without verifying their
//! signatures again.
//!
//! The chain id is as long as the one `proof-sizes` used before it moved here, so that its
//! encoded bundles keep their sizes byte for byte.

use ed25519_dalek::SigningKey;
use prost::Message;
use varde_consensus::{
    BlockId, CommitCertificate, CommitSignature, Evidence, SignedVote, Vote, VoteKind,
};
use varde_ledger::Ledger;
use varde_ledger::identifiers::OrgNumber;
use varde_ledger::membership::{Genesis, Institution, Role};
use varde_ledger::signing::{self, TransactionId};
use varde_ledger::stored::StoredValue;
use varde_proto::v1;
use varde_proto::v1::transaction_body::Action;
use varde_storage::Store;

pub const CHAIN: &str = "varde-bench-chain";
/// The genesis time; blocks are stamped from it on.
pub const T0: i64 = 1_780_000_000_000;
/// The hospital: custodian of the records, submitter.
pub const HOSPITAL: &str = "974760673";
pub const HOSPITAL_KEY: u8 = 1;
/// Validator institutions (organisation number, consensus key seed).
pub const VALIDATORS: [(&str, u8); 4] = [
    ("123456785", 11),
    ("983044778", 12),
    ("100000008", 13),
    ("993467049", 14),
];
/// The second validator institution is also the consent authority.
pub const CONSENT_AUTHORITY: &str = VALIDATORS[1].0;
pub const CONSENT_KEY: u8 = 2;
/// The first validator institution is also a submitter: it reads the hospital's records by grant
/// and logs its reads.
pub const READER: &str = VALIDATORS[0].0;
pub const READER_KEY: u8 = 3;
/// Every transaction's expiry height (within the default horizon of 100,000 heights).
pub const EXPIRES_AT_HEIGHT: u64 = 90_000;

/// The signing key with every byte `seed`.
pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

pub fn org(number: &str) -> OrgNumber {
    OrgNumber::parse(number).expect("a valid organisation number")
}

pub fn genesis() -> Genesis {
    let mut institutions: Vec<Institution> = VALIDATORS
        .iter()
        .map(|(number, seed)| {
            let (roles, public_keys) = match *number {
                CONSENT_AUTHORITY => (
                    vec![Role::Validator, Role::ConsentAuthority],
                    vec![key(CONSENT_KEY).verifying_key().to_bytes()],
                ),
                READER => (
                    vec![Role::Validator, Role::Submitter],
                    vec![key(READER_KEY).verifying_key().to_bytes()],
                ),
                _ => (vec![Role::Validator], vec![]),
            };
            Institution {
                org_number: org(number),
                name: format!("Validator {seed}"),
                roles,
                public_keys,
                validator_key: Some(key(*seed).verifying_key().to_bytes()),
            }
        })
        .collect();
    institutions.push(Institution {
        org_number: org(HOSPITAL),
        name: "Sykehuset".to_owned(),
        roles: vec![Role::Submitter],
        public_keys: vec![key(HOSPITAL_KEY).verifying_key().to_bytes()],
        validator_key: None,
    });
    Genesis {
        chain_id: CHAIN.to_owned(),
        genesis_time_unix_ms: T0,
        institutions,
    }
}

/// The validators' consensus keys in validator-index order (ascending public key bytes).
pub fn validator_keys_in_order() -> Vec<SigningKey> {
    let mut keys: Vec<SigningKey> = VALIDATORS.iter().map(|(_, seed)| key(*seed)).collect();
    keys.sort_by_key(|key| key.verifying_key().to_bytes());
    keys
}

/// A commit certificate for `block_id` at `height`, signed by all four validators.
pub fn certificate(height: u64, block_id: [u8; 32]) -> CommitCertificate {
    let mut certificate = CommitCertificate {
        height,
        round: 0,
        block_id: BlockId(block_id),
        signatures: Vec::new(),
    };
    for (validator, key) in validator_keys_in_order().iter().enumerate() {
        let validator = validator as u32;
        let signed = SignedVote::sign(CHAIN, certificate.precommit(validator), key);
        certificate.signatures.push(CommitSignature {
            validator,
            signature: signed.signature,
        });
    }
    certificate
}

/// A 32-byte subject pseudonym, distinct for each `n` (and never 11 ASCII digits in a row).
pub fn subject(n: u32) -> Vec<u8> {
    let mut pseudonym = vec![0x42; 28];
    pseudonym.extend_from_slice(&n.to_be_bytes());
    pseudonym
}

/// `action` signed by the key with seed `signer`, with `nonce` to tell identical actions apart.
pub fn signed_with_nonce(signer: u8, action: Action, nonce: Vec<u8>) -> v1::SignedTransaction {
    let body = v1::TransactionBody {
        chain_id: CHAIN.to_owned(),
        expires_at_height: EXPIRES_AT_HEIGHT,
        nonce,
        action: Some(action),
        ..Default::default()
    };
    let bytes = body.encode_to_vec();
    let parts = signing::sign(CHAIN, &key(signer), &bytes).expect("signs");
    v1::SignedTransaction {
        body: bytes,
        signer_public_key: parts.signer_public_key.to_vec(),
        signature: parts.signature.to_vec(),
    }
}

pub fn signed_by(signer: u8, action: Action) -> v1::SignedTransaction {
    signed_with_nonce(signer, action, Vec::new())
}

/// The id of an envelope signed for [`CHAIN`].
pub fn id_of(envelope: &v1::SignedTransaction) -> TransactionId {
    signing::envelope_id(CHAIN, envelope).expect("an envelope of this chain")
}

fn record_id(record: u64) -> String {
    format!("notat-{record}")
}

/// The hospital anchors record `notat-{record}` of subject [`subject`]`(subject_number)`.
pub fn anchor_of(record: u64, subject_number: Option<u32>) -> v1::SignedTransaction {
    signed_by(
        HOSPITAL_KEY,
        Action::AnchorRecord(v1::AnchorRecord {
            custodian_org_number: HOSPITAL.to_owned(),
            record_id: record_id(record),
            subject_pseudonym: subject_number.map_or_else(|| vec![0x42; 32], subject),
            category_code: "notat".to_owned(),
            location_uri: format!("https://ehr.example/r/{record}"),
            content_sha256: vec![7; 32],
            confidentiality: v1::Confidentiality::Normal as i32,
            created_at_unix_ms: T0,
        }),
    )
}

/// The hospital anchors record `notat-{record}` of the subject with pseudonym `[0x42; 32]`.
pub fn anchor(record: u64) -> v1::SignedTransaction {
    anchor_of(record, None)
}

/// The hospital supersedes record `notat-{record}` with a new version.
pub fn supersede(record: u64) -> v1::SignedTransaction {
    signed_by(
        HOSPITAL_KEY,
        Action::SupersedeRecord(v1::SupersedeRecord {
            custodian_org_number: HOSPITAL.to_owned(),
            record_id: record_id(record),
            category_code: "notat".to_owned(),
            location_uri: format!("https://ehr.example/r/{record}/v2"),
            content_sha256: vec![8; 32],
            confidentiality: v1::Confidentiality::Normal as i32,
            created_at_unix_ms: T0 + 1,
        }),
    )
}

/// The hospital retracts record `notat-{record}`.
pub fn retract(record: u64) -> v1::SignedTransaction {
    signed_by(
        HOSPITAL_KEY,
        Action::RetractRecord(v1::RetractRecord {
            custodian_org_number: HOSPITAL.to_owned(),
            record_id: record_id(record),
            reason: "slettet i kildesystemet".to_owned(),
        }),
    )
}

fn treat_for_a_year() -> (Vec<i32>, i64, i64) {
    (
        vec![v1::PurposeOfUse::Treat as i32],
        T0,
        T0 + 365 * 86_400_000,
    )
}

/// The hospital grants the reader TREAT access to its record `notat-{record}` of the subject with
/// pseudonym `[0x42; 32]`, for a year, on the patient's consent.
pub fn grant_of_record(record: u64) -> v1::SignedTransaction {
    let (purposes, valid_from_unix_ms, valid_until_unix_ms) = treat_for_a_year();
    signed_by(
        HOSPITAL_KEY,
        Action::GrantAccess(v1::GrantAccess {
            issuer_org_number: HOSPITAL.to_owned(),
            subject_pseudonym: vec![0x42; 32],
            grantee_org_number: READER.to_owned(),
            scope: Some(v1::GrantScope {
                scope: Some(v1::grant_scope::Scope::Record(v1::RecordReference {
                    custodian_org_number: HOSPITAL.to_owned(),
                    record_id: record_id(record),
                })),
            }),
            purposes,
            valid_from_unix_ms,
            valid_until_unix_ms,
            basis: Some(v1::GrantBasis {
                basis: Some(v1::grant_basis::Basis::PatientConsent(v1::PatientConsent {
                    reference: format!("samtykke-{record}"),
                })),
            }),
            ..Default::default()
        }),
    )
}

/// The consent authority grants `grantee` TREAT access to all records of subject
/// [`subject`]`(subject_number)` for a year, on a statutory basis; `nonce` tells apart grants
/// that are otherwise the same.
pub fn grant_of_all_records(
    subject_number: u32,
    grantee: &str,
    nonce: u32,
) -> v1::SignedTransaction {
    let (purposes, valid_from_unix_ms, valid_until_unix_ms) = treat_for_a_year();
    signed_with_nonce(
        CONSENT_KEY,
        Action::GrantAccess(v1::GrantAccess {
            issuer_org_number: CONSENT_AUTHORITY.to_owned(),
            subject_pseudonym: subject(subject_number),
            grantee_org_number: grantee.to_owned(),
            scope: Some(v1::GrantScope {
                scope: Some(v1::grant_scope::Scope::AllRecords(v1::AllRecords {})),
            }),
            purposes,
            valid_from_unix_ms,
            valid_until_unix_ms,
            basis: Some(v1::GrantBasis {
                basis: Some(v1::grant_basis::Basis::Statutory(v1::StatutoryBasis {
                    name: "pasientjournalloven § 19".to_owned(),
                })),
            }),
            ..Default::default()
        }),
        nonce.to_be_bytes().to_vec(),
    )
}

/// The hospital revokes its grant `grant_id`.
pub fn revoke(grant_id: TransactionId) -> v1::SignedTransaction {
    signed_by(
        HOSPITAL_KEY,
        Action::RevokeGrant(v1::RevokeGrant {
            issuer_org_number: HOSPITAL.to_owned(),
            grant_id: grant_id.0.to_vec(),
            reason: "tilbakekalt".to_owned(),
        }),
    )
}

/// The consent authority registers subject [`subject`]`(subject_number)`'s block of
/// institution `target`.
pub fn block_of(subject_number: u32, target: &str) -> v1::SignedTransaction {
    signed_by(
        CONSENT_KEY,
        Action::BlockAccess(v1::BlockAccess {
            issuer_org_number: CONSENT_AUTHORITY.to_owned(),
            subject_pseudonym: subject(subject_number),
            target: Some(v1::block_access::Target::InstitutionOrgNumber(
                target.to_owned(),
            )),
        }),
    )
}

/// The consent authority lifts block `block_id`.
pub fn unblock(block_id: TransactionId) -> v1::SignedTransaction {
    signed_by(
        CONSENT_KEY,
        Action::UnblockAccess(v1::UnblockAccess {
            issuer_org_number: CONSENT_AUTHORITY.to_owned(),
            block_id: block_id.0.to_vec(),
        }),
    )
}

/// The reader logs one TREAT read of the hospital's record `notat-{record}` at `at_unix_ms`,
/// relying on grant `grant_id`.
pub fn log_access(record: u64, grant_id: TransactionId, at_unix_ms: i64) -> v1::SignedTransaction {
    signed_by(
        READER_KEY,
        Action::LogAccess(v1::LogAccess {
            accessor_org_number: READER.to_owned(),
            accessor_hpr_number: "9144900".to_owned(),
            record: Some(v1::RecordReference {
                custodian_org_number: HOSPITAL.to_owned(),
                record_id: record_id(record),
            }),
            purpose: v1::PurposeOfUse::Treat as i32,
            accessed_at_unix_ms: at_unix_ms,
            attestation_sha256: vec![9; 32],
            basis: Some(v1::log_access::Basis::GrantId(grant_id.0.to_vec())),
        }),
    )
}

/// The reader's validator reports the last validator (in index order) for two precommits at
/// `height`, round 0, for different blocks; the evidence verifies against the chain's set.
pub fn report_double_precommit(height: u64) -> v1::SignedTransaction {
    let keys = validator_keys_in_order();
    let offender = keys.len() - 1;
    let vote = |block: u8| {
        SignedVote::sign(
            CHAIN,
            Vote {
                kind: VoteKind::Precommit,
                height,
                round: 0,
                block_id: Some(BlockId([block; 32])),
                validator: offender as u32,
            },
            &keys[offender],
        )
    };
    let evidence = Evidence::DuplicateVote {
        first: vote(1),
        second: vote(2),
    };
    let reporter = key(VALIDATORS[0].1);
    signing::sign_misbehaviour_report(CHAIN, &reporter, &evidence, EXPIRES_AT_HEIGHT, &[])
        .expect("signs")
}

/// The time of the next block of `ledger`: a second after the head's (or after genesis).
pub fn next_block_time<S: Store>(ledger: &Ledger<S>) -> i64 {
    ledger
        .head()
        .expect("reads the head")
        .map_or(T0, |head| head.time_unix_ms)
        + 1_000
}

/// Executes `transactions` as the next block without verifying their signatures again (they were
/// just made here), certifies it by all validators and commits it. Every transaction must apply;
/// returns their ids in block order.
pub fn commit_prechecked<S: Store>(
    ledger: &Ledger<S>,
    transactions: Vec<v1::SignedTransaction>,
) -> Vec<TransactionId> {
    let verified = vec![true; transactions.len()];
    let mut executed = ledger
        .execute_block_prechecked([9; 32], next_block_time(ledger), transactions, &verified)
        .expect("executes");
    let ids = executed
        .receipts
        .iter()
        .map(|receipt| {
            assert!(receipt.is_applied(), "{receipt:?}");
            receipt.transaction_id
        })
        .collect();
    let height = executed.head.height;
    executed.attach_certificate(StoredValue::encode(&certificate(
        height,
        executed.block_hash,
    )));
    ledger.commit(executed).expect("commits");
    ids
}
