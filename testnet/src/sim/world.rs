//! One simulated run: validators driven by virtual time over the simulated network, each carrying
//! out its engine's outputs in the order persist → send → apply, with crashes that keep only what
//! was persisted.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use varde_consensus::{
    BlockId, Decision, Engine, EngineConfig, Height, Input, Message, Outbound, Output, Request,
    SafetyState, SigningKey, Timer, ValidatorSet,
};

use super::app::{CachingVerifier, build_block, is_valid_block};
use super::checker::{Checker, Violation};
use super::network::Network;
use super::rng::SimRng;
use super::scenario::{Scenario, Strategy};

pub const CHAIN_ID: &str = "varde-sim";

/// How many committed blocks one sync answer carries at most.
const SYNC_BATCH: usize = 5;
/// How long a node waits after learning that peers are ahead before it asks, and between asks.
const SYNC_RETRY_MS: u64 = 400;
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
    Timer {
        node: usize,
        incarnation: u32,
        timer: Timer,
    },
    Crash {
        node: usize,
    },
    Restart {
        node: usize,
    },
    SyncCheck {
        node: usize,
        incarnation: u32,
        height: Height,
    },
    IntruderActs,
    Stabilised,
}

/// What an engine is asked to do next while a node works through one event.
enum Work {
    Start,
    Input(Input),
    NextHeight,
}

pub(super) struct Node {
    pub strategy: Option<Strategy>,
    pub engine: Option<Engine>,
    /// Bumped at every crash so that timers of an earlier life are ignored.
    pub incarnation: u32,
    pub up: bool,
    /// What survives a crash: the persisted safety state and the committed chain.
    pub persisted_safety: Option<SafetyState>,
    pub chain: Vec<Decision>,
    pub sync_check_pending: bool,
}

impl Node {
    pub fn is_honest(&self) -> bool {
        self.strategy.is_none()
    }

    fn committed_height(&self) -> Height {
        self.chain.len() as Height
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
    /// Every violation found, including those beyond the ones kept for the report.
    pub violations: usize,
}

pub(super) struct World {
    pub scenario: Scenario,
    pub now_ms: u64,
    pub rng: SimRng,
    queue: BTreeMap<(u64, u64), Event>,
    sequence: u64,
    pub network: Network,
    pub nodes: Vec<Node>,
    pub keys: Vec<SigningKey>,
    pub intruder_key: SigningKey,
    pub validators: ValidatorSet,
    config: EngineConfig,
    byzantine_config: EngineConfig,
    verifier: Arc<CachingVerifier>,
    pub checker: Checker,
    /// Block ids proposed per height, which Byzantine validators draw on for conflicting votes.
    pub blocks_seen: BTreeMap<Height, Vec<BlockId>>,
    /// Per Byzantine proposer, the (height, round) it has already equivocated in.
    pub byzantine_proposals: BTreeSet<(usize, Height, u32)>,
    /// Each validator's committed height when the network stabilised (set at that moment).
    heights_at_stabilisation: Option<Vec<Height>>,
    pub stats: RunStats,
    trace_sends: bool,
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

impl World {
    pub fn new(scenario: Scenario) -> Self {
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
        config.broken_rule = scenario.broken_rule;
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
        let nodes = (0..count)
            .map(|index| Node {
                strategy: scenario.strategy_of(index),
                engine: None,
                incarnation: 0,
                up: true,
                persisted_safety: None,
                chain: Vec::new(),
                sync_check_pending: false,
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
            checker,
            blocks_seen: BTreeMap::new(),
            byzantine_proposals: BTreeSet::new(),
            heights_at_stabilisation: None,
            stats: RunStats::default(),
            trace_sends: std::env::var("VARDE_SIM_TRACE").is_ok_and(|value| value == "2"),
            scenario,
        };
        for crash in world.scenario.crashes.clone() {
            world.schedule_at(crash.at_ms, Event::Crash { node: crash.node });
            world.schedule_at(crash.restart_ms, Event::Restart { node: crash.node });
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
                let position = node.engine.as_ref().map(|engine| {
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
                    node.chain.len(),
                    position.unwrap_or_else(|| "no engine".to_owned())
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
            Event::Timer {
                node,
                incarnation,
                timer,
            } => {
                if self.nodes[node].up && self.nodes[node].incarnation == incarnation {
                    self.drive(node, Work::Input(Input::Timeout(timer)));
                }
            }
            Event::Crash { node } => {
                let state = &mut self.nodes[node];
                state.up = false;
                state.engine = None;
                state.incarnation += 1;
                state.sync_check_pending = false;
            }
            Event::Restart { node } => {
                self.nodes[node].up = true;
                self.boot(node);
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

    /// Starts (or restarts) a node from what it persisted.
    fn boot(&mut self, node: usize) {
        let state = &self.nodes[node];
        if matches!(state.strategy, Some(Strategy::Silent | Strategy::Mirror)) {
            return; // These act without an engine of their own.
        }
        let config = if state.is_honest() {
            self.config.clone()
        } else {
            self.byzantine_config.clone()
        };
        let engine = Engine::new(
            config,
            self.keys[node].clone(),
            self.verifier.clone(),
            state.committed_height() + 1,
            self.validators.clone(),
            state.persisted_safety.clone(),
        )
        .expect("the persisted state of a simulated node is never ahead of its chain");
        self.nodes[node].engine = Some(engine);
        self.drive(node, Work::Start);
    }

    fn deliver(&mut self, to: usize, from: usize, packet: Packet) {
        if to >= self.nodes.len() || !self.nodes[to].up {
            return;
        }
        match packet {
            Packet::Consensus(message) => self.drive(to, Work::Input(Input::Message(message))),
            Packet::SyncRequest { height } => self.answer_sync(to, from, height),
            Packet::SyncResponse { decisions } => {
                for decision in decisions {
                    let wanted = self.nodes[to].engine.as_ref().is_some_and(|engine| {
                        engine.height() == decision.height && !engine.is_decided()
                    });
                    if wanted {
                        let input = Input::CommittedBlock {
                            block: decision.block,
                            certificate: decision.certificate,
                        };
                        self.drive(to, Work::Input(input));
                    }
                }
            }
        }
    }

    fn answer_sync(&mut self, node: usize, asker: usize, height: Height) {
        if self.nodes[node].strategy == Some(Strategy::Garbage) {
            return self.answer_sync_with_forgery(node, asker, height);
        }
        if !self.nodes[node].is_honest() || height == 0 {
            return;
        }
        let first = (height - 1) as usize;
        let decisions: Vec<Decision> = self.nodes[node]
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
            .engine
            .as_ref()
            .is_some_and(|engine| engine.height() == height && !engine.is_decided());
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

    /// Feeds work to a node's engine and carries out every output, until nothing is left.
    fn drive(&mut self, node: usize, first: Work) {
        let mut work = VecDeque::from([first]);
        while let Some(next) = work.pop_front() {
            let validators = self.validators.clone();
            let Some(engine) = self.nodes[node].engine.as_mut() else {
                return;
            };
            let output = match next {
                Work::Start => engine.start(),
                Work::Input(input) => engine.handle(input),
                Work::NextHeight => engine.start_next_height(validators),
            };
            self.carry_out(node, output, &mut work);
        }
    }

    /// Persist → send → apply, as a real node must.
    fn carry_out(&mut self, node: usize, output: Output, work: &mut VecDeque<Work>) {
        let Output {
            outbound,
            timers,
            requests,
            decision,
            evidence,
            rejections,
            sync_from,
        } = output;
        let messages = match outbound {
            Outbound::Nothing => Vec::new(),
            Outbound::Send(messages) => messages,
            Outbound::PersistThenSend { state, messages } => {
                self.nodes[node].persisted_safety = Some(*state);
                messages
            }
        };
        for message in messages {
            self.send(node, message);
        }
        let incarnation = self.nodes[node].incarnation;
        for timer in timers {
            self.schedule_in(
                timer.delay_ms,
                Event::Timer {
                    node,
                    incarnation,
                    timer,
                },
            );
        }
        for request in requests {
            match request {
                Request::ProposeBlock { height, round } => {
                    let block = build_block(height, node as u32, round, self.rng.next_u64());
                    self.checker.record_proposed(block.id);
                    work.push_back(Work::Input(Input::BlockToPropose {
                        height,
                        round,
                        block,
                    }));
                }
                Request::ValidateBlock { height, block } => {
                    work.push_back(Work::Input(Input::BlockVerdict {
                        height,
                        block_id: block.id,
                        valid: is_valid_block(height, &block),
                    }));
                }
            }
        }
        self.stats.rejected_messages += rejections.len();
        for evidence in &evidence {
            self.stats.evidence_reported += 1;
            if self.nodes[node].is_honest() {
                self.checker.record_evidence(node, evidence);
            }
        }
        if let Some(decision) = decision {
            assert_eq!(
                decision.height,
                self.nodes[node].committed_height() + 1,
                "decisions arrive in height order"
            );
            if self.nodes[node].is_honest() {
                self.checker.record_commit(node, &decision);
            }
            self.nodes[node].chain.push(decision);
            work.push_back(Work::NextHeight);
        }
        if let Some(height) = sync_from
            && !self.nodes[node].sync_check_pending
        {
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
    }

    /// Sends one of a node's messages to every other validator (or, for a Byzantine node, what its
    /// strategy makes of it).
    fn send(&mut self, node: usize, message: Message) {
        if let Message::Proposal(proposal) = &message {
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
}
