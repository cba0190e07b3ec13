//! What the engine asks of its host after each input. The host must handle the parts in this order:
//! **persist → sync → send → apply**: write [`Outbound::PersistThenSend::state`] durably, only then
//! send its messages, then apply a [`Decision`] to the ledger before calling
//! [`Engine::start_next_height`](crate::Engine::start_next_height).

use serde::{Deserialize, Serialize};

use crate::certificate::{CertificateError, CommitCertificate};
use crate::evidence::Evidence;
use crate::message::{Message, ProposalMessage, SignedVote};
use crate::types::{Block, BlockId, Height, Round, Step, ValidatorIndex};

/// Everything a validator must remember across a crash so that it never signs two conflicting
/// messages and never forgets a lock: the position in the protocol, the lock, the valid block, and
/// the messages it signed in the current round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SafetyState {
    pub height: Height,
    pub round: Round,
    pub step: Step,
    /// lockedRound_p and id(lockedValue_p).
    pub locked: Option<(Round, BlockId)>,
    /// validRound_p and validValue_p: the whole block and the prevotes that made it valid, which a
    /// proposer re-proposes together.
    pub valid: Option<ValidBlock>,
    /// The votes that justified entering `round` (the 2f+1 precommits of the round before, or the
    /// f+1 votes of later rounds): retransmitted so that lagging validators can follow.
    pub round_proof: Vec<SignedVote>,
    pub own_proposal: Option<ProposalMessage>,
    pub own_prevote: Option<SignedVote>,
    pub own_precommit: Option<SignedVote>,
}

/// validValue_p and validRound_p (L42–L43), with the 2f+1 prevotes of that round for the block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidBlock {
    pub round: Round,
    pub block: Block,
    pub prevotes: Vec<SignedVote>,
}

/// Messages to send to every validator, and whether they must wait for persistence.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Outbound {
    #[default]
    Nothing,
    /// Retransmissions of messages already covered by persisted state: send at once.
    Send(Vec<Message>),
    /// Write `state` durably (and sync it) first; only then send `messages` (possibly none).
    PersistThenSend {
        state: Box<SafetyState>,
        messages: Vec<Message>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TimerKind {
    Propose,
    Prevote,
    Precommit,
    /// Retransmit this round's own messages, in case the network lost them.
    Rebroadcast,
}

/// A timer the host must set; when it fires, the host feeds [`crate::Input::Timeout`] back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timer {
    pub kind: TimerKind,
    pub height: Height,
    pub round: Round,
    pub delay_ms: u64,
}

/// Questions for the application, answered later with an input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// getValue(): build a block for this height; answer with [`crate::Input::BlockToPropose`].
    ProposeBlock { height: Height, round: Round },
    /// valid(v): check a proposed block; answer with [`crate::Input::BlockVerdict`].
    ValidateBlock { height: Height, block: Block },
}

/// A block that became final, with the certificate that proves it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub height: Height,
    pub block: Block,
    pub certificate: CommitCertificate,
}

/// Why an inbound message was refused. Each reason is something an honest peer never sends, so the
/// host may score the sender down (except [`RejectReason::BadSignature`], which anyone can forge in
/// another's name: blame the connection, not the claimed validator).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RejectReason {
    UnknownValidator,
    BadSignature,
    NotTheProposer,
    BlockDoesNotMatchProposal,
    ValidRoundNotBeforeRound,
    ProofOfLockDoesNotFit,
    InvalidCertificate(CertificateError),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The validator the message claimed to come from.
    pub claimed_sender: ValidatorIndex,
    pub reason: RejectReason,
}

/// The engine's answer to one input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    pub outbound: Outbound,
    pub timers: Vec<Timer>,
    pub requests: Vec<Request>,
    pub decision: Option<Decision>,
    pub evidence: Vec<Evidence>,
    pub rejections: Vec<Rejection>,
    /// Peers are at a higher height, or this height was decided without this node holding the
    /// block: fetch committed blocks with certificates from this height on and feed them back as
    /// [`crate::Input::CommittedBlock`].
    pub sync_from: Option<Height>,
}

impl Output {
    /// The messages to send, whether or not they wait for persistence.
    pub fn messages(&self) -> &[Message] {
        match &self.outbound {
            Outbound::Nothing => &[],
            Outbound::Send(messages) | Outbound::PersistThenSend { messages, .. } => messages,
        }
    }

    /// The safety state to persist before sending, if any.
    pub fn state_to_persist(&self) -> Option<&SafetyState> {
        match &self.outbound {
            Outbound::PersistThenSend { state, .. } => Some(state),
            _ => None,
        }
    }
}
