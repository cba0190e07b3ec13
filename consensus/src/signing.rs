//! What a validator signs: domain-separated SHA-256 digests that bind the chain id, height, round,
//! step and block id, so that no signature can be replayed on another chain, height, round or step.
//!
//! Layout (all integers big-endian):
//! `"varde/consensus/v1" 0x00 | kind: u8 | u16 len(chain_id) | chain_id | height: u64 | round: u32 | rest`
//! where `kind` is 1 for a proposal, 2 for a prevote, 3 for a precommit, and `rest` is
//! `valid_round (0x00 | 0x01 u32) | block_id (32)` for a proposal and `block (0x00 | 0x01 block_id)`
//! for a vote (0x00 is nil / none).

use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::message::{Proposal, Vote};
use crate::types::VoteKind;

const DOMAIN: &[u8] = b"varde/consensus/v1\0";
const KIND_PROPOSAL: u8 = 1;
const KIND_PREVOTE: u8 = 2;
const KIND_PRECOMMIT: u8 = 3;

fn header(kind: u8, chain_id: &str, height: u64, round: u32) -> Sha256 {
    let mut hasher = Sha256::new();
    hasher.update(DOMAIN);
    hasher.update([kind]);
    // The chain id is bounded by `EngineConfig::new`, so its length fits the u16 prefix.
    hasher.update((chain_id.len() as u16).to_be_bytes());
    hasher.update(chain_id.as_bytes());
    hasher.update(height.to_be_bytes());
    hasher.update(round.to_be_bytes());
    hasher
}

/// The digest a proposer signs for a proposal.
pub fn proposal_digest(chain_id: &str, proposal: &Proposal) -> [u8; 32] {
    let mut hasher = header(KIND_PROPOSAL, chain_id, proposal.height, proposal.round);
    match proposal.valid_round {
        None => hasher.update([0]),
        Some(round) => {
            hasher.update([1]);
            hasher.update(round.to_be_bytes());
        }
    }
    hasher.update(proposal.block_id.0);
    hasher.finalize().into()
}

/// The digest a validator signs for a prevote or precommit.
pub fn vote_digest(chain_id: &str, vote: &Vote) -> [u8; 32] {
    let kind = match vote.kind {
        VoteKind::Prevote => KIND_PREVOTE,
        VoteKind::Precommit => KIND_PRECOMMIT,
    };
    let mut hasher = header(kind, chain_id, vote.height, vote.round);
    match vote.block_id {
        None => hasher.update([0]),
        Some(block_id) => {
            hasher.update([1]);
            hasher.update(block_id.0);
        }
    }
    hasher.finalize().into()
}

/// Checks Ed25519 signatures over digests. The engine verifies every message it counts through this
/// trait, so a host may put a cache in front of the real check (each signature verified once per node).
pub trait SignatureVerifier: Send + Sync {
    fn verify(&self, key: &VerifyingKey, digest: &[u8; 32], signature: &Signature) -> bool;
}

/// Strict RFC 8032 verification (rejects small-order keys and non-canonical signatures).
#[derive(Debug, Default, Clone, Copy)]
pub struct Ed25519Verifier;

impl SignatureVerifier for Ed25519Verifier {
    fn verify(&self, key: &VerifyingKey, digest: &[u8; 32], signature: &Signature) -> bool {
        key.verify_strict(digest, signature).is_ok()
    }
}
