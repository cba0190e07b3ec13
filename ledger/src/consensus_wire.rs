//! Consensus values to and from their `varde.v1` wire form (proto/varde/v1/consensus.proto).
//!
//! Decoding checks every length (ids 32 bytes, signatures 64 bytes) and every required field, so
//! that a malformed message from a peer is refused here with a reason and never reaches the
//! engine. Signatures are not checked here: the engine (or the evidence check) verifies each once.

use std::sync::Arc;

use varde_consensus::{
    Block, BlockId, CommitCertificate, CommitSignature, Evidence, Message, Proposal,
    ProposalMessage, SafetyState, Signature, SignedProposal, SignedVote, Step, ValidBlock, Vote,
    VoteKind,
};
use varde_proto::v1;

/// Why a wire value is not a consensus value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("field `{0}` is missing")]
    Missing(&'static str),
    #[error("field `{field}` must be {expected} bytes, got {found}")]
    Length {
        field: &'static str,
        expected: usize,
        found: usize,
    },
    #[error("field `kind` is not a vote kind: {0}")]
    VoteKind(i32),
    #[error("field `step` is not a consensus step: {0}")]
    Step(i32),
}

fn block_id(field: &'static str, bytes: &[u8]) -> Result<BlockId, WireError> {
    <[u8; 32]>::try_from(bytes)
        .map(BlockId)
        .map_err(|_| WireError::Length {
            field,
            expected: 32,
            found: bytes.len(),
        })
}

fn signature(bytes: &[u8]) -> Result<Signature, WireError> {
    <[u8; 64]>::try_from(bytes)
        .map(|bytes| Signature::from_bytes(&bytes))
        .map_err(|_| WireError::Length {
            field: "signature",
            expected: 64,
            found: bytes.len(),
        })
}

pub fn vote_to_wire(signed: &SignedVote) -> v1::SignedVote {
    let vote = &signed.vote;
    v1::SignedVote {
        vote: Some(v1::Vote {
            kind: match vote.kind {
                VoteKind::Prevote => v1::VoteKind::Prevote,
                VoteKind::Precommit => v1::VoteKind::Precommit,
            } as i32,
            height: vote.height,
            round: vote.round,
            block_id: vote.block_id.map(|id| id.0.to_vec()).unwrap_or_default(),
            validator: vote.validator,
        }),
        signature: signed.signature.to_bytes().to_vec(),
    }
}

pub fn vote_from_wire(wire: &v1::SignedVote) -> Result<SignedVote, WireError> {
    let vote = wire.vote.as_ref().ok_or(WireError::Missing("vote"))?;
    let kind = match v1::VoteKind::try_from(vote.kind) {
        Ok(v1::VoteKind::Prevote) => VoteKind::Prevote,
        Ok(v1::VoteKind::Precommit) => VoteKind::Precommit,
        _ => return Err(WireError::VoteKind(vote.kind)),
    };
    let block_id = if vote.block_id.is_empty() {
        None
    } else {
        Some(block_id("vote.block_id", &vote.block_id)?)
    };
    Ok(SignedVote {
        vote: Vote {
            kind,
            height: vote.height,
            round: vote.round,
            block_id,
            validator: vote.validator,
        },
        signature: signature(&wire.signature)?,
    })
}

pub fn proposal_to_wire(signed: &SignedProposal) -> v1::SignedProposal {
    let proposal = &signed.proposal;
    v1::SignedProposal {
        proposal: Some(v1::Proposal {
            height: proposal.height,
            round: proposal.round,
            valid_round: proposal.valid_round,
            block_id: proposal.block_id.0.to_vec(),
            proposer: proposal.proposer,
        }),
        signature: signed.signature.to_bytes().to_vec(),
    }
}

pub fn proposal_from_wire(wire: &v1::SignedProposal) -> Result<SignedProposal, WireError> {
    let proposal = wire
        .proposal
        .as_ref()
        .ok_or(WireError::Missing("proposal"))?;
    Ok(SignedProposal {
        proposal: Proposal {
            height: proposal.height,
            round: proposal.round,
            valid_round: proposal.valid_round,
            block_id: block_id("proposal.block_id", &proposal.block_id)?,
            proposer: proposal.proposer,
        },
        signature: signature(&wire.signature)?,
    })
}

/// A proposal with its block and proof of lock. The block's id travels once, in the signed
/// proposal.
pub fn proposal_message_to_wire(proposal: &ProposalMessage) -> v1::ProposalMessage {
    v1::ProposalMessage {
        signed: Some(proposal_to_wire(&proposal.signed)),
        block: proposal.block.payload.to_vec(),
        proof_of_lock: proposal.proof_of_lock.iter().map(vote_to_wire).collect(),
    }
}

/// The block of a proposal takes the proposal's id; whether the payload really hashes to it is
/// the application's check when it validates the block.
pub fn proposal_message_from_wire(
    proposal: v1::ProposalMessage,
) -> Result<ProposalMessage, WireError> {
    let signed = proposal_from_wire(
        proposal
            .signed
            .as_ref()
            .ok_or(WireError::Missing("signed"))?,
    )?;
    let proof_of_lock = proposal
        .proof_of_lock
        .iter()
        .map(vote_from_wire)
        .collect::<Result<_, _>>()?;
    Ok(ProposalMessage {
        block: Block {
            id: signed.proposal.block_id,
            payload: Arc::from(proposal.block),
        },
        signed,
        proof_of_lock,
    })
}

pub fn message_to_wire(message: &Message) -> v1::ConsensusMessage {
    let message = match message {
        Message::Proposal(proposal) => {
            v1::consensus_message::Message::Proposal(proposal_message_to_wire(proposal))
        }
        Message::Vote(vote) => v1::consensus_message::Message::Vote(vote_to_wire(vote)),
    };
    v1::ConsensusMessage {
        message: Some(message),
    }
}

/// A proposal's block takes the proposal's id ([`proposal_message_from_wire`]).
pub fn message_from_wire(wire: v1::ConsensusMessage) -> Result<Message, WireError> {
    match wire.message.ok_or(WireError::Missing("message"))? {
        v1::consensus_message::Message::Proposal(proposal) => {
            Ok(Message::Proposal(proposal_message_from_wire(proposal)?))
        }
        v1::consensus_message::Message::Vote(vote) => Ok(Message::Vote(vote_from_wire(&vote)?)),
    }
}

pub fn certificate_to_wire(certificate: &CommitCertificate) -> v1::CommitCertificate {
    v1::CommitCertificate {
        height: certificate.height,
        round: certificate.round,
        block_id: certificate.block_id.0.to_vec(),
        signatures: certificate
            .signatures
            .iter()
            .map(|signature| v1::CommitSignature {
                validator: signature.validator,
                signature: signature.signature.to_bytes().to_vec(),
            })
            .collect(),
    }
}

pub fn certificate_from_wire(wire: &v1::CommitCertificate) -> Result<CommitCertificate, WireError> {
    Ok(CommitCertificate {
        height: wire.height,
        round: wire.round,
        block_id: block_id("certificate.block_id", &wire.block_id)?,
        signatures: wire
            .signatures
            .iter()
            .map(|entry| {
                Ok(CommitSignature {
                    validator: entry.validator,
                    signature: signature(&entry.signature)?,
                })
            })
            .collect::<Result<_, WireError>>()?,
    })
}

/// The safety state in its storage form (`varde.v1.SafetyState`, proto/varde/v1/storage.proto).
pub fn safety_state_to_wire(state: &SafetyState) -> v1::SafetyState {
    v1::SafetyState {
        height: state.height,
        round: state.round,
        step: match state.step {
            Step::Propose => v1::ConsensusStep::Propose,
            Step::Prevote => v1::ConsensusStep::Prevote,
            Step::Precommit => v1::ConsensusStep::Precommit,
        } as i32,
        locked: state.locked.map(|(round, block_id)| v1::LockedBlock {
            round,
            block_id: block_id.0.to_vec(),
        }),
        valid: state.valid.as_ref().map(|valid| v1::ValidBlock {
            round: valid.round,
            block_id: valid.block.id.0.to_vec(),
            block: valid.block.payload.to_vec(),
            prevotes: valid.prevotes.iter().map(vote_to_wire).collect(),
        }),
        round_proof: state.round_proof.iter().map(vote_to_wire).collect(),
        own_proposal: state.own_proposal.as_ref().map(proposal_message_to_wire),
        own_prevote: state.own_prevote.as_ref().map(vote_to_wire),
        own_precommit: state.own_precommit.as_ref().map(vote_to_wire),
    }
}

/// A safety state back from its storage form. Checks every length and enum; whether the state is
/// consistent (votes of its height, a lock not after its round, ...) is the engine's check when it
/// resumes from it (`Engine::new`).
pub fn safety_state_from_wire(wire: v1::SafetyState) -> Result<SafetyState, WireError> {
    let step = match v1::ConsensusStep::try_from(wire.step) {
        Ok(v1::ConsensusStep::Propose) => Step::Propose,
        Ok(v1::ConsensusStep::Prevote) => Step::Prevote,
        Ok(v1::ConsensusStep::Precommit) => Step::Precommit,
        _ => return Err(WireError::Step(wire.step)),
    };
    let votes = |votes: &[v1::SignedVote]| {
        votes
            .iter()
            .map(vote_from_wire)
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(SafetyState {
        height: wire.height,
        round: wire.round,
        step,
        locked: wire
            .locked
            .map(|locked| {
                Ok::<_, WireError>((locked.round, block_id("locked.block_id", &locked.block_id)?))
            })
            .transpose()?,
        valid: wire
            .valid
            .map(|valid| {
                Ok::<_, WireError>(ValidBlock {
                    round: valid.round,
                    block: Block {
                        id: block_id("valid.block_id", &valid.block_id)?,
                        payload: Arc::from(valid.block),
                    },
                    prevotes: votes(&valid.prevotes)?,
                })
            })
            .transpose()?,
        round_proof: votes(&wire.round_proof)?,
        own_proposal: wire
            .own_proposal
            .map(proposal_message_from_wire)
            .transpose()?,
        own_prevote: wire.own_prevote.as_ref().map(vote_from_wire).transpose()?,
        own_precommit: wire
            .own_precommit
            .as_ref()
            .map(vote_from_wire)
            .transpose()?,
    })
}

pub fn evidence_to_wire(evidence: &Evidence) -> v1::Evidence {
    let kind = match evidence {
        Evidence::DuplicateVote { first, second } => {
            v1::evidence::Kind::DuplicateVote(v1::DuplicateVote {
                first: Some(vote_to_wire(first)),
                second: Some(vote_to_wire(second)),
            })
        }
        Evidence::DuplicateProposal { first, second } => {
            v1::evidence::Kind::DuplicateProposal(v1::DuplicateProposal {
                first: Some(proposal_to_wire(first)),
                second: Some(proposal_to_wire(second)),
            })
        }
    };
    v1::Evidence { kind: Some(kind) }
}

pub fn evidence_from_wire(wire: &v1::Evidence) -> Result<Evidence, WireError> {
    match wire.kind.as_ref().ok_or(WireError::Missing("evidence"))? {
        v1::evidence::Kind::DuplicateVote(pair) => Ok(Evidence::DuplicateVote {
            first: vote_from_wire(pair.first.as_ref().ok_or(WireError::Missing("first"))?)?,
            second: vote_from_wire(pair.second.as_ref().ok_or(WireError::Missing("second"))?)?,
        }),
        v1::evidence::Kind::DuplicateProposal(pair) => Ok(Evidence::DuplicateProposal {
            first: proposal_from_wire(pair.first.as_ref().ok_or(WireError::Missing("first"))?)?,
            second: proposal_from_wire(pair.second.as_ref().ok_or(WireError::Missing("second"))?)?,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use varde_consensus::SigningKey;

    fn signed_vote(block: Option<u8>) -> SignedVote {
        let key = SigningKey::from_bytes(&[7; 32]);
        let vote = Vote {
            kind: VoteKind::Precommit,
            height: 9,
            round: 2,
            block_id: block.map(|byte| BlockId([byte; 32])),
            validator: 3,
        };
        SignedVote::sign("varde-test", vote, &key)
    }

    // Votes (nil and not), proposals with a proof of lock, certificates and evidence come back
    // from the wire unchanged.
    #[test]
    fn values_round_trip_through_the_wire() {
        let key = SigningKey::from_bytes(&[7; 32]);
        for vote in [signed_vote(None), signed_vote(Some(1))] {
            let message = Message::Vote(vote);
            assert_eq!(
                message_from_wire(message_to_wire(&message)).unwrap(),
                message
            );
        }
        let proposal = SignedProposal::sign(
            "varde-test",
            Proposal {
                height: 9,
                round: 2,
                valid_round: Some(1),
                block_id: BlockId([5; 32]),
                proposer: 1,
            },
            &key,
        );
        let message = Message::Proposal(ProposalMessage {
            signed: proposal.clone(),
            block: Block {
                id: BlockId([5; 32]),
                payload: Arc::from(&b"block"[..]),
            },
            proof_of_lock: vec![signed_vote(Some(5))],
        });
        assert_eq!(
            message_from_wire(message_to_wire(&message)).unwrap(),
            message
        );
        let certificate = CommitCertificate {
            height: 9,
            round: 2,
            block_id: BlockId([5; 32]),
            signatures: vec![CommitSignature {
                validator: 0,
                signature: signed_vote(Some(5)).signature,
            }],
        };
        assert_eq!(
            certificate_from_wire(&certificate_to_wire(&certificate)).unwrap(),
            certificate
        );
        let evidence = Evidence::DuplicateVote {
            first: signed_vote(None),
            second: signed_vote(Some(1)),
        };
        assert_eq!(
            evidence_from_wire(&evidence_to_wire(&evidence)).unwrap(),
            evidence
        );
    }

    // Short ids, short signatures, unknown vote kinds and missing parts are refused by name.
    #[test]
    fn malformed_values_are_refused() {
        let mut wire = vote_to_wire(&signed_vote(Some(1)));
        wire.signature.pop();
        assert_eq!(
            vote_from_wire(&wire).unwrap_err(),
            WireError::Length {
                field: "signature",
                expected: 64,
                found: 63
            }
        );
        let mut wire = vote_to_wire(&signed_vote(Some(1)));
        wire.vote.as_mut().unwrap().block_id = vec![1; 31];
        assert!(matches!(
            vote_from_wire(&wire),
            Err(WireError::Length {
                field: "vote.block_id",
                ..
            })
        ));
        let mut wire = vote_to_wire(&signed_vote(None));
        wire.vote.as_mut().unwrap().kind = 0;
        assert_eq!(vote_from_wire(&wire).unwrap_err(), WireError::VoteKind(0));
        assert_eq!(
            message_from_wire(v1::ConsensusMessage { message: None }).unwrap_err(),
            WireError::Missing("message")
        );
    }
}
