//! How each value Varde keeps in its database is encoded: one [`StoredValue`] implementation per
//! stored type, each a canonical protobuf encoding (no JSON anywhere that is stored or hashed).
//!
//! Values the API serves are stored as their `varde.v1` API message, converted by [`crate::wire`]
//! and [`crate::consensus_wire`]; a record pointer, grant or patient block is stored as exactly
//! the message the state tree commits to. Internal values with no API message use the
//! storage-only messages of `proto/varde/v1/storage.proto`.
//!
//! | stored type | column | message |
//! | --- | --- | --- |
//! | [`RecordPointer`] | Records | `RecordPointer` (the message the state tree commits to) |
//! | [`Grant`] | Grants | `Grant` (likewise) |
//! | [`AccessBlock`] | AccessBlocks | `AccessBlockEntry` (likewise) |
//! | [`AccessEvent`] | AccessEvents | `AccessEvent` |
//! | [`Receipt`] | Receipts | `Receipt` |
//! | [`Misbehaviour`] | Meta (`misbehaviour/…`) | `MisbehaviourRecord` |
//! | [`Head`] | Meta (`head`) | `LedgerHead` |
//! | [`Expiry`] | Meta (`replay/id/…`) | `ReplayExpiry` |
//! | [`Genesis`] | Meta (`genesis`) | `Genesis` |
//! | [`Proposal`] | Meta (`gov/proposal/…`) | `GovernanceProposal` |
//! | [`ValidatorSetRecord`] | Meta (`validator_sets/…`) | `ValidatorSetEntry` |
//! | member institution | Meta (`member/…`) | `Member` ([`crate::governance`]) |
//! | [`CommitCertificate`] | Certificates | `CommitCertificate` |
//! | [`SafetyState`] | ConsensusSafety | `SafetyState` |
//!
//! Decoding checks a stored value as wire input is checked: only the canonical encoding
//! ([`crate::canonical`]) of a message whose fields convert is accepted; anything else is
//! [`StateError::Corrupt`], naming the column and the field, never the value.

use prost::Message;
use varde_consensus::{CommitCertificate, SafetyState};
use varde_proto::v1;
use varde_storage::Column;

use crate::canonical;
use crate::consensus_wire;
use crate::domain::{
    AccessBlock, AccessEvent, Expiry, Grant, Misbehaviour, Receipt, RecordPointer,
};
use crate::governance::{self, Proposal, ValidatorSetRecord};
use crate::identifiers::OrgNumber;
use crate::ledger::Head;
use crate::membership::{Genesis, Institution, Role};
use crate::state::StateError;
use crate::wire;

/// A value as Varde stores it: encoded once, decoded with the checks of wire input.
pub trait StoredValue: Sized {
    /// The canonical protobuf encoding.
    fn encode(&self) -> Vec<u8>;

    /// Decodes a value read from `column`; anything but a valid canonical encoding is
    /// [`StateError::Corrupt`] naming `column`.
    fn decode(column: Column, bytes: &[u8]) -> Result<Self, StateError>;
}

fn corrupt(column: Column, detail: impl std::fmt::Display) -> StateError {
    StateError::Corrupt {
        column,
        detail: detail.to_string(),
    }
}

/// Decodes the canonical encoding of `M`, or names what is wrong.
fn message<M: Message + Default>(column: Column, bytes: &[u8]) -> Result<M, StateError> {
    canonical::decode_canonical(bytes).map_err(|error| corrupt(column, error))
}

fn bytes32(column: Column, field: &str, value: &[u8]) -> Result<[u8; 32], StateError> {
    <[u8; 32]>::try_from(value).map_err(|_| {
        corrupt(
            column,
            format!("field `{field}` must be 32 bytes, got {}", value.len()),
        )
    })
}

impl StoredValue for RecordPointer {
    fn encode(&self) -> Vec<u8> {
        wire::record_to_wire(self).encode_to_vec()
    }

    fn decode(column: Column, bytes: &[u8]) -> Result<Self, StateError> {
        let stored: v1::RecordPointer = message(column, bytes)?;
        wire::record_from_wire(&stored).map_err(|error| corrupt(column, error))
    }
}

impl StoredValue for Grant {
    fn encode(&self) -> Vec<u8> {
        wire::grant_to_wire(self).encode_to_vec()
    }

    fn decode(column: Column, bytes: &[u8]) -> Result<Self, StateError> {
        let stored: v1::Grant = message(column, bytes)?;
        wire::grant_from_wire(&stored).map_err(|error| corrupt(column, error))
    }
}

impl StoredValue for AccessBlock {
    fn encode(&self) -> Vec<u8> {
        wire::access_block_to_wire(self).encode_to_vec()
    }

    fn decode(column: Column, bytes: &[u8]) -> Result<Self, StateError> {
        let stored: v1::AccessBlockEntry = message(column, bytes)?;
        wire::access_block_from_wire(&stored).map_err(|error| corrupt(column, error))
    }
}

impl StoredValue for AccessEvent {
    fn encode(&self) -> Vec<u8> {
        wire::access_event_to_wire(self).encode_to_vec()
    }

    fn decode(column: Column, bytes: &[u8]) -> Result<Self, StateError> {
        let stored: v1::AccessEvent = message(column, bytes)?;
        if !stored.accessor_institution_name.is_empty() {
            return Err(corrupt(
                column,
                "a stored access event carries a served-only institution name",
            ));
        }
        wire::access_event_from_wire(&stored).map_err(|error| corrupt(column, error))
    }
}

impl StoredValue for Receipt {
    fn encode(&self) -> Vec<u8> {
        wire::receipt_to_wire(self).encode_to_vec()
    }

    fn decode(column: Column, bytes: &[u8]) -> Result<Self, StateError> {
        let stored: v1::Receipt = message(column, bytes)?;
        wire::receipt_from_wire(&stored).map_err(|error| corrupt(column, error))
    }
}

impl StoredValue for Misbehaviour {
    fn encode(&self) -> Vec<u8> {
        // The evidence was encoded by this ledger when it recorded the report
        // (`consensus_wire::evidence_to_wire`), so it decodes.
        wire::misbehaviour_to_wire(self)
            .expect("recorded evidence is an encoded varde.v1.Evidence")
            .encode_to_vec()
    }

    fn decode(column: Column, bytes: &[u8]) -> Result<Self, StateError> {
        let stored: v1::MisbehaviourRecord = message(column, bytes)?;
        wire::misbehaviour_from_wire(&stored).map_err(|error| corrupt(column, error))
    }
}

impl StoredValue for Head {
    fn encode(&self) -> Vec<u8> {
        v1::LedgerHead {
            height: self.height,
            block_hash: self.block_hash.to_vec(),
            time_unix_ms: self.time_unix_ms,
            state_root: self.state_root.to_vec(),
            ledger_root: self.ledger_root.to_vec(),
        }
        .encode_to_vec()
    }

    fn decode(column: Column, bytes: &[u8]) -> Result<Self, StateError> {
        let stored: v1::LedgerHead = message(column, bytes)?;
        if stored.height == 0 {
            return Err(corrupt(column, "the head is at height 0"));
        }
        Ok(Head {
            height: stored.height,
            block_hash: bytes32(column, "head.block_hash", &stored.block_hash)?,
            time_unix_ms: stored.time_unix_ms,
            state_root: bytes32(column, "head.state_root", &stored.state_root)?,
            ledger_root: bytes32(column, "head.ledger_root", &stored.ledger_root)?,
        })
    }
}

impl StoredValue for Expiry {
    fn encode(&self) -> Vec<u8> {
        v1::ReplayExpiry {
            height: self.height,
            unix_ms: self.unix_ms,
        }
        .encode_to_vec()
    }

    fn decode(column: Column, bytes: &[u8]) -> Result<Self, StateError> {
        let stored: v1::ReplayExpiry = message(column, bytes)?;
        if stored.height.is_none() && stored.unix_ms.is_none() {
            return Err(corrupt(column, "a replay expiry without a bound"));
        }
        Ok(Expiry {
            height: stored.height,
            unix_ms: stored.unix_ms,
        })
    }
}

fn role_from_wire(column: Column, value: i32) -> Result<Role, StateError> {
    match v1::InstitutionRole::try_from(value) {
        Ok(v1::InstitutionRole::Validator) => Ok(Role::Validator),
        Ok(v1::InstitutionRole::Submitter) => Ok(Role::Submitter),
        Ok(v1::InstitutionRole::ConsentAuthority) => Ok(Role::ConsentAuthority),
        Ok(v1::InstitutionRole::Auditor) => Ok(Role::Auditor),
        _ => Err(corrupt(
            column,
            format!("field `institutions.roles` has no role {value}"),
        )),
    }
}

impl StoredValue for Genesis {
    fn encode(&self) -> Vec<u8> {
        v1::Genesis {
            chain_id: self.chain_id.clone(),
            genesis_time_unix_ms: self.genesis_time_unix_ms,
            institutions: self.institutions.iter().map(wire::member_to_wire).collect(),
        }
        .encode_to_vec()
    }

    /// The genesis as stored; whether its membership holds is `Membership::from_genesis`'s check.
    fn decode(column: Column, bytes: &[u8]) -> Result<Self, StateError> {
        let stored: v1::Genesis = message(column, bytes)?;
        let institutions = stored
            .institutions
            .into_iter()
            .map(|institution| {
                Ok(Institution {
                    org_number: OrgNumber::parse(&institution.org_number).map_err(|error| {
                        corrupt(column, format!("field `institutions.org_number` {error}"))
                    })?,
                    name: institution.name,
                    roles: institution
                        .roles
                        .iter()
                        .map(|role| role_from_wire(column, *role))
                        .collect::<Result<_, _>>()?,
                    public_keys: institution
                        .public_keys
                        .iter()
                        .map(|key| bytes32(column, "institutions.public_keys", key))
                        .collect::<Result<_, _>>()?,
                    validator_key: if institution.validator_key.is_empty() {
                        None
                    } else {
                        Some(bytes32(
                            column,
                            "institutions.validator_key",
                            &institution.validator_key,
                        )?)
                    },
                })
            })
            .collect::<Result<_, StateError>>()?;
        Ok(Genesis {
            chain_id: stored.chain_id,
            genesis_time_unix_ms: stored.genesis_time_unix_ms,
            institutions,
        })
    }
}

impl StoredValue for Proposal {
    fn encode(&self) -> Vec<u8> {
        governance::proposal_to_wire(self).encode_to_vec()
    }

    fn decode(column: Column, bytes: &[u8]) -> Result<Self, StateError> {
        let stored: v1::GovernanceProposal = message(column, bytes)?;
        governance::proposal_from_wire(stored).map_err(|error| corrupt(column, error))
    }
}

impl StoredValue for ValidatorSetRecord {
    fn encode(&self) -> Vec<u8> {
        self.to_wire().encode_to_vec()
    }

    fn decode(column: Column, bytes: &[u8]) -> Result<Self, StateError> {
        let stored: v1::ValidatorSetEntry = message(column, bytes)?;
        let keys = stored
            .validators
            .iter()
            .map(|key| bytes32(column, "validators", key))
            .collect::<Result<Vec<_>, _>>()?;
        let record = ValidatorSetRecord {
            from_height: stored.from_height,
            keys,
        };
        if record.hash().as_slice() != stored.set_hash {
            return Err(corrupt(
                column,
                "a validator set whose set_hash does not match it",
            ));
        }
        Ok(record)
    }
}

impl StoredValue for CommitCertificate {
    fn encode(&self) -> Vec<u8> {
        consensus_wire::certificate_to_wire(self).encode_to_vec()
    }

    fn decode(column: Column, bytes: &[u8]) -> Result<Self, StateError> {
        let stored: v1::CommitCertificate = message(column, bytes)?;
        consensus_wire::certificate_from_wire(&stored).map_err(|error| corrupt(column, error))
    }
}

impl StoredValue for SafetyState {
    fn encode(&self) -> Vec<u8> {
        consensus_wire::safety_state_to_wire(self).encode_to_vec()
    }

    fn decode(column: Column, bytes: &[u8]) -> Result<Self, StateError> {
        let stored: v1::SafetyState = message(column, bytes)?;
        consensus_wire::safety_state_from_wire(stored).map_err(|error| corrupt(column, error))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use varde_consensus::{
        Block, BlockId, CommitSignature, Evidence, Proposal, ProposalMessage, SignedProposal,
        SignedVote, SigningKey, Step, ValidBlock, Vote, VoteKind,
    };
    use varde_storage::{MemoryStore, Store, WriteBatch};

    use super::*;
    use crate::domain::*;
    use crate::identifiers::HprNumber;
    use crate::signing::TransactionId;
    use crate::state::StateView;

    const CHAIN: &str = "varde-test-1";

    fn org(text: &str) -> OrgNumber {
        OrgNumber::parse(text).unwrap()
    }

    fn record_key() -> RecordKey {
        RecordKey {
            custodian: org("974760673"),
            record_id: "journal-1".to_owned(),
        }
    }

    fn record(retracted: bool) -> RecordPointer {
        RecordPointer {
            record: record_key(),
            subject: SubjectPseudonym([3; 32]),
            category_code: "psychiatry".to_owned(),
            location_uri: "https://ehr.example/records/1".to_owned(),
            content_sha256: [4; 32],
            confidentiality: Confidentiality::Restricted,
            created_at_unix_ms: 1_780_000_000_000,
            version: 2,
            retracted: retracted.then(|| Retraction {
                height: 9,
                reason: "deleted at the source".to_owned(),
            }),
            last_transaction_id: TransactionId([5; 32]),
            anchored_at_height: 4,
        }
    }

    fn grant(revoked: bool) -> Grant {
        Grant {
            grant_id: TransactionId([6; 32]),
            terms: GrantTerms {
                issuer: org("974760673"),
                subject: SubjectPseudonym([3; 32]),
                grantee: org("983544622"),
                grantee_person: Some(HprNumber::parse("1234567").unwrap()),
                grantee_department: Some("Akuttmottak".to_owned()),
                scope: GrantScope::Record(record_key()),
                purposes: vec![Purpose::Treat, Purpose::Coc],
                valid_from_unix_ms: 1_780_000_000_000,
                valid_until_unix_ms: 1_790_000_000_000,
                basis: GrantBasis::PatientConsent {
                    reference: Some("consent form 7".to_owned()),
                },
            },
            granted_at_height: 5,
            revoked: revoked.then(|| Revocation {
                height: 8,
                unix_ms: 1_785_000_000_000,
                reason: "patient withdrew consent".to_owned(),
            }),
        }
    }

    fn access_block(lifted: bool) -> AccessBlock {
        AccessBlock {
            block_id: TransactionId([7; 32]),
            issuer: org("983544622"),
            subject: SubjectPseudonym([3; 32]),
            target: BlockTarget::Person(HprNumber::parse("7654321").unwrap()),
            blocked_at_height: 6,
            lifted_at_height: lifted.then_some(10),
            blocked_at_unix_ms: 1_781_000_000_000,
            lifted_at_unix_ms: lifted.then_some(1_782_000_000_000),
        }
    }

    fn access_event(basis: AccessBasis) -> AccessEvent {
        let emergency = matches!(basis, AccessBasis::Emergency { .. });
        AccessEvent {
            event_id: TransactionId([8; 32]),
            report: AccessReport {
                accessor: org("983544622"),
                accessor_person: HprNumber::parse("1234567").unwrap(),
                record: record_key(),
                purpose: if emergency {
                    Purpose::Etreat
                } else {
                    Purpose::Treat
                },
                accessed_at_unix_ms: 1_781_500_000_000,
                attestation_sha256: Some([9; 32]),
                basis: basis.clone(),
            },
            subject: SubjectPseudonym([3; 32]),
            classification: if emergency {
                AccessClassification::Emergency
            } else {
                AccessClassification::Authorised
            },
            flagged: emergency,
            reason: "grant valid".to_owned(),
            grant_id: match basis {
                AccessBasis::Grant(id) => Some(id),
                _ => None,
            },
            height: 7,
        }
    }

    fn key(byte: u8) -> SigningKey {
        SigningKey::from_bytes(&[byte; 32])
    }

    fn vote(kind: VoteKind, round: u32, block: Option<u8>, validator: u32) -> SignedVote {
        SignedVote::sign(
            CHAIN,
            Vote {
                kind,
                height: 3,
                round,
                block_id: block.map(|byte| BlockId([byte; 32])),
                validator,
            },
            &key(validator as u8 + 1),
        )
    }

    fn misbehaviour() -> Misbehaviour {
        let evidence = Evidence::DuplicateVote {
            first: vote(VoteKind::Prevote, 0, Some(1), 2),
            second: vote(VoteKind::Prevote, 0, Some(2), 2),
        };
        Misbehaviour {
            offender: key(3).verifying_key().to_bytes(),
            slot: MisbehaviourSlot::of(&evidence),
            recorded_at_height: 11,
            reporter: org("974760673"),
            report_id: TransactionId([10; 32]),
            evidence: consensus_wire::evidence_to_wire(&evidence).encode_to_vec(),
        }
    }

    fn genesis() -> Genesis {
        Genesis {
            chain_id: CHAIN.to_owned(),
            genesis_time_unix_ms: 1_780_000_000_000,
            institutions: vec![
                Institution {
                    org_number: org("974760673"),
                    name: "Oslo universitetssykehus HF".to_owned(),
                    roles: vec![Role::Validator, Role::Submitter],
                    public_keys: vec![[11; 32], [12; 32]],
                    validator_key: Some(key(1).verifying_key().to_bytes()),
                },
                Institution {
                    org_number: org("983544622"),
                    name: "Helsedirektoratet".to_owned(),
                    roles: vec![Role::ConsentAuthority, Role::Auditor],
                    public_keys: vec![[13; 32]],
                    validator_key: None,
                },
            ],
        }
    }

    fn certificate() -> CommitCertificate {
        let block_id = BlockId([14; 32]);
        let precommit = vote(VoteKind::Precommit, 1, Some(14), 0);
        CommitCertificate {
            height: 3,
            round: 1,
            block_id,
            signatures: vec![CommitSignature {
                validator: 0,
                signature: precommit.signature,
            }],
        }
    }

    fn safety_state() -> SafetyState {
        let block = Block {
            id: BlockId([15; 32]),
            payload: Arc::from(vec![1u8, 2, 3, 4]),
        };
        let proposal = SignedProposal::sign(
            CHAIN,
            Proposal {
                height: 3,
                round: 2,
                valid_round: Some(1),
                block_id: block.id,
                proposer: 0,
            },
            &key(1),
        );
        SafetyState {
            height: 3,
            round: 2,
            step: Step::Precommit,
            locked: Some((1, block.id)),
            valid: Some(ValidBlock {
                round: 1,
                block: block.clone(),
                prevotes: vec![
                    vote(VoteKind::Prevote, 1, Some(15), 0),
                    vote(VoteKind::Prevote, 1, Some(15), 1),
                ],
            }),
            round_proof: vec![vote(VoteKind::Precommit, 1, None, 2)],
            own_proposal: Some(ProposalMessage {
                signed: proposal,
                block,
                proof_of_lock: vec![vote(VoteKind::Prevote, 1, Some(15), 1)],
            }),
            own_prevote: Some(vote(VoteKind::Prevote, 2, Some(15), 0)),
            own_precommit: Some(vote(VoteKind::Precommit, 2, None, 0)),
        }
    }

    /// Encodes, decodes, and checks the value came back unchanged and its encoding is canonical
    /// (encoding the decoded value gives the same bytes).
    fn round_trips<T: StoredValue + PartialEq + std::fmt::Debug>(column: Column, value: &T) {
        let bytes = value.encode();
        let decoded = T::decode(column, &bytes).unwrap();
        assert_eq!(&decoded, value);
        assert_eq!(decoded.encode(), bytes);
    }

    // Every stored type, in each of its shapes, comes back from its stored encoding unchanged.
    #[test]
    fn every_stored_type_round_trips() {
        for retracted in [false, true] {
            round_trips(Column::Records, &record(retracted));
        }
        for revoked in [false, true] {
            round_trips(Column::Grants, &grant(revoked));
        }
        let mut statutory = grant(false);
        statutory.terms.scope = GrantScope::AllRecords;
        statutory.terms.grantee_person = None;
        statutory.terms.grantee_department = None;
        statutory.terms.basis = GrantBasis::Statutory {
            name: "helsepersonelloven § 45".to_owned(),
        };
        round_trips(Column::Grants, &statutory);
        for lifted in [false, true] {
            round_trips(Column::AccessBlocks, &access_block(lifted));
        }
        let mut institution_block = access_block(false);
        institution_block.target = BlockTarget::Institution(org("974760673"));
        round_trips(Column::AccessBlocks, &institution_block);
        for basis in [
            AccessBasis::Grant(TransactionId([6; 32])),
            AccessBasis::Emergency {
                justification: "unconscious patient".to_owned(),
            },
            AccessBasis::None,
        ] {
            round_trips(Column::AccessEvents, &access_event(basis));
        }
        for outcome in [
            Outcome::Applied {
                classification: None,
            },
            Outcome::Applied {
                classification: Some(AccessClassification::Unauthorised),
            },
            Outcome::Rejected {
                reason: RejectionReason::AccessTimeOutsideWindow,
                detail: "too early".to_owned(),
            },
        ] {
            let receipt = Receipt {
                transaction_id: TransactionId([16; 32]),
                height: 12,
                index: 3,
                outcome,
            };
            round_trips(Column::Receipts, &receipt);
        }
        round_trips(Column::Meta, &misbehaviour());
        round_trips(
            Column::Meta,
            &Head {
                height: 12,
                block_hash: [17; 32],
                time_unix_ms: 1_781_000_000_000,
                state_root: [18; 32],
                ledger_root: [19; 32],
            },
        );
        for expiry in [
            Expiry {
                height: Some(40),
                unix_ms: None,
            },
            Expiry {
                height: None,
                unix_ms: Some(1_781_000_000_000),
            },
            Expiry {
                height: Some(40),
                unix_ms: Some(1_781_000_000_000),
            },
        ] {
            round_trips(Column::Meta, &expiry);
        }
        round_trips(Column::Meta, &genesis());
        round_trips(Column::Certificates, &certificate());
        round_trips(Column::ConsensusSafety, &safety_state());
    }

    // Every rejection reason survives its receipt's stored encoding (the two mappings agree).
    #[test]
    fn every_rejection_reason_round_trips() {
        use RejectionReason::*;
        for reason in [
            UnknownSigner,
            SignerNotInstitution,
            MissingRole,
            Expired,
            Duplicate,
            ExpiryTooFar,
            UnknownRecord,
            RecordExists,
            RecordRetracted,
            NotCustodian,
            NotAuthorisedIssuer,
            UnknownGrant,
            GrantAlreadyRevoked,
            UnknownBlock,
            BlockAlreadyLifted,
            UnknownInstitution,
            SubjectMismatch,
            InvalidEvidence,
            EvidenceAlreadyRecorded,
            AccessTimeOutsideWindow,
            UnknownProposal,
            ProposalClosed,
            AlreadyApproved,
            InvalidChange,
        ] {
            let receipt = Receipt {
                transaction_id: TransactionId([16; 32]),
                height: 1,
                index: 0,
                outcome: Outcome::Rejected {
                    reason,
                    detail: String::new(),
                },
            };
            round_trips(Column::Receipts, &receipt);
        }
    }

    fn corrupt_in<T: StoredValue + std::fmt::Debug>(column: Column, bytes: &[u8]) -> String {
        match T::decode(column, bytes) {
            Err(StateError::Corrupt {
                column: named,
                detail,
            }) => {
                assert_eq!(named, column);
                detail
            }
            other => panic!("expected Corrupt in {column}, got {other:?}"),
        }
    }

    // A value that is not a stored encoding, read through the state view from each column, is
    // refused as corrupt, naming that column, never as a panic.
    #[test]
    fn garbage_in_each_column_is_corrupt() {
        let store = MemoryStore::new();
        let garbage: &[u8] = &[0xff, 0x01, 0x80];
        let json = br#"{"height":1}"#;
        let columns = [
            Column::Records,
            Column::Grants,
            Column::AccessBlocks,
            Column::AccessEvents,
            Column::Receipts,
            Column::Meta,
            Column::Certificates,
            Column::ConsensusSafety,
        ];
        let mut batch = WriteBatch::new();
        for column in columns {
            batch.put(column, b"garbage".to_vec(), garbage.to_vec());
            batch.put(column, b"json".to_vec(), json.to_vec());
        }
        store.write(batch).unwrap();
        let view = StateView::new(&store);
        fn refused<T: StoredValue + std::fmt::Debug, S: Store>(
            view: &StateView<'_, S>,
            column: Column,
        ) {
            for key in [&b"garbage"[..], b"json"] {
                match view.get_value::<T>(column, key) {
                    Err(StateError::Corrupt { column: named, .. }) => assert_eq!(named, column),
                    other => panic!("expected Corrupt in {column}, got {other:?}"),
                }
            }
        }
        refused::<RecordPointer, _>(&view, Column::Records);
        refused::<Grant, _>(&view, Column::Grants);
        refused::<AccessBlock, _>(&view, Column::AccessBlocks);
        refused::<AccessEvent, _>(&view, Column::AccessEvents);
        refused::<Receipt, _>(&view, Column::Receipts);
        refused::<Head, _>(&view, Column::Meta);
        refused::<Expiry, _>(&view, Column::Meta);
        refused::<Misbehaviour, _>(&view, Column::Meta);
        refused::<Genesis, _>(&view, Column::Meta);
        refused::<CommitCertificate, _>(&view, Column::Certificates);
        refused::<SafetyState, _>(&view, Column::ConsensusSafety);
    }

    // Well-formed protobuf that does not hold a valid value is refused like bad wire input, with
    // the field named and no value echoed: a wrong-length id, a missing part, an unknown enum, a
    // non-canonical encoding, and stored extras that contradict the committed message.
    #[test]
    fn malformed_values_are_corrupt() {
        let mut wire = wire::record_to_wire(&record(false));
        wire.last_transaction_id = vec![1; 31];
        let detail = corrupt_in::<RecordPointer>(Column::Records, &wire.encode_to_vec());
        assert!(detail.contains("record.last_transaction_id"), "{detail}");

        let mut wire = wire::record_to_wire(&record(false));
        wire.retracted_at_height = 3;
        let detail = corrupt_in::<RecordPointer>(Column::Records, &wire.encode_to_vec());
        assert!(detail.contains("record.retraction"), "{detail}");

        let mut wire = wire::grant_to_wire(&grant(false));
        wire.revocation_reason = "never revoked".to_owned();
        let detail = corrupt_in::<Grant>(Column::Grants, &wire.encode_to_vec());
        assert!(detail.contains("grant.revocation"), "{detail}");

        let mut wire = wire::access_block_to_wire(&access_block(false));
        wire.lifted_at_unix_ms = 1;
        let detail = corrupt_in::<AccessBlock>(Column::AccessBlocks, &wire.encode_to_vec());
        assert!(detail.contains("access_block.lifted_at"), "{detail}");

        let mut event = wire::access_event_to_wire(&access_event(AccessBasis::None));
        event.classification = 42;
        let detail = corrupt_in::<AccessEvent>(Column::AccessEvents, &event.encode_to_vec());
        assert!(detail.contains("access_event.classification"), "{detail}");

        let mut receipt = wire::receipt_to_wire(&Receipt {
            transaction_id: TransactionId([16; 32]),
            height: 1,
            index: 0,
            outcome: Outcome::Applied {
                classification: None,
            },
        });
        receipt.outcome = None;
        corrupt_in::<Receipt>(Column::Receipts, &receipt.encode_to_vec());

        // A non-canonical encoding: the head with an unknown field appended.
        let mut bytes = Head {
            height: 1,
            block_hash: [1; 32],
            time_unix_ms: 0,
            state_root: [2; 32],
            ledger_root: [3; 32],
        }
        .encode();
        bytes.extend_from_slice(&[0x78, 0x01]);
        corrupt_in::<Head>(Column::Meta, &bytes);

        corrupt_in::<Expiry>(Column::Meta, &v1::ReplayExpiry::default().encode_to_vec());

        let mut certificate = consensus_wire::certificate_to_wire(&certificate());
        certificate.signatures[0].signature.pop();
        corrupt_in::<CommitCertificate>(Column::Certificates, &certificate.encode_to_vec());

        let mut state = consensus_wire::safety_state_to_wire(&safety_state());
        state.step = 0;
        let detail = corrupt_in::<SafetyState>(Column::ConsensusSafety, &state.encode_to_vec());
        assert!(detail.contains("step"), "{detail}");
        let mut state = consensus_wire::safety_state_to_wire(&safety_state());
        state.locked.as_mut().unwrap().block_id.truncate(5);
        corrupt_in::<SafetyState>(Column::ConsensusSafety, &state.encode_to_vec());

        let mut genesis = v1::Genesis::decode(genesis().encode().as_slice()).unwrap();
        genesis.institutions[0].org_number = "974760674".to_owned();
        corrupt_in::<Genesis>(Column::Meta, &genesis.encode_to_vec());
    }

    // A record pointer, grant or patient block is stored as exactly the API message the state
    // tree commits to, so a light client hashing the message it is served gets the same value
    // hash, and every field the access rules read is committed.
    #[test]
    fn stored_state_values_are_the_committed_api_messages() {
        let record = record(true);
        assert_eq!(
            record.encode(),
            wire::record_to_wire(&record).encode_to_vec()
        );
        let grant = grant(true);
        assert_eq!(grant.encode(), wire::grant_to_wire(&grant).encode_to_vec());
        let block = access_block(true);
        assert_eq!(
            block.encode(),
            wire::access_block_to_wire(&block).encode_to_vec()
        );
    }

    // The genesis hash is over the protobuf encoding, domain-separated, and changes with any
    // field of the genesis, including the order of its institutions.
    #[test]
    fn genesis_hash_follows_the_protobuf_encoding() {
        use sha2::{Digest, Sha256};
        let genesis = genesis();
        let expected: [u8; 32] =
            Sha256::digest([&b"varde-genesis-v1\x00"[..], &genesis.encode()].concat()).into();
        assert_eq!(genesis.hash(), expected);
        let mut renamed = genesis.clone();
        renamed.institutions[1].name.push('!');
        assert_ne!(renamed.hash(), genesis.hash());
        let mut reordered = genesis.clone();
        reordered.institutions.reverse();
        assert_ne!(reordered.hash(), genesis.hash());
    }
}
