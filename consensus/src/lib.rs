//! Varde's Byzantine fault tolerant consensus engine: Tendermint for n = 3f+1 validators, written as
//! a deterministic state machine without I/O (see `README.md` for the protocol and its invariants).
//!
//! The host feeds [`Input`]s (messages, timer expiries, the application's blocks and verdicts,
//! committed blocks fetched from peers) to an [`Engine`] and carries out each [`Output`] in the order
//! **persist → sync → send → apply**. The engine never reads a clock, never draws randomness and
//! depends on no runtime, network or database crate, so a simulator can drive it in virtual time.

mod certificate;
mod engine;
mod evidence;
mod message;
mod output;
mod restore;
mod signing;
mod types;
mod validator_set;
mod vote_keeper;

pub use certificate::{CertificateError, CommitCertificate, CommitSignature};
#[cfg(feature = "test-faults")]
pub use engine::BrokenRule;
pub use engine::{
    Engine, EngineConfig, EngineError, FUTURE_MESSAGES_PER_VALIDATOR, Input, MAX_CHAIN_ID_BYTES,
    ROUND_WINDOW, Timeouts,
};
pub use evidence::{Evidence, EvidenceError};
pub use message::{Message, Proposal, ProposalMessage, SignedProposal, SignedVote, Vote};
pub use output::{
    Decision, Outbound, Output, RejectReason, Rejection, Request, SafetyState, Timer, TimerKind,
    ValidBlock,
};
pub use restore::SafetyStateFault;
pub use signing::{Ed25519Verifier, SignatureVerifier, proposal_digest, vote_digest};
pub use types::{Block, BlockId, Height, Round, Step, ValidatorIndex, VoteKind};
pub use validator_set::{MAX_VALIDATORS, ValidatorSet, ValidatorSetError};
pub use vote_keeper::{AddVote, RoundVotes, Tally, VoteKeeper};

// Re-exported so hosts and tests name the same key types as the engine.
pub use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
