//! Where the consensus safety state is persisted before anything is sent.

use varde_consensus::SafetyState;
use varde_ledger::stored::StoredValue;
use varde_storage::{Column, Store, WriteBatch};

/// The key of the safety state in `Column::ConsensusSafety`.
pub const SAFETY_STATE_KEY: &[u8] = b"safety_state";

/// Durable storage of the safety state: `persist` returns only once the state would survive a
/// crash (a synced write).
pub trait SafetyStore {
    type Error: std::error::Error + Send + Sync + 'static;

    fn persist(&mut self, state: &SafetyState) -> Result<(), Self::Error>;
}

#[derive(Debug, thiserror::Error)]
pub enum SafetyStoreError {
    #[error(transparent)]
    Storage(#[from] varde_storage::StorageError),
    #[error("the persisted consensus safety state cannot be read: {0}")]
    Unreadable(String),
}

/// Writes the safety state to `Column::ConsensusSafety` in one synced write, as a
/// `varde.v1.SafetyState` (proto/varde/v1/storage.proto).
pub fn write_safety_state<S: Store>(
    store: &S,
    state: &SafetyState,
) -> Result<(), SafetyStoreError> {
    let mut batch = WriteBatch::new();
    batch.put(
        Column::ConsensusSafety,
        SAFETY_STATE_KEY.to_vec(),
        state.encode(),
    );
    Ok(store.write(batch)?)
}

/// Reads the persisted safety state, if any. Bytes that are not the canonical encoding of a
/// well-formed state (lengths, enums, required parts) are refused here; whether the state is
/// consistent is the engine's check (`Engine::new`), which refuses a tampered state with a reason.
pub fn read_safety_state<S: Store>(store: &S) -> Result<Option<SafetyState>, SafetyStoreError> {
    store
        .get(Column::ConsensusSafety, SAFETY_STATE_KEY)?
        .map(|bytes| {
            SafetyState::decode(Column::ConsensusSafety, &bytes)
                .map_err(|error| SafetyStoreError::Unreadable(error.to_string()))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use varde_consensus::SignedVote;
    use varde_consensus::{Block, BlockId, SigningKey, Step, ValidBlock, Vote, VoteKind};
    use varde_storage::MemoryStore;

    use super::*;

    fn prevote(round: u32, block: BlockId) -> SignedVote {
        SignedVote::sign(
            "varde-test-1",
            Vote {
                kind: VoteKind::Prevote,
                height: 4,
                round,
                block_id: Some(block),
                validator: 0,
            },
            &SigningKey::from_bytes(&[1; 32]),
        )
    }

    // The safety state written before a vote leaves reads back unchanged, block and votes included.
    #[test]
    fn the_safety_state_round_trips() {
        let store = MemoryStore::new();
        assert!(read_safety_state(&store).unwrap().is_none());
        let block = Block {
            id: BlockId([9; 32]),
            payload: Arc::from(vec![7u8; 100]),
        };
        let state = SafetyState {
            height: 4,
            round: 1,
            step: Step::Prevote,
            locked: Some((0, block.id)),
            valid: Some(ValidBlock {
                round: 0,
                block: block.clone(),
                prevotes: vec![prevote(0, block.id)],
            }),
            round_proof: vec![],
            own_proposal: None,
            own_prevote: Some(prevote(1, block.id)),
            own_precommit: None,
        };
        write_safety_state(&store, &state).unwrap();
        assert_eq!(read_safety_state(&store).unwrap(), Some(state));
    }

    // Garbage (random bytes, a JSON state of an older Varde, a truncated encoding) under the safety
    // state's key is refused as unreadable, naming the column, never a panic or a default state.
    #[test]
    fn a_garbled_safety_state_is_refused() {
        let state = SafetyState {
            height: 4,
            round: 0,
            step: Step::Precommit,
            locked: None,
            valid: None,
            round_proof: vec![],
            own_proposal: None,
            own_prevote: Some(prevote(0, BlockId([3; 32]))),
            own_precommit: None,
        };
        let encoded = state.encode();
        for garbage in [
            vec![0xff, 0xff, 0xff],
            br#"{"height":4,"round":0,"step":"Propose"}"#.to_vec(),
            encoded[..encoded.len() - 3].to_vec(),
        ] {
            let store = MemoryStore::new();
            let mut batch = WriteBatch::new();
            batch.put(Column::ConsensusSafety, SAFETY_STATE_KEY.to_vec(), garbage);
            store.write(batch).unwrap();
            let Err(SafetyStoreError::Unreadable(detail)) = read_safety_state(&store) else {
                panic!("a garbled safety state was accepted");
            };
            assert!(detail.contains("consensus"), "{detail}");
        }
    }
}
