//! Varde's ledger as the core's [`Application`]: blocks of signed transactions, built from what
//! waits in a pool and judged by re-execution, under the block rules (height, proposer, limits,
//! time, every header field).

use prost::Message as _;
use varde_consensus::{Block, BlockId, Decision, Evidence, Height, ValidatorSet};
use varde_ledger::domain::Receipt;
use varde_ledger::membership::Membership;
use varde_ledger::signing::TransactionId;
use varde_ledger::{ExecutedBlock, Ledger, LedgerError};
use varde_proto::v1;
use varde_storage::Store;

use crate::application::{Application, BlockPath, Clock};

/// How far ahead of this node's clock a proposed block's time may be.
pub const BLOCK_TIME_DRIFT_MAX_MS: i64 = 30_000;

/// The most a block may carry, in transactions and in their encoded bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockLimits {
    pub max_transactions: usize,
    pub max_bytes: usize,
}

impl BlockLimits {
    /// Whether `transactions` fit, as this node's own proposals do.
    pub fn admit(&self, transactions: &[v1::SignedTransaction]) -> bool {
        let bytes: usize = transactions
            .iter()
            .map(|transaction| transaction.encoded_len())
            .sum();
        transactions.len() <= self.max_transactions && bytes <= self.max_bytes
    }
}

/// What the ledger application needs from the node around it: the ledger, the pool of waiting
/// transactions, and where committed blocks and misbehaviour reports go.
pub trait LedgerHost {
    type Store: Store;

    fn ledger(&self) -> &Ledger<Self::Store>;

    /// The waiting transactions for the next block, in order, within `limits`.
    fn select_transactions(&mut self, limits: BlockLimits) -> Vec<v1::SignedTransaction>;

    /// Whether the transaction `id` with exactly this signature was admitted to the pool (and so
    /// its signature verified there): a block's validation need not verify it again.
    fn admitted(&self, id: &TransactionId, signature: &[u8]) -> bool;

    /// A waiting transaction no longer executes (a rule changed since admission): drop it, or
    /// drop everything when its id cannot even be computed.
    fn drop_transaction(&mut self, id: Option<&TransactionId>);

    fn has_waiting_transactions(&self) -> bool;

    /// A block is durable: the pool, the metrics and the subscribers may learn of it.
    fn committed(&mut self, block: CommittedBlock, clock: Clock);

    /// A misbehaviour report signed by this validator, to admit and send to the others.
    fn submit_report(&mut self, report: v1::SignedTransaction);

    /// This validator signs with a rotated consensus key from the next height on.
    fn signing_key_changed(&mut self, _public_key: [u8; 32]) {}
}

/// A block as committed, for [`LedgerHost::committed`].
#[derive(Debug, Clone)]
pub struct CommittedBlock {
    pub height: Height,
    pub block_hash: [u8; 32],
    pub time_unix_ms: i64,
    pub transactions: Vec<v1::SignedTransaction>,
    pub receipts: Vec<Receipt>,
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerAppError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("the decided block at height {height} does not match the ledger: {detail}")]
    DecidedBlockMismatch { height: Height, detail: String },
    #[error("the validator set governance decided after height {height} is unusable: {detail}")]
    UnusableValidatorSet { height: Height, detail: String },
}

#[derive(Debug, thiserror::Error)]
#[error("the validator keys are invalid: {0}")]
pub struct ValidatorKeysError(String);

/// The validator set that a ledger's membership names (consensus keys only).
pub fn validators_of(membership: &Membership) -> Result<ValidatorSet, ValidatorKeysError> {
    varde_ledger::governance::consensus_set(&membership.validator_keys())
        .map_err(ValidatorKeysError)
}

/// A block that passed [`Application::check_block`]: its proposer and decoded contents.
pub struct CheckedBlock {
    proposer: [u8; 32],
    decoded: v1::Block,
}

pub struct LedgerApplication<H: LedgerHost> {
    host: H,
    /// This validator's consensus key, named as proposer in the blocks it builds.
    proposer_key: [u8; 32],
    /// Signs this validator's misbehaviour reports.
    report_key: varde_consensus::SigningKey,
    limits: BlockLimits,
    /// The consensus keys of the height being decided (a proposer must be one of them).
    validator_keys: Vec<[u8; 32]>,
    /// The next height's set, when the block just committed changed it.
    validator_change: Option<ValidatorSet>,
}

impl<H: LedgerHost> LedgerApplication<H> {
    pub fn new(host: H, signing_key: varde_consensus::SigningKey, limits: BlockLimits) -> Self {
        let validator_keys = host.ledger().membership().validator_keys();
        Self {
            proposer_key: signing_key.verifying_key().to_bytes(),
            report_key: signing_key,
            host,
            limits,
            validator_keys,
            validator_change: None,
        }
    }

    pub fn host(&self) -> &H {
        &self.host
    }

    pub fn host_mut(&mut self) -> &mut H {
        &mut self.host
    }

    pub fn limits(&self) -> BlockLimits {
        self.limits
    }

    /// Which of `transactions` the pool admitted with exactly these bytes.
    fn verified_in_pool(&self, transactions: &[v1::SignedTransaction]) -> Vec<bool> {
        let chain_id = self.host.ledger().chain_id();
        transactions
            .iter()
            .map(|transaction| {
                varde_ledger::signing::envelope_id(chain_id, transaction)
                    .is_some_and(|id| self.host.admitted(&id, &transaction.signature))
            })
            .collect()
    }
}

impl<H: LedgerHost> Application for LedgerApplication<H> {
    type Executed = ExecutedBlock;
    type Checked = CheckedBlock;
    type Error = LedgerAppError;

    fn build_block(
        &mut self,
        height: Height,
        clock: Clock,
    ) -> Result<(Block, ExecutedBlock), LedgerAppError> {
        let head = self.host.ledger().head()?;
        // A block's time never goes back, whatever this node's clock says.
        let time_unix_ms = clock
            .unix_ms
            .max(head.map_or(i64::MIN, |head| head.time_unix_ms));
        loop {
            let transactions = self.host.select_transactions(self.limits);
            // Every transaction comes from the pool: verified at admission.
            let verified = vec![true; transactions.len()];
            match self.host.ledger().execute_block_prechecked(
                self.proposer_key,
                time_unix_ms,
                transactions.clone(),
                &verified,
            ) {
                Ok(executed) if executed.head.height == height => {
                    let block = Block {
                        id: BlockId(executed.block_hash),
                        payload: executed.block.encode_to_vec().into(),
                    };
                    tracing::debug!(height, transactions = transactions.len(), "proposing");
                    return Ok((block, executed));
                }
                Ok(executed) => {
                    return Err(LedgerAppError::DecidedBlockMismatch {
                        height,
                        detail: format!("the ledger would build height {}", executed.head.height),
                    });
                }
                Err(LedgerError::InvalidTransaction { index, error }) => {
                    // Admission checks the same rules, so this needs a changed rule; drop it.
                    tracing::warn!(%error, "dropping a waiting transaction that no longer verifies");
                    let id = varde_ledger::signing::envelope_id(
                        self.host.ledger().chain_id(),
                        &transactions[index],
                    );
                    self.host.drop_transaction(id.as_ref());
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// It decodes, it is for this height, its proposer is a validator, and a proposal also fits
    /// this node's block limits and is not dated more than [`BLOCK_TIME_DRIFT_MAX_MS`] ahead of
    /// this node's clock.
    ///
    /// The header's proposer is held to the validator set, not to the round's proposer: the
    /// engine already refuses a proposal not signed by the round's proposer, and a valid block is
    /// re-proposed in later rounds by others (L15–L16), so valid(v) must not depend on the round,
    /// or validators that judged one block in different rounds would disagree on it.
    fn check_block(
        &self,
        height: Height,
        block: &Block,
        path: BlockPath,
        clock: Clock,
    ) -> Option<CheckedBlock> {
        let decoded = varde_ledger::ledger::decode_block(&block.payload).ok()?;
        let header = decoded.header.as_ref()?;
        let proposer = <[u8; 32]>::try_from(header.proposer.as_slice()).ok()?;
        if header.height != height || !self.validator_keys.contains(&proposer) {
            return None;
        }
        if path == BlockPath::Proposed {
            let too_far_ahead =
                header.time_unix_ms > clock.unix_ms.saturating_add(BLOCK_TIME_DRIFT_MAX_MS);
            if too_far_ahead || !self.limits.admit(&decoded.transactions) {
                return None;
            }
        }
        Some(CheckedBlock { proposer, decoded })
    }

    fn execute_block(
        &mut self,
        _height: Height,
        block: &Block,
        checked: CheckedBlock,
    ) -> Result<Option<ExecutedBlock>, LedgerAppError> {
        let CheckedBlock { proposer, decoded } = checked;
        let verified = self.verified_in_pool(&decoded.transactions);
        let claimed_header = decoded.header;
        let time_unix_ms = claimed_header
            .as_ref()
            .map_or(0, |header| header.time_unix_ms);
        match self.host.ledger().execute_block_prechecked(
            proposer,
            time_unix_ms,
            decoded.transactions,
            &verified,
        ) {
            // Every header field must be the one re-execution gives, not only the id: the bytes
            // voted on are the bytes stored and served to peers.
            Ok(executed)
                if executed.block_hash == block.id.0 && executed.block.header == claimed_header =>
            {
                Ok(Some(executed))
            }
            Ok(_) => Ok(None),
            Err(LedgerError::InvalidTransaction { .. } | LedgerError::TimeWentBackwards { .. }) => {
                Ok(None)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Writes a decided block with its certificate in one atomic synced batch, then tells the host.
    fn commit_block(
        &mut self,
        decision: &Decision,
        mut executed: ExecutedBlock,
        clock: Clock,
    ) -> Result<(), LedgerAppError> {
        let height = decision.height;
        if executed.block_hash != decision.block.id.0 || executed.head.height != height {
            return Err(LedgerAppError::DecidedBlockMismatch {
                height,
                detail: "re-execution gives a different header".to_owned(),
            });
        }
        executed.attach_certificate(varde_ledger::stored::StoredValue::encode(
            &decision.certificate,
        ));
        let committed = CommittedBlock {
            height,
            block_hash: executed.block_hash,
            time_unix_ms: executed.head.time_unix_ms,
            transactions: executed.block.transactions.clone(),
            receipts: executed.receipts.clone(),
        };
        // Decoded before the commit, so that a set the engine cannot use stops this node
        // before it writes a block it could not go on from.
        let next_set = match executed.next_membership() {
            Some(membership) if membership.validator_keys() != self.validator_keys => {
                let set = validators_of(membership).map_err(|error| {
                    LedgerAppError::UnusableValidatorSet {
                        height,
                        detail: error.to_string(),
                    }
                })?;
                Some((membership.validator_keys(), set))
            }
            _ => None,
        };
        self.host.ledger().commit(executed)?;
        if let Some((keys, set)) = next_set {
            self.validator_keys = keys;
            self.validator_change = Some(set);
        }
        self.host.committed(committed, clock);
        Ok(())
    }

    fn has_waiting_transactions(&self) -> bool {
        self.host.has_waiting_transactions()
    }

    fn take_validator_change(&mut self) -> Option<ValidatorSet> {
        self.validator_change.take()
    }

    fn signing_key_changed(&mut self, key: &varde_consensus::SigningKey) {
        self.proposer_key = key.verifying_key().to_bytes();
        self.report_key = key.clone();
        self.host.signing_key_changed(self.proposer_key);
    }

    /// Several honest validators report the same misbehaviour; the ledger records it once.
    fn report_misbehaviour(&mut self, evidence: &Evidence, height: Height, _clock: Clock) {
        tracing::warn!(
            validator = evidence.validator(),
            height,
            "a validator equivocated; reporting it to the ledger"
        );
        // Reports are valid for a while: long enough to be included, short enough to be forgotten.
        let expires_at_height = height + 100;
        match varde_ledger::signing::sign_misbehaviour_report(
            self.host.ledger().chain_id(),
            &self.report_key,
            evidence,
            expires_at_height,
            &[],
        ) {
            Ok(report) => self.host.submit_report(report),
            Err(error) => tracing::error!(%error, "cannot sign a misbehaviour report"),
        }
    }
}
