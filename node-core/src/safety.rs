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
