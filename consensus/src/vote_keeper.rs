//! Vote keeping for one height: which validator voted what in each round, tallies per block, and
//! conflicting votes turned into evidence. Only verified votes from validators of the height enter.

use std::collections::BTreeMap;

use crate::certificate::{CommitCertificate, CommitSignature};
use crate::evidence::Evidence;
use crate::message::SignedVote;
use crate::types::{BlockId, Height, Round, VoteKind};

/// What adding a vote did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddVote {
    /// A new vote, now counted.
    Counted,
    /// A vote already held (a retransmission): nothing changes.
    Duplicate,
    /// A vote that differs from the validator's first one in this slot: evidence of equivocation.
    /// `counted` says whether it also counts towards its own block (see [`VoteKeeper::add`]).
    Conflicting {
        evidence: Box<Evidence>,
        counted: bool,
    },
}

/// The votes of one kind in one round. As in the paper, a validator counts towards every value it
/// signed a vote for: an equivocating validator may count twice, which two quorums for different
/// values cannot absorb (they share an honest validator), so safety is unaffected, while validators
/// that saw different halves of an equivocation still agree on what a quorum signed.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Each validator's votes in this slot: the first, then the conflicting ones kept.
    by_validator: Vec<Vec<SignedVote>>,
    per_block: BTreeMap<Option<BlockId>, usize>,
    voters: usize,
}

impl Tally {
    fn new(validator_count: usize) -> Self {
        Self {
            by_validator: vec![Vec::new(); validator_count],
            per_block: BTreeMap::new(),
            voters: 0,
        }
    }

    fn add(&mut self, signed: SignedVote, keep_if_conflicting: bool) -> AddVote {
        let held = &mut self.by_validator[signed.vote.validator as usize];
        if held.iter().any(|existing| existing.vote == signed.vote) {
            return AddVote::Duplicate;
        }
        let outcome = match held.first() {
            None => {
                self.voters += 1;
                AddVote::Counted
            }
            Some(first) => {
                let evidence = Box::new(Evidence::DuplicateVote {
                    first: first.clone(),
                    second: signed.clone(),
                });
                if !keep_if_conflicting {
                    return AddVote::Conflicting {
                        evidence,
                        counted: false,
                    };
                }
                AddVote::Conflicting {
                    evidence,
                    counted: true,
                }
            }
        };
        *self.per_block.entry(signed.vote.block_id).or_insert(0) += 1;
        held.push(signed);
        outcome
    }

    /// How many validators voted for `block_id` (None: nil).
    pub fn count(&self, block_id: Option<BlockId>) -> usize {
        self.per_block.get(&block_id).copied().unwrap_or(0)
    }

    /// How many distinct validators voted at all.
    pub fn total(&self) -> usize {
        self.voters
    }

    /// The block (not nil) with at least `threshold` votes, if any.
    pub fn block_with(&self, threshold: usize) -> Option<BlockId> {
        self.per_block
            .iter()
            .find(|(block_id, count)| block_id.is_some() && **count >= threshold)
            .and_then(|(block_id, _)| *block_id)
    }

    /// Every vote held, in validator order.
    pub fn votes(&self) -> impl Iterator<Item = &SignedVote> {
        self.by_validator.iter().flatten()
    }

    /// The votes for `block_id`, one per validator, in validator order.
    pub fn votes_for(&self, block_id: Option<BlockId>) -> impl Iterator<Item = &SignedVote> {
        self.votes()
            .filter(move |signed| signed.vote.block_id == block_id)
    }
}

/// Both tallies of one round.
#[derive(Debug, Clone)]
pub struct RoundVotes {
    pub prevotes: Tally,
    pub precommits: Tally,
}

/// All votes of one height, by round.
#[derive(Debug, Clone)]
pub struct VoteKeeper {
    height: Height,
    validator_count: usize,
    rounds: BTreeMap<Round, RoundVotes>,
}

impl VoteKeeper {
    pub fn new(height: Height, validator_count: usize) -> Self {
        Self {
            height,
            validator_count,
            rounds: BTreeMap::new(),
        }
    }

    /// Adds a verified vote of this height from a validator of this height's set. A vote that
    /// conflicts with the validator's first one in its slot is evidence; it also counts towards its
    /// block when `keep_if_conflicting` (the engine keeps such votes only for nil or for a block it
    /// holds a proposal for, which bounds what a Byzantine validator can make it store).
    pub fn add(&mut self, signed: SignedVote, keep_if_conflicting: bool) -> AddVote {
        assert_eq!(signed.vote.height, self.height, "vote of another height");
        assert!(
            (signed.vote.validator as usize) < self.validator_count,
            "vote from outside the validator set"
        );
        let validator_count = self.validator_count;
        let round = self
            .rounds
            .entry(signed.vote.round)
            .or_insert_with(|| RoundVotes {
                prevotes: Tally::new(validator_count),
                precommits: Tally::new(validator_count),
            });
        match signed.vote.kind {
            VoteKind::Prevote => round.prevotes.add(signed, keep_if_conflicting),
            VoteKind::Precommit => round.precommits.add(signed, keep_if_conflicting),
        }
    }

    pub fn round(&self, round: Round) -> Option<&RoundVotes> {
        self.rounds.get(&round)
    }

    pub fn tally(&self, round: Round, kind: VoteKind) -> Option<&Tally> {
        self.rounds.get(&round).map(|votes| match kind {
            VoteKind::Prevote => &votes.prevotes,
            VoteKind::Precommit => &votes.precommits,
        })
    }

    pub fn count(&self, round: Round, kind: VoteKind, block_id: Option<BlockId>) -> usize {
        self.tally(round, kind)
            .map_or(0, |tally| tally.count(block_id))
    }

    pub fn total(&self, round: Round, kind: VoteKind) -> usize {
        self.tally(round, kind).map_or(0, Tally::total)
    }

    /// Every round with a block that has at least `threshold` precommits, lowest round first.
    pub fn commit_quorums(&self, threshold: usize) -> impl Iterator<Item = (Round, BlockId)> + '_ {
        self.rounds.iter().filter_map(move |(round, votes)| {
            votes
                .precommits
                .block_with(threshold)
                .map(|block_id| (*round, block_id))
        })
    }

    /// The certificate made of every precommit for `block_id` in `round`.
    pub fn certificate(&self, round: Round, block_id: BlockId) -> CommitCertificate {
        let signatures = self
            .tally(round, VoteKind::Precommit)
            .into_iter()
            .flat_map(|tally| tally.votes_for(Some(block_id)))
            .map(|signed| CommitSignature {
                validator: signed.vote.validator,
                signature: signed.signature,
            })
            .collect();
        CommitCertificate {
            height: self.height,
            round,
            block_id,
            signatures,
        }
    }
}
