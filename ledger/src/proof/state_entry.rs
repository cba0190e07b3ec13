//! Proofs of one state entry, a record pointer, a grant, a patient block or a member: the bundle a node
//! builds for a caller who may see the entry (or would see it if it existed), and the light
//! client's check of it against a certified header's state root.

use varde_proto::v1;
use varde_storage::{Column, Store};

use super::{
    BundleError, LightClient, ProofError, VerifiedClaim, VerifiedHeader, at_stable_head,
    certified_header_at, hash32, proven, set_changes_through, state_proof_to_wire,
};
use crate::domain::{AccessBlock, Grant, RecordKey, RecordPointer};
use crate::identifiers::OrgNumber;
use crate::ledger::Ledger;
use crate::signing::TransactionId;
use crate::state::{StateView, keys};
use crate::state_commitment::{self, EntryKind};
use crate::visibility::{self, Viewer};
use crate::wire;

/// The entry a state proof is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateEntryKey {
    Record(RecordKey),
    Grant(TransactionId),
    AccessBlock(TransactionId),
    Member(OrgNumber),
}

impl StateEntryKey {
    /// The key as asked over the wire (`GetStateProofRequest.entry`).
    pub fn from_wire(entry: &v1::get_state_proof_request::Entry) -> Result<Self, ProofError> {
        use v1::get_state_proof_request::Entry;
        Ok(match entry {
            Entry::Record(record) => {
                Self::Record(wire::record_reference("record", Some(record.clone()))?)
            }
            Entry::GrantId(id) => Self::Grant(TransactionId(hash32("grant_id", id)?)),
            Entry::BlockId(id) => Self::AccessBlock(TransactionId(hash32("block_id", id)?)),
            Entry::MemberOrgNumber(org_number) => {
                Self::Member(wire::org_number("member_org_number", org_number)?)
            }
        })
    }

    fn to_wire(&self) -> v1::state_entry::Key {
        match self {
            Self::Record(record) => v1::state_entry::Key::Record(v1::RecordReference {
                custodian_org_number: record.custodian.to_string(),
                record_id: record.record_id.clone(),
            }),
            Self::Grant(id) => v1::state_entry::Key::GrantId(id.0.to_vec()),
            Self::AccessBlock(id) => v1::state_entry::Key::BlockId(id.0.to_vec()),
            Self::Member(org_number) => {
                v1::state_entry::Key::MemberOrgNumber(org_number.to_string())
            }
        }
    }
}

/// A bundle proving `key`'s entry against the head's certified header, or `None` when `viewer`
/// may not have it: a present entry it may not see, or an absent one it would not see if it
/// existed (a record's custodian or an auditor; any member, for a member). Read and
/// proven over one head: when a block commits meanwhile, it is done again. Before the first
/// block there is no header to prove against (`NoSuchHeight`).
pub fn state_entry_bundle<S: Store>(
    ledger: &Ledger<S>,
    key: &StateEntryKey,
    viewer: &Viewer<'_>,
) -> Result<Option<v1::ProofBundle>, BundleError> {
    let built = at_stable_head(ledger, |view, head| {
        let Some(entry) = entry_for(view, key, viewer)? else {
            return Ok(None);
        };
        Ok(Some(v1::ProofBundle {
            chain_id: ledger.chain_id().to_owned(),
            claim: Some(v1::proof_bundle::Claim::StateEntry(entry)),
            headers: vec![certified_header_at(ledger, head.height)?],
            set_changes: set_changes_through(ledger, head.height)?,
        }))
    })?;
    built.ok_or(BundleError::NoSuchHeight { height: 0, head: 0 })
}

/// The proven entry, when `viewer` may have it.
fn entry_for<S: Store>(
    view: &StateView<'_, S>,
    key: &StateEntryKey,
    viewer: &Viewer<'_>,
) -> Result<Option<v1::StateEntry>, BundleError> {
    use v1::state_entry::Value;
    let (proof, value) = match key {
        StateEntryKey::Record(record) => {
            let stored = view.get_value::<RecordPointer>(Column::Records, &keys::record(record))?;
            let visible = match &stored {
                Some(pointer) => visibility::may_see_record(view, viewer, pointer)?,
                None => viewer.may_list_for(&record.custodian),
            };
            if !visible {
                return Ok(None);
            }
            let (proof, value) =
                state_commitment::prove_record(view, record.custodian.as_str(), &record.record_id)?;
            (proof, value.map(Value::RecordValue))
        }
        StateEntryKey::Grant(id) => {
            let stored = view.get_value::<Grant>(Column::Grants, &id.0)?;
            let visible = match &stored {
                Some(grant) => visibility::may_see_grant(viewer, grant),
                None => viewer.is_auditor(),
            };
            if !visible {
                return Ok(None);
            }
            let (proof, value) = state_commitment::prove_grant(view, &id.0)?;
            (proof, value.map(Value::GrantValue))
        }
        StateEntryKey::AccessBlock(id) => {
            let stored = view.get_value::<AccessBlock>(Column::AccessBlocks, &id.0)?;
            let visible = match &stored {
                Some(block) => visibility::may_see_access_block(viewer, block),
                None => viewer.is_auditor(),
            };
            if !visible {
                return Ok(None);
            }
            let (proof, value) = state_commitment::prove_access_block(view, &id.0)?;
            (proof, value.map(Value::BlockValue))
        }
        // Every member may know the membership.
        StateEntryKey::Member(org_number) => {
            let (proof, value) = state_commitment::prove_member(view, org_number)?;
            (proof, value.map(Value::MemberValue))
        }
    };
    Ok(Some(v1::StateEntry {
        key: Some(key.to_wire()),
        value,
        proof: Some(state_proof_to_wire(&proof)),
    }))
}

impl LightClient {
    /// Checks that a state entry holds the bundle's value (or is absent) under the verified
    /// header's state root, and that a value names the entry asked for.
    pub fn verify_state_entry(
        &self,
        header: VerifiedHeader,
        entry: v1::StateEntry,
    ) -> Result<VerifiedClaim, ProofError> {
        use v1::state_entry::{Key, Value};
        let root = header.state_root;
        let proof = entry.proof.as_ref();
        match (
            entry.key.as_ref().ok_or(ProofError::Missing("key"))?,
            entry.value.as_ref(),
        ) {
            (Key::Record(record), value) => {
                let record = wire::record_reference("key.record", Some(record.clone()))?;
                let value = match value {
                    Some(Value::RecordValue(pointer)) => {
                        if wire::record_from_wire(pointer)?.record != record {
                            return Err(ProofError::FactMismatch("record"));
                        }
                        Some(pointer)
                    }
                    Some(_) => return Err(ProofError::ExtraFact("value of another kind")),
                    None => None,
                };
                let identity =
                    state_commitment::record_identity(record.custodian.as_str(), &record.record_id);
                let key = state_commitment::state_key(EntryKind::Record, &identity);
                proven("record", &root, &key, proof, value)?;
            }
            (Key::GrantId(id), value) => {
                let id = hash32("key.grant_id", id)?;
                let value = match value {
                    Some(Value::GrantValue(grant)) => {
                        if wire::grant_from_wire(grant)?.grant_id.0 != id {
                            return Err(ProofError::FactMismatch("grant"));
                        }
                        Some(grant)
                    }
                    Some(_) => return Err(ProofError::ExtraFact("value of another kind")),
                    None => None,
                };
                let key = state_commitment::state_key(EntryKind::Grant, &id);
                proven("grant", &root, &key, proof, value)?;
            }
            (Key::BlockId(id), value) => {
                let id = hash32("key.block_id", id)?;
                let value = match value {
                    Some(Value::BlockValue(block)) => {
                        if hash32("value.block_id", &block.block_id)? != id {
                            return Err(ProofError::FactMismatch("patient block"));
                        }
                        Some(block)
                    }
                    Some(_) => return Err(ProofError::ExtraFact("value of another kind")),
                    None => None,
                };
                let key = state_commitment::state_key(EntryKind::AccessBlock, &id);
                proven("patient block", &root, &key, proof, value)?;
            }
            (Key::MemberOrgNumber(org_number), value) => {
                let org_number = wire::org_number("key.member_org_number", org_number)?;
                let value = match value {
                    Some(Value::MemberValue(member)) => {
                        if member.org_number != org_number.as_str() {
                            return Err(ProofError::FactMismatch("member"));
                        }
                        Some(member)
                    }
                    Some(_) => return Err(ProofError::ExtraFact("value of another kind")),
                    None => None,
                };
                let key =
                    state_commitment::state_key(EntryKind::Member, org_number.as_str().as_bytes());
                proven("member", &root, &key, proof, value)?;
            }
        }
        Ok(VerifiedClaim::StateEntry {
            header,
            entry: Box::new(entry),
        })
    }
}
