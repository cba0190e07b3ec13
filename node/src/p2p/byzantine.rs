//! A Byzantine validator's network layer, for fault-tolerance tests only: `[testing] attacks`,
//! accepted only by a varde-node built with the feature `byzantine-test` (the config refuses
//! the section otherwise, and [`Attacks::new`] gives nothing). The consensus engine and the
//! driver stay honest; what leaves this node is forged here:
//!
//! - **equivocate**: every proposal and vote goes out with a conflicting one to every peer;
//! - **split views**: half of the peers get the real messages, the other half conflicting ones.
//!   A conflicting proposal carries a valid block (the same transactions, dated 1 ms later), so
//!   the peers that get it prevote it;
//! - **future sync**: a sync request is answered with a block for the asked height, dated a day
//!   ahead, under a certificate that only this validator signed, claiming a far higher head;
//! - **vote flood**: well-formed prevotes with invalid signatures, as fast as the connections
//!   take them.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use ed25519_dalek::{Signature, SigningKey};
use prost::Message as _;
use varde_consensus::{
    Block, BlockId, CommitCertificate, CommitSignature, Message, ProposalMessage, SignedProposal,
    SignedVote, ValidatorIndex, ValidatorSet, Vote, VoteKind,
};
use varde_ledger::{Ledger, consensus_wire};
use varde_proto::v1;
use varde_storage::{Column, Store};

use crate::config::Attack;
use crate::context::now_unix_ms;

/// Votes in one flood frame.
const FLOOD_BATCH: usize = 64;
/// Flood frames in flight per peer: enough to keep a loopback connection busy.
pub const FLOOD_IN_FLIGHT: usize = 16;
/// How far ahead a forged synced block is dated.
const FUTURE_MS: i64 = 86_400_000;
/// Conflicting blocks remembered, so that rebroadcasts and votes name the same one.
const ALTERNATIVES_KEPT: usize = 16;

/// What to send to whom.
pub enum Outbound {
    ToAll(Vec<Message>),
    /// `first` to the first half of the connected validators, `second` to the others.
    Split {
        first: Vec<Message>,
        second: Vec<Message>,
    },
}

pub struct Attacks {
    kinds: BTreeSet<Attack>,
    chain_id: String,
    key: SigningKey,
    index: ValidatorIndex,
    /// Conflicting blocks made for this node's proposals: (original id, conflicting block).
    alternatives: VecDeque<(BlockId, Block)>,
}

impl Attacks {
    /// The attacks of `kinds`; none without the `byzantine-test` feature or when `kinds` is
    /// empty, or when `key` is not one of `validators`.
    pub fn new(
        kinds: &[Attack],
        chain_id: &str,
        key: &SigningKey,
        validators: &ValidatorSet,
    ) -> Option<Self> {
        if !cfg!(feature = "byzantine-test") || kinds.is_empty() {
            return None;
        }
        let index = validators.index_of(&key.verifying_key())?;
        tracing::warn!(
            ?kinds,
            "Byzantine test mode: this validator misbehaves on purpose"
        );
        Some(Self {
            kinds: kinds.iter().copied().collect(),
            chain_id: chain_id.to_owned(),
            key: key.clone(),
            index,
            alternatives: VecDeque::new(),
        })
    }

    pub fn has(&self, attack: Attack) -> bool {
        self.kinds.contains(&attack)
    }

    /// Whether outbound consensus messages are forged (they then reach the network task as
    /// messages, not as an encoded frame).
    pub fn forges_messages(&self) -> bool {
        self.has(Attack::Equivocate) || self.has(Attack::SplitViews)
    }

    /// The messages to send in place of `messages`.
    pub fn outbound<S: Store>(&mut self, ledger: &Ledger<S>, messages: Vec<Message>) -> Outbound {
        let conflicting: Vec<Message> = messages
            .iter()
            .map(|message| self.conflicting(ledger, message))
            .collect();
        if self.has(Attack::SplitViews) {
            Outbound::Split {
                first: messages,
                second: conflicting,
            }
        } else {
            Outbound::ToAll(messages.into_iter().chain(conflicting).collect())
        }
    }

    /// A message for the same slot as `message` that conflicts with it, signed by this node.
    fn conflicting<S: Store>(&mut self, ledger: &Ledger<S>, message: &Message) -> Message {
        match message {
            Message::Vote(signed) => {
                let block_id = match signed.vote.block_id {
                    Some(id) => self.alternative_id(id),
                    None => Some(BlockId(rand::random())),
                };
                let vote = Vote {
                    block_id,
                    ..signed.vote
                };
                Message::Vote(SignedVote::sign(&self.chain_id, vote, &self.key))
            }
            Message::Proposal(proposal) => {
                let block = self.alternative_block(ledger, &proposal.block);
                let mut conflicting = proposal.signed.proposal;
                conflicting.block_id = block.id;
                conflicting.valid_round = None;
                Message::Proposal(ProposalMessage {
                    signed: SignedProposal::sign(&self.chain_id, conflicting, &self.key),
                    block,
                    proof_of_lock: Vec::new(),
                })
            }
        }
    }

    /// The conflicting block made for `id`, if this node proposed it; otherwise nil.
    fn alternative_id(&self, id: BlockId) -> Option<BlockId> {
        self.alternatives
            .iter()
            .find(|(original, _)| *original == id)
            .map(|(_, alternative)| alternative.id)
    }

    /// A valid block that conflicts with `block`: the same transactions, 1 ms later. A block
    /// that cannot be re-executed here (not on top of this node's head) gets a payload that is
    /// no block at all.
    fn alternative_block<S: Store>(&mut self, ledger: &Ledger<S>, block: &Block) -> Block {
        if let Some((_, alternative)) = self
            .alternatives
            .iter()
            .find(|(original, _)| *original == block.id)
        {
            return alternative.clone();
        }
        let alternative = self.reexecuted_later(ledger, block).unwrap_or_else(|| {
            let id = BlockId(rand::random());
            Block {
                id,
                payload: Arc::from(&b"not a block"[..]),
            }
        });
        if self.alternatives.len() == ALTERNATIVES_KEPT {
            self.alternatives.pop_front();
        }
        self.alternatives.push_back((block.id, alternative.clone()));
        alternative
    }

    fn reexecuted_later<S: Store>(&self, ledger: &Ledger<S>, block: &Block) -> Option<Block> {
        let decoded = varde_ledger::ledger::decode_block(&block.payload).ok()?;
        let header = decoded.header.as_ref()?;
        let proposer = <[u8; 32]>::try_from(header.proposer.as_slice()).ok()?;
        // This node built the block from its own mempool: the signatures were verified.
        let verified = vec![true; decoded.transactions.len()];
        let executed = ledger
            .execute_block_prechecked(
                proposer,
                header.time_unix_ms.saturating_add(1),
                decoded.transactions,
                &verified,
            )
            .ok()?;
        Some(Block {
            id: BlockId(executed.block_hash),
            payload: executed.block.encode_to_vec().into(),
        })
    }

    /// The answer to a sync request: a block for the asked height dated a day ahead (this
    /// node's block at that height, or its head relabelled), under a certificate signed by this
    /// node alone, and a head far above the real one so that the asker keeps asking.
    pub fn forged_sync<S: Store>(
        &self,
        ledger: &Ledger<S>,
        request: &v1::SyncRequest,
    ) -> anyhow::Result<v1::SyncResponse> {
        let height = request.from_height.max(1);
        let head_height = ledger.head()?.map_or(0, |head| head.height);
        let source = height.min(head_height).max(1);
        let stored = ledger
            .store()
            .get(Column::Blocks, &source.to_be_bytes())?
            .context("no block to forge a synced block from")?;
        let mut block = varde_ledger::ledger::decode_block(&stored)?;
        let header = block.header.get_or_insert_with(Default::default);
        header.height = height;
        header.time_unix_ms = now_unix_ms().saturating_add(FUTURE_MS);
        let payload = block.encode_to_vec();
        let block_id = BlockId(rand::random());
        let precommit = Vote {
            kind: VoteKind::Precommit,
            height,
            round: 0,
            block_id: Some(block_id),
            validator: self.index,
        };
        let certificate = CommitCertificate {
            height,
            round: 0,
            block_id,
            signatures: vec![CommitSignature {
                validator: self.index,
                signature: SignedVote::sign(&self.chain_id, precommit, &self.key).signature,
            }],
        };
        Ok(v1::SyncResponse {
            blocks: vec![v1::SyncedBlock {
                block: payload,
                certificate: Some(consensus_wire::certificate_to_wire(&certificate)),
            }],
            head_height: head_height.saturating_add(1_000),
        })
    }

    /// One flood frame: prevotes for the next height from this validator, each for a random
    /// block, with a signature that is 64 random bytes.
    pub fn flood_frame<S: Store>(&self, ledger: &Ledger<S>) -> Bytes {
        let height = ledger
            .head()
            .ok()
            .flatten()
            .map_or(1, |head| head.height + 1);
        let messages = (0..FLOOD_BATCH)
            .map(|round| {
                let vote = Vote {
                    kind: VoteKind::Prevote,
                    height,
                    round: round as u32,
                    block_id: Some(BlockId(rand::random())),
                    validator: self.index,
                };
                let signature = Signature::from_bytes(&rand::random::<[u8; 64]>());
                consensus_wire::message_to_wire(&Message::Vote(SignedVote { vote, signature }))
            })
            .collect();
        Bytes::from(v1::ConsensusBatch { messages }.encode_to_vec())
    }
}
