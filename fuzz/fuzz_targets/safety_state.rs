//! The persisted safety state, as the driver reads it back on start (a `varde.v1.SafetyState`,
//! decoded by `StoredValue::decode`) and hands it to `Engine::new`, which checks it (`restore::Checker`) and resumes from it. The
//! first byte picks the signature check: the real one, or one that accepts every signature, so
//! that states holding this validator's genuine votes (replayed from another round, say) are
//! covered too. A restored engine must start, and its state must survive its own encoding.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use varde_consensus::{
    Ed25519Verifier, Engine, EngineConfig, SafetyState, Signature, SignatureVerifier, Timeouts,
    VerifyingKey,
};
use varde_fuzz::{CHAIN_ID, VALIDATOR_KEYS, key, validator_set};
use varde_ledger::stored::StoredValue;
use varde_storage::Column;

struct AcceptAll;

impl SignatureVerifier for AcceptAll {
    fn verify(&self, _: &VerifyingKey, _: &[u8; 32], _: &Signature) -> bool {
        true
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, bytes)) = data.split_first() else {
        return;
    };
    let Ok(state) = SafetyState::decode(Column::ConsensusSafety, bytes) else {
        return;
    };
    let verifier: Arc<dyn SignatureVerifier> = if mode & 1 == 0 {
        Arc::new(Ed25519Verifier)
    } else {
        Arc::new(AcceptAll)
    };
    let config = EngineConfig::new(CHAIN_ID, Timeouts::default()).expect("a valid chain id");
    // The driver starts at the height after its head (at least 1); a state of that height is used.
    let height = state.height.max(1);
    let own = key(VALIDATOR_KEYS[(mode as usize >> 1) % VALIDATOR_KEYS.len()]);
    let Ok(mut engine) = Engine::new(config, own, verifier, height, validator_set(), Some(state))
    else {
        return;
    };
    let _ = engine.start();
    let resumed = engine.safety_state();
    let encoded = resumed.encode();
    assert_eq!(
        SafetyState::decode(Column::ConsensusSafety, &encoded).expect("its own encoding decodes"),
        resumed
    );
});
