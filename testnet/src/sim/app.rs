//! The application the simulated validators run: it builds blocks, judges them, and verifies
//! signatures through a per-run cache (each distinct signature is checked once, for real).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use varde_consensus::{
    Block, BlockId, Ed25519Verifier, Height, Round, Signature, SignatureVerifier, ValidatorIndex,
    VerifyingKey,
};

const MAGIC: &[u8; 8] = b"SIMBLOCK";
const PAYLOAD_LEN: usize = 8 + 8 + 4 + 4 + 8;

pub fn block_id_of(payload: &[u8]) -> BlockId {
    let mut hasher = Sha256::new();
    hasher.update(b"varde-sim/block\0");
    hasher.update(payload);
    BlockId(hasher.finalize().into())
}

/// A block for `height` from `proposer`; `nonce` makes every proposal distinct.
pub fn build_block(height: Height, proposer: ValidatorIndex, round: Round, nonce: u64) -> Block {
    let mut payload = Vec::with_capacity(PAYLOAD_LEN);
    payload.extend_from_slice(MAGIC);
    payload.extend_from_slice(&height.to_be_bytes());
    payload.extend_from_slice(&proposer.to_be_bytes());
    payload.extend_from_slice(&round.to_be_bytes());
    payload.extend_from_slice(&nonce.to_be_bytes());
    Block {
        id: block_id_of(&payload),
        payload: payload.into(),
    }
}

/// valid(v): the payload is well formed, for this height, and the id is its hash.
pub fn is_valid_block(height: Height, block: &Block) -> bool {
    block.payload.len() == PAYLOAD_LEN
        && block.payload.starts_with(MAGIC)
        && block.payload[8..16] == height.to_be_bytes()
        && block.id == block_id_of(&block.payload)
}

/// A verification's inputs: public key, digest and signature bytes.
type VerificationKey = ([u8; 32], [u8; 32], [u8; 64]);

/// Verifies each distinct (key, digest, signature) once and remembers the answer.
#[derive(Default)]
pub struct CachingVerifier {
    cache: Mutex<HashMap<VerificationKey, bool>>,
}

impl CachingVerifier {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
}

impl SignatureVerifier for CachingVerifier {
    fn verify(&self, key: &VerifyingKey, digest: &[u8; 32], signature: &Signature) -> bool {
        let entry = (key.to_bytes(), *digest, signature.to_bytes());
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *cache
            .entry(entry)
            .or_insert_with(|| Ed25519Verifier.verify(key, digest, signature))
    }
}
