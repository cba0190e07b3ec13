//! One simulated run: validators running the node's own core ([`NodeCore`]) over virtual time,
//! the simulated network and the simulated disk, with crashes that keep only what was persisted,
//! crashes inside a step, failed writes and skewed clocks.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use varde_consensus::{
    BlockId, Decision, EngineConfig, Evidence, FUTURE_MESSAGES_PER_VALIDATOR, Height, Message,
    ROUND_WINDOW, SigningKey, ValidatorSet,
};
use varde_node_core::{Clock, CoreError, CoreSettings, NodeCore};

use super::app::{CachingVerifier, Referee, SIM_EPOCH_UNIX_MS, Setup, SimApp};
use super::checker::{Checker, Violation};
use super::faults::{Disk, Fuse, Outgoing, SharedDisk, SimNetwork, SimSafety};
use super::network::Network;
use super::rng::SimRng;
use super::scenario::{BrokenRule, Scenario, Strategy};

pub const CHAIN_ID: &str = "varde-sim";

/// How many committed blocks one sync answer carries at most.
const SYNC_BATCH: usize = 5;
/// How long a node waits after learning that peers are ahead before it asks, and between asks.
const SYNC_RETRY_MS: u64 = 400;
/// How long a proposer with nothing to include waits before it proposes an empty block.
const EMPTY_BLOCK_WAIT_MS: u64 = 200;
/// A run that needs more events than this is stuck in a storm of messages: a failure in itself.
const MAX_EVENTS: u64 = 3_000_000;

#[derive(Clone, Debug)]
pub(super) enum Packet {
    Consensus(Message),
    SyncRequest { height: Height },
    SyncResponse { decisions: Vec<Decision> },
}

#[derive(Debug)]
pub(super) enum Event {
    Deliver {
        to: usize,
        from: usize,
        packet: Packet,
    },
    /// The core asked to be woken at this time (a timer or its proposal deadline).
    Wake {
        node: usize,
        incarnation: u32,
    },
    Crash {
        node: usize,
    },
    Restart {
        node: usize,
    },
    /// Arms the node's fuse: it dies at its `effects`-th effect from now.
    ArmFuse {
        node: usize,
        effects: u32,
        restart_ms: u64,
    },
    SyncCheck {
        node: usize,
        incarnation: u32,
        height: Height,
    },
    IntruderActs,
    Stabilised,
}

pub(super) type SimCore<A> = NodeCore<A, SimSafety, SimNetwork>;

pub(super) struct Node<A: SimApp> {
    pub strategy: Option<Strategy>,
    pub core: Option<SimCore<A>>,
    /// Bumped at every crash so that wake-ups of an earlier life are ignored.
    pub incarnation: u32,
    pub up: bool,
    /// What survives a crash: the persisted safety state and the committed chain.
    pub disk: SharedDisk,
    pub fuse: Fuse,
    outbox: Rc<RefCell<Vec<Outgoing>>>,
    reports: Rc<RefCell<Vec<Evidence>>>,
    /// Wake-ups already scheduled for this incarnation.
    wakes: BTreeSet<u64>,
    pub clock_skew_ms: i64,
    pub sync_check_pending: bool,
    /// Restart time of a crash inside a step, once the fuse is armed.
    restart_after_fuse_ms: Option<u64>,
}

impl<A: SimApp> Node<A> {
    pub fn is_honest(&self) -> bool {
        self.strategy.is_none()
    }

    pub fn committed_height(&self) -> Height {
        self.disk.borrow().chain.len() as Height
    }
}

/// Figures about one run, for the report.
#[derive(Debug, Default, Clone)]
pub struct RunStats {
    pub virtual_ms: u64,
    pub events: u64,
    pub highest_committed: Height,
    pub evidence_reported: usize,
    pub rejected_messages: usize,
    pub invalid_synced_blocks: usize,
    /// Every violation found, including those beyond the ones kept for the report.
    pub violations: usize,
}

pub(super) struct World<A: SimApp> {
    pub scenario: Scenario,
    pub now_ms: u64,
    pub rng: SimRng,
    queue: BTreeMap<(u64, u64), Event>,
    sequence: u64,
    pub network: Network,
    pub nodes: Vec<Node<A>>,
    pub keys: Vec<SigningKey>,
    pub intruder_key: SigningKey,
    pub validators: ValidatorSet,
    config: EngineConfig,
    byzantine_config: EngineConfig,
    verifier: Arc<CachingVerifier>,
    pub shared: A::Shared,
    referee: A::Referee,
    pub checker: Checker,
    /// Block ids proposed per height, which Byzantine validators draw on for conflicting votes.
    pub blocks_seen: BTreeMap<Height, Vec<BlockId>>,
    /// Per Byzantine proposer, the (height, round) it has already equivocated in.
    pub byzantine_proposals: BTreeSet<(usize, Height, u32)>,
    /// Blocks a sync forger served, by height: it proposes them when it may.
    pub forged_for_sync: BTreeMap<Height, varde_consensus::Block>,
    /// Each validator's committed height when the network stabilised (set at that moment).
    heights_at_stabilisation: Option<Vec<Height>>,
    pub stats: RunStats,
    trace_sends: bool,
    /// Broken rules that live outside the engine.
    forget_safety_state: bool,
    skip_time_check: bool,
}

fn describe_message(message: &Message) -> String {
    match message {
        Message::Proposal(proposal) => format!(
            "proposal h{} r{} vr {:?} {:?} proof {}",
            proposal.signed.proposal.height,
            proposal.signed.proposal.round,
            proposal.signed.proposal.valid_round,
            proposal.block.id,
            proposal.proof_of_lock.len()
        ),
        Message::Vote(signed) => format!(
            "{:?} h{} r{} {:?}",
            signed.vote.kind, signed.vote.height, signed.vote.round, signed.vote.block_id
        ),
    }
}

fn key_for(seed: u64, index: u64) -> SigningKey {
    let mut hasher = Sha256::new();
    hasher.update(b"varde-sim/key\0");
    hasher.update(seed.to_be_bytes());
    hasher.update(index.to_be_bytes());
    SigningKey::from_bytes(&hasher.finalize().into())
}

impl<A: SimApp> World<A> {
    pub fn new(scenario: Scenario, broken_rule: Option<BrokenRule>) -> Self {
        let mut rng = SimRng::new(scenario.seed ^ 0x005E_ED0F_5EED);
        let count = scenario.validator_count;
        let keys: Vec<SigningKey> = (0..count as u64)
            .map(|i| key_for(scenario.seed, i))
            .collect();
        let intruder_key = key_for(scenario.seed, u64::MAX);
        let validators = ValidatorSet::new(keys.iter().map(SigningKey::verifying_key).collect())
            .expect("distinct keys");
        let mut config = EngineConfig::new(CHAIN_ID, scenario.timeouts)
            .expect("the simulator's chain id is valid");
        config.broken_rule = broken_rule.and_then(BrokenRule::in_engine);
        let mut byzantine_config = config.clone();
        byzantine_config.broken_rule = None;
        let mut network_rng = rng.fork();
        let network = Network::new(
            count + 1,
            scenario.network.clone(),
            scenario.partitions.clone(),
            &mut network_rng,
        );
        let byzantine = scenario
            .byzantine
            .iter()
            .map(|(index, _)| *index as usize)
            .collect();
        let verifier = CachingVerifier::new();
        let checker = Checker::new(
            CHAIN_ID.to_owned(),
            validators.clone(),
            verifier.clone(),
            byzantine,
        );
        let disks: Vec<SharedDisk> = (0..count)
            .map(|_| Rc::new(RefCell::new(Disk::default())))
            .collect();
        let shared = A::shared(CHAIN_ID, scenario.seed, &keys, &disks);
        let referee = A::referee(&shared);
        let nodes = disks
            .into_iter()
            .enumerate()
            .map(|(index, disk)| Node {
                strategy: scenario.strategy_of(index),
                core: None,
                incarnation: 0,
                up: true,
                disk,
                fuse: Fuse::default(),
                outbox: Rc::default(),
                reports: Rc::default(),
                wakes: BTreeSet::new(),
                clock_skew_ms: scenario.clock_skew_ms[index],
                sync_check_pending: false,
                restart_after_fuse_ms: None,
            })
            .collect();
        let mut world = Self {
            now_ms: 0,
            rng,
            queue: BTreeMap::new(),
            sequence: 0,
            network,
            nodes,
            keys,
            intruder_key,
            validators,
            config,
            byzantine_config,
            verifier,
            shared,
            referee,
            checker,
            blocks_seen: BTreeMap::new(),
            byzantine_proposals: BTreeSet::new(),
            forged_for_sync: BTreeMap::new(),
            heights_at_stabilisation: None,
            stats: RunStats::default(),
            trace_sends: std::env::var("VARDE_SIM_TRACE").is_ok_and(|value| value == "2"),
            forget_safety_state: broken_rule == Some(BrokenRule::ForgetSafetyState),
            skip_time_check: broken_rule == Some(BrokenRule::SkipTimeCheck),
            scenario,
        };
        for crash in world.scenario.crashes.clone() {
            world.schedule_at(crash.at_ms, Event::Crash { node: crash.node });
            world.schedule_at(crash.restart_ms, Event::Restart { node: crash.node });
        }
        for crash in world.scenario.step_crashes.clone() {
            world.schedule_at(
                crash.at_ms,
                Event::ArmFuse {
                    node: crash.node,
                    effects: crash.effects,
                    restart_ms: crash.restart_ms,
                },
            );
        }
        world.schedule_at(world.network.stabilisation_ms(), Event::Stabilised);
        if world.scenario.intruder {
            let first_ms = world.rng.below(500);
            world.schedule_at(first_ms, Event::IntruderActs);
        }
        world
    }

    pub fn schedule_at(&mut self, at_ms: u64, event: Event) {
        self.sequence += 1;
        self.queue.insert((at_ms, self.sequence), event);
    }

    pub fn schedule_in(&mut self, delay_ms: u64, event: Event) {
        self.schedule_at(self.now_ms + delay_ms, event);
    }

    /// Sends `packet` from `from` to `to` through the network model.
    pub fn transmit(&mut self, from: usize, to: usize, packet: Packet) {
        let delays = self
            .network
            .deliveries(from, to, self.now_ms, &mut self.rng);
        for delay_ms in delays {
            self.schedule_in(
                delay_ms,
                Event::Deliver {
                    to,
                    from,
                    packet: packet.clone(),
                },
            );
        }
    }

    /// Node `node`'s clock now.
    pub fn clock(&self, node: usize) -> Clock {
        Clock {
            monotonic_ms: self.now_ms,
            unix_ms: self.unix_ms(node),
        }
    }

    pub fn unix_ms(&self, node: usize) -> i64 {
        SIM_EPOCH_UNIX_MS + self.now_ms as i64 + self.nodes[node].clock_skew_ms
    }

    /// The latest reading of any honest validator's clock now.
    fn latest_honest_unix_ms(&self) -> i64 {
        (0..self.nodes.len())
            .filter(|node| self.nodes[*node].is_honest())
            .map(|node| self.unix_ms(node))
            .max()
            .unwrap_or(SIM_EPOCH_UNIX_MS)
    }

    /// Runs the scenario to its end; returns the violations found.
    pub fn run(mut self) -> (Vec<Violation>, RunStats) {
        for node in 0..self.nodes.len() {
            self.boot(node);
        }
        while let Some(((at_ms, _), event)) = self.queue.pop_first() {
            self.now_ms = at_ms;
            self.stats.events += 1;
            self.dispatch(event);
            if self.checker.agreement_broken() || self.finished() {
                break;
            }
            if self.stats.events >= MAX_EVENTS {
                self.checker.record_event_storm(self.stats.events);
                break;
            }
        }
        self.stats.virtual_ms = self.now_ms;
        self.stats.highest_committed = self
            .nodes
            .iter()
            .map(Node::committed_height)
            .max()
            .unwrap_or(0);
        self.stats.violations = self.checker.violation_count;
        (self.checker.violations, self.stats)
    }

    /// After stabilisation: done when every honest validator reached its target, failed when the
    /// liveness bound passes first.
    fn finished(&mut self) -> bool {
        let Some(heights) = &self.heights_at_stabilisation else {
            return false;
        };
        let wanted = self.scenario.liveness_heights;
        let all_reached =
            self.nodes.iter().zip(heights).all(|(node, height)| {
                !node.is_honest() || node.committed_height() >= height + wanted
            });
        if all_reached {
            return true;
        }
        let deadline_ms = self.network.stabilisation_ms() + self.scenario.liveness_bound_ms;
        if self.now_ms > deadline_ms {
            self.fail_liveness();
            return true;
        }
        false
    }

    /// One line per node: where it stands (printed with `VARDE_SIM_TRACE=1` when liveness fails).
    pub fn describe_nodes(&self) -> Vec<String> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(index, node)| {
                let position = node.core.as_ref().map(|core| {
                    let engine = core.engine();
                    let state = engine.safety_state();
                    format!(
                        "height {} round {} step {:?} locked {:?} valid round {:?} decided {}",
                        state.height,
                        state.round,
                        state.step,
                        state.locked.map(|(round, _)| round),
                        state.valid.as_ref().map(|valid| valid.round),
                        engine.is_decided()
                    )
                });
                format!(
                    "node {index} {:?} up {} chain {}: {}",
                    node.strategy,
                    node.up,
                    node.committed_height(),
                    position.unwrap_or_else(|| "no core".to_owned())
                )
            })
            .collect()
    }

    fn fail_liveness(&mut self) {
        if std::env::var_os("VARDE_SIM_TRACE").is_some() {
            for line in self.describe_nodes() {
                eprintln!("  {line}");
            }
        }
        let heights = self.heights_at_stabilisation.clone().unwrap_or_default();
        let wanted = self.scenario.liveness_heights;
        for (node, height) in heights.into_iter().enumerate() {
            let state = &self.nodes[node];
            let target = height + wanted;
            if state.is_honest() && state.committed_height() < target {
                self.checker.record_liveness_failure(Violation::Liveness {
                    node,
                    height_at_stabilisation: height,
                    height_reached: state.committed_height(),
                    target,
                });
            }
        }
    }

    fn dispatch(&mut self, event: Event) {
        match event {
            Event::Deliver { to, from, packet } => self.deliver(to, from, packet),
            Event::Wake { node, incarnation } => {
                let state = &mut self.nodes[node];
                if state.up && state.incarnation == incarnation {
                    state.wakes.remove(&self.now_ms);
                    self.step(node, |core, clock| core.wake(clock));
                }
            }
            Event::Crash { node } => self.crash(node),
            Event::Restart { node } => {
                if !self.nodes[node].up {
                    self.nodes[node].up = true;
                    self.boot(node);
                }
            }
            Event::ArmFuse {
                node,
                effects,
                restart_ms,
            } => {
                let state = &mut self.nodes[node];
                if state.up && state.core.is_some() {
                    state.fuse.arm(effects);
                    state.restart_after_fuse_ms = Some(restart_ms.max(self.now_ms + 1));
                }
            }
            Event::SyncCheck {
                node,
                incarnation,
                height,
            } => self.sync_check(node, incarnation, height),
            Event::IntruderActs => self.intruder_acts(),
            Event::Stabilised => {
                self.heights_at_stabilisation =
                    Some(self.nodes.iter().map(Node::committed_height).collect());
            }
        }
    }

    /// Loses everything but the disk.
    fn crash(&mut self, node: usize) {
        let state = &mut self.nodes[node];
        state.up = false;
        state.core = None;
        state.incarnation += 1;
        state.sync_check_pending = false;
        state.wakes.clear();
        state.outbox.borrow_mut().clear();
        state.fuse = Fuse::default();
        if let Some(restart_ms) = state.restart_after_fuse_ms.take() {
            self.schedule_at(restart_ms.max(self.now_ms + 1), Event::Restart { node });
        }
    }

    /// Starts (or restarts) a node from what it persisted.
    fn boot(&mut self, node: usize) {
        let state = &self.nodes[node];
        if !state.strategy.is_none_or(Strategy::runs_core) {
            return; // These act without a core of their own.
        }
        let config = if state.is_honest() {
            self.config.clone()
        } else {
            self.byzantine_config.clone()
        };
        let restored = if self.forget_safety_state {
            None
        } else {
            state.disk.borrow().safety.clone()
        };
        let application = A::open(Setup {
            index: node,
            key: &self.keys[node],
            disk: state.disk.clone(),
            fuse: state.fuse.clone(),
            shared: &self.shared,
            reports: state.reports.clone(),
            skip_time_check: self.skip_time_check && state.is_honest(),
        });
        let settings = CoreSettings {
            engine: config,
            signing_keys: vec![self.keys[node].clone()],
            verifier: self.verifier.clone(),
            height: state.committed_height() + 1,
            validators: self.validators.clone(),
            restored,
            empty_block_wait_ms: EMPTY_BLOCK_WAIT_MS,
            heartbeat_ms: 0,
        };
        let safety = SimSafety {
            disk: state.disk.clone(),
            fuse: state.fuse.clone(),
        };
        let network = SimNetwork {
            outbox: state.outbox.clone(),
            fuse: state.fuse.clone(),
        };
        let core = NodeCore::new(settings, application, safety, network)
            .expect("the persisted state of a simulated node is never ahead of its chain");
        self.nodes[node].core = Some(core);
        self.step(node, |core, clock| core.start(clock));
    }

    fn deliver(&mut self, to: usize, from: usize, packet: Packet) {
        if to >= self.nodes.len() || !self.nodes[to].up {
            return;
        }
        match packet {
            Packet::Consensus(message) => {
                self.step(to, |core, clock| core.handle_message(message, clock));
            }
            Packet::SyncRequest { height } => self.answer_sync(to, from, height),
            Packet::SyncResponse { decisions } => {
                for decision in decisions {
                    self.step(to, |core, clock| {
                        core.handle_committed(decision.block, decision.certificate, clock)
                            .map(|_| ())
                    });
                }
            }
        }
    }

    fn answer_sync(&mut self, node: usize, asker: usize, height: Height) {
        match self.nodes[node].strategy {
            Some(Strategy::Garbage) => return self.answer_sync_with_forgery(node, asker, height),
            Some(Strategy::SyncForger) => {
                return self.answer_sync_with_valid_looking_block(node, asker, height);
            }
            Some(_) => return,
            None => {}
        }
        if height == 0 {
            return;
        }
        let first = (height - 1) as usize;
        let decisions: Vec<Decision> = self.nodes[node]
            .disk
            .borrow()
            .chain
            .iter()
            .skip(first)
            .take(SYNC_BATCH)
            .cloned()
            .collect();
        if !decisions.is_empty() {
            self.transmit(node, asker, Packet::SyncResponse { decisions });
        }
    }

    fn sync_check(&mut self, node: usize, incarnation: u32, height: Height) {
        let state = &mut self.nodes[node];
        if !state.up || state.incarnation != incarnation {
            return;
        }
        state.sync_check_pending = false;
        let still_behind = state
            .core
            .as_ref()
            .is_some_and(|core| core.engine().height() == height && !core.engine().is_decided());
        if !still_behind {
            return;
        }
        let count = self.nodes.len() as u64;
        let peer = (node as u64 + 1 + self.rng.below(count - 1)) % count;
        self.transmit(node, peer as usize, Packet::SyncRequest { height });
        self.nodes[node].sync_check_pending = true;
        self.schedule_in(
            SYNC_RETRY_MS,
            Event::SyncCheck {
                node,
                incarnation,
                height,
            },
        );
    }

    /// Runs one input through a node's core, then carries what it handed the network into the
    /// world, records commits and evidence, and schedules its next wake-up. A node whose fuse
    /// blew, or whose core stopped on a failed effect, has crashed.
    fn step(
        &mut self,
        node: usize,
        input: impl FnOnce(&mut SimCore<A>, Clock) -> Result<(), CoreError>,
    ) {
        let clock = self.clock(node);
        let committed_before = self.nodes[node].committed_height();
        let Some(core) = self.nodes[node].core.as_mut() else {
            return;
        };
        let before = core.counters();
        let result = input(core, clock);
        let after = core.counters();
        self.stats.rejected_messages +=
            (after.rejected_messages - before.rejected_messages) as usize;
        self.stats.invalid_synced_blocks +=
            (after.invalid_synced_blocks - before.invalid_synced_blocks) as usize;
        let outgoing = std::mem::take(&mut *self.nodes[node].outbox.borrow_mut());
        for item in outgoing {
            match item {
                Outgoing::Broadcast(messages) => {
                    for message in messages {
                        self.send(node, message);
                    }
                }
                Outgoing::SyncRequest(height) => self.schedule_sync_check(node, height),
            }
        }
        let reports = std::mem::take(&mut *self.nodes[node].reports.borrow_mut());
        for evidence in &reports {
            self.stats.evidence_reported += 1;
            if self.nodes[node].is_honest() {
                self.checker.record_evidence(node, evidence);
            }
        }
        self.record_commits(node, committed_before);
        let crashed = match &result {
            Ok(()) => self.nodes[node].fuse.blown(),
            Err(_) if self.nodes[node].fuse.blown() => true,
            Err(error) => {
                if self.nodes[node].is_honest() {
                    self.checker.record_core_failure(node, error.to_string());
                }
                true
            }
        };
        if crashed {
            self.crash(node);
            return;
        }
        self.check_memory(node);
        self.schedule_wake(node);
    }

    fn record_commits(&mut self, node: usize, committed_before: Height) {
        let new: Vec<Decision> = self.nodes[node]
            .disk
            .borrow()
            .chain
            .iter()
            .skip(committed_before as usize)
            .cloned()
            .collect();
        if !self.nodes[node].is_honest() {
            return;
        }
        let latest = self.latest_honest_unix_ms();
        for decision in new {
            let problems = if self.checker.is_new_height(decision.height) {
                self.referee.problems(&decision, latest)
            } else {
                Vec::new()
            };
            self.checker.record_commit(node, &decision, problems);
        }
    }

    /// What an honest core holds per peer stays bounded: next-height messages per validator, and
    /// executed blocks per round.
    fn check_memory(&mut self, node: usize) {
        if !self.nodes[node].is_honest() {
            return;
        }
        let Some(core) = self.nodes[node].core.as_ref() else {
            return;
        };
        let engine = core.engine();
        let buffered = engine.buffered_future_messages();
        let buffered_bound = self.validators.len() * FUTURE_MESSAGES_PER_VALIDATOR;
        let executed = core.executed_blocks();
        // One proposal per round from its proposer, the rounds ahead the engine admits, and one
        // block by sync.
        let executed_bound = (engine.round() + ROUND_WINDOW) as usize + 2;
        if buffered > buffered_bound || executed > executed_bound {
            self.checker.record_memory(node, buffered, executed);
        }
    }

    fn schedule_wake(&mut self, node: usize) {
        let state = &mut self.nodes[node];
        let Some(deadline) = state.core.as_ref().and_then(|core| core.next_deadline_ms()) else {
            return;
        };
        let at_ms = deadline.max(self.now_ms);
        if state.wakes.insert(at_ms) {
            let incarnation = state.incarnation;
            self.schedule_at(at_ms, Event::Wake { node, incarnation });
        }
    }

    fn schedule_sync_check(&mut self, node: usize, height: Height) {
        if self.nodes[node].sync_check_pending {
            return;
        }
        self.nodes[node].sync_check_pending = true;
        let incarnation = self.nodes[node].incarnation;
        self.schedule_in(
            SYNC_RETRY_MS,
            Event::SyncCheck {
                node,
                incarnation,
                height,
            },
        );
    }

    /// Sends one of a node's messages to every other validator (or, for a Byzantine node, what its
    /// strategy makes of it).
    fn send(&mut self, node: usize, message: Message) {
        if let Message::Proposal(proposal) = &message {
            self.checker.record_proposed(proposal.block.id);
            let seen = self.blocks_seen.entry(message.height()).or_default();
            if !seen.contains(&proposal.block.id) {
                seen.push(proposal.block.id);
            }
        }
        match self.nodes[node].strategy {
            None => {
                if self.trace_sends && message.sender() as usize == node {
                    eprintln!(
                        "{:>7} node {node} sends {}",
                        self.now_ms,
                        describe_message(&message)
                    );
                }
                self.checker.record_sent(node, &message);
                for peer in 0..self.nodes.len() {
                    if peer != node {
                        self.transmit(node, peer, Packet::Consensus(message.clone()));
                    }
                }
                self.byzantine_observe(node, &message);
            }
            Some(strategy) => self.byzantine_send(node, strategy, message),
        }
    }

    /// A valid-looking block for `height` by `proposer`, built on the chain of a node at
    /// `height - 1` (its own if it is there), as an adversary that sees every node could.
    pub fn forge_block(
        &mut self,
        proposer: usize,
        height: Height,
        round: u32,
        time_unix_ms: i64,
        oversized: bool,
    ) -> varde_consensus::Block {
        let base = std::iter::once(proposer)
            .chain(0..self.nodes.len())
            .find(|node| self.nodes[*node].committed_height() + 1 == height)
            .unwrap_or(proposer);
        let nonce = self.rng.next_u64();
        A::forge(
            &self.shared,
            base,
            proposer as u32,
            height,
            round,
            nonce,
            time_unix_ms,
            oversized,
        )
    }
}
