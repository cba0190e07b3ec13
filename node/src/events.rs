//! What the node publishes after each committed block, for SubmitAndWait and StreamEvents.

use varde_ledger::domain::Receipt;
use varde_ledger::signing::TransactionId;
use varde_proto::v1;

/// One committed transaction: its id, position, envelope and receipt.
#[derive(Debug, Clone)]
pub struct CommittedTransaction {
    pub id: TransactionId,
    pub index: u32,
    pub envelope: v1::SignedTransaction,
    pub receipt: Receipt,
}

/// A block as committed, published on the node's broadcast channel.
#[derive(Debug, Clone)]
pub struct CommittedBlock {
    pub height: u64,
    pub block_hash: [u8; 32],
    pub transactions: Vec<CommittedTransaction>,
}
