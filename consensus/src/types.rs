//! The small vocabulary of the protocol: heights, rounds, steps, block ids and validator indexes.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A consensus instance: the position of a block in the chain. Genesis is height 0; the first block
/// decided by consensus is height 1.
pub type Height = u64;

/// An attempt within a height; round 0 first, higher rounds after timeouts.
pub type Round = u32;

/// The position of a validator in the validator set of a height.
pub type ValidatorIndex = u32;

/// The 32-byte identity of a block, computed by the application (the hash of its header).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BlockId(pub [u8; 32]);

impl fmt::Debug for BlockId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in &self.0[..6] {
            write!(formatter, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Display for BlockId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in &self.0 {
            write!(formatter, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// A block as the engine sees it: an id and opaque bytes. The application decides whether the id
/// belongs to the bytes and whether the block is valid; the engine only compares ids.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub id: BlockId,
    pub payload: Arc<[u8]>,
}

impl fmt::Debug for Block {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "Block({:?}, {} bytes)",
            self.id,
            self.payload.len()
        )
    }
}

/// The two kinds of vote of a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum VoteKind {
    Prevote,
    Precommit,
}

/// Where a validator is within a round. Ordered: a round only moves forward through its steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Step {
    Propose,
    Prevote,
    Precommit,
}
