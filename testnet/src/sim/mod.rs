//! The deterministic simulator of Varde's consensus engine.
//!
//! One seed fixes everything: the validator count, which validators are Byzantine and how, the
//! network's delays, loss, duplication and partitions, crashes and restarts, and the global
//! stabilisation time after which the network behaves. Time is virtual. Invariants are checked after
//! every event; after stabilisation every honest validator must commit more heights within a bound.
//! The simulator uses the consensus crate alone: no network, storage or async runtime.

mod app;
mod byzantine;
mod checker;
mod network;
mod rng;
mod scenario;
mod world;

pub use checker::Violation;
pub use rng::SimRng;
pub use scenario::{Scenario, Strategy};
pub use varde_consensus::BrokenRule;
pub use world::{CHAIN_ID, RunStats};

/// The outcome of one seed.
#[derive(Debug, Clone)]
pub struct SeedReport {
    pub seed: u64,
    pub scenario: String,
    pub violations: Vec<Violation>,
    pub stats: RunStats,
}

/// Runs one seed, with an optional safety rule switched off in every honest validator.
pub fn run_seed(seed: u64, broken_rule: Option<BrokenRule>) -> SeedReport {
    let scenario = Scenario::from_seed(seed, broken_rule);
    let description = scenario.to_string();
    let (violations, stats) = world::World::new(scenario).run();
    SeedReport {
        seed,
        scenario: description,
        violations,
        stats,
    }
}
