//! A run's faults, all drawn from its seed: the network's delays, loss, duplication and partitions,
//! which validators crash and when they come back, and which are Byzantine and how.

use std::fmt;

use varde_consensus::{Timeouts, ValidatorIndex};

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
            BrokenRule::ForgetSafetyState | BrokenRule::SkipTimeCheck => None,
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

#[derive(Clone, Debug)]
pub struct Scenario {
    pub seed: u64,
    pub validator_count: usize,
    pub byzantine: Vec<(ValidatorIndex, Strategy)>,
    /// A node outside the validator set that sends forged messages.
    pub intruder: bool,
    pub network: NetworkProfile,
    pub partitions: Vec<Partition>,
    pub crashes: Vec<Crash>,
    /// Crashes inside a step (between persist and send, send and apply), and failed writes.
    pub step_crashes: Vec<StepCrash>,
    /// Each validator's clock offset in milliseconds.
    pub clock_skew_ms: Vec<i64>,
    /// Whether the validators run Varde's ledger (else the light application).
    pub ledger: bool,
    pub timeouts: Timeouts,
    /// After stabilisation every honest validator must commit this many more heights...
    pub liveness_heights: u64,
    /// ...within this much virtual time.
    pub liveness_bound_ms: u64,
    pub broken_rule: Option<BrokenRule>,
}

const SIZES: [usize; 3] = [4, 7, 10];

impl Scenario {
    pub fn from_seed(seed: u64, broken_rule: Option<BrokenRule>) -> Self {
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
            let strategy = *rng.pick(&[
                Strategy::Silent,
                Strategy::Equivocate,
                Strategy::Mirror,
                Strategy::Mirror,
                Strategy::Garbage,
                Strategy::TimeWarp,
                Strategy::SyncForger,
                Strategy::Flood,
                Strategy::Oversize,
            ]);
            byzantine.push((index, strategy));
        }
        byzantine.sort_unstable_by_key(|(index, _)| *index);

        let lossy = rng.chance(0.6);
        let stabilisation_ms = rng.between(2_000, 30_000);
        let network = NetworkProfile {
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
        };

        let mut partitions = Vec::new();
        if rng.chance(0.4) {
            for _ in 0..rng.between(1, 3) {
                let start_ms = rng.below(stabilisation_ms);
                let end_ms = rng.between(start_ms, stabilisation_ms);
                let side_a = (0..=validator_count).map(|_| rng.chance(0.5)).collect();
                partitions.push(Partition {
                    start_ms,
                    end_ms,
                    side_a,
                });
            }
        }

        // Honest validators crash and restart from their persisted state, any number at once
        // (safety must hold regardless); all are back by stabilisation.
        let mut crashes = Vec::new();
        if rng.chance(0.4) {
            for node in 0..validator_count {
                if byzantine.iter().any(|(index, _)| *index as usize == node) {
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

        // Crashes inside a step, and failed writes, of honest validators before stabilisation.
        let mut step_crashes = Vec::new();
        if rng.chance(0.3) {
            for _ in 0..rng.between(1, 4) {
                let node = rng.below(validator_count as u64) as usize;
                if byzantine.iter().any(|(index, _)| *index as usize == node) {
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

        // Clocks: in agreement within a few seconds on half the runs, exact on the others; a
        // Byzantine validator's clock may be anywhere.
        let skewed = rng.chance(0.5);
        let clock_skew_ms = (0..validator_count)
            .map(|node| {
                if byzantine.iter().any(|(index, _)| *index as usize == node) {
                    rng.between(0, 120_000) as i64 - 60_000
                } else if skewed {
                    rng.between(0, 6_000) as i64 - 3_000
                } else {
                    0
                }
            })
            .collect();
        // The real ledger on a share of seeds, the smaller networks (it executes every block).
        let ledger = validator_count <= 7 && rng.chance(0.2);

        let timeouts = Timeouts {
            propose_ms: 1_000,
            prevote_ms: 500,
            precommit_ms: 500,
            increase_per_round_ms: 250,
            rebroadcast_ms: 1_500,
        };
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
            timeouts,
            liveness_heights: 3,
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
        )
    }
}
