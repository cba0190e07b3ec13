//! Governance: proposals approved by more than 2/3 of the validators change the membership and
//! the validator set at their effective height, and the light client follows the set changes.

use ed25519_dalek::SigningKey;
use prost::Message;
use varde_ledger::Ledger;
use varde_ledger::domain::{Outcome, Receipt, RejectionReason};
use varde_ledger::governance::{ProposalStatus, approvals_needed};
use varde_ledger::identifiers::OrgNumber;
use varde_ledger::membership::{Genesis, Institution, Role};
use varde_ledger::proof::{self, LightClient, ProofError};
use varde_ledger::signing::{TransactionId, sign_transaction};
use varde_proto::v1;
use varde_storage::MemoryStore;

const CHAIN: &str = "varde-test";
const T0: i64 = 1_780_000_000_000;
/// Validator institutions (organisation number, consensus key seed; submitting key seed + 100).
const VALIDATORS: [(&str, u8); 4] = [
    ("974760673", 11),
    ("123456785", 12),
    ("983044778", 13),
    ("100000008", 14),
];
/// A submitter without the validator role (submitting key seed 20).
const SUBMITTER: &str = "993467049";
/// An institution that joins by governance.
const NEWCOMER: &str = "971524960";

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn public(seed: u8) -> [u8; 32] {
    key(seed).verifying_key().to_bytes()
}

fn org(number: &str) -> OrgNumber {
    OrgNumber::parse(number).unwrap()
}

fn genesis() -> Genesis {
    let mut institutions: Vec<Institution> = VALIDATORS
        .iter()
        .map(|(number, seed)| Institution {
            org_number: org(number),
            name: format!("Helseforetak {seed}"),
            roles: vec![Role::Validator, Role::Submitter],
            public_keys: vec![public(seed + 100)],
            validator_key: Some(public(*seed)),
        })
        .collect();
    institutions.push(Institution {
        org_number: org(SUBMITTER),
        name: "Kommune".to_owned(),
        roles: vec![Role::Submitter],
        public_keys: vec![public(20)],
        validator_key: None,
    });
    Genesis {
        chain_id: CHAIN.to_owned(),
        genesis_time_unix_ms: T0,
        institutions,
    }
}

/// A ledger that signs each block's certificate with the validator keys it holds, as a network
/// of those validators would (so that the light client can follow it).
struct Chain {
    ledger: Ledger<MemoryStore>,
    /// Every consensus key any validator ever held, by seed.
    consensus_keys: Vec<u8>,
    time: i64,
}

impl Chain {
    fn new() -> Self {
        Self {
            ledger: Ledger::open(MemoryStore::new(), genesis()).unwrap(),
            consensus_keys: VALIDATORS.iter().map(|(_, seed)| *seed).collect(),
            time: T0,
        }
    }

    fn height(&self) -> u64 {
        self.ledger.height()
    }

    /// Commits a block of `transactions`, certified by every validator of its height.
    fn commit(&mut self, transactions: Vec<v1::SignedTransaction>) -> Vec<Receipt> {
        self.time += 1_000;
        let validators = self.ledger.membership().validator_keys();
        let executed = self
            .ledger
            .execute_block(validators[0], self.time, transactions)
            .unwrap();
        let keys: Vec<SigningKey> = self
            .consensus_keys
            .iter()
            .map(|seed| key(*seed))
            .filter(|key| validators.contains(&key.verifying_key().to_bytes()))
            .collect();
        let certificate = certificate(&executed, &validators, &keys);
        let receipts = executed.receipts.clone();
        let mut executed = executed;
        executed.attach_certificate(varde_ledger::stored::StoredValue::encode(&certificate));
        self.ledger.commit(executed).unwrap();
        receipts
    }

    /// Commits empty blocks until the head is at `height`.
    fn advance_to(&mut self, height: u64) {
        while self.height() < height {
            self.commit(Vec::new());
        }
    }
}

fn certificate(
    executed: &varde_ledger::ExecutedBlock,
    validators: &[[u8; 32]],
    keys: &[SigningKey],
) -> varde_consensus::CommitCertificate {
    use varde_consensus::{BlockId, CommitSignature, SignedVote, Vote, VoteKind};
    let mut signatures = Vec::new();
    for key in keys {
        let index = validators
            .iter()
            .position(|held| *held == key.verifying_key().to_bytes())
            .unwrap() as u32;
        let vote = Vote {
            kind: VoteKind::Precommit,
            height: executed.head.height,
            round: 0,
            block_id: Some(BlockId(executed.block_hash)),
            validator: index,
        };
        let signed = SignedVote::sign(CHAIN, vote, key);
        signatures.push(CommitSignature {
            validator: index,
            signature: signed.signature,
        });
    }
    signatures.sort_by_key(|signature| signature.validator);
    varde_consensus::CommitCertificate {
        height: executed.head.height,
        round: 0,
        block_id: BlockId(executed.block_hash),
        signatures,
    }
}

fn body(action: v1::transaction_body::Action, expires_at_height: u64) -> v1::TransactionBody {
    v1::TransactionBody {
        chain_id: CHAIN.to_owned(),
        expires_at_height,
        expires_at_unix_ms: 0,
        nonce: Vec::new(),
        action: Some(action),
    }
}

fn signed(signer: u8, action: v1::transaction_body::Action) -> v1::SignedTransaction {
    sign_transaction(CHAIN, &key(signer), &body(action, 1_000)).unwrap()
}

/// An anchor of the submitter's record `record`, signed with key `signer`.
fn anchor(signer: u8, record: &str) -> v1::SignedTransaction {
    signed(
        signer,
        v1::transaction_body::Action::AnchorRecord(v1::AnchorRecord {
            custodian_org_number: SUBMITTER.to_owned(),
            record_id: record.to_owned(),
            subject_pseudonym: vec![5; 32],
            category_code: "journal".to_owned(),
            location_uri: "https://example.invalid/r".to_owned(),
            content_sha256: vec![6; 32],
            confidentiality: v1::Confidentiality::Normal as i32,
            created_at_unix_ms: T0,
        }),
    )
}

fn propose(
    signer: u8,
    proposer: &str,
    change: v1::membership_change::Change,
    effective_height: u64,
) -> v1::SignedTransaction {
    signed(
        signer,
        v1::transaction_body::Action::ProposeChange(v1::ProposeChange {
            proposer_org_number: proposer.to_owned(),
            change: Some(v1::MembershipChange {
                change: Some(change),
            }),
            effective_height,
            approve_by_height: 0,
        }),
    )
}

fn approve(signer: u8, approver: &str, proposal: &TransactionId) -> v1::SignedTransaction {
    signed(
        signer,
        v1::transaction_body::Action::ApproveChange(v1::ApproveChange {
            approver_org_number: approver.to_owned(),
            proposal_id: proposal.0.to_vec(),
        }),
    )
}

fn applied(receipt: &Receipt) {
    assert!(
        matches!(receipt.outcome, Outcome::Applied { .. }),
        "expected applied, got {:?}",
        receipt.outcome
    );
}

fn rejected(receipt: &Receipt) -> RejectionReason {
    match &receipt.outcome {
        Outcome::Rejected { reason, .. } => *reason,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// Proposes `change` from the first validator and approves it by the next `approvers`
/// validators, all in one block; returns the proposal's id.
fn pass(
    chain: &mut Chain,
    change: v1::membership_change::Change,
    effective_height: u64,
    approvers: usize,
) -> TransactionId {
    let (proposer, seed) = VALIDATORS[0];
    let proposal = propose(seed + 100, proposer, change, effective_height);
    let id = receipt_id(chain.commit(vec![proposal])[0].clone());
    let approvals = VALIDATORS[1..=approvers]
        .iter()
        .map(|(number, seed)| approve(seed + 100, number, &id))
        .collect();
    for receipt in chain.commit(approvals) {
        applied(&receipt);
    }
    id
}

fn access_check(bundle: &mut v1::ProofBundle) -> &mut v1::AccessCheck {
    match bundle.claim.as_mut() {
        Some(v1::proof_bundle::Claim::AccessCheck(check)) => check,
        _ => unreachable!("built as an access check"),
    }
}

fn header(ledger: &Ledger<MemoryStore>, height: u64) -> v1::CertifiedHeader {
    proof::certified_header(ledger, height).unwrap().unwrap()
}

fn receipt_id(receipt: Receipt) -> TransactionId {
    applied(&receipt);
    receipt.transaction_id
}

fn status(chain: &Chain, id: &TransactionId) -> ProposalStatus {
    chain
        .ledger
        .proposal(id)
        .unwrap()
        .unwrap()
        .status_at(chain.height())
}

#[test]
fn more_than_two_thirds_of_the_validators_are_needed() {
    assert_eq!(approvals_needed(1), 1);
    assert_eq!(approvals_needed(3), 3);
    assert_eq!(approvals_needed(4), 3);
    assert_eq!(approvals_needed(5), 4);
    assert_eq!(approvals_needed(7), 5);
    let mut chain = Chain::new();
    let change = v1::membership_change::Change::AddSubmittingKey(v1::InstitutionKey {
        org_number: SUBMITTER.to_owned(),
        public_key: public(21).to_vec(),
    });
    // The proposer and one approval: 2 of 4, not enough.
    let id = pass(&mut chain, change, 10, 1);
    assert_eq!(status(&chain, &id), ProposalStatus::Open);
    // The third validator's approval passes it.
    let (number, seed) = VALIDATORS[2];
    applied(&chain.commit(vec![approve(seed + 100, number, &id)])[0]);
    assert_eq!(status(&chain, &id), ProposalStatus::Approved);
    // A fourth approval comes too late: it is approved already.
    let (number, seed) = VALIDATORS[3];
    let late = chain.commit(vec![approve(seed + 100, number, &id)]);
    assert_eq!(rejected(&late[0]), RejectionReason::ProposalClosed);
    // A second approval by the same institution is refused.
    let mut chain = Chain::new();
    let change = v1::membership_change::Change::AddSubmittingKey(v1::InstitutionKey {
        org_number: SUBMITTER.to_owned(),
        public_key: public(21).to_vec(),
    });
    let id = pass(&mut chain, change, 10, 0);
    let (number, seed) = VALIDATORS[0];
    let again = chain.commit(vec![approve(seed, number, &id)]);
    assert_eq!(rejected(&again[0]), RejectionReason::AlreadyApproved);
    // Only validators vote: a submitter's approval is refused.
    let refused = chain.commit(vec![approve(20, SUBMITTER, &id)]);
    assert_eq!(rejected(&refused[0]), RejectionReason::MissingRole);
    let unknown = chain.commit(vec![approve(111, VALIDATORS[0].0, &TransactionId([7; 32]))]);
    assert_eq!(rejected(&unknown[0]), RejectionReason::UnknownProposal);
}

// A submitting key added by governance signs from its effective height on; a revoked one is
// refused from its effective height, and what it signed before stays on the ledger as applied.
#[test]
fn submitting_keys_are_added_and_revoked_at_their_effective_height() {
    let mut chain = Chain::new();
    let added = pass(
        &mut chain,
        v1::membership_change::Change::AddSubmittingKey(v1::InstitutionKey {
            org_number: SUBMITTER.to_owned(),
            public_key: public(21).to_vec(),
        }),
        6,
        2,
    );
    assert_eq!(status(&chain, &added), ProposalStatus::Approved);
    // Height 3 to 5: the new key is not a member's key yet.
    let early = chain.commit(vec![anchor(21, "early")]);
    assert_eq!(rejected(&early[0]), RejectionReason::UnknownSigner);
    chain.advance_to(5);
    assert_eq!(status(&chain, &added), ProposalStatus::Enacted);
    applied(&chain.commit(vec![anchor(21, "with-new-key")])[0]);
    // Revoke the old key from height 10: it signs at 9, and is refused at 10.
    let revoked = pass(
        &mut chain,
        v1::membership_change::Change::RevokeSubmittingKey(v1::InstitutionKey {
            org_number: SUBMITTER.to_owned(),
            public_key: public(20).to_vec(),
        }),
        10,
        2,
    );
    chain.advance_to(8);
    applied(&chain.commit(vec![anchor(20, "before-revocation")])[0]);
    assert_eq!(chain.height(), 9);
    let after = chain.commit(vec![anchor(20, "after-revocation")]);
    assert_eq!(rejected(&after[0]), RejectionReason::UnknownSigner);
    assert_eq!(status(&chain, &revoked), ProposalStatus::Enacted);
    assert!(
        chain
            .ledger
            .membership()
            .owner_of_key(&public(20))
            .is_none()
    );
}

#[test]
fn a_change_that_does_not_apply_is_refused_or_fails_at_its_height() {
    let mut chain = Chain::new();
    let (proposer, seed) = VALIDATORS[0];
    // An unknown institution, a key registered already, heights out of range: refused.
    let refusals = chain.commit(vec![
        propose(
            seed + 100,
            proposer,
            v1::membership_change::Change::RemoveValidator(NEWCOMER.to_owned()),
            10,
        ),
        propose(
            seed + 100,
            proposer,
            v1::membership_change::Change::AddSubmittingKey(v1::InstitutionKey {
                org_number: SUBMITTER.to_owned(),
                public_key: public(12).to_vec(),
            }),
            10,
        ),
        propose(
            seed + 100,
            proposer,
            v1::membership_change::Change::RemoveInstitution(SUBMITTER.to_owned()),
            1,
        ),
    ]);
    for receipt in &refusals {
        assert_eq!(rejected(receipt), RejectionReason::InvalidChange);
    }
    // Two approved changes that each apply alone, but not both: the second (by id) fails.
    let first = pass(
        &mut chain,
        v1::membership_change::Change::AddSubmittingKey(v1::InstitutionKey {
            org_number: SUBMITTER.to_owned(),
            public_key: public(30).to_vec(),
        }),
        12,
        2,
    );
    let second = pass(
        &mut chain,
        v1::membership_change::Change::AddSubmittingKey(v1::InstitutionKey {
            org_number: VALIDATORS[1].0.to_owned(),
            public_key: public(30).to_vec(),
        }),
        12,
        2,
    );
    chain.advance_to(12);
    let statuses = [status(&chain, &first), status(&chain, &second)];
    assert!(statuses.contains(&ProposalStatus::Enacted), "{statuses:?}");
    assert!(statuses.contains(&ProposalStatus::Failed), "{statuses:?}");
    let failed = if statuses[0] == ProposalStatus::Failed {
        first
    } else {
        second
    };
    let failure = chain.ledger.proposal(&failed).unwrap().unwrap().failure;
    assert!(failure.contains("registered twice"), "{failure}");
    // An open proposal expires after its approve-by height.
    let effective = chain.height() + 4;
    let lapsing = pass(
        &mut chain,
        v1::membership_change::Change::AddSubmittingKey(v1::InstitutionKey {
            org_number: SUBMITTER.to_owned(),
            public_key: public(31).to_vec(),
        }),
        effective,
        0,
    );
    assert_eq!(status(&chain, &lapsing), ProposalStatus::Open);
    let deadline = chain
        .ledger
        .proposal(&lapsing)
        .unwrap()
        .unwrap()
        .approve_by_height;
    chain.advance_to(deadline);
    assert_eq!(status(&chain, &lapsing), ProposalStatus::Expired);
    let (number, seed) = VALIDATORS[1];
    let late = chain.commit(vec![approve(seed + 100, number, &lapsing)]);
    assert_eq!(rejected(&late[0]), RejectionReason::ProposalClosed);
}

// The validator set grows to five, a key rotates, and it shrinks back to four; each header names
// its own set and the next one, and the light client from genesis follows every change.
#[test]
fn the_validator_set_changes_at_height_boundaries_and_the_light_client_follows() {
    let mut chain = Chain::new();
    chain.consensus_keys.extend([15, 16]);
    let genesis_set = chain.ledger.membership().validator_keys();
    // 1. A new institution with a validator, from height 6.
    let joined = pass(
        &mut chain,
        v1::membership_change::Change::AddInstitution(v1::Member {
            org_number: NEWCOMER.to_owned(),
            name: "Ny kommune".to_owned(),
            roles: vec![v1::InstitutionRole::Validator as i32],
            public_keys: Vec::new(),
            validator_key: public(15).to_vec(),
        }),
        6,
        2,
    );
    chain.advance_to(5);
    assert_eq!(status(&chain, &joined), ProposalStatus::Enacted);
    assert_eq!(chain.ledger.membership().validator_keys().len(), 5);
    let block_5 = header(&chain.ledger, 5);
    let header_5 = block_5.header.as_ref().unwrap();
    assert_ne!(
        header_5.validator_set_hash,
        header_5.next_validator_set_hash
    );
    // 2. With five validators, four approvals are needed: the new validator signs its own
    // approval with its consensus key (it has no submitting key).
    let (proposer, seed) = VALIDATORS[0];
    let rotation = propose(
        seed + 100,
        proposer,
        v1::membership_change::Change::RotateValidatorKey(v1::InstitutionKey {
            org_number: VALIDATORS[3].0.to_owned(),
            public_key: public(16).to_vec(),
        }),
        12,
    );
    let rotation = receipt_id(chain.commit(vec![rotation])[0].clone());
    let approvals = vec![
        approve(VALIDATORS[1].1 + 100, VALIDATORS[1].0, &rotation),
        approve(15, NEWCOMER, &rotation),
    ];
    for receipt in chain.commit(approvals) {
        applied(&receipt);
    }
    assert_eq!(status(&chain, &rotation), ProposalStatus::Open);
    applied(
        &chain.commit(vec![approve(
            VALIDATORS[2].1 + 100,
            VALIDATORS[2].0,
            &rotation,
        )])[0],
    );
    assert_eq!(status(&chain, &rotation), ProposalStatus::Approved);
    chain.advance_to(11);
    let keys = chain.ledger.membership().validator_keys();
    assert!(keys.contains(&public(16)) && !keys.contains(&public(14)));
    // The old consensus key no longer signs governance for its institution.
    let old_key = chain.commit(vec![propose(
        14,
        VALIDATORS[3].0,
        v1::membership_change::Change::RemoveValidator(NEWCOMER.to_owned()),
        30,
    )]);
    assert_eq!(rejected(&old_key[0]), RejectionReason::UnknownSigner);
    // 3. The newcomer's validator leaves at height 20.
    let left = pass(
        &mut chain,
        v1::membership_change::Change::RemoveInstitution(NEWCOMER.to_owned()),
        20,
        3,
    );
    chain.advance_to(19);
    assert_eq!(status(&chain, &left), ProposalStatus::Enacted);
    let tx = chain.commit(vec![anchor(20, "after-two-changes")]);
    let committed = receipt_id(tx[0].clone());
    chain.advance_to(21);

    // The served history: genesis, +newcomer from 6, rotation from 12, -newcomer from 20.
    let served = proof::validator_set_history(&chain.ledger).unwrap();
    let froms: Vec<u64> = served.iter().map(|entry| entry.from_height).collect();
    assert_eq!(froms, [1, 6, 12, 20]);
    assert_eq!(
        served[0].validators,
        genesis_set
            .iter()
            .map(|key| key.to_vec())
            .collect::<Vec<_>>()
    );
    let mut light = LightClient::from_genesis(&genesis()).unwrap();
    let to_follow = light.check_validator_sets(&served).unwrap();
    assert_eq!(to_follow.len(), 3);
    // The bundle carries the set changes: a client that trusts only the genesis file verifies
    // it as it is, and refuses it without them or with one altered.
    let bundle = proof::transaction_bundle(&chain.ledger, &committed, 0, true).unwrap();
    assert_eq!(bundle.set_changes.len(), 3);
    let fresh = LightClient::from_genesis(&genesis()).unwrap();
    assert!(matches!(
        fresh.verify_bundle(&bundle.encode_to_vec()).unwrap(),
        proof::VerifiedClaim::Transaction { .. }
    ));
    let mut stripped = bundle.clone();
    stripped.set_changes.clear();
    assert!(fresh.verify_bundle(&stripped.encode_to_vec()).is_err());
    let mut skipped = bundle.clone();
    skipped.set_changes.remove(1);
    assert!(fresh.verify_bundle(&skipped.encode_to_vec()).is_err());
    let mut altered = bundle.clone();
    let set = altered.set_changes[2].set.as_mut().unwrap();
    set.validators.swap(0, 1);
    assert!(fresh.verify_bundle(&altered.encode_to_vec()).is_err());
    let bundle = bundle.encode_to_vec();
    // Without the bundle's changes, a header of a later set does not verify.
    assert!(light.verify_header(&header(&chain.ledger, 21)).is_err());
    // A change proven by the wrong header, or a set the header does not name, is refused.
    let wrong_height = header(&chain.ledger, 4);
    assert!(matches!(
        light
            .clone()
            .follow_set_change(&to_follow[0], &wrong_height),
        Err(ProofError::SetChangeHeader { .. })
    ));
    let mut forged = to_follow[0].clone();
    forged.validators.pop();
    forged.set_hash = varde_ledger::governance::set_hash(
        &forged
            .validators
            .iter()
            .map(|key| <[u8; 32]>::try_from(key.as_slice()).unwrap())
            .collect::<Vec<_>>(),
    )
    .to_vec();
    assert!(matches!(
        light
            .clone()
            .follow_set_change(&forged, &header(&chain.ledger, 5)),
        Err(ProofError::SetChangeNotCertified { .. })
    ));
    for entry in &to_follow {
        let before = header(&chain.ledger, entry.from_height - 1);
        light.follow_set_change(entry, &before).unwrap();
    }
    assert_eq!(light.check_validator_sets(&served).unwrap(), Vec::new());
    // Now a transaction committed after two set changes verifies from the original genesis.
    let claim = light.verify_bundle(&bundle).unwrap();
    assert!(matches!(claim, proof::VerifiedClaim::Transaction { .. }));
}

// A CheckAccess proof names its asker as the state of its header holds it: a question signed by
// a key that governance added verifies from the genesis file alone, and one whose asker is not
// the signer's institution, or comes without its proof, does not.
#[test]
fn a_check_access_proof_judges_the_asker_by_the_membership_of_its_height() {
    use varde_ledger::access::AccessRequest;
    use varde_ledger::domain::{Purpose, RecordKey};
    let mut chain = Chain::new();
    pass(
        &mut chain,
        v1::membership_change::Change::AddSubmittingKey(v1::InstitutionKey {
            org_number: SUBMITTER.to_owned(),
            public_key: public(21).to_vec(),
        }),
        5,
        2,
    );
    chain.advance_to(4);
    applied(&chain.commit(vec![anchor(21, "own-record")])[0]);
    // The custodian asks, with its new key, whether it may read its own record.
    let mut question = v1::CheckAccessRequest {
        auth: None,
        accessor_org_number: SUBMITTER.to_owned(),
        accessor_hpr_number: String::new(),
        record: Some(v1::RecordReference {
            custodian_org_number: SUBMITTER.to_owned(),
            record_id: "own-record".to_owned(),
        }),
        purpose: v1::PurposeOfUse::Treat as i32,
        at_unix_ms: 0,
        with_proof: true,
    };
    question.auth = Some(
        varde_ledger::signing::sign_query(
            CHAIN,
            proof::CHECK_ACCESS_METHOD,
            &key(21),
            T0,
            &[9; 16],
            &question,
        )
        .unwrap(),
    );
    let request = AccessRequest {
        accessor: org(SUBMITTER),
        person: None,
        record: RecordKey {
            custodian: org(SUBMITTER),
            record_id: "own-record".to_owned(),
        },
        purpose: Purpose::Treat,
        at_unix_ms: 0,
    };
    let membership = chain.ledger.membership();
    let asker = membership.institution(&org(SUBMITTER)).unwrap();
    let viewer = varde_ledger::visibility::Viewer::new(asker, T0);
    let (decision, bundle) = proof::check_access_with_proof(
        &chain.ledger,
        &request,
        None,
        &question.encode_to_vec(),
        &viewer,
    )
    .unwrap();
    assert!(decision.allowed, "{decision:?}");
    let bundle = bundle.expect("a proven answer");
    let fresh = LightClient::from_genesis(&genesis()).unwrap();
    match fresh.verify_bundle(&bundle.encode_to_vec()).unwrap() {
        proof::VerifiedClaim::AccessCheck { asked_by, .. } => assert_eq!(asked_by, SUBMITTER),
        other => panic!("not an access check: {other:?}"),
    }
    let mut anonymous = bundle.clone();
    access_check(&mut anonymous).asker = None;
    assert!(fresh.verify_bundle(&anonymous.encode_to_vec()).is_err());
    // Another member's entry, proven as it is, is not the signer's institution.
    let mut someone_else = bundle.clone();
    let other_member = proof::state_entry_bundle(
        &chain.ledger,
        &proof::StateEntryKey::Member(org(VALIDATORS[0].0)),
        &viewer,
    )
    .unwrap()
    .unwrap();
    let Some(v1::proof_bundle::Claim::StateEntry(entry)) = other_member.claim else {
        unreachable!("a state entry bundle")
    };
    let Some(v1::state_entry::Value::MemberValue(member)) = entry.value else {
        unreachable!("a member entry")
    };
    let check = access_check(&mut someone_else);
    check.asker = Some(member);
    check.asker_proof = entry.proof;
    assert!(matches!(
        fresh.verify_bundle(&someone_else.encode_to_vec()),
        Err(ProofError::Question(_))
    ));
}
