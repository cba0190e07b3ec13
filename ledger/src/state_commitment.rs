//! What the state tree commits to, and how: each record pointer, grant and patient block as one
//! leaf, its key derived from the entry's identity and its value hashed from its canonical
//! protobuf encoding (the API's `varde.v1` message, which is also how it is stored, so that it is
//! hashed as stored), so that no struct rename can fork the chain, and every field the access
//! rules read is committed (docs/decisions/0006-state-tree.md).
//!
//! state key  = SHA-256("varde-state-key-v1" || 0x00 || kind || identity)
//! value hash = SHA-256("varde-state-value-v1" || 0x00 || encoded varde.v1 message)
//!
//! | kind | entry | identity | message |
//! | --- | --- | --- | --- |
//! | 1 | record pointer | custodian org number (UTF-8) ‖ 0x00 ‖ record id (UTF-8) | `RecordPointer` |
//! | 2 | grant | grant id (32 bytes) | `Grant` |
//! | 3 | patient block | block id (32 bytes) | `AccessBlockEntry` |
//! | 4 | a subject's blocks in force against one target | subject (32 bytes) ‖ 1 ‖ org number, or subject ‖ 2 ‖ HPR number | `ActiveBlocks` (block ids ascending); absent when none |
//! | 5 | a member institution | org number (UTF-8) | `Member` (name, roles, submitting keys, validator key); set from the genesis when the ledger is created, changed by enacted governance |
//! | 6 | a governance proposal | proposal id (32 bytes) | `GovernanceProposal` (as stored: an open proposal past its approve-by height stays OPEN) |
//!
//! Kind 4 lets a CheckAccess proof show that no block holds against an accessor: its absence is
//! one absence proof, where the blocks by id would need the whole subject's list.

use std::collections::BTreeMap;

use prost::Message;
use sha2::{Digest, Sha256};
use varde_proto::v1;
use varde_storage::{Column, Store};

use crate::domain::{AccessBlock, BlockTarget, Grant, RecordPointer, SubjectPseudonym};
use crate::governance;
use crate::identifiers::OrgNumber;
use crate::membership::Genesis;
use crate::state::{StateError, StateView, keys};
use crate::state_tree::{self, Hash};
use crate::stored::StoredValue;
use crate::wire;

const KEY_DOMAIN: &[u8] = b"varde-state-key-v1";
const VALUE_DOMAIN: &[u8] = b"varde-state-value-v1";

/// The kinds of state entry in the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Record = 1,
    Grant = 2,
    AccessBlock = 3,
    ActiveBlocks = 4,
    Member = 5,
    Proposal = 6,
}

/// The tree key of an entry of `kind` with `identity` (its column key in the store).
pub fn state_key(kind: EntryKind, identity: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(KEY_DOMAIN);
    hasher.update([0u8, kind as u8]);
    hasher.update(identity);
    hasher.finalize().into()
}

/// The hash of an entry's canonical encoding.
pub fn value_hash(message: &impl Message) -> Hash {
    encoding_hash(&message.encode_to_vec())
}

/// The hash of an entry from its canonical encoding, as stored.
pub fn encoding_hash(encoding: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(VALUE_DOMAIN);
    hasher.update([0u8]);
    hasher.update(encoding);
    hasher.finalize().into()
}

/// A record's identity: custodian ‖ 0x00 ‖ record id (its key in `Column::Records`).
pub fn record_identity(custodian: &str, record_id: &str) -> Vec<u8> {
    let mut identity = Vec::with_capacity(custodian.len() + 1 + record_id.len());
    identity.extend_from_slice(custodian.as_bytes());
    identity.push(0);
    identity.extend_from_slice(record_id.as_bytes());
    identity
}

/// The kind and identity of a stored entry the tree covers: the stored value is the committed
/// message's canonical encoding ([`crate::stored`]), hashed as stored.
fn kind_of(column: Column, key: &[u8]) -> Option<(EntryKind, &[u8])> {
    match column {
        Column::Records => Some((EntryKind::Record, key)),
        Column::Grants => Some((EntryKind::Grant, key)),
        Column::AccessBlocks => Some((EntryKind::AccessBlock, key)),
        Column::Meta => {
            if let Some(org_number) = key.strip_prefix(governance::META_MEMBER) {
                Some((EntryKind::Member, org_number))
            } else {
                key.strip_prefix(governance::META_PROPOSAL)
                    .map(|id| (EntryKind::Proposal, id))
            }
        }
        _ => None,
    }
}

/// The identity of a subject's blocks in force against one target (kind 4).
pub fn active_blocks_identity(subject: &[u8; 32], target: &BlockTarget) -> Vec<u8> {
    let (tag, text) = match target {
        BlockTarget::Institution(org_number) => (1u8, org_number.to_string()),
        BlockTarget::Person(hpr_number) => (2u8, hpr_number.to_string()),
    };
    let mut identity = Vec::with_capacity(33 + text.len());
    identity.extend_from_slice(subject);
    identity.push(tag);
    identity.extend_from_slice(text.as_bytes());
    identity
}

/// The blocks of `subject` against `target` in force in `view`, ascending by id.
pub fn active_blocks<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    subject: &SubjectPseudonym,
    target: &BlockTarget,
) -> Result<v1::ActiveBlocks, StateError> {
    let prefix = keys::with_prefix(keys::INDEX_BLOCKS_BY_SUBJECT, &[&subject.0]);
    let mut block_ids = Vec::new();
    for (key, _) in view.scan_all(Column::Indexes, &prefix)? {
        let block_id = &key[prefix.len()..];
        if let Some(block) = view.get_value::<AccessBlock>(Column::AccessBlocks, block_id)? {
            if block.target == *target && block.lifted_at_height.is_none() {
                block_ids.push(block_id.to_vec());
            }
        }
    }
    block_ids.sort();
    Ok(v1::ActiveBlocks { block_ids })
}

/// Folds the block's pending changes to the committed columns into the state tree and returns
/// the new state root.
pub fn commit_changes<S: Store + ?Sized>(view: &mut StateView<'_, S>) -> Result<Hash, StateError> {
    let mut changes: Vec<(Hash, Option<Hash>)> = Vec::new();
    // Each (subject, target) a changed block is against, once, by its entry identity.
    let mut block_targets: BTreeMap<Vec<u8>, (SubjectPseudonym, BlockTarget)> = BTreeMap::new();
    for ((column, key), value) in view.pending() {
        let Some((kind, identity)) = kind_of(*column, key) else {
            continue;
        };
        match value {
            Some(value) => {
                changes.push((state_key(kind, identity), Some(encoding_hash(value))));
                if kind == EntryKind::AccessBlock {
                    let block = AccessBlock::decode(*column, value)?;
                    block_targets.insert(
                        active_blocks_identity(&block.subject.0, &block.target),
                        (block.subject, block.target),
                    );
                }
            }
            None => changes.push((state_key(kind, identity), None)),
        }
    }
    for (identity, (subject, target)) in &block_targets {
        let blocks = active_blocks(view, subject, target)?;
        let key = state_key(EntryKind::ActiveBlocks, identity);
        let value = (!blocks.block_ids.is_empty()).then(|| value_hash(&blocks));
        changes.push((key, value));
    }
    changes.sort_unstable_by_key(|(key, _)| *key);
    state_tree::update(view, &changes)
}

/// The proof of one entry (present or absent) in the stored tree, with its committed message.
pub fn prove_record<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    custodian: &str,
    record_id: &str,
) -> Result<(state_tree::StateProof, Option<v1::RecordPointer>), StateError> {
    let identity = record_identity(custodian, record_id);
    let proof = state_tree::prove(view, &state_key(EntryKind::Record, &identity))?;
    let value = view
        .get_value::<RecordPointer>(Column::Records, &identity)?
        .map(|record| wire::record_to_wire(&record));
    Ok((proof, value))
}

/// The proof of a subject's blocks in force against `target` (present, or absent when none),
/// with the committed message.
pub fn prove_active_blocks<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    subject: &SubjectPseudonym,
    target: &BlockTarget,
) -> Result<(state_tree::StateProof, Option<v1::ActiveBlocks>), StateError> {
    let key = state_key(
        EntryKind::ActiveBlocks,
        &active_blocks_identity(&subject.0, target),
    );
    let proof = state_tree::prove(view, &key)?;
    let blocks = active_blocks(view, subject, target)?;
    Ok((proof, (!blocks.block_ids.is_empty()).then_some(blocks)))
}

/// The proof of a grant (present or absent) in the stored tree, with its committed message.
pub fn prove_grant<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    grant_id: &[u8; 32],
) -> Result<(state_tree::StateProof, Option<v1::Grant>), StateError> {
    let proof = state_tree::prove(view, &state_key(EntryKind::Grant, grant_id))?;
    let value = view
        .get_value::<Grant>(Column::Grants, grant_id)?
        .map(|grant| wire::grant_to_wire(&grant));
    Ok((proof, value))
}

/// The proof of a patient block (present or absent) in the stored tree, with its committed
/// message.
pub fn prove_access_block<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    block_id: &[u8; 32],
) -> Result<(state_tree::StateProof, Option<v1::AccessBlockEntry>), StateError> {
    let proof = state_tree::prove(view, &state_key(EntryKind::AccessBlock, block_id))?;
    let value = view
        .get_value::<AccessBlock>(Column::AccessBlocks, block_id)?
        .map(|block| wire::access_block_to_wire(&block));
    Ok((proof, value))
}

/// The state tree's leaves for the members of `genesis`, sorted by key: written when a ledger is
/// created, so that the first block's state root already commits to the membership.
pub fn member_leaves(genesis: &Genesis) -> Vec<(Hash, Option<Hash>)> {
    let mut leaves: Vec<(Hash, Option<Hash>)> = genesis
        .institutions
        .iter()
        .map(|institution| {
            (
                state_key(
                    EntryKind::Member,
                    institution.org_number.as_str().as_bytes(),
                ),
                Some(value_hash(&wire::member_to_wire(institution))),
            )
        })
        .collect();
    leaves.sort_unstable_by_key(|(key, _)| *key);
    leaves
}

/// The proof of a member (present or absent) in the stored tree, with its committed message as
/// the state holds it.
pub fn prove_member<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    org_number: &OrgNumber,
) -> Result<(state_tree::StateProof, Option<v1::Member>), StateError> {
    let key = state_key(EntryKind::Member, org_number.as_str().as_bytes());
    let proof = state_tree::prove(view, &key)?;
    let value = governance::stored_member(view, org_number)?;
    Ok((proof, value))
}
