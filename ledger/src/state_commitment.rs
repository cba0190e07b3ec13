//! What the state tree commits to, and how: each record pointer, grant and patient block as one
//! leaf, its key derived from the entry's identity and its value hashed from its canonical
//! protobuf encoding (the API's `varde.v1` message), so that neither a struct rename nor a change
//! of the stored encoding can fork the chain (docs/decisions/0006-state-tree.md).
//!
//! state key  = SHA-256("varde-state-key-v1" || 0x00 || kind || identity)
//! value hash = SHA-256("varde-state-value-v1" || 0x00 || encoded varde.v1 message)
//!
//! | kind | entry | identity | message |
//! | --- | --- | --- | --- |
//! | 1 | record pointer | custodian org number (UTF-8) ‖ 0x00 ‖ record id (UTF-8) | `RecordPointer` |
//! | 2 | grant | grant id (32 bytes) | `Grant` |
//! | 3 | patient block | block id (32 bytes) | `AccessBlockEntry` |

use prost::Message;
use sha2::{Digest, Sha256};
use varde_proto::v1;
use varde_storage::{Column, Store};

use crate::domain::{AccessBlock, Grant, RecordPointer};
use crate::state::{StateError, StateView, decode_json};
use crate::state_tree::{self, Hash};
use crate::wire;

const KEY_DOMAIN: &[u8] = b"varde-state-key-v1";
const VALUE_DOMAIN: &[u8] = b"varde-state-value-v1";

/// The kinds of state entry in the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Record = 1,
    Grant = 2,
    AccessBlock = 3,
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
    let mut hasher = Sha256::new();
    hasher.update(VALUE_DOMAIN);
    hasher.update([0u8]);
    hasher.update(message.encode_to_vec());
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

/// The tree key and value hash of a committed column value, for the columns the tree covers.
fn entry(column: Column, key: &[u8], value: &[u8]) -> Result<Option<(Hash, Hash)>, StateError> {
    Ok(Some(match column {
        Column::Records => (
            state_key(EntryKind::Record, key),
            value_hash(&wire::record_to_wire(&decode_json::<RecordPointer>(
                column, value,
            )?)),
        ),
        Column::Grants => (
            state_key(EntryKind::Grant, key),
            value_hash(&wire::grant_to_wire(&decode_json::<Grant>(column, value)?)),
        ),
        Column::AccessBlocks => (
            state_key(EntryKind::AccessBlock, key),
            value_hash(&wire::access_block_to_wire(&decode_json::<AccessBlock>(
                column, value,
            )?)),
        ),
        _ => return Ok(None),
    }))
}

fn kind_of(column: Column) -> Option<EntryKind> {
    match column {
        Column::Records => Some(EntryKind::Record),
        Column::Grants => Some(EntryKind::Grant),
        Column::AccessBlocks => Some(EntryKind::AccessBlock),
        _ => None,
    }
}

/// Folds the block's pending changes to the committed columns into the state tree and returns
/// the new state root.
pub fn commit_changes<S: Store + ?Sized>(view: &mut StateView<'_, S>) -> Result<Hash, StateError> {
    let mut changes: Vec<(Hash, Option<Hash>)> = Vec::new();
    for ((column, key), value) in view.pending() {
        let Some(kind) = kind_of(*column) else {
            continue;
        };
        match value {
            Some(value) => {
                if let Some((tree_key, hash)) = entry(*column, key, value)? {
                    changes.push((tree_key, Some(hash)));
                }
            }
            None => changes.push((state_key(kind, key), None)),
        }
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
        .get_json::<RecordPointer>(Column::Records, &identity)?
        .map(|record| wire::record_to_wire(&record));
    Ok((proof, value))
}

/// The proof of a grant (present or absent) in the stored tree, with its committed message.
pub fn prove_grant<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    grant_id: &[u8; 32],
) -> Result<(state_tree::StateProof, Option<v1::Grant>), StateError> {
    let proof = state_tree::prove(view, &state_key(EntryKind::Grant, grant_id))?;
    let value = view
        .get_json::<Grant>(Column::Grants, grant_id)?
        .map(|grant| wire::grant_to_wire(&grant));
    Ok((proof, value))
}
