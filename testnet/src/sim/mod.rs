//! The deterministic simulator of Varde's consensus engine, run through the node's own core.
//!
//! One seed fixes everything: the validator count, which validators are Byzantine and how, the
//! network's delays, loss, duplication and partitions, crashes and restarts, the global
//! stabilisation time after which the network behaves, and in governance scenarios the changes
//! of the validator set across heights. Time is virtual. Invariants are checked after every event;
//! after stabilisation every honest node must commit more heights within a bound. No network,
//! storage or async runtime is involved.

mod app;
mod byzantine;
mod checker;
mod faults;
mod network;
mod rng;
mod scenario;
mod world;

pub use checker::Violation;
pub use rng::SimRng;
pub use scenario::{
    BoundaryCrash, BrokenRule, ChangeKind, GOVERNANCE_SHARE, GovernancePlan, Mix, PlannedChange,
    Scenario, Strategy,
};
pub use world::{CHAIN_ID, RunStats};

/// The outcome of one seed.
#[derive(Debug, Clone)]
pub struct SeedReport {
    pub seed: u64,
    pub scenario: String,
    pub violations: Vec<Violation>,
    pub stats: RunStats,
}

/// Runs one seed of a mixed run, with an optional safety rule switched off in every honest
/// validator.
pub fn run_seed(seed: u64, broken_rule: Option<BrokenRule>) -> SeedReport {
    run_seed_in(seed, broken_rule, Mix::Mixed)
}

/// Runs one seed among the scenarios `mix` draws.
pub fn run_seed_in(seed: u64, broken_rule: Option<BrokenRule>, mix: Mix) -> SeedReport {
    let scenario = Scenario::from_seed_in(seed, broken_rule, mix);
    let description = scenario.to_string();
    let (violations, stats) = if scenario.ledger {
        world::World::<app::LedgerSimApp>::new(scenario, broken_rule).run()
    } else {
        world::World::<app::SimpleApp>::new(scenario, broken_rule).run()
    };
    SeedReport {
        seed,
        scenario: description,
        violations,
        stats,
    }
}

/// What a run of many seeds found.
#[derive(Debug, Default)]
pub struct RunSummary {
    /// The failing reports, in seed order.
    pub failures: Vec<SeedReport>,
    /// Seeds whose committed chain changed its validator set at least once.
    pub seeds_with_set_changes: u64,
}

/// Runs every seed of `seeds` of a mixed run on `threads` worker threads. `on_failure` sees each
/// failing report as soon as it is found; the failing reports are returned in seed order.
pub fn run_seeds(
    seeds: std::ops::Range<u64>,
    broken_rule: Option<BrokenRule>,
    threads: usize,
    on_failure: impl Fn(&SeedReport) + Sync,
) -> Vec<SeedReport> {
    run_seeds_in(seeds, broken_rule, Mix::Mixed, threads, on_failure).failures
}

/// [`run_seeds`] over the scenarios `mix` draws, also counting the seeds with set changes.
pub fn run_seeds_in(
    seeds: std::ops::Range<u64>,
    broken_rule: Option<BrokenRule>,
    mix: Mix,
    threads: usize,
    on_failure: impl Fn(&SeedReport) + Sync,
) -> RunSummary {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};

    let next = AtomicU64::new(seeds.start);
    let with_set_changes = AtomicU64::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= seeds.end {
                        break;
                    }
                    let report = run_seed_in(seed, broken_rule, mix);
                    if report.stats.set_changes > 0 {
                        with_set_changes.fetch_add(1, Ordering::Relaxed);
                    }
                    if report.stats.violations > 0 {
                        on_failure(&report);
                        failures
                            .lock()
                            .unwrap_or_else(|poisoned| poisoned.into_inner())
                            .push(report);
                    }
                }
            });
        }
    });
    let mut failures = failures
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    failures.sort_by_key(|report| report.seed);
    RunSummary {
        failures,
        seeds_with_set_changes: with_set_changes.into_inner(),
    }
}

/// The machine's cores, for [`run_seeds`].
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
