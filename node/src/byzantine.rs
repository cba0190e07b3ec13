//! A Byzantine validator for fault-tolerance tests (`[testing] equivocate = true`): every
//! proposal and vote it sends is followed by a conflicting one, signed with the same key, so
//! that honest validators see equivocation. Never enabled on a real network.

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use varde_consensus::{
    Block, BlockId, Height, Message, ProposalMessage, SignedProposal, SignedVote, Vote,
};

use crate::network::Network;

pub struct Equivocator {
    inner: Box<dyn Network + Send>,
    chain_id: String,
    key: SigningKey,
}

impl Equivocator {
    pub fn new(inner: Box<dyn Network + Send>, chain_id: &str, key: SigningKey) -> Self {
        tracing::warn!("Byzantine test mode: this validator equivocates on purpose");
        Self {
            inner,
            chain_id: chain_id.to_owned(),
            key,
        }
    }

    /// A message for the same slot that conflicts with `message`.
    fn conflicting(&self, message: &Message) -> Message {
        match message {
            Message::Vote(signed) => {
                let block_id = match signed.vote.block_id {
                    Some(_) => None,
                    None => Some(BlockId(rand::random())),
                };
                let vote = Vote {
                    block_id,
                    ..signed.vote
                };
                Message::Vote(SignedVote::sign(&self.chain_id, vote, &self.key))
            }
            Message::Proposal(proposal) => {
                let block_id = BlockId(rand::random());
                let mut conflicting = proposal.signed.proposal;
                conflicting.block_id = block_id;
                conflicting.valid_round = None;
                Message::Proposal(ProposalMessage {
                    signed: SignedProposal::sign(&self.chain_id, conflicting, &self.key),
                    block: Block {
                        id: block_id,
                        payload: Arc::from(&b"not a block"[..]),
                    },
                    proof_of_lock: Vec::new(),
                })
            }
        }
    }
}

impl Network for Equivocator {
    fn broadcast(&mut self, messages: &[Message]) {
        let mut doubled = Vec::with_capacity(messages.len() * 2);
        for message in messages {
            doubled.push(message.clone());
            doubled.push(self.conflicting(message));
        }
        self.inner.broadcast(&doubled);
    }

    fn request_sync(&mut self, from_height: Height) {
        self.inner.request_sync(from_height);
    }
}
