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
mod faults;
mod network;
mod rng;
mod scenario;
mod world;

pub use checker::Violation;
pub use rng::SimRng;
pub use scenario::{BrokenRule, Scenario, Strategy};
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

/// Runs every seed of `seeds` on `threads` worker threads. `on_failure` sees each failing report as
/// soon as it is found; the failing reports are returned in seed order.
pub fn run_seeds(
    seeds: std::ops::Range<u64>,
    broken_rule: Option<BrokenRule>,
    threads: usize,
    on_failure: impl Fn(&SeedReport) + Sync,
) -> Vec<SeedReport> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};

    let next = AtomicU64::new(seeds.start);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= seeds.end {
                        break;
                    }
                    let report = run_seed(seed, broken_rule);
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
    failures
}

/// The machine's cores, for [`run_seeds`].
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
