//! Proof bundles checked by the light client from the genesis file alone: transactions with their
//! receipts, ledger consistency, and every one-bit change of a bundle refused.

use ed25519_dalek::SigningKey;
use prost::Message;
use sha2::{Digest, Sha256};
use varde_consensus::{BlockId, CommitCertificate, CommitSignature, SignedVote};
use varde_ledger::Ledger;
use varde_ledger::access::AccessRequest;
use varde_ledger::domain::{Purpose, RecordKey};
use varde_ledger::identifiers::OrgNumber;
use varde_ledger::membership::{Genesis, Institution, Role};
use varde_ledger::proof::{self, LightClient, ProofError, VerifiedClaim};
use varde_ledger::signing::{self, TransactionId};
use varde_proto::v1;
use varde_proto::v1::transaction_body::Action;
use varde_storage::MemoryStore;

const CHAIN: &str = "varde-proof-test";
const T0: i64 = 1_780_000_000_000;
const HOSPITAL: &str = "974760673";
/// Validator institutions (organisation number, consensus key seed).
const VALIDATORS: [(&str, u8); 4] = [
    ("123456785", 11),
    ("983044778", 12),
    ("100000008", 13),
    ("993467049", 14),
];
const HOSPITAL_KEY: u8 = 1;
const CONSENT_AUTHORITY: &str = VALIDATORS[1].0;
const CONSENT_KEY: u8 = 2;
/// A validator institution that reads, by grant.
const READER: &str = VALIDATORS[0].0;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn genesis() -> Genesis {
    let mut institutions: Vec<Institution> = VALIDATORS
        .iter()
        .map(|(org, seed)| {
            // The second validator institution is also the consent authority, with a submitting
            // key of its own.
            let consent = *org == CONSENT_AUTHORITY;
            Institution {
                org_number: OrgNumber::parse(org).unwrap(),
                name: format!("Validator {seed}"),
                roles: if consent {
                    vec![Role::Validator, Role::ConsentAuthority]
                } else {
                    vec![Role::Validator]
                },
                public_keys: if consent {
                    vec![key(CONSENT_KEY).verifying_key().to_bytes()]
                } else {
                    vec![]
                },
                validator_key: Some(key(*seed).verifying_key().to_bytes()),
            }
        })
        .collect();
    institutions.push(Institution {
        org_number: OrgNumber::parse(HOSPITAL).unwrap(),
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

fn anchor(record: u32) -> v1::SignedTransaction {
    hospital_signs(Action::AnchorRecord(v1::AnchorRecord {
        custodian_org_number: HOSPITAL.to_owned(),
        record_id: format!("notat-{record}"),
        subject_pseudonym: vec![0x42; 32],
        category_code: "notat".to_owned(),
        location_uri: format!("https://ehr.example/r/{record}"),
        content_sha256: vec![7; 32],
        confidentiality: v1::Confidentiality::Normal as i32,
        created_at_unix_ms: T0,
    }))
}

fn hospital_signs(action: Action) -> v1::SignedTransaction {
    signed_by(HOSPITAL_KEY, action)
}

fn signed_by(signer: u8, action: Action) -> v1::SignedTransaction {
    let body = v1::TransactionBody {
        chain_id: CHAIN.to_owned(),
        expires_at_height: 1_000,
        action: Some(action),
        ..Default::default()
    };
    let bytes = body.encode_to_vec();
    let parts = signing::sign(CHAIN, &key(signer), &bytes).unwrap();
    v1::SignedTransaction {
        body: bytes,
        signer_public_key: parts.signer_public_key.to_vec(),
        signature: parts.signature.to_vec(),
    }
}

/// The hospital's grant to the reader of record notat-2000 for TREAT, valid for a day.
fn grant_to_reader() -> v1::SignedTransaction {
    hospital_signs(Action::GrantAccess(v1::GrantAccess {
        issuer_org_number: HOSPITAL.to_owned(),
        subject_pseudonym: vec![0x42; 32],
        grantee_org_number: READER.to_owned(),
        scope: Some(v1::GrantScope {
            scope: Some(v1::grant_scope::Scope::Record(v1::RecordReference {
                custodian_org_number: HOSPITAL.to_owned(),
                record_id: "notat-2000".to_owned(),
            })),
        }),
        purposes: vec![v1::PurposeOfUse::Treat as i32],
        valid_from_unix_ms: T0,
        valid_until_unix_ms: T0 + 86_400_000,
        basis: Some(v1::GrantBasis {
            basis: Some(v1::grant_basis::Basis::PatientConsent(v1::PatientConsent {
                reference: "samtykke-1".to_owned(),
            })),
        }),
        ..Default::default()
    }))
}

/// The hospital's revocation of `grant_id`.
fn revoke(grant_id: TransactionId) -> v1::SignedTransaction {
    hospital_signs(Action::RevokeGrant(v1::RevokeGrant {
        issuer_org_number: HOSPITAL.to_owned(),
        grant_id: grant_id.0.to_vec(),
        reason: "tilbakekalt".to_owned(),
    }))
}

/// The consent authority's patient block of institution `target` for the test subject.
fn block_of(target: &str) -> v1::SignedTransaction {
    signed_by(
        CONSENT_KEY,
        Action::BlockAccess(v1::BlockAccess {
            issuer_org_number: CONSENT_AUTHORITY.to_owned(),
            subject_pseudonym: vec![0x42; 32],
            target: Some(v1::block_access::Target::InstitutionOrgNumber(
                target.to_owned(),
            )),
        }),
    )
}

/// The validators' signing keys in validator-index order (ascending public key bytes).
fn validator_keys_in_order() -> Vec<SigningKey> {
    let mut keys: Vec<SigningKey> = VALIDATORS.iter().map(|(_, seed)| key(*seed)).collect();
    keys.sort_by_key(|key| key.verifying_key().to_bytes());
    keys
}

/// A certificate of `signers` (validator indexes, ascending) for `block_id` at `height`.
fn certificate(height: u64, block_id: [u8; 32], signers: &[u32]) -> CommitCertificate {
    let keys = validator_keys_in_order();
    let mut certificate = CommitCertificate {
        height,
        round: 0,
        block_id: BlockId(block_id),
        signatures: Vec::new(),
    };
    for &validator in signers {
        let vote = certificate.precommit(validator);
        let signed = SignedVote::sign(CHAIN, vote, &keys[validator as usize]);
        certificate.signatures.push(CommitSignature {
            validator,
            signature: signed.signature,
        });
    }
    certificate
}

/// Commits the next block with its certificate; every transaction must apply.
fn commit(
    ledger: &Ledger<MemoryStore>,
    transactions: Vec<v1::SignedTransaction>,
) -> Vec<TransactionId> {
    let height = ledger.head().unwrap().map_or(1, |head| head.height + 1);
    let mut executed = ledger
        .execute_block([9; 32], T0 + height as i64 * 1_000, transactions)
        .unwrap();
    let ids = executed
        .receipts
        .iter()
        .map(|receipt| {
            assert!(receipt.is_applied(), "{receipt:?}");
            receipt.transaction_id
        })
        .collect();
    // Odd heights carry a bare quorum, even ones every validator's precommit (each checked).
    let signers: &[u32] = if height % 2 == 1 {
        &[0, 2, 3]
    } else {
        &[0, 1, 2, 3]
    };
    let certificate = certificate(height, executed.block_hash, signers);
    executed.attach_certificate(varde_ledger::stored::StoredValue::encode(&certificate));
    ledger.commit(executed).unwrap();
    ids
}

/// A ledger with `blocks` committed blocks of `per_block` anchors each (the first block empty),
/// each with a certificate.
fn ledger(blocks: u32, per_block: u32) -> (Ledger<MemoryStore>, Vec<TransactionId>) {
    let ledger = Ledger::open(MemoryStore::new(), genesis()).unwrap();
    let mut ids = Vec::new();
    for height in 1..=blocks {
        let count = if height == 1 { 0 } else { per_block };
        ids.extend(commit(
            &ledger,
            (0..count).map(|i| anchor(height * 1_000 + i)).collect(),
        ));
    }
    (ledger, ids)
}

fn client() -> LightClient {
    LightClient::from_genesis(&genesis()).unwrap()
}

#[test]
fn a_transaction_bundle_proves_the_transaction_and_its_receipt() {
    let (ledger, ids) = ledger(6, 5);
    let id = ids[7];
    for height in [0, 3, 6] {
        let bundle = proof::transaction_bundle(&ledger, &id, height, true).unwrap();
        let claim = client().verify_bundle(&bundle.encode_to_vec()).unwrap();
        let VerifiedClaim::Transaction {
            header,
            transaction_id,
            receipt,
            transaction,
            ..
        } = claim
        else {
            panic!("not a transaction claim");
        };
        assert_eq!(header.height, if height == 0 { 6 } else { height });
        assert_eq!(transaction_id, id.0);
        let receipt = receipt.expect("revealed");
        assert_eq!(receipt.height, 3);
        assert!(matches!(
            receipt.outcome,
            Some(v1::receipt::Outcome::Applied(_))
        ));
        assert_eq!(
            transaction.unwrap(),
            ledger.committed_envelope(3, 2).unwrap().unwrap()
        );
    }
    // Before its block, the transaction cannot be proven.
    assert!(matches!(
        proof::transaction_bundle(&ledger, &id, 2, true),
        Err(proof::BundleError::CommittedLater { .. })
    ));
    // Without the right to see it, the bundle proves inclusion with the receipt's hash only.
    let hidden = proof::transaction_bundle(&ledger, &id, 0, false).unwrap();
    let Some(v1::proof_bundle::Claim::Transaction(inclusion)) = &hidden.claim else {
        panic!("not a transaction bundle");
    };
    assert!(inclusion.transaction.is_none());
    assert!(matches!(
        inclusion.receipt_proof,
        Some(v1::transaction_inclusion::ReceiptProof::ReceiptHash(_))
    ));
    assert!(matches!(
        client().verify_bundle(&hidden.encode_to_vec()),
        Ok(VerifiedClaim::Transaction { receipt: None, .. })
    ));
}

#[test]
fn a_consistency_bundle_proves_the_earlier_ledger_a_prefix() {
    let (ledger, _) = ledger(7, 3);
    for (first_size, second_height) in [(0, 0), (3, 4), (6, 0), (9, 5), (18, 7)] {
        let bundle = proof::consistency_bundle(&ledger, first_size, second_height).unwrap();
        let claim = client().verify_bundle(&bundle.encode_to_vec()).unwrap();
        let VerifiedClaim::Consistency { first, second } = claim else {
            panic!("not a consistency claim");
        };
        assert_eq!(first.ledger_size, first_size);
        assert!(first.height <= second.height);
    }
    assert!(matches!(
        proof::consistency_bundle(&ledger, 4, 0),
        Err(proof::BundleError::NoBlockAtSize { .. })
    ));
    assert!(matches!(
        proof::consistency_bundle(&ledger, 9, 3),
        Err(proof::BundleError::SizesOutOfOrder { .. })
    ));
}

/// Every single-bit change anywhere in a bundle is refused, with a reason.
fn every_bit_flip_is_refused(bytes: &[u8]) {
    let client = client();
    client
        .verify_bundle(bytes)
        .expect("the untouched bundle holds");
    let mut changed = bytes.to_vec();
    for byte in 0..changed.len() {
        for bit in 0..8 {
            changed[byte] ^= 1 << bit;
            if let Ok(claim) = client.verify_bundle(&changed) {
                panic!("a bundle with bit {bit} of byte {byte} flipped still verifies: {claim:?}");
            }
            changed[byte] ^= 1 << bit;
        }
    }
}

#[test]
fn every_one_bit_change_of_a_transaction_bundle_is_refused() {
    let (ledger, ids) = ledger(4, 3);
    let revealed = proof::transaction_bundle(&ledger, &ids[4], 0, true).unwrap();
    every_bit_flip_is_refused(&revealed.encode_to_vec());
    let hidden = proof::transaction_bundle(&ledger, &ids[1], 0, false).unwrap();
    every_bit_flip_is_refused(&hidden.encode_to_vec());
}

#[test]
fn every_one_bit_change_of_a_consistency_bundle_is_refused() {
    let (ledger, _) = ledger(5, 3);
    let bundle = proof::consistency_bundle(&ledger, 6, 0).unwrap();
    every_bit_flip_is_refused(&bundle.encode_to_vec());
}

#[test]
fn headers_need_a_quorum_of_the_genesis_validators() {
    let (ledger, ids) = ledger(3, 2);
    let bundle = proof::transaction_bundle(&ledger, &ids[0], 0, true).unwrap();
    let header = bundle.headers[0].header.clone().unwrap();
    let block_id: [u8; 32] = Sha256::digest(header.encode_to_vec()).into();
    let with_certificate = |certificate: &CommitCertificate| {
        let mut bundle = bundle.clone();
        bundle.headers[0].certificate = Some(varde_ledger::consensus_wire::certificate_to_wire(
            certificate,
        ));
        client().verify_bundle(&bundle.encode_to_vec())
    };
    // Two of four is no quorum; all four is.
    assert!(matches!(
        with_certificate(&certificate(header.height, block_id, &[1, 3])),
        Err(ProofError::Certificate { .. })
    ));
    assert!(with_certificate(&certificate(header.height, block_id, &[0, 1, 2, 3])).is_ok());
    // Signatures of another chain's validators (same keys, other chain id) do not count.
    let mut foreign = certificate(header.height, block_id, &[]);
    let keys = validator_keys_in_order();
    foreign.signatures = (0..3)
        .map(|validator| CommitSignature {
            validator,
            signature: SignedVote::sign(
                "another-chain",
                foreign.precommit(validator),
                &keys[validator as usize],
            )
            .signature,
        })
        .collect();
    assert!(matches!(
        with_certificate(&foreign),
        Err(ProofError::Certificate { .. })
    ));
    // A genesis with other validators refuses the bundle.
    let mut other = genesis();
    other.institutions[0].validator_key = Some(key(99).verifying_key().to_bytes());
    let stranger = LightClient::from_genesis(&other).unwrap();
    assert!(matches!(
        stranger.verify_bundle(&bundle.encode_to_vec()),
        Err(ProofError::ValidatorSetMismatch { .. })
    ));
    // Another chain's genesis refuses it by name.
    let mut renamed = genesis();
    renamed.chain_id = "varde-other".to_owned();
    assert!(matches!(
        LightClient::from_genesis(&renamed)
            .unwrap()
            .verify_bundle(&bundle.encode_to_vec()),
        Err(ProofError::ForeignChain { .. })
    ));
}

#[test]
fn the_validator_set_history_starts_at_genesis() {
    let (ledger, _) = ledger(1, 0);
    let served = proof::validator_set_history(&ledger).unwrap();
    assert_eq!(served.len(), 1);
    assert_eq!(client().check_validator_sets(&served).unwrap(), Vec::new());
    let mut changed = served.clone();
    changed[0].validators.swap(0, 1);
    assert!(client().check_validator_sets(&changed).is_err());
    // A later set is news to follow, not trusted: it needs the certified header before it.
    let mut grown = served.clone();
    grown.push(v1::ValidatorSetEntry {
        from_height: 5,
        ..served[0].clone()
    });
    assert_eq!(
        client().check_validator_sets(&grown).unwrap(),
        vec![grown[1].clone()]
    );
    let mut backwards = grown.clone();
    backwards[1].from_height = 1;
    assert!(matches!(
        client().check_validator_sets(&backwards),
        Err(ProofError::HistoryOutOfOrder { from_height: 1 })
    ));
}

// Record pointers and grants are proven present (with their committed message) or absent against
// a header's state root; a revocation changes the root, and the proof from before it no longer
// verifies against the new header.
#[test]
fn state_proofs_hold_against_the_header_state_root() {
    use varde_ledger::state::StateView;
    use varde_ledger::state_commitment::{self, EntryKind};
    use varde_ledger::state_tree;
    let (ledger, _) = ledger(3, 2);
    let grant_id = commit(&ledger, vec![grant_to_reader()])[0];
    let root = ledger.head().unwrap().unwrap().state_root;
    let view = StateView::new(ledger.store());
    let (proof, record) = state_commitment::prove_record(&view, HOSPITAL, "notat-2000").unwrap();
    let record = record.expect("anchored");
    let key = state_commitment::state_key(
        EntryKind::Record,
        &state_commitment::record_identity(HOSPITAL, "notat-2000"),
    );
    assert_eq!(
        state_tree::verify(&root, &key, &proof),
        Ok(Some(state_commitment::value_hash(&record)))
    );
    let mut changed = record.clone();
    changed.location_uri.push('x');
    assert_ne!(
        state_tree::verify(&root, &key, &proof),
        Ok(Some(state_commitment::value_hash(&changed)))
    );
    let (absent, none) = state_commitment::prove_record(&view, HOSPITAL, "notat-9999").unwrap();
    assert!(none.is_none());
    let absent_key = state_commitment::state_key(
        EntryKind::Record,
        &state_commitment::record_identity(HOSPITAL, "notat-9999"),
    );
    assert_eq!(state_tree::verify(&root, &absent_key, &absent), Ok(None));
    let grant_key = state_commitment::state_key(EntryKind::Grant, &grant_id.0);
    let (grant_proof, grant) = state_commitment::prove_grant(&view, &grant_id.0).unwrap();
    let grant = grant.expect("granted");
    assert!(!grant.revoked);
    assert_eq!(
        state_tree::verify(&root, &grant_key, &grant_proof),
        Ok(Some(state_commitment::value_hash(&grant)))
    );

    commit(&ledger, vec![revoke(grant_id)]);
    let revoked_root = ledger.head().unwrap().unwrap().state_root;
    assert_ne!(revoked_root, root);
    assert!(state_tree::verify(&revoked_root, &grant_key, &grant_proof).is_err());
    let view = StateView::new(ledger.store());
    let (now_proof, now) = state_commitment::prove_grant(&view, &grant_id.0).unwrap();
    let now = now.unwrap();
    assert!(now.revoked);
    assert_eq!(
        state_tree::verify(&revoked_root, &grant_key, &now_proof),
        Ok(Some(state_commitment::value_hash(&now)))
    );
}

fn access_request(purpose: Purpose) -> AccessRequest {
    AccessRequest {
        accessor: OrgNumber::parse(READER).unwrap(),
        person: None,
        record: RecordKey {
            custodian: OrgNumber::parse(HOSPITAL).unwrap(),
            record_id: "notat-2000".to_owned(),
        },
        purpose,
        at_unix_ms: 0,
    }
}

/// The consent authority's signed CheckAccess of the reader's access for `purpose` at the head,
/// decided with its proof.
fn signed_check(
    ledger: &Ledger<MemoryStore>,
    purpose: Purpose,
) -> Result<(varde_ledger::access::Decision, Option<v1::ProofBundle>), proof::BundleError> {
    check_as(ledger, purpose, CONSENT_AUTHORITY)
}

/// [`signed_check`], the proof given as to the member `viewer`.
fn check_as(
    ledger: &Ledger<MemoryStore>,
    purpose: Purpose,
    viewer: &str,
) -> Result<(varde_ledger::access::Decision, Option<v1::ProofBundle>), proof::BundleError> {
    let request = access_request(purpose);
    let mut signed = v1::CheckAccessRequest {
        auth: None,
        accessor_org_number: READER.to_owned(),
        accessor_hpr_number: String::new(),
        record: Some(v1::RecordReference {
            custodian_org_number: HOSPITAL.to_owned(),
            record_id: "notat-2000".to_owned(),
        }),
        purpose: varde_ledger::wire::purpose_to_wire(purpose) as i32,
        at_unix_ms: 0,
        with_proof: true,
    };
    signed.auth = Some(
        signing::sign_query(
            CHAIN,
            proof::CHECK_ACCESS_METHOD,
            &key(CONSENT_KEY),
            T0,
            &[9; 16],
            &signed,
        )
        .unwrap(),
    );
    let institution = member(ledger, viewer);
    let viewer = varde_ledger::visibility::Viewer::new(&institution, T0);
    proof::check_access_with_proof(ledger, &request, None, &signed.encode_to_vec(), &viewer)
}

/// The bundle with its header replaced by the ledger's latest certified header.
fn against_latest(ledger: &Ledger<MemoryStore>, bundle: &v1::ProofBundle) -> Vec<u8> {
    let mut moved = bundle.clone();
    let head = ledger.head().unwrap().unwrap().height;
    moved.headers = vec![proof::certified_header(ledger, head).unwrap().unwrap()];
    moved.encode_to_vec()
}

// A CheckAccess answer resting on a grant verifies offline with its facts (the record, the
// grant, no patient block); any one-bit change is refused; once the grant is revoked, or a block
// placed, the old proof does not verify against the new header, and the new answers prove
// themselves (an emergency read allowed, a block denying even that).
#[test]
fn a_check_access_answer_is_proven_by_its_facts() {
    let (ledger, _) = ledger(3, 2);
    let grant_id = commit(&ledger, vec![grant_to_reader()])[0];
    let (decision, bundle) = signed_check(&ledger, Purpose::Treat).unwrap();
    assert!(decision.allowed, "{decision:?}");
    assert_eq!(decision.grant_used, Some(grant_id));
    let bundle = bundle.expect("an allowance has a proof");
    // The grantee and the custodian (the grant's issuer) may see every fact and get a proof; a
    // member that may see neither the record nor the grant gets the answer without one.
    assert!(
        check_as(&ledger, Purpose::Treat, READER)
            .unwrap()
            .1
            .is_some()
    );
    assert!(
        check_as(&ledger, Purpose::Treat, HOSPITAL)
            .unwrap()
            .1
            .is_some()
    );
    assert!(
        check_as(&ledger, Purpose::Treat, VALIDATORS[2].0)
            .unwrap()
            .1
            .is_none()
    );
    let Ok(VerifiedClaim::AccessCheck { check, .. }) =
        client().verify_bundle(&bundle.encode_to_vec())
    else {
        panic!("the access check does not verify");
    };
    assert!(check.allowed && check.grant.is_some() && check.institution_blocks.is_none());
    every_bit_flip_is_refused(&bundle.encode_to_vec());
    // An answer the facts do not give is refused.
    let mut claimed = bundle.clone();
    if let Some(v1::proof_bundle::Claim::AccessCheck(check)) = &mut claimed.claim {
        check.emergency = true;
    }
    assert!(matches!(
        client().verify_bundle(&claimed.encode_to_vec()),
        Err(ProofError::AnswerMismatch { .. })
    ));
    // A question signed by no member is refused.
    let mut unsigned = bundle.clone();
    if let Some(v1::proof_bundle::Claim::AccessCheck(check)) = &mut unsigned.claim {
        let mut question = v1::CheckAccessRequest::decode(check.request.as_slice()).unwrap();
        question.auth = None;
        check.request = question.encode_to_vec();
    }
    assert!(matches!(
        client().verify_bundle(&unsigned.encode_to_vec()),
        Err(ProofError::Missing("request.auth"))
    ));

    // Revoked: the old proof fails against the new header; TREAT is now denied for want of a
    // grant (no proof), while ETREAT is allowed as emergency access, with a proof.
    commit(&ledger, vec![revoke(grant_id)]);
    assert!(matches!(
        client().verify_bundle(&against_latest(&ledger, &bundle)),
        Err(ProofError::StateProof { .. })
    ));
    let (denied, none) = signed_check(&ledger, Purpose::Treat).unwrap();
    assert!(!denied.allowed && none.is_none());
    let (emergency, proven) = signed_check(&ledger, Purpose::Etreat).unwrap();
    assert!(emergency.allowed && emergency.emergency);
    let proven = proven.expect("an emergency allowance has a proof");
    assert!(client().verify_bundle(&proven.encode_to_vec()).is_ok());

    // A patient block of the reader: the emergency proof fails against the new header, and the
    // denial proves itself by the block in force.
    commit(&ledger, vec![block_of(READER)]);
    assert!(matches!(
        client().verify_bundle(&against_latest(&ledger, &proven)),
        Err(ProofError::StateProof { .. })
    ));
    let (blocked, proof) = signed_check(&ledger, Purpose::Etreat).unwrap();
    assert!(!blocked.allowed && blocked.reason == varde_ledger::access::REASON_BLOCKED);
    let proof = proof.expect("a block's denial has a proof");
    let Ok(VerifiedClaim::AccessCheck { check, .. }) =
        client().verify_bundle(&proof.encode_to_vec())
    else {
        panic!("the block's denial does not verify");
    };
    assert_eq!(check.institution_blocks.unwrap().block_ids.len(), 1);
    // Hiding the block (claiming its absence) does not verify.
    let mut hidden = proof.clone();
    if let Some(v1::proof_bundle::Claim::AccessCheck(check)) = &mut hidden.claim {
        check.institution_blocks = None;
    }
    assert!(client().verify_bundle(&hidden.encode_to_vec()).is_err());
}

fn member(ledger: &Ledger<MemoryStore>, org: &str) -> varde_ledger::membership::Institution {
    ledger
        .membership()
        .institution(&OrgNumber::parse(org).unwrap())
        .unwrap()
        .clone()
}

fn record_key(record_id: &str) -> proof::StateEntryKey {
    proof::StateEntryKey::Record(RecordKey {
        custodian: OrgNumber::parse(HOSPITAL).unwrap(),
        record_id: record_id.to_owned(),
    })
}

fn state_entry(
    ledger: &Ledger<MemoryStore>,
    key: &proof::StateEntryKey,
    org: &str,
) -> Option<v1::ProofBundle> {
    let institution = member(ledger, org);
    let viewer = varde_ledger::visibility::Viewer::new(&institution, T0);
    proof::state_entry_bundle(ledger, key, &viewer).unwrap()
}

fn verified_entry(bundle: &v1::ProofBundle) -> Result<v1::StateEntry, ProofError> {
    match client().verify_bundle(&bundle.encode_to_vec())? {
        VerifiedClaim::StateEntry { entry, .. } => Ok(*entry),
        other => panic!("not a state entry claim: {other:?}"),
    }
}

fn entry_mut(bundle: &mut v1::ProofBundle) -> &mut v1::StateEntry {
    match &mut bundle.claim {
        Some(v1::proof_bundle::Claim::StateEntry(entry)) => entry,
        _ => panic!("not a state entry bundle"),
    }
}

// A record pointer, a grant, a patient block and a member are proven with their committed values
// to a caller who may see them, and a record's absence to its custodian; anyone else gets nothing,
// whether or not the entry exists. A changed bit, another entry's value, or a hidden value is
// refused; after a revocation the old grant proof fails against the new header.
#[test]
fn state_entry_bundles_prove_what_the_caller_may_see() {
    use v1::state_entry::Value;
    let (ledger, _) = ledger(3, 2);
    let grant_id = commit(&ledger, vec![grant_to_reader()])[0];
    let block_id = commit(&ledger, vec![block_of(VALIDATORS[2].0)])[0];
    let stranger = VALIDATORS[3].0;

    // The custodian: its record, present, and an unknown one, absent.
    let record = state_entry(&ledger, &record_key("notat-2000"), HOSPITAL).expect("custodian");
    let Some(Value::RecordValue(pointer)) = verified_entry(&record).unwrap().value else {
        panic!("the record is not proven present");
    };
    assert_eq!(pointer.record_id, "notat-2000");
    every_bit_flip_is_refused(&record.encode_to_vec());
    let absent = state_entry(&ledger, &record_key("notat-9999"), HOSPITAL).expect("custodian");
    assert_eq!(verified_entry(&absent).unwrap().value, None);
    // Another member learns neither the record nor whether it exists.
    assert!(state_entry(&ledger, &record_key("notat-2000"), stranger).is_none());
    assert!(state_entry(&ledger, &record_key("notat-9999"), stranger).is_none());

    // Another record's value under this key, or the value hidden, is refused.
    let (_, other) = {
        let view = varde_ledger::state::StateView::new(ledger.store());
        varde_ledger::state_commitment::prove_record(&view, HOSPITAL, "notat-2001").unwrap()
    };
    let mut swapped = record.clone();
    entry_mut(&mut swapped).value = other.map(Value::RecordValue);
    assert!(matches!(
        verified_entry(&swapped),
        Err(ProofError::FactMismatch("record"))
    ));
    let mut hidden = record.clone();
    entry_mut(&mut hidden).value = None;
    assert!(matches!(
        verified_entry(&hidden),
        Err(ProofError::FactMismatch("record"))
    ));

    // The grantee sees its grant; a stranger sees neither it nor an unknown id.
    let grant_key = proof::StateEntryKey::Grant(grant_id);
    let grant = state_entry(&ledger, &grant_key, READER).expect("grantee");
    let Some(Value::GrantValue(proven_grant)) = verified_entry(&grant).unwrap().value else {
        panic!("the grant is not proven present");
    };
    assert_eq!(proven_grant.grant_id, grant_id.0.to_vec());
    assert!(!proven_grant.revoked);
    assert!(state_entry(&ledger, &grant_key, stranger).is_none());
    let unknown = proof::StateEntryKey::Grant(TransactionId([5; 32]));
    assert!(state_entry(&ledger, &unknown, READER).is_none());
    // A value of another kind is refused.
    let mut other_kind = grant.clone();
    entry_mut(&mut other_kind).value = Some(Value::RecordValue(pointer.clone()));
    assert!(matches!(
        verified_entry(&other_kind),
        Err(ProofError::ExtraFact(_))
    ));

    // The consent authority that placed the block sees it; the blocked institution does not.
    let block_key = proof::StateEntryKey::AccessBlock(block_id);
    let block = state_entry(&ledger, &block_key, CONSENT_AUTHORITY).expect("issuer");
    let Some(Value::BlockValue(proven_block)) = verified_entry(&block).unwrap().value else {
        panic!("the block is not proven present");
    };
    assert!(!proven_block.lifted);
    // The block time the access rules judge logged reads by is committed with it.
    let placed = proof::certified_header(&ledger, proven_block.blocked_at_height)
        .unwrap()
        .unwrap();
    assert_eq!(
        proven_block.blocked_at_unix_ms,
        placed.header.unwrap().time_unix_ms
    );
    assert!(state_entry(&ledger, &block_key, VALIDATORS[2].0).is_none());

    // Every member may prove the membership: a validator institution with its keys and roles,
    // and the absence of an institution that is not a member; another member's value, or a
    // changed name, is refused.
    let member = proof::StateEntryKey::Member(OrgNumber::parse(READER).unwrap());
    let bundle = state_entry(&ledger, &member, stranger).expect("members are public to members");
    let Some(Value::MemberValue(proven_member)) = verified_entry(&bundle).unwrap().value else {
        panic!("the member is not proven present");
    };
    assert_eq!(proven_member.org_number, READER);
    assert_eq!(
        proven_member.validator_key,
        key(VALIDATORS[0].1).verifying_key().to_bytes().to_vec()
    );
    let outsider = proof::StateEntryKey::Member(OrgNumber::parse("922222223").unwrap());
    let absent = state_entry(&ledger, &outsider, stranger).expect("absence too");
    assert_eq!(verified_entry(&absent).unwrap().value, None);
    let mut renamed = bundle.clone();
    if let Some(Value::MemberValue(member)) = &mut entry_mut(&mut renamed).value {
        member.name.push('x');
    }
    assert!(matches!(
        verified_entry(&renamed),
        Err(ProofError::FactMismatch("member"))
    ));
    let other = state_entry(
        &ledger,
        &proof::StateEntryKey::Member(OrgNumber::parse(HOSPITAL).unwrap()),
        stranger,
    )
    .unwrap();
    let mut swapped = bundle.clone();
    entry_mut(&mut swapped).value = entry_mut(&mut other.clone()).value.clone();
    assert!(matches!(
        verified_entry(&swapped),
        Err(ProofError::FactMismatch("member"))
    ));

    // Revoked: the old grant proof fails against the new header; the new one shows it revoked.
    commit(&ledger, vec![revoke(grant_id)]);
    assert!(matches!(
        client().verify_bundle(&against_latest(&ledger, &grant)),
        Err(ProofError::StateProof { .. })
    ));
    let now = state_entry(&ledger, &grant_key, READER).expect("grantee");
    let Some(Value::GrantValue(revoked)) = verified_entry(&now).unwrap().value else {
        panic!("the revoked grant is not proven present");
    };
    assert!(revoked.revoked);
    assert_eq!(revoked.revocation_reason, "tilbakekalt");
}
