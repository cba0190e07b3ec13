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

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;
    use proptest::prelude::*;

    use super::*;
    use crate::message::Vote;
    use crate::validator_set::ValidatorSet;

    const CHAIN: &str = "varde-test";

    fn key(index: u32) -> SigningKey {
        SigningKey::from_bytes(&[index as u8 + 1; 32])
    }

    fn vote(kind: VoteKind, round: Round, block: Option<u8>, validator: u32) -> SignedVote {
        let vote = Vote {
            kind,
            height: 1,
            round,
            block_id: block.map(|b| BlockId([b; 32])),
            validator,
        };
        SignedVote::sign(CHAIN, vote, &key(validator))
    }

    // A retransmitted vote counts once; distinct validators add up per block and in total.
    #[test]
    fn duplicates_count_once() {
        let mut keeper = VoteKeeper::new(1, 4);
        assert_eq!(
            keeper.add(vote(VoteKind::Prevote, 0, Some(1), 0), false),
            AddVote::Counted
        );
        assert_eq!(
            keeper.add(vote(VoteKind::Prevote, 0, Some(1), 0), false),
            AddVote::Duplicate
        );
        assert_eq!(
            keeper.add(vote(VoteKind::Prevote, 0, Some(1), 1), false),
            AddVote::Counted
        );
        assert_eq!(
            keeper.add(vote(VoteKind::Prevote, 0, None, 2), false),
            AddVote::Counted
        );
        assert_eq!(
            keeper.count(0, VoteKind::Prevote, Some(BlockId([1; 32]))),
            2
        );
        assert_eq!(keeper.count(0, VoteKind::Prevote, None), 1);
        assert_eq!(keeper.total(0, VoteKind::Prevote), 3);
        assert_eq!(keeper.total(0, VoteKind::Precommit), 0);
    }

    // Prevotes and precommits, and different rounds, are separate tallies.
    #[test]
    fn kinds_and_rounds_are_separate() {
        let mut keeper = VoteKeeper::new(1, 4);
        keeper.add(vote(VoteKind::Prevote, 0, Some(1), 0), false);
        keeper.add(vote(VoteKind::Precommit, 0, Some(1), 0), false);
        keeper.add(vote(VoteKind::Prevote, 1, Some(1), 0), false);
        assert_eq!(keeper.total(0, VoteKind::Prevote), 1);
        assert_eq!(keeper.total(0, VoteKind::Precommit), 1);
        assert_eq!(keeper.total(1, VoteKind::Prevote), 1);
    }

    // A second, different vote in one slot is evidence that verifies; the first vote stays counted
    // and the second counts only when the caller keeps it.
    #[test]
    fn conflicting_votes_become_evidence() {
        let validators =
            ValidatorSet::new((0..4).map(|i| key(i).verifying_key()).collect()).unwrap();
        let mut keeper = VoteKeeper::new(1, 4);
        keeper.add(vote(VoteKind::Prevote, 0, Some(1), 3), false);
        let outcome = keeper.add(vote(VoteKind::Prevote, 0, Some(2), 3), false);
        let AddVote::Conflicting { evidence, counted } = outcome else {
            panic!("expected a conflict, got {outcome:?}");
        };
        assert!(!counted);
        assert_eq!(evidence.validator(), 3);
        evidence
            .verify(CHAIN, &validators, &crate::Ed25519Verifier)
            .expect("the evidence verifies");
        assert_eq!(
            keeper.count(0, VoteKind::Prevote, Some(BlockId([2; 32]))),
            0
        );
        assert_eq!(keeper.total(0, VoteKind::Prevote), 1);

        let kept = keeper.add(vote(VoteKind::Prevote, 0, None, 3), true);
        assert!(matches!(kept, AddVote::Conflicting { counted: true, .. }));
        assert_eq!(keeper.count(0, VoteKind::Prevote, None), 1);
        assert_eq!(keeper.total(0, VoteKind::Prevote), 1, "still one voter");
    }

    // A certificate holds exactly the precommits for its block, in validator order, and verifies.
    #[test]
    fn certificate_holds_the_blocks_precommits() {
        let validators =
            ValidatorSet::new((0..4).map(|i| key(i).verifying_key()).collect()).unwrap();
        let mut keeper = VoteKeeper::new(1, 4);
        for validator in [2, 0, 3] {
            keeper.add(vote(VoteKind::Precommit, 0, Some(1), validator), false);
        }
        keeper.add(vote(VoteKind::Precommit, 0, None, 1), false);
        let quorums: Vec<_> = keeper.commit_quorums(3).collect();
        assert_eq!(quorums, vec![(0, BlockId([1; 32]))]);
        let certificate = keeper.certificate(0, BlockId([1; 32]));
        let signers: Vec<_> = certificate.signatures.iter().map(|s| s.validator).collect();
        assert_eq!(signers, vec![0, 2, 3]);
        certificate
            .verify(CHAIN, &validators, &crate::Ed25519Verifier)
            .expect("the certificate verifies");
    }

    proptest! {
        // With at most f validators voting twice, no two different blocks both reach a quorum,
        // whatever order the votes arrive in and whichever conflicting votes are kept.
        #[test]
        fn one_quorum_at_most_with_f_equivocators(
            f in 1usize..4,
            honest_choices in proptest::collection::vec(0u8..3, 10),
            byzantine_mask in proptest::collection::vec(any::<bool>(), 10),
            order_seed in any::<u64>(),
        ) {
            let n = 3 * f + 1;
            let quorum = 2 * n / 3 + 1;
            let mut byzantine_left = f;
            let mut votes = Vec::new();
            for validator in 0..n as u32 {
                let choice = honest_choices[validator as usize];
                let byzantine = byzantine_mask[validator as usize] && byzantine_left > 0;
                if byzantine {
                    byzantine_left -= 1;
                    votes.push(vote(VoteKind::Precommit, 0, Some(1), validator));
                    votes.push(vote(VoteKind::Precommit, 0, Some(2), validator));
                } else {
                    votes.push(vote(VoteKind::Precommit, 0, Some(choice), validator));
                }
            }
            let mut state = order_seed | 1;
            for index in (1..votes.len()).rev() {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                votes.swap(index, (state % (index as u64 + 1)) as usize);
            }
            let mut keeper = VoteKeeper::new(1, n);
            for signed in votes {
                keeper.add(signed, true);
            }
            let reaching: Vec<u8> = (0u8..3)
                .filter(|b| keeper.count(0, VoteKind::Precommit, Some(BlockId([*b; 32]))) >= quorum)
                .collect();
            prop_assert!(reaching.len() <= 1, "blocks {reaching:?} both reached {quorum} of {n}");
        }
    }
}
