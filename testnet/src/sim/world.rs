//! One simulated run: validators running the node's own core ([`NodeCore`]) over virtual time,
//! the simulated network and the simulated disk, with crashes that keep only what was persisted,
//! crashes inside a step, failed writes and skewed clocks; in governance runs, validator sets that
//! change across heights, nodes that follow by sync, and crashes timed by height across changes.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use varde_consensus::{
    BlockId, Decision, EngineConfig, Evidence, FUTURE_MESSAGES_PER_VALIDATOR, Height, Message,
    ROUND_WINDOW, SigningKey, ValidatorIndex, ValidatorSet, VerifyingKey,
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
/// How often a node that the network's validators no longer (or not yet) send consensus
/// messages to asks a peer for the blocks after its own, as an observer follows the chain.
const FOLLOWER_SYNC_MS: u64 = 1_000;

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
    /// A node outside the set the network decides with asks a peer for blocks (governance runs).
    FollowerSync {
        node: usize,
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
    /// Every consensus key the node holds (a rotated validator holds two).
    pub keys: Vec<SigningKey>,
    /// The set its consensus messages go to (the set of its core's height; an honest node's
    /// network follows its core), and the key it is reached under.
    pub sends_to: ValidatorSet,
    pub identity: VerifyingKey,
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
    /// How many times the committed chain's validator set changed.
    pub set_changes: usize,
    /// Committed heights whose certificate holds a precommit signed with a key outside the
    /// genesis set (an added validator's, or a rotated key).
    pub heights_signed_by_new_keys: usize,
    /// Votes and proposals that removed validators signed for heights after their removal.
    pub lingering_messages: usize,
    /// Crashes across set changes that happened.
    pub boundary_crashes: usize,
    /// Misbehaviour of validators added by governance that the ledger recorded.
    pub added_validator_misbehaviour_recorded: usize,
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
    /// Each node's first consensus key (the only one, but for a rotated validator's).
    pub keys: Vec<SigningKey>,
    pub intruder_key: SigningKey,
    /// The validators of the genesis, in the order of their keys' bytes (the order the ledger
    /// gives them): node `i` is validator `i` of the genesis.
    pub validators: ValidatorSet,
    config: EngineConfig,
    byzantine_config: EngineConfig,
    verifier: Arc<CachingVerifier>,
    pub shared: A::Shared,
    pub referee: A::Referee,
    pub checker: Checker,
    /// Block ids proposed per height, which Byzantine validators draw on for conflicting votes.
    pub blocks_seen: BTreeMap<Height, Vec<BlockId>>,
    /// Per Byzantine proposer, the (height, round) it has already equivocated in.
    pub byzantine_proposals: BTreeSet<(usize, Height, u32)>,
    /// Blocks a sync forger served, by height: it proposes them when it may.
    pub forged_for_sync: BTreeMap<Height, varde_consensus::Block>,
    /// Each validator's committed height when the network stabilised (set at that moment).
    heights_at_stabilisation: Option<Vec<Height>>,
    /// The highest height an honest node has committed.
    highest_honest_committed: Height,
    /// The highest height of a vote each node signed and sent.
    highest_signed_vote: Vec<Height>,
    /// Which of the scenario's boundary crashes have happened.
    boundary_crashes_fired: Vec<bool>,
    /// Nodes down across a boundary, each to restart once an honest node commits this height.
    restarts_at_height: Vec<(usize, Height)>,
    pub stats: RunStats,
    trace_sends: bool,
    /// Broken rules that live outside the engine.
    forget_safety_state: bool,
    skip_time_check: bool,
    keep_old_validator_set: bool,
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
        let count = scenario.node_count();
        // The genesis validators in the order of their keys, as the ledger orders a set.
        let mut genesis_keys: Vec<SigningKey> = (0..scenario.validator_count as u64)
            .map(|i| key_for(scenario.seed, i))
            .collect();
        genesis_keys.sort_by_key(|key| key.verifying_key().to_bytes());
        let mut node_keys: Vec<Vec<SigningKey>> =
            genesis_keys.into_iter().map(|key| vec![key]).collect();
        for spare in scenario.validator_count..count {
            node_keys.push(vec![key_for(scenario.seed, spare as u64)]);
        }
        if let Some(rotated) = scenario.governance.as_ref().and_then(|plan| plan.rotated()) {
            node_keys[rotated].push(key_for(scenario.seed, 1_000_000 + rotated as u64));
        }
        let keys: Vec<SigningKey> = node_keys.iter().map(|held| held[0].clone()).collect();
        let key_owner: HashMap<[u8; 32], usize> = node_keys
            .iter()
            .enumerate()
            .flat_map(|(node, held)| {
                held.iter()
                    .map(move |key| (key.verifying_key().to_bytes(), node))
            })
            .collect();
        let intruder_key = key_for(scenario.seed, u64::MAX);
        let validators = ValidatorSet::new(
            keys[..scenario.validator_count]
                .iter()
                .map(SigningKey::verifying_key)
                .collect(),
        )
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
        let checker = Checker::new(CHAIN_ID.to_owned(), verifier.clone(), byzantine, key_owner);
        let disks: Vec<SharedDisk> = (0..count)
            .map(|_| Rc::new(RefCell::new(Disk::default())))
            .collect();
        let shared = A::shared(CHAIN_ID, &scenario, &node_keys, &validators, &disks);
        let referee = A::referee(&shared);
        let nodes = disks
            .into_iter()
            .zip(node_keys)
            .enumerate()
            .map(|(index, (disk, held))| Node {
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
                identity: held[0].verifying_key(),
                keys: held,
                sends_to: validators.clone(),
            })
            .collect();
        let boundary_crashes = scenario
            .governance
            .as_ref()
            .map_or(0, |plan| plan.boundary_crashes.len());
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
            highest_honest_committed: 0,
            highest_signed_vote: vec![0; count],
            boundary_crashes_fired: vec![false; boundary_crashes],
            restarts_at_height: Vec::new(),
            stats: RunStats::default(),
            trace_sends: std::env::var("VARDE_SIM_TRACE").is_ok_and(|value| value == "2"),
            forget_safety_state: broken_rule == Some(BrokenRule::ForgetSafetyState),
            skip_time_check: broken_rule == Some(BrokenRule::SkipTimeCheck),
            keep_old_validator_set: broken_rule == Some(BrokenRule::KeepOldValidatorSet),
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
        if world.scenario.governance.is_some() {
            for node in 0..count {
                world.schedule_at(FOLLOWER_SYNC_MS, Event::FollowerSync { node });
            }
        }
        world
    }

    /// The validator set that the committed chain gives `height` (the latest known for a height
    /// beyond it).
    pub fn set_at(&self, height: Height) -> &ValidatorSet {
        let history = self.referee.set_history();
        &history
            .iter()
            .rev()
            .find(|(from, _)| *from <= height)
            .unwrap_or(&history[0])
            .1
    }

    /// Node `node`'s index in the set of `height`, if it is in it.
    pub fn validator_index(&self, node: usize, height: Height) -> Option<ValidatorIndex> {
        let set = self.set_at(height);
        self.nodes[node]
            .keys
            .iter()
            .find_map(|key| set.index_of(&key.verifying_key()))
    }

    /// The index a removed validator had in the last set it was in, for the heights after it.
    pub fn former_index(&self, node: usize) -> Option<ValidatorIndex> {
        let keys: Vec<VerifyingKey> = self.nodes[node]
            .keys
            .iter()
            .map(SigningKey::verifying_key)
            .collect();
        self.referee
            .set_history()
            .iter()
            .rev()
            .find_map(|(_, set)| keys.iter().find_map(|key| set.index_of(key)))
    }

    /// The height from which the committed chain's sets leave `node` out, if they do.
    pub fn removed_from(&self, node: usize) -> Option<Height> {
        let keys: Vec<VerifyingKey> = self.nodes[node]
            .keys
            .iter()
            .map(SigningKey::verifying_key)
            .collect();
        let history = self.referee.set_history();
        let last_in = history
            .iter()
            .rposition(|(_, set)| keys.iter().any(|key| set.index_of(key).is_some()))?;
        history.get(last_in + 1).map(|(from, _)| *from)
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
        if !self.checker.agreement_broken() {
            self.check_at_the_end();
        }
        self.stats.set_changes = self.referee.set_history().len() - 1;
        self.stats.added_validator_misbehaviour_recorded =
            self.referee.added_validator_misbehaviour_recorded();
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
        let all_reached = self.nodes.iter().zip(heights).all(|(node, height)| {
            !node.is_honest() || node.committed_height() >= self.liveness_target(*height)
        });
        if all_reached && self.not_participating().is_empty() {
            return true;
        }
        let deadline_ms = self.network.stabilisation_ms() + self.scenario.liveness_bound_ms;
        if self.now_ms > deadline_ms {
            self.fail_liveness();
            return true;
        }
        false
    }

    /// The height an honest node at `height_at_stabilisation` must reach: a few more, and past
    /// the last planned set change.
    fn liveness_target(&self, height_at_stabilisation: Height) -> Height {
        (height_at_stabilisation + self.scenario.liveness_heights)
            .max(self.scenario.liveness_floor_height)
    }

    /// What holds only of a whole run: the changes the plan made were enacted, and a light
    /// client from the genesis follows every honest node's chain to its head.
    fn check_at_the_end(&mut self) {
        for (height, reason) in self.referee.plan_problems() {
            self.checker.record_set_problem(None, height, reason);
        }
        for node in 0..self.nodes.len() {
            if self.nodes[node].is_honest() {
                for reason in A::light_client_problems(&self.shared, node) {
                    self.checker.record_light_client_refusal(node, reason);
                }
            }
        }
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

    /// The honest validators of the last planned set that have signed no vote of a height from
    /// the last set change on, with that height: every one must take part once its set holds.
    fn not_participating(&self) -> Vec<(usize, Height)> {
        let Some(plan) = &self.scenario.governance else {
            return Vec::new();
        };
        let since = plan.last_effective_height();
        let sets = plan.node_sets(self.scenario.validator_count);
        let last = &sets.last().expect("the genesis set comes first").1;
        last.iter()
            .copied()
            .filter(|node| self.nodes[*node].is_honest() && self.highest_signed_vote[*node] < since)
            .map(|node| (node, since))
            .collect()
    }

    fn fail_liveness(&mut self) {
        if std::env::var_os("VARDE_SIM_TRACE").is_some() {
            for line in self.describe_nodes() {
                eprintln!("  {line}");
            }
        }
        for (node, since_height) in self.not_participating() {
            self.checker
                .record_liveness_failure(Violation::Participation { node, since_height });
        }
        let heights = self.heights_at_stabilisation.clone().unwrap_or_default();
        for (node, height) in heights.into_iter().enumerate() {
            let state = &self.nodes[node];
            let target = self.liveness_target(height);
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
            Event::FollowerSync { node } => self.follower_sync(node),
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
            keys: &state.keys,
            disk: state.disk.clone(),
            fuse: state.fuse.clone(),
            shared: &self.shared,
            reports: state.reports.clone(),
            skip_time_check: self.skip_time_check && state.is_honest(),
            keep_old_validator_set: self.keep_old_validator_set && state.is_honest(),
        });
        // The set of the height after its committed head, as its own state says; it signs
        // with the key of it that it holds (the core picks it), as the node does.
        let validators = application.validators(&self.validators);
        let settings = CoreSettings {
            engine: config,
            signing_keys: state.keys.clone(),
            verifier: self.verifier.clone(),
            height: state.committed_height() + 1,
            validators,
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
        let core = match NodeCore::new(settings, application, safety, network) {
            Ok(core) => core,
            // A persisted state that does not hold against the set the node restarts with: the
            // node refuses to start, as `varde-node` does, and stays down.
            Err(error) => {
                if self.nodes[node].is_honest() {
                    self.checker.record_core_failure(node, error.to_string());
                }
                self.nodes[node].up = false;
                return;
            }
        };
        let state = &mut self.nodes[node];
        state.sends_to = core.validators().clone();
        state.identity = core.engine().verifying_key();
        state.core = Some(core);
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

    /// An honest node that the validators of the height the network decides do not send
    /// consensus messages to (it is not, or no longer, or not yet under this key, one of them)
    /// asks a random peer for the blocks after its own, as an observer does.
    fn follower_sync(&mut self, node: usize) {
        self.schedule_in(FOLLOWER_SYNC_MS, Event::FollowerSync { node });
        let state = &self.nodes[node];
        if !state.up || !state.is_honest() {
            return;
        }
        let Some(core) = state.core.as_ref() else {
            return;
        };
        let height = core.engine().height();
        let deciding = self.set_at(self.highest_honest_committed + 1);
        if deciding.index_of(&state.identity).is_some() {
            return; // Its peers' consensus messages tell it when it falls behind.
        }
        let count = self.nodes.len() as u64;
        let peer = (node as u64 + 1 + self.rng.below(count - 1)) % count;
        self.transmit(node, peer as usize, Packet::SyncRequest { height });
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
                Outgoing::ValidatorsChanged(change) => {
                    let state = &mut self.nodes[node];
                    state.sends_to = change.validators;
                    state.identity = change.own_key;
                }
            }
        }
        let reports = std::mem::take(&mut *self.nodes[node].reports.borrow_mut());
        for evidence in &reports {
            self.stats.evidence_reported += 1;
            if self.nodes[node].is_honest() {
                let validators = self.set_at(evidence.height()).clone();
                self.checker.record_evidence(node, evidence, &validators);
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
        self.check_validator_set(node);
        self.check_signing_key(node);
        self.check_memory(node);
        self.schedule_wake(node);
        self.crash_at_boundary(node);
    }

    /// An honest core decides its height with the set the committed chain gives that height,
    /// and verifies synced certificates against it too.
    fn check_validator_set(&mut self, node: usize) {
        if !self.nodes[node].is_honest() {
            return;
        }
        let Some(core) = self.nodes[node].core.as_ref() else {
            return;
        };
        let height = core.engine().height();
        let expected = self.set_at(height);
        let deciding = if core.engine().validators() != expected {
            core.engine().validators()
        } else if core.validators() != expected {
            core.validators()
        } else {
            return;
        };
        let (deciding, expected) = (deciding.clone(), expected.clone());
        self.checker
            .record_wrong_set(node, height, &deciding, &expected);
    }

    /// A node that holds a key of its height's set signs with that key: a rotated key takes
    /// over at the height of the rotation, never before, and never both.
    fn check_signing_key(&mut self, node: usize) {
        let state = &self.nodes[node];
        let Some(core) = state.core.as_ref().filter(|_| state.is_honest()) else {
            return;
        };
        let height = core.engine().height();
        let expected = self.set_at(height);
        let in_set = state
            .keys
            .iter()
            .map(SigningKey::verifying_key)
            .find(|key| expected.index_of(key).is_some());
        if let Some(key) = in_set
            && core.engine().verifying_key() != key
        {
            self.checker.record_wrong_set_once(
                node,
                height,
                "it signs with a key other than the one of its height's set that it holds"
                    .to_owned(),
            );
        }
    }

    /// The scenario's crashes across set changes: a node that has just reached the height of
    /// one dies now, or at an effect of its core from now on.
    fn crash_at_boundary(&mut self, node: usize) {
        let Some(plan) = self.scenario.governance.as_ref() else {
            return;
        };
        let committed = self.nodes[node].committed_height();
        let due = plan
            .boundary_crashes
            .iter()
            .enumerate()
            .find(|(index, crash)| {
                crash.node == node
                    && !self.boundary_crashes_fired[*index]
                    && committed >= crash.at_height
            })
            .map(|(index, crash)| (index, *crash));
        let Some((index, crash)) = due else {
            return;
        };
        if !self.nodes[node].up || self.nodes[node].core.is_none() {
            return;
        }
        self.boundary_crashes_fired[index] = true;
        self.stats.boundary_crashes += 1;
        let restart_ms = self.now_ms + crash.restart_within_ms;
        self.restarts_at_height.push((node, crash.restart_height));
        match crash.effects {
            None => {
                self.crash(node);
                self.schedule_at(restart_ms, Event::Restart { node });
            }
            Some(effects) => {
                let state = &mut self.nodes[node];
                state.fuse.arm(effects);
                state.restart_after_fuse_ms = Some(restart_ms);
            }
        }
        self.release_restarts();
    }

    /// Restarts the nodes down across a boundary whose restart height an honest node reached.
    fn release_restarts(&mut self) {
        let highest = self.highest_honest_committed;
        let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.restarts_at_height)
            .into_iter()
            .partition(|(_, height)| *height <= highest);
        self.restarts_at_height = waiting;
        for (node, _) in due {
            self.schedule_in(1, Event::Restart { node });
        }
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
        let any = !new.is_empty();
        for decision in new {
            let validators = self.set_at(decision.height).clone();
            let problems = if self.checker.is_new_height(decision.height) {
                let signed_by_new_key = decision.certificate.signatures.iter().any(|signature| {
                    validators
                        .key(signature.validator)
                        .is_some_and(|key| self.validators.index_of(key).is_none())
                });
                self.stats.heights_signed_by_new_keys += usize::from(signed_by_new_key);
                self.referee.problems(&decision, latest)
            } else {
                Vec::new()
            };
            self.checker
                .record_commit(node, &decision, problems, &validators);
            self.highest_honest_committed = self.highest_honest_committed.max(decision.height);
        }
        if any {
            self.check_set_history(node);
            self.release_restarts();
        }
    }

    /// An honest node's ledger holds the validator-set history of the committed chain, up to
    /// the set of the height after its head.
    fn check_set_history(&mut self, node: usize) {
        let Some(held) = A::set_history_of(&self.shared, node) else {
            return;
        };
        let next = self.nodes[node].committed_height() + 1;
        let chain: Vec<(Height, Vec<[u8; 32]>)> = self
            .referee
            .set_history()
            .iter()
            .filter(|(from, _)| *from <= next)
            .map(|(from, set)| {
                (
                    *from,
                    set.keys().iter().map(VerifyingKey::to_bytes).collect(),
                )
            })
            .collect();
        let held: Vec<(Height, Vec<[u8; 32]>)> =
            held.into_iter().filter(|(from, _)| *from <= next).collect();
        if held != chain {
            let froms = |history: &[(Height, Vec<[u8; 32]>)]| -> Vec<Height> {
                history.iter().map(|(from, _)| *from).collect()
            };
            self.checker.record_set_problem(
                Some(node),
                next - 1,
                format!(
                    "its ledger's validator-set history (sets from heights {:?}) is not the committed chain's (from {:?})",
                    froms(&held),
                    froms(&chain)
                ),
            );
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
        let buffered_bound = engine.validators().len() * FUTURE_MESSAGES_PER_VALIDATOR;
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
                let own = self.signed_by(node, &message);
                if own && matches!(message, Message::Vote(_)) {
                    let highest = &mut self.highest_signed_vote[node];
                    *highest = (*highest).max(message.height());
                }
                if self.trace_sends && own {
                    eprintln!(
                        "{:>7} node {node} sends {}",
                        self.now_ms,
                        describe_message(&message)
                    );
                }
                self.checker.record_sent(node, &message, own);
                // To the validators of the set the node decides with, as its network does.
                for peer in 0..self.nodes.len() {
                    let identity = self.nodes[peer].identity;
                    if peer != node && self.nodes[node].sends_to.index_of(&identity).is_some() {
                        self.transmit(node, peer, Packet::Consensus(message.clone()));
                    }
                }
                self.byzantine_observe(node, &message);
            }
            Some(strategy) => self.byzantine_send(node, strategy, message),
        }
    }

    /// Whether `node` signed `message` (rather than relays another's vote): its sender is, in the
    /// set the node decides with, a key the node holds.
    pub fn signed_by(&self, node: usize, message: &Message) -> bool {
        let state = &self.nodes[node];
        state
            .sends_to
            .key(message.sender())
            .is_some_and(|key| state.keys.iter().any(|held| held.verifying_key() == *key))
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
