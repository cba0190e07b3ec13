//! Proof that a validator signed two conflicting messages for the same height, round and step.
//! Anyone holding the validator set of that height can check it; the ledger records it.

use serde::{Deserialize, Serialize};

use crate::message::{SignedProposal, SignedVote};
use crate::signing::SignatureVerifier;
use crate::types::{Height, ValidatorIndex};
use crate::validator_set::ValidatorSet;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Evidence {
    /// Two different votes of one kind from one validator in one round.
    DuplicateVote {
        first: SignedVote,
        second: SignedVote,
    },
    /// Two different proposals from the proposer of one round.
    DuplicateProposal {
        first: SignedProposal,
        second: SignedProposal,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    #[error("the two messages are not from the same validator, height, round and step")]
    NotSameSlot,
    #[error("the two messages are identical, which is no misbehaviour")]
    NotConflicting,
    #[error("a signature in the evidence does not verify against validator {0}")]
    BadSignature(ValidatorIndex),
}

impl Evidence {
    pub fn validator(&self) -> ValidatorIndex {
        match self {
            Evidence::DuplicateVote { first, .. } => first.vote.validator,
            Evidence::DuplicateProposal { first, .. } => first.proposal.proposer,
        }
    }

    pub fn height(&self) -> Height {
        match self {
            Evidence::DuplicateVote { first, .. } => first.vote.height,
            Evidence::DuplicateProposal { first, .. } => first.proposal.height,
        }
    }

    /// Checks that the evidence really shows a validator of `validators` signing twice.
    pub fn verify(
        &self,
        chain_id: &str,
        validators: &ValidatorSet,
        verifier: &dyn SignatureVerifier,
    ) -> Result<(), EvidenceError> {
        match self {
            Evidence::DuplicateVote { first, second } => {
                let (a, b) = (&first.vote, &second.vote);
                if (a.kind, a.height, a.round, a.validator)
                    != (b.kind, b.height, b.round, b.validator)
                {
                    return Err(EvidenceError::NotSameSlot);
                }
                if a.block_id == b.block_id {
                    return Err(EvidenceError::NotConflicting);
                }
                for vote in [first, second] {
                    if !vote.verify(chain_id, validators, verifier) {
                        return Err(EvidenceError::BadSignature(a.validator));
                    }
                }
            }
            Evidence::DuplicateProposal { first, second } => {
                let (a, b) = (&first.proposal, &second.proposal);
                if (a.height, a.round, a.proposer) != (b.height, b.round, b.proposer) {
                    return Err(EvidenceError::NotSameSlot);
                }
                if a == b {
                    return Err(EvidenceError::NotConflicting);
                }
                for proposal in [first, second] {
                    if !proposal.verify(chain_id, validators, verifier) {
                        return Err(EvidenceError::BadSignature(a.proposer));
                    }
                }
            }
        }
        Ok(())
    }
}
