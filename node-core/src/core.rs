//! [`NodeCore`]: the consensus engine with everything a validator does around it, sans-IO.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use varde_consensus::{
    Block, BlockId, CommitCertificate, Decision, Engine, EngineConfig, EngineError, Height, Input,
    Message, Output, Request, Round, SafetyState, SignatureVerifier, SigningKey, Timer,
    ValidatorSet,
};

use crate::application::{Application, BlockPath, Clock};
use crate::network::Network;
use crate::safety::SafetyStore;

type BoxedError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("the consensus engine refused to start: {0}")]
    Engine(#[from] EngineError),
    #[error(
        "the safety state could not be persisted; consensus stopped rather than continue blind: {0}"
    )]
    SafetyStore(BoxedError),
    #[error("the application failed; consensus stopped rather than continue blind: {0}")]
    Application(BoxedError),
    #[error("the decided block at height {height} does not hold here: {detail}")]
    DecidedBlockInvalid { height: Height, detail: String },
    #[error("no consensus key was given")]
    NoSigningKey,
}

/// The key of `keys` that is in `validators`, if any.
fn key_in_set<'k>(keys: &'k [SigningKey], validators: &ValidatorSet) -> Option<&'k SigningKey> {
    keys.iter()
        .find(|key| validators.index_of(&key.verifying_key()).is_some())
}

impl CoreError {
    fn application(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Application(Box::new(error))
    }
}

/// What the core needs besides its application, safety store and network.
pub struct CoreSettings {
    pub engine: EngineConfig,
    /// This validator's consensus keys: the one of the validator set it starts in first (else
    /// the first), then any it may be rotated to by governance.
    pub signing_keys: Vec<SigningKey>,
    pub verifier: Arc<dyn SignatureVerifier>,
    /// The height to decide first: the one after the committed head.
    pub height: Height,
    pub validators: ValidatorSet,
    /// The persisted safety state, so that a restarted validator never signs twice.
    pub restored: Option<SafetyState>,
    /// How long a proposer waits for transactions before it proposes an empty block.
    pub empty_block_wait_ms: u64,
    /// The longest an idle validator goes between blocks. After a commit with no transaction
    /// waiting, the next height starts only when transactions arrive, a message or a certified
    /// block of that height comes from a peer (another validator started it), or this passes
    /// (a heartbeat block). 0: the next height starts at once, so an idle network commits an
    /// empty block every `empty_block_wait_ms`.
    pub heartbeat_ms: u64,
}

/// Running totals for the host's metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoreCounters {
    /// Consensus messages the engine refused (bad signature, unknown sender, out of turn...).
    pub rejected_messages: u64,
    /// Synced blocks refused: a certificate that does not verify, or a block that does not match.
    pub invalid_synced_blocks: u64,
}

struct PendingProposal {
    height: Height,
    round: Round,
    deadline_ms: u64,
}

/// One validator's consensus, between its network and its storage. Every input carries the
/// [`Clock`]; every effect goes through the application, the safety store or the network.
pub struct NodeCore<A: Application, P: SafetyStore, N: Network> {
    engine: Engine,
    validators: ValidatorSet,
    /// Every consensus key this validator holds; the engine signs with the one in the set.
    signing_keys: Vec<SigningKey>,
    verifier: Arc<dyn SignatureVerifier>,
    /// Whether this node is in the set it decides with (else it only follows).
    is_validator: bool,
    application: A,
    safety: P,
    network: N,
    empty_block_wait_ms: u64,
    heartbeat_ms: u64,
    /// While idle after a commit: when the next height starts at the latest (monotonic ms).
    idle_until: Option<u64>,
    /// A height the heartbeat started: its proposer proposes the empty block at once.
    heartbeat_height: Option<Height>,
    /// Engine timers by monotonic deadline.
    timers: Vec<(u64, Timer)>,
    pending_proposal: Option<PendingProposal>,
    /// Blocks of the current height already executed (built here, or validated), by id.
    executed: HashMap<BlockId, A::Executed>,
    counters: CoreCounters,
}

impl<A: Application, P: SafetyStore, N: Network> NodeCore<A, P, N> {
    pub fn new(
        settings: CoreSettings,
        application: A,
        safety: P,
        network: N,
    ) -> Result<Self, CoreError> {
        let signing_key = key_in_set(&settings.signing_keys, &settings.validators)
            .or_else(|| settings.signing_keys.first())
            .cloned()
            .ok_or(CoreError::NoSigningKey)?;
        let is_validator = settings
            .validators
            .index_of(&signing_key.verifying_key())
            .is_some();
        let engine = Engine::new(
            settings.engine,
            signing_key,
            settings.verifier.clone(),
            settings.height,
            settings.validators.clone(),
            settings.restored,
        )?;
        Ok(Self {
            engine,
            validators: settings.validators,
            signing_keys: settings.signing_keys,
            verifier: settings.verifier,
            is_validator,
            application,
            safety,
            network,
            empty_block_wait_ms: settings.empty_block_wait_ms,
            heartbeat_ms: settings.heartbeat_ms,
            idle_until: None,
            heartbeat_height: None,
            timers: Vec::new(),
            pending_proposal: None,
            executed: HashMap::new(),
            counters: CoreCounters::default(),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn application(&self) -> &A {
        &self.application
    }

    pub fn application_mut(&mut self) -> &mut A {
        &mut self.application
    }

    pub fn network_mut(&mut self) -> &mut N {
        &mut self.network
    }

    pub fn validators(&self) -> &ValidatorSet {
        &self.validators
    }

    pub fn counters(&self) -> CoreCounters {
        self.counters
    }

    /// How many executed blocks of this height the core holds (each at most a block's size).
    pub fn executed_blocks(&self) -> usize {
        self.executed.len()
    }

    /// When the core next wants [`NodeCore::wake`]: its earliest timer, proposal deadline or
    /// heartbeat.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        let timer = self.timers.iter().map(|(deadline, _)| *deadline).min();
        let proposal = self
            .pending_proposal
            .as_ref()
            .map(|pending| pending.deadline_ms);
        timer
            .into_iter()
            .chain(proposal)
            .chain(self.idle_until)
            .min()
    }

    /// Whether a proposal, or the next height while idle, waits for transactions (the host then
    /// wakes it when some arrive).
    pub fn awaits_transactions(&self) -> bool {
        self.pending_proposal.is_some() || self.idle_until.is_some()
    }

    /// Whether the core is idle between a commit and the next height.
    pub fn is_idle(&self) -> bool {
        self.idle_until.is_some()
    }

    /// Leaves idleness: the next height starts now.
    fn start_idle_height(&mut self, clock: Clock) -> Result<(), CoreError> {
        if self.idle_until.take().is_none() {
            return Ok(());
        }
        let output = self.engine.start_next_height(self.validators.clone());
        self.carry_out(output, clock)
    }

    /// Starts (or resumes, from the restored safety state) the first height.
    pub fn start(&mut self, clock: Clock) -> Result<(), CoreError> {
        let output = self.engine.start();
        self.carry_out(output, clock)
    }

    /// A consensus message from a peer, decoded but not verified (the engine verifies it). One of
    /// a later height ends idleness: another validator has started that height.
    pub fn handle_message(&mut self, message: Message, clock: Clock) -> Result<(), CoreError> {
        if self.idle_until.is_some() && message.height() > self.engine.height() {
            self.start_idle_height(clock)?;
        }
        let output = self.engine.handle(Input::Message(message));
        self.carry_out(output, clock)
    }

    /// Fires every timer due at `clock`, then the proposal deadline if it has passed.
    pub fn wake(&mut self, clock: Clock) -> Result<(), CoreError> {
        let now = clock.monotonic_ms;
        if self.idle_until.is_some_and(|deadline| deadline <= now) {
            self.heartbeat_height = Some(self.engine.height() + 1);
            self.start_idle_height(clock)?;
        }
        let (due, later): (Vec<_>, Vec<_>) = self
            .timers
            .drain(..)
            .partition(|(deadline, _)| *deadline <= now);
        self.timers = later;
        for (_, timer) in due {
            let output = self.engine.handle(Input::Timeout(timer));
            self.carry_out(output, clock)?;
        }
        let proposal_due = self
            .pending_proposal
            .as_ref()
            .is_some_and(|pending| pending.deadline_ms <= now);
        if proposal_due {
            self.propose(clock)?;
        }
        Ok(())
    }

    /// Transactions arrived: an idle validator starts the next height, and a proposal waiting for
    /// them goes out now.
    pub fn transactions_arrived(&mut self, clock: Clock) -> Result<(), CoreError> {
        if self.idle_until.is_some() && self.application.has_waiting_transactions() {
            self.start_idle_height(clock)?;
        }
        if self.pending_proposal.is_some() && self.application.has_waiting_transactions() {
            self.propose(clock)?;
        }
        Ok(())
    }

    /// A committed block fetched by sync. Its certificate is checked first (signatures of this
    /// height's validators, a quorum, this height and this block's id), so that a peer's word alone
    /// never gets a block executed; the block is then checked and re-executed and must give the
    /// certified id. Returns whether the block was taken; a refused one is counted.
    pub fn handle_committed(
        &mut self,
        block: Block,
        certificate: CommitCertificate,
        clock: Clock,
    ) -> Result<bool, CoreError> {
        if self.idle_until.is_some() && certificate.height > self.engine.height() {
            self.start_idle_height(clock)?;
        }
        let height = self.engine.height();
        if self.engine.is_decided() || certificate.height != height {
            return Ok(false); // Not the height being decided: neither news nor a fault.
        }
        if block.id != certificate.block_id {
            self.counters.invalid_synced_blocks += 1;
            return Ok(false);
        }
        if let Err(error) =
            certificate.verify(self.engine.chain_id(), &self.validators, &*self.verifier)
        {
            tracing::warn!(height, %error, "a synced block's certificate does not verify; ignored");
            self.counters.invalid_synced_blocks += 1;
            return Ok(false);
        }
        if !self.judge(height, &block, BlockPath::Certified, clock)? {
            tracing::warn!(
                height,
                "a synced block does not match its certificate; ignored"
            );
            self.counters.invalid_synced_blocks += 1;
            return Ok(false);
        }
        let output = self
            .engine
            .handle(Input::CommittedBlock { block, certificate });
        self.carry_out(output, clock)?;
        Ok(true)
    }

    /// Carries out an output and everything it leads to, in the order persist → send → apply.
    fn carry_out(&mut self, output: Output, clock: Clock) -> Result<(), CoreError> {
        let mut queue = VecDeque::from([output]);
        while let Some(output) = queue.pop_front() {
            // 1. Persist (durably) before any message leaves.
            if let Some(state) = output.state_to_persist() {
                self.safety
                    .persist(state)
                    .map_err(|error| CoreError::SafetyStore(Box::new(error)))?;
            }
            // 2. Send. An observer signs nothing, and relays nothing either: validators cut a
            // peer outside the set that sends consensus messages (it follows by block sync).
            let messages = output.messages();
            if !messages.is_empty() && self.is_validator {
                self.network.broadcast(messages);
            }
            for timer in &output.timers {
                let deadline_ms = clock.monotonic_ms.saturating_add(timer.delay_ms);
                self.timers.push((deadline_ms, *timer));
            }
            for evidence in &output.evidence {
                self.application
                    .report_misbehaviour(evidence, self.engine.height(), clock);
            }
            for rejection in &output.rejections {
                tracing::debug!(?rejection, "consensus message refused");
            }
            self.counters.rejected_messages += output.rejections.len() as u64;
            if let Some(height) = output.sync_from {
                self.network.request_sync(height);
            }
            // 3. Apply the decision, then move to the next height (with its set).
            if let Some(decision) = output.decision {
                self.apply(decision, clock)?;
                if let Some(validators) = self.application.take_validator_change() {
                    self.change_validators(validators);
                }
                if self.heartbeat_ms > 0 && !self.application.has_waiting_transactions() {
                    // Idle: nothing to include, so no height until there is (or a heartbeat).
                    self.idle_until = Some(clock.monotonic_ms.saturating_add(self.heartbeat_ms));
                } else {
                    queue.push_back(self.engine.start_next_height(self.validators.clone()));
                }
            }
            if self.engine.is_decided() {
                continue; // The requests of a decided height have nothing left to do.
            }
            for request in output.requests {
                match request {
                    Request::ProposeBlock { height, round } if height == self.engine.height() => {
                        // The heartbeat's empty block has waited long enough already.
                        let wait_ms = if self.application.has_waiting_transactions()
                            || self.heartbeat_height == Some(height)
                        {
                            0
                        } else {
                            self.empty_block_wait_ms
                        };
                        self.pending_proposal = Some(PendingProposal {
                            height,
                            round,
                            deadline_ms: clock.monotonic_ms.saturating_add(wait_ms),
                        });
                        if wait_ms == 0 {
                            queue.extend(self.build_proposal(clock)?);
                        }
                    }
                    Request::ValidateBlock { height, block } if height == self.engine.height() => {
                        let valid = self.judge(height, &block, BlockPath::Proposed, clock)?;
                        queue.push_back(self.engine.handle(Input::BlockVerdict {
                            height,
                            block_id: block.id,
                            valid,
                        }));
                    }
                    _ => {} // A request of a finished height.
                }
            }
        }
        Ok(())
    }

    /// Moves to the set governance decided for the next height: signs with the key of it this
    /// validator holds (a rotated key takes over from the next height, never both), or follows
    /// without signing when it holds none.
    fn change_validators(&mut self, validators: ValidatorSet) {
        let current = self.engine.verifying_key();
        let key = key_in_set(&self.signing_keys, &validators).cloned();
        if let Some(key) = &key {
            if key.verifying_key() != current {
                tracing::info!(
                    height = self.engine.height() + 1,
                    "this validator's consensus key was rotated; signing with the new key"
                );
                self.engine.rotate_signing_key(key.clone());
                self.application.signing_key_changed(key);
            }
        }
        let was_validator = self.is_validator;
        self.is_validator = key.is_some();
        if was_validator != self.is_validator {
            tracing::info!(
                height = self.engine.height() + 1,
                validator = self.is_validator,
                "this node's place in the validator set changes"
            );
        }
        let own_key = key.unwrap_or_else(|| {
            self.signing_keys
                .iter()
                .find(|held| held.verifying_key() == current)
                .cloned()
                .unwrap_or_else(|| self.signing_keys[0].clone())
        });
        self.network.validators_changed(&validators, &own_key);
        self.validators = validators;
    }

    /// Answers the pending ProposeBlock with what waits now (possibly nothing).
    fn propose(&mut self, clock: Clock) -> Result<(), CoreError> {
        match self.build_proposal(clock)? {
            Some(output) => self.carry_out(output, clock),
            None => Ok(()),
        }
    }

    fn build_proposal(&mut self, clock: Clock) -> Result<Option<Output>, CoreError> {
        let Some(pending) = self.pending_proposal.take() else {
            return Ok(None);
        };
        if pending.height != self.engine.height() || self.engine.is_decided() {
            return Ok(None);
        }
        let (block, executed) = self
            .application
            .build_block(pending.height, clock)
            .map_err(CoreError::application)?;
        self.executed.insert(block.id, executed);
        Ok(Some(self.engine.handle(Input::BlockToPropose {
            height: pending.height,
            round: pending.round,
            block,
        })))
    }

    /// Judges `block` as the core does on `path`: checks it and re-executes it, unless an execution
    /// of the same id is cached. The checks run on every call, before the cache is consulted: a
    /// block executed on one path (built here, or certified) must not pass another path's rules by
    /// being remembered. A valid block's execution is cached for its commit.
    pub fn judge(
        &mut self,
        height: Height,
        block: &Block,
        path: BlockPath,
        clock: Clock,
    ) -> Result<bool, CoreError> {
        let Some(checked) = self.application.check_block(height, block, path, clock) else {
            return Ok(false);
        };
        if self.executed.contains_key(&block.id) {
            return Ok(true);
        }
        match self
            .application
            .execute_block(height, block, checked)
            .map_err(CoreError::application)?
        {
            Some(executed) => {
                self.executed.insert(block.id, executed);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Commits a decided block through the application, then forgets this height's executions.
    fn apply(&mut self, decision: Decision, clock: Clock) -> Result<(), CoreError> {
        let height = decision.height;
        let executed = match self.executed.remove(&decision.block.id) {
            Some(executed) => executed,
            // Judged valid before a restart: execute it again (a quorum certified it).
            None => {
                let checked = self
                    .application
                    .check_block(height, &decision.block, BlockPath::Certified, clock)
                    .ok_or_else(|| CoreError::DecidedBlockInvalid {
                        height,
                        detail: "it breaks a block rule".to_owned(),
                    })?;
                self.application
                    .execute_block(height, &decision.block, checked)
                    .map_err(CoreError::application)?
                    .ok_or_else(|| CoreError::DecidedBlockInvalid {
                        height,
                        detail: "re-execution does not give it".to_owned(),
                    })?
            }
        };
        self.executed.clear();
        self.pending_proposal = None;
        self.application
            .commit_block(&decision, executed, clock)
            .map_err(CoreError::application)
    }
}
