//! Misbehaviour reports: equivocation evidence from validators becomes a ledger record, once.

use ed25519_dalek::SigningKey;
use prost::Message;
use varde_consensus::{
    BlockId, Ed25519Verifier, Evidence, Proposal, SignedProposal, SignedVote, ValidatorSet,
    VerifyingKey, Vote, VoteKind,
};
use varde_ledger::Ledger;
use varde_ledger::consensus_wire;
use varde_ledger::domain::{MisbehaviourKind, Outcome, Receipt, RejectionReason};
use varde_ledger::identifiers::OrgNumber;
use varde_ledger::membership::{Genesis, Institution, Role};
use varde_ledger::query::QueryError;
use varde_ledger::signing::sign_misbehaviour_report;
use varde_ledger::wire::{FieldProblem, TransactionError};
use varde_proto::v1;
use varde_storage::MemoryStore;

const CHAIN: &str = "varde-test";
const T0: i64 = 1_780_000_000_000;
/// Validator institutions (organisation number, key seed).
const VALIDATORS: [(&str, u8); 4] = [
    ("974760673", 11),
    ("123456785", 12),
    ("983044778", 13),
    ("100000008", 14),
];
/// A submitter without the validator role.
const SUBMITTER: (&str, u8) = ("993467049", 20);
/// The validator that equivocates in these tests.
const OFFENDER: u8 = 12;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// A validator institution's consensus key has `seed` and its submitting key `seed + 100`; any
/// other institution's submitting key has `seed`.
fn institution(org: &str, roles: Vec<Role>, seed: u8) -> Institution {
    let validator = roles.contains(&Role::Validator);
    Institution {
        org_number: OrgNumber::parse(org).unwrap(),
        name: format!("Institusjon {seed}"),
        roles,
        public_keys: vec![
            key(if validator { seed + 100 } else { seed })
                .verifying_key()
                .to_bytes(),
        ],
        validator_key: validator.then(|| key(seed).verifying_key().to_bytes()),
    }
}

fn ledger() -> Ledger<MemoryStore> {
    let mut institutions: Vec<Institution> = VALIDATORS
        .iter()
        .map(|(org, seed)| institution(org, vec![Role::Validator], *seed))
        .collect();
    institutions.push(institution(SUBMITTER.0, vec![Role::Submitter], SUBMITTER.1));
    let genesis = Genesis {
        chain_id: CHAIN.to_owned(),
        genesis_time_unix_ms: T0,
        institutions,
    };
    Ledger::open(MemoryStore::new(), genesis).unwrap()
}

/// The consensus validator set as the node builds it from the genesis.
fn validator_set(ledger: &Ledger<MemoryStore>) -> ValidatorSet {
    let keys = ledger
        .membership()
        .validator_keys()
        .iter()
        .map(|key| VerifyingKey::from_bytes(key).unwrap())
        .collect();
    ValidatorSet::new(keys).unwrap()
}

fn index_of(ledger: &Ledger<MemoryStore>, seed: u8) -> u32 {
    validator_set(ledger)
        .index_of(&key(seed).verifying_key())
        .unwrap()
}

/// A vote of `kind` by the validator with key `seed`, signed with `signer` (normally the same).
fn vote(
    ledger: &Ledger<MemoryStore>,
    chain: &str,
    seed: u8,
    signer: u8,
    kind: VoteKind,
    (height, round): (u64, u32),
    block: u8,
) -> SignedVote {
    let vote = Vote {
        kind,
        height,
        round,
        block_id: Some(BlockId([block; 32])),
        validator: index_of(ledger, seed),
    };
    SignedVote::sign(chain, vote, &key(signer))
}

/// Two precommits of the offender at `slot`, for blocks `a` and `b`.
fn double_precommit(ledger: &Ledger<MemoryStore>, slot: (u64, u32), a: u8, b: u8) -> Evidence {
    Evidence::DuplicateVote {
        first: vote(
            ledger,
            CHAIN,
            OFFENDER,
            OFFENDER,
            VoteKind::Precommit,
            slot,
            a,
        ),
        second: vote(
            ledger,
            CHAIN,
            OFFENDER,
            OFFENDER,
            VoteKind::Precommit,
            slot,
            b,
        ),
    }
}

fn report(reporter: u8, evidence: &Evidence) -> v1::SignedTransaction {
    sign_misbehaviour_report(CHAIN, &key(reporter), evidence, 50, &[reporter]).unwrap()
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

fn rejected(receipt: &Receipt) -> (RejectionReason, &str) {
    match &receipt.outcome {
        Outcome::Rejected { reason, detail } => (*reason, detail),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

// A real double precommit reported by a validator is applied, listed with its offender, slot and
// reporter, and its stored evidence still verifies against the chain's validator set.
#[test]
fn equivocation_is_recorded_and_listed() {
    let ledger = ledger();
    let evidence = double_precommit(&ledger, (5, 1), 0xaa, 0xbb);
    let receipts = commit(&ledger, T0, vec![report(11, &evidence)]);
    assert!(receipts[0].is_applied(), "{receipts:?}");

    let page = list_all(&ledger).unwrap();
    assert_eq!(page.items.len(), 1);
    assert!(page.next_page_token.is_empty());
    let record = &page.items[0];
    assert_eq!(record.offender, key(OFFENDER).verifying_key().to_bytes());
    assert_eq!(record.slot.validator_index, index_of(&ledger, OFFENDER));
    assert_eq!((record.slot.height, record.slot.round), (5, 1));
    assert_eq!(record.slot.kind, MisbehaviourKind::DuplicatePrecommit);
    assert_eq!(record.recorded_at_height, 1);
    assert_eq!(record.reporter.as_str(), VALIDATORS[0].0);
    assert_eq!(record.report_id, receipts[0].transaction_id);

    let stored = v1::Evidence::decode(record.evidence.as_slice()).unwrap();
    let decoded = consensus_wire::evidence_from_wire(&stored).unwrap();
    assert_eq!(decoded, evidence);
    decoded
        .verify(CHAIN, &validator_set(&ledger), &Ed25519Verifier)
        .unwrap();
    let wire = varde_ledger::wire::misbehaviour_to_wire(record).unwrap();
    assert_eq!(wire.kind, v1::MisbehaviourKind::DuplicatePrecommit as i32);
    assert_eq!(wire.evidence, Some(stored));
}

// Three honest validators reporting one equivocation record it once, in one block or later, even
// when a later report pairs other conflicting votes; another kind in the same slot is its own
// misbehaviour.
#[test]
fn the_same_misbehaviour_is_recorded_once() {
    let ledger = ledger();
    let evidence = double_precommit(&ledger, (7, 0), 1, 2);
    let receipts = commit(
        &ledger,
        T0,
        vec![report(11, &evidence), report(13, &evidence)],
    );
    assert!(receipts[0].is_applied(), "{receipts:?}");
    let (reason, detail) = rejected(&receipts[1]);
    assert_eq!(reason, RejectionReason::EvidenceAlreadyRecorded);
    assert!(detail.contains("height 7 round 0"), "{detail}");

    let other_pair = double_precommit(&ledger, (7, 0), 1, 3);
    let receipts = commit(&ledger, T0 + 1, vec![report(14, &other_pair)]);
    assert_eq!(
        rejected(&receipts[0]).0,
        RejectionReason::EvidenceAlreadyRecorded
    );

    let prevotes = Evidence::DuplicateVote {
        first: vote(
            &ledger,
            CHAIN,
            OFFENDER,
            OFFENDER,
            VoteKind::Prevote,
            (7, 0),
            1,
        ),
        second: vote(
            &ledger,
            CHAIN,
            OFFENDER,
            OFFENDER,
            VoteKind::Prevote,
            (7, 0),
            2,
        ),
    };
    let receipts = commit(&ledger, T0 + 2, vec![report(14, &prevotes)]);
    assert!(receipts[0].is_applied(), "{receipts:?}");

    let kinds: Vec<MisbehaviourKind> = list_all(&ledger)
        .unwrap()
        .items
        .iter()
        .map(|record| record.slot.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![
            MisbehaviourKind::DuplicatePrevote,
            MisbehaviourKind::DuplicatePrecommit
        ]
    );
}

// Evidence with a signature by another key, signed for another chain, or without a conflict is
// rejected as INVALID_EVIDENCE, naming the problem, and nothing is recorded.
#[test]
fn forged_evidence_is_invalid() {
    let ledger = ledger();
    let slot = (5, 1);
    let forged = Evidence::DuplicateVote {
        first: vote(
            &ledger,
            CHAIN,
            OFFENDER,
            OFFENDER,
            VoteKind::Precommit,
            slot,
            1,
        ),
        // Claims to be the offender's vote but is signed with validator 13's key.
        second: vote(&ledger, CHAIN, OFFENDER, 13, VoteKind::Precommit, slot, 2),
    };
    let other_chain = Evidence::DuplicateVote {
        first: vote(
            &ledger,
            "varde-other",
            OFFENDER,
            OFFENDER,
            VoteKind::Precommit,
            slot,
            1,
        ),
        second: vote(
            &ledger,
            "varde-other",
            OFFENDER,
            OFFENDER,
            VoteKind::Precommit,
            slot,
            2,
        ),
    };
    let same_vote = vote(
        &ledger,
        CHAIN,
        OFFENDER,
        OFFENDER,
        VoteKind::Precommit,
        slot,
        1,
    );
    let no_conflict = Evidence::DuplicateVote {
        first: same_vote.clone(),
        second: same_vote,
    };
    let receipts = commit(
        &ledger,
        T0,
        vec![
            report(11, &forged),
            report(11, &other_chain),
            report(11, &no_conflict),
        ],
    );
    for (receipt, expected) in receipts.iter().zip([
        "does not verify against validator",
        "does not verify against validator",
        "identical",
    ]) {
        let (reason, detail) = rejected(receipt);
        assert_eq!(reason, RejectionReason::InvalidEvidence);
        assert!(detail.contains(expected), "{detail}");
    }
    assert!(list_all(&ledger).unwrap().items.is_empty());
}

// A genuine report signed by an institution without the validator role is MISSING_ROLE and
// records nothing.
#[test]
fn a_non_validator_may_not_report() {
    let ledger = ledger();
    let evidence = double_precommit(&ledger, (5, 1), 1, 2);
    let receipts = commit(&ledger, T0, vec![report(SUBMITTER.1, &evidence)]);
    let (reason, detail) = rejected(&receipts[0]);
    assert_eq!(reason, RejectionReason::MissingRole);
    assert!(detail.contains("validator"), "{detail}");
    assert!(list_all(&ledger).unwrap().items.is_empty());
}

// A validator institution reports with its consensus key (as its node does) or with one of its
// submitting keys; its consensus key signs no other action, and its submitting keys are not in
// the validator set the evidence is checked against.
#[test]
fn a_validator_reports_with_its_consensus_or_submitting_key() {
    let ledger = ledger();
    assert_eq!(validator_set(&ledger).len(), VALIDATORS.len());
    for (_, seed) in VALIDATORS {
        let submitting = key(seed + 100).verifying_key();
        assert!(validator_set(&ledger).index_of(&submitting).is_none());
    }
    let receipts = commit(
        &ledger,
        T0,
        vec![
            report(11, &double_precommit(&ledger, (5, 1), 1, 2)),
            report(111, &double_precommit(&ledger, (6, 1), 1, 2)),
        ],
    );
    assert!(receipts.iter().all(Receipt::is_applied), "{receipts:?}");
    let reporters: Vec<String> = list_all(&ledger)
        .unwrap()
        .items
        .iter()
        .map(|record| record.reporter.to_string())
        .collect();
    assert_eq!(reporters, vec![VALIDATORS[0].0.to_owned(); 2]);

    // The consensus key signing a record anchor: refused as an unknown signer, naming the rule.
    let anchor = v1::TransactionBody {
        chain_id: CHAIN.to_owned(),
        expires_at_height: 50,
        action: Some(v1::transaction_body::Action::AnchorRecord(
            v1::AnchorRecord {
                custodian_org_number: VALIDATORS[0].0.to_owned(),
                record_id: "r-1".to_owned(),
                subject_pseudonym: vec![1; 32],
                category_code: "epikrise".to_owned(),
                location_uri: "https://ehr.example.invalid/r-1".to_owned(),
                content_sha256: vec![2; 32],
                confidentiality: v1::Confidentiality::Normal as i32,
                created_at_unix_ms: T0,
            },
        )),
        ..Default::default()
    };
    let signed = varde_ledger::signing::sign_transaction(CHAIN, &key(11), &anchor).unwrap();
    let receipts = commit(&ledger, T0 + 1, vec![signed]);
    let (reason, detail) = rejected(&receipts[0]);
    assert_eq!(reason, RejectionReason::UnknownSigner);
    assert!(detail.contains("validator key"), "{detail}");
}

// Malformed evidence never reaches a block: admission refuses it and names the field.
#[test]
fn malformed_evidence_is_refused_at_admission() {
    let ledger = ledger();
    let sign = |evidence: Option<v1::Evidence>| {
        let body = v1::TransactionBody {
            chain_id: CHAIN.to_owned(),
            expires_at_height: 50,
            action: Some(v1::transaction_body::Action::ReportMisbehaviour(
                v1::ReportMisbehaviour { evidence },
            )),
            ..Default::default()
        };
        varde_ledger::signing::sign_transaction(CHAIN, &key(11), &body)
            .unwrap()
            .encode_to_vec()
    };
    let field_problem = |bytes: &[u8]| match ledger.decode_transaction(bytes) {
        Err(TransactionError::Field(error)) => (error.field, error.problem),
        other => panic!("expected a field error, got {other:?}"),
    };
    assert_eq!(
        field_problem(&sign(None)),
        (
            "report_misbehaviour.evidence".to_owned(),
            FieldProblem::Missing
        )
    );
    let mut short = consensus_wire::evidence_to_wire(&double_precommit(&ledger, (5, 1), 1, 2));
    if let Some(v1::evidence::Kind::DuplicateVote(pair)) = short.kind.as_mut() {
        pair.second.as_mut().unwrap().signature.truncate(10);
    }
    assert_eq!(
        field_problem(&sign(Some(short))),
        (
            "report_misbehaviour.evidence.signature".to_owned(),
            FieldProblem::WrongLength {
                expected: 64,
                actual: 10
            }
        )
    );
}

// The listing is ascending by height and round and pages with a token; a foreign token is refused.
#[test]
fn misbehaviour_lists_in_pages() {
    let ledger = ledger();
    let proposal = |block: u8| {
        let proposer = index_of(&ledger, OFFENDER);
        SignedProposal::sign(
            CHAIN,
            Proposal {
                height: 2,
                round: 0,
                valid_round: None,
                block_id: BlockId([block; 32]),
                proposer,
            },
            &key(OFFENDER),
        )
    };
    let double_proposal = Evidence::DuplicateProposal {
        first: proposal(1),
        second: proposal(2),
    };
    let receipts = commit(
        &ledger,
        T0,
        vec![
            report(11, &double_precommit(&ledger, (9, 0), 1, 2)),
            report(11, &double_precommit(&ledger, (3, 4), 1, 2)),
            report(11, &double_proposal),
        ],
    );
    assert!(receipts.iter().all(Receipt::is_applied), "{receipts:?}");

    let tokens = varde_ledger::page_token::PageTokenKey::derive(b"test node");
    let page = |page_size: usize, page_token: &str| {
        ledger.list_misbehaviour(varde_ledger::query::PageRequest {
            page_size,
            page_token,
            tokens: &tokens,
            scope: b"misbehaviour",
        })
    };
    let first = page(2, "").unwrap();
    assert_eq!(first.items.len(), 2);
    assert!(!first.next_page_token.is_empty());
    let second = page(2, &first.next_page_token).unwrap();
    assert!(second.next_page_token.is_empty());
    let slots: Vec<(u64, u32, MisbehaviourKind)> = first
        .items
        .iter()
        .chain(&second.items)
        .map(|record| (record.slot.height, record.slot.round, record.slot.kind))
        .collect();
    assert_eq!(
        slots,
        vec![
            (2, 0, MisbehaviourKind::DuplicateProposal),
            (3, 4, MisbehaviourKind::DuplicatePrecommit),
            (9, 0, MisbehaviourKind::DuplicatePrecommit),
        ]
    );
    // A token that points outside the listing (here: at the chain id) is not accepted.
    assert!(matches!(
        page(2, &varde_ledger::hex::encode(b"chain_id")),
        Err(QueryError::InvalidPageToken)
    ));
}

/// Every recorded misbehaviour, in one page.
fn list_all(
    ledger: &Ledger<MemoryStore>,
) -> Result<varde_ledger::query::Page<varde_ledger::domain::Misbehaviour>, QueryError> {
    let tokens = varde_ledger::page_token::PageTokenKey::derive(b"test node");
    ledger.list_misbehaviour(varde_ledger::query::PageRequest {
        page_size: 0,
        page_token: "",
        tokens: &tokens,
        scope: b"misbehaviour",
    })
}
