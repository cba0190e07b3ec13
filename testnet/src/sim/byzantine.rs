//! Byzantine validators and the intruder. They hold real keys (the intruder's is outside the
//! validator set) and see every message honest validators send, as an adversary that controls the
//! network would.

use varde_consensus::{
    Block, BlockId, CommitCertificate, CommitSignature, Decision, Height, Message, Proposal,
    ProposalMessage, ROUND_WINDOW, Signature, SignedProposal, SignedVote, ValidatorIndex, Vote,
    VoteKind,
};

use super::CHAIN_ID;
use super::app::SimApp;
use super::scenario::Strategy;
use super::world::{Event, Packet, World};

/// How often the intruder sends something, in virtual milliseconds.
const INTRUDER_PERIOD_MS: u64 = 700;

impl<A: SimApp> World<A> {
    /// What a Byzantine validator does with a message its own engine wants to send.
    pub(super) fn byzantine_send(&mut self, node: usize, strategy: Strategy, message: Message) {
        match strategy {
            Strategy::Silent | Strategy::Mirror => {}
            // While it is a validator; after its removal it acts from outside its core.
            Strategy::Lingering => self.broadcast_from(node, &message),
            Strategy::Equivocate => self.equivocate(node, message),
            Strategy::Garbage => {
                self.broadcast_from(node, &message);
                self.send_garbage(node, &message);
            }
            Strategy::TimeWarp => {
                let message = self.replace_own_block(node, message, |world, proposal| {
                    // A day ahead, or a day behind its parent.
                    let day = 86_400_000;
                    let time = if world.rng.chance(0.5) {
                        world.unix_ms(node) + day
                    } else {
                        world.unix_ms(node) - day
                    };
                    world.forge_block(node, proposal.height, proposal.round, time, false)
                });
                self.broadcast_from(node, &message);
            }
            Strategy::Oversize => {
                let message = self.replace_own_block(node, message, |world, proposal| {
                    let time = world.unix_ms(node);
                    world.forge_block(node, proposal.height, proposal.round, time, true)
                });
                self.broadcast_from(node, &message);
            }
            Strategy::SyncForger => {
                let message = self.replace_own_block(node, message, |world, proposal| match world
                    .forged_for_sync
                    .get(&proposal.height)
                {
                    Some(block) => block.clone(),
                    None => {
                        let time = world.unix_ms(node) + 86_400_000;
                        world.forge_block(node, proposal.height, proposal.round, time, false)
                    }
                });
                self.broadcast_from(node, &message);
            }
            Strategy::Flood => {
                self.broadcast_from(node, &message);
                self.flood(node, &message);
            }
        }
    }

    /// The node's own proposal with its block swapped for `forge`'s, signed again; anything else
    /// unchanged.
    fn replace_own_block(
        &mut self,
        node: usize,
        message: Message,
        forge: impl FnOnce(&mut Self, Proposal) -> Block,
    ) -> Message {
        match &message {
            Message::Proposal(own) if self.signed_by(node, &message) => {
                let proposal = own.signed.proposal;
                let block = forge(self, proposal);
                self.checker.record_proposed(block.id);
                let mut replaced = self.proposal_message(
                    node,
                    proposal.proposer,
                    proposal.valid_round,
                    proposal.height,
                    proposal.round,
                    block,
                );
                if let Message::Proposal(replaced) = &mut replaced {
                    replaced.proof_of_lock = own.proof_of_lock.clone();
                }
                replaced
            }
            _ => message,
        }
    }

    /// A burst of votes to every peer: forged signatures in others' names, and correctly signed
    /// ones for far rounds and later heights.
    fn flood(&mut self, node: usize, message: &Message) {
        const BURST: usize = 8;
        let count = self.nodes.len();
        for peer in (0..count).filter(|peer| *peer != node) {
            for index in 0..BURST {
                let height = message.height() + self.rng.below(3);
                let vote = Vote {
                    kind: if index % 2 == 0 {
                        VoteKind::Prevote
                    } else {
                        VoteKind::Precommit
                    },
                    height,
                    round: message.round() + self.rng.below(u64::from(ROUND_WINDOW) + 40) as u32,
                    block_id: Some(BlockId(self.rng.bytes32())),
                    validator: self.own_index(node, height),
                };
                let flood = if index % 2 == 0 {
                    let claimed = Vote {
                        validator: self.rng.below(count as u64) as u32,
                        ..vote
                    };
                    corrupt_signature(self.sign_vote(node, claimed))
                } else {
                    self.sign_vote(node, vote)
                };
                self.transmit(node, peer, Packet::Consensus(flood));
            }
        }
    }

    /// The index `node` signs under at `height`: its own in the set of that height, else the
    /// one it had last (a removed validator's), else its node number.
    fn own_index(&self, node: usize, height: Height) -> ValidatorIndex {
        self.validator_index(node, height)
            .or_else(|| self.former_index(node))
            .unwrap_or(node as ValidatorIndex)
    }

    fn broadcast_from(&mut self, node: usize, message: &Message) {
        for peer in 0..self.nodes.len() {
            if peer != node {
                self.transmit(node, peer, Packet::Consensus(message.clone()));
            }
        }
    }

    /// Splits the other validators in two halves at random; each half gets its own version.
    fn split(&mut self, node: usize) -> (Vec<usize>, Vec<usize>) {
        let (mut half_a, mut half_b) = (Vec::new(), Vec::new());
        for peer in (0..self.nodes.len()).filter(|peer| *peer != node) {
            if self.rng.chance(0.5) {
                half_a.push(peer);
            } else {
                half_b.push(peer);
            }
        }
        (half_a, half_b)
    }

    fn equivocate(&mut self, node: usize, message: Message) {
        let conflicting = match &message {
            Message::Proposal(own) => self.second_proposal(node, own.signed.proposal),
            Message::Vote(signed) => {
                let block_id = self.conflicting_choice(signed.vote);
                self.sign_vote(
                    node,
                    Vote {
                        block_id,
                        ..signed.vote
                    },
                )
            }
        };
        let (half_a, half_b) = self.split(node);
        for peer in half_a {
            self.transmit(node, peer, Packet::Consensus(message.clone()));
        }
        for peer in half_b {
            self.transmit(node, peer, Packet::Consensus(conflicting.clone()));
        }
    }

    /// Another block for the same height and round, signed as a second proposal.
    fn second_proposal(&mut self, node: usize, proposal: Proposal) -> Message {
        let time = self.unix_ms(node);
        let block = self.forge_block(node, proposal.height, proposal.round, time, false);
        self.checker.record_proposed(block.id);
        self.proposal_message(
            node,
            proposal.proposer,
            proposal.valid_round,
            proposal.height,
            proposal.round,
            block,
        )
    }

    /// A proposal signed by `node` in the name of validator `proposer`.
    fn proposal_message(
        &mut self,
        node: usize,
        proposer: ValidatorIndex,
        valid_round: Option<u32>,
        height: u64,
        round: u32,
        block: Block,
    ) -> Message {
        let proposal = Proposal {
            height,
            round,
            valid_round,
            block_id: block.id,
            proposer,
        };
        let signed = SignedProposal::sign(CHAIN_ID, proposal, &self.keys[node]);
        let seen = self.blocks_seen.entry(height).or_default();
        if !seen.contains(&block.id) {
            seen.push(block.id);
        }
        Message::Proposal(ProposalMessage {
            signed,
            block,
            proof_of_lock: Vec::new(),
        })
    }

    /// A different choice than `vote`'s: nil for a block, else some block of this height.
    fn conflicting_choice(&mut self, vote: Vote) -> Option<BlockId> {
        let others: Vec<BlockId> = self
            .blocks_seen
            .get(&vote.height)
            .into_iter()
            .flatten()
            .copied()
            .filter(|id| Some(*id) != vote.block_id)
            .collect();
        if vote.block_id.is_some() && (others.is_empty() || self.rng.chance(0.5)) {
            None
        } else if others.is_empty() {
            Some(BlockId(self.rng.bytes32()))
        } else {
            Some(*self.rng.pick(&others))
        }
    }

    fn sign_vote(&self, node: usize, vote: Vote) -> Message {
        Message::Vote(SignedVote::sign(CHAIN_ID, vote, &self.keys[node]))
    }

    /// Mirror and lingering validators see an honest message go out and react at once.
    pub(super) fn byzantine_observe(&mut self, sender: usize, message: &Message) {
        let lingering: Vec<usize> = (0..self.nodes.len())
            .filter(|index| self.nodes[*index].strategy == Some(Strategy::Lingering))
            .collect();
        for node in lingering {
            self.linger(node, message);
        }
        let mirrors: Vec<usize> = (0..self.nodes.len())
            .filter(|index| self.nodes[*index].strategy == Some(Strategy::Mirror))
            .collect();
        for mirror in mirrors {
            let Some(own_index) = self.validator_index(mirror, message.height()) else {
                continue; // Not a validator of this height.
            };
            match message {
                // Echo the voter's own choice back to it, and to a few others at random.
                Message::Vote(signed) if self.rng.chance(0.9) => {
                    let echo = self.sign_vote(
                        mirror,
                        Vote {
                            validator: own_index,
                            ..signed.vote
                        },
                    );
                    self.transmit(mirror, sender, Packet::Consensus(echo.clone()));
                    for peer in 0..self.nodes.len() {
                        if peer != mirror && peer != sender && self.rng.chance(0.3) {
                            self.transmit(mirror, peer, Packet::Consensus(echo.clone()));
                        }
                    }
                }
                _ => {}
            }
            // When the round is the mirror's to propose, it proposes two blocks, one per half.
            let (height, round) = (message.height(), message.round());
            if self.set_at(height).proposer(height, round) == own_index
                && self.byzantine_proposals.insert((mirror, height, round))
            {
                let time = self.unix_ms(mirror);
                let first = self.forge_block(mirror, height, round, time, false);
                self.checker.record_proposed(first.id);
                let first = self.proposal_message(mirror, own_index, None, height, round, first);
                let second = self.second_proposal(
                    mirror,
                    match &first {
                        Message::Proposal(first) => first.signed.proposal,
                        Message::Vote(_) => unreachable!("built as a proposal"),
                    },
                );
                let (half_a, half_b) = self.split(mirror);
                for peer in half_a {
                    self.transmit(mirror, peer, Packet::Consensus(first.clone()));
                }
                for peer in half_b {
                    self.transmit(mirror, peer, Packet::Consensus(second.clone()));
                }
            }
        }
    }

    /// A removed validator that goes on as if it were still one: for every height after its
    /// removal, it signs votes like the honest ones it sees (or conflicting ones) and a proposal
    /// per round, under the index it had, and sends them to every node.
    fn linger(&mut self, node: usize, message: &Message) {
        let height = message.height();
        if self.removed_from(node).is_none_or(|from| height < from) {
            return;
        }
        let Some(former) = self.former_index(node) else {
            return;
        };
        let forged = match message {
            Message::Vote(signed) if self.rng.chance(0.8) => {
                let block_id = if self.rng.chance(0.3) {
                    self.conflicting_choice(signed.vote)
                } else {
                    signed.vote.block_id
                };
                self.sign_vote(
                    node,
                    Vote {
                        validator: former,
                        block_id,
                        ..signed.vote
                    },
                )
            }
            Message::Proposal(_)
                if self
                    .byzantine_proposals
                    .insert((node, height, message.round())) =>
            {
                let time = self.unix_ms(node);
                let block = self.forge_block(node, height, message.round(), time, false);
                self.checker.record_proposed(block.id);
                self.proposal_message(node, former, None, height, message.round(), block)
            }
            _ => return,
        };
        self.stats.lingering_messages += 1;
        self.broadcast_from(node, &forged);
    }

    /// Malformed or misleading extras that a validating receiver must refuse or survive.
    fn send_garbage(&mut self, node: usize, message: &Message) {
        let peer = {
            let count = self.nodes.len() as u64;
            ((node as u64 + 1 + self.rng.below(count - 1)) % count) as usize
        };
        let garbage = match self.rng.below(6) {
            // A correct message with a corrupted signature.
            0 => corrupt_signature(message.clone()),
            // A correctly signed vote for a block that does not exist.
            1 => {
                let vote = Vote {
                    kind: VoteKind::Prevote,
                    height: message.height(),
                    round: message.round(),
                    block_id: Some(BlockId(self.rng.bytes32())),
                    validator: self.own_index(node, message.height()),
                };
                self.sign_vote(node, vote)
            }
            // A proposal out of turn, or whose block does not match its id.
            2 => {
                let round = message.round() + self.rng.below(3) as u32;
                let time = self.unix_ms(node);
                let block = self.forge_block(node, message.height(), round, time, false);
                let proposer = self.own_index(node, message.height());
                let mut proposal =
                    self.proposal_message(node, proposer, None, message.height(), round, block);
                if let Message::Proposal(message) = &mut proposal {
                    message.block.id = BlockId(self.rng.bytes32());
                }
                proposal
            }
            // A vote far in the future, correctly signed.
            3 => {
                let vote = Vote {
                    kind: VoteKind::Precommit,
                    height: message.height(),
                    round: message.round() + 1_000 + self.rng.below(1_000_000) as u32,
                    block_id: None,
                    validator: self.own_index(node, message.height()),
                };
                self.sign_vote(node, vote)
            }
            // A proposal whose valid round is not before its round.
            4 => {
                let time = self.unix_ms(node);
                let block = self.forge_block(node, message.height(), message.round(), time, false);
                let round = message.round();
                let proposer = self.own_index(node, message.height());
                self.proposal_message(node, proposer, Some(round), message.height(), round, block)
            }
            // A message for a height far ahead, which must not trigger more than a sync.
            _ => {
                let height = message.height() + 2 + self.rng.below(100);
                let vote = Vote {
                    kind: VoteKind::Prevote,
                    height,
                    round: 0,
                    block_id: None,
                    validator: self.own_index(node, height),
                };
                self.sign_vote(node, vote)
            }
        };
        self.transmit(node, peer, Packet::Consensus(garbage));
    }

    /// A Byzantine answer to a sync request: a block with a certificate signed by too few or by
    /// the wrong keys.
    pub(super) fn answer_sync_with_forgery(&mut self, node: usize, asker: usize, height: u64) {
        let time = self.unix_ms(node);
        let block = self.forge_block(node, height, 0, time, false);
        let own_index = self.own_index(node, height);
        let signatures = (0..self.set_at(height).len() as u32)
            .map(|validator| CommitSignature {
                validator,
                signature: if validator == own_index {
                    self.keys[node].sign_precommit(height, block.id)
                } else {
                    Signature::from_bytes(&[validator as u8; 64])
                },
            })
            .collect();
        let certificate = CommitCertificate {
            height,
            round: 0,
            block_id: block.id,
            signatures,
        };
        let decisions = vec![Decision {
            height,
            block,
            certificate,
        }];
        self.transmit(node, asker, Packet::SyncResponse { decisions });
    }

    /// A sync forger's answer: a valid-looking block of the asked height dated a day ahead, under a
    /// certificate with its own signature alone, or with the others' forged; it proposes the same
    /// block when it may, so that a node that executed it on the certificate's word would pass it.
    pub(super) fn answer_sync_with_valid_looking_block(
        &mut self,
        node: usize,
        asker: usize,
        height: u64,
    ) {
        let time = self.unix_ms(node) + 86_400_000;
        let block = match self.forged_for_sync.get(&height) {
            Some(block) => block.clone(),
            None => {
                let block = self.forge_block(node, height, 0, time, false);
                self.forged_for_sync.insert(height, block.clone());
                block
            }
        };
        let own = CommitSignature {
            validator: self.own_index(node, height),
            signature: self.keys[node].sign_precommit(height, block.id),
        };
        let signatures = if self.rng.chance(0.5) {
            vec![own]
        } else {
            (0..self.set_at(height).len() as u32)
                .map(|validator| {
                    if validator == own.validator {
                        own.clone()
                    } else {
                        CommitSignature {
                            validator,
                            signature: self.keys[node].sign_precommit(height, block.id),
                        }
                    }
                })
                .collect()
        };
        let certificate = CommitCertificate {
            height,
            round: 0,
            block_id: block.id,
            signatures,
        };
        let decisions = vec![Decision {
            height,
            block,
            certificate,
        }];
        self.transmit(node, asker, Packet::SyncResponse { decisions });
    }

    /// The intruder holds a key outside the validator set and forges what it can.
    pub(super) fn intruder_acts(&mut self) {
        let intruder = self.nodes.len();
        let target = self.rng.below(self.nodes.len() as u64) as usize;
        let height = self
            .nodes
            .iter()
            .map(|node| node.committed_height())
            .max()
            .unwrap_or(0)
            + 1;
        let claimed = self.rng.below(self.nodes.len() as u64 + 3) as u32;
        let vote = Vote {
            kind: if self.rng.chance(0.5) {
                VoteKind::Prevote
            } else {
                VoteKind::Precommit
            },
            height,
            round: self.rng.below(3) as u32,
            block_id: Some(BlockId(self.rng.bytes32())),
            validator: claimed,
        };
        let forged = Message::Vote(SignedVote::sign(CHAIN_ID, vote, &self.intruder_key));
        self.transmit(intruder, target, Packet::Consensus(forged));
        if self.rng.chance(0.2) {
            self.answer_sync_with_forgery_from_intruder(target, height);
        }
        self.schedule_in(INTRUDER_PERIOD_MS, Event::IntruderActs);
    }

    fn answer_sync_with_forgery_from_intruder(&mut self, target: usize, height: u64) {
        let intruder = self.nodes.len();
        let time = self.unix_ms(0);
        let block = self.forge_block(0, height, 0, time, false);
        let signatures = (0..self.set_at(height).quorum() as u32)
            .map(|validator| CommitSignature {
                validator,
                signature: self.intruder_key.sign_precommit(height, block.id),
            })
            .collect();
        let certificate = CommitCertificate {
            height,
            round: 0,
            block_id: block.id,
            signatures,
        };
        let decisions = vec![Decision {
            height,
            block,
            certificate,
        }];
        self.transmit(intruder, target, Packet::SyncResponse { decisions });
    }
}

fn corrupt_signature(message: Message) -> Message {
    let flip = |signature: &Signature| {
        let mut bytes = signature.to_bytes();
        bytes[0] ^= 0x01;
        Signature::from_bytes(&bytes)
    };
    match message {
        Message::Proposal(mut message) => {
            message.signed.signature = flip(&message.signed.signature);
            Message::Proposal(message)
        }
        Message::Vote(mut signed) => {
            signed.signature = flip(&signed.signature);
            Message::Vote(signed)
        }
    }
}

/// Signs the round-0 precommit a forged certificate claims.
trait SignPrecommit {
    fn sign_precommit(&self, height: u64, block_id: BlockId) -> Signature;
}

impl SignPrecommit for varde_consensus::SigningKey {
    fn sign_precommit(&self, height: u64, block_id: BlockId) -> Signature {
        let vote = Vote {
            kind: VoteKind::Precommit,
            height,
            round: 0,
            block_id: Some(block_id),
            validator: 0,
        };
        SignedVote::sign(CHAIN_ID, vote, self).signature
    }
}
