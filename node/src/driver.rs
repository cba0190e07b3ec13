//! The consensus driver: an actor (one tokio task) that owns the [`Engine`] and carries out its
//! outputs against the ledger, the mempool and the network.
//!
//! Inbound consensus messages arrive on a bounded mpsc channel ([`DriverHandle`]); timers are kept
//! by the task itself; proposals wait briefly for transactions (so an idle node does not spin out
//! empty blocks) through the mempool's `Notify`. Every output is carried out in the order
//! **persist (synced) → send → apply**: the safety state is written to `Column::ConsensusSafety`
//! before any message leaves, and a decided block is executed and written together with its commit
//! certificate in one atomic synced batch before the engine moves to the next height. A storage
//! failure ends the task with an error: consensus never continues on state it could not write.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::{SigningKey, VerifyingKey};
use prost::Message as _;
use tokio::sync::mpsc;
use tokio::time::Instant;
use varde_consensus::{
    Block, BlockId, CommitCertificate, Decision, Ed25519Verifier, Engine, EngineConfig,
    EngineError, Evidence, Height, Input, Message, Output, Request, Round, SafetyState, Timeouts,
    Timer, ValidatorSet,
};
use varde_ledger::{ExecutedBlock, LedgerError};
use varde_proto::v1;
use varde_storage::{Column, Store, WriteBatch};

use crate::config::BlockConfig;
use crate::context::{NodeContext, now_unix_ms};
use crate::events::{CommittedBlock, CommittedTransaction};
use crate::network::Network;

/// The key of the safety state in `Column::ConsensusSafety`.
pub const SAFETY_STATE_KEY: &[u8] = b"safety_state";
/// How far ahead of this node's clock a proposed block's time may be.
pub const BLOCK_TIME_DRIFT_MAX_MS: i64 = 30_000;
/// Capacity of the inbound message channel.
pub const INBOX_CAPACITY: usize = 1_024;

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("the ledger failed; consensus stopped rather than continue blind: {0}")]
    Ledger(#[from] LedgerError),
    #[error("storage failed; consensus stopped rather than continue blind: {0}")]
    Storage(#[from] varde_storage::StorageError),
    #[error("the consensus engine refused to start: {0}")]
    Engine(#[from] EngineError),
    #[error("the persisted consensus safety state cannot be read: {0}")]
    SafetyState(String),
    #[error("the genesis validator keys are invalid: {0}")]
    Validators(String),
    #[error("the decided block at height {height} does not match the ledger: {detail}")]
    DecidedBlockMismatch { height: Height, detail: String },
}

/// What the network delivers to the driver.
#[derive(Debug)]
pub enum Inbound {
    /// A consensus message from a peer, decoded but not yet verified.
    Message(Message),
    /// A committed block fetched by block sync, with its certificate; not yet verified.
    Committed {
        block: Block,
        certificate: CommitCertificate,
    },
}

/// Sends inbound network traffic into the driver. Cheap to clone.
#[derive(Clone)]
pub struct DriverHandle {
    sender: mpsc::Sender<Inbound>,
}

impl DriverHandle {
    /// Delivers from the network; returns false when the driver is busy or gone (it is dropped,
    /// as the network may drop it: the engine's rebroadcasts and block sync cover the loss).
    pub fn deliver(&self, inbound: Inbound) -> bool {
        self.sender.try_send(inbound).is_ok()
    }
}

/// What the driver needs to start.
pub struct DriverSettings {
    pub signing_key: SigningKey,
    pub timeouts: Timeouts,
    pub block: BlockConfig,
}

struct PendingProposal {
    height: Height,
    round: Round,
    deadline: Instant,
}

/// The path by which a block reaches this node, which decides the rules it is held to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Candidate {
    /// In a proposal: this node's prevote depends on it.
    Proposed,
    /// By block sync, with a commit certificate that has verified.
    Certified,
}

enum Event {
    Shutdown,
    Inbound(Inbound),
    TimersDue,
    MempoolChanged,
    ProposalDeadline,
}

pub struct ConsensusDriver<S: Store + 'static, N: Network> {
    context: Arc<NodeContext<S>>,
    engine: Engine,
    validators: ValidatorSet,
    network: N,
    proposer_key: [u8; 32],
    /// Signs this validator's misbehaviour reports (the engine holds its own copy for votes).
    report_key: SigningKey,
    block_limits: BlockConfig,
    timers: Vec<(Instant, Timer)>,
    pending_proposal: Option<PendingProposal>,
    /// Blocks of the current height already executed (proposed or validated), by id.
    executed: HashMap<BlockId, ExecutedBlock>,
    inbox: mpsc::Receiver<Inbound>,
}

/// The validator set of the chain's genesis.
pub fn genesis_validators<S: Store>(context: &NodeContext<S>) -> Result<ValidatorSet, DriverError> {
    let keys = context
        .ledger
        .membership()
        .validator_keys()
        .iter()
        .map(VerifyingKey::from_bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| DriverError::Validators(error.to_string()))?;
    ValidatorSet::new(keys).map_err(|error| DriverError::Validators(error.to_string()))
}

/// Reads the persisted safety state, if any.
pub fn read_safety_state<S: Store>(store: &S) -> Result<Option<SafetyState>, DriverError> {
    store
        .get(Column::ConsensusSafety, SAFETY_STATE_KEY)?
        .map(|bytes| {
            serde_json::from_slice(&bytes)
                .map_err(|error| DriverError::SafetyState(error.to_string()))
        })
        .transpose()
}

impl<S: Store + 'static, N: Network> ConsensusDriver<S, N> {
    /// Builds the driver at the height after the ledger's head, restoring the persisted safety
    /// state (so a restarted validator never signs twice).
    pub fn new(
        context: Arc<NodeContext<S>>,
        settings: DriverSettings,
        network: N,
    ) -> Result<(Self, DriverHandle), DriverError> {
        let validators = genesis_validators(&context)?;
        let height = context.ledger.head()?.map_or(0, |head| head.height) + 1;
        let restored = read_safety_state(context.ledger.store())?;
        let config = EngineConfig::new(context.ledger.chain_id(), settings.timeouts)?;
        let proposer_key = settings.signing_key.verifying_key().to_bytes();
        let report_key = settings.signing_key.clone();
        let engine = Engine::new(
            config,
            settings.signing_key,
            Arc::new(Ed25519Verifier),
            height,
            validators.clone(),
            restored,
        )?;
        let (sender, inbox) = mpsc::channel(INBOX_CAPACITY);
        Ok((
            Self {
                context,
                engine,
                validators,
                network,
                proposer_key,
                report_key,
                block_limits: settings.block,
                timers: Vec::new(),
                pending_proposal: None,
                executed: HashMap::new(),
                inbox,
            },
            DriverHandle { sender },
        ))
    }

    /// Runs until `shutdown` completes (Ok) or storage fails (Err).
    pub async fn run(
        mut self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), DriverError> {
        let mut shutdown: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(shutdown);
        tracing::info!(height = self.engine.height(), "consensus starting");
        let output = self.engine.start();
        self.carry_out(output)?;
        let context = self.context.clone();
        let far_future = Instant::now() + Duration::from_secs(86_400 * 365);
        loop {
            let timer_deadline = self.timers.iter().map(|(deadline, _)| *deadline).min();
            let proposal_deadline = self
                .pending_proposal
                .as_ref()
                .map(|pending| pending.deadline);
            // Due timers and the proposal deadline come before the inbox: a peer streaming
            // messages (forged ones cost a signature check each) must never keep this validator
            // from leaving a round or proposing. The inbox yields one message per turn.
            let event = tokio::select! {
                biased;
                _ = &mut shutdown => Event::Shutdown,
                _ = tokio::time::sleep_until(timer_deadline.unwrap_or(far_future)),
                    if timer_deadline.is_some() => Event::TimersDue,
                _ = tokio::time::sleep_until(proposal_deadline.unwrap_or(far_future)),
                    if proposal_deadline.is_some() => Event::ProposalDeadline,
                Some(inbound) = self.inbox.recv() => Event::Inbound(inbound),
                _ = context.mempool_changed.notified(),
                    if proposal_deadline.is_some() => Event::MempoolChanged,
            };
            match event {
                Event::Shutdown => {
                    tracing::info!(height = self.engine.height(), "consensus stopped");
                    return Ok(());
                }
                Event::Inbound(Inbound::Message(message)) => {
                    let output = self.engine.handle(Input::Message(message));
                    self.carry_out(output)?;
                }
                Event::Inbound(Inbound::Committed { block, certificate }) => {
                    self.catch_up(block, certificate)?;
                }
                Event::TimersDue => {
                    let now = Instant::now();
                    let (due, later): (Vec<_>, Vec<_>) = self
                        .timers
                        .drain(..)
                        .partition(|(deadline, _)| *deadline <= now);
                    self.timers = later;
                    for (_, timer) in due {
                        let output = self.engine.handle(Input::Timeout(timer));
                        self.carry_out(output)?;
                    }
                }
                Event::MempoolChanged => {
                    let waiting = !self
                        .context
                        .mempool
                        .lock()
                        .expect("mempool lock")
                        .is_empty();
                    if waiting {
                        self.propose()?;
                    }
                }
                Event::ProposalDeadline => self.propose()?,
            }
        }
    }

    /// Carries out an output and everything it leads to, in the order persist → send → apply.
    fn carry_out(&mut self, output: Output) -> Result<(), DriverError> {
        let mut queue = VecDeque::from([output]);
        while let Some(output) = queue.pop_front() {
            // 1. Persist (the store's write is synced) before any message leaves.
            if let Some(state) = output.state_to_persist() {
                let mut batch = WriteBatch::new();
                batch.put(
                    Column::ConsensusSafety,
                    SAFETY_STATE_KEY.to_vec(),
                    serde_json::to_vec(state).expect("the safety state serialises"),
                );
                self.context.ledger.store().write(batch)?;
            }
            // 2. Send.
            // An observer signs nothing, and relays nothing either: validators cut a peer
            // outside the set that sends consensus messages (it follows by block sync).
            let messages = output.messages();
            if !messages.is_empty() && self.is_validator() {
                self.network.broadcast(messages);
            }
            for timer in &output.timers {
                let deadline = Instant::now() + Duration::from_millis(timer.delay_ms);
                self.timers.push((deadline, *timer));
            }
            for evidence in &output.evidence {
                self.report_misbehaviour(evidence);
            }
            for rejection in &output.rejections {
                tracing::debug!(?rejection, "consensus message refused");
                self.context.metrics.count_rejection("consensus_message");
            }
            if let Some(height) = output.sync_from {
                self.network.request_sync(height);
            }
            // 3. Apply the decision, then move to the next height.
            if let Some(decision) = output.decision {
                self.apply(decision)?;
                queue.push_back(self.engine.start_next_height(self.validators.clone()));
            }
            for request in output.requests {
                match request {
                    Request::ProposeBlock { height, round } if height == self.engine.height() => {
                        let waiting = !self
                            .context
                            .mempool
                            .lock()
                            .expect("mempool lock")
                            .is_empty();
                        let wait = if waiting {
                            Duration::ZERO
                        } else {
                            Duration::from_millis(self.block_limits.empty_block_wait_ms)
                        };
                        self.pending_proposal = Some(PendingProposal {
                            height,
                            round,
                            deadline: Instant::now() + wait,
                        });
                    }
                    Request::ValidateBlock { height, block } if height == self.engine.height() => {
                        let valid = self.validate(height, &block)?;
                        queue.push_back(self.engine.handle(Input::BlockVerdict {
                            height,
                            block_id: block.id,
                            valid,
                        }));
                    }
                    _ => {} // A request of a finished height.
                }
            }
            self.context
                .metrics
                .round
                .set(i64::from(self.engine.round()));
        }
        Ok(())
    }

    /// Whether this node is a validator of the height it is deciding (else an observer).
    fn is_validator(&self) -> bool {
        let own_key = VerifyingKey::from_bytes(&self.proposer_key);
        own_key.is_ok_and(|key| self.validators.index_of(&key).is_some())
    }

    /// Puts evidence of equivocation on the ledger: a report signed by this validator goes into
    /// the mempool and out to the other validators. Several honest validators report the same
    /// misbehaviour; the ledger records it once.
    fn report_misbehaviour(&self, evidence: &Evidence) {
        tracing::warn!(
            validator = evidence.validator(),
            height = self.engine.height(),
            "a validator equivocated; reporting it to the ledger"
        );
        // Reports are valid for a while: long enough to be included, short enough to be forgotten.
        let expires_at_height = self.engine.height() + 100;
        let report = match varde_ledger::signing::sign_misbehaviour_report(
            self.context.ledger.chain_id(),
            &self.report_key,
            evidence,
            expires_at_height,
            &[],
        ) {
            Ok(report) => report,
            Err(error) => {
                tracing::error!(%error, "cannot sign a misbehaviour report");
                return;
            }
        };
        if let Err(error) = self.context.admit_and_gossip(report) {
            tracing::warn!(%error, "the misbehaviour report was not admitted");
        }
    }

    /// Applies a block fetched by sync if it is the one this node is deciding. Its certificate is
    /// checked first (signatures of this height's validators, a quorum, this height and this
    /// block's id), so a peer's word alone never gets a block executed; the block is then
    /// re-executed and must give the certified id, so a garbage payload is refused here too.
    fn catch_up(
        &mut self,
        block: Block,
        certificate: CommitCertificate,
    ) -> Result<(), DriverError> {
        let height = self.engine.height();
        if certificate.height != height || block.id != certificate.block_id {
            return Ok(());
        }
        if let Err(error) =
            certificate.verify(self.engine.chain_id(), &self.validators, &Ed25519Verifier)
        {
            tracing::warn!(height, %error, "a synced block's certificate does not verify; ignored");
            self.context.metrics.count_invalid_peer_message("sync");
            return Ok(());
        }
        if !self.validate_committed(height, &block)? {
            tracing::warn!(
                height,
                "a synced block does not match its certificate; ignored"
            );
            self.context.metrics.count_invalid_peer_message("sync");
            return Ok(());
        }
        let output = self
            .engine
            .handle(Input::CommittedBlock { block, certificate });
        self.carry_out(output)
    }

    /// Answers a pending ProposeBlock with the transactions waiting now (possibly none).
    fn propose(&mut self) -> Result<(), DriverError> {
        let Some(pending) = self.pending_proposal.take() else {
            return Ok(());
        };
        if pending.height != self.engine.height() {
            return Ok(());
        }
        let block = self.build_block(pending.height)?;
        let output = self.engine.handle(Input::BlockToPropose {
            height: pending.height,
            round: pending.round,
            block,
        });
        self.carry_out(output)
    }

    fn build_block(&mut self, height: Height) -> Result<Block, DriverError> {
        let head = self.context.ledger.head()?;
        let time_unix_ms = now_unix_ms().max(head.map_or(i64::MIN, |head| head.time_unix_ms));
        loop {
            let transactions = self
                .context
                .mempool
                .lock()
                .expect("mempool lock")
                .select_for_block(
                    self.block_limits.max_transactions,
                    self.block_limits.max_bytes,
                );
            // Every transaction comes from this node's mempool: verified at admission.
            let verified = vec![true; transactions.len()];
            match self.context.ledger.execute_block_prechecked(
                self.proposer_key,
                time_unix_ms,
                transactions.clone(),
                &verified,
            ) {
                Ok(executed) => {
                    if executed.head.height != height {
                        return Err(DriverError::DecidedBlockMismatch {
                            height,
                            detail: format!(
                                "the ledger would build height {}",
                                executed.head.height
                            ),
                        });
                    }
                    let block = Block {
                        id: BlockId(executed.block_hash),
                        payload: executed.block.encode_to_vec().into(),
                    };
                    tracing::debug!(height, transactions = transactions.len(), "proposing");
                    self.executed.insert(block.id, executed);
                    return Ok(block);
                }
                Err(LedgerError::InvalidTransaction { index, error }) => {
                    // Admission checks the same rules, so this needs a changed rule; drop it.
                    tracing::warn!(%error, "dropping a mempool transaction that no longer verifies");
                    let id = varde_ledger::signing::signing_digest(
                        self.context.ledger.chain_id(),
                        <&[u8; 32]>::try_from(transactions[index].signer_public_key.as_slice())
                            .unwrap_or(&[0; 32]),
                        &transactions[index].body,
                    );
                    let mut mempool = self.context.mempool.lock().expect("mempool lock");
                    match id {
                        Ok(id) => mempool.remove_committed([&id]),
                        Err(_) => mempool.clear(),
                    }
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// valid(v) for a proposed block: every rule of [`Self::check_candidate`], including its time
    /// against this node's clock, then re-execution to the proposed id.
    fn validate(&mut self, height: Height, block: &Block) -> Result<bool, DriverError> {
        self.execute_candidate(height, block, Candidate::Proposed)
    }

    /// Re-executes a block whose commit certificate has verified. Its time and size are not held
    /// against this node's clock and configuration: the quorum that certified it did that, and
    /// refusing a committed block would only leave this node behind for good.
    fn validate_committed(&mut self, height: Height, block: &Block) -> Result<bool, DriverError> {
        self.execute_candidate(height, block, Candidate::Certified)
    }

    /// Checks `block` and re-executes it, unless an execution of the same id is cached. The
    /// checks run on every call, before the cache is consulted: a block executed on one path
    /// (built here, or certified) must not pass another path's rules by being remembered.
    fn execute_candidate(
        &mut self,
        height: Height,
        block: &Block,
        candidate: Candidate,
    ) -> Result<bool, DriverError> {
        let Some((proposer, decoded)) = self.check_candidate(height, block, candidate) else {
            return Ok(false);
        };
        if self.executed.contains_key(&block.id) {
            return Ok(true);
        }
        let verified = self.verified_in_mempool(&decoded.transactions);
        let claimed_header = decoded.header;
        let time_unix_ms = claimed_header
            .as_ref()
            .map_or(0, |header| header.time_unix_ms);
        match self.context.ledger.execute_block_prechecked(
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
                self.executed.insert(block.id, executed);
                Ok(true)
            }
            Ok(_) => Ok(false),
            Err(LedgerError::InvalidTransaction { .. } | LedgerError::TimeWentBackwards { .. }) => {
                Ok(false)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// The rules a block must meet before it is worth executing: it decodes, it is for this
    /// height, its proposer is a validator, and a proposal also fits this node's block limits
    /// (transactions and their bytes) and is not dated more than [`BLOCK_TIME_DRIFT_MAX_MS`]
    /// ahead of this node's clock. Returns the proposer's key and the decoded block.
    ///
    /// The header's proposer is held to the validator set, not to the round's proposer: the
    /// engine already refuses a proposal not signed by the round's proposer, and a valid block
    /// is re-proposed in later rounds by others (L15–L16), so valid(v) must not depend on the
    /// round, or validators that judged one block in different rounds would disagree on it.
    fn check_candidate(
        &self,
        height: Height,
        block: &Block,
        candidate: Candidate,
    ) -> Option<([u8; 32], v1::Block)> {
        let decoded = varde_ledger::ledger::decode_block(&block.payload).ok()?;
        let header = decoded.header.as_ref()?;
        let proposer = <[u8; 32]>::try_from(header.proposer.as_slice()).ok()?;
        let from_a_validator = self
            .context
            .ledger
            .membership()
            .validator_keys()
            .contains(&proposer);
        if header.height != height || !from_a_validator {
            return None;
        }
        if candidate == Candidate::Proposed {
            let too_far_ahead =
                header.time_unix_ms > now_unix_ms().saturating_add(BLOCK_TIME_DRIFT_MAX_MS);
            if too_far_ahead || !self.within_block_limits(&decoded.transactions) {
                return None;
            }
        }
        Some((proposer, decoded))
    }

    /// Whether `transactions` fit this node's block limits, as its own proposals do.
    fn within_block_limits(&self, transactions: &[v1::SignedTransaction]) -> bool {
        let bytes: usize = transactions
            .iter()
            .map(|transaction| transaction.encoded_len())
            .sum();
        transactions.len() <= self.block_limits.max_transactions
            && bytes <= self.block_limits.max_bytes
    }

    /// Which of `transactions` this node admitted to its mempool with exactly these bytes (their
    /// signatures were verified then), so that a block's validation does not verify them again.
    fn verified_in_mempool(&self, transactions: &[v1::SignedTransaction]) -> Vec<bool> {
        let chain_id = self.context.ledger.chain_id();
        let mempool = self.context.mempool.lock().expect("mempool lock");
        transactions
            .iter()
            .map(|transaction| {
                let Ok(key) = <&[u8; 32]>::try_from(transaction.signer_public_key.as_slice())
                else {
                    return false;
                };
                varde_ledger::signing::signing_digest(chain_id, key, &transaction.body)
                    .ok()
                    .and_then(|id| mempool.get(&id))
                    .is_some_and(|admitted| admitted.signature == transaction.signature)
            })
            .collect()
    }

    /// Writes a decided block with its certificate in one atomic synced batch, then tells the
    /// mempool, the metrics and the subscribers.
    fn apply(&mut self, decision: Decision) -> Result<(), DriverError> {
        let height = decision.height;
        let mut executed = match self.executed.remove(&decision.block.id) {
            Some(executed) => executed,
            None => {
                let decoded = varde_ledger::ledger::decode_block(&decision.block.payload).map_err(
                    |error| DriverError::DecidedBlockMismatch {
                        height,
                        detail: format!("the payload is not a block: {error}"),
                    },
                )?;
                let header = decoded.header.clone().unwrap_or_default();
                let proposer = <[u8; 32]>::try_from(header.proposer.as_slice()).unwrap_or([0; 32]);
                self.context.ledger.execute_block(
                    proposer,
                    header.time_unix_ms,
                    decoded.transactions,
                )?
            }
        };
        if executed.block_hash != decision.block.id.0 || executed.head.height != height {
            return Err(DriverError::DecidedBlockMismatch {
                height,
                detail: "re-execution gives a different header".to_owned(),
            });
        }
        self.executed.clear();
        executed.attach_certificate(
            serde_json::to_vec(&decision.certificate).expect("a certificate serialises"),
        );
        let block_time_unix_ms = executed.head.time_unix_ms;
        let envelopes = executed.block.transactions.clone();
        let receipts = executed.receipts.clone();
        let block_hash = executed.block_hash;
        self.context.ledger.commit(executed)?;

        let transactions: Vec<CommittedTransaction> = envelopes
            .into_iter()
            .zip(receipts)
            .map(|(envelope, receipt)| CommittedTransaction {
                id: receipt.transaction_id,
                index: receipt.index,
                envelope,
                receipt,
            })
            .collect();
        let now = now_unix_ms();
        {
            let mut mempool = self.context.mempool.lock().expect("mempool lock");
            mempool.remove_committed(transactions.iter().map(|transaction| &transaction.id));
            mempool.remove_expired(height + 1, now);
            self.context
                .metrics
                .mempool_transactions
                .set(mempool.len() as i64);
        }
        let metrics = &self.context.metrics;
        metrics.height.set(height as i64);
        metrics.blocks_committed.inc();
        metrics
            .transactions_committed
            .inc_by(transactions.len() as u64);
        metrics.observe_commit_latency((now - block_time_unix_ms).max(0) as u64);
        for transaction in &transactions {
            if let Some(reason) = transaction.receipt.rejection() {
                metrics.count_rejection(&format!("{reason:?}"));
            }
        }
        tracing::info!(
            height,
            block = %crate::context::short_hex(&block_hash),
            transactions = transactions.len(),
            "block committed"
        );
        // Nobody listening is fine: the block is durable and readable from the ledger.
        let _ = self.context.committed.send(Arc::new(CommittedBlock {
            height,
            block_hash,
            transactions,
        }));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::{self, DemoKeys};
    use crate::mempool::Mempool;
    use crate::network::{LocalNetwork, Network};
    use varde_consensus::{CommitSignature, SignedVote, Vote, VoteKind};
    use varde_ledger::membership::{Genesis, Role};
    use varde_storage::MemoryStore;

    /// A chain of four validators: the demo genesis, with three more institutions given
    /// consensus keys. Returns the genesis, the demo keys and the four consensus keys.
    fn four_validators() -> (Genesis, DemoKeys, Vec<SigningKey>) {
        let keys = DemoKeys::from_seed(7);
        let mut genesis = keys.genesis(demo::CHAIN_ID, 0);
        let mut validator_keys = vec![keys.of(demo::VALIDATOR).clone()];
        let others = genesis
            .institutions
            .iter_mut()
            .filter(|institution| !institution.has_role(Role::Validator))
            .take(3);
        for (offset, institution) in others.enumerate() {
            let key = SigningKey::from_bytes(&[0x70 + offset as u8; 32]);
            institution.roles.push(Role::Validator);
            institution.validator_key = Some(key.verifying_key().to_bytes());
            validator_keys.push(key);
        }
        (genesis, keys, validator_keys)
    }

    fn driver_of(
        genesis: Genesis,
        key: &SigningKey,
        block: BlockConfig,
    ) -> ConsensusDriver<MemoryStore, LocalNetwork> {
        let ledger = varde_ledger::Ledger::open(MemoryStore::new(), genesis).unwrap();
        let context = Arc::new(NodeContext::new(
            ledger,
            Mempool::new(Default::default()),
            key.verifying_key().to_bytes(),
        ));
        let settings = DriverSettings {
            signing_key: key.clone(),
            timeouts: Timeouts::default(),
            block,
        };
        ConsensusDriver::new(context, settings, LocalNetwork)
            .unwrap()
            .0
    }

    /// Height 1's block as `proposer` would build it, on a ledger of its own.
    fn block_of(
        genesis: Genesis,
        proposer: &SigningKey,
        time_unix_ms: i64,
        transactions: Vec<v1::SignedTransaction>,
    ) -> Block {
        let ledger = varde_ledger::Ledger::open(MemoryStore::new(), genesis).unwrap();
        let executed = ledger
            .execute_block(
                proposer.verifying_key().to_bytes(),
                time_unix_ms,
                transactions,
            )
            .unwrap();
        Block {
            id: BlockId(executed.block_hash),
            payload: executed.block.encode_to_vec().into(),
        }
    }

    /// A certificate for `block` at height 1, round 0, signed by `signers`.
    fn certificate_of(
        driver: &ConsensusDriver<MemoryStore, LocalNetwork>,
        block: &Block,
        signers: &[&SigningKey],
    ) -> CommitCertificate {
        let mut signatures: Vec<CommitSignature> = signers
            .iter()
            .map(|key| {
                let validator = driver.validators.index_of(&key.verifying_key()).unwrap();
                let vote = Vote {
                    kind: VoteKind::Precommit,
                    height: 1,
                    round: 0,
                    block_id: Some(block.id),
                    validator,
                };
                let signed = SignedVote::sign(demo::CHAIN_ID, vote, key);
                CommitSignature {
                    validator,
                    signature: signed.signature,
                }
            })
            .collect();
        signatures.sort_by_key(|entry| entry.validator);
        CommitCertificate {
            height: 1,
            round: 0,
            block_id: block.id,
            signatures,
        }
    }

    fn anchors(keys: &DemoKeys, count: usize) -> Vec<v1::SignedTransaction> {
        (0..count)
            .map(|index| {
                let mut body = demo::body(
                    demo::CHAIN_ID,
                    0,
                    demo::anchor_action(
                        demo::HOSPITAL.org_number,
                        &format!("r-{index}"),
                        demo::demo_subject(1),
                        "psychiatry",
                        1_000,
                    ),
                );
                body.expires_at_unix_ms = 0;
                body.expires_at_height = 1_000;
                demo::sign(demo::CHAIN_ID, keys.of(demo::HOSPITAL), &body)
            })
            .collect()
    }

    /// Records what the driver broadcasts.
    #[derive(Clone, Default)]
    struct RecordingNetwork {
        sent: Arc<std::sync::Mutex<Vec<Message>>>,
    }

    impl Network for RecordingNetwork {
        fn broadcast(&mut self, messages: &[Message]) {
            self.sent.lock().unwrap().extend_from_slice(messages);
        }
    }

    // A peer streams well-formed votes with bad signatures as fast as the inbox takes them. The
    // propose timeout must still fire: this validator prevotes nil within a few seconds, instead
    // of serving the stream for ever.
    #[test]
    fn a_stream_of_forged_votes_does_not_starve_the_timers() {
        let (genesis, _, validator_keys) = four_validators();
        let ledger = varde_ledger::Ledger::open(MemoryStore::new(), genesis).unwrap();
        let own = &validator_keys[0];
        let context = Arc::new(NodeContext::new(
            ledger,
            Mempool::new(Default::default()),
            own.verifying_key().to_bytes(),
        ));
        let timeouts = Timeouts {
            propose_ms: 50,
            ..Timeouts::default()
        };
        let settings = DriverSettings {
            signing_key: own.clone(),
            timeouts,
            block: BlockConfig::default(),
        };
        let network = RecordingNetwork::default();
        let (driver, handle) = ConsensusDriver::new(context, settings, network.clone()).unwrap();
        let proposer = driver.validators.proposer(1, 0);
        assert_ne!(
            driver.validators.index_of(&own.verifying_key()),
            Some(proposer)
        );
        let forger = SigningKey::from_bytes(&[0x99; 32]);
        let vote = Vote {
            kind: VoteKind::Prevote,
            height: 1,
            round: 0,
            block_id: None,
            validator: proposer,
        };
        let forged = Message::Vote(SignedVote::sign(demo::CHAIN_ID, vote, &forger));
        let streaming = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let stream = {
            let streaming = streaming.clone();
            std::thread::spawn(move || {
                while streaming.load(std::sync::atomic::Ordering::Relaxed) {
                    handle.deliver(Inbound::Message(forged.clone()));
                }
            })
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let sent = network.sent.clone();
        let prevoted = runtime.block_on(async move {
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let running = tokio::spawn(driver.run(async move {
                let _ = stopped.await;
            }));
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut prevoted = false;
            while !prevoted && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
                prevoted = sent.lock().unwrap().iter().any(|message| {
                    matches!(message, Message::Vote(signed) if signed.vote.kind == VoteKind::Prevote)
                });
            }
            let _ = stop.send(());
            let _ = running.await;
            prevoted
        });
        streaming.store(false, std::sync::atomic::Ordering::Relaxed);
        stream.join().unwrap();
        assert!(prevoted, "the propose timeout fired despite the stream");
    }

    // A Byzantine peer answers block sync with a block for this height dated a day ahead and a
    // certificate nobody signed. The block must not be executed on that word, and so must not
    // pass later as a proposal without the proposal's own checks (here: the clock drift).
    #[test]
    fn a_synced_block_with_a_bogus_certificate_primes_nothing() {
        let (genesis, _, validator_keys) = four_validators();
        let mut driver = driver_of(genesis.clone(), &validator_keys[0], BlockConfig::default());
        let a_day_ahead = now_unix_ms() + 86_400_000;
        let future_block = block_of(genesis, &validator_keys[1], a_day_ahead, Vec::new());
        let unsigned = CommitCertificate {
            height: 1,
            round: 0,
            block_id: future_block.id,
            signatures: Vec::new(),
        };
        driver.catch_up(future_block.clone(), unsigned).unwrap();
        assert!(
            driver.executed.is_empty(),
            "nothing is executed before its certificate verifies"
        );
        let one_signer = certificate_of(&driver, &future_block, &[&validator_keys[1]]);
        driver.catch_up(future_block.clone(), one_signer).unwrap();
        assert!(driver.executed.is_empty(), "one signature is no quorum");
        assert!(
            !driver.validate(1, &future_block).unwrap(),
            "a proposal dated a day ahead is refused"
        );
        assert_eq!(driver.context.ledger.head().unwrap(), None);
    }

    // A synced block with a quorum's certificate is applied, whatever its time: the validators
    // that certified it held it against their clocks.
    #[test]
    fn a_synced_block_with_a_quorum_certificate_is_applied() {
        let (genesis, _, validator_keys) = four_validators();
        let mut driver = driver_of(genesis.clone(), &validator_keys[0], BlockConfig::default());
        let an_hour_ahead = now_unix_ms() + 3_600_000;
        let block = block_of(genesis, &validator_keys[1], an_hour_ahead, Vec::new());
        let signers = [&validator_keys[1], &validator_keys[2], &validator_keys[3]];
        let certificate = certificate_of(&driver, &block, &signers);
        driver.catch_up(block.clone(), certificate).unwrap();
        let head = driver
            .context
            .ledger
            .head()
            .unwrap()
            .expect("height 1 applied");
        assert_eq!((head.height, head.block_hash), (1, block.id.0));
    }

    // A proposal whose payload claims header fields that re-execution does not give (here a
    // made-up state root) is refused even though its id is right: the bytes voted on are the
    // bytes that are stored and served to peers.
    #[test]
    fn a_proposal_with_a_false_header_field_is_refused() {
        let (genesis, _, validator_keys) = four_validators();
        let honest = block_of(
            genesis.clone(),
            &validator_keys[1],
            now_unix_ms(),
            Vec::new(),
        );
        let mut decoded = varde_ledger::ledger::decode_block(&honest.payload).unwrap();
        decoded.header.as_mut().unwrap().state_root = vec![0xee; 32];
        let forged = Block {
            id: honest.id,
            payload: decoded.encode_to_vec().into(),
        };
        let mut driver = driver_of(genesis.clone(), &validator_keys[0], BlockConfig::default());
        assert!(!driver.validate(1, &forged).unwrap());
        let mut driver = driver_of(genesis, &validator_keys[0], BlockConfig::default());
        assert!(driver.validate(1, &honest).unwrap());
    }

    // A proposal over this node's block limits, in transactions or in bytes, is refused; the
    // same block within the limits passes.
    #[test]
    fn proposals_over_the_block_limits_are_refused() {
        let (genesis, keys, validator_keys) = four_validators();
        let transactions = anchors(&keys, 2);
        let bytes: usize = transactions
            .iter()
            .map(|transaction| transaction.encoded_len())
            .sum();
        let block = block_of(
            genesis.clone(),
            &validator_keys[1],
            now_unix_ms(),
            transactions,
        );
        let limits = [(1, bytes, false), (2, bytes - 1, false), (2, bytes, true)];
        for (max_transactions, max_bytes, valid) in limits {
            let config = BlockConfig {
                max_transactions,
                max_bytes,
                ..BlockConfig::default()
            };
            let mut driver = driver_of(genesis.clone(), &validator_keys[0], config);
            assert_eq!(
                driver.validate(1, &block).unwrap(),
                valid,
                "{max_transactions} transactions, {max_bytes} bytes"
            );
        }
    }

    // The engine's validator set, and so its quorum, holds the consensus keys only: giving the
    // validator operator submitting keys changes neither.
    #[test]
    fn submitting_keys_do_not_change_the_quorum() {
        let keys = DemoKeys::from_seed(5);
        let validators_of = |genesis| {
            let ledger = varde_ledger::Ledger::open(MemoryStore::new(), genesis).unwrap();
            let context = NodeContext::new(
                ledger,
                crate::mempool::Mempool::new(Default::default()),
                [0; 32],
            );
            genesis_validators(&context).unwrap()
        };
        let plain = validators_of(keys.genesis(demo::CHAIN_ID, 0));
        let mut genesis = keys.genesis(demo::CHAIN_ID, 0);
        let operator = genesis
            .institutions
            .iter_mut()
            .find(|institution| institution.has_role(Role::Validator))
            .unwrap();
        operator.roles.push(Role::Submitter);
        operator.public_keys = (0x60..0x63)
            .map(|seed| {
                SigningKey::from_bytes(&[seed; 32])
                    .verifying_key()
                    .to_bytes()
            })
            .collect();
        let with_submitting = validators_of(genesis);
        assert_eq!(with_submitting, plain);
        assert_eq!((with_submitting.len(), with_submitting.quorum()), (1, 1));
        assert_eq!(
            with_submitting.index_of(&keys.of(demo::VALIDATOR).verifying_key()),
            Some(0)
        );
    }
}
