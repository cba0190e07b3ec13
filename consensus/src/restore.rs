//! Checks a persisted [`SafetyState`] before the engine resumes from it. The state is this
//! validator's own record, so a fault here is corruption or tampering, not Byzantine input: it
//! stops the validator with an error that says what is wrong, where resuming would trip the
//! engine's assertions (a vote recorded at a step before it) or sign on a false record.

use crate::message::SignedVote;
use crate::output::SafetyState;
use crate::signing::SignatureVerifier;
use crate::types::{Step, ValidatorIndex, VoteKind};
use crate::validator_set::ValidatorSet;

/// What is wrong with a persisted safety state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SafetyStateFault {
    #[error("its own {0:?} is not this validator's vote of its height and round")]
    OwnVoteElsewhere(VoteKind),
    #[error("its own {0:?} does not carry this validator's signature")]
    OwnVoteNotSigned(VoteKind),
    #[error("it holds its own {kind:?} at the {step:?} step, before that vote is cast")]
    VoteBeforeItsStep { kind: VoteKind, step: Step },
    #[error("its own proposal is not this validator's proposal of its height and round")]
    OwnProposalElsewhere,
    #[error("its own proposal does not carry this validator's signature or its block")]
    OwnProposalNotSigned,
    #[error("its round proof holds a vote of another height")]
    RoundProofElsewhere,
    #[error("its lock or valid block is of a round after its own")]
    LockAhead,
}

/// The parts of the engine a persisted state is checked against.
pub struct Checker<'a> {
    pub chain_id: &'a str,
    pub validators: &'a ValidatorSet,
    pub verifier: &'a dyn SignatureVerifier,
    /// This validator's index; `None` for an observer, which signs nothing.
    pub own_index: Option<ValidatorIndex>,
}

impl Checker<'_> {
    /// Every rule the engine relies on when it resumes from `state`.
    pub fn check(&self, state: &SafetyState) -> Result<(), SafetyStateFault> {
        for (slot, kind) in [
            (&state.own_prevote, VoteKind::Prevote),
            (&state.own_precommit, VoteKind::Precommit),
        ] {
            if let Some(vote) = slot {
                self.check_own_vote(state, vote, kind)?;
            }
        }
        self.check_own_proposal(state)?;
        if state
            .round_proof
            .iter()
            .any(|vote| vote.vote.height != state.height)
        {
            return Err(SafetyStateFault::RoundProofElsewhere);
        }
        let locked_ahead = state.locked.is_some_and(|(round, _)| round > state.round);
        let valid_ahead = state
            .valid
            .as_ref()
            .is_some_and(|valid| valid.round > state.round);
        if locked_ahead || valid_ahead {
            return Err(SafetyStateFault::LockAhead);
        }
        Ok(())
    }

    fn check_own_vote(
        &self,
        state: &SafetyState,
        signed: &SignedVote,
        kind: VoteKind,
    ) -> Result<(), SafetyStateFault> {
        let vote = &signed.vote;
        if vote.kind != kind
            || vote.height != state.height
            || vote.round != state.round
            || Some(vote.validator) != self.own_index
        {
            return Err(SafetyStateFault::OwnVoteElsewhere(kind));
        }
        if !signed.verify(self.chain_id, self.validators, self.verifier) {
            return Err(SafetyStateFault::OwnVoteNotSigned(kind));
        }
        // The step moves to a vote's step as the vote is cast (`Engine::vote`).
        let step_of_vote = match kind {
            VoteKind::Prevote => Step::Prevote,
            VoteKind::Precommit => Step::Precommit,
        };
        if state.step < step_of_vote {
            return Err(SafetyStateFault::VoteBeforeItsStep {
                kind,
                step: state.step,
            });
        }
        Ok(())
    }

    fn check_own_proposal(&self, state: &SafetyState) -> Result<(), SafetyStateFault> {
        let Some(own) = &state.own_proposal else {
            return Ok(());
        };
        let proposal = &own.signed.proposal;
        if proposal.height != state.height
            || proposal.round != state.round
            || Some(proposal.proposer) != self.own_index
        {
            return Err(SafetyStateFault::OwnProposalElsewhere);
        }
        if own.block.id != proposal.block_id
            || !own
                .signed
                .verify(self.chain_id, self.validators, self.verifier)
        {
            return Err(SafetyStateFault::OwnProposalNotSigned);
        }
        Ok(())
    }
}
