//! The Tendermint state machine of one validator (Buchman, Kwon, Milosevic: "The latest gossip on BFT
//! consensus", arXiv:1807.04938, Algorithm 1). Line numbers in comments ("L22") refer to that
//! algorithm. Every input runs the rules of the paper until none fires; each rule fires at most once per
//! round and step, so that loop ends.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::certificate::CommitCertificate;
use crate::evidence::Evidence;
use crate::message::{Message, Proposal, ProposalMessage, SignedProposal, SignedVote, Vote};
use crate::output::{
    Decision, Outbound, Output, RejectReason, Rejection, Request, SafetyState, Timer, TimerKind,
    ValidBlock,
};
use crate::restore::{Checker, SafetyStateFault};
use crate::signing::SignatureVerifier;
use crate::types::{Block, BlockId, Height, Round, Step, ValidatorIndex, VoteKind};
use crate::validator_set::ValidatorSet;
use crate::vote_keeper::{AddVote, VoteKeeper};

/// Votes more than this many rounds ahead of ours are not stored (a Byzantine validator could
/// otherwise fill memory with votes for far rounds); they still count towards skipping rounds.
pub const ROUND_WINDOW: Round = 10;

/// The most messages buffered per validator for the next height while this one finishes.
pub const FUTURE_MESSAGES_PER_VALIDATOR: usize = 6;

/// The longest chain id accepted (it is length-prefixed with a u16 in every signed digest).
pub const MAX_CHAIN_ID_BYTES: usize = 256;

/// Timeouts grow linearly with the round, so that after the network stabilises they eventually
/// exceed the message delay and a round succeeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub propose_ms: u64,
    pub prevote_ms: u64,
    pub precommit_ms: u64,
    /// Added to each timeout per round.
    pub increase_per_round_ms: u64,
    /// How often a validator retransmits its messages of the current round.
    pub rebroadcast_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            propose_ms: 1_000,
            prevote_ms: 500,
            precommit_ms: 500,
            increase_per_round_ms: 500,
            rebroadcast_ms: 2_000,
        }
    }
}

impl Timeouts {
    fn delay_ms(&self, kind: TimerKind, round: Round) -> u64 {
        let base = match kind {
            TimerKind::Propose => self.propose_ms,
            TimerKind::Prevote => self.prevote_ms,
            TimerKind::Precommit => self.precommit_ms,
            TimerKind::Rebroadcast => return self.rebroadcast_ms,
        };
        base.saturating_add(self.increase_per_round_ms.saturating_mul(u64::from(round)))
    }
}

/// A safety rule the simulator may switch off to prove that it notices (feature `test-faults`).
#[cfg(feature = "test-faults")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokenRule {
    /// Count 2f votes as a quorum instead of 2f+1.
    QuorumOfTwoF,
    /// Prevote for any valid proposal, ignoring the lock (L23, L29).
    IgnoreLock,
    /// Buffer every next-height message, without the per-validator bound.
    UnboundedFutureBuffer,
    /// Never prevote nil when the propose timeout fires (L57).
    IgnoreProposeTimeout,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    pub chain_id: String,
    pub timeouts: Timeouts,
    #[cfg(feature = "test-faults")]
    pub broken_rule: Option<BrokenRule>,
}

impl EngineConfig {
    pub fn new(chain_id: impl Into<String>, timeouts: Timeouts) -> Result<Self, EngineError> {
        let chain_id = chain_id.into();
        if chain_id.is_empty() || chain_id.len() > MAX_CHAIN_ID_BYTES {
            return Err(EngineError::InvalidChainId(chain_id.len()));
        }
        Ok(Self {
            chain_id,
            timeouts,
            #[cfg(feature = "test-faults")]
            broken_rule: None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("a chain id is 1 to {MAX_CHAIN_ID_BYTES} bytes, not {0}")]
    InvalidChainId(usize),
    #[error(
        "the persisted safety state is for height {persisted}, beyond the next height to decide \
         ({starting}): the block store lost committed blocks; restore it before starting"
    )]
    SafetyStateAhead { persisted: Height, starting: Height },
    #[error(
        "the persisted safety state is inconsistent ({reason}): it was corrupted or tampered \
         with; the validator refuses to start rather than risk signing twice; restore the \
         node's data directory from a backup"
    )]
    InvalidSafetyState { reason: SafetyStateFault },
}

/// What the host feeds the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A message from the network (not yet verified: the engine checks it).
    Message(Message),
    /// A timer set by an earlier output fired.
    Timeout(Timer),
    /// The application's answer to [`Request::ProposeBlock`].
    BlockToPropose {
        height: Height,
        round: Round,
        block: Block,
    },
    /// The application's answer to [`Request::ValidateBlock`].
    BlockVerdict {
        height: Height,
        block_id: BlockId,
        valid: bool,
    },
    /// A committed block fetched from a peer for the height this engine is deciding.
    CommittedBlock {
        block: Block,
        certificate: CommitCertificate,
    },
}

/// One validator's consensus state machine. Deterministic: the same inputs give the same outputs.
pub struct Engine {
    config: EngineConfig,
    signing_key: SigningKey,
    verifier: Arc<dyn SignatureVerifier>,

    height: Height,
    validators: ValidatorSet,
    /// Our index in this height's set; `None` when we only follow (an observer).
    own_index: Option<ValidatorIndex>,

    round: Round,
    step: Step,
    locked: Option<(Round, BlockId)>,
    valid: Option<ValidBlock>,
    own_proposal: Option<ProposalMessage>,
    own_prevote: Option<SignedVote>,
    own_precommit: Option<SignedVote>,
    decided: bool,
    /// Set when built from a persisted safety state: `start` resumes instead of starting round 0.
    resuming: bool,

    votes: VoteKeeper,
    /// The first correctly signed proposal from each round's proposer.
    proposals: BTreeMap<Round, SignedProposal>,
    blocks: BTreeMap<BlockId, Block>,
    verdicts: BTreeMap<BlockId, bool>,
    verdicts_requested: BTreeSet<BlockId>,
    evidence_reported: BTreeSet<(ValidatorIndex, Round, u8)>,
    /// Each validator's verified vote of the highest round seen at this height (L55).
    highest_votes: Vec<Option<SignedVote>>,
    /// The votes that justified entering the current round; see [`SafetyState::round_proof`].
    round_proof: Vec<SignedVote>,
    /// Rounds in which the "first time" rules have fired (L34, L36, L47).
    prevote_timeout_round: Option<Round>,
    polka_handled_round: Option<Round>,
    precommit_timeout_round: Option<Round>,
    awaiting_block_for: Option<Round>,
    future_messages: Vec<Message>,

    output: Output,
    outgoing: Vec<Message>,
    safety_changed: bool,
}

impl Engine {
    /// An engine about to decide `height` with `validators`. Pass the persisted safety state when
    /// restarting; a state for an earlier height is ignored (that height is already committed).
    pub fn new(
        config: EngineConfig,
        signing_key: SigningKey,
        verifier: Arc<dyn SignatureVerifier>,
        height: Height,
        validators: ValidatorSet,
        restored: Option<SafetyState>,
    ) -> Result<Self, EngineError> {
        let restored = match restored {
            Some(state) if state.height > height => {
                return Err(EngineError::SafetyStateAhead {
                    persisted: state.height,
                    starting: height,
                });
            }
            Some(state) if state.height == height => Some(state),
            _ => None,
        };
        let own_index = validators.index_of(&signing_key.verifying_key());
        if let Some(state) = &restored {
            let checker = Checker {
                chain_id: &config.chain_id,
                validators: &validators,
                verifier: &*verifier,
                own_index,
            };
            checker
                .check(state)
                .map_err(|reason| EngineError::InvalidSafetyState { reason })?;
        }
        let mut engine = Self {
            votes: VoteKeeper::new(height, validators.len()),
            highest_votes: vec![None; validators.len()],
            round_proof: Vec::new(),
            config,
            signing_key,
            verifier,
            height,
            validators,
            own_index,
            round: 0,
            step: Step::Propose,
            locked: None,
            valid: None,
            own_proposal: None,
            own_prevote: None,
            own_precommit: None,
            decided: false,
            resuming: false,
            proposals: BTreeMap::new(),
            blocks: BTreeMap::new(),
            verdicts: BTreeMap::new(),
            verdicts_requested: BTreeSet::new(),
            evidence_reported: BTreeSet::new(),
            prevote_timeout_round: None,
            polka_handled_round: None,
            precommit_timeout_round: None,
            awaiting_block_for: None,
            future_messages: Vec::new(),
            output: Output::default(),
            outgoing: Vec::new(),
            safety_changed: false,
        };
        if let Some(state) = restored {
            engine.restore(state);
        }
        Ok(engine)
    }

    /// Starts the engine: round 0 of a fresh height (L10), or the restored round and step.
    pub fn start(&mut self) -> Output {
        if std::mem::take(&mut self.resuming) {
            self.resume_round();
        } else {
            self.start_round(0, Vec::new());
        }
        self.run_rules();
        self.finish()
    }

    /// Handles one input and says what the host must do.
    pub fn handle(&mut self, input: Input) -> Output {
        match input {
            Input::Message(message) => self.on_message(message),
            Input::Timeout(timer) => self.on_timeout(timer),
            Input::BlockToPropose {
                height,
                round,
                block,
            } => self.on_block_to_propose(height, round, block),
            Input::BlockVerdict {
                height,
                block_id,
                valid,
            } => {
                if height == self.height && self.verdicts_requested.contains(&block_id) {
                    self.verdicts.insert(block_id, valid);
                }
            }
            Input::CommittedBlock { block, certificate } => {
                self.on_committed_block(block, certificate)
            }
        }
        self.run_rules();
        self.finish()
    }

    /// Signs with `signing_key` from the next height on: a validator whose consensus key
    /// governance rotated at the coming height boundary. Only between a decision and
    /// [`Engine::start_next_height`], so that no height is signed with two keys.
    pub fn rotate_signing_key(&mut self, signing_key: SigningKey) {
        assert!(
            self.decided,
            "rotate_signing_key before this height was decided"
        );
        self.signing_key = signing_key;
    }

    /// The key this engine signs with.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing_key.verifying_key()
    }

    /// Moves to the next height once the host has durably applied the [`Decision`] of this one.
    /// `validators` is the set of the next height (changes take effect at a height boundary).
    pub fn start_next_height(&mut self, validators: ValidatorSet) -> Output {
        assert!(
            self.decided,
            "start_next_height before this height was decided"
        );
        self.height += 1;
        self.own_index = validators.index_of(&self.signing_key.verifying_key());
        self.votes = VoteKeeper::new(self.height, validators.len());
        self.highest_votes = vec![None; validators.len()];
        self.validators = validators;
        self.locked = None; // L53
        self.valid = None;
        self.decided = false;
        self.proposals.clear();
        self.blocks.clear();
        self.verdicts.clear();
        self.verdicts_requested.clear();
        self.evidence_reported.clear();
        self.prevote_timeout_round = None;
        self.polka_handled_round = None;
        self.precommit_timeout_round = None;
        self.start_round(0, Vec::new()); // L54
        for message in std::mem::take(&mut self.future_messages) {
            self.on_message(message);
        }
        self.run_rules();
        self.finish()
    }

    pub fn height(&self) -> Height {
        self.height
    }

    pub fn round(&self) -> Round {
        self.round
    }

    pub fn step(&self) -> Step {
        self.step
    }

    /// How many messages for the next height this engine holds (at most
    /// [`FUTURE_MESSAGES_PER_VALIDATOR`] per validator of the set).
    pub fn buffered_future_messages(&self) -> usize {
        self.future_messages.len()
    }

    pub fn is_decided(&self) -> bool {
        self.decided
    }

    pub fn validators(&self) -> &ValidatorSet {
        &self.validators
    }

    pub fn chain_id(&self) -> &str {
        &self.config.chain_id
    }

    /// The state a crash must not lose (also emitted in outputs whenever it changes).
    pub fn safety_state(&self) -> SafetyState {
        SafetyState {
            height: self.height,
            round: self.round,
            step: self.step,
            locked: self.locked,
            valid: self.valid.clone(),
            round_proof: self.round_proof.clone(),
            own_proposal: self.own_proposal.clone(),
            own_prevote: self.own_prevote.clone(),
            own_precommit: self.own_precommit.clone(),
        }
    }

    // ----- Quorum arithmetic (the only place the test-only broken rule reaches) -----

    fn quorum(&self) -> usize {
        #[cfg(feature = "test-faults")]
        if self.config.broken_rule == Some(BrokenRule::QuorumOfTwoF) {
            return (2 * self.validators.fault_tolerance()).max(1);
        }
        self.validators.quorum()
    }

    fn respects_lock(&self, block_id: BlockId, since_round: Option<Round>) -> bool {
        #[cfg(feature = "test-faults")]
        if self.config.broken_rule == Some(BrokenRule::IgnoreLock) {
            return true;
        }
        match self.locked {
            None => true,
            Some((locked_round, locked_id)) => {
                locked_id == block_id || since_round.is_some_and(|vr| locked_round <= vr)
            }
        }
    }

    // ----- Rounds -----

    /// StartRound (L11–L21), with the votes that justify entering `round`.
    fn start_round(&mut self, round: Round, proof: Vec<SignedVote>) {
        self.round = round;
        self.round_proof = proof;
        self.step = Step::Propose;
        self.own_proposal = None;
        self.own_prevote = None;
        self.own_precommit = None;
        self.awaiting_block_for = None;
        self.safety_changed = true;
        self.forget_invalid_verdicts();
        if self.is_own_turn_to_propose() {
            match self.valid.clone() {
                // L15–L16: re-propose the block a quorum prevoted, with that quorum's prevotes.
                Some(valid) => self.propose(valid.block, Some((valid.round, valid.prevotes))),
                // L18: getValue().
                None => {
                    self.awaiting_block_for = Some(round);
                    self.output.requests.push(Request::ProposeBlock {
                        height: self.height,
                        round,
                    });
                }
            }
        }
        // L21, and for the proposer too: should its block never come, it still leaves the round.
        self.set_timer(TimerKind::Propose);
        self.set_timer(TimerKind::Rebroadcast);
    }

    /// A block judged invalid may be valid by a later round: a time beyond the validator's clock
    /// passes. Validity must come to agree among honest validators for liveness, so a new round
    /// forgets the invalid verdicts, and the application judges again any block proposed in it
    /// (this round's proposal at once, if it came early). Valid verdicts stay: a block valid once
    /// stays valid for its height.
    fn forget_invalid_verdicts(&mut self) {
        let invalid: Vec<BlockId> = self
            .verdicts
            .iter()
            .filter(|(_, valid)| !**valid)
            .map(|(block_id, _)| *block_id)
            .collect();
        for block_id in &invalid {
            self.verdicts.remove(block_id);
            self.verdicts_requested.remove(block_id);
        }
        let Some(signed) = self.proposals.get(&self.round) else {
            return;
        };
        let block_id = signed.proposal.block_id;
        if invalid.contains(&block_id) {
            if let Some(block) = self.blocks.get(&block_id) {
                self.verdicts_requested.insert(block_id);
                self.output.requests.push(Request::ValidateBlock {
                    height: self.height,
                    block: block.clone(),
                });
            }
        }
    }

    /// Re-enters the persisted round after a restart without signing anything new.
    fn resume_round(&mut self) {
        if self.step == Step::Propose {
            if self.own_proposal.is_none() && self.is_own_turn_to_propose() {
                // The proposal was never persisted, so it never left: proposing now is safe.
                match self.valid.clone() {
                    Some(valid) => self.propose(valid.block, Some((valid.round, valid.prevotes))),
                    None => {
                        self.awaiting_block_for = Some(self.round);
                        self.output.requests.push(Request::ProposeBlock {
                            height: self.height,
                            round: self.round,
                        });
                    }
                }
            }
            self.set_timer(TimerKind::Propose);
        }
        self.set_timer(TimerKind::Rebroadcast);
        self.outgoing.extend(self.messages_to_retransmit());
    }

    fn restore(&mut self, state: SafetyState) {
        self.resuming = true;
        self.round = state.round;
        self.step = state.step;
        self.locked = state.locked;
        for vote in &state.round_proof {
            self.on_vote(vote.clone());
        }
        self.round_proof = state.round_proof;
        if let Some(valid) = state.valid {
            self.remember_block(valid.block.clone(), true);
            // The prevotes that made the block valid count again: re-proposing it (L16) needs its
            // polka in this engine's own tally (L28), or a restarted proposer would not prevote
            // its own re-proposal and, with one more validator silent, the height would stall.
            for prevote in &valid.prevotes {
                self.on_vote(prevote.clone());
            }
            self.valid = Some(valid);
        }
        if let Some(own) = state.own_proposal {
            self.proposals
                .insert(own.signed.proposal.round, own.signed.clone());
            self.remember_block(own.block.clone(), true);
            self.own_proposal = Some(own);
        }
        for vote in [state.own_prevote, state.own_precommit]
            .into_iter()
            .flatten()
        {
            if self.own_index == Some(vote.vote.validator) {
                self.votes.add(vote.clone(), false);
                match vote.vote.kind {
                    VoteKind::Prevote => self.own_prevote = Some(vote),
                    VoteKind::Precommit => self.own_precommit = Some(vote),
                }
            }
        }
    }

    fn is_own_turn_to_propose(&self) -> bool {
        self.own_index == Some(self.validators.proposer(self.height, self.round))
    }

    fn set_timer(&mut self, kind: TimerKind) {
        self.output.timers.push(Timer {
            kind,
            height: self.height,
            round: self.round,
            delay_ms: self.config.timeouts.delay_ms(kind, self.round),
        });
    }

    // ----- Signing (only here; each slot is signed at most once per round) -----

    /// L19: broadcast ⟨PROPOSAL, h, round, proposal, validRound⟩; a re-proposal carries the
    /// prevotes of its valid round.
    fn propose(&mut self, block: Block, valid: Option<(Round, Vec<SignedVote>)>) {
        let Some(own_index) = self.own_index else {
            return;
        };
        assert!(
            self.own_proposal.is_none(),
            "a second proposal in one round would equivocate"
        );
        let (valid_round, proof_of_lock) = match valid {
            Some((round, prevotes)) => (Some(round), prevotes),
            None => (None, Vec::new()),
        };
        let proposal = Proposal {
            height: self.height,
            round: self.round,
            valid_round,
            block_id: block.id,
            proposer: own_index,
        };
        let signed = SignedProposal::sign(&self.config.chain_id, proposal, &self.signing_key);
        self.remember_block(block.clone(), true);
        self.proposals.insert(self.round, signed.clone());
        let message = ProposalMessage {
            signed,
            block,
            proof_of_lock,
        };
        self.own_proposal = Some(message.clone());
        self.awaiting_block_for = None;
        self.safety_changed = true;
        self.outgoing.push(Message::Proposal(message));
    }

    /// Broadcasts our vote of `kind` in the current round and moves to the matching step.
    fn vote(&mut self, kind: VoteKind, block_id: Option<BlockId>) {
        self.step = match kind {
            VoteKind::Prevote => Step::Prevote,
            VoteKind::Precommit => Step::Precommit,
        };
        self.safety_changed = true;
        let Some(own_index) = self.own_index else {
            return;
        };
        let slot = match kind {
            VoteKind::Prevote => &self.own_prevote,
            VoteKind::Precommit => &self.own_precommit,
        };
        assert!(
            slot.is_none(),
            "a second {kind:?} in round {} would equivocate",
            self.round
        );
        // A vote of ours for this slot that this engine does not remember (signed before a restart
        // that lost the safety state, and seen again from the network) is kept, never contradicted.
        let earlier = self
            .votes
            .tally(self.round, kind)
            .and_then(|tally| {
                tally
                    .votes()
                    .find(|signed| signed.vote.validator == own_index)
            })
            .cloned();
        if let Some(earlier) = earlier {
            match kind {
                VoteKind::Prevote => self.own_prevote = Some(earlier.clone()),
                VoteKind::Precommit => self.own_precommit = Some(earlier.clone()),
            }
            self.outgoing.push(Message::Vote(earlier));
            return;
        }
        let vote = Vote {
            kind,
            height: self.height,
            round: self.round,
            block_id,
            validator: own_index,
        };
        let signed = SignedVote::sign(&self.config.chain_id, vote, &self.signing_key);
        match kind {
            VoteKind::Prevote => self.own_prevote = Some(signed.clone()),
            VoteKind::Precommit => self.own_precommit = Some(signed.clone()),
        }
        let outcome = self.votes.add(signed.clone(), false);
        assert_eq!(outcome, AddVote::Counted, "own vote slot already taken");
        self.outgoing.push(Message::Vote(signed));
    }

    /// This round's own messages and the proof of being in this round, which a validator sends
    /// again and again: the network may have lost them, and a lagging validator needs them.
    fn messages_to_retransmit(&self) -> Vec<Message> {
        let mut messages: Vec<Message> = self
            .round_proof
            .iter()
            .cloned()
            .map(Message::Vote)
            .collect();
        if let Some(own) = &self.own_proposal {
            messages.push(Message::Proposal(own.clone()));
        }
        for vote in [&self.own_prevote, &self.own_precommit]
            .into_iter()
            .flatten()
        {
            messages.push(Message::Vote(vote.clone()));
        }
        messages
    }

    // ----- Inputs -----

    fn on_message(&mut self, message: Message) {
        let height = message.height();
        if height < self.height {
            return; // Late delivery of a finished height.
        }
        if height > self.height || self.decided {
            if height > self.height {
                self.output.sync_from.get_or_insert(self.height);
            }
            if height == self.height + 1 {
                self.buffer_future(message);
            }
            return;
        }
        match message {
            Message::Proposal(proposal) => self.on_proposal(proposal),
            Message::Vote(signed) => self.on_vote(signed),
        }
    }

    /// Keeps a message of the next height until this one is applied. Only a message whose
    /// signature verifies against this height's validators waits, counted against its signer
    /// (an index below n): a forgery in an honest validator's name would otherwise take that
    /// validator's places and crowd out its real proposal. Membership changes only at a height
    /// boundary and is fixed by the genesis today; each message is verified again when it is
    /// replayed at its height, so a changed set never lets one through.
    fn buffer_future(&mut self, message: Message) {
        let sender = message.sender();
        if !self.verifies(&message) {
            return self.reject(sender, RejectReason::BadSignature);
        }
        let held = self
            .future_messages
            .iter()
            .filter(|buffered| buffered.sender() == sender)
            .count();
        #[cfg(feature = "test-faults")]
        let held = if self.config.broken_rule == Some(BrokenRule::UnboundedFutureBuffer) {
            0
        } else {
            held
        };
        if held < FUTURE_MESSAGES_PER_VALIDATOR && !self.future_messages.contains(&message) {
            self.future_messages.push(message);
        }
    }

    /// Whether `message` is signed by the validator it names, of this height's set; a proposal's
    /// proof of lock must also fit the set's size (its votes are checked when it is handled).
    fn verifies(&self, message: &Message) -> bool {
        let chain_id = &self.config.chain_id;
        match message {
            Message::Vote(signed) => signed.verify(chain_id, &self.validators, &*self.verifier),
            Message::Proposal(proposal) => {
                proposal.proof_of_lock.len() <= self.validators.len()
                    && proposal
                        .signed
                        .verify(chain_id, &self.validators, &*self.verifier)
            }
        }
    }

    fn reject(&mut self, claimed_sender: ValidatorIndex, reason: RejectReason) {
        self.output.rejections.push(Rejection {
            claimed_sender,
            reason,
        });
    }

    fn on_proposal(&mut self, message: ProposalMessage) {
        let ProposalMessage {
            signed,
            block,
            proof_of_lock,
        } = message;
        let proposal = signed.proposal;
        if self.validators.key(proposal.proposer).is_none() {
            return self.reject(proposal.proposer, RejectReason::UnknownValidator);
        }
        if !signed.verify(&self.config.chain_id, &self.validators, &*self.verifier) {
            return self.reject(proposal.proposer, RejectReason::BadSignature);
        }
        if proposal.proposer != self.validators.proposer(self.height, proposal.round) {
            return self.reject(proposal.proposer, RejectReason::NotTheProposer);
        }
        if block.id != proposal.block_id {
            return self.reject(proposal.proposer, RejectReason::BlockDoesNotMatchProposal);
        }
        if proposal.valid_round.is_some_and(|vr| vr >= proposal.round) {
            return self.reject(proposal.proposer, RejectReason::ValidRoundNotBeforeRound);
        }
        let proof_fits = proof_of_lock.len() <= self.validators.len()
            && proof_of_lock.iter().all(|prevote| {
                prevote.vote.kind == VoteKind::Prevote
                    && prevote.vote.height == self.height
                    && Some(prevote.vote.round) == proposal.valid_round
                    && prevote.vote.block_id == Some(proposal.block_id)
            });
        if !proof_fits {
            return self.reject(proposal.proposer, RejectReason::ProofOfLockDoesNotFit);
        }
        if proposal.round > self.round.saturating_add(ROUND_WINDOW) {
            return;
        }
        if let Some(first) = self.proposals.get(&proposal.round) {
            if *first != signed
                && self
                    .evidence_reported
                    .insert((proposal.proposer, proposal.round, 0))
            {
                self.output.evidence.push(Evidence::DuplicateProposal {
                    first: first.clone(),
                    second: signed,
                });
            }
            return;
        }
        self.proposals.insert(proposal.round, signed);
        self.remember_block(block, false);
        // The proof's prevotes are checked and counted like any other vote; the block is known now,
        // so a prevote for it counts even where its signer also sent us a conflicting one.
        for prevote in proof_of_lock {
            self.on_vote(prevote);
        }
    }

    fn remember_block(&mut self, block: Block, known_valid: bool) {
        let block_id = block.id;
        if known_valid {
            self.verdicts.insert(block_id, true);
            self.verdicts_requested.insert(block_id);
        } else if self.verdicts_requested.insert(block_id) {
            self.output.requests.push(Request::ValidateBlock {
                height: self.height,
                block: block.clone(),
            });
        }
        self.blocks.entry(block_id).or_insert(block);
    }

    fn on_vote(&mut self, signed: SignedVote) {
        let vote = signed.vote;
        if self.validators.key(vote.validator).is_none() {
            return self.reject(vote.validator, RejectReason::UnknownValidator);
        }
        if !signed.verify(&self.config.chain_id, &self.validators, &*self.verifier) {
            return self.reject(vote.validator, RejectReason::BadSignature);
        }
        self.note_highest(&signed);
        if vote.round > self.round.saturating_add(ROUND_WINDOW) {
            return;
        }
        let keep_if_conflicting = vote
            .block_id
            .is_none_or(|block_id| self.blocks.contains_key(&block_id));
        if let AddVote::Conflicting { evidence, .. } = self.votes.add(signed, keep_if_conflicting) {
            let kind_tag = match vote.kind {
                VoteKind::Prevote => 1,
                VoteKind::Precommit => 2,
            };
            if self
                .evidence_reported
                .insert((vote.validator, vote.round, kind_tag))
            {
                self.output.evidence.push(*evidence);
            }
        }
    }

    fn note_highest(&mut self, signed: &SignedVote) {
        let highest = &mut self.highest_votes[signed.vote.validator as usize];
        if highest
            .as_ref()
            .is_none_or(|held| signed.vote.round > held.vote.round)
        {
            *highest = Some(signed.clone());
        }
    }

    fn on_timeout(&mut self, timer: Timer) {
        if timer.height != self.height || timer.round != self.round || self.decided {
            return;
        }
        match timer.kind {
            // L57–L60: OnTimeoutPropose.
            TimerKind::Propose if self.step == Step::Propose => {
                #[cfg(feature = "test-faults")]
                if self.config.broken_rule == Some(BrokenRule::IgnoreProposeTimeout) {
                    return;
                }
                self.vote(VoteKind::Prevote, None);
            }
            // L61–L64: OnTimeoutPrevote.
            TimerKind::Prevote if self.step == Step::Prevote => {
                self.vote(VoteKind::Precommit, None);
            }
            // L65–L67: OnTimeoutPrecommit.
            TimerKind::Precommit => {
                let precommits = self
                    .votes
                    .tally(self.round, VoteKind::Precommit)
                    .into_iter()
                    .flat_map(|tally| tally.votes())
                    .cloned()
                    .collect();
                self.start_round(self.round + 1, precommits);
            }
            TimerKind::Rebroadcast => {
                self.outgoing.extend(self.messages_to_retransmit());
                self.set_timer(TimerKind::Rebroadcast);
            }
            _ => {}
        }
    }

    fn on_block_to_propose(&mut self, height: Height, round: Round, block: Block) {
        let still_wanted = height == self.height
            && round == self.round
            && self.step == Step::Propose
            && self.awaiting_block_for == Some(round)
            && !self.decided;
        if still_wanted {
            self.propose(block, None);
        }
    }

    fn on_committed_block(&mut self, block: Block, certificate: CommitCertificate) {
        if self.decided || certificate.height != self.height {
            return;
        }
        if block.id != certificate.block_id {
            return self.reject(
                self.validators.proposer(self.height, certificate.round),
                RejectReason::BlockDoesNotMatchProposal,
            );
        }
        if let Err(error) =
            certificate.verify(&self.config.chain_id, &self.validators, &*self.verifier)
        {
            // The certificate names no single culprit; report it against the round's proposer slot.
            return self.reject(
                self.validators.proposer(self.height, certificate.round),
                RejectReason::InvalidCertificate(error),
            );
        }
        self.decide(block, certificate);
    }

    // ----- The rules, run after every input until none fires -----

    fn run_rules(&mut self) {
        while !self.decided {
            if self.try_decide() || self.try_skip_round() {
                continue;
            }
            let progressed = match self.step {
                Step::Propose => self.try_prevote_on_proposal(),
                Step::Prevote => {
                    self.schedule_prevote_timeout();
                    self.try_lock_on_polka() || self.try_precommit_nil()
                }
                Step::Precommit => self.try_lock_on_polka(),
            };
            self.schedule_precommit_timeout();
            if !progressed {
                break;
            }
        }
    }

    /// L49–L54: a proposal and 2f+1 precommits for its block in any round decide the height.
    fn try_decide(&mut self) -> bool {
        let quorum = self.quorum();
        let candidates: Vec<(Round, BlockId)> = self.votes.commit_quorums(quorum).collect();
        for (round, block_id) in candidates {
            match (self.blocks.get(&block_id), self.verdicts.get(&block_id)) {
                (Some(block), Some(true)) => {
                    let block = block.clone();
                    let certificate = self.votes.certificate(round, block_id);
                    self.decide(block, certificate);
                    return true;
                }
                (None, _) => {
                    // Decided by the others, but the block never reached us: fetch it.
                    self.output.sync_from.get_or_insert(self.height);
                }
                _ => {}
            }
        }
        false
    }

    fn decide(&mut self, block: Block, certificate: CommitCertificate) {
        self.decided = true;
        self.output.decision = Some(Decision {
            height: self.height,
            block,
            certificate,
        });
    }

    /// L55–L56: votes from f+1 validators in higher rounds prove an honest one is there: join the
    /// highest round that f+1 validators have reached, keeping their votes as the proof.
    fn try_skip_round(&mut self) -> bool {
        let threshold = self.validators.skip_threshold();
        let mut highest: Vec<&SignedVote> = self.highest_votes.iter().flatten().collect();
        if highest.len() < threshold {
            return false;
        }
        highest.sort_unstable_by_key(|vote| std::cmp::Reverse(vote.vote.round));
        let target = highest[threshold - 1].vote.round;
        if target <= self.round {
            return false;
        }
        let proof = highest[..threshold]
            .iter()
            .map(|vote| (*vote).clone())
            .collect();
        self.start_round(target, proof);
        true
    }

    /// L22–L27 and L28–L33: prevote on the round's proposal.
    fn try_prevote_on_proposal(&mut self) -> bool {
        let Some(signed) = self.proposals.get(&self.round) else {
            return false;
        };
        let proposal = signed.proposal;
        let Some(&valid) = self.verdicts.get(&proposal.block_id) else {
            return false; // valid(v) not known yet.
        };
        let prevote = match proposal.valid_round {
            // L23: valid(v) ∧ (lockedRound = −1 ∨ lockedValue = v).
            None => valid && self.respects_lock(proposal.block_id, None),
            // L28: only with 2f+1 prevotes for v in round vr < round.
            Some(valid_round) => {
                let polka =
                    self.votes
                        .count(valid_round, VoteKind::Prevote, Some(proposal.block_id));
                if polka < self.quorum() {
                    return false;
                }
                // L29: valid(v) ∧ (lockedRound ≤ vr ∨ lockedValue = v).
                valid && self.respects_lock(proposal.block_id, Some(valid_round))
            }
        };
        let block_id = prevote.then_some(proposal.block_id);
        self.vote(VoteKind::Prevote, block_id); // L24 / L26 / L30 / L32
        true
    }

    /// L34–L35: 2f+1 prevotes of any kind start the prevote timeout, once per round.
    fn schedule_prevote_timeout(&mut self) {
        if self.prevote_timeout_round != Some(self.round)
            && self.votes.total(self.round, VoteKind::Prevote) >= self.quorum()
        {
            self.prevote_timeout_round = Some(self.round);
            self.set_timer(TimerKind::Prevote);
        }
    }

    /// L36–L43: the round's proposal with 2f+1 prevotes for it: lock and precommit (from the
    /// prevote step), and remember it as the valid block either way. Once per round.
    fn try_lock_on_polka(&mut self) -> bool {
        if self.polka_handled_round == Some(self.round) {
            return false;
        }
        let Some(signed) = self.proposals.get(&self.round) else {
            return false;
        };
        let block_id = signed.proposal.block_id;
        if self.verdicts.get(&block_id) != Some(&true)
            || self
                .votes
                .count(self.round, VoteKind::Prevote, Some(block_id))
                < self.quorum()
        {
            return false;
        }
        self.polka_handled_round = Some(self.round);
        let block = self.blocks[&block_id].clone();
        if self.step == Step::Prevote {
            self.locked = Some((self.round, block_id)); // L38–L39
            self.vote(VoteKind::Precommit, Some(block_id)); // L40–L41
        }
        let prevotes = self
            .votes
            .tally(self.round, VoteKind::Prevote)
            .into_iter()
            .flat_map(|tally| tally.votes_for(Some(block_id)))
            .cloned()
            .collect();
        // L42–L43
        self.valid = Some(ValidBlock {
            round: self.round,
            block,
            prevotes,
        });
        self.safety_changed = true;
        true
    }

    /// L44–L46: 2f+1 prevotes for nil: precommit nil.
    fn try_precommit_nil(&mut self) -> bool {
        if self.votes.count(self.round, VoteKind::Prevote, None) >= self.quorum() {
            self.vote(VoteKind::Precommit, None);
            return true;
        }
        false
    }

    /// L47–L48: 2f+1 precommits of any kind start the precommit timeout, once per round.
    fn schedule_precommit_timeout(&mut self) {
        if self.precommit_timeout_round != Some(self.round)
            && self.votes.total(self.round, VoteKind::Precommit) >= self.quorum()
        {
            self.precommit_timeout_round = Some(self.round);
            self.set_timer(TimerKind::Precommit);
        }
    }

    fn finish(&mut self) -> Output {
        let mut output = std::mem::take(&mut self.output);
        let messages = std::mem::take(&mut self.outgoing);
        output.outbound = if std::mem::take(&mut self.safety_changed) {
            Outbound::PersistThenSend {
                state: Box::new(self.safety_state()),
                messages,
            }
        } else if messages.is_empty() {
            Outbound::Nothing
        } else {
            Outbound::Send(messages)
        };
        output
    }
}
