//! The consensus driver: one tokio task around the sans-IO [`NodeCore`], which owns the engine and
//! carries out its outputs against the ledger, the mempool and the network.
//!
//! Inbound consensus messages arrive on a bounded mpsc channel ([`DriverHandle`]); the core's
//! timers and proposal deadline are slept on here; a proposal waiting for transactions (so that an
//! idle node does not spin out empty blocks) is woken through the mempool's `Notify`. The core
//! carries out every output in the order **persist (synced) → send → apply**: the safety state is
//! written to `Column::ConsensusSafety` before any message leaves, and a decided block is executed
//! and written together with its commit certificate in one atomic synced batch before the engine
//! moves to the next height. A storage failure ends the task with an error: consensus never
//! continues on state it could not write.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use tokio::sync::mpsc;
use tokio::time::Instant;
use varde_consensus::{
    Block, CommitCertificate, Ed25519Verifier, EngineConfig, EngineError, Message, SafetyState,
    Timeouts, ValidatorSet,
};
use varde_ledger::Ledger;
use varde_ledger::signing::TransactionId;
use varde_node_core::{
    BlockLimits, Clock, CommittedBlock as CoreCommittedBlock, CoreError, CoreSettings,
    LedgerApplication, LedgerHost, NodeCore, SafetyStore, SafetyStoreError,
};
use varde_proto::v1;
use varde_storage::Store;

use crate::config::BlockConfig;
use crate::context::{NodeContext, now_unix_ms};
use crate::events::{CommittedBlock, CommittedTransaction};
use crate::network::Network;

pub use varde_node_core::{BLOCK_TIME_DRIFT_MAX_MS, SAFETY_STATE_KEY};

/// Capacity of the inbound message channel.
pub const INBOX_CAPACITY: usize = 1_024;

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error("storage failed; consensus stopped rather than continue blind: {0}")]
    Storage(#[from] varde_storage::StorageError),
    #[error("the ledger failed; consensus stopped rather than continue blind: {0}")]
    Ledger(#[from] varde_ledger::LedgerError),
    #[error(transparent)]
    SafetyState(#[from] SafetyStoreError),
    #[error(transparent)]
    Validators(#[from] varde_node_core::ValidatorKeysError),
}

impl From<EngineError> for DriverError {
    fn from(error: EngineError) -> Self {
        Self::Core(CoreError::Engine(error))
    }
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
    /// The consensus keys this validator holds, the one it signs with now first.
    pub signing_keys: Vec<SigningKey>,
    pub timeouts: Timeouts,
    pub block: BlockConfig,
}

/// The node around the ledger application: its mempool, metrics and subscribers.
pub struct NodeHost<S: Store> {
    context: Arc<NodeContext<S>>,
}

impl<S: Store> LedgerHost for NodeHost<S> {
    type Store = S;

    fn ledger(&self) -> &Ledger<S> {
        &self.context.ledger
    }

    fn select_transactions(&mut self, limits: BlockLimits) -> Vec<v1::SignedTransaction> {
        self.context
            .mempool
            .lock()
            .expect("mempool lock")
            .select_for_block(limits.max_transactions, limits.max_bytes)
    }

    fn admitted(&self, id: &TransactionId, signature: &[u8]) -> bool {
        let mempool = self.context.mempool.lock().expect("mempool lock");
        mempool
            .get(id)
            .is_some_and(|admitted| admitted.signature == signature)
    }

    fn drop_transaction(&mut self, id: Option<&TransactionId>) {
        let mut mempool = self.context.mempool.lock().expect("mempool lock");
        match id {
            Some(id) => mempool.remove_committed([id]),
            None => mempool.clear(),
        }
    }

    fn has_waiting_transactions(&self) -> bool {
        !self
            .context
            .mempool
            .lock()
            .expect("mempool lock")
            .is_empty()
    }

    /// Tells the mempool, the metrics and the subscribers.
    fn committed(&mut self, block: CoreCommittedBlock, clock: Clock) {
        let CoreCommittedBlock {
            height,
            block_hash,
            time_unix_ms,
            transactions: envelopes,
            receipts,
        } = block;
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
        let now = clock.unix_ms;
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
        metrics.observe_commit_latency((now - time_unix_ms).max(0) as u64);
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
        self.context.commit_waiters.committed(
            transactions
                .iter()
                .map(|transaction| (&transaction.id, &transaction.receipt)),
        );
        // Nobody listening is fine: the block is durable and readable from the ledger.
        let _ = self.context.committed.send(Arc::new(CommittedBlock {
            height,
            block_hash,
            transactions,
        }));
    }

    fn submit_report(&mut self, report: v1::SignedTransaction) {
        if let Err(error) = self.context.admit_and_gossip(report) {
            tracing::warn!(%error, "the misbehaviour report was not admitted");
        }
    }

    fn signing_key_changed(&mut self, public_key: [u8; 32]) {
        self.context.set_node_public_key(public_key);
    }
}

/// The safety state in the node's database (one synced write each time).
pub struct NodeSafety<S: Store> {
    context: Arc<NodeContext<S>>,
}

impl<S: Store> SafetyStore for NodeSafety<S> {
    type Error = SafetyStoreError;

    fn persist(&mut self, state: &SafetyState) -> Result<(), SafetyStoreError> {
        varde_node_core::write_safety_state(self.context.ledger.store(), state)
    }
}

/// The core as the node runs it.
pub type Core<S, N> = NodeCore<LedgerApplication<NodeHost<S>>, NodeSafety<S>, N>;

enum Event {
    Shutdown,
    Inbound(Inbound),
    Deadline,
    MempoolChanged,
}

pub struct ConsensusDriver<S: Store + 'static, N: Network> {
    context: Arc<NodeContext<S>>,
    core: Core<S, N>,
    /// The origin of the core's monotonic clock.
    started: Instant,
    inbox: mpsc::Receiver<Inbound>,
    /// The core's counters as last written to the metrics.
    reported: varde_node_core::CoreCounters,
}

/// The validator set of the chain's genesis.
pub fn genesis_validators<S: Store>(context: &NodeContext<S>) -> Result<ValidatorSet, DriverError> {
    Ok(varde_node_core::validators_of(
        &context.ledger.membership(),
    )?)
}

/// Reads the persisted safety state, if any.
pub fn read_safety_state<S: Store>(store: &S) -> Result<Option<SafetyState>, DriverError> {
    Ok(varde_node_core::read_safety_state(store)?)
}

impl<S: Store + 'static, N: Network + Send + 'static> ConsensusDriver<S, N> {
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
        let engine = EngineConfig::new(context.ledger.chain_id(), settings.timeouts)?;
        let limits = BlockLimits {
            max_transactions: settings.block.max_transactions,
            max_bytes: settings.block.max_bytes,
        };
        let signing_key = settings
            .signing_keys
            .first()
            .cloned()
            .ok_or(varde_node_core::CoreError::NoSigningKey)?;
        let application = LedgerApplication::new(
            NodeHost {
                context: context.clone(),
            },
            signing_key,
            limits,
        );
        let safety = NodeSafety {
            context: context.clone(),
        };
        let core = NodeCore::new(
            CoreSettings {
                engine,
                signing_keys: settings.signing_keys,
                verifier: Arc::new(Ed25519Verifier),
                height,
                validators,
                restored,
                empty_block_wait_ms: settings.block.empty_block_wait_ms,
                heartbeat_ms: settings.block.heartbeat_ms,
            },
            application,
            safety,
            network,
        )?;
        let (sender, inbox) = mpsc::channel(INBOX_CAPACITY);
        Ok((
            Self {
                context,
                core,
                started: Instant::now(),
                inbox,
                reported: Default::default(),
            },
            DriverHandle { sender },
        ))
    }

    fn clock(&self) -> Clock {
        Clock {
            monotonic_ms: self.started.elapsed().as_millis() as u64,
            unix_ms: now_unix_ms(),
        }
    }

    /// Runs until `shutdown` completes (Ok) or storage fails (Err).
    pub async fn run(
        mut self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), DriverError> {
        let mut shutdown: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(shutdown);
        tracing::info!(height = self.core.engine().height(), "consensus starting");
        self.core.start(self.clock())?;
        self.report();
        let context = self.context.clone();
        let far_future = Instant::now() + Duration::from_secs(86_400 * 365);
        loop {
            let deadline = self
                .core
                .next_deadline_ms()
                .map(|ms| self.started + Duration::from_millis(ms));
            let awaits_transactions = self.core.awaits_transactions();
            // Due timers and the proposal deadline come before the inbox: a peer streaming
            // messages (forged ones cost a signature check each) must never keep this validator
            // from leaving a round or proposing. The inbox yields one message per turn.
            let event = tokio::select! {
                biased;
                _ = &mut shutdown => Event::Shutdown,
                _ = tokio::time::sleep_until(deadline.unwrap_or(far_future)),
                    if deadline.is_some() => Event::Deadline,
                Some(inbound) = self.inbox.recv() => Event::Inbound(inbound),
                _ = context.mempool_changed.notified(),
                    if awaits_transactions => Event::MempoolChanged,
            };
            let clock = self.clock();
            match event {
                Event::Shutdown => {
                    tracing::info!(height = self.core.engine().height(), "consensus stopped");
                    return Ok(());
                }
                Event::Inbound(Inbound::Message(message)) => {
                    self.core.handle_message(message, clock)?;
                }
                Event::Inbound(Inbound::Committed { block, certificate }) => {
                    self.core.handle_committed(block, certificate, clock)?;
                }
                Event::Deadline => self.core.wake(clock)?,
                Event::MempoolChanged => self.core.transactions_arrived(clock)?,
            }
            self.report();
        }
    }

    /// Brings the metrics up to the core's counters.
    fn report(&mut self) {
        let counters = self.core.counters();
        let metrics = &self.context.metrics;
        for _ in self.reported.rejected_messages..counters.rejected_messages {
            metrics.count_rejection("consensus_message");
        }
        for _ in self.reported.invalid_synced_blocks..counters.invalid_synced_blocks {
            metrics.count_invalid_peer_message("sync");
        }
        self.reported = counters;
        metrics.round.set(i64::from(self.core.engine().round()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::{self, DemoKeys};
    use crate::mempool::Mempool;
    use crate::network::{LocalNetwork, Network};
    use prost::Message as _;
    use varde_consensus::BlockId;
    use varde_consensus::{CommitSignature, SignedVote, Vote, VoteKind};
    use varde_ledger::membership::{Genesis, Role};
    use varde_node_core::BlockPath;
    use varde_storage::MemoryStore;

    fn clock() -> Clock {
        Clock {
            monotonic_ms: 0,
            unix_ms: now_unix_ms(),
        }
    }

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
            signing_keys: vec![key.clone()],
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
                let validator = driver
                    .core
                    .validators()
                    .index_of(&key.verifying_key())
                    .unwrap();
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
            signing_keys: vec![own.clone()],
            timeouts,
            block: BlockConfig::default(),
        };
        let network = RecordingNetwork::default();
        let (driver, handle) = ConsensusDriver::new(context, settings, network.clone()).unwrap();
        let proposer = driver.core.validators().proposer(1, 0);
        assert_ne!(
            driver.core.validators().index_of(&own.verifying_key()),
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

    // An idle validator commits no block until a transaction arrives (then one at once), or the
    // heartbeat passes (then an empty one).
    #[test]
    fn an_idle_validator_waits_for_transactions_or_the_heartbeat() {
        let keys = DemoKeys::from_seed(7);
        let genesis = keys.genesis(demo::CHAIN_ID, 0);
        let block = BlockConfig {
            empty_block_wait_ms: 10,
            heartbeat_ms: 2_000,
            ..BlockConfig::default()
        };
        let driver = driver_of(genesis, keys.of(demo::VALIDATOR), block);
        let context = driver.context.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let heights = runtime.block_on(async move {
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let running = tokio::spawn(driver.run(async move {
                let _ = stopped.await;
            }));
            let wait_for = |height: u64| {
                let context = context.clone();
                async move {
                    let started = Instant::now();
                    while context.ledger.height() < height {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    started.elapsed()
                }
            };
            // Height 1 starts at once: the first block comes after the empty-block wait.
            wait_for(1).await;
            tokio::time::sleep(Duration::from_millis(1_000)).await;
            let idle_height = context.ledger.height();
            // The heartbeat brings the next, empty, block.
            let heartbeat = wait_for(2).await;
            // A transaction ends the idleness at once.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let before = context.ledger.height();
            context
                .admit_and_gossip(anchors(&keys, 1).remove(0))
                .unwrap();
            let prompt = wait_for(before + 1).await;
            let _ = stop.send(());
            let _ = running.await;
            (idle_height, heartbeat, before, prompt)
        });
        let (idle_height, heartbeat, before, prompt) = heights;
        assert_eq!(idle_height, 1, "an idle validator committed an empty block");
        assert!(
            heartbeat >= Duration::from_millis(200),
            "the heartbeat block came after {heartbeat:?}"
        );
        assert_eq!(
            before, 2,
            "a block between the heartbeat and the transaction"
        );
        assert!(
            prompt < Duration::from_millis(300),
            "the transaction waited {prompt:?} for its block"
        );
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
        driver
            .core
            .handle_committed(future_block.clone(), unsigned, clock())
            .unwrap();
        assert!(
            driver.core.executed_blocks() == 0,
            "nothing is executed before its certificate verifies"
        );
        let one_signer = certificate_of(&driver, &future_block, &[&validator_keys[1]]);
        driver
            .core
            .handle_committed(future_block.clone(), one_signer, clock())
            .unwrap();
        assert!(
            driver.core.executed_blocks() == 0,
            "one signature is no quorum"
        );
        assert!(
            !driver
                .core
                .judge(1, &future_block, BlockPath::Proposed, clock())
                .unwrap(),
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
        driver
            .core
            .handle_committed(block.clone(), certificate, clock())
            .unwrap();
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
        assert!(
            !driver
                .core
                .judge(1, &forged, BlockPath::Proposed, clock())
                .unwrap()
        );
        let mut driver = driver_of(genesis, &validator_keys[0], BlockConfig::default());
        assert!(
            driver
                .core
                .judge(1, &honest, BlockPath::Proposed, clock())
                .unwrap()
        );
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
                driver
                    .core
                    .judge(1, &block, BlockPath::Proposed, clock())
                    .unwrap(),
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
