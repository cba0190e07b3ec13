//! The ledger over a store: opening against a genesis, executing a block into one write batch
//! (receipts, state, accumulator, header), committing it, and answering CheckAccess.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use prost::Message;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use varde_consensus::CommitCertificate;
use varde_proto::v1;
use varde_storage::{Column, Store, WriteBatch};

use crate::access::{self, AccessRequest, Decision};
use crate::canonical::{self, CanonicalError};
use crate::domain::{Misbehaviour, Receipt};
use crate::execution::{self, ExecutionContext};
use crate::membership::{Genesis, GenesisError, Membership};
use crate::replay::{self, ReplayLimits};
use crate::state::{StateError, StateView, keys};
use crate::stored::StoredValue;
use crate::wire::{self, TransactionError, VerifiedTransaction};
use crate::{accumulator, governance, proof, query, state_commitment};

/// The latest committed block, kept in `Column::Meta` under `head`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub height: u64,
    pub block_hash: [u8; 32],
    pub time_unix_ms: i64,
    pub state_root: [u8; 32],
    pub ledger_root: [u8; 32],
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Genesis(#[from] GenesisError),
    #[error("the database belongs to chain `{found}`, not `{expected}`")]
    ForeignChain { expected: String, found: String },
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Storage(#[from] varde_storage::StorageError),
    #[error("block {index} of the proposal is invalid: {error}")]
    InvalidTransaction {
        index: usize,
        error: TransactionError,
    },
    #[error("block time {time_unix_ms} is earlier than the previous block's {previous_unix_ms}")]
    TimeWentBackwards {
        time_unix_ms: i64,
        previous_unix_ms: i64,
    },
    #[error("the block was executed on height {executed_on}, but the head is now at {head}")]
    StaleBlock { executed_on: u64, head: u64 },
}

/// A block executed but not yet committed.
#[derive(Debug)]
pub struct ExecutedBlock {
    pub block: v1::Block,
    pub block_hash: [u8; 32],
    pub receipts: Vec<Receipt>,
    pub head: Head,
    previous_height: u64,
    batch: WriteBatch,
    /// The membership of the next height when governance changed it in this block.
    next_membership: Option<Arc<Membership>>,
}

impl ExecutedBlock {
    pub fn batch(&self) -> &WriteBatch {
        &self.batch
    }

    /// The membership of the next height, when governance changes it at the end of this block.
    pub fn next_membership(&self) -> Option<&Arc<Membership>> {
        self.next_membership.as_ref()
    }

    /// Adds the block's commit certificate (encoded by the consensus host) to the block's batch,
    /// under `Column::Certificates` and the block's height, so that the block and the proof of its
    /// finality are written in the same atomic write.
    pub fn attach_certificate(&mut self, encoded_certificate: Vec<u8>) {
        self.batch.put(
            Column::Certificates,
            self.head.height.to_be_bytes().to_vec(),
            encoded_certificate,
        );
    }
}

pub struct Ledger<S: Store> {
    store: S,
    genesis: Genesis,
    /// The membership in force after the committed head: of the next height to execute. Swapped
    /// by [`Ledger::commit`] when a block enacts a governance change.
    membership: RwLock<Arc<Membership>>,
    /// The committed head's height (0 before the first block), readable without the store.
    height: AtomicU64,
    limits: ReplayLimits,
}

impl<S: Store> Ledger<S> {
    /// Opens the ledger in `store` for `genesis`, initialising an empty store.
    pub fn open(store: S, genesis: Genesis) -> Result<Self, LedgerError> {
        let genesis_membership = Membership::from_genesis(&genesis)?;
        match store.get(Column::Meta, keys::META_CHAIN_ID)? {
            Some(found) if found != genesis.chain_id.as_bytes() => {
                return Err(LedgerError::ForeignChain {
                    expected: genesis.chain_id.clone(),
                    found: String::from_utf8_lossy(&found).into_owned(),
                });
            }
            Some(_) => {}
            None => {
                // The chain's identity, the genesis, and the members' leaves of the state tree,
                // in one write.
                let mut view = StateView::new(&store);
                view.put(
                    Column::Meta,
                    keys::META_CHAIN_ID.to_vec(),
                    genesis.chain_id.as_bytes().to_vec(),
                );
                view.put(
                    Column::Meta,
                    keys::META_GENESIS.to_vec(),
                    crate::stored::StoredValue::encode(&genesis),
                );
                crate::state_tree::update(
                    &mut view,
                    &crate::state_commitment::member_leaves(&genesis),
                )?;
                governance::initialise(&mut view, &genesis_membership);
                store.write(view.into_batch())?;
            }
        }
        let membership = governance::load_membership(&store)?.unwrap_or(genesis_membership);
        let height = StateView::new(&store)
            .get_value::<Head>(Column::Meta, keys::META_HEAD)?
            .map_or(0, |head| head.height);
        Ok(Self {
            store,
            genesis,
            membership: RwLock::new(Arc::new(membership)),
            height: AtomicU64::new(height),
            limits: ReplayLimits::default(),
        })
    }

    pub fn with_replay_limits(mut self, limits: ReplayLimits) -> Self {
        self.limits = limits;
        self
    }

    /// How far ahead a transaction's expiry may lie.
    pub fn replay_limits(&self) -> ReplayLimits {
        self.limits
    }

    pub fn chain_id(&self) -> &str {
        &self.genesis.chain_id
    }

    /// The membership in force for the next height to execute (after the committed head).
    pub fn membership(&self) -> Arc<Membership> {
        self.membership
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The committed head's height (0 before the first block).
    pub fn height(&self) -> u64 {
        self.height.load(Ordering::Acquire)
    }

    /// The validator-set history from genesis, each set with the first height it decides.
    pub fn validator_sets(&self) -> Result<Vec<governance::ValidatorSetRecord>, LedgerError> {
        let stored = governance::validator_sets(&self.store)?;
        if !stored.is_empty() {
            return Ok(stored);
        }
        // A ledger written before governance: the genesis set, which nothing could change.
        Ok(vec![governance::ValidatorSetRecord {
            from_height: 1,
            keys: self.membership().validator_keys(),
        }])
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn head(&self) -> Result<Option<Head>, LedgerError> {
        Ok(StateView::new(&self.store).get_value(Column::Meta, keys::META_HEAD)?)
    }

    /// Stateless admission: envelope, signature (for this chain) and body fields.
    pub fn decode_transaction(
        &self,
        bytes: &[u8],
    ) -> Result<VerifiedTransaction, TransactionError> {
        wire::decode_transaction(&self.genesis.chain_id, bytes)
    }

    /// Executes the next block over the committed state. Transactions whose envelope, signature
    /// or fields are invalid make the whole block invalid (they never reach a block).
    pub fn execute_block(
        &self,
        proposer: [u8; 32],
        time_unix_ms: i64,
        transactions: Vec<v1::SignedTransaction>,
    ) -> Result<ExecutedBlock, LedgerError> {
        self.execute_block_prechecked(proposer, time_unix_ms, transactions, &[])
    }

    /// [`Self::execute_block`], where `signature_verified[i]` says that transaction `i`'s exact
    /// envelope was verified by this node before (missing entries: not verified), so that each
    /// signature is verified once per node, not at admission and again in every block.
    pub fn execute_block_prechecked(
        &self,
        proposer: [u8; 32],
        time_unix_ms: i64,
        transactions: Vec<v1::SignedTransaction>,
        signature_verified: &[bool],
    ) -> Result<ExecutedBlock, LedgerError> {
        let head = self.head()?;
        let height = head.as_ref().map_or(1, |head| head.height + 1);
        let previous_hash = head.as_ref().map_or([0u8; 32], |head| head.block_hash);
        if let Some(head) = &head {
            if time_unix_ms < head.time_unix_ms {
                return Err(LedgerError::TimeWentBackwards {
                    time_unix_ms,
                    previous_unix_ms: head.time_unix_ms,
                });
            }
        }
        let mut verified = Vec::with_capacity(transactions.len());
        for (index, envelope) in transactions.iter().enumerate() {
            let verified_before = signature_verified.get(index).copied().unwrap_or(false);
            let transaction =
                wire::check_envelope(&self.genesis.chain_id, envelope.clone(), verified_before)
                    .map_err(|error| LedgerError::InvalidTransaction { index, error })?;
            verified.push(transaction);
        }
        let membership = self.membership();
        let mut view = StateView::new(&self.store);
        replay::forget_expired(&mut view, height, time_unix_ms)?;
        let mut receipts = Vec::with_capacity(verified.len());
        for (index, transaction) in verified.iter().enumerate() {
            let context = ExecutionContext {
                height,
                time_unix_ms,
                index: index as u32,
            };
            let receipt = execution::execute(
                &mut view,
                &self.genesis.chain_id,
                &membership,
                self.limits,
                context,
                transaction,
            )?;
            let position = keys::position(height, index as u32);
            view.put_value(Column::Receipts, position.to_vec(), &receipt);
            if view
                .get(Column::TransactionIndex, &transaction.id.0)?
                .is_none()
            {
                view.put(
                    Column::TransactionIndex,
                    transaction.id.0.to_vec(),
                    position.to_vec(),
                );
            }
            receipts.push(receipt);
        }
        // The height boundary: governance changes due at the next height take effect.
        let next_membership = governance::enact_due(&mut view, &membership, height + 1)?;
        let next_validator_set_hash = next_membership
            .as_ref()
            .unwrap_or(&membership)
            .validator_set_hash();
        let state_root = state_commitment::commit_changes(&mut view)?;
        let mut transactions_root_leaves: Vec<&[u8]> = Vec::new();
        for (transaction, receipt) in verified.iter().zip(&receipts) {
            let receipt_hash = proof::receipt_hash(&wire::receipt_to_wire(receipt));
            accumulator::append(
                &mut view,
                &proof::ledger_leaf(&transaction.id.0, &receipt_hash),
            )?;
            transactions_root_leaves.push(&transaction.id.0);
        }
        let ledger_size = accumulator::size(&view)?;
        let ledger_root = accumulator::root_at(&view, ledger_size)?;
        accumulator::record_height(&mut view, height, ledger_size);
        let header = v1::BlockHeader {
            height,
            previous_hash: previous_hash.to_vec(),
            proposer: proposer.to_vec(),
            time_unix_ms,
            transactions_root: accumulator::merkle_tree_hash(&transactions_root_leaves).to_vec(),
            ledger_root: ledger_root.to_vec(),
            state_root: state_root.to_vec(),
            validator_set_hash: membership.validator_set_hash().to_vec(),
            ledger_size,
            next_validator_set_hash: next_validator_set_hash.to_vec(),
        };
        let block_hash: [u8; 32] = Sha256::digest(header.encode_to_vec()).into();
        let block = v1::Block {
            header: Some(header),
            transactions,
        };
        view.put(
            Column::Blocks,
            height.to_be_bytes().to_vec(),
            block.encode_to_vec(),
        );
        let new_head = Head {
            height,
            block_hash,
            time_unix_ms,
            state_root,
            ledger_root,
        };
        view.put_value(Column::Meta, keys::META_HEAD.to_vec(), &new_head);
        Ok(ExecutedBlock {
            block,
            block_hash,
            receipts,
            head: new_head,
            previous_height: height - 1,
            batch: view.into_batch(),
            next_membership: next_membership.map(Arc::new),
        })
    }

    /// Writes an executed block atomically. Refuses one executed over an older head.
    pub fn commit(&self, executed: ExecutedBlock) -> Result<Head, LedgerError> {
        let head_height = self.head()?.map_or(0, |head| head.height);
        if head_height != executed.previous_height {
            return Err(LedgerError::StaleBlock {
                executed_on: executed.previous_height,
                head: head_height,
            });
        }
        self.store.write(executed.batch)?;
        if let Some(next) = executed.next_membership {
            *self
                .membership
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = next;
        }
        // After the membership: whoever reads this height finds the next height's members.
        self.height.store(executed.head.height, Ordering::Release);
        Ok(executed.head)
    }

    /// CheckAccess at the latest committed height. `at_unix_ms` of `None` means the head's time.
    pub fn check_access(
        &self,
        mut request: AccessRequest,
        at_unix_ms: Option<i64>,
    ) -> Result<Decision, LedgerError> {
        let head = self.head()?;
        let height = head.as_ref().map_or(0, |head| head.height);
        request.at_unix_ms = at_unix_ms
            .unwrap_or(head.map_or(self.genesis.genesis_time_unix_ms, |head| head.time_unix_ms));
        Ok(access::check_access(
            &StateView::new(&self.store),
            &request,
            height,
        )?)
    }

    /// Recorded validator misbehaviour at the latest committed height, ascending by height,
    /// round, validator index and kind; `page_size` 0 means the default, capped at
    /// [`query::PAGE_SIZE_MAX`].
    pub fn list_misbehaviour(
        &self,
        request: query::PageRequest<'_>,
    ) -> Result<query::Page<Misbehaviour>, query::QueryError> {
        query::misbehaviour(&self.store, request)
    }

    /// Governance proposals in proposal order, as [`Ledger::list_misbehaviour`] pages.
    pub fn list_proposals(
        &self,
        request: query::PageRequest<'_>,
    ) -> Result<query::Page<governance::Proposal>, query::QueryError> {
        query::proposals(&self.store, request)
    }

    /// One governance proposal by id.
    pub fn proposal(
        &self,
        id: &crate::signing::TransactionId,
    ) -> Result<Option<governance::Proposal>, LedgerError> {
        Ok(governance::proposal(&StateView::new(&self.store), id)?)
    }

    /// The commit certificate stored beside the committed block at `height`.
    pub fn certificate(&self, height: u64) -> Result<Option<CommitCertificate>, LedgerError> {
        let Some(bytes) = self
            .store
            .get(Column::Certificates, &height.to_be_bytes())?
        else {
            return Ok(None);
        };
        let certificate = CommitCertificate::decode(Column::Certificates, &bytes).map_err(
            |error| match error {
                StateError::Corrupt { column, detail } => StateError::Corrupt {
                    column,
                    detail: format!("the commit certificate of height {height}: {detail}"),
                },
                other => other,
            },
        )?;
        Ok(Some(certificate))
    }

    /// The signed transaction at `index` of the committed block at `height`.
    pub fn committed_envelope(
        &self,
        height: u64,
        index: u32,
    ) -> Result<Option<v1::SignedTransaction>, LedgerError> {
        let Some(bytes) = self.store.get(Column::Blocks, &height.to_be_bytes())? else {
            return Ok(None);
        };
        let block = v1::Block::decode(bytes.as_slice()).map_err(|error| StateError::Corrupt {
            column: Column::Blocks,
            detail: error.to_string(),
        })?;
        Ok(block.transactions.into_iter().nth(index as usize))
    }

    /// A committed transaction's receipt.
    pub fn receipt(
        &self,
        transaction_id: &crate::signing::TransactionId,
    ) -> Result<Option<Receipt>, LedgerError> {
        let view = StateView::new(&self.store);
        let Some(position) = view.get(Column::TransactionIndex, &transaction_id.0)? else {
            return Ok(None);
        };
        Ok(view.get_value(Column::Receipts, &position)?)
    }
}

/// Decodes a block's payload as a peer sent it (in a proposal or a sync response). Only the
/// canonical encoding of a `varde.v1.Block` is accepted ([`crate::canonical`]): the block's id is
/// the hash of its header alone, so bytes the decoded view does not show (unknown fields, first
/// copies of repeated fields) would otherwise travel, and be re-proposed, under a valid id.
/// Honest proposers send `ExecutedBlock::block` as prost encodes it, which is canonical.
pub fn decode_block(payload: &[u8]) -> Result<v1::Block, CanonicalError> {
    canonical::decode_canonical(payload)
}
