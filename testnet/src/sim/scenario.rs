//! A run's faults, all drawn from its seed: the network's delays, loss, duplication and partitions,
//! which validators crash and when they come back, and which are Byzantine and how.

use std::fmt;

use varde_consensus::{Height, Timeouts, ValidatorIndex};
use varde_ledger::governance::approvals_needed;

use super::rng::SimRng;

/// How a Byzantine validator misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Sends nothing at all.
    Silent,
    /// Runs the protocol but sends conflicting proposals and votes to two halves of the network.
    Equivocate,
    /// Watches every honest vote and echoes each voter's own choice back to it, so that every
    /// honest validator sees support for what it already prefers; proposes two blocks when it may.
    Mirror,
    /// Runs the protocol but also sends invalid signatures, votes for unknown blocks, proposals out
    /// of turn, mismatched blocks, far-future rounds and forged sync answers.
    Garbage,
    /// Runs the protocol, but its proposals carry blocks dated far in the future or in the past.
    TimeWarp,
    /// Answers sync with valid-looking blocks of the asked height, dated far ahead, under bogus or
    /// partial certificates, then proposes those blocks when it may.
    SyncForger,
    /// Runs the protocol and floods every peer with votes: forged signatures, and correctly signed
    /// ones for far rounds and later heights.
    Flood,
    /// Runs the protocol, but its proposals break the block limits (bytes or transactions).
    Oversize,
    /// A validator that governance removes: runs the protocol while it is in the set, then keeps
    /// signing votes and proposals for the heights after its removal, under the index it had.
    Lingering,
}

impl Strategy {
    /// Whether the validator runs a core of its own (the others act from outside it).
    pub fn runs_core(self) -> bool {
        !matches!(self, Strategy::Silent | Strategy::Mirror)
    }
}

/// A rule switched off to show that the checker notices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokenRule {
    /// The engine counts 2f votes as a quorum instead of 2f+1 (caught as agreement).
    QuorumOfTwoF,
    /// The engine prevotes against its lock (caught as agreement).
    IgnoreLock,
    /// A restarted validator forgets its persisted safety state (caught as equivocation).
    ForgetSafetyState,
    /// Proposals are not held to the validator's clock (caught as validity).
    SkipTimeCheck,
    /// The engine buffers next-height messages without bound (caught as memory).
    UnboundedFutureBuffer,
    /// The engine ignores the propose timeout (caught as liveness).
    IgnoreProposeTimeout,
    /// Validators keep the validator set they started with when governance changes it, so a
    /// removed validator's votes still count (caught as a wrong validator set).
    KeepOldValidatorSet,
}

impl BrokenRule {
    /// The engine's own broken rule, for those that live in the engine.
    pub fn in_engine(self) -> Option<varde_consensus::BrokenRule> {
        match self {
            BrokenRule::QuorumOfTwoF => Some(varde_consensus::BrokenRule::QuorumOfTwoF),
            BrokenRule::IgnoreLock => Some(varde_consensus::BrokenRule::IgnoreLock),
            BrokenRule::UnboundedFutureBuffer => {
                Some(varde_consensus::BrokenRule::UnboundedFutureBuffer)
            }
            BrokenRule::IgnoreProposeTimeout => {
                Some(varde_consensus::BrokenRule::IgnoreProposeTimeout)
            }
            BrokenRule::ForgetSafetyState
            | BrokenRule::SkipTimeCheck
            | BrokenRule::KeepOldValidatorSet => None,
        }
    }
}

/// An honest validator dies inside a step of its core: at its `effects`-th effect (persist,
/// send or commit) after `at_ms`, and comes back at `restart_ms`.
#[derive(Clone, Copy, Debug)]
pub struct StepCrash {
    pub node: usize,
    pub at_ms: u64,
    pub effects: u32,
    pub restart_ms: u64,
}

/// The network is split in two sides between `start_ms` and `end_ms`; nothing crosses.
#[derive(Clone, Debug)]
pub struct Partition {
    pub start_ms: u64,
    pub end_ms: u64,
    pub side_a: Vec<bool>,
}

#[derive(Clone, Copy, Debug)]
pub struct Crash {
    pub node: usize,
    pub at_ms: u64,
    pub restart_ms: u64,
}

#[derive(Clone, Debug)]
pub struct NetworkProfile {
    /// Each link's base delay is drawn from this range once per run.
    pub link_delay_ms: (u64, u64),
    /// Extra delay drawn per message, which also reorders messages on a link.
    pub jitter_ms: u64,
    /// Before stabilisation: probability that a message is lost, duplicated, or held for long.
    pub loss: f64,
    pub duplication: f64,
    pub long_delay: f64,
    pub long_delay_ms: u64,
    /// Global stabilisation time: from here on nothing is lost and every delay is bounded.
    pub stabilisation_ms: u64,
    pub max_delay_after_stabilisation_ms: u64,
}

/// Which scenarios a run of seeds draws from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mix {
    /// Fixed validator sets and, on [`GOVERNANCE_SHARE`] of the seeds, governance scenarios.
    #[default]
    Mixed,
    /// Governance scenarios only: the validator set changes across heights.
    Governance,
    /// The validator set of the genesis for the whole run.
    FixedSet,
}

/// The share of a mixed run's seeds that run a governance scenario.
pub const GOVERNANCE_SHARE: f64 = 0.3;

/// One membership change that a governance scenario proposes and approves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// The spare node's validator joins: its institution is added with the validator role
    /// (`new_institution`), or its institution, a submitter from genesis, gets the role.
    AddValidator { node: usize, new_institution: bool },
    /// A genesis validator leaves the set: its whole institution (`whole_institution`), or its
    /// validator role only (the institution stays a submitter).
    RemoveValidator {
        node: usize,
        whole_institution: bool,
    },
    /// A genesis validator's consensus key is rotated to the second key its node holds.
    RotateKey { node: usize },
}

/// A change, the first height it holds, and the honest genesis validators that propose and
/// approve it (together more than 2/3 of the genesis set, all committed before any change).
#[derive(Clone, Debug)]
pub struct PlannedChange {
    pub kind: ChangeKind,
    pub effective_height: Height,
    pub proposer: usize,
    pub approvers: Vec<usize>,
}

/// An honest node that crashes around a set change: once its committed chain reaches
/// `at_height` it dies at once, or (with `effects`) at that effect of its core from then on, that
/// is inside the next step that persists, sends or commits; it comes back as soon as an honest
/// node has committed `restart_height`, and at the latest `restart_within_ms` after it died.
#[derive(Clone, Copy, Debug)]
pub struct BoundaryCrash {
    pub node: usize,
    pub at_height: Height,
    pub effects: Option<u32>,
    pub restart_height: Height,
    pub restart_within_ms: u64,
}

/// What changes the validator set in a governance scenario.
#[derive(Clone, Debug)]
pub struct GovernancePlan {
    /// Ascending by effective height; two changes may take effect at the same height.
    pub changes: Vec<PlannedChange>,
    /// The node outside the genesis set (index `validator_count`), which follows by sync and
    /// joins when its validator is added; `None` when no change adds one.
    pub joiner: Option<usize>,
    pub boundary_crashes: Vec<BoundaryCrash>,
}

impl GovernancePlan {
    /// Nodes beyond the genesis validators.
    pub fn spare_nodes(&self) -> usize {
        usize::from(self.joiner.is_some())
    }

    /// The node whose key is rotated, if a change rotates one.
    pub fn rotated(&self) -> Option<usize> {
        self.changes.iter().find_map(|change| match change.kind {
            ChangeKind::RotateKey { node } => Some(node),
            _ => None,
        })
    }

    pub fn last_effective_height(&self) -> Height {
        self.changes
            .iter()
            .map(|change| change.effective_height)
            .max()
            .unwrap_or(0)
    }

    /// The nodes of each validator set the plan gives, from genesis, with the first height of
    /// each (a rotation keeps the nodes but changes the set).
    pub fn node_sets(&self, validator_count: usize) -> Vec<(Height, Vec<usize>)> {
        let mut members: Vec<usize> = (0..validator_count).collect();
        let mut sets = vec![(1, members.clone())];
        let mut heights: Vec<Height> = self
            .changes
            .iter()
            .map(|change| change.effective_height)
            .collect();
        heights.dedup();
        for height in heights {
            for change in self
                .changes
                .iter()
                .filter(|change| change.effective_height == height)
            {
                match change.kind {
                    ChangeKind::AddValidator { node, .. } => members.push(node),
                    ChangeKind::RemoveValidator { node, .. } => {
                        members.retain(|held| *held != node)
                    }
                    ChangeKind::RotateKey { .. } => {}
                }
            }
            members.sort_unstable();
            sets.push((height, members.clone()));
        }
        sets
    }
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub seed: u64,
    /// The validators of the genesis (nodes `0..validator_count`).
    pub validator_count: usize,
    pub byzantine: Vec<(ValidatorIndex, Strategy)>,
    /// A node outside the validator set that sends forged messages.
    pub intruder: bool,
    pub network: NetworkProfile,
    pub partitions: Vec<Partition>,
    pub crashes: Vec<Crash>,
    /// Crashes inside a step (between persist and send, send and apply), and failed writes.
    pub step_crashes: Vec<StepCrash>,
    /// Each node's clock offset in milliseconds.
    pub clock_skew_ms: Vec<i64>,
    /// Whether the validators run Varde's ledger (else the light application).
    pub ledger: bool,
    /// Governance changes of the validator set (ledger runs only).
    pub governance: Option<GovernancePlan>,
    pub timeouts: Timeouts,
    /// After stabilisation every honest node must commit this many more heights...
    pub liveness_heights: u64,
    /// ...and at least this height (past the last planned set change)...
    pub liveness_floor_height: Height,
    /// ...within this much virtual time.
    pub liveness_bound_ms: u64,
    pub broken_rule: Option<BrokenRule>,
}

const SIZES: [usize; 3] = [4, 7, 10];
/// Genesis sizes of governance scenarios: they run the ledger, which executes every block.
const GOVERNANCE_SIZES: [usize; 2] = [4, 7];
/// Distinguishes the draw that decides whether a mixed seed runs a governance scenario from the
/// scenario's own draws, so that fixed-set seeds draw what they drew before governance existed.
const GOVERNANCE_DRAW: u64 = 0x676F_7665_726E;

const STRATEGIES: [Strategy; 9] = [
    Strategy::Silent,
    Strategy::Equivocate,
    Strategy::Mirror,
    Strategy::Mirror,
    Strategy::Garbage,
    Strategy::TimeWarp,
    Strategy::SyncForger,
    Strategy::Flood,
    Strategy::Oversize,
];

const TIMEOUTS: Timeouts = Timeouts {
    propose_ms: 1_000,
    prevote_ms: 500,
    precommit_ms: 500,
    increase_per_round_ms: 250,
    rebroadcast_ms: 1_500,
};

fn is_byzantine(byzantine: &[(ValidatorIndex, Strategy)], node: usize) -> bool {
    byzantine.iter().any(|(index, _)| *index as usize == node)
}

fn draw_network(rng: &mut SimRng) -> NetworkProfile {
    let lossy = rng.chance(0.6);
    let stabilisation_ms = rng.between(2_000, 30_000);
    NetworkProfile {
        link_delay_ms: (rng.between(1, 20), rng.between(20, 200)),
        jitter_ms: rng.between(0, 150),
        loss: if lossy {
            rng.below(30) as f64 / 100.0
        } else {
            0.0
        },
        duplication: if rng.chance(0.5) {
            rng.below(10) as f64 / 100.0
        } else {
            0.0
        },
        long_delay: if rng.chance(0.5) {
            rng.below(10) as f64 / 100.0
        } else {
            0.0
        },
        long_delay_ms: rng.between(500, 5_000),
        stabilisation_ms,
        max_delay_after_stabilisation_ms: 300,
    }
}

/// Up to three partitions before stabilisation, over `nodes` nodes and the intruder.
fn draw_partitions(rng: &mut SimRng, stabilisation_ms: u64, nodes: usize) -> Vec<Partition> {
    let mut partitions = Vec::new();
    if rng.chance(0.4) {
        for _ in 0..rng.between(1, 3) {
            let start_ms = rng.below(stabilisation_ms);
            let end_ms = rng.between(start_ms, stabilisation_ms);
            let side_a = (0..=nodes).map(|_| rng.chance(0.5)).collect();
            partitions.push(Partition {
                start_ms,
                end_ms,
                side_a,
            });
        }
    }
    partitions
}

/// Honest nodes crash and restart from their persisted state, any number at once (safety must
/// hold regardless); all are back by stabilisation.
fn draw_crashes(
    rng: &mut SimRng,
    nodes: usize,
    byzantine: &[(ValidatorIndex, Strategy)],
    stabilisation_ms: u64,
) -> Vec<Crash> {
    let mut crashes = Vec::new();
    if rng.chance(0.4) {
        for node in 0..nodes {
            if is_byzantine(byzantine, node) {
                continue;
            }
            let mut earliest_ms = 0;
            while rng.chance(0.35) && earliest_ms + 100 < stabilisation_ms {
                let at_ms = rng.between(earliest_ms, stabilisation_ms - 100);
                let restart_ms = rng.between(at_ms + 1, stabilisation_ms);
                crashes.push(Crash {
                    node,
                    at_ms,
                    restart_ms,
                });
                earliest_ms = restart_ms;
            }
        }
    }
    crashes
}

/// Crashes inside a step, and failed writes, of honest nodes before stabilisation.
fn draw_step_crashes(
    rng: &mut SimRng,
    nodes: usize,
    byzantine: &[(ValidatorIndex, Strategy)],
    stabilisation_ms: u64,
) -> Vec<StepCrash> {
    let mut step_crashes = Vec::new();
    if rng.chance(0.3) {
        for _ in 0..rng.between(1, 4) {
            let node = rng.below(nodes as u64) as usize;
            if is_byzantine(byzantine, node) {
                continue;
            }
            let at_ms = rng.below(stabilisation_ms.saturating_sub(200).max(1));
            step_crashes.push(StepCrash {
                node,
                at_ms,
                effects: rng.between(1, 4) as u32,
                restart_ms: rng.between(at_ms + 50, stabilisation_ms.max(at_ms + 51)),
            });
        }
    }
    step_crashes
}

/// Clocks: in agreement within a few seconds on half the runs, exact on the others; a
/// Byzantine node's clock may be anywhere.
fn draw_clock_skews(
    rng: &mut SimRng,
    nodes: usize,
    byzantine: &[(ValidatorIndex, Strategy)],
) -> Vec<i64> {
    let skewed = rng.chance(0.5);
    (0..nodes)
        .map(|node| {
            if is_byzantine(byzantine, node) {
                rng.between(0, 120_000) as i64 - 60_000
            } else if skewed {
                rng.between(0, 6_000) as i64 - 3_000
            } else {
                0
            }
        })
        .collect()
}

impl Scenario {
    /// The scenario of `seed` in a mixed run.
    pub fn from_seed(seed: u64, broken_rule: Option<BrokenRule>) -> Self {
        Self::from_seed_in(seed, broken_rule, Mix::Mixed)
    }

    /// The scenario of `seed` among those `mix` draws. A broken rule about set changes shows
    /// only when the set changes: it always draws a governance scenario.
    pub fn from_seed_in(seed: u64, broken_rule: Option<BrokenRule>, mix: Mix) -> Self {
        let governance = match mix {
            _ if broken_rule == Some(BrokenRule::KeepOldValidatorSet) => true,
            Mix::Governance => true,
            Mix::FixedSet => false,
            // The other broken rules are shown on the scenarios that they always were.
            Mix::Mixed => {
                broken_rule.is_none()
                    && SimRng::new(seed ^ GOVERNANCE_DRAW).chance(GOVERNANCE_SHARE)
            }
        };
        if governance {
            Self::governance(seed, broken_rule)
        } else {
            Self::fixed_set(seed, broken_rule)
        }
    }

    /// All nodes: the genesis validators and the spare one of a governance scenario.
    pub fn node_count(&self) -> usize {
        self.validator_count
            + self
                .governance
                .as_ref()
                .map_or(0, GovernancePlan::spare_nodes)
    }

    fn fixed_set(seed: u64, broken_rule: Option<BrokenRule>) -> Self {
        let mut rng = SimRng::new(seed);
        let validator_count = *rng.pick(&SIZES);
        let fault_tolerance = (validator_count - 1) / 3;

        // Byzantine validators: none in a quarter of the runs, up to f otherwise (mostly f).
        let byzantine_count = if rng.chance(0.25) {
            0
        } else if rng.chance(0.7) {
            fault_tolerance
        } else {
            rng.between(1, fault_tolerance as u64) as usize
        };
        let mut candidates: Vec<ValidatorIndex> = (0..validator_count as ValidatorIndex).collect();
        let mut byzantine = Vec::new();
        for _ in 0..byzantine_count {
            let index = candidates.remove(rng.below(candidates.len() as u64) as usize);
            let strategy = *rng.pick(&STRATEGIES);
            byzantine.push((index, strategy));
        }
        byzantine.sort_unstable_by_key(|(index, _)| *index);

        let network = draw_network(&mut rng);
        let stabilisation_ms = network.stabilisation_ms;
        let partitions = draw_partitions(&mut rng, stabilisation_ms, validator_count);
        let mut crashes = draw_crashes(&mut rng, validator_count, &byzantine, stabilisation_ms);
        let mut step_crashes =
            draw_step_crashes(&mut rng, validator_count, &byzantine, stabilisation_ms);
        if broken_rule == Some(BrokenRule::ForgetSafetyState) && crashes.is_empty() {
            // A forgotten safety state shows only across restarts.
            for node in 0..validator_count {
                let at_ms = rng.below(stabilisation_ms / 2);
                crashes.push(Crash {
                    node,
                    at_ms,
                    restart_ms: at_ms + rng.between(1, 300),
                });
            }
        }
        // A broken rule shows only against the fault it guards against: a proposer that lies
        // about the time, a flood of next-height messages, a proposer that never proposes.
        let needed = match broken_rule {
            Some(BrokenRule::SkipTimeCheck) => Some(Strategy::TimeWarp),
            Some(BrokenRule::UnboundedFutureBuffer) => Some(Strategy::Flood),
            Some(BrokenRule::IgnoreProposeTimeout) => Some(Strategy::Silent),
            _ => None,
        };
        if let Some(needed) = needed
            && !byzantine.iter().any(|(_, strategy)| *strategy == needed)
        {
            match byzantine.first_mut() {
                Some(first) => first.1 = needed,
                None => byzantine.push((0, needed)),
            }
            crashes.retain(|crash| crash.node != byzantine[0].0 as usize);
            step_crashes.retain(|crash| crash.node != byzantine[0].0 as usize);
        }

        let clock_skew_ms = draw_clock_skews(&mut rng, validator_count, &byzantine);
        // The real ledger on a share of seeds, the smaller networks (it executes every block).
        let ledger = validator_count <= 7 && rng.chance(0.2);

        Scenario {
            seed,
            validator_count,
            byzantine,
            intruder: rng.chance(0.5),
            network,
            partitions,
            crashes,
            step_crashes,
            clock_skew_ms,
            ledger,
            governance: None,
            timeouts: TIMEOUTS,
            liveness_heights: 3,
            liveness_floor_height: 0,
            liveness_bound_ms: 120_000,
            broken_rule,
        }
    }

    /// A ledger run whose validator set changes: a spare node's validator is added, a genesis
    /// validator removed, another's key rotated (at least one of the three), each effective at
    /// its own height or two at once, with Byzantine validators at the boundaries and crashes
    /// across them.
    fn governance(seed: u64, broken_rule: Option<BrokenRule>) -> Self {
        let mut rng = SimRng::new(seed);
        let validator_count = *rng.pick(&GOVERNANCE_SIZES);
        let fault_tolerance = (validator_count - 1) / 3;

        // Which changes, in which order.
        let mut kinds: Vec<u8> = (0..3).filter(|_| rng.chance(0.7)).collect();
        if kinds.is_empty() {
            kinds.push(rng.below(3) as u8);
        }
        for index in (1..kinds.len()).rev() {
            kinds.swap(index, rng.below(index as u64 + 1) as usize);
        }
        let removed = rng.below(validator_count as u64) as usize;
        let rotated =
            (removed + 1 + rng.below(validator_count as u64 - 1) as usize) % validator_count;
        let joiner = validator_count;
        // Every proposal and approval is committed before the first change takes effect: they
        // come first in every pool, four to a block.
        let needed = approvals_needed(validator_count);
        let governance_transactions = (kinds.len() * needed) as u64;
        let mut effective_height = governance_transactions.div_ceil(4) + 4 + rng.below(4);
        let mut changes = Vec::new();
        for (position, kind) in kinds.iter().enumerate() {
            if position > 0 && !rng.chance(0.2) {
                effective_height += rng.between(1, 5);
            }
            let kind = match kind {
                0 => ChangeKind::AddValidator {
                    node: joiner,
                    new_institution: rng.chance(0.5),
                },
                1 => ChangeKind::RemoveValidator {
                    node: removed,
                    whole_institution: rng.chance(0.5),
                },
                _ => ChangeKind::RotateKey { node: rotated },
            };
            changes.push(PlannedChange {
                kind,
                effective_height,
                proposer: 0,
                approvers: Vec::new(),
            });
        }
        let adds = changes
            .iter()
            .any(|change| matches!(change.kind, ChangeKind::AddValidator { .. }));
        let removes = changes
            .iter()
            .any(|change| matches!(change.kind, ChangeKind::RemoveValidator { .. }));
        let mut plan = GovernancePlan {
            changes,
            joiner: adds.then_some(joiner),
            boundary_crashes: Vec::new(),
        };
        let node_count = validator_count + plan.spare_nodes();

        // Byzantine nodes: the removed validator lingers after its removal on half the runs, the
        // joiner equivocates on half, and up to f others misbehave as in fixed-set runs; never
        // more than f of any set of the plan. The rotated validator is honest.
        let mut lingering = removes && rng.chance(0.5);
        let mut equivocating_joiner = adds && rng.chance(0.5);
        let mut others: Vec<(ValidatorIndex, Strategy)> = Vec::new();
        if !rng.chance(0.3) {
            let count = rng.between(1, fault_tolerance as u64) as usize;
            let mut candidates: Vec<usize> = (0..validator_count)
                .filter(|node| *node != removed && *node != rotated)
                .collect();
            for _ in 0..count.min(candidates.len()) {
                let node = candidates.remove(rng.below(candidates.len() as u64) as usize);
                others.push((node as ValidatorIndex, *rng.pick(&STRATEGIES)));
            }
        }
        let sets = plan.node_sets(validator_count);
        let byzantine = loop {
            let mut byzantine = others.clone();
            if lingering {
                byzantine.push((removed as ValidatorIndex, Strategy::Lingering));
            }
            if equivocating_joiner {
                byzantine.push((joiner as ValidatorIndex, Strategy::Equivocate));
            }
            let tolerated = sets.iter().all(|(_, members)| {
                let faulty = members
                    .iter()
                    .filter(|node| is_byzantine(&byzantine, **node))
                    .count();
                faulty <= (members.len() - 1) / 3
            });
            if tolerated {
                break byzantine;
            }
            if others.pop().is_none() {
                if equivocating_joiner {
                    equivocating_joiner = false;
                } else {
                    lingering = false;
                }
            }
        };
        let mut byzantine = byzantine;
        byzantine.sort_unstable_by_key(|(index, _)| *index);

        // Proposers and approvers: honest genesis validators, more than 2/3 of the genesis set.
        let honest: Vec<usize> = (0..validator_count)
            .filter(|node| !is_byzantine(&byzantine, *node))
            .collect();
        assert!(honest.len() >= needed, "at most f Byzantine of the genesis");
        for (position, change) in plan.changes.iter_mut().enumerate() {
            let first = position % honest.len();
            change.proposer = honest[first];
            change.approvers = (1..needed)
                .map(|offset| honest[(first + offset) % honest.len()])
                .collect();
        }

        let network = draw_network(&mut rng);
        let stabilisation_ms = network.stabilisation_ms;
        let partitions = draw_partitions(&mut rng, stabilisation_ms, node_count);
        let mut crashes = draw_crashes(&mut rng, node_count, &byzantine, stabilisation_ms);
        let step_crashes = draw_step_crashes(&mut rng, node_count, &byzantine, stabilisation_ms);
        if broken_rule == Some(BrokenRule::ForgetSafetyState) && crashes.is_empty() {
            for node in (0..node_count).filter(|node| !is_byzantine(&byzantine, *node)) {
                let at_ms = rng.below(stabilisation_ms / 2);
                crashes.push(Crash {
                    node,
                    at_ms,
                    restart_ms: at_ms + rng.between(1, 300),
                });
            }
        }

        // Crashes across the changes: the rotated validator mostly around its own rotation,
        // otherwise any honest validator of the set before the change.
        for change in plan.changes.clone() {
            if !rng.chance(0.5) {
                continue;
            }
            let before = &sets
                .iter()
                .rev()
                .find(|(from, _)| *from < change.effective_height)
                .expect("the genesis set comes first")
                .1;
            let candidates: Vec<usize> = before
                .iter()
                .copied()
                .filter(|node| !is_byzantine(&byzantine, *node))
                .collect();
            let node = match change.kind {
                ChangeKind::RotateKey { node } if rng.chance(0.8) => node,
                _ => *rng.pick(&candidates),
            };
            if plan.boundary_crashes.iter().any(|crash| crash.node == node) {
                continue;
            }
            let at_height = change
                .effective_height
                .saturating_sub(rng.between(1, 3))
                .max(1);
            plan.boundary_crashes.push(BoundaryCrash {
                node,
                at_height,
                effects: rng.chance(0.5).then(|| rng.between(1, 4) as u32),
                restart_height: change.effective_height + rng.below(3),
                restart_within_ms: rng.between(300, 3_000),
            });
        }

        let clock_skew_ms = draw_clock_skews(&mut rng, node_count, &byzantine);
        let liveness_floor_height = plan.last_effective_height() + 2;
        Scenario {
            seed,
            validator_count,
            byzantine,
            intruder: rng.chance(0.5),
            network,
            partitions,
            crashes,
            step_crashes,
            clock_skew_ms,
            ledger: true,
            governance: Some(plan),
            timeouts: TIMEOUTS,
            liveness_heights: 3,
            liveness_floor_height,
            liveness_bound_ms: 120_000,
            broken_rule,
        }
    }

    pub fn strategy_of(&self, node: usize) -> Option<Strategy> {
        self.byzantine
            .iter()
            .find(|(index, _)| *index as usize == node)
            .map(|(_, strategy)| *strategy)
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "n={} app={} byzantine={:?} intruder={} loss={:.2} dup={:.2} long={:.2} gst={}ms partitions={} crashes={} step-crashes={} skew={:?}",
            self.validator_count,
            if self.ledger { "ledger" } else { "light" },
            self.byzantine,
            self.intruder,
            self.network.loss,
            self.network.duplication,
            self.network.long_delay,
            self.network.stabilisation_ms,
            self.partitions.len(),
            self.crashes.len(),
            self.step_crashes.len(),
            self.clock_skew_ms,
        )?;
        if let Some(plan) = &self.governance {
            let changes: Vec<String> = plan
                .changes
                .iter()
                .map(|change| {
                    let height = change.effective_height;
                    match change.kind {
                        ChangeKind::AddValidator {
                            node,
                            new_institution,
                        } => format!(
                            "add node {node} at h{height}{}",
                            if new_institution {
                                " (new institution)"
                            } else {
                                ""
                            }
                        ),
                        ChangeKind::RemoveValidator {
                            node,
                            whole_institution,
                        } => format!(
                            "remove node {node} at h{height}{}",
                            if whole_institution {
                                " (institution)"
                            } else {
                                ""
                            }
                        ),
                        ChangeKind::RotateKey { node } => {
                            format!("rotate node {node}'s key at h{height}")
                        }
                    }
                })
                .collect();
            let crashes: Vec<String> = plan
                .boundary_crashes
                .iter()
                .map(|crash| {
                    format!(
                        "node {} at h{}{} back by h{}",
                        crash.node,
                        crash.at_height,
                        crash
                            .effects
                            .map(|effects| format!(" effect {effects}"))
                            .unwrap_or_default(),
                        crash.restart_height
                    )
                })
                .collect();
            write!(
                formatter,
                " governance=[{}] boundary-crashes=[{}]",
                changes.join(", "),
                crashes.join(", ")
            )?;
        }
        Ok(())
    }
}
