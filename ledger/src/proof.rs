//! Proofs checked from the genesis file alone: the light client and the self-contained proof
//! bundles of `proto/varde/v1/proof.proto` (`varde proof`, `varde verify`).
//!
//! A [`LightClient`] trusts nothing but the genesis file. It accepts a block header only with a
//! commit certificate whose precommits verify, strictly and every one of them, and are more than
//! two thirds of the validator set in force at the header's height, and whose block id is the
//! header's hash; then it checks inclusion and consistency proofs against the headers' ledger
//! roots, and state proofs (a CheckAccess answer's facts, one state entry in [`state_entry`])
//! against their state roots. A bundle is checked in its canonical encoding only, and every field
//! in it is bound by a signature or a hash, so that no byte of a bundle can change without the
//! check failing.

mod state_entry;

pub use state_entry::{StateEntryKey, state_entry_bundle};

use prost::Message;
use sha2::{Digest, Sha256};
use varde_consensus::{CertificateError, Ed25519Verifier, ValidatorSet};
use varde_proto::v1;
use varde_storage::{Column, Store};

use crate::access::{self, AccessRequest, Decision};
use crate::accumulator::{self, ConsistencyProof, InclusionProof};
use crate::canonical;
use crate::domain::{AccessBlock, BlockTarget, Grant, RecordPointer};
use crate::ledger::{Head, Ledger, LedgerError};
use crate::membership::{Genesis, GenesisError, Membership};
use crate::signing::{self, TransactionId};
use crate::state::keys as state_keys;
use crate::state::{StateError, StateView};
use crate::state_commitment::{self, EntryKind};
use crate::state_tree;
use crate::visibility::{self, Viewer};
use crate::wire;

/// Domain of a receipt's hash in the ledger tree's leaves.
pub const RECEIPT_DOMAIN: &[u8] = b"varde-receipt-v1";

/// SHA-256("varde-receipt-v1" || 0x00 || the encoded receipt).
pub fn receipt_hash(receipt: &v1::Receipt) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(RECEIPT_DOMAIN);
    hasher.update([0u8]);
    hasher.update(receipt.encode_to_vec());
    hasher.finalize().into()
}

/// A ledger-tree leaf's data: the transaction id, then its receipt's hash. Binding the receipt
/// into the leaf lets an inclusion proof show what the transaction did, not only that it is there.
pub fn ledger_leaf(transaction_id: &[u8; 32], receipt_hash: &[u8; 32]) -> [u8; 64] {
    let mut leaf = [0u8; 64];
    leaf[..32].copy_from_slice(transaction_id);
    leaf[32..].copy_from_slice(receipt_hash);
    leaf
}

/// Why a header, a proof or a bundle does not hold. Each says what failed, never a personal
/// value (a bundle holds pseudonyms and hashes only, and none of them is echoed).
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    #[error("the genesis file is not valid: {0}")]
    Genesis(#[from] GenesisError),
    #[error("the genesis file's validator keys do not form a validator set: {0}")]
    ValidatorKeys(String),
    #[error("the bundle is not an encoded varde.v1.ProofBundle: {0}")]
    Malformed(String),
    #[error("the bundle is not in its canonical encoding (bytes were changed, added or reordered)")]
    NotCanonical,
    #[error("the bundle is for chain `{found}`, but the genesis file is of chain `{expected}`")]
    ForeignChain { expected: String, found: String },
    #[error("field `{0}` is missing")]
    Missing(&'static str),
    #[error("field `{field}` must be {expected} bytes, not {found}")]
    Length {
        field: &'static str,
        expected: usize,
        found: usize,
    },
    #[error("the bundle holds {found} headers; a {claim} proof needs {expected}")]
    HeaderCount {
        claim: &'static str,
        expected: usize,
        found: usize,
    },
    #[error("header {height}: no validator set is in force at height {height}")]
    NoValidatorSet { height: u64 },
    #[error(
        "header {height}: its validator_set_hash is not the hash of the validator set in force at its height"
    )]
    ValidatorSetMismatch { height: u64 },
    #[error("header {height}: the certificate is for height {certified}")]
    CertificateHeight { height: u64, certified: u64 },
    #[error("header {height}: the certificate's block id is not the header's hash")]
    CertificateBlock { height: u64 },
    #[error("header {height}: the commit certificate does not hold: {error}")]
    Certificate {
        height: u64,
        error: CertificateError,
    },
    #[error("header {height}: the commit certificate is malformed: {detail}")]
    CertificateMalformed { height: u64, detail: String },
    #[error("the receipt is of another transaction")]
    ReceiptOfAnotherTransaction,
    #[error("the receipt's height {receipt} is above the header's height {header}")]
    ReceiptAfterHeader { receipt: u64, header: u64 },
    #[error("the signed transaction does not hold: {0}")]
    Transaction(String),
    #[error("the signed transaction's id is not the bundle's transaction id")]
    TransactionId,
    #[error(
        "the inclusion proof does not verify: leaf {leaf_index} is not in the ledger tree of header {height} ({tree_size} transactions)"
    )]
    Inclusion {
        leaf_index: u64,
        tree_size: u64,
        height: u64,
    },
    #[error("the headers are not in order: height {first} must come before height {second}")]
    HeadersOutOfOrder { first: u64, second: u64 },
    #[error(
        "the consistency proof does not verify: the ledger of header {first} ({first_size} transactions) is not shown to be a prefix of header {second}'s ({second_size})"
    )]
    Consistency {
        first: u64,
        first_size: u64,
        second: u64,
        second_size: u64,
    },
    #[error("field `{0}`")]
    Field(#[from] crate::wire::FieldError),
    #[error("the {fact} proof does not hold against the header's state root: {error}")]
    StateProof {
        fact: &'static str,
        error: state_tree::StateProofError,
    },
    #[error("the signed question does not hold: {0}")]
    Question(String),
    #[error("the {0} in the bundle is not the one the state proof proves")]
    FactMismatch(&'static str),
    #[error("the bundle carries a {0} the answer does not rest on")]
    ExtraFact(&'static str),
    #[error("the proven facts give the answer `{proven}`, not the bundle's `{claimed}`")]
    AnswerMismatch { proven: String, claimed: String },
    #[error(
        "a denial for want of a grant cannot be proven (it would need the absence of every grant)"
    )]
    UnprovableDenial,
    #[error(
        "the node's validator-set history does not start with the genesis file's set at height 1"
    )]
    HistoryNotFromGenesis,
    #[error(
        "the node's validator-set history is not in ascending order of height (at height {from_height})"
    )]
    HistoryOutOfOrder { from_height: u64 },
    #[error(
        "the node's validator set from height {from_height} differs from the one this client verified"
    )]
    HistoryDiverges { from_height: u64 },
    #[error(
        "the set change at height {from_height} must be proven by the header of height {}, not {height}",
        from_height - 1
    )]
    SetChangeHeader { from_height: u64, height: u64 },
    #[error(
        "the validator set from height {from_height} is not the one the certified header before it names (next_validator_set_hash)"
    )]
    SetChangeNotCertified { from_height: u64 },
}

/// A header the light client accepted: certified by a quorum of its height's validators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedHeader {
    pub height: u64,
    pub block_hash: [u8; 32],
    pub time_unix_ms: i64,
    pub ledger_size: u64,
    pub ledger_root: [u8; 32],
    pub state_root: [u8; 32],
    pub previous_hash: [u8; 32],
    /// Validators whose precommits the certificate holds.
    pub signers: usize,
}

/// What a bundle proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifiedClaim {
    Transaction {
        header: VerifiedHeader,
        transaction_id: [u8; 32],
        leaf_index: u64,
        /// The receipt, when the bundle carries it (else only its hash was proven).
        receipt: Option<v1::Receipt>,
        /// The signed transaction, when the bundle carries it (its id and signature hold).
        transaction: Option<v1::SignedTransaction>,
    },
    Consistency {
        first: VerifiedHeader,
        second: VerifiedHeader,
    },
    /// A record pointer, grant or patient block with the value shown, or absent, in the
    /// header's state.
    StateEntry {
        header: VerifiedHeader,
        entry: Box<v1::StateEntry>,
    },
    /// A CheckAccess answer that follows from facts proven against the header's state root.
    AccessCheck {
        header: VerifiedHeader,
        /// The organisation number of the member whose key signed the question.
        asked_by: String,
        /// The time the answer is for (the header's, unless the question named one).
        at_unix_ms: i64,
        question: Box<v1::CheckAccessRequest>,
        check: Box<v1::AccessCheck>,
    },
}

/// One validator set and the height it is in force from.
#[derive(Debug, Clone)]
struct SetInForce {
    from_height: u64,
    set: ValidatorSet,
    keys: Vec<[u8; 32]>,
    hash: [u8; 32],
}

/// Checks headers and proofs, trusting the genesis file alone.
#[derive(Debug, Clone)]
pub struct LightClient {
    chain_id: String,
    /// In ascending order of `from_height`; the first is the genesis set, from height 1.
    sets: Vec<SetInForce>,
}

impl LightClient {
    pub fn from_genesis(genesis: &Genesis) -> Result<Self, ProofError> {
        let membership = Membership::from_genesis(genesis)?;
        let keys = membership.validator_keys();
        let set = crate::governance::consensus_set(&keys).map_err(ProofError::ValidatorKeys)?;
        Ok(Self {
            chain_id: genesis.chain_id.clone(),
            sets: vec![SetInForce {
                from_height: 1,
                set,
                keys,
                hash: membership.validator_set_hash(),
            }],
        })
    }

    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// The validator-set history this client derived from genesis.
    pub fn validator_sets(&self) -> Vec<v1::ValidatorSetEntry> {
        self.sets
            .iter()
            .map(|entry| set_entry(entry.from_height, &entry.keys, entry.hash))
            .collect()
    }

    /// Checks a node's validator-set history against the sets this client trusts, and returns
    /// the changes it has yet to follow, in order: for each, fetch the certified header of the
    /// height before it takes effect and pass both to [`LightClient::follow_set_change`].
    pub fn check_validator_sets(
        &self,
        served: &[v1::ValidatorSetEntry],
    ) -> Result<Vec<v1::ValidatorSetEntry>, ProofError> {
        let ours = self.validator_sets();
        if served.first() != ours.first() {
            return Err(ProofError::HistoryNotFromGenesis);
        }
        for (index, entry) in served.iter().enumerate() {
            if index > 0 && entry.from_height <= served[index - 1].from_height {
                return Err(ProofError::HistoryOutOfOrder {
                    from_height: entry.from_height,
                });
            }
            if let Some(known) = ours.get(index) {
                if known != entry {
                    return Err(ProofError::HistoryDiverges {
                        from_height: entry.from_height,
                    });
                }
            }
        }
        Ok(served.iter().skip(ours.len()).cloned().collect())
    }

    /// Trusts one more validator set: `entry`, in force from `entry.from_height`, if
    /// `header_before` (the certified header of the height before) verifies against the set this
    /// client trusts there and names the entry's set as its `next_validator_set_hash`. The old
    /// set's quorum thus hands over to the new one, change by change from genesis.
    pub fn follow_set_change(
        &mut self,
        entry: &v1::ValidatorSetEntry,
        header_before: &v1::CertifiedHeader,
    ) -> Result<(), ProofError> {
        let from_height = entry.from_height;
        let last = self.sets.last().map_or(0, |set| set.from_height);
        if from_height <= last.max(1) {
            return Err(ProofError::HistoryOutOfOrder { from_height });
        }
        let verified = self.verify_header(header_before)?;
        if verified.height != from_height - 1 {
            return Err(ProofError::SetChangeHeader {
                from_height,
                height: verified.height,
            });
        }
        let keys = entry
            .validators
            .iter()
            .map(|key| <[u8; 32]>::try_from(key.as_slice()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| ProofError::ValidatorKeys("a key is not 32 bytes".to_owned()))?;
        if !keys.windows(2).all(|pair| pair[0] < pair[1]) {
            return Err(ProofError::ValidatorKeys(
                "the keys are not in ascending order, each once".to_owned(),
            ));
        }
        let hash = crate::governance::set_hash(&keys);
        let announced = header_before
            .header
            .as_ref()
            .map(|header| header.next_validator_set_hash.as_slice());
        if entry.set_hash != hash || announced != Some(hash.as_slice()) {
            return Err(ProofError::SetChangeNotCertified { from_height });
        }
        let set = crate::governance::consensus_set(&keys).map_err(ProofError::ValidatorKeys)?;
        self.sets.push(SetInForce {
            from_height,
            set,
            keys,
            hash,
        });
        Ok(())
    }

    fn set_at(&self, height: u64) -> Option<&SetInForce> {
        self.sets
            .iter()
            .rev()
            .find(|entry| entry.from_height <= height)
    }

    /// Accepts a header only with a commit certificate of its height's validators for its hash.
    pub fn verify_header(
        &self,
        certified: &v1::CertifiedHeader,
    ) -> Result<VerifiedHeader, ProofError> {
        let header = certified
            .header
            .as_ref()
            .ok_or(ProofError::Missing("header"))?;
        let certificate = certified
            .certificate
            .as_ref()
            .ok_or(ProofError::Missing("certificate"))?;
        let height = header.height;
        let in_force = self
            .set_at(height)
            .ok_or(ProofError::NoValidatorSet { height })?;
        if header.validator_set_hash != in_force.hash {
            return Err(ProofError::ValidatorSetMismatch { height });
        }
        if certificate.height != height {
            return Err(ProofError::CertificateHeight {
                height,
                certified: certificate.height,
            });
        }
        let block_hash: [u8; 32] = Sha256::digest(header.encode_to_vec()).into();
        if certificate.block_id != block_hash {
            return Err(ProofError::CertificateBlock { height });
        }
        let decoded =
            crate::consensus_wire::certificate_from_wire(certificate).map_err(|error| {
                ProofError::CertificateMalformed {
                    height,
                    detail: error.to_string(),
                }
            })?;
        decoded
            .verify(&self.chain_id, &in_force.set, &Ed25519Verifier)
            .map_err(|error| ProofError::Certificate { height, error })?;
        Ok(VerifiedHeader {
            height,
            block_hash,
            time_unix_ms: header.time_unix_ms,
            ledger_size: header.ledger_size,
            ledger_root: hash32("header.ledger_root", &header.ledger_root)?,
            state_root: hash32("header.state_root", &header.state_root)?,
            previous_hash: hash32("header.previous_hash", &header.previous_hash)?,
            signers: decoded.signatures.len(),
        })
    }

    /// Checks an encoded [`v1::ProofBundle`] and says what it proved.
    pub fn verify_bundle(&self, bytes: &[u8]) -> Result<VerifiedClaim, ProofError> {
        let mut bundle: v1::ProofBundle =
            canonical::decode_canonical(bytes).map_err(|error| match error {
                canonical::CanonicalError::NotCanonical => ProofError::NotCanonical,
                other => ProofError::Malformed(other.to_string()),
            })?;
        if bundle.chain_id != self.chain_id {
            return Err(ProofError::ForeignChain {
                expected: self.chain_id.clone(),
                found: bundle.chain_id,
            });
        }
        if bundle.set_changes.is_empty() {
            return self.verify_claim(bundle);
        }
        // The bundle's set changes are followed on a copy: what this client trusts changes only
        // by its own follow_set_change.
        let mut client = self.clone();
        client.follow_set_changes(&std::mem::take(&mut bundle.set_changes))?;
        client.verify_claim(bundle)
    }

    /// Follows `changes` from the sets this client trusts: a change it knows must be the one it
    /// holds, a new one must be proven by the header before it.
    pub fn follow_set_changes(
        &mut self,
        changes: &[v1::ValidatorSetChange],
    ) -> Result<(), ProofError> {
        for change in changes {
            let set = change
                .set
                .as_ref()
                .ok_or(ProofError::Missing("set_changes.set"))?;
            if let Some(known) = self
                .sets
                .iter()
                .find(|known| known.from_height == set.from_height)
            {
                if set_entry(known.from_height, &known.keys, known.hash) != *set {
                    return Err(ProofError::HistoryDiverges {
                        from_height: set.from_height,
                    });
                }
                continue;
            }
            let header = change
                .header_before
                .as_ref()
                .ok_or(ProofError::Missing("set_changes.header_before"))?;
            self.follow_set_change(set, header)?;
        }
        Ok(())
    }

    fn verify_claim(&self, bundle: v1::ProofBundle) -> Result<VerifiedClaim, ProofError> {
        match bundle.claim.ok_or(ProofError::Missing("claim"))? {
            v1::proof_bundle::Claim::Transaction(inclusion) => {
                let [certified] = headers("transaction", bundle.headers)?;
                let header = self.verify_header(&certified)?;
                self.verify_inclusion(header, inclusion)
            }
            v1::proof_bundle::Claim::Consistency(consistency) => {
                let [first, second] = headers("consistency", bundle.headers)?;
                let first = self.verify_header(&first)?;
                let second = self.verify_header(&second)?;
                verify_consistency(first, second, &consistency.path)
            }
            v1::proof_bundle::Claim::AccessCheck(check) => {
                let [certified] = headers("access check", bundle.headers)?;
                let header = self.verify_header(&certified)?;
                self.verify_access_check(header, check)
            }
            v1::proof_bundle::Claim::StateEntry(entry) => {
                let [certified] = headers("state entry", bundle.headers)?;
                let header = self.verify_header(&certified)?;
                self.verify_state_entry(header, entry)
            }
        }
    }

    /// Checks a transaction's inclusion, with its receipt, in a verified header's ledger tree.
    pub fn verify_inclusion(
        &self,
        header: VerifiedHeader,
        inclusion: v1::TransactionInclusion,
    ) -> Result<VerifiedClaim, ProofError> {
        let transaction_id = hash32("transaction.transaction_id", &inclusion.transaction_id)?;
        let (receipt, receipt_hash) = match inclusion
            .receipt_proof
            .ok_or(ProofError::Missing("transaction.receipt_proof"))?
        {
            v1::transaction_inclusion::ReceiptProof::Receipt(receipt) => {
                if receipt.transaction_id != transaction_id {
                    return Err(ProofError::ReceiptOfAnotherTransaction);
                }
                if receipt.height > header.height {
                    return Err(ProofError::ReceiptAfterHeader {
                        receipt: receipt.height,
                        header: header.height,
                    });
                }
                let hash = receipt_hash(&receipt);
                (Some(receipt), hash)
            }
            v1::transaction_inclusion::ReceiptProof::ReceiptHash(hash) => {
                (None, hash32("transaction.receipt_hash", &hash)?)
            }
        };
        if let Some(envelope) = &inclusion.transaction {
            let (verified, _) = signing::verify_strict(
                &self.chain_id,
                &envelope.signer_public_key,
                &envelope.signature,
                &envelope.body,
            )
            .map_err(|error| ProofError::Transaction(error.to_string()))?;
            if verified != TransactionId(transaction_id) {
                return Err(ProofError::TransactionId);
            }
        }
        let audit_path = inclusion
            .audit_path
            .iter()
            .map(|hash| hash32("transaction.audit_path", hash))
            .collect::<Result<Vec<_>, _>>()?;
        let proof = InclusionProof {
            leaf_index: inclusion.leaf_index,
            tree_size: header.ledger_size,
            audit_path,
        };
        let leaf = ledger_leaf(&transaction_id, &receipt_hash);
        if !accumulator::verify_inclusion(&leaf, &proof, &header.ledger_root) {
            return Err(ProofError::Inclusion {
                leaf_index: inclusion.leaf_index,
                tree_size: header.ledger_size,
                height: header.height,
            });
        }
        Ok(VerifiedClaim::Transaction {
            header,
            transaction_id,
            leaf_index: inclusion.leaf_index,
            receipt,
            transaction: inclusion.transaction,
        })
    }
}

fn set_entry(from_height: u64, keys: &[[u8; 32]], hash: [u8; 32]) -> v1::ValidatorSetEntry {
    v1::ValidatorSetEntry {
        from_height,
        validators: keys.iter().map(|key| key.to_vec()).collect(),
        set_hash: hash.to_vec(),
    }
}

/// The validator-set history a node serves (`Ledger.GetValidatorSets`): every set from genesis,
/// each with the first height it decides.
pub fn validator_set_history<S: Store>(
    ledger: &crate::Ledger<S>,
) -> Result<Vec<v1::ValidatorSetEntry>, crate::LedgerError> {
    Ok(ledger
        .validator_sets()?
        .iter()
        .map(crate::governance::ValidatorSetRecord::to_wire)
        .collect())
}

impl LightClient {
    /// Checks every fact in an AccessCheck against the header's state root, applies the access rules
    /// to them, and requires the bundle's answer.
    pub fn verify_access_check(
        &self,
        header: VerifiedHeader,
        check: v1::AccessCheck,
    ) -> Result<VerifiedClaim, ProofError> {
        let root = header.state_root;
        let (question, signer) = self.signed_question(&check.request)?;
        // The signer is judged by the membership of the header's height, proven against its root.
        let asker = check
            .asker
            .as_ref()
            .ok_or(ProofError::Missing("access_check.asker"))?;
        let asked_by = wire::org_number("access_check.asker.org_number", &asker.org_number)?;
        proven(
            "asker",
            &root,
            &state_commitment::state_key(EntryKind::Member, asked_by.as_str().as_bytes()),
            check.asker_proof.as_ref(),
            Some(asker),
        )?;
        if !asker
            .public_keys
            .iter()
            .any(|key| key.as_slice() == signer.as_slice())
        {
            return Err(ProofError::Question(
                "it is not signed by a submitting key of the member the bundle names".to_owned(),
            ));
        }
        let asked_by = asked_by.to_string();
        let record_reference = question
            .record
            .clone()
            .ok_or(ProofError::Missing("request.record"))?;
        let request = AccessRequest {
            accessor: wire::org_number(
                "request.accessor_org_number",
                &question.accessor_org_number,
            )?,
            person: if question.accessor_hpr_number.is_empty() {
                None
            } else {
                Some(wire::hpr_number(
                    "request.accessor_hpr_number",
                    &question.accessor_hpr_number,
                )?)
            },
            record: wire::record_reference("request.record", Some(record_reference.clone()))?,
            purpose: wire::purpose("request.purpose", question.purpose)?,
            at_unix_ms: if question.at_unix_ms == 0 {
                header.time_unix_ms
            } else {
                question.at_unix_ms
            },
        };
        let record_key = state_commitment::state_key(
            EntryKind::Record,
            &state_commitment::record_identity(
                &record_reference.custodian_org_number,
                &record_reference.record_id,
            ),
        );
        proven(
            "record",
            &root,
            &record_key,
            check.record_proof.as_ref(),
            check.record_value.as_ref(),
        )?;
        let record = check
            .record_value
            .as_ref()
            .map(wire::record_from_wire)
            .transpose()?;
        let mut blocked = false;
        match &record {
            Some(record) => {
                if record.record != request.record {
                    return Err(ProofError::FactMismatch("record"));
                }
                let institution = BlockTarget::Institution(request.accessor.clone());
                proven(
                    "institution's blocks",
                    &root,
                    &state_commitment::state_key(
                        EntryKind::ActiveBlocks,
                        &state_commitment::active_blocks_identity(&record.subject.0, &institution),
                    ),
                    check.institution_blocks_proof.as_ref(),
                    check.institution_blocks.as_ref(),
                )?;
                blocked |= check.institution_blocks.is_some();
                match &request.person {
                    Some(person) => {
                        proven(
                            "person's blocks",
                            &root,
                            &state_commitment::state_key(
                                EntryKind::ActiveBlocks,
                                &state_commitment::active_blocks_identity(
                                    &record.subject.0,
                                    &BlockTarget::Person(person.clone()),
                                ),
                            ),
                            check.person_blocks_proof.as_ref(),
                            check.person_blocks.as_ref(),
                        )?;
                        blocked |= check.person_blocks.is_some();
                    }
                    None => {
                        if check.person_blocks.is_some() || check.person_blocks_proof.is_some() {
                            return Err(ProofError::ExtraFact("person's blocks"));
                        }
                    }
                }
            }
            None => {
                if check.institution_blocks.is_some()
                    || check.institution_blocks_proof.is_some()
                    || check.person_blocks.is_some()
                    || check.person_blocks_proof.is_some()
                {
                    return Err(ProofError::ExtraFact("patient block"));
                }
            }
        }
        let grants = match &check.grant {
            Some(grant) => {
                proven(
                    "grant",
                    &root,
                    &state_commitment::state_key(EntryKind::Grant, &grant.grant_id),
                    check.grant_proof.as_ref(),
                    Some(grant),
                )?;
                vec![wire::grant_from_wire(grant)?]
            }
            None => {
                if check.grant_proof.is_some() {
                    return Err(ProofError::ExtraFact("grant proof"));
                }
                Vec::new()
            }
        };
        let decision = access::decide(
            &request,
            record.as_ref(),
            |_| Ok::<_, ProofError>(blocked),
            |_| Ok(grants),
            header.height,
        )?;
        if !decision.allowed && decision.reason == access::REASON_NO_GRANT {
            return Err(ProofError::UnprovableDenial);
        }
        let grant_used = decision
            .grant_used
            .map(|id| id.0.to_vec())
            .unwrap_or_default();
        if decision.allowed != check.allowed
            || decision.reason != check.reason
            || decision.emergency != check.emergency
            || grant_used != check.grant_id
        {
            return Err(ProofError::AnswerMismatch {
                proven: decision.reason,
                claimed: check.reason,
            });
        }
        if check.grant.is_some() && decision.grant_used.is_none() {
            return Err(ProofError::ExtraFact("grant"));
        }
        Ok(VerifiedClaim::AccessCheck {
            header,
            asked_by,
            at_unix_ms: request.at_unix_ms,
            question: Box::new(question),
            check: Box::new(check),
        })
    }

    /// The signed CheckAccess request of an AccessCheck, and the key that signed it.
    fn signed_question(
        &self,
        bytes: &[u8],
    ) -> Result<(v1::CheckAccessRequest, [u8; 32]), ProofError> {
        let question: v1::CheckAccessRequest = canonical::decode_canonical(bytes)
            .map_err(|error| ProofError::Question(error.to_string()))?;
        let auth = question
            .auth
            .as_ref()
            .ok_or(ProofError::Missing("request.auth"))?;
        let mut unsigned = question.clone();
        unsigned.auth = None;
        let key = signing::verify_query(
            &self.chain_id,
            CHECK_ACCESS_METHOD,
            auth,
            &unsigned.encode_to_vec(),
        )
        .map_err(|error| ProofError::Question(error.to_string()))?;
        Ok((question, key.to_bytes()))
    }
}

/// The method a CheckAccess question in a bundle is signed for.
pub const CHECK_ACCESS_METHOD: &str = "/varde.v1.Query/CheckAccess";

/// Checks that the first verified header's ledger is a prefix of the second's.
pub fn verify_consistency(
    first: VerifiedHeader,
    second: VerifiedHeader,
    path: &[Vec<u8>],
) -> Result<VerifiedClaim, ProofError> {
    if first.height > second.height {
        return Err(ProofError::HeadersOutOfOrder {
            first: first.height,
            second: second.height,
        });
    }
    let path = path
        .iter()
        .map(|hash| hash32("consistency.path", hash))
        .collect::<Result<Vec<_>, _>>()?;
    let proof = ConsistencyProof {
        first_size: first.ledger_size,
        second_size: second.ledger_size,
        path,
    };
    if !accumulator::verify_consistency(&proof, &first.ledger_root, &second.ledger_root) {
        return Err(ProofError::Consistency {
            first: first.height,
            first_size: first.ledger_size,
            second: second.height,
            second_size: second.ledger_size,
        });
    }
    Ok(VerifiedClaim::Consistency { first, second })
}

fn headers<const N: usize>(
    claim: &'static str,
    headers: Vec<v1::CertifiedHeader>,
) -> Result<[v1::CertifiedHeader; N], ProofError> {
    let found = headers.len();
    headers.try_into().map_err(|_| ProofError::HeaderCount {
        claim,
        expected: N,
        found,
    })
}

fn hash32(field: &'static str, bytes: &[u8]) -> Result<[u8; 32], ProofError> {
    <[u8; 32]>::try_from(bytes).map_err(|_| ProofError::Length {
        field,
        expected: 32,
        found: bytes.len(),
    })
}

/// Why a node cannot build a proof.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("transaction {0} is not committed")]
    NotCommitted(TransactionId),
    #[error("no block at height {height}; the chain is at {head}")]
    NoSuchHeight { height: u64, head: u64 },
    #[error("the transaction was committed at height {committed}, after height {height}")]
    CommittedLater { committed: u64, height: u64 },
    #[error(
        "no block ends at ledger size {size} (the ledger holds {ledger_size} transactions; a block's `ledger_size` is one)"
    )]
    NoBlockAtSize { size: u64, ledger_size: u64 },
    #[error("the first size {first_size} is above the later header's ledger size {second_size}")]
    SizesOutOfOrder { first_size: u64, second_size: u64 },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl From<StateError> for BundleError {
    fn from(error: StateError) -> Self {
        Self::Ledger(LedgerError::State(error))
    }
}

impl From<varde_storage::StorageError> for BundleError {
    fn from(error: varde_storage::StorageError) -> Self {
        Self::Ledger(LedgerError::Storage(error))
    }
}

fn corrupt(column: Column, detail: String) -> BundleError {
    BundleError::Ledger(LedgerError::State(StateError::Corrupt { column, detail }))
}

/// The header of `height` with the commit certificate stored beside its block.
pub fn certified_header<S: Store>(
    ledger: &Ledger<S>,
    height: u64,
) -> Result<Option<v1::CertifiedHeader>, BundleError> {
    let key = height.to_be_bytes();
    let Some(block) = ledger.store().get(Column::Blocks, &key)? else {
        return Ok(None);
    };
    let block = v1::Block::decode(block.as_slice())
        .map_err(|error| corrupt(Column::Blocks, error.to_string()))?;
    let Some(certificate) = ledger.certificate(height)? else {
        return Ok(None);
    };
    Ok(Some(v1::CertifiedHeader {
        header: block.header,
        certificate: Some(crate::consensus_wire::certificate_to_wire(&certificate)),
    }))
}

/// Resolves a requested height: 0 is the head; others must be committed.
fn resolve_height<S: Store>(ledger: &Ledger<S>, height: u64) -> Result<u64, BundleError> {
    let head = ledger.head()?.map_or(0, |head| head.height);
    let height = if height == 0 { head } else { height };
    if height == 0 || height > head {
        return Err(BundleError::NoSuchHeight { height, head });
    }
    Ok(height)
}

/// The validator-set changes up to `height`, each with the certified header before it, for a
/// bundle whose headers go up to `height`.
fn set_changes_through<S: Store>(
    ledger: &Ledger<S>,
    height: u64,
) -> Result<Vec<v1::ValidatorSetChange>, BundleError> {
    ledger
        .validator_sets()?
        .iter()
        .skip(1)
        .take_while(|record| record.from_height <= height)
        .map(|record| {
            Ok(v1::ValidatorSetChange {
                set: Some(record.to_wire()),
                header_before: Some(certified_header_at(ledger, record.from_height - 1)?),
            })
        })
        .collect()
}

fn certified_header_at<S: Store>(
    ledger: &Ledger<S>,
    height: u64,
) -> Result<v1::CertifiedHeader, BundleError> {
    certified_header(ledger, height)?.ok_or_else(|| {
        corrupt(
            Column::Certificates,
            format!("the block or certificate of committed height {height} is missing"),
        )
    })
}

/// A bundle proving a committed transaction against the header of `height` (0: the head). With
/// `reveal`, it carries the receipt and the signed transaction; without, the receipt's hash only.
pub fn transaction_bundle<S: Store>(
    ledger: &Ledger<S>,
    transaction_id: &TransactionId,
    height: u64,
    reveal: bool,
) -> Result<v1::ProofBundle, BundleError> {
    let receipt = ledger
        .receipt(transaction_id)?
        .ok_or(BundleError::NotCommitted(*transaction_id))?;
    let height = resolve_height(ledger, height)?;
    if receipt.height > height {
        return Err(BundleError::CommittedLater {
            committed: receipt.height,
            height,
        });
    }
    let view = StateView::new(ledger.store());
    let tree_size = size_at(&view, height)?;
    let before = size_at(&view, receipt.height - 1)?;
    let leaf_index = before + u64::from(receipt.index);
    let proof = accumulator::inclusion_proof(&view, leaf_index, tree_size)?.ok_or_else(|| {
        corrupt(
            Column::Accumulator,
            format!("leaf {leaf_index} is not within the tree of {tree_size} leaves"),
        )
    })?;
    let wire_receipt = crate::wire::receipt_to_wire(&receipt);
    let receipt_proof = if reveal {
        v1::transaction_inclusion::ReceiptProof::Receipt(wire_receipt)
    } else {
        v1::transaction_inclusion::ReceiptProof::ReceiptHash(receipt_hash(&wire_receipt).to_vec())
    };
    let transaction = if reveal {
        ledger.committed_envelope(receipt.height, receipt.index)?
    } else {
        None
    };
    Ok(v1::ProofBundle {
        chain_id: ledger.chain_id().to_owned(),
        claim: Some(v1::proof_bundle::Claim::Transaction(
            v1::TransactionInclusion {
                transaction_id: transaction_id.0.to_vec(),
                receipt_proof: Some(receipt_proof),
                transaction,
                leaf_index,
                audit_path: proof.audit_path.iter().map(|hash| hash.to_vec()).collect(),
            },
        )),
        headers: vec![certified_header_at(ledger, height)?],
        set_changes: set_changes_through(ledger, height)?,
    })
}

/// A bundle proving that the ledger of `first_size` transactions (the lowest block whose
/// `ledger_size` it is) is a prefix of the ledger at `second_height` (0: the head).
pub fn consistency_bundle<S: Store>(
    ledger: &Ledger<S>,
    first_size: u64,
    second_height: u64,
) -> Result<v1::ProofBundle, BundleError> {
    let second_height = resolve_height(ledger, second_height)?;
    let view = StateView::new(ledger.store());
    let second_size = size_at(&view, second_height)?;
    if first_size > second_size {
        return Err(BundleError::SizesOutOfOrder {
            first_size,
            second_size,
        });
    }
    let first_height = lowest_height_with_size(&view, first_size, second_height)?.ok_or(
        BundleError::NoBlockAtSize {
            size: first_size,
            ledger_size: second_size,
        },
    )?;
    let proof =
        accumulator::consistency_proof(&view, first_size, second_size)?.ok_or_else(|| {
            corrupt(
                Column::Accumulator,
                format!("no consistency proof between sizes {first_size} and {second_size}"),
            )
        })?;
    Ok(v1::ProofBundle {
        chain_id: ledger.chain_id().to_owned(),
        claim: Some(v1::proof_bundle::Claim::Consistency(
            v1::LedgerConsistency {
                path: proof.path.iter().map(|hash| hash.to_vec()).collect(),
            },
        )),
        headers: vec![
            certified_header_at(ledger, first_height)?,
            certified_header_at(ledger, second_height)?,
        ],
        set_changes: set_changes_through(ledger, second_height)?,
    })
}

fn size_at<S: Store>(view: &StateView<'_, S>, height: u64) -> Result<u64, BundleError> {
    accumulator::size_at_height(view, height)?.ok_or_else(|| {
        corrupt(
            Column::Accumulator,
            format!("the tree size of committed height {height} is missing"),
        )
    })
}

/// The lowest height in 1..=`up_to` whose tree size is `size` (sizes never shrink with height),
/// by binary search: O(log h) reads.
fn lowest_height_with_size<S: Store>(
    view: &StateView<'_, S>,
    size: u64,
    up_to: u64,
) -> Result<Option<u64>, BundleError> {
    let (mut low, mut high) = (1u64, up_to);
    while low < high {
        let middle = low + (high - low) / 2;
        if size_at(view, middle)? < size {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    Ok((low <= up_to && size_at(view, low)? == size).then_some(low))
}

fn state_proof_from_wire(
    fact: &'static str,
    proof: Option<&v1::StateProof>,
) -> Result<state_tree::StateProof, ProofError> {
    let proof = proof.ok_or(ProofError::Missing(fact))?;
    let siblings = proof
        .siblings
        .iter()
        .map(|hash| hash32("state proof sibling", hash))
        .collect::<Result<Vec<_>, _>>()?;
    let terminal = match proof.terminal.as_ref().ok_or(ProofError::Missing(fact))? {
        v1::state_proof::Terminal::Empty(_) => state_tree::Terminal::Empty,
        v1::state_proof::Terminal::Leaf(leaf) => state_tree::Terminal::Leaf {
            key: hash32("state proof leaf key", &leaf.key)?,
            value_hash: hash32("state proof leaf value hash", &leaf.value_hash)?,
        },
    };
    Ok(state_tree::StateProof { siblings, terminal })
}

fn state_proof_to_wire(proof: &state_tree::StateProof) -> v1::StateProof {
    v1::StateProof {
        siblings: proof.siblings.iter().map(|hash| hash.to_vec()).collect(),
        terminal: Some(match proof.terminal {
            state_tree::Terminal::Empty => v1::state_proof::Terminal::Empty(v1::EmptySubtree {}),
            state_tree::Terminal::Leaf { key, value_hash } => {
                v1::state_proof::Terminal::Leaf(v1::StateLeaf {
                    key: key.to_vec(),
                    value_hash: value_hash.to_vec(),
                })
            }
        }),
    }
}

/// Checks one fact: `value` is what the tree holds under `key` (or the key is absent and there
/// is no value).
fn proven<M: Message>(
    fact: &'static str,
    root: &[u8; 32],
    key: &[u8; 32],
    proof: Option<&v1::StateProof>,
    value: Option<&M>,
) -> Result<(), ProofError> {
    let proof = state_proof_from_wire(fact, proof)?;
    let found = state_tree::verify(root, key, &proof)
        .map_err(|error| ProofError::StateProof { fact, error })?;
    match (found, value) {
        (Some(hash), Some(value)) if hash == state_commitment::value_hash(value) => Ok(()),
        (None, None) => Ok(()),
        _ => Err(ProofError::FactMismatch(fact)),
    }
}

/// A CheckAccess decision at the head, with its proof bundle when proven facts show it. Decided
/// and proven over the same head: when a block commits meanwhile, it is done again.
///
/// `signed_request` is the caller's encoded CheckAccessRequest with its `auth`: the bundle's
/// question. A proof is given only when `viewer` may see every fact it carries (the record, the
/// grant relied on, each block in force), judged as if it named the record's subject: what a
/// consent authority or an auditor could list, the custodian its record and the grants it
/// issued, the grantee its grant.
pub fn check_access_with_proof<S: Store>(
    ledger: &Ledger<S>,
    request: &AccessRequest,
    at_unix_ms: Option<i64>,
    signed_request: &[u8],
    viewer: &Viewer<'_>,
) -> Result<(Decision, Option<v1::ProofBundle>), BundleError> {
    let answered = at_stable_head(ledger, |view, head| {
        let mut request = request.clone();
        request.at_unix_ms = at_unix_ms.unwrap_or(head.time_unix_ms);
        let decision = access::check_access(view, &request, head.height)?;
        let bundle = if may_see_facts(view, viewer, &request, &decision)? {
            access_check_bundle(
                ledger,
                view,
                &request,
                &decision,
                head.height,
                (signed_request, &viewer.institution.org_number),
            )?
        } else {
            None
        };
        Ok((decision, bundle))
    })?;
    match answered {
        Some(answer) => Ok(answer),
        None => Ok((ledger.check_access(request.clone(), at_unix_ms)?, None)),
    }
}

/// Runs `build` over the state at the head, again when a block commits meanwhile (what it reads
/// must all be the head's, as the header it proves against), at most five times; `None` before
/// the first block.
fn at_stable_head<S: Store, T>(
    ledger: &Ledger<S>,
    mut build: impl FnMut(&StateView<'_, S>, &Head) -> Result<T, BundleError>,
) -> Result<Option<T>, BundleError> {
    const ATTEMPTS: usize = 5;
    for _ in 0..ATTEMPTS {
        let Some(head) = ledger.head()? else {
            return Ok(None);
        };
        let built = build(&StateView::new(ledger.store()), &head)?;
        if ledger.head()?.map(|now| now.height) == Some(head.height) {
            return Ok(Some(built));
        }
    }
    Err(BundleError::Ledger(LedgerError::StaleBlock {
        executed_on: 0,
        head: ledger.head()?.map_or(0, |head| head.height),
    }))
}

/// Whether `viewer` may see every fact a proof of `decision` would carry.
fn may_see_facts<S: Store>(
    view: &StateView<'_, S>,
    viewer: &Viewer<'_>,
    request: &AccessRequest,
    decision: &Decision,
) -> Result<bool, BundleError> {
    let Some(record) =
        view.get_value::<RecordPointer>(Column::Records, &state_keys::record(&request.record))?
    else {
        return Ok(true);
    };
    let viewer = viewer.clone().naming_subject(record.subject);
    if !visibility::may_see_record(view, &viewer, &record)? {
        return Ok(false);
    }
    if let Some(grant_id) = decision.grant_used {
        match view.get_value::<Grant>(Column::Grants, &grant_id.0)? {
            Some(grant) if visibility::may_see_grant(&viewer, &grant) => {}
            _ => return Ok(false),
        }
    }
    let mut targets = vec![BlockTarget::Institution(request.accessor.clone())];
    targets.extend(request.person.clone().map(BlockTarget::Person));
    for target in &targets {
        for block_id in state_commitment::active_blocks(view, &record.subject, target)?.block_ids {
            match view.get_value::<AccessBlock>(Column::AccessBlocks, &block_id)? {
                Some(block) if visibility::may_see_access_block(&viewer, &block) => {}
                _ => return Ok(false),
            }
        }
    }
    Ok(true)
}

fn access_check_bundle<S: Store>(
    ledger: &Ledger<S>,
    view: &StateView<'_, S>,
    request: &AccessRequest,
    decision: &Decision,
    height: u64,
    (signed_request, asker): (&[u8], &crate::identifiers::OrgNumber),
) -> Result<Option<v1::ProofBundle>, BundleError> {
    if !decision.allowed && decision.reason == access::REASON_NO_GRANT {
        return Ok(None);
    }
    let custodian = request.record.custodian.to_string();
    let (record_proof, record_value) =
        state_commitment::prove_record(view, &custodian, &request.record.record_id)?;
    let mut check = v1::AccessCheck {
        request: signed_request.to_vec(),
        allowed: decision.allowed,
        reason: decision.reason.clone(),
        grant_id: decision
            .grant_used
            .map(|id| id.0.to_vec())
            .unwrap_or_default(),
        emergency: decision.emergency,
        record_proof: Some(state_proof_to_wire(&record_proof)),
        ..Default::default()
    };
    if let Some(record) = &record_value {
        let subject = crate::domain::SubjectPseudonym(
            hash32("record.subject_pseudonym", &record.subject_pseudonym)
                .map_err(|error| corrupt(Column::Records, error.to_string()))?,
        );
        let institution = BlockTarget::Institution(request.accessor.clone());
        let (proof, blocks) = state_commitment::prove_active_blocks(view, &subject, &institution)?;
        check.institution_blocks_proof = Some(state_proof_to_wire(&proof));
        check.institution_blocks = blocks;
        if let Some(person) = &request.person {
            let (proof, blocks) = state_commitment::prove_active_blocks(
                view,
                &subject,
                &BlockTarget::Person(person.clone()),
            )?;
            check.person_blocks_proof = Some(state_proof_to_wire(&proof));
            check.person_blocks = blocks;
        }
    }
    check.record_value = record_value;
    if let Some(grant_id) = decision.grant_used {
        let (proof, grant) = state_commitment::prove_grant(view, &grant_id.0)?;
        check.grant_proof = Some(state_proof_to_wire(&proof));
        check.grant = grant;
    }
    let (proof, asker) = state_commitment::prove_member(view, asker)?;
    check.asker_proof = Some(state_proof_to_wire(&proof));
    check.asker = asker;
    Ok(Some(v1::ProofBundle {
        chain_id: ledger.chain_id().to_owned(),
        claim: Some(v1::proof_bundle::Claim::AccessCheck(check)),
        headers: vec![certified_header_at(ledger, height)?],
        set_changes: set_changes_through(ledger, height)?,
    }))
}
