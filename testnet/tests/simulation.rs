//! The simulator's own guarantees: the engine holds every invariant over many seeds, a broken
//! safety rule is caught, runs replay exactly, and the scenario mix really exercises every fault.

use varde_testnet::sim::{
    BrokenRule, Scenario, SeedReport, Strategy, Violation, default_threads, run_seed, run_seeds,
};

fn describe(failures: &[SeedReport]) -> String {
    failures
        .iter()
        .flat_map(|report| {
            report.violations.iter().map(move |violation| {
                format!("SEED={} {violation} ({})", report.seed, report.scenario)
            })
        })
        .collect::<Vec<_>>()
        .join("\n")
}

// A thousand seeds of mixed faults: agreement, validity, no honest equivocation, honest evidence
// only against Byzantine validators, and liveness after stabilisation, checked after every event.
#[test]
fn a_thousand_seeds_hold_every_invariant() {
    let failures = run_seeds(0..1_000, None, default_threads(), |_| {});
    assert!(
        failures.is_empty(),
        "violations found:\n{}",
        describe(&failures)
    );
}

// Seeds that once failed, each with what it showed:
// - 4624, 6018: a validator restarted with a valid block in its safety state re-proposed it
//   without counting the block's polka again, so it did not prevote its own re-proposal; with a
//   Byzantine validator refusing every block, the height stalled (liveness).
#[test]
fn seeds_that_once_failed_hold_every_invariant() {
    // 4624, 6018: a restored valid block's prevotes were not counted. 45127, 54798: a block
    // judged invalid for a time beyond the validator's clock stayed invalid for the whole height,
    // though its time had since passed, so validators locked on it never gathered a quorum.
    for seed in [4_624, 6_018, 45_127, 54_798] {
        let report = run_seed(seed, None);
        assert!(
            report.violations.is_empty(),
            "{}",
            describe(std::slice::from_ref(&report))
        );
    }
}

/// The first seed below 1,000 on which two honest validators commit different blocks.
fn first_agreement_violation(broken_rule: BrokenRule) -> Option<SeedReport> {
    first_violation(broken_rule, |violation| {
        matches!(violation, Violation::Agreement { .. })
    })
}

/// The first seed below 1,000 with `broken_rule` on which the checker reports a violation that
/// `wanted` picks.
fn first_violation(
    broken_rule: BrokenRule,
    wanted: impl Fn(&Violation) -> bool,
) -> Option<SeedReport> {
    (0..1_000)
        .map(|seed| run_seed(seed, Some(broken_rule)))
        .find(|report| report.violations.iter().any(&wanted))
}

// A validator that forgets its persisted safety state on restart signs again what it signed
// before, and the checker sees an honest validator equivocate.
#[test]
fn forgetting_the_safety_state_is_caught_as_equivocation() {
    let report = first_violation(BrokenRule::ForgetSafetyState, |violation| {
        matches!(violation, Violation::HonestEquivocation { .. })
    });
    assert!(
        report.is_some(),
        "no honest equivocation within 1,000 seeds"
    );
}

// Validators that do not hold proposals to their clocks commit a Byzantine proposer's block dated
// a day ahead, and the referee sees a block that breaks the time rule.
#[test]
fn skipping_the_time_check_is_caught_as_invalid_blocks() {
    let report = first_violation(
        BrokenRule::SkipTimeCheck,
        |violation| matches!(violation, Violation::Validity { reason, .. } if reason.contains("ahead")),
    );
    assert!(report.is_some(), "no validity violation within 1,000 seeds");
}

// An engine that buffers next-height messages without its per-validator bound fills up under a
// flooding validator, and the checker sees it.
#[test]
fn an_unbounded_buffer_is_caught_as_unbounded_memory() {
    let report = first_violation(BrokenRule::UnboundedFutureBuffer, |violation| {
        matches!(violation, Violation::Memory { .. })
    });
    assert!(report.is_some(), "no memory violation within 1,000 seeds");
}

// An engine that ignores the propose timeout waits for ever for a silent proposer, and the
// checker sees honest validators stop committing after stabilisation.
#[test]
fn ignoring_the_propose_timeout_is_caught_as_lost_liveness() {
    let report = first_violation(BrokenRule::IgnoreProposeTimeout, |violation| {
        matches!(violation, Violation::Liveness { .. })
    });
    assert!(report.is_some(), "no liveness violation within 1,000 seeds");
}

// Counting 2f votes as a quorum lets two blocks commit at one height, and the simulator sees it.
#[test]
fn a_quorum_of_two_f_is_caught_breaking_agreement() {
    let report = first_agreement_violation(BrokenRule::QuorumOfTwoF);
    assert!(
        report.is_some(),
        "no agreement violation within 1,000 seeds"
    );
}

// Prevoting against one's lock lets a later round commit another block, and the simulator sees it.
#[test]
fn ignoring_the_lock_is_caught_breaking_agreement() {
    let report = first_agreement_violation(BrokenRule::IgnoreLock);
    assert!(
        report.is_some(),
        "no agreement violation within 1,000 seeds"
    );
}

// The same seed gives the same run, event for event.
#[test]
fn a_seed_replays_exactly() {
    for seed in [3, 17, 4_242] {
        let first = run_seed(seed, None);
        let second = run_seed(seed, None);
        assert_eq!(format!("{first:?}"), format!("{second:?}"), "seed {seed}");
        assert!(first.stats.events > 0 && first.stats.highest_committed > 0);
    }
}

// Over 300 seeds every size, Byzantine strategy and network fault occurs, so the thousand-seed run
// above is not a thousand calm networks.
#[test]
fn the_scenario_mix_covers_every_fault() {
    let scenarios: Vec<Scenario> = (0..300)
        .map(|seed| Scenario::from_seed(seed, None))
        .collect();
    for size in [4, 7, 10] {
        assert!(
            scenarios.iter().any(|s| s.validator_count == size),
            "n = {size}"
        );
    }
    for strategy in [
        Strategy::Silent,
        Strategy::Equivocate,
        Strategy::Mirror,
        Strategy::Garbage,
        Strategy::TimeWarp,
        Strategy::SyncForger,
        Strategy::Flood,
        Strategy::Oversize,
    ] {
        assert!(
            scenarios
                .iter()
                .any(|s| s.byzantine.iter().any(|(_, used)| *used == strategy)),
            "{strategy:?}"
        );
    }
    let full_f = |s: &Scenario| s.byzantine.len() == (s.validator_count - 1) / 3;
    assert!(
        scenarios
            .iter()
            .any(|s| s.validator_count == 10 && full_f(s)),
        "f = 3 Byzantine of 10"
    );
    assert!(scenarios.iter().any(|s| !s.crashes.is_empty()), "crashes");
    assert!(
        scenarios.iter().any(|s| !s.step_crashes.is_empty()),
        "crashes inside a step"
    );
    assert!(
        scenarios.iter().any(|s| s.ledger) && scenarios.iter().any(|s| !s.ledger),
        "both applications"
    );
    assert!(
        scenarios
            .iter()
            .any(|s| s.clock_skew_ms.iter().any(|skew| *skew != 0)),
        "clock skew"
    );
    assert!(
        scenarios.iter().any(|s| !s.partitions.is_empty()),
        "partitions"
    );
    assert!(scenarios.iter().any(|s| s.intruder), "intruder");
    assert!(scenarios.iter().any(|s| s.network.loss > 0.1), "loss");
    assert!(
        scenarios.iter().any(|s| s.network.duplication > 0.0),
        "duplication"
    );
    assert!(
        scenarios.iter().any(|s| s.network.long_delay > 0.0),
        "long delays"
    );
    assert!(
        scenarios
            .iter()
            .any(|s| !s.crashes.is_empty() && !s.byzantine.is_empty() && s.network.loss > 0.0),
        "faults combined"
    );
}
