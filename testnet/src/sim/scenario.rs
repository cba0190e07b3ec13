//! A run's faults, all drawn from its seed: the network's delays, loss, duplication and partitions,
//! which validators crash and when they come back, and which are Byzantine and how.

use std::fmt;

use varde_consensus::{BrokenRule, Timeouts, ValidatorIndex};

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
            "n={} byzantine={:?} intruder={} loss={:.2} dup={:.2} long={:.2} gst={}ms partitions={} crashes={}",
            self.validator_count,
            self.byzantine,
            self.intruder,
            self.network.loss,
            self.network.duplication,
            self.network.long_delay,
            self.network.stabilisation_ms,
            self.partitions.len(),
            self.crashes.len(),
        )
    }
}
