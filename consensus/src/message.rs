//! The messages validators exchange: proposals (with their block) and votes, each signed.

use ed25519_dalek::{Signature, Signer, SigningKey};
use serde::{Deserialize, Serialize};

use crate::signing::{SignatureVerifier, proposal_digest, vote_digest};
use crate::types::{Block, BlockId, Height, Round, ValidatorIndex, VoteKind};
use crate::validator_set::ValidatorSet;

/// ⟨PROPOSAL, h, r, v, vr⟩ of the Tendermint paper, with v given by its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub height: Height,
    pub round: Round,
    /// The round of the prevote quorum that made the proposer re-propose this block (vr), if any.
    pub valid_round: Option<Round>,
    pub block_id: BlockId,
    pub proposer: ValidatorIndex,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedProposal {
    pub proposal: Proposal,
    pub signature: Signature,
}

/// ⟨PREVOTE, h, r, id(v)⟩ or ⟨PRECOMMIT, h, r, id(v)⟩; `block_id: None` is a vote for nil.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    pub kind: VoteKind,
    pub height: Height,
    pub round: Round,
    pub block_id: Option<BlockId>,
    pub validator: ValidatorIndex,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedVote {
    pub vote: Vote,
    pub signature: Signature,
}

/// A proposal as it travels: the signed proposal and the block it names
/// (`block.id == signed.proposal.block_id`). A re-proposal (`valid_round = Some(vr)`) carries the
/// 2f+1 prevotes of round vr for the block, so that a validator that lost them can still prevote it
/// (L28) and no old round ever needs retransmitting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalMessage {
    pub signed: SignedProposal,
    pub block: Block,
    pub proof_of_lock: Vec<SignedVote>,
}

/// A consensus message as it travels between validators.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    Proposal(ProposalMessage),
    Vote(SignedVote),
}

impl Message {
    pub fn height(&self) -> Height {
        match self {
            Message::Proposal(message) => message.signed.proposal.height,
            Message::Vote(signed) => signed.vote.height,
        }
    }

    pub fn round(&self) -> Round {
        match self {
            Message::Proposal(message) => message.signed.proposal.round,
            Message::Vote(signed) => signed.vote.round,
        }
    }

    /// The validator the message claims to come from (not yet checked).
    pub fn sender(&self) -> ValidatorIndex {
        match self {
            Message::Proposal(message) => message.signed.proposal.proposer,
            Message::Vote(signed) => signed.vote.validator,
        }
    }
}

impl SignedProposal {
    pub fn sign(chain_id: &str, proposal: Proposal, key: &SigningKey) -> Self {
        let signature = key.sign(&proposal_digest(chain_id, &proposal));
        Self {
            proposal,
            signature,
        }
    }

    /// True when the claimed proposer is in `validators` and signed this proposal.
    pub fn verify(
        &self,
        chain_id: &str,
        validators: &ValidatorSet,
        verifier: &dyn SignatureVerifier,
    ) -> bool {
        validators.key(self.proposal.proposer).is_some_and(|key| {
            verifier.verify(
                key,
                &proposal_digest(chain_id, &self.proposal),
                &self.signature,
            )
        })
    }
}

impl SignedVote {
    pub fn sign(chain_id: &str, vote: Vote, key: &SigningKey) -> Self {
        let signature = key.sign(&vote_digest(chain_id, &vote));
        Self { vote, signature }
    }

    /// True when the claimed voter is in `validators` and signed this vote.
    pub fn verify(
        &self,
        chain_id: &str,
        validators: &ValidatorSet,
        verifier: &dyn SignatureVerifier,
    ) -> bool {
        validators.key(self.vote.validator).is_some_and(|key| {
            verifier.verify(key, &vote_digest(chain_id, &self.vote), &self.signature)
        })
    }
}
